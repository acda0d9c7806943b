//! The Helm chart (charts/athens-operator) against the real control plane: `helm lint`, the
//! rendered manifests accepted by the API server (server-side dry run), and a full life cycle:
//! install, the operator binary running with the chart ServiceAccount's token (so the chart's
//! RBAC is shown sufficient, and a verb it does not grant refused), upgrade, uninstall.

use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use athens_e2e::cluster::{DedicatedCluster, TestCluster, TestNamespace};
use athens_e2e::wait::{poll, repo, wait_ready, workspace_bin};
use athens_operator::crd::{AthensProxy, DEGRADED, GOPROXY_INJECTION};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Secret, ServiceAccount};
use k8s_openapi::api::rbac::v1::ClusterRole;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client};

const TIMEOUT: Duration = Duration::from_secs(120);
const CRD_NAME: &str = "athensproxies.athens.dev";

fn chart() -> String {
    repo()
        .join("charts/athens-operator")
        .to_string_lossy()
        .into_owned()
}

/// Runs a command; its stdout, or an error with its stderr.
fn run(mut cmd: Command, stdin: Option<&str>) -> Result<String> {
    let what = format!("{cmd:?}");
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn().with_context(|| format!("starting {what}"))?;
    if let Some(input) = stdin {
        use std::io::Write;
        child
            .stdin
            .take()
            .context("stdin")?
            .write_all(input.as_bytes())?;
    }
    let out = child.wait_with_output()?;
    if !out.status.success() {
        bail!(
            "{what} failed ({}):\n{}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn tool(program: &str, args: &[&str]) -> Command {
    let mut cmd = TestCluster::get().command(program);
    cmd.args(args);
    cmd
}

fn yaml_docs(text: &str) -> Result<Vec<serde_json::Value>> {
    let mut docs = Vec::new();
    for doc in serde_yaml::Deserializer::from_str(text) {
        let v: serde_json::Value = serde::Deserialize::deserialize(doc)?;
        if !v.is_null() {
            docs.push(v);
        }
    }
    Ok(docs)
}

/// Values for a first AthensProxy that becomes Ready on kwok (S3 with ambient credentials).
const FIRST_PROXY: &str = r#"firstProxy.spec={"storage":{"s3":{"bucket":"go-modules","region":"us-east-1"}},"upstream":{"goproxy":"off"}}"#;

/// What the chart, the Dockerfile and the operator say about images and versions agrees.
#[test]
fn chart_versions_and_images_agree_with_the_operator_and_dockerfile() -> Result<()> {
    let chart_yaml: serde_json::Value = serde_yaml::from_str(&std::fs::read_to_string(
        repo().join("charts/athens-operator/Chart.yaml"),
    )?)?;
    let version = env!("CARGO_PKG_VERSION");
    assert_eq!(chart_yaml["appVersion"], version);
    assert_eq!(
        athens_operator::render::DEFAULT_IMAGE,
        format!("athens-proxy:{version}")
    );
    let values: serde_json::Value = serde_yaml::from_str(&std::fs::read_to_string(
        repo().join("charts/athens-operator/values.yaml"),
    )?)?;
    assert_eq!(values["image"]["repository"], "athens-operator");
    let dockerfile = std::fs::read_to_string(repo().join("Dockerfile"))?;
    for want in [
        " AS operator",
        " AS proxy",
        "-t athens-operator:",
        "-t athens-proxy:",
        "USER 65532:65532",
    ] {
        assert!(dockerfile.contains(want), "Dockerfile lacks {want:?}");
    }
    Ok(())
}

/// `helm lint`; bad values fail at install time (values.schema.json); the rendered CRD is the
/// one generated from the Rust types; the API server accepts every rendered object.
#[tokio::test]
async fn chart_lints_and_the_api_server_accepts_its_manifests() -> Result<()> {
    let chart = chart();
    run(tool("helm", &["lint", "--strict", &chart]), None)?;
    run(
        tool(
            "helm",
            &[
                "lint",
                "--strict",
                &chart,
                "--set",
                "firstProxy.enabled=true",
                "--set-json",
                FIRST_PROXY,
            ],
        ),
        None,
    )?;
    for bad in [
        "logFormat=xml",
        "replicas=-1",
        "serviceMonitor.enabled=yes-please",
        "grafanaDashboard.enabled=yes-please",
        "firstProxy.enabled=true",
        "unknownKey=1",
    ] {
        let err = run(tool("helm", &["template", "t", &chart, "--set", bad]), None)
            .err()
            .with_context(|| format!("helm template accepted --set {bad}"))?;
        assert!(
            format!("{err:#}").contains("values don't meet the specifications"),
            "{bad}: {err:#}"
        );
    }

    let ns = TestNamespace::new("chart-dry").await?;
    let client = ns.client();
    // The AthensProxy kind must be known to dry-run one; a stand-in ServiceMonitor CRD lets the
    // optional ServiceMonitor be checked too (its own schema is the Prometheus Operator's).
    apply_crd(&client, &crd_value()?).await?;
    apply_crd(&client, &service_monitor_crd()).await?;

    let rendered = run(
        tool(
            "helm",
            &[
                "template",
                "dry",
                &chart,
                "--namespace",
                ns.name(),
                "--set",
                "serviceMonitor.enabled=true",
                "--set",
                "grafanaDashboard.enabled=true",
                "--set",
                "firstProxy.enabled=true",
                "--set-json",
                FIRST_PROXY,
            ],
        ),
        None,
    )?;
    let docs = yaml_docs(&rendered)?;
    let kinds: Vec<&str> = docs.iter().filter_map(|d| d["kind"].as_str()).collect();
    for want in [
        "ServiceAccount",
        "CustomResourceDefinition",
        "ClusterRole",
        "ClusterRoleBinding",
        "Role",
        "RoleBinding",
        "Service",
        "Deployment",
        "ServiceMonitor",
    ] {
        assert!(kinds.contains(&want), "no {want} in {kinds:?}");
    }
    let dashboard = docs
        .iter()
        .find(|d| d["kind"] == "ConfigMap" && d["metadata"]["labels"]["grafana_dashboard"] == "1")
        .context("no Grafana dashboard ConfigMap")?;
    let shipped: serde_json::Value = serde_json::from_str(
        dashboard["data"]["athens-proxy.json"]
            .as_str()
            .context("no athens-proxy.json in the dashboard ConfigMap")?,
    )?;
    let file: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(format!(
        "{chart}/files/grafana-dashboard.json"
    ))?)?;
    assert_eq!(
        shipped, file,
        "the dashboard ConfigMap carries files/grafana-dashboard.json"
    );
    // Helm does not create the first proxy (it could not in the install that creates the CRD):
    // the operator gets it, as an AthensProxy it can parse, in its environment.
    assert!(!kinds.contains(&"AthensProxy"), "{kinds:?}");
    let crd = docs
        .iter()
        .find(|d| d["kind"] == "CustomResourceDefinition")
        .context("no CRD")?;
    assert!(
        crd["spec"] == crd_value()?["spec"],
        "the chart's CRD differs from `athens-operator crd`: run charts/athens-operator/update-crd"
    );
    assert_eq!(
        crd["metadata"]["annotations"]["helm.sh/resource-policy"],
        "keep"
    );
    let deployment = docs
        .iter()
        .find(|d| d["kind"] == "Deployment")
        .context("no Deployment")?;
    let pod = &deployment["spec"]["template"]["spec"];
    let c = &pod["containers"][0];
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(c["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(c["securityContext"]["allowPrivilegeEscalation"], false);
    assert!(c["resources"]["requests"].is_object());
    assert!(c["livenessProbe"].is_object() && c["readinessProbe"].is_object());
    let first = c["env"]
        .as_array()
        .and_then(|env| {
            env.iter()
                .find(|e| e["name"] == "ATHENS_OPERATOR_FIRST_PROXY")
        })
        .and_then(|e| e["value"].as_str())
        .context("no ATHENS_OPERATOR_FIRST_PROXY in the Deployment")?;
    let first = athens_operator::first_proxy::parse(first)?;
    assert_eq!(
        (first.namespace.as_str(), first.name.as_str()),
        (ns.name(), "gomods")
    );
    assert_eq!(
        first.object["spec"]["storage"]["s3"]["bucket"],
        "go-modules"
    );

    run(
        tool("kubectl", &["apply", "--dry-run=server", "-f", "-"]),
        Some(&rendered),
    )
    .context("the API server refused the rendered chart")?;
    ns.cleanup().await
}

/// `athens-operator crd`, as JSON.
fn crd_value() -> Result<serde_json::Value> {
    Ok(serde_yaml::from_str(&athens_operator::crd::crd_yaml())?)
}

fn service_monitor_crd() -> serde_json::Value {
    serde_json::json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "servicemonitors.monitoring.coreos.com"},
        "spec": {
            "group": "monitoring.coreos.com",
            "names": {"kind": "ServiceMonitor", "plural": "servicemonitors", "singular": "servicemonitor"},
            "scope": "Namespaced",
            "versions": [{
                "name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}
            }]
        }
    })
}

