//! Hashing a module zip's files while it downloads, so the check after the download does not
//! inflate them again.
//!
//! A zip is read front to back here, by its local file headers, the way it arrives. Nothing
//! learned here decides anything on its own: [`super::check_zip_with`] still reads the central
//! directory (the only index the `go` command uses) and takes a file's digest from this pass only
//! when the entry at that offset was inflated here to exactly the method, compressed size, size
//! and CRC-32 the directory declares, that is, when the zip reader would have read the same bytes
//! and produced the same content. Everything else (an odd writer, a lie, a format this pass does
//! not follow) is read from the file as before. The pass stops at the first thing it does not
//! understand; it never fails a download.

use std::collections::HashMap;
use std::io::Read;

use bytes::Bytes;

use super::entry::{Content, DEFLATED, Inflater, STORED};
use super::zipcheck::{MAX_ZIP_ENTRIES, MAX_ZIP_FILE};

const LOCAL_HEADER: u32 = 0x0403_4b50;
const DATA_DESCRIPTOR: u32 = 0x0807_4b50;
const ZIP64_EXTRA: u16 = 0x0001;
/// Chunks of a download waiting for the hashing thread: bounds its memory (a chunk is what the
/// download had received at once: at most 256 KiB plus one chunk, upstream/body.rs); a full queue
/// makes the download wait, so a network faster than the pass is slowed to the pass's speed
/// (about 75 MiB/s of compressed input on this machine's cores) instead of buffering.
const QUEUE: usize = 4;

/// One entry as it streamed past: what it declared nowhere but measured here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamedEntry {
    /// Compression method of the local header (0 stored, 8 deflated).
    pub method: u16,
    /// Compressed bytes the entry's data took.
    pub compressed: u64,
    /// Bytes its content inflated to.
    pub size: u64,
    /// CRC-32 of its content.
    pub crc32: u32,
    /// SHA-256 of its content.
    pub sha256: [u8; 32],
}

/// What one pass over a zip learned, by the offset of each entry's local header.
#[derive(Debug, Default)]
pub struct Prehashed {
    entries: HashMap<u64, StreamedEntry>,
    /// Content of the entry whose local name is the module root `go.mod`, by its offset.
    go_mod: Option<(u64, Vec<u8>)>,
}

impl Prehashed {
    /// The entry whose local header is at `offset`, if the pass got that far.
    pub fn get(&self, offset: u64) -> Option<&StreamedEntry> {
        self.entries.get(&offset)
    }

