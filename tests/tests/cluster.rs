//! The control plane itself, as the operator tests rely on it: scheduling onto the kwok node,
//! garbage collection, namespace deletion, and the kubectl and helm that `tests/cluster/up` puts
//! on PATH. Each test works in its own namespace, so they run in parallel on one cluster.

use std::time::Duration;

use anyhow::{Context, Result, bail};
use athens_e2e::cluster::{DedicatedCluster, TestCluster, TestNamespace};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{DeleteParams, ListParams, ObjectMeta, PostParams};
use kube::runtime::wait::{await_condition, conditions};
use kube::{Api, Resource, ResourceExt};

const TIMEOUT: Duration = Duration::from_secs(90);

#[tokio::test]
async fn deployment_with_two_replicas_becomes_available_on_the_kwok_node() -> Result<()> {
    let ns = TestNamespace::new("deploy").await?;
    let deployments: Api<Deployment> = Api::namespaced(ns.client(), ns.name());
    let deployment: Deployment = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "web"},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                // kwok never pulls images: any name will do.
                "spec": {"containers": [{"name": "web", "image": "example.invalid/web:1"}]}
            }
        }
    }))?;
    deployments
        .create(&PostParams::default(), &deployment)
        .await?;

    let available = |d: Option<&Deployment>| {
        d.and_then(|d| d.status.as_ref())
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|cs| {
                cs.iter()
                    .any(|c| c.type_ == "Available" && c.status == "True")
            })
            && d.and_then(|d| d.status.as_ref()?.available_replicas) == Some(2)
    };
    tokio::time::timeout(
        TIMEOUT,
        await_condition(deployments.clone(), "web", available),
    )
    .await
    .context("deployment web did not become Available with 2 replicas")??;

    let pods = Api::<Pod>::namespaced(ns.client(), ns.name())
        .list(&ListParams::default().labels("app=web"))
        .await?;
    assert_eq!(
        pods.items.len(),
        2,
        "pods: {:?}",
        pods.items.iter().map(|p| p.name_any()).collect::<Vec<_>>()
    );
    for pod in &pods.items {
        let spec = pod.spec.as_ref().context("pod without spec")?;
        let status = pod.status.as_ref().context("pod without status")?;
        assert_eq!(
            spec.node_name.as_deref(),
            Some("kwok-node-0"),
            "pod {}",
            pod.name_any()
        );
        assert_eq!(
            status.phase.as_deref(),
            Some("Running"),
            "pod {}",
            pod.name_any()
        );
    }
    ns.cleanup().await
}

#[tokio::test]
async fn deleting_an_owner_garbage_collects_its_dependent() -> Result<()> {
    let ns = TestNamespace::new("gc").await?;
    let configmaps: Api<ConfigMap> = Api::namespaced(ns.client(), ns.name());
    let owner = configmaps
        .create(&PostParams::default(), &configmap("owner", None))
        .await?;
    let reference = OwnerReference {
        api_version: ConfigMap::api_version(&()).into(),
        kind: ConfigMap::kind(&()).into(),
        name: owner.name_any(),
        uid: owner.uid().context("owner without uid")?,
        ..Default::default()
    };
    let dependent = configmaps
        .create(
            &PostParams::default(),
            &configmap("dependent", Some(reference)),
        )
        .await?;

    // Background propagation: the owner goes at once, the garbage collector removes the dependent.
    configmaps
        .delete("owner", &DeleteParams::background())
        .await?;
    let uid = dependent.uid().context("dependent without uid")?;
    tokio::time::timeout(
        TIMEOUT,
        await_condition(
            configmaps.clone(),
            "dependent",
            conditions::is_deleted(&uid),
        ),
    )
    .await
    .context("the garbage collector did not delete the dependent")??;
    ns.cleanup().await
}

#[tokio::test]
async fn namespace_deletion_completes() -> Result<()> {
    let ns = TestNamespace::new("nsdel").await?;
    // Something for the namespace controller to delete first.
    let configmaps: Api<ConfigMap> = Api::namespaced(ns.client(), ns.name());
    configmaps
        .create(&PostParams::default(), &configmap("content", None))
        .await?;
    // cleanup() deletes the namespace and returns only once it is gone (or fails after a timeout).
    ns.cleanup().await
}

