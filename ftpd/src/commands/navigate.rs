//! PWD, CWD, CDUP (and XPWD, XCWD, XCUP, RFC 775).
//!
//! RFC 959 4.1.1: "CHANGE WORKING DIRECTORY (CWD): This command allows the user to work with a
//! different directory or dataset for file storage or retrieval without altering his login or
//! accounting information." "CHANGE TO PARENT DIRECTORY (CDUP): [...] a special case of CWD".
//! 4.1.3: "PRINT WORKING DIRECTORY (PWD): This command causes the name of the current working
//! directory to be returned in the reply." Appendix II: a 257 reply quotes the path, doubling
//! embedded quotes.

use filegate_core::{Permissions, VPath};

use crate::errors::store_error_reply;
use crate::reply::{quote_path, Code, Reply};
use crate::session::{Outcome, Session};

impl Session {
    pub(crate) fn cmd_pwd(&mut self) -> Outcome {
        Outcome::reply(Reply::new(
            Code::PathCreated,
            format!("{} is the current directory", quote_path(self.cwd.as_str())),
        ))
    }

    pub(crate) async fn cmd_cwd(&mut self, input: &str) -> Outcome {
        let (user_path, store_path) = match self.resolve(input) {
            Ok(p) => p,
            Err(r) => return Outcome::reply(r),
        };
        if let Err(r) = self.require(Permissions::empty()) {
            return Outcome::reply(r);
        }
        match self.services.storage.stat(&store_path).await {
            Ok(e) if e.is_dir() => {
                self.cwd = user_path;
                Outcome::reply(Reply::new(
                    Code::FileActionOk,
                    format!("Directory changed to {}", quote_path(self.cwd.as_str())),
                ))
            }
            Ok(_) => Outcome::reply(Reply::new(Code::FileNotAvailable, "Not a directory")),
            Err(e) => Outcome::reply(store_error_reply(&e)),
        }
    }

    pub(crate) fn cmd_cdup(&mut self) -> Outcome {
        // The parent of a directory that existed; the root's parent is the root.
        self.cwd = self.cwd.parent().unwrap_or_else(VPath::root);
        Outcome::reply(Reply::new(
            Code::Ok,
            format!("Directory changed to {}", quote_path(self.cwd.as_str())),
        ))
    }
}
