//! athens-operator surviving faults of the real control plane: the API server stopped and
//! started again, etcd restarted, the operator binary killed with SIGKILL in the middle of
//! applying, a watch expired (410 Gone). In each case every proxy converges to Ready and no
//! object is duplicated or lost.
//!
//! Each test owns a whole cluster (`DedicatedCluster`: its own state folder and ports), since it
//! stops the API server or etcd under it. The tests run one at a time (a lock), so at most one
//! extra control plane shares the machine's cores with the rest of the suite.
//!
//! The operator is the real binary, run as a Deployment would: under a supervisor that starts it
//! again whenever it exits (as the kubelet does), with leader election on its Lease.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use athens_e2e::cluster::{DedicatedCluster, TestCluster, TestNamespace};
use athens_e2e::crd::install_crd;
use athens_e2e::wait::{poll, wait_ready, workspace_bin};
use athens_operator::crd::AthensProxy;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{
    ConfigMap, PersistentVolume, PersistentVolumeClaim, Pod, Service,
};
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Resource, ResourceExt};

const TIMEOUT: Duration = Duration::from_secs(180);
/// Proxies per test: object-store ones, and filesystem ones whose claims the cluster provisions.
const S3_PROXIES: usize = 6;
const FILESYSTEM_PROXIES: usize = 2;

/// One test at a time: each starts a whole control plane. (tokio's lock works across the tests'
/// runtimes, and a failed test does not poison it.)
async fn serial() -> tokio::sync::MutexGuard<'static, ()> {
    static LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    LOCK.lock().await
}

/// The operator binary, started again by a thread whenever it exits, until dropped.
struct Supervised {
    stop: Arc<AtomicBool>,
    child: Arc<Mutex<Option<std::process::Child>>>,
    starts: Arc<AtomicUsize>,
    thread: Option<std::thread::JoinHandle<()>>,
    log: PathBuf,
}

