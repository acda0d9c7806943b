//! The real Kubernetes control plane the operator tests run against (tier 3 in the design).
//!
//! [`TestCluster::get`] runs `tests/cluster/up`, which starts etcd, kube-apiserver,
//! kube-controller-manager, kube-scheduler and kwok as local processes (building them from Go
//! modules the first time) or, when they already run, only reports where they are. `tests/run`
//! starts the cluster before `cargo test` and stops it afterwards; a test started some other way
//! starts it itself and leaves it running for the next one (`tests/cluster/down` stops it).
//!
//! A test that must own a whole cluster (one that has never seen the CRD, or whose API server
//! and etcd it stops) starts a [`DedicatedCluster`]: its own state folder and ports, stopped when
//! dropped.
//!
//! There is no skipping: if the control plane cannot be started the test fails with `up`'s output.
//! Each test gets its own [`TestNamespace`], so tests run in parallel on the one cluster.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use anyhow::{Context, Result, bail};
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{DeleteParams, ObjectMeta, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client, Config};

/// Where a running control plane is: what `tests/cluster/up` prints.
#[derive(Debug, Clone)]
pub struct TestCluster {
    /// The admin kubeconfig (client certificate in `system:masters`).
    pub kubeconfig: PathBuf,
    /// The folder holding the `kubectl` and `helm` built for the tests.
    pub path_dir: PathBuf,
    /// The state folder of a dedicated cluster; `None` for the shared one (whose folder is the
    /// scripts' default or `$ATHENS_CLUSTER_STATE`, and which no test may stop).
    state: Option<PathBuf>,
}

/// One of `tests/cluster/`'s scripts.
fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("cluster")
        .join(name)
}

/// Runs a cluster script for the given state folder (the shared cluster's when `None`); its
/// stdout. stderr is inherited: the first run builds Kubernetes, and its progress should be visible.
fn run_script(name: &str, args: &[&str], state: Option<&Path>) -> Result<String> {
    run_script_env(name, args, state, &[])
}

