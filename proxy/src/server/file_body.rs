//! Warm zips from a local (`file://`) bucket: the body is written by the connection's own
//! writer straight from the file, on plain-HTTP/1 connections, through one reused buffer per
//! connection thread.
//!
//! hyper owns the connection and writes every response, so a file cannot be handed to it.
//! Instead the response body yields *placeholder* chunks (slices of one zeroed buffer that is
//! never read) and the connection's I/O wrapper, which sees every write hyper makes, recognizes
//! them by address and writes the same number of bytes from the file instead (a positional
//! read into the thread's buffer, then a write). hyper still does everything else: headers,
//! content length, keep-alive, HEAD, errors. A placeholder is only produced when the request
//! carries the connection's [`FileSlot`] (so its writes go through [`FileIo`]) and speaks
//! HTTP/1 (an HTTP/2 frame would be copied, zeros and all). A placeholder the wrapper cannot
//! match to a file fails the connection: zeros are never sent.
//!
//! Why not sendfile(2), which this did before: on a connection that stays on one host
//! (loopback, and a pod's veth to another pod on its node), sendfile queues page-cache pages
//! faster than the peer reads them, and the rest of the send then runs in the *reader's*
//! system calls (its window updates push our queued data), over 4 KiB fragments. perf with
//! wrk at 4 connections: 85% of all samples in wrk with sendfile, 39% with this; whole-machine
//! CPU per GiB delivered 0.61-0.70 s with sendfile, 0.49-0.64 s with this, and 1.2-1.4x the
//! bytes/s (docs/bench/results.md). sendfile used less of the proxy's own CPU (0.06-0.10 s
//! against 0.27 s per GiB), which is what it would save on a real network card; Athens and
//! most Go servers copy as this does. Reads of 512 KiB and 1 MiB measured best (256 KiB and
//! 4 MiB were 2-14% slower). A read from a file not in the page cache blocks the connection
//! thread, as sendfile did.

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use std::cell::RefCell;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::pin::Pin;
use std::sync::{Arc, LazyLock, Mutex};
use std::task::{Context, Poll, ready};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// Bytes per placeholder chunk, and so the most one write of the wrapper is asked to send.
const CHUNK: usize = 4 << 20;

/// The most one write takes from a file, and the size of each connection thread's buffer.
const COPY: usize = 1 << 20;

thread_local! {
    /// Allocated on a thread's first file write, kept for the next: no allocation per write.
    static BUFFER: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// The placeholder bytes. Allocated zeroed and never touched, so the pages are never resident.
static PLACEHOLDER: LazyLock<&'static [u8]> = LazyLock::new(|| Vec::leak(vec![0u8; CHUNK]));

fn is_placeholder(buf: &[u8]) -> bool {
    let start = PLACEHOLDER.as_ptr() as usize;
    let at = buf.as_ptr() as usize;
    !buf.is_empty() && at >= start && at + buf.len() <= start + CHUNK
}

/// The file a response on this connection is sending: where it is and how much is left.
#[derive(Debug)]
struct Pending {
    file: Arc<File>,
    offset: u64,
    remaining: u64,
}

/// One per connection: the body being sent from a file, shared by the response body (which
/// puts the file in when hyper first asks it for bytes) and the connection's writer.
#[derive(Clone, Debug, Default)]
pub struct FileSlot(Arc<Mutex<Option<Pending>>>);

impl FileSlot {
    /// A response body of `size` bytes sent from `file` on this slot's connection.
    pub fn body(&self, file: Arc<File>, size: u64) -> FileBody {
        FileBody {
            slot: self.clone(),
            file: Some(file),
            size,
            left: size,
        }
    }
}

/// A response body whose bytes come from a file through [`FileIo`].
pub struct FileBody {
    slot: FileSlot,
    file: Option<Arc<File>>,
    size: u64,
    left: u64,
}

impl Body for FileBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        if let Some(file) = self.file.take() {
            let pending = Pending {
                file,
                offset: 0,
                remaining: self.size,
            };
            match self.slot.0.lock() {
                Ok(mut s) => *s = Some(pending),
                Err(_) => return Poll::Ready(Some(Err(io::Error::other("file slot poisoned")))),
            }
        }
        if self.left == 0 {
            return Poll::Ready(None);
        }
        let n = self.left.min(CHUNK as u64) as usize;
        self.left -= n as u64;
        let placeholder: &'static [u8] = &PLACEHOLDER[..n];
        Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(placeholder)))))
    }

    fn is_end_stream(&self) -> bool {
        self.left == 0
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.left)
    }
}

/// A plain TCP connection as hyper sees it: reads and ordinary writes pass through; runs of
/// placeholder bytes are written from the slot's file.
pub struct FileIo {
    tcp: TcpStream,
    slot: FileSlot,
}

impl FileIo {
    pub fn new(tcp: TcpStream, slot: FileSlot) -> Self {
        Self { tcp, slot }
    }

