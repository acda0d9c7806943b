//! athens-operator against the real control plane (tier 3): etcd, kube-apiserver,
//! kube-controller-manager, kube-scheduler and kwok, started by `tests/cluster/up`.
//!
//! Most tests run the controller in-process, scoped to the test's own namespace (so tests run
//! in parallel); one runs the real `athens-operator run` binary, twice, for leader election,
//! `/metrics` and the probes.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use athens_e2e::cluster::{DedicatedCluster, TestCluster, TestNamespace};
use athens_e2e::crd::install_crd;
use athens_e2e::wait::{poll, repo, script_output, wait_ready, workspace_bin};
use athens_operator::crd::{AthensProxy, DEGRADED, MONITORING, READY};
use athens_operator::metrics::Metrics;
use athens_operator::reconcile::{self, Context};
use athens_operator::render::{Settings, template_hash};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{
    ConfigMap, PersistentVolume, PersistentVolumeClaim, Secret, Service,
};
use k8s_openapi::api::networking::v1::{Ingress, NetworkPolicy};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::runtime::events::{Recorder, Reporter};
use kube::{Api, ResourceExt};
use tokio::sync::oneshot;

const TIMEOUT: Duration = Duration::from_secs(90);

/// The controller, running in this test's runtime, for one namespace.
struct Operator {
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
    metrics: Metrics,
    ctx: std::sync::Arc<Context>,
}

impl Operator {
    async fn start(ns: &TestNamespace, resync: Duration) -> Result<Operator> {
        install_crd(&ns.client()).await?;
        let client = ns.client();
        let metrics = Metrics::new();
        let ctx = std::sync::Arc::new(Context::new(
            client.clone(),
            Recorder::new(
                client.clone(),
                Reporter::from("athens-operator-test".to_string()),
            ),
            metrics.clone(),
            Settings::default(),
            resync,
        ));
        let (tx, rx) = oneshot::channel();
        let task = tokio::spawn(reconcile::run(
            ctx.clone(),
            vec![ns.name().to_string()],
            async move {
                let _ = rx.await;
            },
        ));
        Ok(Operator {
            stop: Some(tx),
            task,
            metrics,
            ctx,
        })
    }

    async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        let _ = tokio::time::timeout(Duration::from_secs(10), &mut self.task).await;
    }
}

fn kubectl(ns: &str, args: &[&str], stdin: Option<&str>) -> Result<std::process::Output> {
    let mut cmd = TestCluster::get().command("kubectl");
    cmd.arg("-n").arg(ns).args(args);
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn().context("running kubectl")?;
    if let Some(input) = stdin {
        use std::io::Write;
        child
            .stdin
            .take()
            .context("kubectl stdin")?
            .write_all(input.as_bytes())?;
    }
    Ok(child.wait_with_output()?)
}

fn kubectl_apply_file(ns: &str, file: &Path) -> Result<()> {
    let out = kubectl(ns, &["apply", "-f", &file.to_string_lossy()], None)?;
    if !out.status.success() {
        bail!(
            "kubectl apply -f {} failed: {}",
            file.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

async fn proxy(api: &Api<AthensProxy>, name: &str) -> Result<AthensProxy> {
    Ok(api.get(name).await?)
}

fn condition(p: &AthensProxy, type_: &str) -> Option<(String, String, String)> {
    p.status
        .as_ref()?
        .condition(type_)
        .map(|c| (c.status.clone(), c.reason.clone(), c.message.clone()))
}

/// Every file in examples/: each has a test below that applies it as it is and waits until its
/// proxy is Ready (a new example without one fails `every_example_file_has_a_readiness_test`).
const EXAMPLES: &[&str] = &[
    "azure.yaml",
    "filesystem.yaml",
    "gcs.yaml",
    "private-modules.yaml",
    "s3.yaml",
];

#[test]
fn every_example_file_has_a_readiness_test() -> Result<()> {
    let mut files: Vec<String> = std::fs::read_dir(repo().join("examples"))?
        .map(|e| Ok(e?.file_name().to_string_lossy().into_owned()))
        .collect::<Result<_>>()?;
    files.sort();
    assert_eq!(files, EXAMPLES);
    Ok(())
}

/// Applies one example file as it is and waits for its proxy to be Ready with a URL. A claim
/// the operator creates is provisioned and bound by the cluster (the default StorageClass and
/// the controller-manager's provisioner `up` enables), as on a real cluster: no volume is made
/// by hand.
async fn example_becomes_ready(file: &str, name: &str) -> Result<()> {
    example_becomes_ready_after(&[], file, name).await
}

/// The same, after the kubectl command the example's comment asks a user to run first.
async fn example_becomes_ready_after(first: &[&str], file: &str, name: &str) -> Result<()> {
    assert!(EXAMPLES.contains(&file), "{file} is not in EXAMPLES");
    let ns = TestNamespace::new("example").await?;
    let op = Operator::start(&ns, Duration::from_secs(30)).await?;
    if !first.is_empty() {
        let out = kubectl(ns.name(), first, None)?;
        anyhow::ensure!(
            out.status.success(),
            "kubectl {first:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    kubectl_apply_file(ns.name(), &repo().join("examples").join(file))?;
    let api: Api<AthensProxy> = Api::namespaced(ns.client(), ns.name());
    let p = wait_ready(TIMEOUT, &api, name).await?;
    let url = p
        .status
        .as_ref()
        .and_then(|s| s.url.clone())
        .unwrap_or_default();
    assert_eq!(
        url,
        format!("http://{name}.{}.svc.cluster.local", ns.name())
    );

    let d = Api::<Deployment>::namespaced(ns.client(), ns.name())
        .get(name)
        .await?;
    let owner = &d.owner_references()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.name.as_str()),
        ("AthensProxy", name)
    );
    assert_eq!(Some(owner.uid.clone()), p.uid());
    assert_eq!(owner.controller, Some(true));
    Api::<Service>::namespaced(ns.client(), ns.name())
        .get(name)
        .await?;
    let cm = Api::<ConfigMap>::namespaced(ns.client(), ns.name())
        .get(&format!("{name}-config"))
        .await?;
    let toml = &cm.data.context("configmap without data")?["config.toml"];
    athens_proxy::config::Config::from_toml(toml, "configmap")?.validate()?;
    if p.spec.storage.filesystem.is_some() {
        claim_is_bound_to_a_provisioned_volume(&ns, &format!("{name}-storage")).await?;
    }
    op.stop().await;
    ns.cleanup().await
}

/// The claim is Bound, through the default StorageClass, to a volume the cluster provisioned.
async fn claim_is_bound_to_a_provisioned_volume(ns: &TestNamespace, claim: &str) -> Result<()> {
    let pvc = Api::<PersistentVolumeClaim>::namespaced(ns.client(), ns.name())
        .get(claim)
        .await?;
    let spec = pvc.spec.context("claim without spec")?;
    assert_eq!(spec.storage_class_name.as_deref(), Some("standard"));
    assert_eq!(
        pvc.status.and_then(|s| s.phase).as_deref(),
        Some("Bound"),
        "claim {claim}"
    );
    let volume = spec.volume_name.context("bound claim without a volume")?;
    let pv = Api::<PersistentVolume>::all(ns.client())
        .get(&volume)
        .await?;
    let claim_ref = pv.spec.as_ref().and_then(|s| s.claim_ref.clone());
    assert_eq!(
        claim_ref.and_then(|r| r.name).as_deref(),
        Some(claim),
        "volume {volume}"
    );
    assert_eq!(
        pv.annotations()
            .get("pv.kubernetes.io/provisioned-by")
            .map(String::as_str),
        Some("kubernetes.io/host-path"),
        "volume {volume}"
    );
    Ok(())
}

#[tokio::test]
async fn example_filesystem_becomes_ready() -> Result<()> {
    example_becomes_ready("filesystem.yaml", "gomods").await
}

#[tokio::test]
async fn example_s3_becomes_ready() -> Result<()> {
    example_becomes_ready("s3.yaml", "gomods-s3").await
}

#[tokio::test]
async fn example_gcs_becomes_ready() -> Result<()> {
    example_becomes_ready("gcs.yaml", "gomods-gcs").await
}

#[tokio::test]
async fn example_azure_becomes_ready() -> Result<()> {
    example_becomes_ready("azure.yaml", "gomods-azure").await
}

#[tokio::test]
async fn example_private_modules_becomes_ready() -> Result<()> {
    // As the example's comment says: the .netrc Secret first.
    let netrc = "--from-literal=netrc=machine git.corp.example login ci-bot password token";
    example_becomes_ready_after(
        &["create", "secret", "generic", "git-netrc", netrc],
        "private-modules.yaml",
        "gomods-private",
    )
    .await
}

/// Changing the spec or a referenced Secret rolls the pod template; scaling does not.
#[tokio::test]
async fn spec_and_secret_changes_roll_the_pod_template() -> Result<()> {
    let ns = TestNamespace::new("roll").await?;
    let op = Operator::start(&ns, Duration::from_secs(30)).await?;
    kubectl_apply_file(ns.name(), &repo().join("examples/s3.yaml"))?;
    let api: Api<AthensProxy> = Api::namespaced(ns.client(), ns.name());
    let deployments: Api<Deployment> = Api::namespaced(ns.client(), ns.name());
    wait_ready(TIMEOUT, &api, "gomods-s3").await?;
    let first = template_hash(&deployments.get("gomods-s3").await?).context("no hash")?;

    // A spec change.
    api.patch(
        "gomods-s3",
        &PatchParams::default(),
        &Patch::Merge(serde_json::json!({"spec": {"upstream": {"goproxy": "off"}}})),
    )
    .await?;
    poll(
        TIMEOUT,
        "pod template hash to change after a spec change",
        || async {
            let h = template_hash(&deployments.get("gomods-s3").await?).unwrap_or_default();
            Ok(h != first)
        },
    )
    .await?;
    let second = template_hash(&deployments.get("gomods-s3").await?).context("no hash")?;
    let cm = Api::<ConfigMap>::namespaced(ns.client(), ns.name())
        .get("gomods-s3-config")
        .await?;
    assert!(cm.data.unwrap_or_default()["config.toml"].contains("goproxy = \"off\""));

    // A rotated credential.
    Api::<Secret>::namespaced(ns.client(), ns.name())
        .patch(
            "gomods-s3",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"stringData": {"AWS_SECRET_ACCESS_KEY": "rotated"}})),
        )
        .await?;
    poll(
        TIMEOUT,
        "pod template hash to change after a Secret change",
        || async {
            let h = template_hash(&deployments.get("gomods-s3").await?).unwrap_or_default();
            Ok(h != second && h != first)
        },
    )
    .await?;
    wait_ready(TIMEOUT, &api, "gomods-s3").await?;
    op.stop().await;
    ns.cleanup().await
}

