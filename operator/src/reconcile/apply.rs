//! Server-side apply under one field manager, and deletion of children no longer wanted.

use super::Error;
use crate::render::FIELD_MANAGER;
use kube::api::{Api, DeleteParams, Patch, PatchParams};
use kube::{Resource, ResourceExt};
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
    let owned = existing
        .owner_references()
        .iter()
        .any(|o| o.uid == owner_uid && o.controller == Some(true));
    if !owned {
        return Ok(false);
    }
    match api.delete(name, &DeleteParams::background()).await {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(s)) if s.is_not_found() => Ok(false),
        Err(e) => Err(e.into()),
    }
}
