//! The git side: a bare mirror per remote on local disk, fetched incrementally with gitoxide,
//! and reads of trees and blobs from it. Everything here blocks: call it on `spawn_blocking`.

use super::credhelper::{Answer, HelperError};
use super::gitconfig::Helper;
use super::modzip::{Kind, TreeFile};
use super::ssh::SshConfig;
use gix::ObjectId;
use std::path::Path;
use std::sync::atomic::AtomicBool;

/// Why a git operation failed. Messages carry no credentials: URLs are printed redacted.
#[derive(Debug, thiserror::Error)]
pub enum GitError {
    #[error("{0}")]
    Failed(String),
    /// The remote answered that the repository does not exist (HTTP 404 or 410).
    #[error("{0}")]
    NotFound(String),
}

fn failed(what: &str, e: impl std::fmt::Display) -> GitError {
    GitError::Failed(athens_config::redact_userinfo(&format!("{what}: {e}")))
}

/// An error with its causes on one line: the transport's own message ("handshake failed")
/// does not say why, its causes do (an unknown certificate issuer, a refused login).
fn with_causes(e: &gix::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in e.iter_errors() {
        let msg = cause.to_string();
        if !parts.iter().any(|p| p.contains(&msg)) {
            parts.push(msg);
        }
    }
    parts.join(": ")
}

/// A failed fetch of `url`, told apart by whether the remote said the repository is missing.
fn fetch_failed(url: &str, e: &gix::Error) -> GitError {
    let missing = e.iter_errors().any(|cause| {
        let status = cause
            .downcast_ref::<reqwest::Error>()
            .and_then(|r| r.status())
            .map(|s| s.as_u16());
        // The transport reports some statuses only as a message.
        let said = cause.to_string();
        matches!(status, Some(404 | 410))
            || said.contains("HTTP status 404")
            || said.contains("HTTP status 410")
    });
    let msg = athens_config::redact_userinfo(&format!("{url}: {}", with_causes(e)));
    if missing {
        GitError::NotFound(msg)
    } else {
        GitError::Failed(msg)
    }
}

/// The remote's refs at the last fetch: tag names with the commit each points to, and the
/// commit of the default branch.
#[derive(Debug, Clone, Default)]
pub struct Refs {
    pub tags: Vec<(String, ObjectId)>,
    pub heads: Vec<(String, ObjectId)>,
    pub head: Option<ObjectId>,
}

impl Refs {
    pub fn tag(&self, name: &str) -> Option<ObjectId> {
        self.tags.iter().find(|(n, _)| n == name).map(|(_, id)| *id)
    }
}

/// A username and password for the remote's host (from `.netrc`).
#[derive(Clone)]
pub struct Login {
    pub user: String,
    pub password: String,
}

// Never print a password, not even in debug output.
impl std::fmt::Debug for Login {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Login {{ user: <redacted> }}")
    }
}

/// Everything a fetch authenticates and configures itself with.
#[derive(Debug, Default)]
pub struct Credentials {
    /// `.netrc` logins by host name (the first entry for a host wins).
    pub logins: Vec<(String, Login)>,
    pub ssh: SshConfig,
    /// A git config file applied to every mirror (see gitconfig.rs).
    pub git_config: Option<std::path::PathBuf>,
}

impl Credentials {
    /// The login for a URL git asks credentials for: `.netrc` by host, else the first of the
    /// git config's credential helpers that has one, asked in order as git asks them. A
    /// helper that fails is passed over, as in git; when none has a login, the first failure
    /// is the error (it names the helper, never what it printed).
    fn login_for(
        &self,
        url: &str,
        config: Option<&gix::config::File>,
    ) -> Result<Option<Login>, HelperError> {
        let Ok(parsed) = reqwest::Url::parse(url) else {
            return Ok(None);
        };
        let host = parsed.host_str().unwrap_or_default();
        if let Some((_, l)) = self
            .logins
            .iter()
            .find(|(h, _)| h.eq_ignore_ascii_case(host))
        {
            return Ok(Some(l.clone()));
        }
        let Some(config) = config else {
            return Ok(None);
        };
        let use_path = super::gitconfig::use_http_path(config);
        let mut first_error = None;
        for helper in super::gitconfig::helpers_for(config, url) {
            let answer = match helper {
                Helper::Store(file) => Ok(std::fs::read_to_string(file)
                    .ok()
                    .and_then(|text| super::gitconfig::store_login(&text, url))
                    .map(|login| Answer {
                        login: Some(login),
                        quit: false,
                    })
                    .unwrap_or_default()),
                Helper::Cache => Err(HelperError::CacheUnsupported),
                Helper::Program(cmd) => super::credhelper::get(&cmd, &parsed, use_path),
            };
            match answer {
                Ok(Answer { login: Some(l), .. }) => return Ok(Some(l)),
                Ok(Answer { quit: true, .. }) => break,
                Ok(_) => {}
                Err(e) => {
                    tracing::debug!(error = %e, "git credential helper passed over");
                    first_error.get_or_insert(e);
                }
            }
        }
        first_error.map_or(Ok(None), Err)
    }
}

