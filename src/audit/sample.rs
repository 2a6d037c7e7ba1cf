//! Refused anonymous requests are counted, not each written: without it one
//! client could append a thousand chained rows a second (a wrong token, a
//! bad setup link, a throttled sign-in), kept forever.
//!
//! The rule: per (client address, action, status) and window of
//! [`WINDOW_MS`], the first refusal is written at once; the rest of the
//! window are counted. Their count is carried by the first row of the next
//! window of the same key, or written in a row of its own when the window
//! closes without one (the periodic sweep, eviction, shutdown). Every such
//! row has `"sampled": true` and `"count"`: the refusals it stands for
//! (itself included when it is a window's first), with `"first_at_ms"` of
//! the earliest when that is more than one. The sum of `count` over the
//! rows is every refusal.
//!
//! What is never sampled: anything a signed-in user or a token holder does,
//! every success, failed sign-ins against an existing account (the handler
//! marks them, [`super::Note::always_recorded`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde_json::Value;

use super::{Action, Entry};

/// The window of one key.
pub const WINDOW_MS: i64 = 60_000;
/// Keys kept at most (one per address and action, in practice); beyond
/// it, closed windows are written and forgotten first, then the oldest.
pub const MAX_TRACKED: usize = 10_000;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    client: Option<String>,
    action: Action,
    status: u16,
}

#[derive(Debug)]
struct Window {
    started_ms: i64,
    /// Refusals counted since the last row, the first's time, and the
    /// last of them (its route and user agent make the closing row).
    unwritten: u64,
    first_unwritten_ms: i64,
    last: Option<Entry>,
}

impl Window {
    fn new(started_ms: i64) -> Window {
        Window {
            started_ms,
            unwritten: 0,
            first_unwritten_ms: started_ms,
            last: None,
        }
    }

    /// The row for the refusals counted and not yet written, if any.
    fn take_row(&mut self) -> Option<Entry> {
        let count = std::mem::take(&mut self.unwritten);
        let entry = self.last.take()?;
        (count > 0).then(|| with_count(entry, count, self.first_unwritten_ms))
    }
}

fn with_count(mut entry: Entry, count: u64, first_at_ms: i64) -> Entry {
    if let Value::Object(map) = &mut entry.details {
        map.insert("sampled".into(), true.into());
        map.insert("count".into(), count.into());
        if count > 1 {
            map.insert("first_at_ms".into(), first_at_ms.into());
        }
    }
    entry
}

/// The windows of refused anonymous requests; cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Refusals {
    windows: Arc<Mutex<HashMap<Key, Window>>>,
}

impl Refusals {
    /// Takes a refused anonymous request's entry; returns the rows to
    /// write now (none when it is only counted).
    pub fn admit(&self, entry: Entry) -> Vec<Entry> {
        let Ok(mut windows) = self.windows.lock() else {
            return vec![entry];
        };
        let now = entry.at_ms;
        let key = Key {
            client: entry.client_addr.clone(),
            action: entry.action,
            status: entry
                .details
                .get("status")
                .and_then(Value::as_u64)
                .and_then(|s| u16::try_from(s).ok())
                .unwrap_or(0),
        };
        let mut rows = Vec::new();
        match windows.get_mut(&key) {
            Some(window) if now - window.started_ms < WINDOW_MS => {
                if window.unwritten == 0 {
                    window.first_unwritten_ms = now;
                }
                window.unwritten += 1;
                window.last = Some(entry);
            }
            Some(window) => {
                // A new window: its first row carries the last one's count.
                let carried = window.unwritten;
                let since = if carried > 0 {
                    window.first_unwritten_ms
                } else {
                    now
                };
                *window = Window::new(now);
                rows.push(with_count(entry, carried + 1, since));
            }
            None => {
                if windows.len() >= MAX_TRACKED {
                    rows.extend(make_room(&mut windows, now));
                }
                windows.insert(key, Window::new(now));
                rows.push(with_count(entry, 1, now));
            }
        }
        rows
    }

    /// Rows for the windows closed by `now_ms` with refusals still
    /// unwritten; those windows are forgotten.
    pub fn closed(&self, now_ms: i64) -> Vec<Entry> {
        let Ok(mut windows) = self.windows.lock() else {
            return Vec::new();
        };
        close(&mut windows, now_ms)
    }

    /// Rows for every count not yet written (shutdown); forgets all.
    pub fn drain(&self) -> Vec<Entry> {
        let Ok(mut windows) = self.windows.lock() else {
            return Vec::new();
        };
        let mut rows: Vec<Entry> = windows
            .drain()
            .filter_map(|(_, mut window)| window.take_row())
            .collect();
        rows.sort_by_key(|e| e.at_ms);
        rows
    }

    /// Keys tracked now (tests).
    pub fn tracked(&self) -> usize {
        self.windows.lock().map(|w| w.len()).unwrap_or(0)
    }
}

fn close(windows: &mut HashMap<Key, Window>, now_ms: i64) -> Vec<Entry> {
    let mut rows = Vec::new();
    windows.retain(|_, window| {
        if now_ms - window.started_ms < WINDOW_MS {
            return true;
        }
        rows.extend(window.take_row());
        false
    });
    rows.sort_by_key(|e| e.at_ms);
    rows
}

/// Frees a slot: closed windows go first; if none, the oldest window.
fn make_room(windows: &mut HashMap<Key, Window>, now_ms: i64) -> Vec<Entry> {
    let rows = close(windows, now_ms);
    if windows.len() < MAX_TRACKED {
        return rows;
    }
    let oldest = windows
        .iter()
        .min_by_key(|(_, w)| w.started_ms)
        .map(|(k, _)| k.clone());
    let mut rows = rows;
    if let Some(mut window) = oldest.and_then(|k| windows.remove(&k)) {
        rows.extend(window.take_row());
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::{Actor, Outcome};

    fn refusal(at_ms: i64, client: &str) -> Entry {
        Entry {
            client_addr: Some(client.into()),
            details: serde_json::json!({"status": 401}),
            ..Entry::new(
                at_ms,
                Actor::Anonymous,
                Action::AccessDenied,
                Outcome::Denied,
            )
        }
    }

    fn count(rows: &[Entry]) -> u64 {
        rows.iter()
            .map(|e| e.details["count"].as_u64().expect("count"))
            .sum()
    }

    #[test]
    fn one_row_per_window_and_no_refusal_lost() {
        let refusals = Refusals::default();
        let mut rows = Vec::new();
        for i in 0..1000 {
            rows.extend(refusals.admit(refusal(i * 100, "10.0.0.1")));
        }
        // 100 s: two windows opened, the second carrying the first's rest.
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[1].details["count"], 600);
        rows.extend(refusals.closed(200_000));
        assert_eq!(count(&rows), 1000);
        assert_eq!(refusals.tracked(), 0);
        assert!(refusals.drain().is_empty());
    }

    #[test]
    fn the_tracked_keys_are_bounded_and_eviction_writes_the_count() {
        let refusals = Refusals::default();
        let mut rows = Vec::new();
        for round in 0..2 {
            for i in 0..MAX_TRACKED {
                rows.extend(refusals.admit(refusal(i as i64 + round, &format!("a{i}"))));
            }
        }
        let extra = refusals.admit(refusal(50, "newcomer"));
        assert_eq!(refusals.tracked(), MAX_TRACKED);
        assert_eq!(
            extra.len(),
            2,
            "the evicted window's count, then the newcomer"
        );
        rows.extend(extra);
        rows.extend(refusals.drain());
        assert_eq!(count(&rows), 2 * MAX_TRACKED as u64 + 1);
    }
}
