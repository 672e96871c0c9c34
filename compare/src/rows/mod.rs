//! The rows of the table, one module each, and what they share: the context (server,
//! sizes, progress), the fixtures every row reads, and client helpers.
//!
//! - [`wire`]: row 1, bytes and round trips of single operations.
//! - [`speed`]: rows 2 and 3, latency and rate of small files, throughput of a large one.
//! - [`memory`]: row 4, server memory per idle client and per active transfer.
//! - [`auth`]: row 5, server CPU of logging in once versus checking every request.
//! - [`restart`]: row 6, clients working through a server restart.
//! - [`revoke`]: row 7, how long a revoked user keeps working.
//! - [`affinity`]: row 8, two listeners over one store and a client switched between them.

pub mod affinity;
pub mod auth;
pub mod memory;
pub mod restart;
pub mod revoke;
pub mod speed;
pub mod wire;

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{bail, Context};

use crate::counted::Counters;
use crate::ftp::FtpClient;
use crate::http::{Auth, Body, HttpClient, Sink};
use crate::progress::Progress;
use crate::report::Row;
use crate::server::{proc_sample, Embedded, Endpoint, ProcSample};
use crate::{Sizes, OP_TIMEOUT};

/// Rows in the table.
pub const COUNT: u64 = 8;
/// Size of the small files.
pub const SMALL: u64 = 4096;
/// Files in the listed directory.
pub const LISTED: usize = 10;

/// Everything a row needs.
pub struct Ctx {
    pub endpoint: Endpoint,
    /// The server's process, for memory and CPU (embedded: the child).
    pub pid: Option<u32>,
    /// The child in embedded mode (restarted by row 6).
    pub embedded: Option<Embedded>,
    /// The filegate binary in embedded mode (row 5 starts a second server with it).
    pub exe: Option<PathBuf>,
    pub sizes: Sizes,
    pub progress: Progress,
    /// The directory (in the user's view) that holds every file compare makes.
    pub dir: String,
}

impl Ctx {
    pub fn basic(&self) -> Auth {
        Auth::Basic {
            user: self.endpoint.user.clone(),
            pass: self.endpoint.pass.clone(),
        }
    }

    pub fn http(&self, counters: &Arc<Counters>) -> HttpClient {
        HttpClient::new(self.endpoint.http, self.basic(), counters, OP_TIMEOUT)
    }

    pub async fn ftp(&self, counters: &Arc<Counters>) -> anyhow::Result<FtpClient> {
        Ok(FtpClient::login_to(
            self.endpoint.ftp,
            &self.endpoint.user,
            &self.endpoint.pass,
            counters,
            OP_TIMEOUT,
        )
        .await?)
    }

    /// The server's memory and CPU now, if its PID is known.
    pub fn sample(&self) -> Option<ProcSample> {
        let pid = self.pid?;
        proc_sample(pid).ok()
    }

    pub fn small(&self, i: usize) -> String {
        format!(
            "{}/small/f{:05}",
            self.dir,
            i % self.sizes.small_files.max(1)
        )
    }

    pub fn big(&self) -> String {
        format!("{}/big.bin", self.dir)
    }
}

/// The content of small file `i`: distinct per file.
pub fn small_content(i: usize) -> Vec<u8> {
    (0..SMALL as usize)
        .map(|j| (j.wrapping_mul(31) ^ i.wrapping_mul(7919)) as u8)
        .collect()
}

/// 1 MiB of varied bytes that large uploads repeat.
pub fn pattern() -> Vec<u8> {
    (0..1usize << 20)
        .map(|j| (j.wrapping_mul(2654435761) >> 13) as u8)
        .collect()
}

/// Creates a directory over HTTP (201, or 405 if it exists).
pub async fn mkcol(client: &mut HttpClient, path: &str) -> anyhow::Result<()> {
    let mut sink = Sink::discard();
    let r = client
        .request("MKCOL", path, &[], Body::Empty, &mut sink)
        .await?;
    if r.ok() || r.status == 405 {
        Ok(())
    } else {
        bail!("MKCOL {path}: {}", r.status)
    }
}

/// Uploads `data` over HTTP.
pub async fn put(client: &mut HttpClient, path: &str, data: &[u8]) -> anyhow::Result<()> {
    let mut sink = Sink::discard();
    let r = client
        .request(
            "PUT",
            path,
            &[],
            Body::Pattern {
                len: data.len() as u64,
                pattern: data,
            },
            &mut sink,
        )
        .await?;
    if !r.ok() {
        bail!("PUT {path}: {}", r.status);
    }
    Ok(())
}

/// The files every row reads: the small files and the listed directory.
async fn fixtures(ctx: &Ctx) -> anyhow::Result<()> {
    let counters = Counters::new();
    let mut c = ctx.http(&counters);
    mkcol(&mut c, &ctx.dir).await?;
    mkcol(&mut c, &format!("{}/small", ctx.dir)).await?;
    mkcol(&mut c, &format!("{}/list", ctx.dir)).await?;
    ctx.progress
        .row("uploading the small files", ctx.sizes.small_files as u64);
    for i in 0..ctx.sizes.small_files {
        put(&mut c, &ctx.small(i), &small_content(i)).await?;
        ctx.progress.inc(1);
    }
    for i in 0..LISTED {
        put(
            &mut c,
            &format!("{}/list/entry-{i:02}.bin", ctx.dir),
            &small_content(i),
        )
        .await?;
    }
    // One check that what HTTP wrote is what FTP reads.
    let mut f = ctx.ftp(&counters).await?;
    let got = f.retr_bytes(&ctx.small(1), 1 << 20).await?;
    f.quit().await;
    if got != small_content(1) {
        bail!("a file written over HTTP reads back different over FTP");
    }
    Ok(())
}