/// Server-side applies a CRD (as a separate field manager, leaving Helm's fields alone) and
/// waits until it is Established.
async fn apply_crd(client: &Client, crd: &serde_json::Value) -> Result<()> {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let name = crd["metadata"]["name"].as_str().context("CRD name")?;
    api.patch(
        name,
        &PatchParams::apply("athens-e2e").force(),
        &Patch::Apply(crd),
    )
    .await?;
    poll(TIMEOUT, &format!("CRD {name} Established"), || async {
        let crd = api.get(name).await?;
        Ok(crd.status.and_then(|s| s.conditions).is_some_and(|cs| {
            cs.iter()
                .any(|c| c.type_ == "Established" && c.status == "True")
        }))
    })
    .await
}

/// A kubeconfig (written under `dir`) and a client with a token of ServiceAccount `sa`, from the
/// TokenRequest API: what the operator pod would authenticate as.
async fn service_account_kubeconfig(
    admin: &Client,
    ns: &str,
    sa: &str,
    dir: &std::path::Path,
) -> Result<(std::path::PathBuf, Client)> {
    let token = Api::<ServiceAccount>::namespaced(admin.clone(), ns)
        .create_token_request(
            sa,
            &PostParams::default(),
            &TokenRequest {
                spec: TokenRequestSpec {
                    audiences: vec![],
                    expiration_seconds: Some(3600),
                    ..Default::default()
                },
                ..Default::default()
            },
        )
        .await?
        .status
        .context("TokenRequest has no status")?
        .token;
    let path = dir.join("kubeconfig");
    std::fs::write(&path, TestCluster::get().token_kubeconfig(&token)?)?;
    let client = Client::try_from(
        kube::Config::from_custom_kubeconfig(
            Kubeconfig::read_from(&path)?,
            &KubeConfigOptions::default(),
        )
        .await?,
    )?;
    Ok((path, client))
}

