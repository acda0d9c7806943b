//! The real Kubernetes control plane the operator tests run against (tier 3 in the design).
//!
//! [`TestCluster::get`] runs `tests/cluster/up`, which starts etcd, kube-apiserver,
//! kube-controller-manager, kube-scheduler and kwok as local processes (building them from Go
//! modules the first time) or, when they already run, only reports where they are. `tests/run`
//! starts the cluster before `cargo test` and stops it afterwards; a test started some other way
//! starts it itself and leaves it running for the next one (`tests/cluster/down` stops it).
//!
//! There is no skipping: if the control plane cannot be started the test fails with `up`'s output.
//! Each test gets its own [`TestNamespace`], so tests run in parallel on the one cluster.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use anyhow::{Context, Result, bail};
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{DeleteParams, ObjectMeta, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client, Config};

/// Where the running control plane is: what `tests/cluster/up` prints.
#[derive(Debug, Clone)]
pub struct TestCluster {
    /// The admin kubeconfig (client certificate in `system:masters`).
    pub kubeconfig: PathBuf,
    /// The folder holding the `kubectl` and `helm` built for the tests.
    pub path_dir: PathBuf,
}

impl TestCluster {
    /// Starts the control plane, or finds it running, once per test process.
    ///
    /// Panics (failing the test) when it cannot be started: these tests never skip.
    pub fn get() -> &'static TestCluster {
        static CLUSTER: OnceLock<TestCluster> = OnceLock::new();
        CLUSTER
            .get_or_init(|| Self::up().unwrap_or_else(|e| panic!("no test control plane: {e:#}")))
    }

    fn up() -> Result<TestCluster> {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("cluster/up");
        // stderr is inherited: the first run builds Kubernetes, and its progress should be visible.
        let out = Command::new(&script)
            .stderr(std::process::Stdio::inherit())
            .output()
            .with_context(|| format!("running {}", script.display()))?;
        if !out.status.success() {
            bail!("{} failed ({})", script.display(), out.status);
        }
        Self::parse(&String::from_utf8_lossy(&out.stdout))
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

/// A namespace of its own for one test, named `<prefix>-<random>` by the API server.
///
/// Delete it with [`TestNamespace::cleanup`] to wait until it is gone; dropping it only starts
/// the deletion (a drop cannot wait), which is enough to leave nothing behind.
pub struct TestNamespace {
    name: String,
    client: Client,
    cleaned: bool,
}

impl TestNamespace {
    /// Creates the namespace on the test cluster (starting the cluster if needed).
    pub async fn new(prefix: &str) -> Result<TestNamespace> {
        let client = TestCluster::get().client().await?;
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
        let _ = TestCluster::get()
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
