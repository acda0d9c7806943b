//! `status`: what the operator observed, written only when it changes.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Condition type: the proxy serves requests with the current spec.
pub const READY: &str = "Ready";
/// Condition type: a rollout is under way.
pub const PROGRESSING: &str = "Progressing";
/// Condition type: the spec cannot be satisfied or the operator failed to apply it.
pub const DEGRADED: &str = "Degraded";

/// Condition type: whether pods in namespaces that opted in get this proxy in `GOPROXY`
/// (cluster-wide GOPROXY; only when the operator runs with a GOPROXY policy).
pub const GOPROXY_INJECTION: &str = "GoproxyInjection";

/// Condition type: whether the ServiceMonitor or PodMonitor `spec.monitoring` asks for exists.
pub const MONITORING: &str = "Monitoring";

/// What athens-operator observed about this proxy.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct AthensProxyStatus {
    /// The metadata.generation this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Proxy pods that exist.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<i32>,
    /// Proxy pods ready to serve.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_replicas: Option<i32>,
    /// Label selector of the proxy pods (for the scale subresource).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<String>,
    /// In-cluster URL of the proxy: put it in GOPROXY (for example
    /// `GOPROXY=<url>` or `GOPROXY=<url>,direct`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Ready, Progressing and Degraded, with reasons and messages; with cluster-wide GOPROXY
    /// also GoproxyInjection: True when a dry-run pod in a namespace labelled
    /// `athens.dev/goproxy=<namespace>.<name>` gets GOPROXY (reason Injected) or when no
    /// namespace is labelled yet (Bound); False when the cluster does not serve the
    /// MutatingAdmissionPolicy API (APINotServed) or such a pod gets nothing (NotInjected).
    /// With spec.monitoring also Monitoring: True when the monitor exists (Created), False
    /// when the cluster does not serve its kind (CRDNotServed).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

impl AthensProxyStatus {
    /// The condition of this type, if set.
    pub fn condition(&self, type_: &str) -> Option<&Condition> {
        self.conditions.iter().find(|c| c.type_ == type_)
    }

    /// Whether the condition of this type is `True`.
    pub fn is_true(&self, type_: &str) -> bool {
        self.condition(type_).is_some_and(|c| c.status == "True")
    }
}
