//! Object keys. Pure: the one place that knows the bucket's layout.

/// Keys of one module version. Module and version are the case-escaped forms.
#[derive(Debug, Clone, Copy)]
pub struct Layout<'a> {
    pub module: &'a str,
    pub version: &'a str,
}

impl Layout<'_> {
    pub fn info(&self) -> String {
        format!("{}/@v/{}.info", self.module, self.version)
    }
    pub fn go_mod(&self) -> String {
        format!("{}/@v/{}.mod", self.module, self.version)
    }
    pub fn zip(&self) -> String {
        format!("{}/@v/{}.zip", self.module, self.version)
    }
    /// The zip's `h1:` hash, as the go command keeps it in its module cache: a lost zip is
    /// only ever restored with bytes of this same hash.
    pub fn ziphash(&self) -> String {
        format!("{}/@v/{}.ziphash", self.module, self.version)
    }
    /// Our own object: the version's `.info` bytes, written once its `.info` and `.mod` were
    /// verified against the checksum database's `go.mod` hash, before its zip is in the bucket.
    /// `.info` and `.mod` may be served from it; the version itself exists only once `.info`
    /// (the commit marker) does, and that `.info` has these same bytes.
    pub fn mod_marker(&self) -> String {
        format!("{}/@v/{}.modinfo", self.module, self.version)
    }
    /// Our own object: who is filling this version right now (see `fetch::lease`).
    pub fn lease(&self) -> String {
        format!("{}/@v/{}.lease", self.module, self.version)
    }
}

/// The folder holding a module's versions.
pub fn versions_dir(module: &str) -> String {
    format!("{module}/@v")
}

/// The derived `list` file a `file://` GOPROXY reads.
pub fn list_file(module: &str) -> String {
    format!("{module}/@v/list")
}

/// A cached checksum-database tile.
pub fn sumdb_tile(name: &str, tile_path: &str) -> String {
    format!("sumdb/{name}/{tile_path}")
}

/// The version of a `<version>.info` object name in a versions folder, if it is one.
pub fn version_of_info(file_name: &str) -> Option<&str> {
    file_name.strip_suffix(".info").filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_protocol_layout() {
        let l = Layout {
            module: "github.com/!burnt!sushi/toml",
            version: "v1.4.0",
        };
        assert_eq!(l.info(), "github.com/!burnt!sushi/toml/@v/v1.4.0.info");
        assert_eq!(l.go_mod(), "github.com/!burnt!sushi/toml/@v/v1.4.0.mod");
        assert_eq!(l.zip(), "github.com/!burnt!sushi/toml/@v/v1.4.0.zip");
        assert_eq!(
            l.mod_marker(),
            "github.com/!burnt!sushi/toml/@v/v1.4.0.modinfo"
        );
        assert_eq!(version_of_info("v1.4.0.modinfo"), None);
        assert_eq!(list_file("a.b/c"), "a.b/c/@v/list");
        assert_eq!(version_of_info("v1.0.0.info"), Some("v1.0.0"));
        assert_eq!(version_of_info("v1.0.0.mod"), None);
        assert_eq!(version_of_info(".info"), None);
    }
}
