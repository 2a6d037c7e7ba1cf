//! One entry point per decoder of outside input, for the fuzz targets in
//! `fuzz/` and for `tests/it/fuzz_corpus.rs`, which runs every saved input
//! (corpus and past crashes) through the same functions in `cargo test`.
//! Each must return, whatever the bytes: an error is a fine answer, a
//! panic, a hang or an overflow is a bug.

use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderValue, header};
use jiff::Timestamp;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;

use crate::import::{claude_code, formats};
use crate::ingest::body::{self, Framing};
use crate::ingest::otlp::{ClaudeCodeSignal, codec, logs, metrics, traces};
use crate::ingest::pipeline::{self, Mapped};
use crate::ingest::{event, litellm};

/// The decoders, by the names of the fuzz targets.
pub const TARGETS: [&str; 9] = [
    "event_json",
    "event_ndjson",
    "litellm",
    "otlp_metrics",
    "otlp_logs",
    "otlp_traces",
    "csv_import",
    "claude_code_line",
    "query_string",
];

fn now() -> Timestamp {
    Timestamp::from_second(1_780_000_000).unwrap_or(Timestamp::UNIX_EPOCH)
}

fn events(framing: Framing, data: &[u8], litellm_payloads: bool) {
    let Ok(items) = body::split(framing, data, crate::ingest::api::MAX_EVENTS) else {
        return;
    };
    // Read as a collector token's items (the `true`s below), so that the
    // identity readers are fuzzed too.
    let _ = pipeline::parse_items(items, 10_000, |value| {
        if litellm_payloads {
            litellm::parse(value, now(), true)
        } else {
            event::parse(value, now()).map(Mapped::Event)
        }
    });
}

fn otlp_headers(data: &[u8]) -> HeaderMap {
    let mut headers = HeaderMap::new();
    // The first byte picks the encoding, so both decoders get fuzzed.
    let content_type = if data.first().is_some_and(|b| b % 2 == 0) {
        "application/x-protobuf"
    } else {
        "application/json"
    };
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers
}

fn otlp(target: &str, data: &[u8]) {
    let headers = otlp_headers(data);
    let body = Bytes::copy_from_slice(data.get(1..).unwrap_or_default());
    match target {
        "otlp_metrics" => {
            if let Ok((request, _)) = codec::decode::<ExportMetricsServiceRequest>(&headers, body) {
                let _ = metrics::samples(&request, ClaudeCodeSignal::Metrics, true);
            }
        }
        "otlp_logs" => {
            if let Ok((request, _)) = codec::decode::<ExportLogsServiceRequest>(&headers, body) {
                let _ = logs::events(&request, ClaudeCodeSignal::Logs, now(), true);
            }
        }
        _ => {
            if let Ok((request, _)) = codec::decode::<ExportTraceServiceRequest>(&headers, body) {
                let _ = traces::events(&request, now(), true);
            }
        }
    }
}

fn csv(data: &[u8]) {
    let mut lines = data.split(|b| *b == b'\n');
    let Some(Ok(header)) = lines.next().map(formats::CsvHeader::parse) else {
        return;
    };
    for line in lines {
        let _ = formats::map_csv(&header, line, &Default::default(), now());
    }
}

fn query(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let _ = crate::usage::params::parse(Some(&text), Some("Europe/Berlin"), now());
    let url = crate::web::url::UrlState::parse(Some(&text));
    let _ = url
        .with(&[("sort", Some("cost")), ("after", None)])
        .href("/events");
}

/// Runs `data` through the decoder named `target`.
pub fn run(target: &str, data: &[u8]) {
    match target {
        "event_json" => events(Framing::JsonArray, data, false),
        "event_ndjson" => events(Framing::Ndjson, data, false),
        "litellm" => events(Framing::Sniff, data, true),
        "otlp_metrics" | "otlp_logs" | "otlp_traces" => otlp(target, data),
        "csv_import" => csv(data),
        "claude_code_line" => {
            for line in data.split(|b| *b == b'\n') {
                let _ = claude_code::map(line, &Default::default(), now());
                let _ = formats::map_jsonl(line, &Default::default(), now());
            }
        }
        "query_string" => query(data),
        other => panic!("no fuzz target named {other}"),
    }
}
