//! The OTLP receivers fed by the real OpenTelemetry SDK and its OTLP/HTTP
//! exporter (protobuf and JSON, delta and cumulative), as an instrumented
//! program would send: whatever the SDK encodes, tokentally must read.

use std::collections::HashMap;
use std::sync::Arc;

use crate::common::TestApp;
use opentelemetry::KeyValue;
use opentelemetry::metrics::MeterProvider as _;
use opentelemetry::trace::{Span as _, Tracer as _, TracerProvider as _};
use opentelemetry_http::{Bytes, HttpClient, HttpError, Request, Response};
use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::metrics::{PeriodicReader, SdkMeterProvider, Temporality};
use opentelemetry_sdk::trace::SdkTracerProvider;
use tokentally::auth::Role;
use tokentally::auth::tokens::TokenScope;

/// The exporter's HTTP client: blocking ureq, which is fine on the SDK's
/// own export thread.
#[derive(Debug)]
pub(crate) struct Ureq(ureq::Agent);

#[async_trait::async_trait]
impl HttpClient for Ureq {
    async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        let (parts, body) = request.into_parts();
        let mut call = self.0.post(parts.uri.to_string());
        for (name, value) in &parts.headers {
            call = call.header(name.as_str(), value.to_str()?);
        }
        let mut answer = call.send(body.to_vec())?;
        let status = answer.status();
        let bytes = answer.body_mut().read_to_vec()?;
        Ok(Response::builder()
            .status(status)
            .body(Bytes::from(bytes))?)
    }
}

pub(crate) fn client() -> Ureq {
    Ureq(
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into(),
    )
}

async fn setup() -> (Arc<TestApp>, String, HashMap<String, String>) {
    let app = TestApp::new().await;
    // The SDK stamps its data with the real time; the server's clock must
    // agree, or the points are refused as from the future.
    app.clock.set(jiff::Timestamp::now());
    app.create_user("ada", Role::Member).await;
    let token = app.create_token("ada", TokenScope::Ingest).await;
    let address = app.serve().await;
    let headers = HashMap::from([("Authorization".to_owned(), format!("Bearer {token}"))]);
    (Arc::new(app), format!("http://{address}"), headers)
}

async fn token_sums(app: &TestApp) -> [i64; 5] {
    app.state
        .db
        .read(|conn| {
            Ok::<_, tokentally::db::DbError>(conn.query_row(
                "SELECT COALESCE(SUM(input_tokens), 0), COALESCE(SUM(output_tokens), 0),
                        COALESCE(SUM(cache_read_tokens), 0), COALESCE(SUM(cache_write_tokens), 0),
                        COALESCE(SUM(cost_micros), 0)
                 FROM events",
                [],
                |r| Ok([r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?]),
            )?)
        })
        .await
        .expect("sums")
}

fn claude_code_meter(
    base: &str,
    headers: &HashMap<String, String>,
    protocol: Protocol,
    temporality: Temporality,
) -> SdkMeterProvider {
    let exporter = opentelemetry_otlp::MetricExporter::builder()
        .with_http()
        .with_http_client(client())
        .with_protocol(protocol)
        .with_endpoint(format!("{base}/v1/metrics"))
        .with_headers(headers.clone())
        .with_temporality(temporality)
        .build()
        .expect("exporter");
    SdkMeterProvider::builder()
        .with_reader(PeriodicReader::builder(exporter).build())
        .with_resource(Resource::builder().with_service_name("claude-code").build())
        .build()
}

/// Records one "request" of Claude Code's usage on `provider`.
fn record(provider: &SdkMeterProvider, [input, output, read, write]: [f64; 4], cost: f64) {
    let meter = provider.meter("com.anthropic.claude_code");
    let tokens = meter
        .f64_counter("claude_code.token.usage")
        .with_unit("tokens")
        .build();
    let usd = meter
        .f64_counter("claude_code.cost.usage")
        .with_unit("USD")
        .build();
    let base = [
        KeyValue::new("session.id", "5c1a7f0e"),
        KeyValue::new("model", "claude-sonnet-4-5-20250929"),
    ];
    for (kind, value) in [
        ("input", input),
        ("output", output),
        ("cacheRead", read),
        ("cacheCreation", write),
    ] {
        let mut attributes = base.to_vec();
        attributes.push(KeyValue::new("type", kind));
        tokens.add(value, &attributes);
    }
    usd.add(cost, &base);
}

async fn flush(provider: SdkMeterProvider) -> SdkMeterProvider {
    tokio::task::spawn_blocking(move || {
        provider.force_flush().expect("export");
        provider
    })
    .await
    .expect("flush")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sdk_exporter_delta_and_cumulative_in_protobuf_and_json() {
    for (protocol, temporality) in [
        (Protocol::HttpBinary, Temporality::Delta),
        (Protocol::HttpBinary, Temporality::Cumulative),
        (Protocol::HttpJson, Temporality::Delta),
        (Protocol::HttpJson, Temporality::Cumulative),
    ] {
        let (app, base, headers) = setup().await;
        let provider = claude_code_meter(&base, &headers, protocol, temporality);
        record(&provider, [12.0, 311.0, 14336.0, 2048.0], 0.0812);
        let provider = flush(provider).await;
        record(&provider, [3.0, 40.0, 4096.0, 512.0], 0.0100);
        let provider = flush(provider).await;
        // A cumulative exporter re-sends its totals on every flush; a
        // delta one sends nothing new: either way the sums are the adds.
        let provider = flush(provider).await;
        tokio::task::spawn_blocking(move || provider.shutdown().expect("shutdown"))
            .await
            .expect("shutdown");
        assert_eq!(
            token_sums(&app).await,
            [15, 351, 18432, 2560, 91_200],
            "{protocol:?} {temporality:?}"
        );
        app.assert_rollups_exact().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sdk_span_exporter_sends_genai_spans() {
    let (app, base, headers) = setup().await;
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_http_client(client())
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(format!("{base}/v1/traces"))
        .with_headers(headers)
        .build()
        .expect("exporter");
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter)
        .with_resource(Resource::builder().with_service_name("support-bot").build())
        .build();
    let tracer = provider.tracer("genai-app");
    tokio::task::spawn_blocking(move || {
        for _ in 0..2 {
            let mut span = tracer.start("chat claude-sonnet-4-5");
            span.set_attributes([
                KeyValue::new("gen_ai.operation.name", "chat"),
                KeyValue::new("gen_ai.provider.name", "anthropic"),
                KeyValue::new("gen_ai.request.model", "claude-sonnet-4-5"),
                KeyValue::new("gen_ai.usage.input_tokens", 1500),
                KeyValue::new("gen_ai.usage.output_tokens", 80),
                KeyValue::new("gen_ai.usage.cache_read.input_tokens", 1000),
            ]);
            span.end();
        }
        provider.force_flush().expect("flush");
        provider.shutdown().expect("shutdown");
    })
    .await
    .expect("spans");
    assert_eq!(token_sums(&app).await[..3], [1000, 160, 2000]);
}
