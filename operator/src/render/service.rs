//! The Service in front of the proxy pods.

use super::{Meta, selector_labels, service_port};
use crate::crd::AthensProxySpec;
use k8s_openapi::api::core::v1::{Service, ServicePort, ServiceSpec};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

/// Service `<name>`: `http` port to the container's `http` port (and `metrics` to `metrics`).
pub fn service(meta: &Meta, spec: &AthensProxySpec) -> Service {
    let mut metadata = meta.child(meta.name.clone());
    if !spec.service.annotations.is_empty() {
        metadata.annotations = Some(spec.service.annotations.clone());
    }
    Service {
        metadata,
        spec: Some(ServiceSpec {
            type_: Some(
                spec.service
                    .type_
                    .clone()
                    .unwrap_or_else(|| "ClusterIP".into()),
            ),
            selector: Some(selector_labels(&meta.name)),
            ports: Some(ports(spec)),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// `http`, and `metrics` (same number as the container's) when `/metrics` has its own port.
fn ports(spec: &AthensProxySpec) -> Vec<ServicePort> {
    let port = |name: &str, n: i32| ServicePort {
        name: Some(name.into()),
        port: n,
        target_port: Some(IntOrString::String(name.into())),
        protocol: Some("TCP".into()),
        ..Default::default()
    };
    let mut ports = vec![port("http", service_port(spec))];
    ports.extend(super::access::metrics_port(spec).map(|n| port("metrics", n)));
    ports
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::super::*;

    #[test]
    fn defaults_and_overrides() {
        let mut p = proxy(fs());
        let svc = desired(&p, &Secrets::new(), &Settings::default())
            .unwrap()
            .service;
        let s = svc.spec.unwrap();
        assert_eq!(s.type_.as_deref(), Some("ClusterIP"));
        assert_eq!(s.ports.as_ref().unwrap()[0].port, 80);
        assert_eq!(s.selector.unwrap(), selector_labels("gomods"));
        assert!(svc.metadata.annotations.is_none());

        p.spec.service.type_ = Some("LoadBalancer".into());
        p.spec.service.port = Some(8080);
        p.spec
            .service
            .annotations
            .insert("lb".into(), "internal".into());
        let svc = desired(&p, &Secrets::new(), &Settings::default())
            .unwrap()
            .service;
        assert_eq!(svc.metadata.annotations.unwrap()["lb"], "internal");
        let s = svc.spec.unwrap();
        assert_eq!(s.type_.as_deref(), Some("LoadBalancer"));
        assert_eq!(s.ports.unwrap()[0].port, 8080);
    }
}
