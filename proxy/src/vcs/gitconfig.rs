//! The git configuration file the proxy is pointed at (`upstream.vcs_git_config`), applied to
//! each mirror the way git would apply it to a clone of that remote: `url.<base>.insteadOf`
//! rewrites, `http.extraHeader` and the other `http.*` keys, including the URL-scoped
//! `[http "<url>"]` sections git matches against the remote (gitoxide reads only unscoped
//! `http.*`, so the matching sections are resolved here, per remote), and `credential.helper =
//! store` files read directly (there is no git program in the image to run a helper).
//! Everything here is pure except reading the files named.

use super::git::{GitError, Login};
use gix::bstr::{BStr, ByteSlice};
use std::path::{Path, PathBuf};

fn failed(what: &str, e: impl std::fmt::Display) -> GitError {
    GitError::Failed(format!("git config {what}: {e}"))
}

/// Reads the file (no includes).
pub fn read(path: &Path) -> Result<gix::config::File, GitError> {
    gix::config::File::from_path_no_includes(path.to_path_buf(), gix::config::Source::Api)
        .map_err(|e| failed("reading", e))
}

/// `config` as it applies to `remote`: every section kept, except `[http "<url>"]` sections,
/// which become plain `[http]` entries when `<url>` matches the remote (git's `http.<url>.*`
/// rule) and are dropped otherwise.
pub fn scoped_for(config: &gix::config::File, remote: &str) -> Result<gix::config::File, GitError> {
    let mut out = gix::config::File::new(gix::config::file::Metadata::api());
    for section in config.sections() {
        let name = section.header().name().to_str_lossy().into_owned();
        let sub = section.header().subsection_name();
        let (name, sub) = match sub {
            Some(u) if name.eq_ignore_ascii_case("http") => {
                if !url_matches(u, remote) {
                    continue;
                }
                (name, None)
            }
            _ => (name, sub.map(|s| s.to_owned())),
        };
        let mut target = out
            .new_section(name, sub)
            .map_err(|e| failed("section", e))?;
        let mut seen = Vec::new();
        for key in section.value_names() {
            if seen.contains(&key) {
                continue;
            }
            for v in section.values(&key) {
                target
                    .push(key.as_str(), Some(v.as_bstr()))
                    .map_err(|e| failed("key", e))?;
            }
            seen.push(key);
        }
    }
    Ok(out)
}

/// git's URL match for `http.<url>.*`: same scheme and host (and port), the configured path a
/// prefix of the remote's at a `/` boundary, and the configured user, when there is one, the
/// remote's.
pub fn url_matches(pattern: &BStr, remote: &str) -> bool {
    let (Ok(p), Ok(r)) = (
        gix::Url::from_bytes(pattern),
        gix::Url::from_bytes(remote.into()),
    ) else {
        return false;
    };
    let host_eq = match (p.host(), r.host()) {
        (Some(a), Some(b)) => a.eq_ignore_ascii_case(b),
        _ => false,
    };
    let path_ok = {
        let pp = p.path.trim_end_with(|c| c == '/');
        r.path.starts_with(pp) && matches!(r.path.get(pp.len()), None | Some(b'/'))
    };
    p.scheme == r.scheme
        && host_eq
        && p.port_or_default() == r.port_or_default()
        && path_ok
        && p.user().is_none_or(|u| r.user() == Some(u))
}

/// The files of `credential.helper = store [--file=<path>]` entries (`~/.git-credentials`
/// when no file is named), in order.
pub fn store_files(config: &gix::config::File) -> Vec<PathBuf> {
    let helpers = config.strings("credential.helper").unwrap_or_default();
    let mut out = Vec::new();
    for h in helpers {
        let h = h.to_str_lossy();
        let mut words = h.split_whitespace();
        if words.next() != Some("store") {
            continue;
        }
        let mut file = None;
        while let Some(w) = words.next() {
            if let Some(f) = w.strip_prefix("--file=") {
                file = Some(PathBuf::from(f));
            } else if w == "--file" {
                file = words.next().map(PathBuf::from);
            }
        }
        let file = file.or_else(|| {
            std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".git-credentials"))
        });
        out.extend(file);
    }
    out
}

