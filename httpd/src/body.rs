//! Bodies both ways, streamed: the response body type, and request bodies turned into the
//! store's upload streams with a size cap and a stall timeout.

use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use filegate_core::{BodyStream, ByteStream};

use http_body::{Body as _, Frame, SizeHint};
use http_body_util::BodyExt;
use hyper::body::Incoming;

use crate::sendfile::{placeholder, Job, Jobs, PLACEHOLDER_LEN};
use crate::server::InFlight;

/// Longest time an unread request body is drained after an error.
const DRAIN_TIME: Duration = Duration::from_secs(10);
/// Most bytes drained after an error.
const DRAIN_BYTES: u64 = 8 << 30;
/// Upload frames are gathered into pieces of at least this size before they go to the store.
const COALESCE: usize = 256 * 1024;
/// Piece size when a local file is read rather than sent with sendfile.
const FILE_CHUNK: u64 = 1024 * 1024;

/// Why a request body stream failed, carried inside the `io::Error` the store sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    #[error("request body larger than the configured cap")]
    TooLarge,
    #[error("request body stalled")]
    Timeout,
    #[error("request body interrupted")]
    Interrupted,
}

impl BodyError {
    fn into_io(self) -> std::io::Error {
        std::io::Error::other(self)
    }

    /// The `BodyError` inside `e` (or inside an error it wraps), if any.
    pub fn find(e: &(dyn std::error::Error + 'static)) -> Option<BodyError> {
        let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
        while let Some(err) = cur {
            if let Some(b) = err.downcast_ref::<BodyError>() {
                return Some(*b);
            }
            if let Some(io) = err.downcast_ref::<std::io::Error>() {
                if let Some(inner) = io.get_ref() {
                    if let Some(b) = inner.downcast_ref::<BodyError>() {
                        return Some(*b);
                    }
                }
            }
            cur = err.source();
        }
        None
    }
}

/// A response body: empty, one buffer, or a stream from the store.
pub struct Body {
    kind: Kind,
    /// Counts bytes sent, for the metrics.
    sent: Option<Arc<AtomicU64>>,
    /// Marks the connection busy until the body is done (for the idle timeout).
    _in_flight: Option<InFlight>,
}

enum Kind {
    Empty,
    Full(Option<Bytes>),
    Stream {
        stream: ByteStream,
        len: Option<u64>,
    },
    /// A range of a local file: sendfile placeholders on HTTP/1.x (when `jobs` is attached),
    /// otherwise read by [`file_stream`] on first poll.
    LocalFile {
        file: Arc<std::fs::File>,
        offset: u64,
        len: u64,
        jobs: Option<Arc<Jobs>>,
    },
}

impl Body {
    pub fn empty() -> Self {
        Body::from_kind(Kind::Empty)
    }

    pub fn full(data: impl Into<Bytes>) -> Self {
        let data: Bytes = data.into();
        if data.is_empty() {
            return Body::empty();
        }
        Body::from_kind(Kind::Full(Some(data)))
    }

    /// A streamed body of `len` bytes if known.
    pub fn stream(stream: ByteStream, len: Option<u64>) -> Self {
        Body::from_kind(Kind::Stream { stream, len })
    }

    fn from_kind(kind: Kind) -> Self {
        Body {
            kind,
            sent: None,
            _in_flight: None,
        }
    }

    /// `len` bytes of a local file from `offset`.
    pub fn local_file(file: Arc<std::fs::File>, offset: u64, len: u64) -> Self {
        Body::from_kind(Kind::LocalFile {
            file,
            offset,
            len,
            jobs: None,
        })
    }

