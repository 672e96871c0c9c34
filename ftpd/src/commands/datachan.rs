//! PASV, EPSV, PORT, EPRT: how the next data connection is made.
//!
//! RFC 959 4.1.2: "PASSIVE (PASV): This command requests the server-DTP to "listen" on a data
//! port (which is not its default data port) and to wait for a connection rather than initiate
//! one upon receipt of a transfer command." "DATA PORT (PORT): The argument is a HOST-PORT
//! specification for the data port to be used in data connection." RFC 2428: EPRT and EPSV
//! carry IPv6 too; "EPSV ALL" makes the server refuse every other setup command. RFC 2577 (FTP
//! security): a server should not connect to a third party (the "bounce" attack) nor to
//! privileged ports.

use std::net::{IpAddr, SocketAddr};

use crate::parser::EpsvArg;
use crate::reply::{Code, Reply};
use crate::session::{Action, DataSetup, Outcome, PassiveKind, Session};

/// Lowest port PORT/EPRT may name (RFC 2577: no privileged ports).
const MIN_ACTIVE_PORT: u16 = 1024;

impl Session {
    pub(crate) fn cmd_pasv(&mut self) -> Outcome {
        if self.epsv_all {
            return Outcome::reply(Reply::new(Code::BadSequence, "Only EPSV after EPSV ALL"));
        }
        let advertised = self
            .settings
            .passive_address
            .unwrap_or(self.settings.local.ip());
        let v4 = match advertised {
            IpAddr::V4(a) => a,
            IpAddr::V6(a) => match a.to_ipv4_mapped() {
                Some(a) => a,
                None => {
                    return Outcome::reply(Reply::new(
                        Code::CantOpenData,
                        "PASV is IPv4 only; use EPSV",
                    ))
                }
            },
        };
        self.data = DataSetup::None;
        self.pending_passive = Some(PassiveKind::Pasv(v4));
        Outcome::action(Action::OpenPassive)
    }

    pub(crate) fn cmd_epsv(&mut self, arg: EpsvArg) -> Outcome {
        let is_v4 = match self.settings.local.ip() {
            IpAddr::V4(_) => true,
            IpAddr::V6(a) => a.to_ipv4_mapped().is_some(),
        };
        match arg {
            EpsvArg::All => {
                self.epsv_all = true;
                return Outcome::reply(Reply::new(Code::Ok, "EPSV ALL ok"));
            }
            EpsvArg::Proto(1) if !is_v4 => {
                return Outcome::reply(Reply::new(
                    Code::NetworkProtocolNotSupported,
                    "Network protocol not supported, use (2)",
                ))
            }
            EpsvArg::Proto(2) if is_v4 => {
                return Outcome::reply(Reply::new(
                    Code::NetworkProtocolNotSupported,
                    "Network protocol not supported, use (1)",
                ))
            }
            _ => {}
        }
        self.data = DataSetup::None;
        self.pending_passive = Some(PassiveKind::Epsv);
        Outcome::action(Action::OpenPassive)
    }

    /// The reply to PASV/EPSV once the connection layer has bound (or failed to bind) a port.
    pub fn passive_opened(&mut self, port: std::io::Result<u16>) -> Reply {
        let kind = self.pending_passive.take();
        match (kind, port) {
            (Some(PassiveKind::Pasv(ip)), Ok(port)) => {
                self.data = DataSetup::Passive;
                let o = ip.octets();
                Reply::new(
                    Code::EnteringPassive,
                    format!(
                        "Entering Passive Mode ({},{},{},{},{},{})",
                        o[0],
                        o[1],
                        o[2],
                        o[3],
                        port >> 8,
                        port & 0xff
                    ),
                )
            }
            (Some(PassiveKind::Epsv), Ok(port)) => {
                self.data = DataSetup::Passive;
                Reply::new(
                    Code::EnteringExtendedPassive,
                    format!("Entering Extended Passive Mode (|||{port}|)"),
                )
            }
            (None, _) => Reply::new(Code::BadSequence, "No passive request pending"),
            (Some(_), Err(_)) => {
                self.data = DataSetup::None;
                Reply::new(Code::CantOpenData, "No passive port free; try again")
            }
        }
    }

    pub(crate) fn cmd_port(&mut self, addr: SocketAddr, verb: &'static str) -> Outcome {
        if !self.settings.active_mode {
            return Outcome::reply(Reply::new(
                Code::NotImplemented,
                "Active mode is off here; use PASV or EPSV",
            ));
        }
        if self.epsv_all {
            return Outcome::reply(Reply::new(Code::BadSequence, "Only EPSV after EPSV ALL"));
        }
        if addr.ip().to_canonical() != self.settings.peer.ip().to_canonical() {
            return Outcome::reply(Reply::new(
                Code::NotImplementedForParameter,
                format!("{verb} refused: data connections go only to your own address"),
            ));
        }
        if addr.port() < MIN_ACTIVE_PORT {
            return Outcome::reply(Reply::new(
                Code::NotImplementedForParameter,
                format!("{verb} refused: privileged port"),
            ));
        }
        self.data = DataSetup::Active(addr);
        self.pending_passive = None;
        Outcome::reply(Reply::new(Code::Ok, format!("{verb} command successful")))
    }
}
