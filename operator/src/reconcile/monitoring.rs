//! `spec.monitoring`: a ServiceMonitor or PodMonitor where the cluster serves the Prometheus
//! Operator's kinds (found by discovery, cached), deleted when the spec drops it, and the
//! `Monitoring` condition.

use super::Error;
use super::preflight::controlled_by;
use super::status::ConditionState;
use crate::crd::AthensProxy;
use crate::render::{FIELD_MANAGER, MONITORING_API_VERSION, Meta, monitor};
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, Patch, PatchParams};
use kube::{Client, discovery};
use std::sync::Mutex;
use std::time::{Duration, Instant};

const KINDS: [&str; 2] = ["ServiceMonitor", "PodMonitor"];
/// Discovery is asked again after this long (a CRD installed later is noticed).
const TTL: Duration = Duration::from_secs(30);

/// The monitor kinds the cluster serves, cached.
#[derive(Default)]
pub struct Monitors {
    served: Mutex<Option<(Instant, Vec<ApiResource>)>>,
}

impl Monitors {
    async fn served(&self, client: &Client) -> Result<Vec<ApiResource>, kube::Error> {
        if let Ok(c) = self.served.lock()
            && let Some((at, kinds)) = c.as_ref()
            && at.elapsed() < TTL
        {
            return Ok(kinds.clone());
        }
        let (group, version) = MONITORING_API_VERSION
            .split_once('/')
            .unwrap_or((MONITORING_API_VERSION, "v1"));
        let kinds = match discovery::oneshot::group(client, group).await {
            Ok(g) => g
                .versioned_resources(version)
                .into_iter()
                .map(|(ar, _)| ar)
                .filter(|ar| KINDS.contains(&ar.kind.as_str()))
                .collect(),
            Err(kube::Error::Api(s)) if s.is_not_found() => Vec::new(),
            // A group that is not served at all is also reported like this by kube.
            Err(kube::Error::Discovery(_)) => Vec::new(),
            Err(e) => return Err(e),
        };
        if let Ok(mut c) = self.served.lock() {
            *c = Some((Instant::now(), kinds.clone()));
        }
        Ok(kinds)
    }
}

fn state(status: &'static str, reason: &'static str, message: String) -> ConditionState {
    ConditionState {
        status,
        reason,
        message,
    }
}

/// Deletes the monitor of `kind` named like the proxy, if this proxy controls it.
async fn delete_ours(api: &Api<DynamicObject>, name: &str, uid: &str) -> Result<(), Error> {
    if let Some(o) = api.get_opt(name).await?
        && controlled_by(&o.metadata, uid)
    {
        match api.delete(name, &DeleteParams::background()).await {
            Ok(_) | Err(kube::Error::Api(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Applies the wanted monitor (and deletes one of the other kind this proxy made), or deletes
/// any this proxy made when none is wanted. `None`: nothing asked, no condition.
pub async fn ensure(
    client: &Client,
    monitors: &Monitors,
    proxy: &AthensProxy,
    meta: &Meta,
) -> Result<Option<ConditionState>, Error> {
    let wanted = monitor(meta, &proxy.spec);
    let served = monitors.served(client).await?;
    let uid = meta.owner.uid.as_str();
    let name = meta.name.as_str();
    for ar in &served {
        if wanted.as_ref().map(|(k, _)| *k) != Some(ar.kind.as_str()) {
            delete_ours(
                &Api::namespaced_with(client.clone(), &meta.namespace, ar),
                name,
                uid,
            )
            .await?;
        }
    }
    let Some((kind, obj)) = wanted else {
        return Ok(None);
    };
    let Some(ar) = served.iter().find(|ar| ar.kind == kind) else {
        return Ok(Some(state(
            "False",
            "CRDNotServed",
            format!(
                "this cluster does not serve {kind} ({MONITORING_API_VERSION}): install the Prometheus Operator's CRDs, or unset spec.monitoring"
            ),
        )));
    };
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), &meta.namespace, ar);
    if let Some(existing) = api.get_opt(name).await?
        && !controlled_by(&existing.metadata, uid)
    {
        return Ok(Some(state(
            "False",
            "NameConflict",
            format!(
                "a {kind} named {name} exists that this proxy does not control; it is left alone"
            ),
        )));
    }
    api.patch(
        name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&obj),
    )
    .await?;
    Ok(Some(state(
        "True",
        "Created",
        format!("{kind} {name} scrapes /metrics on port http"),
    )))
}
