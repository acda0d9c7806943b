//! `/healthz`, `/readyz`, `/metrics`, `/version`.

use super::App;
use super::reply::{self, JSON, TEXT};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use std::sync::Arc;

/// The process is alive.
pub async fn healthz() -> Response {
    reply::ok(TEXT, "no-store", "ok\n")
}

/// The bucket answers: only then can requests be served.
pub async fn readyz(State(app): State<Arc<App>>) -> Response {
    match app.store.ping().await {
        Ok(()) => reply::ok(TEXT, "no-store", "ok\n"),
        Err(e) => reply::error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    }
}

pub async fn metrics(State(app): State<Arc<App>>) -> Response {
    reply::ok(
        "text/plain; version=0.0.4; charset=utf-8",
        "no-store",
        app.metrics.render(),
    )
}

/// The version, and whether modules are verified (no secrets: only the database's name).
pub async fn version(State(app): State<Arc<App>>) -> Response {
    let body = serde_json::json!({
        "version": env!("CARGO_PKG_VERSION"),
        "checksum_database": app.sumdb_name.as_deref().unwrap_or("off"),
        "verification": if app.sumdb_name.is_some() { "on" } else { "off" },
    })
    .to_string();
    reply::ok(JSON, "no-store", body)
}
