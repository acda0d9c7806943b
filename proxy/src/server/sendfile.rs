//! Zero-copy zips: the body of a zip from a local (`file://`) bucket goes from the page cache
//! to the socket with sendfile(2), on plain-HTTP/1 connections (Linux).
//!
//! hyper owns the connection and writes every response, so a file cannot be handed to it.
//! Instead the response body yields *placeholder* chunks (slices of one zeroed buffer that is
//! never read) and the connection's I/O wrapper, which sees every write hyper makes, recognizes
//! them by address and sends the same number of bytes from the file instead. hyper still does
//! everything else: headers, content length, keep-alive, HEAD, errors. A placeholder is only
//! produced when the request carries the connection's [`FileSlot`] (so its writes go through
//! [`SendfileIo`]) and speaks HTTP/1 (an HTTP/2 frame would be copied, zeros and all). A
//! placeholder the wrapper cannot match to a file fails the connection: zeros are never sent.
//!
//! Why: copying a zip through user space (read into a buffer, write from it) cost four times
//! what nginx's sendfile does on the same machine (docs/bench/results.md).

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use std::fs::File;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, LazyLock, Mutex};
use std::task::{Context, Poll, ready};
use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf};
use tokio::net::TcpStream;

/// Bytes per placeholder chunk, and so the most one sendfile call is asked to send.
const CHUNK: usize = 4 << 20;

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

/// A response body whose bytes come from a file through [`SendfileIo`].
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
/// placeholder bytes are sent from the slot's file with sendfile(2).
pub struct SendfileIo {
    tcp: TcpStream,
    slot: FileSlot,
}

impl SendfileIo {
    pub fn new(tcp: TcpStream, slot: FileSlot) -> Self {
        Self { tcp, slot }
    }

    /// Sends up to `want` bytes of the pending file.
    fn poll_sendfile(&mut self, cx: &mut Context<'_>, want: usize) -> Poll<io::Result<usize>> {
        let mut guard = self
            .slot
            .0
            .lock()
            .map_err(|_| io::Error::other("file slot poisoned"))?;
        let Some(p) = guard.as_mut().filter(|p| p.remaining > 0) else {
            return Poll::Ready(Err(io::Error::other(
                "response body placeholder without a file to send",
            )));
        };
        let want = want.min(usize::try_from(p.remaining).unwrap_or(usize::MAX));
        loop {
            ready!(self.tcp.poll_write_ready(cx))?;
            let sent = self.tcp.try_io(Interest::WRITABLE, || {
                rustix::fs::sendfile(&self.tcp, &p.file, Some(&mut p.offset), want)
                    .map_err(io::Error::from)
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
                    p.remaining -= n as u64;
                    return Poll::Ready(Ok(n));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

impl AsyncRead for SendfileIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.tcp).poll_read(cx, buf)
    }
}

impl AsyncWrite for SendfileIo {
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
                self.poll_sendfile(cx, run)
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
}
