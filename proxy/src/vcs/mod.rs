//! `direct`: modules fetched from version control natively (git via gitoxide), answering the
//! same protocol paths a proxy answers (`@v/list`, `.info`, `.mod`, `.zip`, `@latest`), so
//! what it returns goes through the same verification and commit as a proxy's answer.
//!
//! Done: repository discovery (known hosts, `.git` qualifiers, `go-import` meta tags over
//! HTTPS), tagged versions (root, subdirectory and major-version modules, `+incompatible`),
//! zips by x/mod/zip's rules, queries (branches, tags, commit hashes) and `@latest` resolved
//! to canonical versions and pseudo-versions, `.netrc` credentials, git credential helpers
//! (credhelper.rs), `ssh://` remotes through an in-process SSH client (ssh.rs: keys and
//! known_hosts), fetch metrics per git host; hg, svn, bzr and fossil through a configured go
//! binary (delegate.rs); `list` of a repository without a mirror from its ref advertisement
//! alone when the tags decide it; a requested pseudo-version checked as the go command checks it
//! (pseudo.rs: hash, time, base tag in its history). Not yet: retractions when picking a
//! pseudo-version's base tag.

mod cache;
mod cainfo;
mod coderepo;
mod credhelper;
mod delegate;
mod discover;
mod git;
mod gitconfig;
mod gomod;
mod modzip;
mod pseudo;
mod ssh;

/// golang.org/x/mod/zip's limits (verify/ checks the same numbers again before storing).
mod limits {
    pub const MAX_ZIP_FILE: u64 = 500 << 20;
    pub const MAX_GO_MOD: u64 = 16 << 20;
    pub const MAX_LICENSE: u64 = 16 << 20;
}

pub use discover::{
    MetaImport, RepoRoot, check_repo_url, match_go_import, parse_meta_imports, static_root,
};
pub use git::{Credentials, Login};
pub use ssh::SshConfig;

use crate::metrics::Metrics;
use crate::module::{ModulePath, Version, unescape_path, unescape_version};
use bytes::Bytes;
use coderepo::{CodeRepo, RepoError};
use git::Refs;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Largest `?go-get=1` page read.
const MAX_META_PAGE: usize = 1 << 20;
/// Fetches running at once against one git host.
const FETCHES_PER_HOST: usize = 4;
/// How long a discovered repository root is reused.
const ROOT_TTL: Duration = Duration::from_secs(60);

/// Why version control gave us nothing.
#[derive(Debug, Clone, thiserror::Error)]
pub enum VcsError {
    /// The module or version does not exist there (the go command's "not found").
    #[error("{0}")]
    NotFound(String),
    /// The host or repository could not be read.
    #[error("{0}")]
    Failed(String),
}

/// An answer: small bodies in memory, zips in an unnamed temporary file.
pub enum DirectBody {
    Bytes(Bytes),
    File(std::fs::File),
}

/// What a protocol path asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Wanted {
    List,
    Latest,
    /// `.info` of something that is not a canonical version: a branch, tag or commit.
    Query(String),
    File(Version, FileKind),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    Info,
    Mod,
    Zip,
}

impl FileKind {
    pub fn ext(self) -> &'static str {
        match self {
            Self::Info => "info",
            Self::Mod => "mod",
            Self::Zip => "zip",
        }
    }
}