/// `kubectl auth can-i <args>` as the identity in `kubeconfig`: "yes" or "no".
fn can_i(kubeconfig: &std::path::Path, args: &[&str]) -> Result<String> {
    let mut cmd = tool("kubectl", &["auth", "can-i"]);
    cmd.args(args)
        .env("KUBECONFIG", kubeconfig)
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    Ok(String::from_utf8_lossy(&cmd.output()?.stdout)
        .trim()
        .to_string())
}

/// `athens-operator run` as the identity in `kubeconfig`, logging to a file under `dir`, with
/// leader election on the chart's Lease (`fullname` in the release namespace `ns`), as the
/// chart's Deployment sets it.
struct OperatorRun {
    _child: Child,
    log_path: std::path::PathBuf,
}

impl OperatorRun {
    fn start(
        kubeconfig: &std::path::Path,
        dir: &std::path::Path,
        (ns, fullname): (&str, &str),
        args: &[&str],
    ) -> Result<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let log_path = dir.join("operator.log");
        let log = std::fs::File::create(&log_path)?;
        let child = Command::new(workspace_bin("athens-operator")?)
            .arg("run")
            .args(args)
            .args([
                "--lease-namespace",
                ns,
                "--lease-name",
                fullname,
                "--identity",
                "chart-test",
                "--http-addr",
                &format!("127.0.0.1:{port}"),
            ])
            .env("KUBECONFIG", kubeconfig)
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()?;
        Ok(Self {
            _child: Child(child),
            log_path,
        })
    }

    /// `e` with the last lines of the operator's log.
    fn with_log(&self, e: anyhow::Error) -> anyhow::Error {
        let log = std::fs::read_to_string(&self.log_path).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(12).collect();
        e.context(format!(
            "operator log (last lines, newest first):\n{}",
            tail.join("\n")
        ))
    }

    /// The API server refused the operator nothing it tried.
    fn assert_never_refused(&self) -> Result<()> {
        let log = std::fs::read_to_string(&self.log_path)?;
        assert!(
            !log.contains("forbidden") && !log.contains("Forbidden"),
            "the operator was refused something:\n{log}"
        );
        Ok(())
    }
}

