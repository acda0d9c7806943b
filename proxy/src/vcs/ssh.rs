//! git over SSH without an `ssh` program: the proxy image is FROM scratch and carries none for
//! gix to spawn, so the SSH connection is made in-process with `russh`, `git-upload-pack` is
//! run on the server, and gix speaks the pack protocol over that channel exactly as it does
//! over a spawned `ssh` (the "process" connect mode).
//!
//! Host keys must be in the configured `known_hosts` file (no trust on first use); the client
//! authenticates with the configured private keys, tried in order. Key contents and paths
//! never appear in errors: only the host, port and user do.

use super::git::GitError;
use gix::protocol::transport::Protocol;
use gix::protocol::transport::client::blocking_io::Transport;
use gix::protocol::transport::client::git::ConnectMode;
use gix::protocol::transport::client::git::blocking_io::Connection;
use russh::keys::PublicKeyOrCertificate;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How long connecting plus the SSH handshake and authentication may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// An SSH connection with nothing moving for this long is closed.
const INACTIVITY_TIMEOUT: Duration = Duration::from_secs(120);

/// Where the SSH credentials are.
#[derive(Debug, Clone, Default)]
pub struct SshConfig {
    /// Private keys (OpenSSH or PEM format, not passphrase-protected), tried in order.
    pub keys: Vec<PathBuf>,
    /// The `known_hosts` file every server's host key must be listed in.
    pub known_hosts: Option<PathBuf>,
}

/// What an `ssh://` (or `user@host:path`) URL names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub user: String,
    pub host: String,
    pub port: u16,
    /// The repository path as `git-upload-pack` takes it.
    pub path: String,
}

impl Target {
    /// The parts of an SSH URL. Without a user name `git` is used: hosting services expect
    /// it, and the proxy's own account name means nothing to a git server.
    pub fn from_url(url: &gix::Url) -> Result<Self, GitError> {
        let host = url
            .host()
            .filter(|h| !h.is_empty() && !h.starts_with('-'))
            .ok_or_else(|| GitError::Failed("ssh URL without a usable host".into()))?;
        let user = url.user().filter(|u| !u.is_empty()).unwrap_or("git");
        if user.starts_with('-') {
            return Err(GitError::Failed(format!("ssh user name {user:?} refused")));
        }
        let mut path = String::from_utf8(url.path.to_vec())
            .map_err(|_| GitError::Failed("ssh URL path is not UTF-8".into()))?;
        // `ssh://host/~user/repo` means a path in a home directory, as git passes it.
        if path.starts_with("/~") {
            path.remove(0);
        }
        if path.is_empty() {
            return Err(GitError::Failed(format!(
                "ssh://{host}: no repository path"
            )));
        }
        Ok(Self {
            user: user.to_string(),
            host: host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_string(),
            port: url.port.unwrap_or(22),
            path,
        })
    }

    /// The command run on the server, quoted as git quotes it (`'` becomes `'\''`).
    pub fn upload_pack_command(&self) -> String {
        format!("git-upload-pack '{}'", self.path.replace('\'', r"'\''"))
    }

    fn display(&self) -> String {
        format!("ssh://{}@{}:{}", self.user, self.host, self.port)
    }
}

/// Checks the server's host key against the known_hosts file; remembers why it refused.
struct HostCheck {
    host: String,
    port: u16,
    known_hosts: Option<PathBuf>,
    refused: Arc<Mutex<Option<String>>>,
}

impl russh::client::Handler for HostCheck {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        key: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        let verdict = match (key, &self.known_hosts) {
            (_, None) => Err("no known_hosts file is configured".to_string()),
            (PublicKeyOrCertificate::Certificate(_), _) => {
                Err("host certificates are not supported; list the host key".to_string())
            }
            (PublicKeyOrCertificate::PublicKey { key, .. }, Some(file)) => {
                match russh::keys::check_known_hosts_path(&self.host, self.port, key, file) {
                    Ok(true) => Ok(()),
                    Ok(false) => Err("the host key is not in the known_hosts file".to_string()),
                    Err(russh::keys::Error::KeyChanged { line }) => Err(format!(
                        "the host key differs from the one on line {line} of the known_hosts file"
                    )),
                    Err(e) => Err(format!("reading the known_hosts file: {e}")),
                }
            }
        };
        match verdict {
            Ok(()) => Ok(true),
            Err(why) => {
                *self.refused.lock().unwrap_or_else(|p| p.into_inner()) = Some(why);
                Ok(false)
            }
        }
    }
}

/// A reader that keeps the SSH session open for as long as gix reads from its channel.
struct KeepSession<R> {
    inner: R,
    _session: russh::client::Handle<HostCheck>,
}

impl<R: std::io::Read> std::io::Read for KeepSession<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.inner.read(buf)
    }
}

