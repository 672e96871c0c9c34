//! The sans-IO session: everything that makes FTP stateful, with no sockets and no clock.
//!
//! The connection layer frames a line, parses it, calls [`Session::handle`] with the time, and
//! carries out the returned [`Outcome`]: send the replies, then do the [`Action`] (open a
//! passive port, run a transfer, close). What happened to a transfer or a passive port comes
//! back through [`Session::passive_opened`] and [`Session::transfer_done`], which give the
//! final replies. Store calls are the only awaits; tests drive a session over a temporary store.

use std::net::{IpAddr, SocketAddr};
use std::time::SystemTime;

use filegate_core::{
    Permissions, Precondition, Principal, ReadHandle, Services, StoreError, VPath, WriteMode,
    WriteOutcome,
};

use crate::errors::path_error_reply;
use crate::listing::Facts;
use crate::parser::{Command, ParseError, TypeCode};
use crate::reply::{Code, Reply};

/// What the session needs to know about its connection and settings.
#[derive(Debug, Clone)]
pub struct SessionSettings {
    /// The client's address: the only address data connections may come from or go to.
    pub peer: SocketAddr,
    /// The control connection's local address: advertised by PASV unless `passive_address`.
    pub local: SocketAddr,
    /// Address to advertise in PASV replies instead of `local` (NAT).
    pub passive_address: Option<IpAddr>,
    /// Whether PORT and EPRT are allowed.
    pub active_mode: bool,
}

/// How the next data connection is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataSetup {
    /// Nothing set up: a transfer command gets 425.
    None,
    /// The client connects to the passive port the connection layer holds.
    Passive,
    /// The server connects to this address (PORT/EPRT), always the control peer's.
    Active(SocketAddr),
}

/// What the connection layer does after sending an outcome's replies.
#[derive(Debug)]
pub enum Action {
    None,
    /// Close the control connection.
    Close,
    /// Bind a passive port, then call [`Session::passive_opened`].
    OpenPassive,
    /// Open the data connection as `setup` says and run the transfer, then call
    /// [`Session::transfer_done`].
    Transfer(Box<Transfer>),
    /// The login failed: wait the configured delay and count the failure against the address.
    LoginFailed,
}

/// A transfer the connection layer runs on a data connection.
#[derive(Debug)]
pub struct Transfer {
    pub setup: DataSetup,
    pub direction: Direction,
    /// TYPE A: convert line ends on the wire.
    pub ascii: bool,
    /// The verb, for the transfer log.
    pub verb: &'static str,
    /// The path as the user sees it, for the transfer log.
    pub path: VPath,
}

/// Which way the bytes go.
#[derive(Debug)]
pub enum Direction {
    /// Server to client.
    Send(Source),
    /// Client to server, published with one atomic store write.
    Receive {
        store_path: VPath,
        mode: WriteMode,
        precondition: Precondition,
    },
}

/// What a download sends.
pub enum Source {
    File(ReadHandle),
    /// A listing, already formatted with CR LF line ends.
    Listing(Vec<u8>),
}

impl std::fmt::Debug for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::File(h) => write!(f, "File({h:?})"),
            Source::Listing(l) => write!(f, "Listing({} bytes)", l.len()),
        }
    }
}

/// How a transfer ended, as the connection layer saw it.
#[derive(Debug)]
pub enum TransferResult {
    /// A download completed.
    Sent { bytes: u64 },
    /// An upload's body ended and the store answered.
    Stored {
        result: Result<WriteOutcome, StoreError>,
        bytes: u64,
    },
    /// The data connection could not be opened (or did not come in time).
    NoConnection(std::io::Error),
    /// The client sent ABOR during the transfer.
    Aborted,
    /// The data connection broke or stalled.
    Failed(std::io::Error),
}

/// Replies to send and what to do next.
#[derive(Debug)]
pub struct Outcome {
    pub replies: Vec<Reply>,
    pub action: Action,
}

impl Outcome {
    pub fn reply(r: Reply) -> Outcome {
        Outcome {
            replies: vec![r],
            action: Action::None,
        }
    }

