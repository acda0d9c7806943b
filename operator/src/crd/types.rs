//! The `AthensProxy` resource: what a user writes.
//!
//! Every doc comment here becomes `kubectl explain` text, so it is written for the person
//! applying the resource, not for the reader of this code.

use super::extras::{
    AutoscalingSpec, DisruptionBudgetSpec, IngressSpec, MonitoringSpec, NetworkPolicySpec,
};
use super::status::AthensProxyStatus;
use super::storage::StorageSpec;
use k8s_openapi::api::core::v1::{
    Affinity, ResourceRequirements, Toleration, TopologySpreadConstraint,
};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A Go module proxy (the `GOPROXY` protocol) run by athens-operator: a Deployment of
/// `athens-proxy`, its Service, its configuration and, when asked for, a volume for its modules.
/// Once `Ready`, put `status.url` into `GOPROXY` for the builds in your cluster.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[kube(
    group = "athens.dev",
    version = "v1alpha1",
    kind = "AthensProxy",
    plural = "athensproxies",
    singular = "athensproxy",
    shortname = "ap",
    category = "athens",
    namespaced,
    status = "AthensProxyStatus",
    derive = "PartialEq",
    doc = "A Go module proxy (GOPROXY protocol) run by athens-operator. Once Ready, put status.url into GOPROXY.",
    scale(
        spec_replicas_path = ".spec.replicas",
        status_replicas_path = ".status.replicas",
        label_selector_path = ".status.selector"
    ),
    printcolumn(
        name = "Ready",
        type_ = "string",
        description = "Whether the proxy serves requests",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(
        name = "Replicas",
        type_ = "integer",
        description = "Proxy pods ready to serve",
        json_path = ".status.readyReplicas"
    ),
    printcolumn(
        name = "URL",
        type_ = "string",
        description = "In-cluster URL to put in GOPROXY",
        json_path = ".status.url"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[x_kube(validation = Rule::new(
    "self.replicas <= 1 || !has(self.storage.filesystem) || has(self.storage.filesystem.existingClaim) || (has(self.storage.filesystem.accessModes) && 'ReadWriteMany' in self.storage.filesystem.accessModes)"
).message("more than one replica needs shared storage: use s3, gcs or azure, or a filesystem volume with accessModes [ReadWriteMany]").reason(Reason::FieldValueForbidden))]
#[x_kube(validation = Rule::new(
    "!has(self.autoscaling) || self.autoscaling.maxReplicas <= 1 || !has(self.storage.filesystem) || has(self.storage.filesystem.existingClaim) || (has(self.storage.filesystem.accessModes) && 'ReadWriteMany' in self.storage.filesystem.accessModes)"
).message("autoscaling to more than one replica needs shared storage: use s3, gcs or azure, or a filesystem volume with accessModes [ReadWriteMany]").reason(Reason::FieldValueForbidden))]
#[x_kube(validation = Rule::new(
    "!has(self.autoscaling) || (has(self.resources) && has(self.resources.requests) && 'cpu' in self.resources.requests)"
).message("autoscaling scales on CPU use relative to the CPU request: set resources.requests.cpu").reason(Reason::FieldValueRequired))]
#[serde(rename_all = "camelCase")]
pub struct AthensProxySpec {
    /// Number of proxy pods. More than one needs shared storage (s3, gcs, azure, or a
    /// ReadWriteMany volume); all replicas serve from the same bucket. Default 1.
    #[serde(default = "default_replicas")]
    #[schemars(range(min = 0))]
    pub replicas: i32,

    /// Container image of athens-proxy. Default: the proxy image released with this operator
    /// (`athens-proxy:<operator version>`); set it to the image in your own registry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,

    /// Image pull policy: Always, IfNotPresent or Never. Default: Kubernetes' own default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("enum" = ["Always", "IfNotPresent", "Never"]))]
    pub image_pull_policy: Option<String>,

    /// Names of Secrets in this namespace used to pull the image.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub image_pull_secrets: Vec<String>,

    /// CPU and memory requests and limits of the proxy container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,

    /// Node labels a node must have to run proxy pods.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub node_selector: BTreeMap<String, String>,

    /// Tolerations of the proxy pods.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tolerations: Vec<Toleration>,

