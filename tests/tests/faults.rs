//! Faults against the real proxy binary, a real checksum database, the real go command and
//! MinIO: upstreams that reset mid-body, drip bytes, lie about Content-Length or answer 5xx
//! storms; MinIO killed in the middle of fills and started again; the proxy killed with SIGKILL
//! while many clients download. Each asserts that no corrupt or partial version is ever served,
//! that every client gets correct bytes or a clear error, and that the proxy serves again after.
//! Each writes its figures for docs/reliability.md (see tests/reliability/report).

use athens_e2e::gocmd::GoEnv;
use athens_e2e::minio::MinioServer;
use athens_e2e::reliability::{Outcome, ProxyFigures, Record, Tally};
use athens_e2e::upstream::{Fault, LocalUpstream};
use athens_e2e::world::{StorageSpec, World, client_root, graph};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Zip payload: big enough that "mid-body" is many TCP segments in.
const PAYLOAD: usize = 256 << 10;

/// Proxy settings for the upstream fault cases: short timeouts so a stuck upstream costs
/// seconds, one retry so storms are retried but not forever, short leases, and failed fills
/// not remembered, so the "after" phase sees recovery at once rather than after the memory.
const FAST: &str =
    "timeout_seconds = 1\nretries = 1\nfill_lease_seconds = 2\nfailed_fill_seconds = 0\n";

/// What an upstream fault case expects while the fault is on.
#[derive(PartialEq)]
enum During {
    /// The fault defeats the fill: clients get clear errors (and never wrong bytes).
    Refused,
    /// The proxy rides it out: every client gets the right bytes.
    Served,
}

/// One upstream fault: on while `clients` HTTP clients and one go command fetch the graph,
/// then off; the storage must hold only whole versions, and the proxy must serve again.
async fn upstream_fault(
    test: &str,
    fault: &str,
    settings: &str,
    during: During,
    inject: impl Fn(&LocalUpstream),
) {
    let started = Instant::now();
    let world = World::new(graph(3, PAYLOAD)).await;
    let storage_dir = tempfile::tempdir().unwrap();
    let storage = StorageSpec::file(storage_dir.path());
    let proxy = world.proxy(&storage, settings);
    inject(&world.upstream);

    let mut tally = world.http_round(proxy.url(), 3).await;
    let go = GoEnv::new(proxy.url(), &world.sumdb.key);
    let (outcome, bytes, took) = world.go_download_timed(&go);
    tally.add(&outcome, bytes, took);
    let injected = world.upstream.faults_injected();
    assert!(injected > 0, "the fault was never hit");
    assert_eq!(tally.corrupt_served, 0, "{:?}", tally.samples);
    assert_eq!(
        tally.transport_errors, 0,
        "the proxy answers upstream faults with a clear error, never a cut body: {:?}",
        tally.samples
    );
    match during {
        During::Refused => assert!(
            tally.clear_errors > 0 && matches!(outcome, Outcome::ClearError(_)),
            "the fault must have failed some fetches: {tally:?}, go: {outcome:?}"
        ),
        During::Served => assert_eq!(
            (tally.correct, &outcome),
            (tally.requests, &Outcome::Correct),
            "{:?}",
            tally.samples
        ),
    }
    world.assert_storage_whole(&storage).await;
    let phase = Phase {
        test,
        fault,
        world: &world,
        started,
    };
    phase.record("during", injected, &tally, None).await;

    // Fault over: the proxy serves everything right, with no memory of the failures.
    world.upstream.clear_faults();
    let mut after = world.http_round(proxy.url(), 3).await;
    assert_eq!(after.correct, after.requests, "{:?}", after.samples);
    let go = GoEnv::new(proxy.url(), &world.sumdb.key);
    let (outcome, bytes, took) = world.go_download_timed(&go);
    assert_eq!(outcome, Outcome::Correct);
    after.add(&outcome, bytes, took);
    assert_eq!(
        world.assert_storage_whole(&storage).await,
        world.modules.len()
    );
    phase.record("after", 0, &after, Some(proxy.url())).await;
}

/// Writes one phase of a test to the reliability record.
struct Phase<'a> {
    test: &'a str,
    fault: &'a str,
    world: &'a World,
    started: Instant,
}

