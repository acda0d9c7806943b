//! One storage suite, run against every backend we can run here: `file://`, `memory://`, and
//! S3 on a real MinIO server. The proxy fills the bucket from a local upstream and serves from it;
//! the library-level checks pin the bucket rules (create-only, commit marker, leases).

use athens_e2e::minio::MinioServer;
use athens_e2e::modzip::FakeModule;
use athens_e2e::proxy::ProxyProcess;
use athens_e2e::sumdb::SumdbServer;
use athens_e2e::upstream::LocalUpstream;
use athens_proxy::fetch::lease::{Acquired, try_acquire};
use athens_proxy::storage::{Committed, Layout, Store};
use bytes::Bytes;
use std::collections::BTreeMap;
use std::time::Duration;

/// A storage backend under test: the URL, non-secret options, and the credentials env.
struct Backend {
    url: String,
    options: BTreeMap<String, String>,
    env: Vec<(String, String)>,
    /// Whether a second process sees what the first stored.
    shared: bool,
}

impl Backend {
    fn config_file(&self, upstream: &str, gosumdb: &str, mode: &str) -> tempfile::NamedTempFile {
        let mut text = format!(
            "listen = \"127.0.0.1:0\"\n[upstream]\ngoproxy = \"{upstream}\"\nsumdb = \"{gosumdb}\"\nnetwork_mode = \"{mode}\"\n[storage]\nurl = \"{}\"\n[storage.options]\n",
            self.url
        );
        for (k, v) in &self.options {
            text.push_str(&format!("{k} = \"{v}\"\n"));
        }
        let f = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(f.path(), text).unwrap();
        f
    }

    fn proxy(
        &self,
        upstream: &str,
        gosumdb: &str,
        mode: &str,
    ) -> (ProxyProcess, tempfile::NamedTempFile) {
        let cfg = self.config_file(upstream, gosumdb, mode);
        let env: Vec<(&str, &str)> = self
            .env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        (
            ProxyProcess::start(&["--config", cfg.path().to_str().unwrap()], &env),
            cfg,
        )
    }

    /// The library's view of the same bucket (credentials as options: tests only).
    fn store(&self) -> Store {
        let mut opts = self.options.clone();
        for (k, v) in &self.env {
            match k.as_str() {
                "AWS_ACCESS_KEY_ID" => opts.insert("access_key_id".into(), v.clone()),
                "AWS_SECRET_ACCESS_KEY" => opts.insert("secret_access_key".into(), v.clone()),
                _ => None,
            };
        }
        Store::new(athens_proxy::storage::open(&self.url, &opts).expect("open storage"))
    }
}

async fn body(url: &str) -> (u16, Vec<u8>) {
    let r = reqwest::get(url).await.unwrap();
    (r.status().as_u16(), r.bytes().await.unwrap().to_vec())
}

async fn suite(backend: Backend) {
    let mods = [
        FakeModule::new("example.com/hello", "v1.0.0"),
        FakeModule::new("example.com/hello", "v1.1.0"),
        FakeModule::new("example.com/Caps", "v0.1.0"),
    ];
    let dir = tempfile::tempdir().unwrap();
    for m in &mods {
        m.write_to(dir.path());
    }
    let sumdb = SumdbServer::start(dir.path(), "sumdb.test");
    let upstream = LocalUpstream::start(dir.path().to_path_buf()).await;

    let (proxy, _cfg) = backend.proxy(&upstream.url, &sumdb.gosumdb(), "strict");
    for m in &mods {
        let base = format!("{}/{}/@v/{}", proxy.url, m.escaped_path(), m.version);
        assert_eq!(
            body(&format!("{base}.zip")).await,
            (200, m.zip()),
            "{}",
            backend.url
        );
        assert_eq!(body(&format!("{base}.mod")).await, (200, m.go_mod()));
        assert_eq!(body(&format!("{base}.info")).await, (200, m.info()));
    }
    let ready = body(&format!("{}/readyz", proxy.url)).await;
    assert_eq!(ready.0, 200, "{}", String::from_utf8_lossy(&ready.1));

    if backend.shared {
        // Another process on the same bucket serves it all without upstream.
        drop(upstream);
        let (offline, _cfg2) = backend.proxy("off", "off", "offline");
        for m in &mods {
            let base = format!("{}/{}/@v/{}", offline.url, m.escaped_path(), m.version);
            assert_eq!(body(&format!("{base}.zip")).await, (200, m.zip()));
        }
        assert_eq!(
            body(&format!("{}/example.com/hello/@v/list", offline.url)).await,
            (200, b"v1.0.0\nv1.1.0\n".to_vec())
        );
        let store = backend.store();
        let mut versions = store.versions("example.com/hello").await.unwrap();
        versions.sort();
        assert_eq!(versions, ["v1.0.0", "v1.1.0"]);
        assert_eq!(
            store
                .get_blob("example.com/hello/@v/list")
                .await
                .unwrap()
                .as_deref(),
            Some(&b"v1.0.0\nv1.1.0\n"[..]),
            "the list file a file:// GOPROXY reads"
        );
        assert!(
            store
                .versions("example.com/!caps")
                .await
                .unwrap()
                .contains(&"v0.1.0".to_string())
        );
    }
    library_rules(&backend.store()).await;
}