    /// Affinity and anti-affinity of the proxy pods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub affinity: Option<Affinity>,

    /// How proxy pods spread across zones or nodes. When a constraint has no labelSelector,
    /// the operator fills in the selector of this proxy's pods.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub topology_spread_constraints: Vec<TopologySpreadConstraint>,

    /// Extra annotations on the proxy pods.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub pod_annotations: BTreeMap<String, String>,

    /// Extra labels on the proxy pods. The `app.kubernetes.io/name` and
    /// `app.kubernetes.io/instance` labels are set by the operator and cannot be overridden.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub pod_labels: BTreeMap<String, String>,

    /// Name of the ServiceAccount the proxy pods run as (for workload identity with S3, GCS or
    /// Azure). Default: the namespace's default ServiceAccount.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account_name: Option<String>,

    /// Where the proxy keeps modules. Set exactly one of filesystem, s3, gcs or azure.
    pub storage: StorageSpec,

    /// Where modules the storage lacks come from, and how they are checked.
    pub upstream: UpstreamSpec,

    /// The Service in front of the proxy pods.
    #[serde(default)]
    pub service: ServiceSpec,

    /// Proxy log output.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log: Option<LogSpec>,

    /// OpenTelemetry traces: a span per request and per fill step, sent over OTLP/HTTP; log
    /// lines inside a request then carry its `trace_id`. Off when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tracing: Option<TracingSpec>,

    /// Which modules and versions the proxy serves, in the rule syntax of an Athens filter
    /// file. Changes reach running pods without a restart (the proxy re-reads the file).
    /// Example:
    ///   filter:
    ///     rules: ["-", "D corp.example", "+ github.com/gomods/athens v0.1,v0.2,v0.4.1"]
    ///     globalEndpoint: https://proxy.example.com
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<FilterSpec>,

    /// What the proxy does when storage lacks a requested version (Athens's download modes).
    /// Changes reach running pods without a restart. Example:
    ///   downloadModes:
    ///     mode: async_redirect
    ///     downloadURL: https://proxy.example.com
    /// or, with per-path rules in Athens's HCL:
    ///   downloadModes:
    ///     hcl: |
    ///       downloadURL = "https://proxy.example.com"
    ///       mode = "sync"
    ///       download "github.com/pkg/*" { mode = "redirect" }
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub download_modes: Option<DownloadModesSpec>,
    /// Client access control: basic-auth users and bearer tokens from Secrets, and HTTPS.
    /// Default: every client is served over HTTP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access: Option<super::AccessSpec>,

    /// A PodDisruptionBudget for the proxy pods. Unset: none (one made before is deleted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_disruption_budget: Option<DisruptionBudgetSpec>,

    /// A HorizontalPodAutoscaler for this proxy. Unset: none (one made before is deleted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub autoscaling: Option<AutoscalingSpec>,

    /// A NetworkPolicy that admits only the opted-in namespaces, the operator and the listed
    /// peers. Unset: none (one made before is deleted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_policy: Option<NetworkPolicySpec>,

    /// An Ingress for clients outside the cluster. Unset: none (one made before is deleted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingress: Option<IngressSpec>,

    /// A ServiceMonitor or PodMonitor for the Prometheus Operator. Unset: none (one made
    /// before is deleted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monitoring: Option<MonitoringSpec>,
}

impl AthensProxySpec {
    /// Every Secret the spec references (storage credentials, access, the git `.netrc`).
    pub fn secret_names(&self) -> Vec<&str> {
        let mut v = self.storage.secret_names();
        if let Some(a) = &self.access {
            v.extend(a.secret_names());
        }
        if let Some(vcs) = &self.upstream.vcs {
            v.extend(vcs.secret_names());
        }
        v.sort_unstable();
        v.dedup();
        v
    }

    /// Every user-owned ConfigMap the spec references (filter file, download modes).
    pub fn config_map_names(&self) -> Vec<&str> {
        let filter = self.filter.as_ref().and_then(|f| f.config_map_ref.as_ref());
        let modes = self
            .download_modes
            .as_ref()
            .and_then(|d| d.config_map_ref.as_ref());
        let mut v: Vec<&str> = filter
            .into_iter()
            .chain(modes)
            .map(|r| r.name.as_str())
            .collect();
        v.dedup();
        v
    }
}

