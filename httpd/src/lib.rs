//! Interface placeholder: the httpd issue replaces this crate's body.

use std::net::SocketAddr;

use filegate_core::Services;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

/// Settings of the httpd front end (the `[http]` table of the config file).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    pub addr: SocketAddr,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
        }
    }
}

pub struct HttpServer {
    _config: HttpConfig,
    _services: Services,
}

impl HttpServer {
    pub fn new(config: HttpConfig, services: Services) -> Self {
        HttpServer {
            _config: config,
            _services: services,
        }
    }

    /// Serves `listener` until `shutdown` is cancelled, then returns once every connection
    /// has finished.
    pub async fn run(self, listener: tokio::net::TcpListener, shutdown: CancellationToken) -> std::io::Result<()> {
        drop(listener);
        shutdown.cancelled().await;
        Ok(())
    }
}
