//! `storage.zip_redirect_seconds`: warm `.zip` hits answered with a `307` to a pre-signed URL of
//! the bucket itself (a real MinIO here, for S3), which the real go command follows, checking
//! the bytes it gets against the checksum database as always. Filters still answer first.

use athens_e2e::azurite::{self, Azurite};
use athens_e2e::gocmd::GoEnv;
use athens_e2e::minio::MinioServer;
use athens_e2e::modzip::FakeModule;
use athens_e2e::proxy::{ProxyProcess, proxy_bin};
use athens_e2e::rendered::{RenderedStorage, render_storage, secret};
use athens_e2e::sumdb::SumdbServer;
use athens_e2e::upstream::LocalUpstream;
use athens_operator::crd::{AzureCredentials, AzureStorage, StorageSpec};
use std::time::Duration;

/// MinIO's bucket under the prefix `redirect`, with zip redirects valid `seconds`, as the
/// operator renders `spec.storage` (so the field's rendering is tested on the way).
fn on_minio(minio: &MinioServer, seconds: u64) -> RenderedStorage {
    let storage = StorageSpec {
        zip_redirect_seconds: Some(seconds),
        ..minio.storage_spec("redirect")
    };
    let r = render_storage(&storage, &minio.secrets()).expect("render the storage");
    assert_eq!(r.zip_redirect_seconds, seconds);
    // Warm zips are redirected: no zip cache unless the spec asks for one.
    assert_eq!(r.zip_cache_dir, None);
    r
}

/// A proxy on the rendered bucket `r`, with `policy` as its `[policy]` section. The config
/// file is returned to live as long as the proxy.
fn proxy_on(
    r: &RenderedStorage,
    upstream: &str,
    gosumdb: &str,
    policy: &str,
) -> (ProxyProcess, tempfile::NamedTempFile) {
    // prefetch_zips off: a zip is filled by its own request only, so the first download is
    // deterministically the cold one (filled and streamed), not a race with a background fill.
    r.start_proxy(&format!(
        "listen = \"127.0.0.1:0\"\n\
         [upstream]\ngoproxy = \"{upstream}\"\nsumdb = \"{gosumdb}\"\nprefetch_zips = false\n\
         [policy]\nreload_seconds = 1\n{policy}\n"
    ))
}

fn zip_url(p: &ProxyProcess, m: &FakeModule) -> String {
    format!("{}/{}/@v/{}.zip", p.url, m.escaped_path(), m.version)
}

