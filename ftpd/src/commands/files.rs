//! MKD, RMD, DELE, RNFR, RNTO, SIZE, MDTM.
//!
//! RFC 959 4.1.3: "MAKE DIRECTORY (MKD): This command causes the directory specified in the
//! pathname to be created." "REMOVE DIRECTORY (RMD)". "DELETE (DELE): This command causes the
//! file specified in the pathname to be deleted at the server site." "RENAME FROM (RNFR): [...]
//! must be immediately followed by a "rename to" command". RFC 3659 4: "The FTP command, SIZE
//! OF FILE (SIZE), is used to obtain the transfer size of a file"; 3: "MODIFICATION TIME
//! (MDTM) [...] the last modification time of the file".

use filegate_core::Permissions;

use crate::errors::store_error_reply;
use crate::listing::Utc;
use crate::reply::{quote_path, Code, Reply};
use crate::session::{Outcome, Session};

impl Session {
    pub(crate) async fn cmd_mkd(&mut self, input: &str) -> Outcome {
        let (user_path, store_path) = match self.permitted_path(Permissions::MKDIR, input) {
            Ok(p) => p,
            Err(r) => return Outcome::reply(r),
        };
        if user_path.is_root() {
            return Outcome::reply(Reply::new(Code::FileNotAvailable, "File exists"));
        }
        match self.services.storage.mkdir(&store_path).await {
            Ok(_) => Outcome::reply(Reply::new(
                Code::PathCreated,
                format!("{} created", quote_path(user_path.as_str())),
            )),
            Err(e) => Outcome::reply(store_error_reply(&e)),
        }
    }

    pub(crate) async fn cmd_rmd(&mut self, input: &str) -> Outcome {
        let (user_path, store_path) = match self.permitted_path(Permissions::DELETE, input) {
            Ok(p) => p,
            Err(r) => return Outcome::reply(r),
        };
        if user_path.is_root() {
            return Outcome::reply(Reply::new(Code::FileNotAvailable, "Cannot remove the root"));
        }
        match self.services.storage.stat(&store_path).await {
            Ok(e) if !e.is_dir() => {
                return Outcome::reply(Reply::new(Code::FileNotAvailable, "Not a directory"))
            }
            Ok(_) => {}
            Err(e) => return Outcome::reply(store_error_reply(&e)),
        }
        match self.services.storage.rmdir(&store_path).await {
            Ok(()) => {
                // A removed working directory leaves the user at the nearest ancestor left.
                if self.cwd.starts_with(&user_path) {
                    self.cwd = user_path
                        .parent()
                        .unwrap_or_else(filegate_core::VPath::root);
                }
                Outcome::reply(Reply::new(Code::FileActionOk, "Directory removed"))
            }
            Err(e) => Outcome::reply(store_error_reply(&e)),
        }
    }

    pub(crate) async fn cmd_dele(&mut self, input: &str) -> Outcome {
        let (_, store_path) = match self.permitted_path(Permissions::DELETE, input) {
            Ok(p) => p,
            Err(r) => return Outcome::reply(r),
        };
        match self.services.storage.delete(&store_path).await {
            Ok(()) => Outcome::reply(Reply::new(Code::FileActionOk, "File deleted")),
            Err(e) => Outcome::reply(store_error_reply(&e)),
        }
    }

    pub(crate) async fn cmd_rnfr(&mut self, input: &str) -> Outcome {
        let (user_path, store_path) = match self.permitted_path(Permissions::RENAME, input) {
            Ok(p) => p,
            Err(r) => return Outcome::reply(r),
        };
        if user_path.is_root() {
            return Outcome::reply(Reply::new(Code::FileNotAvailable, "Cannot rename the root"));
        }
        match self.services.storage.stat(&store_path).await {
            Ok(_) => {
                self.rnfr = Some(store_path);
                Outcome::reply(Reply::new(Code::PendingFurtherInfo, "Ready for RNTO"))
            }
            Err(e) => Outcome::reply(store_error_reply(&e)),
        }
    }

    pub(crate) async fn cmd_rnto(
        &mut self,
        from: Option<filegate_core::VPath>,
        input: &str,
    ) -> Outcome {
        let Some(from) = from else {
            return Outcome::reply(Reply::new(Code::BadSequence, "RNFR required first"));
        };
        let overwrite = match self.require(Permissions::RENAME) {
            Ok(p) => p.can(Permissions::WRITE),
            Err(r) => return Outcome::reply(r),
        };
        let (user_path, store_path) = match self.resolve(input) {
            Ok(p) => p,
            Err(r) => return Outcome::reply(r),
        };
        if user_path.is_root() {
            return Outcome::reply(Reply::new(
                Code::FileNameNotAllowed,
                "Cannot rename onto the root",
            ));
        }
        match self
            .services
            .storage
            .rename(&from, &store_path, overwrite)
            .await
        {
            Ok(_) => Outcome::reply(Reply::new(Code::FileActionOk, "Rename successful")),
            Err(e) => Outcome::reply(store_error_reply(&e)),
        }
    }

    pub(crate) async fn cmd_size(&mut self, input: &str) -> Outcome {
        let (_, store_path) = match self.permitted_path(Permissions::LIST, input) {
            Ok(p) => p,
            Err(r) => return Outcome::reply(r),
        };
        match self.services.storage.stat(&store_path).await {
            Ok(e) if e.is_dir() => {
                Outcome::reply(Reply::new(Code::FileNotAvailable, "Not a plain file"))
            }
            Ok(e) => Outcome::reply(Reply::new(Code::FileStatus, e.size.to_string())),
            Err(e) => Outcome::reply(store_error_reply(&e)),
        }
    }

    pub(crate) async fn cmd_mdtm(&mut self, input: &str) -> Outcome {
        let (_, store_path) = match self.permitted_path(Permissions::LIST, input) {
            Ok(p) => p,
            Err(r) => return Outcome::reply(r),
        };
        match self.services.storage.stat(&store_path).await {
            Ok(e) if e.is_dir() => {
                Outcome::reply(Reply::new(Code::FileNotAvailable, "Not a plain file"))
            }
            Ok(e) => Outcome::reply(Reply::new(
                Code::FileStatus,
                Utc::from_system(e.modified).timeval(),
            )),
            Err(e) => Outcome::reply(store_error_reply(&e)),
        }
    }
}
