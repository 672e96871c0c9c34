//! USER, PASS, ACCT, REIN, HOST.
//!
//! RFC 959 4.1.1: "USER NAME: The argument field is a Telnet string identifying the user. [...]
//! This command will normally be the first command transmitted by the user after the control
//! connections are made." "PASS: [...] This command must be immediately preceded by the user
//! name command." "REIN: This command terminates a USER, flushing all I/O and account
//! information, except to allow any transfer in progress to be completed."
//! RFC 7151: "HOST: [...] MUST be issued before the user is authenticated."

use filegate_core::VPath;

use crate::errors::auth_error_reply;
use crate::listing::Facts;
use crate::parser::TypeCode;
use crate::reply::{Code, Reply};
use crate::session::{Action, DataSetup, LoggedIn, Login, Outcome, Session};

impl Session {
    pub(crate) fn cmd_user(&mut self, name: String) -> Outcome {
        // A new USER starts a new login (RFC 959 allows changing user); the old one ends.
        self.reset();
        let anonymous = self.services.auth.is_anonymous_name(&name);
        self.login = Login::NeedPassword { user: name };
        if anonymous {
            Outcome::reply(Reply::new(
                Code::NeedPassword,
                "Anonymous login ok, send your email as password",
            ))
        } else {
            Outcome::reply(Reply::new(Code::NeedPassword, "Password required"))
        }
    }

    pub(crate) async fn cmd_pass(&mut self, pass: String) -> Outcome {
        let user = match std::mem::replace(&mut self.login, Login::Fresh) {
            Login::NeedPassword { user } => user,
            Login::LoggedIn(l) => {
                self.login = Login::LoggedIn(l);
                return Outcome::reply(Reply::new(Code::BadSequence, "Already logged in"));
            }
            Login::Fresh => {
                return Outcome::reply(Reply::new(Code::BadSequence, "Login with USER first"))
            }
        };
        // argon2 runs on core's bounded hashing pool, not on this session's thread.
        match self.services.auth.login(&user, &pass).await {
            Ok(principal) => {
                // The hash at login, so a password change can close this session.
                let password_hash = if principal.anonymous {
                    None
                } else {
                    match self.services.accounts.user(&principal.name).await {
                        Ok(Some(u)) => Some(u.password_hash),
                        _ => {
                            return Outcome::with(
                                Reply::new(Code::NotLoggedIn, "Login incorrect"),
                                Action::LoginFailed,
                            )
                        }
                    }
                };
                let text = format!("User {} logged in", principal.name);
                self.login = Login::LoggedIn(Box::new(LoggedIn {
                    principal,
                    password_hash,
                }));
                self.cwd = VPath::root();
                Outcome::reply(Reply::new(Code::LoggedIn, text))
            }
            Err(e) => {
                let reply = auth_error_reply(&e);
                if reply.code == Code::NotLoggedIn {
                    Outcome::with(reply, Action::LoginFailed)
                } else {
                    Outcome::reply(reply)
                }
            }
        }
    }

    pub(crate) fn cmd_acct(&mut self) -> Outcome {
        match self.login {
            Login::LoggedIn(_) => Outcome::reply(Reply::new(Code::Superfluous, "ACCT not needed")),
            _ => Outcome::reply(Reply::new(Code::BadSequence, "Login with USER and PASS")),
        }
    }

    pub(crate) fn cmd_rein(&mut self) -> Outcome {
        self.reset();
        self.login = Login::Fresh;
        Outcome::reply(Reply::new(
            Code::ServiceReady,
            "Session reset; login with USER",
        ))
    }

    pub(crate) fn cmd_host(&mut self, host: &str) -> Outcome {
        match self.login {
            Login::LoggedIn(_) => {
                Outcome::reply(Reply::new(Code::BadSequence, "HOST must come before login"))
            }
            Login::NeedPassword { .. } => {
                Outcome::reply(Reply::new(Code::BadSequence, "HOST must come before USER"))
            }
            Login::Fresh if host.trim().is_empty() => {
                Outcome::reply(Reply::new(Code::ArgumentSyntaxError, "HOST needs a name"))
            }
            // One store serves every name: any host is this one.
            Login::Fresh => Outcome::reply(Reply::new(Code::ServiceReady, "HOST accepted")),
        }
    }

    /// Everything back to a fresh connection's state, except the login (callers set it).
    fn reset(&mut self) {
        self.login = Login::Fresh;
        self.cwd = VPath::root();
        self.type_code = TypeCode::Ascii;
        self.rest = 0;
        self.rnfr = None;
        self.data = DataSetup::None;
        self.pending_passive = None;
        self.epsv_all = false;
        self.facts = Facts::all();
    }
}
