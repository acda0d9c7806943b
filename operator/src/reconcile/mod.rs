//! The reconciler: observe, render, apply, report.

mod apply;
mod controller;
mod events;
mod status;

pub use controller::run;
pub use status::{Observed, next_status};

use crate::crd::{AthensProxy, AthensProxyStatus, DEGRADED, READY};
use crate::metrics::Metrics;
use crate::render::{
    self, CONFIG_HASH_ANNOTATION, FIELD_MANAGER, Meta, RenderError, SecretData, Settings,
    SpecProblem, check_secrets, claim_name, selector_string, service_port,
};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolumeClaim, Secret, Service};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::events::{EventType, Recorder};
use kube::{Client, ResourceExt};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Shared state of all reconciles.
pub struct Context {
    pub client: Client,
    pub recorder: Recorder,
    pub metrics: Metrics,
    pub settings: Settings,
    /// How often a proxy is reconciled with no change observed (drift repair).
    pub resync: Duration,
    /// Consecutive failures per proxy (`namespace/name`), for backoff.
    failures: Mutex<HashMap<String, u32>>,
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
            client,
            recorder,
            metrics,
            settings,
            resync,
            failures: Mutex::default(),
        }
    }

    fn key(proxy: &AthensProxy) -> String {
        format!(
            "{}/{}",
            proxy.namespace().unwrap_or_default(),
            proxy.name_any()
        )
    }

    /// Records a failure and returns how long to wait before the next try.
    fn next_backoff(&self, proxy: &AthensProxy) -> Duration {
        let n = match self.failures.lock() {
            Ok(mut f) => {
                let n = f.entry(Self::key(proxy)).or_insert(0);
                *n = n.saturating_add(1);
                *n
            }
            Err(_) => 1,
        };
        backoff(n)
    }

    fn reset_backoff(&self, proxy: &AthensProxy) {
        if let Ok(mut f) = self.failures.lock() {
            f.remove(&Self::key(proxy));
        }
    }
}

/// Exponential backoff after `n` consecutive failures: 2s, 4s, 8s, ... up to 5 minutes.
pub fn backoff(n: u32) -> Duration {
    let secs = 2u64.saturating_pow(n.clamp(1, 9));
    Duration::from_secs(secs.min(300))
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
    Spec(#[from] SpecProblem),
}

impl Error {
    /// Short label for metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            Error::Kube(_) => "KubeApi",
            Error::Serialize(_) => "Serialize",
            Error::Render(_) => "Render",
            Error::Spec(p) => p.reason,
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
        Ok(_) => ctx.reset_backoff(&proxy),
        Err(e) => tracing::warn!(proxy = %Context::key(&proxy), error = %e, "reconcile failed"),
    }
    result
}

/// After a failure: retry with per-proxy exponential backoff (watches still trigger sooner).
pub fn error_policy(proxy: Arc<AthensProxy>, _err: &Error, ctx: Arc<Context>) -> Action {
    Action::requeue(ctx.next_backoff(&proxy))
}

fn now() -> Time {
    // Whole seconds: what the API server stores, so an unchanged status compares equal.
    let secs = Timestamp::now().as_second();
    Time(Timestamp::from_second(secs).unwrap_or_else(|_| Timestamp::now()))
}