/// The login for `url` in a `git credential-store` file (one `scheme://user:pass@host[/path]`
/// a line, percent-encoded): the first entry with the same scheme and host whose path, when it
/// has one, is a prefix of the URL's.
pub fn store_login(text: &str, url: &str) -> Option<Login> {
    let want = reqwest::Url::parse(url).ok()?;
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let Ok(entry) = reqwest::Url::parse(line) else {
            continue;
        };
        let same = entry.scheme() == want.scheme()
            && entry.host_str() == want.host_str()
            && entry.port_or_known_default() == want.port_or_known_default();
        let path = entry.path().trim_end_matches('/');
        if !same || !want.path().starts_with(path) || entry.username().is_empty() {
            continue;
        }
        let decode = |s: &str| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        };
        return Some(Login {
            user: decode(entry.username()),
            password: decode(entry.password().unwrap_or("")),
        });
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> gix::config::File {
        gix::config::File::from_bytes_owned(
            &mut text.as_bytes().to_vec(),
            gix::config::file::Metadata::api(),
            Default::default(),
        )
        .unwrap()
    }

    #[test]
    fn http_sections_scoped_to_the_remote() {
        let cfg = parse(
            "[url \"https://git.corp.test/real/\"]\n\tinsteadOf = https://git.corp.test/old/\n\
             [http]\n\tlowSpeedTime = 30\n\
             [http \"https://git.corp.test/\"]\n\textraHeader = Authorization: Bearer one\n\
             [http \"https://other.test\"]\n\textraHeader = Authorization: Bearer two\n\
             [http \"https://git.corp.test/team\"]\n\textraHeader = X-Team: yes\n",
        );
        let got = scoped_for(&cfg, "https://git.corp.test/team/repo.git").unwrap();
        let headers: Vec<String> = got
            .strings("http.extraHeader")
            .unwrap()
            .iter()
            .map(|v| v.to_string())
            .collect();
        assert_eq!(headers, ["Authorization: Bearer one", "X-Team: yes"]);
        assert_eq!(got.string("http.lowSpeedTime").unwrap(), "30");
        assert_eq!(
            got.string("url.https://git.corp.test/real/.insteadOf")
                .unwrap(),
            "https://git.corp.test/old/"
        );
        let other = scoped_for(&cfg, "https://git.corp.test/teamwork/r.git").unwrap();
        assert_eq!(other.strings("http.extraHeader").unwrap().len(), 1);
    }

    #[test]
    fn url_match_rules() {
        let m = |p: &str, r: &str| url_matches(p.into(), r);
        assert!(m("https://h.test", "https://h.test/a/b.git"));
        assert!(m("https://H.test/a/", "https://h.test/a/b.git"));
        assert!(!m("https://h.test/a", "https://h.test/ab.git"));
        assert!(!m("http://h.test", "https://h.test/a"));
        assert!(!m("https://h.test:8443", "https://h.test/a"));
        assert!(m("https://bot@h.test", "https://bot@h.test/a"));
        assert!(!m("https://bot@h.test", "https://h.test/a"));
    }

    #[test]
    fn credential_store_files_and_entries() {
        let cfg = parse(
            "[credential]\n\thelper = cache\n\thelper = store --file=/s/creds\n\
             \thelper = store --file /t/creds\n",
        );
        assert_eq!(
            store_files(&cfg),
            [PathBuf::from("/s/creds"), PathBuf::from("/t/creds")]
        );
        let text = "https://a:x@other.test\nhttps://bot:p%40ss@git.corp.test/team\n\
                    https://gen:q@git.corp.test\n";
        let l = store_login(text, "https://git.corp.test/team/r.git").unwrap();
        assert_eq!((l.user.as_str(), l.password.as_str()), ("bot", "p@ss"));
        let l = store_login(text, "https://git.corp.test/else/r.git").unwrap();
        assert_eq!(l.user, "gen");
        assert!(store_login(text, "https://none.test/r").is_none());
    }
}
