//! The accept loop: a permit per connection, limits in all and per client address, blocking of
//! addresses after failed logins, and graceful shutdown that waits for every session. Accepted
//! connections run on worker runtimes, round robin (see `WorkerPool`).

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use filegate_core::workers::WorkerPool;
use filegate_core::Services;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use crate::config::FtpConfig;
use crate::connection::Connection;
use crate::data::PortPool;

/// Connections accepted beyond the limit only to be told 421 (bounds the tasks doing that).
const REJECT_SLACK: usize = 64;
/// Addresses remembered for failed logins before expired ones are dropped.
const MAX_TRACKED_ADDRESSES: usize = 10_000;
/// How long the 421 to a refused connection may take to write.
const REJECT_WRITE: Duration = Duration::from_secs(2);

/// What every connection of one server shares.
pub(crate) struct Shared {
    /// The `[ftp]` settings.
    pub config: FtpConfig,
    /// Store, accounts, login checker and gauges.
    pub services: Services,
    /// Passive ports.
    pub ports: PortPool,
    /// Failed logins per address.
    pub logins: LoginGuard,
    /// Open connections per address.
    pub per_ip: ConnCounts,
    /// Cancelled when the server shuts down.
    pub shutdown: CancellationToken,
}

impl Shared {
    #[cfg(test)]
    pub fn for_tests(config: FtpConfig, services: Services) -> Shared {
        Shared {
            ports: PortPool::new(config.passive_ports),
            logins: LoginGuard::new(config.max_login_failures, config.login_block()),
            per_ip: ConnCounts::default(),
            config,
            services,
            shutdown: CancellationToken::new(),
        }
    }
}

/// The FTP server: [`FtpServer::run`] serves a listener until shutdown.
pub struct FtpServer {
    /// The `[ftp]` settings.
    config: FtpConfig,
    /// What the server serves and checks logins against.
    services: Services,
}

impl FtpServer {
    pub fn new(config: FtpConfig, services: Services) -> Self {
        FtpServer { config, services }
    }

    /// Serves `listener` until `shutdown` is cancelled, then returns once every connection
    /// has finished: idle sessions get 421 at once, running transfers may finish first.
    pub async fn run(self, listener: TcpListener, shutdown: CancellationToken) -> io::Result<()> {
        let max = self.config.max_connections.max(1);
        let self_workers = self.config.worker_threads;
        let shared = Arc::new(Shared {
            ports: PortPool::new(self.config.passive_ports),
            logins: LoginGuard::new(self.config.max_login_failures, self.config.login_block()),
            per_ip: ConnCounts::default(),
            config: self.config,
            services: self.services,
            shutdown: shutdown.clone(),
        });
        // Bounds the connection tasks in all (sessions plus those being refused).
        let slots = Arc::new(Semaphore::new(max + REJECT_SLACK));
        // Bounds the sessions.
        let sessions = Arc::new(Semaphore::new(max));
        let tracker = TaskTracker::new();
        let mut workers = WorkerPool::start("ftp", self_workers);
        let ids = AtomicU64::new(1);
        let mut backoff = Duration::from_millis(5);
        loop {
            let slot = tokio::select! {
                _ = shutdown.cancelled() => break,
                p = Arc::clone(&slots).acquire_owned() => match p {
                    Ok(p) => p,
                    Err(_) => break,
                },
            };
            let (stream, peer) = tokio::select! {
                _ = shutdown.cancelled() => break,
                r = listener.accept() => match r {
                    Ok(c) => {
                        backoff = Duration::from_millis(5);
                        c
                    }
                    Err(e) => {
                        // Out of file descriptors and the like: wait and try again.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(Duration::from_secs(1));
                        continue;
                    }
                },
            };
            let id = ids.fetch_add(1, Ordering::Relaxed);
            let shared = Arc::clone(&shared);
            let session_permit = Arc::clone(&sessions).try_acquire_owned().ok();
            let span = tracing::info_span!("ftp", id, %peer, user = tracing::field::Empty);
            workers.spawn_connection(&tracker, stream, move |stream| {
                async move {
                    let _slot = slot;
                    let Some(_permit) = session_permit else {
                        refuse(stream, "421 Too many connections; try later\r\n").await;
                        return;
                    };
                    let Some(_ip_guard) = shared
                        .per_ip
                        .enter(peer.ip(), shared.config.max_connections_per_ip)
                    else {
                        refuse(stream, "421 Too many connections from your address\r\n").await;
                        return;
                    };
                    if shared.logins.is_blocked(peer.ip(), Instant::now()) {
                        refuse(stream, "421 Too many failed logins; try later\r\n").await;
                        return;
                    }
                    let gauges = Arc::clone(&shared.services.gauges);
                    let _gauge = filegate_core::metrics::GaugeGuard::new(&gauges.ftp_sessions);
                    match Connection::new(stream, peer, shared) {
                        Ok(c) => {
                            if let Err(e) = c.run().await {
                                tracing::debug!(error = %e, "connection ended with an error");
                            }
                        }
                        Err(e) => tracing::debug!(error = %e, "connection setup failed"),
                    }
                }
                .instrument(span)
            });
        }
        drop(listener);
        tracker.close();
        tracker.wait().await;
        drop(workers);
        Ok(())
    }
}

