//! One zip entry's content, hashed as it is inflated: shared by the pass over a download
//! (zipstream.rs) and the check's reading of entries that pass did not cover (zipcheck.rs).
//!
//! Both reuse one inflater for every entry of a zip. An inflater per entry (what the zip crate
//! makes) costs a window allocation each, and zlib-rs's aligned windows fragmented glibc's heap
//! until memory grew with the number of entries (44 MB for the 5,504 files of aws-sdk-go).

use std::io::Read;

use flate2::{Crc, Decompress, FlushDecompress, Status};
use sha2::{Digest, Sha256};

use super::zipcheck::MAX_GO_MOD;

/// Compression methods a module zip may use (Go's archive/zip registers only these two).
pub(super) const STORED: u16 = 0;
pub(super) const DEFLATED: u16 = 8;

/// One entry's content as it passes: hashed, and kept when asked (the root go.mod, up to the
/// go.mod size limit; a larger one is left to the check, which refuses it).
pub(super) struct Content {
    sha: Sha256,
    crc: Crc,
    size: u64,
    kept: Option<Vec<u8>>,
}

/// What [`Content`] measured.
pub(super) struct Measured {
    pub size: u64,
    pub crc32: u32,
    pub sha256: [u8; 32],
    pub kept: Option<Vec<u8>>,
}

impl Content {
    pub(super) fn new(keep: bool) -> Self {
        Self {
            sha: Sha256::new(),
            crc: Crc::new(),
            size: 0,
            kept: keep.then(Vec::new),
        }
    }

    pub(super) fn size(&self) -> u64 {
        self.size
    }

    pub(super) fn add(&mut self, data: &[u8]) {
        self.sha.update(data);
        self.crc.update(data);
        self.size += data.len() as u64;
        if let Some(k) = &mut self.kept {
            if k.len() as u64 + data.len() as u64 > MAX_GO_MOD {
                self.kept = None;
            } else {
                k.extend_from_slice(data);
            }
        }
    }

    pub(super) fn finish(self) -> Measured {
        Measured {
            size: self.size,
            crc32: self.crc.sum(),
            sha256: self.sha.finalize().into(),
            kept: self.kept,
        }
    }
}

/// One raw deflate inflater and its output buffer, reset for each entry of a zip.
pub(super) struct Inflater {
    inflater: Decompress,
    out: Vec<u8>,
}

/// What one [`Inflater::step`] did.
pub(super) struct Step {
    /// Input bytes consumed.
    pub took: usize,
    /// Content bytes produced (already added to the entry's [`Content`]).
    pub made: usize,
    /// Whether the deflate stream ended.
    pub end: bool,
}

impl Inflater {
    pub(super) fn new() -> Self {
        Self {
            inflater: Decompress::new(false),
            out: vec![0u8; 32 * 1024],
        }
    }

    /// Starts a new entry's stream.
    pub(super) fn reset(&mut self) {
        self.inflater.reset(false);
    }

    /// Compressed bytes this entry's stream has taken so far.
    pub(super) fn total_in(&self) -> u64 {
        self.inflater.total_in()
    }

    /// Inflates what it can of `input` into `content`.
    pub(super) fn step(
        &mut self,
        input: &[u8],
        content: &mut Content,
    ) -> Result<Step, flate2::DecompressError> {
        let (in_before, out_before) = (self.inflater.total_in(), self.inflater.total_out());
        let status = self
            .inflater
            .decompress(input, &mut self.out, FlushDecompress::None)?;
        let took = (self.inflater.total_in() - in_before) as usize;
        let made = (self.inflater.total_out() - out_before) as usize;
        content.add(&self.out[..made]);
        Ok(Step {
            took,
            made,
            end: status == Status::StreamEnd,
        })
    }
}

/// Reads entries from their raw (still compressed) bytes with one inflater and one input
/// buffer for the whole zip.
pub(super) struct RawReader {
    inflater: Inflater,
    input: Vec<u8>,
}

impl RawReader {
    pub(super) fn new() -> Self {
        Self {
            inflater: Inflater::new(),
            input: vec![0u8; 32 * 1024],
        }
    }