#[tokio::test]
async fn deleting_the_resource_collects_its_children() -> Result<()> {
    let ns = TestNamespace::new("gc").await?;
    let op = Operator::start(&ns, Duration::from_secs(30)).await?;
    kubectl_apply_file(ns.name(), &repo().join("examples/filesystem.yaml"))?;
    let api: Api<AthensProxy> = Api::namespaced(ns.client(), ns.name());
    wait_ready(TIMEOUT, &api, "gomods").await?;
    api.delete("gomods", &DeleteParams::background()).await?;
    let c = ns.client();
    let n = ns.name().to_string();
    poll(TIMEOUT, "children to be garbage collected", || {
        let (c, n) = (c.clone(), n.clone());
        async move {
            let d = Api::<Deployment>::namespaced(c.clone(), &n)
                .get_opt("gomods")
                .await?;
            let s = Api::<Service>::namespaced(c.clone(), &n)
                .get_opt("gomods")
                .await?;
            let cm = Api::<ConfigMap>::namespaced(c.clone(), &n)
                .get_opt("gomods-config")
                .await?;
            let pvc = Api::<PersistentVolumeClaim>::namespaced(c.clone(), &n)
                .get_opt("gomods-storage")
                .await?;
            // A claim in use waits for its pod (pvc-protection); being deleted is enough.
            let pvc_going = pvc.is_none_or(|p| p.metadata.deletion_timestamp.is_some());
            Ok(d.is_none() && s.is_none() && cm.is_none() && pvc_going)
        }
    })
    .await?;
    op.stop().await;
    ns.cleanup().await
}

