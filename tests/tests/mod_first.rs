//! A `.mod` request does not wait for the module's zip when the checksum database vouches for
//! the `.mod` alone (its go.sum `/go.mod` line): the `.info`/`.mod` stage is verified and stored
//! on its own, the zip follows in the background or on its own request, and the version is
//! committed (visible to lists and the catalog) only with its zip.

use athens_e2e::modzip::FakeModule;
use athens_e2e::proxy::ProxyProcess;
use athens_e2e::sumdb::SumdbServer;
use athens_e2e::upstream::LocalUpstream;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

/// A proxy over `upstream_dir` verifying against a database that signed `signed_dir`.
async fn proxy(
    signed_dir: &Path,
    upstream_dir: &Path,
    extra: &str,
) -> (
    ProxyProcess,
    SumdbServer,
    LocalUpstream,
    tempfile::NamedTempFile,
) {
    let sumdb = SumdbServer::start(signed_dir, "sumdb.test");
    let up = LocalUpstream::start(upstream_dir.to_path_buf()).await;
    let mut f = tempfile::NamedTempFile::new().unwrap();
    write!(
        f,
        "listen = \"127.0.0.1:0\"\n[storage]\nurl = \"memory://\"\n[upstream]\ngoproxy = \"{}\"\nsumdb = \"{}\"\nfailed_fill_seconds = 0\n{extra}",
        up.url,
        sumdb.gosumdb()
    )
    .unwrap();
    let p = ProxyProcess::start(&["--config", f.path().to_str().unwrap()], &[]);
    (p, sumdb, up, f)
}

async fn get(url: String) -> (u16, String) {
    let r = reqwest::get(url).await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn mod_is_answered_from_the_checksum_database_without_the_zip() {
    let m = FakeModule::new("example.com/graphonly", "v1.2.0");
    let signed = tempfile::tempdir().unwrap();
    m.write_to(signed.path());
    // Upstream has the `.info` and `.mod` but no zip (as far as this proxy can tell).
    let upstream = tempfile::tempdir().unwrap();
    m.write_to(upstream.path());
    let zip = upstream.path().join("example.com/graphonly/@v/v1.2.0.zip");
    std::fs::remove_file(&zip).unwrap();
    let (p, _db, _up, _cfg) = proxy(
        signed.path(),
        upstream.path(),
        "prefetch_zips = false\nnegative_cache_seconds = 0\n",
    )
    .await;

    let base = format!("{}/example.com/graphonly/@v/v1.2.0", p.url);
    let (status, body) = get(format!("{base}.mod")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body.as_bytes(), m.go_mod().as_slice());
    let (status, body) = get(format!("{base}.info")).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("v1.2.0"), "{body}");
    // The version is not committed without its zip: no zip, nothing in the catalog.
    let (status, _) = get(format!("{base}.zip")).await;
    assert_eq!(status, 404);
    let (_, catalog) = get(format!("{}/catalog", p.url)).await;
    assert!(!catalog.contains("graphonly"), "{catalog}");

    // The zip appears upstream: its own request fills the version, with the `.info` served
    // before (the same bytes), and the version is now committed.
    let info_before = get(format!("{base}.info")).await.1;
    std::fs::write(&zip, m.zip()).unwrap();
    let (status, _) = get(format!("{base}.zip")).await;
    assert_eq!(status, 200);
    let r = reqwest::get(format!("{base}.zip")).await.unwrap();
    assert_eq!(r.bytes().await.unwrap().as_ref(), m.zip().as_slice());
    assert_eq!(get(format!("{base}.info")).await.1, info_before);
    let (_, catalog) = get(format!("{}/catalog", p.url)).await;
    assert!(catalog.contains("graphonly"), "{catalog}");
}

