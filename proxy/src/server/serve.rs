//! Binding, serving, and shutting down cleanly.
//!
//! Connections are run here rather than by `axum::serve` so that every one is bounded in time
//! and number: a client that never finishes its headers (slowloris) or idles on a keep-alive is
//! closed after `server.header_timeout_seconds`; past `server.max_connections` a connection is
//! answered 503 and closed; on SIGTERM in-flight requests get `server.shutdown_seconds`.

use super::conn_threads::ConnThreads;
use super::file_body::{FileIo, FileSlot};
use super::front::Front;
use super::{App, metrics_router, router};
use crate::config::Config;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;

/// What a connection over the limit is told before it is closed.
const BUSY: &[u8] =
    b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain; charset=utf-8\r\n\
content-length: 28\r\nconnection: close\r\nretry-after: 1\r\n\r\ntoo many connections; retry\n";

/// Serves until SIGTERM or Ctrl-C. Prints the `GOPROXY=` line (with the real port when
/// `listen` asked for port 0) once the socket is bound, so scripts and tests can wait for it.
pub async fn serve(cfg: &Config) -> anyhow::Result<()> {
    let app = Arc::new(App::new(cfg)?);
    app.policy.watch();
    let listener = tokio::net::TcpListener::bind(&cfg.listen)
        .await
        .map_err(|e| anyhow::anyhow!("listening on {}: {e}", cfg.listen))?;
    let addr = listener.local_addr()?;
    let tls = super::tls::acceptor(&cfg.access)?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    let shown = cfg.redacted();
    tracing::info!(%addr, storage = %shown.storage.url, upstream = %shown.upstream.goproxy,
        mode = ?cfg.upstream.network_mode, "athens-proxy serving");
    if !cfg.access.metrics_listen.is_empty() {
        let l = tokio::net::TcpListener::bind(&cfg.access.metrics_listen)
            .await
            .map_err(|e| anyhow::anyhow!("listening on {}: {e}", cfg.access.metrics_listen))?;
        // Before the GOPROXY= line, which scripts wait for: both are known when it comes.
        println!("METRICS=http://{}", l.local_addr()?);
        let svc = metrics_router(app.clone());
        tokio::spawn(async move {
            if let Err(e) = axum::serve(l, svc).await {
                tracing::warn!(error = %e, "metrics listener stopped");
            }
        });
    }

    println!("GOPROXY={scheme}://{addr}");
    if let Some(gate) = &app.access {
        gate.spawn_reloader();
        tracing::info!(
            "client access control is on: every route but /healthz and /readyz needs credentials"
        );
    }
    let limits = &cfg.server;
    let mut http = auto::Builder::new(TokioExecutor::new());
    http.http1()
        // Queue body chunks as they are rather than copying them into one buffer: fewer copies,
        // and file_body.rs finds its placeholders by address.
        .writev(true)
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(limits.header_timeout_seconds));
    http.http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Duration::from_secs(limits.header_timeout_seconds));
    let service = router(app.clone());
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let conn_threads = ConnThreads::for_this_machine()?;
    let graceful = GracefulShutdown::new();
    let mut stop = std::pin::pin!(shutdown_signal());
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut stop => break,
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tracing::warn!(
                limit = limits.max_connections,
                "connection limit reached; answering 503"
            );
            let _ = stream.try_write(BUSY);
            continue;
        };
        let _ = stream.set_nodelay(true);
        // Handed to a connection thread (conn_threads.rs), which registers it with its own epoll.
        let stream = match stream.into_std() {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "accepted connection unusable");
                continue;
            }
        };
        let (tls, http, app, service, watcher) = (
            tls.clone(),
            http.clone(),
            app.clone(),
            service.clone(),
            graceful.watcher(),
        );
        let handshake = Duration::from_secs(limits.header_timeout_seconds);
        conn_threads.pick().spawn(async move {
            let stream = match tokio::net::TcpStream::from_std(stream) {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "accepted connection unusable");
                    return;
                }
            };
            let ended = match tls {
                // Plain TCP: zip bodies from a local bucket are written from the file (file_body.rs).
                None => {
                    let files = FileSlot::default();
                    let conn = http
                        .serve_connection_with_upgrades(
                            TokioIo::new(FileIo::new(stream, files.clone())),
                            Front::new(app, service, Some(files)),
                        )
                        .into_owned();
                    watcher.watch(conn).await
                }
                // The handshake runs in the connection's task, bounded like a request's headers.
                Some(tls) => {
                    let stream = match tokio::time::timeout(handshake, tls.accept(stream)).await {
                        Ok(Ok(s)) => s,
                        Ok(Err(e)) => {
                            tracing::debug!(error = %e, "TLS handshake failed");
                            return;
                        }
                        Err(_) => return,
                    };
                    let conn = http
                        .serve_connection_with_upgrades(
                            TokioIo::new(stream),
                            Front::new(app, service, None),
                        )
                        .into_owned();
                    watcher.watch(conn).await
                }
            };
            if let Err(e) = ended {
                tracing::debug!(error = %e, "connection ended with an error");
            }
            drop(slot);
        });
    }
    drop(listener);
    let deadline = Duration::from_secs(limits.shutdown_seconds);
    tracing::info!(?deadline, "shutting down: finishing in-flight requests");
    if tokio::time::timeout(deadline, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("connections still open at the shutdown deadline; exiting anyway");
    }
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
