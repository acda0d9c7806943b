//! Opening a backend from a storage URL.

use super::StorageError;
use super::mongodb::MongoStore;
use super::walk::Pager;
use object_store::ObjectStore;
use object_store::aws::AmazonS3Builder;
use object_store::azure::MicrosoftAzureBuilder;
use object_store::gcp::GoogleCloudStorageBuilder;
use object_store::list::PaginatedListStore;
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::prefix::PrefixStore;
use object_store::signer::Signer;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Opens `file:///abs/path`, `memory://`, `s3://bucket/prefix`, `gs://bucket/prefix`,
/// `az://container/prefix` or `mongodb://host[:port][,host...]/database[?options]`. Cloud credentials come from the environment (the builders'
/// `from_env`); `options` carries the non-secret settings by `object_store`'s key names.
pub fn open(
    url: &str,
    options: &BTreeMap<String, String>,
) -> Result<Arc<dyn ObjectStore>, StorageError> {
    let bad = |reason: String| StorageError::BadUrl {
        url: url.to_string(),
        reason,
    };
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| bad("expected scheme://...".into()))?;
    match scheme {
        "file" => {
            if !rest.starts_with('/') {
                return Err(bad(
                    "file URLs need an absolute path: file:///abs/path".into()
                ));
            }
            std::fs::create_dir_all(rest).map_err(|source| StorageError::Io {
                path: rest.to_string(),
                source,
            })?;
            Ok(Arc::new(LocalFileSystem::new_with_prefix(rest)?))
        }
        "memory" => Ok(Arc::new(InMemory::new())),
        "mongodb" | "mongodb+srv" => Ok(Arc::new(
            MongoStore::new(url, options).map_err(|e| bad(e.to_string()))?,
        )),
        "s3" | "gs" | "az" => Ok(open_cloud(scheme, rest, options)?.store),
        other => Err(bad(format!(
            "unsupported scheme {other:?} (want file, memory, s3, gs, az or mongodb)"
        ))),
    }
}

/// The signer of an `s3://`, `gs://` or `az://` bucket (pre-signed URLs for its objects, by
/// the same keys `open` uses); `None` for other kinds of storage.
pub fn open_signer(
    url: &str,
    options: &BTreeMap<String, String>,
) -> Result<Option<Arc<dyn Signer>>, StorageError> {
    match url.split_once("://") {
        Some((scheme @ ("s3" | "gs" | "az"), rest)) => {
            Ok(Some(open_cloud(scheme, rest, options)?.signer))
        }
        _ => Ok(None),
    }
}

/// The paged listing of an `s3://`, `gs://` or `az://` bucket (see `walk.rs`); `None` for other
/// kinds of storage.
pub fn open_pager(
    url: &str,
    options: &BTreeMap<String, String>,
) -> Result<Option<Pager>, StorageError> {
    match url.split_once("://") {
        Some((scheme @ ("s3" | "gs" | "az"), rest)) => {
            Ok(Some(open_cloud(scheme, rest, options)?.pager))
        }
        _ => Ok(None),
    }
}

/// One cloud bucket, three ways: objects, pre-signed URLs, paged listings.
struct Cloud {
    store: Arc<dyn ObjectStore>,
    signer: Arc<dyn Signer>,
    pager: Pager,
}

fn open_cloud(
    scheme: &str,
    rest: &str,
    options: &BTreeMap<String, String>,
) -> Result<Cloud, StorageError> {
    let bad = |reason: String| StorageError::BadUrl {
        url: format!("{scheme}://{rest}"),
        reason,
    };
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() {
        return Err(bad("missing bucket name".into()));
    }
    let bucket_url = format!("{scheme}://{bucket}");
    let prefix = prefix.trim_matches('/').to_string();
    match scheme {
        "s3" => {
            let mut b = AmazonS3Builder::from_env().with_url(bucket_url);
            for (k, v) in options {
                b = b.with_config(k.parse().map_err(|e| bad(format!("{e}")))?, v);
            }
            Ok(both(b.build()?, &prefix))
        }
        "gs" => {
            let mut b = GoogleCloudStorageBuilder::from_env().with_url(bucket_url);
            for (k, v) in options {
                b = b.with_config(k.parse().map_err(|e| bad(format!("{e}")))?, v);
            }
            Ok(both(b.build()?, &prefix))
        }
        _ => {
            let mut b = MicrosoftAzureBuilder::from_env().with_url(bucket_url);
            for (k, v) in options {
                b = b.with_config(k.parse().map_err(|e| bad(format!("{e}")))?, v);
            }
            Ok(both(b.build()?, &prefix))
        }
    }
}

