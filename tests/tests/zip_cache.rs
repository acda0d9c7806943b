//! `storage.zip_cache_dir`, as the operator renders it for a bucket by default: a zip this proxy
//! fills is copied to the pod's emptyDir as it is committed, one it reads from the bucket (a
//! real MinIO here) is copied beside that response, and both are sent from the copy
//! afterwards, while the real go command checks every zip it gets against the checksum
//! database. The copies stay within their room, least recently served out first.

use athens_e2e::gocmd::GoEnv;
use athens_e2e::minio::MinioServer;
use athens_e2e::modzip::FakeModule;
use athens_e2e::proxy::ProxyProcess;
use athens_e2e::rendered::{RenderedStorage, render_storage};
use athens_e2e::sumdb::SumdbServer;
use athens_e2e::upstream::LocalUpstream;
use athens_operator::crd::StorageSpec;
use std::path::Path;
use std::time::Duration;

/// MinIO's bucket as the operator renders `spec.storage.s3` with `zipCacheSizeLimit: limit`.
fn on_minio(minio: &MinioServer, limit: Option<String>) -> RenderedStorage {
    let storage = StorageSpec {
        zip_cache_size_limit: limit,
        ..minio.storage_spec("copies")
    };
    render_storage(&storage, &minio.secrets()).expect("render the storage")
}

/// The value of `athens_zip_cache_total{outcome=...}` (0 when absent).
async fn zip_cache_count(p: &ProxyProcess, outcome: &str) -> u64 {
    let prefix = format!("athens_zip_cache_total{{outcome=\"{outcome}\"}} ");
    p.metrics()
        .await
        .lines()
        .find_map(|l| l.strip_prefix(&prefix)?.trim().parse().ok())
        .unwrap_or(0)
}

/// Waits until `outcome` has been counted `n` times (copies are written beside the response,
/// so one may complete a moment after the client has its bytes).
async fn wait_for_count(p: &ProxyProcess, outcome: &str, n: u64) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let got = zip_cache_count(p, outcome).await;
        if got >= n {
            assert_eq!(got, n, "{outcome}");
            return;
        }
        if std::time::Instant::now() >= deadline {
            let m = p.metrics().await;
            let lines: Vec<&str> = m.lines().filter(|l| l.contains("zip")).collect();
            panic!("{outcome}: {got} of {n} after 30 s; {lines:#?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The copies in the cache folder: names and sizes.
fn copies(dir: &Path) -> Vec<(String, u64)> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            (name, e.metadata().unwrap().len())
        })
        .collect()
}

async fn get_zip(p: &ProxyProcess, m: &FakeModule) -> Vec<u8> {
    let url = format!("{}/{}/@v/{}.zip", p.url, m.escaped_path(), m.version);
    let r = reqwest::get(&url).await.unwrap();
    assert_eq!(r.status(), 200, "{url}");
    r.bytes().await.unwrap().to_vec()
}

#[tokio::test(flavor = "multi_thread")]
async fn warm_zips_are_sent_from_local_copies_within_their_room() {
    let minio = MinioServer::start().await;
    let mods: Vec<FakeModule> = (0..6)
        .map(|i| FakeModule::new(&format!("example.com/Copied{i}"), "v1.0.0"))
        .collect();
    let dir = tempfile::tempdir().unwrap();
    for m in &mods {
        m.write_to(dir.path());
    }
    let sumdb = SumdbServer::start(dir.path(), "sumdb.test");
    let up = LocalUpstream::start(dir.path().to_path_buf()).await;

    // By default a bucket gets a 1Gi emptyDir, 80% of it for copies.
    let default = on_minio(&minio, None);
    assert!(default.zip_cache_dir.is_some());
    assert_eq!(default.zip_cache_max_bytes, (1 << 30) / 5 * 4);
    // Here: room for four of these zips but not six.
    let largest = mods.iter().map(|m| m.zip().len() as u64).max().unwrap();
    let limit = (largest * 4 + largest / 2) * 5 / 4 + 5;
    let r = on_minio(&minio, Some(limit.to_string()));
    let cache_dir = r.zip_cache_dir.clone().expect("a zip cache");
    let room = r.zip_cache_max_bytes;
    assert!((4 * largest..6 * largest).contains(&room), "{room}");

    let (p, _cfg) = r.start_proxy(&format!(
        "listen = \"127.0.0.1:0\"\n\
         [upstream]\ngoproxy = \"{}\"\nsumdb = \"{}\"\nprefetch_zips = false\n",
        up.url,
        sumdb.gosumdb()
    ));

    // Cold, through the go command: filled into the bucket and copied from the verified file.
    let m = &mods[0];
    let work = tempfile::tempdir().unwrap();
    let out = GoEnv::new(&p.url, &sumdb.key).download(work.path(), &[(&m.path, &m.version)]);
    assert!(out.contains("\"Sum\": \"h1:"), "{out}");
    assert!(!out.contains("\"Error\""), "{out}");
    wait_for_count(&p, "copied", 1).await;
    let found = copies(&cache_dir);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].0.ends_with(".zip"), "{found:?}");
    let copy = std::fs::read(cache_dir.join(&found[0].0)).unwrap();
    assert_eq!(copy, m.zip(), "the copy holds the bucket's bytes");

    // Warm, from an empty module cache: sent from the copy, and the go command checks it
    // against go.sum's line from the checksum database (it fails on a mismatch).
    let hits = zip_cache_count(&p, "hit").await;
    let work = tempfile::tempdir().unwrap();
    let out = GoEnv::new(&p.url, &sumdb.key).download(work.path(), &[(&m.path, &m.version)]);
    assert!(out.contains("\"Sum\": \"h1:"), "{out}");
    assert!(!out.contains("\"Error\""), "{out}");
    assert_eq!(zip_cache_count(&p, "hit").await, hits + 1);

    // Six zips into room for four: the least recently served copies make room, the rest stay.
    for (i, m) in mods.iter().enumerate().skip(1) {
        assert_eq!(get_zip(&p, m).await, m.zip());
        wait_for_count(&p, "copied", i as u64 + 1).await;
        let used: u64 = copies(&cache_dir).iter().map(|c| c.1).sum();
        assert!(used <= room, "{used} bytes of copies in room for {room}");
    }
    let evicted = zip_cache_count(&p, "evicted").await;
    assert!(evicted >= 2, "evicted {evicted}");
    assert_eq!(copies(&cache_dir).len() as u64, 6 - evicted);
    // mods[0] was served least recently: gone from the folder, served from the bucket, and
    // copied again beside that response (the server stops reading the bucket's stream at the
    // zip's length: the copy must not wait for the stream's end).
    let hits = zip_cache_count(&p, "hit").await;
    assert_eq!(get_zip(&p, &mods[0]).await, mods[0].zip());
    assert_eq!(zip_cache_count(&p, "hit").await, hits, "not from a copy");
    wait_for_count(&p, "copied", 7).await;
    assert_eq!(zip_cache_count(&p, "abandoned").await, 0);
    assert_eq!(get_zip(&p, &mods[0]).await, mods[0].zip());
    assert_eq!(
        zip_cache_count(&p, "hit").await,
        hits + 1,
        "from its new copy"
    );
    // The newest is a hit.
    assert_eq!(get_zip(&p, &mods[5]).await, mods[5].zip());
    assert_eq!(zip_cache_count(&p, "hit").await, hits + 2);
}
