//! The per-token ingest rate limit: a token bucket per API token, refilled
//! at `rate` requests per second up to a burst of twice that. A request
//! over the limit gets 429 with `Retry-After`, before its body is read.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::model::TokenId;

/// Buckets kept at most; idle full ones are dropped first.
const MAX_BUCKETS: usize = 10_000;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at_ms: i64,
}

#[derive(Debug, Clone)]
pub struct RateLimiter {
    /// Requests per second; 0 means no limit.
    rate: u32,
    buckets: Arc<Mutex<HashMap<TokenId, Bucket>>>,
    /// Requests refused so far, for `/metrics`.
    refused: Arc<AtomicU64>,
}

impl RateLimiter {
    pub fn new(rate: u32) -> RateLimiter {
        RateLimiter {
            rate,
            buckets: Arc::default(),
            refused: Arc::default(),
        }
    }

    pub fn rate(&self) -> u32 {
        self.rate
    }

    /// How many requests the limit has refused since start.
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }

    /// Takes one request from `token`'s bucket at `now_ms`; `Err` with the
    /// seconds to wait when it is empty.
    pub fn take(&self, token: TokenId, now_ms: i64) -> Result<(), u64> {
        if self.rate == 0 {
            return Ok(());
        }
        let rate = f64::from(self.rate);
        let burst = rate * 2.0;
        let Ok(mut buckets) = self.buckets.lock() else {
            return Ok(());
        };
        if buckets.len() >= MAX_BUCKETS {
            buckets.retain(|_, b| (now_ms - b.at_ms) as f64 / 1000.0 * rate < burst);
        }
        let bucket = buckets.entry(token).or_insert(Bucket {
            tokens: burst,
            at_ms: now_ms,
        });
        let elapsed_s = (now_ms - bucket.at_ms).max(0) as f64 / 1000.0;
        bucket.tokens = (bucket.tokens + elapsed_s * rate).min(burst);
        bucket.at_ms = now_ms;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            self.refused.fetch_add(1, Ordering::Relaxed);
            Err(((1.0 - bucket.tokens) / rate).ceil().max(1.0) as u64)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_the_rate() {
        let limiter = RateLimiter::new(5);
        let token = TokenId(1);
        for _ in 0..10 {
            assert_eq!(limiter.take(token, 0), Ok(()));
        }
        assert_eq!(limiter.take(token, 0), Err(1));
        assert_eq!(limiter.take(TokenId(2), 0), Ok(()), "per token");
        assert_eq!(
            limiter.take(token, 200),
            Ok(()),
            "one refilled after 200 ms"
        );
        assert!(limiter.take(token, 200).is_err());
        assert_eq!(RateLimiter::new(0).take(token, 0), Ok(()), "0 = no limit");
    }
}
