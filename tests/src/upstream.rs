//! A local upstream proxy made by the test: serves a GOPROXY-layout folder over HTTP, counts
//! requests, and injects the faults real upstreams show (errors, slowness, tampered bytes,
//! connections reset mid-body, bytes dripped, lying `Content-Length`).
//!
//! It speaks HTTP/1.1 itself, one request per connection, because the wire faults (a reset
//! after part of the body, a `Content-Length` that disagrees with the body) are exactly what a
//! well-behaved HTTP library refuses to send.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// What to do instead of serving the file normally.
#[derive(Clone, Debug)]
pub enum Fault {
    /// Answer with this status and a one-line body.
    Status(u16),
    /// Wait this long, then serve normally.
    Delay(Duration),
    /// Serve these bytes instead of the file.
    Body(Vec<u8>),
    /// Announce the whole body, send this many bytes of it, then reset the connection (RST).
    ResetAfter(usize),
    /// Send the body `chunk` bytes at a time, waiting `every` before each chunk.
    Drip { chunk: usize, every: Duration },
    /// Announce a `Content-Length` this many bytes off the truth (more: the body ends early;
    /// fewer: the client reads a cut body that looks complete), send the real body, close.
    MisstateLength(i64),
}

struct Rule {
    suffix: String,
    fault: Fault,
    /// How many more requests it applies to; `None`: all.
    left: Option<usize>,
}

#[derive(Default)]
struct Shared {
    dir: PathBuf,
    hits: Mutex<HashMap<String, usize>>,
    rules: Mutex<Vec<Rule>>,
    injected: AtomicUsize,
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
        let listener = tokio::net::TcpListener::bind(addr).await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let s = shared.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(handle(s.clone(), stream));
            }
        });
        Self { url, shared, task }
    }

    /// Applies `fault` to every request whose path (no leading `/`) ends with `suffix`.
    pub fn fault(&self, suffix: &str, fault: Fault) {
        self.add_rule(suffix, fault, None);
    }

    /// Applies `fault` to the next `times` requests whose path ends with `suffix`.
    pub fn fault_times(&self, suffix: &str, fault: Fault, times: usize) {
        self.add_rule(suffix, fault, Some(times));
    }

    fn add_rule(&self, suffix: &str, fault: Fault, left: Option<usize>) {
        self.shared.rules.lock().unwrap().push(Rule {
            suffix: suffix.to_string(),
            fault,
            left,
        });
    }

    pub fn clear_faults(&self) {
        self.shared.rules.lock().unwrap().clear();
    }

    /// Requests seen for exactly this path (no leading `/`).
    pub fn hits(&self, path: &str) -> usize {
        *self.shared.hits.lock().unwrap().get(path).unwrap_or(&0)
    }

    /// All requests seen.
    pub fn total_hits(&self) -> usize {
        self.shared.hits.lock().unwrap().values().sum()
    }

    /// Requests answered with a fault so far.
    pub fn faults_injected(&self) -> usize {
        self.shared.injected.load(Ordering::Relaxed)
    }
}

impl Drop for LocalUpstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// How the body goes out on the wire.
enum Delivery {
    Whole,
    ResetAfter(usize),
    Drip { chunk: usize, every: Duration },
    MisstateLength(i64),
}

