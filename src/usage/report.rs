//! The report of `tokentally report`: a series as JSON (a stable shape that
//! scripts rely on) or as a terminal table.
//!
//! Money is in two fields: `cost`, the stored amount in USD (what it
//! always was: scripts keep reading it, whatever the unit), and
//! `cost_in_unit`, the same converted to the instance's unit (`unit`),
//! rounded once (`model::unit`).

use serde::Serialize;

use super::Totals;
use super::query::Series;
use crate::model::Unit;
use crate::model::format::{self, decimal};

/// One cell of the report. Field names are part of the product.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReportRow {
    /// The bucket, named by its local start (`2026-03-08`, `2026-W10`,
    /// `2026-03`, `2026-03-08T14`).
    pub bucket: String,
    /// The group's name, or null when the report is not grouped.
    pub group: Option<String>,
    #[serde(flatten)]
    pub amounts: ReportAmounts,
    /// The bucket's local start with its UTC offset (RFC 3339).
    pub start: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReportAmounts {
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cache_read_tokens: i64,
    pub cache_write_tokens: i64,
    /// A decimal string in USD (the stored amount), or null when every
    /// event in it is unpriced.
    pub cost: Option<String>,
    /// The same in the instance's unit (`unit`), six decimals, rounded
    /// once from the exact amount; null when `cost` is.
    pub cost_in_unit: Option<String>,
    pub events: i64,
    /// Events with no known price, whose cost is not in `cost`.
    pub unpriced_events: i64,
    /// Of `cost`, what producers reported (USD); null when `cost` is.
    pub reported_cost: Option<String>,
    /// Of `cost`, what was computed from prices (admins' or the
    /// catalogue's; USD); null when `cost` is.
    pub computed_cost: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    pub rows: Vec<ReportRow>,
    pub totals: ReportAmounts,
    /// Whether groups were left out of `rows` (they are summed in `other`).
    pub truncated: bool,
    /// How many groups had usage in the range, shown or not; null when the
    /// report is not grouped.
    pub groups_total: Option<usize>,
    /// The groups left out of `rows`, summed; null when none were.
    pub other: Option<ReportOther>,
    /// What `cost_in_unit` is in.
    pub unit: Unit,
}

/// The groups a grouped report left out: `rows` plus `other` add up to
/// `totals`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReportOther {
    /// How many groups it sums.
    pub groups: usize,
    pub totals: ReportAmounts,
    /// Their sum per bucket (non-empty buckets only).
    pub rows: Vec<ReportOtherRow>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReportOtherRow {
    pub bucket: String,
    #[serde(flatten)]
    pub amounts: ReportAmounts,
    pub start: String,
}

impl ReportAmounts {
    pub fn from_totals(totals: &Totals, unit: &Unit) -> ReportAmounts {
        let all_unpriced = totals.calls > 0 && totals.unpriced_calls == totals.calls;
        ReportAmounts {
            input_tokens: totals.input_tokens,
            output_tokens: totals.output_tokens,
            cache_read_tokens: totals.cache_read_tokens,
            cache_write_tokens: totals.cache_write_tokens,
            cost: (!all_unpriced).then(|| decimal(totals.cost_micros)),
            cost_in_unit: (!all_unpriced).then(|| unit.decimal(totals.cost_micros)),
            events: totals.calls,
            unpriced_events: totals.unpriced_calls,
            reported_cost: (!all_unpriced).then(|| decimal(totals.reported_cost_micros)),
            computed_cost: (!all_unpriced).then(|| decimal(totals.computed_cost_micros())),
        }
    }
}

impl Report {
    /// Every bucket of an ungrouped series (empty ones too, so a chart's
    /// axis has no holes); only non-empty cells of a grouped one.
    pub fn from_series(series: &Series, unit: &Unit) -> Report {
        let grouped = series.groups.iter().any(Option::is_some);
        let mut rows = Vec::new();
        for (bucket, cells) in series.buckets.iter().zip(&series.cells) {
            for (group, cell) in series.groups.iter().zip(cells) {
                if grouped && cell.calls == 0 {
                    continue;
                }
                rows.push(ReportRow {
                    bucket: bucket.label.clone(),
                    group: group.clone(),
                    amounts: ReportAmounts::from_totals(cell, unit),
                    start: bucket.start_local.clone(),
                });
            }
        }
        let other = series.other.as_ref().map(|other| ReportOther {
            groups: other.groups,
            totals: ReportAmounts::from_totals(&other.totals, unit),
            rows: series
                .buckets
                .iter()
                .zip(&other.cells)
                .filter(|(_, cell)| cell.calls != 0)
                .map(|(bucket, cell)| ReportOtherRow {
                    bucket: bucket.label.clone(),
                    amounts: ReportAmounts::from_totals(cell, unit),
                    start: bucket.start_local.clone(),
                })
                .collect(),
        });
        Report {
            rows,
            totals: ReportAmounts::from_totals(&series.totals, unit),
            truncated: other.is_some(),
            groups_total: grouped.then(|| series.groups_total()),
            other,
            unit: unit.clone(),
        }
    }

    /// A plain-text table, one line per row and a total line; the cost
    /// in the instance's unit, named in its header.
    pub fn to_table(&self) -> String {
        let cost = format!("COST ({})", self.unit.name());
        let header = [
            "BUCKET",
            "GROUP",
            "INPUT",
            "OUTPUT",
            "CACHE READ",
            "CACHE WRITE",
            cost.as_str(),
            "EVENTS",
        ];
        let cells = |bucket: &str, group: &str, a: &ReportAmounts| {
            [
                bucket.to_owned(),
                group.to_owned(),
                format::integer(a.input_tokens),
                format::integer(a.output_tokens),
                format::integer(a.cache_read_tokens),
                format::integer(a.cache_write_tokens),
                a.cost_in_unit
                    .clone()
                    .unwrap_or_else(|| "unpriced".to_owned()),
                format::integer(a.events),
            ]
        };
        let mut lines: Vec<[String; 8]> = vec![header.map(str::to_owned)];
        for row in &self.rows {
            lines.push(cells(
                &row.bucket,
                row.group.as_deref().unwrap_or("-"),
                &row.amounts,
            ));
        }
        if let Some(other) = &self.other {
            let name = format!("other ({} more groups)", other.groups);
            for row in &other.rows {
                lines.push(cells(&row.bucket, &name, &row.amounts));
            }
        }
        lines.push(cells("TOTAL", "", &self.totals));
        let widths: Vec<usize> = (0..8)
            .map(|i| {
                lines
                    .iter()
                    .map(|l| l[i].chars().count())
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let mut out = String::new();
        for line in &lines {
            let mut text = String::new();
            for (i, cell) in line.iter().enumerate() {
                let width = widths[i];
                if i < 2 {
                    text.push_str(&format!("{cell:<width$}  "));
                } else {
                    text.push_str(&format!("{cell:>width$}  "));
                }
            }
            out.push_str(text.trim_end());
            out.push('\n');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals() {
        assert_eq!(decimal(12_345_678), "12.345678");
        assert_eq!(decimal(5), "0.000005");
        assert_eq!(decimal(-1_500_000), "-1.500000");
    }
}
