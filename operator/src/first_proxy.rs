//! The first AthensProxy of a Helm release (`firstProxy` in the chart's values), applied by the
//! operator rather than by Helm.
//!
//! Helm resolves the kind of every object of a release before it creates any, so it cannot
//! create an AthensProxy in the same `helm install` that creates the CRD. The chart therefore
//! renders the proxy into the operator's environment (`ATHENS_OPERATOR_FIRST_PROXY`, JSON), and
//! the leader applies it once the CRD serves: one `helm install` gives a Ready proxy, on a cluster
//! that has never seen the CRD as on any other, with nothing racing discovery.
//!
//! It is applied with a field manager of its own and an annotation holding a hash of what was
//! applied. While the chart's value is unchanged, a restarted operator leaves the object alone
//! (edits made since are the user's); a `helm upgrade` with a changed value changes the pod
//! template, so the new operator applies the new value, as Helm would have. Helm never owns the
//! object, so `helm uninstall` keeps it, and the modules it stores, like the CRD.

use crate::crd::AthensProxy;
use kube::api::{Api, Patch, PatchParams};
use kube::{Client, Resource};
use sha2::{Digest, Sha256};
use std::time::Duration;

/// Field manager of the first proxy's applies (not the reconciler's: the spec is the user's).
pub const FIELD_MANAGER: &str = "athens-operator-first-proxy";
/// Annotation on the first proxy: the hash of the value it was last applied from.
pub const APPLIED_ANNOTATION: &str = "athens.dev/first-proxy-applied";

/// Why `ATHENS_OPERATOR_FIRST_PROXY` cannot be used. Nothing is applied then.
#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    #[error("not an AthensProxy object in JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("apiVersion must be {want:?} and kind AthensProxy (found {found:?})")]
    Kind { want: String, found: String },
    #[error("metadata.{0} must be set")]
    Missing(&'static str),
}

/// The proxy to apply, checked, and the hash of its value.
#[derive(Debug, Clone, PartialEq)]
pub struct FirstProxy {
    pub namespace: String,
    pub name: String,
    /// The object as given, plus the hash annotation: what is applied.
    pub object: serde_json::Value,
    pub hash: String,
}

/// Parses and checks the JSON the chart renders (a full AthensProxy object with name and
/// namespace). Pure: nothing is contacted.
pub fn parse(text: &str) -> Result<FirstProxy, ParseError> {
    let mut object: serde_json::Value = serde_json::from_str(text)?;
    let want = AthensProxy::api_version(&()).to_string();
    let found = format!("{}/{}", object["apiVersion"], object["kind"]);
    if object["apiVersion"] != want.as_str() || object["kind"] != "AthensProxy" {
        return Err(ParseError::Kind { want, found });
    }
    // The spec's shape (field names, types, storage kinds) as the operator reads it.
    let typed: AthensProxy = serde_json::from_value(object.clone())?;
    let name = typed.metadata.name.filter(|n| !n.is_empty());
    let name = name.ok_or(ParseError::Missing("name"))?;
    let namespace = typed.metadata.namespace.filter(|n| !n.is_empty());
    let namespace = namespace.ok_or(ParseError::Missing("namespace"))?;
    // Equal values must hash equal whatever their key order. serde_json's maps keep insertion
    // order when any crate in the build enables its `preserve_order` feature, so sort first.
    let hash = format!("{:x}", Sha256::digest(canonical(&object).as_bytes()));
    object["metadata"]["annotations"][APPLIED_ANNOTATION] = hash.clone().into();
    Ok(FirstProxy {
        namespace,
        name,
        object,
        hash,
    })
}

/// JSON text of `v` with every object's keys in sorted order.
fn canonical(v: &serde_json::Value) -> String {
    fn sorted(v: &serde_json::Value) -> serde_json::Value {
        match v {
            serde_json::Value::Object(m) => {
                let mut keys: Vec<&String> = m.keys().collect();
                keys.sort();
                serde_json::Value::Object(
                    keys.into_iter()
                        .map(|k| (k.clone(), sorted(&m[k])))
                        .collect(),
                )
            }
            serde_json::Value::Array(a) => serde_json::Value::Array(a.iter().map(sorted).collect()),
            other => other.clone(),
        }
    }
    sorted(v).to_string()
}

/// What [`ensure_once`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Applied,
    /// The live object was applied from this same value before: left as it is.
    Unchanged,
}