    pub fn with(r: Reply, action: Action) -> Outcome {
        Outcome {
            replies: vec![r],
            action,
        }
    }

    pub fn action(action: Action) -> Outcome {
        Outcome {
            replies: Vec::new(),
            action,
        }
    }

    fn code(code: Code, text: &'static str) -> Outcome {
        Outcome::reply(Reply::new(code, text))
    }
}

/// Where the login stands.
#[derive(Debug)]
pub(crate) enum Login {
    /// Connected, no USER yet (or after REIN).
    Fresh,
    /// USER given; PASS is next.
    NeedPassword { user: String },
    /// Logged in.
    LoggedIn(Box<LoggedIn>),
}

#[derive(Debug)]
pub(crate) struct LoggedIn {
    pub principal: Principal,
    /// The password hash at login: a change closes the session (revocation).
    pub password_hash: Option<String>,
}

/// Which passive command is waiting for its port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PassiveKind {
    /// PASV: reply with this IPv4 address.
    Pasv(std::net::Ipv4Addr),
    Epsv,
}

/// One control connection's protocol state.
pub struct Session {
    /// Store, accounts and the login checker.
    pub(crate) services: Services,
    /// Addresses and settings fixed for the connection's life.
    pub(crate) settings: SessionSettings,
    /// Login progress and, once logged in, who the user is.
    pub(crate) login: Login,
    /// Working directory as the user sees it ("/" is their home).
    pub(crate) cwd: VPath,
    /// TYPE: ASCII (the RFC 959 default) or image.
    pub(crate) type_code: TypeCode,
    /// REST offset for the next RETR/STOR (0: none); kept until a transfer command uses it.
    pub(crate) rest: u64,
    /// RNFR's store path; only the very next command (RNTO) may use it.
    pub(crate) rnfr: Option<VPath>,
    /// How the next data connection is made.
    pub(crate) data: DataSetup,
    /// A PASV/EPSV waiting for the connection layer to bind a port.
    pub(crate) pending_passive: Option<PassiveKind>,
    /// After EPSV ALL only EPSV may set up data connections (RFC 2428 section 4).
    pub(crate) epsv_all: bool,
    /// OPTS UTF8 ON was sent (names are UTF-8 either way).
    pub(crate) utf8: bool,
    /// The facts MLSD/MLST send (OPTS MLST).
    pub(crate) facts: Facts,
    /// Refused commands in a row, for the bad-command limit.
    pub(crate) bad_commands: u32,
}

impl Session {
    pub fn new(services: Services, settings: SessionSettings) -> Session {
        Session {
            services,
            settings,
            login: Login::Fresh,
            cwd: VPath::root(),
            type_code: TypeCode::Ascii,
            rest: 0,
            rnfr: None,
            data: DataSetup::None,
            pending_passive: None,
            epsv_all: false,
            utf8: false,
            facts: Facts::all(),
            bad_commands: 0,
        }
    }

    /// The greeting sent when the connection opens.
    pub fn greeting() -> Reply {
        Reply::new(Code::ServiceReady, "filegate FTP server ready")
    }

    /// The logged-in user's name.
    pub fn user(&self) -> Option<&str> {
        match &self.login {
            Login::LoggedIn(l) => Some(&l.principal.name),
            _ => None,
        }
    }

    /// The logged-in principal.
    pub fn principal(&self) -> Option<&Principal> {
        match &self.login {
            Login::LoggedIn(l) => Some(&l.principal),
            _ => None,
        }
    }

    /// How the next data connection is made (the connection layer drops its passive port
    /// when this is not [`DataSetup::Passive`]).
    pub fn data_setup(&self) -> DataSetup {
        self.data
    }

    pub fn cwd(&self) -> &VPath {
        &self.cwd
    }

    /// Refused commands in a row.
    pub fn bad_commands(&self) -> u32 {
        self.bad_commands
    }

