//! Talking to a checksum database, directly or through a proxy that serves `/sumdb/<name>/`.

use reqwest::StatusCode;

use super::lookup::{SumdbRecord, parse_lookup};
use super::spec::SumdbSpec;
use crate::verify::VerifyError;

/// Largest lookup answer read (real answers are a few hundred bytes).
const MAX_LOOKUP_BODY: usize = 64 * 1024;

/// A checksum database client.
///
/// The base URL is chosen like the `go` command does: an explicit URL in the spec is used as
/// is; otherwise the first proxy (in order) whose `<proxy>/sumdb/<name>/supported` answers 200
/// (404 and 410 mean "try the next one"; `direct` or `off` ends the search); otherwise
/// `https://<name>`. The choice is made once and cached; a failed probe is not cached.
#[derive(Debug)]
pub struct SumdbClient {
    spec: SumdbSpec,
    proxies: Vec<String>,
    http: reqwest::Client,
    base: tokio::sync::OnceCell<String>,
}

impl SumdbClient {
    /// `proxies` are `GOPROXY` entries in order (base URLs, or `direct`/`off`).
    pub fn new(spec: SumdbSpec, proxies: Vec<String>, http: reqwest::Client) -> Self {
        SumdbClient {
            spec,
            proxies,
            http,
            base: tokio::sync::OnceCell::new(),
        }
    }

    pub fn spec(&self) -> &SumdbSpec {
        &self.spec
    }

    fn unavailable(&self, reason: String) -> VerifyError {
        VerifyError::SumdbUnavailable {
            name: self.spec.name.clone(),
            reason,
        }
    }

    /// The base URL lookups go to (no trailing slash), choosing it on first use.
    pub async fn base_url(&self) -> Result<&str, VerifyError> {
        self.base
            .get_or_try_init(|| self.choose_base())
            .await
            .map(String::as_str)
    }

    async fn choose_base(&self) -> Result<String, VerifyError> {
        if let Some(u) = &self.spec.url {
            return Ok(u.clone());
        }
        for proxy in &self.proxies {
            let proxy = proxy.trim().trim_end_matches('/');
            if proxy == "direct" || proxy == "off" {
                break;
            }
            let lower = proxy.to_ascii_lowercase();
            if !(lower.starts_with("https://") || lower.starts_with("http://")) {
                continue; // e.g. file:// proxies: cannot serve us
            }
            let base = format!("{proxy}/sumdb/{}", self.spec.name);
            let url = format!("{base}/supported");
            let resp = self
                .http
                .get(&url)
                .send()
                .await
                .map_err(|e| self.unavailable(format!("GET {url}: {e}")))?;
            match resp.status() {
                StatusCode::OK => return Ok(base),
                StatusCode::NOT_FOUND | StatusCode::GONE => continue,
                s => return Err(self.unavailable(format!("GET {url}: {s}"))),
            }
        }
        Ok(self.spec.direct_url())
    }

    /// Looks up `module@version` (both already case-escaped, as in proxy URLs) and returns the
    /// database's hashes. The tree note's signature is verified when the spec has a verifier
    /// key (`SumdbRecord::signature_verified` says whether it was).
    ///
    /// 404 and 410 give [`VerifyError::NotInSumdb`]: the database does not know this version.
    pub async fn lookup(
        &self,
        module_escaped: &str,
        version: &str,
    ) -> Result<SumdbRecord, VerifyError> {
        let module = unescape(module_escaped).ok_or_else(|| VerifyError::MalformedLookup {
            name: self.spec.name.clone(),
            module: module_escaped.to_string(),
            version: version.to_string(),
            reason: "invalid escaped module path".into(),
        })?;
        let version_plain = unescape(version).ok_or_else(|| VerifyError::MalformedLookup {
            name: self.spec.name.clone(),
            module: module.clone(),
            version: version.to_string(),
            reason: "invalid escaped version".into(),
        })?;
        let base = self.base_url().await?;
        let url = format!("{base}/lookup/{module_escaped}@{version}");
        let mut resp = self
            .http
            .get(&url)
            .send()
            .await
            .map_err(|e| self.unavailable(format!("GET {url}: {e}")))?;
        let status = resp.status();
        let mut body = Vec::new();
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| self.unavailable(format!("GET {url}: {e}")))?
        {
            if body.len() + chunk.len() > MAX_LOOKUP_BODY {
                return Err(self.unavailable(format!(
                    "GET {url}: answer larger than {MAX_LOOKUP_BODY} bytes"
                )));
            }
            body.extend_from_slice(&chunk);
        }
        match status {
            StatusCode::OK => parse_lookup(
                &body,
                &self.spec.name,
                &module,
                &version_plain,
                self.spec.verifier_key.as_ref(),
            ),
            StatusCode::NOT_FOUND | StatusCode::GONE => Err(VerifyError::NotInSumdb {
                name: self.spec.name.clone(),
                module,
                version: version_plain,
                detail: format!("{}: {}", status.as_u16(), first_line(&body)),
            }),
            s => Err(self.unavailable(format!("GET {url}: {s}: {}", first_line(&body)))),
        }
    }
}

/// First line of an error body, printable and short.
fn first_line(body: &[u8]) -> String {
    let s = String::from_utf8_lossy(body);
    let line = s.lines().next().unwrap_or("").trim();
    let line: String = line.chars().filter(|c| !c.is_control()).take(200).collect();
    if line.is_empty() {
        "no details".to_string()
    } else {
        line
    }
}

/// Undoes the module path case encoding (`!a` is `A`); `None` for upper case, a `!` not followed
/// by a lower-case letter, or non-ASCII.
fn unescape(s: &str) -> Option<String> {
    let mut out = String::with_capacity(s.len());
    let mut bang = false;
    for c in s.chars() {
        if !c.is_ascii() || c.is_ascii_uppercase() {
            return None;
        }
        if bang {
            if !c.is_ascii_lowercase() {
                return None;
            }
            out.push(c.to_ascii_uppercase());
            bang = false;
        } else if c == '!' {
            bang = true;
        } else {
            out.push(c);
        }
    }
    if bang { None } else { Some(out) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unescape_paths() {
        assert_eq!(
            unescape("github.com/!azure/go").as_deref(),
            Some("github.com/Azure/go")
        );
        assert_eq!(unescape("a!").as_deref(), None);
        assert_eq!(unescape("a!1").as_deref(), None);
        assert_eq!(unescape("Abc").as_deref(), None);
        assert_eq!(unescape("v1.0.0-!r!c1").as_deref(), Some("v1.0.0-RC1"));
    }

    #[test]
    fn first_line_is_short() {
        assert_eq!(first_line(b"not found\nmore"), "not found");
        assert_eq!(first_line(b""), "no details");
    }
}
