//! OTLP/HTTP requests as the exporters send them: protobuf, one export at
//! a time, answered with a protobuf partial success.

use axum::http::StatusCode;
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use prost::Message;

use super::TestApp;

pub const PROTOBUF: (&str, &str) = ("content-type", "application/x-protobuf");
/// 2026-05-28T20:26:40Z in Unix nanoseconds.
pub const T0: u64 = 1_780_000_000_000_000_000;
pub const MINUTE: u64 = 60_000_000_000;

/// A string attribute.
pub fn kv(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.into())),
        }),
        ..KeyValue::default()
    }
}

/// `POST /v1/metrics` with `request` as protobuf; the answer must be 200
/// in protobuf.
pub async fn export_metrics(
    app: &TestApp,
    token: &str,
    request: &ExportMetricsServiceRequest,
) -> ExportMetricsServiceResponse {
    let response = app
        .post_bytes(
            "/v1/metrics",
            Some(token),
            &[PROTOBUF],
            request.encode_to_vec(),
        )
        .await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.body);
    assert_eq!(response.headers["content-type"], "application/x-protobuf");
    ExportMetricsServiceResponse::decode(response.raw.as_slice()).expect("a protobuf response")
}
