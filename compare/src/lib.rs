//! `filegate compare`: the same work through FTP (stateful) and HTTP (stateless) on one store,
//! one table of claims with both figures and a verdict computed from them.
//!
//! # Layout
//! - [`stats`]: percentiles, medians, means, latency summaries (pure, unit-tested).
//! - [`counted`]: sockets that count bytes, round trips and connections per client.
//! - [`ftp`]: a small passive-mode FTP client on counted sockets.
//! - [`http`]: a small HTTP/1.1 keep-alive client on a counted socket (httparse).
//! - [`server`]: the server under test: endpoint, /proc figures, the embedded child.
//! - [`lab`]: an in-process server with two FTP and two HTTP listeners on one store, for the
//!   revocation and affinity rows.
//! - [`rows`]: one function per row of the table (`rows/`), and the shared fixtures.
//! - [`report`]: rows, verdicts, markdown, JSON and the SVG chart.
//! - [`progress`]: progress bars on stderr.

// Tests may unwrap; nothing else does.
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod counted;
pub mod ftp;
pub mod http;
pub mod lab;
pub mod progress;
pub mod report;
pub mod rows;
pub mod server;
pub mod stats;

use std::path::PathBuf;
use std::time::{Duration, Instant};

pub use report::{Report, Row, Verdict};
pub use server::Endpoint;

/// Where the server comes from.
#[derive(Debug, Clone)]
pub enum Target {
    /// Start `exe serve` on a temporary store (and a second one without the credential cache
    /// for row 5), restart it for row 6, stop it at the end.
    Embedded { exe: PathBuf },
    /// A running server; its PID (optional) enables the memory and CPU rows.
    Remote {
        endpoint: Endpoint,
        server_pid: Option<u32>,
    },
}

/// What to run.
#[derive(Debug, Clone)]
pub struct Options {
    pub target: Target,
    /// The short preset (under a minute).
    pub quick: bool,
    /// Draw progress bars on stderr (only if it is a terminal).
    pub progress: bool,
    /// Measure only these rows (1-8); empty: all.
    pub only: Vec<u8>,
}

/// How much work each row does.
#[derive(Debug, Clone)]
pub struct Sizes {
    /// The short preset.
    pub quick: bool,
    /// 4 KiB files created for the small-file rows.
    pub small_files: usize,
    /// Sequential downloads in row 2.
    pub sequential: usize,
    /// Concurrent clients in row 2 and the downloads each makes.
    pub clients: usize,
    pub ops_per_client: usize,
    /// The large file of row 3 (also used by rows 4 and 6).
    pub big_bytes: u64,
    /// Idle clients of each kind in row 4, and stalled transfers.
    pub idle: usize,
    pub active: usize,
    /// Requests per authentication mode in row 5, logins, and uncached Basic requests.
    pub auth_requests: usize,
    pub logins: usize,
    pub uncached: usize,
    /// Clients of each kind working through the restart in row 6.
    pub restart_clients: usize,
    /// Alternating requests in row 8.
    pub alternating: usize,
}

impl Sizes {
    pub fn new(quick: bool) -> Sizes {
        if quick {
            Sizes {
                quick,
                small_files: 100,
                sequential: 200,
                clients: 8,
                ops_per_client: 10,
                big_bytes: 64 << 20,
                idle: 16,
                active: 4,
                auth_requests: 100,
                logins: 2,
                uncached: 3,
                restart_clients: 2,
                alternating: 50,
            }
        } else {
            Sizes {
                quick,
                small_files: 1000,
                sequential: 1000,
                clients: 64,
                ops_per_client: 50,
                big_bytes: 1 << 30,
                idle: 1000,
                active: 16,
                auth_requests: 1000,
                logins: 20,
                uncached: 40,
                restart_clients: 8,
                alternating: 500,
            }
        }
    }
}

/// Limit for every single network wait.
pub const OP_TIMEOUT: Duration = Duration::from_secs(30);

/// Runs every row and returns the report (blocking; builds its own runtime).
pub fn run_blocking(options: Options) -> anyhow::Result<Report> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(run(options))
}

/// Runs every row and returns the report.
pub async fn run(options: Options) -> anyhow::Result<Report> {
    let started = Instant::now();
    let sizes = Sizes::new(options.quick);
    let progress = progress::Progress::new(rows::COUNT, options.progress);
    let (mode, mut ctx) = match &options.target {
        Target::Embedded { exe } => {
            progress.println("compare: starting filegate serve on a temporary store");
            let exe2 = exe.clone();
            let server =
                tokio::task::spawn_blocking(move || server::Embedded::start(&exe2, "")).await??;
            (
                "embedded",
                rows::Ctx {
                    endpoint: server.endpoint.clone(),
                    pid: Some(server.pid()),
                    embedded: Some(server),
                    exe: Some(exe.clone()),
                    sizes,
                    progress,
                    dir: "/compare".into(),
                },
            )
        }
        Target::Remote {
            endpoint,
            server_pid,
        } => (
            "remote",
            rows::Ctx {
                endpoint: endpoint.clone(),
                pid: *server_pid,
                embedded: None,
                exe: None,
                sizes,
                progress,
                dir: format!("/filegate-compare-{:08x}", rand::random::<u32>()),
            },
        ),
    };
    let rows = rows::run_all(&mut ctx, &options.only).await;
    ctx.progress.finish();
    let mut notes = rows::notes(&ctx);
    if let Err(e) = rows::cleanup(&ctx).await {
        notes.push(format!("cleanup of {} failed: {e:#}", ctx.dir));
    }
    if let Some(mut server) = ctx.embedded.take() {
        tokio::task::spawn_blocking(move || server.stop()).await?;
    }
    Ok(Report {
        mode: mode.into(),
        quick: options.quick,
        seconds: started.elapsed().as_secs_f64(),
        machine: machine(),
        rows,
        notes,
    })
}

/// "2 cores, Linux 6.1" from what the process can see.
fn machine() -> String {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|_| "unknown".into());
    format!("{cores} cores, Linux {kernel}")
}
