//! What a call costs: its usage at a set of rates, in exact integer
//! arithmetic rounded once.
//!
//! [`Rates`] carries every component a price list states (input, output,
//! cache reads, 5-minute and 1-hour cache writes, a long-context tier, web
//! search per request) and [`Usage`] every count a bill depends on. Events
//! carry the four token counts and their [`Extras`] (the 1-hour share of
//! cache writes, web searches, whether the event is one request), and
//! [`Usage::of_event`] is the one way ingest, import and every re-pricing
//! turn them into a usage, so a re-price gives what ingest gave.

/// Micro-units per million tokens, per token kind, for one tier.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct TokenRates {
    pub input: i64,
    pub output: i64,
    pub cache_read: i64,
    /// 5-minute cache writes (and writes of providers with one lifetime).
    pub cache_write: i64,
    /// 1-hour cache writes.
    pub cache_write_1h: i64,
}

impl TokenRates {
    /// Every rate, in the order input, output, cache read, cache write,
    /// 1-hour cache write.
    pub fn all(&self) -> [i64; 5] {
        [
            self.input,
            self.output,
            self.cache_read,
            self.cache_write,
            self.cache_write_1h,
        ]
    }
}

/// The long-context tier: a request whose prompt (input, cache reads and
/// cache writes together) has more than `above_tokens` tokens is priced
/// wholly at `rates`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Tier {
    pub above_tokens: i64,
    pub rates: TokenRates,
}

/// A price: every component, in micro-units.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Rates {
    pub base: TokenRates,
    pub tier: Option<Tier>,
    /// Per web search request; `None` when the price list names none.
    pub web_search_per_request: Option<i64>,
}

impl Rates {
    /// An admin's price: four rates; a 1-hour write costs what a 5-minute
    /// one does, no tier, no web search price.
    pub fn flat(per_mtok: &[i64; 4]) -> Rates {
        Rates {
            base: TokenRates {
                input: per_mtok[0],
                output: per_mtok[1],
                cache_read: per_mtok[2],
                cache_write: per_mtok[3],
                cache_write_1h: per_mtok[3],
            },
            tier: None,
            web_search_per_request: None,
        }
    }
}

/// What one event used.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Input tokens, without cache reads and writes.
    pub input: i64,
    pub output: i64,
    pub cache_read: i64,
    /// Every cache write, 5-minute and 1-hour.
    pub cache_write: i64,
    /// Of `cache_write`, those written for an hour.
    pub cache_write_1h: i64,
    /// The prompt of the one request the event is (input, cache reads and
    /// writes); `None` when unknown, or when the event sums several
    /// requests: then no tier applies.
    pub prompt_tokens: Option<i64>,
    pub web_search_requests: i64,
}

/// What an event carries for its price beyond the four token counts
/// (stored per event: migration V18).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Extras {
    /// Of the cache writes, those written for one hour.
    pub cache_write_1h: i64,
    pub web_search_requests: i64,
    /// The event is one request (a transcript message, a log record, a
    /// span, a LiteLLM call, an API event), not a sum of several (an OTLP
    /// metric point): only then can a long-context tier apply.
    pub one_request: bool,
}

impl Usage {
    /// An event's usage: its four counts (input, output, cache read, cache
    /// write) and extras; the prompt is input + cache read + cache write
    /// when the event is one request.
    pub fn of_event(tokens: &[i64; 4], extras: &Extras) -> Usage {
        let prompt = tokens[0]
            .checked_add(tokens[2])
            .and_then(|n| n.checked_add(tokens[3]));
        Usage {
            input: tokens[0],
            output: tokens[1],
            cache_read: tokens[2],
            cache_write: tokens[3],
            cache_write_1h: extras.cache_write_1h,
            prompt_tokens: prompt.filter(|_| extras.one_request),
            web_search_requests: extras.web_search_requests,
        }
    }

    /// The four counts every event has: input, output, cache read, cache
    /// write (all of it at the 5-minute rate).
    pub fn from_tokens(tokens: &[i64; 4]) -> Usage {
        Usage {
            input: tokens[0],
            output: tokens[1],
            cache_read: tokens[2],
            cache_write: tokens[3],
            ..Usage::default()
        }
    }
}

