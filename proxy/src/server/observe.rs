//! Per-request observability: a request id, a tracing span (an OpenTelemetry span when traces
//! are exported), a log line, and metrics.

use super::App;
use crate::metrics::Route;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::Response;
use std::future::Future;
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

/// The response header that carries a request's id.
pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The router's middleware: [`Seen`] around the rest of the stack.
pub async fn observe(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    let route = route_of(req.uri().path());
    let seen = Seen::start(route, req.headers(), req.method(), req.uri().path());
    let resp = seen.run(next.run(req)).await;
    seen.finish(&app, resp)
}

/// One request as observed: its id, route, start time and span. The front door (front.rs)
/// and the router's middleware both use it, so every request is observed the same way.
pub struct Seen {
    id: HeaderValue,
    route: Route,
    started: Instant,
    span: Option<tracing::Span>,
}

impl Seen {
    /// `route` is [`route_of`] the path, which the caller has at hand.
    pub fn start(route: Route, headers: &HeaderMap, method: &Method, path: &str) -> Self {
        // Keep a caller's id (a load balancer's, say) so logs line up across hops.
        let id = headers
            .get(&X_REQUEST_ID)
            .filter(|v| v.len() <= 128 && v.to_str().is_ok())
            .cloned()
            .unwrap_or_else(|| hex_id(NEXT_ID.fetch_add(1, Ordering::Relaxed)));
        // A span cost a warm hit 15-20% of its throughput (a registry slot, its fields
        // formatted, an enter and exit per poll), so a request gets one only when something
        // records it. Below info, the few warnings a request path logs name their module
        // themselves; a fill has its own span either way.
        let span = REQUEST_SPANS.load(Ordering::Relaxed).then(|| {
            // `trace_id` stays empty (and out of log lines) unless traces are exported.
            let span = tracing::info_span!("request", id = id.to_str().unwrap_or(""),
                method = %method, path = %path, trace_id = tracing::field::Empty);
            crate::telemetry::attach(&span, headers);
            span
        });
        Self {
            id,
            route,
            started: Instant::now(),
            span,
        }
    }

    /// Runs the request's handling inside its span, when it has one.
    pub async fn run<F: Future<Output = Response>>(&self, handling: F) -> Response {
        match &self.span {
            Some(span) => handling.instrument(span.clone()).await,
            None => handling.await,
        }
    }

    /// Logs, counts and labels the response.
    pub fn finish(self, app: &App, mut resp: Response) -> Response {
        let elapsed = self.started.elapsed();
        let status = resp.status();
        if let Some(span) = &self.span {
            crate::telemetry::finish(span, status);
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
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        app.metrics
            .served(self.route, status, elapsed.as_secs_f64(), len);
        resp.headers_mut().insert(X_REQUEST_ID, self.id);
        resp
    }
}

/// A request id of our own: the counter in hex.
fn hex_id(n: u64) -> HeaderValue {
    let mut buf = [0u8; 16];
    let mut at = buf.len();
    let mut n = n;
    loop {
        at -= 1;
        buf[at] = b"0123456789abcdef"[(n & 0xf) as usize];
        n >>= 4;
        if n == 0 {
            break;
        }
    }
    // Hex digits are always a valid header value.
    HeaderValue::from_bytes(&buf[at..]).unwrap_or(HeaderValue::from_static("0"))
}

#[cfg(test)]
mod tests {
    use super::{hex_id, route_of};

    #[test]
    fn ids_are_hex() {
        assert_eq!(hex_id(0), "0");
        assert_eq!(hex_id(0x1f2e), "1f2e");
        assert_eq!(hex_id(u64::MAX), "ffffffffffffffff");
    }

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
