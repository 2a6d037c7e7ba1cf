//! Login throttling: failed sign-ins are counted per account and per
//! client address. A few failures are free; after that each attempt must
//! wait a delay that doubles with every failure, and past a limit the key
//! is locked for a while. Counts fade after a quiet period and a success
//! clears the account's count.
//!
//! Kept in memory: a restart forgets the counts, which costs an attacker a
//! restart they cannot cause, and keeps the login path free of writes.
//!
//! Attempts are counted as they start ([`LoginThrottle::begin`]), not only
//! when their slow password check has failed: guesses sent in parallel
//! would otherwise all pass the check before the first failure is counted.
//! While attempts are in flight, those that would exceed the free ones wait
//! for them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Failures allowed before delays start, per account and per address (an
/// address is shared by a whole office behind NAT, so it gets more).
const FREE_PER_ACCOUNT: u32 = 5;
const FREE_PER_ADDRESS: u32 = 20;
/// Failures after which the key is locked for [`LOCK_S`].
const LOCK_AFTER_ACCOUNT: u32 = 10;
const LOCK_AFTER_ADDRESS: u32 = 50;
const LOCK_S: i64 = 15 * 60;
/// A key with no failure for this long starts from zero again.
const FORGET_AFTER_S: i64 = 60 * 60;
/// Keys kept at most; beyond it, forgotten keys are swept first.
const MAX_KEYS: usize = 100_000;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Account(String),
    Address(String),
}

#[derive(Debug, Clone, Copy, Default)]
struct Failures {
    count: u32,
    last_at: i64,
    /// Attempts begun and not yet decided.
    in_flight: u32,
}

/// Why a sign-in may not be tried now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Throttled {
    pub retry_after_s: i64,
    /// Whether it is the account (not the address) that is held back.
    pub account: bool,
}

impl Throttled {
    pub fn message(&self) -> String {
        let what = if self.account {
            "this account"
        } else {
            "your network address"
        };
        format!(
            "Too many failed sign-ins for {what}. Try again in {}.",
            human_wait(self.retry_after_s)
        )
    }
}

fn human_wait(seconds: i64) -> String {
    if seconds < 90 {
        format!("{seconds} seconds")
    } else {
        format!("{} minutes", (seconds + 59) / 60)
    }
}

/// The failure counts; cheap to clone, shared through `AppState`.
#[derive(Debug, Clone, Default)]
pub struct LoginThrottle {
    failures: Arc<Mutex<HashMap<Key, Failures>>>,
    /// Woken whenever an attempt in flight is decided.
    decided: Arc<tokio::sync::Notify>,
}

/// How long an attempt waits for those in flight before it is told to
/// come back (their password checks take well under a second).
const IN_FLIGHT_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// What one key says of a new attempt.
enum Hold {
    Free,
    /// Attempts in flight may use up what is free: wait for their verdict.
    InFlight,
    /// Seconds to wait.
    For(i64),
}

impl LoginThrottle {
    /// Whether a sign-in for `username` from `address` may be tried at
    /// `now`, leaving attempts in flight aside; if not, how long to wait.
    pub fn check(&self, username: &str, address: Option<&str>, now: i64) -> Option<Throttled> {
        let failures = self.failures.lock().ok()?;
        verdict(&failures, username, address, now).err()
    }

    /// Checks and, when the attempt may go ahead, counts it as in flight
    /// until the returned [`Attempt`] says how it ended (or is dropped).
    /// Attempts that in-flight ones could push past the free ones wait
    /// for their verdicts first: parallel guesses are then judged one by
    /// one, while parallel sign-ins with the right password all get in.
    pub async fn begin(
        &self,
        username: &str,
        address: Option<&str>,
        now: i64,
    ) -> Result<Attempt, Throttled> {
        let keys = keys(username, address);
        loop {
            let decided = self.decided.notified();
            tokio::pin!(decided);
            // Registered before looking, so a verdict in between is seen.
            decided.as_mut().enable();
            {
                let Ok(mut failures) = self.failures.lock() else {
                    return Ok(Attempt {
                        throttle: self.clone(),
                        keys: Vec::new(),
                    });
                };
                match verdict(&failures, username, address, now) {
                    Err(throttled) => return Err(throttled),
                    Ok(Hold::Free) => {
                        for key in &keys {
                            failures.entry(key.clone()).or_default().in_flight += 1;
                        }
                        return Ok(Attempt {
                            throttle: self.clone(),
                            keys,
                        });
                    }
                    Ok(_) => {}
                }
            }
            if tokio::time::timeout(IN_FLIGHT_WAIT, decided).await.is_err() {
                return Err(Throttled {
                    retry_after_s: 1,
                    account: true,
                });
            }
        }
    }

    pub fn record_failure(&self, username: &str, address: Option<&str>, now: i64) {
        let Ok(mut failures) = self.failures.lock() else {
            return;
        };
        if failures.len() >= MAX_KEYS {
            failures.retain(|_, f| now - f.last_at < FORGET_AFTER_S);
        }
        let mut keys = vec![Key::Account(username.to_lowercase())];
        keys.extend(address.map(|a| Key::Address(a.to_owned())));
        for key in keys {
            let entry = failures.entry(key).or_default();
            if now - entry.last_at >= FORGET_AFTER_S {
                entry.count = 0;
            }
            entry.count += 1;
            entry.last_at = now;
        }
    }

    /// A successful sign-in clears the account (the address keeps its
    /// count: one good password does not vouch for other guesses).
    pub fn record_success(&self, username: &str) {
        if let Ok(mut failures) = self.failures.lock() {
            failures.remove(&Key::Account(username.to_lowercase()));
        }
    }
}

