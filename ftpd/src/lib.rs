//! Interface placeholder: the ftpd issue replaces this crate's body.

use std::net::SocketAddr;

use filegate_core::Services;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

/// Settings of the ftpd front end (the `[ftp]` table of the config file).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FtpConfig {
    pub addr: SocketAddr,
    pub passive_ports: PortRange,
    pub passive_address: Option<std::net::IpAddr>,
}

/// An inclusive port range, written FIRST-LAST.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PortRange {
    pub first: u16,
    pub last: u16,
}

impl std::str::FromStr for PortRange {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (a, b) = s.split_once('-').ok_or("expected FIRST-LAST")?;
        let first: u16 = a.trim().parse().map_err(|e| format!("{e}"))?;
        let last: u16 = b.trim().parse().map_err(|e| format!("{e}"))?;
        if first == 0 || first > last {
            return Err("expected 0 < FIRST <= LAST".into());
        }
        Ok(PortRange { first, last })
    }
}

impl TryFrom<String> for PortRange {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

impl From<PortRange> for String {
    fn from(r: PortRange) -> String {
        format!("{}-{}", r.first, r.last)
    }
}

impl Default for FtpConfig {
    fn default() -> Self {
        FtpConfig {
            addr: SocketAddr::from(([127, 0, 0, 1], 2121)),
            passive_ports: PortRange {
                first: 50000,
                last: 50100,
            },
            passive_address: None,
        }
    }
}

pub struct FtpServer {
    _config: FtpConfig,
    _services: Services,
}

impl FtpServer {
    pub fn new(config: FtpConfig, services: Services) -> Self {
        FtpServer {
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