    /// The content of an entry whose raw bytes `raw` yields, stored or deflated by `method`.
    /// Stops once the content is longer than `limit` bytes (the caller compares sizes), so a
    /// lying header cannot make it inflate without bound. Errors are one-line reasons.
    pub(super) fn read(
        &mut self,
        raw: &mut impl Read,
        method: u16,
        limit: u64,
        keep: bool,
    ) -> Result<Measured, String> {
        let mut content = Content::new(keep);
        match method {
            STORED => self.copy(raw, limit, &mut content)?,
            DEFLATED => self.inflate(raw, limit, &mut content)?,
            m => return Err(format!("unsupported compression method {m}")),
        }
        Ok(content.finish())
    }

    fn copy(
        &mut self,
        raw: &mut impl Read,
        limit: u64,
        content: &mut Content,
    ) -> Result<(), String> {
        while content.size() <= limit {
            let n = read_some(raw, &mut self.input)?;
            if n == 0 {
                break;
            }
            content.add(&self.input[..n]);
        }
        Ok(())
    }

    fn inflate(
        &mut self,
        raw: &mut impl Read,
        limit: u64,
        content: &mut Content,
    ) -> Result<(), String> {
        self.inflater.reset();
        let (mut start, mut end, mut eof) = (0usize, 0usize, false);
        while content.size() <= limit {
            if start == end && !eof {
                (start, end) = (0, read_some(raw, &mut self.input)?);
                eof = end == 0;
            }
            let step = self
                .inflater
                .step(&self.input[start..end], content)
                .map_err(|e| format!("corrupt deflate data: {e}"))?;
            start += step.took;
            if step.end {
                return Ok(());
            }
            if step.took == 0 && step.made == 0 && (eof || start < end) {
                return Err(if eof {
                    "compressed data ends early".to_string()
                } else {
                    "corrupt deflate data".to_string()
                });
            }
        }
        Ok(())
    }
}

fn read_some(r: &mut impl Read, buf: &mut [u8]) -> Result<usize, String> {
    loop {
        match r.read(buf) {
            Ok(n) => return Ok(n),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn deflate(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn stored_and_deflated_entries_measure_the_same_content() {
        let data: Vec<u8> = (0..200_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect();
        let mut r = RawReader::new();
        let stored = r.read(&mut &data[..], STORED, u64::MAX, true).unwrap();
        let packed = deflate(&data);
        let inflated = r.read(&mut &packed[..], DEFLATED, u64::MAX, false).unwrap();
        let want: [u8; 32] = Sha256::digest(&data).into();
        assert_eq!((stored.size, stored.sha256), (data.len() as u64, want));
        assert_eq!((inflated.size, inflated.sha256), (data.len() as u64, want));
        assert_eq!(stored.crc32, inflated.crc32);
        assert_eq!(stored.kept.as_deref(), Some(&data[..]));
        assert!(inflated.kept.is_none());
    }

    #[test]
    fn the_inflater_is_reused_across_entries() {
        let mut r = RawReader::new();
        for text in [&b"first entry"[..], b"", b"a third, longer entry of text"] {
            let got = r
                .read(&mut &deflate(text)[..], DEFLATED, u64::MAX, true)
                .unwrap();
            assert_eq!(got.kept.as_deref(), Some(text));
        }
    }

    #[test]
    fn reading_stops_just_past_the_limit() {
        let data = vec![b'x'; 1 << 20];
        let mut r = RawReader::new();
        let got = r
            .read(&mut &deflate(&data)[..], DEFLATED, 10, false)
            .unwrap();
        assert!(
            got.size > 10 && got.size < data.len() as u64,
            "{}",
            got.size
        );
        let got = r.read(&mut &data[..], STORED, 10, false).unwrap();
        assert!(
            got.size > 10 && got.size < data.len() as u64,
            "{}",
            got.size
        );
    }

    #[test]
    fn truncated_corrupt_and_unknown_data_are_errors() {
        let packed = deflate(&vec![7u8; 100_000]);
        let mut r = RawReader::new();
        let cut = r.read(&mut &packed[..packed.len() / 2], DEFLATED, u64::MAX, false);
        assert_eq!(cut.err().as_deref(), Some("compressed data ends early"));
        let junk = r.read(&mut &[0xffu8; 64][..], DEFLATED, u64::MAX, false);
        assert!(junk.err().unwrap().starts_with("corrupt deflate data"));
        let other = r.read(&mut &packed[..], 12, u64::MAX, false);
        assert_eq!(
            other.err().as_deref(),
            Some("unsupported compression method 12")
        );
    }
}
