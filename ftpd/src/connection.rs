//! One control connection: reads lines, hands them to the [`Session`], writes its replies and
//! carries out its actions (passive ports, transfers, login delays). During a transfer it keeps
//! reading the control channel so ABOR and STAT are answered at once.

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::BytesMut;
use filegate_core::AccountEvent;
use futures::FutureExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use crate::data::{self, Plan, TransferCtx};
use crate::parser::{parse_command, Command, Line, LineReader, ParseError, MAX_LINE};
use crate::reply::{Code, Reply};
use crate::server::{peer_ip, Shared};
use crate::session::{
    Action, DataSetup, Direction, Session, SessionSettings, Transfer, TransferResult,
};

/// Room kept free in the read buffer before each read (lines are short).
const READ_RESERVE: usize = 512;
/// A read buffer larger than this is released when empty, so idle sessions stay small.
const IDLE_BUFFER: usize = 8 * 1024;
/// Commands that arrive during a transfer and wait for it to end, at most.
const MAX_PENDING: usize = 16;
/// How long a passive port outlives its last use, waiting to be reused by the next PASV/EPSV.
const SPARE_PORT_KEEP: Duration = Duration::from_secs(1);

/// The session's passive listener. It outlives the transfer it was opened for, so the next
/// PASV/EPSV reuses it: a client fetching many files costs no new socket and no bind per file
/// (bind searches every socket on the port, TIME_WAIT ones included, and was a fifth of the
/// server's CPU per small download). Unused for [`SPARE_PORT_KEEP`], it is closed.
struct PassivePort {
    listener: Arc<data::PassiveListener>,
    port: u16,
    /// Since when no PASV/EPSV has it armed for a transfer.
    spare_since: Option<tokio::time::Instant>,
    /// Its last arming ended in a transfer that took the client's connection, so nothing the
    /// client was told to make can be waiting on it (a drain would be a wasted syscall).
    consumed: bool,
}

/// Whether the connection goes on.
enum Flow {
    Continue,
    Close,
}

/// One control connection and its session.
pub(crate) struct Connection {
    /// The control socket.
    stream: TcpStream,
    /// Bytes read but not yet framed into lines.
    buf: BytesMut,
    /// Framing state (skipping an overlong line).
    lines: LineReader,
    /// Lines that arrived during a transfer, run after it.
    pending: VecDeque<Line>,
    /// The protocol state.
    session: Session,
    /// The passive port of the last PASV/EPSV.
    passive: Option<PassivePort>,
    /// The client: limits count per its address, data connections may only be with it.
    peer: SocketAddr,
    /// Our end of the control connection: passive ports are bound on its address.
    local: SocketAddr,
    /// Settings, store, port pool and limits of the whole server.
    shared: Arc<Shared>,
    /// Account changes, to close a revoked user's session at once; `None` once closed.
    events: Option<broadcast::Receiver<AccountEvent>>,
}

impl Connection {
    pub fn new(stream: TcpStream, peer: SocketAddr, shared: Arc<Shared>) -> io::Result<Connection> {
        let local = stream.local_addr()?;
        let _ = stream.set_nodelay(true);
        // ABOR may come with urgent data (Python's ftplib sends the whole line out of band):
        // keep it in the stream.
        let _ = socket2::SockRef::from(&stream).set_out_of_band_inline(true);
        let settings = SessionSettings {
            peer,
            local,
            passive_address: shared.config.passive_address,
            active_mode: shared.config.active_mode,
        };
        let session = Session::new(shared.services.clone(), settings);
        let events = Some(shared.services.accounts.subscribe());
        Ok(Connection {
            stream,
            buf: BytesMut::new(),
            lines: LineReader::default(),
            pending: VecDeque::new(),
            session,
            passive: None,
            peer,
            local,
            shared,
            events,
        })
    }

