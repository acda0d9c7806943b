//! Reading upstream bodies with a bound: nothing from outside is trusted for size.
//!
//! Every upstream body the proxy reads goes through here (module files, `list`/`@latest`,
//! checksum database lookups, tiles and error bodies), so one limit check guards them all.

use bytes::Bytes;
use futures::{FutureExt, StreamExt};
use std::path::Path;
use tokio::io::AsyncWriteExt;

/// Bytes of already received chunks joined into one write: chunks (HTTP/2 frames of about
/// 13 KiB) pile up while the hashing pass holds the download back, and each write of a tokio
/// file and each wake-up of the tap's thread is a trip to another thread. Only chunks already
/// there are joined, so nothing waits for more bytes; a batch is at most this plus one chunk.
const BATCH: usize = 256 * 1024;

/// Why a body could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    #[error("larger than {0} bytes")]
    TooLarge(u64),
    #[error("reading upstream body: {0}")]
    Read(String),
    #[error("temp file: {0}")]
    File(String),
}

/// Reads a small body into memory, refusing more than `limit` bytes.
pub async fn read_limited(resp: reqwest::Response, limit: usize) -> Result<Bytes, BodyError> {
    if resp.content_length().is_some_and(|n| n > limit as u64) {
        return Err(BodyError::TooLarge(limit as u64));
    }
    let mut buf = Vec::new();
    let mut stream = resp.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| BodyError::Read(e.to_string()))?;
        if buf.len() + chunk.len() > limit {
            return Err(BodyError::TooLarge(limit as u64));
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(buf))
}

/// Streams a body to a file, refusing more than `limit` bytes. Memory stays flat. The body is
/// written and offered to `tap` (a reader working through it as it arrives, until the tap
/// closes) in the batches it arrives in (up to about [`BATCH`] bytes).
pub async fn download_to(
    resp: reqwest::Response,
    path: &Path,
    limit: u64,
    mut tap: Option<tokio::sync::mpsc::Sender<Bytes>>,
) -> Result<(), BodyError> {
    if resp.content_length().is_some_and(|n| n > limit) {
        return Err(BodyError::TooLarge(limit));
    }
    let file_err = |e: std::io::Error| BodyError::File(e.to_string());
    let mut file = tokio::fs::File::create(path).await.map_err(file_err)?;
    let mut written = 0u64;
    let mut accept = |chunk: reqwest::Result<Bytes>| {
        let chunk = chunk.map_err(|e| BodyError::Read(e.to_string()))?;
        written += chunk.len() as u64;
        if written > limit {
            return Err(BodyError::TooLarge(limit));
        }
        Ok(chunk)
    };
    // Fused: the batch loop may look for a chunk again after the body has ended.
    let mut stream = resp.bytes_stream().fuse();
    while let Some(first) = stream.next().await {
        let mut chunks = vec![accept(first)?];
        let mut size = chunks[0].len();
        // What has already arrived, without waiting for more.
        while size < BATCH
            && let Some(Some(chunk)) = stream.next().now_or_never()
        {
            let chunk = accept(chunk)?;
            size += chunk.len();
            chunks.push(chunk);
        }
        let batch = join(chunks);
        file.write_all(&batch).await.map_err(file_err)?;
        if let Some(t) = &tap
            && t.send(batch).await.is_err()
        {
            tap = None;
        }
    }
    file.flush().await.map_err(file_err)?;
    Ok(())
}

/// The chunks as one buffer; a lone chunk as it is, without a copy.
fn join(mut chunks: Vec<Bytes>) -> Bytes {
    if chunks.len() == 1 {
        return chunks.pop().unwrap_or_default();
    }
    chunks.concat().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joined_chunks_keep_every_byte_in_order() {
        let chunks: Vec<Bytes> = [13_000usize, 1, 0, 16_384, 5]
            .into_iter()
            .enumerate()
            .map(|(i, n)| {
                (0..n)
                    .map(|k| (k * 31 + i) as u8)
                    .collect::<Vec<u8>>()
                    .into()
            })
            .collect();
        let want = chunks.concat();
        assert_eq!(join(chunks)[..], want[..]);
        assert!(join(Vec::new()).is_empty());
        let one = Bytes::from(vec![7u8; 100]);
        assert_eq!(
            join(vec![one.clone()]).as_ptr(),
            one.as_ptr(),
            "a lone chunk is not copied"
        );
    }
}
