//! Data connections and transfers: passive ports (PASV/EPSV), active connects (PORT/EPRT),
//! downloads (sendfile for large binary files), uploads (streamed into one atomic store write),
//! and TYPE A line-end conversion both ways.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use filegate_core::{BodyStream, ReadHandle, Storage};
use futures::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt, Interest};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::time::timeout;
use tokio_util::sync::CancellationToken;

use crate::config::PortRange;
use crate::session::{Direction, Source, TransferResult};

/// Downloads at least this long, in binary mode, go through sendfile instead of the body
/// stream (smaller bodies are already in memory when the download opens).
const SENDFILE_MIN: u64 = 64 * 1024;
/// Bodies up to this size go out in one non-blocking send when the connection is fresh.
const SMALL_BODY: u64 = 64 * 1024;
/// Bytes one sendfile call may move.
const SENDFILE_STEP: usize = 8 << 20;
/// Upload read size: large reads keep the per-GiB cost low.
const UPLOAD_CHUNK: usize = 256 * 1024;
/// Connections from the wrong address a passive port skips before giving up.
const MAX_STRAY_CONNECTIONS: usize = 16;

/// Hands out passive ports from the configured range, rotating so a just-closed port is the
/// last to be tried again.
#[derive(Debug)]
pub struct PortPool {
    range: PortRange,
    /// Where the next search starts (an offset into the range).
    next: AtomicU32,
    /// Listeners bound from the range and still open (armed, or kept for reuse).
    held: Arc<AtomicU32>,
}

/// A listener bound from a [`PortPool`], counted as held until it is closed.
#[derive(Debug)]
pub struct PassiveListener {
    listener: std::net::TcpListener,
    held: Arc<AtomicU32>,
}

impl std::ops::Deref for PassiveListener {
    type Target = std::net::TcpListener;
    fn deref(&self) -> &std::net::TcpListener {
        &self.listener
    }
}

impl Drop for PassiveListener {
    fn drop(&mut self) {
        self.held.fetch_sub(1, Ordering::Relaxed);
    }
}

impl PortPool {
    pub fn new(range: PortRange) -> PortPool {
        PortPool {
            range,
            next: AtomicU32::new(0),
            held: Arc::new(AtomicU32::new(0)),
        }
    }

    /// Whether more than three quarters of the range is held: sessions then give their port
    /// back after each transfer instead of keeping it for the next, so that a range smaller
    /// than the number of busy sessions is shared among them rather than kept by the first.
    pub fn scarce(&self) -> bool {
        u64::from(self.held.load(Ordering::Relaxed)) * 4 > u64::from(self.range.len()) * 3
    }

    /// Binds a non-blocking listener on `ip` at a free port of the range; returns it with its
    /// port. It is not on any reactor: most clients connect before the transfer command, and
    /// then one plain `accept` takes the connection without registering anything.
    pub fn bind(&self, ip: IpAddr) -> io::Result<(PassiveListener, u16)> {
        let n = self.range.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed) % n;
        let mut last_err = io::Error::new(io::ErrorKind::AddrInUse, "no free passive port");
        for i in 0..n {
            let port = u32::from(self.range.first) + (start + i) % n;
            let Ok(port) = u16::try_from(port) else {
                continue;
            };
            match bind_one(SocketAddr::new(ip, port)) {
                Ok(listener) => {
                    self.next.store((start + i + 1) % n, Ordering::Relaxed);
                    self.held.fetch_add(1, Ordering::Relaxed);
                    let held = Arc::clone(&self.held);
                    return Ok((PassiveListener { listener, held }, port));
                }
                Err(e) => last_err = e,
            }
        }
        Err(last_err)
    }
}

fn bind_one(addr: SocketAddr) -> io::Result<std::net::TcpListener> {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM.nonblocking(), None)?;
    // Lets a port be reused while old data connections on it sit in TIME_WAIT; a port with a
    // live listener still refuses the bind.
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(8)?;
    Ok(socket.into())
}

/// How the data connection of one transfer is made.
#[derive(Debug)]
pub enum Plan {
    /// Accept on this (non-blocking) listener, only from the control peer. Shared: the
    /// connection keeps the listener for the session's next PASV/EPSV.
    Passive(Arc<PassiveListener>),
    /// Connect to this address (already checked to be the control peer's).
    Active(SocketAddr),
    /// No usable setup (the passive port was lost).
    Missing,
}

