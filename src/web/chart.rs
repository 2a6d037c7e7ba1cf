//! A stacked bar chart as a progressive enhancement: a `figure` whose
//! caption names it, a data table that is always in the page (and is what
//! a screen reader or a browser without JavaScript gets), and the same
//! numbers as a JSON data block that `ui/app.js` draws with uPlot.

use maud::{Markup, PreEscaped, html};
use serde::Serialize;

use super::format;
use super::url::UrlState;
use crate::model::{Totals, Unit};
use crate::usage::query::{NONE_LABEL, Rank, Series};

/// Series shown by name; the rest are summed as one "Other" series.
pub const MAX_SERIES: usize = 8;
/// Colours in `ui/app.js`'s palette (and the `.s0`… classes of the CSS).
const PALETTE_SIZE: usize = 9;

/// What the bars measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    Tokens,
    Cost,
}

impl Metric {
    pub fn parse(value: Option<&str>) -> Metric {
        match value {
            Some("cost") => Metric::Cost,
            _ => Metric::Tokens,
        }
    }

    pub fn code(self) -> &'static str {
        match self {
            Metric::Tokens => "tokens",
            Metric::Cost => "cost",
        }
    }

    /// What ranks the groups of a chart of this metric.
    pub fn rank(self) -> Rank {
        match self {
            Metric::Tokens => Rank::Tokens,
            Metric::Cost => Rank::Cost,
        }
    }

    fn value(self, totals: &Totals) -> i64 {
        match self {
            Metric::Tokens => totals.all_tokens(),
            Metric::Cost => totals.cost_micros,
        }
    }

    fn text(self, value: i64, unit: &Unit) -> String {
        match self {
            Metric::Tokens => format::tokens(value),
            Metric::Cost => unit.money(value),
        }
    }

    /// A bar's height as the script draws it and its axis reads it: cost
    /// in micro-units of the instance's unit, so the axis ticks fall on
    /// round amounts of that unit (the texts are exact; see `text`).
    fn drawn(self, value: i64, unit: &Unit) -> i64 {
        match self {
            Metric::Tokens => value,
            Metric::Cost => unit.chart_value(value),
        }
    }
}

/// How the script writes an amount on the cost axis: `prefix`, the
/// number, `suffix` (`€12.00`, `1,200.00 credits`).
#[derive(Serialize)]
struct MoneyAffixes {
    prefix: String,
    suffix: String,
}

#[derive(Serialize)]
struct ChartData<'a> {
    id: &'a str,
    metric: &'static str,
    /// Bucket labels, their start and end (ms), for the x axis and links.
    labels: Vec<&'a str>,
    starts: Vec<i64>,
    ends: Vec<i64>,
    series: Vec<ChartSeries>,
    /// Per bucket, the other dimension's breakdown: [(name, text)].
    breakdown: Vec<Vec<(String, String)>>,
    breakdown_title: &'a str,
    /// Values formatted for people, per series per bucket.
    texts: Vec<Vec<String>>,
    /// The events page for a bucket and series: `{from}`, `{to}` and
    /// `{series}` are filled in by the script.
    events_href: String,
    filter: &'a str,
    money: MoneyAffixes,
}

#[derive(Serialize)]
struct ChartSeries {
    name: String,
    values: Vec<i64>,
    /// Whether clicking this series can filter the events by it.
    filterable: bool,
}

/// One chart: its series split by `filter` (the dimension's URL name:
/// `model`, `activity`, `user`), with `other` (the other dimension's
/// series, for the hover breakdown).
pub struct Chart<'a> {
    pub id: &'a str,
    pub caption: &'a str,
    pub series: &'a Series,
    pub breakdown: Option<(&'a str, &'a Series)>,
    pub metric: Metric,
    pub filter: &'a str,
    pub url: &'a UrlState,
    /// The unit money is shown in.
    pub unit: &'a Unit,
}

/// The name of the series, row or entry that sums `groups` left out.
pub fn other_label(groups: usize) -> String {
    format!("Other ({} more)", format::integer(groups as i64))
}

/// The groupings the events page can filter by (`/events?model=…`); a
/// series of another (a team) opens the bucket's events unfiltered.
const EVENTS_FILTERS: [&str; 5] = ["user", "model", "activity", "project", "source"];

/// Keeps the largest groups and sums the rest (with the series' own
/// [`Series::other`]) as one "Other" series.
fn fold_series(series: &Series, filter: &str) -> Vec<(String, Vec<Totals>, bool)> {
    let filters_events = EVENTS_FILTERS.contains(&filter);
    let mut out: Vec<(String, Vec<Totals>, bool)> = Vec::new();
    let mut other: Option<(usize, Vec<Totals>)> =
        series.other.as_ref().map(|o| (o.groups, o.cells.clone()));
    for (index, group) in series.groups.iter().enumerate() {
        let column: Vec<Totals> = series.cells.iter().map(|row| row[index].clone()).collect();
        if index < MAX_SERIES {
            let name = group.clone().unwrap_or_else(|| "all".to_owned());
            let filterable = filters_events && group.as_deref().is_some_and(|g| g != NONE_LABEL);
            out.push((name, column, filterable));
        } else {
            let (groups, sum) =
                other.get_or_insert_with(|| (0, vec![Totals::default(); column.len()]));
            *groups += 1;
            for (total, cell) in sum.iter_mut().zip(&column) {
                // A part of the query's total, which was summed checked:
                // it cannot overflow where the whole did not.
                let _ = total.checked_add(cell);
            }
        }
    }
    if let Some((groups, cells)) = other {
        out.push((other_label(groups), cells, false));
    }
    out
}