    /// Runs one command.
    pub async fn handle(&mut self, cmd: Command, now: SystemTime) -> Outcome {
        let rnfr = self.rnfr.take();
        let out = self.dispatch(cmd, rnfr, now).await;
        match out.replies.first().map(|r| r.code) {
            Some(
                Code::SyntaxError
                | Code::ArgumentSyntaxError
                | Code::NotImplemented
                | Code::BadSequence
                | Code::NotImplementedForParameter
                | Code::NetworkProtocolNotSupported
                | Code::NotLoggedIn,
            ) => self.bad_commands = self.bad_commands.saturating_add(1),
            Some(_) => self.bad_commands = 0,
            None => {}
        }
        out
    }

    async fn dispatch(&mut self, cmd: Command, rnfr: Option<VPath>, now: SystemTime) -> Outcome {
        use Command as C;
        if self.principal().is_none() && needs_login(&cmd) {
            return Outcome::code(Code::NotLoggedIn, "Please login with USER and PASS");
        }
        match cmd {
            C::User(name) => self.cmd_user(name),
            C::Pass(pass) => self.cmd_pass(pass).await,
            C::Acct => self.cmd_acct(),
            C::Rein => self.cmd_rein(),
            C::Quit => Outcome::with(Reply::new(Code::Closing, "Goodbye"), Action::Close),
            C::Host(h) => self.cmd_host(&h),
            C::Pwd => self.cmd_pwd(),
            C::Cwd(p) => self.cmd_cwd(&p).await,
            C::Cdup => self.cmd_cdup(),
            C::Mkd(p) => self.cmd_mkd(&p).await,
            C::Rmd(p) => self.cmd_rmd(&p).await,
            C::Dele(p) => self.cmd_dele(&p).await,
            C::Rnfr(p) => self.cmd_rnfr(&p).await,
            C::Rnto(p) => self.cmd_rnto(rnfr, &p).await,
            C::Size(p) => self.cmd_size(&p).await,
            C::Mdtm(p) => self.cmd_mdtm(&p).await,
            C::Type(t) => self.cmd_type(t),
            C::Mode => Outcome::code(Code::Ok, "Mode set to S"),
            C::Stru => Outcome::code(Code::Ok, "Structure set to F"),
            C::Allo => Outcome::code(Code::Superfluous, "No storage allocation necessary"),
            C::Rest(n) => self.cmd_rest(n),
            C::Abor => self.cmd_abor(),
            C::Pasv => self.cmd_pasv(),
            C::Epsv(a) => self.cmd_epsv(a),
            C::Port(a) => self.cmd_port(a, "PORT"),
            C::Eprt(a) => self.cmd_port(a, "EPRT"),
            C::Retr(p) => self.cmd_retr(&p).await,
            C::Stor(p) => self.cmd_store(&p, "STOR").await,
            C::Appe(p) => self.cmd_store(&p, "APPE").await,
            C::Stou(p) => self.cmd_stou(p.as_deref(), now).await,
            C::List(p) => self.cmd_list(p.as_deref(), "LIST", now).await,
            C::Nlst(p) => self.cmd_list(p.as_deref(), "NLST", now).await,
            C::Mlsd(p) => self.cmd_mlsd(p.as_deref()).await,
            C::Mlst(p) => self.cmd_mlst(p.as_deref()).await,
            C::Stat(None) => self.cmd_stat_session(),
            C::Stat(Some(p)) => self.cmd_stat_path(&p, now).await,
            C::Feat => self.cmd_feat(),
            C::Opts(o) => self.cmd_opts(o),
            C::Syst => Outcome::code(Code::SystemType, "UNIX Type: L8"),
            C::Noop => Outcome::code(Code::Ok, "NOOP ok"),
            C::Help(_) => self.cmd_help(),
            C::Site(s) => self.cmd_site(&s),
            C::Error(e) => Outcome::reply(e.reply()),
            C::Empty => Outcome::action(Action::None),
        }
    }