fn no_follow() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// The `Location` of a `307` answer to `url`; panics on any other answer.
async fn redirect_of(client: &reqwest::Client, url: &str) -> String {
    let r = client.get(url).send().await.unwrap();
    assert_eq!(r.status(), 307, "{url}");
    r.headers()["location"].to_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn warm_zips_redirect_to_the_bucket_and_the_go_command_follows() {
    let minio = MinioServer::start().await;
    let m = FakeModule::new("example.com/Redirected", "v1.4.0");
    let x = FakeModule::new("example.com/excluded", "v1.0.0");
    let dir = tempfile::tempdir().unwrap();
    m.write_to(dir.path());
    x.write_to(dir.path());
    let sumdb = SumdbServer::start(dir.path(), "sumdb.test");
    let up = LocalUpstream::start(dir.path().to_path_buf()).await;
    let (p, _cfg) = proxy_on(&on_minio(&minio, 120), &up.url, &sumdb.gosumdb(), "");
    let client = no_follow();

    // Cold, through the go command: filled from upstream and streamed by the proxy.
    let go = GoEnv::new(&p.url, &sumdb.key);
    let work = tempfile::tempdir().unwrap();
    let out = go.download(work.path(), &[(&m.path, &m.version)]);
    assert!(out.contains("\"Sum\": \"h1:"), "{out}");
    assert!(!out.contains("\"Error\""), "{out}");
    // Cold, by hand: a plain 200 with the zip's bytes.
    let cold = client.get(zip_url(&p, &x)).send().await.unwrap();
    assert_eq!(cold.status(), 200);
    assert_eq!(cold.bytes().await.unwrap().as_ref(), x.zip().as_slice());

    // Warm: a redirect to a signed URL of the bucket itself, which serves the same bytes.
    let location = redirect_of(&client, &zip_url(&p, &m)).await;
    // Path style: endpoint/bucket/prefix/key (the key's `!` and `@` may be percent-encoded).
    let bucket = format!("{}/{}/redirect/example.com/", minio.endpoint, minio.bucket);
    assert!(location.starts_with(&bucket), "{location}");
    assert!(location.contains("/v1.4.0.zip?"), "{location}");
    assert!(location.contains("X-Amz-Signature="), "{location}");
    assert!(location.contains("X-Amz-Expires=120"), "{location}");
    let direct = reqwest::get(&location).await.unwrap();
    assert_eq!(direct.status(), 200);
    assert_eq!(direct.bytes().await.unwrap().as_ref(), m.zip().as_slice());
    // The signature is what lets the client in: the same object unsigned is refused.
    let unsigned = location.split('?').next().unwrap();
    assert_eq!(reqwest::get(unsigned).await.unwrap().status(), 403);
    // .info and .mod are still the proxy's own answers.
    let info = format!("{}/{}/@v/v1.4.0.info", p.url, m.escaped_path());
    assert_eq!(client.get(&info).send().await.unwrap().status(), 200);

    // The go command, from an empty module cache, follows the redirect to MinIO and checks
    // the zip against the checksum database (it fails on a mismatch).
    let again = GoEnv::new(&p.url, &sumdb.key);
    let work = tempfile::tempdir().unwrap();
    let out = again.download(work.path(), &[(&m.path, &m.version), (&x.path, &x.version)]);
    assert_eq!(out.matches("\"Sum\": \"h1:").count(), 2, "{out}");
    assert!(!out.contains("\"Error\""), "{out}");

    // A second proxy on the same bucket: URLs valid one second, and a filter excluding x.
    let policy_dir = tempfile::tempdir().unwrap();
    let filter = policy_dir.path().join("filter");
    std::fs::write(&filter, "- example.com/excluded\n").unwrap();
    let policy = format!("filter_file = {:?}", filter.display().to_string());
    let (short, _cfg2) = proxy_on(&on_minio(&minio, 1), "off", "off", &policy);
    // The filter answers before any redirect: warm in the bucket, still 403.
    let blocked = client.get(zip_url(&short, &x)).send().await.unwrap();
    assert_eq!(blocked.status(), 403);
    assert!(blocked.headers().get("location").is_none());
    // An expired URL is refused by the bucket.
    let location = redirect_of(&client, &zip_url(&short, &m)).await;
    assert!(location.contains("X-Amz-Expires=1&"), "{location}");
    tokio::time::sleep(Duration::from_secs(3)).await;
    let expired = reqwest::get(&location).await.unwrap();
    assert_eq!(expired.status(), 403);
    let body = expired.text().await.unwrap();
    assert!(body.contains("expired"), "{body}");
}

/// Azure Blob Storage on Azurite: the warm zip's redirect is a SAS URL signed with the account
/// key, which Azurite checks.
#[tokio::test(flavor = "multi_thread")]
async fn warm_zips_redirect_to_azurite_with_a_sas() {
    let az = Azurite::start().await;
    let storage = StorageSpec {
        azure: Some(AzureStorage {
            account: azurite::ACCOUNT.into(),
            container: az.container.clone(),
            prefix: Some("redirect".into()),
            endpoint: Some(az.endpoint()),
            credentials: Some(AzureCredentials {
                secret_name: "azure".into(),
                account_key_key: None,
            }),
        }),
        zip_redirect_seconds: Some(120),
        ..Default::default()
    };
    let secrets = secret(
        "azure",
        &[("AZURE_STORAGE_ACCOUNT_KEY", azurite::ACCOUNT_KEY)],
    );
    let r = render_storage(&storage, &secrets).expect("render the storage");
    let m = FakeModule::new("example.com/blob", "v0.2.0");
    let dir = tempfile::tempdir().unwrap();
    m.write_to(dir.path());
    let sumdb = SumdbServer::start(dir.path(), "sumdb.test");
    let up = LocalUpstream::start(dir.path().to_path_buf()).await;
    let (p, _cfg) = proxy_on(&r, &up.url, &sumdb.gosumdb(), "");
    let client = no_follow();

    let cold = client.get(zip_url(&p, &m)).send().await.unwrap();
    assert_eq!(cold.status(), 200);
    assert_eq!(cold.bytes().await.unwrap().as_ref(), m.zip().as_slice());
    let location = redirect_of(&client, &zip_url(&p, &m)).await;
    let blob = format!("{}/{}/redirect/example.com/", az.endpoint(), az.container);
    assert!(location.starts_with(&blob), "{location}");
    assert!(location.contains("sig="), "{location}");
    let direct = reqwest::get(&location).await.unwrap();
    assert_eq!(direct.status(), 200, "{location}");
    assert_eq!(direct.bytes().await.unwrap().as_ref(), m.zip().as_slice());
    let unsigned = location.split('?').next().unwrap();
    assert_ne!(reqwest::get(unsigned).await.unwrap().status(), 200);
}

#[test]
fn zip_redirects_need_a_bucket_that_signs() {
    let f = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        f.path(),
        "listen = \"127.0.0.1:0\"\n[upstream]\ngoproxy = \"off\"\nsumdb = \"off\"\n\
         [storage]\nurl = \"memory://\"\nzip_redirect_seconds = 60\n",
    )
    .unwrap();
    let out = std::process::Command::new(proxy_bin())
        .args(["--config", f.path().to_str().unwrap()])
        .env_remove("ATHENS_CONFIG")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("storage.zip_redirect_seconds"), "{err}");
    assert!(err.contains("s3://, gs:// or az://"), "{err}");
}
