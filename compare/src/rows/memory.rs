//! Row 4: the server's RSS before and after many idle clients of each kind (FTP: logged in;
//! HTTP: one authenticated request, then idle keep-alive), and per stalled active transfer.

use std::sync::Arc;
use std::time::Duration;

use crate::counted::Counters;
use crate::ftp::{DataConn, FtpClient};
use crate::http::HttpClient;
use crate::report::{Row, Verdict};
use crate::rows::{ensure_big, restart_server, stream_all, Ctx};
use crate::stats::{median, ratio};

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
const SETTLE: Duration = Duration::from_millis(300);

async fn rss(ctx: &Ctx) -> anyhow::Result<f64> {
    tokio::time::sleep(SETTLE).await;
    ctx.sample()
        .map(|s| s.rss_kib as f64)
        .ok_or_else(|| anyhow::anyhow!("cannot read the server's /proc"))
}

async fn ftp_sessions(ctx: &Ctx, n: usize) -> anyhow::Result<Vec<FtpClient>> {
    let counters = Counters::new();
    let ctx_ref = ctx;
    stream_all(
        n,
        LOGIN_CONCURRENCY,
        |_| {
            let counters = Arc::clone(&counters);
            async move { ctx_ref.ftp(&counters).await }
        },
        &ctx.progress,
    )
    .await
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

/// Idle clients opened in batches, RSS sampled after each batch.
struct Idle<T> {
    clients: Vec<T>,
    /// Median over batches of the RSS growth per client opened (KiB): robust to the batches
    /// in which the allocator took a new arena for argon2's working memory.
    per_client: f64,
    /// RSS growth over all batches per client, whatever caused it (KiB).
    overall: f64,
    /// RSS after the last batch.
    rss_after: f64,
}

async fn idle_batches<T, F, Fut>(ctx: &Ctx, n: usize, mut open: F) -> anyhow::Result<Idle<T>>
where
    F: FnMut(usize) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<Vec<T>>>,
{
    let batches = if ctx.sizes.quick { 4 } else { 20 };
    let size = n.div_ceil(batches).max(1);
    let start = rss(ctx).await?;
    let mut last = start;
    let mut deltas = Vec::new();
    let mut clients = Vec::with_capacity(n);
    while clients.len() < n {
        let k = size.min(n - clients.len());
        clients.extend(open(k).await?);
        let now = rss(ctx).await?;
        deltas.push((now - last) / k as f64);
        last = now;
    }
    Ok(Idle {
        per_client: median(&deltas).unwrap_or(f64::NAN),
        overall: (last - start) / n.max(1) as f64,
        rss_after: last,
        clients,
    })
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
    drop(ftp_sessions(ctx, LOGIN_CONCURRENCY).await?);
    let ftp = idle_batches(ctx, n, |k| ftp_sessions(ctx, k)).await?;
    let after = ftp.rss_after;
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
    let (ftp_idle, ftp_overall) = (ftp.per_client, ftp.overall);
    drop(ftp.clients);
    ctx.progress.step("idle HTTP connections");

    // HTTP: idle keep-alive connections (one authenticated request each), then stalled
    // transfers.
    fresh(ctx).await?;
    drop(http_conns(ctx, 16).await?);
    let http = idle_batches(ctx, n, |k| http_conns(ctx, k)).await?;
    let after = http.rss_after;
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
    let (http_idle, http_overall) = (http.per_client, http.overall);
    drop(http.clients);

    row.ftp = format!(
        "{ftp_idle:.1} KiB per idle logged-in session ({n} sessions; {ftp_overall:.1} KiB in all, with what the logins' password checks left behind); {ftp_active:.0} KiB per active transfer ({m})"
    );
    row.http = format!(
        "{http_idle:.1} KiB per idle keep-alive connection ({n} connections; {http_overall:.1} KiB in all); {http_active:.0} KiB per active transfer ({m})"
    );
    row.metric("ftp_idle_kib_per_client", ftp_idle);
    row.metric("http_idle_kib_per_client", http_idle);
    row.metric("ftp_active_kib_per_transfer", ftp_active);
    row.metric("ftp_idle_overall_kib_per_client", ftp_overall);
    row.metric("http_idle_overall_kib_per_client", http_overall);
    row.metric("http_active_kib_per_transfer", http_active);
    row.ratio("idle memory per client", ratio(http_idle, ftp_idle));
    row.ratio("memory per active transfer", ratio(http_active, ftp_active));
    // Differences under 1 KiB per client are within what RSS pages can show.
    let (more, less) = (
        ftp_idle > http_idle * 1.25 && ftp_idle - http_idle > 1.0,
        http_idle > ftp_idle * 1.25 && http_idle - ftp_idle > 1.0,
    );
    row.verdict = match (more, less) {
        (true, _) => Verdict::Holds,
        (_, true) => Verdict::DoesNotHold,
        _ => Verdict::Mixed,
    };
    let compared = match ratio(ftp_idle, http_idle).filter(|r| *r > 0.0) {
        Some(r) => format!("{r:.2}×"),
        None => "not comparable with".to_owned(),
    };
    row.why = format!(
        "an idle FTP session holds {compared} what an idle HTTP connection holds ({ftp_idle:.1} vs {http_idle:.1} KiB, median over batches); both keep a socket and buffers per client, HTTP's only until its keep-alive timeout"
    );
    Ok(row)
}
