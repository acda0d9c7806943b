//! A private git host made by the test: HTTPS with the test's own CA on an IP literal's port
//! 443 (module paths need a dot in their first element and the go command needs port 443),
//! basic auth on every request, `go-import` meta tags at `?go-get=1`, and the repositories
//! served over smart HTTP by the real `git http-backend` (as CGI).

use crate::gocmd::GoEnv;
use crate::image::tls::TestCa;
use anyhow::{Context, Result, bail, ensure};
use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response, StatusCode};
use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

pub const USER: &str = "builder";
pub const PASSWORD: &str = "s3cret-token";

/// A running host; stopped on drop.
pub struct GitHost {
    /// The IP literal that is the module paths' host.
    pub host: String,
    /// The CA certificate file clients must trust.
    pub ca_file: PathBuf,
    /// The host's certificate and key in one PEM file, for other servers on the same IP
    /// (`hg serve --certificate`).
    pub server_pem: PathBuf,
    /// Requests answered (any route), for checks that nothing reached the host.
    pub requests: Arc<AtomicUsize>,
    repo_base: Arc<std::sync::Mutex<Option<String>>>,
    import_vcs: Arc<std::sync::Mutex<Option<String>>>,
    bearer: Arc<std::sync::Mutex<Option<String>>>,
    open_discovery: Arc<std::sync::atomic::AtomicBool>,
    task: tokio::task::JoinHandle<()>,
    _dir: tempfile::TempDir,
}

struct State {
    host: String,
    project_root: PathBuf,
    requests: Arc<AtomicUsize>,
    repo_base: Arc<std::sync::Mutex<Option<String>>>,
    import_vcs: Arc<std::sync::Mutex<Option<String>>>,
    bearer: Arc<std::sync::Mutex<Option<String>>>,
    open_discovery: Arc<std::sync::atomic::AtomicBool>,
}

impl GitHost {
    /// Serves the bare repositories under `project_root` (`<name>.git`) at
    /// `https://<host>/git/<name>.git`, and answers `https://<host>/<path>?go-get=1` with
    /// `<host>/<first element of path> git https://<host>/git/<first element>.git`.
    pub async fn start(project_root: &Path) -> Result<GitHost> {
        let dir = tempfile::tempdir()?;
        let (listener, ip) = bind_443().await?;
        let host = ip.to_string();
        let ca = TestCa::new(&[&host])?;
        let ca_file = dir.path().join("ca.pem");
        std::fs::write(&ca_file, &ca.ca_pem)?;
        let server_pem = dir.path().join("server.pem");
        std::fs::write(&server_pem, [&ca.cert_pem[..], &ca.key_pem[..]].concat())?;
        let _ = rustls::crypto::ring::default_provider().install_default();
        use rustls_pki_types::pem::PemObject;
        let certs = rustls_pki_types::CertificateDer::pem_slice_iter(&ca.cert_pem)
            .collect::<Result<Vec<_>, _>>()?;
        let key = rustls_pki_types::PrivateKeyDer::from_pem_slice(&ca.key_pem)?;
        let mut config = rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(certs, key)?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let requests = Arc::new(AtomicUsize::new(0));
        let repo_base = Arc::new(std::sync::Mutex::new(None));
        let import_vcs = Arc::new(std::sync::Mutex::new(None));
        let bearer = Arc::new(std::sync::Mutex::new(None));
        let open_discovery = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let state = Arc::new(State {
            bearer: bearer.clone(),
            open_discovery: open_discovery.clone(),
            host: host.clone(),
            project_root: project_root.to_path_buf(),
            requests: requests.clone(),
            repo_base: repo_base.clone(),
            import_vcs: import_vcs.clone(),
        });
        let task = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                let (acceptor, state) = (acceptor.clone(), state.clone());
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let svc = hyper::service::service_fn(move |req| {
                        let state = state.clone();
                        async move { Ok::<_, std::convert::Infallible>(handle(&state, req).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(tls), svc)
                        .await;
                });
            }
        });
        Ok(GitHost {
            host,
            ca_file,
            server_pem,
            requests,
            repo_base,
            import_vcs,
            bearer,
            open_discovery,
            task,
            _dir: dir,
        })
    }

    /// [`Self::start`] serving `<dir>/repos`, with `<dir>/work` for the working copies:
    /// the host, the served root and the working directory.
    pub async fn start_in(dir: &Path) -> (GitHost, PathBuf, PathBuf) {
        let (root, work) = (dir.join("repos"), dir.join("work"));
        std::fs::create_dir_all(&root).expect("create the served root");
        let host = GitHost::start(&root).await.expect("start the git host");
        (host, root, work)
    }

    /// Makes `go-import` tags name `<base>/<first element>.git` (an `ssh://` URL, say) instead
    /// of this host's smart HTTP URL.
    pub fn set_repo_base(&self, base: &str) {
        *self.repo_base.lock().unwrap() = Some(base.to_string());
    }

    /// Makes `go-import` tags name a `vcs` repository at `<base>/<first element>` (no `.git`),
    /// e.g. an `hg serve` elsewhere.
    pub fn set_import(&self, vcs: &str, base: &str) {
        *self.import_vcs.lock().unwrap() = Some(vcs.to_string());
        self.set_repo_base(base);
    }

    /// From now on git requests (`/git/...`) need `Authorization: Bearer <token>` (as sent
    /// by `http.extraHeader`) instead of basic auth; `?go-get=1` pages still take basic auth.
    pub fn require_bearer_for_git(&self, token: &str) {
        *self.bearer.lock().unwrap() = Some(token.to_string());
    }

    /// From now on `?go-get=1` pages are answered without credentials (as GitHub answers
    /// them); git requests still need them.
    pub fn open_discovery(&self) {
        self.open_discovery.store(true, Ordering::SeqCst);
    }

    /// A `.netrc` granting access to this host.
    pub fn netrc(&self) -> String {
        format!("machine {} login {USER} password {PASSWORD}\n", self.host)
    }
}

