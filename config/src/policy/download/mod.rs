//! Athens download modes: what a storage miss of `.info`, `.mod` or `.zip` does. Pure.
//!
//! `DownloadMode` is a keyword, `file:<path>` to an HCL file, or `custom:<base64 of the HCL>`.
//! The HCL has top-level `mode` and `downloadURL` and `download "<pattern>" { mode, downloadURL }`
//! blocks; the first block (in file order) whose GOPRIVATE-style pattern matches the module
//! decides. Unlike Athens, `downloadURL` may be left out when no mode redirects.

mod hcl_file;

use super::PrefixPatterns;
use base64::Engine;

/// What to do on a miss.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Fetch now; answer when stored.
    Sync,
    /// 404 now; fetch and store in the background.
    Async,
    /// 301 to the download URL plus the request path.
    Redirect,
    /// Redirect now and fetch in the background.
    AsyncRedirect,
    /// 404.
    None,
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Self::Sync => "sync",
            Self::Async => "async",
            Self::Redirect => "redirect",
            Self::AsyncRedirect => "async_redirect",
            Self::None => "none",
        }
    }

    fn redirects(self) -> bool {
        matches!(self, Self::Redirect | Self::AsyncRedirect)
    }
}

impl std::str::FromStr for Mode {
    type Err = DownloadError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "sync" => Self::Sync,
            "async" => Self::Async,
            "redirect" => Self::Redirect,
            "async_redirect" => Self::AsyncRedirect,
            "none" => Self::None,
            other => {
                return Err(DownloadError::Invalid(format!(
                    "unknown download mode {other:?} (want sync, async, redirect, async_redirect or none)"
                )));
            }
        })
    }
}

/// A download-mode setting that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DownloadError {
    #[error("download mode: {0}")]
    Invalid(String),
    #[error("download mode file: {0}")]
    Hcl(String),
}

/// Where the setting's text comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A keyword or `custom:` value: fixed for the process's life.
    Inline(String),
    /// `file:<path>`: read (and re-read when it changes) from disk.
    File(String),
}

impl Source {
    /// Splits a `DownloadMode` value; `custom:` is decoded here.
    pub fn parse(setting: &str) -> Result<Self, DownloadError> {
        let s = setting.trim();
        if let Some(path) = s.strip_prefix("file:") {
            return Ok(Self::File(path.to_string()));
        }
        if let Some(b64) = s.strip_prefix("custom:") {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(b64.trim())
                .map_err(|e| DownloadError::Invalid(format!("custom: is not base64: {e}")))?;
            let text = String::from_utf8(bytes)
                .map_err(|_| DownloadError::Invalid("custom: is not UTF-8 text".into()))?;
            return Ok(Self::Inline(text));
        }
        Ok(Self::Inline(s.to_string()))
    }
}

/// One `download` block.
#[derive(Debug, Clone)]
struct Block {
    pattern: PrefixPatterns,
    mode: Mode,
    url: Option<String>,
}

/// The parsed setting.
#[derive(Debug, Clone)]
pub struct DownloadModes {
    mode: Mode,
    url: String,
    blocks: Vec<Block>,
}

/// The decision for one module.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub mode: Mode,
    /// The redirect base for `redirect`/`async_redirect`.
    pub url: String,
}

impl Default for DownloadModes {
    fn default() -> Self {
        Self::keyword(Mode::Sync, "")
    }
}

impl DownloadModes {
    fn keyword(mode: Mode, url: &str) -> Self {
        Self {
            mode,
            url: url.to_string(),
            blocks: Vec::new(),
        }
    }

    /// Parses a keyword or HCL text (`download_url` is `DownloadURL`, the top-level default).
    pub fn parse(text: &str, download_url: &str) -> Result<Self, DownloadError> {
        let t = text.trim();
        let parsed = if t.is_empty() {
            Self::keyword(Mode::Sync, download_url)
        } else if let Ok(mode) = t.parse::<Mode>() {
            Self::keyword(mode, download_url)
        } else {
            hcl_file::parse(t, download_url)?
        };
        parsed.check()?;
        Ok(parsed)
    }

    fn check(&self) -> Result<(), DownloadError> {
        let top = self.mode.redirects() && self.url.is_empty();
        let block = self
            .blocks
            .iter()
            .any(|b| b.mode.redirects() && b.url.is_none() && self.url.is_empty());
        if top || block {
            return Err(DownloadError::Invalid(
                "a redirect mode needs a download URL (downloadURL / --download-url)".into(),
            ));
        }
        Ok(())
    }

