//! Parsing a `GOPROXY` value. Pure.
//!
//! `a,b|c`: after `a` comes `,`, so `b` is tried only when `a` says 404/410; after `b` comes `|`,
//! so `c` is tried after any error from `b`. `direct` and `off` are keywords.

/// Where one list entry sends requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A proxy base URL without trailing slash.
    Url(String),
    /// Fetch from version control (not yet supported: answers "not found").
    Direct,
    /// Refuse to fetch anything.
    Off,
}

/// When to go on to the next entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FallThrough {
    /// Only when this entry answered 404 or 410 (`,`).
    OnNotFound,
    /// After any error (`|`).
    OnAnyError,
}

/// One entry of the list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub source: Source,
    pub fall_through: FallThrough,
}

/// Parses a `GOPROXY` list. Empty elements are skipped, as the go command does.
pub fn parse_goproxy(list: &str) -> Result<Vec<Entry>, String> {
    let mut entries = Vec::new();
    let mut rest = list.trim();
    while !rest.is_empty() {
        let (item, sep, tail) = match rest.find([',', '|']) {
            Some(i) => (&rest[..i], Some(rest.as_bytes()[i]), &rest[i + 1..]),
            None => (rest, None, ""),
        };
        rest = tail;
        let item = item.trim();
        if item.is_empty() {
            continue;
        }
        let source = match item {
            "direct" => Source::Direct,
            "off" => Source::Off,
            url => Source::Url(normalize_url(url)?),
        };
        let fall_through = if sep == Some(b'|') {
            FallThrough::OnAnyError
        } else {
            FallThrough::OnNotFound
        };
        entries.push(Entry {
            source,
            fall_through,
        });
    }
    if entries.is_empty() {
        return Err(format!("GOPROXY list {list:?} has no entries"));
    }
    Ok(entries)
}

/// Adds `https://` when there is no scheme (as the go command does) and drops trailing slashes.
fn normalize_url(url: &str) -> Result<String, String> {
    let full = if url.contains("://") {
        url.to_string()
    } else {
        format!("https://{url}")
    };
    let (scheme, rest) = full.split_once("://").unwrap_or(("", ""));
    if !matches!(scheme, "http" | "https" | "file") || rest.is_empty() {
        return Err(format!(
            "GOPROXY entry {url:?} is not an http(s) URL, direct or off"
        ));
    }
    Ok(full.trim_end_matches('/').to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use FallThrough::*;

    fn url(u: &str, f: FallThrough) -> Entry {
        Entry {
            source: Source::Url(u.into()),
            fall_through: f,
        }
    }

    #[test]
    fn table() {
        let cases: Vec<(&str, Vec<Entry>)> = vec![
            ("http://a", vec![url("http://a", OnNotFound)]),
            ("http://a/", vec![url("http://a", OnNotFound)]),
            (
                "http://a,http://b|direct",
                vec![
                    url("http://a", OnNotFound),
                    url("http://b", OnAnyError),
                    Entry {
                        source: Source::Direct,
                        fall_through: OnNotFound,
                    },
                ],
            ),
            (
                "a.example|off",
                vec![
                    url("https://a.example", OnAnyError),
                    Entry {
                        source: Source::Off,
                        fall_through: OnNotFound,
                    },
                ],
            ),
            (
                " http://a ,, http://b ",
                vec![url("http://a", OnNotFound), url("http://b", OnNotFound)],
            ),
        ];
        for (input, want) in cases {
            assert_eq!(parse_goproxy(input).unwrap(), want, "{input}");
        }
    }

    #[test]
    fn errors() {
        for bad in ["", " , ", "ftp://x", "http://"] {
            assert!(parse_goproxy(bad).is_err(), "{bad:?}");
        }
    }
}
