//! Reading upstream bodies with a bound: nothing from outside is trusted for size.
//!
//! Every upstream body the proxy reads goes through here (module files, `list`/`@latest`,
//! checksum database lookups, tiles and error bodies), so one limit check guards them all.

use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use std::path::Path;
use tokio::io::AsyncWriteExt;

/// Bytes gathered before a write to the file and a hand-over to the tap: HTTP/2 bodies arrive
/// in frames of about 13 KiB, and each write of a tokio file, and each wake-up of the tap's
/// thread, is a trip to another thread.
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
/// closes) in batches of about [`BATCH`] bytes.
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
    let mut stream = resp.bytes_stream();
    let mut batches = Batches::default();
    loop {
        let chunk = stream.next().await;
        let full = match &chunk {
            Some(Ok(chunk)) => {
                written += chunk.len() as u64;
                if written > limit {
                    return Err(BodyError::TooLarge(limit));
                }
                batches.push(chunk)
            }
            Some(Err(e)) => return Err(BodyError::Read(e.to_string())),
            None => batches.rest(),
        };
        if let Some(full) = full {
            file.write_all(&full).await.map_err(file_err)?;
            if let Some(t) = &tap
                && t.send(full).await.is_err()
            {
                tap = None;
            }
        }
        if chunk.is_none() {
            break;
        }
    }
    file.flush().await.map_err(file_err)?;
    Ok(())
}

/// Gathers a body's chunks into batches of [`BATCH`] bytes (a chunk larger than that is a
/// batch of its own size).
#[derive(Default)]
struct Batches {
    gathered: BytesMut,
}

impl Batches {
    /// Adds `chunk`; returns a batch when one is full.
    fn push(&mut self, chunk: &[u8]) -> Option<Bytes> {
        let full = (!self.gathered.is_empty() && self.gathered.len() + chunk.len() > BATCH)
            .then(|| self.gathered.split().freeze());
        // Room for a whole batch at once, so gathering one never reallocates and copies.
        if self.gathered.capacity() - self.gathered.len() < chunk.len() {
            self.gathered.reserve(BATCH.max(chunk.len()));
        }
        self.gathered.extend_from_slice(chunk);
        full
    }

    /// What is left at the end of the body, if anything.
    fn rest(&mut self) -> Option<Bytes> {
        (!self.gathered.is_empty()).then(|| self.gathered.split().freeze())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_keep_every_byte_in_order_and_stay_near_their_size() {
        // HTTP/2 frames, one chunk larger than a batch, and tiny ones.
        let sizes = [13_000usize, 16_384, 1, 700_000, 5, 13_000, 250_000, 3];
        let mut body = Vec::new();
        let mut out = Vec::new();
        let mut b = Batches::default();
        for (i, n) in sizes.into_iter().enumerate() {
            let chunk: Vec<u8> = (0..n).map(|k| (k * 31 + i) as u8).collect();
            body.extend_from_slice(&chunk);
            if let Some(full) = b.push(&chunk) {
                assert!(
                    full.len() <= BATCH || full.len() == 700_000,
                    "{}",
                    full.len()
                );
                out.push(full);
            }
        }
        out.push(b.rest().expect("the last chunks"));
        assert!(b.rest().is_none());
        assert!(out.len() >= 3 && out.len() < sizes.len(), "{}", out.len());
        assert_eq!(out.concat(), body);
    }
}
