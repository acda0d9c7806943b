//! `mongodb://` storage: an [`ObjectStore`] over a MongoDB database, so the rest of the proxy
//! (create-only commits, leases, listing) works unchanged. Layout in [`docs`]; multipart
//! uploads in [`upload`].
//!
//! The client connects lazily on first use: opening only checks the URL, like the other
//! backends, and a proxy whose database is down starts and reports not-ready. Credentials come
//! from `MONGODB_USERNAME` / `MONGODB_PASSWORD` when the URL has none.

mod docs;
mod upload;

use async_trait::async_trait;
use bytes::Bytes;
use docs::{Body, CHUNK, ObjectDoc, chunk_document, prefix_filter};
use futures::stream::{self, BoxStream};
use futures::{StreamExt, TryStreamExt};
use mongodb::bson::{Bson, DateTime, Document, doc, oid::ObjectId};
use mongodb::error::{ErrorKind, WriteFailure};
use mongodb::options::{ClientOptions, ReturnDocument};
use mongodb::{Client, Collection, IndexModel};
use object_store::path::Path;
use object_store::{
    CopyMode, CopyOptions, GetOptions, GetResult, GetResultPayload, ListResult, MultipartUpload,
    ObjectMeta, ObjectStore, PutMode, PutMultipartOptions, PutOptions, PutPayload, PutResult,
};
use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use tokio::sync::OnceCell;

const STORE: &str = "MongoDB";
/// Database used when the URL names none.
const DEFAULT_DATABASE: &str = "athens";

/// Why a `mongodb://` URL is refused.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BadMongoUrl(String);

/// Object storage in MongoDB collections `objects` and `chunks` of one database.
#[derive(Debug, Clone)]
pub struct MongoStore {
    inner: Arc<Inner>,
}

struct Inner {
    /// With credentials: never logged.
    url: String,
    database: String,
    collections: OnceCell<Collections>,
}

#[derive(Debug, Clone)]
struct Collections {
    objects: Collection<Document>,
    chunks: Collection<Document>,
}

impl MongoStore {
    /// Checks the URL (`mongodb://[user:pass@]host[:port][,host...]/[database][?options]`);
    /// connects on first use. The only `options` are `username` and `password` (as for the
    /// cloud backends, credentials may be passed instead of read from the environment); other
    /// settings belong in the URL.
    pub fn new(url: &str, options: &BTreeMap<String, String>) -> Result<Self, BadMongoUrl> {
        if let Some(k) = options
            .keys()
            .find(|k| *k != "username" && *k != "password")
        {
            return Err(BadMongoUrl(format!(
                "unknown option {k:?} (mongodb storage takes username and password; put other settings in the URL)"
            )));
        }
        if url.starts_with("mongodb+srv://") {
            return Err(BadMongoUrl(
                "mongodb+srv:// is not supported (no DNS seed lists); list the hosts in a mongodb:// URL".into(),
            ));
        }
        // Like the cloud backends' credentials: from options, else the environment (a
        // Secret), so the URL in the configuration carries none. Merged into the URL so its
        // other settings (mechanism, source) apply as written.
        let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let user = options
            .get("username")
            .cloned()
            .or_else(|| env("MONGODB_USERNAME"));
        let password = options
            .get("password")
            .cloned()
            .or_else(|| env("MONGODB_PASSWORD"));
        let url = with_userinfo(url, user.as_deref(), password.as_deref());
        mongodb::options::ConnectionString::parse(&url).map_err(|e| BadMongoUrl(e.to_string()))?;
        Ok(Self {
            inner: Arc::new(Inner {
                database: database_of(&url),
                url,
                collections: OnceCell::new(),
            }),
        })
    }

    async fn colls(&self) -> object_store::Result<&Collections> {
        self.inner
            .collections
            .get_or_try_init(|| async {
                let opts = ClientOptions::parse(&self.inner.url)
                    .await
                    .map_err(generic)?;
                let db = Client::with_options(opts)
                    .map_err(generic)?
                    .database(&self.inner.database);
                let chunks = db.collection::<Document>("chunks");
                // Chunks are read by (f, n); an index keeps that a range scan.
                chunks
                    .create_index(IndexModel::builder().keys(doc! {"f": 1, "n": 1}).build())
                    .await
                    .map_err(generic)?;
                Ok(Collections {
                    objects: db.collection("objects"),
                    chunks,
                })
            })
            .await
    }

