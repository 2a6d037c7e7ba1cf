//! The dashboard in a real browser: time from navigation start to the
//! overview's chart drawn (12 months by day, everyone's usage) in Debian's
//! headless Chromium, and the page's weight on the wire. Against the real
//! server on a copy of a benchmark database (10M events for the figures in
//! BENCHMARKS.md).
//!
//! Cold loads run with the browser cache off (every asset fetched, as on a
//! first visit), then again with `Accept-Encoding: identity` (what gzip
//! saves and costs, in the same run); warm loads with the cache on (assets
//! from the cache, as on every later visit). "Drawn" is uPlot's first `draw` hook, marked by `ui/app.js`
//! as `tokentally:chart-drawn`; "weight" is what crossed the network
//! (`transferSize`: headers and compressed bodies) for the page and every
//! asset it loaded.
//!
//! Usage: `cargo bench --bench dashboard -- BINARY SOURCE_DB [LOADS]`
//! (`just bench` runs it). Needs chromium and chromium-driver.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

#[allow(dead_code)] // the tests use more of it
#[path = "../tests/it/common/browser.rs"]
mod browser;
mod support;

use browser::Browser;
use support::{cli, start_with};

const PASSWORD: &str = "a long enough password";
const VIEW: &str = "/?range=12m&bucket=day";

fn main() {
    let mut args = std::env::args().skip(1).filter(|a| a != "--bench");
    let usage = "usage: dashboard BINARY SOURCE_DB [LOADS]";
    let binary = PathBuf::from(args.next().expect(usage));
    let source = PathBuf::from(args.next().expect(usage));
    let loads: usize = args.next().and_then(|n| n.parse().ok()).unwrap_or(15);
    if !browser::available() {
        return;
    }

    let work = tempfile::tempdir_in(source.parent().unwrap_or(Path::new("."))).expect("tempdir");
    support::copy_database(&source, work.path());
    cli(
        &binary,
        work.path(),
        &[
            "user",
            "add",
            "viewer",
            "--role",
            "admin",
            "--password-stdin",
        ],
        Some(&format!("{PASSWORD}\n")),
    );
    let (mut server, base) = start_with(&binary, work.path(), &[]);

    let browser = Browser::start();
    browser.goto(&format!("{base}/login"));
    browser.type_into("#username", "viewer");
    browser.type_into("#password", PASSWORD);
    browser.click("form[action='/login'] button[type=submit]");
    browser.wait_for("return !location.pathname.startsWith('/login')");

    browser.cdp("Network.enable", json!({}));
    browser.cdp("Network.setCacheDisabled", json!({"cacheDisabled": true}));
    let cold: Vec<Load> = (0..loads).map(|_| load(&browser, &base)).collect();
    // The same cold loads from a browser that refuses compression: what
    // gzip saves and costs, side by side in this run.
    browser.cdp(
        "Network.setExtraHTTPHeaders",
        json!({"headers": {"Accept-Encoding": "identity"}}),
    );
    let identity: Vec<Load> = (0..loads).map(|_| load(&browser, &base)).collect();
    browser.cdp("Network.setExtraHTTPHeaders", json!({"headers": {}}));
    browser.cdp("Network.setCacheDisabled", json!({"cacheDisabled": false}));
    load(&browser, &base); // fills the cache
    let warm: Vec<Load> = (0..loads).map(|_| load(&browser, &base)).collect();

    let _ = std::process::Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status();
    let _ = server.wait();

    let first = &cold[0];
    println!("overview {VIEW}, {loads} loads each, {}", source.display());
    println!("page: {} buckets, {} series", first.buckets, first.series);
    println!();
    println!("| load | server answer (TTFB) | DOM ready | chart drawn | weight on the wire |");
    println!("| --- | ---: | ---: | ---: | ---: |");
    for (name, runs) in [
        ("cold (cache off)", &cold),
        ("cold, compression refused", &identity),
        ("warm (assets cached)", &warm),
    ] {
        println!(
            "| {name} | {:.0} ms | {:.0} ms | {:.0} ms (p90 {:.0}) | {:.1} KB |",
            median(runs, |l| l.ttfb),
            median(runs, |l| l.dom_ready),
            median(runs, |l| l.drawn),
            percentile(runs, 0.9, |l| l.drawn),
            median(runs, |l| l.weight) / 1000.0
        );
    }
    println!();
    println!("cold load, per resource (bytes on the wire / decoded):");
    for (name, transferred, decoded) in &first.resources {
        println!("  {name}: {transferred} / {decoded}");
    }
}

/// What one page load measured, in ms and bytes.
struct Load {
    ttfb: f64,
    dom_ready: f64,
    drawn: f64,
    weight: f64,
    buckets: u64,
    series: u64,
    resources: Vec<(String, u64, u64)>,
}

fn load(browser: &Browser, base: &str) -> Load {
    browser.goto(&format!("{base}{VIEW}"));
    browser.wait_for(
        "return performance.getEntriesByName('tokentally:chart-drawn').length > 0 \
         && document.readyState === 'complete'",
    );
    let measured = browser.script(
        "const nav = performance.getEntriesByType('navigation')[0];
         const drawn = performance.getEntriesByName('tokentally:chart-drawn')[0];
         const assets = performance.getEntriesByType('resource');
         const data = JSON.parse(document.querySelector('script[type=\"application/json\"]').textContent);
         return {
           ttfb: nav.responseStart, dom_ready: nav.domContentLoadedEventEnd,
           drawn: drawn.startTime,
           weight: nav.transferSize + assets.reduce((sum, r) => sum + r.transferSize, 0),
           buckets: data.labels.length, series: data.series.length,
           resources: [[location.pathname + location.search, nav.transferSize, nav.decodedBodySize]]
             .concat(assets.map(r => [new URL(r.name).pathname, r.transferSize, r.decodedBodySize])),
         };",
        json!([]),
    );
    let number = |key: &str| measured[key].as_f64().unwrap_or(f64::NAN);
    let resources = measured["resources"]
        .as_array()
        .map(|all| all.iter().map(resource).collect())
        .unwrap_or_default();
    Load {
        ttfb: number("ttfb"),
        dom_ready: number("dom_ready"),
        drawn: number("drawn"),
        weight: number("weight"),
        buckets: measured["buckets"].as_u64().unwrap_or(0),
        series: measured["series"].as_u64().unwrap_or(0),
        resources,
    }
}

fn resource(entry: &Value) -> (String, u64, u64) {
    (
        entry[0].as_str().unwrap_or("?").to_owned(),
        entry[1].as_u64().unwrap_or(0),
        entry[2].as_u64().unwrap_or(0),
    )
}

fn percentile(runs: &[Load], q: f64, value: impl Fn(&Load) -> f64) -> f64 {
    let mut values: Vec<f64> = runs.iter().map(value).collect();
    values.sort_by(f64::total_cmp);
    let rank = ((values.len() as f64 - 1.0) * q).round() as usize;
    values.get(rank).copied().unwrap_or(f64::NAN)
}

fn median(runs: &[Load], value: impl Fn(&Load) -> f64) -> f64 {
    percentile(runs, 0.5, value)
}
