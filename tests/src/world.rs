//! A module graph for the fault and load tests: made-up modules with zips big enough to be cut
//! mid-body, the local upstream serving them, a checksum database that signed them, proxies
//! over any storage, and the checks that every client got what the database signed.

use crate::gocmd::GoEnv;
use crate::minio::MinioServer;
use crate::modzip::FakeModule;
use crate::proxy::ProxyProcess;
use crate::reliability::{Outcome, Tally};
use crate::sumdb::SumdbServer;
use crate::upstream::LocalUpstream;
use athens_proxy::module::escape_version;
use athens_proxy::upstream::error_chain;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub const SUMDB_NAME: &str = "sumdb.test";

/// `n` modules `example.com/graph/mNN`, each at v1.0.0 and every other one also at v1.1.0,
/// each requiring the next, each carrying `payload` bytes that do not compress.
pub fn graph(n: usize, payload: usize) -> Vec<FakeModule> {
    let mut out = Vec::new();
    for i in 0..n {
        let path = format!("example.com/graph/m{i:02}");
        let versions: &[&str] = if i % 2 == 0 {
            &["v1.0.0", "v1.1.0"]
        } else {
            &["v1.0.0"]
        };
        for v in versions {
            let mut m = FakeModule::new(&path, v);
            let mut go_mod = format!("module {path}\n\ngo 1.21\n");
            if i + 1 < n {
                go_mod.push_str(&format!(
                    "\nrequire example.com/graph/m{:02} v1.0.0\n",
                    i + 1
                ));
            }
            m.files[0].1 = go_mod.into_bytes();
            m.files
                .push(("data.bin".into(), noise(payload, &format!("{path}@{v}"))));
            out.push(m);
        }
    }
    out
}

/// Deterministic bytes that deflate cannot shrink (xorshift64 seeded by `seed`).
fn noise(len: usize, seed: &str) -> Vec<u8> {
    let mut x = seed.bytes().fold(0x9E37_79B9_7F4A_7C15u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x100_0000_01B3)
    });
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Where a proxy keeps modules: the URL, non-secret options and the credentials env.
#[derive(Clone)]
pub struct StorageSpec {
    pub url: String,
    pub options: BTreeMap<String, String>,
    pub env: Vec<(String, String)>,
}

impl StorageSpec {
    pub fn file(dir: &std::path::Path) -> Self {
        Self {
            url: format!("file://{}", dir.display()),
            options: BTreeMap::new(),
            env: Vec::new(),
        }
    }

    pub fn s3(minio: &MinioServer) -> Self {
        Self {
            url: format!("s3://{}/faults", minio.bucket),
            options: BTreeMap::from([
                ("endpoint".to_string(), minio.endpoint.clone()),
                ("region".to_string(), minio.region.clone()),
                ("allow_http".to_string(), "true".to_string()),
                (
                    "virtual_hosted_style_request".to_string(),
                    "false".to_string(),
                ),
            ]),
            env: vec![
                ("AWS_ACCESS_KEY_ID".into(), minio.access_key.clone()),
                ("AWS_SECRET_ACCESS_KEY".into(), minio.secret_key.clone()),
            ],
        }
    }
}

/// A running proxy and the config file it reads.
pub struct Proxy {
    pub process: ProxyProcess,
    _config: tempfile::NamedTempFile,
}

impl Proxy {
    pub fn url(&self) -> &str {
        &self.process.url
    }
}

/// `modules` written into a new upstream folder, a checksum database (named [`SUMDB_NAME`]) that
/// signed them, and the upstream serving the folder.
pub async fn serve_signed(
    modules: &[FakeModule],
) -> (tempfile::TempDir, SumdbServer, LocalUpstream) {
    let dir = tempfile::tempdir().expect("tempdir");
    for m in modules {
        m.write_to(dir.path());
    }
    let sumdb = SumdbServer::start(dir.path(), SUMDB_NAME);
    let upstream = LocalUpstream::start(dir.path().to_path_buf()).await;
    (dir, sumdb, upstream)
}

