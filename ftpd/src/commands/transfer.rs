//! RETR, STOR, STOU, APPE, REST, ABOR, TYPE.
//!
//! RFC 959 4.1.3: "RETRIEVE (RETR): This command causes the server-DTP to transfer a copy of the
//! file, specified in the pathname, to the server- or user-DTP at the other end of the data
//! connection." "STORE (STOR): [...] If the file specified in the pathname exists at the server
//! site, then its contents shall be replaced". "STORE UNIQUE (STOU): [...] the file is to be
//! created in the current directory under a name unique to that directory." "APPEND (with
//! create) (APPE)". "ABORT (ABOR): [...] abort the previous FTP service command and any
//! associated transfer of data." RFC 3659 5: "RESTART (REST) [...] the server-DTP should
//! restart the transfer at the given marker" (in STREAM mode, a byte offset). RFC 1123 4.1.3.4:
//! STOU's preliminary reply is "150 FILE: pppp".

use std::time::SystemTime;

use filegate_core::{Permissions, Precondition, StoreError, VPath, WriteMode};

use crate::errors::store_error_reply;
use crate::parser::TypeCode;
use crate::reply::{Code, Reply};
use crate::session::{Action, DataSetup, Direction, Outcome, Session, Source, Transfer};

/// Names STOU tries before giving up.
const STOU_TRIES: u32 = 1000;

impl Session {
    pub(crate) fn cmd_type(&mut self, t: TypeCode) -> Outcome {
        match t {
            TypeCode::Ascii => {
                self.type_code = t;
                Outcome::reply(Reply::new(Code::Ok, "Switching to ASCII mode"))
            }
            TypeCode::Image => {
                self.type_code = t;
                Outcome::reply(Reply::new(Code::Ok, "Switching to Binary mode"))
            }
            TypeCode::Unsupported => Outcome::reply(Reply::new(
                Code::NotImplementedForParameter,
                "Only TYPE A, I and L 8 are supported",
            )),
        }
    }

    pub(crate) fn cmd_rest(&mut self, offset: u64) -> Outcome {
        self.rest = offset;
        Outcome::reply(Reply::new(
            Code::PendingFurtherInfo,
            format!("Restarting at {offset}; send STOR or RETR to start the transfer"),
        ))
    }

    pub(crate) fn cmd_abor(&mut self) -> Outcome {
        // No transfer runs while the session handles a command (the connection layer answers
        // ABOR during a transfer itself): close any prepared data connection.
        self.data = crate::session::DataSetup::None;
        self.pending_passive = None;
        self.rest = 0;
        Outcome::reply(Reply::new(Code::DataOpenNoTransfer, "No transfer to abort"))
    }

    /// The data setup for a transfer command, or the 425 to send.
    pub(crate) fn data_ready(&self) -> Result<DataSetup, Reply> {
        match self.data {
            DataSetup::None => Err(Reply::new(
                Code::CantOpenData,
                "Use PORT, EPRT, PASV or EPSV first",
            )),
            d => Ok(d),
        }
    }

    /// Hands a transfer to the connection layer: the data setup is used up.
    pub(crate) fn start_transfer(
        &mut self,
        verb: &'static str,
        path: VPath,
        direction: Direction,
        preliminary: Reply,
    ) -> Outcome {
        let setup = self.data;
        self.data = DataSetup::None;
        let ascii = self.type_code == TypeCode::Ascii
            && !matches!(direction, Direction::Send(Source::Listing(_)));
        Outcome::with(
            preliminary,
            Action::Transfer(Box::new(Transfer {
                setup,
                direction,
                ascii,
                verb,
                path,
            })),
        )
    }

