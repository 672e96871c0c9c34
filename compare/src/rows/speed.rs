//! Row 2 (small files in sequence on one session or connection, then many clients at once) and
//! row 3 (a large file each way).

use std::time::{Duration, Instant};

use anyhow::bail;

use crate::counted::Counters;
use crate::http::{Body, Sink};
use crate::report::{Row, Verdict};
use crate::rows::{pattern, Ctx};
use crate::stats::{median, ratio, LatencySummary};

pub fn latency_header() -> Row {
    Row::new(
        2,
        "Latency and rate",
        "a stateful server answers repeat requests faster (no credentials or context to re-establish)",
    )
}

pub fn throughput_header() -> Row {
    Row::new(
        3,
        "Throughput",
        "bulk transfer speed does not depend on the design (same store, same data path)",
    )
}

fn summary(lat: &[Duration], wall: Duration) -> anyhow::Result<LatencySummary> {
    LatencySummary::new(lat, wall).ok_or_else(|| anyhow::anyhow!("no samples"))
}

fn fmt(s: &LatencySummary) -> String {
    format!(
        "p50 {:.2} ms, p99 {:.2} ms, {:.0} ops/s",
        s.p50_ms, s.p99_ms, s.ops_per_sec
    )
}

/// Rounds the sequential runs are split into, alternating FTP and HTTP, so a burst of load
/// from elsewhere on the machine falls on both sides alike.
const ROUNDS: usize = 4;

/// `n` downloads in sequence on one FTP session and on one HTTP connection, in alternating
/// rounds; returns (FTP, HTTP).
async fn sequential(ctx: &Ctx, n: usize) -> anyhow::Result<(LatencySummary, LatencySummary)> {
    let counters = Counters::new();
    let mut f = ctx.ftp(&counters).await?;
    let mut h = ctx.http(&counters);
    // Warm-up: the session's and the connection's first requests are not timed.
    for i in 0..10 {
        f.retr(&ctx.small(i)).await?;
        h.get(&ctx.small(i)).await?;
    }
    let (mut fl, mut hl) = (Vec::with_capacity(n), Vec::with_capacity(n));
    let (mut fw, mut hw) = (Duration::ZERO, Duration::ZERO);
    let per_round = n.div_ceil(ROUNDS);
    for round in 0..ROUNDS {
        let range = (round * per_round)..((round + 1) * per_round).min(n);
        let start = Instant::now();
        for i in range.clone() {
            let t = Instant::now();
            f.retr(&ctx.small(i)).await?;
            fl.push(t.elapsed());
        }
        fw += start.elapsed();
        ctx.progress.inc(range.len() as u64);
        let start = Instant::now();
        for i in range.clone() {
            let t = Instant::now();
            let (status, _) = h.get(&ctx.small(i)).await?;
            if status != 200 {
                bail!("GET {}: {status}", ctx.small(i));
            }
            hl.push(t.elapsed());
        }
        hw += start.elapsed();
        ctx.progress.inc(range.len() as u64);
    }
    f.quit().await;
    Ok((summary(&fl, fw)?, summary(&hl, hw)?))
}

/// `clients` FTP sessions, all logged in first, then each makes `ops` downloads at once.
async fn ftp_concurrent(ctx: &Ctx, clients: usize, ops: usize) -> anyhow::Result<LatencySummary> {
    let counters = Counters::new();
    let mut sessions = Vec::with_capacity(clients);
    for _ in 0..clients {
        sessions.push(ctx.ftp(&counters).await?);
    }
    let start = Instant::now();
    let mut tasks = Vec::new();
    for (c, mut f) in sessions.into_iter().enumerate() {
        let paths: Vec<String> = (0..ops).map(|i| ctx.small(c * ops + i)).collect();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(paths.len());
            for p in &paths {
                let t = Instant::now();
                f.retr(p).await?;
                lat.push(t.elapsed());
            }
            f.quit().await;
            anyhow::Ok(lat)
        }));
    }
    let mut lat = Vec::new();
    for t in tasks {
        lat.extend(t.await??);
    }
    summary(&lat, start.elapsed())
}

