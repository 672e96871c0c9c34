//! Row 5: server CPU of authentication. FTP logs in once per session (one argon2
//! verification) and then only runs commands; HTTP checks credentials on every request: Basic
//! with the verified-credential cache, Basic without it (a second embedded server with
//! `credential_cache_entries = 0`), and a bearer token (an HMAC and one user lookup).

use std::time::Instant;

use anyhow::bail;

use crate::counted::Counters;
use crate::http::{Auth, HttpClient};
use crate::report::{Row, Verdict};
use crate::rows::wire::mint_token_at;
use crate::rows::{mkcol, put, small_content, Ctx};
use crate::server::{proc_sample, Embedded};
use crate::stats::ratio;
use crate::OP_TIMEOUT;

pub fn header() -> Row {
    Row::new(
        5,
        "Authentication cost",
        "checking credentials on every request costs the stateless server CPU that a session's single login saves",
    )
}

/// CPU microseconds per operation between two samples of `pid`.
fn cpu_us(pid: u32, before: u64, n: usize) -> anyhow::Result<f64> {
    let after = proc_sample(pid)?.cpu_ns;
    Ok(after.saturating_sub(before) as f64 / 1e3 / n.max(1) as f64)
}

async fn http_gets(
    pid: u32,
    client: &mut HttpClient,
    path: &str,
    n: usize,
) -> anyhow::Result<(f64, f64)> {
    let (status, _) = client.get(path).await?;
    if status != 200 {
        bail!("GET {path}: {status}");
    }
    let before = proc_sample(pid)?.cpu_ns;
    let t = Instant::now();
    for _ in 0..n {
        let (status, _) = client.get(path).await?;
        if status != 200 {
            bail!("GET {path}: {status}");
        }
    }
    let ms = t.elapsed().as_secs_f64() * 1e3 / n.max(1) as f64;
    Ok((cpu_us(pid, before, n)?, ms))
}

pub async fn run(ctx: &Ctx, mut row: Row) -> anyhow::Result<Row> {
    let Some(pid) = ctx.pid else {
        return Ok(row.not_measured("needs --server-pid or --embedded"));
    };
    let n = ctx.sizes.auth_requests;
    let logins = ctx.sizes.logins;
    ctx.progress.row(&row.name, 5);
    let path = ctx.small(0);
    let counters = Counters::new();

    // FTP: logins (connect, USER, PASS, TYPE I, QUIT), then downloads on one session.
    let before = proc_sample(pid)?.cpu_ns;
    let t = Instant::now();
    for _ in 0..logins {
        ctx.ftp(&counters).await?.quit().await;
    }
    let login_ms = t.elapsed().as_secs_f64() * 1e3 / logins.max(1) as f64;
    let ftp_login = cpu_us(pid, before, logins)?;
    let mut f = ctx.ftp(&counters).await?;
    f.retr(&path).await?;
    let before = proc_sample(pid)?.cpu_ns;
    for _ in 0..n {
        f.retr(&path).await?;
    }
    let ftp_op = cpu_us(pid, before, n)?;
    f.quit().await;
    ctx.progress.step("HTTP Basic, cached");

    let mut h = ctx.http(&counters);
    let (basic, _) = http_gets(pid, &mut h, &path, n).await?;
    ctx.progress.step("HTTP bearer");
    let token = mint_token_at(ctx.endpoint.http, ctx.basic()).await?;
    let mut b = HttpClient::new(
        ctx.endpoint.http,
        Auth::Bearer(token),
        &counters,
        OP_TIMEOUT,
    );
    let (bearer, _) = http_gets(pid, &mut b, &path, n).await?;
    ctx.progress.step("HTTP Basic, no cache");

    // Basic without the cache: a second server configured without it.
    let uncached = match &ctx.exe {
        Some(exe) => {
            let exe = exe.clone();
            let second = tokio::task::spawn_blocking(move || {
                Embedded::start(&exe, "credential_cache_entries = 0\n")
            })
            .await??;
            let result = uncached_gets(&second, ctx.sizes.uncached).await;
            tokio::task::spawn_blocking(move || drop(second)).await?;
            Some(result?)
        }
        None => None,
    };
    ctx.progress.step("");

    let ms = |us: f64| us / 1e3;
    row.ftp = format!(
        "login {:.1} ms CPU once per session ({login_ms:.0} ms wall); then {ftp_op:.0} µs CPU per download",
        ms(ftp_login)
    );
    row.http = match uncached {
        Some((u, wall)) => format!(
            "per request: Basic with the cache {basic:.0} µs, Basic without it {:.1} ms ({wall:.0} ms wall), bearer token {bearer:.0} µs CPU",
            ms(u)
        ),
        None => format!(
            "per request: Basic with the cache {basic:.0} µs, bearer token {bearer:.0} µs CPU; Basic without the cache not measured: needs --embedded"
        ),
    };
    row.metric("ftp_login_cpu_us", ftp_login);
    row.metric("ftp_download_cpu_us", ftp_op);
    row.metric("http_basic_cached_cpu_us", basic);
    row.metric("http_bearer_cpu_us", bearer);
    if let Some((u, _)) = uncached {
        row.metric("http_basic_uncached_cpu_us", u);
    }
    let cached_ratio = ratio(basic, ftp_op);
    let bearer_ratio = ratio(bearer, ftp_op);
    let uncached_ratio = uncached.and_then(|(u, _)| ratio(u, ftp_op));
    row.ratio("CPU/request, Basic cached", cached_ratio);
    row.ratio("CPU/request, bearer", bearer_ratio);
    row.ratio("CPU/request, Basic uncached", uncached_ratio);
    let costly = |r: Option<f64>| r.is_some_and(|r| r > 1.5);
    row.verdict = match (
        costly(uncached_ratio),
        costly(cached_ratio) || costly(bearer_ratio),
    ) {
        (true, true) => Verdict::Holds,
        (true, false) => Verdict::Mixed,
        (false, true) => Verdict::Mixed,
        (false, false) => Verdict::DoesNotHold,
    };
    let vs_login = uncached.and_then(|(u, _)| ratio(u, ftp_login));
    row.why = format!(
        "HTTP request ÷ FTP download, server CPU: Basic with the cache {:.2}, bearer {:.2}, Basic without the cache {}; an uncached check costs {} FTP login, and FTP logs in once per session",
        cached_ratio.unwrap_or(f64::NAN),
        bearer_ratio.unwrap_or(f64::NAN),
        uncached_ratio.map_or("not measured".to_owned(), |r| format!("{r:.0}")),
        vs_login.map_or("(not measured) one".to_owned(), |r| format!("{r:.2}×")),
    );
    Ok(row)
}

/// `n` Basic requests to a server without the credential cache: CPU µs and wall ms each.
async fn uncached_gets(server: &Embedded, n: usize) -> anyhow::Result<(f64, f64)> {
    let counters = Counters::new();
    let e = &server.endpoint;
    let auth = Auth::Basic {
        user: e.user.clone(),
        pass: e.pass.clone(),
    };
    let mut h = HttpClient::new(e.http, auth, &counters, OP_TIMEOUT);
    mkcol(&mut h, "/c").await?;
    put(&mut h, "/c/f", &small_content(0)).await?;
    http_gets(server.pid(), &mut h, "/c/f", n).await
}
