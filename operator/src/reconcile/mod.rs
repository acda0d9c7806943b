//! The reconciler: preflight (read and check), apply, report (status and Events).

mod apply;
mod backoff;
mod controller;
mod events;
pub mod injection;
mod monitoring;
mod preflight;
mod report;
mod status;

pub use backoff::backoff;
pub use controller::run;
pub use preflight::{Problem, check_policy, check_secrets};
pub use status::{Observed, next_status};

use crate::crd::{AthensProxy, AthensProxyStatus};
use crate::metrics::Metrics;
use crate::render::{
    self, FIELD_MANAGER, Meta, RenderError, Settings, selector_string, service_port,
};
use backoff::Failures;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::Recorder;
use kube::{Client, ResourceExt};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Shared state of all reconciles.
pub struct Context {
    pub client: Client,
    pub recorder: Recorder,
    pub metrics: Metrics,
    pub settings: Settings,
    /// How often a proxy is reconciled with no change observed (drift repair).
    pub resync: Duration,
    /// Cluster-wide GOPROXY: the policy, and caches of discovery and probe results.
    pub injection: injection::Injection,
    /// The Prometheus Operator kinds the cluster serves (cached discovery).
    monitors: monitoring::Monitors,
    /// Consecutive failures per proxy, for backoff.
    failures: Failures,
}

impl Context {
    pub fn new(
        client: Client,
        recorder: Recorder,
        metrics: Metrics,
        settings: Settings,
        resync: Duration,
    ) -> Self {
        Self {
            injection: injection::Injection::new(
                settings.goproxy_policy.clone(),
                settings.goproxy_verify,
            ),
            monitors: monitoring::Monitors::default(),
            client,
            recorder,
            metrics,
            settings,
            resync,
            failures: Failures::default(),
        }
    }

    /// Drops the per-proxy state of a proxy that no longer exists.
    pub fn forget(&self, namespace: Option<&str>, name: &str) {
        self.failures.forget(&key(namespace, name));
        self.injection.forget(&key(namespace, name));
    }

    /// How many proxies this operator keeps per-proxy state for (failing ones only).
    pub fn tracked_proxies(&self) -> usize {
        self.failures.tracked()
    }
}

/// The key of a proxy in per-proxy state.
fn key(namespace: Option<&str>, name: &str) -> String {
    format!("{}/{name}", namespace.unwrap_or_default())
}

fn key_of(proxy: &AthensProxy) -> String {
    key(proxy.namespace().as_deref(), &proxy.name_any())
}

/// Why a reconcile did not finish.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("Kubernetes API: {0}")]
    Kube(#[from] kube::Error),
    #[error("serializing an object: {0}")]
    Serialize(#[source] serde_json::Error),
    #[error(transparent)]
    Render(#[from] RenderError),
    /// The spec cannot be satisfied (reported as `Degraded`; retried with backoff).
    #[error(transparent)]
    Spec(#[from] Problem),
}

impl Error {
    /// Short label for metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            Error::Kube(_) => "KubeApi",
            Error::Serialize(_) => "Serialize",
            Error::Render(_) => "Render",
            Error::Spec(p) => p.reason(),
        }
    }
}

/// One reconcile of one proxy, with metrics.
pub async fn reconcile(proxy: Arc<AthensProxy>, ctx: Arc<Context>) -> Result<Action, Error> {
    let started = Instant::now();
    let result = reconcile_proxy(&proxy, &ctx).await;
    ctx.metrics
        .reconciled(started.elapsed(), result.as_ref().err().map(Error::reason));
    match &result {
        Ok(_) => ctx.failures.forget(&key_of(&proxy)),
        Err(e) => tracing::warn!(proxy = %key_of(&proxy), error = %e, "reconcile failed"),
    }
    result
}

/// After a failure: retry with per-proxy exponential backoff (watches still trigger sooner).
pub fn error_policy(proxy: Arc<AthensProxy>, _err: &Error, ctx: Arc<Context>) -> Action {
    Action::requeue(ctx.failures.record(&key_of(&proxy)))
}

fn now() -> Time {
    // Whole seconds: what the API server stores, so an unchanged status compares equal.
    let secs = Timestamp::now().as_second();
    Time(Timestamp::from_second(secs).unwrap_or_else(|_| Timestamp::now()))
}

/// Preflight, apply, report. Nothing is applied when preflight finds a problem.
async fn reconcile_proxy(proxy: &AthensProxy, ctx: &Context) -> Result<Action, Error> {
    if proxy.metadata.deletion_timestamp.is_some() {
        // Children carry owner references: the garbage collector removes them. The GOPROXY
        // binding is cluster-scoped and cannot have one: the finalizer removes it.
        ctx.failures.forget(&key_of(proxy));
        ctx.injection.forget(&key_of(proxy));
        injection::finalize(&ctx.client, &ctx.injection, proxy).await?;
        return Ok(Action::await_change());
    }
    let meta = Meta::of(proxy)?;
    let found = preflight::run(&ctx.client, proxy, &meta, &ctx.settings).await?;
    let (deployment, applied, monitoring) = match &found.problem {
        Some(_) => (found.deployment, None, None),
        None => {
            let desired = render::desired(proxy, &found.secrets, &ctx.settings)?;
            let (after, applied) =
                apply::children(&ctx.client, &meta, &desired, found.deployment.as_ref()).await?;
            let monitoring = monitoring::ensure(&ctx.client, &ctx.monitors, proxy, &meta).await?;
            (Some(after), Some(applied), monitoring)
        }
    };

    // Injection is independent of the children: a proxy with a spec problem keeps its binding
    // (injection follows its last status.url; the policy checks it).
    let (injection, recheck) =
        injection::ensure(&ctx.client, &ctx.injection, proxy, &meta, &key_of(proxy)).await?;
    let url = render::tls_url(
        &meta.name,
        &meta.namespace,
        service_port(&proxy.spec),
        &ctx.settings,
        render::serves_tls(&proxy.spec),
    );
    let observed = Observed {
        generation: proxy.metadata.generation,
        deployment: deployment.as_ref(),
        problem: found.problem.clone(),
        url: url.clone(),
        selector: selector_string(&meta.name),
        injection,
        monitoring,
    };
    let prev = proxy.status.as_ref();
    let status = next_status(prev, &observed, &now());
    let notes = report::notes(
        prev,
        &status,
        found.problem.as_ref(),
        applied.as_ref(),
        &url,
    );
    write_status(ctx, proxy, status).await?;
    for n in notes {
        events::publish(&ctx.recorder, proxy, n).await;
    }
    match found.problem {
        Some(p) => Err(p.into()),
        None => Ok(Action::requeue(
            recheck.unwrap_or(ctx.resync).min(ctx.resync),
        )),
    }
}

/// Writes `status` with server-side apply, only if it differs from what the resource has.
async fn write_status(
    ctx: &Context,
    proxy: &AthensProxy,
    status: AthensProxyStatus,
) -> Result<(), Error> {
    if proxy.status.as_ref() == Some(&status) {
        return Ok(());
    }
    let ns = proxy.namespace().unwrap_or_default();
    let api: Api<AthensProxy> = Api::namespaced(ctx.client.clone(), &ns);
    let patch = serde_json::json!({
        "apiVersion": "athens.dev/v1alpha1",
        "kind": "AthensProxy",
        "status": status,
    });
    api.patch_status(
        &proxy.name_any(),
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&patch),
    )
    .await?;
    Ok(())
}
