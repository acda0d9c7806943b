//! The configuration reference (docs/configuration.md), generated from [`Config`]'s JSON schema
//! and defaults, so it cannot go stale: a test compares the committed file with this output.
//!
//! `athens-proxy --print-config-reference > docs/configuration.md` regenerates it.

use super::{Cli, Config};
use serde_json::Value;

/// Config keys that a flag (and its environment variable) overrides: key, flag.
pub const FLAGS: &[(&str, &str)] = &[
    ("listen", "listen"),
    ("storage.url", "storage"),
    ("upstream.goproxy", "upstream"),
    ("upstream.sumdb", "sumdb"),
    ("upstream.nosum_patterns", "nosum"),
    ("upstream.private", "private"),
    ("upstream.vcs_go_binary", "vcs-go-binary"),
    ("upstream.network_mode", "network-mode"),
    ("upstream.negative_cache_seconds", "negative-cache-seconds"),
    ("upstream.failed_fill_seconds", "failed-fill-seconds"),
    ("log.format", "log-format"),
    ("observability.otlp_endpoint", "otlp-endpoint"),
    ("policy.filter_file", "filter-file"),
    ("policy.global_endpoint", "global-endpoint"),
    ("policy.download_mode", "download-mode"),
    ("policy.download_url", "download-url"),
];

/// Defaults that depend on the machine, shown the way the user reads them.
const SHOWN_DEFAULTS: &[(&str, &str)] = &[(
    "storage.url",
    "`file://` + `$XDG_DATA_HOME/athens-proxy/storage`, else `~/.local/share/athens-proxy/storage`",
)];

struct Row {
    key: String,
    kind: String,
    default: String,
    flag: String,
    doc: String,
}

/// The whole reference, as Markdown.
pub fn markdown() -> String {
    let schema = serde_json::to_value(schemars::schema_for!(Config)).unwrap_or_default();
    let defaults = serde_json::to_value(Config::default()).unwrap_or_default();
    let mut rows = Vec::new();
    walk(&schema, &schema, &defaults, "", &mut rows);
    // Key order, not schema order: serde_json's map order depends on whether some other crate
    // in the same build turned on its `preserve_order` feature, which would make this file
    // differ between `cargo run -p athens-proxy` and a workspace build.
    rows.sort_by(|a, b| a.key.cmp(&b.key));

    let mut out = String::from(
        "# athens-proxy configuration reference\n\n\
         <!-- Generated from athens_proxy::config::Config by `athens-proxy --print-config-reference`; \
         a test fails when this file differs. Do not edit by hand. -->\n\n\
         `athens-proxy` reads a TOML file (`--config FILE` or `ATHENS_CONFIG`), then environment \
         variables, then flags; the later wins. With nothing set it serves on `127.0.0.1:3000` \
         from a folder in your home directory, with your `go` command's own upstream. \
         `athens-proxy --print-config` prints the effective configuration as TOML. Unknown keys \
         are an error. In Kubernetes the operator writes this file from the `AthensProxy` spec.\n\n\
         | key | type | default | flag / environment | description |\n\
         |---|---|---|---|---|\n",
    );
    for r in rows {
        out.push_str(&format!(
            "| `{}` | {} | {} | {} | {} |\n",
            r.key, r.kind, r.default, r.flag, r.doc
        ));
    }
    out.push_str(
        "\nTables: `[storage]`, `[storage.options]`, `[upstream]`, `[server]`, `[log]`; for example\n\n\
         ```toml\nlisten = \"0.0.0.0:3000\"\n\n[storage]\nurl = \"s3://go-modules/cluster-a\"\n\n\
         [storage.options]\nregion = \"us-east-1\"\n\n[upstream]\ngoproxy = \"https://proxy.internal.example\"\n\
         network_mode = \"fallback\"\n```\n",
    );
    out
}

