//! The Helm chart (charts/athens-operator) against the real control plane: `helm lint`, the
//! rendered manifests accepted by the API server (server-side dry run), and a full life cycle:
//! install, the operator binary running with the chart ServiceAccount's token (so the chart's
//! RBAC is shown sufficient, and a verb it does not grant refused), upgrade, uninstall.

use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use athens_e2e::cluster::{TestCluster, TestNamespace};
use athens_e2e::wait::{poll, repo, wait_ready, workspace_bin};
use athens_operator::crd::{AthensProxy, DEGRADED};
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
                "--api-versions",
                "athens.dev/v1alpha1/AthensProxy",
                "--set",
                "serviceMonitor.enabled=true",
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
        "AthensProxy",
    ] {
        assert!(kinds.contains(&want), "no {want} in {kinds:?}");
    }
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

struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
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
#[tokio::test]
async fn chart_installs_an_operator_whose_rbac_suffices_and_uninstall_keeps_user_data() -> Result<()>
{
    let ns = TestNamespace::new("chart").await?;
    let admin = ns.client();
    let n = ns.name();
    let release = n.to_string(); // unique per test run
    let fullname = format!("{release}-athens-operator");
    let chart = chart();

    // Install, with a first AthensProxy from values. The CRD is shared by every test on this
    // cluster and kept by earlier uninstalls (naming their releases), so this release takes it
    // over, as a user reinstalling under a new release name does. On a fresh cluster (CI's) the
    // CRD does not exist yet: then Helm cannot create the proxy in the same command, and the
    // notes must say so; the test follows them, as a user would.
    let crds: Api<CustomResourceDefinition> = Api::all(admin.clone());
    let crd_existed = crds.get_opt("athensproxies.athens.dev").await?.is_some();
    let notes = run(
        tool(
            "helm",
            &[
                "install",
                &release,
                &chart,
                "--namespace",
                n,
                "--take-ownership",
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
    assert!(
        notes.contains(&format!("rollout status deployment/{fullname}")),
        "{notes}"
    );
    let deployments: Api<Deployment> = Api::namespaced(admin.clone(), n);
    assert!(deployments.get_opt(&fullname).await?.is_some());
    if !crd_existed {
        let upgrade =
            format!("helm upgrade {release} charts/athens-operator --namespace {n} --reuse-values");
        assert!(notes.contains(&upgrade), "{notes}");
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
                ],
            ),
            None,
        )?;
    }

    // The operator binary, as the chart's ServiceAccount. Watching only this namespace keeps it
    // away from other tests' proxies; cluster-wide list/watch is checked below.
    let dir = tempfile::tempdir()?;
    let (sa_kubeconfig, sa_client) =
        service_account_kubeconfig(&admin, n, &fullname, dir.path()).await?;
    let operator = OperatorRun::start(
        &sa_kubeconfig,
        dir.path(),
        (n, &fullname),
        &["--namespace", n],
    )?;
    let with_log = |e| operator.with_log(e);
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
    let proxies: Api<AthensProxy> = Api::namespaced(admin.clone(), n);
    wait_ready(TIMEOUT, &proxies, "gomods-s3")
        .await
        .map_err(with_log)?;
    wait_ready(TIMEOUT, &proxies, "first")
        .await
        .map_err(with_log)?;
    // The filesystem example gets its claim (the cluster has no provisioner, so it stays
    // Pending and the proxy is not Ready: the claim is the user data checked below).
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(admin.clone(), n);
    poll(TIMEOUT, "the filesystem example's claim", || async {
        Ok(pvcs.get_opt("gomods-storage").await?.is_some())
    })
    .await
    .map_err(with_log)?;
    let lease = Api::<Lease>::namespaced(admin.clone(), n)
        .get(&fullname)
        .await?;
    assert_eq!(
        lease.spec.and_then(|s| s.holder_identity).as_deref(),
        Some("chart-test")
    );
    operator.assert_never_refused()?;

    // What the chart grants and refuses, asked as the ServiceAccount.
    let can_i = |args: &[&str]| can_i(&sa_kubeconfig, args);
    for granted in [
        &["watch", "athensproxies.athens.dev", "--all-namespaces"][..],
        &["patch", "deployments.apps", "-n", "default"],
        &["list", "secrets", "--all-namespaces"],
    ] {
        assert_eq!(can_i(granted)?, "yes", "{granted:?}");
    }
    for refused in [
        &["delete", "nodes"][..],
        &["delete", "athensproxies.athens.dev", "-n", n],
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
    drop(operator);

    // Upgrade to changed values: the Deployment follows, the CRD is still the chart's.
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
            ],
        ),
        None,
    )?;
    let d = deployments.get(&fullname).await?;
    let spec = d.spec.context("deployment spec")?;
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
    let crds: Api<CustomResourceDefinition> = Api::all(admin.clone());
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
    assert!(
        Api::<ClusterRole>::all(admin.clone())
            .get_opt(&fullname)
            .await?
            .is_none()
    );
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
    ns.cleanup().await
}

/// A namespace-scoped install (`watchNamespaces`): Roles in the watched namespace instead of a
/// ClusterRole. The operator, as the chart's ServiceAccount, reconciles a proxy there to Ready,
/// leaves other namespaces alone, and cannot read Secrets outside; the chart's limits reach it.
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
    assert!(
        !docs
            .iter()
            .any(|d| d["kind"] == "ClusterRole" || d["kind"] == "ClusterRoleBinding"),
        "a namespace-scoped install rendered cluster-wide RBAC"
    );
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