async fn reconcile_proxy(proxy: &AthensProxy, ctx: &Context) -> Result<Action, Error> {
    if proxy.metadata.deletion_timestamp.is_some() {
        // Children carry owner references: the garbage collector removes them.
        return Ok(Action::await_change());
    }
    let meta = Meta::of(proxy)?;
    let client = &ctx.client;
    let ns = meta.namespace.as_str();
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), ns);
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), ns);

    let before = deployments.get_opt(&meta.name).await?;
    let secrets = read_secrets(client, ns, proxy).await?;
    let problem = match check_secrets(&proxy.spec.storage, &secrets) {
        Err(p) => Some(p),
        Ok(()) => check_existing_claim(&pvcs, proxy).await?,
    };
    let url = render::url(&meta.name, ns, service_port(&proxy.spec), &ctx.settings);
    let mut observed = Observed {
        generation: proxy.metadata.generation,
        deployment: before.as_ref(),
        problem: None,
        url: url.clone(),
        selector: selector_string(&meta.name),
    };

    if let Some(p) = problem {
        observed.problem = Some((p.reason.to_string(), p.message.clone()));
        let status = next_status(proxy.status.as_ref(), &observed, &now());
        if changed_condition(proxy.status.as_ref(), &status, DEGRADED) {
            events::publish(
                &ctx.recorder,
                proxy,
                EventType::Warning,
                p.reason,
                "Reconcile",
                p.message.clone(),
            )
            .await;
        }
        write_status(ctx, proxy, status).await?;
        return Err(p.into());
    }

    let desired = render::desired(proxy, &secrets)?;
    apply::apply(
        &Api::<ConfigMap>::namespaced(client.clone(), ns),
        &desired.config_map,
    )
    .await?;
    match &desired.pvc {
        Some(pvc) => {
            apply::apply(&pvcs, pvc).await?;
        }
        None => {
            let uid = meta.owner.uid.as_str();
            if apply::delete_if_owned(&pvcs, &claim_name(&meta.name), uid).await? {
                events::publish(
                    &ctx.recorder,
                    proxy,
                    EventType::Normal,
                    "Deleted",
                    "Delete",
                    format!(
                        "deleted PersistentVolumeClaim {} (no longer used)",
                        claim_name(&meta.name)
                    ),
                )
                .await;
            }
        }
    }
    let after = apply::apply(&deployments, &desired.deployment).await?;
    apply::apply(
        &Api::<Service>::namespaced(client.clone(), ns),
        &desired.service,
    )
    .await?;

    let (old_hash, new_hash) = (template_hash(before.as_ref()), template_hash(Some(&after)));
    if before.is_none() {
        events::publish(
            &ctx.recorder,
            proxy,
            EventType::Normal,
            "Created",
            "Apply",
            format!("created Deployment, Service and ConfigMap for {url}"),
        )
        .await;
    } else if old_hash != new_hash {
        events::publish(
            &ctx.recorder,
            proxy,
            EventType::Normal,
            "RollingUpdate",
            "Apply",
            format!(
                "configuration or credentials changed (hash {} -> {}): rolling the pods",
                old_hash.unwrap_or_default(),
                new_hash.unwrap_or_default()
            ),
        )
        .await;
    }

    observed.deployment = Some(&after);
    let status = next_status(proxy.status.as_ref(), &observed, &now());
    let became_ready =
        status.is_true(READY) && !proxy.status.as_ref().is_some_and(|s| s.is_true(READY));
    let recovered =
        !status.is_true(DEGRADED) && proxy.status.as_ref().is_some_and(|s| s.is_true(DEGRADED));
    write_status(ctx, proxy, status).await?;
    if became_ready {
        events::publish(
            &ctx.recorder,
            proxy,
            EventType::Normal,
            "Ready",
            "Reconcile",
            format!("serving at {url}"),
        )
        .await;
    }
    if recovered {
        events::publish(
            &ctx.recorder,
            proxy,
            EventType::Normal,
            "Recovered",
            "Reconcile",
            "the spec is applied again".into(),
        )
        .await;
    }
    Ok(Action::requeue(ctx.resync))
}

fn template_hash(d: Option<&Deployment>) -> Option<String> {
    d?.spec
        .as_ref()?
        .template
        .metadata
        .as_ref()?
        .annotations
        .as_ref()?
        .get(CONFIG_HASH_ANNOTATION)
        .cloned()
}

fn changed_condition(
    prev: Option<&AthensProxyStatus>,
    next: &AthensProxyStatus,
    type_: &str,
) -> bool {
    let key = |s: Option<&AthensProxyStatus>| {
        s.and_then(|s| s.condition(type_))
            .map(|c| (c.status.clone(), c.reason.clone(), c.message.clone()))
    };
    key(prev) != key(Some(next))
}

/// Reads the Secrets the spec references; absent ones are left out.
async fn read_secrets(client: &Client, ns: &str, proxy: &AthensProxy) -> Result<SecretData, Error> {
    let api: Api<Secret> = Api::namespaced(client.clone(), ns);
    let mut out = SecretData::new();
    for name in proxy.spec.storage.secret_names() {
        if let Some(s) = api.get_opt(name).await? {
            let data = s
                .data
                .unwrap_or_default()
                .into_iter()
                .map(|(k, v)| (k, v.0))
                .collect();
            out.insert(name.to_string(), data);
        }
    }
    Ok(out)
}

/// An existing claim must exist, and be shareable when there is more than one replica.
async fn check_existing_claim(
    pvcs: &Api<PersistentVolumeClaim>,
    proxy: &AthensProxy,
) -> Result<Option<SpecProblem>, Error> {
    let Some(claim) = proxy
        .spec
        .storage
        .filesystem
        .as_ref()
        .and_then(|f| f.existing_claim.as_deref())
    else {
        return Ok(None);
    };
    let Some(pvc) = pvcs.get_opt(claim).await? else {
        return Ok(Some(SpecProblem {
            reason: "ClaimNotFound",
            message: format!(
                "PersistentVolumeClaim {claim:?} (storage.filesystem.existingClaim) does not exist"
            ),
        }));
    };
    let modes = pvc.spec.and_then(|s| s.access_modes).unwrap_or_default();
    if proxy.spec.replicas > 1 && !modes.iter().any(|m| m == "ReadWriteMany") {
        return Ok(Some(SpecProblem {
            reason: "ClaimNotShared",
            message: format!(
                "{} replicas need a ReadWriteMany volume, but PersistentVolumeClaim {claim:?} allows {modes:?}",
                proxy.spec.replicas
            ),
        }));
    }
    Ok(None)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_caps() {
        assert_eq!(backoff(1), Duration::from_secs(2));
        assert_eq!(backoff(3), Duration::from_secs(8));
        assert_eq!(backoff(50), Duration::from_secs(300));
    }
}
