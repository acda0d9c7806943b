//! Multipart uploads: each part goes into `chunks` as it arrives (split to at most
//! [`CHUNK`](super::docs::CHUNK) bytes, ordered by part then piece); `complete` writes the
//! object document that points at them, so the object appears whole or not at all. Like S3's,
//! a multipart upload replaces what is there (not create-only).

use super::docs::{Body, CHUNK, chunk_document, chunk_order};
use super::{MongoStore, generic};
use async_trait::async_trait;
use mongodb::bson::oid::ObjectId;
use object_store::path::Path;
use object_store::{MultipartUpload, PutMode, PutPayload, PutResult, UploadPart};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug)]
pub struct Upload {
    store: MongoStore,
    location: Path,
    /// The chunks id the parts go under.
    id: String,
    next_part: usize,
    size: Arc<AtomicU64>,
}

impl Upload {
    pub fn new(store: MongoStore, location: Path) -> Self {
        Self {
            store,
            location,
            id: ObjectId::new().to_hex(),
            next_part: 0,
            size: Arc::default(),
        }
    }
}

#[async_trait]
impl MultipartUpload for Upload {
    fn put_part(&mut self, data: PutPayload) -> UploadPart {
        let part = self.next_part;
        self.next_part += 1;
        let (store, id, size) = (self.store.clone(), self.id.clone(), self.size.clone());
        Box::pin(async move {
            let c = store.colls().await?;
            let data = bytes::Bytes::from(data);
            for (sub, piece) in data.chunks(CHUNK).enumerate() {
                c.chunks
                    .insert_one(chunk_document(&id, chunk_order(part, sub), piece))
                    .await
                    .map_err(generic)?;
            }
            size.fetch_add(data.len() as u64, Ordering::Relaxed);
            Ok(())
        })
    }

    async fn complete(&mut self) -> object_store::Result<PutResult> {
        let size = self.size.load(Ordering::Relaxed);
        self.store
            .store(
                &self.location,
                size,
                Body::Chunks(self.id.clone()),
                PutMode::Overwrite,
            )
            .await
    }

    async fn abort(&mut self) -> object_store::Result<()> {
        self.store.delete_chunks(&self.id).await
    }
}
