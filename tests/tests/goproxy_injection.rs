//! Cluster-wide GOPROXY against the real control plane: the chart's MutatingAdmissionPolicy (in
//! the API version the cluster serves, chosen by Helm), the operator's bindings, and pods created
//! for real (kwok runs them) and with server-side dry run, on Kubernetes 1.35 (v1beta1, behind
//! the flags `tests/cluster/up` sets) and 1.36 (v1, on by default: a dedicated cluster whose API
//! server is `KUBE_NEXT_VERSION`).

use std::collections::BTreeMap;
use std::io::Write as _;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result, bail, ensure};
use athens_e2e::cluster::{DedicatedCluster, TestCluster, TestNamespace, kube_next_version};
use athens_e2e::crd::install_crd;
use athens_e2e::wait::{poll, repo};
use athens_operator::crd::{AthensProxy, GOPROXY_INJECTION};
use athens_operator::metrics::Metrics;
use athens_operator::reconcile::{self, Context};
use athens_operator::render::Settings;
use athens_operator::render::injection::{FINALIZER, NAMESPACE_LABEL, OPT_OUT_ANNOTATION};
use k8s_openapi::api::core::v1::{Namespace, Pod, ServiceAccount};
use kube::api::{
    ApiResource, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams,
};
use kube::core::GroupVersionKind;
use kube::runtime::events::{Recorder, Reporter};
use kube::{Api, Client, ResourceExt};
use tokio::sync::oneshot;

const TIMEOUT: Duration = Duration::from_secs(120);
const PATTERNS: [&str; 2] = ["corp.example/*", "git.corp.example/team"];
const PRIVATE: &str = "git.private.example";

/// The controller in this test's runtime, for one namespace, with cluster-wide GOPROXY on.
struct Operator {
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl Operator {
    fn start(client: &Client, ns: &str, policy: &str) -> Operator {
        let ctx = Arc::new(Context::new(
            client.clone(),
            Recorder::new(
                client.clone(),
                Reporter::from("athens-operator-test".to_string()),
            ),
            Metrics::new(),
            Settings {
                goproxy_policy: Some(policy.to_string()),
                ..Settings::default()
            },
            Duration::from_secs(300),
        ));
        let (tx, rx) = oneshot::channel();
        let task = tokio::spawn(reconcile::run(ctx, vec![ns.to_string()], async move {
            let _ = rx.await;
        }));
        Operator {
            stop: Some(tx),
            task,
        }
    }

    async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        let _ = tokio::time::timeout(Duration::from_secs(10), &mut self.task).await;
    }
}

