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
    merge_sorted(&parse_list(upstream), &tagged_sorted(stored))
        .into_iter()
        .cloned()
        .collect()
}

/// Storage's versions as `list` counts them: tagged only, sorted, each once.
pub fn tagged_sorted(stored: &[Version]) -> Vec<Version> {
    let mut out: Vec<Version> = stored.iter().filter(|v| is_tagged(v)).cloned().collect();
    sort_versions(&mut out);
    out
}

/// An upstream `list` body's tagged versions, sorted and deduplicated (see [`merge_list`]).
/// Parsed once per upstream answer: parsing and sorting on every request was most of a
/// warm strict `list`.
pub fn parse_list(upstream: &str) -> Vec<Version> {
    let mut out: Vec<Version> = upstream
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .filter_map(|field| Version::parse(field).ok())
        .filter(is_tagged)
        .collect();
    sort_versions(&mut out);
    out
}

/// Two sorted, deduplicated lists as one, in order, each version once.
pub fn merge_sorted<'a>(a: &'a [Version], b: &'a [Version]) -> Vec<&'a Version> {
    let (mut i, mut j) = (0, 0);
    let mut out = Vec::with_capacity(a.len() + b.len());
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => {
                out.push(&a[i]);
                i += 1;
            }
            std::cmp::Ordering::Greater => {
                out.push(&b[j]);
                j += 1;
            }
            std::cmp::Ordering::Equal => {
                out.push(&a[i]);
                // Equal precedence is not always the same version (build metadata).
                if a[i] != b[j] {
                    out.push(&b[j]);
                }
                i += 1;
                j += 1;
            }
        }
    }
    out.extend(&a[i..]);
    out.extend(&b[j..]);
    out
}

/// The `list` body for these versions: one per line, each line ending in a newline.
pub fn list_text<'a>(versions: impl IntoIterator<Item = &'a Version>) -> String {
    let mut text = String::new();
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
    fn merging_sorted_lists_keeps_order_and_each_version_once() {
        let (a, b) = (
            vs(&["v0.1.0", "v1.0.0", "v1.2.0"]),
            vs(&["v1.0.0", "v1.1.0", "v2.0.0"]),
        );
        let got: Vec<&str> = merge_sorted(&a, &b).iter().map(|v| v.as_str()).collect();
        assert_eq!(got, ["v0.1.0", "v1.0.0", "v1.1.0", "v1.2.0", "v2.0.0"]);
        assert!(merge_sorted(&[], &[]).is_empty());
        assert_eq!(merge_sorted(&a, &[]).len(), 3);
        assert_eq!(
            parse_list("v1.1.0\nv1.0.0 2019-01-01T00:00:00Z\nv1.1.0\njunk\n"),
            vs(&["v1.0.0", "v1.1.0"])
        );
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
        assert_eq!(list_text(&[] as &[Version]), "");
    }
}
