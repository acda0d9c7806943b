//! The `@v/list` answer: tagged versions, merged, deduplicated, in semver order.

use super::version::Version;

/// A tagged version, i.e. not a pseudo-version (the only kind `list` reports).
pub fn is_tagged(v: &Version) -> bool {
    !v.is_pseudo()
}

/// Sorts ascending by semantic-version precedence and removes duplicates.
pub fn sort_versions(versions: &mut Vec<Version>) {
    versions.sort_unstable();
    versions.dedup();
}

/// Merges an upstream `list` body with the versions storage has. Like the `go` command, only
/// the first whitespace-separated field of each line counts (some proxies append a time);
/// lines that are empty, not canonical versions, or pseudo-versions are dropped (upstream lists
/// are not trusted to be clean). The result is deduplicated and sorted ascending. Retracted
/// versions stay: the client applies retractions itself.
pub fn merge_list(upstream: &str, stored: &[Version]) -> Vec<Version> {
    let mut out: Vec<Version> = upstream
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .filter_map(|field| Version::parse(field).ok())
        .chain(stored.iter().cloned())
        .filter(is_tagged)
        .collect();
    sort_versions(&mut out);
    out
}

/// The `list` body for these versions: one per line, each line ending in a newline.
pub fn list_text(versions: &[Version]) -> String {
    let mut text = String::with_capacity(versions.len() * 16);
    for v in versions {
        text.push_str(v.as_str());
        text.push('\n');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vs(list: &[&str]) -> Vec<Version> {
        list.iter().map(|s| Version::parse(s).unwrap()).collect()
    }

    #[test]
    fn merges_sorts_dedups_and_drops_pseudo_versions() {
        let upstream = "v1.10.0\nv1.2.0\r\n  v1.0.0-rc.1  \n\nv1.2\njunk\nv0.0.0-20190620200207-3b0461eec859\nv1.2.0\n-v9.0.0\nv2.0.0+incompatible\nv1.3.0+meta\nv1.4.0 2019-01-01T00:00:00Z\n\tv1.4.1\tx\n";
        let stored = vs(&[
            "v1.2.0",
            "v1.5.0",
            "v1.5.1-0.20191109021931-daa7c04131f5",
            "v1.0.0",
        ]);
        let got = merge_list(upstream, &stored);
        assert_eq!(
            got,
            vs(&[
                "v1.0.0-rc.1",
                "v1.0.0",
                "v1.2.0",
                "v1.4.0",
                "v1.4.1",
                "v1.5.0",
                "v1.10.0",
                "v2.0.0+incompatible"
            ])
        );
    }

    #[test]
    fn empty_inputs() {
        assert!(merge_list("", &[]).is_empty());
        assert_eq!(merge_list("", &vs(&["v0.1.0"])), vs(&["v0.1.0"]));
        assert_eq!(merge_list("v0.1.0", &[]), vs(&["v0.1.0"]));
    }

    #[test]
    fn tagged() {
        assert!(is_tagged(&Version::parse("v1.0.0-rc.1").unwrap()));
        assert!(!is_tagged(
            &Version::parse("v0.0.0-20190620200207-3b0461eec859").unwrap()
        ));
    }

    #[test]
    fn sort() {
        let mut v = vs(&["v1.0.0", "v1.0.0-beta", "v0.9.0", "v1.0.0"]);
        sort_versions(&mut v);
        assert_eq!(v, vs(&["v0.9.0", "v1.0.0-beta", "v1.0.0"]));
    }

    #[test]
    fn list_text_is_one_version_per_line() {
        let vs: Vec<Version> = ["v1.0.0", "v1.1.0"]
            .iter()
            .map(|v| Version::parse(v).unwrap())
            .collect();
        assert_eq!(list_text(&vs), "v1.0.0\nv1.1.0\n");
        assert_eq!(list_text(&[]), "");
    }
}
