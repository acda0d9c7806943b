//! Installing the AthensProxy CRD on a test cluster, as `crds/` holds it.

use crate::wait::{poll, repo};
use anyhow::Result;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Patch, PatchParams};
use kube::{Api, Client};
use std::time::Duration;

/// Server-side applies `crds/athensproxy.yaml` (forced, field manager `athens-e2e`) and waits
/// until the CRD is Established.
pub async fn install_crd(client: &Client) -> Result<()> {
    let text = std::fs::read_to_string(repo().join("crds/athensproxy.yaml"))?;
    let crd: CustomResourceDefinition = serde_yaml::from_str(&text)?;
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let mut value = serde_json::to_value(&crd)?;
    value["apiVersion"] = "apiextensions.k8s.io/v1".into();
    value["kind"] = "CustomResourceDefinition".into();
    api.patch(
        "athensproxies.athens.dev",
        &PatchParams::apply("athens-e2e").force(),
        &Patch::Apply(&value),
    )
    .await?;
    poll(Duration::from_secs(90), "CRD Established", || async {
        let crd = api.get("athensproxies.athens.dev").await?;
        Ok(crd.status.and_then(|s| s.conditions).is_some_and(|cs| {
            cs.iter()
                .any(|c| c.type_ == "Established" && c.status == "True")
        }))
    })
    .await
}
