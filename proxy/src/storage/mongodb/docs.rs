//! How objects are laid out as documents (pure conversions, no I/O).
//!
//! `objects`: one document per object, `_id` = the object's key (so a create-only put is an
//! insert that the unique `_id` refuses), with `size`, `etag`, `modified`, and either the bytes
//! inline (`data`) or the id of its chunks (`chunks`). `chunks`: GridFS-style pieces of large
//! objects, `{f: <chunks id>, n: <order>, data}`, read back sorted by `n`. Chunks are written
//! before the object document points at them, so an object is never visible half-written.

use bytes::Bytes;
use mongodb::bson::spec::BinarySubtype;
use mongodb::bson::{Binary, Bson, DateTime, Document, doc};
use object_store::ObjectMeta;
use object_store::path::Path;

/// Objects up to this size are stored inline; larger ones in chunks of at most this size. Well
/// under MongoDB's 16 MiB document limit.
pub const CHUNK: usize = 1 << 20;

/// Where an object's bytes are.
#[derive(Debug, Clone, PartialEq)]
pub enum Body {
    Inline(Bytes),
    Chunks(String),
}

/// An object's document, decoded.
#[derive(Debug, Clone, PartialEq)]
pub struct ObjectDoc {
    pub key: String,
    pub size: u64,
    pub etag: String,
    pub modified: DateTime,
    pub body: Body,
}

impl ObjectDoc {
    pub fn to_document(&self) -> Document {
        let mut d = doc! {
            "_id": &self.key,
            "size": self.size as i64,
            "etag": &self.etag,
            "modified": self.modified,
        };
        match &self.body {
            Body::Inline(b) => d.insert("data", binary(b)),
            Body::Chunks(id) => d.insert("chunks", id),
        };
        d
    }

    /// Decodes a stored document; `None` when it is not one of ours (missing fields).
    pub fn from_document(d: &Document) -> Option<ObjectDoc> {
        let body = match (d.get("data"), d.get_str("chunks")) {
            (Some(Bson::Binary(b)), _) => Body::Inline(Bytes::from(b.bytes.clone())),
            (_, Ok(id)) => Body::Chunks(id.to_string()),
            _ => Body::Inline(Bytes::new()),
        };
        Some(ObjectDoc {
            key: d.get_str("_id").ok()?.to_string(),
            size: u64::try_from(d.get_i64("size").ok()?).ok()?,
            etag: d.get_str("etag").ok()?.to_string(),
            modified: *d.get_datetime("modified").ok()?,
            body,
        })
    }

    pub fn meta(&self) -> ObjectMeta {
        ObjectMeta {
            location: Path::from(self.key.as_str()),
            last_modified: chrono::DateTime::from_timestamp_millis(
                self.modified.timestamp_millis(),
            )
            .unwrap_or_default(),
            size: self.size,
            e_tag: Some(self.etag.clone()),
            version: None,
        }
    }

    /// The chunks id, if the bytes are in chunks.
    pub fn chunks(&self) -> Option<&str> {
        match &self.body {
            Body::Chunks(id) => Some(id),
            Body::Inline(_) => None,
        }
    }
}

pub fn binary(b: &[u8]) -> Binary {
    Binary {
        subtype: BinarySubtype::Generic,
        bytes: b.to_vec(),
    }
}

/// A chunk document: piece `n` of the chunks `f`.
pub fn chunk_document(f: &str, n: i64, data: &[u8]) -> Document {
    doc! { "f": f, "n": n, "data": binary(data) }
}

/// The order key of sub-chunk `sub` of multipart part `part`: parts may arrive in any order,
/// and each part is split into pieces of at most [`CHUNK`] bytes.
pub fn chunk_order(part: usize, sub: usize) -> i64 {
    ((part as i64) << 24) | sub as i64
}

/// The filter selecting the keys under `prefix` (a folder: `prefix/...`), as a range on `_id`
/// so MongoDB can use its `_id` index ('0' sorts right after '/').
pub fn prefix_filter(prefix: &str) -> Document {
    if prefix.is_empty() {
        return doc! {};
    }
    doc! { "_id": { "$gte": format!("{prefix}/"), "$lt": format!("{prefix}0") } }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_round_trip() {
        for body in [
            Body::Inline(Bytes::from_static(b"hello")),
            Body::Chunks("c1".into()),
        ] {
            let o = ObjectDoc {
                key: "a/b".into(),
                size: 5,
                etag: "e".into(),
                modified: DateTime::from_millis(1_700_000_000_000),
                body,
            };
            assert_eq!(ObjectDoc::from_document(&o.to_document()), Some(o));
        }
        assert_eq!(ObjectDoc::from_document(&doc! {"_id": "x"}), None);
    }

    #[test]
    fn chunk_order_sorts_by_part_then_piece() {
        assert!(chunk_order(0, 5) < chunk_order(1, 0));
        assert!(chunk_order(1, 0) < chunk_order(1, 1));
        assert!(chunk_order(2, 0) > chunk_order(1, 4000));
    }

    #[test]
    fn prefix_filter_is_a_folder_range() {
        let f = prefix_filter("m/@v");
        let range = f.get_document("_id").unwrap();
        assert_eq!(range.get_str("$gte").unwrap(), "m/@v/");
        assert_eq!(range.get_str("$lt").unwrap(), "m/@v0");
        assert!(prefix_filter("").is_empty());
    }
}