/// Connects to the server, authenticates, starts `git-upload-pack` and returns a transport
/// gix fetches through. Blocks: call it off the async runtime, with that runtime's handle.
pub fn connect(
    rt: &tokio::runtime::Handle,
    cfg: &SshConfig,
    url: &gix::Url,
) -> Result<Box<dyn Transport + Send>, GitError> {
    let target = Target::from_url(url)?;
    let shown = target.display();
    let fail = |what: &str| GitError::Failed(format!("{shown}: {what}"));
    let refused = Arc::new(Mutex::new(None));
    let check = HostCheck {
        host: target.host.clone(),
        port: target.port,
        known_hosts: cfg.known_hosts.clone(),
        refused: refused.clone(),
    };
    let config = Arc::new(russh::client::Config {
        inactivity_timeout: Some(INACTIVITY_TIMEOUT),
        ..Default::default()
    });
    let stream = rt.block_on(async {
        let setup = async {
            let mut session =
                russh::client::connect(config, (target.host.as_str(), target.port), check)
                    .await
                    .map_err(|e| {
                        let why = refused.lock().unwrap_or_else(|p| p.into_inner()).take();
                        fail(&why.unwrap_or_else(|| format!("connecting: {e}")))
                    })?;
            authenticate(&mut session, cfg, &target.user)
                .await
                .map_err(|e| fail(&e))?;
            let channel = session
                .channel_open_session()
                .await
                .map_err(|e| fail(&format!("opening a channel: {e}")))?;
            // Protocol v2 when the server accepts the variable; gix detects a v0/v1 answer.
            channel
                .set_env(false, "GIT_PROTOCOL", "version=2")
                .await
                .map_err(|e| fail(&format!("setting GIT_PROTOCOL: {e}")))?;
            channel
                .exec(false, target.upload_pack_command())
                .await
                .map_err(|e| fail(&format!("starting git-upload-pack: {e}")))?;
            Ok::<_, GitError>((session, channel.into_stream()))
        };
        tokio::time::timeout(CONNECT_TIMEOUT, setup)
            .await
            .map_err(|_| fail(&format!("no session within {CONNECT_TIMEOUT:?}")))?
    })?;
    let (session, stream) = stream;
    let (read, write) = tokio::io::split(stream);
    let read = KeepSession {
        inner: tokio_util::io::SyncIoBridge::new_with_handle(read, rt.clone()),
        _session: session,
    };
    let write = tokio_util::io::SyncIoBridge::new_with_handle(write, rt.clone());
    let conn = Connection::new(
        read,
        write,
        Protocol::V2,
        target.path.clone(),
        None::<(String, Option<u16>)>,
        ConnectMode::Process,
        false,
    )
    // gix reads its per-URL transport options by this URL: the remote's own.
    .custom_url(Some(url.to_bstring()));
    Ok(Box::new(conn))
}

/// Offers each configured key in turn; the first the server accepts wins.
async fn authenticate(
    session: &mut russh::client::Handle<HostCheck>,
    cfg: &SshConfig,
    user: &str,
) -> Result<(), String> {
    if cfg.keys.is_empty() {
        return Err("no SSH private key is configured".into());
    }
    let mut unreadable = 0;
    for (i, path) in cfg.keys.iter().enumerate() {
        // The error of a key file may quote its contents: only its position is reported.
        let Ok(key) = russh::keys::load_secret_key(path, None) else {
            unreadable += 1;
            tracing::warn!(
                key = i + 1,
                "SSH private key unreadable (encrypted or not a key)"
            );
            continue;
        };
        let hash = session
            .best_supported_rsa_hash()
            .await
            .map_err(|e| format!("authenticating: {e}"))?
            .flatten();
        let key = russh::keys::PrivateKeyWithHashAlg::new(Arc::new(key), hash);
        let res = session
            .authenticate_publickey(user, key)
            .await
            .map_err(|e| format!("authenticating: {e}"))?;
        if res.success() {
            return Ok(());
        }
    }
    Err(format!(
        "none of the {} configured SSH keys was accepted ({unreadable} unreadable)",
        cfg.keys.len()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(url: &str) -> Target {
        Target::from_url(&gix::Url::from_bytes(url.into()).unwrap()).unwrap()
    }

    #[test]
    fn ssh_urls_and_scp_form() {
        let t = target("ssh://git@git.corp.example:2222/team/repo.git");
        assert_eq!(
            (t.user.as_str(), t.host.as_str(), t.port, t.path.as_str()),
            ("git", "git.corp.example", 2222, "/team/repo.git")
        );
        let t = target("deploy@git.corp.example:team/repo.git");
        assert_eq!((t.user.as_str(), t.port), ("deploy", 22));
        assert_eq!(t.path, "team/repo.git");
        let t = target("ssh://git.corp.example/~alice/repo.git");
        assert_eq!(
            (t.user.as_str(), t.path.as_str()),
            ("git", "~alice/repo.git")
        );
    }

    #[test]
    fn upload_pack_command_is_quoted_as_git_quotes() {
        let t = target("ssh://git@h.example/it's/repo.git");
        assert_eq!(
            t.upload_pack_command(),
            r"git-upload-pack '/it'\''s/repo.git'"
        );
    }
}
