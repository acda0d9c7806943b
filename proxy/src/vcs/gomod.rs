//! The two things read from a go.mod before a module zip exists: its module path
//! (golang.org/x/mod/modfile.ModulePath) and its `go` version (for the zip's vendor rule). Pure.

/// The module path a go.mod declares, or "" (as modfile.ModulePath: line scan, `//` comments
/// dropped, a quoted path unquoted).
pub fn module_path(gomod: &[u8]) -> String {
    let text = String::from_utf8_lossy(gomod);
    for line in text.split('\n') {
        let line = line.split("//").next().unwrap_or("").trim();
        let Some(rest) = line.strip_prefix("module") else {
            continue;
        };
        let trimmed = rest.trim();
        if trimmed.len() == rest.len() || trimmed.is_empty() {
            continue;
        }
        if let Some(q) = trimmed.strip_prefix('`') {
            return q.strip_suffix('`').map(String::from).unwrap_or_default();
        }
        if let Some(q) = trimmed.strip_prefix('"') {
            // Module paths hold no escapes worth honouring; a backslash makes it malformed for us.
            return q
                .strip_suffix('"')
                .filter(|p| !p.contains(['\\', '"']))
                .map(String::from)
                .unwrap_or_default();
        }
        return trimmed.to_string();
    }
    String::new()
}

/// The minor version of Go 1 the `go` directive names (`go 1.24.1` is 24), if any.
pub fn go_minor(gomod: &[u8]) -> Option<u32> {
    let text = String::from_utf8_lossy(gomod);
    for line in text.split('\n') {
        let line = line.split("//").next().unwrap_or("").trim();
        let mut f = line.split_whitespace();
        if f.next() != Some("go") {
            continue;
        }
        let v = f.next()?;
        let rest = v.strip_prefix("1.")?;
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        return digits.parse().ok();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn module_paths() {
        assert_eq!(
            module_path(b"// c\nmodule corp.test/m // x\n\ngo 1.22\n"),
            "corp.test/m"
        );
        assert_eq!(module_path(b"module \"corp.test/q\"\n"), "corp.test/q");
        assert_eq!(module_path(b"modules x\nmodule\n"), "");
        assert_eq!(module_path(b"go 1.21\n"), "");
    }

    #[test]
    fn go_versions() {
        assert_eq!(go_minor(b"module m\n\ngo 1.24.1\n"), Some(24));
        assert_eq!(go_minor(b"module m\ngo 1.21rc1\n"), Some(21));
        assert_eq!(go_minor(b"module m\n"), None);
    }
}
