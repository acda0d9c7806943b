//! Prometheus metrics for `/metrics`.

use crate::policy::filter::Rule;
use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts,
    Registry, TextEncoder,
};
use std::sync::{Arc, OnceLock};

/// The `route` label of the request metrics: what a request path asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    Sumdb,
    List,
    Latest,
    Info,
    Mod,
    Zip,
    Healthz,
    Readyz,
    Metrics,
    Version,
    Catalog,
    Index,
    Other,
}

impl Route {
    const COUNT: usize = Route::Other as usize + 1;

    pub fn name(self) -> &'static str {
        match self {
            Route::Sumdb => "sumdb",
            Route::List => "list",
            Route::Latest => "latest",
            Route::Info => "info",
            Route::Mod => "mod",
            Route::Zip => "zip",
            Route::Healthz => "healthz",
            Route::Readyz => "readyz",
            Route::Metrics => "metrics",
            Route::Version => "version",
            Route::Catalog => "catalog",
            Route::Index => "index",
            Route::Other => "other",
        }
    }
}

/// One route's series that every request touches, looked up once. A label lookup hashes the
/// labels and takes a lock; four per warm request were measurable (perf: `with_label_values`
/// and its hashing about 2% of a warm `.info` request's CPU). Resolved on first use, so
/// `/metrics` shows only routes that were asked for, as before.
#[derive(Clone)]
struct RouteSeries {
    ok: IntCounter,
    seconds: Histogram,
    bytes: IntCounter,
}

/// The `stage` labels of `athens_fill_stage_duration_seconds`, in the order a fill runs them.
pub const FILL_STAGES: [&str; 3] = ["fetch", "check", "commit"];

/// Buckets of the fill stage histograms (seconds): a warm bucket's commit to a slow upstream.
const FILL_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// Every metric the proxy exports, registered in its own registry.
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    /// Requests by route (`list`, `info`, `mod`, `zip`, `latest`, `sumdb`, ...) and status code.
    pub requests: IntCounterVec,
    /// Request latency by route.
    pub request_seconds: HistogramVec,
    /// Storage lookups for a module version: `hit` or `miss`.
    pub cache: IntCounterVec,
    /// Upstream fills of a module version by outcome (`stored`, `not_found`, `failed`, `rejected`).
    pub upstream_fetches: IntCounterVec,
    /// Duration of upstream fills.
    pub upstream_seconds: HistogramVec,
    /// Time a successful fill spent in each `stage`: `fetch` (upstream: `.info`/`.mod` and the
    /// zip, at once), `check` (the zip check after its download, and the hash comparisons),
    /// `commit` (writing to the bucket). What the proxy adds beyond upstream is check + commit.
    pub fill_stage_seconds: HistogramVec,
    /// Time a successful fill's zip, fully downloaded, waited for the `.info`/`.mod` stage (in
    /// practice the checksum database's lookup and the tiles proving it): part of `fetch`.
    pub fill_sumdb_wait_seconds: Histogram,
    /// Response body bytes by route.
    pub bytes_served: IntCounterVec,
    /// Requests that waited for a fill another request had started.
    pub singleflight_waits: IntCounter,
    /// Not-found answers served from the negative cache.
    pub negative_cache_hits: IntCounter,
    /// Committed versions found with a lost `.zip` or `.mod` and filled again.
    pub storage_repairs: IntCounter,
    /// Versions whose `.info` and `.mod` were verified against the checksum database and
    /// stored before their zip (see `fetch::mod_first`).
    pub mod_first_fills: IntCounter,
    /// Requests answered from the memory of a recently failed fill, without fetching again.
    pub failed_fill_hits: IntCounter,
    /// Filter and download-mode decisions: `kind` (`filter`, `download`) and `decision`
    /// (`include`, `exclude`, `direct`; `sync`, `async`, `redirect`, `async_redirect`, `none`).
    pub policy_decisions: IntCounterVec,
    /// Reloads of the filter and download-mode files by `result` (`ok`, `refused`).
    pub policy_reloads: IntCounterVec,
    /// Native git fetches (`direct`) by git `host` and `result` (`ok`, `not_found`, `failed`).
    /// The host only: never user info or a repository path, which may carry secrets.
    pub vcs_fetches: IntCounterVec,
    /// Duration of native git fetches by git host.
    pub vcs_fetch_seconds: HistogramVec,
    /// Requests answered from a repository's mirror without a fetch of their own, by git host.
    pub vcs_mirror_reuses: IntCounterVec,
    /// Local copies of a remote bucket's zips (`storage.zip_cache_dir`), by outcome: `hit`,
    /// `miss`, `copied`, `abandoned` (a copy not kept), `evicted`.
    pub zip_cache: IntCounterVec,
    /// Bytes the zip copies take.
    pub zip_cache_bytes: IntGauge,
    /// Resolved series of the request path (see [`RouteSeries`]).
    routes: Arc<[OnceLock<RouteSeries>; Route::COUNT]>,
    storage_hit: OnceLock<IntCounter>,
    /// `policy_decisions{kind="filter"}` by rule, resolved once (every request is filtered).
    filter_rules: [OnceLock<IntCounter>; 3],
}