impl Drop for GitHost {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Port 443 on a loopback address of its own (`127.x.y.z`, chosen at random so parallel runs
/// do not meet). Binding 443 needs root (or CAP_NET_BIND_SERVICE).
async fn bind_443() -> Result<(tokio::net::TcpListener, Ipv4Addr)> {
    let seed = std::process::id() as u64
        ^ std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_nanos() as u64;
    let mut last = None;
    for i in 0..20u64 {
        let n = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(i * 1442695040888963407);
        let ip = Ipv4Addr::new(
            127,
            100 + (n >> 8) as u8 % 100,
            1 + (n >> 16) as u8 % 250,
            1 + (n >> 24) as u8 % 250,
        );
        match tokio::net::TcpListener::bind(SocketAddr::from((ip, 443))).await {
            Ok(l) => return Ok((l, ip)),
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                bail!("binding {ip}:443 needs root: {e}")
            }
            Err(e) => last = Some(e),
        }
    }
    bail!("no free 127.x.y.z:443: {last:?}")
}

async fn handle(state: &State, req: Request<hyper::body::Incoming>) -> Response<Full<Bytes>> {
    state.requests.fetch_add(1, Ordering::SeqCst);
    let want = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"))
    );
    let bearer = state.bearer.lock().unwrap().clone();
    let want = match bearer {
        Some(token) if req.uri().path().starts_with("/git/") => format!("Bearer {token}"),
        _ => want,
    };
    let open = state.open_discovery.load(Ordering::SeqCst)
        && req.uri().query().is_some_and(|q| q.contains("go-get=1"));
    let authorized = open
        || req
            .headers()
            .get("authorization")
            .is_some_and(|v| v.as_bytes() == want.as_bytes());
    if !authorized {
        return Response::builder()
            .status(StatusCode::UNAUTHORIZED)
            .header("WWW-Authenticate", "Basic realm=\"git\"")
            .body(Full::new(Bytes::from_static(b"authentication required\n")))
            .unwrap();
    }
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    if query.contains("go-get=1") {
        let first = path.trim_start_matches('/').split('/').next().unwrap_or("");
        let base = state.repo_base.lock().unwrap().clone();
        let base = base.unwrap_or_else(|| format!("https://{}/git", state.host));
        let (vcs, suffix) = match state.import_vcs.lock().unwrap().clone() {
            Some(vcs) => (vcs, ""),
            None => ("git".to_string(), ".git"),
        };
        let html = format!(
            "<!DOCTYPE html><html><head><meta name=\"go-import\" content=\"{h}/{first} {vcs} \
             {base}/{first}{suffix}\"></head><body>go get {h}/{first}</body></html>\n",
            h = state.host
        );
        return Response::new(Full::new(Bytes::from(html)));
    }
    if let Some(rest) = path.strip_prefix("/git/") {
        return match cgi(state, req, rest, &query).await {
            Ok(r) => r,
            Err(e) => Response::builder()
                .status(StatusCode::INTERNAL_SERVER_ERROR)
                .body(Full::new(Bytes::from(format!("{e:#}\n"))))
                .unwrap(),
        };
    }
    Response::builder()
        .status(StatusCode::NOT_FOUND)
        .body(Full::new(Bytes::from_static(b"not found\n")))
        .unwrap()
}

