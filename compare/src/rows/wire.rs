//! Row 1: bytes on the wire and round trips of one download, one listing, one upload and one
//! delete, on a logged-in FTP session (PASV and the data connection included) and on a warm
//! HTTP keep-alive connection (credentials on every request).

use crate::counted::{Counters, Traffic};
use crate::http::{Auth, Body, Sink};
use crate::report::{Row, Verdict};
use crate::rows::{small_content, Ctx, SMALL};
use crate::stats::ratio;

pub fn header() -> Row {
    Row::new(
        1,
        "Request size and round trips",
        "a stateful server gets smaller requests, since the session holds credentials and context",
    )
}

const OPS: [&str; 4] = ["download", "listing", "upload", "delete"];

pub async fn run(ctx: &Ctx, mut row: Row) -> anyhow::Result<Row> {
    ctx.progress.row(&row.name, 3);
    let dir = &ctx.dir;
    let data = small_content(7);
    // FTP: logged in first (the login is the session's, not the operation's).
    let counters = Counters::new();
    let mut f = ctx.ftp(&counters).await?;
    let mut ftp = Vec::new();
    let t = counters.snapshot();
    f.retr(&ctx.small(0)).await?;
    ftp.push(counters.snapshot().since(t));
    let t = counters.snapshot();
    f.mlsd(&format!("{dir}/list")).await?;
    ftp.push(counters.snapshot().since(t));
    let t = counters.snapshot();
    f.stor(&format!("{dir}/wire-ftp.bin"), SMALL, &data).await?;
    ftp.push(counters.snapshot().since(t));
    let t = counters.snapshot();
    f.dele(&format!("{dir}/wire-ftp.bin")).await?;
    ftp.push(counters.snapshot().since(t));
    f.quit().await;
    ctx.progress.step("http");

    // HTTP: a warm connection (one request before, like the FTP login).
    let counters = Counters::new();
    let mut h = ctx.http(&counters);
    h.get(&ctx.small(1)).await?;
    let mut http = Vec::new();
    let t = counters.snapshot();
    expect_ok(h.get(&ctx.small(0)).await?.0, "GET")?;
    http.push(counters.snapshot().since(t));
    let t = counters.snapshot();
    let mut sink = Sink::discard();
    let r = h
        .request(
            "GET",
            &format!("{dir}/list/"),
            &[("Accept", "application/json")],
            Body::Empty,
            &mut sink,
        )
        .await?;
    expect_ok(r.status, "GET listing")?;
    http.push(counters.snapshot().since(t));
    let t = counters.snapshot();
    let r = h
        .request(
            "PUT",
            &format!("{dir}/wire-http.bin"),
            &[],
            Body::Pattern {
                len: SMALL,
                pattern: &data,
            },
            &mut Sink::discard(),
        )
        .await?;
    expect_ok(r.status, "PUT")?;
    http.push(counters.snapshot().since(t));
    let t = counters.snapshot();
    let r = h
        .request(
            "DELETE",
            &format!("{dir}/wire-http.bin"),
            &[],
            Body::Empty,
            &mut Sink::discard(),
        )
        .await?;
    expect_ok(r.status, "DELETE")?;
    http.push(counters.snapshot().since(t));
    ctx.progress.step("bearer");

    // The same download with a bearer token instead of Basic.
    let token = mint_token(ctx).await?;
    let counters = Counters::new();
    let mut b = ctx.http(&counters);
    b.set_auth(Auth::Bearer(token));
    b.get(&ctx.small(1)).await?;
    let t = counters.snapshot();
    expect_ok(b.get(&ctx.small(0)).await?.0, "GET with a token")?;
    let bearer = counters.snapshot().since(t);

    let fmt = |v: &[Traffic]| {
        OPS.iter()
            .zip(v)
            .map(|(op, t)| format!("{op} {}↑/{}↓ B, {} RT", t.sent, t.received, t.round_trips))
            .collect::<Vec<_>>()
            .join("; ")
    };
    row.ftp = format!(
        "{} (each transfer opens a data connection: {} TCP handshakes in all)",
        fmt(&ftp),
        ftp.iter().map(|t| t.connections).sum::<u64>()
    );
    row.http = format!(
        "{}; download with a bearer token: {}↑ B",
        fmt(&http),
        bearer.sent
    );
    let mut smaller = 0;
    let mut fewer_rt = 0;
    for ((op, a), b) in OPS.iter().zip(&ftp).zip(&http) {
        row.metric(&format!("ftp_{op}_sent_bytes"), a.sent as f64);
        row.metric(&format!("ftp_{op}_received_bytes"), a.received as f64);
        row.metric(&format!("ftp_{op}_round_trips"), a.round_trips as f64);
        row.metric(&format!("http_{op}_sent_bytes"), b.sent as f64);
        row.metric(&format!("http_{op}_received_bytes"), b.received as f64);
        row.metric(&format!("http_{op}_round_trips"), b.round_trips as f64);
        // The upload's body is the same on both sides; compare what surrounds it.
        if a.sent < b.sent {
            smaller += 1;
        }
        if a.round_trips <= b.round_trips {
            fewer_rt += 1;
        }
    }
    row.metric("http_bearer_download_sent_bytes", bearer.sent as f64);
    let req_ratio = ratio(http[0].sent as f64, ftp[0].sent as f64);
    let rt_ratio = ratio(http[0].round_trips as f64, ftp[0].round_trips as f64);
    row.ratio("request bytes, download", req_ratio);
    row.ratio(
        "request bytes, listing",
        ratio(http[1].sent as f64, ftp[1].sent as f64),
    );
    row.ratio("round trips, download", rt_ratio);
    row.verdict = match (
        Verdict::from_count(smaller, OPS.len()),
        Verdict::from_count(fewer_rt, OPS.len()),
    ) {
        (Verdict::Holds, Verdict::Holds) => Verdict::Holds,
        (Verdict::DoesNotHold, _) => Verdict::DoesNotHold,
        _ => Verdict::Mixed,
    };
    row.why = format!(
        "FTP sends fewer bytes on {smaller} of 4 operations (download: {} vs {} B, {:.1}× fewer) but needs as few round trips on only {fewer_rt} of 4 (download: {} vs {})",
        ftp[0].sent,
        http[0].sent,
        req_ratio.unwrap_or(f64::NAN),
        ftp[0].round_trips,
        http[0].round_trips,
    );
    Ok(row)
}

