//! Request bodies of ingestion endpoints: size limits, gzip, and the
//! media type that says how to split them into events.

use std::io::Read;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode, header};
use flate2::read::GzDecoder;
use serde_json::Value;

use super::error::IngestError;
use super::pipeline::Item;

/// Largest body accepted on the wire (compressed or not).
pub const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;
/// Largest body after decompression: a gzip bomb stops here.
pub const MAX_DECODED_BYTES: usize = 64 * 1024 * 1024;

/// How a body holds its events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// A JSON array of events (or one event object).
    JsonArray,
    /// One JSON event per line.
    Ndjson,
    /// Whichever of the two the body is (for producers that send NDJSON
    /// as `application/json`, such as LiteLLM).
    Sniff,
}

/// The body of an accepted request, or a 413 in our JSON shape.
pub fn accept(body: Result<Bytes, BytesRejection>) -> Result<Bytes, IngestError> {
    body.map_err(|rejection| match rejection.status() {
        StatusCode::PAYLOAD_TOO_LARGE => too_large_body(),
        _ => IngestError::BadRequest(rejection.body_text()),
    })
}

/// The body's items with their NDJSON line numbers; a line that is not
/// JSON is that item's problem, a JSON array that is not JSON is the
/// request's.
pub fn split(framing: Framing, body: &[u8]) -> Result<Vec<Item>, IngestError> {
    match framing {
        Framing::JsonArray => match serde_json::from_slice::<Value>(body) {
            Ok(value) => whole(value),
            Err(e) => Err(IngestError::BadRequest(format!(
                "the body is not valid JSON: {e}"
            ))),
        },
        Framing::Ndjson => Ok(lines(body)),
        Framing::Sniff => match serde_json::from_slice::<Value>(body) {
            Ok(value) => whole(value),
            Err(_) => Ok(lines(body)),
        },
    }
}

fn whole(value: Value) -> Result<Vec<Item>, IngestError> {
    match value {
        Value::Array(values) => Ok(values.into_iter().map(|v| (None, Ok(v))).collect()),
        object @ Value::Object(_) => Ok(vec![(None, Ok(object))]),
        _ => Err(IngestError::BadRequest(
            "the body must be a JSON array of events (or one event object)".into(),
        )),
    }
}

fn lines(body: &[u8]) -> Vec<Item> {
    body.split(|byte| *byte == b'\n')
        .enumerate()
        .filter(|(_, line)| !line.iter().all(u8::is_ascii_whitespace))
        .map(|(number, line)| {
            let value = serde_json::from_slice::<Value>(line)
                .map_err(|e| format!("the line is not valid JSON: {e}"));
            (Some(number + 1), value)
        })
        .collect()
}

/// The framing named by `Content-Type` (parameters such as charset are
/// ignored).
pub fn framing(headers: &HeaderMap) -> Result<Framing, IngestError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let media = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match media.as_str() {
        "application/json" => Ok(Framing::JsonArray),
        "application/x-ndjson"
        | "application/ndjson"
        | "application/jsonl"
        | "application/x-jsonlines" => Ok(Framing::Ndjson),
        "" => Err(IngestError::UnsupportedMediaType(
            "Content-Type is missing: send application/json (an array of events) or \
             application/x-ndjson (one event per line)"
                .into(),
        )),
        other => Err(IngestError::UnsupportedMediaType(format!(
            "Content-Type {other} is not supported: send application/json (an array of events) \
             or application/x-ndjson (one event per line)"
        ))),
    }
}

/// The body, decompressed when `Content-Encoding: gzip`, within the limits.
pub fn decode(headers: &HeaderMap, body: Bytes) -> Result<Bytes, IngestError> {
    let encoding = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("identity")
        .trim()
        .to_ascii_lowercase();
    match encoding.as_str() {
        "identity" | "" => Ok(body),
        "gzip" | "x-gzip" => gunzip(&body),
        other => Err(IngestError::UnsupportedMediaType(format!(
            "Content-Encoding {other} is not supported; use gzip or none"
        ))),
    }
}

fn gunzip(body: &[u8]) -> Result<Bytes, IngestError> {
    let mut decoded = Vec::new();
    let limit = u64::try_from(MAX_DECODED_BYTES).unwrap_or(u64::MAX) + 1;
    GzDecoder::new(body)
        .take(limit)
        .read_to_end(&mut decoded)
        .map_err(|e| IngestError::BadRequest(format!("the gzip body cannot be decoded: {e}")))?;
    if decoded.len() > MAX_DECODED_BYTES {
        return Err(too_large_decoded());
    }
    Ok(Bytes::from(decoded))
}

pub fn too_large_body() -> IngestError {
    IngestError::TooLarge(format!(
        "the request body is over {} MiB; send fewer events per request",
        MAX_BODY_BYTES / (1024 * 1024)
    ))
}

fn too_large_decoded() -> IngestError {
    IngestError::TooLarge(format!(
        "the decompressed body is over {} MiB; send fewer events per request",
        MAX_DECODED_BYTES / (1024 * 1024)
    ))
}
