//! One storage suite, run against every backend we can run here: `file://`, `memory://`, S3 on
//! a real MinIO server, Google Cloud Storage on fake-gcs-server, Azure Blob on Azurite and
//! MongoDB on FerretDB. The proxy fills the bucket from a local upstream and serves from it, the
//! go command downloads through it, and the library-level checks pin the bucket rules
//! (create-only, commit marker, multipart zips, leases, listing). The bucket backends are
//! configured as the operator renders them (ConfigMap, env, Secret files), so each storage
//! kind's rendering is proven against a server that speaks its protocol.
//!
//! Where an emulator is not the real service, the test says so at the backend.

use athens_e2e::azurite::{self, Azurite};
use athens_e2e::ferretdb::FerretDb;
use athens_e2e::gcs::GcsEmulator;
use athens_e2e::gocmd::GoEnv;
use athens_e2e::minio::MinioServer;
use athens_e2e::modzip::FakeModule;
use athens_e2e::proxy::ProxyProcess;
use athens_e2e::rendered::SecretData;
use athens_e2e::rendered::{render_storage, secret, storage_toml};
use athens_e2e::sumdb::SumdbServer;
use athens_e2e::upstream::LocalUpstream;
use athens_operator::crd::{
    AzureCredentials, AzureStorage, GcsCredentials, GcsStorage, MongoDbCredentials, MongoDbStorage,
    StorageSpec,
};
use athens_proxy::fetch::lease::{Acquired, try_acquire};
use athens_proxy::storage::{Committed, Layout, Store};
use bytes::Bytes;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A storage backend under test: the URL, non-secret options, and the credentials env.
struct Backend {
    url: String,
    options: BTreeMap<String, String>,
    env: Vec<(String, String)>,
    /// Whether a second process sees what the first stored.
    shared: bool,
    /// Files the configuration points at (a rendered pod's Secret files).
    _files: Option<tempfile::TempDir>,
    /// The rendered zip cache: the folder each proxy process gets a folder of its own in, and
    /// `zip_cache_max_bytes`.
    zip_cache: Option<(PathBuf, u64)>,
}

/// What one proxy process reads and writes besides the bucket: its config file, and its own zip
/// cache (a pod's emptyDir).
struct ProxyFiles {
    _config: tempfile::NamedTempFile,
    _zip_cache: Option<tempfile::TempDir>,
}

impl Backend {
    /// A shared bucket configured as the operator renders `storage` with `secrets`.
    fn rendered(storage: StorageSpec, secrets: &SecretData) -> Backend {
        let r = render_storage(&storage, secrets).expect("render the storage");
        let zip_cache = r.zip_cache_dir.map(|dir| (dir, r.zip_cache_max_bytes));
        assert!(zip_cache.is_some(), "a bucket gets a zip cache by default");
        Backend {
            url: r.url,
            options: r.options,
            env: r.env,
            shared: true,
            _files: Some(r.root),
            zip_cache,
        }
    }

    fn local(url: String, shared: bool) -> Backend {
        Backend {
            url,
            options: BTreeMap::new(),
            env: Vec::new(),
            shared,
            _files: None,
            zip_cache: None,
        }
    }

    fn config_file(
        &self,
        upstream: &str,
        gosumdb: &str,
        mode: &str,
        zip_cache: Option<&Path>,
    ) -> tempfile::NamedTempFile {
        let cache = zip_cache.zip(self.zip_cache.as_ref().map(|(_, max)| *max));
        let text = format!(
            "listen = \"127.0.0.1:0\"\n[upstream]\ngoproxy = \"{upstream}\"\nsumdb = \"{gosumdb}\"\nnetwork_mode = \"{mode}\"\n{}",
            storage_toml(&self.url, &self.options, 0, cache)
        );
        let f = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(f.path(), text).unwrap();
        f
    }

    fn proxy(&self, upstream: &str, gosumdb: &str, mode: &str) -> (ProxyProcess, ProxyFiles) {
        // Each pod has its own emptyDir: a second process on the bucket must not find the first
        // one's copies (it proves the bucket holds the zips).
        let zip_cache = self
            .zip_cache
            .as_ref()
            .map(|(dir, _)| tempfile::tempdir_in(dir).unwrap());
        let cfg = self.config_file(
            upstream,
            gosumdb,
            mode,
            zip_cache.as_ref().map(|d| d.path()),
        );
        let env: Vec<(&str, &str)> = self
            .env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        (
            ProxyProcess::start(&["--config", cfg.path().to_str().unwrap()], &env),
            ProxyFiles {
                _config: cfg,
                _zip_cache: zip_cache,
            },
        )
    }

