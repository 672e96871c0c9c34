//! Settings of the FTP front end: the `[ftp]` table of the config file.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Settings of the ftpd front end (the `[ftp]` table of the config file). Every field has a
/// default, so an empty table is a working configuration.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FtpConfig {
    /// Control connection address.
    pub addr: SocketAddr,
    /// Ports for passive data connections (PASV/EPSV), FIRST-LAST.
    pub passive_ports: PortRange,
    /// Address advertised in PASV replies (a NAT's public address); by default the control
    /// connection's local address.
    pub passive_address: Option<IpAddr>,
    /// Whether PORT/EPRT (the server connects to the client) are allowed at all. Even when on,
    /// the server only connects to the control connection's peer address.
    pub active_mode: bool,
    /// Control connections open at once, in all; beyond it a new client gets 421.
    pub max_connections: usize,
    /// Control connections open at once from one client address; beyond it 421.
    pub max_connections_per_ip: usize,
    /// Seconds a control connection may stay without a command before 421 and close.
    pub idle_timeout_secs: u64,
    /// Seconds to wait for a data connection to open, and for progress of a transfer.
    pub data_timeout_secs: u64,
    /// Milliseconds every failed login waits before its 530 reply.
    pub failed_login_delay_ms: u64,
    /// Failed logins from one address before it is blocked (0: never block).
    pub max_login_failures: u32,
    /// Seconds an address stays blocked after too many failed logins.
    pub login_block_secs: u64,
    /// Consecutive refused commands (syntax errors, unknown verbs, bad sequence, not logged
    /// in) before the connection is closed with 421.
    pub max_bad_commands: u32,
    /// Threads that run the sessions, each with its own event loop (0: one per CPU).
    pub worker_threads: usize,
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
            active_mode: true,
            max_connections: 1024,
            max_connections_per_ip: 512,
            idle_timeout_secs: 300,
            data_timeout_secs: 60,
            failed_login_delay_ms: 1000,
            max_login_failures: 5,
            login_block_secs: 300,
            max_bad_commands: 20,
            worker_threads: 0,
        }
    }
}

impl FtpConfig {
    pub fn idle_timeout(&self) -> Duration {
        Duration::from_secs(self.idle_timeout_secs.max(1))
    }

    pub fn data_timeout(&self) -> Duration {
        Duration::from_secs(self.data_timeout_secs.max(1))
    }

    pub fn failed_login_delay(&self) -> Duration {
        Duration::from_millis(self.failed_login_delay_ms)
    }

    pub fn login_block(&self) -> Duration {
        Duration::from_secs(self.login_block_secs)
    }
}

/// An inclusive port range, written FIRST-LAST.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PortRange {
    pub first: u16,
    pub last: u16,
}

impl PortRange {
    /// How many ports the range holds.
    pub fn len(&self) -> u32 {
        u32::from(self.last) - u32::from(self.first) + 1
    }

    /// Never true: a valid range holds at least one port.
    pub fn is_empty(&self) -> bool {
        false
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_range_parses_and_refuses() {
        let r: PortRange = "50000-50100".parse().unwrap();
        assert_eq!((r.first, r.last, r.len()), (50000, 50100, 101));
        assert!("0-10".parse::<PortRange>().is_err());
        assert!("10-9".parse::<PortRange>().is_err());
        assert!("10".parse::<PortRange>().is_err());
        assert_eq!(String::from(r), "50000-50100");
    }

    #[test]
    fn empty_table_is_the_default_and_unknown_keys_are_refused() {
        let c: FtpConfig = toml::from_str("").unwrap();
        assert_eq!(c.addr, FtpConfig::default().addr);
        let c: FtpConfig =
            toml::from_str("passive_ports = \"1000-1001\"\nactive_mode = false").unwrap();
        assert_eq!(c.passive_ports.len(), 2);
        assert!(!c.active_mode);
        assert!(toml::from_str::<FtpConfig>("nope = 1").is_err());
    }
}
