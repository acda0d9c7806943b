//! `/catalog` and `/index` in Athens's shapes, answered from the bucket: on a local folder and on
//! MinIO, by the proxy that stored the versions and by a second, offline proxy on the same bucket
//! (a replica that never saw the fills). The 100,000-version measurement is an ignored test
//! (`catalog_bench_100k`) that prints numbers.

use athens_e2e::minio::MinioServer;
use athens_e2e::modzip::FakeModule;
use athens_e2e::world::{StorageSpec, World, file_base};
use athens_proxy::storage::{Layout, index_row_key};
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use serde_json::Value;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Instant;

fn modules() -> Vec<FakeModule> {
    vec![
        FakeModule::new("example.com/a", "v1.0.0"),
        FakeModule::new("example.com/a", "v1.1.0"),
        FakeModule::new("example.com/a/v2", "v2.0.0"),
        FakeModule::new("example.com/Upper/mod", "v0.1.0"),
        FakeModule::new("example.org/b", "v1.0.0-rc.1"),
    ]
}

async fn get(url: &str) -> (u16, String) {
    let r = reqwest::get(url).await.expect("GET");
    let status = r.status().as_u16();
    (status, r.text().await.expect("body"))
}

/// Every page of `/catalog?pagesize=size`, checking each page's shape.
async fn catalog_all(base: &str, size: usize) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut token: Option<String> = None;
    for _ in 0..1000 {
        let url = match &token {
            Some(t) => format!("{base}/catalog?pagesize={size}&token={t}"),
            None => format!("{base}/catalog?pagesize={size}"),
        };
        let (status, body) = get(&url).await;
        assert_eq!(status, 200, "{url}: {body}");
        let v: Value = serde_json::from_str(&body).expect("catalog JSON");
        let obj = v.as_object().expect("an object");
        assert!(obj.keys().all(|k| k == "modules" || k == "next"), "{body}");
        let mods = v["modules"].as_array().expect("modules array");
        assert!(mods.len() <= size, "{body}");
        for m in mods {
            assert_eq!(m.as_object().unwrap().len(), 2, "{m}");
            out.push((
                m["module"].as_str().unwrap().to_string(),
                m["version"].as_str().unwrap().to_string(),
            ));
        }
        match v.get("next").and_then(Value::as_str) {
            Some(t) => token = Some(t.to_string()),
            None => return out,
        }
    }
    panic!("/catalog never ended");
}

fn index_rows(body: &str) -> Vec<(String, String, chrono::DateTime<chrono::Utc>)> {
    body.lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).expect("one JSON object per line");
            assert_eq!(v.as_object().unwrap().len(), 3, "{l}");
            let ts = chrono::DateTime::parse_from_rfc3339(v["Timestamp"].as_str().unwrap())
                .expect("RFC 3339 Timestamp")
                .with_timezone(&chrono::Utc);
            (
                v["Path"].as_str().unwrap().to_string(),
                v["Version"].as_str().unwrap().to_string(),
                ts,
            )
        })
        .collect()
}

