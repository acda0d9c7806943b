//! Cluster-wide `GOPROXY`: the `MutatingAdmissionPolicyBinding` of one proxy, the dry-run pod
//! that shows whether injection works, and the check of what the API server made of that pod.
//!
//! The policy itself is installed by the Helm chart (`templates/goproxy-policy.yaml`); its
//! parameter is the `AthensProxy` a binding names. A binding is cluster-scoped, so it cannot be
//! owned by the namespaced proxy: it carries labels naming the proxy (and its uid) instead, and
//! the proxy a finalizer.

use super::{APP_NAME, Meta};
use crate::crd::AthensProxySpec;
use serde_json::{Value, json};

/// The namespace label that opts a namespace in: `athens.dev/goproxy=<namespace>.<name>`.
pub const NAMESPACE_LABEL: &str = "athens.dev/goproxy";
/// The pod annotation that opts a pod out: `athens.dev/goproxy-inject: "false"`.
pub const OPT_OUT_ANNOTATION: &str = "athens.dev/goproxy-inject";
/// Finalizer on a proxy that has a binding: removed once the binding is deleted.
pub const FINALIZER: &str = "athens.dev/goproxy-binding";
/// Label on a binding: the namespace of its proxy (for orphan cleanup).
pub const PROXY_NAMESPACE_LABEL: &str = "athens.dev/proxy-namespace";
/// Label on a binding: the uid of its proxy (a proxy recreated under the same name has another).
pub const PROXY_UID_LABEL: &str = "athens.dev/proxy-uid";
/// Label on everything the operator creates.
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
/// The policy's API group.
pub const GROUP: &str = "admissionregistration.k8s.io";
/// The binding's kind.
pub const BINDING_KIND: &str = "MutatingAdmissionPolicyBinding";
/// The policy's kind.
pub const POLICY_KIND: &str = "MutatingAdmissionPolicy";
/// The policy name the chart installs by default.
pub const DEFAULT_POLICY_NAME: &str = "athens-goproxy";

/// Why a proxy cannot get a binding.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum InjectionError {
    /// A label value is at most 63 characters.
    #[error(
        "the namespace label value {0:?} is longer than 63 characters, the limit of a label value: use a shorter proxy name or namespace for cluster-wide GOPROXY"
    )]
    LabelTooLong(String),
}

/// The value of [`NAMESPACE_LABEL`] that selects this proxy: `<namespace>.<name>`. Both parts
/// are valid in a label value (a namespace has no dots, so the value names one proxy); only the
/// length can exceed a label value's limit.
pub fn label_value(meta: &Meta) -> Result<String, InjectionError> {
    let v = format!("{}.{}", meta.namespace, meta.name);
    if v.len() > 63 {
        return Err(InjectionError::LabelTooLong(v));
    }
    Ok(v)
}

/// The binding's name: `athens-goproxy.<namespace>.<name>` (cluster-wide unique: the namespace
/// holds no dot).
pub fn binding_name(meta: &Meta) -> String {
    format!("athens-goproxy.{}.{}", meta.namespace, meta.name)
}

/// `GONOSUMDB` for builds using this proxy: its no-sum patterns, then its private patterns
/// (the checksum database cannot know private modules, so a client must not ask it either),
/// comma-joined (the go command's list syntax). `None` when there are none: then nothing is
/// set. The chart's admission policy computes the same value in CEL.
pub fn no_sum_value(spec: &AthensProxySpec) -> Option<String> {
    let patterns: Vec<&str> = spec
        .upstream
        .no_sum_patterns
        .iter()
        .chain(&spec.upstream.private)
        .map(|p| p.trim())
        .filter(|p| !p.is_empty())
        .collect();
    (!patterns.is_empty()).then(|| patterns.join(","))
}

/// The binding of one proxy, for server-side apply with `api_version` (`<group>/v1` or
/// `<group>/v1beta1`, whichever the cluster serves). Pods created in namespaces labelled
/// `athens.dev/goproxy=<namespace>.<name>` are mutated by `policy` with this proxy as the
/// parameter; when the proxy is gone the parameter is not found and nothing happens (`Allow`).
pub fn binding(
    meta: &Meta,
    uid: &str,
    policy: &str,
    api_version: &str,
) -> Result<Value, InjectionError> {
    let selector = label_value(meta)?;
    Ok(json!({
        "apiVersion": api_version,
        "kind": BINDING_KIND,
        "metadata": {
            "name": binding_name(meta),
            "labels": {
                "app.kubernetes.io/name": APP_NAME,
                // At most 61 characters: label_value above refused longer names.
                "app.kubernetes.io/instance": meta.name,
                MANAGED_BY_LABEL: super::FIELD_MANAGER,
                PROXY_NAMESPACE_LABEL: meta.namespace,
                PROXY_UID_LABEL: uid,
            },
        },
        "spec": {
            "policyName": policy,
            "paramRef": {
                "name": meta.name,
                "namespace": meta.namespace,
                "parameterNotFoundAction": "Allow",
            },
            "matchResources": {
                "namespaceSelector": {"matchLabels": {NAMESPACE_LABEL: selector}},
            },
        },
    }))
}

/// The pod the operator creates with server-side dry run (never stored) in a namespace that
/// opted in, to see whether the API server injects. It passes the `restricted` Pod Security
/// level, so namespaces enforcing it do not refuse it.
pub fn probe_pod(namespace: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "generateName": "athens-goproxy-probe-",
            "namespace": namespace,
            "labels": {MANAGED_BY_LABEL: super::FIELD_MANAGER},
        },
        "spec": {
            "automountServiceAccountToken": false,
            "securityContext": {"runAsNonRoot": true, "runAsUser": 65532, "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [{
                "name": "probe",
                "image": "athens-goproxy-probe",
                "securityContext": {"allowPrivilegeEscalation": false, "capabilities": {"drop": ["ALL"]}},
            }],
        },
    })
}