/// Install, run the operator as the chart's ServiceAccount, upgrade, uninstall.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Child {
    /// SIGTERM, as the kubelet stops a pod: the operator releases its Lease.
    fn terminate(mut self) -> Result<()> {
        let pid = self.0.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status()?;
        self.0.wait()?;
        Ok(())
    }
}

/// The operator binary as the chart's Deployment runs it: the container's `args` and its
/// `ATHENS_OPERATOR_*` environment as rendered (kwok runs no container, so the test does),
/// with only what a pod has and a test process lacks given here: credentials (the chart
/// ServiceAccount's token), a pod name and namespace, and a free port for the probes.
fn spawn_like_the_deployment(
    deployment: &Deployment,
    kubeconfig: &std::path::Path,
    namespace: &str,
    log_path: &std::path::Path,
) -> Result<Child> {
    let pod = deployment
        .spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .context("deployment without a pod spec")?;
    let container = &pod.containers[0];
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log_path)?;
    let mut cmd = Command::new(workspace_bin("athens-operator")?);
    cmd.args(container.args.iter().flatten());
    for e in container.env.iter().flatten() {
        if let Some(v) = &e.value {
            cmd.env(&e.name, v);
        }
    }
    cmd.env("ATHENS_OPERATOR_HTTP_ADDR", format!("127.0.0.1:{port}"))
        .env("POD_NAME", "chart-test")
        .env("POD_NAMESPACE", namespace)
        .env("KUBECONFIG", kubeconfig)
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stdout(log.try_clone()?)
        .stderr(log);
    Ok(Child(cmd.spawn()?))
}