    /// Attaches the byte counter, the connection's in-flight guard, and (HTTP/1.x only) the
    /// connection's sendfile jobs.
    pub(crate) fn attach(
        &mut self,
        sent: Arc<AtomicU64>,
        in_flight: InFlight,
        jobs: Option<Arc<Jobs>>,
    ) {
        self.sent = Some(sent);
        self._in_flight = Some(in_flight);
        if let Kind::LocalFile { jobs: slot, .. } = &mut self.kind {
            *slot = jobs;
        }
    }
}

impl http_body::Body for Body {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        let this = &mut *self;
        if let Kind::LocalFile {
            file,
            offset,
            len,
            jobs: None,
        } = &this.kind
        {
            // No sendfile on this connection: read the file ourselves.
            let stream = file_stream(Arc::clone(file), *offset, *len, FILE_CHUNK);
            this.kind = Kind::Stream {
                stream,
                len: Some(*len),
            };
        }
        let chunk = match &mut this.kind {
            Kind::Empty => return Poll::Ready(None),
            Kind::LocalFile {
                file,
                offset,
                len,
                jobs: Some(jobs),
            } => {
                if *len == 0 {
                    None
                } else {
                    let n = (*len).min(PLACEHOLDER_LEN as u64) as usize;
                    jobs.push(Job {
                        file: Arc::clone(file),
                        offset: *offset,
                        len: n,
                    });
                    *offset += n as u64;
                    *len -= n as u64;
                    Some(placeholder(n))
                }
            }
            Kind::LocalFile { jobs: None, .. } => None,
            Kind::Full(data) => data.take(),
            Kind::Stream { stream, .. } => loop {
                match stream.as_mut().poll_next(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(None) => break None,
                    Poll::Ready(Some(Err(e))) => {
                        tracing::warn!(error = %e, "download stream failed");
                        return Poll::Ready(Some(Err(e)));
                    }
                    Poll::Ready(Some(Ok(b))) if b.is_empty() => continue,
                    Poll::Ready(Some(Ok(b))) => break Some(b),
                }
            },
        };
        match chunk {
            Some(b) => {
                if let Some(sent) = &this.sent {
                    sent.fetch_add(b.len() as u64, Ordering::Relaxed);
                }
                Poll::Ready(Some(Ok(Frame::data(b))))
            }
            None => {
                this.kind = Kind::Empty;
                Poll::Ready(None)
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Empty => true,
            Kind::Full(d) => d.is_none(),
            Kind::Stream { len, .. } => *len == Some(0),
            Kind::LocalFile { len, .. } => *len == 0,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Empty => SizeHint::with_exact(0),
            Kind::Full(d) => SizeHint::with_exact(d.as_ref().map_or(0, |d| d.len() as u64)),
            Kind::Stream { len: Some(n), .. } => SizeHint::with_exact(*n),
            Kind::Stream { len: None, .. } => SizeHint::default(),
            Kind::LocalFile { len, .. } => SizeHint::with_exact(*len),
        }
    }
}

/// Limits on a request body.
#[derive(Debug, Clone, Copy)]
pub struct UploadLimits {
    /// Most bytes accepted; `None` for no cap.
    pub max_bytes: Option<u64>,
    /// Longest wait for the next chunk.
    pub idle: Duration,
}

/// The request body as an upload stream for the store: data frames only, counted into
/// `received`, failing with a [`BodyError`] past the cap or when it stalls.
pub fn upload_stream(
    body: Incoming,
    limits: UploadLimits,
    received: Arc<AtomicU64>,
    leftover: Option<Leftover>,
) -> BodyStream {
    struct State {
        /// Always `Some` until the state is dropped.
        body: Option<Incoming>,
        /// Gets the body back if the stream is dropped before its end.
        leftover: Option<Leftover>,
        total: u64,
        done: bool,
        /// Small frames gathered into one piece (fewer hand-offs to the store's writer).
        buf: BytesMut,
    }
    impl Drop for State {
        fn drop(&mut self) {
            if self.done {
                return;
            }
            if let (Some(body), Some(slot)) = (self.body.take(), &self.leftover) {
                if let Ok(mut slot) = slot.lock() {
                    *slot = Some(body);
                }
            }
        }
    }
    let state = State {
        body: Some(body),
        leftover,
        total: 0,
        done: false,
        buf: BytesMut::new(),
    };
    Box::pin(futures::stream::unfold(state, move |mut st| {
        let received = Arc::clone(&received);
        async move {
            if st.done {
                return None;
            }
            loop {
                let body = st.body.as_mut()?;
                let next = match tokio::time::timeout(limits.idle, body.frame()).await {
                    Err(_) => Err(BodyError::Timeout),
                    Ok(None) => {
                        st.done = true;
                        if st.buf.is_empty() {
                            return None;
                        }
                        let piece = st.buf.split().freeze();
                        return Some((Ok(piece), st));
                    }
                    Ok(Some(Err(e))) => {
                        tracing::debug!(error = %e, "request body failed");
                        Err(BodyError::Interrupted)
                    }
                    Ok(Some(Ok(frame))) => match frame.into_data() {
                        Ok(data) => Ok(data),
                        Err(_) => continue, // trailers
                    },
                };
                let data = match next {
                    Ok(data) => data,
                    Err(e) => {
                        st.done = true;
                        return Some((Err(e.into_io()), st));
                    }
                };
                st.total += data.len() as u64;
                received.fetch_add(data.len() as u64, Ordering::Relaxed);
                if limits.max_bytes.is_some_and(|max| st.total > max) {
                    st.done = true;
                    return Some((Err(BodyError::TooLarge.into_io()), st));
                }
                if st.buf.is_empty() && data.len() >= COALESCE {
                    return Some((Ok(data), st));
                }
                if st.buf.is_empty() {
                    st.buf.reserve(COALESCE);
                }
                st.buf.extend_from_slice(&data);
                if st.buf.len() >= COALESCE {
                    let piece = st.buf.split().freeze();
                    return Some((Ok(piece), st));
                }
            }
        }
    }))
}

/// Reads `len` bytes of `file` from `offset` in `chunk`-sized pieces on the blocking pool,
/// keeping the next read in flight while the current piece is sent. The reads go into fresh
/// uninitialized capacity (no zeroing), and large chunks keep the hops to the pool few. The
/// caller must be the only user of the file's cursor.
pub fn file_stream(file: Arc<std::fs::File>, offset: u64, len: u64, chunk: u64) -> ByteStream {
    use tokio::task::JoinHandle;
    struct St {
        file: Arc<std::fs::File>,
        pos: u64,
        left: u64,
        chunk: u64,
        pending: Option<JoinHandle<std::io::Result<Bytes>>>,
    }
    fn spawn_read(st: &mut St) -> JoinHandle<std::io::Result<Bytes>> {
        let n = st.left.min(st.chunk);
        let (pos, file) = (st.pos, Arc::clone(&st.file));
        st.pos += n;
        st.left -= n;
        tokio::task::spawn_blocking(move || {
            use std::io::{Read, Seek, SeekFrom};
            let want = usize::try_from(n).map_err(std::io::Error::other)?;
            let mut buf = Vec::with_capacity(want);
            let mut f = &*file;
            f.seek(SeekFrom::Start(pos))?;
            f.take(n).read_to_end(&mut buf)?;
            if buf.len() != want {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "file shorter than its recorded size",
                ));
            }
            Ok(Bytes::from(buf))
        })
    }
    let st = St {
        file,
        pos: offset,
        left: len,
        chunk: chunk.max(4096),
        pending: None,
    };
    Box::pin(futures::stream::unfold(st, |mut st| async move {
        let handle = match st.pending.take() {
            Some(h) => h,
            None if st.left > 0 => spawn_read(&mut st),
            None => return None,
        };
        let item = match handle.await {
            Ok(r) => r,
            Err(e) => Err(std::io::Error::other(e)),
        };
        match item {
            Ok(data) => {
                if st.left > 0 {
                    st.pending = Some(spawn_read(&mut st));
                }
                Some((Ok(data), st))
            }
            Err(e) => {
                st.left = 0;
                Some((Err(e), st))
            }
        }
    }))
}

