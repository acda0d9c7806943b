//! OpenTelemetry traces over OTLP/HTTP (`observability.otlp_endpoint`).
//!
//! `tracing` spans are the source: the `tracing-opentelemetry` layer turns the proxy's own
//! spans (a request, a fill and its steps) into OpenTelemetry spans, and a batch processor sends
//! them from its own thread with the blocking HTTP client, so exporting never runs on the
//! request path. With no endpoint configured none of this is installed and [`attach`] returns at
//! once: tracing off costs one atomic load per request.

use athens_config::ObservabilityConfig;
use opentelemetry::propagation::{Extractor, TextMapPropagator};
use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use std::sync::atomic::{AtomicBool, Ordering};
use tracing::Subscriber;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::registry::LookupSpan;

/// Whether [`start`] installed an exporter: [`attach`] does nothing otherwise.
static ENABLED: AtomicBool = AtomicBool::new(false);

/// The service name when neither `OTEL_SERVICE_NAME` nor `OTEL_RESOURCE_ATTRIBUTES` names one.
const SERVICE_NAME: &str = "athens-proxy";

/// An OTLP exporter could not be built (a malformed endpoint, say).
#[derive(Debug, thiserror::Error)]
#[error("OTLP trace exporter: {0}")]
pub struct TelemetryError(String);

/// The running exporter. [`Traces::shutdown`] sends what is still queued.
pub struct Traces {
    provider: SdkTracerProvider,
}

impl Traces {
    /// The `tracing` layer that records spans into this exporter.
    pub fn layer<S>(
        &self,
    ) -> tracing_opentelemetry::OpenTelemetryLayer<S, opentelemetry_sdk::trace::Tracer>
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        tracing_opentelemetry::layer()
            .with_tracer(self.provider.tracer("athens-proxy"))
            // Spans carry their own names and fields; source locations would only add bytes.
            .with_location(false)
            .with_threads(false)
    }

    /// Flushes queued spans and stops the export thread (at exit).
    pub fn shutdown(self) {
        if let Err(e) = self.provider.shutdown() {
            tracing::warn!(error = %e, "flushing traces at exit");
        }
    }
}

/// Builds the exporter when `cfg` or the standard environment names an endpoint; `None` when
/// tracing is off. Call once, before requests are served.
pub fn start(cfg: &ObservabilityConfig) -> Result<Option<Traces>, TelemetryError> {
    let Some(endpoint) = cfg.traces_endpoint(|k| std::env::var(k).ok()) else {
        return Ok(None);
    };
    let mut builder = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary);
    // Empty: the exporter reads OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT itself, by the spec's rules.
    if !endpoint.is_empty() {
        builder = builder.with_endpoint(endpoint);
    }
    let exporter = builder.build().map_err(|e| TelemetryError(e.to_string()))?;
    let named = std::env::var_os("OTEL_SERVICE_NAME").is_some()
        || std::env::var("OTEL_RESOURCE_ATTRIBUTES").is_ok_and(|v| v.contains("service.name="));
    let mut resource = Resource::builder();
    if !named {
        resource = resource.with_service_name(SERVICE_NAME);
    }
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource.build())
        .build();
    ENABLED.store(true, Ordering::Relaxed);
    Ok(Some(Traces { provider }))
}

/// Joins a request's span to the client's trace (a W3C `traceparent` header) and records its
/// trace id in the span's `trace_id` field, so every log line inside the request shows it.
/// Must run before the span is first entered.
pub fn attach(span: &tracing::Span, headers: &http::HeaderMap) {
    if !ENABLED.load(Ordering::Relaxed) {
        return;
    }
    let parent = TraceContextPropagator::new().extract(&Headers(headers));
    if parent.span().span_context().is_valid() {
        // Fails only when the span is disabled or already started; then it stays a root.
        let _ = span.set_parent(parent);
    }
    let trace_id = span.context().span().span_context().trace_id();
    if trace_id != opentelemetry::TraceId::INVALID {
        span.record("trace_id", tracing::field::display(trace_id));
    }
}

/// Records the response status on the request's span (an error status for a 5xx).
pub fn finish(span: &tracing::Span, status: http::StatusCode) {
    if !ENABLED.load(Ordering::Relaxed) {
        return;
    }
    span.set_attribute("http.response.status_code", i64::from(status.as_u16()));
    if status.is_server_error() {
        span.set_status(opentelemetry::trace::Status::error(status.to_string()));
    }
}

/// Request headers as the propagator reads them.
struct Headers<'a>(&'a http::HeaderMap);

impl Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn off_without_an_endpoint() {
        // No endpoint in the configuration; the test environment sets no OTEL_* variables.
        if std::env::var_os("OTEL_EXPORTER_OTLP_ENDPOINT").is_none()
            && std::env::var_os("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").is_none()
        {
            assert!(start(&ObservabilityConfig::default()).unwrap().is_none());
            assert!(!ENABLED.load(Ordering::Relaxed));
        }
    }

    #[test]
    fn traceparent_is_read_from_headers() {
        let mut h = http::HeaderMap::new();
        h.insert(
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
                .parse()
                .unwrap(),
        );
        let cx = TraceContextPropagator::new().extract(&Headers(&h));
        assert_eq!(
            cx.span().span_context().trace_id().to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
    }
}