/// Fetches branches and tags of `url` into the bare mirror at `dir` (made when missing) and
/// returns the remote's tags and default branch, as `git ls-remote` would list them.
/// `ssh://` remotes (also after `insteadOf` rewriting) go through the native SSH client,
/// which blocks on `rt`.
pub fn fetch(
    dir: &Path,
    url: &str,
    creds: &Credentials,
    rt: &tokio::runtime::Handle,
) -> Result<Refs, GitError> {
    let repo = match gix::open(dir) {
        Ok(r) => r,
        Err(_) => {
            std::fs::create_dir_all(dir).map_err(|e| failed("creating mirror", e))?;
            gix::init_bare(dir).map_err(|e| failed("creating mirror", e))?
        }
    };
    remote_refs(repo, url, creds, rt, Mode::Fetch)
}

/// The remote's tags and default branch from its ref advertisement alone (`git ls-remote`):
/// no objects are fetched and no mirror is made. Tags are taken at the commits the remote
/// names (peeled by the server for annotated tags), unchecked.
pub fn list_refs(
    url: &str,
    creds: &Credentials,
    rt: &tokio::runtime::Handle,
) -> Result<Refs, GitError> {
    // A remote needs a repository: an empty one, thrown away after.
    let scratch = tempfile::tempdir().map_err(|e| failed("listing refs", e))?;
    let repo = gix::init_bare(scratch.path()).map_err(|e| failed("listing refs", e))?;
    remote_refs(repo, url, creds, rt, Mode::List)
}

/// What [`remote_refs`] does once connected.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Fetch,
    List,
}

