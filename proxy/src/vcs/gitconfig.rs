//! The git configuration file the proxy is pointed at (`upstream.vcs_git_config`), applied to
//! each mirror the way git would apply it to a clone of that remote: `url.<base>.insteadOf`
//! rewrites, `http.extraHeader` and the other `http.*` keys, including the URL-scoped
//! `[http "<url>"]` sections git matches against the remote (gitoxide reads only unscoped
//! `http.*`, so the matching sections are resolved here, per remote), and `credential.helper`
//! entries (also in `[credential "<url>"]` sections): `store` files read directly, other
//! helpers run as programs by credhelper.rs (there is no git program in the image, so `cache`
//! cannot work). Everything here is pure except reading the files named.

use super::credhelper::HelperCommand;
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

/// One `credential.helper` entry, as git reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Helper {
    /// `store [--file=<path>]` (`~/.git-credentials` when no file is named): read here.
    Store(PathBuf),
    /// `cache`: git's credential daemon, which the proxy does not have.
    Cache,
    /// Any other helper: a program asked with `get`.
    Program(HelperCommand),
}

/// The helpers git would ask for `url`, in order: `credential.helper` entries of `[credential]`
/// and of the `[credential "<url>"]` sections matching `url` (git's `http.<url>` rule), in the
/// file's order; an empty value clears the list so far, as in git.
pub fn helpers_for(config: &gix::config::File, url: &str) -> Vec<Helper> {
    let mut out = Vec::new();
    for section in config.sections() {
        if !section.header().name().eq_ignore_ascii_case(b"credential") {
            continue;
        }
        if let Some(scope) = section.header().subsection_name()
            && !url_matches(scope, url)
        {
            continue;
        }
        for value in section.values("helper") {
            match parse_helper(&value.to_str_lossy()) {
                Some(h) => out.push(h),
                None => out.clear(),
            }
        }
    }
    out
}

/// `credential.useHttpPath`: the repository path is sent to helpers too.
pub fn use_http_path(config: &gix::config::File) -> bool {
    config
        .boolean("credential.useHttpPath")
        .ok()
        .flatten()
        .unwrap_or(false)
}

/// A helper value as git runs it (`None` for the empty value): `!<shell command>` through
/// `sh -c` with ` get` appended, an absolute path as that program, any other name `<name>` as
/// the program `git-credential-<name>` on `PATH` (git runs `git credential-<name>`, which is
/// that program). Without a shell, words are split on whitespace: no quoting.
fn parse_helper(value: &str) -> Option<Helper> {
    let value = value.trim();
    if let Some(command) = value.strip_prefix('!') {
        return Some(Helper::Program(HelperCommand {
            program: "sh".into(),
            args: vec!["-c".into(), format!("{command} get")],
            label: "(a `!` shell command)".into(),
        }));
    }
    let mut words = value.split_whitespace();
    let first = words.next()?;
    match first {
        "store" => {
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
            })?;
            Some(Helper::Store(file))
        }
        "cache" => Some(Helper::Cache),
        _ => {
            let program = if Path::new(first).is_absolute() {
                first.to_string()
            } else {
                format!("git-credential-{first}")
            };
            let mut args: Vec<String> = words.map(String::from).collect();
            args.push("get".into());
            Some(Helper::Program(HelperCommand {
                label: program.clone(),
                program,
                args,
            }))
        }
    }
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
    fn credential_helpers_as_git_runs_them() {
        let cfg = parse(
            "[credential]\n\thelper = old\n\thelper =\n\thelper = cache\n\
             \thelper = store --file=/s/creds\n\thelper = store --file /t/creds\n\
             [credential \"https://git.corp.test/team\"]\n\thelper = /opt/h --flag\n\
             [credential \"https://other.test\"]\n\thelper = never\n\
             [credential]\n\thelper = vault\n\thelper = \"!f() { echo password=x; }; f\"\n",
        );
        let program = |p: &str, args: &[&str], label: &str| {
            Helper::Program(HelperCommand {
                program: p.into(),
                args: args.iter().map(|a| a.to_string()).collect(),
                label: label.into(),
            })
        };
        assert_eq!(
            helpers_for(&cfg, "https://git.corp.test/team/r.git"),
            [
                Helper::Cache,
                Helper::Store("/s/creds".into()),
                Helper::Store("/t/creds".into()),
                program("/opt/h", &["--flag", "get"], "/opt/h"),
                program("git-credential-vault", &["get"], "git-credential-vault"),
                program(
                    "sh",
                    &["-c", "f() { echo password=x; }; f get"],
                    "(a `!` shell command)"
                ),
            ]
        );
        assert_eq!(
            helpers_for(&cfg, "https://git.corp.test/else/r.git").len(),
            5
        );
        assert!(!use_http_path(&cfg));
        assert!(use_http_path(&parse(
            "[credential]\n\tuseHttpPath = true\n"
        )));
        let text = "https://a:x@other.test\nhttps://bot:p%40ss@git.corp.test/team\n\
                    https://gen:q@git.corp.test\n";
        let l = store_login(text, "https://git.corp.test/team/r.git").unwrap();
        assert_eq!((l.user.as_str(), l.password.as_str()), ("bot", "p@ss"));
        let l = store_login(text, "https://git.corp.test/else/r.git").unwrap();
        assert_eq!(l.user, "gen");
        assert!(store_login(text, "https://none.test/r").is_none());
    }
}