/// The module and the request of a protocol path, checked before anything leaves the
/// process (module path rules, canonical versions for `.mod` and `.zip`).
fn parse_path(path: &str) -> Result<(ModulePath, Wanted), VcsError> {
    let (module_esc, file) = match path.split_once("/@v/") {
        Some((m, f)) => (m, Some(f)),
        None => match path.strip_suffix("/@latest") {
            Some(m) => (m, None),
            None => return Err(VcsError::NotFound(format!("{path}: not a module path"))),
        },
    };
    let module = unescape_path(module_esc)
        .ok()
        .and_then(|p| ModulePath::new(p).ok())
        .ok_or_else(|| VcsError::NotFound(format!("{path}: invalid module path")))?;
    let want = match file {
        None => Wanted::Latest,
        Some("list") => Wanted::List,
        Some(file) => {
            let (stem, ext) = file
                .rsplit_once('.')
                .ok_or_else(|| VcsError::NotFound(format!("{path}: unknown file")))?;
            let kind = match ext {
                "info" => FileKind::Info,
                "mod" => FileKind::Mod,
                "zip" => FileKind::Zip,
                _ => return Err(VcsError::NotFound(format!("{path}: unknown file"))),
            };
            let raw = unescape_version(stem).map_err(|e| VcsError::NotFound(e.to_string()))?;
            match (Version::parse(&raw), kind) {
                (Ok(v), kind) => Wanted::File(v, kind),
                (Err(_), FileKind::Info) => Wanted::Query(raw),
                (Err(_), _) => {
                    return Err(VcsError::NotFound(format!(
                        "{}@{raw}: .{ext} needs a canonical version",
                        module.as_str()
                    )));
                }
            }
        }
    };
    Ok((module, want))
}

/// One repository's mirror state: at most one fetch runs at a time, and requests that waited
/// for it take its result instead of fetching again.
#[derive(Default)]
struct Slot {
    refs: Option<Arc<Refs>>,
    fetched_at: Option<Instant>,
}

/// The `direct` source.
pub struct Direct {
    cache_dir: PathBuf,
    http: reqwest::Client,
    /// Credentials by host name (`.netrc` entries, first one per host wins).
    logins: Vec<(String, Login)>,
    /// What git fetches authenticate and configure themselves with.
    creds: Arc<Credentials>,
    /// Most bytes of mirrors kept (0: no limit).
    cache_max: u64,
    /// An eviction pass is running.
    evicting: Arc<std::sync::atomic::AtomicBool>,
    slots: Mutex<HashMap<String, Arc<tokio::sync::Mutex<Slot>>>>,
    roots: Mutex<HashMap<String, (Instant, RepoRoot)>>,
    /// Fetch slots per git host.
    hosts: Mutex<HashMap<String, Arc<tokio::sync::Semaphore>>>,
    /// Where fetches and mirror reuses are counted (by git host).
    metrics: Arc<Metrics>,
    /// hg, svn, bzr and fossil repositories: a configured go binary (none: 404).
    go: Option<delegate::GoDelegate>,
}

impl std::fmt::Debug for Direct {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Direct {{ cache_dir: {:?} }}", self.cache_dir)
    }
}

impl Direct {
    pub fn new(cache_dir: PathBuf, http: reqwest::Client, logins: Vec<(String, Login)>) -> Self {
        Self {
            cache_dir,
            http,
            creds: Arc::new(Credentials {
                logins: logins.clone(),
                ..Default::default()
            }),
            logins,
            cache_max: 0,
            evicting: Arc::default(),
            slots: Mutex::default(),
            roots: Mutex::default(),
            hosts: Mutex::default(),
            metrics: Arc::default(),
            go: None,
        }
    }

