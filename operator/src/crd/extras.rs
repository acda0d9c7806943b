//! The optional objects around a proxy: a PodDisruptionBudget, a HorizontalPodAutoscaler, a
//! NetworkPolicy and an Ingress. Each exists while its field is set, and goes when it is unset.
//!
//! Doc comments are `kubectl explain` text.

use k8s_openapi::api::networking::v1::NetworkPolicyPeer;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::KubeSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A PodDisruptionBudget for the proxy pods (named like the proxy), so node drains keep some
/// of them serving. Set at most one of minAvailable and maxUnavailable; with neither,
/// maxUnavailable is 1.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[x_kube(validation = Rule::new("!(has(self.minAvailable) && has(self.maxUnavailable))").message("podDisruptionBudget: set minAvailable or maxUnavailable, not both"))]
#[serde(rename_all = "camelCase")]
pub struct DisruptionBudgetSpec {
    /// Pods that must stay available during voluntary disruptions: a number or a percentage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_available: Option<IntOrString>,
    /// Pods that may be unavailable during voluntary disruptions: a number or a percentage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_unavailable: Option<IntOrString>,
}

/// A HorizontalPodAutoscaler (named like the proxy) that scales this AthensProxy through its
/// scale subresource, on the CPU use of its pods. It then owns `spec.replicas`: the value you
/// set is overwritten. Needs `resources.requests.cpu`, and shared storage when maxReplicas is
/// more than 1.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[x_kube(validation = Rule::new("!has(self.minReplicas) || self.minReplicas <= self.maxReplicas").message("autoscaling: minReplicas must not exceed maxReplicas"))]
#[serde(rename_all = "camelCase")]
pub struct AutoscalingSpec {
    /// Fewest pods. Default 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub min_replicas: Option<i32>,
    /// Most pods.
    #[schemars(range(min = 1))]
    pub max_replicas: i32,
    /// Average CPU use of the pods to aim for, in percent of their CPU request. Default 80.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 100))]
    pub target_cpu_utilization_percentage: Option<i32>,
}

/// A NetworkPolicy (named like the proxy) that admits traffic to the proxy pods only from the
/// namespaces that opted in to this proxy (label `athens.dev/goproxy=<namespace>.<name>`), the
/// operator's namespace, and the peers listed in `from` (your monitoring and ingress
/// controller, for example). Only enforced where the cluster's network plugin enforces
/// NetworkPolicies.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct NetworkPolicySpec {
    /// More peers (namespace or pod selectors, IP blocks) that may reach the proxy.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub from: Vec<NetworkPolicyPeer>,
}

/// An Ingress (named like the proxy) for clients outside the cluster: all paths of `host` go to
/// the proxy's Service.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct IngressSpec {
    /// The host name clients use, such as `goproxy.example.com`.
    #[schemars(length(min = 1, max = 253))]
    #[x_kube(validation = Rule::new("!self.contains('/') && !self.contains(':')").message("ingress.host is a host name, without scheme, port or path"))]
    pub host: String,
    /// The IngressClass to use. Default: the cluster's default class.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class_name: Option<String>,
    /// A Secret in this namespace with the TLS certificate for `host` (`kubernetes.io/tls`).
    /// Unset: plain HTTP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_secret_name: Option<String>,
    /// Annotations on the Ingress (for your ingress controller or certificate manager).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// Prometheus Operator scraping of the proxy's `/metrics`: a ServiceMonitor or a PodMonitor
/// (named like the proxy), created only where the cluster serves that kind
/// (`monitoring.coreos.com/v1`); the Monitoring condition says when it does not.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct MonitoringSpec {
    /// `ServiceMonitor` (scrape through the Service) or `PodMonitor` (scrape each pod).
    /// Default ServiceMonitor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("enum" = ["ServiceMonitor", "PodMonitor"]))]
    pub kind: Option<String>,
    /// Scrape interval, such as `30s`. Default: Prometheus' own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[0-9]+(ms|s|m|h)$"))]
    pub interval: Option<String>,
    /// Labels on the monitor, for example the one your Prometheus selects monitors by.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}
