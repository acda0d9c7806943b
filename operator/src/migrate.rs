//! Migration aid: an Athens Helm chart values file (gomods/athens-charts, `athens-proxy`) turned
//! into an `AthensProxy` manifest, with a note for every value set that has no counterpart.
//!
//! Pure. Secret values written inline in the values file (S3 keys, basic-auth passwords) are
//! never copied: the manifest references a Secret by name and a note says what to put in it.

use crate::crd::{AthensProxy, AthensProxySpec};
use serde_json::{Value, json};

/// The manifest, and what could not be mapped (or needs a step by hand).
#[derive(Debug)]
pub struct FromHelm {
    pub proxy: AthensProxy,
    pub notes: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    #[error("reading the values file: {0}")]
    Yaml(#[from] serde_yaml::Error),
    #[error("the values do not make a valid AthensProxy: {0}")]
    Spec(#[from] serde_json::Error),
    #[error("{0}")]
    Missing(String),
}

/// Set: not null, not empty, not `false`, not a section with `enabled: false`.
fn set(v: &Value) -> bool {
    match v {
        Value::Null | Value::Bool(false) => false,
        Value::String(s) => !s.trim().is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => {
            o.get("enabled") != Some(&Value::Bool(false)) && !o.is_empty() && o.values().any(set)
        }
        _ => true,
    }
}

fn s<'a>(v: &'a Value, ptr: &str) -> Option<&'a str> {
    v.pointer(ptr)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

/// Why top-level values have no counterpart (looked at only when set).
const UNMAPPED: &[(&str, &str)] = &[
    (
        "image",
        "the proxy image is athens-proxy, not gomods/athens: set spec.image to your copy of it",
    ),
    ("livenessProbe", "probes are set by the operator"),
    ("readinessProbe", "probes are set by the operator"),
    (
        "strategy",
        "the operator picks the rollout strategy from the storage",
    ),
    (
        "ingress",
        "no Ingress is rendered yet: keep your own Ingress pointing at the Service",
    ),
    (
        "singleFlight",
        "not needed: replicas coordinate through a lease object in the bucket",
    ),
    ("priorityClassName", "no counterpart in AthensProxy yet"),
    ("terminationGracePeriodSeconds", "set by the operator"),
    (
        "securityContext",
        "the operator runs the proxy non-root with a read-only root filesystem",
    ),
    ("lifecycle", "no counterpart"),
    ("netrc", "no upstream credentials field in AthensProxy yet"),
    ("gitconfig", "no git configuration in AthensProxy yet"),
    ("sshGitServers", "no SSH git credentials in AthensProxy yet"),
    (
        "jaeger",
        "not mapped: the proxy exports OpenTelemetry traces over OTLP/HTTP only; set spec.tracing.otlpEndpoint to an OpenTelemetry Collector (which can forward to Jaeger)",
    ),
    (
        "tracing",
        "not mapped: the proxy exports OpenTelemetry traces over OTLP/HTTP only; set spec.tracing.otlpEndpoint",
    ),
    ("initContainerImage", "no init containers"),
    ("initContainerSecurityContext", "no init containers"),
    ("initContainerResources", "no init containers"),
    ("extraInitContainers", "no init containers"),
    (
        "goGetWorkers",
        "no counterpart in AthensProxy (the proxy's upstream.max_concurrent_fills)",
    ),
    (
        "metrics",
        "not mapped: set spec.monitoring (a ServiceMonitor or PodMonitor), and spec.access.metricsPort to scrape without credentials",
    ),
    (
        "serviceAccount",
        "set spec.serviceAccountName to an existing ServiceAccount",
    ),
    ("extraVolumes", "no extra volumes"),
    ("extraVolumeMounts", "no extra volumes"),
    (
        "autoscaling",
        "no HorizontalPodAutoscaler from AthensProxy yet (spec.replicas is scalable)",
    ),
    (
        "podDisruptionBudget",
        "no PodDisruptionBudget from AthensProxy yet",
    ),
];

/// Converts a values file's text into an `AthensProxy` named `name` in `namespace`.
pub fn from_athens_values(
    text: &str,
    name: &str,
    namespace: &str,
) -> Result<FromHelm, MigrateError> {
    let yaml: serde_yaml::Value = serde_yaml::from_str(text)?;
    let v: Value = serde_json::to_value(yaml)?;
    let mut notes = Vec::new();
    let mut spec = json!({});

    if let Some(n) = v.get("replicaCount").and_then(Value::as_i64) {
        spec["replicas"] = json!(n);
    }
    if let Some(p) = s(&v, "/image/pullPolicy") {
        spec["imagePullPolicy"] = json!(p);
    }
    if let Some(secrets) = v.pointer("/image/pullSecrets").and_then(Value::as_array) {
        let names: Vec<&str> = secrets
            .iter()
            .filter_map(|x| x.as_str().or_else(|| x.get("name").and_then(Value::as_str)))
            .collect();
        if !names.is_empty() {
            spec["imagePullSecrets"] = json!(names);
        }
    }
    for (from, to) in [
        ("resources", "resources"),
        ("nodeSelector", "nodeSelector"),
        ("tolerations", "tolerations"),
        ("affinity", "affinity"),
        ("annotations", "podAnnotations"),
        ("extraLabels", "podLabels"),
    ] {
        if let Some(x) = v.get(from).filter(|x| set(x)) {
            spec[to] = x.clone();
        }
    }
    let mut service = json!({});
    if let Some(t) = s(&v, "/service/type") {
        service["type"] = json!(t);
    }
    if let Some(p) = v.pointer("/service/servicePort").and_then(Value::as_i64) {
        service["port"] = json!(p);
    }
    if let Some(a) = v.pointer("/service/annotations").filter(|a| set(a)) {
        service["annotations"] = a.clone();
    }
    spec["service"] = service;

    spec["storage"] = storage(&v, name, &mut notes)?;

    // Upstream: an upstream proxy, else direct (as Athens's `go mod download` with GOPROXY=direct).
    let goproxy = match v.pointer("/upstreamProxy") {
        Some(u) if u.get("enabled") == Some(&Value::Bool(true)) => {
            s(u, "/url").map(String::from).ok_or_else(|| {
                MigrateError::Missing("upstreamProxy.enabled without a url".into())
            })?
        }
        _ => {
            notes.push(
                "upstream.goproxy: Athens fetched with `go mod download` (GOPROXY=direct); set to \
                 \"direct\": check that this proxy's direct fetching covers your modules, or \
                 set an upstream proxy"
                    .into(),
            );
            "direct".into()
        }
    };
    let mut upstream = json!({ "goproxy": goproxy });
    for env in v
        .get("configEnvVars")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let (Some(k), value) = (env.get("name").and_then(Value::as_str), env.get("value")) else {
            continue;
        };
        let text = value.and_then(Value::as_str).unwrap_or("");
        match k {
            "ATHENS_GONOSUM_PATTERNS" => {
                upstream["noSumPatterns"] = json!(
                    text.split(',')
                        .map(str::trim)
                        .filter(|p| !p.is_empty())
                        .collect::<Vec<_>>()
                );
            }
            "ATHENS_NETWORK_MODE" => upstream["networkMode"] = json!(text.trim()),
            "ATHENS_TIMEOUT" => {
                if let Ok(n) = text.trim().parse::<u64>() {
                    upstream["timeoutSeconds"] = json!(n);
                }
            }
            other => notes.push(format!(
                "configEnvVars {other}: not mapped (see `athens-proxy --convert-athens-config` \
                 for what each Athens setting becomes)"
            )),
        }
    }
    spec["upstream"] = upstream;