    pub async fn run(mut self) -> io::Result<()> {
        self.send(&[Session::greeting()]).await?;
        let shutdown = self.shared.shutdown.clone();
        let idle = self.shared.config.idle_timeout();
        // Only input from the client moves the idle deadline (not account events).
        let mut idle_deadline = tokio::time::Instant::now() + idle;
        // When to look at the spare passive port again. One timer for the session, re-armed
        // only after it fired: registering a timer earlier than the runtime's next wake-up
        // makes tokio wake its own thread (an eventfd write and an extra epoll round), which a
        // fresh deadline per transfer did on every small download.
        let spare_check = tokio::time::sleep_until(idle_deadline);
        tokio::pin!(spare_check);
        let mut spare_check_armed = false;
        loop {
            while let Some(line) = self.next_line() {
                // Boxed: the command's future is large and lives only while the command runs,
                // so an idle session's task stays small.
                if let Flow::Close = Box::pin(self.run_line(line)).await? {
                    return self.close().await;
                }
                // Idle time counts from the end of the last command (a transfer may be long).
                idle_deadline = tokio::time::Instant::now() + idle;
                if shutdown.is_cancelled() {
                    break;
                }
            }
            if shutdown.is_cancelled() {
                self.send(&[Reply::new(
                    Code::ServiceNotAvailable,
                    "Server shutting down",
                )])
                .await?;
                return self.close().await;
            }
            if self.buf.is_empty() && self.buf.capacity() > IDLE_BUFFER {
                self.buf = BytesMut::new();
            }
            if self.buf.capacity() - self.buf.len() < READ_RESERVE {
                self.buf.reserve(READ_RESERVE);
            }
            let spare_since = self.passive.as_ref().and_then(|p| p.spare_since);
            if let (Some(since), false) = (spare_since, spare_check_armed) {
                spare_check.as_mut().reset(since + SPARE_PORT_KEEP);
                spare_check_armed = true;
            }
            tokio::select! {
                _ = shutdown.cancelled() => {}
                _ = &mut spare_check, if spare_check_armed => {
                    spare_check_armed = false;
                    // Used again since the check was set: the next round sets a later one.
                    if spare_since.is_some_and(|t| t + SPARE_PORT_KEEP <= tokio::time::Instant::now()) {
                        self.passive = None;
                    }
                }
                ev = recv_event(&mut self.events) => {
                    let affected = match ev {
                        Ok(AccountEvent::Changed { name }) => self.session.user() == Some(name.as_str()),
                        Err(broadcast::error::RecvError::Lagged(_)) => true,
                        Err(broadcast::error::RecvError::Closed) => {
                            self.events = None;
                            false
                        }
                    };
                    if affected {
                        if let Some(reply) = Box::pin(self.session.recheck_account()).await {
                            tracing::info!("account changed; closing the session");
                            self.send(&[reply]).await?;
                            return self.close().await;
                        }
                    }
                }
                r = tokio::time::timeout_at(idle_deadline, self.stream.read_buf(&mut self.buf)) => match r {
                    Err(_) => {
                        self.send(&[Reply::new(Code::ServiceNotAvailable, "Idle timeout; closing the connection")]).await?;
                        return self.close().await;
                    }
                    Ok(Ok(0)) => return Ok(()),
                    Ok(Ok(_)) => read_past_urgent_mark(&self.stream, &mut self.buf),
                    Ok(Err(e)) => return Err(e),
                },
            }
        }
    }

    fn next_line(&mut self) -> Option<Line> {
        self.pending
            .pop_front()
            .or_else(|| self.lines.next_line(&mut self.buf))
    }

    async fn close(mut self) -> io::Result<()> {
        let _ =
            tokio::time::timeout(std::time::Duration::from_secs(1), self.stream.shutdown()).await;
        Ok(())
    }

