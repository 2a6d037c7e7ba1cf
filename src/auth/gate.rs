//! What the access checks need, as one handle: the user and token store,
//! the clock, session timeouts, the per-token rate limit, and the audit
//! trail every route group runs. Each capability's state hands one out
//! (`FromRef`), so the extractors work under any of them.

use std::sync::Arc;

use crate::audit::TrailState;
use crate::clock::Clock;
use crate::db::Db;

use super::{RateLimiter, SessionPolicy};

#[derive(Clone)]
pub struct Gate {
    pub db: Db,
    pub clock: Arc<dyn Clock>,
    pub sessions: SessionPolicy,
    /// Ingest requests per token and second.
    pub ingest_limit: RateLimiter,
    pub trail: TrailState,
}

impl Gate {
    /// Unix seconds from the injected clock.
    pub fn now_unix(&self) -> i64 {
        self.clock.now().as_second()
    }
}
