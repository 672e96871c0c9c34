//! The accept loop and the per-connection driver: connections handed round robin to
//! single-thread worker runtimes, a connection limit taken before `accept`,
//! hyper-util's auto builder (HTTP/1.1 keep-alive and h2c with prior knowledge) with header
//! limits and a header read timeout, an idle timeout for keep-alive connections, and graceful
//! shutdown that lets requests in flight finish.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use filegate_core::metrics::GaugeGuard;
use filegate_core::workers::WorkerPool;
use hyper::body::Incoming;
use hyper::{Request, Version};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::routing::Gateway;
use crate::sendfile::{Jobs, SendfileIo};
use crate::HttpConfig;

/// Header fields hyper parses into a fixed array when no count limit is set (a limit makes it
/// size a vector on every request instead). The configured count is checked in routing.
const HYPER_HEADERS: usize = 100;
/// Largest read of a connection (hyper's buffer).
const READ_BUFFER: usize = 256 * 1024;

/// What a connection's idle timer watches: requests in flight and the last activity.
pub struct Activity {
    /// Requests whose response (body included) is not finished.
    in_flight: AtomicUsize,
    /// Milliseconds after `start` of the last request start or response end.
    last: AtomicU64,
    start: Instant,
}

impl Activity {
    fn new() -> Self {
        Activity {
            in_flight: AtomicUsize::new(0),
            last: AtomicU64::new(0),
            start: Instant::now(),
        }
    }

    fn touch(&self) {
        let ms = self.start.elapsed().as_millis() as u64;
        self.last.store(ms, Ordering::Relaxed);
    }

    /// How long the connection has had nothing in flight (zero while busy).
    fn idle_for(&self) -> Duration {
        if self.in_flight.load(Ordering::Relaxed) > 0 {
            return Duration::ZERO;
        }
        let last = Duration::from_millis(self.last.load(Ordering::Relaxed));
        self.start.elapsed().saturating_sub(last)
    }
}

/// Marks one request in flight until dropped (it travels inside the response body).
pub struct InFlight(Arc<Activity>);

impl InFlight {
    fn new(a: &Arc<Activity>) -> Self {
        a.in_flight.fetch_add(1, Ordering::Relaxed);
        a.touch();
        InFlight(Arc::clone(a))
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.touch();
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Serves `listener` until `shutdown`, then waits for every connection to finish.
pub async fn serve(
    listener: TcpListener,
    shutdown: CancellationToken,
    gateway: Gateway,
    config: &HttpConfig,
) -> std::io::Result<()> {
    let builder = Arc::new(builder(config));
    let limit = Arc::new(Semaphore::new(config.max_connections.max(1)));
    let idle = Duration::from_secs(config.keep_alive_idle_secs.max(1));
    let tracker = TaskTracker::new();
    let mut workers = WorkerPool::start("http", config.worker_threads);
    loop {
        let permit = tokio::select! {
            _ = shutdown.cancelled() => break,
            p = Arc::clone(&limit).acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
        };
        let (stream, peer) = tokio::select! {
            _ = shutdown.cancelled() => break,
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    // EMFILE and friends: wait a little instead of spinning.
                    tracing::warn!(error = %e, "http accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let (builder, gateway, shutdown) =
            (Arc::clone(&builder), gateway.clone(), shutdown.clone());
        workers.spawn_connection(&tracker, stream, move |stream| {
            connection(builder, stream, peer, gateway, shutdown, permit, idle)
        });
    }
    drop(listener);
    tracker.close();
    tracker.wait().await;
    drop(workers);
    Ok(())
}

fn builder(config: &HttpConfig) -> auto::Builder<TokioExecutor> {
    let mut b = auto::Builder::new(TokioExecutor::new());
    b.http1()
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(config.header_read_timeout_secs.max(1)))
        // hyper's read buffer bounds the request head too; kept large so request bodies are
        // read in large pieces (16 KiB reads cost a third more CPU per uploaded GiB). The
        // configured head limit is checked in routing.
        .max_buf_size(config.max_header_bytes.max(READ_BUFFER))
        // Queue body chunks by reference (never copy them): sendfile placeholders rely on it.
        .writev(true)
        .keep_alive(true);
    if config.max_headers > HYPER_HEADERS {
        b.http1().max_headers(config.max_headers);
    }
    b.http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(config.h2_max_concurrent_streams)
        .max_header_list_size(u32::try_from(config.max_header_bytes).unwrap_or(u32::MAX))
        .keep_alive_interval(None);
    b
}

async fn connection(
    builder: Arc<auto::Builder<TokioExecutor>>,
    stream: TcpStream,
    peer: SocketAddr,
    gateway: Gateway,
    shutdown: CancellationToken,
    _permit: OwnedSemaphorePermit,
    idle: Duration,
) {
    let gauges = Arc::clone(&gateway.services().gauges);
    let _gauge = GaugeGuard::new(&gauges.http_connections);
    let activity = Arc::new(Activity::new());
    let jobs = Arc::new(Jobs::default());
    let sendfile = gateway.config().sendfile;
    let service = {
        let activity = Arc::clone(&activity);
        let jobs = Arc::clone(&jobs);
        hyper::service::service_fn(move |req: Request<Incoming>| {
            let gateway = gateway.clone();
            let in_flight = InFlight::new(&activity);
            // HTTP/2 copies data into its frames: placeholders are for HTTP/1.x only.
            let h1 = req.version() <= Version::HTTP_11;
            let jobs = (sendfile && h1).then(|| Arc::clone(&jobs));
            async move {
                let mut resp = gateway.handle(req, peer).await;
                let sent = Arc::clone(&gateway.metrics().sent);
                resp.body_mut().attach(sent, in_flight, jobs);
                Ok::<_, Infallible>(resp)
            }
        })
    };
    let io = SendfileIo::new(stream, jobs);
    let conn = builder.serve_connection(TokioIo::new(io), service);
    tokio::pin!(conn);
    let mut closing = false;
    loop {
        let wait = idle
            .saturating_sub(activity.idle_for())
            .max(Duration::from_millis(100));
        tokio::select! {
            r = conn.as_mut() => {
                if let Err(e) = r {
                    tracing::debug!(%peer, error = %e, "http connection ended with an error");
                }
                break;
            }
            _ = shutdown.cancelled(), if !closing => {
                conn.as_mut().graceful_shutdown();
                closing = true;
            }
            _ = tokio::time::sleep(wait), if !closing => {
                if activity.idle_for() >= idle {
                    tracing::debug!(%peer, "closing an idle http connection");
                    conn.as_mut().graceful_shutdown();
                    closing = true;
                }
            }
        }
    }
}
