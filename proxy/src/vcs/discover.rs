//! Where a module's repository lives, decided the way the go command decides it
//! (cmd/go/internal/vcs/vcs.go): known hosts, a `.git` path qualifier, else the `go-import`
//! `<meta>` tag served at `https://<module path>?go-get=1`. The parsing here is pure.

/// A repository root: the import-path prefix it serves, its VCS and its clone URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoRoot {
    /// The import path prefix the repository's root directory corresponds to.
    pub root: String,
    /// `git`, `hg`, `svn`, `bzr`, `fossil` or `mod`.
    pub vcs: String,
    /// Where to clone from.
    pub url: String,
    /// A subdirectory of the repository the prefix maps to (Go 1.25 four-field meta tags).
    pub subdir: String,
}

/// A path the go command resolves without asking the host: `github.com/o/r` and paths with a
/// `.git`-style qualifier (`host/path/repo.git/sub`). `None`: ask the host for a meta tag.
pub fn static_root(path: &str) -> Option<RepoRoot> {
    let elems: Vec<&str> = path.split('/').collect();
    if elems[0] == "github.com" && elems.len() >= 3 {
        let root = elems[..3].join("/");
        return Some(RepoRoot {
            url: format!("https://{root}"),
            root,
            vcs: "git".into(),
            subdir: String::new(),
        });
    }
    // The go command's general pattern: the first element after the host ending in `.<vcs>`
    // (the shortest root), with the URL being the path without that suffix.
    for (i, e) in elems.iter().enumerate().skip(1) {
        for vcs in ["bzr", "fossil", "git", "hg", "svn"] {
            let Some(stem) = e.strip_suffix(vcs).and_then(|s| s.strip_suffix('.')) else {
                continue;
            };
            if stem.is_empty() || !host_ok(elems[0]) {
                continue;
            }
            let repo = [&elems[..i], &[stem]].concat().join("/");
            return Some(RepoRoot {
                root: elems[..=i].join("/"),
                vcs: vcs.into(),
                url: format!("https://{repo}"),
                subdir: String::new(),
            });
        }
    }
    None
}

/// `([a-z0-9.\-]+\.)+[a-z0-9.\-]+`: the host part of the general pattern.
fn host_ok(h: &str) -> bool {
    h.contains('.')
        && !h.starts_with('.')
        && h.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-')
}

/// The repository URL of a `go-import` tag, checked as the go command checks it: HTTPS or
/// SSH only (`git+ssh://` is taken as `ssh://`). Plain `http://` and `git://` (which the go
/// command allows only under GOINSECURE) and local schemes such as `file://` (which would let
/// a page read the proxy's own disk) are refused.
pub fn check_repo_url(url: &str) -> Result<String, String> {
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| format!("repository URL {url:?} has no scheme"))?;
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = host.rsplit('@').next().unwrap_or("");
    if host.is_empty() || host.starts_with('-') {
        return Err(format!("repository URL {url:?} has no host"));
    }
    match scheme.to_ascii_lowercase().as_str() {
        "https" | "ssh" => Ok(url.to_string()),
        "git+ssh" => Ok(format!("ssh://{rest}")),
        other => Err(format!(
            "repository URL scheme {other}:// is not allowed (https and ssh are)"
        )),
    }
}

/// One `<meta name="go-import" content="prefix vcs url [subdir]">`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetaImport {
    pub prefix: String,
    pub vcs: String,
    pub url: String,
    pub subdir: String,
}

/// The `go-import` tags of an HTML page, read up to `<body>` or `</head>` as the go command does.
pub fn parse_meta_imports(html: &str) -> Vec<MetaImport> {
    let lower = html.to_ascii_lowercase();
    let end = [lower.find("<body"), lower.find("</head")]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(lower.len());
    let mut out = Vec::new();
    let mut at = 0;
    while let Some(i) = lower[at..end].find("<meta") {
        let start = at + i + 5;
        let Some(close) = lower[start..].find('>') else {
            break;
        };
        let tag = &html[start..start + close];
        at = start + close;
        if attr(tag, "name").as_deref() != Some("go-import") {
            continue;
        }
        let Some(content) = attr(tag, "content") else {
            continue;
        };
        let f: Vec<&str> = content.split_whitespace().collect();
        if f.len() == 3 || f.len() == 4 {
            out.push(MetaImport {
                prefix: f[0].into(),
                vcs: f[1].into(),
                url: f[2].into(),
                subdir: f.get(3).map(|s| s.to_string()).unwrap_or_default(),
            });
        }
    }
    out
}