/// What a transfer needs besides its plan and direction.
pub struct TransferCtx {
    /// The control connection's peer: the only address a data connection may be with.
    pub peer_ip: IpAddr,
    /// The control connection's local address: active connections start from it.
    pub local_ip: IpAddr,
    /// For opening the data connection and for every step of progress.
    pub timeout: Duration,
    pub storage: Arc<dyn Storage>,
    /// Cancelled by ABOR during an upload: the body ends with an error, nothing is published.
    pub cancel: CancellationToken,
    /// Bytes moved so far (for STAT during a transfer and the transfer log).
    pub bytes: Arc<AtomicU64>,
}

/// An open data connection: fresh from `accept` (blocking mode, on no reactor) or on the
/// runtime's reactor.
enum Conn {
    Fresh(std::net::TcpStream),
    Async(TcpStream),
}

impl Conn {
    /// The connection on the reactor, for anything that may have to wait.
    fn into_async(self) -> io::Result<TcpStream> {
        match self {
            Conn::Async(s) => Ok(s),
            Conn::Fresh(s) => {
                s.set_nonblocking(true)?;
                TcpStream::from_std(s)
            }
        }
    }
}

/// Accepts and drops whatever connected to a reused passive port since its last transfer (a
/// client that abandoned a data connection), so the next transfer gets the client's new one.
pub fn drain_stale(listener: &std::net::TcpListener) {
    for _ in 0..MAX_STRAY_CONNECTIONS {
        match listener.accept() {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    }
}

/// Whether a passive data connection comes from the control connection's client.
fn from_peer(from: &SocketAddr, ctx: &TransferCtx) -> bool {
    if from.ip().to_canonical() == ctx.peer_ip.to_canonical() {
        return true;
    }
    // Someone else raced for the port (data connection theft): refuse them.
    tracing::warn!(%from, "refused a passive data connection from another address");
    false
}

fn too_many_strays() -> io::Error {
    io::Error::new(
        io::ErrorKind::PermissionDenied,
        "too many foreign connections",
    )
}

/// Opens the data connection. No TCP_NODELAY: every send is one large write followed by FIN,
/// which Nagle never delays.
async fn open(plan: Plan, ctx: &TransferCtx) -> io::Result<Conn> {
    match plan {
        Plan::Passive(listener) => {
            let mut strays = 0;
            // Usually the client is already connected: take it without touching the reactor.
            loop {
                match listener.accept() {
                    Ok((s, from)) if from_peer(&from, ctx) => return Ok(Conn::Fresh(s)),
                    Ok(_) => {
                        strays += 1;
                        if strays >= MAX_STRAY_CONNECTIONS {
                            return Err(too_many_strays());
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
            // The wait needs the reactor: register a duplicate, dropped (and deregistered) after.
            let listener = TcpListener::from_std(listener.try_clone()?)?;
            let deadline = tokio::time::Instant::now() + ctx.timeout;
            loop {
                let (s, from) = tokio::time::timeout_at(deadline, listener.accept())
                    .await
                    .map_err(|_| {
                        io::Error::new(io::ErrorKind::TimedOut, "no data connection came")
                    })??;
                if from_peer(&from, ctx) {
                    return Ok(Conn::Async(s));
                }
                strays += 1;
                if strays >= MAX_STRAY_CONNECTIONS {
                    return Err(too_many_strays());
                }
            }
        }
        Plan::Active(to) => {
            let socket = if to.is_ipv4() {
                TcpSocket::new_v4()?
            } else {
                TcpSocket::new_v6()?
            };
            let from_ip = match (ctx.local_ip, to) {
                (IpAddr::V6(v6), SocketAddr::V4(_)) => v6.to_ipv4_mapped().map(IpAddr::V4),
                (ip @ IpAddr::V4(_), SocketAddr::V4(_))
                | (ip @ IpAddr::V6(_), SocketAddr::V6(_)) => Some(ip),
                (IpAddr::V4(_), SocketAddr::V6(_)) => None,
            };
            if let Some(ip) = from_ip {
                socket.bind(SocketAddr::new(ip, 0))?;
            }
            let s = timeout(ctx.timeout, socket.connect(to))
                .await
                .map_err(|_| {
                    io::Error::new(io::ErrorKind::TimedOut, "data connection timed out")
                })??;
            Ok(Conn::Async(s))
        }
        Plan::Missing => Err(io::Error::new(io::ErrorKind::NotConnected, "no data port")),
    }
}

/// Runs one transfer on a data connection made as `plan` says.
pub async fn run(
    plan: Plan,
    direction: Direction,
    ascii: bool,
    ctx: TransferCtx,
) -> TransferResult {
    let conn = match open(plan, &ctx).await {
        Ok(c) => c,
        Err(e) => return TransferResult::NoConnection(e),
    };
    match direction {
        Direction::Send(source) => match send(conn, source, ascii, &ctx).await {
            Ok(bytes) => TransferResult::Sent { bytes },
            Err(e) => TransferResult::Failed(e),
        },
        Direction::Receive {
            store_path,
            mode,
            precondition,
        } => {
            let stream = match conn.into_async() {
                Ok(s) => s,
                Err(e) => return TransferResult::NoConnection(e),
            };
            let body = receive_body(stream, ascii, &ctx);
            let result = ctx
                .storage
                .write(&store_path, mode, precondition, body)
                .await;
            TransferResult::Stored {
                result,
                bytes: ctx.bytes.load(Ordering::Relaxed),
            }
        }
    }
}

fn timed_out() -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, "data connection stalled")
}

async fn write_timed(stream: &mut TcpStream, data: &[u8], ctx: &TransferCtx) -> io::Result<()> {
    timeout(ctx.timeout, stream.write_all(data))
        .await
        .map_err(|_| timed_out())??;
    ctx.bytes.fetch_add(data.len() as u64, Ordering::Relaxed);
    Ok(())
}

async fn send(conn: Conn, source: Source, ascii: bool, ctx: &TransferCtx) -> io::Result<u64> {
    // Small bodies (listings, files the store read whole when opening them) on a fresh
    // connection: one non-blocking send and FIN, never registering the socket with the reactor.
    let (conn, source, pending) = match (conn, source) {
        (Conn::Fresh(s), Source::Listing(bytes)) => match send_now(s, &bytes, ctx)? {
            None => return Ok(ctx.bytes.load(Ordering::Relaxed)),
            Some((s, sent)) => (Conn::Fresh(s), None, tail(bytes, sent)),
        },
        (Conn::Fresh(s), Source::File(mut handle)) if handle.len <= SMALL_BODY => {
            let mut data = Vec::new();
            let mut conv = ToCrlf::default();
            while let Some(chunk) = handle.body.next().await {
                let chunk = chunk?;
                if ascii {
                    conv.convert(&chunk, &mut data);
                } else {
                    data.extend_from_slice(&chunk);
                }
            }
            match send_now(s, &data, ctx)? {
                None => return Ok(ctx.bytes.load(Ordering::Relaxed)),
                Some((s, sent)) => (Conn::Fresh(s), None, tail(data, sent)),
            }
        }
        (conn, source) => (conn, Some(source), Vec::new()),
    };
    let mut stream = conn.into_async()?;
    if !pending.is_empty() {
        write_timed(&mut stream, &pending, ctx).await?;
    }
    match source {
        Some(Source::Listing(bytes)) => write_timed(&mut stream, &bytes, ctx).await?,
        Some(Source::File(handle)) => send_file(&mut stream, handle, ascii, ctx).await?,
        None => {}
    }
    // FIN: the client's end-of-file.
    timeout(ctx.timeout, stream.shutdown())
        .await
        .map_err(|_| timed_out())??;
    Ok(ctx.bytes.load(Ordering::Relaxed))
}

/// The part of `data` from `sent` on.
fn tail(mut data: Vec<u8>, sent: usize) -> Vec<u8> {
    data.drain(..sent.min(data.len()));
    data
}

/// Sends `data` without waiting (MSG_DONTWAIT on the fresh, blocking-mode socket) and, once all
/// of it went, closes the sending side. If the socket buffer fills first, returns the socket
/// and how much went.
fn send_now(
    s: std::net::TcpStream,
    data: &[u8],
    ctx: &TransferCtx,
) -> io::Result<Option<(std::net::TcpStream, usize)>> {
    let mut sent = 0;
    while sent < data.len() {
        // MSG_MORE holds a short tail back for the FIN that follows (here, or after the async
        // path's last write), so data and FIN leave as one segment and the client acks once.
        let flags = libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL | libc::MSG_MORE;
        match socket2::SockRef::from(&s).send_with_flags(&data[sent..], flags) {
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::WriteZero,
                    "data connection closed",
                ))
            }
            Ok(n) => {
                sent += n;
                ctx.bytes.fetch_add(n as u64, Ordering::Relaxed);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(Some((s, sent))),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    s.shutdown(std::net::Shutdown::Write)?;
    Ok(None)
}

async fn send_file(
    stream: &mut TcpStream,
    handle: ReadHandle,
    ascii: bool,
    ctx: &TransferCtx,
) -> io::Result<()> {
    if !ascii && handle.len >= SENDFILE_MIN {
        if let Some(file) = handle.local_file.as_deref() {
            return sendfile_all(stream, file, handle.offset, handle.len, ctx).await;
        }
    }
    let mut body = handle.body;
    let mut conv = ToCrlf::default();
    let mut out = Vec::new();
    while let Some(chunk) = body.next().await {
        let chunk = chunk?;
        if ascii {
            out.clear();
            conv.convert(&chunk, &mut out);
            write_timed(stream, &out, ctx).await?;
        } else {
            write_timed(stream, &chunk, ctx).await?;
        }
    }
    Ok(())
}

/// The kernel copies from the file to the socket; the task only waits for writability.
async fn sendfile_all(
    stream: &mut TcpStream,
    file: &std::fs::File,
    offset: u64,
    len: u64,
    ctx: &TransferCtx,
) -> io::Result<()> {
    let mut off = i64::try_from(offset).map_err(io::Error::other)?;
    let mut left = len;
    // Corked, TCP sends only full segments, never the short tail of each sendfile step: about
    // a fifth less CPU per GiB here, and faster. Uncorked after the last step, which pushes
    // out what is left at once.
    let _ = socket2::SockRef::from(&*stream).set_tcp_cork(true);
    while left > 0 {
        timeout(ctx.timeout, stream.writable())
            .await
            .map_err(|_| timed_out())??;
        let step = usize::try_from(left)
            .unwrap_or(SENDFILE_STEP)
            .min(SENDFILE_STEP);
        let sent = stream.try_io(Interest::WRITABLE, || {
            nix::sys::sendfile::sendfile64(&*stream, file, Some(&mut off), step)
                .map_err(io::Error::from)
        });
        match sent {
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "file shorter than its size",
                ))
            }
            Ok(n) => {
                left -= n as u64;
                ctx.bytes.fetch_add(n as u64, Ordering::Relaxed);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    socket2::SockRef::from(&*stream).set_tcp_cork(false)?;
    Ok(())
}

/// How long an upload waits after its data connection's EOF for a sign that the client died.
const CLIENT_GONE_GRACE: Duration = Duration::from_millis(5);

fn aborted() -> io::Error {
    io::Error::new(io::ErrorKind::Interrupted, "transfer aborted")
}

/// The upload body: the data connection's bytes until EOF, converted from CR LF in TYPE A; an
/// error item (ABOR, stall, reset) makes the store keep the previous version.
fn receive_body(stream: TcpStream, ascii: bool, ctx: &TransferCtx) -> BodyStream {
    struct State {
        stream: TcpStream,
        buf: BytesMut,
        conv: Option<FromCrlf>,
        done: bool,
        cancel: CancellationToken,
        limit: Duration,
        bytes: Arc<AtomicU64>,
    }
    let state = State {
        stream,
        buf: BytesMut::new(),
        conv: ascii.then(FromCrlf::default),
        done: false,
        cancel: ctx.cancel.clone(),
        limit: ctx.timeout,
        bytes: Arc::clone(&ctx.bytes),
    };
    Box::pin(futures::stream::unfold(state, |mut st| async move {
        if st.done {
            return None;
        }
        st.buf.reserve(UPLOAD_CHUNK);
        let read = tokio::select! {
            biased;
            _ = st.cancel.cancelled() => Err(aborted()),
            r = timeout(st.limit, st.stream.read_buf(&mut st.buf)) => r.unwrap_or_else(|_| Err(timed_out())),
        };
        match read {
            Ok(0) => {
                // In stream mode EOF means "complete", but a client that dies closes its data
                // connection too, and its control connection at the same instant. A moment's
                // wait lets the control loop see that close and cancel before anything is
                // published; a live client is waiting for the 226 and loses only the moment.
                let _ = timeout(CLIENT_GONE_GRACE, st.cancel.cancelled()).await;
                if st.cancel.is_cancelled() {
                    st.done = true;
                    return Some((Err(aborted()), st));
                }
                st.done = true;
                let tail = st.conv.as_mut().map(FromCrlf::finish).unwrap_or_default();
                Some((Ok(Bytes::from(tail)), st))
            }
            Ok(n) => {
                st.bytes.fetch_add(n as u64, Ordering::Relaxed);
                let raw = st.buf.split().freeze();
                let chunk = match st.conv.as_mut() {
                    Some(c) => {
                        let mut out = Vec::with_capacity(raw.len());
                        c.convert(&raw, &mut out);
                        Bytes::from(out)
                    }
                    None => raw,
                };
                Some((Ok(chunk), st))
            }
            Err(e) => {
                st.done = true;
                Some((Err(e), st))
            }
        }
    }))
}

/// TYPE A downloads: a bare LF becomes CR LF (an existing CR LF stays as it is).
#[derive(Debug, Default)]
pub struct ToCrlf {
    /// The previous byte (possibly of the previous chunk) was CR.
    last_cr: bool,
}

impl ToCrlf {
    pub fn convert(&mut self, input: &[u8], out: &mut Vec<u8>) {
        out.reserve(input.len() + input.len() / 16);
        for &b in input {
            if b == b'\n' && !self.last_cr {
                out.push(b'\r');
            }
            out.push(b);
            self.last_cr = b == b'\r';
        }
    }
}

/// TYPE A uploads: CR LF becomes LF; a CR not followed by LF stays.
#[derive(Debug, Default)]
pub struct FromCrlf {
    /// A CR ended the previous chunk; it is dropped if the next byte is LF.
    pending_cr: bool,
}

impl FromCrlf {
    pub fn convert(&mut self, input: &[u8], out: &mut Vec<u8>) {
        for &b in input {
            if self.pending_cr {
                self.pending_cr = false;
                if b != b'\n' {
                    out.push(b'\r');
                }
            }
            if b == b'\r' {
                self.pending_cr = true;
            } else {
                out.push(b);
            }
        }
    }

    /// The bytes held back at the end of the upload.
    pub fn finish(&mut self) -> Vec<u8> {
        if std::mem::take(&mut self.pending_cr) {
            vec![b'\r']
        } else {
            Vec::new()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn to_crlf(chunks: &[&[u8]]) -> Vec<u8> {
        let mut c = ToCrlf::default();
        let mut out = Vec::new();
        for ch in chunks {
            c.convert(ch, &mut out);
        }
        out
    }

    fn from_crlf(chunks: &[&[u8]]) -> Vec<u8> {
        let mut c = FromCrlf::default();
        let mut out = Vec::new();
        for ch in chunks {
            c.convert(ch, &mut out);
        }
        out.extend(c.finish());
        out
    }

    #[test]
    fn ascii_download_conversion() {
        assert_eq!(to_crlf(&[b"a\nb\n"]), b"a\r\nb\r\n");
        assert_eq!(to_crlf(&[b"a\r\nb"]), b"a\r\nb");
        assert_eq!(to_crlf(&[b"a\r", b"\nb\n"]), b"a\r\nb\r\n");
        assert_eq!(to_crlf(&[b"", b"\n"]), b"\r\n");
    }

    #[test]
    fn ascii_upload_conversion() {
        assert_eq!(from_crlf(&[b"a\r\nb\r\n"]), b"a\nb\n");
        assert_eq!(from_crlf(&[b"a\r", b"\nb"]), b"a\nb");
        assert_eq!(from_crlf(&[b"a\rb\r"]), b"a\rb\r");
        assert_eq!(from_crlf(&[b"a\n"]), b"a\n");
    }

    #[test]
    fn conversions_round_trip_unix_text() {
        let text: &[u8] = b"line one\nline two\n\nend";
        let wire = to_crlf(&[&text[..5], &text[5..]]);
        assert_eq!(from_crlf(&[&wire[..9], &wire[9..]]), text);
    }

    #[tokio::test]
    async fn port_pool_skips_busy_ports_and_wraps() {
        let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = busy.local_addr().unwrap().port();
        let range = PortRange {
            first: port,
            last: port,
        };
        let pool = PortPool::new(range);
        assert!(pool.bind("127.0.0.1".parse().unwrap()).is_err());
        drop(busy);
        let (l, got) = pool.bind("127.0.0.1".parse().unwrap()).unwrap();
        assert!(l.accept().is_err(), "non-blocking: nothing to accept");
        assert_eq!(got, port);
        assert_eq!(l.local_addr().unwrap().port(), port);
    }
}
