//! `spec.storage`: exactly one backend, credentials only by Secret reference.

use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::KubeSchema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Where the proxy keeps modules: a bucket or a volume, the single source of truth for every
/// module version it serves. Set exactly one of filesystem, s3, gcs, azure or mongodb.
/// Credentials always come from Secrets in the same namespace, never from this resource.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[x_kube(validation = Rule::new(
    "[has(self.filesystem), has(self.s3), has(self.gcs), has(self.azure), has(self.mongodb)].filter(x, x).size() == 1"
).message("set exactly one of storage.filesystem, storage.s3, storage.gcs, storage.azure or storage.mongodb"))]
#[x_kube(validation = Rule::new(
    "!has(self.zipRedirectSeconds) || self.zipRedirectSeconds == 0 || has(self.s3) || has(self.gcs) || has(self.azure)"
).message("storage.zipRedirectSeconds needs storage.s3, storage.gcs or storage.azure (a bucket that can pre-sign URLs)"))]
#[x_kube(validation = Rule::new(
    "!has(self.zipCacheSizeLimit) || !has(self.filesystem)"
).message("storage.zipCacheSizeLimit is for buckets (s3, gcs, azure, mongodb); filesystem storage is local already"))]
#[serde(rename_all = "camelCase")]
pub struct StorageSpec {
    /// A PersistentVolumeClaim mounted into the proxy pods: one the operator creates
    /// (named `<name>-storage`), or an existing one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filesystem: Option<FilesystemStorage>,
    /// An S3 or S3-compatible bucket (MinIO, Ceph, R2, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3: Option<S3Storage>,
    /// A Google Cloud Storage bucket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gcs: Option<GcsStorage>,
    /// An Azure Blob Storage container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub azure: Option<AzureStorage>,
    /// A MongoDB database (objects as documents, large ones in chunks).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mongodb: Option<MongoDbStorage>,
    /// Answer `.zip` requests for versions already in the bucket with a 307 redirect to a
    /// pre-signed URL of the bucket, valid this many seconds, so zip bytes go from the bucket
    /// straight to the client instead of through the proxy pods. Clients (build pods,
    /// developers) must be able to reach the bucket's endpoint, and the credentials must be
    /// able to sign URLs (for GCS a service account key). 0 or unset: the proxy streams zips.
    /// Only with s3, gcs or azure; at most 604800 (S3's limit of 7 days).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 604800))]
    pub zip_redirect_seconds: Option<u64>,
    /// Size limit of the zip cache, an emptyDir of each pod (`sizeLimit`) holding copies of
    /// zips read from the bucket, so warm zips are served from local disk. The proxy keeps its
    /// copies under 80% of it, removing the least recently served. A number of bytes with an
    /// optional `Ki`, `Mi`, `Gi` or `Ti` suffix; `0` turns the cache off. Default `1Gi` for
    /// s3, gcs, azure and mongodb when zipRedirectSeconds is unset or 0; with redirects warm
    /// zips go straight from the bucket, so there is no cache unless this is set. Not with
    /// filesystem storage, which is local already.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = r"^(0|[1-9][0-9]*(Ki|Mi|Gi|Ti)?)$"))]
    pub zip_cache_size_limit: Option<String>,
}

/// A volume for modules. Without existingClaim the operator creates a PersistentVolumeClaim
/// named `<name>-storage`, owned by this resource (deleted with it).
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[x_kube(validation = Rule::new(
    "!has(self.existingClaim) || !(has(self.size) || has(self.storageClassName) || has(self.accessModes))"
).message("existingClaim cannot be combined with size, storageClassName or accessModes"))]
#[serde(rename_all = "camelCase")]
pub struct FilesystemStorage {
    /// Name of an existing PersistentVolumeClaim in this namespace to use instead of creating
    /// one. With more than one replica it must allow ReadWriteMany.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub existing_claim: Option<String>,
    /// Size of the volume the operator creates. Default 10Gi. Can grow if the storage class
    /// allows volume expansion.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<Quantity>,
    /// Storage class of the volume the operator creates. Default: the cluster's default class.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage_class_name: Option<String>,
    /// Access modes of the volume the operator creates. Default [ReadWriteOnce], which allows
    /// one replica only; use [ReadWriteMany] for more.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 3), extend("items" = {"type": "string", "enum": ["ReadWriteOnce", "ReadWriteMany", "ReadWriteOncePod"]}))]
    pub access_modes: Option<Vec<String>>,
}