    /// Resolves a path the user typed: (their view, the store path).
    pub(crate) fn resolve(&self, input: &str) -> Result<(VPath, VPath), Reply> {
        let Some(p) = self.principal() else {
            return Err(Reply::new(
                Code::NotLoggedIn,
                "Please login with USER and PASS",
            ));
        };
        let user_path = self.cwd.resolve(input).map_err(|e| path_error_reply(&e))?;
        let store_path = p
            .home
            .join_under(&user_path)
            .map_err(|e| path_error_reply(&e))?;
        Ok((user_path, store_path))
    }

    /// The principal if it holds `perm`, else the 550 to send.
    /// [`require`](Self::require) then [`resolve`](Self::resolve): what most commands with a
    /// path argument start with.
    pub(crate) fn permitted_path(
        &self,
        perm: Permissions,
        input: &str,
    ) -> Result<(VPath, VPath), Reply> {
        self.require(perm)?;
        self.resolve(input)
    }

    pub(crate) fn require(&self, perm: Permissions) -> Result<&Principal, Reply> {
        match self.principal() {
            Some(p) if p.can(perm) => Ok(p),
            Some(_) => Err(Reply::new(Code::FileNotAvailable, "Permission denied")),
            None => Err(Reply::new(
                Code::NotLoggedIn,
                "Please login with USER and PASS",
            )),
        }
    }

    /// The final replies once a transfer has ended.
    pub fn transfer_done(&mut self, verb: &'static str, result: &TransferResult) -> Vec<Reply> {
        match result {
            TransferResult::Sent { .. } => {
                vec![Reply::new(Code::ClosingData, "Transfer complete")]
            }
            TransferResult::Stored { result: Ok(o), .. } if verb == "STOU" => vec![Reply::new(
                Code::ClosingData,
                format!("Transfer complete; stored as {}", o.entry.name),
            )],
            TransferResult::Stored { result: Ok(_), .. } => {
                vec![Reply::new(Code::ClosingData, "Transfer complete")]
            }
            TransferResult::Stored { result: Err(e), .. } => {
                vec![crate::errors::store_error_reply(e)]
            }
            TransferResult::NoConnection(_) => {
                vec![Reply::new(
                    Code::CantOpenData,
                    "Cannot open data connection",
                )]
            }
            TransferResult::Aborted => vec![
                Reply::new(Code::TransferAborted, "Connection closed; transfer aborted"),
                Reply::new(Code::ClosingData, "ABOR successful"),
            ],
            TransferResult::Failed(_) => {
                vec![Reply::new(
                    Code::TransferAborted,
                    "Connection closed; transfer aborted",
                )]
            }
        }
    }

    /// Re-checks the logged-in user after an account change; `Some(421)` means the session
    /// must close (user deleted, disabled, password or home changed).
    pub async fn recheck_account(&mut self) -> Option<Reply> {
        let Login::LoggedIn(l) = &mut self.login else {
            return None;
        };
        if l.principal.anonymous {
            return None;
        }
        let revoked = Some(Reply::new(
            Code::ServiceNotAvailable,
            "Account changed; closing the connection",
        ));
        let user = match self.services.accounts.user(&l.principal.name).await {
            Ok(Some(u)) => u,
            Ok(None) => return revoked,
            // Cannot tell: fail closed.
            Err(_) => return revoked,
        };
        let fresh = match Principal::for_user(&user) {
            Some(p) => p,
            None => return revoked,
        };
        if l.password_hash.as_deref() != Some(user.password_hash.as_str())
            || fresh.home != l.principal.home
        {
            return revoked;
        }
        l.principal.permissions = fresh.permissions;
        None
    }
}

/// Commands that need a logged-in user (530 before).
fn needs_login(cmd: &Command) -> bool {
    !matches!(
        cmd,
        Command::User(_)
            | Command::Pass(_)
            | Command::Acct
            | Command::Rein
            | Command::Quit
            | Command::Host(_)
            | Command::Feat
            | Command::Opts(_)
            | Command::Syst
            | Command::Noop
            | Command::Help(_)
            | Command::Error(
                ParseError::Unknown(_)
                    | ParseError::NotImplemented(_)
                    | ParseError::LineTooLong
                    | ParseError::MissingArgument("USER")
            )
            | Command::Empty
    )
}

#[cfg(test)]
mod tests;
