//! The operator renders storage settings that the proxy's own storage opener accepts.
//!
//! Lives here, not in the operator, because the operator no longer links the proxy runtime: only
//! this crate links both programs.

use athens_operator::crd::{AzureStorage, S3Credentials, S3Storage, StorageSpec};
use athens_operator::render::storage_config;

#[test]
fn the_proxy_opens_rendered_bucket_settings() {
    let s3 = storage_config(&StorageSpec {
        s3: Some(S3Storage {
            bucket: "mods".into(),
            prefix: Some("/team-a/".into()),
            region: Some("eu-west-1".into()),
            endpoint: Some("http://minio.storage.svc:9000".into()),
            path_style: Some(true),
            credentials: Some(S3Credentials {
                secret_name: "s3-creds".into(),
                ..Default::default()
            }),
        }),
        ..Default::default()
    });
    athens_proxy::storage::open(&s3.url, &s3.options).unwrap();
    let az = storage_config(&StorageSpec {
        azure: Some(AzureStorage {
            account: "acct".into(),
            container: "c".into(),
            prefix: None,
            endpoint: Some("http://azurite.storage.svc:10000/acct".into()),
            credentials: None,
        }),
        ..Default::default()
    });
    athens_proxy::storage::open(&az.url, &az.options).unwrap();
}