/// Reads and discards what is left of a request body after an early error response, so the
/// client gets to read the response instead of a reset (like a lingering close); bounded in
/// time and bytes. A client that waits for `100 Continue` sent nothing, so nothing is read.
pub async fn drain(body: Incoming, headers: &http::HeaderMap) {
    let expects_continue = headers
        .get(http::header::EXPECT)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
    if expects_continue {
        return;
    }
    drain_unread(body).await;
}

/// Where an upload stream hands the request body back when it is dropped before the end (the
/// store stopped reading: a full disk, a failed precondition), so the handler can drain it.
pub type Leftover = Arc<std::sync::Mutex<Option<Incoming>>>;

/// Reads and discards the rest of a body whose reading already began (so `100 Continue` went
/// out), bounded in time and bytes.
pub async fn drain_unread(mut body: Incoming) {
    if body.is_end_stream() {
        return;
    }
    let deadline = tokio::time::Instant::now() + DRAIN_TIME;
    let mut total = 0u64;
    while total < DRAIN_BYTES {
        match tokio::time::timeout_at(deadline, body.frame()).await {
            Ok(Some(Ok(frame))) => {
                total += frame.data_ref().map_or(0, |d| d.len() as u64);
            }
            _ => break,
        }
    }
}

/// Concatenates streams one after another (the parts of a multipart/byteranges body).
pub fn chain(parts: Vec<ByteStream>) -> ByteStream {
    Box::pin(futures::stream::iter(parts).flatten())
}

use futures::StreamExt as _;

/// A stream that fails once with `e` (a part whose version changed under it).
pub fn failing(e: std::io::Error) -> ByteStream {
    Box::pin(futures::stream::once(async move { Err(e) }))
}

/// A single-buffer stream.
pub fn once(data: Bytes) -> ByteStream {
    Box::pin(futures::stream::once(async move { Ok(data) }))
}
