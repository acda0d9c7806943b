//! Cluster-wide `GOPROXY`: the proxy's `MutatingAdmissionPolicyBinding` (applied, deleted
//! through the proxy's finalizer, orphans deleted at startup), and the `GoproxyInjection`
//! condition from what the cluster serves and what a server-side dry-run pod shows.
//!
//! The binding's API version is found by discovery (v1 on Kubernetes 1.36+, v1beta1 behind
//! flags on 1.34/1.35), so one operator build works with both; k8s-openapi has no types for
//! them, hence `DynamicObject`.

use super::Error;
pub use super::status::ConditionState;
use crate::crd::AthensProxy;
use crate::render::injection::{
    self as render, BINDING_KIND, FINALIZER, GROUP, InjectionError, MANAGED_BY_LABEL,
    NAMESPACE_LABEL, PROXY_NAMESPACE_LABEL, PROXY_UID_LABEL, Probe,
};
use crate::render::{FIELD_MANAGER, Meta};
use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams,
};
use kube::discovery;
use kube::{Client, ResourceExt};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a served API is trusted before discovery is asked again, and a missing one.
const SERVED_TTL: Duration = Duration::from_secs(300);
const NOT_SERVED_TTL: Duration = Duration::from_secs(30);
/// A dry-run pod without injection right after the binding or the proxy's URL changed may only
/// mean the API server's informers have not caught up: say `Pending` and look again this soon,
/// for up to [`SETTLE`], before calling it `NotInjected`.
const RECHECK: Duration = Duration::from_secs(3);
const SETTLE: Duration = Duration::from_secs(30);

fn state(status: &'static str, reason: &'static str, message: impl Into<String>) -> ConditionState {
    ConditionState {
        status,
        reason,
        message: message.into(),
    }
}

/// Injection settings and caches, shared by all reconciles.
#[derive(Default)]
pub struct Injection {
    /// The chart's policy; `None`: injection is off (bindings of earlier runs are removed).
    pub policy: Option<String>,
    /// Check with a dry-run pod in an opted-in namespace.
    pub verify: bool,
    api: Mutex<Option<(Instant, Option<ApiResource>)>>,
    /// Since when each proxy's dry-run pod has shown no injection.
    failing_since: Mutex<HashMap<String, Instant>>,
}

impl Injection {
    pub fn new(policy: Option<String>, verify: bool) -> Self {
        Self {
            policy: policy.filter(|p| !p.trim().is_empty()),
            verify,
            ..Default::default()
        }
    }

    /// The binding API the cluster serves (v1 preferred over v1beta1), cached.
    pub async fn binding_api(&self, client: &Client) -> Result<Option<ApiResource>, kube::Error> {
        if let Ok(cache) = self.api.lock()
            && let Some((at, api)) = cache.as_ref()
        {
            let ttl = if api.is_some() {
                SERVED_TTL
            } else {
                NOT_SERVED_TTL
            };
            if at.elapsed() < ttl {
                return Ok(api.clone());
            }
        }
        let found = discover(client).await?;
        if let Ok(mut cache) = self.api.lock() {
            *cache = Some((Instant::now(), found.clone()));
        }
        Ok(found)
    }

    pub fn forget(&self, key: &str) {
        if let Ok(mut m) = self.failing_since.lock() {
            m.remove(key);
        }
    }

    /// How long the proxy's probe has been failing (starting the clock now if it was not).
    fn failing_for(&self, key: &str) -> Duration {
        let Ok(mut m) = self.failing_since.lock() else {
            return SETTLE;
        };
        m.entry(key.to_string())
            .or_insert_with(Instant::now)
            .elapsed()
    }
}

async fn discover(client: &Client) -> Result<Option<ApiResource>, kube::Error> {
    let group = match discovery::oneshot::group(client, GROUP).await {
        Ok(g) => g,
        Err(kube::Error::Api(s)) if s.is_not_found() => return Ok(None),
        Err(e) => return Err(e),
    };
    for version in ["v1", "v1beta1"] {
        if let Some((ar, _)) = group
            .versioned_resources(version)
            .into_iter()
            .find(|(ar, _)| ar.kind == BINDING_KIND)
        {
            return Ok(Some(ar));
        }
    }
    Ok(None)
}

fn bindings(client: &Client, ar: &ApiResource) -> Api<DynamicObject> {
    Api::all_with(client.clone(), ar)
}

fn has_finalizer(proxy: &AthensProxy) -> bool {
    proxy.finalizers().iter().any(|f| f == FINALIZER)
}