    /// Writes up to `want` bytes of the pending file.
    fn poll_file(&mut self, cx: &mut Context<'_>, want: usize) -> Poll<io::Result<usize>> {
        let mut guard = self
            .slot
            .0
            .lock()
            .map_err(|_| io::Error::other("file slot poisoned"))?;
        let Some(p) = guard.as_mut().filter(|p| p.remaining > 0) else {
            return Poll::Ready(Err(io::Error::other(
                "response body placeholder without a file to write",
            )));
        };
        let want = want
            .min(COPY)
            .min(usize::try_from(p.remaining).unwrap_or(usize::MAX));
        loop {
            ready!(self.tcp.poll_write_ready(cx))?;
            // What the socket does not take now is read again on the next call: the buffer is
            // the thread's, not the connection's, so memory stays one buffer per thread.
            let sent = BUFFER.with_borrow_mut(|buf| {
                if buf.len() < want {
                    buf.resize(want, 0);
                }
                let got = p.file.read_at(&mut buf[..want], p.offset)?;
                if got == 0 {
                    return Ok(0);
                }
                self.tcp.try_write(&buf[..got])
            });
            match sent {
                // The file is shorter than its size said: never pad, fail the connection.
                Ok(0) => {
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "file ended before its size",
                    )));
                }
                Ok(n) => {
                    p.offset += n as u64;
                    p.remaining -= n as u64;
                    return Poll::Ready(Ok(n));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

impl AsyncRead for FileIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_read(cx, buf)
    }
}

impl AsyncWrite for FileIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.poll_write_vectored(cx, &[io::IoSlice::new(buf)])
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match bufs.iter().position(|b| is_placeholder(b)) {
            None => Pin::new(&mut self.tcp).poll_write_vectored(cx, bufs),
            // Ordinary bytes (headers) before the file's: those first, the file on the next call.
            Some(k) if k > 0 => Pin::new(&mut self.tcp).poll_write_vectored(cx, &bufs[..k]),
            Some(_) => {
                let run: usize = bufs
                    .iter()
                    .take_while(|b| is_placeholder(b))
                    .map(|b| b.len())
                    .sum();
                self.poll_file(cx, run)
            }
        }
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_slices_of_the_placeholder_are_placeholders() {
        assert!(is_placeholder(&PLACEHOLDER[..10]));
        assert!(is_placeholder(&PLACEHOLDER[CHUNK - 1..]));
        assert!(!is_placeholder(&PLACEHOLDER[..0]));
        let other = vec![0u8; 16];
        assert!(!is_placeholder(&other));
    }

    /// A connected pair: the proxy's side wrapped as hyper sees it, and the reader's side.
    async fn pair(slot: FileSlot) -> (FileIo, TcpStream) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let reader = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (ours, _) = listener.accept().await.unwrap();
        (FileIo::new(ours, slot), reader)
    }

    fn file_of(bytes: &[u8]) -> Arc<File> {
        let mut f = tempfile::tempfile().unwrap();
        std::io::Write::write_all(&mut f, bytes).unwrap();
        Arc::new(f)
    }

    fn pending(slot: &FileSlot, file: Arc<File>, size: u64) {
        *slot.0.lock().unwrap() = Some(Pending {
            file,
            offset: 0,
            remaining: size,
        });
    }

    #[tokio::test]
    async fn placeholders_become_the_file_s_bytes_across_several_buffers() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let want: Vec<u8> = (0..COPY * 2 + 12345)
            .map(|i| (i * 31 % 251) as u8)
            .collect();
        let slot = FileSlot::default();
        pending(&slot, file_of(&want), want.len() as u64);
        let (mut ours, mut reader) = pair(slot).await;
        let read = tokio::spawn(async move {
            let mut got = Vec::new();
            reader.read_to_end(&mut got).await.unwrap();
            got
        });
        ours.write_all(b"head ").await.unwrap();
        let mut left = want.len();
        while left > 0 {
            let n = left.min(CHUNK);
            ours.write_all(&PLACEHOLDER[..n]).await.unwrap();
            left -= n;
        }
        ours.shutdown().await.unwrap();
        drop(ours);
        let got = read.await.unwrap();
        assert_eq!(&got[..5], b"head ");
        assert!(got[5..] == want[..], "the file's bytes, in order, once");
    }

    #[tokio::test]
    async fn a_file_shorter_than_its_size_fails_the_write_and_sends_no_padding() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let slot = FileSlot::default();
        pending(&slot, file_of(b"only this"), 100);
        let (mut ours, mut reader) = pair(slot).await;
        let err = ours.write_all(&PLACEHOLDER[..100]).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
        drop(ours);
        let mut got = Vec::new();
        reader.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"only this");
    }

    #[tokio::test]
    async fn a_placeholder_without_a_file_fails_the_write() {
        use tokio::io::AsyncWriteExt;
        let (mut ours, _reader) = pair(FileSlot::default()).await;
        assert!(ours.write_all(&PLACEHOLDER[..10]).await.is_err());
    }
}