    /// The library's view of the same bucket: what the proxy reads from its environment,
    /// passed as options (the test process's environment is shared by parallel tests).
    fn store(&self) -> Store {
        let mut opts = self.options.clone();
        for (k, v) in &self.env {
            let option = match k.as_str() {
                "AWS_ACCESS_KEY_ID" => "access_key_id",
                "AWS_SECRET_ACCESS_KEY" => "secret_access_key",
                "AZURE_STORAGE_ACCOUNT_NAME" => "account_name",
                "AZURE_STORAGE_ACCOUNT_KEY" => "access_key",
                "GOOGLE_SERVICE_ACCOUNT" => "service_account",
                "MONGODB_USERNAME" => "username",
                "MONGODB_PASSWORD" => "password",
                other => panic!("the test does not know the proxy's variable {other}"),
            };
            opts.insert(option.into(), v.clone());
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

    // The go command downloads them through the proxy and checks them against the checksum
    // database (found through the proxy's /sumdb/ endpoint).
    let go = GoEnv::new(&proxy.url, &sumdb.key);
    let work = tempfile::tempdir().unwrap();
    let wanted: Vec<(&str, &str)> = mods.iter().map(|m| (&*m.path, &*m.version)).collect();
    let out = go.download(work.path(), &wanted);
    assert_eq!(out.matches("\"Sum\": \"h1:").count(), mods.len(), "{out}");
    assert!(!out.contains("\"Error\""), "{out}");

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
        let listing = store.stored_versions("example.com/hello").await.unwrap();
        let tagged: Vec<&str> = listing.tagged.iter().map(|v| v.as_str()).collect();
        assert_eq!(tagged, ["v1.0.0", "v1.1.0"]);
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
                .stored_versions("example.com/!caps")
                .await
                .unwrap()
                .all
                .iter()
                .any(|v| v.as_str() == "v0.1.0")
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
    suite(Backend::local(
        format!("file://{}", dir.path().display()),
        true,
    ))
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn memory_storage() {
    suite(Backend::local("memory://".into(), false)).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn s3_storage_on_minio() {
    let minio = MinioServer::start().await;
    suite(Backend::rendered(
        minio.storage_spec("some/prefix"),
        &minio.secrets(),
    ))
    .await;
}

/// Google Cloud Storage on fake-gcs-server, reached through a service account key (from a
/// Secret, mounted as the operator renders it) that names the emulator (`gcs_base_url`) and
/// turns OAuth off. Not the real service: object PUT with `x-goog-if-generation-match`, DELETE
/// and multipart uploads go through the small XML-API front in tests/peers/gcs-emulator, which
/// hands them to the emulator's JSON API (preconditions checked by the emulator); multipart
/// parts are joined in the front, not by the emulator.
#[tokio::test(flavor = "multi_thread")]
async fn gcs_storage_on_fake_gcs_server() {
    let gcs = GcsEmulator::start().await;
    let storage = StorageSpec {
        gcs: Some(GcsStorage {
            bucket: gcs.bucket.clone(),
            prefix: Some("gcs/prefix".into()),
            credentials: Some(GcsCredentials {
                secret_name: "gcs".into(),
                key: None,
            }),
        }),
        ..Default::default()
    };
    let key = gcs.service_account_json();
    let secrets = secret("gcs", &[("service-account.json", &key)]);
    suite(Backend::rendered(storage, &secrets)).await;
}

/// Azure Blob Storage on Azurite, with its development account and key (from a Secret) and the
/// account endpoint set as a user would for Azurite. Azurite implements the conditional
/// (`If-None-Match: *`) writes and block-list uploads object_store uses.
#[tokio::test(flavor = "multi_thread")]
async fn azure_storage_on_azurite() {
    let az = Azurite::start().await;
    let storage = StorageSpec {
        azure: Some(AzureStorage {
            account: azurite::ACCOUNT.into(),
            container: az.container.clone(),
            prefix: Some("az/prefix".into()),
            endpoint: Some(az.endpoint()),
            credentials: Some(AzureCredentials {
                secret_name: "azure".into(),
                account_key_key: None,
            }),
        }),
        ..Default::default()
    };
    let secrets = secret(
        "azure",
        &[("AZURE_STORAGE_ACCOUNT_KEY", azurite::ACCOUNT_KEY)],
    );
    suite(Backend::rendered(storage, &secrets)).await;
}

/// MongoDB (objects as documents, large zips in chunks) on FerretDB, a MongoDB wire-protocol
/// server, with its SQLite backend. FerretDB enforces the unique `_id` the create-only writes
/// rely on; it is not MongoDB itself (no replica sets here). Credentials come from a Secret as
/// the operator renders them and go over the wire with PLAIN authentication, but FerretDB's
/// SQLite backend accepts any: that they are checked is not proven here.
#[tokio::test(flavor = "multi_thread")]
async fn mongodb_storage_on_ferretdb() {
    let db = FerretDb::start().await;
    let storage = StorageSpec {
        mongodb: Some(MongoDbStorage {
            url: format!(
                "{}?authMechanism=PLAIN&authSource=$external",
                db.database_url("athens")
            ),
            credentials: Some(MongoDbCredentials {
                secret_name: "mongo".into(),
                ..Default::default()
            }),
        }),
        ..Default::default()
    };
    let secrets = secret(
        "mongo",
        &[
            ("MONGODB_USERNAME", "athens"),
            ("MONGODB_PASSWORD", "secret"),
        ],
    );
    suite(Backend::rendered(storage, &secrets)).await;
}
