//! FEAT, OPTS, HELP, SITE.
//!
//! RFC 2389 3: "The FEAT command consists solely of the word "FEAT". [...] Each extension
//! supported must be listed on a separate line", the lines beginning with a space. 4: "The OPTS
//! (options) command allows a user-PI to specify the desired behavior of a server-FTP process
//! when another FTP command (the target command) is later issued." RFC 959 4.1.3: "HELP: This
//! command shall cause the server to send helpful information regarding its implementation
//! status over the control connection to the user." "SITE PARAMETERS (SITE): This command is
//! used by the server to provide services specific to his system".

use crate::listing::Facts;
use crate::parser::OptsArg;
use crate::reply::{Code, Reply};
use crate::session::{Outcome, Session};

/// Every verb this server implements, for HELP.
const VERBS: &str = "ABOR ACCT ALLO APPE CDUP CWD DELE EPRT EPSV FEAT HELP HOST LIST MDTM MKD MLSD MLST MODE NLST NOOP OPTS PASS PASV PORT PWD QUIT REIN REST RETR RMD RNFR RNTO SITE SIZE STAT STOR STOU STRU SYST TYPE USER XCUP XCWD XMKD XPWD XRMD";

impl Session {
    pub(crate) fn cmd_feat(&mut self) -> Outcome {
        let mut lines = vec![
            " EPRT".to_owned(),
            " EPSV".to_owned(),
            " HOST".to_owned(),
            " MDTM".to_owned(),
            self.facts.feat_line(),
            " PASV".to_owned(),
            " REST STREAM".to_owned(),
            " SIZE".to_owned(),
            " TVFS".to_owned(),
            " UTF8".to_owned(),
        ];
        if !self.settings.active_mode {
            lines.retain(|l| l != " EPRT");
        }
        Outcome::reply(Reply::multi(Code::SystemStatus, "Features:", lines, "End"))
    }

    pub(crate) fn cmd_opts(&mut self, o: OptsArg) -> Outcome {
        match o {
            OptsArg::Utf8(on) => {
                self.utf8 = on;
                Outcome::reply(Reply::new(
                    Code::Ok,
                    if on {
                        "UTF8 mode on"
                    } else {
                        "UTF8 mode off (names stay UTF-8)"
                    },
                ))
            }
            OptsArg::Mlst(list) => {
                self.facts = Facts::parse(&list);
                Outcome::reply(Reply::new(
                    Code::Ok,
                    format!("MLST OPTS {}", self.facts.names()),
                ))
            }
            OptsArg::Other(_) => Outcome::reply(Reply::new(
                Code::ArgumentSyntaxError,
                "Option not understood",
            )),
        }
    }

    pub(crate) fn cmd_help(&mut self) -> Outcome {
        Outcome::reply(Reply::multi(
            Code::Help,
            "The following commands are recognized:",
            [format!(" {VERBS}")],
            "Help OK",
        ))
    }

    pub(crate) fn cmd_site(&mut self, arg: &str) -> Outcome {
        if arg.trim().eq_ignore_ascii_case("HELP") {
            Outcome::reply(Reply::multi(
                Code::Help,
                "SITE commands:",
                [" HELP".to_owned()],
                "Help OK",
            ))
        } else {
            Outcome::reply(Reply::new(
                Code::NotImplementedForParameter,
                "Unknown SITE command",
            ))
        }
    }
}