fn resolve<'a>(root: &'a Value, v: &'a Value) -> &'a Value {
    match v.get("$ref").and_then(Value::as_str) {
        Some(r) => r
            .strip_prefix("#/")
            .map(|p| p.split('/').fold(root, |acc, seg| &acc[seg]))
            .unwrap_or(v),
        None => v,
    }
}

fn walk(root: &Value, node: &Value, defaults: &Value, prefix: &str, rows: &mut Vec<Row>) {
    let Some(props) = node.get("properties").and_then(Value::as_object) else {
        return;
    };
    for (name, prop) in props {
        let key = format!("{prefix}{name}");
        let def = resolve(root, prop);
        let doc = prop
            .get("description")
            .or_else(|| def.get("description"))
            .and_then(Value::as_str)
            .unwrap_or_default();
        if def.get("properties").is_some() {
            walk(root, def, &defaults[name], &format!("{key}."), rows);
            continue;
        }
        rows.push(Row {
            kind: kind(def),
            default: shown_default(&key, &defaults[name]),
            flag: FLAGS
                .iter()
                .find(|(k, _)| *k == key)
                .map(|(_, f)| format!("`--{f}`, `{}`", env_of(f)))
                .unwrap_or_default(),
            // One line per row, and a `|` would end the table cell.
            doc: doc
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
                .replace('|', "\\|"),
            key,
        });
    }
}

/// The environment variable clap reads for a flag.
fn env_of(flag: &str) -> String {
    use clap::CommandFactory;
    Cli::command()
        .get_arguments()
        .find(|a| a.get_long() == Some(flag))
        .and_then(|a| a.get_env())
        .map(|e| e.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn kind(def: &Value) -> String {
    let variants: Vec<String> = def
        .get("oneOf")
        .and_then(Value::as_array)
        .map(|vs| {
            vs.iter()
                .filter_map(|v| {
                    v.get("const")
                        .or_else(|| v.get("enum").and_then(|e| e.get(0)))
                })
                .filter_map(Value::as_str)
                .map(|s| format!("`{s}`"))
                .collect()
        })
        .or_else(|| {
            def.get("enum").and_then(Value::as_array).map(|e| {
                e.iter()
                    .filter_map(Value::as_str)
                    .map(|s| format!("`{s}`"))
                    .collect()
            })
        })
        .unwrap_or_default();
    if !variants.is_empty() {
        return variants.join(" / ");
    }
    match def.get("type").and_then(Value::as_str) {
        // An array of tables (`[[...]]` in TOML) refers to its item's definition.
        Some("array") if def.pointer("/items/$ref").is_some() => "list of tables".into(),
        Some("array") => "list of strings".into(),
        Some("object") => "table of strings".into(),
        Some(t) => t.into(),
        None => "value".into(),
    }
}

fn shown_default(key: &str, v: &Value) -> String {
    if let Some((_, s)) = SHOWN_DEFAULTS.iter().find(|(k, _)| *k == key) {
        return (*s).into();
    }
    match v {
        Value::String(s) if s.is_empty() => "empty".into(),
        Value::String(s) => format!("`{s}`"),
        Value::Array(a) if a.is_empty() => "none".into(),
        Value::Object(o) if o.is_empty() => "none".into(),
        other => format!("`{other}`"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn committed_reference_is_current() {
        let committed = include_str!("../../docs/configuration.md");
        assert!(
            committed == markdown(),
            "docs/configuration.md is stale: run \
             `cargo run -q -p athens-proxy -- --print-config-reference > docs/configuration.md`"
        );
    }

    #[test]
    fn every_flag_in_the_table_exists_and_every_key_is_documented() {
        let md = markdown();
        for (key, flag) in FLAGS {
            assert!(
                !env_of(flag).is_empty(),
                "--{flag} has no environment variable"
            );
            assert!(md.contains(&format!("| `{key}` |")), "{key} missing");
        }
        for key in [
            "upstream.fill_lease_seconds",
            "log.level",
            "storage.options",
        ] {
            assert!(md.contains(&format!("| `{key}` |")), "{key} missing:\n{md}");
        }
    }
}