#[tokio::test]
async fn invalid_resources_are_refused_with_the_schemas_message() -> Result<()> {
    let ns = TestNamespace::new("invalid").await?;
    install_crd(&ns.client()).await?;
    let cases = [
        (
            "two storage kinds",
            r#"{"apiVersion":"athens.dev/v1alpha1","kind":"AthensProxy","metadata":{"name":"two"},
               "spec":{"storage":{"filesystem":{},"s3":{"bucket":"b"}},"upstream":{"goproxy":"off"}}}"#,
            "set exactly one of storage.filesystem, storage.s3, storage.gcs, storage.azure or storage.mongodb",
        ),
        (
            "no storage kind",
            r#"{"apiVersion":"athens.dev/v1alpha1","kind":"AthensProxy","metadata":{"name":"none"},
               "spec":{"storage":{},"upstream":{"goproxy":"off"}}}"#,
            "set exactly one of storage.filesystem",
        ),
        (
            "replicas on a ReadWriteOnce volume",
            r#"{"apiVersion":"athens.dev/v1alpha1","kind":"AthensProxy","metadata":{"name":"rwo"},
               "spec":{"replicas":2,"storage":{"filesystem":{}},"upstream":{"goproxy":"off"}}}"#,
            "more than one replica needs shared storage",
        ),
        (
            "empty goproxy",
            r#"{"apiVersion":"athens.dev/v1alpha1","kind":"AthensProxy","metadata":{"name":"empty"},
               "spec":{"storage":{"s3":{"bucket":"b"}},"upstream":{"goproxy":" "}}}"#,
            "upstream.goproxy must not be empty",
        ),
        (
            "missing upstream",
            r#"{"apiVersion":"athens.dev/v1alpha1","kind":"AthensProxy","metadata":{"name":"noup"},
               "spec":{"storage":{"s3":{"bucket":"b"}}}}"#,
            "upstream",
        ),
        (
            "claim with size",
            r#"{"apiVersion":"athens.dev/v1alpha1","kind":"AthensProxy","metadata":{"name":"claim"},
               "spec":{"storage":{"filesystem":{"existingClaim":"x","size":"1Gi"}},"upstream":{"goproxy":"off"}}}"#,
            "existingClaim cannot be combined",
        ),
        (
            "a disruption budget with both bounds",
            r#"{"apiVersion":"athens.dev/v1alpha1","kind":"AthensProxy","metadata":{"name":"pdb"},
               "spec":{"storage":{"s3":{"bucket":"b"}},"upstream":{"goproxy":"off"},
                       "podDisruptionBudget":{"minAvailable":1,"maxUnavailable":"50%"}}}"#,
            "set minAvailable or maxUnavailable, not both",
        ),
        (
            "autoscaling min above max",
            r#"{"apiVersion":"athens.dev/v1alpha1","kind":"AthensProxy","metadata":{"name":"hpa"},
               "spec":{"storage":{"s3":{"bucket":"b"}},"upstream":{"goproxy":"off"},
                       "resources":{"requests":{"cpu":"100m"}},
                       "autoscaling":{"minReplicas":3,"maxReplicas":2}}}"#,
            "minReplicas must not exceed maxReplicas",
        ),
        (
            "autoscaling without a CPU request",
            r#"{"apiVersion":"athens.dev/v1alpha1","kind":"AthensProxy","metadata":{"name":"hpacpu"},
               "spec":{"storage":{"s3":{"bucket":"b"}},"upstream":{"goproxy":"off"},
                       "autoscaling":{"maxReplicas":2}}}"#,
            "set resources.requests.cpu",
        ),
        (
            "autoscaling on a ReadWriteOnce volume",
            r#"{"apiVersion":"athens.dev/v1alpha1","kind":"AthensProxy","metadata":{"name":"hparwo"},
               "spec":{"storage":{"filesystem":{}},"upstream":{"goproxy":"off"},
                       "resources":{"requests":{"cpu":"100m"}},
                       "autoscaling":{"maxReplicas":2}}}"#,
            "autoscaling to more than one replica needs shared storage",
        ),
        (
            "an ingress host with a scheme",
            r#"{"apiVersion":"athens.dev/v1alpha1","kind":"AthensProxy","metadata":{"name":"ing"},
               "spec":{"storage":{"s3":{"bucket":"b"}},"upstream":{"goproxy":"off"},
                       "ingress":{"host":"https://goproxy.example.com"}}}"#,
            "ingress.host is a host name",
        ),
        (
            "an SSH key without known_hosts",
            r#"{"apiVersion":"athens.dev/v1alpha1","kind":"AthensProxy","metadata":{"name":"sshkh"},
               "spec":{"storage":{"s3":{"bucket":"b"}},"upstream":{"goproxy":"off",
                       "vcs":{"sshKey":{"secretName":"deploy"}}}}}"#,
            "vcs.sshKey needs vcs.knownHosts",
        ),
        (
            "a mirror cache limit that is not a size",
            r#"{"apiVersion":"athens.dev/v1alpha1","kind":"AthensProxy","metadata":{"name":"cache"},
               "spec":{"storage":{"s3":{"bucket":"b"}},"upstream":{"goproxy":"off",
                       "vcs":{"cacheSizeLimit":"2GB"}}}}"#,
            "cacheSizeLimit",
        ),
        (
            "the metrics port on the proxy's own port",
            r#"{"apiVersion":"athens.dev/v1alpha1","kind":"AthensProxy","metadata":{"name":"metrics"},
               "spec":{"storage":{"s3":{"bucket":"b"}},"upstream":{"goproxy":"off"},
                       "access":{"metricsPort":3000}}}"#,
            "3000 is the proxy's own port",
        ),
        (
            "a tracing endpoint without a scheme",
            r#"{"apiVersion":"athens.dev/v1alpha1","kind":"AthensProxy","metadata":{"name":"otlp"},
               "spec":{"storage":{"s3":{"bucket":"b"}},"upstream":{"goproxy":"off"},
                       "tracing":{"otlpEndpoint":"otel-collector:4318"}}}"#,
            "tracing.otlpEndpoint must be an http:// or https:// URL",
        ),
        (
            "zip redirects on a volume",
            r#"{"apiVersion":"athens.dev/v1alpha1","kind":"AthensProxy","metadata":{"name":"zipfs"},
               "spec":{"storage":{"filesystem":{},"zipRedirectSeconds":60},"upstream":{"goproxy":"off"}}}"#,
            "storage.zipRedirectSeconds needs storage.s3, storage.gcs or storage.azure",
        ),
        (
            "zip redirects longer than S3 allows",
            r#"{"apiVersion":"athens.dev/v1alpha1","kind":"AthensProxy","metadata":{"name":"ziplong"},
               "spec":{"storage":{"s3":{"bucket":"b"},"zipRedirectSeconds":604801},"upstream":{"goproxy":"off"}}}"#,
            "zipRedirectSeconds",
        ),
        (
            "a zip cache on a volume",
            r#"{"apiVersion":"athens.dev/v1alpha1","kind":"AthensProxy","metadata":{"name":"zipcachefs"},
               "spec":{"storage":{"filesystem":{},"zipCacheSizeLimit":"1Gi"},"upstream":{"goproxy":"off"}}}"#,
            "storage.zipCacheSizeLimit is for buckets (s3, gcs, azure, mongodb); filesystem storage is local already",
        ),
        (
            "a zip cache limit that is not a size",
            r#"{"apiVersion":"athens.dev/v1alpha1","kind":"AthensProxy","metadata":{"name":"zipcachegb"},
               "spec":{"storage":{"s3":{"bucket":"b"},"zipCacheSizeLimit":"1GB"},"upstream":{"goproxy":"off"}}}"#,
            "zipCacheSizeLimit",
        ),
    ];
    for (what, doc, message) in cases {
        let out = kubectl(ns.name(), &["apply", "-f", "-"], Some(doc))?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{what}: accepted");
        assert!(stderr.contains(message), "{what}: {stderr}");
    }
    // And valid ones are accepted: the rules do not refuse everything ("0" is the cache off).
    let ok = r#"{"apiVersion":"athens.dev/v1alpha1","kind":"AthensProxy","metadata":{"name":"ok"},
        "spec":{"replicas":3,"storage":{"s3":{"bucket":"b"},"zipCacheSizeLimit":"0"},"upstream":{"goproxy":"off"}}}"#;
    let out = kubectl(ns.name(), &["apply", "-f", "-"], Some(ok))?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    ns.cleanup().await
}

/// The optional objects: created owned by the proxy when the spec asks, changed with it, and
/// deleted when it no longer does.
#[tokio::test]
async fn optional_objects_follow_the_spec() -> Result<()> {
    let ns = TestNamespace::new("extras").await?;
    let op = Operator::start(&ns, Duration::from_secs(30)).await?;
    let n = ns.name();
    let doc = r#"{"apiVersion":"athens.dev/v1alpha1","kind":"AthensProxy","metadata":{"name":"gomods"},
        "spec":{"storage":{"s3":{"bucket":"b"}},"upstream":{"goproxy":"off"},
                "resources":{"requests":{"cpu":"100m"}},
                "podDisruptionBudget":{},
                "autoscaling":{"minReplicas":2,"maxReplicas":5},
                "networkPolicy":{"from":[{"namespaceSelector":{"matchLabels":{"team":"monitoring"}}}]},
                "ingress":{"host":"goproxy.example.com","className":"nginx"}}}"#;
    let out = kubectl(n, &["apply", "-f", "-"], Some(doc))?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let client = ns.client();
    let proxies: Api<AthensProxy> = Api::namespaced(client.clone(), n);
    let pdbs: Api<PodDisruptionBudget> = Api::namespaced(client.clone(), n);
    let hpas: Api<HorizontalPodAutoscaler> = Api::namespaced(client.clone(), n);
    let nps: Api<NetworkPolicy> = Api::namespaced(client.clone(), n);
    let ingresses: Api<Ingress> = Api::namespaced(client.clone(), n);
    poll(TIMEOUT, "the four objects", || async {
        Ok(pdbs.get_opt("gomods").await?.is_some()
            && hpas.get_opt("gomods").await?.is_some()
            && nps.get_opt("gomods").await?.is_some()
            && ingresses.get_opt("gomods").await?.is_some())
    })
    .await?;
    let uid = proxies.get("gomods").await?.uid().context("uid")?;
    let owned = |m: &kube::api::ObjectMeta| {
        m.owner_references
            .iter()
            .flatten()
            .any(|o| o.uid == uid && o.controller == Some(true))
    };
    let pdb = pdbs.get("gomods").await?;
    assert!(owned(&pdb.metadata));
    let hpa = hpas.get("gomods").await?;
    assert!(owned(&hpa.metadata));
    let target = hpa.spec.context("hpa spec")?.scale_target_ref;
    assert_eq!(
        (target.kind.as_str(), target.name.as_str()),
        ("AthensProxy", "gomods")
    );
    let np = nps.get("gomods").await?;
    assert!(owned(&np.metadata));
    let from = np.spec.and_then(|s| s.ingress).context("rules")?[0]
        .from
        .clone()
        .unwrap_or_default();
    assert_eq!(
        from.len(),
        2,
        "opted-in namespaces and the listed peer: {from:?}"
    );
    let ing = ingresses.get("gomods").await?;
    assert!(owned(&ing.metadata));
    assert_eq!(
        ing.spec.and_then(|s| s.ingress_class_name).as_deref(),
        Some("nginx")
    );

    // A change follows; dropping a field deletes its object.
    proxies
        .patch(
            "gomods",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"spec": {
                "podDisruptionBudget": {"minAvailable": "50%"},
                "autoscaling": null, "networkPolicy": null, "ingress": null,
            }})),
        )
        .await?;
    poll(
        TIMEOUT,
        "dropped objects deleted, the budget changed",
        || async {
            let pdb = pdbs.get("gomods").await?;
            let min = pdb.spec.and_then(|s| s.min_available);
            Ok(min == Some(IntOrString::String("50%".into()))
                && hpas.get_opt("gomods").await?.is_none()
                && nps.get_opt("gomods").await?.is_none()
                && ingresses.get_opt("gomods").await?.is_none())
        },
    )
    .await?;
    op.stop().await;
    ns.cleanup().await
}

