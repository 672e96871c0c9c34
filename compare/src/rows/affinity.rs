//! Row 8: two listeners of each protocol over one store (the in-process [`Lab`]). An HTTP
//! client alternates between the two gateways request by request (writing on one, reading on
//! the other); an FTP session prepared on one listener is switched to the other, and the row
//! counts what the client has to redo there.

use std::time::{Duration, Instant};

use crate::counted::Counters;
use crate::ftp::{FtpClient, FtpError};
use crate::http::{Auth, Body, HttpClient, Sink};
use crate::lab::Lab;
use crate::report::{Row, Verdict};
use crate::rows::{mkcol, small_content, Ctx, SMALL};

pub fn header() -> Row {
    Row::new(
        8,
        "Any instance serves any request",
        "any stateless instance can serve any request; a stateful session is pinned to the server that holds it",
    )
}

const USER: &str = "roamer";
const WAIT: Duration = Duration::from_secs(10);

pub async fn run(ctx: &Ctx, mut row: Row) -> anyhow::Result<Row> {
    if ctx.embedded.is_none() {
        return Ok(row.not_measured(
            "needs --embedded: one filegate serve has one HTTP and one FTP listener",
        ));
    }
    ctx.progress
        .row(&row.name, ctx.sizes.alternating as u64 + 2);
    let lab = Lab::start().await?;
    let result = measure(&lab, ctx, &mut row).await;
    lab.stop().await;
    result?;
    Ok(row)
}

async fn measure(lab: &Lab, ctx: &Ctx, row: &mut Row) -> anyhow::Result<()> {
    let pass = format!("pw-{:x}", rand::random::<u64>());
    lab.add_user(USER, &pass).await?;
    let auth = Auth::Basic {
        user: USER.into(),
        pass: pass.clone(),
    };
    // HTTP: write on one gateway, read it back on the other, alternating which is which.
    let counters = Counters::new();
    let mut gw = [
        HttpClient::new(lab.http[0], auth.clone(), &counters, WAIT),
        HttpClient::new(lab.http[1], auth.clone(), &counters, WAIT),
    ];
    mkcol(&mut gw[0], "/r8").await?;
    let n = ctx.sizes.alternating;
    let mut errors = 0u64;
    let mut served = [0u64; 2];
    let t = Instant::now();
    for i in 0..n {
        let (w, r) = (i % 2, (i + 1) % 2);
        let data = small_content(i);
        let path = format!("/r8/f{i}");
        let put = gw[w]
            .request(
                "PUT",
                &path,
                &[],
                Body::Pattern {
                    len: SMALL,
                    pattern: &data,
                },
                &mut Sink::discard(),
            )
            .await;
        match put {
            Ok(resp) if resp.ok() => served[w] += 1,
            _ => errors += 1,
        }
        let mut sink = Sink::collect(2 * SMALL as usize);
        match gw[r]
            .request("GET", &path, &[], Body::Empty, &mut sink)
            .await
        {
            Ok(resp) if resp.status == 200 && sink.data == data => served[r] += 1,
            _ => errors += 1,
        }
        ctx.progress.inc(1);
    }
    let http_ms = t.elapsed().as_secs_f64() * 1e3 / (2 * n).max(1) as f64;
    ctx.progress.step("FTP switch");

    // FTP: a session set up on listener A (login, binary type, working directory).
    let counters = Counters::new();
    let mut a = FtpClient::login_to(lab.ftp[0], USER, &pass, &counters, WAIT).await?;
    a.expect("CWD /r8", &[250]).await?;
    a.retr("f0").await?;
    // Switched to listener B mid-session: B has never seen this client.
    let t = Instant::now();
    let before = counters.snapshot();
    let mut b = FtpClient::connect(lab.ftp[1], &counters, WAIT).await?;
    let connect = counters.snapshot().since(before);
    let connect_time = t.elapsed();
    let first = match b.retr("f0").await {
        Ok(_) => "accepted".to_owned(),
        Err(FtpError::Refused(r)) => format!("{} {}", r.code, r.text.trim()),
        Err(e) => e.to_string(),
    };
    let refused = first != "accepted";
    // What the client must redo before B serves it like A did: connect (above), log in, set
    // the type and the working directory again.
    let t = Instant::now();
    let before = counters.snapshot();
    b.login(USER, &pass).await?;
    b.expect("TYPE I", &[200]).await?;
    b.expect("CWD /r8", &[250]).await?;
    let rest = counters.snapshot().since(before);
    let redo_ms = (t.elapsed() + connect_time).as_secs_f64() * 1e3;
    let redo = crate::counted::Traffic {
        sent: connect.sent + rest.sent,
        received: connect.received + rest.received,
        round_trips: connect.round_trips + rest.round_trips,
        connections: connect.connections + rest.connections,
    };
    b.retr("f0").await?;
    a.quit().await;
    b.quit().await;

    row.ftp = format!(
        "the first command on the second listener: {first}; to carry on the client redoes connect, USER, PASS, TYPE, CWD: {} round trips, {} B, {redo_ms:.0} ms (one more password check) before its next download",
        redo.round_trips,
        redo.total()
    );
    row.http = format!(
        "{} requests alternating between two gateways (written on one, read on the other): {errors} errors, served {} / {}, {http_ms:.2} ms each; nothing to redo",
        2 * n,
        served[0],
        served[1]
    );
    row.metric("http_alternating_requests", (2 * n) as f64);
    row.metric("http_errors", errors as f64);
    row.metric("ftp_switch_round_trips", redo.round_trips as f64);
    row.metric("ftp_switch_bytes", redo.total() as f64);
    row.metric("ftp_switch_ms", redo_ms);
    row.verdict = match (errors == 0, refused) {
        (true, true) => Verdict::Holds,
        (false, false) => Verdict::DoesNotHold,
        _ => Verdict::Mixed,
    };
    row.why = format!(
        "HTTP: {errors} errors in {} requests with no affinity; FTP: the switched session was refused ({first}) and had to be rebuilt ({} round trips, {redo_ms:.0} ms)",
        2 * n,
        redo.round_trips
    );
    Ok(())
}
