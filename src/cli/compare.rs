//! `filegate compare`: the same work through FTP and HTTP, one table of claims with both
//! figures and a verdict (the work is done by the `filegate-compare` library).

use std::io::Write;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::Args;
use filegate_compare::{Endpoint, Options, Target};

use crate::config::Config;

#[derive(Debug, Args)]
pub struct CompareArgs {
    /// Start a server on a temporary store and free loopback ports, restart it for the
    /// restart row, and stop it at the end
    #[arg(long)]
    embedded: bool,
    /// The short preset (under a minute)
    #[arg(long)]
    quick: bool,
    /// FTP server to measure, HOST:PORT [default: the configured ftp address]
    #[arg(long, value_name = "HOST:PORT", conflicts_with = "embedded")]
    ftp: Option<String>,
    /// HTTP server to measure, http://HOST:PORT [default: the configured http address]
    #[arg(long, value_name = "URL", conflicts_with = "embedded")]
    http: Option<String>,
    /// User to log in as (needs write permission on /)
    #[arg(long, default_value = "admin", conflicts_with = "embedded")]
    user: String,
    /// Password of that user [default: the configured admin password]
    #[arg(
        long,
        env = "FILEGATE_COMPARE_PASSWORD",
        hide_env_values = true,
        conflicts_with = "embedded"
    )]
    password: Option<String>,
    /// PID of the server process, for the memory and CPU rows
    #[arg(long, value_name = "PID", conflicts_with = "embedded")]
    server_pid: Option<u32>,
    /// Write the markdown report to FILE (it is printed on stdout otherwise)
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Print the report as JSON on stdout instead of markdown
    #[arg(long)]
    json: bool,
    /// Draw a bar chart of the main ratios to FILE (SVG)
    #[arg(long, value_name = "FILE")]
    svg: Option<PathBuf>,
    /// No progress bars
    #[arg(long)]
    no_progress: bool,
    /// Measure only these rows, e.g. 1,2,6 (the others are reported as not selected)
    #[arg(long, value_name = "LIST", value_delimiter = ',', value_parser = clap::value_parser!(u8).range(1..=8))]
    rows: Vec<u8>,
}

fn resolve(hostport: &str) -> anyhow::Result<SocketAddr> {
    hostport
        .to_socket_addrs()
        .with_context(|| format!("cannot resolve {hostport:?}"))?
        .next()
        .with_context(|| format!("{hostport:?} resolves to no address"))
}

fn http_addr(url: &str) -> anyhow::Result<SocketAddr> {
    let rest = url.strip_prefix("http://").unwrap_or(url);
    if url.starts_with("https://") {
        bail!("https is not supported: compare measures plain HTTP");
    }
    let hostport = rest.split('/').next().unwrap_or(rest);
    if hostport.contains('@') {
        bail!("put credentials in --user and --password, not in the URL");
    }
    resolve(hostport)
}

pub fn run(config: &Config, args: CompareArgs) -> anyhow::Result<()> {
    let target = if args.embedded {
        Target::Embedded {
            exe: std::env::current_exe().context("cannot find the filegate binary")?,
        }
    } else {
        let ftp = match &args.ftp {
            Some(s) => resolve(s)?,
            None => config.ftp.addr,
        };
        let http = match &args.http {
            Some(s) => http_addr(s)?,
            None => config.http.addr,
        };
        let pass = args
            .password
            .clone()
            .or_else(|| config.admin_password.clone())
            .context("give --password (or FILEGATE_COMPARE_PASSWORD), or use --embedded")?;
        Target::Remote {
            endpoint: Endpoint {
                ftp,
                http,
                user: args.user.clone(),
                pass,
            },
            server_pid: args.server_pid,
        }
    };
    let report = filegate_compare::run_blocking(Options {
        target,
        quick: args.quick,
        progress: !args.no_progress,
        only: args.rows.clone(),
    })?;
    let markdown = report.to_markdown();
    if let Some(path) = &args.out {
        std::fs::write(path, &markdown)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    if let Some(path) = &args.svg {
        report.write_svg(path)?;
    }
    let mut stdout = std::io::stdout().lock();
    if args.json {
        writeln!(stdout, "{}", report.to_json()?)?;
    } else if args.out.is_none() {
        write!(stdout, "{markdown}")?;
    }
    Ok(())
}
