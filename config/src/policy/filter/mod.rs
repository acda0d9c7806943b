//! Athens filter files: `+`/`-`/`D` rules by module path prefix, with version qualifiers. Pure.
//!
//! Athens's grammar, kept: one rule per line, `#` comments, a line holding only a sign sets the
//! default, rules form a tree by `/` elements and the deepest rule whose qualifiers cover the
//! version wins (a rule whose qualifiers do not cover it is passed over, so the next shallower
//! rule, or the default, decides). `list` and `@latest` have no version: `+` and `D` rules
//! apply whatever their qualifiers.
//!
//! Athens quirks fixed (files Athens accepts keep their meaning otherwise):
//! - tokens are split on runs of whitespace (Athens splits on single spaces, so two spaces made
//!   an empty path token that silently set the default rule);
//! - a full version qualifier `v0.4.1` no longer matches `v0.4.10`;
//! - `~v1.2.3` works like `~1.2.3` (Athens matched only the form without `v`);
//! - an empty qualifier (`v1,,v2`) is an error naming the line (Athens crashed);
//! - `D` rules without a global endpoint are refused when the file loads;
//! - for `list`/`@latest` a `-` rule with version qualifiers is passed over (Athens applied it to
//!   the whole module, answering its list 403); the versions it names are dropped from the list.

mod qualifier;

pub use qualifier::Qualifier;
use std::collections::HashMap;

/// What a rule says about a module path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    Include,
    Exclude,
    Direct,
}

impl Rule {
    /// The name used in logs and metrics.
    pub fn name(self) -> &'static str {
        match self {
            Self::Include => "include",
            Self::Exclude => "exclude",
            Self::Direct => "direct",
        }
    }
}

/// A filter file that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("filter file line {line}: {reason}")]
pub struct FilterError {
    pub line: usize,
    pub reason: String,
}

#[derive(Debug, Default, Clone)]
struct Node {
    rule: Option<(Rule, Vec<Qualifier>)>,
    next: HashMap<String, Node>,
}

/// A parsed filter file.
#[derive(Debug, Default, Clone)]
pub struct Filter {
    default: Option<Rule>,
    root: Node,
    /// Whether some rule is `D` (needs a global endpoint).
    has_direct: bool,
}