/// The verdict on a new attempt: go, wait for those in flight, or the
/// throttle (the account's first).
fn verdict(
    failures: &HashMap<Key, Failures>,
    username: &str,
    address: Option<&str>,
    now: i64,
) -> Result<Hold, Throttled> {
    let account = failures
        .get(&Key::Account(username.to_lowercase()))
        .map_or(Hold::Free, |f| {
            hold(f, FREE_PER_ACCOUNT, LOCK_AFTER_ACCOUNT, now)
        });
    let by_address = address
        .and_then(|a| failures.get(&Key::Address(a.to_owned())))
        .map_or(Hold::Free, |f| {
            hold(f, FREE_PER_ADDRESS, LOCK_AFTER_ADDRESS, now)
        });
    match (account, by_address) {
        (Hold::For(retry_after_s), _) => Err(Throttled {
            retry_after_s,
            account: true,
        }),
        (_, Hold::For(retry_after_s)) => Err(Throttled {
            retry_after_s,
            account: false,
        }),
        (Hold::InFlight, _) | (_, Hold::InFlight) => Ok(Hold::InFlight),
        (Hold::Free, Hold::Free) => Ok(Hold::Free),
    }
}

/// The keys an attempt counts against.
fn keys(username: &str, address: Option<&str>) -> Vec<Key> {
    let mut keys = vec![Key::Account(username.to_lowercase())];
    keys.extend(address.map(|a| Key::Address(a.to_owned())));
    keys
}

/// One sign-in attempt under way; dropped without a verdict (an error on
/// the way), it counts as nothing.
#[derive(Debug)]
pub struct Attempt {
    throttle: LoginThrottle,
    keys: Vec<Key>,
}

impl Attempt {
    pub fn failed(self, username: &str, address: Option<&str>, now: i64) {
        self.throttle.record_failure(username, address, now);
    }

    pub fn succeeded(self, username: &str) {
        self.throttle.record_success(username);
    }
}

impl Drop for Attempt {
    fn drop(&mut self) {
        if let Ok(mut failures) = self.throttle.failures.lock() {
            for key in &self.keys {
                if let Some(entry) = failures.get_mut(key) {
                    entry.in_flight = entry.in_flight.saturating_sub(1);
                }
            }
        }
        self.throttle.decided.notify_waiters();
    }
}

/// What a key with these failures says of a new attempt.
fn hold(failures: &Failures, free: u32, lock_after: u32, now: i64) -> Hold {
    let settled = match now - failures.last_at >= FORGET_AFTER_S {
        true => 0,
        false => failures.count,
    };
    if settled + failures.in_flight < free {
        return Hold::Free;
    }
    if settled < free {
        // Only attempts in flight fill the free ones.
        return Hold::InFlight;
    }
    let delay = if settled >= lock_after {
        LOCK_S
    } else {
        // 1 s after the first failure past the free ones, then 2, 4, 8…,
        // never longer than the lock: a wait past the quiet period that
        // forgets a key would reset the count before the lock is reached.
        (1_i64 << (settled - free).min(20)).min(LOCK_S)
    };
    let remaining = failures.last_at + delay - now;
    match (remaining > 0, failures.in_flight > 0) {
        (true, _) => Hold::For(remaining),
        // The wait is over: one attempt at a time until it is decided.
        (false, true) => Hold::InFlight,
        (false, false) => Hold::Free,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_then_lock_then_fade() {
        let throttle = LoginThrottle::default();
        let mut now = 1_000;
        for _ in 0..FREE_PER_ACCOUNT {
            assert_eq!(throttle.check("Ada", Some("10.0.0.1"), now), None);
            throttle.record_failure("ada", Some("10.0.0.1"), now);
        }
        let first = throttle.check("ada", None, now).expect("delayed");
        assert!(first.account);
        assert_eq!(first.retry_after_s, 1);
        now += 1;
        assert_eq!(throttle.check("ada", None, now), None);
        throttle.record_failure("ada", None, now);
        assert_eq!(
            throttle.check("ada", None, now).map(|t| t.retry_after_s),
            Some(2)
        );
        for _ in 0..10 {
            throttle.record_failure("ada", None, now);
        }
        assert_eq!(
            throttle.check("ada", None, now).map(|t| t.retry_after_s),
            Some(LOCK_S)
        );
        assert!(
            throttle.check("grace", None, now).is_none(),
            "other accounts are free"
        );
        now += FORGET_AFTER_S;
        assert_eq!(throttle.check("ada", None, now), None);
    }

    #[test]
    fn the_address_is_held_back_across_accounts() {
        let throttle = LoginThrottle::default();
        for i in 0..FREE_PER_ADDRESS {
            throttle.record_failure(&format!("user{i}"), Some("10.0.0.9"), 5);
        }
        let held = throttle
            .check("someone-new", Some("10.0.0.9"), 5)
            .expect("held");
        assert!(!held.account);
        assert!(held.message().contains("network address"));
        assert_eq!(throttle.check("someone-new", Some("10.0.0.8"), 5), None);
    }

    #[test]
    fn success_clears_the_account() {
        let throttle = LoginThrottle::default();
        for _ in 0..FREE_PER_ACCOUNT {
            throttle.record_failure("ada", None, 5);
        }
        assert!(throttle.check("ada", None, 5).is_some());
        throttle.record_success("ADA");
        assert_eq!(throttle.check("ada", None, 5), None);
    }
}
