//! OpenTelemetry traces, exported over OTLP to a real OpenTelemetry Collector: a go command
//! fetch through the proxy is a trace with the request span and the fill's steps as child spans,
//! and the proxy's log lines for those requests carry the same trace id. With no endpoint
//! configured, nothing is traced and log lines carry no trace id. Below `info`, requests get a
//! span only when traces are exported, and the warnings they log name their module.

use athens_e2e::gocmd::GoEnv;
use athens_e2e::modzip::FakeModule;
use athens_e2e::otelcol::{Collector, SpanRecord};
use athens_e2e::proxy::ProxyProcess;
use athens_e2e::reliability::Outcome;
use athens_e2e::world::{World, file_base};
use std::collections::{BTreeMap, BTreeSet};
use std::process::Stdio;
use std::time::Duration;

/// The fill steps every fill of a new version goes through, as span names.
const FILL_STEPS: &[&str] = &[
    "lease",
    "upstream_fetch",
    "verify",
    "commit",
    "lease_release",
];

/// A proxy for `world` on a fresh file bucket, logging JSON into `log` (at debug unless `env`
/// sets `RUST_LOG`), with `observability` lines in its configuration and `env` set.
fn start_proxy(
    world: &World,
    dir: &std::path::Path,
    observability: &str,
    env: &[(&str, &str)],
) -> (ProxyProcess, std::path::PathBuf) {
    let upstream = format!(
        "goproxy = \"{}\"\nsumdb = \"{}\"\n",
        world.upstream.url,
        world.sumdb.gosumdb()
    );
    start_named(dir, "proxy", &upstream, observability, env)
}

/// A proxy on the bucket in `dir`, its configuration and log named `<name>.toml` and
/// `<name>.log` there, with these `[upstream]` and `[observability]` lines.
fn start_named(
    dir: &std::path::Path,
    name: &str,
    upstream: &str,
    observability: &str,
    env_extra: &[(&str, &str)],
) -> (ProxyProcess, std::path::PathBuf) {
    let config = dir.join(format!("{name}.toml"));
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:0\"\n[upstream]\n{upstream}\
             [storage]\nurl = \"file://{}\"\n[log]\nformat = \"json\"\n\
             [observability]\n{observability}",
            dir.join("bucket").display()
        ),
    )
    .unwrap();
    let log = dir.join(format!("{name}.log"));
    let file = std::fs::File::create(&log).unwrap();
    let mut env = [("RUST_LOG", "athens_proxy=debug,warn")].to_vec();
    env.extend_from_slice(env_extra);
    let proxy = ProxyProcess::start_with_stderr(
        &["--config", config.to_str().unwrap()],
        &env,
        Stdio::from(file),
    );
    (proxy, log)
}

