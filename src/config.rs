//! The effective configuration: built-in defaults, then the TOML file, then `FILEGATE_*`
//! environment variables and flags (clap reads both), later ones winning.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;
use filegate_ftpd::FtpConfig;
use filegate_httpd::HttpConfig;
use serde::{Deserialize, Serialize};

/// Everything `filegate serve` runs with; `filegate config` prints it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub data_dir: PathBuf,
    pub log_format: LogFormat,
    /// Seconds that running transfers get to finish after SIGINT/SIGTERM.
    pub grace_period_secs: u64,
    /// sled's cache in MiB (metadata only; bodies are blob files).
    pub cache_mib: u64,
    /// Set at every start if given; on the first start, the admin's initial password.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub admin_password: Option<String>,
    pub anonymous: AnonymousConfig,
    pub ftp: FtpConfig,
    pub http: HttpConfig,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AnonymousConfig {
    /// Read-only access without a password (FTP user `anonymous`/`ftp`; HTTP without
    /// credentials).
    pub enabled: bool,
    /// The store directory anonymous users see as "/".
    pub root: String,
}

impl Default for AnonymousConfig {
    fn default() -> Self {
        AnonymousConfig {
            enabled: false,
            root: "/pub".to_owned(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from("./filegate-data"),
            log_format: LogFormat::Text,
            grace_period_secs: 30,
            cache_mib: 64,
            admin_password: None,
            anonymous: AnonymousConfig::default(),
            ftp: FtpConfig::default(),
            http: HttpConfig::default(),
        }
    }
}

/// Flags (and their environment variables) that override the file. Global, so every
/// subcommand sees the same store and `filegate config` shows what `serve` would use.
#[derive(Debug, Clone, Args, Default)]
pub struct ConfigArgs {
    /// TOML configuration file
    #[arg(long, global = true, env = "FILEGATE_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Directory of the store [default: ./filegate-data]
    #[arg(long, global = true, env = "FILEGATE_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Log format [default: text]
    #[arg(long, global = true, env = "FILEGATE_LOG_FORMAT", value_enum)]
    pub log_format: Option<LogFormat>,
    /// FTP control address [default: 127.0.0.1:2121]
    #[arg(long, global = true, env = "FILEGATE_FTP_ADDR", value_name = "ADDR")]
    pub ftp_addr: Option<SocketAddr>,
    /// Passive data ports, FIRST-LAST [default: 50000-50100]
    #[arg(
        long,
        global = true,
        env = "FILEGATE_PASSIVE_PORTS",
        value_name = "FIRST-LAST"
    )]
    pub passive_ports: Option<String>,
    /// Address advertised in PASV replies (for NAT) [default: the control connection's]
    #[arg(
        long,
        global = true,
        env = "FILEGATE_PASSIVE_ADDRESS",
        value_name = "IP"
    )]
    pub passive_address: Option<IpAddr>,
    /// HTTP address [default: 127.0.0.1:8080]
    #[arg(long, global = true, env = "FILEGATE_HTTP_ADDR", value_name = "ADDR")]
    pub http_addr: Option<SocketAddr>,
    /// Seconds transfers get to finish at shutdown [default: 30]
    #[arg(
        long,
        global = true,
        env = "FILEGATE_GRACE_PERIOD",
        value_name = "SECS"
    )]
    pub grace_period: Option<u64>,
    /// Password for `admin` (set at every start when given)
    #[arg(
        long,
        global = true,
        env = "FILEGATE_ADMIN_PASSWORD",
        hide_env_values = true
    )]
    pub admin_password: Option<String>,
}

impl ConfigArgs {
    /// Reads the file (if any) and applies the flags.
    pub fn load(&self) -> anyhow::Result<Config> {
        let mut config = match &self.config {
            Some(path) => read_file(path)?,
            None => Config::default(),
        };
        if let Some(v) = &self.data_dir {
            config.data_dir = v.clone();
        }
        if let Some(v) = self.log_format {
            config.log_format = v;
        }
        if let Some(v) = self.ftp_addr {
            config.ftp.addr = v;
        }
        if let Some(v) = &self.passive_ports {
            config.ftp.passive_ports = v
                .parse()
                .map_err(|e| anyhow::anyhow!("--passive-ports {v:?}: {e}"))?;
        }
        if let Some(v) = self.passive_address {
            config.ftp.passive_address = Some(v);
        }
        if let Some(v) = self.http_addr {
            config.http.addr = v;
        }
        if let Some(v) = self.grace_period {
            config.grace_period_secs = v;
        }
        if let Some(v) = &self.admin_password {
            config.admin_password = Some(v.clone());
        }
        Ok(config)
    }
}

fn read_file(path: &Path) -> anyhow::Result<Config> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read config file {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("invalid config file {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_round_trip_through_toml() {
        let text = toml::to_string(&Config::default()).unwrap();
        let back: Config = toml::from_str(&text).unwrap();
        assert_eq!(toml::to_string(&back).unwrap(), text);
        assert!(text.contains("data_dir = \"./filegate-data\""), "{text}");
    }

    #[test]
    fn flags_override_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f.toml");
        std::fs::write(
            &file,
            "data_dir = \"/from/file\"\n[http]\naddr = \"127.0.0.1:9000\"\n",
        )
        .unwrap();
        let args = ConfigArgs {
            config: Some(file.clone()),
            http_addr: Some("127.0.0.1:9001".parse().unwrap()),
            ..Default::default()
        };
        let c = args.load().unwrap();
        assert_eq!(c.data_dir, PathBuf::from("/from/file"));
        assert_eq!(c.http.addr.port(), 9001);
        std::fs::write(&file, "no_such_key = 1\n").unwrap();
        assert!(args.load().is_err(), "unknown keys are refused");
    }
}