/// Filter rules, one Athens filter-file line each.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new(
    "!has(self.rules) || !self.rules.exists(r, r.trim().startsWith('D')) || (has(self.globalEndpoint) && self.globalEndpoint != '')"
).message("filter rules with D (direct) need filter.globalEndpoint").reason(Reason::FieldValueRequired))]
#[x_kube(validation = Rule::new(
    "has(self.configMapRef) != (has(self.rules) && size(self.rules) > 0)"
).message("set filter.rules or filter.configMapRef (exactly one)"))]
pub struct FilterSpec {
    /// Rules in Athens filter-file syntax: `+ <path> [versions]` include, `- <path> [versions]`
    /// exclude (answered 403), `D <path>` send the client to globalEndpoint, a bare `+` or `-`
    /// sets the default; `#` starts a comment. The deepest matching path wins. Versions are a
    /// comma list of prefixes (`v1.2`), `~v1.2.3` (same minor, at least patch 3), `^v1.2.3`
    /// (same major) or `<v1.2.3` (at most). Leave empty when using configMapRef.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 500), inner(length(max = 256)))]
    #[x_kube(validation = Rule::new(
        "self.all(r, r.matches('^ *(#.*|[-+D]( +[^ ]+( +[^ ,]+(,[^ ,]+)*)?)?)? *$'))"
    ).message("each filter rule is '+', '-' or 'D', then optionally a module path and a comma list of versions, or a # comment"))]
    pub rules: Vec<String>,
    /// Where `D` rules send clients: a GOPROXY URL; the request path is appended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 2048))]
    pub global_endpoint: Option<String>,
    /// Instead of rules: an Athens filter file kept in a ConfigMap of your own in this
    /// namespace (key `key`). Edits reach running pods without a restart.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_map_ref: Option<ConfigMapKeyRef>,
}

/// A key of a ConfigMap in the proxy's namespace.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct ConfigMapKeyRef {
    /// The ConfigMap's name.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// The key holding the file.
    #[schemars(length(min = 1, max = 253))]
    pub key: String,
}

/// Download modes: a keyword for every module, or Athens's HCL file for per-path modes.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("(has(self.mode) ? 1 : 0) + (has(self.hcl) ? 1 : 0) + (has(self.configMapRef) ? 1 : 0) <= 1").message("set one of downloadModes.mode, downloadModes.hcl or downloadModes.configMapRef"))]
#[x_kube(validation = Rule::new(
    "!has(self.mode) || !(self.mode in ['redirect', 'async_redirect']) || (has(self.downloadURL) && self.downloadURL != '')"
).message("redirect modes need downloadModes.downloadURL").reason(Reason::FieldValueRequired))]
pub struct DownloadModesSpec {
    /// On a miss: `sync` fetch now (default), `async` answer 404 and fetch in the background,
    /// `redirect` send the client to downloadURL, `async_redirect` both, `none` answer 404.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("enum" = ["sync", "async", "redirect", "async_redirect", "none"]))]
    pub mode: Option<String>,
    /// Where redirect modes send clients (the request path is appended).
    #[serde(
        default,
        rename = "downloadURL",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(length(max = 2048))]
    pub download_url: Option<String>,
    /// An Athens download-mode HCL file, taken unchanged: `mode`, `downloadURL` and
    /// `download "<pattern>" { mode = "..." }` blocks, the first matching block wins.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 65536))]
    pub hcl: Option<String>,
    /// Instead of hcl: an Athens download-mode HCL file kept in a ConfigMap of your own in this
    /// namespace (key `key`). Edits reach running pods without a restart.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_map_ref: Option<ConfigMapKeyRef>,
}

fn default_replicas() -> i32 {
    1
}