    async fn send(&mut self, replies: &[Reply]) -> io::Result<()> {
        if replies.is_empty() {
            return Ok(());
        }
        let mut out = Vec::with_capacity(128);
        for r in replies {
            r.encode_into(&mut out);
        }
        let limit = self.shared.config.data_timeout();
        tokio::time::timeout(limit, self.stream.write_all(&out))
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "control connection stalled"))?
    }

    async fn run_line(&mut self, line: Line) -> io::Result<Flow> {
        let cmd = match line {
            Line::Complete(bytes) => parse_command(&bytes),
            Line::TooLong => Command::Error(ParseError::LineTooLong),
        };
        if matches!(cmd, Command::Pass(_))
            && self
                .shared
                .logins
                .is_blocked(peer_ip(&self.peer), Instant::now())
        {
            self.send(&[Reply::new(
                Code::ServiceNotAvailable,
                "Too many failed logins; try later",
            )])
            .await?;
            return Ok(Flow::Close);
        }
        let verb = cmd.verb();
        tracing::debug!(verb, "command");
        let was_logged_in = self.session.user().is_some();
        let outcome = self.session.handle(cmd, SystemTime::now()).await;
        if let Action::LoginFailed = outcome.action {
            let blocked = self
                .shared
                .logins
                .failed(peer_ip(&self.peer), Instant::now());
            tracing::info!(blocked, "login failed");
            tokio::time::sleep(self.shared.config.failed_login_delay()).await;
            self.send(&outcome.replies).await?;
            if blocked {
                self.send(&[Reply::new(
                    Code::ServiceNotAvailable,
                    "Too many failed logins; try later",
                )])
                .await?;
                return Ok(Flow::Close);
            }
            return Ok(Flow::Continue);
        }
        if !was_logged_in {
            if let Some(user) = self.session.user() {
                tracing::Span::current().record("user", user);
                tracing::info!("logged in");
                self.shared.logins.succeeded(peer_ip(&self.peer));
            }
        }
        // A download's 150 waits for the transfer's first step: a small file then goes out at
        // once, and 150 and 226 share one write (one segment and one wake-up fewer each way).
        let download = matches!(&outcome.action,
            Action::Transfer(t) if matches!(t.direction, Direction::Send(_)));
        let mut replies = outcome.replies;
        if !download {
            self.send(&replies).await?;
            replies.clear();
        }
        let flow = match outcome.action {
            Action::None | Action::LoginFailed => Flow::Continue,
            Action::Close => Flow::Close,
            Action::OpenPassive => {
                let port = self.open_passive();
                let reply = self.session.passive_opened(port);
                self.send(&[reply]).await?;
                Flow::Continue
            }
            Action::Transfer(t) => self.run_transfer(*t, replies).await?,
        };
        match self.session.data_setup() {
            DataSetup::Passive => {}
            DataSetup::Active(_) => self.passive = None,
            DataSetup::None if self.passive.is_some() && self.shared.ports.scarce() => {
                self.passive = None;
            }
            DataSetup::None => {
                if let Some(p) = &mut self.passive {
                    p.spare_since.get_or_insert_with(tokio::time::Instant::now);
                }
            }
        }
        let max_bad = self.shared.config.max_bad_commands;
        if max_bad > 0 && self.session.bad_commands() >= max_bad {
            self.send(&[Reply::new(
                Code::ServiceNotAvailable,
                "Too many bad commands; closing the connection",
            )])
            .await?;
            return Ok(Flow::Close);
        }
        Ok(flow)
    }

    /// A passive port for PASV/EPSV: the session's last one if it still has it, else a new one.
    fn open_passive(&mut self) -> io::Result<u16> {
        if let Some(p) = &mut self.passive {
            if !p.consumed {
                data::drain_stale(&p.listener);
            }
            p.spare_since = None;
            p.consumed = false;
            return Ok(p.port);
        }
        match self.shared.ports.bind(self.local.ip()) {
            Ok((listener, port)) => {
                self.passive = Some(PassivePort {
                    listener: Arc::new(listener),
                    port,
                    spare_since: None,
                    consumed: false,
                });
                Ok(port)
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot open a passive port");
                Err(e)
            }
        }
    }

    /// Runs a transfer while answering ABOR and STAT on the control connection. `preliminary`
    /// (a download's 150) is sent once the transfer has taken its first step, or with the
    /// final reply if that step finished it.
    async fn run_transfer(&mut self, t: Transfer, mut preliminary: Vec<Reply>) -> io::Result<Flow> {
        let plan = match t.setup {
            DataSetup::Passive => self
                .passive
                .as_ref()
                .map_or(Plan::Missing, |p| Plan::Passive(Arc::clone(&p.listener))),
            DataSetup::Active(a) => Plan::Active(a),
            DataSetup::None => Plan::Missing,
        };
        let is_upload = matches!(t.direction, Direction::Receive { .. });
        let cancel = CancellationToken::new();
        let bytes = Arc::new(AtomicU64::new(0));
        let ctx = TransferCtx {
            peer_ip: self.peer.ip(),
            local_ip: self.local.ip(),
            timeout: self.shared.config.data_timeout(),
            storage: Arc::clone(&self.shared.services.storage),
            cancel: cancel.clone(),
            bytes: Arc::clone(&bytes),
        };
        let started = Instant::now();
        let mut transfer = data::run(plan, t.direction, t.ascii, ctx).boxed();
        let mut aborted = false;
        let mut control_open = true;
        let first_step = if preliminary.is_empty() {
            None
        } else {
            (&mut transfer).now_or_never()
        };
        if first_step.is_none() {
            self.send(&preliminary).await?;
            preliminary.clear();
        }
        let result = if let Some(done) = first_step {
            done
        } else {
            loop {
                tokio::select! {
                    // The control connection first: a client that died closed it before its data
                    // connection, and its upload must not be published.
                    biased;
                    n = self.stream.read_buf(&mut self.buf), if control_open && !aborted && self.pending.len() < MAX_PENDING && self.buf.len() <= MAX_LINE + 2 => {
                        if !matches!(n, Ok(n) if n > 0) {
                            // The client went away: stop the transfer.
                            control_open = false;
                            aborted = true;
                            cancel.cancel();
                            if !is_upload {
                                break TransferResult::Aborted;
                            }
                            continue;
                        }
                        read_past_urgent_mark(&self.stream, &mut self.buf);
                        while let Some(line) = self.lines.next_line(&mut self.buf) {
                            let cmd = match &line {
                                Line::Complete(b) => parse_command(b),
                                Line::TooLong => Command::Error(ParseError::LineTooLong),
                            };
                            match cmd {
                                Command::Abor => {
                                    aborted = true;
                                    cancel.cancel();
                                    break;
                                }
                                Command::Stat(None) => {
                                    let text = format!("Transferring {}: {} bytes so far", t.path, bytes.load(Ordering::Relaxed));
                                    self.send(&[Reply::new(Code::SystemStatus, text)]).await?;
                                }
                                _ => self.pending.push_back(line),
                            }
                            if self.pending.len() >= MAX_PENDING {
                                break;
                            }
                        }
                        if aborted && !is_upload {
                            break TransferResult::Aborted;
                        }
                    }
                    r = &mut transfer => break r,
                }
            }
        };
        drop(transfer);
        let result = match result {
            TransferResult::Stored { result: Err(_), .. } | TransferResult::Failed(_)
                if aborted =>
            {
                TransferResult::Aborted
            }
            r => r,
        };
        if let (DataSetup::Passive, Some(p)) = (&t.setup, &mut self.passive) {
            // An abort may have come before the client connected: drain next time.
            p.consumed = matches!(
                result,
                TransferResult::Sent { .. }
                    | TransferResult::Stored { .. }
                    | TransferResult::Failed(_)
            );
        }
        let moved = bytes.load(Ordering::Relaxed);
        let outcome = match &result {
            TransferResult::Sent { .. } | TransferResult::Stored { result: Ok(_), .. } => {
                "ok".to_owned()
            }
            TransferResult::Stored { result: Err(e), .. } => format!("failed: {e}"),
            TransferResult::NoConnection(e) => format!("no data connection: {e}"),
            TransferResult::Aborted => "aborted".to_owned(),
            TransferResult::Failed(e) => format!("failed: {e}"),
        };
        tracing::info!(
            target: "filegate_ftpd::transfer",
            verb = t.verb,
            path = %t.path,
            bytes = moved,
            secs = started.elapsed().as_secs_f64(),
            outcome = %outcome,
            "transfer"
        );
        let mut replies = preliminary;
        replies.extend(self.session.transfer_done(t.verb, &result));
        if aborted && !matches!(result, TransferResult::Aborted) {
            // ABOR came after the transfer had already completed.
            replies.push(Reply::new(Code::ClosingData, "ABOR successful"));
        }
        if !control_open {
            return Ok(Flow::Close);
        }
        self.send(&replies).await?;
        Ok(Flow::Continue)
    }
}

/// Reads on while the buffer ends in an incomplete line and the socket has more. A read stops
/// at TCP's urgent mark (ABOR sent with MSG_OOB, or a Telnet Synch), and tokio takes that short
/// read as "drained" (its cached readiness is cleared, and `try_read` would not even ask the
/// kernel), so the bytes after the mark would wait for the next packet. A direct non-blocking
/// read on the socket gets them.
fn read_past_urgent_mark(stream: &TcpStream, buf: &mut BytesMut) {
    use std::io::Read;
    let sock = socket2::SockRef::from(stream);
    let mut tmp = [0u8; READ_RESERVE];
    for _ in 0..4 {
        if buf.last().is_none_or(|&b| b == b'\n') || buf.len() > MAX_LINE + 2 {
            return;
        }
        match (&*sock).read(&mut tmp) {
            Ok(n) if n > 0 => buf.extend_from_slice(&tmp[..n]),
            _ => return,
        }
    }
}

async fn recv_event(
    events: &mut Option<broadcast::Receiver<AccountEvent>>,
) -> Result<AccountEvent, broadcast::error::RecvError> {
    match events {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}