/// Sets the proxy's finalizers to `finalizers`, only if the proxy is unchanged since it was read
/// (the resourceVersion in a merge patch is checked: a conflict retries the reconcile).
async fn set_finalizers(
    client: &Client,
    proxy: &AthensProxy,
    finalizers: Vec<String>,
) -> Result<(), Error> {
    let api: Api<AthensProxy> =
        Api::namespaced(client.clone(), &proxy.namespace().unwrap_or_default());
    let patch = serde_json::json!({
        "metadata": {"finalizers": finalizers, "resourceVersion": proxy.resource_version()},
    });
    api.patch(
        &proxy.name_any(),
        &PatchParams::default(),
        &Patch::Merge(&patch),
    )
    .await?;
    Ok(())
}

/// Whether a binding is one this operator made (by its label).
fn ours(obj: &DynamicObject) -> bool {
    obj.labels().get(MANAGED_BY_LABEL).map(String::as_str) == Some(FIELD_MANAGER)
}

/// Deletes the proxy's binding (if it is ours) and removes the finalizer: for a proxy being
/// deleted, or one whose operator no longer injects.
pub async fn finalize(client: &Client, inj: &Injection, proxy: &AthensProxy) -> Result<(), Error> {
    if !has_finalizer(proxy) {
        return Ok(());
    }
    let meta = Meta::of(proxy)?;
    if let Some(ar) = inj.binding_api(client).await? {
        let api = bindings(client, &ar);
        let name = render::binding_name(&meta);
        if let Some(b) = api.get_opt(&name).await?
            && ours(&b)
        {
            match api.delete(&name, &DeleteParams::background()).await {
                Ok(_) => tracing::info!(binding = %name, "deleted the GOPROXY binding"),
                Err(kube::Error::Api(s)) if s.is_not_found() => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
    let rest = proxy
        .finalizers()
        .iter()
        .filter(|f| *f != FINALIZER)
        .cloned()
        .collect();
    set_finalizers(client, proxy, rest).await
}

/// What injection needs for one live proxy: the finalizer, the binding, and the condition.
/// `None` when injection is off. The duration asks for an early look again (`Pending`).
pub async fn ensure(
    client: &Client,
    inj: &Injection,
    proxy: &AthensProxy,
    meta: &Meta,
    key: &str,
) -> Result<(Option<ConditionState>, Option<Duration>), Error> {
    let Some(policy) = inj.policy.as_deref() else {
        finalize(client, inj, proxy).await?;
        return Ok((None, None));
    };
    let Some(ar) = inj.binding_api(client).await? else {
        return Ok((
            Some(state(
                "False",
                "APINotServed",
                "this cluster does not serve admissionregistration.k8s.io MutatingAdmissionPolicy (v1 from Kubernetes 1.36; on 1.34 and 1.35 v1beta1 needs the API server flags --feature-gates=MutatingAdmissionPolicy=true and --runtime-config=admissionregistration.k8s.io/v1beta1=true), so no pod gets GOPROXY: set it in the pods, or use a policy engine (README: Set GOPROXY for the whole cluster)",
            )),
            None,
        ));
    };
    let uid = proxy.uid().unwrap_or_default();
    let desired = match render::binding(meta, &uid, policy, &ar.api_version) {
        Ok(b) => b,
        Err(e @ InjectionError::LabelTooLong(_)) => {
            return Ok((Some(state("False", "LabelTooLong", e.to_string())), None));
        }
    };
    if !has_finalizer(proxy) {
        let mut f = proxy.finalizers().to_vec();
        f.push(FINALIZER.to_string());
        set_finalizers(client, proxy, f).await?;
    }
    let api = bindings(client, &ar);
    let name = render::binding_name(meta);
    if let Some(existing) = api.get_opt(&name).await?
        && !ours(&existing)
    {
        return Ok((
            Some(state(
                "False",
                "NameConflict",
                format!(
                    "a {BINDING_KIND} named {name} exists that athens-operator did not create; it is left alone"
                ),
            )),
            None,
        ));
    }
    let params = PatchParams::apply(FIELD_MANAGER).force();
    match api.patch(&name, &params, &Patch::Apply(&desired)).await {
        Ok(_) => {}
        // The API server refuses a binding to a policy that does not exist (it then demands
        // `get` on every resource) or that it cannot read: say so, do not retry in a loop.
        Err(kube::Error::Api(s)) if s.code == 403 || s.code == 422 => {
            return Ok((
                Some(state(
                    "False",
                    "BindingRefused",
                    format!(
                        "the API server refused {BINDING_KIND} {name} for policy {policy} (is the chart's policy installed?): {}",
                        s.message
                    ),
                )),
                None,
            ));
        }
        Err(e) => return Err(e.into()),
    }
    let label = format!("{NAMESPACE_LABEL}={}.{}", meta.namespace, meta.name);
    let Some(url) = proxy.status.as_ref().and_then(|s| s.url.clone()) else {
        return Ok((
            Some(state(
                "Unknown",
                "WaitingForURL",
                format!(
                    "{BINDING_KIND} {name} is applied; pods in namespaces labelled {label} get GOPROXY once the proxy has status.url"
                ),
            )),
            None,
        ));
    };
    if !inj.verify {
        return Ok((Some(bound(&name, &label)), None));
    }
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let opted = match namespaces
        .list_metadata(&ListParams::default().labels(&label).limit(1))
        .await
    {
        Ok(l) => l.items.into_iter().next().map(|n| n.name_any()),
        Err(kube::Error::Api(s)) => {
            return Ok((
                Some(state(
                    "Unknown",
                    "VerifyFailed",
                    format!("listing namespaces labelled {label}: {}", s.message),
                )),
                None,
            ));
        }
        Err(e) => return Err(e.into()),
    };
    let Some(ns) = opted else {
        return Ok((Some(bound(&name, &label)), None));
    };
    let no_sum = render::no_sum_value(&proxy.spec);
    let pod: Pod = serde_json::from_value(render::probe_pod(&ns)).map_err(Error::Serialize)?;
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let dry = PostParams {
        dry_run: true,
        field_manager: Some(FIELD_MANAGER.into()),
    };
    let created = match pods.create(&dry, &pod).await {
        Ok(p) => p,
        Err(kube::Error::Api(s)) => {
            return Ok((
                Some(state(
                    "Unknown",
                    "VerifyFailed",
                    format!("a dry-run pod in namespace {ns} was refused: {}", s.message),
                )),
                None,
            ));
        }
        Err(e) => return Err(e.into()),
    };
    let created = serde_json::to_value(&created).map_err(Error::Serialize)?;
    match render::check_probe(&created, &url, no_sum.as_deref()) {
        Probe::Injected => {
            inj.forget(key);
            Ok((
                Some(state(
                    "True",
                    "Injected",
                    format!(
                        "a dry-run pod in namespace {ns} (labelled {label}) gets GOPROXY={url}"
                    ),
                )),
                None,
            ))
        }
        Probe::NotInjected(seen) if inj.failing_for(key) < SETTLE => Ok((
            Some(state(
                "Unknown",
                "Pending",
                format!("a dry-run pod in namespace {ns} has {seen}; looking again shortly"),
            )),
            Some(RECHECK),
        )),
        Probe::NotInjected(seen) => Ok((
            Some(state(
                "False",
                "NotInjected",
                format!(
                    "a dry-run pod in namespace {ns} (labelled {label}) has {seen}: is the chart's MutatingAdmissionPolicy {policy} installed, and on Kubernetes 1.34/1.35 the MutatingAdmissionPolicy feature gate on?"
                ),
            )),
            None,
        )),
    }
}

fn bound(name: &str, label: &str) -> ConditionState {
    state(
        "True",
        "Bound",
        format!(
            "{BINDING_KIND} {name} is applied; no namespace is labelled {label} yet (label one to inject GOPROXY into its pods)"
        ),
    )
}

/// Deletes bindings this operator made whose proxy no longer exists (deleted while no operator
/// ran, or its finalizer removed by hand): at startup, before reconciling. With `namespaces`
/// non-empty, only bindings of proxies in those namespaces (the others belong to another
/// installation's watch). Returns how many it deleted.
pub async fn delete_orphans(
    client: &Client,
    inj: &Injection,
    namespaces: &[String],
) -> Result<usize, Error> {
    let Some(ar) = inj.binding_api(client).await? else {
        return Ok(0);
    };
    let api = bindings(client, &ar);
    let selector = format!("{MANAGED_BY_LABEL}={FIELD_MANAGER}");
    let list = api.list(&ListParams::default().labels(&selector)).await?;
    let mut deleted = 0;
    for b in list.items {
        let labels = b.labels();
        let Some(ns) = labels.get(PROXY_NAMESPACE_LABEL) else {
            continue;
        };
        if !namespaces.is_empty() && !namespaces.contains(ns) {
            continue;
        }
        let Some(proxy_name) = b.data["spec"]["paramRef"]["name"].as_str() else {
            continue;
        };
        let uid = labels.get(PROXY_UID_LABEL).cloned().unwrap_or_default();
        let proxies: Api<AthensProxy> = Api::namespaced(client.clone(), ns);
        let alive = proxies
            .get_opt(proxy_name)
            .await?
            .is_some_and(|p| p.uid().as_deref() == Some(uid.as_str()));
        if alive {
            continue;
        }
        let name = b.name_any();
        match api.delete(&name, &DeleteParams::background()).await {
            Ok(_) => {
                tracing::info!(binding = %name, "deleted an orphaned GOPROXY binding");
                deleted += 1;
            }
            Err(kube::Error::Api(s)) if s.is_not_found() => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(deleted)
}