    async fn find(&self, location: &Path) -> object_store::Result<ObjectDoc> {
        let c = self.colls().await?;
        let found = c
            .objects
            .find_one(doc! {"_id": location.as_ref()})
            .await
            .map_err(generic)?;
        found
            .as_ref()
            .and_then(ObjectDoc::from_document)
            .ok_or_else(|| not_found(location))
    }

    /// Writes `data` as chunks under a fresh id, returning it.
    async fn write_chunks(&self, data: &[u8]) -> object_store::Result<String> {
        let c = self.colls().await?;
        let id = ObjectId::new().to_hex();
        for (n, piece) in data.chunks(CHUNK).enumerate() {
            c.chunks
                .insert_one(chunk_document(&id, n as i64, piece))
                .await
                .map_err(generic)?;
        }
        Ok(id)
    }

    async fn delete_chunks(&self, id: &str) -> object_store::Result<()> {
        let c = self.colls().await?;
        c.chunks
            .delete_many(doc! {"f": id})
            .await
            .map_err(generic)?;
        Ok(())
    }

    /// Stores the object document for `body` by `mode`; on refusal the new chunks are removed,
    /// after a replacement the old object's chunks are.
    async fn store(
        &self,
        location: &Path,
        size: u64,
        body: Body,
        mode: PutMode,
    ) -> object_store::Result<PutResult> {
        let c = self.colls().await?;
        let new = ObjectDoc {
            key: location.to_string(),
            size,
            etag: ObjectId::new().to_hex(),
            modified: DateTime::now(),
            body,
        };
        let key = location.as_ref();
        let result = match &mode {
            PutMode::Create => c
                .objects
                .insert_one(new.to_document())
                .await
                .map(|_| None)
                .map_err(|e| {
                    if is_duplicate_key(&e) {
                        object_store::Error::AlreadyExists {
                            path: key.to_string(),
                            source: Box::new(e),
                        }
                    } else {
                        generic(e)
                    }
                }),
            PutMode::Overwrite => c
                .objects
                .find_one_and_replace(doc! {"_id": key}, new.to_document())
                .upsert(true)
                .return_document(ReturnDocument::Before)
                .await
                .map_err(generic),
            PutMode::Update(v) => {
                let etag = v.e_tag.clone().ok_or_else(|| {
                    generic(BadMongoUrl("conditional update needs an etag".into()))
                })?;
                match c
                    .objects
                    .find_one_and_replace(doc! {"_id": key, "etag": &etag}, new.to_document())
                    .return_document(ReturnDocument::Before)
                    .await
                {
                    Ok(Some(old)) => Ok(Some(old)),
                    Ok(None) => Err(object_store::Error::Precondition {
                        path: key.to_string(),
                        source: format!("etag {etag} does not match").into(),
                    }),
                    Err(e) => Err(generic(e)),
                }
            }
        };
        match result {
            Ok(old) => {
                let old_chunks = old.as_ref().and_then(ObjectDoc::from_document);
                if let Some(id) = old_chunks.as_ref().and_then(ObjectDoc::chunks) {
                    self.delete_chunks(id).await?;
                }
                Ok(PutResult {
                    e_tag: Some(new.etag),
                    version: None,
                    extensions: Default::default(),
                })
            }
            Err(e) => {
                if let Some(id) = new.chunks() {
                    self.delete_chunks(id).await?;
                }
                Err(e)
            }
        }
    }

