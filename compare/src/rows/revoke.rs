//! Row 7: a user is revoked (new password, token generation bumped) while their clients work:
//! an active and an idle FTP session, a Basic client and a bearer-token client. How long until
//! each is refused. Runs on the in-process [`Lab`], where the change goes through the same
//! store handle the front ends watch, as an online admin interface would.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use crate::counted::Counters;
use crate::ftp::{FtpClient, FtpError};
use crate::http::{Auth, HttpClient};
use crate::lab::Lab;
use crate::report::{Row, Verdict};
use crate::rows::wire::mint_token_at;
use crate::rows::{put, small_content, Ctx};

pub fn header() -> Row {
    Row::new(
        7,
        "Revocation",
        "a stateful server cuts a revoked user off at once; a stateless one cannot revoke a self-contained token without keeping some state",
    )
}

const USER: &str = "revokee";
const POLL: Duration = Duration::from_millis(5);
const WAIT: Duration = Duration::from_secs(5);
/// How long after the revocation a client may keep working before it counts as never refused.
const WINDOW: Duration = Duration::from_secs(3);

/// When a client was first refused, relative to the revocation, and what it saw.
#[derive(Debug, Clone)]
struct Refusal {
    after: Option<Duration>,
    how: String,
    /// Successful operations begun after the revocation was in the store.
    ok_after: u64,
}

/// One client's view of the clock: has the revocation happened, and is the window over.
struct Watch {
    revoked: tokio::sync::watch::Receiver<Option<Instant>>,
    /// When the revocation was in the store (the admin's call returned).
    committed: Arc<OnceLock<Instant>>,
    ok_after: u64,
    /// Bounds every polling loop even if the revocation never comes.
    hard: Instant,
}

impl Watch {
    fn new(
        revoked: tokio::sync::watch::Receiver<Option<Instant>>,
        committed: &Arc<OnceLock<Instant>>,
    ) -> Watch {
        Watch {
            revoked,
            committed: Arc::clone(committed),
            ok_after: 0,
            hard: Instant::now() + Duration::from_secs(30),
        }
    }

    fn t0(&self) -> Option<Instant> {
        *self.revoked.borrow()
    }

    /// True when polling should stop without a refusal.
    fn over(&self) -> bool {
        Instant::now() > self.hard || self.t0().is_some_and(|t| t.elapsed() > WINDOW)
    }

    /// An operation that began at `started` succeeded.
    fn ok(&mut self, started: Instant) {
        if self.committed.get().is_some_and(|c| started >= *c) {
            self.ok_after += 1;
        }
    }

    fn refused(&self, how: String) -> Refusal {
        Refusal {
            after: self.t0().map(|t| t.elapsed()),
            how,
            ok_after: self.ok_after,
        }
    }

    fn never(&self) -> Refusal {
        Refusal {
            after: None,
            how: "never refused".into(),
            ok_after: self.ok_after,
        }
    }
}

fn ftp_refusal(e: &FtpError) -> String {
    match e {
        FtpError::Refused(r) => format!("{} reply", r.code),
        FtpError::Closed => "connection closed".into(),
        FtpError::Io(e) => format!("{e}"),
    }
}

pub async fn run(ctx: &Ctx, mut row: Row) -> anyhow::Result<Row> {
    if ctx.embedded.is_none() {
        return Ok(row.not_measured(
            "needs --embedded: filegate serve has no online interface to change a user, and its store is locked while it runs",
        ));
    }
    ctx.progress.row(&row.name, 3);
    let lab = Lab::start().await?;
    let result = measure(&lab, ctx, &mut row).await;
    lab.stop().await;
    result?;
    Ok(row)
}