/// The store and its signer, both under `prefix` (when not empty), and its paged listing
/// (which has no prefixed form: the pager adds and strips `prefix` itself).
fn both<T: ObjectStore + Signer + PaginatedListStore + Clone>(store: T, prefix: &str) -> Cloud {
    let pager = Pager::new(Arc::new(store.clone()), prefix);
    if prefix.is_empty() {
        return Cloud {
            store: Arc::new(store.clone()),
            signer: Arc::new(store),
            pager,
        };
    }
    Cloud {
        store: Arc::new(PrefixStore::new(store.clone(), prefix.to_string())),
        signer: Arc::new(PrefixStore::new(store, prefix.to_string())),
        pager,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_relative_and_unknown() {
        let none = BTreeMap::new();
        assert!(open("file://relative/x", &none).is_err());
        assert!(open("ftp://x", &none).is_err());
        assert!(open("no-scheme", &none).is_err());
        assert!(open("s3://", &none).is_err());
        assert!(open("memory://", &none).is_ok());
        assert!(open("mongodb://", &none).is_err());
        assert!(open("mongodb+srv://cluster.internal.test/db", &none).is_err());
        // Opening checks the URL only; the client connects on first use.
        assert!(open("mongodb://127.0.0.1:9/athens", &none).is_ok());
        let one = BTreeMap::from([("region".to_string(), "x".to_string())]);
        assert!(open("mongodb://127.0.0.1:9/athens", &one).is_err());
    }

    #[test]
    fn s3_takes_options_by_name() {
        let mut opts = BTreeMap::new();
        opts.insert("endpoint".to_string(), "http://127.0.0.1:9".to_string());
        opts.insert("region".to_string(), "us-east-1".to_string());
        opts.insert("allow_http".to_string(), "true".to_string());
        assert!(open("s3://bucket/some/prefix", &opts).is_ok());
        opts.insert("no_such_option".to_string(), "1".to_string());
        assert!(open("s3://bucket", &opts).is_err());
    }

    #[tokio::test]
    async fn s3_signer_signs_keys_under_the_prefix() {
        let opts = BTreeMap::from([
            ("endpoint".to_string(), "http://127.0.0.1:9".to_string()),
            ("region".to_string(), "us-east-1".to_string()),
            ("allow_http".to_string(), "true".to_string()),
            ("access_key_id".to_string(), "k".to_string()),
            ("secret_access_key".to_string(), "s".to_string()),
            (
                "virtual_hosted_style_request".to_string(),
                "false".to_string(),
            ),
        ]);
        let signer = open_signer("s3://bucket/pre/fix", &opts).unwrap().unwrap();
        let url = signer
            .signed_url(
                object_store::signer::Method::GET,
                &"m/@v/v1.0.0.zip".into(),
                std::time::Duration::from_secs(60),
            )
            .await
            .unwrap()
            .to_string();
        // The key under the prefix; `@` is percent-encoded in a signed path.
        assert!(
            url.starts_with("http://127.0.0.1:9/bucket/pre/fix/m/%40v/v1.0.0.zip?"),
            "{url}"
        );
        assert!(url.contains("X-Amz-Signature="), "{url}");
        assert!(
            open_signer("memory://", &BTreeMap::new())
                .unwrap()
                .is_none()
        );
    }
}