/// Modules, their upstream and their checksum database.
pub struct World {
    pub dir: tempfile::TempDir,
    pub modules: Vec<FakeModule>,
    pub upstream: LocalUpstream,
    pub sumdb: SumdbServer,
    /// The go.sum lines the database signed, by `path@version`: (zip line, go.mod line).
    signed: HashMap<String, (String, String)>,
    /// Each module's zip, built once: building one takes long enough in a debug build to
    /// skew the timing of a fault.
    zips: HashMap<String, bytes::Bytes>,
}

impl World {
    pub async fn new(modules: Vec<FakeModule>) -> Self {
        let (dir, sumdb, upstream) = serve_signed(&modules).await;
        let mut signed = HashMap::new();
        for m in &modules {
            signed.insert(id(m), signed_lines(&sumdb, m).await);
        }
        let zips = modules
            .iter()
            .map(|m| (id(m), bytes::Bytes::from(m.zip())))
            .collect();
        Self {
            dir,
            modules,
            upstream,
            sumdb,
            signed,
            zips,
        }
    }

    /// `m`'s zip, as the upstream serves it.
    pub fn zip(&self, m: &FakeModule) -> bytes::Bytes {
        self.zips[&id(m)].clone()
    }

    /// Starts a proxy on `storage`; `upstream_toml` adds lines to its `[upstream]` table.
    pub fn proxy(&self, storage: &StorageSpec, upstream_toml: &str) -> Proxy {
        self.proxy_with(
            storage,
            &self.upstream.url,
            &self.sumdb.gosumdb(),
            upstream_toml,
        )
    }

    /// A proxy that serves only what `storage` holds.
    pub fn offline_proxy(&self, storage: &StorageSpec) -> Proxy {
        self.proxy_with(storage, "off", "off", "network_mode = \"offline\"\n")
    }

    fn proxy_with(
        &self,
        storage: &StorageSpec,
        goproxy: &str,
        gosumdb: &str,
        upstream_toml: &str,
    ) -> Proxy {
        let mut text = format!(
            "listen = \"127.0.0.1:0\"\n[upstream]\ngoproxy = \"{goproxy}\"\nsumdb = \"{gosumdb}\"\n{upstream_toml}[storage]\nurl = \"{}\"\n[storage.options]\n",
            storage.url
        );
        for (k, v) in &storage.options {
            text.push_str(&format!("{k} = \"{v}\"\n"));
        }
        let config = tempfile::NamedTempFile::new().expect("tempfile");
        std::fs::write(config.path(), text).expect("write config");
        let env: Vec<(&str, &str)> = storage
            .env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let process = ProxyProcess::start(
            &["--config", config.path().to_str().expect("utf-8 path")],
            &env,
        );
        Proxy {
            process,
            _config: config,
        }
    }

    /// Upstream requests for module files (`.info`, `.mod`, `.zip`) so far.
    pub fn upstream_fetches(&self) -> usize {
        self.modules
            .iter()
            .flat_map(|m| {
                let base = file_base(m);
                [".info", ".mod", ".zip"].map(move |s| format!("{base}{s}"))
            })
            .map(|p| self.upstream.hits(&p))
            .sum()
    }

    /// Asserts every version was fetched from upstream exactly once per file.
    pub fn assert_fetched_once(&self) {
        for m in &self.modules {
            for s in [".info", ".mod", ".zip"] {
                let p = format!("{}{s}", file_base(m));
                assert_eq!(self.upstream.hits(&p), 1, "upstream fetches of {p}");
            }
        }
    }