fn run_script_env(
    name: &str,
    args: &[&str],
    state: Option<&Path>,
    env: &[(&str, &str)],
) -> Result<String> {
    let path = script(name);
    let mut cmd = Command::new(&path);
    cmd.args(args).stderr(std::process::Stdio::inherit());
    if let Some(state) = state {
        cmd.env("ATHENS_CLUSTER_STATE", state);
    }
    cmd.envs(env.iter().copied());
    let out = cmd
        .output()
        .with_context(|| format!("running {}", path.display()))?;
    if !out.status.success() {
        bail!("{} {args:?} failed ({})", path.display(), out.status);
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

impl TestCluster {
    /// Starts the shared control plane, or finds it running, once per test process.
    ///
    /// Panics (failing the test) when it cannot be started: these tests never skip.
    pub fn get() -> &'static TestCluster {
        static CLUSTER: OnceLock<TestCluster> = OnceLock::new();
        CLUSTER.get_or_init(|| {
            Self::up(None, &[]).unwrap_or_else(|e| panic!("no test control plane: {e:#}"))
        })
    }

    fn up(state: Option<&Path>, env: &[(&str, &str)]) -> Result<TestCluster> {
        let mut cluster = Self::parse(&run_script_env("up", &[], state, env)?)?;
        cluster.state = state.map(Path::to_path_buf);
        Ok(cluster)
    }

    /// Stops (`stop`: SIGTERM, `kill`: SIGKILL) or starts again (`start`, waiting until it
    /// serves) one component of a dedicated cluster: `etcd`, `kube-apiserver`,
    /// `kube-controller-manager`, `kube-scheduler` or `kwok`.
    pub fn component(&self, action: &str, name: &str) -> Result<()> {
        let state = self
            .state
            .as_deref()
            .context("only a dedicated cluster's components may be stopped")?;
        run_script("component", &[action, name], Some(state)).map(drop)
    }

    /// The ports `up` chose, by name (`etcd_port`, `apiserver_port`, ...), from the state folder.
    pub fn ports(&self) -> Result<BTreeMap<String, u16>> {
        let dir = self
            .kubeconfig
            .parent()
            .context("kubeconfig outside a state folder")?;
        let text = std::fs::read_to_string(dir.join("ports"))?;
        text.lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| Ok((k.to_string(), v.trim().parse()?)))
            .collect()
    }

    /// Reads `export KUBECONFIG=...` and `export PATH=<dir>:$PATH` lines.
    fn parse(stdout: &str) -> Result<TestCluster> {
        let mut kubeconfig = None;
        let mut path_dir = None;
        for line in stdout.lines() {
            if let Some(v) = line.strip_prefix("export KUBECONFIG=") {
                kubeconfig = Some(PathBuf::from(v));
            } else if let Some(v) = line.strip_prefix("export PATH=") {
                path_dir = v.strip_suffix(":$PATH").map(PathBuf::from);
            }
        }
        Ok(TestCluster {
            kubeconfig: kubeconfig.context("up printed no KUBECONFIG line")?,
            path_dir: path_dir.context("up printed no PATH line")?,
            state: None,
        })
    }

    /// A client for the admin user. Made per call: a client belongs to the Tokio runtime that
    /// created it, and every `#[tokio::test]` has its own runtime.
    pub async fn client(&self) -> Result<Client> {
        // Two rustls crypto providers are compiled in (see Cargo.toml): choose one. Idempotent.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let kubeconfig = Kubeconfig::read_from(&self.kubeconfig)?;
        let config =
            Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default()).await?;
        Ok(Client::try_from(config)?)
    }

    /// A kubeconfig (YAML text) for the same API server and CA, authenticating with a bearer
    /// token instead of the admin certificate: to act as a ServiceAccount.
    pub fn token_kubeconfig(&self, token: &str) -> Result<String> {
        let text = std::fs::read_to_string(&self.kubeconfig)?;
        let admin: serde_json::Value = serde_yaml::from_str(&text)?;
        let cluster = &admin["clusters"][0]["cluster"];
        let server = cluster["server"]
            .as_str()
            .context("kubeconfig has no server")?;
        let ca = cluster["certificate-authority"]
            .as_str()
            .context("kubeconfig has no certificate-authority file")?;
        let config = serde_json::json!({
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "athens-test", "cluster": {"server": server, "certificate-authority": ca}}],
            "users": [{"name": "token", "user": {"token": token}}],
            "contexts": [{"name": "token", "context": {"cluster": "athens-test", "user": "token"}}],
            "current-context": "token",
        });
        Ok(serde_yaml::to_string(&config)?)
    }

    /// A command for `kubectl`, `helm` or anything else that should talk to this cluster: the
    /// cluster's binaries first on `PATH`, `KUBECONFIG` set.
    pub fn command(&self, program: &str) -> Command {
        let path = std::env::var_os("PATH").unwrap_or_default();
        let mut dirs = vec![self.path_dir.clone()];
        dirs.extend(std::env::split_paths(&path));
        let mut cmd = Command::new(self.path_dir.join(program));
        if !self.path_dir.join(program).exists() {
            cmd = Command::new(program);
        }
        cmd.env(
            "PATH",
            std::env::join_paths(dirs).expect("PATH entries without ':'"),
        )
        .env("KUBECONFIG", &self.kubeconfig);
        cmd
    }
}

/// A version pinned in `tests/cluster/versions` (`KUBE_VERSION`, `KUBE_NEXT_VERSION`).
pub fn pinned_version(key: &str) -> Result<String> {
    let text = std::fs::read_to_string(script("versions"))?;
    text.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
        .map(|v| v.trim().to_string())
        .with_context(|| format!("tests/cluster/versions has no {key}"))
}

/// The second Kubernetes version the tests run an API server of (`KUBE_NEXT_VERSION`).
pub fn kube_next_version() -> Result<String> {
    pinned_version("KUBE_NEXT_VERSION")
}

/// A control plane of one test's own: its own state folder and ports (`up` picks free ones), so
/// it has never seen the CRD and may have its components stopped. `down` when dropped.
pub struct DedicatedCluster {
    cluster: TestCluster,
    dir: tempfile::TempDir,
}

impl DedicatedCluster {
    /// Starts one (about 10 s on an idle machine once the binaries are built).
    pub fn start(prefix: &str) -> Result<DedicatedCluster> {
        Self::start_version(prefix, None)
    }

    /// Starts one whose API server has another version: `tests/cluster/versions`'
    /// `KUBE_NEXT_VERSION` (see [`kube_next_version`]); `None` is the main version.
    pub fn start_version(prefix: &str, kube_version: Option<&str>) -> Result<DedicatedCluster> {
        let env: Vec<(&str, &str)> = kube_version
            .map(|v| ("ATHENS_CLUSTER_KUBE_VERSION", v))
            .into_iter()
            .collect();
        Self::start_with(prefix, &env)
    }