    /// Counts fetches and mirror reuses in these metrics.
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = metrics;
        self
    }

    /// Hands modules in hg, svn, bzr and fossil repositories to the `go` binary at `go`, with
    /// its module cache and home under the mirror cache directory's `go/`, `private` as its
    /// `GOPRIVATE` and this source's logins as its `.netrc`.
    pub fn with_go_binary(mut self, go: PathBuf, private: &[String]) -> Self {
        let dir = self.cache_dir.join("go");
        self.go = Some(delegate::GoDelegate::new(go, dir, private, &self.logins));
        self
    }

    /// Uses these SSH keys and known_hosts file for `ssh://` remotes, and this git config
    /// file (`insteadOf`, `http.*`, `credential.helper`) for every remote.
    pub fn with_git(mut self, ssh: SshConfig, git_config: Option<PathBuf>) -> Self {
        self.creds = Arc::new(Credentials {
            logins: self.logins.clone(),
            ssh,
            git_config,
        });
        self
    }

    /// Keeps the mirrors under `max` bytes, least recently used removed first (0: no limit).
    pub fn with_cache_limit(mut self, max: u64) -> Self {
        self.cache_max = max;
        self
    }

    /// Answers a protocol path (`<escaped module>/@v/<file>` or `<escaped module>/@latest`).
    pub async fn get(&self, path: &str) -> Result<DirectBody, VcsError> {
        let (module, want) = parse_path(path)?;
        let root = self.repo_root(module.as_str()).await?;
        if root.vcs != "git" {
            if let Some(go) = &self.go
                && delegate::DELEGATED.contains(&root.vcs.as_str())
            {
                return go.get(&module, &root.vcs, want).await;
            }
            return Err(VcsError::NotFound(format!(
                "{}: the repository at {} is a {} repository; only git is supported \
                 (upstream.vcs_go_binary hands hg, svn, bzr and fossil to a go command)",
                module.as_str(),
                athens_config::redact_userinfo(&root.url),
                root.vcs
            )));
        }
        let repo = CodeRepo::new(module.clone(), &root.root, &root.subdir).map_err(not_found)?;
        let (version, kind) = match want {
            Wanted::Latest => return self.latest(&root, repo).await,
            // A query (branch, tag, commit): always against freshly fetched refs.
            Wanted::Query(q) => return self.query(&root, repo, q).await,
            Wanted::List => {
                if let Some(list) = self.list_advertised(&root, &repo).await? {
                    let text = crate::module::list_text(&list);
                    return Ok(DirectBody::Bytes(Bytes::from(text)));
                }
                let refs = self.refs(&root, None).await?;
                let dir = self.mirror_dir(&root.url);
                let list = blocking(move || {
                    let g = git::open(&dir).map_err(RepoError::from)?;
                    repo.versions(&g, &refs)
                })
                .await?;
                let text = crate::module::list_text(&list);
                return Ok(DirectBody::Bytes(Bytes::from(text)));
            }
            Wanted::File(version, kind) => (version, kind),
        };
        // A tag already in the mirror is not fetched again: tags are taken not to move.
        let want = (!version.is_pseudo()).then(|| repo.tag_for(&version));
        let refs = self.refs(&root, want).await?;
        let dir = self.mirror_dir(&root.url);
        blocking(move || {
            let g = git::open(&dir).map_err(RepoError::from)?;
            let (rev, mod_dir, gomod) = repo.find_dir(&g, &refs, &version)?;
            match kind {
                FileKind::Info => Ok(DirectBody::Bytes(info_json(
                    &version,
                    git::commit_time(&g, rev)?,
                ))),
                FileKind::Mod => Ok(DirectBody::Bytes(Bytes::from(CodeRepo::go_mod(
                    gomod,
                    &repo.module,
                )))),
                FileKind::Zip => {
                    let files = repo.zip_files(&g, rev, &mod_dir, gomod.as_deref())?;
                    let prefix = format!("{}@{}/", repo.module.as_str(), version.as_str());
                    let tmp = tempfile::tempfile()
                        .map_err(|e| RepoError::NotFound(format!("temp file: {e}")))?;
                    let mut out = modzip::write_zip(tmp, &prefix, files, |(name, id)| {
                        git::read_blob(&g, id).map(|data| (name, data))
                    })
                    .map_err(|e| RepoError::Git(git::GitError::Failed(e)))?;
                    use std::io::Seek;
                    out.rewind()
                        .map_err(|e| RepoError::Git(git::GitError::Failed(e.to_string())))?;
                    Ok(DirectBody::File(out))
                }
            }
        })
        .await
    }

    /// `list` of a repository with no mirror yet, from its ref advertisement (`git ls-remote`,
    /// what the go command itself runs), when the tags alone decide it; `None` when the
    /// mirror exists (its refs are fetched anyway) or go.mod files are needed.
    async fn list_advertised(
        &self,
        root: &RepoRoot,
        repo: &CodeRepo,
    ) -> Result<Option<Vec<Version>>, VcsError> {
        if self.mirror_dir(&root.url).exists() {
            return Ok(None);
        }
        let _permit = self.host_permit(&root.url).await?;
        let (url, rt, creds) = (
            root.url.clone(),
            tokio::runtime::Handle::current(),
            self.creds.clone(),
        );
        let started = Instant::now();
        let listed = tokio::task::spawn_blocking(move || git::list_refs(&url, &creds, &rt))
            .await
            .map_err(|e| VcsError::Failed(format!("git task: {e}")))?;
        self.count_contact(&host_of(&root.url), &listed, started);
        let refs = listed.map_err(|e| match e {
            git::GitError::NotFound(m) => VcsError::NotFound(m),
            git::GitError::Failed(m) => VcsError::Failed(m),
        })?;
        Ok(match repo.tagged(&refs) {
            coderepo::Tagged::Complete(list) => Some(list),
            coderepo::Tagged::NeedsGoMod { .. } => None,
        })
    }

    /// `@latest`: the highest release in the list, else the highest prerelease, else what
    /// the default branch's head resolves to (a pseudo-version), as the go command's Latest.
    async fn latest(&self, root: &RepoRoot, repo: CodeRepo) -> Result<DirectBody, VcsError> {
        let refs = self.refs(root, None).await?;
        let dir = self.mirror_dir(&root.url);
        blocking(move || {
            let g = git::open(&dir).map_err(RepoError::from)?;
            let list = repo.versions(&g, &refs)?;
            let best = list
                .iter()
                .rev()
                .find(|v| v.prerelease().is_empty())
                .or(list.last())
                .cloned();
            let (v, rev) = match best {
                Some(v) => {
                    let (rev, _, _) = repo.find_dir(&g, &refs, &v)?;
                    (v, rev)
                }
                None => repo.stat(&g, &refs, "HEAD")?,
            };
            Ok(DirectBody::Bytes(info_json(&v, git::commit_time(&g, rev)?)))
        })
        .await
    }

    /// `.info` for a branch, tag name or commit hash: the version it resolves to.
    async fn query(
        &self,
        root: &RepoRoot,
        repo: CodeRepo,
        query: String,
    ) -> Result<DirectBody, VcsError> {
        let refs = self.refs(root, None).await?;
        let dir = self.mirror_dir(&root.url);
        blocking(move || {
            let g = git::open(&dir).map_err(RepoError::from)?;
            let (v, rev) = repo.stat(&g, &refs, &query)?;
            Ok(DirectBody::Bytes(info_json(&v, git::commit_time(&g, rev)?)))
        })
        .await
    }

    /// Where the mirror of `url` lives: a name derived from the URL (no credentials in it).
    fn mirror_dir(&self, url: &str) -> PathBuf {
        use sha2::Digest;
        let clean = athens_config::redact_userinfo(url);
        let h = sha2::Sha256::digest(clean.as_bytes());
        let hex: String = h[..12].iter().map(|b| format!("{b:02x}")).collect();
        self.cache_dir.join(format!("{hex}.git"))
    }

    /// The remote's refs: fetched now (one fetch per repository at a time; whoever waited
    /// for a fetch that started after it arrived takes that fetch's result), or the last
    /// fetch's when it already has `want_tag`.
    async fn refs(&self, root: &RepoRoot, want_tag: Option<String>) -> Result<Arc<Refs>, VcsError> {
        let arrived = Instant::now();
        let slot = {
            let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
            slots.entry(root.url.clone()).or_default().clone()
        };
        let mut slot = slot.lock().await;
        let mirror = self.mirror_dir(&root.url);
        cache::touch(&mirror);
        // A mirror removed by the cache bound is fetched again, whatever was remembered.
        if !mirror.exists() {
            slot.refs = None;
        }
        let host = host_of(&root.url);
        if let Some(refs) = &slot.refs {
            let fresh = slot.fetched_at.is_some_and(|t| t >= arrived);
            let has = want_tag.as_ref().is_some_and(|t| refs.tag(t).is_some());
            if fresh || has {
                self.metrics
                    .vcs_mirror_reuses
                    .with_label_values(&[host.as_str()])
                    .inc();
                return Ok(refs.clone());
            }
        }
        let _permit = self.host_permit(&root.url).await?;
        let started = Instant::now();
        tracing::debug!(remote = %athens_config::redact_userinfo(&root.url), "git fetch");
        let dir = self.mirror_dir(&root.url);
        let url = root.url.clone();
        let (rt, creds) = (tokio::runtime::Handle::current(), self.creds.clone());
        let fetched = tokio::task::spawn_blocking(move || git::fetch(&dir, &url, &creds, &rt))
            .await
            .map_err(|e| VcsError::Failed(format!("git task: {e}")))?;
        self.count_contact(&host, &fetched, started);
        let refs = Arc::new(fetched.map_err(|e| VcsError::Failed(e.to_string()))?);
        slot.refs = Some(refs.clone());
        slot.fetched_at = Some(started);
        self.bound_cache(self.mirror_dir(&root.url));
        Ok(refs)
    }

    /// Counts and times one fetch or ref listing of a repository on `host`.
    fn count_contact<T>(&self, host: &str, outcome: &Result<T, git::GitError>, started: Instant) {
        let result = match outcome {
            Ok(_) => "ok",
            Err(git::GitError::NotFound(_)) => "not_found",
            Err(git::GitError::Failed(_)) => "failed",
        };
        self.metrics
            .vcs_fetches
            .with_label_values(&[host, result])
            .inc();
        self.metrics
            .vcs_fetch_seconds
            .with_label_values(&[host])
            .observe(started.elapsed().as_secs_f64());
    }

    /// A turn to talk to `url`'s host: at most a few fetches per host at once, so a build
    /// asking for many repositories of one host does not open a connection per repository.
    async fn host_permit(&self, url: &str) -> Result<tokio::sync::OwnedSemaphorePermit, VcsError> {
        let permits = self
            .hosts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(host_of(url))
            .or_insert_with(|| Arc::new(tokio::sync::Semaphore::new(FETCHES_PER_HOST)))
            .clone();
        permits
            .acquire_owned()
            .await
            .map_err(|e| VcsError::Failed(format!("fetch limit: {e}")))
    }

    /// The repository serving `module`: a known pattern, else the `go-import` tag at
    /// `https://<module>?go-get=1` (remembered for a minute).
    async fn repo_root(&self, module: &str) -> Result<RepoRoot, VcsError> {
        if let Some(r) = static_root(module) {
            return Ok(r);
        }
        {
            let roots = self.roots.lock().unwrap_or_else(|p| p.into_inner());
            if let Some((t, r)) = roots.get(module)
                && t.elapsed() < ROOT_TTL
            {
                return Ok(r.clone());
            }
        }
        let url = format!("https://{module}?go-get=1");
        let mut req = self.http.get(&url);
        let host = module.split('/').next().unwrap_or(module);
        if let Some(c) = self.login_for_host(host) {
            req = req.basic_auth(&c.user, Some(&c.password));
        }
        let resp = req.send().await.map_err(|e| {
            VcsError::Failed(format!(
                "{module}: looking up the repository at {url}: {}",
                error_chain(&e.without_url())
            ))
        })?;
        let page = read_page(resp)
            .await
            .map_err(|e| VcsError::Failed(format!("{module}: reading {url}: {e}")))?;
        let imports = parse_meta_imports(&String::from_utf8_lossy(&page));
        let im = match_go_import(&imports, module)
            .map_err(|e| VcsError::NotFound(format!("{module}: {e} at {url}")))?;
        let repo_url = check_repo_url(&im.url).map_err(|e| {
            VcsError::NotFound(format!(
                "{module}: {} (from {url})",
                athens_config::redact_userinfo(&e)
            ))
        })?;
        let root = RepoRoot {
            root: im.prefix,
            vcs: im.vcs,
            url: repo_url,
            subdir: im.subdir,
        };
        self.roots
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(module.to_string(), (Instant::now(), root.clone()));
        Ok(root)
    }
}

