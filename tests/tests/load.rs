//! A burst on a cold proxy: 100 `go mod download` processes at once, each with its own module
//! cache, asking the real proxy binary for the same module graph. Each version must be fetched
//! from upstream once, and every client must end with the bytes the checksum database signed.
//! Writes its figures (p50/p99 per client) for docs/reliability.md; no timing is asserted.

use athens_e2e::gocmd::GoEnv;
use athens_e2e::reliability::{ProxyFigures, Record, Tally};
use athens_e2e::upstream::Fault;
use athens_e2e::world::{StorageSpec, World, client_root, graph};
use std::sync::Arc;
use std::time::{Duration, Instant};

const CLIENTS: usize = 100;

/// How many go processes run at the same moment: all of them unless
/// `ATHENS_LOAD_AT_ONCE` says the machine cannot take it.
fn at_once() -> usize {
    std::env::var("ATHENS_LOAD_AT_ONCE")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or(CLIENTS)
}

#[tokio::test(flavor = "multi_thread")]
async fn hundred_go_clients_on_a_cold_proxy() {
    let started = Instant::now();
    // 10 modules, 15 versions, each requiring the next.
    let world = Arc::new(World::new(graph(10, 64 << 10)).await);
    // An upstream round trip like a real one, so the burst arrives while fills are running.
    world
        .upstream
        .fault("", Fault::Delay(Duration::from_millis(100)));
    let storage_dir = tempfile::tempdir().unwrap();
    let storage = StorageSpec::file(storage_dir.path());
    let proxy = world.proxy(&storage, "");
    let root = client_root();
    let gos: Vec<Arc<GoEnv>> = (0..CLIENTS)
        .map(|_| Arc::new(GoEnv::new_in(&root, proxy.url(), &world.sumdb.key)))
        .collect();

    let gate = Arc::new(tokio::sync::Semaphore::new(at_once()));
    let burst = Instant::now();
    let runs: Vec<_> = gos
        .iter()
        .map(|go| {
            let (w, go, gate) = (world.clone(), go.clone(), gate.clone());
            tokio::spawn(async move {
                let _permit = gate.acquire_owned().await.expect("semaphore");
                tokio::task::spawn_blocking(move || w.go_download_timed(&go))
                    .await
                    .expect("go client")
            })
        })
        .collect();
    let mut tally = Tally::default();
    for r in runs {
        let (o, b, t) = r.await.expect("client task");
        tally.add(&o, b, t);
    }
    let burst_seconds = burst.elapsed().as_secs_f64();

    assert_eq!(tally.corrupt_served, 0, "{:?}", tally.samples);
    assert_eq!(
        tally.correct, CLIENTS,
        "every client gets the signed bytes: {:?}",
        tally.samples
    );
    assert_eq!(
        tally.bytes_verified,
        CLIENTS as u64
            * world
                .modules
                .iter()
                .map(|m| world.zip(m).len() as u64)
                .sum::<u64>()
    );
    world.assert_fetched_once();
    assert_eq!(
        world.assert_storage_whole(&storage).await,
        world.modules.len()
    );

    let fault = format!(
        "none: {CLIENTS} go mod download clients ({} at once) on a cold proxy, 10 modules / 15 versions, upstream answers after 100 ms; burst took {burst_seconds:.1} s",
        at_once().min(CLIENTS)
    );
    Record {
        test: "go_clients_burst",
        phase: "cold proxy",
        fault: &fault,
        faults_injected: 0,
        tally: &tally,
        p50_ms: tally.quantile_ms(0.5),
        p99_ms: tally.quantile_ms(0.99),
        upstream_fetches: world.upstream_fetches(),
        proxy: ProxyFigures::read(proxy.url()).await,
        seconds: started.elapsed().as_secs_f64(),
    }
    .write();
}
