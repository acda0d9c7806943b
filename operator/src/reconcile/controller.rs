//! The controller: what is watched, and the loop that drives reconciles.

use super::{Context, error_policy, injection, reconcile};
use crate::crd::AthensProxy;
use futures::{FutureExt, StreamExt, future};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolumeClaim, Secret, Service};
use kube::api::Api;
use kube::core::PartialObjectMeta;
use kube::runtime::controller::{Config as ControllerConfig, Controller, Error as ControllerError};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use kube::{Client, ResourceExt};
use std::future::Future;
use std::sync::Arc;

/// Label on every child; owned watches only see these objects.
const MANAGED_BY: &str = "app.kubernetes.io/managed-by=athens-operator";

fn api<K>(client: &Client, namespace: Option<&str>) -> Api<K>
where
    K: kube::Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>,
{
    match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }
}

/// Runs the controller until `shutdown` resolves: over all namespaces when `namespaces` is
/// empty, else one controller per listed namespace (so the operator needs no cluster-wide
/// permission: every list, watch and read is namespaced). All share `ctx`.
pub async fn run(
    ctx: Arc<Context>,
    namespaces: Vec<String>,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) {
    let shutdown = shutdown.shared();
    // Bindings whose proxy went away while no operator ran (they inject nothing: their
    // parameter is gone; this keeps the cluster tidy). A failure is not fatal.
    if ctx.injection.policy.is_some() {
        match injection::delete_orphans(&ctx.client, &ctx.injection, &namespaces).await {
            Ok(n) => tracing::info!(deleted = n, "checked GOPROXY bindings for orphans"),
            Err(e) => tracing::warn!(error = %e, "checking GOPROXY bindings for orphans"),
        }
    }
    if namespaces.is_empty() {
        return run_one(ctx, None, shutdown).await;
    }
    future::join_all(
        namespaces
            .into_iter()
            .map(|ns| run_one(ctx.clone(), Some(ns), shutdown.clone())),
    )
    .await;
}

async fn run_one(
    ctx: Arc<Context>,
    namespace: Option<String>,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) {
    let client = ctx.client.clone();
    let ns = namespace.as_deref();
    let owned = watcher::Config::default().labels(MANAGED_BY);
    let controller = Controller::new(api::<AthensProxy>(&client, ns), watcher::Config::default())
        .owns(api::<Deployment>(&client, ns), owned.clone())
        .owns(api::<Service>(&client, ns), owned.clone())
        .owns(api::<ConfigMap>(&client, ns), owned.clone())
        .owns(api::<PersistentVolumeClaim>(&client, ns), owned)
        .with_config(ControllerConfig::default().concurrency(8))
        .trigger_backoff(TriggerBackoff::default())
        .graceful_shutdown_on(shutdown);
    // A Secret change (metadata only: its resourceVersion) triggers every proxy that references
    // it, so a rotated credential rolls the pods. Secret contents are never cached.
    let store = controller.store();
    let cm_store = store.clone();
    let state = ctx.clone();
    controller
        .watches(
            api::<PartialObjectMeta<Secret>>(&client, ns),
            watcher::Config::default(),
            move |secret| referencing(&store, &secret),
        )
        // Likewise a user-owned ConfigMap named by `filter.configMapRef` or
        // `downloadModes.configMapRef`: its change is rendered into the proxy's ConfigMap now,
        // not at the next resync. (Owned ConfigMaps are watched above by their label.)
        .watches(
            api::<PartialObjectMeta<ConfigMap>>(&client, ns),
            watcher::Config::default(),
            move |cm| referencing_config_map(&cm_store, &cm),
        )
        .run(reconcile, error_policy, ctx)
        .for_each(|res| {
            match res {
                Ok((obj, _)) => tracing::debug!(proxy = %obj, "reconciled"),
                // A deleted proxy. Only failing proxies have state, and each has a retry
                // pending: that retry finds nothing, and the state goes.
                Err(ControllerError::ObjectNotFound(obj)) => {
                    state.forget(obj.namespace.as_deref(), &obj.name);
                    tracing::debug!(proxy = %obj, "deleted");
                }
                Err(e) => tracing::debug!(error = %e, "reconcile did not finish"),
            }
            future::ready(())
        })
        .await;
}

/// Backoff for the controller's watches. kube-runtime puts one backoff on all of them merged, so
/// when every watch fails at once (an API server restart, an expired resourceVersion: 410) each
/// error grows the same delay; with the default 30 s cap the operator sat idle for minutes
/// after etcd compaction. Capped at 5 s, recovery takes seconds, and a failing API server is
/// still asked at most every 5 s per error.
struct TriggerBackoff {
    next: std::time::Duration,
}

const TRIGGER_BACKOFF_START: std::time::Duration = std::time::Duration::from_millis(500);
const TRIGGER_BACKOFF_MAX: std::time::Duration = std::time::Duration::from_secs(5);

impl Default for TriggerBackoff {
    fn default() -> Self {
        Self {
            next: TRIGGER_BACKOFF_START,
        }
    }
}

impl Iterator for TriggerBackoff {
    type Item = std::time::Duration;

    fn next(&mut self) -> Option<Self::Item> {
        let now = self.next;
        self.next = (now * 2).min(TRIGGER_BACKOFF_MAX);
        Some(now)
    }
}

impl kube::runtime::utils::Backoff for TriggerBackoff {
    fn reset(&mut self) {
        self.next = TRIGGER_BACKOFF_START;
    }
}

fn referencing(
    store: &Store<AthensProxy>,
    secret: &PartialObjectMeta<Secret>,
) -> Vec<ObjectRef<AthensProxy>> {
    let name = secret.name_any();
    let ns = secret.namespace();
    store
        .state()
        .into_iter()
        .filter(|p| p.namespace() == ns && p.spec.secret_names().contains(&name.as_str()))
        .map(|p| ObjectRef::from_obj(&*p))
        .collect()
}

fn referencing_config_map(
    store: &Store<AthensProxy>,
    cm: &PartialObjectMeta<ConfigMap>,
) -> Vec<ObjectRef<AthensProxy>> {
    let name = cm.name_any();
    let ns = cm.namespace();
    store
        .state()
        .into_iter()
        .filter(|p| p.namespace() == ns && p.spec.config_map_names().contains(&name.as_str()))
        .map(|p| ObjectRef::from_obj(&*p))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::runtime::utils::Backoff as _;

    #[test]
    fn trigger_backoff_doubles_to_its_cap_and_resets() {
        let mut b = TriggerBackoff::default();
        let first: Vec<u64> = b.by_ref().take(6).map(|d| d.as_millis() as u64).collect();
        assert_eq!(first, [500, 1000, 2000, 4000, 5000, 5000]);
        b.reset();
        assert_eq!(b.next(), Some(TRIGGER_BACKOFF_START));
    }
}
