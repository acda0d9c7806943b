//! Nothing from outside is trusted for time or size: clients that never finish their headers,
//! too many connections, shutdown with connections open, redirects to another host, and fills
//! that would not fit the temporary disk.

use athens_e2e::modzip::FakeModule;
use athens_e2e::proxy::ProxyProcess;
use athens_e2e::sumdb::SumdbServer;
use athens_e2e::upstream::LocalUpstream;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// A proxy started from a TOML file with `extra` appended (sections allowed).
fn proxy_with(
    upstream: &str,
    gosumdb: &str,
    extra: &str,
) -> (ProxyProcess, tempfile::NamedTempFile) {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    write!(
        f,
        "listen = \"127.0.0.1:0\"\n{extra}\n[storage]\nurl = \"memory://\"\n[upstream]\ngoproxy = \"{upstream}\"\nsumdb = \"{gosumdb}\"\nretries = 0\n"
    )
    .unwrap();
    let p = ProxyProcess::start(&["--config", f.path().to_str().unwrap()], &[]);
    (p, f)
}

fn addr(p: &ProxyProcess) -> String {
    p.url.trim_start_matches("http://").to_string()
}

/// Reads until EOF or `limit`; what the server sent.
fn read_all(s: &mut TcpStream, limit: Duration) -> String {
    s.set_read_timeout(Some(limit)).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).to_string()
}

#[test]
fn a_client_that_never_finishes_its_headers_is_closed_and_does_not_block_shutdown() {
    let (mut p, _cfg) = proxy_with(
        "off",
        "off",
        "[server]\nheader_timeout_seconds = 1\nshutdown_seconds = 3",
    );
    let mut slow = TcpStream::connect(addr(&p)).unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    let started = Instant::now();
    // The server closes the connection (after a 408 or nothing) instead of waiting forever.
    let got = read_all(&mut slow, Duration::from_secs(20));
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "still open: {got:?}"
    );
    assert!(!got.contains("200 OK"), "{got}");

    // SIGTERM with a half-sent request open: the process still exits.
    let mut half = TcpStream::connect(addr(&p)).unwrap();
    half.write_all(b"GET /healthz HTTP/1.1\r\n").unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let pid = p.child.id().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(status) = p.child.try_wait().unwrap() {
            assert!(status.success(), "exit after SIGTERM: {status}");
            break;
        }
        assert!(Instant::now() < deadline, "SIGTERM did not stop the proxy");
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(half);
}

#[test]
fn connections_over_the_limit_get_503_and_the_rest_are_served() {
    let (p, _cfg) = proxy_with("off", "off", "[server]\nmax_connections = 2");
    let a = TcpStream::connect(addr(&p)).unwrap();
    let b = TcpStream::connect(addr(&p)).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let mut c = TcpStream::connect(addr(&p)).unwrap();
    let got = read_all(&mut c, Duration::from_secs(10));
    assert!(got.starts_with("HTTP/1.1 503"), "{got:?}");
    drop((a, b));
    // Slots come back when connections close.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut d = TcpStream::connect(addr(&p)).unwrap();
        d.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .unwrap();
        let got = read_all(&mut d, Duration::from_secs(10));
        if got.starts_with("HTTP/1.1 200") {
            break;
        }
        assert!(Instant::now() < deadline, "never served again: {got:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// An upstream that redirects: to its own host (followed) or to another (refused).
async fn redirecting_upstream() -> String {
    use axum::http::{StatusCode, header};
    use axum::response::IntoResponse;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let app = axum::Router::new()
        .route(
            "/same.example/m/@v/list",
            axum::routing::get(|| async {
                (StatusCode::FOUND, [(header::LOCATION, "/moved/list")]).into_response()
            }),
        )
        .route(
            "/other.example/m/@v/list",
            axum::routing::get(move || async move {
                // Same port, another host name for this machine: a different origin.
                let to = format!("http://localhost:{port}/moved/list");
                (StatusCode::FOUND, [(header::LOCATION, to)]).into_response()
            }),
        )
        .route("/moved/list", axum::routing::get(|| async { "v1.0.0\n" }));
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://127.0.0.1:{port}")
}

#[tokio::test(flavor = "multi_thread")]
async fn redirects_are_followed_only_on_the_same_host() {
    let upstream = redirecting_upstream().await;
    let (p, _cfg) = proxy_with(&upstream, "off", "");
    let same = reqwest::get(format!("{}/same.example/m/@v/list", p.url))
        .await
        .unwrap();
    assert_eq!(same.status(), 200);
    assert_eq!(same.text().await.unwrap(), "v1.0.0\n");
    let other = reqwest::get(format!("{}/other.example/m/@v/list", p.url))
        .await
        .unwrap();
    assert_eq!(other.status(), 502);
    let body = other.text().await.unwrap();
    assert!(body.contains("redirect to another host"), "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_fill_that_does_not_fit_the_temp_disk_budget_is_503_and_nothing_is_stored() {
    let m = FakeModule::new("example.com/big", "v1.0.0");
    let dir = tempfile::tempdir().unwrap();
    m.write_to(dir.path());
    let sumdb = SumdbServer::start(dir.path(), "sumdb.test");
    let up = LocalUpstream::start(dir.path().to_path_buf()).await;
    // The budget is smaller than the zip.
    let budget = m.zip().len() - 1;
    let mut f = tempfile::NamedTempFile::new().unwrap();
    write!(
        f,
        "listen = \"127.0.0.1:0\"\n[storage]\nurl = \"memory://\"\n[upstream]\ngoproxy = \"{}\"\nsumdb = \"{}\"\nmax_temp_bytes = {budget}\n",
        up.url,
        sumdb.gosumdb()
    )
    .unwrap();
    let p = ProxyProcess::start(&["--config", f.path().to_str().unwrap()], &[]);
    let resp = reqwest::get(format!("{}/example.com/big/@v/v1.0.0.zip", p.url))
        .await
        .unwrap();
    assert_eq!(resp.status(), 503);
    let body = resp.text().await.unwrap();
    assert!(body.contains("temporary disk"), "{body}");
    // The version is not committed: its zip is still refused, and the catalog (the commit
    // markers) is empty. (Its `.info` and `.mod` may be served: the checksum database vouches
    // for them without the zip.)
    let again = reqwest::get(format!("{}/example.com/big/@v/v1.0.0.zip", p.url))
        .await
        .unwrap();
    assert_eq!(again.status(), 503);
    let catalog = reqwest::get(format!("{}/catalog", p.url)).await.unwrap();
    assert_eq!(catalog.status(), 200);
    let catalog = catalog.text().await.unwrap();
    assert!(!catalog.contains("example.com/big"), "{catalog}");
}