/// Runs a program of the cluster (kubectl, helm), with `stdin`; its stdout, failing on an error.
fn run(cluster: &TestCluster, program: &str, args: &[&str], stdin: Option<&str>) -> Result<String> {
    let mut child = cluster
        .command(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("running {program}"))?;
    if let Some(text) = stdin {
        child
            .stdin
            .take()
            .context("stdin")?
            .write_all(text.as_bytes())?;
    }
    drop(child.stdin.take());
    let out = child.wait_with_output()?;
    if !out.status.success() {
        bail!(
            "{program} {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8(out.stdout)?)
}

/// The chart as `helm template --validate` renders it for this cluster (Helm reads the cluster's
/// API versions), without the CRD; `extra` narrows it, e.g. to one template.
fn helm_template(cluster: &TestCluster, release: &str, extra: &[&str]) -> Result<String> {
    let chart = repo().join("charts/athens-operator");
    let chart = chart.to_str().context("chart path")?;
    let mut args = vec![
        "template",
        release,
        chart,
        "--validate",
        "--set",
        "crd.install=false",
    ];
    args.extend_from_slice(extra);
    run(cluster, "helm", &args, None)
}

/// The chart's policy as `helm template --validate` renders it for this cluster (Helm reads the
/// cluster's API versions), applied with kubectl. Returns its name.
fn install_policy(cluster: &TestCluster, release: &str, want_api_version: &str) -> Result<String> {
    let text = helm_template(
        cluster,
        release,
        &["--show-only", "templates/goproxy-policy.yaml"],
    )?;
    let policy: serde_yaml::Value = serde_yaml::from_str(&text)?;
    ensure!(
        policy["apiVersion"].as_str() == Some(want_api_version),
        "the chart rendered the policy as {:?}, want {want_api_version}:\n{text}",
        policy["apiVersion"]
    );
    run(cluster, "kubectl", &["apply", "-f", "-"], Some(&text))?;
    policy["metadata"]["name"]
        .as_str()
        .map(str::to_string)
        .context("policy without a name")
}

fn binding_api(api_version: &str) -> Result<ApiResource> {
    let (group, version) = api_version.split_once('/').context("group/version")?;
    Ok(ApiResource::from_gvk(&GroupVersionKind::gvk(
        group,
        version,
        "MutatingAdmissionPolicyBinding",
    )))
}

async fn wait_default_service_account(client: &Client, ns: &str) -> Result<()> {
    let api: Api<ServiceAccount> = Api::namespaced(client.clone(), ns);
    poll(TIMEOUT, "the default ServiceAccount", || async {
        Ok(api.get_opt("default").await?.is_some())
    })
    .await
}

async fn label(client: &Client, ns: &str, value: &str) -> Result<()> {
    let api: Api<Namespace> = Api::all(client.clone());
    let patch = serde_json::json!({"metadata": {"labels": {NAMESPACE_LABEL: value}}});
    api.patch(ns, &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    Ok(())
}

/// A proxy with `patterns` as no-sum patterns and, when there are any, [`PRIVATE`] as its
/// private patterns (which builds must not look up in the checksum database either).
fn proxy(name: &str, patterns: &[&str]) -> Result<AthensProxy> {
    let private: &[&str] = if patterns.is_empty() { &[] } else { &[PRIVATE] };
    Ok(serde_json::from_value(serde_json::json!({
        "apiVersion": "athens.dev/v1alpha1",
        "kind": "AthensProxy",
        "metadata": {"name": name},
        "spec": {
            "storage": {"filesystem": {}},
            "upstream": {"goproxy": "direct", "noSumPatterns": patterns, "private": private},
        },
    }))?)
}

/// The pod a CI system would create: an init container that sets nothing, a container that
/// sets its own GOPROXY, one with other variables.
fn build_pod(name: &str, opt_out: bool) -> serde_json::Value {
    let annotations = if opt_out {
        serde_json::json!({OPT_OUT_ANNOTATION: "false"})
    } else {
        serde_json::json!({})
    };
    serde_json::json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "annotations": annotations},
        "spec": {
            "initContainers": [{"name": "fetch", "image": "golang"}],
            "containers": [
                {"name": "build", "image": "golang", "env": [{"name": "CGO_ENABLED", "value": "0"}]},
                {"name": "own", "image": "golang", "env": [{"name": "GOPROXY", "value": "https://own.example"}]},
            ],
        },
    })
}

/// Each container's environment (init containers prefixed `init:`), as name -> value.
fn envs(pod: &serde_json::Value) -> BTreeMap<String, BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for (field, prefix) in [("initContainers", "init:"), ("containers", "")] {
        for c in pod["spec"][field].as_array().into_iter().flatten() {
            let env = c["env"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|e| {
                    Some((
                        e["name"].as_str()?.to_string(),
                        e["value"].as_str()?.to_string(),
                    ))
                })
                .collect();
            out.insert(
                format!("{prefix}{}", c["name"].as_str().unwrap_or_default()),
                env,
            );
        }
    }
    out
}

fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Creates the pod for real and returns it as stored.
async fn create_pod(
    client: &Client,
    ns: &str,
    pod: &serde_json::Value,
) -> Result<serde_json::Value> {
    let api: Api<Pod> = Api::namespaced(client.clone(), ns);
    let pod: Pod = serde_json::from_value(pod.clone())?;
    let created = api.create(&PostParams::default(), &pod).await?;
    Ok(serde_json::to_value(created)?)
}