async fn measure(lab: &Lab, ctx: &Ctx, row: &mut Row) -> anyhow::Result<()> {
    let old = format!("old-{:x}", rand::random::<u64>());
    lab.add_user(USER, &old).await?;
    let basic = Auth::Basic {
        user: USER.into(),
        pass: old.clone(),
    };
    let counters = Counters::new();
    let mut h = HttpClient::new(lab.http[0], basic.clone(), &counters, WAIT);
    put(&mut h, "/r7.bin", &small_content(7)).await?;
    let token = mint_token_at(lab.http[0], basic.clone()).await?;
    let mut b = HttpClient::new(lab.http[1], Auth::Bearer(token), &counters, WAIT);
    let mut active = FtpClient::login_to(lab.ftp[0], USER, &old, &counters, WAIT).await?;
    let mut idle = FtpClient::login_to(lab.ftp[1], USER, &old, &counters, WAIT).await?;
    let new_hash = Lab::hash(&format!("new-{:x}", rand::random::<u64>())).await?;
    ctx.progress.step("clients working");

    let (tx, rx) = tokio::sync::watch::channel(None::<Instant>);
    let committed = Arc::new(OnceLock::new());
    let mut w = Watch::new(rx.clone(), &committed);
    let ftp_active = tokio::spawn(async move {
        loop {
            if w.over() {
                break w.never();
            }
            let started = Instant::now();
            match active.size("/r7.bin").await {
                Ok(_) => w.ok(started),
                Err(e) => break w.refused(ftp_refusal(&e)),
            }
            tokio::time::sleep(POLL).await;
        }
    });
    let w = Watch::new(rx.clone(), &committed);
    let ftp_idle = tokio::spawn(async move {
        // No command: the server has to act on its own. Bounded by the reply timeout.
        let r = tokio::time::timeout(WINDOW + WAIT, idle.read_reply()).await;
        match r {
            Ok(Ok(reply)) => w.refused(format!("{} sent unasked", reply.code)),
            Ok(Err(e)) => w.refused(ftp_refusal(&e)),
            Err(_) => w.never(),
        }
    });
    let mut w = Watch::new(rx.clone(), &committed);
    let http_basic = tokio::spawn(async move {
        loop {
            if w.over() {
                break w.never();
            }
            let started = Instant::now();
            match h.get("/r7.bin").await {
                Ok((200, _)) => w.ok(started),
                Ok((status, _)) => break w.refused(format!("{status}")),
                Err(e) => break w.refused(format!("{e}")),
            }
            tokio::time::sleep(POLL).await;
        }
    });
    let mut w = Watch::new(rx.clone(), &committed);
    let http_bearer = tokio::spawn(async move {
        loop {
            if w.over() {
                break w.never();
            }
            let started = Instant::now();
            match b.get("/r7.bin").await {
                Ok((200, _)) => w.ok(started),
                Ok((status, _)) => break w.refused(format!("{status}")),
                Err(e) => break w.refused(format!("{e}")),
            }
            tokio::time::sleep(POLL).await;
        }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    ctx.progress.step("revoking");
    let t0 = Instant::now();
    let _ = tx.send(Some(t0));
    lab.revoke(USER, new_hash).await?;
    let _ = committed.set(Instant::now());
    let store_ms = t0.elapsed().as_secs_f64() * 1e3;
    let fa = ftp_active.await?;
    let fi = ftp_idle.await?;
    let hb = http_basic.await?;
    let ht = http_bearer.await?;
    ctx.progress.step("");

    // A new FTP login with the old password.
    let relogin = match FtpClient::login_to(lab.ftp[0], USER, &old, &counters, WAIT).await {
        Ok(f) => {
            f.quit().await;
            "accepted".to_owned()
        }
        Err(e) => ftp_refusal(&e),
    };

    let ms = |r: &Refusal| r.after.map_or(f64::NAN, |d| d.as_secs_f64() * 1e3);
    let show = |r: &Refusal| match r.after {
        Some(d) => format!("{:.1} ms ({})", d.as_secs_f64() * 1e3, r.how),
        None => format!("not within {} s", WINDOW.as_secs()),
    };
    row.ftp = format!(
        "idle session closed after {}, active session refused after {}; a new login with the old password: {relogin}",
        show(&fi),
        show(&fa)
    );
    row.http = format!(
        "Basic refused after {} ({} requests begun after the change still served), bearer token refused after {} ({} served)",
        show(&hb),
        hb.ok_after,
        show(&ht),
        ht.ok_after
    );
    row.metric("store_update_ms", store_ms);
    row.metric("ftp_idle_refused_ms", ms(&fi));
    row.metric("ftp_active_refused_ms", ms(&fa));
    row.metric("http_basic_refused_ms", ms(&hb));
    row.metric("http_bearer_refused_ms", ms(&ht));
    row.metric(
        "http_requests_served_after_revocation",
        (hb.ok_after + ht.ok_after) as f64,
    );
    let ftp_at_once = fi.after.is_some_and(|d| d < Duration::from_secs(1));
    let bearer_refused = ht.after.is_some();
    row.verdict = match (ftp_at_once, bearer_refused) {
        (true, true) => Verdict::Holds,
        (false, _) => Verdict::DoesNotHold,
        (true, false) => Verdict::Mixed,
    };
    row.why = format!(
        "FTP closed the revoked user's idle session {:.1} ms after the change with no request from it; HTTP refused the token only because the gateway reads the user's token generation from the store on every bearer request (state kept for revocation), {:.1} ms after the change",
        ms(&fi),
        ms(&ht)
    );
    row.ratio(
        "time to refuse a revoked token",
        crate::stats::ratio(ms(&ht), ms(&fa)),
    );
    Ok(())
}
