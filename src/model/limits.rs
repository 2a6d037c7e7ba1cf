//! The store's numeric limits, and why no sum it keeps can overflow.
//!
//! # The arithmetic
//!
//! Every stored event carries at most [`MAX_TOKENS`] (10⁹ < 2³⁰) of each
//! token kind and costs at most [`MAX_COST_MICROS`] (10⁹ micro-units, $1,000
//! or 1,000 credits: more than any single call costs) — whoever sent it and
//! however its cost was found (reported, or from the price table). The
//! database file is capped at [`MAX_DATABASE_BYTES`] (128 GiB = 2³⁷ bytes,
//! `PRAGMA max_page_count` on every connection that writes), and each
//! stored event takes at least [`MIN_BYTES_PER_EVENT`] (64 = 2⁶) bytes of it
//! (its row and its entries in the `events` indexes; `tests/it/hostile.rs`
//! measures it), so the file holds at most 2³¹ events.
//!
//! Hence any sum of one metric over any set of events — a rollup cell, a
//! query's total, the raw `GROUP BY` that `verify` runs — is at most
//! 2³¹ × 2³⁰ = 2⁶¹, and the largest expression we form from such sums (four
//! token kinds added, or a range computed as days − prefix + prefix) stays
//! below 2⁶³. The writer and the query layer still use checked arithmetic
//! ([`Totals::checked_add`](super::Totals::checked_add)), so that a
//! database written by an older release, which had no such limits, fails
//! loudly instead of wrapping; `tokentally verify` reports such cells and
//! `tokentally verify --repair` rebuilds them.

/// Most tokens of one kind (input, output, cache read, cache write) in one
/// event. Ten times the largest context window of any model today, so a
/// metric point that sums a minute of a busy session still fits.
pub const MAX_TOKENS: i64 = 1_000_000_000;

/// Most one event may cost, in micro-units.
pub const MAX_COST_MICROS: i64 = 1_000_000_000;

/// Largest database file: 128 GiB, about 500 million events of the
/// standard workload (BENCHMARKS.md). Past it, writes are refused as "the
/// disk is full" (a 507 that names it); nothing stored is lost.
pub const MAX_DATABASE_BYTES: i64 = 128 << 30;

/// The fewest bytes of the database file one stored event takes.
pub const MIN_BYTES_PER_EVENT: i64 = 64;

/// `PRAGMA max_page_count` for a database of `page_size` bytes a page.
pub fn max_page_count(page_size: i64) -> i64 {
    MAX_DATABASE_BYTES / page_size.max(512)
}

/// Why a metric value may not be stored, if it may not.
pub fn check_tokens(value: i64) -> Result<i64, String> {
    if value < 0 {
        Err("must not be negative".into())
    } else if value > MAX_TOKENS {
        Err(format!(
            "must be at most {MAX_TOKENS} (one event's maximum)"
        ))
    } else {
        Ok(value)
    }
}

/// Most web search requests one event may report: far more than one call
/// makes (a metric point summing a busy minute still fits).
pub const MAX_WEB_SEARCHES: i64 = 1_000_000;

/// Why a web search count may not be stored, if it may not.
pub fn check_web_searches(value: i64) -> Result<i64, String> {
    if value < 0 {
        Err("must not be negative".into())
    } else if value > MAX_WEB_SEARCHES {
        Err(format!(
            "must be at most {MAX_WEB_SEARCHES} (one event's maximum)"
        ))
    } else {
        Ok(value)
    }
}

/// Why a cost may not be stored, if it may not.
pub fn check_cost(micros: i64) -> Result<i64, String> {
    if micros < 0 {
        Err("must not be negative".into())
    } else if micros > MAX_COST_MICROS {
        Err(format!(
            "must be at most {} (one event's maximum)",
            MAX_COST_MICROS / 1_000_000
        ))
    } else {
        Ok(micros)
    }
}

/// The largest sum of one metric that events within the limits can reach
/// (2⁶¹); a rollup cell above it was not made by them.
pub const MAX_REACHABLE_SUM: i64 = 1 << 61;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_worst_reachable_sum_fits_with_room_for_every_expression() {
        let max_events = MAX_DATABASE_BYTES / MIN_BYTES_PER_EVENT;
        let worst = i128::from(max_events) * i128::from(MAX_TOKENS.max(MAX_COST_MICROS));
        // Four token kinds added, or days − prefix + prefix: 4× the sum.
        assert!(worst * 4 < i128::from(i64::MAX), "{worst}");
    }
}