    /// Starts one with settings for `tests/cluster/up` in its environment
    /// (`ATHENS_CLUSTER_KUBE_VERSION`, `ATHENS_CLUSTER_MAP_FLAGS`).
    pub fn start_with(prefix: &str, env: &[(&str, &str)]) -> Result<DedicatedCluster> {
        let dir = tempfile::Builder::new()
            .prefix(&format!("athens-cluster-{prefix}-"))
            .tempdir()?;
        let state = dir.path().join("state");
        let cluster = TestCluster::up(Some(&state), env).inspect_err(|_| {
            let _ = run_script("down", &[], Some(&state));
        })?;
        Ok(DedicatedCluster { cluster, dir })
    }

    pub fn cluster(&self) -> &TestCluster {
        &self.cluster
    }

    /// `down`, then at once `up` again on the same state folder (the same port search).
    pub fn down_and_up(&mut self) -> Result<()> {
        let state = self.dir.path().join("state");
        run_script("down", &[], Some(&state))?;
        self.cluster = TestCluster::up(Some(&state), &[])?;
        Ok(())
    }

    /// Stops it, reporting a failure (dropping it stops it too, ignoring failures).
    pub fn down(self) -> Result<()> {
        let state = self.dir.path().join("state");
        run_script("down", &[], Some(&state)).map(drop)
    }
}

impl Drop for DedicatedCluster {
    fn drop(&mut self) {
        let state = self.dir.path().join("state");
        if state.exists() {
            let _ = run_script("down", &[], Some(&state));
        }
    }
}

/// A namespace of its own for one test, named `<prefix>-<random>` by the API server.
///
/// Delete it with [`TestNamespace::cleanup`] to wait until it is gone; dropping it only starts
/// the deletion (a drop cannot wait), which is enough to leave nothing behind.
pub struct TestNamespace {
    name: String,
    client: Client,
    cluster: TestCluster,
    cleaned: bool,
}

impl TestNamespace {
    /// Creates the namespace on the shared test cluster (starting the cluster if needed).
    pub async fn new(prefix: &str) -> Result<TestNamespace> {
        Self::new_in(TestCluster::get(), prefix).await
    }

    /// Creates the namespace on the given cluster.
    pub async fn new_in(cluster: &TestCluster, prefix: &str) -> Result<TestNamespace> {
        let client = cluster.client().await?;
        let ns = Namespace {
            metadata: ObjectMeta {
                generate_name: Some(format!("{prefix}-")),
                labels: Some([("athens.dev/test".to_string(), "true".to_string())].into()),
                ..Default::default()
            },
            ..Default::default()
        };
        let created = Api::<Namespace>::all(client.clone())
            .create(&PostParams::default(), &ns)
            .await
            .context("creating the test namespace")?;
        let name = created
            .metadata
            .name
            .context("created namespace has no name")?;
        Ok(TestNamespace {
            name,
            client,
            cluster: cluster.clone(),
            cleaned: false,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// A client for the cluster (any namespace; use [`TestNamespace::name`] for this one).
    pub fn client(&self) -> Client {
        self.client.clone()
    }

    /// Deletes the namespace and waits until the namespace controller has finished with it.
    pub async fn cleanup(mut self) -> Result<()> {
        self.cleaned = true;
        delete_namespace(
            &self.client,
            &self.name,
            std::time::Duration::from_secs(120),
        )
        .await
    }
}

/// Deletes a namespace and waits until it is gone (the namespace controller has deleted
/// everything in it and removed its finalizer).
pub async fn delete_namespace(
    client: &Client,
    name: &str,
    timeout: std::time::Duration,
) -> Result<()> {
    let api = Api::<Namespace>::all(client.clone());
    match api.delete(name, &DeleteParams::default()).await {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 404 => return Ok(()),
        Err(e) => return Err(e).context("deleting namespace"),
    }
    let deadline = tokio::time::Instant::now() + timeout;
    while api.get_opt(name).await?.is_some() {
        if tokio::time::Instant::now() > deadline {
            bail!("namespace {name} still exists after {timeout:?}");
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    Ok(())
}

impl Drop for TestNamespace {
    fn drop(&mut self) {
        if self.cleaned {
            return;
        }
        // No async in drop, and the test's runtime may be shutting down: ask kubectl, without waiting.
        let _ = self
            .cluster
            .command("kubectl")
            .args([
                "delete",
                "namespace",
                &self.name,
                "--wait=false",
                "--ignore-not-found",
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
    }
}