/// Applies the proxy unless the live one already carries this value's hash.
pub async fn ensure_once(client: &Client, first: &FirstProxy) -> Result<Outcome, kube::Error> {
    let api: Api<AthensProxy> = Api::namespaced(client.clone(), &first.namespace);
    if let Some(live) = api.get_opt(&first.name).await? {
        let applied = live
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(APPLIED_ANNOTATION));
        if applied == Some(&first.hash) {
            return Ok(Outcome::Unchanged);
        }
    }
    // Forced: the chart's value wins over fields changed since, as a `helm upgrade` would.
    let params = PatchParams::apply(FIELD_MANAGER).force();
    api.patch(&first.name, &params, &Patch::Apply(&first.object))
        .await?;
    Ok(Outcome::Applied)
}

/// Whether a failed apply may succeed later by itself: the CRD not served yet (404), the API
/// server busy or away. A refusal of the value itself (400, 403, 422) will not.
pub fn retriable(e: &kube::Error) -> bool {
    match e {
        kube::Error::Api(s) => s.code == 404 || s.code == 408 || s.code == 429 || s.code >= 500,
        _ => true,
    }
}

/// [`ensure_once`] until it succeeds or fails for good, backing off from 1 s to 30 s. Logs the
/// outcome; never fails the operator (its other proxies are unaffected by a bad first one).
pub async fn ensure(client: Client, first: FirstProxy) {
    let mut delay = Duration::from_secs(1);
    loop {
        match ensure_once(&client, &first).await {
            Ok(outcome) => {
                tracing::info!(namespace = %first.namespace, name = %first.name, ?outcome, "first proxy");
                return;
            }
            Err(e) if retriable(&e) => {
                tracing::info!(namespace = %first.namespace, name = %first.name, error = %e,
                    "first proxy not applied yet; retrying in {delay:?}");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(30));
            }
            Err(e) => {
                tracing::error!(namespace = %first.namespace, name = %first.name, error = %e,
                    "the API server refused the first proxy; fix firstProxy in the chart's values");
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OK: &str = r#"{"apiVersion":"athens.dev/v1alpha1","kind":"AthensProxy",
        "metadata":{"name":"first","namespace":"tools"},
        "spec":{"storage":{"s3":{"bucket":"b"}},"upstream":{"goproxy":"off"}}}"#;

    #[test]
    fn parses_and_annotates_with_the_hash() {
        let f = parse(OK).unwrap();
        assert_eq!((f.namespace.as_str(), f.name.as_str()), ("tools", "first"));
        assert_eq!(f.hash.len(), 64);
        assert_eq!(
            f.object["metadata"]["annotations"][APPLIED_ANNOTATION],
            f.hash.as_str()
        );
        assert_eq!(f.object["spec"]["storage"]["s3"]["bucket"], "b");
    }

    #[test]
    fn hash_follows_the_value_not_its_key_order() {
        let reordered = r#"{"kind":"AthensProxy","apiVersion":"athens.dev/v1alpha1",
            "spec":{"upstream":{"goproxy":"off"},"storage":{"s3":{"bucket":"b"}}},
            "metadata":{"namespace":"tools","name":"first"}}"#;
        assert_eq!(parse(OK).unwrap().hash, parse(reordered).unwrap().hash);
        let changed = OK.replace(r#""bucket":"b""#, r#""bucket":"c""#);
        assert_ne!(parse(OK).unwrap().hash, parse(&changed).unwrap().hash);
    }

    #[test]
    fn refuses_what_is_not_a_named_athensproxy() {
        let cases = [
            ("not json", "{"),
            (
                "wrong kind",
                &OK.replace("\"AthensProxy\"", "\"ConfigMap\""),
            ),
            ("wrong version", &OK.replace("v1alpha1", "v9")),
            ("no name", &OK.replace(r#""name":"first","#, "")),
            ("empty namespace", &OK.replace("tools", "")),
            (
                "no spec",
                r#"{"apiVersion":"athens.dev/v1alpha1","kind":"AthensProxy","metadata":{"name":"a","namespace":"b"}}"#,
            ),
            ("bad spec", &OK.replace(r#"{"bucket":"b"}"#, r#""b""#)),
        ];
        for (what, text) in cases {
            assert!(parse(text).is_err(), "{what}: accepted");
        }
        let err = parse(&OK.replace("tools", "")).unwrap_err().to_string();
        assert_eq!(err, "metadata.namespace must be set");
    }

    #[test]
    fn only_transient_failures_are_retried() {
        let api =
            |code| kube::Error::Api(kube::core::Status::failure("", "").with_code(code).boxed());
        for code in [404, 429, 500, 503] {
            assert!(retriable(&api(code)), "{code}");
        }
        for code in [400, 403, 409, 422] {
            assert!(!retriable(&api(code)), "{code}");
        }
    }
}
