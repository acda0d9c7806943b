//! `athens-operator`: `run` the controller, or print the `crd`.

use anyhow::Context as _;
use athens_operator::first_proxy;
use athens_operator::http::{self, Health};
use athens_operator::leader::{Elector, LeaseSettings};
use athens_operator::metrics::Metrics;
use athens_operator::reconcile::{self, Context};
use athens_operator::render::{FIELD_MANAGER, Settings};
use clap::{ArgAction, Parser, Subcommand};
use kube::runtime::events::{Recorder, Reporter};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;

/// Kubernetes operator that runs athens-proxy Go module proxies.
#[derive(Parser)]
#[command(name = "athens-operator", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the controller (kubeconfig from $KUBECONFIG or ~/.kube/config, else in-cluster).
    Run(Box<RunArgs>),
    /// Print the AthensProxy CustomResourceDefinition as YAML.
    Crd,
    /// Turn an Athens Helm chart values file (gomods/athens-charts) into an AthensProxy
    /// manifest, printed with what could not be mapped as comments at the top.
    FromAthensValues {
        /// The values file (`helm get values <release> -a > values.yaml`).
        values: std::path::PathBuf,
        /// Name of the AthensProxy.
        #[arg(long, default_value = "athens")]
        name: String,
        /// Namespace of the AthensProxy.
        #[arg(long, default_value = "default")]
        namespace: String,
    },
}

#[derive(clap::Args)]
struct RunArgs {
    /// Address for /healthz, /readyz and /metrics.
    #[arg(
        long,
        env = "ATHENS_OPERATOR_HTTP_ADDR",
        default_value = "0.0.0.0:8080"
    )]
    http_addr: SocketAddr,
    /// Watch only these namespaces, comma-separated (default: all namespaces). With a list, the
    /// operator needs permissions only in those namespaces (the chart's `watchNamespaces`).
    #[arg(
        long,
        visible_alias = "namespace",
        env = "ATHENS_OPERATOR_WATCH_NAMESPACES",
        value_delimiter = ','
    )]
    watch_namespaces: Vec<String>,
    /// Images proxies may run, by prefix, comma-separated (default: any). End a registry or
    /// repository prefix with `/` or `:` so `registry.example/team` does not match
    /// `registry.example/team-b`. A proxy whose image does not match is Degraded, not run.
    #[arg(
        long,
        env = "ATHENS_OPERATOR_ALLOWED_IMAGE_PREFIXES",
        value_delimiter = ','
    )]
    allowed_image_prefixes: Vec<String>,
    /// ServiceAccounts proxies may run as, comma-separated (default: any). A proxy naming
    /// another is Degraded, not run; a proxy naming none runs without a token.
    #[arg(
        long,
        env = "ATHENS_OPERATOR_ALLOWED_SERVICE_ACCOUNTS",
        value_delimiter = ','
    )]
    allowed_service_accounts: Vec<String>,
    /// The cluster's DNS domain, used in status.url.
    #[arg(
        long,
        env = "ATHENS_OPERATOR_CLUSTER_DOMAIN",
        default_value = "cluster.local"
    )]
    cluster_domain: String,
    /// Seconds between reconciles of an unchanged proxy (repairs drift).
    #[arg(long, env = "ATHENS_OPERATOR_RESYNC_SECONDS", default_value_t = 300)]
    resync_seconds: u64,
    /// Elect a leader on a Lease, so several replicas can run (only the leader reconciles).
    #[arg(long, env = "ATHENS_OPERATOR_LEADER_ELECT", default_value_t = true, action = ArgAction::Set)]
    leader_elect: bool,
    /// Namespace of the leader Lease (default: $POD_NAMESPACE, else "default").
    #[arg(long, env = "ATHENS_OPERATOR_LEASE_NAMESPACE")]
    lease_namespace: Option<String>,
    /// Name of the leader Lease.
    #[arg(
        long,
        env = "ATHENS_OPERATOR_LEASE_NAME",
        default_value = "athens-operator"
    )]
    lease_name: String,
    /// Identity in the Lease and in Events (default: $POD_NAME, else host name and process id).
    #[arg(long, env = "ATHENS_OPERATOR_IDENTITY")]
    identity: Option<String>,
    /// Log format: text or json.
    #[arg(long, env = "ATHENS_OPERATOR_LOG_FORMAT", default_value = "text")]
    log_format: String,
    /// An AthensProxy (JSON, with name and namespace) the leader applies once the CRD serves:
    /// the Helm chart's `firstProxy` (see first_proxy.rs).
    #[arg(long, env = "ATHENS_OPERATOR_FIRST_PROXY")]
    first_proxy: Option<String>,
    /// The MutatingAdmissionPolicy (installed by the Helm chart) that each AthensProxy's
    /// binding names, for cluster-wide GOPROXY. Empty: no bindings (and bindings of earlier
    /// runs are deleted as their proxies are reconciled).
    #[arg(long, env = "ATHENS_OPERATOR_GOPROXY_POLICY")]
    goproxy_policy: Option<String>,
    /// Check cluster-wide GOPROXY with a server-side dry-run pod in a namespace that opted in
    /// (needs `create` on pods and `list` on namespaces) and report it in GoproxyInjection.
    #[arg(long, env = "ATHENS_OPERATOR_GOPROXY_VERIFY", default_value_t = true, action = ArgAction::Set)]
    goproxy_verify: bool,
}