    /// The content of the root `go.mod` whose local header is at `offset`, if it was kept.
    pub fn go_mod_at(&self, offset: u64) -> Option<&[u8]> {
        self.go_mod
            .as_ref()
            .filter(|(at, _)| *at == offset)
            .map(|(_, c)| c.as_slice())
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// Reads a zip from `r` front to back and hashes every entry it can follow. `go_mod_name` is the
/// full name of the root go.mod (`<module>@<version>/go.mod`), whose content is kept.
pub fn prehash(r: impl Read, go_mod_name: &[u8]) -> Prehashed {
    let mut pass = Pass {
        input: Input::new(r),
        inflater: Inflater::new(),
        inflated: 0,
        found: Prehashed::default(),
    };
    // An error or anything unexpected ends the pass; what it found so far stays usable.
    while pass.found.entries.len() < MAX_ZIP_ENTRIES as usize {
        match pass.entry(go_mod_name) {
            Ok(true) => {}
            Ok(false) | Err(_) => break,
        }
    }
    pass.found
}

/// Starts [`prehash`] on a blocking thread, fed with the chunks sent to the returned sender. A
/// send fails once the pass has stopped; dropping the sender ends the input.
pub fn spawn_prehash(
    go_mod_name: String,
) -> (
    tokio::sync::mpsc::Sender<Bytes>,
    tokio::task::JoinHandle<Prehashed>,
) {
    let (tx, rx) = tokio::sync::mpsc::channel(QUEUE);
    let task = tokio::task::spawn_blocking(move || {
        prehash(
            ChannelReader {
                rx,
                chunk: Bytes::new(),
            },
            go_mod_name.as_bytes(),
        )
    });
    (tx, task)
}

/// The download's chunks as a `Read`; the end of the download is the end of input.
struct ChannelReader {
    rx: tokio::sync::mpsc::Receiver<Bytes>,
    chunk: Bytes,
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.chunk.is_empty() {
            match self.rx.blocking_recv() {
                Some(c) => self.chunk = c,
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.chunk.len());
        buf[..n].copy_from_slice(&self.chunk.split_to(n));
        Ok(n)
    }
}

/// Why the pass stopped early (never reported: the check then reads those entries itself).
#[derive(Debug)]
struct Stop;

impl From<std::io::Error> for Stop {
    fn from(_: std::io::Error) -> Self {
        Stop
    }
}

struct Pass<R> {
    input: Input<R>,
    inflater: Inflater,
    /// Bytes inflated over all entries: a zip bomb ends the pass at the zip size limit.
    inflated: u64,
    found: Prehashed,
}

impl<R: Read> Pass<R> {
    /// Follows one entry. `Ok(false)` at the first thing that is not a local header (normally
    /// the central directory).
    fn entry(&mut self, go_mod_name: &[u8]) -> Result<bool, Stop> {
        let offset = self.input.pos;
        let mut head = [0u8; 30];
        if !self.input.read_exact_or_end(&mut head)? || le32(&head[0..]) != LOCAL_HEADER {
            return Ok(false);
        }
        let flags = le16(&head[6..]);
        let method = le16(&head[8..]);
        let local_compressed = le32(&head[18..]);
        let name_len = usize::from(le16(&head[26..]));
        let extra_len = usize::from(le16(&head[28..]));
        let mut name = vec![0u8; name_len];
        self.input.read_exact(&mut name)?;
        let mut extra = vec![0u8; extra_len];
        self.input.read_exact(&mut extra)?;
        let encrypted = flags & 1 != 0;
        let descriptor = flags & 8 != 0;
        if encrypted {
            return Err(Stop);
        }
        let keep = name == go_mod_name;
        let mut content = Content::new(keep);
        let compressed = match (method, descriptor) {
            (STORED, false) if local_compressed != u32::MAX => {
                self.copy(u64::from(local_compressed), &mut content)?;
                u64::from(local_compressed)
            }
            (DEFLATED, _) => self.inflate(&mut content)?,
            _ => return Err(Stop),
        };
        if descriptor {
            // Optional signature, CRC-32, then the two sizes: 8 bytes each when the local header
            // carries a zip64 field, else 4 (APPNOTE 4.3.9).
            let mut word = [0u8; 4];
            self.input.read_exact(&mut word)?;
            if le32(&word) == DATA_DESCRIPTOR {
                self.input.read_exact(&mut word)?;
            }
            let sizes = if has_zip64(&extra) { 16 } else { 8 };
            self.input.skip(sizes)?;
        }
        let measured = content.finish();
        if let Some(kept) = measured.kept {
            self.found.go_mod = Some((offset, kept));
        }
        self.found.entries.insert(
            offset,
            StreamedEntry {
                method,
                compressed,
                size: measured.size,
                crc32: measured.crc32,
                sha256: measured.sha256,
            },
        );
        Ok(true)
    }

    fn copy(&mut self, mut n: u64, content: &mut Content) -> Result<(), Stop> {
        while n > 0 {
            let avail = self.input.available()?;
            if avail.is_empty() {
                return Err(Stop);
            }
            let k = avail.len().min(usize::try_from(n).unwrap_or(usize::MAX));
            content.add(&avail[..k]);
            self.input.consume(k);
            self.count(k as u64)?;
            n -= k as u64;
        }
        Ok(())
    }

    /// Inflates one raw deflate stream to its end; returns the compressed bytes it took.
    fn inflate(&mut self, content: &mut Content) -> Result<u64, Stop> {
        self.inflater.reset();
        loop {
            let avail = self.input.available()?;
            let step = self.inflater.step(avail, content).map_err(|_| Stop)?;
            self.input.consume(step.took);
            self.count(step.made as u64)?;
            if step.end {
                return Ok(self.inflater.total_in());
            }
            // No progress although there is room for output: the input ended (a truncated
            // stream) or the inflater is stuck; either way the check reads this entry itself.
            if step.took == 0 && step.made == 0 {
                return Err(Stop);
            }
        }
    }

    fn count(&mut self, n: u64) -> Result<(), Stop> {
        self.inflated += n;
        if self.inflated > MAX_ZIP_FILE {
            return Err(Stop);
        }
        Ok(())
    }
}

fn has_zip64(extra: &[u8]) -> bool {
    let mut rest = extra;
    while rest.len() >= 4 {
        let (id, len) = (le16(rest), usize::from(le16(&rest[2..])));
        if id == ZIP64_EXTRA {
            return true;
        }
        rest = rest.get(4 + len..).unwrap_or(&[]);
    }
    false
}

fn le16(b: &[u8]) -> u16 {
    u16::from_le_bytes([b[0], b[1]])
}

fn le32(b: &[u8]) -> u32 {
    u32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

/// A buffered reader that counts its position and lets the inflater see what is buffered.
struct Input<R> {
    r: R,
    buf: Box<[u8]>,
    start: usize,
    end: usize,
    /// Offset in the zip of the next unconsumed byte.
    pos: u64,
    eof: bool,
}

impl<R: Read> Input<R> {
    fn new(r: R) -> Self {
        Self {
            r,
            buf: vec![0u8; 64 * 1024].into_boxed_slice(),
            start: 0,
            end: 0,
            pos: 0,
            eof: false,
        }
    }

    /// The buffered bytes, reading more when none are left (empty only at the end of input).
    fn available(&mut self) -> std::io::Result<&[u8]> {
        if self.start == self.end && !self.eof {
            self.start = 0;
            self.end = 0;
            loop {
                match self.r.read(&mut self.buf) {
                    Ok(0) => {
                        self.eof = true;
                        break;
                    }
                    Ok(n) => {
                        self.end = n;
                        break;
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
        }
        Ok(&self.buf[self.start..self.end])
    }

    fn consume(&mut self, n: usize) {
        self.start += n;
        self.pos += n as u64;
    }

    /// Fills `out`; `Ok(false)` when the input ended before its first byte.
    fn read_exact_or_end(&mut self, out: &mut [u8]) -> Result<bool, Stop> {
        let mut done = 0;
        while done < out.len() {
            let avail = self.available()?;
            if avail.is_empty() {
                return if done == 0 { Ok(false) } else { Err(Stop) };
            }
            let k = avail.len().min(out.len() - done);
            out[done..done + k].copy_from_slice(&avail[..k]);
            self.consume(k);
            done += k;
        }
        Ok(true)
    }

    fn read_exact(&mut self, out: &mut [u8]) -> Result<(), Stop> {
        if self.read_exact_or_end(out)? {
            Ok(())
        } else {
            Err(Stop)
        }
    }

    fn skip(&mut self, mut n: usize) -> Result<(), Stop> {
        while n > 0 {
            let avail = self.available()?.len();
            if avail == 0 {
                return Err(Stop);
            }
            let k = avail.min(n);
            self.consume(k);
            n -= k;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify::{MAX_GO_MOD, check_zip, check_zip_with};
    use std::io::Write;
    use zip::write::SimpleFileOptions;

    const M: &str = "example.com/m";
    const V: &str = "v1.0.0";
    const GO_MOD: &[u8] = b"example.com/m@v1.0.0/go.mod";

    fn files() -> Vec<(String, Vec<u8>)> {
        let mut f = vec![(
            "example.com/m@v1.0.0/go.mod".to_string(),
            b"module example.com/m\n".to_vec(),
        )];
        for i in 0..40 {
            // Compressible and not: deflate streams of several blocks, and tiny ones.
            let body: Vec<u8> = (0..i * 997).map(|k| (k * k % 251) as u8).collect();
            f.push((format!("example.com/m@v1.0.0/f{i}.go"), body));
        }
        f
    }

    /// A zip of `files()`, written in place (sizes in the local headers) or as a stream (sizes
    /// in data descriptors after the data, as the go command's writer does).
    fn zip_of(files: &[(String, Vec<u8>)], streamed: bool, stored_every: usize) -> Vec<u8> {
        let opts = |i: usize| {
            let method = if stored_every > 0 && i.is_multiple_of(stored_every) {
                zip::CompressionMethod::Stored
            } else {
                zip::CompressionMethod::Deflated
            };
            SimpleFileOptions::default().compression_method(method)
        };
        if streamed {
            let mut w = zip::ZipWriter::new_stream(Vec::new());
            for (i, (name, data)) in files.iter().enumerate() {
                w.start_file(name.as_str(), opts(i)).unwrap();
                w.write_all(data).unwrap();
            }
            w.finish().unwrap().into_inner()
        } else {
            let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
            for (i, (name, data)) in files.iter().enumerate() {
                w.start_file(name.as_str(), opts(i)).unwrap();
                w.write_all(data).unwrap();
            }
            w.finish().unwrap().into_inner()
        }
    }

    fn on_disk(bytes: &[u8]) -> tempfile::NamedTempFile {
        let f = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(f.path(), bytes).unwrap();
        f
    }

    #[test]
    fn every_file_streams_whether_sizes_come_before_or_after_the_data() {
        let files = files();
        for (streamed, stored_every) in [(false, 0), (false, 3), (true, 0)] {
            let bytes = zip_of(&files, streamed, stored_every);
            let pass = prehash(&bytes[..], GO_MOD);
            assert_eq!(pass.len(), files.len(), "streamed {streamed}");
            let z = on_disk(&bytes);
            let with = check_zip_with(z.path(), M, V, Some(&pass)).unwrap();
            let plain = check_zip(z.path(), M, V).unwrap();
            assert_eq!(with.streamed, files.len());
            assert_eq!(with.h1, plain.h1);
            assert_eq!(with.go_mod.as_deref(), Some(&b"module example.com/m\n"[..]));
        }
    }

    #[test]
    fn a_pass_that_saw_part_of_the_zip_covers_that_part_only() {
        let files = files();
        let bytes = zip_of(&files, true, 0);
        let pass = prehash(&bytes[..bytes.len() / 2], GO_MOD);
        assert!(pass.len() > 1 && pass.len() < files.len(), "{}", pass.len());
        let z = on_disk(&bytes);
        let with = check_zip_with(z.path(), M, V, Some(&pass)).unwrap();
        assert_eq!(with.streamed, pass.len());
        assert_eq!(with.h1, check_zip(z.path(), M, V).unwrap().h1);
    }

    #[test]
    fn an_entry_the_directory_describes_differently_is_read_from_the_file() {
        let files = files();
        let bytes = zip_of(&files, false, 0);
        let pass = prehash(&bytes[..], GO_MOD);
        // Flip the CRC-32 of the last entry in the central directory only: the pass measured
        // the content's real CRC, so that entry is read from the file and fails as it would.
        let mut bad = bytes.clone();
        let eocd = bad.len() - 22;
        let dir = u32::from_le_bytes(bad[eocd + 16..eocd + 20].try_into().unwrap()) as usize;
        let mut at = dir;
        let mut last = dir;
        while u32::from_le_bytes(bad[at..at + 4].try_into().unwrap()) == 0x0201_4b50 {
            last = at;
            let n = usize::from(u16::from_le_bytes([bad[at + 28], bad[at + 29]]));
            let x = usize::from(u16::from_le_bytes([bad[at + 30], bad[at + 31]]));
            let c = usize::from(u16::from_le_bytes([bad[at + 32], bad[at + 33]]));
            at += 46 + n + x + c;
        }
        bad[last + 16] ^= 0xff;
        let z = on_disk(&bad);
        let plain = check_zip(z.path(), M, V).unwrap_err().to_string();
        let with = check_zip_with(z.path(), M, V, Some(&pass))
            .unwrap_err()
            .to_string();
        assert_eq!(with, plain);
        assert!(plain.contains("f39.go"), "{plain}");
    }

    #[test]
    fn a_go_mod_over_the_limit_is_not_kept() {
        let mut files = files();
        files[0].1 = vec![b'/'; MAX_GO_MOD as usize + 1];
        let bytes = zip_of(&files, true, 0);
        let pass = prehash(&bytes[..], GO_MOD);
        assert_eq!(pass.len(), files.len());
        assert!(pass.go_mod.is_none());
        let z = on_disk(&bytes);
        let e = check_zip_with(z.path(), M, V, Some(&pass)).unwrap_err();
        assert!(e.to_string().contains("go.mod file too large"), "{e}");
    }

    #[tokio::test]
    async fn chunks_of_any_size_give_the_same_pass() {
        let files = files();
        let bytes = Bytes::from(zip_of(&files, true, 4));
        let whole = prehash(&bytes[..], GO_MOD);
        for size in [1usize, 7, 4096, 100_000] {
            let (tx, task) = spawn_prehash(String::from_utf8(GO_MOD.to_vec()).unwrap());
            for chunk in bytes.chunks(size) {
                // The pass stops at the central directory and drops its end of the queue.
                if tx.send(bytes.slice_ref(chunk)).await.is_err() {
                    break;
                }
            }
            drop(tx);
            let pass = task.await.unwrap();
            assert_eq!(pass.entries, whole.entries, "chunks of {size}");
            assert_eq!(pass.go_mod, whole.go_mod, "chunks of {size}");
        }
    }

    #[test]
    fn input_that_is_not_a_zip_gives_an_empty_pass() {
        assert!(prehash(&b"not a zip at all, just some text"[..], GO_MOD).is_empty());
        assert!(prehash(&b""[..], GO_MOD).is_empty());
        // A local header cut short.
        let bytes = zip_of(&files(), true, 0);
        assert!(prehash(&bytes[..20], GO_MOD).is_empty());
    }
}