    /// The decision for a module path.
    pub fn decide(&self, module: &str) -> Decision {
        match self.blocks.iter().find(|b| b.pattern.matches(module)) {
            Some(b) => Decision {
                mode: b.mode,
                url: b.url.clone().unwrap_or_else(|| self.url.clone()),
            },
            None => Decision {
                mode: self.mode,
                url: self.url.clone(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Athens's `download.example.hcl`, verbatim.
    const ATHENS_EXAMPLE: &str = r#"downloadURL = "https://proxy.golang.org"

mode = "async_redirect"

download "github.com/gomods/*" {
    mode = "sync"
}

download "golang.org/x/*" {
    mode = "none"
}

download "github.com/pkg/*" {
    mode = "redirect"
    downloadURL = "https://gocenter.io"
}
"#;

    #[test]
    fn athens_example() {
        let d = DownloadModes::parse(ATHENS_EXAMPLE, "").unwrap();
        let cases = [
            (
                "github.com/gomods/athens",
                Mode::Sync,
                "https://proxy.golang.org",
            ),
            ("golang.org/x/tools", Mode::None, "https://proxy.golang.org"),
            (
                "github.com/pkg/errors",
                Mode::Redirect,
                "https://gocenter.io",
            ),
            (
                "github.com/other/x",
                Mode::AsyncRedirect,
                "https://proxy.golang.org",
            ),
            (
                "github.com/gomods",
                Mode::AsyncRedirect,
                "https://proxy.golang.org",
            ),
        ];
        for (m, mode, url) in cases {
            assert_eq!(
                d.decide(m),
                Decision {
                    mode,
                    url: url.into()
                },
                "{m}"
            );
        }
        // The same text as custom:BASE64.
        let b64 = base64::engine::general_purpose::STANDARD.encode(ATHENS_EXAMPLE);
        let Source::Inline(text) = Source::parse(&format!("custom:{b64}")).unwrap() else {
            panic!("custom: is inline");
        };
        assert_eq!(text, ATHENS_EXAMPLE);
    }

    #[test]
    fn first_matching_block_wins() {
        let text = "mode = \"sync\"\ndownloadURL = \"\"\n\
                    download \"example.com/*\" { mode = \"none\" }\n\
                    download \"example.com/a\" { mode = \"async\" }\n";
        let d = DownloadModes::parse(text, "").unwrap();
        assert_eq!(d.decide("example.com/a").mode, Mode::None);
        assert_eq!(d.decide("other.com/a").mode, Mode::Sync);
    }

    #[test]
    fn keywords_and_sources() {
        assert_eq!(
            DownloadModes::parse("async", "")
                .unwrap()
                .decide("a.b/c")
                .mode,
            Mode::Async
        );
        assert_eq!(
            DownloadModes::parse("", "").unwrap().decide("a.b/c").mode,
            Mode::Sync
        );
        let r = DownloadModes::parse("redirect", "http://x")
            .unwrap()
            .decide("a.b/c");
        assert_eq!((r.mode, r.url.as_str()), (Mode::Redirect, "http://x"));
        assert!(DownloadModes::parse("redirect", "").is_err());
        assert_eq!(
            Source::parse("file:/x/y.hcl").unwrap(),
            Source::File("/x/y.hcl".into())
        );
        assert_eq!(
            Source::parse("sync").unwrap(),
            Source::Inline("sync".into())
        );
        assert!(Source::parse("custom:!!").is_err());
    }

    #[test]
    fn bad_files_are_refused() {
        let cases = [
            // Athens's docs write `url =`; its own decoder refuses it, and so do we.
            "mode = \"sync\"\ndownload \"a/*\" { mode = \"sync\"\n url = \"http://x\" }\n",
            "mode = \"sometimes\"\n",
            "downloadURL = \"http://x\"\n",
            "mode = \"sync\"\nupload \"a\" { mode = \"sync\" }\n",
            "mode = \"sync\"\ndownload \"a\" { }\n",
            "mode = \"sync\"\ndownload { mode = \"sync\" }\n",
            "mode = \"sync\"\ndownload \"a/*\" { mode = \"redirect\" }\n",
            "mode = ",
        ];
        for text in cases {
            assert!(DownloadModes::parse(text, "").is_err(), "{text}");
        }
    }
}
