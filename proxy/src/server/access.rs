//! Client access control: basic-auth users and bearer tokens from files, reloaded on change.
//!
//! Credentials are kept only as SHA-256 digests of `user:password` and of tokens, so a lookup
//! compares digests (no early exit on the secret's first differing byte) and no plaintext sits
//! in memory longer than a file read. `/healthz` and `/readyz` stay open: the kubelet probes
//! them without credentials.

use super::App;
use super::reply;
use crate::config::AccessConfig;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest, Sha256};
use std::collections::HashSet;
use std::sync::{Arc, RwLock};
use std::time::Duration;

type Hash = [u8; 32];

fn digest(s: &[u8]) -> Hash {
    Sha256::digest(s).into()
}

/// A credential file that could not be used.
#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    #[error("reading credential file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("credential file {path}, line {line}: {reason}")]
    Line {
        path: String,
        line: usize,
        reason: &'static str,
    },
}

/// Everything that may pass, as digests.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Credentials {
    basic: HashSet<Hash>,
    bearer: HashSet<Hash>,
}

/// Meaningful lines: trimmed, without blanks and `#` comments, with their line numbers.
fn lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines()
        .map(str::trim)
        .enumerate()
        .filter(|(_, l)| !l.is_empty() && !l.starts_with('#'))
        .map(|(i, l)| (i + 1, l))
}

impl Credentials {
    /// Adds a `user:password` file's text.
    pub fn add_basic(&mut self, path: &str, text: &str) -> Result<(), CredentialError> {
        for (line, l) in lines(text) {
            match l.split_once(':') {
                Some((u, p)) if !u.is_empty() && !p.is_empty() => {
                    self.basic.insert(digest(l.as_bytes()));
                }
                _ => {
                    return Err(CredentialError::Line {
                        path: path.into(),
                        line,
                        reason: "want user:password",
                    });
                }
            }
        }
        Ok(())
    }

    /// Adds a token file's text: one token per line.
    pub fn add_tokens(&mut self, path: &str, text: &str) -> Result<(), CredentialError> {
        for (line, l) in lines(text) {
            if l.contains(char::is_whitespace) {
                return Err(CredentialError::Line {
                    path: path.into(),
                    line,
                    reason: "a token has no spaces",
                });
            }
            self.bearer.insert(digest(l.as_bytes()));
        }
        Ok(())
    }

    /// Reads every configured file.
    pub fn load(cfg: &AccessConfig) -> Result<Self, CredentialError> {
        let mut c = Self::default();
        let read = |path: &String| {
            std::fs::read_to_string(path).map_err(|source| CredentialError::Read {
                path: path.clone(),
                source,
            })
        };
        for p in &cfg.basic_auth_files {
            c.add_basic(p, &read(p)?)?;
        }
        for p in &cfg.bearer_token_files {
            c.add_tokens(p, &read(p)?)?;
        }
        Ok(c)
    }

    /// Whether an `Authorization` header value names a known user or token.
    pub fn allows(&self, authorization: &str) -> bool {
        let (scheme, rest) = authorization
            .trim()
            .split_once(' ')
            .unwrap_or((authorization, ""));
        let rest = rest.trim();
        if scheme.eq_ignore_ascii_case("basic") {
            STANDARD
                .decode(rest)
                .is_ok_and(|pair| self.basic.contains(&digest(&pair)))
        } else if scheme.eq_ignore_ascii_case("bearer") {
            !rest.is_empty() && self.bearer.contains(&digest(rest.as_bytes()))
        } else {
            false
        }
    }
}

/// The access check every request passes: `None` inside when access control is off.
pub struct Gate {
    cfg: AccessConfig,
    current: RwLock<Arc<Credentials>>,
    challenge: HeaderValue,
}

impl Gate {
    /// Reads the credential files; a file missing at startup is an error (fail closed).
    pub fn new(cfg: &AccessConfig) -> Result<Option<Arc<Self>>, CredentialError> {
        if !cfg.enabled() {
            return Ok(None);
        }
        let creds = Credentials::load(cfg)?;
        let realm = cfg.realm.replace(['"', '\\'], "");
        let challenge =
            HeaderValue::from_str(&format!("Basic realm=\"{realm}\", charset=\"UTF-8\""))
                .unwrap_or_else(|_| HeaderValue::from_static("Basic realm=\"athens-proxy\""));
        Ok(Some(Arc::new(Self {
            cfg: cfg.clone(),
            current: RwLock::new(Arc::new(creds)),
            challenge,
        })))
    }

