//! A local upstream proxy made by the test: serves a GOPROXY-layout folder over HTTP, counts
//! requests, and injects the faults real upstreams show (errors, slowness, tampered bytes).

use axum::body::Body;
use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What to do instead of serving the file.
#[derive(Clone, Debug)]
pub enum Fault {
    /// Answer with this status and a one-line body.
    Status(u16),
    /// Wait this long, then serve normally.
    Delay(Duration),
    /// Serve these bytes instead of the file.
    Body(Vec<u8>),
}

#[derive(Default)]
struct Shared {
    dir: PathBuf,
    hits: Mutex<HashMap<String, usize>>,
    faults: Mutex<Vec<(String, Fault)>>,
}

/// A running local upstream; stops when dropped.
pub struct LocalUpstream {
    pub url: String,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl LocalUpstream {
    /// Serves `dir` on a free loopback port.
    pub async fn start(dir: PathBuf) -> Self {
        Self::start_on(dir, "127.0.0.1:0").await
    }

    /// Serves `dir` on `addr` (`ip:0` for a free port on that address).
    pub async fn start_on(dir: PathBuf, addr: &str) -> Self {
        let shared = Arc::new(Shared {
            dir,
            ..Default::default()
        });
        let app = axum::Router::new()
            .fallback(serve)
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind(addr).await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { url, shared, task }
    }

    /// Applies `fault` to every request whose path (no leading `/`) ends with `suffix`.
    pub fn fault(&self, suffix: &str, fault: Fault) {
        self.shared
            .faults
            .lock()
            .unwrap()
            .push((suffix.to_string(), fault));
    }

    pub fn clear_faults(&self) {
        self.shared.faults.lock().unwrap().clear();
    }

    /// Requests seen for exactly this path (no leading `/`).
    pub fn hits(&self, path: &str) -> usize {
        *self.shared.hits.lock().unwrap().get(path).unwrap_or(&0)
    }

    /// All requests seen.
    pub fn total_hits(&self) -> usize {
        self.shared.hits.lock().unwrap().values().sum()
    }
}

impl Drop for LocalUpstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(State(s): State<Arc<Shared>>, uri: Uri) -> Response {
    let path = uri.path().trim_start_matches('/').to_string();
    *s.hits.lock().unwrap().entry(path.clone()).or_default() += 1;
    let faults: Vec<Fault> = s
        .faults
        .lock()
        .unwrap()
        .iter()
        .filter(|(suffix, _)| path.ends_with(suffix.as_str()))
        .map(|(_, f)| f.clone())
        .collect();
    for f in faults {
        match f {
            Fault::Status(code) => {
                let status = StatusCode::from_u16(code).unwrap_or(StatusCode::IM_A_TEAPOT);
                return (status, format!("injected {code} for {path}\n")).into_response();
            }
            Fault::Delay(d) => tokio::time::sleep(d).await,
            Fault::Body(b) => return Body::from(b).into_response(),
        }
    }
    if path.contains("..") {
        return StatusCode::BAD_REQUEST.into_response();
    }
    match tokio::fs::read(s.dir.join(&path)).await {
        Ok(b) => b.into_response(),
        Err(_) => (StatusCode::NOT_FOUND, format!("not found: {path}\n")).into_response(),
    }
}