impl Supervised {
    fn start(
        cluster: &TestCluster,
        ns: &str,
        log: &Path,
        leader_elect: bool,
    ) -> Result<Supervised> {
        let bin = workspace_bin("athens-operator")?;
        let mut cmd = std::process::Command::new(bin);
        cmd.args([
            "run",
            "--leader-elect",
            if leader_elect { "true" } else { "false" },
        ]);
        cmd.args([
            "--namespace",
            ns,
            "--lease-namespace",
            ns,
            // One identity, as a restarted container of the same pod: it takes its Lease back.
            "--identity",
            "survival",
            "--http-addr",
            "127.0.0.1:0",
        ])
        .env("KUBECONFIG", &cluster.kubeconfig)
        // The watcher's debug lines say when a watch expired (410) and was started over.
        .env("RUST_LOG", "info,kube_runtime::watcher=debug")
        .env("NO_COLOR", "1");
        let stop = Arc::new(AtomicBool::new(false));
        let child = Arc::new(Mutex::new(None));
        let starts = Arc::new(AtomicUsize::new(0));
        let log = log.to_path_buf();
        let thread = {
            let (stop, child, starts, log) =
                (stop.clone(), child.clone(), starts.clone(), log.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    let spawned = std::fs::OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(&log)
                        .and_then(|f| {
                            cmd.stdout(f.try_clone()?).stderr(f).stdin(Stdio::null());
                            cmd.spawn()
                        });
                    match spawned {
                        Ok(c) => *child.lock().unwrap_or_else(|e| e.into_inner()) = Some(c),
                        Err(_) => return,
                    }
                    starts.fetch_add(1, Ordering::SeqCst);
                    loop {
                        std::thread::sleep(Duration::from_millis(100));
                        let mut guard = child.lock().unwrap_or_else(|e| e.into_inner());
                        let Some(c) = guard.as_mut() else { break };
                        if !matches!(c.try_wait(), Ok(None)) {
                            break;
                        }
                    }
                    // The kubelet's restart delay, shortened.
                    std::thread::sleep(Duration::from_millis(500));
                }
            })
        };
        Ok(Supervised {
            stop,
            child,
            starts,
            thread: Some(thread),
            log,
        })
    }

    /// SIGKILL, as an OOM kill or a node failure would: no Lease release, no cleanup.
    fn kill(&self) -> Result<()> {
        let mut guard = self.child.lock().unwrap_or_else(|e| e.into_inner());
        let c = guard.as_mut().context("operator not running")?;
        c.kill()?;
        c.wait()?;
        Ok(())
    }

    fn starts(&self) -> usize {
        self.starts.load(Ordering::SeqCst)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Supervised {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(c) = self
            .child
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_mut()
        {
            let _ = c.kill();
            let _ = c.wait();
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A test's world: its own cluster, namespace, CRD and supervised operator.
struct World {
    ns: TestNamespace,
    operator: Supervised,
    _dir: tempfile::TempDir,
    // Last: the cluster goes down after everything using it.
    cluster: DedicatedCluster,
}

impl World {
    /// With `leader_elect`, the operator runs as the chart deploys it; without, it never exits
    /// for a Lease it could not renew (for a test that needs one process throughout).
    async fn start(name: &str, leader_elect: bool) -> Result<World> {
        let cluster = DedicatedCluster::start(name)?;
        let ns = TestNamespace::new_in(cluster.cluster(), name).await?;
        install_crd(&ns.client()).await?;
        let dir = tempfile::tempdir()?;
        let operator = Supervised::start(
            cluster.cluster(),
            ns.name(),
            &dir.path().join("operator.log"),
            leader_elect,
        )?;
        Ok(World {
            ns,
            operator,
            _dir: dir,
            cluster,
        })
    }

    fn cluster(&self) -> &TestCluster {
        self.cluster.cluster()
    }

    fn api<K>(&self) -> Api<K>
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
    {
        Api::namespaced(self.ns.client(), self.ns.name())
    }

    /// Creates the test's proxies (all at once, as `kubectl apply` of a folder would).
    async fn create_proxies(&self) -> Result<Vec<String>> {
        let mut names = Vec::new();
        for i in 0..S3_PROXIES + FILESYSTEM_PROXIES {
            let (name, storage) = if i < S3_PROXIES {
                let name = format!("s3-{i}");
                let storage = serde_json::json!({"s3": {"bucket": "go-modules", "prefix": name, "region": "us-east-1"}});
                (name, storage)
            } else {
                (
                    format!("fs-{i}"),
                    serde_json::json!({"filesystem": {"size": "1Gi"}}),
                )
            };
            self.create_proxy(&name, storage).await?;
            names.push(name);
        }
        Ok(names)
    }

    async fn create_proxy(&self, name: &str, storage: serde_json::Value) -> Result<()> {
        let p: AthensProxy = serde_json::from_value(serde_json::json!({
            "apiVersion": "athens.dev/v1alpha1", "kind": "AthensProxy",
            "metadata": {"name": name},
            "spec": {"storage": storage, "upstream": {"goproxy": "off"}},
        }))?;
        self.api::<AthensProxy>()
            .create(&PostParams::default(), &p)
            .await?;
        Ok(())
    }

    /// Waits until the operator has begun: at least one child Deployment exists.
    async fn wait_for_first_child(&self) -> Result<()> {
        let deployments = self.api::<Deployment>();
        poll(TIMEOUT, "the operator's first Deployment", || async {
            Ok(!deployments
                .list(&ListParams::default())
                .await?
                .items
                .is_empty())
        })
        .await
    }

    /// Every proxy in `names` (and no other) Ready, each with exactly its own Deployment,
    /// Service, ConfigMap and, for filesystem storage, one claim Bound to one provisioned
    /// volume, and as many running pods as replicas. Returns the UID of every object involved,
    /// by kind/name, for comparisons across a fault.
    async fn converged(&self, names: &[String]) -> Result<BTreeMap<String, String>> {
        self.converged_within(names, TIMEOUT).await
    }

    async fn converged_within(
        &self,
        names: &[String],
        timeout: Duration,
    ) -> Result<BTreeMap<String, String>> {
        let proxies = self.api::<AthensProxy>();
        for name in names {
            wait_ready(timeout, &proxies, name)
                .await
                .with_context(|| self.context())?;
        }
        // Settled: every Deployment's rollout complete, every claim bound.
        let deployments = self.api::<Deployment>();
        let claims = self.api::<PersistentVolumeClaim>();
        poll(TIMEOUT, "rollouts complete and claims bound", || async {
            let ds = deployments.list(&ListParams::default()).await?.items;
            let done = ds.iter().all(|d| {
                let want = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
                d.status.as_ref().is_some_and(|s| {
                    s.observed_generation == d.metadata.generation
                        && s.updated_replicas == Some(want)
                        && s.ready_replicas == Some(want)
                        && s.replicas == Some(want)
                })
            });
            let cs = claims.list(&ListParams::default()).await?.items;
            let bound = cs
                .iter()
                .all(|c| c.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Bound"));
            Ok(done && bound)
        })
        .await
        .with_context(|| self.context())?;

        let mut uids = BTreeMap::new();
        let live = proxies.list(&ListParams::default()).await?.items;
        let live_names: BTreeSet<String> = live.iter().map(|p| p.name_any()).collect();
        let want: BTreeSet<String> = names.iter().cloned().collect();
        assert_eq!(live_names, want, "AthensProxy resources");
        let by_uid: BTreeMap<String, String> = live
            .iter()
            .map(|p| (p.uid().unwrap_or_default(), p.name_any()))
            .collect();
        for p in &live {
            uids.insert(
                format!("AthensProxy/{}", p.name_any()),
                p.uid().unwrap_or_default(),
            );
        }

        // Children: exactly one of each kind per proxy, named for it, controlled by it.
        let mut check = |kind: &str,
                         objs: Vec<(String, Option<String>, String)>,
                         suffix: &str,
                         want: &BTreeSet<String>| {
            let mut seen = BTreeSet::new();
            for (name, owner, uid) in objs {
                let owner = owner.with_context(|| format!("{kind} {name} has no controller"))?;
                let proxy = by_uid
                    .get(&owner)
                    .with_context(|| format!("{kind} {name} controlled by a proxy that is gone"))?;
                assert_eq!(name, format!("{proxy}{suffix}"), "{kind} of {proxy}");
                assert!(seen.insert(proxy.clone()), "two {kind}s for {proxy}");
                uids.insert(format!("{kind}/{name}"), uid);
            }
            assert_eq!(&seen, want, "proxies with a {kind}");
            anyhow::Ok(())
        };
        let ds = deployments.list(&ListParams::default()).await?.items;
        check("Deployment", ids(&ds), "", &want)?;
        let ss = self
            .api::<Service>()
            .list(&ListParams::default())
            .await?
            .items;
        check("Service", ids(&ss), "", &want)?;
        let cms: Vec<ConfigMap> = self
            .api::<ConfigMap>()
            .list(&ListParams::default())
            .await?
            .items
            .into_iter()
            .filter(|c| c.name_any() != "kube-root-ca.crt")
            .collect();
        check("ConfigMap", ids(&cms), "-config", &want)?;
        let filesystem: BTreeSet<String> = names
            .iter()
            .filter(|n| n.starts_with("fs-"))
            .cloned()
            .collect();
        let cs = claims.list(&ListParams::default()).await?.items;
        check("PersistentVolumeClaim", ids(&cs), "-storage", &filesystem)?;

        // One provisioned volume per claim, none left over or made twice.
        let pvs = Api::<PersistentVolume>::all(self.ns.client())
            .list(&ListParams::default())
            .await?
            .items;
        let mut claimed = BTreeSet::new();
        for pv in &pvs {
            let claim = pv.spec.as_ref().and_then(|s| s.claim_ref.as_ref());
            let claim = claim.and_then(|r| r.name.clone()).unwrap_or_default();
            assert_eq!(
                pv.status.as_ref().and_then(|s| s.phase.as_deref()),
                Some("Bound"),
                "volume {} for {claim}",
                pv.name_any()
            );
            assert!(claimed.insert(claim.clone()), "two volumes for {claim}");
        }
        let want_claims: BTreeSet<String> =
            filesystem.iter().map(|n| format!("{n}-storage")).collect();
        assert_eq!(claimed, want_claims, "claims with a volume");

        // As many running pods as replicas, each of a current ReplicaSet's template.
        let pods = self.api::<Pod>().list(&ListParams::default()).await?.items;
        let running: Vec<&Pod> = pods
            .iter()
            .filter(|p| p.metadata.deletion_timestamp.is_none())
            .collect();
        assert_eq!(
            running.len(),
            names.len(),
            "pods: {:?}",
            running.iter().map(|p| p.name_any()).collect::<Vec<_>>()
        );
        Ok(uids)
    }

    /// What to show when convergence fails: the operator's restarts and last log lines.
    fn context(&self) -> String {
        let log = self.operator.log();
        let tail: Vec<&str> = log.lines().rev().take(15).collect();
        format!(
            "operator started {} times; last log lines, newest first:\n{}",
            self.operator.starts(),
            tail.join("\n")
        )
    }

    async fn finish(self) -> Result<()> {
        let World {
            ns,
            operator,
            _dir,
            cluster,
        } = self;
        drop(operator);
        drop(ns);
        cluster.down()
    }
}

/// Name, controller's UID (from the owner references) and UID of each object.
fn ids<K: ResourceExt>(objs: &[K]) -> Vec<(String, Option<String>, String)> {
    objs.iter()
        .map(|o| {
            let controller = o
                .owner_references()
                .iter()
                .find(|r| r.controller == Some(true));
            (
                o.name_any(),
                controller.map(|r| r.uid.clone()),
                o.uid().unwrap_or_default(),
            )
        })
        .collect()
}

/// Stops one component of the control plane while the operator is creating the children of
/// fresh proxies, keeps it away for `down_for`, starts it again, and waits for convergence.
async fn outage_during_reconciles(test: &str, component: &str, down_for: Duration) -> Result<()> {
    let _serial = serial().await;
    let w = World::start(test, true).await?;
    w.operator_leads().await?;
    let names = w.create_proxies().await?;
    w.wait_for_first_child().await?;
    w.cluster().component("stop", component)?;
    tokio::time::sleep(down_for).await;
    w.cluster().component("start", component)?;
    w.converged(&names).await?;
    w.finish().await
}

#[tokio::test]
async fn api_server_stopped_and_started_during_reconciles() -> Result<()> {
    outage_during_reconciles(
        "survive-apiserver",
        "kube-apiserver",
        Duration::from_secs(8),
    )
    .await
}

#[tokio::test]
async fn etcd_restarted_during_reconciles() -> Result<()> {
    outage_during_reconciles("survive-etcd", "etcd", Duration::from_secs(5)).await
}

/// SIGKILL while the operator is applying children, three times at different points; each
/// time it is started again (same identity, so it takes its Lease back at once) and finishes.
#[tokio::test]
async fn operator_killed_in_the_middle_of_applying() -> Result<()> {
    let _serial = serial().await;
    let w = World::start("survive-kill", true).await?;
    w.operator_leads().await?;
    let names = w.create_proxies().await?;
    w.wait_for_first_child().await?;
    w.operator.kill()?;
    // Again once it has come back and made progress, and once more at once.
    poll(TIMEOUT, "the operator to start again", || async {
        Ok(w.operator.starts() >= 2)
    })
    .await?;
    let deployments = w.api::<Deployment>();
    let before = deployments.list(&ListParams::default()).await?.items.len();
    poll(TIMEOUT, "more Deployments", || async {
        let n = deployments.list(&ListParams::default()).await?.items.len();
        Ok(n > before || n == names.len())
    })
    .await?;
    w.operator.kill()?;
    poll(TIMEOUT, "the operator to start again", || async {
        Ok(w.operator.starts() >= 3)
    })
    .await?;
    w.operator.kill()?;
    // The last kill may come after everything converged: wait for the fourth process (the
    // supervisor restarts after 500 ms) so convergence is checked against it.
    poll(TIMEOUT, "the operator to start a fourth time", || async {
        Ok(w.operator.starts() >= 4)
    })
    .await?;
    w.converged(&names).await?;
    w.finish().await
}

/// The operator's watches expire while the API server is away (etcd compacted past every
/// resourceVersion it has seen); when it is back, the resumed watches get 410 Gone and the
/// operator must list again: changes made meanwhile are all acted on, and nothing it had
/// already made is recreated.
#[tokio::test]
async fn expired_watches_are_listed_again() -> Result<()> {
    let _serial = serial().await;
    // No leader election: an API server away for longer than the Lease would make the leader
    // exit, and a new process lists anyway; this test needs the same watches throughout.
    let w = World::start("survive-410", false).await?;
    let mut names = w.create_proxies().await?;
    let before = w.converged(&names).await?;

    w.cluster().component("stop", "kube-apiserver")?;
    compact_etcd(w.cluster()).await?;
    w.cluster().component("start", "kube-apiserver")?;
    // Changes the operator can only learn of by listing again: a spec change, a new proxy.
    let proxies = w.api::<AthensProxy>();
    proxies
        .patch(
            "s3-0",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"spec": {"upstream": {"goproxy": "direct"}}})),
        )
        .await?;
    w.create_proxy(
        "s3-new",
        serde_json::json!({"s3": {"bucket": "go-modules", "prefix": "new"}}),
    )
    .await?;
    names.push("s3-new".into());
    // kube-runtime's Controller puts one backoff on the merged stream of all its watches, so the
    // 410 of each of its six watches (and the connection errors before) waits in turn: with the
    // default 30 s cap that took 3 to 5.5 minutes; the operator caps it at 5 s
    // (controller.rs). The limit stays generous for a busy machine; the time is printed.
    let changed = std::time::Instant::now();
    let after = w.converged_within(&names, Duration::from_secs(300)).await?;
    eprintln!(
        "converged {:?} after the API server came back with expired watches",
        changed.elapsed()
    );
    let cm = w.api::<ConfigMap>().get("s3-0-config").await?;
    assert!(
        cm.data.unwrap_or_default()["config.toml"].contains("goproxy = \"direct\""),
        "the spec change was not applied"
    );
    assert_eq!(w.operator.starts(), 1, "{}", w.context());
    let log = w.operator.log();
    assert!(
        log.lines().any(|l| l.contains("code: 410")),
        "no watch of the operator expired (410): the test did not test it\n{}",
        w.context()
    );
    // Nothing the operator had made was deleted and made again.
    for (key, uid) in &before {
        assert_eq!(after.get(key), Some(uid), "{key} was recreated");
    }
    w.finish().await
}

impl World {
    /// Waits until the operator holds its Lease (so a fault hits a working leader).
    async fn operator_leads(&self) -> Result<()> {
        let leases = self.api::<k8s_openapi::api::coordination::v1::Lease>();
        poll(TIMEOUT, "the operator to lead", || async {
            let lease = leases.get_opt("athens-operator").await?;
            Ok(lease
                .and_then(|l| l.spec?.holder_identity)
                .is_some_and(|h| h == "survival"))
        })
        .await
        .with_context(|| self.context())
    }
}

/// With the API server stopped: one write to etcd (a key outside Kubernetes' prefix), then a
/// compaction at that revision, so every resourceVersion a client has seen is compacted away.
/// Through etcd's JSON gateway on its client port.
async fn compact_etcd(cluster: &TestCluster) -> Result<()> {
    use base64::Engine as _;
    let port = cluster.ports()?["etcd_port"];
    let http = reqwest::Client::new();
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let put: serde_json::Value = http
        .post(format!("http://127.0.0.1:{port}/v3/kv/put"))
        .json(&serde_json::json!({"key": b64("/athens-e2e/bump"), "value": b64("1")}))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let revision = put["header"]["revision"]
        .as_str()
        .context("etcd put without a revision")?
        .to_string();
    let resp = http
        .post(format!("http://127.0.0.1:{port}/v3/kv/compaction"))
        .json(&serde_json::json!({"revision": revision, "physical": true}))
        .send()
        .await?;
    if !resp.status().is_success() {
        bail!("etcd compaction: {} {}", resp.status(), resp.text().await?);
    }
    Ok(())
}