/// What a user runs to see it: `kubectl create --dry-run=server -o json`.
fn kubectl_dry_run(
    cluster: &TestCluster,
    ns: &str,
    pod: &serde_json::Value,
) -> Result<serde_json::Value> {
    let out = run(
        cluster,
        "kubectl",
        &[
            "-n",
            ns,
            "create",
            "--dry-run=server",
            "-o",
            "json",
            "-f",
            "-",
        ],
        Some(&pod.to_string()),
    )?;
    Ok(serde_json::from_str(&out)?)
}

async fn injection_condition(
    api: &Api<AthensProxy>,
    name: &str,
) -> Result<(String, String, String)> {
    let p = api.get(name).await?;
    let c = p
        .status
        .as_ref()
        .and_then(|s| s.condition(GOPROXY_INJECTION))
        .context("no GoproxyInjection condition yet")?;
    Ok((c.status.clone(), c.reason.clone(), c.message.clone()))
}

async fn wait_condition(
    api: &Api<AthensProxy>,
    name: &str,
    status: &str,
    reason: &str,
) -> Result<String> {
    let last = std::sync::Mutex::new(None);
    let what = format!("GoproxyInjection={status} ({reason}) on {name}");
    let res = poll(TIMEOUT, &what, || async {
        let c = injection_condition(api, name).await?;
        let ok = c.0 == status && c.1 == reason;
        *last.lock().expect("not poisoned") = Some(c);
        Ok(ok)
    })
    .await;
    let last = last.into_inner().expect("not poisoned");
    match (res, last) {
        (Ok(()), Some(c)) => Ok(c.2),
        (Err(e), last) => Err(e.context(format!("last condition: {last:?}"))),
        (Ok(()), None) => bail!("no condition"),
    }
}

/// Everything the injection must do, on one cluster whose MutatingAdmissionPolicy API is
/// `api_version`.
async fn injection_suite(cluster: &TestCluster, api_version: &str) -> Result<()> {
    let client = cluster.client().await?;
    install_crd(&client).await?;
    let home = TestNamespace::new_in(cluster, "goproxy").await?;
    let ci = TestNamespace::new_in(cluster, "goproxy-ci").await?;
    let ci2 = TestNamespace::new_in(cluster, "goproxy-ci2").await?;
    let other = TestNamespace::new_in(cluster, "goproxy-other").await?;
    let pns = home.name().to_string();
    // One release per run: the policy is cluster-wide, its name comes from the release.
    let policy = install_policy(cluster, &pns, api_version)?;
    let bindings: Api<DynamicObject> = Api::all_with(client.clone(), &binding_api(api_version)?);

    // An orphan from an earlier operator: its proxy never existed. Deleted at startup.
    let orphan = format!("athens-goproxy.{pns}.gone");
    let orphan_obj = serde_json::json!({
        "apiVersion": api_version,
        "kind": "MutatingAdmissionPolicyBinding",
        "metadata": {"name": orphan, "labels": {
            "app.kubernetes.io/managed-by": "athens-operator",
            "athens.dev/proxy-namespace": pns,
            "athens.dev/proxy-uid": "no-such-uid",
        }},
        "spec": {
            "policyName": policy,
            "paramRef": {"name": "gone", "namespace": pns, "parameterNotFoundAction": "Allow"},
            "matchResources": {"namespaceSelector": {"matchLabels": {NAMESPACE_LABEL: format!("{pns}.gone")}}},
        },
    });
    bindings
        .patch(
            &orphan,
            &PatchParams::apply("athens-e2e"),
            &Patch::Apply(&orphan_obj),
        )
        .await?;

    for ns in [&ci, &ci2, &other] {
        wait_default_service_account(&client, ns.name()).await?;
    }
    label(&client, ci.name(), &format!("{pns}.gomods")).await?;
    label(&client, ci2.name(), &format!("{pns}.plain")).await?;

    let op = Operator::start(&client, &pns, &policy);
    let result = checks(
        cluster,
        &client,
        &pns,
        &bindings,
        &orphan,
        [&ci, &ci2, &other],
    )
    .await;
    // Whatever happened: stop the operator, release what it would have (a proxy's finalizer
    // would keep its namespace Terminating with no operator left to remove it), and go.
    op.stop().await;
    release_finalizers(&client, &pns).await?;
    run(
        cluster,
        "kubectl",
        &["delete", "mutatingadmissionpolicy", &policy],
        None,
    )?;
    for ns in [home, ci, ci2, other] {
        ns.cleanup().await?;
    }
    result
}

