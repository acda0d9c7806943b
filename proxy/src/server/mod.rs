//! The HTTP server: the module download protocol, checksum-database proxying, health, metrics.

mod access;
mod app;
mod catalog;
mod conn_threads;
mod file_body;
mod front;
mod health;
mod observe;
mod policy;
mod protocol;
mod reply;
mod serve;
mod sumdb;
mod tls;
mod upstream_list;

pub use app::{App, MissAnswer};
pub use observe::record_requests;
pub use serve::serve;

use axum::Router;
use axum::routing::get;
use std::sync::Arc;

/// All routes. Module paths never start with these words (their first element has a dot),
/// so everything else goes to the protocol handler.
pub fn router(app: Arc<App>) -> Router {
    let routes = Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
        .route("/version", get(health::version))
        .route("/catalog", get(catalog::catalog))
        .route("/index", get(catalog::index))
        .route("/sumdb/{*rest}", get(sumdb::handle))
        .fallback(protocol::handle);
    // Without client credentials configured (fixed at start) the access layer would only pass
    // every request on: a middleware layer costs a boxed future per request.
    let routes = if app.access.is_some() {
        routes.layer(axum::middleware::from_fn_with_state(
            app.clone(),
            access::check,
        ))
    } else {
        routes
    };
    routes
        .layer(axum::middleware::from_fn_with_state(
            app.clone(),
            observe::observe,
        ))
        .with_state(app)
}

/// What the separate metrics address serves (`access.metrics_listen`): no credentials.
pub fn metrics_router(app: Arc<App>) -> Router {
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
        .with_state(app)
}
