//! Per-request observability: a request id, a tracing span (an OpenTelemetry span when traces
//! are exported), a log line, and metrics.

use super::App;
use crate::metrics::Route;
use axum::extract::{Request, State};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;
use tracing::Instrument;

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// Whether requests get a span: set once at start by [`record_requests`].
static REQUEST_SPANS: AtomicBool = AtomicBool::new(true);

/// Tells [`observe`] whether anything records a request's span: exported traces, or log lines
/// at `info` (the "served" line). Called once, when logging is set up.
pub fn record_requests(on: bool) {
    REQUEST_SPANS.store(on, Ordering::Relaxed);
}

/// The metrics label for a request path. Pure and cheap: the path is not parsed.
pub fn route_of(path: &str) -> Route {
    if path.starts_with("/sumdb/") {
        Route::Sumdb
    } else if path.ends_with("/@v/list") {
        Route::List
    } else if path.ends_with("/@latest") {
        Route::Latest
    } else if path.ends_with(".info") {
        Route::Info
    } else if path.ends_with(".mod") {
        Route::Mod
    } else if path.ends_with(".zip") {
        Route::Zip
    } else {
        match path {
            "/healthz" => Route::Healthz,
            "/readyz" => Route::Readyz,
            "/metrics" => Route::Metrics,
            "/version" => Route::Version,
            "/catalog" => Route::Catalog,
            "/index" => Route::Index,
            _ => Route::Other,
        }
    }
}

pub async fn observe(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    // Keep a caller's id (a load balancer's, say) so logs line up across hops.
    let id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| v.len() <= 128)
        .map(String::from)
        .unwrap_or_else(|| format!("{:x}", NEXT_ID.fetch_add(1, Ordering::Relaxed)));
    let route = route_of(req.uri().path());
    let started = Instant::now();
    // A span cost a warm hit 15-20% of its throughput (a registry slot, its fields formatted,
    // an enter and exit per poll), so a request gets one only when something records it. Below
    // info, the few warnings a request path logs name their module themselves; a fill has its
    // own span either way.
    let (mut resp, span) = if REQUEST_SPANS.load(Ordering::Relaxed) {
        // `trace_id` stays empty (and out of log lines) unless traces are exported.
        let span = tracing::info_span!("request", id = %id, method = %req.method(),
            path = %req.uri().path(), trace_id = tracing::field::Empty);
        crate::telemetry::attach(&span, req.headers());
        (next.run(req).instrument(span.clone()).await, Some(span))
    } else {
        (next.run(req).await, None)
    };
    let elapsed = started.elapsed();
    let status = resp.status();
    if let Some(span) = span {
        crate::telemetry::finish(&span, status);
        span.in_scope(|| {
            tracing::info!(
                status = status.as_u16(),
                ms = elapsed.as_millis() as u64,
                "served"
            )
        });
    }
    let len = resp
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    app.metrics
        .served(route, status, elapsed.as_secs_f64(), len);
    if let Ok(v) = HeaderValue::from_str(&id) {
        resp.headers_mut().insert("x-request-id", v);
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::route_of;

    #[test]
    fn routes() {
        let route_of = |p| route_of(p).name();
        assert_eq!(route_of("/a.b/c/@v/list"), "list");
        assert_eq!(route_of("/a.b/c/@v/v1.0.0.info"), "info");
        assert_eq!(route_of("/a.b/c/@v/v1.0.0.mod"), "mod");
        assert_eq!(route_of("/a.b/c/@v/v1.0.0.zip"), "zip");
        assert_eq!(route_of("/a.b/c/@latest"), "latest");
        assert_eq!(route_of("/sumdb/x/lookup/a@v1"), "sumdb");
        assert_eq!(route_of("/healthz"), "healthz");
        assert_eq!(route_of("/whatever"), "other");
    }
}