impl Metrics {
    pub fn new() -> Self {
        let registry = Registry::new();
        let m = Self {
            requests: IntCounterVec::new(
                Opts::new("athens_requests_total", "HTTP requests by route and status"),
                &["route", "status"],
            )
            .expect("valid metric"),
            request_seconds: HistogramVec::new(
                HistogramOpts::new("athens_request_duration_seconds", "HTTP request latency"),
                &["route"],
            )
            .expect("valid metric"),
            cache: IntCounterVec::new(
                Opts::new(
                    "athens_storage_lookups_total",
                    "Module version lookups in storage",
                ),
                &["result"],
            )
            .expect("valid metric"),
            upstream_fetches: IntCounterVec::new(
                Opts::new(
                    "athens_upstream_fetches_total",
                    "Module version fills from upstream",
                ),
                &["outcome"],
            )
            .expect("valid metric"),
            upstream_seconds: HistogramVec::new(
                HistogramOpts::new(
                    "athens_upstream_fetch_duration_seconds",
                    "Duration of module version fills from upstream",
                ),
                &["outcome"],
            )
            .expect("valid metric"),
            fill_stage_seconds: HistogramVec::new(
                HistogramOpts::new(
                    "athens_fill_stage_duration_seconds",
                    "Time successful fills spent per stage (fetch, check, commit)",
                )
                .buckets(FILL_BUCKETS.to_vec()),
                &["stage"],
            )
            .expect("valid metric"),
            fill_sumdb_wait_seconds: Histogram::with_opts(
                HistogramOpts::new(
                    "athens_fill_sumdb_wait_seconds",
                    "Time successful fills' downloaded zips waited for the .info/.mod stage and \
                     the checksum database",
                )
                .buckets(FILL_BUCKETS.to_vec()),
            )
            .expect("valid metric"),
            bytes_served: IntCounterVec::new(
                Opts::new("athens_bytes_served_total", "Response body bytes"),
                &["route"],
            )
            .expect("valid metric"),
            singleflight_waits: IntCounter::new(
                "athens_singleflight_waits_total",
                "Requests that joined a fill already under way",
            )
            .expect("valid metric"),
            negative_cache_hits: IntCounter::new(
                "athens_negative_cache_hits_total",
                "Not-found answers served without asking upstream",
            )
            .expect("valid metric"),
            storage_repairs: IntCounter::new(
                "athens_storage_repairs_total",
                "Committed versions whose lost .zip or .mod was filled again",
            )
            .expect("valid metric"),
            mod_first_fills: IntCounter::new(
                "athens_mod_first_fills_total",
                "Versions whose .info and .mod were verified against the checksum database and stored before their zip",
            )
            .expect("valid metric"),
            failed_fill_hits: IntCounter::new(
                "athens_failed_fill_hits_total",
                "Requests answered with a recently failed fill's error without fetching again",
            )
            .expect("valid metric"),
            policy_decisions: IntCounterVec::new(
                Opts::new(
                    "athens_policy_decisions_total",
                    "Filter and download-mode decisions by kind and decision",
                ),
                &["kind", "decision"],
            )
            .expect("valid metric"),
            policy_reloads: IntCounterVec::new(
                Opts::new(
                    "athens_policy_reloads_total",
                    "Reloads of changed filter and download-mode files by result",
                ),
                &["result"],
            )
            .expect("valid metric"),
            vcs_fetches: IntCounterVec::new(
                Opts::new(
                    "athens_vcs_fetches_total",
                    "Native git fetches by git host and result",
                ),
                &["host", "result"],
            )
            .expect("valid metric"),
            vcs_fetch_seconds: HistogramVec::new(
                HistogramOpts::new(
                    "athens_vcs_fetch_duration_seconds",
                    "Duration of native git fetches by git host",
                )
                // A first fetch of a large repository takes far longer than an HTTP request.
                .buckets(vec![
                    0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
                ]),
                &["host"],
            )
            .expect("valid metric"),
            vcs_mirror_reuses: IntCounterVec::new(
                Opts::new(
                    "athens_vcs_mirror_reuses_total",
                    "Requests answered from a git mirror without a fetch of their own, by git host",
                ),
                &["host"],
            )
            .expect("valid metric"),
            zip_cache: IntCounterVec::new(
                Opts::new(
                    "athens_zip_cache_total",
                    "Local copies of a remote bucket's zips, by outcome (hit, miss, copied, \
                     abandoned, evicted)",
                ),
                &["outcome"],
            )
            .expect("valid metric"),
            zip_cache_bytes: IntGauge::new(
                "athens_zip_cache_bytes",
                "Bytes the local copies of zips take",
            )
            .expect("valid metric"),
            registry,
            routes: Arc::new(std::array::from_fn(|_| OnceLock::new())),
            storage_hit: OnceLock::new(),
            filter_rules: std::array::from_fn(|_| OnceLock::new()),
        };
        let collectors: [Box<dyn prometheus::core::Collector>; 20] = [
            Box::new(m.requests.clone()),
            Box::new(m.request_seconds.clone()),
            Box::new(m.cache.clone()),
            Box::new(m.upstream_fetches.clone()),
            Box::new(m.upstream_seconds.clone()),
            Box::new(m.fill_stage_seconds.clone()),
            Box::new(m.fill_sumdb_wait_seconds.clone()),
            Box::new(m.bytes_served.clone()),
            Box::new(m.singleflight_waits.clone()),
            Box::new(m.negative_cache_hits.clone()),
            Box::new(m.storage_repairs.clone()),
            Box::new(m.mod_first_fills.clone()),
            Box::new(m.failed_fill_hits.clone()),
            Box::new(m.policy_decisions.clone()),
            Box::new(m.policy_reloads.clone()),
            Box::new(m.vcs_fetches.clone()),
            Box::new(m.vcs_fetch_seconds.clone()),
            Box::new(m.vcs_mirror_reuses.clone()),
            Box::new(m.zip_cache.clone()),
            Box::new(m.zip_cache_bytes.clone()),
        ];
        for c in collectors {
            m.registry.register(c).expect("metric names are unique");
        }
        // Both results exist from the start, so a scraper sees 0 (and rate() works) before the
        // first reload.
        for result in ["ok", "refused"] {
            m.policy_reloads.with_label_values(&[result]);
        }
        // Likewise the zip cache's (all 0 when there is none) and the fill stages.
        let _ = m.zip_cache_counters();
        for stage in FILL_STAGES {
            m.fill_stage_seconds.with_label_values(&[stage]);
        }
        m
    }

