//! The metrics the proxy exports, their documentation (docs/metrics.md) and the chart's Grafana
//! dashboard agree: every metric family exported is documented and every documented one is
//! exported; every metric the dashboard queries is one the proxy was seen exporting.

use athens_e2e::modzip::FakeModule;
use athens_e2e::world::{StorageSpec, World, file_base};
use std::collections::BTreeSet;

fn repo_file(rel: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// `athens_...` identifiers in a text.
fn metric_names(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while let Some(pos) = text[i..].find("athens_") {
        let start = i + pos;
        let boundary =
            start == 0 || !(bytes[start - 1].is_ascii_alphanumeric() || bytes[start - 1] == b'_');
        let mut end = start;
        while end < bytes.len()
            && (bytes[end].is_ascii_lowercase()
                || bytes[end].is_ascii_digit()
                || bytes[end] == b'_')
        {
            end += 1;
        }
        if boundary {
            out.insert(text[start..end].to_string());
        }
        i = end.max(start + 1);
    }
    out
}

/// Metric families (`# TYPE` lines) and sample names of an exposition.
fn exported(exposition: &str) -> (BTreeSet<String>, BTreeSet<String>) {
    let families = exposition
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
        .map(String::from)
        .collect();
    let samples = exposition
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split(['{', ' ']).next())
        .map(String::from)
        .collect();
    (families, samples)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exported_documented_and_dashboard_metrics_agree() {
    let m = FakeModule::new("example.com/observed", "v1.0.0");
    let world = World::new(vec![m.clone()]).await;
    let storage = tempfile::tempdir().unwrap();
    let proxy = world.proxy(&StorageSpec::file(storage.path()), "");
    let http = reqwest::Client::new();
    // A fill, hits, a zip, not-found answers (the second from memory), a catalog page.
    for path in [
        format!("{}.info", file_base(&m)),
        format!("{}.info", file_base(&m)),
        format!("{}.zip", file_base(&m)),
        "example.com/missing/@v/v1.0.0.info".into(),
        "example.com/missing/@v/v1.0.0.info".into(),
        "catalog".into(),
    ] {
        http.get(format!("{}/{path}", proxy.url()))
            .send()
            .await
            .unwrap();
    }
    let text = http
        .get(format!("{}/metrics", proxy.url()))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let (families, samples) = exported(&text);
    for want in ["athens_upstream_fetches_total", "athens_bytes_served_total"] {
        assert!(families.contains(want), "{want} not exported:\n{text}");
    }
    // The one fill went through every stage once, and its zip's wait was observed.
    let stages = ["fetch", "check", "commit"]
        .map(|stage| format!("athens_fill_stage_duration_seconds_count{{stage=\"{stage}\"}} 1"));
    for want in stages
        .iter()
        .map(String::as_str)
        .chain(["athens_fill_sumdb_wait_seconds_count 1"])
    {
        assert!(
            text.lines().any(|l| l == want),
            "{want} not exported:\n{text}"
        );
    }

    // Families labelled by git host exist only once a git fetch has happened, which this
    // world has no git host for: tests/tests/vcs_direct.rs sees them exported.
    let after_git_fetch = [
        "athens_vcs_fetches_total",
        "athens_vcs_fetch_duration_seconds",
        "athens_vcs_mirror_reuses_total",
    ];
    let mut families = families;
    families.extend(after_git_fetch.map(String::from));
    let mut samples = samples;
    samples.extend(after_git_fetch.map(String::from));
    samples.insert("athens_vcs_fetch_duration_seconds_bucket".into());
    let documented: BTreeSet<String> = metric_names(&repo_file("docs/metrics.md"));
    assert_eq!(
        families, documented,
        "docs/metrics.md and the exported families differ"
    );

    let dashboard: serde_json::Value = serde_json::from_str(&repo_file(
        "charts/athens-operator/files/grafana-dashboard.json",
    ))
    .expect("dashboard JSON");
    let mut queried = BTreeSet::new();
    let mut exprs = 0;
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().unwrap() {
            exprs += 1;
            queried.extend(metric_names(target["expr"].as_str().unwrap()));
        }
    }
    assert!(exprs >= 8 && queried.len() >= 8, "{queried:?}");
    for name in &queried {
        assert!(
            samples.contains(name),
            "the dashboard queries {name}, which the proxy did not export:\n{text}"
        );
    }
    let template = repo_file("charts/athens-operator/templates/grafana-dashboard.yaml");
    assert!(template.contains("grafana_dashboard: \"1\""));
    assert!(template.contains(".Files.Get \"files/grafana-dashboard.json\""));
}