async fn handle(s: Arc<Shared>, mut stream: TcpStream) {
    let Some((method, path)) = read_request(&mut stream).await else {
        return;
    };
    let path = path.trim_start_matches('/').to_string();
    *s.hits.lock().unwrap().entry(path.clone()).or_default() += 1;
    let faults = matching_faults(&s, &path);
    if !faults.is_empty() {
        s.injected.fetch_add(1, Ordering::Relaxed);
    }
    let head_only = method == "HEAD";
    let mut body = None;
    let mut delivery = Delivery::Whole;
    for f in faults {
        match f {
            Fault::Status(code) => {
                let text = format!("injected {code} for {path}\n");
                let _ = respond(&mut stream, code, text.as_bytes(), head_only).await;
                return;
            }
            Fault::Delay(d) => tokio::time::sleep(d).await,
            Fault::Body(b) => body = Some(b),
            Fault::ResetAfter(n) => delivery = Delivery::ResetAfter(n),
            Fault::Drip { chunk, every } => delivery = Delivery::Drip { chunk, every },
            Fault::MisstateLength(d) => delivery = Delivery::MisstateLength(d),
        }
    }
    let body = match body {
        Some(b) => b,
        None if path.contains("..") => {
            let _ = respond(&mut stream, 400, b"bad path\n", head_only).await;
            return;
        }
        None => match tokio::fs::read(s.dir.join(&path)).await {
            Ok(b) => b,
            Err(_) => {
                let text = format!("not found: {path}\n");
                let _ = respond(&mut stream, 404, text.as_bytes(), head_only).await;
                return;
            }
        },
    };
    let _ = match delivery {
        Delivery::Whole => respond(&mut stream, 200, &body, head_only).await,
        Delivery::ResetAfter(n) => reset_after(stream, &body, n).await,
        Delivery::Drip { chunk, every } => drip(&mut stream, &body, chunk, every).await,
        Delivery::MisstateLength(d) => {
            let head = header(200, (body.len() as i64 + d).max(0) as u64);
            async {
                stream.write_all(head.as_bytes()).await?;
                stream.write_all(&body).await?;
                stream.shutdown().await
            }
            .await
        }
    };
}

/// The faults for `path`, counting down the limited ones.
fn matching_faults(s: &Shared, path: &str) -> Vec<Fault> {
    let mut rules = s.rules.lock().unwrap();
    let mut out = Vec::new();
    for r in rules.iter_mut() {
        if !path.ends_with(r.suffix.as_str()) || r.left == Some(0) {
            continue;
        }
        if let Some(n) = &mut r.left {
            *n -= 1;
        }
        out.push(r.fault.clone());
    }
    out
}

/// Reads the request head; returns (method, path without query).
async fn read_request(stream: &mut TcpStream) -> Option<(String, String)> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 || buf.len() > 64 << 10 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let text = String::from_utf8_lossy(&buf);
    let mut parts = text.lines().next()?.split_whitespace();
    let method = parts.next()?.to_string();
    let target = parts.next()?;
    let path = target.split('?').next().unwrap_or(target).to_string();
    Some((method, path))
}

fn header(code: u16, len: u64) -> String {
    let reason = match code {
        200 => "OK",
        404 => "Not Found",
        _ => "Status",
    };
    format!(
        "HTTP/1.1 {code} {reason}\r\nContent-Length: {len}\r\nContent-Type: application/octet-stream\r\nConnection: close\r\n\r\n"
    )
}

async fn respond(
    stream: &mut TcpStream,
    code: u16,
    body: &[u8],
    head_only: bool,
) -> std::io::Result<()> {
    stream
        .write_all(header(code, body.len() as u64).as_bytes())
        .await?;
    if !head_only {
        stream.write_all(body).await?;
    }
    stream.shutdown().await
}

async fn reset_after(mut stream: TcpStream, body: &[u8], n: usize) -> std::io::Result<()> {
    stream
        .write_all(header(200, body.len() as u64).as_bytes())
        .await?;
    stream.write_all(&body[..n.min(body.len())]).await?;
    stream.flush().await?;
    // Let the bytes leave before the reset discards what is still queued.
    tokio::time::sleep(Duration::from_millis(50)).await;
    // SO_LINGER 0: closing sends RST instead of FIN; with zero it does not block.
    stream.set_zero_linger()?;
    drop(stream);
    Ok(())
}

async fn drip(
    stream: &mut TcpStream,
    body: &[u8],
    chunk: usize,
    every: Duration,
) -> std::io::Result<()> {
    stream
        .write_all(header(200, body.len() as u64).as_bytes())
        .await?;
    for part in body.chunks(chunk.max(1)) {
        tokio::time::sleep(every).await;
        stream.write_all(part).await?;
        stream.flush().await?;
    }
    stream.shutdown().await
}