impl Direct {
    /// The `.netrc` rule: the first entry for the host name, compared case-insensitively.
    /// Starts an eviction pass in the background unless one is running (or there is no limit).
    fn bound_cache(&self, keep: PathBuf) {
        use std::sync::atomic::Ordering;
        if self.cache_max == 0 || self.evicting.swap(true, Ordering::AcqRel) {
            return;
        }
        let (dir, max, flag) = (
            self.cache_dir.clone(),
            self.cache_max,
            self.evicting.clone(),
        );
        tokio::task::spawn_blocking(move || {
            let n = cache::evict(&dir, max, &keep);
            if n > 0 {
                tracing::info!(
                    removed = n,
                    "git mirror cache over its limit: least recently used mirrors removed"
                );
            }
            flag.store(false, Ordering::Release);
        });
    }

    fn login_for_host(&self, host: &str) -> Option<Login> {
        self.logins
            .iter()
            .find(|(h, _)| h.eq_ignore_ascii_case(host))
            .map(|(_, l)| l.clone())
    }
}

/// A `?go-get=1` page, at most [`MAX_META_PAGE`] bytes.
/// The host alone names a remote in metrics and limits: user info or a path may hold secrets.
fn host_of(url: &str) -> String {
    gix::Url::from_bytes(url.into())
        .ok()
        .and_then(|u| u.host().map(str::to_ascii_lowercase))
        .unwrap_or_default()
}

