//! The custom resource definition: Rust types, and the CRD YAML generated from them.

mod access;
mod extras;
mod status;
mod storage;
// The repeated `printcolumn(type_ = ...)` attributes are distinct columns, not duplicates.
#[allow(clippy::duplicated_attributes)]
mod types;

pub use access::*;
pub use extras::*;
pub use status::{AthensProxyStatus, DEGRADED, GOPROXY_INJECTION, MONITORING, PROGRESSING, READY};
pub use storage::*;
pub use types::*;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;

/// The CRD installed in clusters: the derived one, with `null` dropped from enums of optional
/// fields (an absent field is how a user says "default"; the apiserver need not see `null`).
pub fn crd() -> CustomResourceDefinition {
    let crd = AthensProxy::crd();
    let Ok(mut value) = serde_json::to_value(&crd) else {
        return crd;
    };
    drop_null_enum_values(&mut value);
    serde_json::from_value(value).unwrap_or(crd)
}

fn drop_null_enum_values(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Object(map) => {
            if let Some(serde_json::Value::Array(values)) = map.get_mut("enum") {
                values.retain(|e| !e.is_null());
            }
            if let Some(serde_json::Value::String(d)) = map.get_mut("description") {
                *d = reflow(d);
            }
            map.values_mut().for_each(drop_null_enum_values);
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(drop_null_enum_values),
        _ => {}
    }
}

/// Doc comments are wrapped at 100 columns in the source; `kubectl explain` wraps text itself, so
/// lines within a paragraph are joined (paragraphs stay apart).
fn reflow(text: &str) -> String {
    text.split("\n\n")
        .map(|p| p.lines().map(str::trim).collect::<Vec<_>>().join(" "))
        .collect::<Vec<_>>()
        .join("\n\n")
}

/// The CRD as YAML, exactly what `athens-operator crd` prints and `crds/` holds.
pub fn crd_yaml() -> String {
    // Serializing a CRD built from our own types cannot fail.
    serde_yaml::to_string(&crd()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHECKED_IN: &str = include_str!("../../../crds/athensproxy.yaml");

    #[test]
    fn checked_in_crd_is_current() {
        assert!(
            CHECKED_IN == crd_yaml(),
            "crds/athensproxy.yaml is stale: run charts/athens-operator/update-crd"
        );
    }

    /// The Helm chart installs this file (templates/crd.yaml adds only labels and the keep
    /// policy); tests/tests/chart.rs checks the rendered result too.
    #[test]
    fn chart_crd_is_current() {
        const CHART: &str = include_str!("../../../charts/athens-operator/files/athensproxy.yaml");
        assert!(
            CHART == crd_yaml(),
            "charts/athens-operator/files/athensproxy.yaml is stale: run charts/athens-operator/update-crd"
        );
    }

    #[test]
    fn descriptions_are_reflowed() {
        assert_eq!(reflow("a\nb\n\nc\n d"), "a b\n\nc d");
    }

    #[test]
    fn crd_has_names_columns_and_rules() {
        let y = crd_yaml();
        for want in [
            "group: athens.dev",
            "kind: AthensProxy",
            "- ap",
            "status: {}",
            "name: Ready",
            "name: URL",
            "x-kubernetes-validations",
            "set exactly one of storage.filesystem",
            "more than one replica needs shared storage",
        ] {
            assert!(y.contains(want), "CRD lacks {want:?}:\n{y}");
        }
    }
}