/// `spec.monitoring` on a cluster of its own: reported as not served until the Prometheus
/// Operator's real CRDs (from its Go module, `tests/peers/prometheus-crds`) are installed, then
/// a ServiceMonitor, switched to a PodMonitor, and deleted when the field goes.
#[tokio::test]
async fn monitor_only_where_the_prometheus_crds_are_served() -> Result<()> {
    let dedicated = tokio::task::spawn_blocking(|| DedicatedCluster::start("monitoring")).await??;
    let cluster = dedicated.cluster().clone();
    let ns = TestNamespace::new_in(&cluster, "monitoring").await?;
    // A short resync: a CRD installed later is noticed without any change to the proxy.
    let op = Operator::start(&ns, Duration::from_secs(5)).await?;
    let client = ns.client();
    let proxies: Api<AthensProxy> = Api::namespaced(client.clone(), ns.name());
    let p: AthensProxy = serde_json::from_value(serde_json::json!({
        "apiVersion": "athens.dev/v1alpha1", "kind": "AthensProxy",
        "metadata": {"name": "gomods"},
        "spec": {"storage": {"s3": {"bucket": "b"}}, "upstream": {"goproxy": "off"},
                 "monitoring": {"interval": "15s"}},
    }))?;
    proxies.create(&PostParams::default(), &p).await?;
    let monitoring_is = |status: &'static str, reason: &'static str| {
        let proxies = proxies.clone();
        async move {
            poll(
                Duration::from_secs(150),
                &format!("Monitoring {reason}"),
                || async {
                    let p = proxies.get("gomods").await?;
                    Ok(condition(&p, MONITORING).is_some_and(|c| c.0 == status && c.1 == reason))
                },
            )
            .await
        }
    };
    monitoring_is("False", "CRDNotServed").await?;

    let crds = script_output(&repo().join("tests/peers/prometheus-crds"))?;
    for file in [
        "monitoring.coreos.com_servicemonitors.yaml",
        "monitoring.coreos.com_podmonitors.yaml",
    ] {
        let out = cluster
            .command("kubectl")
            .args(["apply", "--server-side", "-f"])
            .arg(crds.join(file))
            .output()?;
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    monitoring_is("True", "Created").await?;
    let ar = |kind: &str| {
        kube::api::ApiResource::from_gvk(&kube::core::GroupVersionKind::gvk(
            "monitoring.coreos.com",
            "v1",
            kind,
        ))
    };
    let sms: Api<kube::api::DynamicObject> =
        Api::namespaced_with(client.clone(), ns.name(), &ar("ServiceMonitor"));
    let pms: Api<kube::api::DynamicObject> =
        Api::namespaced_with(client.clone(), ns.name(), &ar("PodMonitor"));
    let sm = sms.get("gomods").await?;
    let uid = proxies.get("gomods").await?.uid().context("uid")?;
    assert!(
        sm.metadata
            .owner_references
            .iter()
            .flatten()
            .any(|o| o.uid == uid),
        "{sm:?}"
    );
    assert_eq!(sm.data["spec"]["endpoints"][0]["interval"], "15s");
    assert_eq!(sm.data["spec"]["endpoints"][0]["port"], "http");

    // A metrics port of its own: the pods and the Service get a `metrics` port, the proxy
    // configuration listens there, and the monitor scrapes it.
    proxies
        .patch(
            "gomods",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"spec": {"access": {"metricsPort": 9090}}})),
        )
        .await?;
    let services: Api<k8s_openapi::api::core::v1::Service> =
        Api::namespaced(client.clone(), ns.name());
    let deployments: Api<k8s_openapi::api::apps::v1::Deployment> =
        Api::namespaced(client.clone(), ns.name());
    let config_maps: Api<k8s_openapi::api::core::v1::ConfigMap> =
        Api::namespaced(client.clone(), ns.name());
    poll(TIMEOUT, "the monitor on the metrics port", || async {
        let sm = sms.get("gomods").await?;
        let svc = services.get("gomods").await?;
        let service_port = svc
            .spec
            .and_then(|s| s.ports)
            .into_iter()
            .flatten()
            .any(|p| p.name.as_deref() == Some("metrics") && p.port == 9090);
        let pod = deployments
            .get("gomods")
            .await?
            .spec
            .and_then(|s| s.template.spec);
        let container_port = pod
            .into_iter()
            .flat_map(|p| p.containers)
            .flat_map(|c| c.ports.unwrap_or_default())
            .any(|p| p.name.as_deref() == Some("metrics") && p.container_port == 9090);
        let configured = config_maps
            .list(&Default::default())
            .await?
            .items
            .iter()
            .flat_map(|c| c.data.iter().flatten())
            .any(|(_, v)| v.contains("metrics_listen = \"0.0.0.0:9090\""));
        Ok(sm.data["spec"]["endpoints"][0]["port"] == "metrics"
            && service_port
            && container_port
            && configured)
    })
    .await?;

    proxies
        .patch(
            "gomods",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"spec": {"monitoring": {"kind": "PodMonitor"}}})),
        )
        .await?;
    poll(
        TIMEOUT,
        "a PodMonitor instead of the ServiceMonitor",
        || async {
            Ok(pms.get_opt("gomods").await?.is_some() && sms.get_opt("gomods").await?.is_none())
        },
    )
    .await?;
    proxies
        .patch(
            "gomods",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"spec": {"monitoring": null}})),
        )
        .await?;
    poll(
        TIMEOUT,
        "no monitor and no Monitoring condition",
        || async {
            let p = proxies.get("gomods").await?;
            Ok(pms.get_opt("gomods").await?.is_none() && condition(&p, MONITORING).is_none())
        },
    )
    .await?;
    op.stop().await;
    drop(ns);
    tokio::task::spawn_blocking(move || dedicated.down()).await?
}

#[tokio::test]
async fn missing_secret_is_degraded_then_recovers() -> Result<()> {
    let ns = TestNamespace::new("degraded").await?;
    let op = Operator::start(&ns, Duration::from_secs(30)).await?;
    // The s3 example without its Secret.
    let text = std::fs::read_to_string(repo().join("examples/s3.yaml"))?;
    let proxy_doc = text
        .split("\n---\n")
        .find(|d| d.contains("kind: AthensProxy"))
        .context("no AthensProxy in s3.yaml")?;
    let out = kubectl(ns.name(), &["apply", "-f", "-"], Some(proxy_doc))?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let api: Api<AthensProxy> = Api::namespaced(ns.client(), ns.name());
    degraded_for(&api, "gomods-s3", "SecretNotFound").await?;
    let p = proxy(&api, "gomods-s3").await?;
    assert_eq!(condition(&p, READY).map(|c| c.0), Some("False".into()));
    // No Deployment whose pods could not start.
    assert!(
        Api::<Deployment>::namespaced(ns.client(), ns.name())
            .get_opt("gomods-s3")
            .await?
            .is_none()
    );
    // A Warning Event says why.
    warning_event(&ns, "SecretNotFound").await?;
    // No hot loop: a handful of reconciles in a few seconds, not hundreds.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let text = op.metrics.render();
    let failures: f64 = text
        .lines()
        .find(|l| {
            l.starts_with("athens_operator_reconcile_failures_total{reason=\"SecretNotFound\"}")
        })
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or(0.0);
    assert!(
        (1.0..=10.0).contains(&failures),
        "SecretNotFound reconciles: {failures}"
    );

    // Creating the Secret is picked up through the Secret watch, without waiting for backoff.
    let secret_doc = text_of_secret(&std::fs::read_to_string(repo().join("examples/s3.yaml"))?)?;
    let out = kubectl(ns.name(), &["apply", "-f", "-"], Some(&secret_doc))?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait_ready(TIMEOUT, &api, "gomods-s3").await?;
    let p = proxy(&api, "gomods-s3").await?;
    assert_eq!(condition(&p, DEGRADED).map(|c| c.0), Some("False".into()));
    op.stop().await;
    ns.cleanup().await
}

