//! Client access control with the real go command: a proxy serving HTTPS (a CA made by the
//! test) with users and tokens from several files. The go command with a `.netrc` entry for
//! the proxy's host downloads modules; without one it fails with the proxy's 401 reason.
//! Files are reloaded on change; `/healthz`, `/readyz` and the separate metrics address stay
//! open.

use athens_e2e::gocmd::GoEnv;
use athens_e2e::image::tls::TestCa;
use athens_e2e::modzip::FakeModule;
use athens_e2e::world::{StorageSpec, World, id};
use std::time::{Duration, Instant};

struct Files {
    dir: tempfile::TempDir,
}

impl Files {
    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }
    fn write(&self, name: &str, text: &str) -> String {
        let p = self.path(name);
        std::fs::write(&p, text).unwrap();
        p
    }
}

fn http(ca: &TestCa) -> reqwest::Client {
    reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&ca.ca_pem).unwrap())
        .build()
        .unwrap()
}

async fn status(c: &reqwest::Client, url: &str, auth: Option<(&str, &str)>) -> u16 {
    let mut r = c.get(url);
    match auth {
        Some(("bearer", t)) => r = r.bearer_auth(t),
        Some((u, p)) => r = r.basic_auth(u, Some(p)),
        None => {}
    }
    r.send().await.expect("request").status().as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn go_with_netrc_gets_modules_and_without_gets_a_clear_401() {
    let m = FakeModule::new("example.com/private/lib", "v1.2.3");
    let world = World::new(vec![m.clone()]).await;
    let ca = TestCa::new(&["127.0.0.1"]).expect("openssl makes a test CA");
    let files = Files {
        dir: tempfile::tempdir().unwrap(),
    };
    let cert = files.write("tls.crt", std::str::from_utf8(&ca.cert_pem).unwrap());
    let key = files.write("tls.key", std::str::from_utf8(&ca.key_pem).unwrap());
    let ca_file = files.write("ca.crt", std::str::from_utf8(&ca.ca_pem).unwrap());
    let team_a = files.write("team-a", "# CI\nci:ci-secret\n");
    let team_b = files.write("team-b", "dev:dev-secret\n");
    let tokens = files.write("tokens", "tok-123\n");
    let storage = tempfile::tempdir().unwrap();
    let access = format!(
        "[access]\nbasic_auth_files = [{team_a:?}, {team_b:?}]\nbearer_token_files = [{tokens:?}]\n\
         realm = \"modules\"\nreload_seconds = 1\nmetrics_listen = \"127.0.0.1:0\"\n\
         tls_cert_file = {cert:?}\ntls_key_file = {key:?}\n"
    );
    let proxy = world.proxy(&StorageSpec::file(storage.path()), &access);
    let base = proxy.url().to_string();
    assert!(base.starts_with("https://127.0.0.1:"), "{base}");
    let c = http(&ca);

    // Open routes, and the 401 challenge.
    assert_eq!(status(&c, &format!("{base}/healthz"), None).await, 200);
    assert_eq!(status(&c, &format!("{base}/readyz"), None).await, 200);
    let r = c.get(format!("{base}/catalog")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let challenge = r.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        challenge.starts_with("Basic realm=\"modules\""),
        "{challenge}"
    );
    assert_eq!(status(&c, &format!("{base}/metrics"), None).await, 401);
    assert_eq!(
        status(&c, &format!("{base}/catalog"), Some(("ci", "nope"))).await,
        401
    );
    for who in [
        ("ci", "ci-secret"),
        ("dev", "dev-secret"),
        ("bearer", "tok-123"),
    ] {
        assert_eq!(
            status(&c, &format!("{base}/catalog"), Some(who)).await,
            200,
            "{who:?}"
        );
    }

    // The go command: .netrc for the proxy's host, the test CA trusted.
    let work = tempfile::tempdir().unwrap();
    let mut without = GoEnv::new(&base, &world.sumdb.gosumdb());
    without.extra = vec![
        ("SSL_CERT_FILE".into(), ca_file.clone()),
        ("NETRC".into(), files.path("no-netrc")),
    ];
    let out = without.run(work.path(), &["mod", "download", "-json", &id(&m)]);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success(), "{text}");
    assert!(text.contains("401 Unauthorized"), "{text}");
    assert!(text.contains("this proxy needs credentials"), "{text}");

    // The go command (1.24+) matches a .netrc machine against the URL's host and port.
    let host = base.trim_start_matches("https://");
    let netrc = files.write(
        "netrc",
        &format!("machine {host} login dev password dev-secret\n"),
    );
    let mut with = GoEnv::new(&base, &world.sumdb.gosumdb());
    with.extra = vec![
        ("SSL_CERT_FILE".into(), ca_file.clone()),
        ("NETRC".into(), netrc.clone()),
    ];
    let out = with.download(work.path(), &[(&m.path, &m.version)]);
    assert!(out.contains("\"Sum\": \"h1:"), "{out}");

    // Reload: dev's password changes, a second token file line appears.
    files.write("team-b", "dev:rotated\n");
    files.write("tokens", "tok-123\ntok-456\n");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let old = status(&c, &format!("{base}/catalog"), Some(("dev", "dev-secret"))).await;
        let new = status(&c, &format!("{base}/catalog"), Some(("dev", "rotated"))).await;
        let tok = status(&c, &format!("{base}/catalog"), Some(("bearer", "tok-456"))).await;
        if (old, new, tok) == (401, 200, 200) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "credentials not reloaded: {old} {new} {tok}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // A broken file keeps the users it had.
    files.write("team-a", "no colon here\n");
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        status(&c, &format!("{base}/catalog"), Some(("ci", "ci-secret"))).await,
        200
    );

    // The metrics address needs no credentials and saw the refusals.
    let metrics_url = proxy.process.metrics_url.clone().expect("METRICS= line");
    let text = reqwest::get(format!("{metrics_url}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.lines()
            .any(|l| l.starts_with("athens_requests_total{") && l.contains("status=\"401\"")),
        "{text}"
    );
}

