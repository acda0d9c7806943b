//! The PersistentVolumeClaim for filesystem storage, when the operator is to create it.

use super::Meta;
use crate::crd::AthensProxySpec;
use k8s_openapi::api::core::v1::{
    PersistentVolumeClaim, PersistentVolumeClaimSpec, VolumeResourceRequirements,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use std::collections::BTreeMap;

/// Size of a created volume when the spec gives none.
pub const DEFAULT_SIZE: &str = "10Gi";

/// Name of the claim the operator creates for proxy `name`.
pub fn claim_name(name: &str) -> String {
    format!("{name}-storage")
}

/// Whether the operator creates and owns a claim for this spec.
pub fn wants_pvc(spec: &AthensProxySpec) -> bool {
    spec.storage
        .filesystem
        .as_ref()
        .is_some_and(|f| f.existing_claim.is_none())
}

/// Access modes of the claim the operator creates.
pub fn access_modes(spec: &AthensProxySpec) -> Vec<String> {
    spec.storage
        .filesystem
        .as_ref()
        .and_then(|f| f.access_modes.clone())
        .filter(|m| !m.is_empty())
        .unwrap_or_else(|| vec!["ReadWriteOnce".into()])
}

/// The claim, or `None` when storage is not a volume the operator creates.
pub fn persistent_volume_claim(
    meta: &Meta,
    spec: &AthensProxySpec,
) -> Option<PersistentVolumeClaim> {
    if !wants_pvc(spec) {
        return None;
    }
    let fs = spec.storage.filesystem.as_ref()?;
    let size = fs
        .size
        .clone()
        .unwrap_or_else(|| Quantity(DEFAULT_SIZE.into()));
    Some(PersistentVolumeClaim {
        metadata: meta.child(claim_name(&meta.name)),
        spec: Some(PersistentVolumeClaimSpec {
            access_modes: Some(access_modes(spec)),
            storage_class_name: fs.storage_class_name.clone(),
            resources: Some(VolumeResourceRequirements {
                requests: Some(BTreeMap::from([("storage".to_string(), size)])),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    })
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::super::*;
    use crate::crd::FilesystemStorage;

    #[test]
    fn created_claim_defaults() {
        let d = desired(&proxy(fs()), &Secrets::new(), &Settings::default()).unwrap();
        let pvc = d.pvc.unwrap();
        assert_eq!(pvc.metadata.name.as_deref(), Some("gomods-storage"));
        let spec = pvc.spec.unwrap();
        assert_eq!(spec.access_modes.unwrap(), vec!["ReadWriteOnce"]);
        assert_eq!(
            spec.resources.unwrap().requests.unwrap()["storage"].0,
            "10Gi"
        );
        assert_eq!(spec.storage_class_name, None);
    }

    #[test]
    fn existing_claim_or_bucket_means_no_claim() {
        let mut st = fs();
        st.filesystem = Some(FilesystemStorage {
            existing_claim: Some("mine".into()),
            ..Default::default()
        });
        assert!(
            desired(&proxy(st), &Secrets::new(), &Settings::default())
                .unwrap()
                .pvc
                .is_none()
        );
        assert!(
            desired(&proxy(s3()), &Secrets::new(), &Settings::default())
                .unwrap()
                .pvc
                .is_none()
        );
    }
}
