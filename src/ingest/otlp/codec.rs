//! OTLP/HTTP bodies: protobuf or JSON (by `Content-Type`), gzip or not;
//! answers in the request's encoding.

use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use prost::Message;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::ingest::IngestError;
use crate::ingest::body;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Protobuf,
    Json,
}

pub fn encoding(headers: &HeaderMap) -> Result<Encoding, IngestError> {
    let media = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase())
        .unwrap_or_default();
    match media.as_str() {
        "application/x-protobuf" | "application/protobuf" => Ok(Encoding::Protobuf),
        "application/json" => Ok(Encoding::Json),
        other => Err(IngestError::UnsupportedMediaType(format!(
            "Content-Type {other:?} is not OTLP/HTTP: send application/x-protobuf or \
             application/json"
        ))),
    }
}

/// Decodes an export request of either encoding, without a memory budget
/// (tools and fuzzing; the server uses [`decode_within`]).
pub fn decode<T: Message + Default + DeserializeOwned>(
    headers: &HeaderMap,
    body: Bytes,
) -> Result<(T, Encoding), IngestError> {
    decode_within(headers, body, &mut body::Reservation::unbounded())
}

/// Decodes an export request of either encoding; decompression grows the
/// request's `reservation` of the ingest memory budget.
pub fn decode_within<T: Message + Default + DeserializeOwned>(
    headers: &HeaderMap,
    body: Bytes,
    reservation: &mut body::Reservation,
) -> Result<(T, Encoding), IngestError> {
    let encoding = encoding(headers)?;
    let body = body::decode(headers, body, reservation)?;
    let request = match encoding {
        Encoding::Protobuf => T::decode(body.as_ref()).map_err(|e| {
            IngestError::BadRequest(format!("the body is not an OTLP protobuf message: {e}"))
        })?,
        Encoding::Json => {
            let not_json = |e: serde_json::Error| {
                IngestError::BadRequest(format!("the body is not OTLP JSON: {e}"))
            };
            if has_enum_names(&body) {
                let mut value: serde_json::Value =
                    serde_json::from_slice(&body).map_err(not_json)?;
                numeric_enums(&mut value);
                serde_json::from_value(value).map_err(not_json)?
            } else {
                serde_json::from_slice(&body).map_err(not_json)?
            }
        }
    };
    Ok((request, encoding))
}

/// The export response, in the request's encoding.
pub fn respond<T: Message + Serialize>(response: &T, encoding: Encoding) -> Response {
    let (content_type, body) = match encoding {
        Encoding::Protobuf => ("application/x-protobuf", response.encode_to_vec()),
        Encoding::Json => (
            "application/json",
            serde_json::to_vec(response).unwrap_or_else(|_| b"{}".to_vec()),
        ),
    };
    let mut reply = (StatusCode::OK, body).into_response();
    reply
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    reply
}

/// The enums of OTLP/JSON whose names some exporters send instead of
/// their numbers (the protobuf JSON mapping allows both).
const ENUM_NAMES: [(&str, &[&str]); 3] = [
    (
        "aggregationTemporality",
        &[
            "AGGREGATION_TEMPORALITY_UNSPECIFIED",
            "AGGREGATION_TEMPORALITY_DELTA",
            "AGGREGATION_TEMPORALITY_CUMULATIVE",
        ],
    ),
    (
        "kind",
        &[
            "SPAN_KIND_UNSPECIFIED",
            "SPAN_KIND_INTERNAL",
            "SPAN_KIND_SERVER",
            "SPAN_KIND_CLIENT",
            "SPAN_KIND_PRODUCER",
            "SPAN_KIND_CONSUMER",
        ],
    ),
    (
        "code",
        &["STATUS_CODE_UNSET", "STATUS_CODE_OK", "STATUS_CODE_ERROR"],
    ),
];

fn has_enum_names(body: &[u8]) -> bool {
    [
        &b"AGGREGATION_TEMPORALITY_"[..],
        b"SPAN_KIND_",
        b"STATUS_CODE_",
    ]
    .iter()
    .any(|needle| body.windows(needle.len()).any(|w| w == *needle))
}

/// Replaces enum names by their numbers, wherever they are.
fn numeric_enums(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(object) => {
            for (key, field) in object.iter_mut() {
                if let serde_json::Value::String(name) = field {
                    let number = ENUM_NAMES
                        .iter()
                        .filter(|(enum_key, _)| enum_key == key)
                        .find_map(|(_, names)| names.iter().position(|n| n == name));
                    if let Some(number) = number {
                        *field = serde_json::Value::from(number);
                    }
                } else {
                    numeric_enums(field);
                }
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(numeric_enums),
        _ => {}
    }
}
