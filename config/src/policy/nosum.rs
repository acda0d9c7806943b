//! `GOPRIVATE`/`GONOSUMDB`-style prefix patterns. Pure.

use super::glob::path_match;

/// A list of glob patterns; a module matches when some leading run of its path elements
/// matches a pattern with the same number of elements (as the go command's
/// `module.MatchPrefixPatterns`): `*.corp.example` covers `git.corp.example/team/repo`.
#[derive(Debug, Clone, Default)]
pub struct PrefixPatterns {
    patterns: Vec<String>,
}

impl PrefixPatterns {
    pub fn new<I: IntoIterator<Item = S>, S: AsRef<str>>(patterns: I) -> Self {
        Self {
            patterns: patterns
                .into_iter()
                .map(|p| p.as_ref().trim().trim_end_matches('/').to_string())
                .filter(|p| !p.is_empty())
                .collect(),
        }
    }

    pub fn matches(&self, module: &str) -> bool {
        self.patterns.iter().any(|pattern| {
            let n = pattern.split('/').count();
            let prefix = match module.match_indices('/').nth(n - 1) {
                Some((i, _)) => &module[..i],
                None => module,
            };
            prefix.split('/').count() == n && path_match(pattern, prefix)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table() {
        let p = PrefixPatterns::new(["*.corp.example", "github.com/acme", "  ", "rsc.io/private/"]);
        let cases = [
            ("git.corp.example", true),
            ("git.corp.example/team/repo", true),
            ("corp.example/x", false),
            ("github.com/acme", true),
            ("github.com/acme/tool/v2", true),
            ("github.com/acmex/tool", false),
            ("github.com", false),
            ("rsc.io/private/x", true),
            ("rsc.io/quote", false),
        ];
        for (m, want) in cases {
            assert_eq!(p.matches(m), want, "{m}");
        }
        assert!(!PrefixPatterns::default().matches("a.b/c"));
    }
}