    fn allows(&self, authorization: Option<&str>) -> bool {
        let creds = match self.current.read() {
            Ok(c) => c.clone(),
            Err(p) => p.into_inner().clone(),
        };
        authorization.is_some_and(|a| creds.allows(a))
    }

    /// Reads the files again now; keeps the old credentials when one cannot be used.
    pub fn reload(&self) {
        match Credentials::load(&self.cfg) {
            Ok(new) => {
                let mut cur = match self.current.write() {
                    Ok(c) => c,
                    Err(p) => p.into_inner(),
                };
                if **cur != new {
                    tracing::info!("client credentials reloaded");
                    *cur = Arc::new(new);
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "client credentials not reloaded; keeping the old ones")
            }
        }
    }

    /// Re-reads the files every `reload_seconds` (a Secret volume update swaps a symlink, so
    /// the content is compared rather than a file's time).
    pub fn spawn_reloader(self: &Arc<Self>) {
        let gate = Arc::downgrade(self);
        let every = Duration::from_secs(self.cfg.reload_seconds.max(1));
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                let Some(g) = gate.upgrade() else { return };
                // File reads are small, but blocking: keep them off the request threads.
                let _ = tokio::task::spawn_blocking(move || g.reload()).await;
            }
        });
    }
}

/// Routes that never need credentials.
pub fn is_open(path: &str) -> bool {
    matches!(path, "/healthz" | "/readyz")
}

pub async fn check(State(app): State<Arc<App>>, req: Request, next: Next) -> Response {
    let Some(gate) = &app.access else {
        return next.run(req).await;
    };
    if is_open(req.uri().path()) {
        return next.run(req).await;
    }
    let auth = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    if gate.allows(auth) {
        return next.run(req).await;
    }
    let msg = if auth.is_some() {
        "unauthorized: the credentials sent are not valid for this proxy"
    } else {
        "unauthorized: this proxy needs credentials (a .netrc entry for its host, or a bearer token)"
    };
    let mut r = reply::error(StatusCode::UNAUTHORIZED, msg);
    r.headers_mut()
        .insert(header::WWW_AUTHENTICATE, gate.challenge.clone());
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(u: &str, p: &str) -> String {
        format!("Basic {}", STANDARD.encode(format!("{u}:{p}")))
    }

    #[test]
    fn users_and_tokens_from_several_files() {
        let mut c = Credentials::default();
        c.add_basic("a", "# team a\nalice:s3cret\n\nbob:pa:ss\n")
            .unwrap();
        c.add_basic("b", "carol:x\n").unwrap();
        c.add_tokens("t", "tok-1\n  tok-2  \n").unwrap();
        assert!(c.allows(&basic("alice", "s3cret")));
        assert!(c.allows(&basic("bob", "pa:ss")), "a colon in a password");
        assert!(c.allows(&basic("carol", "x")));
        assert!(c.allows("Bearer tok-2"));
        assert!(c.allows("bearer tok-1"));
        for bad in [
            basic("alice", "wrong"),
            basic("mallory", "s3cret"),
            "Bearer tok-3".into(),
            "Bearer ".into(),
            "Basic !!!".into(),
            "Digest x".into(),
            "".into(),
        ] {
            assert!(!c.allows(&bad), "{bad}");
        }
    }

    #[test]
    fn malformed_lines_name_the_line() {
        let mut c = Credentials::default();
        let e = c.add_basic("f", "ok:1\nnocolon\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "credential file f, line 2: want user:password"
        );
        assert!(c.add_tokens("t", "a b\n").is_err());
        assert!(c.add_basic("f", ":pw\n").is_err());
    }

    #[test]
    fn reload_keeps_old_credentials_when_a_file_breaks() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("users");
        std::fs::write(&f, "alice:one\n").unwrap();
        let cfg = AccessConfig {
            basic_auth_files: vec![f.display().to_string()],
            ..Default::default()
        };
        let gate = Gate::new(&cfg).unwrap().unwrap();
        assert!(gate.allows(Some(&basic("alice", "one"))));
        std::fs::write(&f, "alice:two\n").unwrap();
        gate.reload();
        assert!(!gate.allows(Some(&basic("alice", "one"))));
        assert!(gate.allows(Some(&basic("alice", "two"))));
        std::fs::write(&f, "broken\n").unwrap();
        gate.reload();
        assert!(gate.allows(Some(&basic("alice", "two"))));
        assert!(!gate.allows(None));
        assert!(Gate::new(&AccessConfig::default()).unwrap().is_none());
        let missing = AccessConfig {
            bearer_token_files: vec!["/nonexistent/tokens".into()],
            ..Default::default()
        };
        assert!(Gate::new(&missing).is_err());
    }
}
