//! Row 4: the server's RSS before and after many idle clients of each kind (FTP: logged in;
//! HTTP: one authenticated request, then idle keep-alive), and per stalled active transfer.

use std::sync::Arc;
use std::time::Duration;

use crate::counted::Counters;
use crate::ftp::{DataConn, FtpClient};
use crate::http::HttpClient;
use crate::report::{Row, Verdict};
use crate::rows::{ensure_big, restart_server, stream_all, Ctx};
use crate::stats::ratio;

pub fn header() -> Row {
    Row::new(
        4,
        "Server memory",
        "a stateful server holds memory for every client, a stateless one does not",
    )
}

/// Logins at once (argon2 costs 19 MiB each; the same concurrency before the baseline and
/// during the measurement keeps the allocator's arenas comparable).
const LOGIN_CONCURRENCY: usize = 4;

/// Settling time before a memory sample.
const SETTLE: Duration = Duration::from_millis(500);

async fn rss(ctx: &Ctx) -> anyhow::Result<f64> {
    tokio::time::sleep(SETTLE).await;
    ctx.sample()
        .map(|s| s.rss_kib as f64)
        .ok_or_else(|| anyhow::anyhow!("cannot read the server's /proc"))
}

async fn ftp_sessions(ctx: &Ctx, n: usize) -> anyhow::Result<Vec<FtpClient>> {
    let counters = Counters::new();
    let ctx_ref = ctx;
    let out = stream_all(
        n,
        LOGIN_CONCURRENCY,
        |_| {
            let counters = Arc::clone(&counters);
            async move { ctx_ref.ftp(&counters).await }
        },
        &ctx.progress,
    )
    .await?;
    Ok(out)
}

async fn http_conns(ctx: &Ctx, n: usize) -> anyhow::Result<Vec<HttpClient>> {
    let counters = Counters::new();
    let ctx_ref = ctx;
    stream_all(
        n,
        16,
        |i| {
            let counters = Arc::clone(&counters);
            async move {
                let mut h = ctx_ref.http(&counters);
                let (status, _) = h.get(&ctx_ref.small(i)).await?;
                if status != 200 {
                    anyhow::bail!("GET: {status}");
                }
                anyhow::Ok(h)
            }
        },
        &ctx.progress,
    )
    .await
}

/// Restarts the server (embedded mode) so each kind of client is measured on a fresh process
/// whose allocator holds no memory freed by the other kind.
async fn fresh(ctx: &mut Ctx) -> anyhow::Result<()> {
    if ctx.embedded.is_some() {
        restart_server(ctx).await?;
    }
    Ok(())
}

pub async fn run(ctx: &mut Ctx, mut row: Row) -> anyhow::Result<Row> {
    if ctx.pid.is_none() {
        return Ok(row.not_measured("needs --server-pid or --embedded"));
    }
    let n = ctx.sizes.idle;
    let m = ctx.sizes.active;
    ctx.progress.row(&row.name, 2 * n as u64 + 4);
    ensure_big(ctx).await?;
    let counters = Counters::new();

    // FTP: idle logged-in sessions, then stalled transfers on top of them.
    fresh(ctx).await?;
    // Warm-up: as many logins as run at once, so argon2's memory is in the baseline.
    drop(ftp_sessions(ctx, LOGIN_CONCURRENCY * 2).await?);
    let before = rss(ctx).await?;
    let sessions = ftp_sessions(ctx, n).await?;
    let after = rss(ctx).await?;
    let ftp_idle = (after - before) / n as f64;
    ctx.progress.step("active FTP transfers");
    // Each transfer reads 1 MiB of the large file, then stops reading.
    let mut held: Vec<(FtpClient, DataConn)> = Vec::new();
    for _ in 0..m {
        let mut f = ctx.ftp(&counters).await?;
        let mut d = f.start_retr(&ctx.big(), 0).await?;
        d.drain(Some(1 << 20)).await?;
        held.push((f, d));
    }
    let with_active = rss(ctx).await?;
    let ftp_active = (with_active - after) / m as f64;
    drop(held);
    drop(sessions);
    ctx.progress.step("idle HTTP connections");

    // HTTP: idle keep-alive connections (one authenticated request each), then stalled
    // transfers.
    fresh(ctx).await?;
    drop(ftp_sessions(ctx, LOGIN_CONCURRENCY * 2).await?);
    drop(http_conns(ctx, 16).await?);
    let before = rss(ctx).await?;
    let conns = http_conns(ctx, n).await?;
    let after = rss(ctx).await?;
    let http_idle = (after - before) / n as f64;
    ctx.progress.step("active HTTP transfers");
    let mut held = Vec::new();
    for _ in 0..m {
        let mut h = ctx.http(&counters);
        h.start_stalled_get(&ctx.big(), 1 << 20).await?;
        held.push(h);
    }
    let with_active = rss(ctx).await?;
    let http_active = (with_active - after) / m as f64;
    drop(held);
    drop(conns);

    row.ftp = format!(
        "{ftp_idle:.1} KiB per idle logged-in session ({n} sessions); {ftp_active:.0} KiB per active transfer ({m})"
    );
    row.http = format!(
        "{http_idle:.1} KiB per idle keep-alive connection ({n} connections); {http_active:.0} KiB per active transfer ({m})"
    );
    row.metric("ftp_idle_kib_per_client", ftp_idle);
    row.metric("http_idle_kib_per_client", http_idle);
    row.metric("ftp_active_kib_per_transfer", ftp_active);
    row.metric("http_active_kib_per_transfer", http_active);
    let idle = ratio(ftp_idle, http_idle);
    row.ratio("idle memory per client", ratio(http_idle, ftp_idle));
    row.ratio("memory per active transfer", ratio(http_active, ftp_active));
    row.verdict = match idle {
        Some(r) if r > 1.25 => Verdict::Holds,
        Some(r) if r < 0.8 => Verdict::DoesNotHold,
        _ => Verdict::Mixed,
    };
    row.why = format!(
        "an idle FTP session costs {:.2}× an idle HTTP connection ({ftp_idle:.1} vs {http_idle:.1} KiB); both keep a socket and its buffers per client, HTTP's only until its keep-alive timeout",
        idle.unwrap_or(f64::NAN)
    );
    Ok(row)
}
