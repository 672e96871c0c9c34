//! Row 6: clients keep working while the server restarts (SIGTERM, then a new process on the
//! same store and ports). Small-file clients of each kind count failed operations, new logins
//! and their longest pause; one large download per side resumes (FTP REST, HTTP Range) and
//! counts the bytes it received twice.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::counted::Counters;
use crate::ftp::FtpClient;
use crate::http::{pace, Body, HttpClient, Sink};
use crate::report::{Row, Verdict};
use std::sync::Arc;

use crate::rows::{ensure_big, restart_server, Ctx};
use crate::server::Endpoint;
use crate::stats::median;

pub fn header() -> Row {
    Row::new(
        6,
        "Restart",
        "a stateless server survives a restart unnoticed; a stateful one loses its sessions",
    )
}

/// Limit for each wait during the restart: long enough for a login queued behind every other
/// client's password check (a client that gives up and retries only queues another check).
const WAIT: Duration = Duration::from_secs(15);
/// Pause between attempts to reach a server that is down.
const RETRY: Duration = Duration::from_millis(25);

/// What one small-file client saw.
#[derive(Debug, Default, Clone, Copy)]
struct Worker {
    ok: u64,
    /// Operations that failed on an open session or connection.
    failed: u64,
    /// Logins after the first one (FTP), or reconnections (HTTP).
    again: u64,
    /// Longest time between two successful operations.
    longest_gap: Duration,
    /// From the SIGTERM to this client's first success on the new server.
    resumed_after: Option<Duration>,
}

/// The restart's moments, shared with the clients.
#[derive(Debug, Default)]
struct Clock {
    /// When the SIGTERM was sent.
    killed: OnceLock<Instant>,
    /// When the new server said it was serving.
    up: OnceLock<Instant>,
    /// Clients that have succeeded on the new server.
    resumed: AtomicUsize,
}