impl Filter {
    /// Parses a filter file's text.
    pub fn parse(text: &str) -> Result<Self, FilterError> {
        let mut f = Self::default();
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let err = |reason: &str| FilterError {
                line: i + 1,
                reason: format!("{reason}: {line:?}"),
            };
            let tokens: Vec<&str> = line.split_whitespace().collect();
            if tokens.len() > 3 {
                return Err(err("more than three tokens"));
            }
            let rule = match tokens[0] {
                "+" => Rule::Include,
                "-" => Rule::Exclude,
                "D" => Rule::Direct,
                _ => return Err(err("the first token must be +, - or D")),
            };
            f.has_direct |= rule == Rule::Direct;
            let Some(path) = tokens.get(1) else {
                f.default = Some(rule);
                continue;
            };
            let mut quals = Vec::new();
            if let Some(list) = tokens.get(2) {
                for item in list.split(',') {
                    quals.push(
                        Qualifier::parse(item).ok_or_else(|| err("empty version qualifier"))?,
                    );
                }
            }
            let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
            if segments.is_empty() {
                f.default = Some(rule);
                continue;
            }
            let mut node = &mut f.root;
            for s in segments {
                node = node.next.entry(s.to_string()).or_default();
            }
            node.rule = Some((rule, quals));
        }
        Ok(f)
    }

    /// Whether some rule needs the global endpoint.
    pub fn has_direct(&self) -> bool {
        self.has_direct
    }

    /// The rule for a module path and version (`None` for `list`/`@latest`).
    pub fn rule(&self, module: &str, version: Option<&str>) -> Rule {
        let mut found = None;
        let mut node = &self.root;
        for s in module.split('/').filter(|s| !s.is_empty()) {
            let Some(n) = node.next.get(s) else { break };
            node = n;
            if let Some((rule, quals)) = &n.rule {
                let covered = match version {
                    Some(v) => quals.is_empty() || quals.iter().any(|q| q.matches(v)),
                    // A version-qualified exclude blocks those versions (dropped from lists one
                    // by one), not the whole module's list.
                    None => quals.is_empty() || *rule != Rule::Exclude,
                };
                if covered {
                    found = Some(*rule);
                }
            }
        }
        found.or(self.default).unwrap_or(Rule::Include)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Athens's documentation example, verbatim.
    const ATHENS_DOC: &str = "-
# use internal github enterprise server directly
D enterprise.github.com/company
# external dependency approved list
+ github.com/gomods/athens v0.1,v0.2,v0.4.1
";

    #[test]
    fn athens_doc_example() {
        let f = Filter::parse(ATHENS_DOC).unwrap();
        assert!(f.has_direct());
        let cases = [
            ("github.com/gomods/athens", Some("v0.1.0"), Rule::Include),
            ("github.com/gomods/athens", Some("v0.2.5"), Rule::Include),
            ("github.com/gomods/athens", Some("v0.4.1"), Rule::Include),
            ("github.com/gomods/athens", Some("v0.3.0"), Rule::Exclude),
            ("github.com/gomods/athens", Some("v0.10.0"), Rule::Exclude),
            ("github.com/gomods/athens", Some("v0.4.10"), Rule::Exclude),
            ("github.com/gomods/athens", None, Rule::Include),
            (
                "github.com/gomods/athens/sub",
                Some("v0.1.0"),
                Rule::Include,
            ),
            ("github.com/gomods/athensx", Some("v0.1.0"), Rule::Exclude),
            ("github.com/other/x", Some("v1.0.0"), Rule::Exclude),
            (
                "enterprise.github.com/company/repo",
                Some("v1.0.0"),
                Rule::Direct,
            ),
            ("enterprise.github.com/company", None, Rule::Direct),
            ("enterprise.github.com/other", None, Rule::Exclude),
        ];
        for (m, v, want) in cases {
            assert_eq!(f.rule(m, v), want, "{m} {v:?}");
        }
    }

    #[test]
    fn deepest_rule_wins_and_default_is_include() {
        let f = Filter::parse("- github.com/a\n+ github.com/a/b\n\n  # comment\n").unwrap();
        assert_eq!(f.rule("github.com/a/c", None), Rule::Exclude);
        assert_eq!(f.rule("github.com/a/b/c", None), Rule::Include);
        assert_eq!(f.rule("github.com/x", None), Rule::Include);
        assert_eq!(
            Filter::parse("").unwrap().rule("a.b/c", Some("v1.0.0")),
            Rule::Include
        );
    }

    #[test]
    fn uncovered_version_falls_to_the_shallower_rule() {
        // An exclude rule with qualifiers blocks just those versions.
        let f = Filter::parse("- example.com/m v1.2.3,<v1.0.0\n").unwrap();
        assert_eq!(f.rule("example.com/m", Some("v1.2.3")), Rule::Exclude);
        assert_eq!(f.rule("example.com/m", Some("v0.9.0")), Rule::Exclude);
        assert_eq!(f.rule("example.com/m", Some("v1.2.4")), Rule::Include);
        // Athens answered the whole list 403 here; we list the other versions.
        assert_eq!(f.rule("example.com/m", None), Rule::Include);
    }

    #[test]
    fn errors_name_the_line() {
        let cases = [
            ("+ a b c d", 1),
            ("\n\nx github.com/a", 3),
            ("# c\n+ a v1,,v2", 2),
        ];
        for (text, line) in cases {
            let e = Filter::parse(text).unwrap_err();
            assert_eq!(e.line, line, "{text:?}: {e}");
        }
        // Runs of whitespace separate tokens (Athens split on single spaces).
        let f = Filter::parse("-\n+\tgithub.com/a   v1\n").unwrap();
        assert_eq!(f.rule("github.com/a", Some("v1.0.0")), Rule::Include);
        assert_eq!(f.rule("github.com/b", Some("v1.0.0")), Rule::Exclude);
    }
}
