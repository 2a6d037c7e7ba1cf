//! Sums of usage: the eight numbers every rollup cell, query and report
//! adds up, with arithmetic that fails rather than wraps.

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Totals {
    pub calls: i64,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cache_read_tokens: i64,
    pub cache_write_tokens: i64,
    pub cost_micros: i64,
    /// Calls with no known price; their cost is not in `cost_micros`.
    pub unpriced_calls: i64,
    /// The part of `cost_micros` that producers reported (OTel, LiteLLM,
    /// transcripts' `costUSD`); the rest was computed from prices.
    pub reported_cost_micros: i64,
}

/// A sum that left the range of a 64-bit integer: impossible for data
/// within [`limits`], so it means a database written without them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a total is out of range (run `tokentally verify`)")]
pub struct Overflow;

impl Totals {
    /// Adds `other` field by field; fails rather than wrap.
    pub fn checked_add(&mut self, other: &Totals) -> Result<(), Overflow> {
        self.checked_add_signed(other, 1)
    }

    /// Adds `other` times `sign` (+1 or -1); fails rather than wrap.
    pub fn checked_add_signed(&mut self, other: &Totals, sign: i64) -> Result<(), Overflow> {
        let mut sum = self.clone();
        for (into, from) in sum.fields_mut().into_iter().zip(other.fields()) {
            *into = from
                .checked_mul(sign)
                .and_then(|change| into.checked_add(change))
                .ok_or(Overflow)?;
        }
        *self = sum;
        Ok(())
    }

    fn fields(&self) -> [i64; 8] {
        [
            self.calls,
            self.input_tokens,
            self.output_tokens,
            self.cache_read_tokens,
            self.cache_write_tokens,
            self.cost_micros,
            self.unpriced_calls,
            self.reported_cost_micros,
        ]
    }

    fn fields_mut(&mut self) -> [&mut i64; 8] {
        [
            &mut self.calls,
            &mut self.input_tokens,
            &mut self.output_tokens,
            &mut self.cache_read_tokens,
            &mut self.cache_write_tokens,
            &mut self.cost_micros,
            &mut self.unpriced_calls,
            &mut self.reported_cost_micros,
        ]
    }

    /// The part of `cost_micros` computed from prices: all of it but what
    /// producers reported (both sums of the same events, so it is at least
    /// zero in any database `verify` passes).
    pub fn computed_cost_micros(&self) -> i64 {
        self.cost_micros.saturating_sub(self.reported_cost_micros)
    }

    /// All four token kinds. Each is at most 2⁶¹ ([`super::limits`]), so the sum
    /// fits; saturating keeps an old, unrepaired database from wrapping.
    pub fn all_tokens(&self) -> i64 {
        self.input_tokens
            .saturating_add(self.output_tokens)
            .saturating_add(self.cache_read_tokens)
            .saturating_add(self.cache_write_tokens)
    }

    /// Reads eight metric columns starting at `first`, in [`Totals`] order.
    pub(crate) fn from_row(row: &rusqlite::Row<'_>, first: usize) -> rusqlite::Result<Totals> {
        Ok(Totals {
            calls: row.get(first)?,
            input_tokens: row.get(first + 1)?,
            output_tokens: row.get(first + 2)?,
            cache_read_tokens: row.get(first + 3)?,
            cache_write_tokens: row.get(first + 4)?,
            cost_micros: row.get(first + 5)?,
            unpriced_calls: row.get(first + 6)?,
            reported_cost_micros: row.get(first + 7)?,
        })
    }
}