/// The proxy's JSON log lines.
fn log_lines(path: &std::path::Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// The `request` span a log line was emitted in, if any (its fields, from `spans`).
fn request_of(line: &serde_json::Value) -> Option<&serde_json::Value> {
    line["spans"]
        .as_array()?
        .iter()
        .find(|s| s["name"] == "request")
}

/// GETs `url` and checks the answer is 200.
async fn get_ok(url: String) -> reqwest::Response {
    let resp = reqwest::get(&url).await.unwrap();
    assert_eq!(resp.status(), 200, "{url}");
    resp
}

/// Whether `spans` hold a fill of `module` with every step as its child.
fn complete_fill<'a>(spans: &'a [SpanRecord], module: &str) -> Option<&'a SpanRecord> {
    let fill = spans.iter().find(|s| {
        s.name == "fill" && s.attributes.get("module").map(String::as_str) == Some(module)
    })?;
    let children: BTreeSet<&str> = spans
        .iter()
        .filter(|s| s.parent_span_id == fill.span_id)
        .map(|s| s.name.as_str())
        .collect();
    let parent_logged = spans.iter().any(|s| s.span_id == fill.parent_span_id);
    (FILL_STEPS.iter().all(|n| children.contains(n)) && parent_logged).then_some(fill)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_go_fetch_is_one_trace_with_its_fill_steps_and_logs_carry_its_id() {
    let collector = Collector::start().await;
    let m = FakeModule::new("example.com/traced", "v1.0.0");
    let world = World::new(vec![m.clone()]).await;
    let dir = tempfile::tempdir().unwrap();
    let observability = format!("otlp_endpoint = \"{}\"\n", collector.url);
    let (proxy, log) = start_proxy(
        &world,
        dir.path(),
        &observability,
        // Export every 100 ms rather than every 5 s: the test polls anyway.
        &[("OTEL_BSP_SCHEDULE_DELAY", "100")],
    );

    let go = GoEnv::new(&proxy.url, &world.sumdb.key);
    let (outcome, _) = world.go_download(&go);
    assert!(matches!(outcome, Outcome::Correct), "{outcome:?}");

    // A client that is part of a trace already: the request joins it.
    let parent_trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let parent_span = "00f067aa0ba902b7";
    let resp = reqwest::Client::new()
        .get(format!("{}/{}.mod", proxy.url, file_base(&m)))
        .header("traceparent", format!("00-{parent_trace}-{parent_span}-01"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);

    let spans = collector
        .wait_for_spans(Duration::from_secs(120), |s| {
            complete_fill(s, &m.path).is_some() && s.iter().any(|s| s.trace_id == parent_trace)
        })
        .await;
    let names: Vec<&str> = spans.iter().map(|s| s.name.as_str()).collect();
    let fill = complete_fill(&spans, &m.path)
        .unwrap_or_else(|| panic!("no complete fill trace; spans received: {names:?}"));

    // The fill's parent is the go command's request for the version, a root span.
    let request = spans
        .iter()
        .find(|s| s.span_id == fill.parent_span_id)
        .unwrap();
    assert_eq!(request.name, "request");
    assert_eq!(request.parent_span_id, "", "{request:?}");
    assert_eq!(request.service, "athens-proxy");
    assert_eq!(request.trace_id, fill.trace_id);
    assert_eq!(request.attributes["method"], "GET");
    assert!(
        request.attributes["path"].starts_with(&format!("/{}", file_base(&m))),
        "{request:?}"
    );
    assert_eq!(request.attributes["http.response.status_code"], "200");
    // Every step is in the same trace, and the three upstream fetches are all there: the
    // `.info`/`.mod` stage answered the go command's first request in a `fill_mod` span (see
    // fetch/mod_first.rs), and the zip followed in the fill.
    let stages: BTreeSet<&str> = spans
        .iter()
        .filter(|s| {
            s.trace_id == fill.trace_id && (s.span_id == fill.span_id || s.name == "fill_mod")
        })
        .map(|s| s.span_id.as_str())
        .collect();
    let steps: Vec<&SpanRecord> = spans
        .iter()
        .filter(|s| stages.contains(s.parent_span_id.as_str()))
        .collect();
    assert!(steps.iter().all(|s| s.trace_id == fill.trace_id));
    let fetched: BTreeSet<&str> = steps
        .iter()
        .filter(|s| s.name == "upstream_fetch")
        .map(|s| s.attributes["file"].as_str())
        .collect();
    assert_eq!(fetched, BTreeSet::from([".info", ".mod", ".zip"]));
    // The checksum database was asked once: by the `.info`/`.mod` stage, whose verified record
    // the zip's fill then took (fetch/records.rs).
    let lookups = steps.iter().filter(|s| s.name == "sumdb_lookup").count();
    assert_eq!(lookups, 1, "{names:?}");

    // The traceparent request continued the client's trace.
    let joined = spans.iter().find(|s| s.trace_id == parent_trace).unwrap();
    assert_eq!(
        (joined.name.as_str(), joined.parent_span_id.as_str()),
        ("request", parent_span)
    );

    // Log lines: every line inside a request names that request's trace id, and it is the id
    // the collector received the request span under.
    let lines = log_lines(&log);
    let trace_of_request: BTreeMap<&str, &str> = spans
        .iter()
        .filter(|s| s.name == "request")
        .map(|s| (s.attributes["id"].as_str(), s.trace_id.as_str()))
        .collect();
    let mut in_requests = 0;
    let mut fill_lines = 0;
    for line in &lines {
        let Some(req) = request_of(line) else {
            continue;
        };
        in_requests += 1;
        let id = req["id"].as_str().unwrap();
        let logged = req["trace_id"]
            .as_str()
            .unwrap_or_else(|| panic!("a log line inside a request has no trace id: {line}"));
        if let Some(exported) = trace_of_request.get(id) {
            assert_eq!(logged, *exported, "{line}");
        }
        if logged == fill.trace_id
            && line["spans"]
                .as_array()
                .unwrap()
                .iter()
                .any(|s| s["name"] == "fill")
        {
            fill_lines += 1;
        }
    }
    // The fill logs at debug (downloaded, checked, verified, committed) inside the request.
    assert!(
        fill_lines >= 3,
        "{fill_lines} fill log lines of {in_requests}"
    );
    // Every request the go command made was exported and logged ("served" lines).
    let served: BTreeSet<&str> = lines
        .iter()
        .filter(|l| l["fields"]["message"] == "served")
        .filter_map(|l| request_of(l)?["trace_id"].as_str())
        .collect();
    assert!(served.contains(fill.trace_id.as_str()));
    assert!(served.contains(parent_trace));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_an_endpoint_nothing_is_traced() {
    let m = FakeModule::new("example.com/untraced", "v1.0.0");
    let world = World::new(vec![m.clone()]).await;
    let dir = tempfile::tempdir().unwrap();
    let (proxy, log) = start_proxy(&world, dir.path(), "", &[]);
    get_ok(format!("{}/{}.info", proxy.url, file_base(&m))).await;
    let lines = log_lines(&log);
    let in_requests: Vec<_> = lines.iter().filter_map(request_of).collect();
    assert!(!in_requests.is_empty(), "no log line inside a request");
    for req in in_requests {
        assert!(req.get("trace_id").is_none(), "{req}");
    }
}

/// At `warn` no log line shows a request's span, so none is made for logs; exported traces still
/// get every request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_warn_requests_are_still_traced() {
    let collector = Collector::start().await;
    let m = FakeModule::new("example.com/quiet", "v1.0.0");
    let world = World::new(vec![m.clone()]).await;
    let dir = tempfile::tempdir().unwrap();
    let observability = format!("otlp_endpoint = \"{}\"\n", collector.url);
    let env = [("OTEL_BSP_SCHEDULE_DELAY", "100"), ("RUST_LOG", "warn")];
    let (proxy, log) = start_proxy(&world, dir.path(), &observability, &env);
    let url = format!("{}/{}.info", proxy.url, file_base(&m));
    for _ in 0..2 {
        get_ok(url.clone()).await;
    }
    let want = format!("/{}.info", file_base(&m));
    let requests = |s: &[SpanRecord]| {
        s.iter()
            .filter(|s| s.name == "request" && s.attributes["path"] == want)
            .count()
    };
    let spans = collector
        .wait_for_spans(Duration::from_secs(60), |s| requests(s) == 2)
        .await;
    assert_eq!(requests(&spans), 2, "{spans:?}");
    let served = log_lines(&log)
        .into_iter()
        .filter(|l| l["fields"]["message"] == "served")
        .count();
    assert_eq!(served, 0, "a `served` line at warn");
}

/// At `warn` with no traces, requests run without a span; a warning on the request path still
/// says which module it is about, and the response still carries its request id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_warn_without_traces_warnings_name_their_module() {
    let m = FakeModule::new("example.com/spanless", "v1.0.0");
    let world = World::new(vec![m.clone()]).await;
    let dir = tempfile::tempdir().unwrap();
    let (filled, _) = start_proxy(&world, dir.path(), "", &[]);
    // The zip: storage lists a version once its zip is stored.
    get_ok(format!("{}/{}.zip", filled.url, file_base(&m))).await;
    drop(filled);

    // The same bucket behind an upstream that refuses connections, in fallback mode: `list`
    // is answered from storage with a warning.
    let upstream = format!(
        "network_mode = \"fallback\"\nretries = 0\ngoproxy = \"http://127.0.0.1:1\"\n\
         sumdb = \"{}\"\n",
        world.sumdb.gosumdb()
    );
    let env = [("RUST_LOG", "warn")];
    let (proxy, log) = start_named(dir.path(), "fallback", &upstream, "", &env);
    let resp = get_ok(format!("{}/{}/@v/list", proxy.url, m.path)).await;
    assert!(resp.headers().contains_key("x-request-id"));
    assert_eq!(resp.text().await.unwrap(), "v1.0.0\n");
    let lines = log_lines(&log);
    let warned = lines
        .iter()
        .find(|l| {
            l["fields"]["message"]
                .as_str()
                .is_some_and(|t| t.contains("serving the list from storage"))
        })
        .unwrap_or_else(|| panic!("no fallback warning in {lines:?}"));
    assert_eq!(warned["fields"]["module"], m.path.as_str(), "{warned}");
    assert!(request_of(warned).is_none(), "{warned}");
}