    /// `clients` concurrent HTTP clients, each GETting every module file once (in its own
    /// order), each answer checked against the module's bytes.
    pub async fn http_round(&self, proxy_url: &str, clients: usize) -> Tally {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(120))
            .build()
            .expect("client");
        let files: Arc<Vec<(String, Vec<u8>)>> = Arc::new(
            self.modules
                .iter()
                .flat_map(|m| {
                    let base = format!("{proxy_url}/{}", file_base(m));
                    [
                        (format!("{base}.info"), m.info()),
                        (format!("{base}.mod"), m.go_mod()),
                        (format!("{base}.zip"), self.zip(m).to_vec()),
                    ]
                })
                .collect(),
        );
        let tasks: Vec<_> = (0..clients)
            .map(|c| {
                let (http, files) = (http.clone(), files.clone());
                tokio::spawn(async move {
                    let mut tally = Tally::default();
                    for i in 0..files.len() {
                        let (url, want) = &files[(i + c) % files.len()];
                        let started = Instant::now();
                        let outcome = get_checked(&http, url, want).await;
                        tally.add(&outcome, want.len() as u64, started.elapsed());
                    }
                    tally
                })
            })
            .collect();
        let mut total = Tally::default();
        for t in tasks {
            total.merge(t.await.expect("client task"));
        }
        total
    }

    /// `clients` x versions requests at once: every client GETs every version's `.zip`
    /// concurrently, so every fill is in flight at the same moment.
    pub async fn http_burst(&self, proxy_url: &str, clients: usize) -> Tally {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(120))
            .build()
            .expect("client");
        let mut tasks = Vec::new();
        for _ in 0..clients {
            for m in &self.modules {
                let (http, want) = (http.clone(), self.zip(m));
                let url = format!("{proxy_url}/{}.zip", file_base(m));
                tasks.push(tokio::spawn(async move {
                    let started = Instant::now();
                    let outcome = get_checked(&http, &url, &want).await;
                    (outcome, want.len() as u64, started.elapsed())
                }));
            }
        }
        let mut tally = Tally::default();
        for t in tasks {
            let (o, b, took) = t.await.expect("client task");
            tally.add(&o, b, took);
        }
        tally
    }

    /// [`World::go_download`], timed.
    pub fn go_download_timed(&self, go: &GoEnv) -> (Outcome, u64, Duration) {
        let started = Instant::now();
        let (o, b) = self.go_download(go);
        (o, b, started.elapsed())
    }

    /// Runs `go mod download -json` for every module through `go`'s proxy, and checks the sums
    /// it recorded against the database's go.sum lines and the zips it kept against the bytes.
    pub fn go_download(&self, go: &GoEnv) -> (Outcome, u64) {
        let work = go.root.path().join("work");
        std::fs::create_dir_all(&work).expect("mkdir");
        let mut args = vec!["mod".to_string(), "download".into(), "-json".into()];
        args.extend(self.modules.iter().map(id));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = go.run(&work, &args);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        let entries: Vec<serde_json::Value> = serde_json::Deserializer::from_str(&stdout)
            .into_iter()
            .collect::<Result<_, _>>()
            .unwrap_or_default();
        let errors: Vec<String> = entries
            .iter()
            .filter_map(|e| e["Error"].as_str().map(str::to_string))
            .collect();
        if !out.status.success() {
            let why = errors
                .first()
                .cloned()
                .unwrap_or_else(|| stderr.to_string());
            return if why.trim().is_empty() {
                (Outcome::Transport("go failed without saying why".into()), 0)
            } else {
                (Outcome::ClearError(first_line(&why)), 0)
            };
        }
        let mut bytes = 0;
        for m in &self.modules {
            let Some(e) = entries
                .iter()
                .find(|e| e["Path"] == m.path.as_str() && e["Version"] == m.version.as_str())
            else {
                return (
                    Outcome::Corrupt(format!("{} missing from go output", id(m))),
                    0,
                );
            };
            let (zip_line, mod_line) = &self.signed[&id(m)];
            let got_zip = format!(
                "{} {} {}",
                m.path,
                m.version,
                e["Sum"].as_str().unwrap_or("")
            );
            let got_mod = format!(
                "{} {}/go.mod {}",
                m.path,
                m.version,
                e["GoModSum"].as_str().unwrap_or("")
            );
            if &got_zip != zip_line || &got_mod != mod_line {
                return (
                    Outcome::Corrupt(format!(
                        "{got_zip} / {got_mod}: database signed {zip_line} / {mod_line}"
                    )),
                    0,
                );
            }
            let kept = std::fs::read(e["Zip"].as_str().unwrap_or("")).unwrap_or_default();
            if kept != self.zip(m) {
                return (Outcome::Corrupt(format!("{}: zip bytes differ", id(m))), 0);
            }
            bytes += kept.len() as u64;
        }
        (Outcome::Correct, bytes)
    }

    /// Asserts that what `storage` holds is whole: through an offline proxy, each module file
    /// is either absent (404) or exactly right. Returns how many versions are there.
    pub async fn assert_storage_whole(&self, storage: &StorageSpec) -> usize {
        let offline = self.offline_proxy(storage);
        let http = reqwest::Client::new();
        let mut present = 0;
        for m in &self.modules {
            let base = format!("{}/{}", offline.url(), file_base(m));
            let mut statuses = Vec::new();
            for (suffix, want) in [
                (".info", m.info()),
                (".mod", m.go_mod()),
                (".zip", self.zip(m).to_vec()),
            ] {
                let r = http
                    .get(format!("{base}{suffix}"))
                    .send()
                    .await
                    .expect("offline proxy answers");
                let status = r.status().as_u16();
                let body = r.bytes().await.expect("offline body");
                match status {
                    200 => assert_eq!(body.as_ref(), want, "{} {suffix} in storage", id(m)),
                    404 => {}
                    s => panic!("{} {suffix}: offline proxy answered {s}", id(m)),
                }
                statuses.push(status);
            }
            assert!(
                statuses.iter().all(|s| *s == statuses[0]),
                "{}: a half version is visible: {statuses:?}",
                id(m)
            );
            present += usize::from(statuses[0] == 200);
        }
        present
    }
}