/// Polls until a Warning Event with `reason` is published in `ns`.
async fn warning_event(ns: &TestNamespace, reason: &str) -> Result<()> {
    let events: Api<k8s_openapi::api::events::v1::Event> = Api::namespaced(ns.client(), ns.name());
    poll(TIMEOUT, &format!("a {reason} Warning Event"), || async {
        let list = events.list(&Default::default()).await?;
        Ok(list
            .items
            .iter()
            .any(|e| e.reason.as_deref() == Some(reason) && e.type_.as_deref() == Some("Warning")))
    })
    .await
}

/// Polls until `name` is Degraded for `reason`; returns the condition's message.
async fn degraded_for(api: &Api<AthensProxy>, name: &str, reason: &str) -> Result<String> {
    poll(TIMEOUT, &format!("{name} Degraded {reason}"), || async {
        let p = proxy(api, name).await?;
        Ok(condition(&p, DEGRADED).is_some_and(|(s, r, _)| s == "True" && r == reason))
    })
    .await?;
    let p = proxy(api, name).await?;
    Ok(condition(&p, DEGRADED).map(|c| c.2).unwrap_or_default())
}

/// An object the operator did not create, under a name it would use, is neither adopted nor
/// changed nor deleted: the proxy is Degraded (NameConflict) until the user clears the name.
#[tokio::test]
async fn unowned_objects_are_never_adopted_or_deleted() -> Result<()> {
    let ns = TestNamespace::new("conflict").await?;
    let op = Operator::start(&ns, Duration::from_secs(30)).await?;
    let c = ns.client();
    let cms: Api<ConfigMap> = Api::namespaced(c.clone(), ns.name());
    let theirs: ConfigMap = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "gomods-s3-config"}, "data": {"belongs": "to someone else"}
    }))?;
    let theirs = cms.create(&PostParams::default(), &theirs).await?;
    kubectl_apply_file(ns.name(), &repo().join("examples/s3.yaml"))?;
    let api: Api<AthensProxy> = Api::namespaced(c.clone(), ns.name());
    let message = degraded_for(&api, "gomods-s3", "NameConflict").await?;
    assert!(
        message.contains("ConfigMap \"gomods-s3-config\"") && message.contains("no controller"),
        "{message}"
    );
    warning_event(&ns, "NameConflict").await?;
    let now = cms.get("gomods-s3-config").await?;
    assert_eq!(now.resource_version(), theirs.resource_version(), "changed");
    assert!(now.owner_references().is_empty(), "adopted");
    let deployments: Api<Deployment> = Api::namespaced(c.clone(), ns.name());
    assert!(deployments.get_opt("gomods-s3").await?.is_none());

    // The user removes it: the proxy gets its own ConfigMap and becomes Ready.
    cms.delete("gomods-s3-config", &DeleteParams::default())
        .await?;
    let p = wait_ready(TIMEOUT, &api, "gomods-s3").await?;
    let ours = cms.get("gomods-s3-config").await?;
    assert_eq!(
        ours.owner_references().first().map(|o| o.uid.clone()),
        p.uid()
    );

    // Deleting a proxy in conflict leaves the other object as it was, and the operator keeps
    // no state for the deleted proxy.
    let svcs: Api<Service> = Api::namespaced(c.clone(), ns.name());
    let theirs: Service = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "second"}, "spec": {"ports": [{"port": 80}]}
    }))?;
    let theirs = svcs.create(&PostParams::default(), &theirs).await?;
    let second = r#"{"apiVersion":"athens.dev/v1alpha1","kind":"AthensProxy","metadata":{"name":"second"},
        "spec":{"storage":{"s3":{"bucket":"b"}},"upstream":{"goproxy":"off"}}}"#;
    let out = kubectl(ns.name(), &["apply", "-f", "-"], Some(second))?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let message = degraded_for(&api, "second", "NameConflict").await?;
    assert!(message.contains("Service \"second\""), "{message}");
    assert!(
        op.ctx.tracked_proxies() >= 1,
        "a failing proxy has backoff state"
    );
    api.delete("second", &DeleteParams::background()).await?;
    poll(TIMEOUT, "the proxy to be gone and forgotten", || async {
        Ok(api.get_opt("second").await?.is_none() && op.ctx.tracked_proxies() == 0)
    })
    .await?;
    // Give the garbage collector time it would need to act on an adopted object.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let now = svcs.get("second").await?;
    assert_eq!(now.uid(), theirs.uid());
    assert_eq!(now.resource_version(), theirs.resource_version());
    assert!(cms.get_opt("second-config").await?.is_none());
    op.stop().await;
    ns.cleanup().await
}

fn text_of_secret(file: &str) -> Result<String> {
    Ok(file
        .split("\n---\n")
        .find(|d| d.contains("kind: Secret"))
        .context("no Secret")?
        .to_string())
}

#[tokio::test]
async fn steady_state_makes_no_writes() -> Result<()> {
    let ns = TestNamespace::new("steady").await?;
    // Resync every second: several full reconciles happen while we watch.
    let op = Operator::start(&ns, Duration::from_secs(1)).await?;
    kubectl_apply_file(ns.name(), &repo().join("examples/filesystem.yaml"))?;
    let api: Api<AthensProxy> = Api::namespaced(ns.client(), ns.name());
    wait_ready(TIMEOUT, &api, "gomods").await?;
    let c = ns.client();
    let n = ns.name().to_string();
    let versions = || {
        let (c, n) = (c.clone(), n.clone());
        async move {
            Ok::<_, anyhow::Error>(vec![
                Api::<AthensProxy>::namespaced(c.clone(), &n)
                    .get("gomods")
                    .await?
                    .resource_version(),
                Api::<Deployment>::namespaced(c.clone(), &n)
                    .get("gomods")
                    .await?
                    .resource_version(),
                Api::<Service>::namespaced(c.clone(), &n)
                    .get("gomods")
                    .await?
                    .resource_version(),
                Api::<ConfigMap>::namespaced(c.clone(), &n)
                    .get("gomods-config")
                    .await?
                    .resource_version(),
                Api::<PersistentVolumeClaim>::namespaced(c.clone(), &n)
                    .get("gomods-storage")
                    .await?
                    .resource_version(),
            ])
        }
    };
    // Let the rollout settle (Deployment status, claim binding), then watch several resyncs.
    poll(TIMEOUT, "a settled rollout", || async {
        let p = proxy(&api, "gomods").await?;
        Ok(condition(&p, "Progressing").is_some_and(|(s, _, _)| s == "False"))
    })
    .await?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let before = versions().await?;
    let reconciles_before = count_reconciles(&op.metrics);
    tokio::time::sleep(Duration::from_secs(6)).await;
    let after = versions().await?;
    let reconciles = count_reconciles(&op.metrics) - reconciles_before;
    assert!(
        reconciles >= 3.0,
        "only {reconciles} reconciles while watching"
    );
    assert_eq!(before, after, "resourceVersions changed in a steady state");
    op.stop().await;
    ns.cleanup().await
}