    if v.pointer("/basicAuth/enabled") == Some(&Value::Bool(true)) {
        let secret = format!("{name}-basic-auth");
        spec["access"] = json!({ "basicAuth": [{ "secretName": secret, "key": "users" }] });
        let athens = s(&v, "/basicAuth/secretName").unwrap_or("athens-proxy-basic-auth");
        notes.push(format!(
            "basicAuth: create Secret {secret:?} with key \"users\" holding `username:password` \
             (from the username and password keys of Athens's Secret {athens:?}); the go command \
             sends .netrc credentials only over HTTPS"
        ));
    }
    if let Some(log) = v.get("logLevel").and_then(Value::as_str) {
        spec["log"] = json!({ "level": log });
    }

    if let Some(top) = v.as_object() {
        for (k, val) in top {
            if let Some((_, why)) = UNMAPPED.iter().find(|(u, _)| u == k)
                && set(val)
            {
                notes.push(format!("{k}: not mapped: {why}"));
            }
        }
    }

    let spec: AthensProxySpec = serde_json::from_value(spec)?;
    let mut proxy = AthensProxy::new(name, spec);
    proxy.metadata.namespace = Some(namespace.to_string());
    Ok(FromHelm { proxy, notes })
}

fn storage(v: &Value, name: &str, notes: &mut Vec<String>) -> Result<Value, MigrateError> {
    let kind = s(v, "/storage/type").unwrap_or("disk");
    let need = |ptr: &str| {
        s(v, ptr)
            .map(String::from)
            .ok_or_else(|| MigrateError::Missing(format!("storage.type {kind} needs {ptr}")))
    };
    let mut secret_note = |what: &str, secret: &str, keys: &str| {
        notes.push(format!(
            "storage: {what}: create Secret {secret:?} with {keys} (values are not copied from \
             the values file)"
        ));
    };
    Ok(match kind {
        "disk" => {
            let p = v.pointer("/storage/disk/persistence");
            if p.and_then(|p| p.get("enabled")) != Some(&Value::Bool(true)) {
                notes.push(
                    "storage: Athens kept modules in an emptyDir (persistence disabled); this \
                     proxy gets a PersistentVolumeClaim"
                        .into(),
                );
            }
            let mut fs = json!({});
            if let Some(size) = p.and_then(|p| s(p, "/size")) {
                fs["size"] = json!(size);
            }
            if let Some(mode) = p.and_then(|p| s(p, "/accessMode")) {
                fs["accessModes"] = json!([mode]);
            }
            json!({ "filesystem": fs })
        }
        "s3" | "minio" => {
            let base = format!("/storage/{kind}");
            let mut s3 = json!({ "bucket": need(&format!("{base}/bucket"))? });
            if let Some(r) = s(v, &format!("{base}/region")) {
                s3["region"] = json!(r);
            }
            if kind == "minio" {
                let e = need("/storage/minio/endpoint")?;
                let e = if e.contains("://") {
                    e
                } else {
                    format!("http://{e}")
                };
                s3["endpoint"] = json!(e);
                s3["pathStyle"] = json!(true);
            } else if v.pointer("/storage/s3/forcePathStyle") == Some(&Value::Bool(true)) {
                s3["pathStyle"] = json!(true);
            }
            if s(v, &format!("{base}/accessKey")).is_some() {
                let secret = format!("{name}-s3");
                s3["credentials"] = json!({ "secretName": secret });
                secret_note(
                    "S3 keys",
                    &secret,
                    "keys AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN)",
                );
            }
            json!({ "s3": s3 })
        }
        "gcp" => {
            let mut gcs = json!({ "bucket": need("/storage/gcp/bucket")? });
            if s(v, "/storage/gcp/serviceAccount").is_some() {
                let secret = format!("{name}-gcs");
                gcs["credentials"] = json!({ "secretName": secret });
                secret_note("GCS service account", &secret, "key service-account.json");
            }
            json!({ "gcs": gcs })
        }
        "mongo" => {
            notes.push(
                "storage: this proxy's MongoDB layout differs from Athens's: point it at a new \
                 database"
                    .into(),
            );
            json!({ "mongodb": { "url": need("/storage/mongo/url")? } })
        }
        other => {
            return Err(MigrateError::Missing(format!(
                "storage.type {other:?} has no counterpart"
            )));
        }
    })
}

impl FromHelm {
    /// The manifest as YAML, headed by the notes as comments.
    pub fn render(&self) -> Result<String, MigrateError> {
        let mut out = String::from(
            "# AthensProxy converted from an Athens Helm chart values file by\n\
             # `athens-operator from-athens-values`. Not mapped, or to do by hand:\n",
        );
        for n in &self.notes {
            out.push_str(&format!("#   - {n}\n"));
        }
        out.push_str(&serde_yaml::to_string(&self.proxy)?);
        Ok(out)
    }
}
