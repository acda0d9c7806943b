//! The optional objects around a proxy, each `None` when its spec field is unset (the reconciler
//! then deletes one it made before): PodDisruptionBudget, HorizontalPodAutoscaler (scaling the
//! AthensProxy itself through its scale subresource), NetworkPolicy and Ingress. All are named
//! like the proxy.

use super::injection::NAMESPACE_LABEL;
use super::{CONTAINER_PORT, Meta, selector_labels, service_port};
use crate::crd::AthensProxySpec;
use k8s_openapi::api::autoscaling::v2::{
    CrossVersionObjectReference, HorizontalPodAutoscaler, HorizontalPodAutoscalerSpec, MetricSpec,
    MetricTarget, ResourceMetricSource,
};
use k8s_openapi::api::networking::v1::{
    HTTPIngressPath, HTTPIngressRuleValue, Ingress, IngressBackend, IngressRule,
    IngressServiceBackend, IngressSpec, IngressTLS, NetworkPolicy, NetworkPolicyIngressRule,
    NetworkPolicyPeer, NetworkPolicyPort, NetworkPolicySpec, ServiceBackendPort,
};
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use std::collections::BTreeMap;

/// Default target CPU use of the autoscaler, in percent of the request.
pub const DEFAULT_TARGET_CPU: i32 = 80;

fn selector(meta: &Meta) -> LabelSelector {
    LabelSelector {
        match_labels: Some(selector_labels(&meta.name)),
        ..Default::default()
    }
}

/// PodDisruptionBudget `<name>`: the spec's bound, else at most one pod unavailable.
pub fn pod_disruption_budget(meta: &Meta, spec: &AthensProxySpec) -> Option<PodDisruptionBudget> {
    let b = spec.pod_disruption_budget.as_ref()?;
    let (min_available, max_unavailable) = match (&b.min_available, &b.max_unavailable) {
        (None, None) => (None, Some(IntOrString::Int(1))),
        (min, max) => (min.clone(), max.clone()),
    };
    Some(PodDisruptionBudget {
        metadata: meta.child(meta.name.clone()),
        spec: Some(PodDisruptionBudgetSpec {
            selector: Some(selector(meta)),
            min_available,
            max_unavailable,
            ..Default::default()
        }),
        ..Default::default()
    })
}

/// HorizontalPodAutoscaler `<name>`, targeting the AthensProxy (its scale subresource), so the
/// operator keeps rendering the Deployment from `spec.replicas` and never fights the autoscaler.
pub fn horizontal_pod_autoscaler(
    meta: &Meta,
    spec: &AthensProxySpec,
) -> Option<HorizontalPodAutoscaler> {
    let a = spec.autoscaling.as_ref()?;
    Some(HorizontalPodAutoscaler {
        metadata: meta.child(meta.name.clone()),
        spec: Some(HorizontalPodAutoscalerSpec {
            scale_target_ref: CrossVersionObjectReference {
                api_version: Some(meta.owner.api_version.clone()),
                kind: meta.owner.kind.clone(),
                name: meta.name.clone(),
            },
            min_replicas: Some(a.min_replicas.unwrap_or(1)),
            max_replicas: a.max_replicas,
            metrics: Some(vec![MetricSpec {
                type_: "Resource".into(),
                resource: Some(ResourceMetricSource {
                    name: "cpu".into(),
                    target: MetricTarget {
                        type_: "Utilization".into(),
                        average_utilization: Some(
                            a.target_cpu_utilization_percentage
                                .unwrap_or(DEFAULT_TARGET_CPU),
                        ),
                        ..Default::default()
                    },
                }),
                ..Default::default()
            }]),
            ..Default::default()
        }),
        ..Default::default()
    })
}