/// On a cluster that has never seen the CRD: one `helm install` with a first proxy, the operator
/// run as the chart's Deployment and ServiceAccount (so the chart's RBAC is shown sufficient),
/// the first proxy Ready with no second command, upgrade, uninstall. The cluster is this test's
/// own, so no other test's CRD or discovery state can make it pass or fail.
#[tokio::test]
async fn chart_installs_an_operator_whose_rbac_suffices_and_uninstall_keeps_user_data() -> Result<()>
{
    let dedicated = DedicatedCluster::start("chart")?;
    let cluster = dedicated.cluster().clone();
    let tool = |program: &str, args: &[&str]| {
        let mut cmd = cluster.command(program);
        cmd.args(args);
        cmd
    };
    let ns = TestNamespace::new_in(&cluster, "chart").await?;
    let admin = ns.client();
    let n = ns.name();
    let release = "athens".to_string();
    let fullname = format!("{release}-athens-operator");
    let chart = chart();

    let crds: Api<CustomResourceDefinition> = Api::all(admin.clone());
    assert!(
        crds.get_opt(CRD_NAME).await?.is_none(),
        "a fresh cluster has the CRD"
    );
    let notes = run(
        tool(
            "helm",
            &[
                "install",
                &release,
                &chart,
                "--namespace",
                n,
                "--set",
                "firstProxy.enabled=true",
                "--set",
                "firstProxy.name=first",
                "--set-json",
                FIRST_PROXY,
            ],
        ),
        None,
    )?;
    for want in [
        format!("rollout status deployment/{fullname}"),
        "wait --for=create athensproxy/first".to_string(),
        "wait --for=condition=Ready athensproxy/first".to_string(),
    ] {
        assert!(notes.contains(&want), "notes lack {want:?}:\n{notes}");
    }
    assert!(!notes.contains("helm upgrade"), "{notes}");
    let deployments: Api<Deployment> = Api::namespaced(admin.clone(), n);
    let deployment = deployments.get(&fullname).await?;
    assert!(crds.get_opt(CRD_NAME).await?.is_some());
    // The install returns once the CRD object exists; its resource path is served only once the
    // API server has established it (before that a GET is a bare "404 page not found").
    let deadline = std::time::Instant::now() + TIMEOUT;
    loop {
        let crd = crds.get(CRD_NAME).await?;
        let established = crd
            .status
            .and_then(|s| s.conditions)
            .unwrap_or_default()
            .iter()
            .any(|c| c.type_ == "Established" && c.status == "True");
        if established {
            break;
        }
        if std::time::Instant::now() > deadline {
            bail!("CRD {CRD_NAME} not Established within {TIMEOUT:?}");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let proxies: Api<AthensProxy> = Api::namespaced(admin.clone(), n);
    assert!(
        proxies.get_opt("first").await?.is_none(),
        "Helm itself created the first proxy"
    );

    // The chart ServiceAccount's credentials, from the TokenRequest API.
    let token = Api::<ServiceAccount>::namespaced(admin.clone(), n)
        .create_token_request(
            &fullname,
            &PostParams::default(),
            &TokenRequest {
                spec: TokenRequestSpec {
                    audiences: vec![],
                    expiration_seconds: Some(3600),
                    ..Default::default()
                },
                ..Default::default()
            },
        )
        .await?
        .status
        .context("TokenRequest has no status")?
        .token;
    let dir = tempfile::tempdir()?;
    let sa_kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(&sa_kubeconfig, cluster.token_kubeconfig(&token)?)?;
    let sa_client = Client::try_from(
        kube::Config::from_custom_kubeconfig(
            Kubeconfig::read_from(&sa_kubeconfig)?,
            &KubeConfigOptions::default(),
        )
        .await?,
    )?;

    let log_path = dir.path().join("operator.log");
    let operator = spawn_like_the_deployment(&deployment, &sa_kubeconfig, n, &log_path)?;
    let with_log = |e: anyhow::Error| {
        let log = std::fs::read_to_string(&log_path).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(12).collect();
        e.context(format!(
            "operator log (last lines, newest first):\n{}",
            tail.join("\n")
        ))
    };
    run(
        tool(
            "kubectl",
            &[
                "apply",
                "-n",
                n,
                "-f",
                &repo().join("examples/s3.yaml").to_string_lossy(),
                "-f",
                &repo().join("examples/filesystem.yaml").to_string_lossy(),
            ],
        ),
        None,
    )?;
    let first = wait_ready(TIMEOUT, &proxies, "first")
        .await
        .map_err(with_log)?;
    assert_eq!(first.spec.upstream.goproxy, "off");
    wait_ready(TIMEOUT, &proxies, "gomods-s3")
        .await
        .map_err(with_log)?;
    // The filesystem example's claim is provisioned and bound for real (the controller-manager's
    // hostPath provisioner), so that proxy becomes Ready too.
    wait_ready(TIMEOUT, &proxies, "gomods")
        .await
        .map_err(with_log)?;
    // Cluster-wide GOPROXY with the chart's RBAC: the policy is installed in the version the
    // cluster serves, and the operator (as the ServiceAccount) binds each proxy to it, which
    // the API server allows only to whoever may `get` the proxy.
    poll(TIMEOUT, "GoproxyInjection=True on gomods", || async {
        let p = proxies.get("gomods").await?;
        Ok(p.status
            .and_then(|s| s.condition(GOPROXY_INJECTION).cloned())
            .is_some_and(|c| c.status == "True" && c.reason == "Bound"))
    })
    .await
    .map_err(with_log)?;
    let goproxy_policy = format!("{fullname}-goproxy");
    let policy = run(
        tool(
            "kubectl",
            &[
                "get",
                "mutatingadmissionpolicy",
                &goproxy_policy,
                "-o",
                "jsonpath={.apiVersion}",
            ],
        ),
        None,
    )?;
    assert_eq!(policy.trim(), "admissionregistration.k8s.io/v1beta1");
    let binding = run(
        tool(
            "kubectl",
            &[
                "get",
                "mutatingadmissionpolicybinding",
                &format!("athens-goproxy.{n}.gomods"),
                "-o",
                "jsonpath={.spec.policyName}",
            ],
        ),
        None,
    )?;
    assert_eq!(binding.trim(), goproxy_policy);
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(admin.clone(), n);
    let claim = pvcs.get("gomods-storage").await?;
    assert_eq!(claim.status.and_then(|s| s.phase).as_deref(), Some("Bound"));
    let lease = Api::<Lease>::namespaced(admin.clone(), n)
        .get(&fullname)
        .await?;
    assert_eq!(
        lease.spec.and_then(|s| s.holder_identity).as_deref(),
        Some("chart-test")
    );
    let log = std::fs::read_to_string(&log_path)?;
    assert!(
        !log.contains("forbidden") && !log.contains("Forbidden"),
        "the operator was refused something:\n{log}"
    );

    // What the chart grants and refuses, asked as the ServiceAccount.
    let can_i = |args: &[&str]| {
        let mut cmd = tool("kubectl", &["auth", "can-i"]);
        cmd.args(args)
            .env("KUBECONFIG", &sa_kubeconfig)
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        cmd.output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    for granted in [
        &["watch", "athensproxies.athens.dev", "--all-namespaces"][..],
        &["patch", "deployments.apps", "-n", "default"],
        &["list", "secrets", "--all-namespaces"],
        &["patch", "athensproxies.athens.dev/first", "-n", n],
        // Cluster-wide GOPROXY (on by default): the finalizer on every proxy is a patch, and
        // the bindings are the operator's; the policy is the chart's alone.
        &["patch", "athensproxies.athens.dev/gomods", "-n", n],
        &[
            "create",
            "mutatingadmissionpolicybindings.admissionregistration.k8s.io",
        ],
        &[
            "delete",
            "mutatingadmissionpolicybindings.admissionregistration.k8s.io",
        ],
    ] {
        assert_eq!(can_i(granted)?, "yes", "{granted:?}");
    }
    for refused in [
        &["delete", "nodes"][..],
        &["delete", "athensproxies.athens.dev", "-n", n],
        &[
            "create",
            "mutatingadmissionpolicies.admissionregistration.k8s.io",
        ],
        &[
            "patch",
            "mutatingadmissionpolicies.admissionregistration.k8s.io",
        ],
        &[
            "get",
            "mutatingadmissionpolicies.admissionregistration.k8s.io",
        ],
        &["create", "athensproxies.athens.dev", "-n", "default"],
        &["create", "secrets", "-n", n],
        &["update", "customresourcedefinitions.apiextensions.k8s.io"],
        &["update", "leases.coordination.k8s.io", "-n", "default"],
    ] {
        assert_eq!(can_i(refused)?, "no", "{refused:?}");
    }
    // And for real: a write the operator never makes is refused by the API server.
    let secret: Secret = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "not-allowed"}, "stringData": {"k": "v"}
    }))?;
    match Api::<Secret>::namespaced(sa_client.clone(), n)
        .create(&PostParams::default(), &secret)
        .await
    {
        Err(kube::Error::Api(s)) if s.code == 403 => {}
        other => bail!("creating a Secret as the operator: expected 403, got {other:?}"),
    }
    match Api::<AthensProxy>::namespaced(sa_client.clone(), n)
        .delete("first", &DeleteParams::default())
        .await
    {
        Err(kube::Error::Api(s)) if s.code == 403 => {}
        other => bail!("deleting an AthensProxy as the operator: expected 403, got {other:?}"),
    }

    // A user's edit of the first proxy survives an operator restart with unchanged values.
    proxies
        .patch(
            "first",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"spec": {"replicas": 2}})),
        )
        .await?;
    operator.terminate()?;
    let operator = spawn_like_the_deployment(&deployment, &sa_kubeconfig, n, &log_path)?;
    poll(TIMEOUT, "the restarted operator to lead", || async {
        let log = std::fs::read_to_string(&log_path)?;
        Ok(log.matches("Unchanged").count() == 1)
    })
    .await
    .map_err(with_log)?;
    assert_eq!(proxies.get("first").await?.spec.replicas, 2);

    // Upgrade to changed values: the Deployment follows, the CRD is still the chart's, and the
    // operator run from the new Deployment applies the changed first proxy.
    run(
        tool(
            "helm",
            &[
                "upgrade",
                &release,
                &chart,
                "--namespace",
                n,
                "--reuse-values",
                "--set",
                "logFormat=text",
                "--set",
                "replicas=2",
                "--set",
                "firstProxy.spec.upstream.goproxy=direct",
            ],
        ),
        None,
    )?;
    let d = deployments.get(&fullname).await?;
    let spec = d.spec.clone().context("deployment spec")?;
    assert_eq!(spec.replicas, Some(2));
    let env = spec.template.spec.context("pod")?.containers[0]
        .env
        .clone()
        .unwrap_or_default();
    assert!(
        env.iter()
            .any(|e| e.name == "ATHENS_OPERATOR_LOG_FORMAT" && e.value.as_deref() == Some("text")),
        "{env:?}"
    );
    operator.terminate()?;
    let operator = spawn_like_the_deployment(&d, &sa_kubeconfig, n, &log_path)?;
    poll(TIMEOUT, "the changed first proxy to be applied", || async {
        Ok(proxies.get("first").await?.spec.upstream.goproxy == "direct")
    })
    .await
    .map_err(with_log)?;
    wait_ready(TIMEOUT, &proxies, "first")
        .await
        .map_err(with_log)?;
    operator.terminate()?;
    let crd = crds.get(CRD_NAME).await?;
    assert_eq!(
        crd.metadata
            .annotations
            .unwrap_or_default()
            .get("meta.helm.sh/release-name"),
        Some(&release)
    );

    // Uninstall: the operator goes; the CRD, every AthensProxy and every claim stay.
    run(
        tool("helm", &["uninstall", &release, "--namespace", n]),
        None,
    )?;
    assert!(deployments.get_opt(&fullname).await?.is_none());
    for role in [fullname.clone(), format!("{fullname}-goproxy")] {
        assert!(
            Api::<ClusterRole>::all(admin.clone())
                .get_opt(&role)
                .await?
                .is_none(),
            "{role} left"
        );
    }
    assert!(
        crds.get_opt(CRD_NAME).await?.is_some(),
        "uninstall deleted the CRD"
    );
    for name in ["first", "gomods-s3", "gomods"] {
        let p = proxies.get_opt(name).await?;
        assert!(
            p.is_some_and(|p| p.metadata.deletion_timestamp.is_none()),
            "uninstall deleted AthensProxy {name}"
        );
    }
    let claim = pvcs.get_opt("gomods-storage").await?;
    assert!(
        claim.is_some_and(|c| c.metadata.deletion_timestamp.is_none()),
        "uninstall deleted the claim"
    );
    drop(ns);
    dedicated.down()
}

