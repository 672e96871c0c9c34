//! Zero-copy downloads over HTTP/1.1: the kernel moves file pages to the socket (`sendfile`),
//! while hyper still frames the response.
//!
//! How: a large file body yields *placeholder* chunks that point into [`PLACEHOLDER`], a static
//! region nobody reads, and queues one [`Job`] (file, offset, length) per chunk on the
//! connection. hyper queues body chunks by reference (its writev "queue" strategy, forced on in
//! [`crate::server`]) and hands them to the connection's IO, [`SendfileIo`], which recognises a
//! placeholder slice by its address and calls `sendfile` for the matching file range instead
//! of writing the slice. Anything that does not line up is an error that closes the
//! connection; placeholder bytes are never sent. Only HTTP/1.x responses use placeholders
//! (HTTP/2 copies data into its own frames); everything else goes through the plain body.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf};
use tokio::net::TcpStream;

/// Size of one placeholder chunk (one job). It lives in .bss and is never touched, so it
/// costs address space only.
pub const PLACEHOLDER_LEN: usize = 4 << 20;
static PLACEHOLDER: [u8; PLACEHOLDER_LEN] = [0; PLACEHOLDER_LEN];

/// Bytes one `sendfile` call may move.
const STEP: usize = 4 << 20;

/// A placeholder chunk of `len` bytes (at most [`PLACEHOLDER_LEN`]).
pub fn placeholder(len: usize) -> Bytes {
    Bytes::from_static(&PLACEHOLDER[..len.min(PLACEHOLDER_LEN)])
}

/// Where `slice` starts within the placeholder region, if it lies in it.
fn placeholder_offset(slice: &[u8]) -> Option<usize> {
    let base = PLACEHOLDER.as_ptr() as usize;
    let p = slice.as_ptr() as usize;
    (p >= base && p + slice.len() <= base + PLACEHOLDER_LEN && !slice.is_empty()).then(|| p - base)
}

/// One placeholder chunk's file range.
pub struct Job {
    pub file: Arc<File>,
    pub offset: u64,
    pub len: usize,
}

/// The jobs of one connection, in the order their chunks were produced.
#[derive(Default)]
pub struct Jobs {
    /// Why a std mutex: held for a push or a peek, never across an await.
    queue: Mutex<VecDeque<Job>>,
}

impl Jobs {
    pub fn push(&self, job: Job) {
        self.lock().push_back(job);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Job>> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The connection's IO: a TCP stream whose vectored writes turn placeholder slices into
/// `sendfile` calls.
pub struct SendfileIo {
    stream: TcpStream,
    jobs: Arc<Jobs>,
    /// TCP_CORK is on: set while file bytes go out, so TCP sends only full segments and never
    /// the short tail of each sendfile call (about a fifth less CPU per GiB here, as nginx's
    /// `tcp_nopush`). Cleared as soon as no job is left, which pushes the rest out at once.
    corked: bool,
}

impl SendfileIo {
    pub fn new(stream: TcpStream, jobs: Arc<Jobs>) -> Self {
        SendfileIo {
            stream,
            jobs,
            corked: false,
        }
    }

    fn set_cork(&mut self, on: bool) -> io::Result<()> {
        if self.corked != on {
            socket2::SockRef::from(&self.stream).set_tcp_cork(on)?;
            self.corked = on;
        }
        Ok(())
    }

    /// Sends up to `len` bytes of the front job, starting `k` bytes into its chunk.
    fn poll_sendfile(
        &mut self,
        cx: &mut Context<'_>,
        k: usize,
        len: usize,
    ) -> Poll<io::Result<usize>> {
        let (file, start, job_len) = {
            let q = self.jobs.lock();
            match q.front() {
                Some(j) => (Arc::clone(&j.file), j.offset, j.len),
                None => return Poll::Ready(Err(mismatch())),
            }
        };
        if k + len != job_len {
            return Poll::Ready(Err(mismatch()));
        }
        let mut off = i64::try_from(start + k as u64).map_err(io::Error::other)?;
        let step = len.min(STEP);
        self.set_cork(true)?;
        loop {
            std::task::ready!(self.stream.poll_write_ready(cx))?;
            let sent = self.stream.try_io(Interest::WRITABLE, || {
                nix::sys::sendfile::sendfile64(&self.stream, &*file, Some(&mut off), step)
                    .map_err(io::Error::from)
            });
            match sent {
                Ok(0) => {
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "file shorter than its recorded size",
                    )))
                }
                Ok(n) => {
                    if k + n == job_len {
                        let more = {
                            let mut q = self.jobs.lock();
                            q.pop_front();
                            !q.is_empty()
                        };
                        if !more {
                            self.set_cork(false)?;
                        }
                    }
                    return Poll::Ready(Ok(n));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }
}

fn mismatch() -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        "sendfile placeholder out of step",
    )
}