/// Upstream: where modules come from when storage does not have them yet.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct UpstreamSpec {
    /// Where modules come from, in `GOPROXY` syntax: proxy URLs separated by `,` (try the next
    /// on 404/410) or `|` (try the next on any error), and the keywords `direct` (fetch from
    /// git repositories over HTTPS, natively, as `GOPROXY=direct` does) and `off`. Required:
    /// the platform team decides where modules come from, e.g. an internal mirror, a public
    /// proxy, or `direct`. Modules matching `private` never go to the proxies listed here.
    #[schemars(length(max = 4096))]
    #[x_kube(validation = Rule::new("self.trim() != ''").message("upstream.goproxy must not be empty; use \"off\" for no upstream"))]
    pub goproxy: String,

    /// The checksum database that verifies every module before it is stored, in `GOSUMDB`
    /// syntax (`name`, `name+key`, `name+key url`), or `off`. When unset, the proxy uses what
    /// its image's environment says (`$GOSUMDB`, else the go command's default if the image
    /// has one, else no checking). Production proxies should set this explicitly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sumdb: Option<String>,

    /// Module path patterns (`GONOSUMDB`/`GOPRIVATE` glob syntax, such as
    /// `corp.example.com/*`) that are never checked against or looked up in the checksum
    /// database: your private modules.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub no_sum_patterns: Vec<String>,

    /// Private module path patterns (`GOPRIVATE` glob syntax, such as `git.corp.example/*`).
    /// Matching modules are fetched by the proxy straight from their git repositories (HTTPS,
    /// found the way the go command finds them: `go-import` meta tags or a `.git` path
    /// qualifier), never from the proxies in `goproxy` and never looked up in the checksum
    /// database, so their names never leave for a public host; pods that get `GOPROXY` from
    /// this proxy get them in `GONOSUMDB` too. Credentials for the git hosts go in `vcs` (a
    /// `.netrc`, tokens per host, SSH keys, a git config).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub private: Vec<String>,

    /// Credentials for fetching from version control (`direct` and `private` modules).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vcs: Option<VcsSpec>,

    /// What the proxy does when upstream fails: `strict` (the request fails), `fallback`
    /// (serve what storage has) or `offline` (never call upstream). Default strict.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_mode: Option<NetworkModeSpec>,

    /// Timeout for one upstream request, in seconds. Default 60.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub timeout_seconds: Option<u64>,

    /// Retries for upstream 429 and 5xx answers and connection errors. Default 2.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<u32>,

    /// How long an upstream "not found" is remembered, in seconds (0 disables). Default 30.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub negative_cache_seconds: Option<u64>,

    /// Replicas sharing a bucket fetch each missing module version once: the first takes a
    /// lease object in the bucket. A lease not renewed for this many seconds (its holder died)
    /// is taken over by another replica. Default: the proxy's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub fill_lease_seconds: Option<u64>,
}

/// Credentials and settings the proxy uses to fetch from git hosts. Every Secret key is
/// mounted read-only as a file (mode 0440, readable through the pod's fsGroup), never put in
/// the environment; the pods roll when a referenced Secret changes, and a missing Secret or key
/// makes the proxy `Degraded` before any pod is touched.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[x_kube(validation = Rule::new("!has(self.sshKey) || has(self.knownHosts)").message("vcs.sshKey needs vcs.knownHosts: SSH host keys are always checked").reason(Reason::FieldValueRequired))]
#[serde(rename_all = "camelCase")]
pub struct VcsSpec {
    /// A Secret key holding a `.netrc` file (`machine <host> login <user> password <token>`
    /// lines; for GitHub and GitLab the password is an access token with read access). The
    /// proxy sends these credentials to the matching hosts for `go-import` discovery and git
    /// fetches. Default key `netrc`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub netrc: Option<SecretFileRef>,

    /// Access tokens per git host, sent as HTTPS basic auth for `go-import` discovery and git
    /// fetches (ahead of `netrc` entries for the same host). At most 16.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    pub tokens: Vec<VcsTokenRef>,

    /// A Secret key holding an SSH private key (OpenSSH or PEM format, no passphrase) for
    /// `ssh://` repositories, e.g. a deploy key. A Secret of type `kubernetes.io/ssh-auth`
    /// fits: the default key is `ssh-privatekey`. The proxy has its own SSH client; the user
    /// name is the repository URL's, else `git`. Needs `knownHosts`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssh_key: Option<SecretFileRef>,