fn remote_refs(
    mut repo: gix::Repository,
    url: &str,
    creds: &Credentials,
    rt: &tokio::runtime::Handle,
    mode: Mode,
) -> Result<Refs, GitError> {
    let (mut git_config, mut ca_file) = (None, None);
    if let Some(path) = &creds.git_config {
        let config = super::gitconfig::read(path)?;
        // `http.<url>` sections match the URL after `insteadOf` rewriting, as in git: find
        // that URL with the rewrites alone first.
        let mut probe = repo.clone();
        apply_config(&mut probe, super::gitconfig::scoped_for(&config, "")?)?;
        let rewritten = probe
            .remote_at(url)
            .ok()
            .and_then(|r| r.url(gix::remote::Direction::Fetch).map(|u| u.to_bstring()))
            .map(|u| u.to_string())
            .unwrap_or_else(|| url.to_string());
        let scoped = super::gitconfig::scoped_for(&config, &rewritten)?;
        ca_file = super::cainfo::ca_file(&scoped)?;
        apply_config(&mut repo, scoped)?;
        git_config = Some(config);
    }
    let remote = repo
        .remote_at(url)
        .map_err(|e| failed(url, e))?
        .with_refspecs(
            ["+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*"],
            gix::remote::Direction::Fetch,
        )
        .map_err(|e| failed(url, e))?;
    let ssh_url = remote
        .url(gix::remote::Direction::Fetch)
        .filter(|u| u.scheme == gix::url::Scheme::Ssh)
        .cloned();
    let conn = match ssh_url {
        Some(u) => remote.to_connection_with_transport(super::ssh::connect(rt, &creds.ssh, &u)?),
        None => {
            let options = match (remote.url(gix::remote::Direction::Fetch), &ca_file) {
                (Some(u), Some(ca)) => Some(super::cainfo::transport_options(&repo, u, ca)?),
                _ => None,
            };
            let conn = remote
                .connect(gix::remote::Direction::Fetch)
                .map_err(|e| failed(url, e))?;
            match options {
                Some(o) => conn.with_transport_options(o),
                None => conn,
            }
        }
    };
    let conn = conn.with_credentials(move |action| match action {
        gix::credentials::helper::Action::Get(ctx) => {
            let asked = ctx.url.as_ref().map(|u| u.to_string()).unwrap_or_default();
            let login = creds
                .login_for(&asked, git_config.as_ref())
                .map_err(gix::Error::from_error)?;
            Ok(login.map(|l| gix::credentials::protocol::Outcome {
                identity: gix::sec::identity::Account {
                    username: l.user,
                    password: l.password,
                    oauth_refresh_token: None,
                },
                next: ctx.into(),
            }))
        }
        _ => Ok(None),
    });
    // The remote's HEAD (its default branch) is listed too: `@latest` of an untagged
    // repository resolves it. The ref-prefix filter would leave it out otherwise.
    let head = gix::refspec::parse("HEAD".into(), gix::refspec::parse::Operation::Fetch)
        .map_err(|e| failed(url, e))?
        .to_owned();
    let options = gix::remote::ref_map::Options {
        extra_refspecs: vec![head],
        ..Default::default()
    };
    let ref_map = match mode {
        Mode::Fetch => {
            conn.prepare_fetch(gix::progress::Discard, options)
                .map_err(|e| fetch_failed(url, &e))?
                .receive(gix::progress::Discard, &AtomicBool::new(false))
                .map_err(|e| fetch_failed(url, &e))?
                .ref_map
        }
        Mode::List => {
            conn.ref_map(gix::progress::Discard, options)
                .map_err(|e| fetch_failed(url, &e))?
                .0
        }
    };
    let mut refs = Refs::default();
    for r in &ref_map.remote_refs {
        let (name, target, peeled) = r.unpack();
        let Some(id) = peeled.or(target) else {
            continue;
        };
        let name = name.to_string();
        if let Some(tag) = name.strip_prefix("refs/tags/") {
            // Older servers list `^{}` peeled entries separately; the peeled id is used below.
            if tag.ends_with("^{}") {
                continue;
            }
            let commit = match mode {
                Mode::Fetch => peel_to_commit(&repo, id.to_owned()),
                Mode::List => Some(id.to_owned()),
            };
            match commit {
                Some(c) => refs.tags.push((tag.to_string(), c)),
                None => continue,
            }
        } else if let Some(branch) = name.strip_prefix("refs/heads/") {
            refs.heads.push((branch.to_string(), id.to_owned()));
        } else if name == "HEAD" {
            refs.head = Some(id.to_owned());
        }
    }
    refs.tags.sort();
    Ok(refs)
}

/// Adds `config` to the in-memory configuration of `repo` (nothing is written to disk).
fn apply_config(repo: &mut gix::Repository, config: gix::config::File) -> Result<(), GitError> {
    let mut snap = repo.config_snapshot_mut();
    snap.append(config)
        .map_err(|e| failed("applying git config", e))?;
    snap.commit()
        .map_err(|e| failed("applying git config", e))?;
    Ok(())
}

fn peel_to_commit(repo: &gix::Repository, id: ObjectId) -> Option<ObjectId> {
    let obj = repo.find_object(id).ok()?;
    obj.peel_to_commit().ok().map(|c| c.id)
}

/// Opens the mirror for reading.
pub fn open(dir: &Path) -> Result<gix::Repository, GitError> {
    gix::open(dir).map_err(|e| failed("opening mirror", e))
}

/// The committer time of a commit, in seconds since the epoch.
pub fn commit_time(repo: &gix::Repository, id: ObjectId) -> Result<i64, GitError> {
    let commit = repo
        .find_commit(id)
        .map_err(|e| failed("reading commit", e))?;
    let time = commit.time().map_err(|e| failed("reading commit", e))?;
    Ok(time.seconds)
}

/// The blob at `path` in `commit`'s tree; `None` when there is no regular file there.
/// Reads at most `limit` bytes' worth (a larger file is an error).
pub fn read_file(
    repo: &gix::Repository,
    commit: ObjectId,
    path: &str,
    limit: u64,
) -> Result<Option<Vec<u8>>, GitError> {
    let Some(id) = blob_at(repo, commit, path)? else {
        return Ok(None);
    };
    let blob = repo.find_blob(id).map_err(|e| failed("reading blob", e))?;
    if blob.data.len() as u64 > limit {
        return Err(GitError::Failed(format!(
            "{path} is larger than {limit} bytes"
        )));
    }
    Ok(Some(blob.data.clone()))
}