impl AsyncRead for SendfileIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for SendfileIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match placeholder_offset(buf) {
            Some(k) => self.poll_sendfile(cx, k, buf.len()),
            None => Pin::new(&mut self.stream).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let first = bufs.iter().position(|b| !b.is_empty());
        let Some(first) = first else {
            return Poll::Ready(Ok(0));
        };
        if let Some(k) = placeholder_offset(&bufs[first]) {
            let len = bufs[first].len();
            return self.poll_sendfile(cx, k, len);
        }
        // Plain bytes up to the next placeholder.
        let end = bufs
            .iter()
            .position(|b| placeholder_offset(b).is_some())
            .unwrap_or(bufs.len());
        Pin::new(&mut self.stream).poll_write_vectored(cx, &bufs[..end])
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.set_cork(false)?;
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.set_cork(false)?;
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_placeholders_only() {
        let p = placeholder(100);
        assert_eq!(placeholder_offset(&p), Some(0));
        assert_eq!(placeholder_offset(&p[10..]), Some(10));
        assert_eq!(placeholder_offset(&[0u8; 100]), None);
        assert_eq!(placeholder_offset(&p[..0]), None);
        assert_eq!(placeholder(usize::MAX).len(), PLACEHOLDER_LEN);
    }

    #[tokio::test]
    async fn placeholder_chunks_become_file_bytes() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, &data).unwrap();
        let file = Arc::new(File::open(&path).unwrap());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let reader = tokio::spawn(async move {
            let mut s = TcpStream::connect(addr).await.unwrap();
            let mut out = Vec::new();
            s.read_to_end(&mut out).await.unwrap();
            out
        });
        let (stream, _) = listener.accept().await.unwrap();
        let jobs = Arc::new(Jobs::default());
        let mut io = SendfileIo::new(stream, Arc::clone(&jobs));
        // "head", then two file ranges as placeholders, then "tail".
        jobs.push(Job {
            file: Arc::clone(&file),
            offset: 5,
            len: 2_000_000,
        });
        jobs.push(Job {
            file: Arc::clone(&file),
            offset: 2_500_000,
            len: 10,
        });
        let chunks = [
            Bytes::from_static(b"head"),
            placeholder(2_000_000),
            placeholder(10),
            Bytes::from_static(b"tail"),
        ];
        for c in chunks {
            let mut c = c;
            while !c.is_empty() {
                let n = std::future::poll_fn(|cx| {
                    Pin::new(&mut io).poll_write_vectored(cx, &[IoSlice::new(&c)])
                })
                .await
                .unwrap();
                let _ = c.split_to(n);
            }
        }
        // Corked only while file bytes go out: left on, the tail of a keep-alive response
        // would wait up to 200 ms for the next one.
        assert!(jobs.lock().is_empty());
        assert!(!io.corked);
        assert!(!socket2::SockRef::from(&io.stream).tcp_cork().unwrap());
        io.shutdown().await.unwrap();
        drop(io);
        let got = reader.await.unwrap();
        let mut want = b"head".to_vec();
        want.extend_from_slice(&data[5..2_000_005]);
        want.extend_from_slice(&data[2_500_000..2_500_010]);
        want.extend_from_slice(b"tail");
        assert!(got == want);
        assert!(jobs.lock().is_empty());
        // A placeholder with no job is an error, never zeros on the wire.
        let (a, _b) = (
            tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(),
            (),
        );
        let addr = a.local_addr().unwrap();
        let _c = TcpStream::connect(addr).await.unwrap();
        let (s, _) = a.accept().await.unwrap();
        let mut io = SendfileIo::new(s, Arc::new(Jobs::default()));
        let p = placeholder(10);
        let r = std::future::poll_fn(|cx| Pin::new(&mut io).poll_write(cx, &p)).await;
        assert_eq!(r.unwrap_err().kind(), io::ErrorKind::InvalidData);
    }
}