impl Worker {
    fn success(&mut self, last: &mut Instant, clock: &Clock) {
        self.ok += 1;
        self.longest_gap = self.longest_gap.max(last.elapsed());
        *last = Instant::now();
        if self.resumed_after.is_none() && clock.up.get().is_some() {
            if let Some(killed) = clock.killed.get() {
                self.resumed_after = Some(killed.elapsed());
                clock.resumed.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// Downloads small files on `first` (logged in already) until `stop`, logging in again when
/// the session is lost.
async fn ftp_worker(
    ep: Endpoint,
    first: FtpClient,
    path: String,
    stop: CancellationToken,
    clock: Arc<Clock>,
) -> Worker {
    let counters = Arc::clone(first.counters());
    let mut w = Worker::default();
    let mut session: Option<FtpClient> = Some(first);
    let mut logins = 1u64;
    let mut last = Instant::now();
    // Bounded by the stop token, which run() cancels after a fixed time.
    while !stop.is_cancelled() {
        let Some(f) = session.as_mut() else {
            match FtpClient::login_to(ep.ftp, &ep.user, &ep.pass, &counters, WAIT).await {
                Ok(f) => {
                    logins += 1;
                    session = Some(f);
                }
                Err(_) => tokio::time::sleep(RETRY).await,
            }
            continue;
        };
        match f.retr(&path).await {
            Ok(_) => w.success(&mut last, &clock),
            Err(_) => {
                w.failed += 1;
                session = None;
            }
        }
    }
    w.again = logins.saturating_sub(1);
    // A client still waiting when the run ends: its pause so far counts too.
    w.longest_gap = w.longest_gap.max(last.elapsed());
    w
}

/// Downloads small files on `h` (connected and warm) until `stop`, reconnecting when the
/// connection breaks.
async fn http_worker(
    mut h: HttpClient,
    path: String,
    stop: CancellationToken,
    clock: Arc<Clock>,
) -> Worker {
    let mut w = Worker::default();
    let mut last = Instant::now();
    let mut connects = 1u64;
    while !stop.is_cancelled() {
        if !h.is_connected() {
            if h.connect().await.is_err() {
                tokio::time::sleep(RETRY).await;
                continue;
            }
            connects += 1;
        }
        match h.get(&path).await {
            Ok((200, _)) => w.success(&mut last, &clock),
            _ => w.failed += 1,
        }
    }
    w.again = connects.saturating_sub(1);
    w.longest_gap = w.longest_gap.max(last.elapsed());
    w
}

/// A large download that resumes where it broke off.
#[derive(Debug, Default, Clone, Copy)]
struct Resume {
    /// Times the transfer broke and was resumed.
    resumes: u64,
    /// Bytes received beyond the file's size.
    twice: u64,
    /// Logins needed to resume (FTP).
    logins: u64,
    complete: bool,
}

async fn ftp_big(
    ep: Endpoint,
    first: FtpClient,
    path: String,
    size: u64,
    rate: u64,
    stop: Instant,
) -> Resume {
    let counters = Arc::clone(first.counters());
    let mut first_session = Some(first);
    let mut r = Resume::default();
    let mut offset = 0u64;
    let mut received = 0u64;
    let mut buf = vec![0u8; 64 * 1024];
    let started = Instant::now();
    let mut first = true;
    while Instant::now() < stop && offset < size {
        let mut f = match first_session.take() {
            Some(f) => f,
            None => match FtpClient::login_to(ep.ftp, &ep.user, &ep.pass, &counters, WAIT).await {
                Ok(f) => f,
                Err(_) => {
                    tokio::time::sleep(RETRY).await;
                    continue;
                }
            },
        };
        if !first {
            r.logins += 1;
        }
        let paced = first;
        first = false;
        let Ok(mut data) = f.start_retr(&path, offset).await else {
            r.resumes += 1;
            continue;
        };
        let mut broke = false;
        loop {
            match data.read_some(&mut buf).await {
                Ok(0) => break,
                Ok(n) => {
                    offset += n as u64;
                    received += n as u64;
                    if paced {
                        pace(started, received, rate).await;
                    }
                }
                Err(_) => {
                    broke = true;
                    break;
                }
            }
        }
        drop(data);
        if !broke && f.finish_transfer().await.is_ok() && offset >= size {
            r.complete = true;
            f.quit().await;
            break;
        }
        r.resumes += 1;
    }
    r.twice = received.saturating_sub(size);
    r
}

async fn http_big(mut h: HttpClient, path: String, size: u64, rate: u64, stop: Instant) -> Resume {
    let mut r = Resume::default();
    let mut offset = 0u64;
    let mut received = 0u64;
    let mut first = true;
    while Instant::now() < stop && offset < size {
        if h.connect().await.is_err() {
            tokio::time::sleep(RETRY).await;
            continue;
        }
        let mut sink = Sink {
            pace: first.then_some(rate),
            ..Sink::discard()
        };
        first = false;
        let range = format!("bytes={offset}-");
        let headers: Vec<(&str, &str)> = if offset > 0 {
            vec![("Range", range.as_str())]
        } else {
            Vec::new()
        };
        let result = h
            .request("GET", &path, &headers, Body::Empty, &mut sink)
            .await;
        received += sink.received;
        match result {
            Ok(resp) if resp.status == 206 || (resp.status == 200 && offset == 0) => {
                offset += sink.received;
                if offset >= size {
                    r.complete = true;
                    break;
                }
            }
            // A 200 to a range request: the server sent the whole file again.
            Ok(resp) if resp.status == 200 => {
                offset = sink.received;
                if offset >= size {
                    r.complete = true;
                    break;
                }
            }
            Ok(_) => {}
            Err(_) => {
                offset += sink.received;
                r.resumes += 1;
            }
        }
    }
    r.twice = received.saturating_sub(size);
    r
}

pub async fn run(ctx: &mut Ctx, mut row: Row) -> anyhow::Result<Row> {
    if ctx.embedded.is_none() {
        return Ok(row.not_measured("needs --embedded (compare restarts the server itself)"));
    }
    ctx.progress.row(&row.name, 4);
    ensure_big(ctx).await?;
    let quick = ctx.sizes.quick;
    let (before, after) = if quick {
        (Duration::from_millis(1500), Duration::from_millis(2000))
    } else {
        (Duration::from_secs(3), Duration::from_secs(4))
    };
    let size = ctx.sizes.big_bytes;
    // Paced so the large downloads are in the middle when the server stops.
    let rate = (size as f64 / (before.as_secs_f64() * 4.0)) as u64;
    let n = ctx.sizes.restart_clients;
    let clock = Arc::new(Clock::default());
    let stop = CancellationToken::new();
    let hard_stop = Instant::now() + Duration::from_secs(180);
    let ep = ctx.endpoint.clone();
    // Every client logged in (FTP) or connected with its credentials verified once (HTTP)
    // before the clock starts.
    let counters = Counters::new();
    let mut ftp_tasks = Vec::new();
    let mut http_tasks = Vec::new();
    let warm_http = |counters: &Arc<Counters>| {
        let auth = crate::http::Auth::Basic {
            user: ep.user.clone(),
            pass: ep.pass.clone(),
        };
        HttpClient::new(ep.http, auth, counters, WAIT)
    };
    let mut ftp_sessions = Vec::new();
    let mut http_conns = Vec::new();
    for i in 0..ctx.sizes.restart_clients {
        ftp_sessions.push(ctx.ftp(&counters).await?);
        let mut h = warm_http(&counters);
        h.get(&ctx.small(i)).await?;
        http_conns.push(h);
    }
    let ftp_big_session = ctx.ftp(&counters).await?;
    let mut http_big_conn = warm_http(&counters);
    http_big_conn.get(&ctx.small(0)).await?;
    for (i, (f, h)) in ftp_sessions.into_iter().zip(http_conns).enumerate() {
        ftp_tasks.push(tokio::spawn(ftp_worker(
            ep.clone(),
            f,
            ctx.small(i),
            stop.clone(),
            Arc::clone(&clock),
        )));
        http_tasks.push(tokio::spawn(http_worker(
            h,
            ctx.small(i + 100),
            stop.clone(),
            Arc::clone(&clock),
        )));
    }
    let ftp_big_task = tokio::spawn(ftp_big(
        ep.clone(),
        ftp_big_session,
        ctx.big(),
        size,
        rate,
        hard_stop,
    ));
    let http_big_task = tokio::spawn(http_big(http_big_conn, ctx.big(), size, rate, hard_stop));
    tokio::time::sleep(before).await;
    ctx.progress.step("restarting the server");
    let _ = clock.killed.set(Instant::now());
    let downtime = restart_server(ctx).await?;
    let _ = clock.up.set(Instant::now());
    ctx.progress.step("clients resuming");
    // Until every client has worked on the new server (bounded), then a little longer.
    let deadline = Instant::now() + Duration::from_secs(60);
    while clock.resumed.load(Ordering::Relaxed) < 2 * n && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(after).await;
    stop.cancel();
    let mut ftp = Vec::new();
    for t in ftp_tasks {
        ftp.push(t.await?);
    }
    let mut http = Vec::new();
    for t in http_tasks {
        http.push(t.await?);
    }
    ctx.progress.step("large downloads finishing");
    let fb = ftp_big_task.await?;
    let hb = http_big_task.await?;

    let failed = |v: &[Worker]| v.iter().map(|w| w.failed).sum::<u64>();
    let again = |v: &[Worker]| v.iter().filter(|w| w.again > 0).count();
    let ok = |v: &[Worker]| v.iter().map(|w| w.ok).sum::<u64>();
    let gap = |v: &[Worker]| {
        let ms: Vec<f64> = v
            .iter()
            .map(|w| w.longest_gap.as_secs_f64() * 1e3)
            .collect();
        median(&ms).unwrap_or(f64::NAN)
    };
    let (ff, hf) = (failed(&ftp), failed(&http));
    let (fa, ha) = (again(&ftp), again(&http));
    let (fg, hg) = (gap(&ftp), gap(&http));
    let resumed = |v: &[Worker]| {
        let ms: Vec<f64> = v
            .iter()
            .map(|w| w.resumed_after.map_or(f64::NAN, |d| d.as_secs_f64() * 1e3))
            .collect();
        median(&ms).unwrap_or(f64::NAN)
    };
    let (fr, hr) = (resumed(&ftp), resumed(&http));
    let down_ms = downtime.as_secs_f64() * 1e3;
    let twice = |r: &Resume| {
        format!(
            "{} sent twice{}",
            crate::report::bytes(r.twice as f64),
            if r.complete {
                ""
            } else {
                " (did not complete)"
            }
        )
    };
    row.ftp = format!(
        "{ff} failed of {} downloads; {fa} of {n} sessions lost, logged in again; work again {fr:.0} ms after the SIGTERM (median of clients); large download resumed with REST ({} resume, {} login), {}",
        ok(&ftp) + ff,
        fb.resumes,
        fb.logins,
        twice(&fb),
    );
    row.http = format!(
        "{hf} failed of {} requests; no logins ({ha} of {n} clients reconnected); work again {hr:.0} ms after the SIGTERM; large download resumed with Range ({} resume), {}",
        ok(&http) + hf,
        hb.resumes,
        twice(&hb),
    );
    row.metric("server_restart_ms", down_ms);
    row.metric("ftp_failed_ops", ff as f64);
    row.metric("http_failed_ops", hf as f64);
    row.metric("ftp_clients_logged_in_again", fa as f64);
    row.metric("http_clients_logged_in_again", 0.0);
    row.metric("ftp_resume_bytes_twice", fb.twice as f64);
    row.metric("http_resume_bytes_twice", hb.twice as f64);
    row.metric("ftp_work_again_ms", fr);
    row.metric("http_work_again_ms", hr);
    row.metric("ftp_longest_pause_ms", fg);
    row.metric("http_longest_pause_ms", hg);
    row.ratio(
        "time until work flows again after a restart",
        crate::stats::ratio(hr, fr),
    );
    let sessions_lost = fa > 0;
    let http_no_worse = hf <= ff && hr <= fr * 1.1;
    row.verdict = match (sessions_lost, http_no_worse) {
        (true, true) => Verdict::Holds,
        (false, _) => Verdict::DoesNotHold,
        (true, false) => Verdict::Mixed,
    };
    row.why = format!(
        "the server was away {down_ms:.0} ms (stop plus start); {fa} of {n} FTP sessions were lost and logged in again, and work resumed {fr:.0} ms after the SIGTERM; HTTP clients lost {hf} requests, logged in nowhere, and resumed after {hr:.0} ms; both resumed the large transfer at the byte ({} / {} B sent twice)",
        fb.twice, hb.twice
    );
    Ok(row)
}