/// The id of the blob at `path` in `commit`'s tree; `None` when absent or not a blob.
fn blob_at(
    repo: &gix::Repository,
    commit: ObjectId,
    path: &str,
) -> Result<Option<ObjectId>, GitError> {
    let tree = repo
        .find_commit(commit)
        .and_then(|c| c.tree())
        .map_err(|e| failed("reading tree", e))?;
    let Some(entry) = tree
        .lookup_entry_by_path(path)
        .map_err(|e| failed("reading tree", e))?
    else {
        return Ok(None);
    };
    Ok(entry.mode().is_blob().then(|| entry.object_id()))
}

/// The blob id and size of the regular file at `path` in `commit`'s tree.
pub fn file_id(
    repo: &gix::Repository,
    commit: ObjectId,
    path: &str,
) -> Result<Option<(ObjectId, u64)>, GitError> {
    let Some(id) = blob_at(repo, commit, path)? else {
        return Ok(None);
    };
    let size = repo
        .find_header(id)
        .map_err(|e| failed("reading blob", e))?
        .size();
    Ok(Some((id, size)))
}

/// Every entry under `dir` ("" for the root) of `commit`'s tree, named relative to `dir`,
/// with the blob ids of regular files.
pub fn list_tree(
    repo: &gix::Repository,
    commit: ObjectId,
    dir: &str,
) -> Result<Vec<(TreeFile, ObjectId)>, GitError> {
    let mut tree = repo
        .find_commit(commit)
        .and_then(|c| c.tree())
        .map_err(|e| failed("reading tree", e))?;
    if !dir.is_empty() {
        let Some(entry) = tree
            .lookup_entry_by_path(dir)
            .map_err(|e| failed("reading tree", e))?
        else {
            return Ok(Vec::new());
        };
        if !entry.mode().is_tree() {
            return Ok(Vec::new());
        }
        tree = repo
            .find_tree(entry.object_id())
            .map_err(|e| failed("reading tree", e))?;
    }
    let mut rec = gix::traverse::tree::Recorder::default();
    tree.traverse()
        .breadthfirst(&mut rec)
        .map_err(|e| failed("walking tree", e))?;
    let mut out = Vec::new();
    for e in rec.records {
        if e.mode.is_tree() {
            continue;
        }
        let kind = if e.mode.is_link() {
            Kind::Symlink
        } else if e.mode.is_blob() {
            Kind::Regular
        } else {
            Kind::Other
        };
        let size = if kind == Kind::Regular {
            repo.find_header(e.oid)
                .map_err(|err| failed("reading blob", err))?
                .size()
        } else {
            0
        };
        let path = String::from_utf8(e.filepath.into())
            .map_err(|_| GitError::Failed("a file name is not UTF-8".into()))?;
        out.push((TreeFile { path, kind, size }, e.oid));
    }
    Ok(out)
}

/// A blob's bytes.
pub fn read_blob(repo: &gix::Repository, id: ObjectId) -> Result<Vec<u8>, GitError> {
    Ok(repo
        .find_blob(id)
        .map_err(|e| failed("reading blob", e))?
        .data
        .clone())
}

/// The commit a hexadecimal prefix names in the mirror, if exactly one object has it.
pub fn commit_by_prefix(repo: &gix::Repository, hex: &str) -> Option<ObjectId> {
    let prefix = gix::hash::Prefix::from_hex(hex).ok()?;
    match repo.objects.lookup_prefix(prefix, None) {
        Ok(Some(Ok(id))) => peel_to_commit(repo, id),
        _ => None,
    }
}

/// Whether any of `tags` is `tip` or in its history; the walk stops at the first one found.
pub fn descends_from(
    repo: &gix::Repository,
    tip: ObjectId,
    tags: &[ObjectId],
) -> Result<bool, GitError> {
    let walk = repo
        .rev_walk([tip])
        .all()
        .map_err(|e| failed("walking history", e))?;
    for info in walk {
        if tags.contains(&info.map_err(|e| failed("walking history", e))?.id) {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Every commit reachable from `tip`, itself included (`git for-each-ref --merged`'s test).
pub fn ancestors(
    repo: &gix::Repository,
    tip: ObjectId,
) -> Result<std::collections::HashSet<ObjectId>, GitError> {
    let walk = repo
        .rev_walk([tip])
        .all()
        .map_err(|e| failed("walking history", e))?;
    let mut out = std::collections::HashSet::new();
    for info in walk {
        out.insert(info.map_err(|e| failed("walking history", e))?.id);
    }
    Ok(out)
}