async fn refuse(mut stream: TcpStream, reply: &str) {
    let _ = tokio::time::timeout(REJECT_WRITE, async {
        let _ = stream.write_all(reply.as_bytes()).await;
        let _ = stream.shutdown().await;
    })
    .await;
}

/// Open connections per client address.
#[derive(Default)]
pub(crate) struct ConnCounts {
    /// Address to open connections. A std Mutex: held only for a map update, never across an
    /// await.
    counts: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

impl ConnCounts {
    /// Counts a connection from `ip`, or `None` if that would pass `max`.
    pub fn enter(&self, ip: IpAddr, max: usize) -> Option<IpGuard> {
        let ip = ip.to_canonical();
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        let n = counts.entry(ip).or_insert(0);
        if *n >= max.max(1) {
            return None;
        }
        *n += 1;
        Some(IpGuard {
            ip,
            counts: Arc::clone(&self.counts),
        })
    }
}

/// Uncounts a connection when dropped.
pub(crate) struct IpGuard {
    ip: IpAddr,
    counts: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

impl Drop for IpGuard {
    fn drop(&mut self) {
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = counts.get_mut(&self.ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                counts.remove(&self.ip);
            }
        }
    }
}

/// Failed logins per address, and the addresses blocked for too many.
pub(crate) struct LoginGuard {
    /// Failures before a block (0: never block).
    max_failures: u32,
    /// How long a block lasts.
    block: Duration,
    /// A std Mutex: held only for a map update, never across an await.
    failures: Mutex<HashMap<IpAddr, Failures>>,
}

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    last: Instant,
    blocked_until: Option<Instant>,
}

impl LoginGuard {
    pub fn new(max_failures: u32, block: Duration) -> LoginGuard {
        LoginGuard {
            max_failures,
            block,
            failures: Mutex::new(HashMap::new()),
        }
    }

    pub fn is_blocked(&self, ip: IpAddr, now: Instant) -> bool {
        let map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        map.get(&ip.to_canonical())
            .and_then(|f| f.blocked_until)
            .is_some_and(|until| now < until)
    }

    /// Counts a failure; true if the address is blocked now.
    pub fn failed(&self, ip: IpAddr, now: Instant) -> bool {
        if self.max_failures == 0 {
            return false;
        }
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= MAX_TRACKED_ADDRESSES {
            let block = self.block;
            map.retain(|_, f| now.duration_since(f.last) < block);
            if map.len() >= MAX_TRACKED_ADDRESSES {
                // Still full of fresh entries: forget the oldest half rather than grow.
                let mut lasts: Vec<Instant> = map.values().map(|f| f.last).collect();
                lasts.sort();
                let cut = lasts[lasts.len() / 2];
                map.retain(|_, f| f.last > cut);
            }
        }
        let f = map.entry(ip.to_canonical()).or_insert(Failures {
            count: 0,
            last: now,
            blocked_until: None,
        });
        // Failures long ago do not count towards a new block.
        if now.duration_since(f.last) >= self.block || f.blocked_until.is_some_and(|u| now >= u) {
            f.count = 0;
            f.blocked_until = None;
        }
        f.count += 1;
        f.last = now;
        if f.count >= self.max_failures {
            f.blocked_until = Some(now + self.block);
            return true;
        }
        false
    }

    /// A successful login clears the address's record.
    pub fn succeeded(&self, ip: IpAddr) {
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        map.remove(&ip.to_canonical());
    }
}

/// The client's address as the limits see it.
pub(crate) fn peer_ip(peer: &SocketAddr) -> IpAddr {
    peer.ip().to_canonical()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_guard_blocks_after_max_and_expires() {
        let g = LoginGuard::new(3, Duration::from_secs(60));
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let t0 = Instant::now();
        assert!(!g.failed(ip, t0));
        assert!(!g.failed(ip, t0));
        assert!(g.failed(ip, t0));
        assert!(g.is_blocked(ip, t0 + Duration::from_secs(59)));
        assert!(!g.is_blocked(ip, t0 + Duration::from_secs(61)));
        assert!(!g.is_blocked("10.0.0.2".parse().unwrap(), t0));
        g.succeeded(ip);
        assert!(!g.is_blocked(ip, t0));
        let never = LoginGuard::new(0, Duration::from_secs(60));
        for _ in 0..10 {
            assert!(!never.failed(ip, t0));
        }
    }

    #[test]
    fn per_ip_counts() {
        let c = ConnCounts::default();
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let a = c.enter(ip, 2).unwrap();
        let _b = c.enter(ip, 2).unwrap();
        assert!(c.enter(ip, 2).is_none());
        assert!(c.enter("10.0.0.2".parse().unwrap(), 2).is_some());
        drop(a);
        assert!(c.enter(ip, 2).is_some());
    }
}