/// The cost of `usage` at `rates` in micro-units, rounded once (half up);
/// `None` when a count is negative, the 1-hour writes exceed the writes, or
/// the result does not fit (a caller turns that into its refusal).
pub fn cost_micros(usage: &Usage, rates: &Rates) -> Option<i64> {
    let counts = [
        usage.input,
        usage.output,
        usage.cache_read,
        usage.cache_write,
        usage.cache_write_1h,
        usage.web_search_requests,
    ];
    if counts.iter().any(|n| *n < 0) || usage.cache_write_1h > usage.cache_write {
        return None;
    }
    let rates_now = match (rates.tier, usage.prompt_tokens) {
        (Some(tier), Some(prompt)) if prompt > tier.above_tokens => tier.rates,
        _ => rates.base,
    };
    let tokens = [
        usage.input,
        usage.output,
        usage.cache_read,
        usage.cache_write - usage.cache_write_1h,
        usage.cache_write_1h,
    ];
    // micro-units per million tokens × tokens = 10⁻⁶ micro-units.
    let mut nano: i128 = 0;
    for (rate, count) in rates_now.all().iter().zip(tokens) {
        nano = nano.checked_add(i128::from(*rate).checked_mul(i128::from(count))?)?;
    }
    if usage.web_search_requests > 0 {
        let per_request = i128::from(rates.web_search_per_request.unwrap_or(0));
        let searches = per_request.checked_mul(i128::from(usage.web_search_requests))?;
        nano = nano.checked_add(searches.checked_mul(1_000_000)?)?;
    }
    i64::try_from((nano.checked_add(500_000)?) / 1_000_000).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sonnet() -> Rates {
        // Claude Sonnet 4.5's published prices, per million tokens: $3 in,
        // $15 out, $0.30 cache reads, $3.75 5-minute and $6 1-hour writes;
        // above 200k prompt tokens $6, $22.50, $0.60, $7.50, $12; $10 per
        // thousand web searches.
        Rates {
            base: TokenRates {
                input: 3_000_000,
                output: 15_000_000,
                cache_read: 300_000,
                cache_write: 3_750_000,
                cache_write_1h: 6_000_000,
            },
            tier: Some(Tier {
                above_tokens: 200_000,
                rates: TokenRates {
                    input: 6_000_000,
                    output: 22_500_000,
                    cache_read: 600_000,
                    cache_write: 7_500_000,
                    cache_write_1h: 12_000_000,
                },
            }),
            web_search_per_request: Some(10_000),
        }
    }

    #[test]
    fn the_four_counts_cost_what_the_flat_price_says() {
        let usage = Usage::from_tokens(&[1_000_000, 100_000, 0, 0]);
        assert_eq!(
            cost_micros(&usage, &Rates::flat(&[3_000_000, 15_000_000, 0, 0])),
            Some(4_500_000)
        );
        // 5 tokens at $0.30/M = 1.5 micro-dollars: half up, once.
        let five = Usage::from_tokens(&[5, 0, 0, 0]);
        assert_eq!(
            cost_micros(&five, &Rates::flat(&[300_000, 0, 0, 0])),
            Some(2)
        );
        let one = Usage::from_tokens(&[1, 0, 0, 0]);
        assert_eq!(
            cost_micros(&one, &Rates::flat(&[300_000, 0, 0, 0])),
            Some(0)
        );
    }

    #[test]
    fn one_hour_writes_tiers_and_web_searches_use_their_own_rates() {
        let rates = sonnet();
        let usage = Usage {
            input: 10_000,
            output: 2_000,
            cache_read: 50_000,
            cache_write: 40_000,
            cache_write_1h: 30_000,
            prompt_tokens: Some(100_000),
            web_search_requests: 3,
        };
        // 10k×3 + 2k×15 + 50k×0.3 + 10k×3.75 + 30k×6 (per M) + 3 × $0.01.
        let expected = 30_000 + 30_000 + 15_000 + 37_500 + 180_000 + 30_000;
        assert_eq!(cost_micros(&usage, &rates), Some(expected));
        let long = Usage {
            prompt_tokens: Some(200_001),
            ..usage
        };
        let expected_long = 60_000 + 45_000 + 30_000 + 75_000 + 360_000 + 30_000;
        assert_eq!(cost_micros(&long, &rates), Some(expected_long));
        let at_threshold = Usage {
            prompt_tokens: Some(200_000),
            ..usage
        };
        assert_eq!(cost_micros(&at_threshold, &rates), Some(expected));
        let unknown_prompt = Usage {
            prompt_tokens: None,
            ..usage
        };
        assert_eq!(cost_micros(&unknown_prompt, &rates), Some(expected));
    }

    #[test]
    fn impossible_usage_has_no_cost() {
        let rates = sonnet();
        let more_1h_than_writes = Usage {
            cache_write: 1,
            cache_write_1h: 2,
            ..Usage::default()
        };
        assert_eq!(cost_micros(&more_1h_than_writes, &rates), None);
        let negative = Usage {
            output: -1,
            ..Usage::default()
        };
        assert_eq!(cost_micros(&negative, &rates), None);
        let huge = Rates::flat(&[i64::MAX, 0, 0, 0]);
        assert_eq!(
            cost_micros(&Usage::from_tokens(&[i64::MAX, 0, 0, 0]), &huge),
            None
        );
    }
}