/// Removes every finalizer of the proxies in `ns` (teardown only).
async fn release_finalizers(client: &Client, ns: &str) -> Result<()> {
    let api: Api<AthensProxy> = Api::namespaced(client.clone(), ns);
    for p in api.list(&ListParams::default()).await? {
        if !p.finalizers().is_empty() {
            let patch = serde_json::json!({"metadata": {"finalizers": null}});
            api.patch(
                &p.name_any(),
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await?;
        }
    }
    Ok(())
}

/// The checks of [`injection_suite`], with the operator running.
async fn checks(
    cluster: &TestCluster,
    client: &Client,
    pns: &str,
    bindings: &Api<DynamicObject>,
    orphan: &str,
    [ci, ci2, other]: [&TestNamespace; 3],
) -> Result<()> {
    let client = client.clone();
    let pns = pns.to_string();
    let orphan = orphan.to_string();
    poll(
        TIMEOUT,
        "the orphaned binding deleted at startup",
        || async { Ok(bindings.get_opt(&orphan).await?.is_none()) },
    )
    .await?;

    let proxies: Api<AthensProxy> = Api::namespaced(client.clone(), &pns);
    proxies
        .create(&PostParams::default(), &proxy("gomods", &PATTERNS)?)
        .await?;
    proxies
        .create(&PostParams::default(), &proxy("plain", &[])?)
        .await?;
    let msg = wait_condition(&proxies, "gomods", "True", "Injected").await?;
    ensure!(msg.contains(ci.name()), "{msg}");
    wait_condition(&proxies, "plain", "True", "Injected").await?;
    let gomods = proxies.get("gomods").await?;
    ensure!(
        gomods.finalizers().iter().any(|f| f == FINALIZER),
        "no finalizer: {:?}",
        gomods.finalizers()
    );
    let url = gomods
        .status
        .as_ref()
        .and_then(|s| s.url.clone())
        .context("no url")?;
    let plain_url = proxies
        .get("plain")
        .await?
        .status
        .and_then(|s| s.url)
        .context("no url")?;
    let nosum = format!("{},{PRIVATE}", PATTERNS.join(","));

    // Real pods.
    let pod = create_pod(&client, ci.name(), &build_pod("build", false)).await?;
    let want_build = env(&[
        ("CGO_ENABLED", "0"),
        ("GOPROXY", &url),
        ("GONOSUMDB", &nosum),
    ]);
    let want = BTreeMap::from([
        (
            "init:fetch".to_string(),
            env(&[("GOPROXY", &url), ("GONOSUMDB", &nosum)]),
        ),
        ("build".to_string(), want_build.clone()),
        (
            "own".to_string(),
            env(&[("GOPROXY", "https://own.example"), ("GONOSUMDB", &nosum)]),
        ),
    ]);
    ensure!(
        envs(&pod) == want,
        "pod in the opted-in namespace: {:#?}",
        envs(&pod)
    );

    let untouched = BTreeMap::from([
        ("init:fetch".to_string(), env(&[])),
        ("build".to_string(), env(&[("CGO_ENABLED", "0")])),
        (
            "own".to_string(),
            env(&[("GOPROXY", "https://own.example")]),
        ),
    ]);
    let opted_out = create_pod(&client, ci.name(), &build_pod("opted-out", true)).await?;
    ensure!(
        envs(&opted_out) == untouched,
        "opted-out pod: {:#?}",
        envs(&opted_out)
    );
    let elsewhere = create_pod(&client, other.name(), &build_pod("build", false)).await?;
    ensure!(
        envs(&elsewhere) == untouched,
        "pod in an unlabelled namespace: {:#?}",
        envs(&elsewhere)
    );
    let plain_pod = create_pod(&client, ci2.name(), &build_pod("build", false)).await?;
    ensure!(
        envs(&plain_pod)["build"] == env(&[("CGO_ENABLED", "0"), ("GOPROXY", &plain_url)]),
        "a proxy without no-sum patterns sets no GONOSUMDB: {:#?}",
        envs(&plain_pod)
    );

    // kwok runs it: a real pod, scheduled and Running.
    let pods: Api<Pod> = Api::namespaced(client.clone(), ci.name());
    poll(TIMEOUT, "the injected pod Running", || async {
        let p = pods.get("build").await?;
        Ok(p.status.and_then(|s| s.phase).as_deref() == Some("Running"))
    })
    .await?;

    // What a user would run to see it.
    let dry = kubectl_dry_run(cluster, ci.name(), &build_pod("dry", false))?;
    ensure!(
        envs(&dry) == want,
        "kubectl create --dry-run=server: {:#?}",
        envs(&dry)
    );

    // Deleting the proxy: the finalizer removes the binding, and injection stops.
    let uid = gomods.uid().context("uid")?;
    proxies.delete("gomods", &DeleteParams::default()).await?;
    poll(TIMEOUT, "the proxy gone (finalizer removed)", || async {
        Ok(proxies.get_opt("gomods").await?.is_none())
    })
    .await?;
    let left = bindings
        .list(&ListParams::default().labels(&format!("athens.dev/proxy-uid={uid}")))
        .await?;
    ensure!(
        left.items.is_empty(),
        "binding left: {:?}",
        left.items.iter().map(|b| b.name_any()).collect::<Vec<_>>()
    );
    let after = kubectl_dry_run(cluster, ci.name(), &build_pod("after", false))?;
    ensure!(
        envs(&after) == untouched,
        "pod after the proxy's deletion: {:#?}",
        envs(&after)
    );

    proxies.delete("plain", &DeleteParams::default()).await?;
    poll(TIMEOUT, "the second proxy gone", || async {
        Ok(proxies.get_opt("plain").await?.is_none())
    })
    .await?;
    Ok(())
}

/// 1.35: v1beta1, served because `tests/cluster/up` runs the API server with the feature gate
/// and the runtime config.
#[tokio::test]
async fn goproxy_is_injected_on_kubernetes_1_35() -> Result<()> {
    injection_suite(TestCluster::get(), "admissionregistration.k8s.io/v1beta1").await
}

/// 1.36: v1, on by default (this API server runs without either flag).
#[tokio::test]
async fn goproxy_is_injected_on_kubernetes_1_36() -> Result<()> {
    let version = kube_next_version()?;
    let cluster = tokio::task::spawn_blocking(move || {
        DedicatedCluster::start_version("goproxy-136", Some(&version))
    })
    .await??;
    let served = run(
        cluster.cluster(),
        "kubectl",
        &["version", "-o", "json"],
        None,
    )?;
    let served: serde_json::Value = serde_json::from_str(&served)?;
    ensure!(
        served["serverVersion"]["minor"] == "36",
        "not a 1.36 API server: {served}"
    );
    injection_suite(cluster.cluster(), "admissionregistration.k8s.io/v1").await?;
    tokio::task::spawn_blocking(move || cluster.down()).await?
}

/// A binding whose policy is missing injects nothing, and the condition says so (after the
/// settling time), instead of the proxy looking fine.
#[tokio::test]
async fn missing_policy_is_reported_as_not_injected() -> Result<()> {
    let cluster = TestCluster::get();
    let client = cluster.client().await?;
    install_crd(&client).await?;
    let home = TestNamespace::new_in(cluster, "goproxy-nopolicy").await?;
    let ci = TestNamespace::new_in(cluster, "goproxy-nopolicy-ci").await?;
    let pns = home.name().to_string();
    wait_default_service_account(&client, ci.name()).await?;
    label(&client, ci.name(), &format!("{pns}.gomods")).await?;
    let op = Operator::start(&client, &pns, &format!("{pns}-no-such-policy"));
    let proxies: Api<AthensProxy> = Api::namespaced(client.clone(), &pns);
    let result = async {
        proxies
            .create(&PostParams::default(), &proxy("gomods", &PATTERNS)?)
            .await?;
        let msg = wait_condition(&proxies, "gomods", "False", "NotInjected").await?;
        ensure!(msg.contains("GOPROXY=<unset>"), "{msg}");
        proxies.delete("gomods", &DeleteParams::default()).await?;
        poll(TIMEOUT, "the proxy gone", || async {
            Ok(proxies.get_opt("gomods").await?.is_none())
        })
        .await
    }
    .await;
    op.stop().await;
    release_finalizers(&client, &pns).await?;
    home.cleanup().await?;
    ci.cleanup().await?;
    result
}

/// The chart rendered for this cluster (`helm template --validate`: Helm reads its API
/// versions); the kinds of its documents.
fn chart_kinds(cluster: &TestCluster, release: &str) -> Result<Vec<String>> {
    let text = helm_template(cluster, release, &[])?;
    let mut kinds = Vec::new();
    for doc in serde_yaml::Deserializer::from_str(&text) {
        let v: serde_yaml::Value = serde::Deserialize::deserialize(doc)?;
        if let Some(k) = v["kind"].as_str() {
            kinds.push(k.to_string());
        }
    }
    Ok(kinds)
}

/// A 1.35 cluster whose API server runs with `flags` (`none` or `runtime-config`), a proxy and a
/// labelled namespace: the proxy's GoproxyInjection condition must be `False` with `reason`.
async fn misconfigured_cluster(flags: &'static str, reason: &str) -> Result<()> {
    let dedicated = tokio::task::spawn_blocking(move || {
        DedicatedCluster::start_with(
            &format!("goproxy-{flags}"),
            &[("ATHENS_CLUSTER_MAP_FLAGS", flags)],
        )
    })
    .await??;
    let cluster = dedicated.cluster().clone();
    let client = cluster.client().await?;
    install_crd(&client).await?;
    let home = TestNamespace::new_in(&cluster, "goproxy").await?;
    let ci = TestNamespace::new_in(&cluster, "goproxy-ci").await?;
    let pns = home.name().to_string();
    let kinds = chart_kinds(&cluster, &pns)?;
    let policy = match flags {
        // Not served: the chart leaves the policy out (and still runs the operator with it).
        "none" => {
            ensure!(
                !kinds.iter().any(|k| k == "MutatingAdmissionPolicy"),
                "{kinds:?}"
            );
            format!("{pns}-athens-operator-goproxy")
        }
        // Served (v1beta1): the chart installs it, but without the gate nothing mutates.
        _ => install_policy(&cluster, &pns, "admissionregistration.k8s.io/v1beta1")?,
    };
    wait_default_service_account(&client, ci.name()).await?;
    label(&client, ci.name(), &format!("{pns}.gomods")).await?;
    let op = Operator::start(&client, &pns, &policy);
    let proxies: Api<AthensProxy> = Api::namespaced(client.clone(), &pns);
    let result = async {
        proxies
            .create(&PostParams::default(), &proxy("gomods", &PATTERNS)?)
            .await?;
        let msg = wait_condition(&proxies, "gomods", "False", reason).await?;
        let p = proxies.get("gomods").await?;
        if flags == "none" {
            ensure!(msg.contains("does not serve"), "{msg}");
            ensure!(p.finalizers().is_empty(), "{:?}", p.finalizers());
        }
        let dry = kubectl_dry_run(&cluster, ci.name(), &build_pod("dry", false))?;
        ensure!(
            !envs(&dry).values().any(|e| e.contains_key("GONOSUMDB")),
            "{:#?}",
            envs(&dry)
        );
        Ok(())
    }
    .await;
    op.stop().await;
    drop((home, ci));
    tokio::task::spawn_blocking(move || dedicated.down()).await??;
    result
}

/// 1.35 without the flags: the API is not served; the chart renders no policy, and the proxy
/// says so instead of failing quietly.
#[tokio::test]
async fn without_the_api_the_proxy_says_so() -> Result<()> {
    misconfigured_cluster("none", "APINotServed").await
}

/// 1.35 with the runtime config but not the feature gate: the API is served (the chart installs
/// the policy, the operator binds it) but nothing is mutated, and the dry-run check says so.
#[tokio::test]
async fn served_but_gated_off_is_reported_not_injected() -> Result<()> {
    misconfigured_cluster("runtime-config", "NotInjected").await
}