/// Runs `git http-backend` for one request and turns its CGI output into a response.
async fn cgi(
    state: &State,
    req: Request<hyper::body::Incoming>,
    rest: &str,
    query: &str,
) -> Result<Response<Full<Bytes>>> {
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    let mut cmd = tokio::process::Command::new("git");
    cmd.arg("http-backend")
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("GIT_PROJECT_ROOT", &state.project_root)
        .env("GIT_HTTP_EXPORT_ALL", "1")
        .env("PATH_INFO", format!("/{rest}"))
        .env("QUERY_STRING", query)
        .env("REQUEST_METHOD", req.method().as_str())
        .env("REMOTE_USER", USER)
        .env("REMOTE_ADDR", "127.0.0.1")
        .env("CONTENT_TYPE", header("content-type"))
        .env("HTTP_CONTENT_ENCODING", header("content-encoding"))
        .env("GIT_PROTOCOL", header("git-protocol"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let body = req.into_body().collect().await?.to_bytes();
    if !body.is_empty() {
        cmd.env("CONTENT_LENGTH", body.len().to_string());
    }
    let mut child = cmd.spawn().context("spawning git http-backend")?;
    let mut stdin = child.stdin.take().context("stdin")?;
    let writer = tokio::spawn(async move {
        use tokio::io::AsyncWriteExt;
        let _ = stdin.write_all(&body).await;
    });
    let out = child.wait_with_output().await?;
    let _ = writer.await;
    ensure!(
        out.status.success(),
        "git http-backend: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let split = out
        .stdout
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| (i, 4))
        .or_else(|| {
            out.stdout
                .windows(2)
                .position(|w| w == b"\n\n")
                .map(|i| (i, 2))
        })
        .context("CGI output without a header end")?;
    let head = String::from_utf8_lossy(&out.stdout[..split.0]).into_owned();
    let mut resp = Response::builder();
    for line in head.lines() {
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        let v = v.trim();
        if k.eq_ignore_ascii_case("status") {
            let code: u16 = v.split_whitespace().next().unwrap_or("200").parse()?;
            resp = resp.status(code);
        } else {
            resp = resp.header(k.trim(), v);
        }
    }
    let body = Bytes::copy_from_slice(&out.stdout[split.0 + split.1..]);
    Ok(resp.body(Full::new(body))?)
}

/// Runs `git` in `dir` with fixed identities, dates from `GIT_*_DATE` in `env`, and no
/// user or system configuration.
pub fn git(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Result<String> {
    let mut cmd = Command::new("git");
    cmd.args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_AUTHOR_NAME", "dev")
        .env("GIT_AUTHOR_EMAIL", "dev@athens.test")
        .env("GIT_COMMITTER_NAME", "dev")
        .env("GIT_COMMITTER_EMAIL", "dev@athens.test");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd
        .output()
        .context("running git (tests/peers/git-tools installs it)")?;
    ensure!(
        out.status.success(),
        "git {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Builds a repository step by step in a work tree, then publishes it as `<name>.git` (bare)
/// under a project root.
pub struct RepoBuilder {
    pub work: PathBuf,
    commits: u32,
}

impl RepoBuilder {
    pub fn new(work: PathBuf) -> Result<Self> {
        std::fs::create_dir_all(&work)?;
        git(&work, &["init", "-q", "-b", "main"], &[])?;
        Ok(Self { work, commits: 0 })
    }

    /// Writes files (path, content); an empty content with a `-` path prefix removes it.
    pub fn write(&self, files: &[(&str, &str)]) -> Result<&Self> {
        for (p, c) in files {
            if let Some(gone) = p.strip_prefix('-') {
                let _ = std::fs::remove_file(self.work.join(gone));
                continue;
            }
            let path = self.work.join(p);
            std::fs::create_dir_all(path.parent().context("parent")?)?;
            std::fs::write(path, c)?;
        }
        Ok(self)
    }

    /// Commits everything with a distinct, fixed date.
    pub fn commit(&mut self, msg: &str) -> Result<String> {
        self.commits += 1;
        let date = format!("2024-01-{:02}T10:00:00Z", self.commits.min(28));
        let env = [
            ("GIT_AUTHOR_DATE", date.as_str()),
            ("GIT_COMMITTER_DATE", date.as_str()),
        ];
        git(&self.work, &["add", "-A"], &[])?;
        git(
            &self.work,
            &["commit", "-q", "--allow-empty", "-m", msg],
            &env,
        )?;
        Ok(git(&self.work, &["rev-parse", "HEAD"], &[])?
            .trim()
            .to_string())
    }

    pub fn tag(&self, name: &str) -> Result<()> {
        git(&self.work, &["tag", name], &[]).map(|_| ())
    }

    pub fn annotated_tag(&self, name: &str) -> Result<()> {
        git(&self.work, &["tag", "-a", "-m", name, name], &[]).map(|_| ())
    }

    /// Pushes branches and tags (forced, so moved tags move) to `<root>/<name>.git`.
    pub fn publish(&self, root: &Path, name: &str) -> Result<()> {
        Self::publish_dir(&self.work, root, name)
    }

    /// [`Self::publish`] for a work tree made earlier.
    pub fn publish_dir(work: &Path, root: &Path, name: &str) -> Result<()> {
        let bare = root.join(format!("{name}.git"));
        if !bare.exists() {
            git(
                root,
                &["init", "-q", "--bare", "-b", "main", &format!("{name}.git")],
                &[],
            )?;
        }
        let target = bare.to_string_lossy().into_owned();
        git(
            work,
            &["push", "-q", "-f", &target, "refs/heads/*:refs/heads/*"],
            &[],
        )?;
        git(
            work,
            &["push", "-q", "-f", &target, "refs/tags/*:refs/tags/*"],
            &[],
        )?;
        Ok(())
    }
}

/// What `go mod download -json` reports that must match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Download {
    pub version: String,
    pub sum: String,
    pub go_mod_sum: String,
    pub time: String,
}

pub fn downloads(go: &GoEnv, dir: &Path, mods: &[(String, String)]) -> BTreeMap<String, Download> {
    let list: Vec<(&str, &str)> = mods.iter().map(|(p, v)| (p.as_str(), v.as_str())).collect();
    let out = go.download(dir, &list);
    let mut got = BTreeMap::new();
    for v in serde_json::Deserializer::from_str(&out).into_iter::<serde_json::Value>() {
        let v = v.expect("go mod download -json output");
        let s = |k: &str| v[k].as_str().unwrap_or_default().to_string();
        assert!(s("Error").is_empty(), "{v}");
        got.insert(
            format!("{}@{}", s("Path"), s("Version")),
            Download {
                version: s("Version"),
                sum: s("Sum"),
                go_mod_sum: s("GoModSum"),
                time: s("Time"),
            },
        );
    }
    // Queries that name a tagged commit resolve to a version also asked for by name, so there
    // are fewer answers than requests; every request answered without error is checked above.
    assert!(got.len() + 2 >= mods.len(), "{out}");
    got
}

/// The `path@version` keys of `downloads` as requests again: queries resolved to what they
/// named, for asking a proxy's storage once the host is gone.
pub fn resolved(got: &BTreeMap<String, Download>) -> Vec<(String, String)> {
    got.keys()
        .filter_map(|k| k.split_once('@'))
        .map(|(p, v)| (p.to_string(), v.to_string()))
        .collect()
}

/// The `Time` of each version, as `go list -m -json` reports it from `.info`.
pub fn times(
    go: &GoEnv,
    dir: &Path,
    mods: &BTreeMap<String, Download>,
) -> BTreeMap<String, String> {
    mods.keys()
        .map(|k| {
            let out = go.run_ok(dir, &["list", "-m", "-json", k]);
            let v: serde_json::Value = serde_json::from_str(&out).expect("go list -m -json");
            (
                k.clone(),
                v["Time"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

pub fn versions(go: &GoEnv, dir: &Path, module: &str) -> String {
    go.run_ok(dir, &["list", "-m", "-versions", module])
}

/// The repositories: every case of the module layout the go command distinguishes.
pub fn make_repos(root: &Path, work: &Path, host: &str) -> anyhow::Result<()> {
    // "lib": a root module with vendor/, a nested module, an upper-case file name, a LICENSE,
    // a subdirectory module (tags `sub/vX`, LICENSE taken from the root), a v2 major-version
    // subdirectory, and annotated and lightweight tags.
    let mut lib = RepoBuilder::new(work.join("lib"))?;
    lib.write(&[
        ("go.mod", &format!("module {host}/lib\n\ngo 1.21\n")),
        ("lib.go", "package lib\n\nconst V = 1\n"),
        ("LICENSE", "Copyright (c) the lib authors\n"),
        ("README.MD", "Upper-case names are kept.\n"),
        ("vendor/modules.txt", "# vendored\n"),
        ("vendor/corp.test/dep/dep.go", "package dep\n"),
        ("pkg/vendor/vendor.go", "package vendor\n"),
        ("nested/go.mod", &format!("module {host}/lib/nested\n")),
        ("nested/n.go", "package nested\n"),
        ("sub/go.mod", &format!("module {host}/lib/sub\n\ngo 1.24\n")),
        ("sub/sub.go", "package sub\n"),
        ("sub/vendor/modules.txt", "# dropped from Go 1.24 on\n"),
    ])?;
    lib.commit("v1.0.0")?;
    lib.tag("v1.0.0")?;
    lib.tag("sub/v0.1.0")?;
    lib.write(&[("lib.go", "package lib\n\nconst V = 2\n")])?;
    lib.commit("v1.1.0")?;
    lib.annotated_tag("v1.1.0")?;
    lib.tag("v1.2.0-rc.1")?;
    lib.tag("not-a-version")?;
    lib.write(&[
        ("v2/go.mod", &format!("module {host}/lib/v2\n\ngo 1.22\n")),
        ("v2/lib.go", "package lib\n\nconst V = 3\n"),
    ])?;
    lib.commit("v2 in a subdirectory")?;
    lib.tag("v2.0.0")?;
    lib.annotated_tag("sub/v0.2.0")?;
    // A commit on main after the last tags: main resolves to a pseudo-version after the
    // prerelease v1.2.0-rc.1 (v2.0.0 is not a v1 tag).
    lib.write(&[("lib.go", "package lib\n\nconst V = 4\n")])?;
    lib.commit("after the tags")?;
    // A branch from v1.0.0: a pseudo-version after a release.
    git(
        &lib.work,
        &["checkout", "-q", "-b", "feature", "v1.0.0"],
        &[],
    )?;
    lib.write(&[("feature.go", "package lib\n")])?;
    lib.commit("feature")?;
    git(&lib.work, &["checkout", "-q", "main"], &[])?;
    lib.publish(root, "lib")?;

    // "legacy": no go.mod at all; v2+ tags become +incompatible versions.
    let mut legacy = RepoBuilder::new(work.join("legacy"))?;
    legacy.write(&[("legacy.go", "package legacy\n")])?;
    legacy.commit("one")?;
    legacy.tag("v1.0.0")?;
    legacy.write(&[("legacy.go", "package legacy // two\n")])?;
    legacy.commit("two")?;
    legacy.tag("v2.0.0")?;
    legacy.tag("v2.1.0")?;
    legacy.write(&[("legacy.go", "package legacy // three\n")])?;
    legacy.commit("three")?;
    legacy.publish(root, "legacy")?;

    // "fresh": no tags at all, so @latest is a v0.0.0 pseudo-version.
    let mut fresh = RepoBuilder::new(work.join("fresh"))?;
    fresh.write(&[
        ("go.mod", &format!("module {host}/fresh\n")),
        ("f.go", "package fresh\n"),
    ])?;
    fresh.commit("only")?;
    fresh.publish(root, "fresh")?;
    Ok(())
}

pub fn all_modules(host: &str) -> Vec<(String, String)> {
    [
        ("lib", "v1.0.0"),
        ("lib", "v1.1.0"),
        ("lib", "v1.2.0-rc.1"),
        ("lib/sub", "v0.1.0"),
        ("lib/sub", "v0.2.0"),
        ("lib/v2", "v2.0.0"),
        ("legacy", "v1.0.0"),
        ("legacy", "v2.1.0+incompatible"),
        // Queries: branches, HEAD of a repository without tags, commit hashes.
        ("lib", "main"),
        ("lib", "feature"),
        ("lib/v2", "main"),
        ("legacy", "main"),
        ("fresh", "latest"),
    ]
    .iter()
    .map(|(m, v)| (format!("{host}/{m}"), v.to_string()))
    .collect()
}

/// A go command for private modules of `host`: `HOME` with `netrc` as its `.netrc`, `env`
/// added, and `host` in `GOPRIVATE` when fetching direct, else in `GONOSUMDB` (through a proxy
/// that fetches it from version control).
pub fn private_go(
    parent: &Path,
    goproxy: &str,
    host: &str,
    netrc: &Path,
    env: &[(&str, &str)],
) -> GoEnv {
    let mut go = GoEnv::new_in(parent, goproxy, "off");
    let home = go.root.path().to_path_buf();
    std::fs::copy(netrc, home.join(".netrc")).expect("copy .netrc");
    go.extra = vec![("HOME".into(), home.display().to_string())];
    go.extra
        .extend(env.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let var = if goproxy == "direct" {
        "GOPRIVATE"
    } else {
        "GONOSUMDB"
    };
    go.extra.push((var.into(), host.into()));
    go
}

/// GETs `url`, which must answer 404 with a body (the proxy's reason) containing `why`.
pub async fn assert_404(url: &str, why: &str) {
    let (status, body) = get(url).await;
    assert_eq!(status, 404, "{url}: {body}");
    assert!(body.contains(why), "{url}: {body}");
}

/// The status and body of a GET of `url`.
async fn get(url: &str) -> (reqwest::StatusCode, String) {
    let resp = reqwest::get(url).await.expect("GET");
    let status = resp.status();
    (status, resp.text().await.unwrap_or_default())
}

/// Starts a proxy that fetches `host`'s modules from version control only (`--private host`,
/// no upstream, no checksum database), configured by the TOML `config`, storing into
/// `<dir>/<name>` and logging to the returned `<dir>/<name>.log`.
pub fn start_private_proxy(
    dir: &Path,
    name: &str,
    config: &str,
    host: &str,
    env: &[(&str, &str)],
) -> (crate::proxy::ProxyProcess, PathBuf) {
    let storage = format!("file://{}", dir.join(name).display());
    let cfg_file = dir.join(format!("{name}.toml"));
    std::fs::write(&cfg_file, config).expect("write proxy config");
    let cfg = cfg_file.display().to_string();
    let args = [
        "--config",
        cfg.as_str(),
        "--listen",
        "127.0.0.1:0",
        "--storage",
        storage.as_str(),
        "--upstream",
        "off",
        "--sumdb",
        "off",
        "--private",
        host,
    ];
    let log = dir.join(format!("{name}.log"));
    (
        crate::proxy::ProxyProcess::start_logged(&args, env, &log),
        log,
    )
}

/// [`private_go`] trusting the git host's CA (`SSL_CERT_FILE` for `go-import` pages,
/// `GIT_SSL_CAINFO` for git) with no system git config, `env` added.
pub fn trusting_go(
    parent: &Path,
    goproxy: &str,
    host: &str,
    netrc: &Path,
    ca: &str,
    env: &[(&str, &str)],
) -> GoEnv {
    let mut all = vec![
        ("SSL_CERT_FILE", ca),
        ("GIT_SSL_CAINFO", ca),
        ("GIT_CONFIG_NOSYSTEM", "1"),
    ];
    all.extend_from_slice(env);
    private_go(parent, goproxy, host, netrc, &all)
}

/// `<dir>/scratch`, an empty main module to run `go mod download` in.
pub fn scratch_module(dir: &Path) -> PathBuf {
    let scratch = dir.join("scratch");
    std::fs::create_dir_all(&scratch).expect("create the scratch module");
    std::fs::write(scratch.join("go.mod"), "module scratch\n").expect("write scratch go.mod");
    scratch
}

/// The body of a GET of `url` that must fail (any status but success).
pub async fn refused(url: &str) -> String {
    let (status, body) = get(url).await;
    assert!(!status.is_success(), "{url}: {status} {body}");
    body
}