/// Where many go clients keep their module caches: `/dev/shm` when it is there, because
/// creating and deleting a hundred caches on a shared disk takes minutes, not because the proxy
/// cares; else the temp folder.
pub fn client_root() -> std::path::PathBuf {
    let shm = std::path::Path::new("/dev/shm");
    if tempfile::tempdir_in(shm).is_ok() {
        shm.to_path_buf()
    } else {
        std::env::temp_dir()
    }
}

/// `path@version`.
pub fn id(m: &FakeModule) -> String {
    format!("{}@{}", m.path, m.version)
}

/// `<escaped path>/@v/<escaped version>`, the stem of the module's file URLs.
pub fn file_base(m: &FakeModule) -> String {
    let v = escape_version(&m.version).expect("valid version");
    format!("{}/@v/{v}", m.escaped_path())
}

/// The database's go.sum lines for `m`, from its lookup endpoint.
async fn signed_lines(sumdb: &SumdbServer, m: &FakeModule) -> (String, String) {
    let url = format!("{}/lookup/{}@{}", sumdb.url, m.escaped_path(), m.version);
    let text = reqwest::get(&url)
        .await
        .and_then(|r| r.error_for_status())
        .expect("sumdb lookup")
        .text()
        .await
        .expect("sumdb lookup body");
    let line = |suffix: &str| {
        let prefix = format!("{} {}{suffix} ", m.path, m.version);
        text.lines()
            .find(|l| l.starts_with(&prefix))
            .unwrap_or_else(|| panic!("no {prefix:?} line in {text}"))
            .to_string()
    };
    (line(""), line("/go.mod"))
}

/// GETs `url` and says how it went compared with `want`.
pub async fn get_checked(http: &reqwest::Client, url: &str, want: &[u8]) -> Outcome {
    let resp = match http.get(url).send().await {
        Ok(r) => r,
        Err(e) => return Outcome::Transport(error_chain(&e)),
    };
    let status = resp.status().as_u16();
    let body = match resp.bytes().await {
        Ok(b) => b,
        Err(e) => return Outcome::Transport(format!("{status}, body cut: {}", error_chain(&e))),
    };
    match status {
        200 if body.as_ref() == want => Outcome::Correct,
        200 => Outcome::Corrupt(format!("{url}: {} bytes, want {}", body.len(), want.len())),
        _ => {
            let text = String::from_utf8_lossy(&body);
            if text.trim().is_empty() {
                Outcome::Transport(format!("{url}: {status} with an empty body"))
            } else {
                Outcome::ClearError(format!("{status} {}", first_line(&text)))
            }
        }
    }
}

fn first_line(s: &str) -> String {
    s.lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .to_string()
}