impl Phase<'_> {
    async fn record(&self, phase: &str, injected: usize, tally: &Tally, proxy_url: Option<&str>) {
        let proxy = match proxy_url {
            Some(url) => ProxyFigures::read(url).await,
            None => ProxyFigures::default(),
        };
        Record {
            test: self.test,
            phase,
            fault: self.fault,
            faults_injected: injected,
            tally,
            p50_ms: tally.quantile_ms(0.5),
            p99_ms: tally.quantile_ms(0.99),
            upstream_fetches: self.world.upstream_fetches(),
            proxy,
            seconds: self.started.elapsed().as_secs_f64(),
        }
        .write();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn upstream_resets_mid_body() {
    upstream_fault(
        "upstream_resets_mid_body",
        "upstream sends half of each .zip and a few bytes of each .mod, then RST",
        FAST,
        During::Refused,
        |up| {
            up.fault(".zip", Fault::ResetAfter(PAYLOAD / 2));
            up.fault(".mod", Fault::ResetAfter(5));
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn upstream_drips_slower_than_the_idle_timeout() {
    upstream_fault(
        "upstream_drips_too_slowly",
        "upstream sends each .zip 1 KiB every 3 s (idle timeout 1 s)",
        FAST,
        During::Refused,
        |up| {
            up.fault(
                ".zip",
                Fault::Drip {
                    chunk: 1024,
                    every: Duration::from_secs(3),
                },
            )
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn upstream_drips_steadily_and_is_waited_for() {
    upstream_fault(
        "upstream_drips_steadily",
        "upstream sends each .zip 16 KiB every 150 ms: 2.4 s per zip, idle timeout 1 s",
        FAST,
        During::Served,
        |up| {
            up.fault(
                ".zip",
                Fault::Drip {
                    chunk: 16 << 10,
                    every: Duration::from_millis(150),
                },
            )
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn upstream_claims_more_bytes_than_it_sends() {
    upstream_fault(
        "content_length_too_long",
        "upstream announces 1000 bytes more than it sends, then closes",
        FAST,
        During::Refused,
        |up| {
            up.fault(".zip", Fault::MisstateLength(1000));
            up.fault(".info", Fault::MisstateLength(7));
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn upstream_claims_fewer_bytes_than_it_sends() {
    upstream_fault(
        "content_length_too_short",
        "upstream announces fewer bytes than it sends: a cut .zip/.mod/.info that looks whole",
        FAST,
        During::Refused,
        |up| {
            up.fault(".zip", Fault::MisstateLength(-100));
            up.fault(".mod", Fault::MisstateLength(-3));
            up.fault(".info", Fault::MisstateLength(-2));
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn upstream_5xx_storm() {
    upstream_fault(
        "upstream_5xx_storm",
        "every upstream module file answers 500, 502 or 503",
        FAST,
        During::Refused,
        |up| {
            up.fault(".zip", Fault::Status(500));
            up.fault(".mod", Fault::Status(502));
            up.fault(".info", Fault::Status(503));
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn upstream_5xx_bursts_are_retried_away() {
    upstream_fault(
        "upstream_5xx_bursts_retried",
        "each module file's first request answers 503 (the proxy retries once)",
        FAST,
        During::Served,
        |up| {
            // One failure per file: 5 versions x 3 files.
            for m in graph(3, 0) {
                let base = athens_e2e::world::file_base(&m);
                for s in [".info", ".mod", ".zip"] {
                    up.fault_times(&format!("{base}{s}"), Fault::Status(503), 1);
                }
            }
        },
    )
    .await;
}

/// How long a client may wait for any one answer while storage is down: a proxy that hangs
/// longer than this leaves its clients worse off than a quick error would.
const STORAGE_DOWN_PATIENCE: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread")]
async fn minio_killed_mid_fill_then_restarted() {
    let started = Instant::now();
    let mut minio = MinioServer::start().await;
    let world = World::new(graph(5, PAYLOAD)).await;
    // Zips arrive slowly, so fills are in flight (between lease and commit) when MinIO dies.
    world
        .upstream
        .fault(".zip", Fault::Delay(Duration::from_millis(800)));
    let storage = StorageSpec::s3(&minio);
    let proxy = world.proxy(&storage, "timeout_seconds = 5\nfill_lease_seconds = 2\n");
    let phase = Phase {
        test: "minio_killed_mid_fill",
        fault: "MinIO SIGKILLed 0.5 s into 4 clients x 8 versions of concurrent fills, then restarted on its data",
        world: &world,
        started,
    };

    let burst = world.http_burst(proxy.url(), 4);
    let kill = async {
        tokio::time::sleep(Duration::from_millis(500)).await;
        minio.kill();
    };
    let (during, ()) = tokio::join!(burst, kill);
    assert_eq!(during.corrupt_served, 0, "{:?}", during.samples);
    assert!(
        during.correct < during.requests,
        "the kill came after every fill: {during:?}"
    );
    phase.record("during", 1, &during, None).await;

    // While it is down: clear errors in bounded time, not cut bodies or hangs; not ready.
    let down = world.http_burst(proxy.url(), 1).await;
    assert_eq!(down.correct, 0, "nothing can be served from a dead bucket");
    assert_eq!(
        down.clear_errors, down.requests,
        "errors, not cut bodies: {:?}",
        down.samples
    );
    let slowest = down.quantile_ms(1.0).unwrap();
    assert!(
        slowest < STORAGE_DOWN_PATIENCE.as_secs_f64() * 1000.0,
        "a request hung {slowest} ms while storage was down"
    );
    let ready = reqwest::get(format!("{}/readyz", proxy.url()))
        .await
        .unwrap();
    assert_ne!(ready.status().as_u16(), 200, "not ready without storage");
    phase.record("storage down", 0, &down, None).await;

    minio.restart().await.unwrap();
    // Back: within a short while everything is served right, by the same process.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut after = Tally::default();
    loop {
        let again = world.http_burst(proxy.url(), 2).await;
        let all_correct = again.correct == again.requests;
        assert_eq!(again.corrupt_served, 0, "{:?}", again.samples);
        after.merge(again);
        if all_correct {
            break;
        }
        assert!(Instant::now() < deadline, "not serving again after restart");
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let round = world.http_round(proxy.url(), 2).await;
    assert_eq!(round.correct, round.requests, "{:?}", round.samples);
    after.merge(round);
    let go = GoEnv::new(proxy.url(), &world.sumdb.key);
    let (outcome, bytes, took) = world.go_download_timed(&go);
    assert_eq!(outcome, Outcome::Correct);
    after.add(&outcome, bytes, took);
    assert_eq!(
        world.assert_storage_whole(&storage).await,
        world.modules.len()
    );
    phase
        .record("after restart", 1, &after, Some(proxy.url()))
        .await;
}

/// Runs `go_download` for every client at once; returns each outcome with its duration.
async fn go_clients(world: &Arc<World>, gos: &[Arc<GoEnv>]) -> Vec<(Outcome, u64, Duration)> {
    let runs: Vec<_> = gos
        .iter()
        .map(|go| {
            let (w, go) = (world.clone(), go.clone());
            tokio::task::spawn_blocking(move || w.go_download_timed(&go))
        })
        .collect();
    let mut out = Vec::new();
    for r in runs {
        out.push(r.await.expect("go client"));
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn proxy_sigkilled_while_many_clients_download() {
    const CLIENTS: usize = 20;
    let started = Instant::now();
    let minio = MinioServer::start().await;
    let world = Arc::new(World::new(graph(5, PAYLOAD)).await);
    world
        .upstream
        .fault(".zip", Fault::Delay(Duration::from_millis(300)));
    let storage = StorageSpec::s3(&minio);
    let settings = "timeout_seconds = 5\nfill_lease_seconds = 2\n";
    let phase = Phase {
        test: "proxy_sigkill_under_load",
        fault: "proxy SIGKILLed 0.7 s into 20 concurrent go mod download clients; a new process on the same bucket",
        world: &world,
        started,
    };
    let mut first = world.proxy(&storage, settings);
    let root = client_root();
    let gos: Vec<Arc<GoEnv>> = (0..CLIENTS)
        .map(|_| Arc::new(GoEnv::new_in(&root, first.url(), &world.sumdb.key)))
        .collect();
    let (results, ()) = tokio::join!(go_clients(&world, &gos), async {
        tokio::time::sleep(Duration::from_millis(700)).await;
        first.process.kill_hard();
    });
    let mut during = Tally::default();
    for (o, b, t) in results {
        assert!(
            matches!(o, Outcome::Correct | Outcome::ClearError(_)),
            "{o:?}"
        );
        during.add(&o, b, t);
    }
    assert_eq!(during.corrupt_served, 0);
    assert!(
        during.clear_errors > 0,
        "the kill came too late: {during:?}"
    );
    world.assert_storage_whole(&storage).await;
    phase.record("during", 1, &during, None).await;

    // A new process on the same bucket takes over stale leases and serves every client, whose
    // module caches still hold whatever the first attempt left.
    let second = world.proxy(&storage, settings);
    let gos: Vec<Arc<GoEnv>> = gos
        .into_iter()
        .map(|go| {
            let mut go = Arc::try_unwrap(go).unwrap_or_else(|_| panic!("one owner"));
            go.goproxy = second.url().to_string();
            Arc::new(go)
        })
        .collect();
    let mut after = Tally::default();
    for (o, b, t) in go_clients(&world, &gos).await {
        assert_eq!(o, Outcome::Correct);
        after.add(&o, b, t);
    }
    assert_eq!(
        world.assert_storage_whole(&storage).await,
        world.modules.len()
    );
    phase
        .record("after restart", 0, &after, Some(second.url()))
        .await;
}
