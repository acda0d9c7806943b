//! Upstream credentials: taken from a `.netrc` file or environment variable instead of the URL,
//! and never shown: user info in URLs is redacted in `--print-config` and in error bodies.

use athens_e2e::modzip::FakeModule;
use athens_e2e::proxy::{ProxyProcess, proxy_bin};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::IntoResponse;
use base64::Engine as _;
use std::path::PathBuf;
use std::sync::Arc;

const SECRET: &str = "s3cr3t-value";

/// A GOPROXY folder served only to `user:SECRET`; `/fail/...` answers 500.
async fn private_upstream(dir: PathBuf) -> String {
    async fn serve(
        State(dir): State<Arc<PathBuf>>,
        headers: HeaderMap,
        uri: Uri,
    ) -> axum::response::Response {
        let want = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("user:{SECRET}"))
        );
        if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(want.as_str()) {
            return (StatusCode::UNAUTHORIZED, "who are you\n").into_response();
        }
        if uri.path().starts_with("/fail/") {
            return (StatusCode::INTERNAL_SERVER_ERROR, "broken\n").into_response();
        }
        match std::fs::read(dir.join(uri.path().trim_start_matches('/'))) {
            Ok(b) => b.into_response(),
            Err(_) => (StatusCode::NOT_FOUND, "not found\n").into_response(),
        }
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let app = axum::Router::new()
        .fallback(serve)
        .with_state(Arc::new(dir));
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    url
}

#[tokio::test(flavor = "multi_thread")]
async fn credentials_come_from_netrc_or_env_and_are_never_shown() {
    let m = FakeModule::new("example.com/priv", "v1.0.0");
    let dir = tempfile::tempdir().unwrap();
    m.write_to(dir.path());
    let up = private_upstream(dir.path().to_path_buf()).await;
    let host = up
        .trim_start_matches("http://")
        .split(':')
        .next()
        .unwrap()
        .to_string();
    let netrc_text = format!("machine {host} login user password {SECRET}\n");
    let netrc = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(netrc.path(), &netrc_text).unwrap();
    let zip_path = "example.com/priv/@v/v1.0.0.zip";

    // Without credentials upstream refuses; with a netrc file (NETRC, as the go command reads
    // it) or netrc text in ATHENS_UPSTREAM_NETRC, the module comes through.
    let none = ProxyProcess::start(
        &[
            "--storage",
            "memory://",
            "--upstream",
            &up,
            "--sumdb",
            "off",
        ],
        &[],
    );
    let r = reqwest::get(format!("{}/{zip_path}", none.url))
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let netrc_path = netrc.path().to_str().unwrap();
    for env in [
        ("NETRC", netrc_path),
        ("ATHENS_UPSTREAM_NETRC", netrc_text.as_str()),
    ] {
        let p = ProxyProcess::start(
            &[
                "--storage",
                "memory://",
                "--upstream",
                &up,
                "--sumdb",
                "off",
            ],
            &[env],
        );
        let r = reqwest::get(format!("{}/{zip_path}", p.url)).await.unwrap();
        assert_eq!(r.status(), 200, "with {}", env.0);
        assert_eq!(r.bytes().await.unwrap().to_vec(), m.zip());
    }

    // Credentials in the URL work too, but are shown nowhere.
    let with_userinfo = up.replace("http://", &format!("http://user:{SECRET}@"));
    let out = std::process::Command::new(proxy_bin())
        .args([
            "--upstream",
            &format!("{with_userinfo}/fail,direct"),
            "--sumdb",
            "off",
        ])
        .arg("--print-config")
        .output()
        .unwrap();
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert!(printed.contains("http://***@"), "{printed}");
    assert!(!printed.contains(SECRET), "{printed}");

    let p = ProxyProcess::start(
        &[
            "--storage",
            "memory://",
            "--upstream",
            &format!("{with_userinfo}/fail"),
            "--sumdb",
            "off",
        ],
        &[],
    );
    let r = reqwest::get(format!("{}/{zip_path}", p.url)).await.unwrap();
    assert_eq!(r.status(), 502);
    let body = r.text().await.unwrap();
    assert!(body.contains("***@"), "{body}");
    assert!(!body.contains(SECRET), "{body}");
    // A transport failure (nothing listens there) names the URL without its user info too.
    let dead = "http://user:s3cr3t-value@127.0.0.1:9/";
    let p = ProxyProcess::start(
        &[
            "--storage",
            "memory://",
            "--upstream",
            dead,
            "--sumdb",
            "off",
        ],
        &[],
    );
    let r = reqwest::get(format!("{}/{zip_path}", p.url)).await.unwrap();
    let body = r.text().await.unwrap();
    assert!(!body.contains(SECRET), "{body}");
}