/// `clients` keep-alive connections, each warmed by one request, then `ops` downloads each.
async fn http_concurrent(ctx: &Ctx, clients: usize, ops: usize) -> anyhow::Result<LatencySummary> {
    let counters = Counters::new();
    let mut conns = Vec::with_capacity(clients);
    for _ in 0..clients {
        let mut h = ctx.http(&counters);
        h.get(&ctx.small(0)).await?;
        conns.push(h);
    }
    let start = Instant::now();
    let mut tasks = Vec::new();
    for (c, mut h) in conns.into_iter().enumerate() {
        let paths: Vec<String> = (0..ops).map(|i| ctx.small(c * ops + i)).collect();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(paths.len());
            for p in &paths {
                let t = Instant::now();
                let (status, _) = h.get(p).await?;
                if status != 200 {
                    bail!("GET {p}: {status}");
                }
                lat.push(t.elapsed());
            }
            anyhow::Ok(lat)
        }));
    }
    let mut lat = Vec::new();
    for t in tasks {
        lat.extend(t.await??);
    }
    summary(&lat, start.elapsed())
}

pub async fn latency(ctx: &Ctx, mut row: Row) -> anyhow::Result<Row> {
    let n = ctx.sizes.sequential;
    let (c, k) = (ctx.sizes.clients, ctx.sizes.ops_per_client);
    ctx.progress.row(&row.name, 2 * n as u64 + 2);
    let (fs, hs) = sequential(ctx, n).await?;
    ctx.progress.step("concurrent FTP");
    let fc = ftp_concurrent(ctx, c, k).await?;
    ctx.progress.step("concurrent HTTP");
    let hc = http_concurrent(ctx, c, k).await?;
    row.ftp = format!(
        "{n} in sequence on one session: {}; {c} sessions × {k}: {}",
        fmt(&fs),
        fmt(&fc)
    );
    row.http = format!(
        "{n} in sequence on one connection: {}; {c} connections × {k}: {}",
        fmt(&hs),
        fmt(&hc)
    );
    for (name, s) in [
        ("ftp_seq", &fs),
        ("http_seq", &hs),
        ("ftp_conc", &fc),
        ("http_conc", &hc),
    ] {
        row.metric(&format!("{name}_p50_ms"), s.p50_ms);
        row.metric(&format!("{name}_p99_ms"), s.p99_ms);
        row.metric(&format!("{name}_ops_per_sec"), s.ops_per_sec);
    }
    let checks = [
        fs.p50_ms < hs.p50_ms,
        fs.ops_per_sec > hs.ops_per_sec,
        fc.ops_per_sec > hc.ops_per_sec,
    ];
    row.verdict = Verdict::from_count(checks.iter().filter(|c| **c).count(), checks.len());
    let p50 = ratio(hs.p50_ms, fs.p50_ms).unwrap_or(f64::NAN);
    let conc = ratio(fc.ops_per_sec, hc.ops_per_sec).unwrap_or(f64::NAN);
    row.why = format!(
        "in sequence HTTP's p50 is {p50:.2}× FTP's ({:.2} vs {:.2} ms: FTP pays PASV and a new data connection per file); with {c} clients FTP does {conc:.2}× HTTP's rate",
        hs.p50_ms, fs.p50_ms
    );
    row.ratio("p50 latency, sequential", ratio(hs.p50_ms, fs.p50_ms));
    // Chart ratios are costs, HTTP's over FTP's: time per download is the inverse of a rate.
    row.ratio(
        "time per download, sequential",
        ratio(fs.ops_per_sec, hs.ops_per_sec),
    );
    row.ratio(
        &format!("time per download, {c} clients"),
        ratio(fc.ops_per_sec, hc.ops_per_sec),
    );
    Ok(row)
}

/// MB/s (10^6 bytes per second).
fn mbps(bytes: u64, d: Duration) -> f64 {
    bytes as f64 / 1e6 / d.as_secs_f64().max(1e-9)
}