fn count_reconciles(m: &Metrics) -> f64 {
    m.render()
        .lines()
        .filter(|l| l.starts_with("athens_operator_reconciles_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Fails when a spawned program has exited (so a test does not wait out its timeout).
fn exited(child: &std::sync::Mutex<Child>, what: &str) -> Result<()> {
    let mut c = child.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
    if let Some(status) = c.0.try_wait()? {
        bail!("{what} exited: {status}");
    }
    Ok(())
}

fn spawn_operator(ns: &str, identity: &str, port: u16) -> Result<Child> {
    let cluster = TestCluster::get();
    let child = std::process::Command::new(workspace_bin("athens-operator")?)
        .args([
            "run",
            "--namespace",
            ns,
            "--lease-namespace",
            ns,
            "--identity",
            identity,
            "--http-addr",
            &format!("127.0.0.1:{port}"),
        ])
        .env("KUBECONFIG", &cluster.kubeconfig)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    Ok(Child(child))
}

async fn http_get(port: u16, path: &str) -> Result<(u16, String)> {
    let resp = reqwest::get(format!("http://127.0.0.1:{port}{path}")).await?;
    let code = resp.status().as_u16();
    Ok((code, resp.text().await?))
}

/// `athens-operator run` as shipped: two replicas, one leader, probes and metrics, and a
/// standby that takes over when the leader goes away.
#[tokio::test]
async fn operator_binary_elects_a_leader_and_serves_metrics() -> Result<()> {
    let ns = TestNamespace::new("binary").await?;
    install_crd(&ns.client()).await?;
    let (p1, p2) = (free_port()?, free_port()?);
    let first = std::sync::Mutex::new(spawn_operator(ns.name(), "first", p1)?);
    poll(TIMEOUT, "the first replica to lead", || async {
        if exited(&first, "athens-operator").is_err() {
            return Ok(true);
        }
        let lease = Api::<Lease>::namespaced(ns.client(), ns.name())
            .get_opt("athens-operator")
            .await?;
        Ok(lease
            .and_then(|l| l.spec?.holder_identity)
            .is_some_and(|h| h == "first"))
    })
    .await?;
    exited(
        &first,
        "athens-operator (is target/debug/athens-operator this build?)",
    )?;
    let second = spawn_operator(ns.name(), "second", p2)?;
    kubectl_apply_file(ns.name(), &repo().join("examples/s3.yaml"))?;
    let api: Api<AthensProxy> = Api::namespaced(ns.client(), ns.name());
    wait_ready(TIMEOUT, &api, "gomods-s3").await?;

    assert_eq!(http_get(p1, "/healthz").await?.0, 200);
    assert_eq!(http_get(p1, "/readyz").await?.0, 200);
    let (code, metrics) = http_get(p1, "/metrics").await?;
    assert_eq!(code, 200);
    assert!(
        metrics.contains("athens_operator_reconciles_total{result=\"ok\"}"),
        "{metrics}"
    );
    assert!(metrics.contains("athens_operator_reconcile_duration_seconds_bucket"));
    assert!(metrics.contains("athens_operator_leader 1"));
    poll(TIMEOUT, "the standby's probes", || async {
        Ok(http_get(p2, "/readyz").await?.0 == 200)
    })
    .await?;
    let (_, standby) = http_get(p2, "/metrics").await?;
    assert!(standby.contains("athens_operator_leader 0"), "{standby}");

    // SIGTERM: the leader releases the Lease; the standby takes over and reconciles.
    let first = first
        .into_inner()
        .map_err(|_| anyhow::anyhow!("poisoned"))?;
    let pid = first.0.id().to_string();
    std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()?;
    poll(TIMEOUT, "the second replica to lead", || async {
        let lease = Api::<Lease>::namespaced(ns.client(), ns.name())
            .get_opt("athens-operator")
            .await?;
        Ok(lease
            .and_then(|l| l.spec?.holder_identity)
            .is_some_and(|h| h == "second"))
    })
    .await?;
    api.patch(
        "gomods-s3",
        &PatchParams::default(),
        &Patch::Merge(serde_json::json!({"spec": {"upstream": {"goproxy": "off"}}})),
    )
    .await?;
    wait_ready(TIMEOUT, &api, "gomods-s3").await?;
    let cm = Api::<ConfigMap>::namespaced(ns.client(), ns.name())
        .get("gomods-s3-config")
        .await?;
    assert!(cm.data.unwrap_or_default()["config.toml"].contains("goproxy = \"off\""));
    drop(first);

    // A leader that dies without releasing (SIGKILL): a new candidate waits for the Lease to
    // expire (15 s unrenewed, by its own clock), then takes over.
    let third = spawn_operator(ns.name(), "third", free_port()?)?;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let holder = |ns: &TestNamespace| {
        let api = Api::<Lease>::namespaced(ns.client(), ns.name());
        async move {
            Ok::<_, anyhow::Error>(
                api.get_opt("athens-operator")
                    .await?
                    .and_then(|l| l.spec?.holder_identity)
                    .unwrap_or_default(),
            )
        }
    };
    assert_eq!(
        holder(&ns).await?,
        "second",
        "a live leader keeps the Lease"
    );
    drop(second);
    let killed = std::time::Instant::now();
    poll(
        TIMEOUT,
        "the third replica to take over an expired Lease",
        || async { Ok(holder(&ns).await? == "third") },
    )
    .await?;
    let took = killed.elapsed();
    eprintln!("the Lease was taken over {took:?} after its holder was killed");
    assert!(
        took >= Duration::from_secs(5),
        "took over after {took:?}: too soon"
    );
    api.patch(
        "gomods-s3",
        &PatchParams::default(),
        &Patch::Merge(serde_json::json!({"spec": {"replicas": 3}})),
    )
    .await?;
    poll(TIMEOUT, "the new leader to reconcile", || async {
        let p = proxy(&api, "gomods-s3").await?;
        Ok(p.status.is_some_and(|s| s.ready_replicas == Some(3)))
    })
    .await?;
    drop(third);
    ns.cleanup().await
}

/// The data plane: the pod spec the operator renders (args, env, ConfigMap contents, mounts
/// under a temporary root) runs the real `athens-proxy`, and the real `go` command downloads a
/// module through it.
#[tokio::test]
async fn rendered_pod_runs_the_real_proxy_and_go_downloads_through_it() -> Result<()> {
    use athens_operator::render::{Secrets, desired};
    let upstream = std::env::var("GOPROXY")
        .ok()
        .filter(|v| !v.is_empty())
        .or_else(|| {
            let out = std::process::Command::new("go")
                .args(["env", "GOPROXY"])
                .output()
                .ok()?;
            Some(String::from_utf8(out.stdout).ok()?.trim().to_string())
        })
        .context("no GOPROXY on this machine")?;
    let text = std::fs::read_to_string(repo().join("examples/filesystem.yaml"))?;
    let mut p: AthensProxy = serde_yaml::from_str(&text)?;
    p.metadata.namespace = Some("local".into());
    p.metadata.uid = Some("local".into());
    p.spec.upstream.goproxy = upstream;
    let d = desired(&p, &Secrets::new(), &Settings::default())?;

    let root = tempfile::tempdir()?;
    let pod = d
        .deployment
        .spec
        .context("spec")?
        .template
        .spec
        .context("pod")?;
    let container = &pod.containers[0];
    let port = free_port()?;
    // Mount points under the temporary root; the ConfigMap's files in its mount.
    let remap = |path: &str| root.path().join(path.trim_start_matches('/'));
    let mut config = d.config_map.data.context("data")?["config.toml"].clone();
    for m in container.volume_mounts.iter().flatten() {
        std::fs::create_dir_all(remap(&m.mount_path))?;
        config = config.replace(&m.mount_path, &remap(&m.mount_path).to_string_lossy());
    }
    config = config.replace("0.0.0.0:3000", &format!("127.0.0.1:{port}"));
    let config_path = remap("/etc/athens/config.toml");
    std::fs::write(&config_path, &config)?;
    let args: Vec<String> = container
        .args
        .iter()
        .flatten()
        .map(|a| {
            if a.starts_with('/') {
                remap(a).to_string_lossy().into_owned()
            } else {
                a.clone()
            }
        })
        .collect();
    let proxy_bin = workspace_bin("athens-operator")?.with_file_name("athens-proxy");
    let mut cmd = std::process::Command::new(proxy_bin);
    cmd.args(&args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    for e in container.env.iter().flatten() {
        if let Some(v) = &e.value {
            let v = if v.starts_with('/') {
                remap(v).to_string_lossy().into_owned()
            } else {
                v.clone()
            };
            cmd.env(&e.name, v);
        }
    }
    let proxy = std::sync::Mutex::new(Child(cmd.spawn()?));
    poll(TIMEOUT, "the proxy's /readyz", || async {
        if exited(&proxy, "athens-proxy").is_err() {
            return Ok(true);
        }
        Ok(http_get(port, "/readyz").await.is_ok_and(|r| r.0 == 200))
    })
    .await?;
    exited(
        &proxy,
        "athens-proxy (is target/debug/athens-proxy this build?)",
    )?;

    let gopath = tempfile::tempdir()?;
    let out = std::process::Command::new("go")
        .args(["mod", "download", "-json", "golang.org/x/text@v0.3.8"])
        .env("GOPROXY", format!("http://127.0.0.1:{port}"))
        .env("GOPATH", gopath.path())
        .env("GOMODCACHE", gopath.path().join("mod"))
        .env("GOFLAGS", "-modcacherw")
        .output()?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

/// `spec.filter` and `spec.downloadModes`: rendered as files in the proxy's ConfigMap, changed
/// without touching the pod template (the proxy re-reads them), and bad rules refused by the
/// schema with its message.
#[tokio::test]
async fn filter_and_download_modes_render_into_the_config_map() -> Result<()> {
    let ns = TestNamespace::new("policy").await?;
    let op = Operator::start(&ns, Duration::from_secs(30)).await?;
    let doc = |name: &str, policy: &str| {
        format!(
            r#"{{"apiVersion":"athens.dev/v1alpha1","kind":"AthensProxy","metadata":{{"name":"{name}"}},
               "spec":{{"storage":{{"s3":{{"bucket":"b"}}}},"upstream":{{"goproxy":"off"}},{policy}}}}}"#
        )
    };
    let refused = [
        (
            "bad sign",
            r#""filter":{"rules":["x github.com/a"]}"#,
            "each filter rule is '+', '-' or 'D'",
        ),
        (
            "too many tokens",
            r#""filter":{"rules":["- github.com/a v1 v2"]}"#,
            "each filter rule is",
        ),
        (
            "D without an endpoint",
            r#""filter":{"rules":["D corp.example"]}"#,
            "filter rules with D (direct) need filter.globalEndpoint",
        ),
        (
            "neither rules nor a ConfigMap",
            r#""filter":{"globalEndpoint":"https://x.example"}"#,
            "set filter.rules or filter.configMapRef",
        ),
        (
            "mode and hcl",
            r#""downloadModes":{"mode":"sync","hcl":"mode = \"sync\""}"#,
            "set one of downloadModes.mode, downloadModes.hcl or downloadModes.configMapRef",
        ),
        (
            "redirect without a URL",
            r#""downloadModes":{"mode":"redirect"}"#,
            "redirect modes need downloadModes.downloadURL",
        ),
        (
            "unknown mode",
            r#""downloadModes":{"mode":"sometimes"}"#,
            "Unsupported value",
        ),
    ];
    for (what, policy, message) in refused {
        let out = kubectl(ns.name(), &["apply", "-f", "-"], Some(&doc("bad", policy)))?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{what}: accepted");
        assert!(stderr.contains(message), "{what}: {stderr}");
    }

    let good = doc(
        "pol",
        r##""filter":{"rules":["-","# approved","D corp.example","+ github.com/gomods/athens v0.1,v0.2,v0.4.1"],
            "globalEndpoint":"https://global.example"},
           "downloadModes":{"mode":"async_redirect","downloadURL":"https://global.example"}"##,
    );
    let out = kubectl(ns.name(), &["apply", "-f", "-"], Some(&good))?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cms: Api<ConfigMap> = Api::namespaced(ns.client(), ns.name());
    let deployments: Api<Deployment> = Api::namespaced(ns.client(), ns.name());
    let data = |cm: ConfigMap| cm.data.unwrap_or_default();
    poll(TIMEOUT, "the policy files in the ConfigMap", || async {
        Ok(cms
            .get_opt("pol-config")
            .await?
            .is_some_and(|cm| data(cm).contains_key("filter")))
    })
    .await?;
    let d = data(cms.get("pol-config").await?);
    assert_eq!(
        d["filter"],
        "-\n# approved\nD corp.example\n+ github.com/gomods/athens v0.1,v0.2,v0.4.1\n"
    );
    assert_eq!(
        d["download.hcl"],
        "mode = \"async_redirect\"\ndownloadURL = \"https://global.example\"\n"
    );
    assert!(
        d["config.toml"].contains("filter_file = \"/etc/athens/filter\""),
        "{}",
        d["config.toml"]
    );
    poll(TIMEOUT, "the Deployment", || async {
        Ok(deployments.get_opt("pol").await?.is_some())
    })
    .await?;
    let hash = template_hash(&deployments.get("pol").await?).context("no hash")?;

    // A rule change reaches the ConfigMap; the pod template stays (the pods reload the file).
    let api: Api<AthensProxy> = Api::namespaced(ns.client(), ns.name());
    api.patch(
        "pol",
        &PatchParams::default(),
        &Patch::Merge(serde_json::json!({"spec": {"filter": {"rules": ["- github.com/bad"]}}})),
    )
    .await?;
    poll(TIMEOUT, "the new rules in the ConfigMap", || async {
        Ok(data(cms.get("pol-config").await?)["filter"] == "- github.com/bad\n")
    })
    .await?;
    assert_eq!(
        template_hash(&deployments.get("pol").await?).context("no hash")?,
        hash,
        "a rule change must not roll the pods"
    );

    // What the schema cannot check (the HCL text) is reported: Degraded, with the reason, and
    // nothing is rendered for it.
    let bad_hcl = doc(
        "badhcl",
        r#""downloadModes":{"hcl":"mode = \"sync\"\ndownload \"a/*\" {\n  url = \"http://x\"\n}\n"}"#,
    );
    let out = kubectl(ns.name(), &["apply", "-f", "-"], Some(&bad_hcl))?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let message = degraded_for(&api, "badhcl", "InvalidDownloadModes").await?;
    assert!(message.contains("url"), "{message}");
    warning_event(&ns, "InvalidDownloadModes").await?;
    assert!(cms.get_opt("badhcl-config").await?.is_none());

    // A filter file in a ConfigMap of the user's own: mounted, not copied; missing, it is
    // reported, and the proxy recovers when it appears.
    let with_ref = doc(
        "ref",
        r#""filter":{"configMapRef":{"name":"team-filter","key":"rules"}}"#,
    );
    let out = kubectl(ns.name(), &["apply", "-f", "-"], Some(&with_ref))?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let message = degraded_for(&api, "ref", "ConfigMapNotFound").await?;
    assert!(message.contains("team-filter"), "{message}");
    let team = r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"team-filter"},
        "data":{"rules":"-\n+ github.com/approved\n"}}"#;
    let out = kubectl(ns.name(), &["apply", "-f", "-"], Some(team))?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    poll(TIMEOUT, "the Deployment mounting team-filter", || async {
        let Some(d) = deployments.get_opt("ref").await? else {
            return Ok(false);
        };
        let pod = d.spec.and_then(|s| s.template.spec).unwrap_or_default();
        Ok(pod.volumes.unwrap_or_default().iter().any(|v| {
            v.config_map
                .as_ref()
                .is_some_and(|c| c.name == "team-filter")
        }))
    })
    .await?;
    assert!(!data(cms.get("ref-config").await?).contains_key("filter"));
    let both = doc(
        "both",
        r#""filter":{"rules":["-"],"configMapRef":{"name":"team-filter","key":"rules"}}"#,
    );
    let out = kubectl(ns.name(), &["apply", "-f", "-"], Some(&both))?;
    assert!(
        !out.status.success(),
        "rules and configMapRef together: accepted"
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("set filter.rules or filter.configMapRef"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    op.stop().await;
    ns.cleanup().await
}

/// A rule change in the spec reaches a proxy started with the rendered files: the new filter
/// file is written in place (as the kubelet updates a ConfigMap volume) and the running proxy
/// answers by the new rules, while the rendered pod template stays the same.
#[tokio::test]
async fn rendered_filter_change_reaches_a_running_proxy() -> Result<()> {
    use athens_e2e::proxy::ProxyProcess;
    use athens_operator::crd::FilterSpec;
    use athens_operator::render::{Secrets, desired};
    let text = std::fs::read_to_string(repo().join("examples/filesystem.yaml"))?;
    let mut p: AthensProxy = serde_yaml::from_str(&text)?;
    p.metadata.namespace = Some("local".into());
    p.metadata.uid = Some("local".into());
    p.spec.upstream.goproxy = "off".into();
    p.spec.upstream.sumdb = Some("off".into());
    p.spec.filter = Some(FilterSpec {
        rules: vec!["- example.com/blocked".into()],
        global_endpoint: None,
        config_map_ref: None,
    });
    let root = tempfile::tempdir()?;
    let remap = |path: &str| root.path().join(path.trim_start_matches('/'));
    let write_files = |d: &athens_operator::render::Desired| -> Result<()> {
        let data = d.config_map.data.clone().context("data")?;
        std::fs::create_dir_all(remap("/etc/athens"))?;
        for (key, value) in data {
            let mut value = value;
            for dir in ["/etc/athens", "/var/lib/athens/storage"] {
                value = value.replace(dir, &remap(dir).to_string_lossy());
            }
            value = value.replace("0.0.0.0:3000", "127.0.0.1:0");
            std::fs::write(remap("/etc/athens").join(key), value)?;
        }
        Ok(())
    };
    let first = desired(&p, &Secrets::new(), &Settings::default())?;
    std::fs::create_dir_all(remap("/var/lib/athens/storage"))?;
    write_files(&first)?;
    let config = remap("/etc/athens/config.toml");
    let proxy = ProxyProcess::start(&["--config", &config.to_string_lossy()], &[]);
    let status = |module: &'static str| {
        let url = format!("{}/{module}/@v/list", proxy.url);
        async move { Ok::<u16, anyhow::Error>(reqwest::get(&url).await?.status().as_u16()) }
    };
    assert_eq!(status("example.com/blocked").await?, 403);
    assert_eq!(status("example.com/other").await?, 404, "upstream is off");

    p.spec.filter.as_mut().context("filter")?.rules = vec!["- example.com/other".into()];
    let second = desired(&p, &Secrets::new(), &Settings::default())?;
    assert_eq!(
        second.deployment, first.deployment,
        "no rollout for a rule change"
    );
    write_files(&second)?;
    poll(
        TIMEOUT,
        "the running proxy to answer by the new rules",
        || async { Ok(status("example.com/other").await? == 403) },
    )
    .await?;
    assert_eq!(status("example.com/blocked").await?, 404);
    Ok(())
}

/// `spec.access`: its Secrets are checked like storage credentials (Degraded until they and
/// their keys exist), then mounted read-only as files the proxy configuration names.
#[tokio::test]
async fn access_secrets_are_checked_then_mounted_read_only() -> Result<()> {
    let ns = TestNamespace::new("access").await?;
    let op = Operator::start(&ns, Duration::from_secs(30)).await?;
    let manifest = r#"
apiVersion: athens.dev/v1alpha1
kind: AthensProxy
metadata:
  name: guarded
spec:
  storage:
    filesystem: {size: 1Gi}
  upstream:
    goproxy: "off"
  access:
    basicAuth:
      - secretName: team-users
    bearerTokens:
      - secretName: ci-tokens
        key: list
"#;
    let apply = |doc: &str| -> Result<()> {
        let out = kubectl(ns.name(), &["apply", "-f", "-"], Some(doc))?;
        if !out.status.success() {
            bail!("{}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(())
    };
    apply(manifest)?;
    let api: Api<AthensProxy> = Api::namespaced(ns.client(), ns.name());
    let msg = degraded_for(&api, "guarded", "SecretNotFound").await?;
    assert!(msg.contains("spec.access"), "{msg}");
    let secret = |name: &str, key: &str| {
        format!(
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: {name}\nstringData:\n  {key}: \"ci:pw\"\n"
        )
    };
    apply(&secret("team-users", "users"))?;
    apply(&secret("ci-tokens", "wrong"))?;
    let msg = degraded_for(&api, "guarded", "SecretKeyNotFound").await?;
    assert!(msg.contains("list"), "{msg}");
    let deployments: Api<Deployment> = Api::namespaced(ns.client(), ns.name());
    assert!(deployments.get_opt("guarded").await?.is_none());

    apply(&secret("ci-tokens", "list"))?;
    poll(TIMEOUT, "the guarded Deployment", || async {
        Ok(deployments.get_opt("guarded").await?.is_some())
    })
    .await?;
    let d = deployments.get("guarded").await?;
    let pod = d.spec.context("spec")?.template.spec.context("pod spec")?;
    let mounts = pod.containers[0].volume_mounts.clone().unwrap_or_default();
    let access: Vec<_> = mounts
        .iter()
        .filter(|m| m.mount_path.starts_with("/var/run/secrets/athens/access/"))
        .collect();
    assert_eq!(access.len(), 2, "{mounts:?}");
    assert!(access.iter().all(|m| m.read_only == Some(true)));
    let volumes = pod.volumes.unwrap_or_default();
    let tokens = volumes
        .iter()
        .find_map(|v| {
            v.secret
                .as_ref()
                .filter(|s| s.secret_name.as_deref() == Some("ci-tokens"))
        })
        .context("no ci-tokens volume")?;
    assert_eq!(
        tokens.items.as_ref().map(|i| i[0].key.as_str()),
        Some("list")
    );
    let cms: Api<ConfigMap> = Api::namespaced(ns.client(), ns.name());
    let cm = cms
        .list(&Default::default())
        .await?
        .items
        .into_iter()
        .find(|c| c.name_any().starts_with("guarded"))
        .context("no ConfigMap")?;
    let config = cm
        .data
        .unwrap_or_default()
        .into_values()
        .collect::<String>();
    assert!(
        config.contains("/var/run/secrets/athens/access/access-basic-0/users")
            && config.contains("/var/run/secrets/athens/access/access-tokens-0/tokens"),
        "{config}"
    );
    assert!(!config.contains("ci:pw"), "a secret value in the ConfigMap");
    op.stop().await;
    ns.cleanup().await
}

/// A user-owned ConfigMap named by `filter.configMapRef` is watched: an edit that breaks it is
/// reported at once (not at the next resync, here an hour away), and fixing it clears the report.
#[tokio::test]
async fn a_referenced_config_map_change_is_seen_without_waiting_for_a_resync() -> Result<()> {
    let ns = TestNamespace::new("cmwatch").await?;
    let op = Operator::start(&ns, Duration::from_secs(3600)).await?;
    let api: Api<AthensProxy> = Api::namespaced(ns.client(), ns.name());
    let team = |rules: &str| {
        format!(
            r#"{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"team-rules"}},
               "data":{{"rules":{rules:?}}}}}"#
        )
    };
    let apply = |doc: String| -> Result<()> {
        let out = kubectl(ns.name(), &["apply", "-f", "-"], Some(&doc))?;
        if !out.status.success() {
            bail!("{}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(())
    };
    apply(team("-\n+ github.com/approved\n"))?;
    apply(
        r#"{"apiVersion":"athens.dev/v1alpha1","kind":"AthensProxy","metadata":{"name":"w"},
           "spec":{"storage":{"s3":{"bucket":"b"}},"upstream":{"goproxy":"off"},
                   "filter":{"configMapRef":{"name":"team-rules","key":"rules"}}}}"#
            .to_string(),
    )?;
    let deployments: Api<Deployment> = Api::namespaced(ns.client(), ns.name());
    poll(TIMEOUT, "the Deployment of w", || async {
        Ok(deployments.get_opt("w").await?.is_some())
    })
    .await?;
    let p = proxy(&api, "w").await?;
    assert!(
        condition(&p, DEGRADED).is_none_or(|(s, _, _)| s != "True"),
        "{:?}",
        condition(&p, DEGRADED)
    );
    // The user breaks the file: reported promptly.
    apply(team("x github.com/bad\n"))?;
    let message = degraded_for(&api, "w", "InvalidFilter").await?;
    assert!(message.contains("team-rules"), "{message}");
    // ... and fixes it: the report clears, again without a resync.
    apply(team("-\n+ github.com/approved\n+ github.com/also\n"))?;
    poll(TIMEOUT, "w no longer Degraded", || async {
        let p = proxy(&api, "w").await?;
        Ok(condition(&p, DEGRADED).is_none_or(|(s, _, _)| s != "True"))
    })
    .await?;
    op.stop().await;
    ns.cleanup().await
}
