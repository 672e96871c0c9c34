//! Sockets that count what crosses them: every client connection (FTP control and data, HTTP)
//! is a [`Counted`] stream sharing one [`Counters`] per client, so a figure covers every socket
//! an operation opened.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use serde::Serialize;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// Bytes and exchanges one client has caused, over all its sockets.
#[derive(Debug, Default)]
pub struct Counters {
    /// Application bytes written by the client.
    sent: AtomicU64,
    /// Application bytes read by the client.
    received: AtomicU64,
    /// Times the client waited for the other side: one per command and reply, request and
    /// response, and TCP handshake.
    round_trips: AtomicU64,
    /// TCP connections opened.
    connections: AtomicU64,
}

/// A copy of [`Counters`] at one moment.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
pub struct Traffic {
    pub sent: u64,
    pub received: u64,
    pub round_trips: u64,
    pub connections: u64,
}

impl Traffic {
    /// What happened between `earlier` and `self`.
    pub fn since(self, earlier: Traffic) -> Traffic {
        Traffic {
            sent: self.sent.saturating_sub(earlier.sent),
            received: self.received.saturating_sub(earlier.received),
            round_trips: self.round_trips.saturating_sub(earlier.round_trips),
            connections: self.connections.saturating_sub(earlier.connections),
        }
    }

    pub fn total(&self) -> u64 {
        self.sent + self.received
    }
}

impl Counters {
    pub fn new() -> Arc<Counters> {
        Arc::new(Counters::default())
    }

    pub fn snapshot(&self) -> Traffic {
        Traffic {
            sent: self.sent.load(Ordering::Relaxed),
            received: self.received.load(Ordering::Relaxed),
            round_trips: self.round_trips.load(Ordering::Relaxed),
            connections: self.connections.load(Ordering::Relaxed),
        }
    }

    pub fn round_trip(&self) {
        self.round_trips.fetch_add(1, Ordering::Relaxed);
    }
}

/// A TCP stream that adds what it reads and writes to shared counters.
pub struct Counted {
    inner: TcpStream,
    counters: Arc<Counters>,
}

impl Counted {
    /// Connects within `limit`, counting the connection and its handshake as a round trip.
    pub async fn connect(
        addr: SocketAddr,
        counters: &Arc<Counters>,
        limit: Duration,
    ) -> io::Result<Counted> {
        let inner = tokio::time::timeout(limit, TcpStream::connect(addr))
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, format!("connect to {addr}")))??;
        inner.set_nodelay(true)?;
        counters.connections.fetch_add(1, Ordering::Relaxed);
        counters.round_trip();
        Ok(Counted {
            inner,
            counters: Arc::clone(counters),
        })
    }

    pub fn counters(&self) -> &Arc<Counters> {
        &self.counters
    }
}

impl AsyncRead for Counted {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        let n = buf.filled().len().saturating_sub(before);
        self.counters
            .received
            .fetch_add(n as u64, Ordering::Relaxed);
        r
    }
}

impl AsyncWrite for Counted {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = &r {
            self.counters.sent.fetch_add(*n as u64, Ordering::Relaxed);
        }
        r
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Runs `fut` within `limit`, turning the timeout into an I/O error naming `what`.
pub async fn within<T>(
    limit: Duration,
    what: &str,
    fut: impl std::future::Future<Output = io::Result<T>>,
) -> io::Result<T> {
    match tokio::time::timeout(limit, fut).await {
        Ok(r) => r,
        Err(_) => Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!("{what}: no answer within {limit:?}"),
        )),
    }
}
