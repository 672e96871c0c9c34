//! LIST, NLST, MLSD, MLST, STAT.
//!
//! RFC 959 4.1.3: "LIST: This command causes a list to be sent from the server to the passive
//! DTP. If the pathname specifies a directory or other group of files, the server should
//! transfer a list of files in the specified directory." "NAME LIST (NLST): [...] a directory
//! listing [...] a stream of names of files and no other information". "STATUS (STAT): [...] If
//! an argument is given, the command is analogous to the LIST command, except that data shall
//! be transferred over the control connection." RFC 3659 7: MLST answers on the control
//! connection for one object, MLSD lists a directory on the data connection, each entry as
//! "facts SP name".

use std::time::SystemTime;

use filegate_core::{Entry, Permissions, VPath};

use crate::errors::store_error_reply;
use crate::listing::{join_crlf, list_line, mlsd_line};
use crate::parser::TypeCode;
use crate::reply::{Code, Reply};
use crate::session::{DataSetup, Direction, Outcome, Session, Source};

/// Entries a listing sends at most (a bound on memory per listing).
const MAX_LISTING: usize = 100_000;

/// Strips `ls` options (`-la`, `-a dir`) that clients put before the path of LIST and NLST.
fn strip_options(arg: Option<&str>) -> Option<&str> {
    let mut rest = arg?;
    while rest.starts_with('-') {
        match rest.split_once(' ') {
            Some((_, r)) => rest = r.trim_start(),
            None => return None,
        }
    }
    Some(rest).filter(|r| !r.is_empty())
}

/// What a listing target turned out to be.
enum Target {
    Dir(Vec<Entry>),
    File(Entry),
}

impl Session {
    /// Stat, then list if a directory. Errors are the replies to send.
    async fn target(&self, input: Option<&str>) -> Result<(VPath, Target), Reply> {
        self.require(Permissions::LIST)?;
        let (user_path, store_path) = self.resolve(input.unwrap_or("."))?;
        let entry = self
            .services
            .storage
            .stat(&store_path)
            .await
            .map_err(|e| store_error_reply(&e))?;
        if !entry.is_dir() {
            return Ok((user_path, Target::File(entry)));
        }
        let mut entries = self
            .services
            .storage
            .list(&store_path)
            .await
            .map_err(|e| store_error_reply(&e))?;
        entries.truncate(MAX_LISTING);
        Ok((user_path, Target::Dir(entries)))
    }

    pub(crate) async fn cmd_list(
        &mut self,
        input: Option<&str>,
        verb: &'static str,
        now: SystemTime,
    ) -> Outcome {
        self.rest = 0;
        let input = strip_options(input);
        if let Err(r) = self.require(Permissions::LIST) {
            return Outcome::reply(r);
        }
        if let Err(r) = self.data_ready() {
            return Outcome::reply(r);
        }
        let (user_path, target) = match self.target(input).await {
            Ok(t) => t,
            // RFC 959 gives LIST and NLST 450 (not 550) for an unavailable file.
            Err(r) if r.code == Code::FileNotAvailable => {
                return Outcome::reply(Reply::new(Code::FileUnavailable, r.text().to_owned()))
            }
            Err(r) => return Outcome::reply(r),
        };
        let body = match (verb, target) {
            ("NLST", Target::Dir(entries)) => join_crlf(entries.into_iter().map(|e| e.name)),
            // NLST of a file names it as the client did.
            ("NLST", Target::File(_)) => join_crlf([input.unwrap_or_default().to_owned()]),
            (_, Target::Dir(entries)) => join_crlf(entries.iter().map(|e| list_line(e, now))),
            (_, Target::File(e)) => join_crlf([list_line(&e, now)]),
        };
        self.start_transfer(
            verb,
            user_path,
            Direction::Send(Source::Listing(body)),
            Reply::new(Code::FileStatusOk, "Here comes the directory listing"),
        )
    }