/// One round of row 3: upload over each protocol, then download over each; MB/s as
/// (ftp up, http up, ftp down, http down).
async fn transfer_round(ctx: &Ctx, pat: &[u8]) -> anyhow::Result<[f64; 4]> {
    let size = ctx.sizes.big_bytes;
    let counters = Counters::new();
    let mut f = ctx.ftp(&counters).await?;
    let t = Instant::now();
    f.stor(&ctx.big(), size, pat).await?;
    let ftp_up = mbps(size, t.elapsed());
    ctx.progress.step("HTTP upload");
    let mut h = ctx.http(&counters);
    let http_path = format!("{}/big-http.bin", ctx.dir);
    let t = Instant::now();
    let r = h
        .request(
            "PUT",
            &http_path,
            &[],
            Body::Pattern {
                len: size,
                pattern: pat,
            },
            &mut Sink::discard(),
        )
        .await?;
    if !r.ok() {
        bail!("PUT {http_path}: {}", r.status);
    }
    let http_up = mbps(size, t.elapsed());
    ctx.progress.step("FTP download");
    let t = Instant::now();
    let got = f.retr(&ctx.big()).await?;
    let ftp_down = mbps(got, t.elapsed());
    if got != size {
        bail!("FTP download of {} returned {got} bytes", ctx.big());
    }
    ctx.progress.step("HTTP download");
    let t = Instant::now();
    let (status, got) = h.get(&ctx.big()).await?;
    let http_down = mbps(got, t.elapsed());
    if status != 200 || got != size {
        bail!("HTTP download of {}: {status}, {got} bytes", ctx.big());
    }
    let r = h
        .request("DELETE", &http_path, &[], Body::Empty, &mut Sink::discard())
        .await?;
    if !r.ok() {
        bail!("DELETE {http_path}: {}", r.status);
    }
    f.quit().await;
    Ok([ftp_up, http_up, ftp_down, http_down])
}

pub async fn throughput(ctx: &Ctx, mut row: Row) -> anyhow::Result<Row> {
    let size = ctx.sizes.big_bytes;
    let pat = pattern();
    // Several rounds, medians: one large transfer on a shared machine is a noisy sample.
    let rounds = if ctx.sizes.quick { 2 } else { 3 };
    ctx.progress.row(&row.name, 4 * rounds as u64);
    let mut samples: [Vec<f64>; 4] = Default::default();
    for _ in 0..rounds {
        let r = transfer_round(ctx, &pat).await?;
        for (k, v) in r.into_iter().enumerate() {
            samples[k].push(v);
        }
        ctx.progress.step("FTP upload");
    }
    let med = |k: usize| median(&samples[k]).unwrap_or(0.0);
    let (ftp_up, http_up, ftp_down, http_down) = (med(0), med(1), med(2), med(3));
    let mib = size >> 20;
    row.ftp = format!(
        "{mib} MiB: download {ftp_down:.0} MB/s, upload {ftp_up:.0} MB/s (median of {rounds})"
    );
    row.http = format!(
        "{mib} MiB: download {http_down:.0} MB/s, upload {http_up:.0} MB/s (median of {rounds})"
    );
    row.metric("ftp_download_mb_per_sec", ftp_down);
    row.metric("ftp_upload_mb_per_sec", ftp_up);
    row.metric("http_download_mb_per_sec", http_down);
    row.metric("http_upload_mb_per_sec", http_up);
    let down = ratio(http_down, ftp_down).unwrap_or(f64::NAN);
    let up = ratio(http_up, ftp_up).unwrap_or(f64::NAN);
    row.ratio("time per byte, download", ratio(ftp_down, http_down));
    row.ratio("time per byte, upload", ratio(ftp_up, http_up));
    let near = |r: f64| (0.8..=1.25).contains(&r);
    row.verdict = Verdict::from_count(usize::from(near(down)) + usize::from(near(up)), 2);
    row.why = format!(
        "HTTP ÷ FTP: download {down:.2}, upload {up:.2} (within 0.8-1.25 counts as the same)"
    );
    Ok(row)
}
