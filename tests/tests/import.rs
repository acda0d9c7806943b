//! Importing an Athens bucket on MinIO (Athens's layout: module paths not case-escaped) into a
//! proxy's storage, each version verified against the checksum database while copying: a
//! tampered zip is reported and not stored, the rest is served offline, listed by /catalog and
//! has /index rows.

use athens_e2e::minio::MinioServer;
use athens_e2e::modzip::FakeModule;
use athens_e2e::proxy::proxy_bin;
use athens_e2e::world::{StorageSpec, World};
use object_store::aws::AmazonS3Builder;
use object_store::path::Path as Key;
use object_store::{ObjectStoreExt, PutPayload};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn athens_bucket_is_imported_with_verification() {
    let tampered = FakeModule::new("example.com/tampered", "v1.0.0");
    let world = World::new(vec![
        FakeModule::new("example.com/a", "v1.0.0"),
        FakeModule::new("example.com/Upper/mod", "v0.1.0"),
        tampered.clone(),
    ])
    .await;
    let minio = MinioServer::start().await;
    let src = AmazonS3Builder::new()
        .with_endpoint(&minio.endpoint)
        .with_bucket_name(&minio.bucket)
        .with_access_key_id(&minio.access_key)
        .with_secret_access_key(&minio.secret_key)
        .with_region(&minio.region)
        .with_allow_http(true)
        .with_virtual_hosted_style_request(false)
        .build()
        .unwrap();
    let put = |k: String, body: Vec<u8>| {
        let src = &src;
        async move {
            src.put(
                &Key::parse(format!("athens/{k}")).unwrap(),
                PutPayload::from(body),
            )
            .await
            .unwrap();
        }
    };
    for m in &world.modules {
        // Athens's layout: the path as it is, upper case included.
        let base = format!("{}/@v/{}", m.path, m.version);
        let zip = if m.path == tampered.path {
            let mut bad = m.clone();
            bad.files[1].1.extend_from_slice(b"\n// tampered\n");
            bad.zip()
        } else {
            m.zip()
        };
        put(format!("{base}.info"), m.info()).await;
        put(format!("{base}.mod"), m.go_mod()).await;
        put(format!("{base}.zip"), zip).await;
    }
    put("NotAModule/@v/v1.0.0.info".into(), b"{}".to_vec()).await;

    let target = tempfile::tempdir().unwrap();
    let storage = StorageSpec::file(target.path());
    let out = std::process::Command::new(proxy_bin())
        .args([
            "--import-from",
            &format!("s3://{}/athens", minio.bucket),
            "--import-option",
            &format!("endpoint={}", minio.endpoint),
            "--import-option",
            &format!("region={}", minio.region),
            "--import-option",
            "allow_http=true",
            "--import-option",
            "virtual_hosted_style_request=false",
            "--storage",
            &storage.url,
            "--upstream",
            "off",
            "--sumdb",
            &world.sumdb.gosumdb(),
        ])
        .env_remove("ATHENS_CONFIG")
        .env("AWS_ACCESS_KEY_ID", &minio.access_key)
        .env("AWS_SECRET_ACCESS_KEY", &minio.secret_key)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let all = format!("{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(
        out.status.code(),
        Some(1),
        "a failed version fails the import: {all}"
    );
    assert!(
        stdout.contains("import: 2 imported, 1 failed, 1 skipped"),
        "{all}"
    );
    assert!(
        stdout.contains("FAILED example.com/tampered@v1.0.0: checksum mismatch"),
        "{all}"
    );
    assert!(stdout.contains("SKIPPED NotAModule@v1.0.0"), "{all}");

    // What was imported is whole and exactly what the database signed; the tampered version
    // is absent.
    assert_eq!(world.assert_storage_whole(&storage).await, 2);
    let offline = world.offline_proxy(&storage);
    let catalog = reqwest::get(format!("{}/catalog", offline.url()))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(catalog.contains("\"example.com/Upper/mod\""), "{catalog}");
    assert!(!catalog.contains("tampered"), "{catalog}");
    let index = reqwest::get(format!("{}/index", offline.url()))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(index.lines().count(), 2, "{index}");
}