/// The value of attribute `name` in the inside of a tag (quoted with `"` or `'`, or bare).
fn attr(tag: &str, name: &str) -> Option<String> {
    let lower = tag.to_ascii_lowercase();
    let mut from = 0;
    while let Some(i) = lower[from..].find(name) {
        let i = from + i;
        from = i + name.len();
        let before_ok = i == 0 || lower.as_bytes()[i - 1].is_ascii_whitespace();
        let rest = lower[from..].trim_start();
        if !before_ok || !rest.starts_with('=') {
            continue;
        }
        let vstart = tag.len() - rest.len() + 1;
        let v = tag[vstart..].trim_start();
        let value = match v.chars().next() {
            Some(q @ ('"' | '\'')) => v[1..].split(q).next().unwrap_or(""),
            _ => v
                .split(|c: char| c.is_whitespace() || c == '/')
                .next()
                .unwrap_or(""),
        };
        return Some(value.replace("&amp;", "&"));
    }
    None
}

/// The tag for `path`, as cmd/go's matchGoImport picks it: the one whose prefix is a path prefix
/// of `path`; `mod` entries precede the others and win; two other matches are an error.
pub fn match_go_import(imports: &[MetaImport], path: &str) -> Result<MetaImport, String> {
    let mut found: Option<&MetaImport> = None;
    for im in imports {
        let is_prefix = path == im.prefix
            || (path.starts_with(&im.prefix)
                && path.as_bytes().get(im.prefix.len()) == Some(&b'/'));
        if !is_prefix {
            continue;
        }
        if let Some(f) = found {
            if f.vcs == "mod" && im.vcs != "mod" {
                break;
            }
            return Err(format!("multiple meta tags match import path {path:?}"));
        }
        found = Some(im);
    }
    found
        .cloned()
        .ok_or_else(|| format!("no go-import meta tag for {path:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repo_urls_https_and_ssh_only() {
        let ok = |u: &str| check_repo_url(u).unwrap();
        assert_eq!(ok("https://h.test/r.git"), "https://h.test/r.git");
        assert_eq!(
            ok("ssh://git@h.test:2222/r.git"),
            "ssh://git@h.test:2222/r.git"
        );
        assert_eq!(ok("git+ssh://git@h.test/r"), "ssh://git@h.test/r");
        for bad in [
            "file:///etc/repo",
            "http://h.test/r",
            "git://h.test/r",
            "ext::sh -c x",
            "ssh://-oProxyCommand=x/r",
            "https:///r",
        ] {
            assert!(check_repo_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn static_roots() {
        let r = static_root("github.com/o/r/sub/v2").unwrap();
        assert_eq!(
            (r.root.as_str(), r.url.as_str()),
            ("github.com/o/r", "https://github.com/o/r")
        );
        let r = static_root("git.corp.test/team/repo.git/sub").unwrap();
        assert_eq!(r.root, "git.corp.test/team/repo.git");
        assert_eq!(r.url, "https://git.corp.test/team/repo");
        assert_eq!(r.vcs, "git");
        assert_eq!(static_root("hg.corp.test/x.hg").unwrap().vcs, "hg");
        assert!(static_root("corp.test/team/repo").is_none());
        assert!(static_root("corp.test/.git").is_none());
    }

    #[test]
    fn meta_tags() {
        let html = r#"<!DOCTYPE html><html><head>
            <meta name="go-source" content="a b c d">
            <META NAME='go-import' CONTENT='corp.test/m git https://corp.test/git/m.git'>
            <meta content="corp.test/n git https://corp.test/n sub/dir" name="go-import"/>
            </head><body><meta name="go-import" content="corp.test/late git https://x"></body>"#;
        let got = parse_meta_imports(html);
        assert_eq!(got.len(), 2, "{got:?}");
        assert_eq!(got[0].url, "https://corp.test/git/m.git");
        assert_eq!(got[1].subdir, "sub/dir");
        assert_eq!(
            match_go_import(&got, "corp.test/m/v2").unwrap().prefix,
            "corp.test/m"
        );
        assert!(match_go_import(&got, "corp.test/mm").is_err());
        let two = [got[0].clone(), got[0].clone()];
        assert!(match_go_import(&two, "corp.test/m").is_err());
    }
}
