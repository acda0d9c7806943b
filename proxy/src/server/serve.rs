//! Binding, serving, and shutting down cleanly.

use super::{App, router};
use crate::config::Config;
use std::sync::Arc;

/// Serves until SIGTERM or Ctrl-C. Prints the `GOPROXY=` line (with the real port when
/// `listen` asked for port 0) once the socket is bound, so scripts and tests can wait for it.
pub async fn serve(cfg: &Config) -> anyhow::Result<()> {
    let app = Arc::new(App::new(cfg)?);
    let listener = tokio::net::TcpListener::bind(&cfg.listen)
        .await
        .map_err(|e| anyhow::anyhow!("listening on {}: {e}", cfg.listen))?;
    let addr = listener.local_addr()?;
    tracing::info!(%addr, storage = %cfg.storage.url, upstream = %cfg.upstream.goproxy,
        mode = ?cfg.upstream.network_mode, "athens-proxy serving");
    println!("GOPROXY=http://{addr}");
    axum::serve(listener, router(app))
        .with_graceful_shutdown(shutdown_signal())
        .await?;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
