//! Server-side apply under one field manager, and deletion of children no longer wanted.

use super::Error;
use super::preflight::controlled_by;
use super::report::Applied;
use crate::render::{Desired, FIELD_MANAGER, Meta, claim_name, template_hash};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolumeClaim, Service};
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use kube::{Client, Resource, ResourceExt};
use serde::{Serialize, de::DeserializeOwned};
use std::fmt::Debug;

/// Applies `obj` (forced: this operator owns every field it sets) and returns what the API
/// server stored. An apply that changes nothing does not change the object's resourceVersion.
pub async fn apply<K>(api: &Api<K>, obj: &K) -> Result<K, Error>
where
    K: Resource<DynamicType = ()> + Clone + Serialize + DeserializeOwned + Debug,
{
    let name = obj.name_any();
    let mut value = serde_json::to_value(obj).map_err(Error::Serialize)?;
    // k8s-openapi objects serialize without apiVersion/kind; apply needs both.
    value["apiVersion"] = K::api_version(&()).into();
    value["kind"] = K::kind(&()).into();
    let params = PatchParams::apply(FIELD_MANAGER).force();
    Ok(api.patch(&name, &params, &Patch::Apply(&value)).await?)
}

/// Deletes `name` if it exists and is controlled by the owner with `owner_uid`; a child of
/// someone else is left alone.
pub async fn delete_if_owned<K>(api: &Api<K>, name: &str, owner_uid: &str) -> Result<bool, Error>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug,
{
    let Some(existing) = api.get_opt(name).await? else {
        return Ok(false);
    };
    if !controlled_by(existing.meta(), owner_uid) {
        return Ok(false);
    }
    match api.delete(name, &DeleteParams::background()).await {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(s)) if s.is_not_found() => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Applies an optional child, or deletes the one named `name` that this proxy controls when it
/// is no longer wanted.
async fn optional<K>(
    api: &Api<K>,
    obj: Option<&K>,
    name: &str,
    owner_uid: &str,
) -> Result<(), Error>
where
    K: Resource<DynamicType = ()> + Clone + Serialize + DeserializeOwned + Debug,
{
    match obj {
        Some(o) => apply(api, o).await.map(drop),
        None => delete_if_owned(api, name, owner_uid).await.map(drop),
    }
}

/// Applies every desired child of one proxy (preflight found no problem), deletes a claim the
/// operator made that the spec no longer uses, and says what changed.
pub async fn children(
    client: &Client,
    meta: &Meta,
    desired: &Desired,
    before: Option<&Deployment>,
) -> Result<(Deployment, Applied), Error> {
    let ns = meta.namespace.as_str();
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), ns);
    apply(
        &Api::<ConfigMap>::namespaced(client.clone(), ns),
        &desired.config_map,
    )
    .await?;
    let mut deleted_claim = None;
    match &desired.pvc {
        Some(pvc) => {
            apply(&pvcs, pvc).await?;
        }
        None => {
            let claim = claim_name(&meta.name);
            if delete_if_owned(&pvcs, &claim, &meta.owner.uid).await? {
                deleted_claim = Some(claim);
            }
        }
    }
    let after = apply(
        &Api::<Deployment>::namespaced(client.clone(), ns),
        &desired.deployment,
    )
    .await?;
    apply(
        &Api::<Service>::namespaced(client.clone(), ns),
        &desired.service,
    )
    .await?;
    let uid = meta.owner.uid.as_str();
    let name = meta.name.as_str();
    optional(
        &Api::namespaced(client.clone(), ns),
        desired.pdb.as_ref(),
        name,
        uid,
    )
    .await?;
    optional(
        &Api::namespaced(client.clone(), ns),
        desired.hpa.as_ref(),
        name,
        uid,
    )
    .await?;
    optional(
        &Api::namespaced(client.clone(), ns),
        desired.network_policy.as_ref(),
        name,
        uid,
    )
    .await?;
    optional(
        &Api::namespaced(client.clone(), ns),
        desired.ingress.as_ref(),
        name,
        uid,
    )
    .await?;
    let applied = Applied {
        created: before.is_none(),
        old_hash: before.and_then(template_hash),
        new_hash: template_hash(&after),
        deleted_claim,
    };
    Ok((after, applied))
}