async fn check_catalog_and_index(world: &World, storage: &StorageSpec) {
    let want: BTreeSet<(String, String)> = world
        .modules
        .iter()
        .map(|m| (m.path.clone(), m.version.clone()))
        .collect();
    let proxy = world.proxy(storage, "");
    // Before anything is stored: an empty catalog without `next`, an empty index.
    let (status, body) = get(&format!("{}/catalog", proxy.url())).await;
    assert_eq!((status, body.as_str()), (200, r#"{"modules":[]}"#));
    let (status, body) = get(&format!("{}/index", proxy.url())).await;
    assert_eq!((status, body.as_str()), (200, ""));

    let started = chrono::Utc::now() - chrono::Duration::seconds(5);
    for m in &world.modules {
        let (status, body) = get(&format!("{}/{}.zip", proxy.url(), file_base(m))).await;
        assert_eq!(status, 200, "{}: {body}", m.path);
    }
    let offline = world.offline_proxy(storage);
    for base in [proxy.url(), offline.url()] {
        for size in [1, 2, 1000] {
            let got = catalog_all(base, size).await;
            let set: BTreeSet<_> = got.iter().cloned().collect();
            assert_eq!(set.len(), got.len(), "no version twice: {got:?}");
            assert_eq!(set, want, "pagesize {size} at {base}");
        }
        let (status, body) = get(&format!("{base}/index")).await;
        assert_eq!(status, 200);
        let rows = index_rows(&body);
        let set: BTreeSet<_> = rows
            .iter()
            .map(|(p, v, _)| (p.clone(), v.clone()))
            .collect();
        assert_eq!((set, rows.len()), (want.clone(), want.len()), "{body}");
        assert!(
            rows.windows(2).all(|w| w[0].2 <= w[1].2),
            "oldest first: {body}"
        );
        assert!(
            rows[0].2 >= started,
            "stored times, not module times: {body}"
        );
        // `since` is inclusive; `limit` cuts.
        let since = rows[2]
            .2
            .to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
        let (_, body) = get(&format!("{base}/index?since={since}")).await;
        let from = index_rows(&body);
        assert!(
            from.len() >= rows.len() - 2 && from.iter().all(|r| r.2 >= rows[2].2),
            "{body}"
        );
        let (_, body) = get(&format!("{base}/index?limit=2")).await;
        assert_eq!(index_rows(&body), rows[..2].to_vec());
        let later = (rows[rows.len() - 1].2 + chrono::Duration::seconds(1))
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let (status, body) = get(&format!("{base}/index?since={later}")).await;
        assert_eq!((status, body.as_str()), (200, ""));
    }
    // Bad input is 400 with a reason, on both.
    for q in [
        "catalog?pagesize=ten",
        "catalog?pagesize=0",
        "catalog?token=not-a-token",
        "catalog?token=ZXhhbXBsZS5jb20vYS9Adi92MS4wLjAubW9k",
        "index?since=yesterday",
        "index?limit=-1",
        "index?limit=x",
    ] {
        let (status, body) = get(&format!("{}/{q}", offline.url())).await;
        assert_eq!(status, 400, "{q}: {body}");
        assert!(body.starts_with("invalid "), "{q}: {body}");
    }
}

#[tokio::test]
async fn catalog_and_index_on_a_local_folder() {
    let world = World::new(modules()).await;
    let dir = tempfile::tempdir().unwrap();
    let storage = StorageSpec::file(dir.path());
    check_catalog_and_index(&world, &storage).await;

    // Rows lost (or a bucket filled before rows existed): --reindex writes them again.
    std::fs::remove_dir_all(dir.path().join("_index")).unwrap();
    let offline = world.offline_proxy(&storage);
    let (_, body) = get(&format!("{}/index", offline.url())).await;
    assert_eq!(body, "");
    let reindex = |want: &str| {
        let out = std::process::Command::new(athens_e2e::proxy::proxy_bin())
            .args([
                "--reindex",
                "--storage",
                &storage.url,
                "--upstream",
                "off",
                "--sumdb",
                "off",
            ])
            .env_remove("ATHENS_CONFIG")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(
            out.status.success() && stdout.contains(want),
            "{stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    reindex(&format!("wrote {} missing", world.modules.len()));
    let (_, body) = get(&format!("{}/index", offline.url())).await;
    assert_eq!(index_rows(&body).len(), world.modules.len(), "{body}");
    reindex("wrote 0 missing");
}

#[tokio::test]
async fn catalog_and_index_on_minio() {
    let world = World::new(modules()).await;
    let minio = MinioServer::start().await;
    check_catalog_and_index(&world, &StorageSpec::s3(&minio)).await;
}

/// More versions than one bucket listing page holds (1,000 keys): `/catalog` pages continue
/// the bucket's listing by its page token, and `/index` pages by the token the proxy
/// remembered; both must still give every version once, in order, and a token the bucket
/// refuses must give the same page as a genuine one.
#[tokio::test]
async fn catalog_and_index_across_bucket_listing_pages_on_minio() {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    const N: usize = 400;
    let world = World::new(vec![FakeModule::new("example.com/a", "v1.0.0")]).await;
    let minio = MinioServer::start().await;
    let s3 = StorageSpec::s3(&minio);
    let mut options = s3.options.clone();
    options.insert("access_key_id".into(), minio.access_key.clone());
    options.insert("secret_access_key".into(), minio.secret_key.clone());
    seed(
        athens_proxy::storage::open(&s3.url, &options).unwrap(),
        N,
        16,
    )
    .await;
    let proxy = world.offline_proxy(&s3);
    let base = proxy.url();

    let got = catalog_all(base, 300).await;
    let want: Vec<(String, String)> = (0..N)
        .map(|i| {
            (
                format!("example.com/bench/m{:05}", i / 10),
                format!("v1.0.{}", i % 10),
            )
        })
        .collect();
    assert_eq!(got, want, "every version once, in key order");

    // Pages that end past the bucket's first listing page carry its token (three keys a
    // version here, a thousand keys a listing page).
    let (_, first) = get(&format!("{base}/catalog?pagesize=350")).await;
    let next = serde_json::from_str::<Value>(&first).unwrap()["next"]
        .as_str()
        .expect("a next token")
        .to_string();
    let decoded = String::from_utf8(URL_SAFE_NO_PAD.decode(&next).unwrap()).unwrap();
    let (key, store_token) = decoded
        .split_once('\n')
        .expect("the bucket's token rides along");
    assert!(!store_token.is_empty());
    let forged = URL_SAFE_NO_PAD.encode(format!("{key}\nnot-a-token"));
    let (status, genuine) = get(&format!("{base}/catalog?pagesize=30&token={next}")).await;
    assert_eq!(status, 200, "{genuine}");
    assert!(genuine.contains("example.com/bench/m00035"), "{genuine}");
    let (status, refused) = get(&format!("{base}/catalog?pagesize=30&token={forged}")).await;
    assert_eq!(status, 200, "{refused}");
    let modules = |body: &str| serde_json::from_str::<Value>(body).unwrap()["modules"].clone();
    assert_eq!(modules(&refused), modules(&genuine));

    let (mut seen, mut since) = (Vec::new(), String::new());
    loop {
        let (status, body) = get(&format!("{base}/index?limit=150&since={since}")).await;
        assert_eq!(status, 200, "{body}");
        let rows = index_rows(&body);
        let Some(last) = rows.last().cloned() else {
            break;
        };
        let fresh: Vec<_> = rows
            .into_iter()
            .filter(|(p, v, _)| !seen.iter().any(|(sp, sv, _)| sp == p && sv == v))
            .collect();
        if fresh.is_empty() {
            break;
        }
        seen.extend(fresh);
        since = last.2.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
    }
    assert_eq!(seen.len(), N, "every row once");
    assert!(seen.windows(2).all(|w| w[0].2 <= w[1].2), "oldest first");
}

/// Writes `n` committed versions (`.info`, `.mod`, `.zip` and an index row each) straight
/// into the bucket, `concurrency` at a time.
async fn seed(os: Arc<dyn ObjectStore>, n: usize, concurrency: usize) {
    use futures::StreamExt;
    let base = chrono::Utc::now() - chrono::Duration::days(1);
    futures::stream::iter(0..n)
        .map(|i| {
            let os = os.clone();
            async move {
                let module = format!("example.com/bench/m{:05}", i / 10);
                let version = format!("v1.0.{}", i % 10);
                let l = Layout {
                    module: &module,
                    version: &version,
                };
                let at = base + chrono::Duration::milliseconds(i as i64);
                let info = format!(r#"{{"Version":"{version}","Time":"2024-01-02T03:04:05Z"}}"#);
                for (k, body) in [
                    (l.zip(), PutPayload::from_static(b"PK")),
                    (l.go_mod(), PutPayload::from(format!("module {module}\n"))),
                    (l.info(), PutPayload::from(info)),
                    (index_row_key(at, l), PutPayload::new()),
                ] {
                    os.put(&object_store::path::Path::parse(&k).unwrap(), body)
                        .await
                        .expect("seed put");
                }
            }
        })
        .buffer_unordered(concurrency)
        .collect::<Vec<()>>()
        .await;
}

async fn time_paging(label: &str, base: &str, n: usize) {
    let http = reqwest::Client::new();
    let started = Instant::now();
    let (mut count, mut pages, mut token) = (0usize, 0usize, None::<String>);
    loop {
        let mut url = format!("{base}/catalog?pagesize=1000");
        if let Some(t) = &token {
            url.push_str(&format!("&token={t}"));
        }
        let v: Value = http.get(&url).send().await.unwrap().json().await.unwrap();
        count += v["modules"].as_array().unwrap().len();
        pages += 1;
        match v.get("next").and_then(Value::as_str) {
            Some(t) => token = Some(t.to_string()),
            None => break,
        }
    }
    let catalog = started.elapsed();
    assert_eq!(count, n, "{label}: catalog saw every version");
    let started = Instant::now();
    let (mut rows, mut since, mut requests) = (0usize, String::new(), 0usize);
    let mut seen = BTreeSet::new();
    loop {
        let url = format!("{base}/index?limit=2000&since={since}");
        let body = http.get(&url).send().await.unwrap().text().await.unwrap();
        requests += 1;
        let page = index_rows(&body);
        let before = seen.len();
        for (p, v, _) in &page {
            seen.insert(format!("{p}@{v}"));
        }
        rows += page.len();
        if page.len() < 2000 || seen.len() == before {
            break;
        }
        // Rows at the last timestamp come again (since is inclusive); the set drops them.
        since = page[page.len() - 1]
            .2
            .to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
    }
    let index = started.elapsed();
    assert_eq!(seen.len(), n, "{label}: index saw every version");
    println!(
        "{label}: {n} versions: /catalog pagesize=1000: {pages} pages in {:.2} s; \
         /index limit=2000: {requests} requests ({rows} rows) in {:.2} s",
        catalog.as_secs_f64(),
        index.as_secs_f64()
    );
}

fn bench_n() -> usize {
    std::env::var("ATHENS_BENCH_VERSIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000)
}

/// Measures paging through `ATHENS_BENCH_VERSIONS` (default 100,000) versions on a local
/// folder and on MinIO (`ATHENS_BENCH_STORES=local` for the folder only). Run: `cargo test -p athens-e2e --test catalog -- --ignored --nocapture`.
#[tokio::test]
#[ignore = "a measurement, not a test: prints numbers"]
async fn catalog_bench_100k() {
    let n = bench_n();
    let world = World::new(vec![FakeModule::new("example.com/a", "v1.0.0")]).await;
    let dir = tempfile::tempdir().unwrap();
    let local = StorageSpec::file(dir.path());
    let started = Instant::now();
    seed(
        athens_proxy::storage::open(&local.url, &local.options).unwrap(),
        n,
        16,
    )
    .await;
    println!(
        "local: seeded {n} versions in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let proxy = world.offline_proxy(&local);
    time_paging("local folder", proxy.url(), n).await;
    drop(proxy);
    if std::env::var("ATHENS_BENCH_STORES").is_ok_and(|s| !s.contains("minio")) {
        return;
    }

    let minio = MinioServer::start().await;
    let s3 = StorageSpec::s3(&minio);
    let started = Instant::now();
    // SAFETY of env: the only thread touching the environment at this point.
    unsafe {
        std::env::set_var("AWS_ACCESS_KEY_ID", &minio.access_key);
        std::env::set_var("AWS_SECRET_ACCESS_KEY", &minio.secret_key);
    }
    seed(
        athens_proxy::storage::open(&s3.url, &s3.options).unwrap(),
        n,
        32,
    )
    .await;
    println!(
        "minio: seeded {n} versions in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let proxy = world.offline_proxy(&s3);
    time_paging("minio", proxy.url(), n).await;
}

/// What one MinIO listing page costs, by how it is resumed: a start-after offset (what
/// `/catalog` and `/index` do today, so any replica can answer any page) against MinIO's own
/// continuation token (one listing followed page by page). Seeds `ATHENS_PROBE_VERSIONS`
/// (default 20,000) versions. Measured here (debug build): 100,000 keys in one folder, 100 pages
/// of 1,000 in 9.7 s by start-after (slowest 0.16 s) and 5.1 s by token; 20,000 nested versions
/// (60,000 keys) in 5.8 s and 7.1 s. So a start-after page alone does not cost the bucket's size.
/// Run: `cargo test -p athens-e2e --test catalog minio_listing_probe
/// -- --ignored --nocapture`.
#[tokio::test]
#[ignore = "a measurement, not a test: prints numbers"]
async fn minio_listing_probe() {
    use object_store::list::{PaginatedListOptions, PaginatedListStore};
    let n: usize = std::env::var("ATHENS_PROBE_VERSIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let minio = MinioServer::start().await;
    let s3 = object_store::aws::AmazonS3Builder::new()
        .with_endpoint(&minio.endpoint)
        .with_region(&minio.region)
        .with_bucket_name(&minio.bucket)
        .with_access_key_id(&minio.access_key)
        .with_secret_access_key(&minio.secret_key)
        .with_allow_http(true)
        .build()
        .unwrap();
    let s3 = Arc::new(s3);
    let started = Instant::now();
    // `flat`: n keys side by side in one folder, as `_index/` rows are.
    let flat = std::env::var("ATHENS_PROBE_LAYOUT").is_ok_and(|l| l == "flat");
    let prefix = if flat { "flat/" } else { "example.com/" };
    if flat {
        use futures::StreamExt;
        futures::stream::iter(0..n)
            .map(|i| {
                let s3 = s3.clone();
                async move {
                    let key = object_store::path::Path::parse(format!("flat/k{i:08}/x")).unwrap();
                    s3.put(&key, PutPayload::new()).await.expect("seed put");
                }
            })
            .buffer_unordered(32)
            .collect::<Vec<()>>()
            .await;
    } else {
        seed(s3.clone(), n, 32).await;
    }
    println!(
        "probe: seeded {n} versions ({} keys, {prefix}) in {:.1} s",
        if flat { n } else { n * 4 },
        started.elapsed().as_secs_f64()
    );
    let page = |offset: Option<String>, page_token: Option<String>| {
        let s3 = s3.clone();
        async move {
            let t = Instant::now();
            let r = s3
                .list_paginated(
                    Some(prefix),
                    PaginatedListOptions {
                        offset,
                        page_token,
                        max_keys: Some(1000),
                        ..Default::default()
                    },
                )
                .await
                .unwrap();
            (r, t.elapsed().as_secs_f64())
        }
    };
    // Every page resumed from the previous page's last key (start-after).
    let (mut pages, mut keys, mut slowest, mut offset) = (0, 0, 0f64, None::<String>);
    let started = Instant::now();
    loop {
        let (r, took) = page(offset.clone(), None).await;
        pages += 1;
        keys += r.result.objects.len();
        slowest = slowest.max(took);
        match (r.page_token, r.result.objects.last()) {
            (Some(_), Some(last)) => offset = Some(last.location.to_string()),
            _ => break,
        }
    }
    println!(
        "probe: start-after: {keys} keys in {pages} pages, {:.1} s, slowest page {:.2} s",
        started.elapsed().as_secs_f64(),
        slowest
    );
    // The same walk, each page resumed with the token MinIO handed out.
    let (mut pages, mut keys, mut slowest, mut token) = (0, 0, 0f64, None::<String>);
    let started = Instant::now();
    loop {
        let (r, took) = page(None, token.clone()).await;
        pages += 1;
        keys += r.result.objects.len();
        slowest = slowest.max(took);
        match r.page_token {
            Some(t) => token = Some(t),
            None => break,
        }
    }
    println!(
        "probe: continuation token: {keys} keys in {pages} pages, {:.1} s, slowest page {:.2} s",
        started.elapsed().as_secs_f64(),
        slowest
    );
    // Single pages from a cold offset near the start and near the end.
    for at in [0, n / 2, n.saturating_sub(100)] {
        let key = if flat {
            format!("flat/k{at:08}/")
        } else {
            format!("example.com/bench/m{:05}/", at / 10)
        };
        let (_, took) = page(Some(key.clone()), None).await;
        println!("probe: one page after {key}: {took:.2} s");
    }
}