fn breakdown_rows(series: &Series, metric: Metric, unit: &Unit) -> Vec<Vec<(String, String)>> {
    series
        .cells
        .iter()
        .enumerate()
        .map(|(index, row)| {
            let other = series
                .other
                .as_ref()
                .map(|o| (other_label(o.groups), metric.value(&o.cells[index])));
            let mut cells: Vec<(String, i64)> = series
                .groups
                .iter()
                .zip(row)
                .map(|(g, t)| (g.clone().unwrap_or_default(), metric.value(t)))
                .chain(other)
                .filter(|(_, v)| *v != 0)
                .collect();
            cells.sort_by_key(|cell| std::cmp::Reverse(cell.1));
            cells.truncate(6);
            cells
                .into_iter()
                .map(|(name, value)| (name, metric.text(value, unit)))
                .collect()
        })
        .collect()
}

pub fn render(chart: &Chart<'_>) -> Markup {
    let folded = fold_series(chart.series, chart.filter);
    let (metric, unit) = (chart.metric, chart.unit);
    let values: Vec<Vec<i64>> = folded
        .iter()
        .map(|(_, column, _)| column.iter().map(|t| metric.value(t)).collect())
        .collect();
    let texts: Vec<Vec<String>> = values
        .iter()
        .map(|column| column.iter().map(|v| metric.text(*v, unit)).collect())
        .collect();
    let events_href = chart
        .url
        .only(&[
            "view", "zone", "user", "model", "activity", "project", "source",
        ])
        .with(&[("range", Some("custom"))])
        .href("/events");
    let data = ChartData {
        id: chart.id,
        metric: metric.code(),
        labels: chart
            .series
            .buckets
            .iter()
            .map(|b| b.label.as_str())
            .collect(),
        starts: chart.series.buckets.iter().map(|b| b.start_ms).collect(),
        ends: chart.series.buckets.iter().map(|b| b.end_ms).collect(),
        series: folded
            .iter()
            .zip(&values)
            .map(|((name, _, filterable), values)| ChartSeries {
                name: name.clone(),
                values: values.iter().map(|v| metric.drawn(*v, unit)).collect(),
                filterable: *filterable,
            })
            .collect(),
        breakdown: chart
            .breakdown
            .map(|(_, series)| breakdown_rows(series, metric, unit))
            .unwrap_or_default(),
        breakdown_title: chart.breakdown.map_or("", |(title, _)| title),
        texts,
        events_href,
        filter: chart.filter,
        money: MoneyAffixes {
            prefix: unit.prefix(),
            suffix: unit.suffix(),
        },
    };
    // JSON in a data block is not executed, so the strict CSP allows it.
    // `<`, `>` and `&` become JSON escapes, so no name can close the
    // element or open another one inside it.
    let json = serde_json::to_string(&data)
        .unwrap_or_else(|_| "{}".to_owned())
        .replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026");
    let table_id = format!("{}-table", chart.id);
    html! {
        figure.chart-figure aria-labelledby={ (chart.id) "-caption" } {
            figcaption #{ (chart.id) "-caption" } { (chart.caption) }
            ul.legend aria-label="Series" {
                @for (index, (name, _, _)) in folded.iter().enumerate() {
                    li { span class={ "swatch s" (index % PALETTE_SIZE) } aria-hidden="true" {} (name) }
                }
            }
            div.chart id=(chart.id) data-chart=(chart.id) hidden {}
            p.chart-help.js-only hidden { "Arrow keys move between bars; Enter opens the events of the bar." }
            div.chart-live.visually-hidden aria-live="polite" id={ (chart.id) "-live" } {}
            script type="application/json" id={ (chart.id) "-data" } { (PreEscaped(json)) }
            details.chart-table open[chart.series.buckets.len() <= 14] {
                summary { "Table of this chart" }
                div.table-scroll {
                    table id=(table_id) {
                        caption.visually-hidden { (chart.caption) }
                        thead { tr {
                            th scope="col" { "Period" }
                            @for (name, _, _) in &folded { th.num scope="col" { (name) } }
                            th.num scope="col" { "Total" }
                        } }
                        tbody {
                            @for (row, bucket) in chart.series.buckets.iter().enumerate() {
                                tr {
                                    th scope="row" { (bucket.label) }
                                    @for column in &values { td.num { (metric.text(column[row], unit)) } }
                                    // Summed in USD micro-units, converted once.
                                    td.num { (metric.text(values.iter().map(|c| c[row]).sum(), unit)) }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}
