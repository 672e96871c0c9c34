//! filegate's stateless side: an HTTP gateway on the shared store (hyper 1.x).
//!
//! It keeps nothing about a client between requests: every request carries its own credentials
//! (Basic, a Bearer token, or a `?token=` share link), and what state there is (users, token
//! revocation) lives in the store.
//!
//! # Layout
//! - [`sendfile`]: zero-copy file bodies on HTTP/1.x (placeholder chunks the IO turns into
//!   `sendfile`).
//! - [`server`]: the accept loop, connection limits, timeouts, h1/h2c, graceful shutdown.
//! - [`routing`]: the per-request service: hygiene checks, authentication, dispatch by method.
//! - [`files`]: GET and HEAD of files (validators, ranges, multipart/byteranges).
//! - [`write`]: PUT and the HTML form upload (multipart POST), streamed into the store.
//! - [`dav`]: DELETE, MKCOL, MOVE and COPY.
//! - [`internal`]: `/_/health`, `/_/metrics`, `/_/token`.
//! - [`auth`]: Basic with the verified-credential cache, Bearer and query tokens, anonymous.
//! - [`preconditions`]: If-Match, If-None-Match, If-Modified-Since, If-Unmodified-Since,
//!   If-Range (RFC 9110 13).
//! - [`ranges`]: the Range header (RFC 9110 14).
//! - [`listing`]: JSON and HTML directory listings.
//! - [`paths`]: URL paths to store paths (decoding once, refusing traversal) and back.
//! - [`body`]: streamed response bodies and request bodies with a cap and a stall timeout.
//! - [`cache`]: small files' bytes by version tag (a CPU saving for small GETs).
//! - [`error`]: error responses, and the one mapping from store errors to statuses.
//! - [`metrics`]: request counters and the Prometheus text.

// Tests may unwrap; nothing else does.
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod auth;
pub mod body;
pub mod cache;
pub mod dav;
pub mod error;
pub mod files;
pub mod internal;
pub mod listing;
pub mod metrics;
pub mod paths;
pub mod preconditions;
pub mod ranges;
pub mod routing;
pub mod sendfile;
pub mod server;
pub mod write;

use std::net::SocketAddr;
use std::time::Duration;

use filegate_core::token::TokenKey;
use filegate_core::{AccountEvent, Services};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

pub use routing::Gateway;

/// Settings of the httpd front end (the `[http]` table of the config file).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// Address to listen on.
    pub addr: SocketAddr,
    /// Connections served at once; further ones wait in the kernel's backlog.
    pub max_connections: usize,
    /// Largest request head (request line and headers) in bytes.
    pub max_header_bytes: usize,
    /// Most header fields in one request.
    pub max_headers: usize,
    /// Seconds a client gets to send a complete request head (slow clients are cut off).
    /// hyper starts this timer while a keep-alive connection waits for its next request too, so
    /// it also bounds how long an HTTP/1.1 connection may sit idle.
    pub header_read_timeout_secs: u64,
    /// Seconds a keep-alive connection (HTTP/1.1 or HTTP/2) with nothing in flight stays open.
    pub keep_alive_idle_secs: u64,
    /// Seconds an upload may stall between two chunks.
    pub body_idle_timeout_secs: u64,
    /// Largest request body in bytes; 0 for no cap.
    pub max_body_bytes: u64,
    /// HTTP/2 streams one connection may have open at once.
    pub h2_max_concurrent_streams: u32,
    /// Serve `/_/metrics` to clients other than loopback ones.
    pub metrics_public: bool,
    /// Verified Basic credentials remembered (each saves one argon2 verification per request).
    pub credential_cache_entries: usize,
    /// Seconds a verified credential is remembered.
    pub credential_cache_secs: u64,
    /// Basic checks in flight at once; more wait, and then usually find the result cached.
    pub max_concurrent_logins: usize,
    /// Longest lifetime `POST /_/token` grants, in seconds.
    pub token_max_ttl_secs: u64,
    /// Bytes of small files kept in memory by version (0 turns the cache off); a hit saves
    /// opening and reading the file.
    pub small_file_cache_bytes: usize,
    /// Largest file the small-file cache holds.
    pub small_file_max_bytes: u64,
    /// Send large file bodies with sendfile on HTTP/1.x (the kernel copies page cache to the
    /// socket).
    pub sendfile: bool,
    /// Threads that run the connections, each with its own event loop (0: one per CPU).
    pub worker_threads: usize,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
            max_connections: 1024,
            max_header_bytes: 16 * 1024,
            max_headers: 64,
            header_read_timeout_secs: 10,
            keep_alive_idle_secs: 10,
            body_idle_timeout_secs: 60,
            max_body_bytes: 0,
            h2_max_concurrent_streams: 100,
            metrics_public: false,
            credential_cache_entries: 4096,
            credential_cache_secs: 300,
            max_concurrent_logins: 4,
            token_max_ttl_secs: 30 * 24 * 3600,
            small_file_cache_bytes: 64 << 20,
            small_file_max_bytes: 64 << 10,
            sendfile: true,
            worker_threads: 0,
        }
    }
}

impl HttpConfig {
    pub(crate) fn body_idle(&self) -> Duration {
        Duration::from_secs(self.body_idle_timeout_secs.max(1))
    }
}

/// The HTTP front end.
pub struct HttpServer {
    config: HttpConfig,
    services: Services,
}

impl HttpServer {
    pub fn new(config: HttpConfig, services: Services) -> Self {
        HttpServer { config, services }
    }

    /// Serves `listener` until `shutdown` is cancelled, then returns once every connection
    /// has finished.
    pub async fn run(
        self,
        listener: tokio::net::TcpListener,
        shutdown: CancellationToken,
    ) -> std::io::Result<()> {
        let key = TokenKey::load(&*self.services.accounts)
            .await
            .map_err(|e| std::io::Error::other(format!("cannot load the token key: {e}")))?;
        let gateway = Gateway::new(self.config.clone(), self.services.clone(), key);
        // Drop cached credentials of a user whose account changed.
        let mut events = self.services.accounts.subscribe();
        let watcher = {
            let gateway = gateway.clone();
            let shutdown = shutdown.clone();
            tokio::spawn(async move {
                loop {
                    tokio::select! {
                        _ = shutdown.cancelled() => break,
                        ev = events.recv() => match ev {
                            Ok(AccountEvent::Changed { name }) => {
                                gateway.authn().cache().invalidate_user(&name)
                            }
                            Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                                gateway.authn().cache().clear()
                            }
                            Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
                        },
                    }
                }
            })
        };
        let result = server::serve(listener, shutdown, gateway, &self.config).await;
        watcher.abort();
        result
    }
}