#[tokio::test]
async fn kubectl_and_helm_on_the_printed_path_work() -> Result<()> {
    let cluster = TestCluster::get();
    let ns = TestNamespace::new("tools").await?;

    let version = run(cluster.command("kubectl").args(["version", "-o", "json"]))?;
    let version: serde_json::Value = serde_json::from_str(&version)?;
    let server = version["serverVersion"]["gitVersion"]
        .as_str()
        .unwrap_or_default();
    assert!(server.starts_with("v1.35."), "server version {server:?}");
    let nodes = run(cluster
        .command("kubectl")
        .args(["get", "nodes", "-o", "name"]))?;
    assert!(
        nodes.lines().any(|l| l == "node/kwok-node-0"),
        "nodes: {nodes}"
    );

    // A chart of one ConfigMap, installed and uninstalled with the helm from the printed PATH.
    let chart = tempfile::tempdir()?;
    std::fs::create_dir(chart.path().join("templates"))?;
    std::fs::write(
        chart.path().join("Chart.yaml"),
        "apiVersion: v2\nname: probe\nversion: 0.1.0\n",
    )?;
    std::fs::write(
        chart.path().join("templates/configmap.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-probe\ndata:\n  greeting: {{ .Values.greeting | quote }}\n",
    )?;
    let chart_dir = chart.path().to_str().context("temp path not UTF-8")?;
    run(cluster.command("helm").args([
        "install",
        "probe",
        chart_dir,
        "--namespace",
        ns.name(),
        "--set",
        "greeting=hi",
        "--wait",
    ]))?;
    let cm = Api::<ConfigMap>::namespaced(ns.client(), ns.name())
        .get("probe-probe")
        .await?;
    assert_eq!(
        cm.data
            .unwrap_or_default()
            .get("greeting")
            .map(String::as_str),
        Some("hi")
    );
    let releases = run(cluster
        .command("helm")
        .args(["list", "--namespace", ns.name(), "-q"]))?;
    assert_eq!(releases.trim(), "probe");
    run(cluster
        .command("helm")
        .args(["uninstall", "probe", "--namespace", ns.name(), "--wait"]))?;
    ns.cleanup().await
}

fn configmap(name: &str, owner: Option<OwnerReference>) -> ConfigMap {
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.into()),
            owner_references: owner.map(|o| vec![o]),
            ..Default::default()
        },
        data: Some([("k".to_string(), "v".to_string())].into()),
        ..Default::default()
    }
}

/// Runs a command to completion; its stdout, or an error with its stderr.
fn run(cmd: &mut std::process::Command) -> Result<String> {
    let out = cmd.output().with_context(|| format!("running {cmd:?}"))?;
    if !out.status.success() {
        bail!(
            "{cmd:?} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8(out.stdout)?)
}

/// `down` then `up` at once, three times in a row, on the same ports: they are below the
/// kernel's ephemeral range, so no client connection of the cluster just stopped can hold one
/// (in TIME_WAIT or otherwise), and each component can listen on its port again at once.
#[tokio::test]
async fn down_then_up_works_three_times_in_a_row_on_the_same_ports() -> Result<()> {
    let mut cluster = DedicatedCluster::start("cycle")?;
    let ports = cluster.cluster().ports()?;
    let ephemeral: u16 = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|r| r.split_whitespace().next()?.parse().ok())
        .unwrap_or(32768);
    assert_eq!(ports.len(), 5, "{ports:?}");
    for (name, port) in &ports {
        assert!(*port < ephemeral, "{name} {port} is in the ephemeral range");
    }
    for round in 1..=3 {
        // Traffic, so that the cluster has connections to close when it stops.
        let ns = TestNamespace::new_in(cluster.cluster(), "cycle").await?;
        let cms: Api<ConfigMap> = Api::namespaced(ns.client(), ns.name());
        for i in 0..5 {
            let cm = ConfigMap {
                metadata: ObjectMeta {
                    name: Some(format!("c{i}")),
                    ..Default::default()
                },
                ..Default::default()
            };
            cms.create(&PostParams::default(), &cm).await?;
        }
        drop(ns);
        cluster
            .down_and_up()
            .with_context(|| format!("up right after down, round {round}"))?;
        assert_eq!(cluster.cluster().ports()?, ports, "round {round}");
        let nodes: Api<k8s_openapi::api::core::v1::Node> =
            Api::all(cluster.cluster().client().await?);
        assert_eq!(nodes.list(&ListParams::default()).await?.items.len(), 1);
    }
    cluster.down()
}