#[tokio::test]
async fn no_credentials_configured_serves_everyone() {
    let world = World::new(vec![FakeModule::new("example.com/open", "v1.0.0")]).await;
    let storage = tempfile::tempdir().unwrap();
    let proxy = world.proxy(&StorageSpec::file(storage.path()), "");
    assert!(proxy.url().starts_with("http://"));
    let r = reqwest::get(format!("{}/example.com/open/@v/v1.0.0.info", proxy.url()))
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert!(r.headers().get("www-authenticate").is_none());
}

/// A client trusting only `ca` that makes a full TLS handshake per request: a new connection
/// each time, and no session resumption (a resumed session shows no certificate at all; the
/// proxy, like any TLS server, lets a client resume a session made under the old certificate).
fn fresh_connections(ca: &TestCa) -> reqwest::Client {
    use rustls_pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls_pki_types::CertificateDer::pem_slice_iter(&ca.ca_pem) {
        roots.add(c.unwrap()).unwrap();
    }
    let mut tls = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    tls.resumption = rustls::client::Resumption::disabled();
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .pool_max_idle_per_host(0)
        .build()
        .unwrap()
}

/// Writes `text` to `path` the way Kubernetes updates a mounted Secret: all at once.
fn replace(path: &str, text: &[u8]) {
    let tmp = format!("{path}.new");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renewed_certificate_reaches_new_connections_without_a_restart() {
    // A zip larger than the loopback socket buffers, so its download is really in flight.
    let m = athens_e2e::world::graph(1, 24 << 20).remove(0);
    let world = World::new(vec![m.clone()]).await;
    let old = TestCa::new(&["127.0.0.1"]).expect("openssl makes a test CA");
    let new = TestCa::new(&["127.0.0.1"]).expect("openssl makes a test CA");
    let files = Files {
        dir: tempfile::tempdir().unwrap(),
    };
    let cert = files.write("tls.crt", std::str::from_utf8(&old.cert_pem).unwrap());
    let key = files.write("tls.key", std::str::from_utf8(&old.key_pem).unwrap());
    let storage = tempfile::tempdir().unwrap();
    let access =
        format!("[access]\nreload_seconds = 1\ntls_cert_file = {cert:?}\ntls_key_file = {key:?}\n");
    let proxy = world.proxy(&StorageSpec::file(storage.path()), &access);
    let base = proxy.url().to_string();
    let zip_url = format!("{base}/{}/@v/{}.zip", m.escaped_path(), m.version);
    let want = world.zip(&m);
    let (trusts_old, trusts_new) = (fresh_connections(&old), fresh_connections(&new));

    // Stored first, so the in-flight download streams from the bucket.
    let body = trusts_old.get(&zip_url).send().await.unwrap();
    assert_eq!(body.status(), 200);
    assert_eq!(body.bytes().await.unwrap(), want);
    assert!(
        trusts_new
            .get(format!("{base}/healthz"))
            .send()
            .await
            .is_err()
    );

    // A download under the old certificate, started and left half-read.
    let mut in_flight = http(&old).get(&zip_url).send().await.unwrap();
    assert_eq!(in_flight.status(), 200);
    let mut got = in_flight.chunk().await.unwrap().unwrap().to_vec();
    assert!(got.len() < want.len());

    replace(&key, &new.key_pem);
    replace(&cert, &new.cert_pem);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match trusts_new.get(format!("{base}/healthz")).send().await {
            Ok(r) if r.status() == 200 => break,
            other => assert!(
                Instant::now() < deadline,
                "new connections still get the old certificate: {other:?}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        trusts_old
            .get(format!("{base}/healthz"))
            .send()
            .await
            .is_err(),
        "a new connection was given the old certificate after the reload"
    );

    // The download that started before the reload finishes, byte for byte.
    while let Some(chunk) = in_flight.chunk().await.unwrap() {
        got.extend_from_slice(&chunk);
    }
    assert_eq!(got.len(), want.len());
    assert!(got == want, "the in-flight download changed");

    // A broken replacement is refused and the renewed certificate stays in force.
    replace(
        &cert,
        b"-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n",
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    let r = trusts_new.get(format!("{base}/healthz")).send().await;
    assert_eq!(
        r.expect("still serving the renewed certificate").status(),
        200
    );
}