    /// Counts a served request: by route and status, its latency, and its body bytes when known.
    pub fn served(&self, route: Route, status: http::StatusCode, seconds: f64, bytes: Option<u64>) {
        let series = self.routes[route as usize].get_or_init(|| RouteSeries {
            ok: self.requests.with_label_values(&[route.name(), "200"]),
            seconds: self.request_seconds.with_label_values(&[route.name()]),
            bytes: self.bytes_served.with_label_values(&[route.name()]),
        });
        if status == http::StatusCode::OK {
            series.ok.inc();
        } else {
            self.requests
                .with_label_values(&[route.name(), status.as_str()])
                .inc();
        }
        series.seconds.observe(seconds);
        if let Some(n) = bytes {
            series.bytes.inc_by(n);
        }
    }

    /// The zip cache's series (created now, so they read 0 before the first zip).
    pub fn zip_cache_counters(&self) -> crate::storage::ZipCacheCounters {
        let c = |o: &str| self.zip_cache.with_label_values(&[o]);
        crate::storage::ZipCacheCounters {
            hits: c("hit"),
            misses: c("miss"),
            copied: c("copied"),
            abandoned: c("abandoned"),
            evicted: c("evicted"),
            bytes: self.zip_cache_bytes.clone(),
        }
    }

    /// Counts a module version found in storage.
    pub fn storage_hit(&self) {
        self.storage_hit
            .get_or_init(|| self.cache.with_label_values(&["hit"]))
            .inc();
    }

    /// Counts the filter's rule for a request.
    pub fn filter_decision(&self, rule: Rule) {
        let slot = match rule {
            Rule::Include => 0,
            Rule::Exclude => 1,
            Rule::Direct => 2,
        };
        self.filter_rules[slot]
            .get_or_init(|| {
                self.policy_decisions
                    .with_label_values(&["filter", rule.name()])
            })
            .inc();
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        // Encoding into a Vec cannot fail for well-formed metrics.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buf);
        String::from_utf8(buf).unwrap_or_default()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