/// An S3 or S3-compatible bucket.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct S3Storage {
    /// Bucket name.
    #[schemars(length(min = 1))]
    pub bucket: String,
    /// Key prefix inside the bucket, so several proxies can share one bucket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    /// Region of the bucket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Endpoint URL for S3-compatible stores, e.g. `http://minio.storage.svc:9000`. An
    /// `http://` endpoint allows plain HTTP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// Address the bucket in the path (`endpoint/bucket/key`) rather than in the host name
    /// (`bucket.endpoint/key`). Most S3-compatible stores want true. Default: the storage
    /// library's default (path style).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_style: Option<bool>,
    /// Static credentials from a Secret. Without it the proxy uses the pod's ambient
    /// credentials (IRSA, instance profile, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials: Option<S3Credentials>,
}

/// Keys of a Secret holding S3 credentials. A change to the Secret restarts the proxy pods.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct S3Credentials {
    /// Name of the Secret in this namespace.
    #[schemars(length(min = 1))]
    pub secret_name: String,
    /// Key holding the access key id. Default `AWS_ACCESS_KEY_ID`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_key_id_key: Option<String>,
    /// Key holding the secret access key. Default `AWS_SECRET_ACCESS_KEY`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_access_key_key: Option<String>,
    /// Key holding a session token, if there is one. When the key is absent from the Secret
    /// no token is used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_token_key: Option<String>,
}

/// A Google Cloud Storage bucket.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct GcsStorage {
    /// Bucket name.
    #[schemars(length(min = 1))]
    pub bucket: String,
    /// Object name prefix inside the bucket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    /// A service account JSON key from a Secret. Without it the proxy uses the pod's ambient
    /// credentials (workload identity).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials: Option<GcsCredentials>,
}

/// Key of a Secret holding a GCS service account JSON key, mounted as a file.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct GcsCredentials {
    /// Name of the Secret in this namespace.
    #[schemars(length(min = 1))]
    pub secret_name: String,
    /// Key holding the JSON key file. Default `service-account.json`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

/// An Azure Blob Storage container.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct AzureStorage {
    /// Storage account name.
    #[schemars(length(min = 1))]
    pub account: String,
    /// Container name.
    #[schemars(length(min = 1))]
    pub container: String,
    /// Blob name prefix inside the container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    /// Endpoint URL for Azure-compatible stores (such as Azurite). An `http://` endpoint allows
    /// plain HTTP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// The account key from a Secret. Without it the proxy uses the pod's ambient credentials
    /// (workload identity).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials: Option<AzureCredentials>,
}

/// Key of a Secret holding an Azure storage account key.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct AzureCredentials {
    /// Name of the Secret in this namespace.
    #[schemars(length(min = 1))]
    pub secret_name: String,
    /// Key holding the account key. Default `AZURE_STORAGE_ACCOUNT_KEY`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_key_key: Option<String>,
}

/// A MongoDB database, or a server speaking its wire protocol.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[x_kube(validation = Rule::new(
    "self.url.startsWith('mongodb://') && !self.url.contains('@')"
).message("storage.mongodb.url is mongodb://host[:port][,host...]/database[?options], without credentials (they come from credentials.secretName)"))]
#[serde(rename_all = "camelCase")]
pub struct MongoDbStorage {
    /// Connection string without credentials, e.g.
    /// `mongodb://mongo-0.mongo.db.svc,mongo-1.mongo.db.svc/athens?replicaSet=rs0`. The
    /// database defaults to `athens`; the proxy uses its collections `objects` and `chunks`.
    /// `mongodb+srv://` is not supported.
    #[schemars(length(min = 11))]
    pub url: String,
    /// User name and password from a Secret. Without it the proxy connects without
    /// authentication.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials: Option<MongoDbCredentials>,
}

/// Keys of a Secret holding MongoDB credentials.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
#[serde(rename_all = "camelCase")]
pub struct MongoDbCredentials {
    /// Name of the Secret in this namespace.
    #[schemars(length(min = 1))]
    pub secret_name: String,
    /// Key holding the user name. Default `MONGODB_USERNAME`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username_key: Option<String>,
    /// Key holding the password. Default `MONGODB_PASSWORD`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_key: Option<String>,
}

impl StorageSpec {
    /// Names of the Secrets this storage reads credentials from.
    pub fn secret_names(&self) -> Vec<&str> {
        let mut v = Vec::new();
        if let Some(c) = self.s3.as_ref().and_then(|s| s.credentials.as_ref()) {
            v.push(c.secret_name.as_str());
        }
        if let Some(c) = self.gcs.as_ref().and_then(|s| s.credentials.as_ref()) {
            v.push(c.secret_name.as_str());
        }
        if let Some(c) = self.azure.as_ref().and_then(|s| s.credentials.as_ref()) {
            v.push(c.secret_name.as_str());
        }
        if let Some(c) = self.mongodb.as_ref().and_then(|s| s.credentials.as_ref()) {
            v.push(c.secret_name.as_str());
        }
        v
    }
}
