//! Storage that loses objects under a running proxy (a lifecycle rule, a clean-up, a restore
//! from backup): lost files are filled again, verified against the checksum they were first
//! stored with, instead of answering 500 until a restart.

use athens_e2e::modzip::FakeModule;
use athens_e2e::proxy::ProxyProcess;
use athens_e2e::sumdb::SumdbServer;
use athens_e2e::upstream::{Fault, LocalUpstream};
use std::path::Path;
use std::time::Duration;

async fn get(url: &str) -> (u16, Vec<u8>) {
    let resp = reqwest::get(url).await.expect("GET");
    let status = resp.status().as_u16();
    (status, resp.bytes().await.expect("body").to_vec())
}

fn proxy(storage: &Path, upstream: &str, gosumdb: &str, extra: &[&str]) -> ProxyProcess {
    let storage_url = format!("file://{}", storage.display());
    let mut args = vec![
        "--storage",
        &storage_url,
        "--upstream",
        upstream,
        "--sumdb",
        gosumdb,
    ];
    args.extend_from_slice(extra);
    ProxyProcess::start(&args, &[])
}

async fn metric(proxy: &ProxyProcess, name: &str) -> u64 {
    let (_, body) = get(&format!("{}/metrics", proxy.url)).await;
    String::from_utf8_lossy(&body)
        .lines()
        .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread")]
async fn lost_files_and_a_wiped_bucket_are_filled_again() {
    let m = FakeModule::new("example.com/heal", "v1.0.0");
    let up_dir = tempfile::tempdir().unwrap();
    m.write_to(up_dir.path());
    let sumdb = SumdbServer::start(up_dir.path(), "sumdb.test");
    let upstream = LocalUpstream::start(up_dir.path().to_path_buf()).await;
    let storage = tempfile::tempdir().unwrap();
    let p = proxy(storage.path(), &upstream.url, &sumdb.gosumdb(), &[]);
    let base = format!("{}/example.com/heal/@v/v1.0.0", p.url);

    assert_eq!(get(&format!("{base}.zip")).await, (200, m.zip()));
    assert_eq!(get(&format!("{base}.mod")).await, (200, m.go_mod()));
    let vdir = storage.path().join("example.com/heal/@v");
    assert!(vdir.join("v1.0.0.ziphash").exists(), "the zip's h1 is kept");

    // Lose the zip and the .mod behind the proxy's back: the .info marker (also in memory)
    // still says the version is there.
    std::fs::remove_file(vdir.join("v1.0.0.zip")).unwrap();
    std::fs::remove_file(vdir.join("v1.0.0.mod")).unwrap();
    assert_eq!(get(&format!("{base}.mod")).await, (200, m.go_mod()));
    assert_eq!(get(&format!("{base}.zip")).await, (200, m.zip()));
    assert!(vdir.join("v1.0.0.zip").exists() && vdir.join("v1.0.0.mod").exists());
    assert_eq!(metric(&p, "athens_storage_repairs_total").await, 1);

    // A wiped bucket.
    for e in std::fs::read_dir(storage.path()).unwrap() {
        std::fs::remove_dir_all(e.unwrap().path()).unwrap();
    }
    assert_eq!(get(&format!("{base}.zip")).await, (200, m.zip()));
    assert_eq!(get(&format!("{base}.mod")).await, (200, m.go_mod()));
    assert!(vdir.join("v1.0.0.info").exists());
    assert_eq!(upstream.hits("example.com/heal/@v/v1.0.0.zip"), 3);
}

/// A module outside the checksum database (a private pattern) is restored only with the bytes
/// it was stored with: an upstream that now serves a different, well-formed zip is refused.
#[tokio::test(flavor = "multi_thread")]
async fn a_restored_zip_must_match_the_hash_it_was_stored_with() {
    let m = FakeModule::new("corp.example/lib", "v1.0.0");
    let up_dir = tempfile::tempdir().unwrap();
    m.write_to(up_dir.path());
    let sumdb = SumdbServer::start(up_dir.path(), "sumdb.test");
    let upstream = LocalUpstream::start(up_dir.path().to_path_buf()).await;
    let storage = tempfile::tempdir().unwrap();
    let p = proxy(
        storage.path(),
        &upstream.url,
        &sumdb.gosumdb(),
        &["--nosum", "corp.example", "--failed-fill-seconds", "0"],
    );
    let base = format!("{}/corp.example/lib/@v/v1.0.0", p.url);
    assert_eq!(get(&format!("{base}.zip")).await, (200, m.zip()));

    let mut other = m.clone();
    other
        .files
        .push(("extra.go".into(), b"package lib\n".to_vec()));
    upstream.fault("corp.example/lib/@v/v1.0.0.zip", Fault::Body(other.zip()));
    let vdir = storage.path().join("corp.example/lib/@v");
    std::fs::remove_file(vdir.join("v1.0.0.zip")).unwrap();
    let (status, body) = get(&format!("{base}.zip")).await;
    assert_eq!(status, 502, "{}", String::from_utf8_lossy(&body));
    assert!(
        String::from_utf8_lossy(&body).contains("but it was stored with h1:"),
        "{}",
        String::from_utf8_lossy(&body)
    );
    assert!(
        !vdir.join("v1.0.0.zip").exists(),
        "nothing different was stored"
    );

    // The right bytes come back: restored.
    upstream.clear_faults();
    assert_eq!(get(&format!("{base}.zip")).await, (200, m.zip()));
}

/// The derived list file (what a GOPROXY=file:// reader of the bucket uses) is rebuilt from the
/// stored versions when it lost entries.
#[tokio::test(flavor = "multi_thread")]
async fn a_list_file_that_lost_entries_is_rebuilt() {
    let a = FakeModule::new("example.com/listed", "v1.0.0");
    let b = FakeModule::new("example.com/listed", "v1.1.0");
    let up_dir = tempfile::tempdir().unwrap();
    a.write_to(up_dir.path());
    b.write_to(up_dir.path());
    let sumdb = SumdbServer::start(up_dir.path(), "sumdb.test");
    let upstream = LocalUpstream::start(up_dir.path().to_path_buf()).await;
    let storage = tempfile::tempdir().unwrap();
    let p = proxy(storage.path(), &upstream.url, &sumdb.gosumdb(), &[]);
    for v in ["v1.0.0", "v1.1.0"] {
        let (s, _) = get(&format!("{}/example.com/listed/@v/{v}.info", p.url)).await;
        assert_eq!(s, 200);
    }
    let list = storage.path().join("example.com/listed/@v/list");
    std::fs::write(&list, "v1.0.0\n").unwrap();
    let (s, _) = get(&format!("{}/example.com/listed/@v/list", p.url)).await;
    assert_eq!(s, 200);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        if std::fs::read_to_string(&list).unwrap() == "v1.0.0\nv1.1.0\n" {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "list file not rebuilt"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
