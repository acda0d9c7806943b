//! The HTTP client that walks the `GOPROXY` list.

use super::body::read_limited;
use super::goproxy_list::{Entry, FallThrough, Source};
use super::netrc::{NetrcLine, credentials_for};
use crate::policy::PrefixPatterns;
use crate::vcs::{Direct, DirectBody, Login, VcsError};
use athens_config::redact_userinfo;
use reqwest::StatusCode;
use std::sync::Arc;
use std::time::Duration;

/// Largest upstream error body read (its first line becomes the message).
const MAX_ERROR_BODY: usize = 4 * 1024;

/// Why upstream gave us nothing.
#[derive(Debug, Clone, thiserror::Error)]
pub enum UpstreamError {
    /// Every entry that was asked said 404/410: the module or version does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The list ends in `off`.
    #[error("upstream disabled by GOPROXY=off")]
    Off,
    /// An answer that is neither success nor not-found.
    #[error("upstream {url} answered {status}: {body}")]
    Status {
        url: String,
        status: u16,
        body: String,
    },
    /// No answer in time.
    #[error("upstream {url} timed out")]
    Timeout { url: String },
    /// Connection or protocol failure.
    #[error("upstream {url}: {reason}")]
    Transport { url: String, reason: String },
}

impl UpstreamError {
    fn is_not_found(&self) -> bool {
        matches!(self, Self::NotFound(_))
    }
}

/// A `GOPROXY` list with an HTTP client.
#[derive(Clone, Debug)]
pub struct Upstream {
    entries: Vec<Entry>,
    http: reqwest::Client,
    retries: u32,
    /// Basic-auth credentials per host, for URLs that carry none themselves.
    netrc: Vec<NetrcLine>,
    /// `direct`: version control, natively.
    direct: Option<Arc<Direct>>,
    /// Modules that only ever go to `direct`.
    private: PrefixPatterns,
}

/// How `direct` and private modules are fetched from version control.
#[derive(Debug, Clone)]
pub struct VcsSettings {
    /// Where the bare git mirrors live (one per repository).
    pub cache_dir: std::path::PathBuf,
    /// GOPRIVATE-style patterns of modules fetched only from version control.
    pub private: Vec<String>,
    pub ssh: crate::vcs::SshConfig,
    /// A git config file applied to every remote.
    pub git_config: Option<std::path::PathBuf>,
    /// Most bytes the mirrors may take (0: no limit).
    pub cache_max: u64,
    /// A `go` binary for hg, svn, bzr and fossil repositories.
    pub go_binary: Option<std::path::PathBuf>,
}

impl Upstream {
    /// `timeout` bounds connecting and each idle read, so a slow but moving zip is not cut off.
    pub fn new(entries: Vec<Entry>, timeout: Duration, retries: u32) -> Result<Self, String> {
        let http = reqwest::Client::builder()
            .connect_timeout(timeout)
            .read_timeout(timeout)
            .user_agent(concat!("athens-proxy/", env!("CARGO_PKG_VERSION")))
            .redirect(reqwest::redirect::Policy::custom(same_origin_redirects))
            .build()
            .map_err(|e| format!("building HTTP client: {e}"))?;
        Ok(Self {
            entries,
            netrc: Vec::new(),
            http,
            retries,
            direct: None,
            private: PrefixPatterns::default(),
        })
    }

    /// Serves `direct` entries and `private` modules from version control as `vcs` says, and
    /// counts its fetches in `metrics`. Call after [`Self::with_netrc`]: the same credentials
    /// are used.
    pub fn with_direct(mut self, vcs: VcsSettings, metrics: Arc<crate::metrics::Metrics>) -> Self {
        let logins = self
            .netrc
            .iter()
            .map(|l| {
                let login = Login {
                    user: l.login.clone(),
                    password: l.password.clone(),
                };
                (l.machine.clone(), login)
            })
            .collect();
        let mut direct = Direct::new(vcs.cache_dir, self.http.clone(), logins)
            .with_git(vcs.ssh, vcs.git_config)
            .with_cache_limit(vcs.cache_max)
            .with_metrics(metrics);
        if let Some(go) = vcs.go_binary {
            direct = direct.with_go_binary(go, &vcs.private);
        }
        self.direct = Some(Arc::new(direct));
        self.private = PrefixPatterns::new(&vcs.private);
        self
    }

    /// Sends credentials from these `.netrc` entries to matching hosts.
    pub fn with_netrc(mut self, netrc: Vec<NetrcLine>) -> Self {
        self.netrc = netrc;
        self
    }

    /// The shared HTTP client (for the checksum database).
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// GETs `path` (already escaped, no leading slash) from the first entry that has it,
    /// following the list's fall-through rules. A 200 response is returned unread.
    pub async fn get(&self, path: &str) -> Result<reqwest::Response, UpstreamError> {
        // A private module goes to version control only: its name never reaches a proxy.
        if self.is_private(path) {
            return self.get_direct(path).await;
        }
        let mut first_error: Option<UpstreamError> = None;
        for entry in &self.entries {
            let result = match &entry.source {
                Source::Off => Err(UpstreamError::Off),
                Source::Direct => self.get_direct(path).await,
                Source::Url(base) => self.get_with_retries(&format!("{base}/{path}")).await,
            };
            let err = match result {
                Ok(resp) => return Ok(resp),
                Err(e) => e,
            };
            let go_on = err.is_not_found() || entry.fall_through == FallThrough::OnAnyError;
            // Report the most useful error: a real failure beats a not-found.
            if first_error
                .as_ref()
                .is_none_or(|f| f.is_not_found() && !err.is_not_found())
            {
                first_error = Some(err);
            }
            if !go_on {
                break;
            }
        }
        Err(first_error.unwrap_or(UpstreamError::Off))
    }

