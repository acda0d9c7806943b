//! The HCL form of a download-mode setting.

use super::{Block, DownloadError, DownloadModes, Mode};
use crate::policy::PrefixPatterns;
use hcl::{Body, Expression, Structure};

pub(super) fn parse(text: &str, download_url: &str) -> Result<DownloadModes, DownloadError> {
    let body: Body = hcl::parse(text).map_err(|e| DownloadError::Hcl(e.to_string()))?;
    let mut mode = None;
    let mut url = None;
    let mut blocks = Vec::new();
    for s in body.into_inner() {
        match s {
            Structure::Attribute(a) => match a.key.as_str() {
                "mode" => mode = Some(string(&a.key, &a.expr)?.parse()?),
                "downloadURL" => url = Some(string(&a.key, &a.expr)?),
                other => return Err(unknown(other)),
            },
            Structure::Block(b) => {
                if b.identifier.as_str() != "download" {
                    return Err(unknown(b.identifier.as_str()));
                }
                let [label] = b.labels.as_slice() else {
                    return Err(DownloadError::Hcl(
                        "a download block takes one pattern label".into(),
                    ));
                };
                let pattern = label.as_str().to_string();
                let mut bmode = None;
                let mut burl = None;
                for s in b.body.into_inner() {
                    let Structure::Attribute(a) = s else {
                        return Err(DownloadError::Hcl(format!(
                            "download {pattern:?}: blocks do not nest"
                        )));
                    };
                    match a.key.as_str() {
                        "mode" => bmode = Some(string(&a.key, &a.expr)?.parse()?),
                        "downloadURL" => burl = Some(string(&a.key, &a.expr)?),
                        other => return Err(unknown(other)),
                    }
                }
                let mode = bmode.ok_or_else(|| {
                    DownloadError::Hcl(format!("download {pattern:?}: mode is required"))
                })?;
                blocks.push(Block {
                    pattern: PrefixPatterns::new([pattern.as_str()]),
                    mode,
                    url: burl.filter(|u: &String| !u.is_empty()),
                });
            }
        }
    }
    let mode: Mode = mode.ok_or_else(|| DownloadError::Hcl("mode is required".into()))?;
    Ok(DownloadModes {
        mode,
        url: url
            .filter(|u| !u.is_empty())
            .unwrap_or_else(|| download_url.to_string()),
        blocks,
    })
}

fn string(key: &str, e: &Expression) -> Result<String, DownloadError> {
    match e {
        Expression::String(s) => Ok(s.clone()),
        _ => Err(DownloadError::Hcl(format!("{key} must be a plain string"))),
    }
}

fn unknown(name: &str) -> DownloadError {
    DownloadError::Hcl(format!(
        "unknown {name:?} (want mode, downloadURL and download \"<pattern>\" blocks)"
    ))
}