/// The bucket rules, straight through the library on the real backend.
async fn library_rules(store: &Store) {
    let l = Layout {
        module: "example.com/rules",
        version: "v1.0.0",
    };
    // Create-only: a second write to the same key changes nothing.
    assert!(
        store
            .create_blob("rules/x", Bytes::from_static(b"one"))
            .await
            .unwrap()
    );
    assert!(
        !store
            .create_blob("rules/x", Bytes::from_static(b"two"))
            .await
            .unwrap()
    );
    assert_eq!(
        store.get_blob("rules/x").await.unwrap().as_deref(),
        Some(&b"one"[..])
    );

    // Invisible until the .info marker; a second commit keeps the first.
    let zip = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(zip.path(), vec![42u8; 6 << 20]).unwrap();
    store
        .create_blob(&l.zip(), Bytes::from_static(b"partial"))
        .await
        .unwrap();
    assert!(store.zip(l).await.unwrap().is_none());
    assert!(!store.has_version(l).await.unwrap());
    let first = store
        .commit(
            l,
            zip.path(),
            Bytes::from_static(b"module example.com/rules\n"),
            Bytes::from_static(b"{\"Version\":\"v1.0.0\"}"),
            "h1:rules",
        )
        .await
        .unwrap();
    assert_eq!(first, Committed::Written);
    let z = store.zip(l).await.unwrap().expect("zip after commit");
    assert_eq!(z.size, 6 << 20, "multipart upload stored the whole file");
    let again = store
        .commit(
            l,
            zip.path(),
            Bytes::from_static(b"module example.com/rules\n"),
            Bytes::from_static(b"{}"),
            "h1:rules",
        )
        .await
        .unwrap();
    assert_eq!(again, Committed::AlreadyThere);
    assert_eq!(
        store.info(l).await.unwrap().as_deref(),
        Some(&b"{\"Version\":\"v1.0.0\"}"[..])
    );

    // One lease holder at a time, across handles.
    let ttl = Duration::from_secs(30);
    let Acquired::Held(guard) = try_acquire(store, &l.lease(), "a", ttl).await.unwrap() else {
        panic!("first lease must be granted");
    };
    assert!(matches!(
        try_acquire(store, &l.lease(), "b", ttl).await.unwrap(),
        Acquired::Busy
    ));
    guard.release().await;
    assert!(matches!(
        try_acquire(store, &l.lease(), "b", ttl).await.unwrap(),
        Acquired::Held(_)
    ));
    store.ping().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn file_storage() {
    let dir = tempfile::tempdir().unwrap();
    suite(Backend {
        url: format!("file://{}", dir.path().display()),
        options: BTreeMap::new(),
        env: Vec::new(),
        shared: true,
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn memory_storage() {
    suite(Backend {
        url: "memory://".into(),
        options: BTreeMap::new(),
        env: Vec::new(),
        shared: false,
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn s3_storage_on_minio() {
    let minio = MinioServer::start().await;
    let options = BTreeMap::from([
        ("endpoint".to_string(), minio.endpoint.clone()),
        ("region".to_string(), minio.region.clone()),
        ("allow_http".to_string(), "true".to_string()),
        (
            "virtual_hosted_style_request".to_string(),
            "false".to_string(),
        ),
    ]);
    suite(Backend {
        url: format!("s3://{}/some/prefix", minio.bucket),
        options,
        env: vec![
            ("AWS_ACCESS_KEY_ID".into(), minio.access_key.clone()),
            ("AWS_SECRET_ACCESS_KEY".into(), minio.secret_key.clone()),
        ],
        shared: true,
    })
    .await;
}
