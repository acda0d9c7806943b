//! Reading upstream bodies with a bound: nothing from outside is trusted for size.
//!
//! Every upstream body the proxy reads goes through here (module files, `list`/`@latest`,
//! checksum database lookups, tiles and error bodies), so one limit check guards them all.

use bytes::Bytes;
use futures::StreamExt;
use std::path::Path;
use tokio::io::AsyncWriteExt;

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

/// Streams a body to a file, refusing more than `limit` bytes. Memory stays flat. Each chunk is
/// also offered to `tap` (a reader working through the body as it arrives), until the tap closes.
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
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| BodyError::Read(e.to_string()))?;
        written += chunk.len() as u64;
        if written > limit {
            return Err(BodyError::TooLarge(limit));
        }
        file.write_all(&chunk).await.map_err(file_err)?;
        if let Some(t) = &tap
            && t.send(chunk).await.is_err()
        {
            tap = None;
        }
    }
    file.flush().await.map_err(file_err)?;
    Ok(())
}