    pub(crate) async fn cmd_mlsd(&mut self, input: Option<&str>) -> Outcome {
        self.rest = 0;
        let perms = match self.require(Permissions::LIST) {
            Ok(p) => p.permissions,
            Err(r) => return Outcome::reply(r),
        };
        if let Err(r) = self.data_ready() {
            return Outcome::reply(r);
        }
        let (user_path, target) = match self.target(input).await {
            Ok(t) => t,
            Err(r) => return Outcome::reply(r),
        };
        let entries = match target {
            Target::Dir(entries) => entries,
            Target::File(_) => {
                return Outcome::reply(Reply::new(Code::ArgumentSyntaxError, "Not a directory"))
            }
        };
        let facts = self.facts;
        let body = join_crlf(entries.iter().map(|e| mlsd_line(e, facts, perms)));
        self.start_transfer(
            "MLSD",
            user_path,
            Direction::Send(Source::Listing(body)),
            Reply::new(Code::FileStatusOk, "Here comes the directory listing"),
        )
    }

    pub(crate) async fn cmd_mlst(&mut self, input: Option<&str>) -> Outcome {
        let perms = match self.require(Permissions::LIST) {
            Ok(p) => p.permissions,
            Err(r) => return Outcome::reply(r),
        };
        let (user_path, store_path) = match self.resolve(input.unwrap_or(".")) {
            Ok(p) => p,
            Err(r) => return Outcome::reply(r),
        };
        match self.services.storage.stat(&store_path).await {
            Ok(e) => {
                let line = format!(
                    " {} {}",
                    crate::listing::facts(&e, self.facts, perms),
                    user_path
                );
                Outcome::reply(Reply::multi(
                    Code::FileActionOk,
                    format!("Listing {user_path}"),
                    [line],
                    "End",
                ))
            }
            Err(e) => Outcome::reply(store_error_reply(&e)),
        }
    }

    pub(crate) fn cmd_stat_session(&mut self) -> Outcome {
        let mut lines = vec![format!(" Connected to {}", self.settings.peer.ip())];
        match self.user() {
            Some(u) => lines.push(format!(" Logged in as {u}")),
            None => lines.push(" Not logged in".to_owned()),
        }
        lines.push(format!(
            " TYPE: {}, STRUcture: File, MODE: Stream",
            if self.type_code == TypeCode::Ascii {
                "ASCII"
            } else {
                "BINARY"
            }
        ));
        lines.push(format!(" UTF8: {}", if self.utf8 { "on" } else { "off" }));
        lines.push(match self.data {
            DataSetup::None => " No data connection".to_owned(),
            DataSetup::Passive => " Passive data port open".to_owned(),
            DataSetup::Active(a) => format!(" Active data connection to {a}"),
        });
        Outcome::reply(Reply::multi(
            Code::SystemStatus,
            "FTP server status:",
            lines,
            "End of status",
        ))
    }

    pub(crate) async fn cmd_stat_path(&mut self, input: &str, now: SystemTime) -> Outcome {
        let input = strip_options(Some(input));
        let (user_path, target) = match self.target(input).await {
            Ok(t) => t,
            Err(r) => return Outcome::reply(r),
        };
        let (code, lines) = match target {
            Target::Dir(entries) => (
                Code::DirectoryStatus,
                entries
                    .iter()
                    .map(|e| format!(" {}", list_line(e, now)))
                    .collect::<Vec<_>>(),
            ),
            Target::File(e) => (Code::FileStatus, vec![format!(" {}", list_line(&e, now))]),
        };
        Outcome::reply(Reply::multi(
            code,
            format!("Status of {user_path}:"),
            lines,
            "End of status",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::strip_options;

    #[test]
    fn ls_options_are_not_paths() {
        assert_eq!(strip_options(None), None);
        assert_eq!(strip_options(Some("-la")), None);
        assert_eq!(strip_options(Some("-l -a dir x")), Some("dir x"));
        assert_eq!(strip_options(Some("dir")), Some("dir"));
    }
}