async fn read_page(mut resp: reqwest::Response) -> Result<Vec<u8>, String> {
    let mut buf = Vec::new();
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| error_chain(&e.without_url()))?
    {
        if buf.len() + chunk.len() > MAX_META_PAGE {
            return Err(format!("page larger than {MAX_META_PAGE} bytes"));
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf)
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(inner) = src {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        src = inner.source();
    }
    s
}

fn not_found(e: RepoError) -> VcsError {
    match e {
        RepoError::NotFound(m) => VcsError::NotFound(m),
        RepoError::Git(g) => VcsError::Failed(g.to_string()),
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, RepoError> + Send + 'static,
) -> Result<T, VcsError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| VcsError::Failed(format!("git task: {e}")))?
        .map_err(not_found)
}

/// `{"Version":...,"Time":...}` with the commit's time in UTC, as the go command writes it.
fn info_json(v: &Version, secs: i64) -> Bytes {
    let time = chrono::DateTime::from_timestamp(secs, 0)
        .unwrap_or_default()
        .format("%Y-%m-%dT%H:%M:%SZ");
    Bytes::from(format!(
        "{{\"Version\":\"{}\",\"Time\":\"{time}\"}}",
        v.as_str()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocol_paths_are_checked_before_anything_runs() {
        let want = |p: &str| parse_path(p).map(|(_, w)| w);
        assert_eq!(want("h.test/m/@v/list").unwrap(), Wanted::List);
        assert_eq!(want("h.test/m/@latest").unwrap(), Wanted::Latest);
        assert_eq!(
            want("h.test/m/@v/default.info").unwrap(),
            Wanted::Query("default".into())
        );
        let v = Version::parse("v1.0.0").unwrap();
        assert_eq!(
            want("h.test/m/@v/v1.0.0.zip").unwrap(),
            Wanted::File(v, FileKind::Zip)
        );
        let (m, _) = parse_path("h.test/!m/@v/list").unwrap();
        assert_eq!(m.as_str(), "h.test/M");
        for bad in [
            "H.test/m/@v/list",
            "-h.test/m/@v/list",
            "h.test/m/../x/@v/list",
            "h.test/m/@v/default.zip",
            "h.test/m/@v/v1.0.0.exe",
            "h.test/m",
        ] {
            assert!(
                matches!(parse_path(bad), Err(VcsError::NotFound(_))),
                "{bad}"
            );
        }
    }
}