    /// A Secret key holding an OpenSSH `known_hosts` file that lists every SSH git server's
    /// host key (`ssh-keyscan <host>` prints the lines; `[host]:port` for ports other than
    /// 22). Unknown or changed host keys are refused. Default key `known_hosts`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub known_hosts: Option<SecretFileRef>,

    /// A Secret key holding a git config file, applied as git applies a global config:
    /// `url.<base>.insteadOf` (e.g. to send `https://` repository URLs to `ssh://` ones),
    /// `http.extraHeader` (also per host in `[http "https://host/"]` sections, e.g. a bearer
    /// token) and `credential.helper = store --file=<path>`. Re-read at every fetch. Default
    /// key `gitconfig`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub git_config: Option<SecretFileRef>,

    /// Size limit of the git mirror cache, an emptyDir of each pod (`sizeLimit`). The proxy
    /// keeps its mirrors under 80% of it, removing the least recently used. A number of bytes
    /// with an optional `Ki`, `Mi`, `Gi` or `Ti` suffix. Default `2Gi`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^[1-9][0-9]*(Ki|Mi|Gi|Ti)?$"))]
    pub cache_size_limit: Option<String>,

    /// The absolute path of a `go` binary in the proxy's container, run (with
    /// `GOPROXY=direct`) for modules in Mercurial, Subversion, Bazaar or Fossil repositories;
    /// the proxy fetches git itself. The proxy image carries no Go toolchain or VCS tools: this
    /// is for an image built on it that adds `go` and `hg`/`svn`/... Its module cache lives in
    /// the mirror cache volume. Unset: such modules get a 404 naming their VCS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^/[^\s]*$"))]
    pub go_binary: Option<String>,
}

impl VcsSpec {
    /// The Secrets referenced.
    pub fn secret_names(&self) -> Vec<&str> {
        let files = [
            &self.netrc,
            &self.ssh_key,
            &self.known_hosts,
            &self.git_config,
        ];
        files
            .into_iter()
            .flatten()
            .map(|r| r.secret_name.as_str())
            .chain(self.tokens.iter().map(|t| t.secret_name.as_str()))
            .collect()
    }
}

/// One git host's access token, from a Secret key.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct VcsTokenRef {
    /// The git host (`github.com`, `gitlab.corp.example`), as in module paths.
    #[schemars(length(min = 1))]
    pub host: String,
    /// The basic-auth user name sent with the token. Default `x-access-token` (GitHub; GitLab
    /// takes any name with a personal access token, `oauth2` with an OAuth token).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// Name of the Secret in this namespace.
    #[schemars(length(min = 1))]
    pub secret_name: String,
    /// Key holding the token. Default `token`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

/// A file taken from one key of a Secret in this namespace.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct SecretFileRef {
    /// Name of the Secret in this namespace.
    #[schemars(length(min = 1))]
    pub secret_name: String,
    /// Key holding the file. Default: the field's own (see the field).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

/// What the proxy does when upstream is unreachable or failing.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum NetworkModeSpec {
    Strict,
    Fallback,
    Offline,
}

/// The Service in front of the proxy.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct ServiceSpec {
    /// Service type: ClusterIP, NodePort or LoadBalancer. Default ClusterIP.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    #[schemars(extend("enum" = ["ClusterIP", "NodePort", "LoadBalancer"]))]
    pub type_: Option<String>,

    /// Port the Service listens on. Default 80.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 65535))]
    pub port: Option<i32>,

    /// Annotations on the Service (for load balancer settings, for example).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// Where the proxy sends traces.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct TracingSpec {
    /// Base URL of an OTLP/HTTP receiver (protobuf), usually an OpenTelemetry Collector, such
    /// as `http://otel-collector.monitoring:4318`; spans go to `<url>/v1/traces`. gRPC is not
    /// supported.
    #[schemars(length(min = 1, max = 2048))]
    #[x_kube(validation = Rule::new("self.startsWith('http://') || self.startsWith('https://')").message("tracing.otlpEndpoint must be an http:// or https:// URL"))]
    pub otlp_endpoint: String,
}

/// Proxy log output.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct LogSpec {
    /// `text` or `json`. Default text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("enum" = ["text", "json"]))]
    pub format: Option<String>,
    /// A filter such as `info` or `athens_proxy=debug,info`. Default info.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level: Option<String>,
}