    /// Whether the module a protocol path names matches the private patterns.
    pub fn is_private(&self, path: &str) -> bool {
        let module = path
            .split_once("/@v/")
            .map(|(m, _)| m)
            .or_else(|| path.strip_suffix("/@latest"))
            .unwrap_or(path);
        crate::module::unescape_path(module).is_ok_and(|m| self.private.matches(&m))
    }

    async fn get_direct(&self, path: &str) -> Result<reqwest::Response, UpstreamError> {
        let Some(direct) = &self.direct else {
            return Err(UpstreamError::NotFound(format!(
                "{path}: fetching from version control is not configured"
            )));
        };
        let body = direct.get(path).await.map_err(|e| match e {
            VcsError::NotFound(m) => UpstreamError::NotFound(m),
            VcsError::Failed(m) => UpstreamError::Transport {
                url: "direct".into(),
                reason: m,
            },
        })?;
        // An in-process answer dressed as an HTTP one, so the callers' bounded reads, temp
        // disk budget and verification apply unchanged.
        let body = match body {
            DirectBody::Bytes(b) => reqwest::Body::from(b),
            DirectBody::File(f) => reqwest::Body::from(tokio::fs::File::from_std(f)),
        };
        Ok(reqwest::Response::from(http::Response::new(body)))
    }

    async fn get_with_retries(&self, url: &str) -> Result<reqwest::Response, UpstreamError> {
        let mut attempt = 0;
        loop {
            let result = self.get_once(url).await;
            let retryable = match &result {
                Err(UpstreamError::Status { status, .. }) => *status == 429 || *status >= 500,
                Err(UpstreamError::Transport { .. }) | Err(UpstreamError::Timeout { .. }) => true,
                _ => false,
            };
            if !retryable || attempt >= self.retries {
                return result;
            }
            attempt += 1;
            tokio::time::sleep(Duration::from_millis(100 << attempt.min(6))).await;
        }
    }

    async fn get_once(&self, url: &str) -> Result<reqwest::Response, UpstreamError> {
        let mut req = self.http.get(url);
        if let Ok(u) = reqwest::Url::parse(url)
            && u.username().is_empty()
            && let Some(c) = u.host_str().and_then(|h| credentials_for(&self.netrc, h))
        {
            req = req.basic_auth(&c.login, Some(&c.password));
        }
        // Errors name the URL without its user info, and reqwest's own message without the URL.
        let url = &redact_userinfo(url);
        let resp = req.send().await.map_err(|e| {
            if e.is_timeout() {
                UpstreamError::Timeout { url: url.clone() }
            } else {
                UpstreamError::Transport {
                    url: url.clone(),
                    reason: error_chain(&e.without_url()),
                }
            }
        })?;
        let status = resp.status();
        if status == StatusCode::OK {
            return Ok(resp);
        }
        // Error bodies are only shown as one line: read a few KiB at most.
        let body = read_limited(resp, MAX_ERROR_BODY).await.unwrap_or_default();
        let body = first_line(&String::from_utf8_lossy(&body));
        if status == StatusCode::NOT_FOUND || status == StatusCode::GONE {
            let msg = if body.is_empty() {
                format!("{url}: {status}")
            } else {
                body
            };
            return Err(UpstreamError::NotFound(msg));
        }
        Err(UpstreamError::Status {
            url: url.into(),
            status: status.as_u16(),
            body,
        })
    }
}

/// Most redirects followed for one request.
const MAX_REDIRECTS: usize = 10;

/// Redirects are followed only to the same scheme, host and port as the URL first asked: an
/// upstream must not be able to send the proxy (and any credentials it holds) elsewhere.
fn same_origin_redirects(attempt: reqwest::redirect::Attempt<'_>) -> reqwest::redirect::Action {
    let origin = |u: &reqwest::Url| {
        (
            u.scheme().to_string(),
            u.host_str().map(str::to_ascii_lowercase),
            u.port_or_known_default(),
        )
    };
    let Some(first) = attempt.previous().first() else {
        return attempt.follow();
    };
    if attempt.previous().len() > MAX_REDIRECTS {
        return attempt.error(format!("more than {MAX_REDIRECTS} redirects"));
    }
    if origin(first) != origin(attempt.url()) {
        let to = format!(
            "{}://{}",
            attempt.url().scheme(),
            attempt.url().host_str().unwrap_or("")
        );
        return attempt.error(format!("refusing a redirect to another host ({to})"));
    }
    attempt.follow()
}

/// The first non-empty line, bounded, for error messages shown to users.
fn first_line(text: &str) -> String {
    let line = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("");
    line.chars().take(300).collect()
}

/// An error and its sources on one line, as `a: b: c` (reqwest's own `Display` stops at the top).
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(inner) = src {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        src = inner.source();
    }
    s
}