#[tokio::test]
async fn chart_with_watch_namespaces_confines_the_operator_to_them() -> Result<()> {
    let ns = TestNamespace::new("chart-ns").await?;
    let watched = TestNamespace::new("chart-watched").await?;
    let other = TestNamespace::new("chart-other").await?;
    let admin = ns.client();
    let (n, w, o) = (ns.name(), watched.name(), other.name());
    let release = n.to_string();
    let fullname = format!("{release}-athens-operator");
    let chart = chart();
    // The CRD is shared by the tests on this cluster: applied, not owned by this release.
    apply_crd(&admin, &crd_value()?).await?;
    let values = [
        "--set",
        "crd.install=false",
        "--set-json",
        &format!(r#"watchNamespaces=["{w}"]"#),
        "--set-json",
        r#"allowedServiceAccounts=["builder"]"#,
    ];
    let mut template = tool("helm", &["template", &release, &chart, "--namespace", n]);
    template.args(values);
    let rendered = run(template, None)?;
    let docs = yaml_docs(&rendered)?;
    let kinds: Vec<(&str, &str)> = docs
        .iter()
        .filter_map(|d| Some((d["kind"].as_str()?, d["metadata"]["namespace"].as_str()?)))
        .collect();
    assert!(kinds.contains(&("Role", w)) && kinds.contains(&("RoleBinding", w)));
    // The only cluster-wide RBAC is cluster-wide GOPROXY's: bindings are cluster-scoped, and
    // its dry-run check lists labelled namespaces and creates (dry-run) pods in them.
    let goproxy_role = format!("{fullname}-goproxy");
    for d in docs
        .iter()
        .filter(|d| d["kind"] == "ClusterRole" || d["kind"] == "ClusterRoleBinding")
    {
        assert_eq!(
            d["metadata"]["name"].as_str(),
            Some(goproxy_role.as_str()),
            "a namespace-scoped install rendered other cluster-wide RBAC: {d:?}"
        );
        for rule in d["rules"].as_array().into_iter().flatten() {
            let resources: Vec<&str> = rule["resources"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|r| r.as_str())
                .collect();
            assert!(
                matches!(
                    resources.as_slice(),
                    ["mutatingadmissionpolicybindings"] | ["namespaces"] | ["pods"]
                ),
                "cluster-wide rule beyond GOPROXY injection: {rule:?}"
            );
        }
    }
    let mut install = tool("helm", &["install", &release, &chart, "--namespace", n]);
    install.args(values);
    run(install, None)?;
    let d = Api::<Deployment>::namespaced(admin.clone(), n)
        .get(&fullname)
        .await?;
    let env = d
        .spec
        .and_then(|s| s.template.spec)
        .context("pod")?
        .containers[0]
        .env
        .clone()
        .unwrap_or_default();
    let env_value = |name: &str| {
        env.iter()
            .find(|e| e.name == name)
            .and_then(|e| e.value.clone())
    };
    assert_eq!(
        env_value("ATHENS_OPERATOR_WATCH_NAMESPACES").as_deref(),
        Some(w)
    );
    let limit = env_value("ATHENS_OPERATOR_ALLOWED_SERVICE_ACCOUNTS").unwrap_or_default();
    assert_eq!(limit, "builder");

    let dir = tempfile::tempdir()?;
    let (sa_kubeconfig, sa_client) =
        service_account_kubeconfig(&admin, n, &fullname, dir.path()).await?;
    let operator = OperatorRun::start(
        &sa_kubeconfig,
        dir.path(),
        (n, &fullname),
        &[
            "--watch-namespaces",
            w,
            "--allowed-service-accounts",
            &limit,
        ],
    )?;
    let example = repo().join("examples/s3.yaml");
    for target in [w, o] {
        run(
            tool(
                "kubectl",
                &["apply", "-n", target, "-f", &example.to_string_lossy()],
            ),
            None,
        )?;
    }
    let outside = r#"{"apiVersion":"athens.dev/v1alpha1","kind":"AthensProxy","metadata":{"name":"outside"},
        "spec":{"serviceAccountName":"admin","storage":{"s3":{"bucket":"b"}},"upstream":{"goproxy":"off"}}}"#;
    run(
        tool("kubectl", &["apply", "-n", w, "-f", "-"]),
        Some(outside),
    )?;
    let in_watched: Api<AthensProxy> = Api::namespaced(admin.clone(), w);
    wait_ready(TIMEOUT, &in_watched, "gomods-s3")
        .await
        .map_err(|e| operator.with_log(e))?;
    poll(TIMEOUT, "ServiceAccountNotAllowed", || async {
        let p = in_watched.get("outside").await?;
        Ok(p.status
            .and_then(|s| s.condition(DEGRADED).cloned())
            .is_some_and(|c| c.status == "True" && c.reason == "ServiceAccountNotAllowed"))
    })
    .await
    .map_err(|e| operator.with_log(e))?;
    assert!(
        Api::<Deployment>::namespaced(admin.clone(), w)
            .get_opt("outside")
            .await?
            .is_none()
    );
    operator.assert_never_refused()?;
    // The proxy in the namespace not watched was never touched.
    let untouched = Api::<AthensProxy>::namespaced(admin.clone(), o)
        .get("gomods-s3")
        .await?;
    assert!(untouched.status.is_none(), "{:?}", untouched.status);

    for granted in [
        &["get", "secrets", "-n", w][..],
        &["watch", "athensproxies.athens.dev", "-n", w],
        &["patch", "deployments.apps", "-n", w],
    ] {
        assert_eq!(can_i(&sa_kubeconfig, granted)?, "yes", "{granted:?}");
    }
    for refused in [
        &["get", "secrets", "-n", o][..],
        &["list", "secrets", "--all-namespaces"],
        &["watch", "athensproxies.athens.dev", "--all-namespaces"],
        &["patch", "deployments.apps", "-n", o],
    ] {
        assert_eq!(can_i(&sa_kubeconfig, refused)?, "no", "{refused:?}");
    }
    // And for real: the Secret next door cannot be read.
    match Api::<Secret>::namespaced(sa_client, o)
        .get("gomods-s3")
        .await
    {
        Err(kube::Error::Api(s)) if s.code == 403 => {}
        other => {
            bail!("reading a Secret outside the watched namespaces: expected 403, got {other:?}")
        }
    }
    drop(operator);
    run(
        tool("helm", &["uninstall", &release, "--namespace", n]),
        None,
    )?;
    other.cleanup().await?;
    watched.cleanup().await?;
    ns.cleanup().await
}