/// The zip fill that follows a `.mod` takes the checksum database record the `.mod` stage
/// verified instead of asking the database again: here the database is gone by then.
#[tokio::test(flavor = "multi_thread")]
async fn the_zip_after_a_mod_uses_the_record_the_mod_stage_verified() {
    let asked = FakeModule::new("example.com/onelookup", "v1.1.0");
    let other = FakeModule::new("example.com/onelookup", "v1.2.0");
    let dir = tempfile::tempdir().unwrap();
    asked.write_to(dir.path());
    other.write_to(dir.path());
    let (p, db, _up, _cfg) = proxy(dir.path(), dir.path(), "prefetch_zips = false\n").await;
    let base = format!("{}/example.com/onelookup/@v", p.url);
    let (status, body) = get(format!("{base}/v1.1.0.mod")).await;
    assert_eq!(status, 200, "{body}");
    drop(db);

    let r = reqwest::get(format!("{base}/v1.1.0.zip")).await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.bytes().await.unwrap().as_ref(), asked.zip().as_slice());
    // A version whose `.mod` this proxy did not verify still needs the database.
    let (status, body) = get(format!("{base}/v1.2.0.zip")).await;
    assert_ne!(status, 200, "{body}");
    assert!(body.contains("unavailable"), "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_mod_the_checksum_database_disagrees_with_is_refused_and_not_stored() {
    let m = FakeModule::new("example.com/tampered", "v1.0.0");
    let signed = tempfile::tempdir().unwrap();
    m.write_to(signed.path());
    let upstream = tempfile::tempdir().unwrap();
    m.write_to(upstream.path());
    std::fs::write(
        upstream.path().join("example.com/tampered/@v/v1.0.0.mod"),
        b"module example.com/tampered\n\nrequire evil.example/x v1.0.0\n",
    )
    .unwrap();
    let (p, _db, _up, _cfg) = proxy(signed.path(), upstream.path(), "").await;
    let base = format!("{}/example.com/tampered/@v/v1.0.0", p.url);
    for _ in 0..2 {
        let (status, body) = get(format!("{base}.mod")).await;
        assert_ne!(status, 200, "{body}");
        assert!(body.contains("checksum mismatch"), "{body}");
    }
    let (status, _) = get(format!("{base}.info")).await;
    assert_ne!(status, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_zip_follows_a_mod_request_in_the_background() {
    let m = FakeModule::new("example.com/prefetched", "v0.3.0");
    let dir = tempfile::tempdir().unwrap();
    m.write_to(dir.path());
    let (p, _db, _up, _cfg) = proxy(dir.path(), dir.path(), "").await;
    let (status, body) = get(format!("{}/example.com/prefetched/@v/v0.3.0.mod", p.url)).await;
    assert_eq!(status, 200, "{body}");
    // Nothing else asks for the zip, yet the version becomes committed.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, catalog) = get(format!("{}/catalog", p.url)).await;
        if catalog.contains("example.com/prefetched") {
            break;
        }
        assert!(Instant::now() < deadline, "zip never fetched: {catalog}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (_, metrics) = get(format!("{}/metrics", p.url)).await;
    assert!(
        metrics.contains("athens_mod_first_fills_total 1"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn without_a_checksum_database_the_mod_waits_for_the_zip() {
    let m = FakeModule::new("example.com/nosumdb", "v1.0.0");
    let dir = tempfile::tempdir().unwrap();
    m.write_to(dir.path());
    std::fs::remove_file(dir.path().join("example.com/nosumdb/@v/v1.0.0.zip")).unwrap();
    let up = LocalUpstream::start(dir.path().to_path_buf()).await;
    let mut f = tempfile::NamedTempFile::new().unwrap();
    write!(
        f,
        "listen = \"127.0.0.1:0\"\n[storage]\nurl = \"memory://\"\n[upstream]\ngoproxy = \"{}\"\nsumdb = \"off\"\n",
        up.url
    )
    .unwrap();
    let p = ProxyProcess::start(&["--config", f.path().to_str().unwrap()], &[]);
    // Nothing vouches for the `.mod` but the zip's own go.mod, and there is no zip.
    let (status, body) = get(format!("{}/example.com/nosumdb/@v/v1.0.0.mod", p.url)).await;
    assert_eq!(status, 404, "{body}");
}