fn expect_ok(status: u16, what: &str) -> anyhow::Result<()> {
    if (200..300).contains(&status) {
        Ok(())
    } else {
        anyhow::bail!("{what}: {status}")
    }
}

/// A bearer token for the endpoint's user, from `POST /_/token`.
pub async fn mint_token(ctx: &Ctx) -> anyhow::Result<String> {
    mint_token_at(ctx.endpoint.http, ctx.basic()).await
}

/// A bearer token from `POST /_/token?ttl=1h` at `addr` with Basic credentials `auth`.
pub async fn mint_token_at(addr: std::net::SocketAddr, auth: Auth) -> anyhow::Result<String> {
    let counters = Counters::new();
    let mut c = crate::http::HttpClient::new(addr, auth, &counters, crate::OP_TIMEOUT);
    let mut sink = Sink::collect(64 * 1024);
    let r = c
        .request("POST", "/_/token?ttl=1h", &[], Body::Empty, &mut sink)
        .await?;
    expect_ok(r.status, "POST /_/token")?;
    let v: serde_json::Value = serde_json::from_slice(&sink.data)?;
    v.get("token")
        .and_then(|t| t.as_str())
        .map(str::to_owned)
        .ok_or_else(|| anyhow::anyhow!("POST /_/token: no token in the answer"))
}
