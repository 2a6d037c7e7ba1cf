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
        Encoding::Json => serde_json::from_slice(&body)
            .map_err(|e| IngestError::BadRequest(format!("the body is not OTLP JSON: {e}")))?,
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