    /// The object's bytes, as a stream of chunks.
    async fn body_stream(
        &self,
        o: &ObjectDoc,
    ) -> object_store::Result<BoxStream<'static, object_store::Result<Bytes>>> {
        match &o.body {
            Body::Inline(b) => Ok(stream::once(futures::future::ready(Ok(b.clone()))).boxed()),
            Body::Chunks(id) => {
                let c = self.colls().await?;
                let cursor = c
                    .chunks
                    .find(doc! {"f": id})
                    .sort(doc! {"n": 1})
                    .await
                    .map_err(generic)?;
                Ok(cursor
                    .map(|d| match d.map_err(generic)?.get("data") {
                        Some(Bson::Binary(b)) => Ok(Bytes::from(b.bytes.clone())),
                        _ => Err(generic(BadMongoUrl("chunk without data".into()))),
                    })
                    .boxed())
            }
        }
    }

    /// Metadata of the objects under `prefix`, in key order.
    async fn list_all(&self, prefix: Option<&Path>) -> object_store::Result<Vec<ObjectMeta>> {
        let c = self.colls().await?;
        let prefix = prefix.map(|p| p.as_ref()).unwrap_or("");
        let cursor = c
            .objects
            .find(prefix_filter(prefix))
            .projection(doc! {"data": 0})
            .sort(doc! {"_id": 1})
            .await
            .map_err(generic)?;
        let docs: Vec<Document> = cursor.try_collect().await.map_err(generic)?;
        Ok(docs
            .iter()
            .filter_map(ObjectDoc::from_document)
            .map(|o| o.meta())
            .collect())
    }
}

/// `mongodb://user:password@rest` when a user is given and the URL has none (percent-encoded,
/// as the connection string format wants).
fn with_userinfo(url: &str, user: Option<&str>, password: Option<&str>) -> String {
    let (Some(user), Some(rest)) = (user, url.strip_prefix("mongodb://")) else {
        return url.to_string();
    };
    let hosts = rest.split(['/', '?']).next().unwrap_or("");
    if hosts.contains('@') {
        return url.to_string();
    }
    let enc = |s: &str| utf8_percent_encode(s, NON_ALPHANUMERIC).to_string();
    match password {
        Some(p) => format!("mongodb://{}:{}@{rest}", enc(user), enc(p)),
        None => format!("mongodb://{}@{rest}", enc(user)),
    }
}

/// The database a URL names, else [`DEFAULT_DATABASE`].
fn database_of(url: &str) -> String {
    let db = url
        .split_once("://")
        .and_then(|(_, rest)| rest.split_once('/'))
        .map(|(_, path)| path.split('?').next().unwrap_or(""))
        .unwrap_or("");
    if db.is_empty() {
        DEFAULT_DATABASE.to_string()
    } else {
        db.to_string()
    }
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Not the URL: it may carry a password.
        f.debug_struct("MongoStore")
            .field("database", &self.database)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Display for MongoStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Not the URL: it may carry a password.
        write!(f, "MongoDB(database {})", self.inner.database)
    }
}

fn generic(e: impl std::error::Error + Send + Sync + 'static) -> object_store::Error {
    object_store::Error::Generic {
        store: STORE,
        source: Box::new(e),
    }
}

fn not_found(location: &Path) -> object_store::Error {
    object_store::Error::NotFound {
        path: location.to_string(),
        source: "no such object".into(),
    }
}

/// E11000: the unique `_id` refused a second object with the same key.
fn is_duplicate_key(e: &mongodb::error::Error) -> bool {
    match e.kind.as_ref() {
        ErrorKind::Write(WriteFailure::WriteError(w)) => w.code == 11000,
        ErrorKind::Command(c) => c.code == 11000,
        _ => false,
    }
}