/// Makes sure the large file exists (row 3 makes it; later rows need it even if row 3 failed).
pub async fn ensure_big(ctx: &Ctx) -> anyhow::Result<()> {
    let counters = Counters::new();
    let mut f = ctx.ftp(&counters).await?;
    let have = f.size(&ctx.big()).await.ok();
    if have != Some(ctx.sizes.big_bytes) {
        f.stor(&ctx.big(), ctx.sizes.big_bytes, &pattern()).await?;
    }
    f.quit().await;
    Ok(())
}

/// Restarts the embedded server (SIGTERM, then a new process on the same store and ports);
/// returns how long it was away.
pub async fn restart_server(ctx: &mut Ctx) -> anyhow::Result<std::time::Duration> {
    let Some(mut server) = ctx.embedded.take() else {
        bail!("no embedded server to restart");
    };
    let started = std::time::Instant::now();
    let (server, restarted) = tokio::task::spawn_blocking(move || {
        let r = server.restart();
        (server, r)
    })
    .await?;
    let took = started.elapsed();
    ctx.pid = Some(server.pid());
    ctx.embedded = Some(server);
    restarted?;
    Ok(took)
}

/// Runs every row; a row that fails says why in its figures.
pub async fn run_all(ctx: &mut Ctx, only: &[u8]) -> Vec<Row> {
    let headers = [
        wire::header(),
        speed::latency_header(),
        speed::throughput_header(),
        memory::header(),
        auth::header(),
        restart::header(),
        revoke::header(),
        affinity::header(),
    ];
    if let Err(e) = fixtures(ctx).await.context("preparing the test files") {
        let reason = format!("{e:#}");
        return headers
            .into_iter()
            .map(|h| h.not_measured(&reason))
            .collect();
    }
    let mut rows = Vec::new();
    for h in headers {
        if !only.is_empty() && !only.contains(&h.id) {
            rows.push(h.not_measured("not selected (--rows)"));
            continue;
        }
        let fallback = h.clone();
        ctx.progress.row(&h.name, 1);
        let started = std::time::Instant::now();
        let result = match h.id {
            1 => wire::run(ctx, h).await,
            2 => speed::latency(ctx, h).await,
            3 => speed::throughput(ctx, h).await,
            4 => memory::run(ctx, h).await,
            5 => auth::run(ctx, h).await,
            6 => restart::run(ctx, h).await,
            7 => revoke::run(ctx, h).await,
            _ => affinity::run(ctx, h).await,
        };
        let mut row = match result {
            Ok(row) => row,
            Err(e) => fallback.not_measured(&format!("error: {e:#}")),
        };
        row.seconds = started.elapsed().as_secs_f64();
        rows.push(row);
        ctx.progress.row_done();
    }
    rows
}

/// Runs the futures `make(0..n)`, at most `limit` at once, and collects their results (in
/// any order); the first error ends it.
pub async fn stream_all<T, F, Fut>(
    n: usize,
    limit: usize,
    make: F,
    progress: &Progress,
) -> anyhow::Result<Vec<T>>
where
    F: FnMut(usize) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<T>>,
{
    use futures::StreamExt;
    let mut results = futures::stream::iter(0..n)
        .map(make)
        .buffer_unordered(limit.max(1));
    let mut out = Vec::with_capacity(n);
    while let Some(r) = results.next().await {
        out.push(r?);
        progress.inc(1);
    }
    Ok(out)
}

/// Remarks for the report.
pub fn notes(ctx: &Ctx) -> Vec<String> {
    let mut n = vec![
        "Bytes are application bytes at the client's sockets (TCP/IP headers not included); a round trip is one command and reply, one request and response, or one TCP handshake.".to_owned(),
        "Server CPU and RSS come from /proc of the server process; the client runs on the same machine, so rates include its own CPU.".to_owned(),
    ];
    if ctx.embedded.is_some() {
        n.push("Embedded server: default settings except grace_period_secs = 1 (quick restarts) and connection limits of 4096 (room for the idle clients); rows 7 and 8 use an in-process server with the same front ends and default settings (see the README).".to_owned());
    }
    n
}

/// Removes what compare made (remote mode; the embedded store is deleted whole).
pub async fn cleanup(ctx: &Ctx) -> anyhow::Result<()> {
    if ctx.embedded.is_some() {
        return Ok(());
    }
    let counters = Counters::new();
    let mut c = ctx.http(&counters);
    let mut paths: Vec<String> = (0..ctx.sizes.small_files).map(|i| ctx.small(i)).collect();
    paths.extend((0..LISTED).map(|i| format!("{}/list/entry-{i:02}.bin", ctx.dir)));
    paths.push(ctx.big());
    paths.push(format!("{}/small", ctx.dir));
    paths.push(format!("{}/list", ctx.dir));
    paths.push(ctx.dir.clone());
    for p in paths {
        let mut sink = Sink::discard();
        c.request("DELETE", &p, &[], Body::Empty, &mut sink).await?;
    }
    Ok(())
}