fn namespace_peer(labels: BTreeMap<String, String>) -> NetworkPolicyPeer {
    NetworkPolicyPeer {
        namespace_selector: Some(LabelSelector {
            match_labels: Some(labels),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// NetworkPolicy `<name>`: the proxy port (and the metrics port) admits the namespaces labelled for this proxy, the
/// operator's namespace (when known) and the spec's extra peers; nothing else.
pub fn network_policy(
    meta: &Meta,
    spec: &AthensProxySpec,
    operator_namespace: Option<&str>,
) -> Option<NetworkPolicy> {
    let n = spec.network_policy.as_ref()?;
    let mut from = vec![namespace_peer(BTreeMap::from([(
        NAMESPACE_LABEL.to_string(),
        format!("{}.{}", meta.namespace, meta.name),
    )]))];
    if let Some(ns) = operator_namespace {
        from.push(namespace_peer(BTreeMap::from([(
            "kubernetes.io/metadata.name".to_string(),
            ns.to_string(),
        )])));
    }
    from.extend(n.from.iter().cloned());
    Some(NetworkPolicy {
        metadata: meta.child(meta.name.clone()),
        spec: Some(NetworkPolicySpec {
            pod_selector: Some(selector(meta)),
            policy_types: Some(vec!["Ingress".into()]),
            ingress: Some(vec![NetworkPolicyIngressRule {
                from: Some(from),
                ports: Some(
                    std::iter::once(CONTAINER_PORT)
                        .chain(super::access::metrics_port(spec))
                        .map(|p| NetworkPolicyPort {
                            port: Some(IntOrString::Int(p)),
                            protocol: Some("TCP".into()),
                            ..Default::default()
                        })
                        .collect(),
                ),
            }]),
            ..Default::default()
        }),
    })
}

/// Ingress `<name>`: every path of the host to the proxy's Service.
pub fn ingress(meta: &Meta, spec: &AthensProxySpec) -> Option<Ingress> {
    let i = spec.ingress.as_ref()?;
    let mut metadata = meta.child(meta.name.clone());
    if !i.annotations.is_empty() {
        metadata.annotations = Some(i.annotations.clone());
    }
    Some(Ingress {
        metadata,
        spec: Some(IngressSpec {
            ingress_class_name: i.class_name.clone(),
            tls: i.tls_secret_name.as_ref().map(|s| {
                vec![IngressTLS {
                    hosts: Some(vec![i.host.clone()]),
                    secret_name: Some(s.clone()),
                }]
            }),
            rules: Some(vec![IngressRule {
                host: Some(i.host.clone()),
                http: Some(HTTPIngressRuleValue {
                    paths: vec![HTTPIngressPath {
                        path: Some("/".into()),
                        path_type: "Prefix".into(),
                        backend: IngressBackend {
                            service: Some(IngressServiceBackend {
                                name: meta.name.clone(),
                                port: Some(ServiceBackendPort {
                                    number: Some(service_port(spec)),
                                    ..Default::default()
                                }),
                            }),
                            ..Default::default()
                        },
                    }],
                }),
            }]),
            ..Default::default()
        }),
        ..Default::default()
    })
}

/// The Prometheus Operator's group and version of ServiceMonitor and PodMonitor.
pub const MONITORING_API_VERSION: &str = "monitoring.coreos.com/v1";

/// The ServiceMonitor or PodMonitor `<name>` (kind, object for server-side apply): `/metrics`
/// on the `metrics` port of the proxy's Service or pods when `spec.access.metricsPort` is set,
/// else on the `http` port.
pub fn monitor(meta: &Meta, spec: &AthensProxySpec) -> Option<(&'static str, serde_json::Value)> {
    let m = spec.monitoring.as_ref()?;
    // The metrics port, when there is one, needs no credentials and speaks plain HTTP.
    let port = match super::access::metrics_port(spec) {
        Some(_) => "metrics",
        None => "http",
    };
    let mut endpoint = serde_json::json!({"port": port, "path": "/metrics"});
    if let Some(i) = &m.interval {
        endpoint["interval"] = i.clone().into();
    }
    let mut labels = super::labels(&meta.name);
    labels.extend(m.labels.clone());
    let (kind, endpoints) = match m.kind.as_deref() {
        Some("PodMonitor") => ("PodMonitor", "podMetricsEndpoints"),
        _ => ("ServiceMonitor", "endpoints"),
    };
    let mut obj = serde_json::json!({
        "apiVersion": MONITORING_API_VERSION,
        "kind": kind,
        "metadata": {
            "name": meta.name,
            "namespace": meta.namespace,
            "labels": labels,
            "ownerReferences": [meta.owner],
        },
        "spec": {
            "selector": {"matchLabels": selector_labels(&meta.name)},
            "namespaceSelector": {"matchNames": [meta.namespace]},
        },
    });
    obj["spec"][endpoints] = serde_json::json!([endpoint]);
    Some((kind, obj))
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;
    use crate::crd::*;

    fn with(f: impl FnOnce(&mut AthensProxySpec)) -> (Meta, AthensProxySpec) {
        let mut p = proxy(StorageSpec {
            s3: Some(S3Storage {
                bucket: "b".into(),
                ..Default::default()
            }),
            ..Default::default()
        });
        f(&mut p.spec);
        (Meta::of(&p).unwrap(), p.spec)
    }

    #[test]
    fn monitors_scrape_the_http_port() {
        let (m, s) = with(|s| {
            s.monitoring = Some(MonitoringSpec {
                kind: None,
                interval: Some("15s".into()),
                labels: BTreeMap::from([("release".into(), "prom".into())]),
            })
        });
        let (kind, sm) = monitor(&m, &s).unwrap();
        assert_eq!(kind, "ServiceMonitor");
        assert_eq!(sm["spec"]["endpoints"][0]["port"], "http");
        assert_eq!(sm["spec"]["endpoints"][0]["path"], "/metrics");
        assert_eq!(sm["spec"]["endpoints"][0]["interval"], "15s");
        assert_eq!(sm["metadata"]["labels"]["release"], "prom");
        assert_eq!(
            sm["metadata"]["ownerReferences"][0]["uid"],
            m.owner.uid.as_str()
        );
        assert_eq!(
            sm["spec"]["namespaceSelector"]["matchNames"][0],
            m.namespace.as_str()
        );
        let (m, s) = with(|s| {
            s.monitoring = Some(MonitoringSpec {
                kind: Some("PodMonitor".into()),
                ..Default::default()
            })
        });
        let (kind, pm) = monitor(&m, &s).unwrap();
        assert_eq!(kind, "PodMonitor");
        assert_eq!(pm["spec"]["podMetricsEndpoints"][0]["port"], "http");
        assert!(
            pm["spec"]["podMetricsEndpoints"][0]
                .get("interval")
                .is_none()
        );
    }

    #[test]
    fn nothing_unless_asked_for() {
        let (m, s) = with(|_| {});
        assert!(pod_disruption_budget(&m, &s).is_none());
        assert!(horizontal_pod_autoscaler(&m, &s).is_none());
        assert!(network_policy(&m, &s, Some("ops")).is_none());
        assert!(ingress(&m, &s).is_none());
        assert!(monitor(&m, &s).is_none());
    }

    #[test]
    fn disruption_budget_defaults_to_one_unavailable() {
        let (m, s) = with(|s| s.pod_disruption_budget = Some(Default::default()));
        let pdb = pod_disruption_budget(&m, &s).unwrap();
        let spec = pdb.spec.unwrap();
        assert_eq!(spec.max_unavailable, Some(IntOrString::Int(1)));
        assert_eq!(spec.min_available, None);
        assert_eq!(
            spec.selector.unwrap().match_labels,
            Some(selector_labels(&m.name))
        );
        assert_eq!(pdb.metadata.owner_references.unwrap()[0].uid, m.owner.uid);
        let (m, s) = with(|s| {
            s.pod_disruption_budget = Some(DisruptionBudgetSpec {
                min_available: Some(IntOrString::String("50%".into())),
                max_unavailable: None,
            })
        });
        let spec = pod_disruption_budget(&m, &s).unwrap().spec.unwrap();
        assert_eq!(spec.min_available, Some(IntOrString::String("50%".into())));
        assert_eq!(spec.max_unavailable, None);
    }

    #[test]
    fn autoscaler_scales_the_athensproxy() {
        let (m, s) = with(|s| {
            s.autoscaling = Some(AutoscalingSpec {
                min_replicas: None,
                max_replicas: 4,
                target_cpu_utilization_percentage: None,
            })
        });
        let spec = horizontal_pod_autoscaler(&m, &s).unwrap().spec.unwrap();
        assert_eq!(spec.scale_target_ref.kind, "AthensProxy");
        assert_eq!(
            spec.scale_target_ref.api_version.as_deref(),
            Some("athens.dev/v1alpha1")
        );
        assert_eq!(spec.scale_target_ref.name, m.name);
        assert_eq!((spec.min_replicas, spec.max_replicas), (Some(1), 4));
        let target = &spec.metrics.unwrap()[0].resource.clone().unwrap().target;
        assert_eq!(target.average_utilization, Some(DEFAULT_TARGET_CPU));
    }

    #[test]
    fn network_policy_admits_opted_in_namespaces_operator_and_extra_peers() {
        let extra = NetworkPolicyPeer {
            namespace_selector: Some(LabelSelector {
                match_labels: Some(BTreeMap::from([("team".into(), "monitoring".into())])),
                ..Default::default()
            }),
            ..Default::default()
        };
        let (m, s) = with(|s| {
            s.network_policy = Some(crate::crd::NetworkPolicySpec {
                from: vec![extra.clone()],
            })
        });
        let np = network_policy(&m, &s, Some("athens-system"))
            .unwrap()
            .spec
            .unwrap();
        assert_eq!(np.policy_types, Some(vec!["Ingress".to_string()]));
        let rule = &np.ingress.unwrap()[0];
        let from = rule.from.clone().unwrap();
        let labels =
            |p: &NetworkPolicyPeer| p.namespace_selector.clone().unwrap().match_labels.unwrap();
        assert_eq!(
            labels(&from[0])[NAMESPACE_LABEL],
            format!("{}.{}", m.namespace, m.name)
        );
        assert_eq!(
            labels(&from[1])["kubernetes.io/metadata.name"],
            "athens-system"
        );
        assert_eq!(from[2], extra);
        assert_eq!(from.len(), 3);
        assert_eq!(
            rule.ports.clone().unwrap()[0].port,
            Some(IntOrString::Int(CONTAINER_PORT))
        );
        let without = network_policy(&m, &s, None).unwrap().spec.unwrap();
        assert_eq!(without.ingress.unwrap()[0].from.as_ref().unwrap().len(), 2);
    }

    #[test]
    fn a_metrics_port_is_served_exposed_scraped_and_admitted() {
        let (m, s) = with(|s| {
            s.access = Some(AccessSpec {
                metrics_port: Some(9090),
                ..Default::default()
            });
            s.monitoring = Some(MonitoringSpec::default());
            s.network_policy = Some(crate::crd::NetworkPolicySpec::default());
        });
        let cfg = super::super::proxy_config(&s);
        assert_eq!(cfg.access.metrics_listen, "0.0.0.0:9090");
        assert!(
            !cfg.access.enabled(),
            "a metrics port asks for no credentials"
        );
        let ports = super::super::service(&m, &s).spec.unwrap().ports.unwrap();
        let named: Vec<(String, i32)> = ports
            .iter()
            .map(|p| (p.name.clone().unwrap(), p.port))
            .collect();
        assert_eq!(
            named,
            vec![
                ("http".into(), super::super::DEFAULT_SERVICE_PORT),
                ("metrics".into(), 9090)
            ]
        );
        assert_eq!(
            ports[1].target_port,
            Some(IntOrString::String("metrics".into()))
        );
        let pod = super::super::deployment(&m, &s, "h")
            .spec
            .unwrap()
            .template
            .spec
            .unwrap();
        let container_ports = pod.containers[0].ports.clone().unwrap();
        assert_eq!(container_ports[1].name.as_deref(), Some("metrics"));
        assert_eq!(container_ports[1].container_port, 9090);
        let (_, sm) = monitor(&m, &s).unwrap();
        assert_eq!(sm["spec"]["endpoints"][0]["port"], "metrics");
        let np = network_policy(&m, &s, None).unwrap().spec.unwrap();
        let admitted: Vec<_> = np.ingress.unwrap()[0]
            .ports
            .clone()
            .unwrap()
            .into_iter()
            .map(|p| p.port)
            .collect();
        assert_eq!(
            admitted,
            vec![
                Some(IntOrString::Int(CONTAINER_PORT)),
                Some(IntOrString::Int(9090))
            ]
        );
        // Without one, nothing changes: one port everywhere, the monitor on `http`.
        let (m, s) = with(|s| s.monitoring = Some(MonitoringSpec::default()));
        assert_eq!(super::super::proxy_config(&s).access.metrics_listen, "");
        let ports = super::super::service(&m, &s).spec.unwrap().ports.unwrap();
        assert_eq!(ports.len(), 1);
        assert_eq!(
            monitor(&m, &s).unwrap().1["spec"]["endpoints"][0]["port"],
            "http"
        );
    }

    #[test]
    fn ingress_routes_the_host_to_the_service() {
        let (m, s) = with(|s| {
            s.service.port = Some(8080);
            s.ingress = Some(crate::crd::IngressSpec {
                host: "goproxy.example.com".into(),
                class_name: Some("nginx".into()),
                tls_secret_name: Some("tls".into()),
                annotations: BTreeMap::from([("a".into(), "b".into())]),
            })
        });
        let i = ingress(&m, &s).unwrap();
        assert_eq!(i.metadata.annotations.unwrap()["a"], "b");
        let spec = i.spec.unwrap();
        assert_eq!(spec.ingress_class_name.as_deref(), Some("nginx"));
        assert_eq!(spec.tls.unwrap()[0].secret_name.as_deref(), Some("tls"));
        let rule = &spec.rules.unwrap()[0];
        assert_eq!(rule.host.as_deref(), Some("goproxy.example.com"));
        let backend = rule.http.clone().unwrap().paths[0]
            .backend
            .service
            .clone()
            .unwrap();
        assert_eq!(backend.name, m.name);
        assert_eq!(backend.port.unwrap().number, Some(8080));
    }
}