    fn mode_name(&self) -> &'static str {
        match self.type_code {
            TypeCode::Ascii => "ASCII",
            _ => "BINARY",
        }
    }

    pub(crate) async fn cmd_retr(&mut self, input: &str) -> Outcome {
        let rest = std::mem::take(&mut self.rest);
        let (user_path, store_path) = match self.permitted_path(Permissions::READ, input) {
            Ok(p) => p,
            Err(r) => return Outcome::reply(r),
        };
        if let Err(r) = self.data_ready() {
            return Outcome::reply(r);
        }
        let handle = match self.services.storage.read(&store_path, rest, None).await {
            Ok(h) => h,
            Err(e) => return Outcome::reply(store_error_reply(&e)),
        };
        let text = format!(
            "Opening {} mode data connection for {} ({} bytes)",
            self.mode_name(),
            handle.entry.name,
            handle.len
        );
        self.start_transfer(
            "RETR",
            user_path,
            Direction::Send(Source::File(handle)),
            Reply::new(Code::FileStatusOk, text),
        )
    }

    /// STOR (replace, or write from the REST offset) and APPE (append).
    pub(crate) async fn cmd_store(&mut self, input: &str, verb: &'static str) -> Outcome {
        let rest = std::mem::take(&mut self.rest);
        let (user_path, store_path) = match self.permitted_path(Permissions::WRITE, input) {
            Ok(p) => p,
            Err(r) => return Outcome::reply(r),
        };
        if let Err(r) = self.data_ready() {
            return Outcome::reply(r);
        }
        let mode = match (verb, rest) {
            ("APPE", _) => WriteMode::Append,
            (_, 0) => WriteMode::Replace,
            (_, n) => WriteMode::At(n),
        };
        // What can fail before the body arrives fails before the 150.
        if let Err(r) = self.check_upload_target(&store_path, mode).await {
            return Outcome::reply(r);
        }
        let text = format!("Ok to send data ({} mode)", self.mode_name());
        self.start_transfer(
            verb,
            user_path,
            Direction::Receive {
                store_path,
                mode,
                precondition: Precondition::None,
            },
            Reply::new(Code::FileStatusOk, text),
        )
    }

    pub(crate) async fn cmd_stou(&mut self, input: Option<&str>, now: SystemTime) -> Outcome {
        self.rest = 0;
        if let Err(r) = self.require(Permissions::WRITE) {
            return Outcome::reply(r);
        }
        if let Err(r) = self.data_ready() {
            return Outcome::reply(r);
        }
        let base = input
            .map(str::trim)
            .filter(|s| !s.is_empty() && !s.contains('/'));
        let stamp = now
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let mut chosen = None;
        for i in 0..STOU_TRIES {
            let name = match (base, i) {
                (Some(b), 0) => b.to_owned(),
                (Some(b), n) => format!("{b}.{n}"),
                (None, n) => format!("stou.{stamp}.{n}"),
            };
            let (user_path, store_path) = match self.resolve(&name) {
                Ok(p) => p,
                Err(r) => return Outcome::reply(r),
            };
            match self.services.storage.stat(&store_path).await {
                Err(StoreError::NotFound) => {
                    chosen = Some((name, user_path, store_path));
                    break;
                }
                Ok(_) => continue,
                Err(e) => return Outcome::reply(store_error_reply(&e)),
            }
        }
        let Some((name, user_path, store_path)) = chosen else {
            return Outcome::reply(Reply::new(Code::FileNameNotAllowed, "No unique name found"));
        };
        if let Err(r) = self
            .check_upload_target(&store_path, WriteMode::Replace)
            .await
        {
            return Outcome::reply(r);
        }
        self.start_transfer(
            "STOU",
            user_path,
            Direction::Receive {
                store_path,
                mode: WriteMode::Replace,
                precondition: Precondition::MustNotExist,
            },
            Reply::new(Code::FileStatusOk, format!("FILE: {name}")),
        )
    }

    /// The parent must be a directory, the target not one, and a REST offset not past the end.
    async fn check_upload_target(&self, store_path: &VPath, mode: WriteMode) -> Result<(), Reply> {
        if let Some(parent) = store_path.parent() {
            match self.services.storage.stat(&parent).await {
                Ok(e) if e.is_dir() => {}
                Ok(_) => {
                    return Err(Reply::new(
                        Code::FileNameNotAllowed,
                        "Parent is not a directory",
                    ))
                }
                Err(StoreError::NotFound) => {
                    return Err(Reply::new(Code::FileNameNotAllowed, "No such directory"))
                }
                Err(e) => return Err(store_error_reply(&e)),
            }
        }
        let size = match self.services.storage.stat(store_path).await {
            Ok(e) if e.is_dir() => {
                return Err(Reply::new(Code::FileNotAvailable, "Is a directory"))
            }
            Ok(e) => e.size,
            Err(StoreError::NotFound) => 0,
            Err(e) => return Err(store_error_reply(&e)),
        };
        if let WriteMode::At(n) = mode {
            if n > size {
                return Err(store_error_reply(&StoreError::OffsetPastEnd {
                    offset: n,
                    size,
                }));
            }
        }
        Ok(())
    }
}