fn main() -> anyhow::Result<()> {
    // Idempotent; see the rustls entry in Cargo.toml.
    let _ = rustls::crypto::ring::default_provider().install_default();
    match Cli::parse().command {
        Command::Crd => {
            print!("{}", athens_operator::crd::crd_yaml());
            Ok(())
        }
        Command::FromAthensValues {
            values,
            name,
            namespace,
        } => {
            let text = std::fs::read_to_string(&values)
                .map_err(|e| anyhow::anyhow!("reading {}: {e}", values.display()))?;
            let converted = athens_operator::migrate::from_athens_values(&text, &name, &namespace)?;
            print!("{}", converted.render()?);
            Ok(())
        }
        Command::Run(args) => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?
            .block_on(run(*args)),
    }
}

fn init_tracing(format: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    if format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// A comma-separated list from a flag or the environment, without blanks (an empty variable,
/// as a chart renders for an empty list, is no entries).
fn non_empty(items: &[String]) -> Vec<String> {
    items
        .iter()
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

fn default_identity() -> String {
    if let Some(pod) = std::env::var("POD_NAME").ok().filter(|p| !p.is_empty()) {
        return pod;
    }
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "athens-operator".into());
    format!("{host}-{}", std::process::id())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        if let Ok(mut term) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            tokio::select! {
                _ = ctrl_c => {},
                _ = term.recv() => {},
            }
            return;
        }
    }
    let _ = ctrl_c.await;
}

async fn run(args: RunArgs) -> anyhow::Result<()> {
    init_tracing(&args.log_format);
    // Bad input stops the operator before it changes anything.
    let first_proxy = args
        .first_proxy
        .as_deref()
        .filter(|v| !v.trim().is_empty())
        .map(first_proxy::parse)
        .transpose()
        .context("--first-proxy (ATHENS_OPERATOR_FIRST_PROXY)")?;
    let client = kube::Client::try_default()
        .await
        .context("no Kubernetes configuration (kubeconfig or in-cluster)")?;
    let metrics = Metrics::new();
    let health = Health::default();
    let app = http::router(health.clone(), metrics.clone());
    let addr = args.http_addr;
    let server = tokio::spawn(async move { http::serve(addr, app).await });

    let version = client
        .apiserver_version()
        .await
        .context("reaching the Kubernetes API server")?;
    tracing::info!(version = %version.git_version, "connected to the API server");
    health.set_ready(true);

    let identity = args.identity.clone().unwrap_or_else(default_identity);
    let reporter = Reporter {
        controller: FIELD_MANAGER.into(),
        instance: Some(identity.clone()),
    };
    let ctx = Arc::new(Context::new(
        client.clone(),
        Recorder::new(client.clone(), reporter),
        metrics.clone(),
        Settings {
            cluster_domain: args.cluster_domain.clone(),
            allowed_image_prefixes: non_empty(&args.allowed_image_prefixes),
            allowed_service_accounts: non_empty(&args.allowed_service_accounts),
            goproxy_policy: args.goproxy_policy.clone().filter(|p| !p.trim().is_empty()),
            goproxy_verify: args.goproxy_verify,
            operator_namespace: std::env::var("POD_NAMESPACE")
                .ok()
                .filter(|n| !n.is_empty()),
        },
        Duration::from_secs(args.resync_seconds.max(1)),
    ));

    let elector = if args.leader_elect {
        let ns = args
            .lease_namespace
            .clone()
            .or_else(|| {
                std::env::var("POD_NAMESPACE")
                    .ok()
                    .filter(|n| !n.is_empty())
            })
            .unwrap_or_else(|| "default".into());
        let e = Arc::new(Elector::new(
            client.clone(),
            LeaseSettings::new(ns, args.lease_name.clone(), identity.clone()),
        ));
        tracing::info!(%identity, "waiting for the leader Lease");
        tokio::select! {
            _ = e.acquire() => {},
            _ = shutdown_signal() => return Ok(()),
        }
        tracing::info!(%identity, "leading");
        Some(e)
    } else {
        None
    };
    metrics.set_leader(true);
    let first_proxy = first_proxy.map(|f| tokio::spawn(first_proxy::ensure(client.clone(), f)));

    // Stop reconciling on SIGTERM/Ctrl-C, or when leadership is lost.
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let holder = elector.clone();
    let stopper = tokio::spawn(async move {
        let lost = async {
            match &holder {
                Some(e) => e.hold().await,
                None => std::future::pending().await,
            }
        };
        let lost_leadership = tokio::select! {
            _ = shutdown_signal() => false,
            _ = lost => true,
        };
        let _ = stop_tx.send(());
        lost_leadership
    });
    let namespaces = non_empty(&args.watch_namespaces);
    tracing::info!(?namespaces, "watching (empty: all namespaces)");
    reconcile::run(ctx, namespaces, async move {
        let _ = stop_rx.await;
    })
    .await;
    if let Some(task) = first_proxy {
        task.abort();
    }
    metrics.set_leader(false);
    let lost_leadership = stopper.await.unwrap_or(true);
    if lost_leadership {
        anyhow::bail!("lost leadership; exiting so a restart rejoins as a candidate");
    }
    if let Some(e) = elector {
        e.release().await;
    }
    server.abort();
    tracing::info!("stopped");
    Ok(())
}