/// What the dry-run pod shows.
#[derive(Debug, Clone, PartialEq)]
pub enum Probe {
    /// `GOPROXY` (and `GONOSUMDB`, if wanted) as expected.
    Injected,
    /// Not as expected: what the container's environment had instead.
    NotInjected(String),
}

/// Checks the first container of the dry-run pod for `GOPROXY=url` and, when there are no-sum
/// patterns, `GONOSUMDB=no_sum`.
pub fn check_probe(pod: &Value, url: &str, no_sum: Option<&str>) -> Probe {
    let env = pod["spec"]["containers"][0]["env"].as_array();
    let get = |name: &str| {
        env.into_iter()
            .flatten()
            .find(|e| e["name"] == name)
            .and_then(|e| e["value"].as_str())
    };
    let goproxy = get("GOPROXY");
    let gonosumdb = get("GONOSUMDB");
    if goproxy == Some(url) && gonosumdb == no_sum {
        return Probe::Injected;
    }
    Probe::NotInjected(format!(
        "GOPROXY={}, GONOSUMDB={} (want GOPROXY={url}{})",
        goproxy.unwrap_or("<unset>"),
        gonosumdb.unwrap_or("<unset>"),
        no_sum
            .map(|n| format!(", GONOSUMDB={n}"))
            .unwrap_or_default(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;

    fn meta(ns: &str, name: &str) -> Meta {
        Meta {
            name: name.into(),
            namespace: ns.into(),
            owner: OwnerReference::default(),
        }
    }

    #[test]
    fn binding_selects_the_labelled_namespaces_and_names_the_proxy() {
        let b = binding(
            &meta("ci", "gomods"),
            "u-1",
            "athens-goproxy",
            "admissionregistration.k8s.io/v1",
        )
        .unwrap();
        assert_eq!(b["kind"], "MutatingAdmissionPolicyBinding");
        assert_eq!(b["apiVersion"], "admissionregistration.k8s.io/v1");
        assert_eq!(b["metadata"]["name"], "athens-goproxy.ci.gomods");
        assert_eq!(b["metadata"]["labels"][PROXY_UID_LABEL], "u-1");
        assert_eq!(b["metadata"]["labels"][PROXY_NAMESPACE_LABEL], "ci");
        assert_eq!(b["metadata"]["labels"][MANAGED_BY_LABEL], "athens-operator");
        assert_eq!(b["spec"]["policyName"], "athens-goproxy");
        assert_eq!(b["spec"]["paramRef"]["name"], "gomods");
        assert_eq!(b["spec"]["paramRef"]["namespace"], "ci");
        assert_eq!(b["spec"]["paramRef"]["parameterNotFoundAction"], "Allow");
        assert_eq!(
            b["spec"]["matchResources"]["namespaceSelector"]["matchLabels"][NAMESPACE_LABEL],
            "ci.gomods"
        );
    }

    #[test]
    fn a_label_value_over_63_characters_is_refused() {
        let long = "p".repeat(61);
        assert!(matches!(
            binding(&meta("ns", &long), "u", "p", "v"),
            Err(InjectionError::LabelTooLong(_))
        ));
        assert_eq!(label_value(&meta("ns", &"p".repeat(60))).unwrap().len(), 63);
    }

    #[test]
    fn no_sum_patterns_are_comma_joined_and_absent_when_empty() {
        let mut spec: AthensProxySpec = serde_json::from_value(json!({
            "storage": {"filesystem": {}}, "upstream": {"goproxy": "direct"}
        }))
        .unwrap();
        assert_eq!(no_sum_value(&spec), None);
        spec.upstream.no_sum_patterns = vec!["corp.example/*".into(), " ".into(), "git.x/y".into()];
        assert_eq!(
            no_sum_value(&spec).as_deref(),
            Some("corp.example/*,git.x/y")
        );
        spec.upstream.private = vec!["git.corp.example".into()];
        assert_eq!(
            no_sum_value(&spec).as_deref(),
            Some("corp.example/*,git.x/y,git.corp.example")
        );
        spec.upstream.no_sum_patterns.clear();
        assert_eq!(no_sum_value(&spec).as_deref(), Some("git.corp.example"));
    }

    #[test]
    fn probe_check_wants_both_variables() {
        let pod = |env: Value| json!({"spec": {"containers": [{"name": "probe", "env": env}]}});
        let good = pod(
            json!([{"name": "GOPROXY", "value": "http://p"}, {"name": "GONOSUMDB", "value": "a/*"}]),
        );
        assert_eq!(check_probe(&good, "http://p", Some("a/*")), Probe::Injected);
        assert!(matches!(
            check_probe(&good, "http://p", None),
            Probe::NotInjected(_)
        ));
        let bare = json!({"spec": {"containers": [{"name": "probe"}]}});
        match check_probe(&bare, "http://p", None) {
            Probe::NotInjected(m) => assert!(m.contains("GOPROXY=<unset>"), "{m}"),
            other => panic!("{other:?}"),
        }
        let only_proxy = pod(json!([{"name": "GOPROXY", "value": "http://p"}]));
        assert_eq!(check_probe(&only_proxy, "http://p", None), Probe::Injected);
    }

    #[test]
    fn probe_pod_is_in_the_namespace_and_restricted() {
        let p = probe_pod("team-a");
        assert_eq!(p["metadata"]["namespace"], "team-a");
        assert_eq!(p["spec"]["securityContext"]["runAsNonRoot"], true);
        assert_eq!(
            p["spec"]["containers"][0]["securityContext"]["capabilities"]["drop"][0],
            "ALL"
        );
    }
}