#[async_trait]
impl ObjectStore for MongoStore {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        let data = Bytes::from(payload);
        let size = data.len() as u64;
        let body = if data.len() <= CHUNK {
            Body::Inline(data)
        } else {
            Body::Chunks(self.write_chunks(&data).await?)
        };
        self.store(location, size, body, opts.mode).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        _opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        Ok(Box::new(upload::Upload::new(
            self.clone(),
            location.clone(),
        )))
    }

    async fn get_opts(
        &self,
        location: &Path,
        options: GetOptions,
    ) -> object_store::Result<GetResult> {
        let o = self.find(location).await?;
        let meta = o.meta();
        options.check_preconditions(&meta)?;
        let whole = 0..o.size;
        if options.head {
            return Ok(GetResult {
                payload: GetResultPayload::Stream(stream::empty().boxed()),
                meta,
                range: whole,
                attributes: Default::default(),
                extensions: Default::default(),
            });
        }
        let body = self.body_stream(&o).await?;
        let (range, payload) = match options.range {
            // Ranges are rare here (the proxy streams whole objects): read and slice.
            Some(r) => {
                let r = r
                    .as_range(o.size)
                    .map_err(|e| generic(BadMongoUrl(e.to_string())))?;
                let all: Vec<Bytes> = body.try_collect().await?;
                let all = Bytes::from(all.concat());
                let part = all.slice(r.start as usize..r.end as usize);
                (r, stream::once(futures::future::ready(Ok(part))).boxed())
            }
            None => (whole, body),
        };
        Ok(GetResult {
            payload: GetResultPayload::Stream(payload),
            meta,
            range,
            attributes: Default::default(),
            extensions: Default::default(),
        })
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<Path>>,
    ) -> BoxStream<'static, object_store::Result<Path>> {
        let store = self.clone();
        locations
            .then(move |location| {
                let store = store.clone();
                async move {
                    let location = location?;
                    let c = store.colls().await?;
                    let old = c
                        .objects
                        .find_one_and_delete(doc! {"_id": location.as_ref()})
                        .await
                        .map_err(generic)?;
                    let old = old.as_ref().and_then(ObjectDoc::from_document);
                    match old {
                        None => Err(not_found(&location)),
                        Some(o) => {
                            if let Some(id) = o.chunks() {
                                store.delete_chunks(id).await?;
                            }
                            Ok(location)
                        }
                    }
                }
            })
            .boxed()
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        let store = self.clone();
        let prefix = prefix.cloned();
        stream::once(async move { store.list_all(prefix.as_ref()).await })
            .map_ok(|v| stream::iter(v.into_iter().map(Ok)))
            .try_flatten()
            .boxed()
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        let root = Path::default();
        let prefix = prefix.unwrap_or(&root);
        let mut objects = Vec::new();
        let mut common_prefixes = BTreeSet::new();
        for meta in self.list_all(Some(prefix)).await? {
            let nested = {
                let Some(mut parts) = meta.location.prefix_match(prefix) else {
                    continue;
                };
                let Some(first) = parts.next() else { continue };
                parts.next().is_some().then(|| prefix.clone().join(first))
            };
            match nested {
                Some(p) => {
                    common_prefixes.insert(p);
                }
                None => objects.push(meta),
            }
        }
        Ok(ListResult {
            objects,
            common_prefixes: common_prefixes.into_iter().collect(),
            extensions: Default::default(),
        })
    }

    async fn copy_opts(
        &self,
        from: &Path,
        to: &Path,
        options: CopyOptions,
    ) -> object_store::Result<()> {
        let o = self.find(from).await?;
        let parts: Vec<Bytes> = self.body_stream(&o).await?.try_collect().await?;
        let mode = match options.mode {
            CopyMode::Create => PutMode::Create,
            CopyMode::Overwrite => PutMode::Overwrite,
        };
        let opts = PutOptions {
            mode,
            ..Default::default()
        };
        self.put_opts(to, PutPayload::from(Bytes::from(parts.concat())), opts)
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_merge_into_the_url() {
        assert_eq!(
            with_userinfo(
                "mongodb://h:1/db?authMechanism=PLAIN",
                Some("u"),
                Some("p@ss")
            ),
            "mongodb://u:p%40ss@h:1/db?authMechanism=PLAIN"
        );
        assert_eq!(
            with_userinfo("mongodb://a@h/db", Some("u"), None),
            "mongodb://a@h/db"
        );
        assert_eq!(
            with_userinfo("mongodb://h/db", None, Some("p")),
            "mongodb://h/db"
        );
    }

    #[test]
    fn database_defaults_to_athens() {
        assert_eq!(database_of("mongodb://h:1/mods?x=1"), "mods");
        assert_eq!(database_of("mongodb://h:1/?x=1"), "athens");
        assert_eq!(database_of("mongodb://h:1"), "athens");
    }

    #[test]
    fn refuses_unknown_options_and_srv() {
        let none = BTreeMap::new();
        assert!(MongoStore::new("mongodb+srv://c.internal.test/db", &none).is_err());
        let opts = BTreeMap::from([("region".to_string(), "x".to_string())]);
        assert!(MongoStore::new("mongodb://h/db", &opts).is_err());
        let creds = BTreeMap::from([
            ("username".to_string(), "u".to_string()),
            ("password".to_string(), "hunter2".to_string()),
        ]);
        let s = MongoStore::new("mongodb://h/db?authMechanism=PLAIN", &creds).unwrap();
        assert!(
            !format!("{s:?} {s}").contains("hunter2"),
            "no credentials in logs"
        );
    }
}
