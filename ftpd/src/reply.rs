//! Replies: a code enum with one doc line per code (RFC 959 section 4.2 and its extensions) and
//! the encoding of single- and multi-line replies.

use std::borrow::Cow;

/// Every reply code this server sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u16)]
pub enum Code {
    /// File status okay; about to open data connection.
    FileStatusOk = 150,
    /// Command okay.
    Ok = 200,
    /// Command not implemented, superfluous at this site.
    Superfluous = 202,
    /// System status, or system help reply.
    SystemStatus = 211,
    /// Directory status.
    DirectoryStatus = 212,
    /// File status.
    FileStatus = 213,
    /// Help message.
    Help = 214,
    /// NAME system type.
    SystemType = 215,
    /// Service ready for new user.
    ServiceReady = 220,
    /// Service closing control connection.
    Closing = 221,
    /// Data connection open; no transfer in progress.
    DataOpenNoTransfer = 225,
    /// Closing data connection; requested file action successful.
    ClosingData = 226,
    /// Entering Passive Mode (h1,h2,h3,h4,p1,p2).
    EnteringPassive = 227,
    /// Entering Extended Passive Mode (|||port|) (RFC 2428).
    EnteringExtendedPassive = 229,
    /// User logged in, proceed.
    LoggedIn = 230,
    /// Requested file action okay, completed.
    FileActionOk = 250,
    /// "PATHNAME" created (also the reply to PWD).
    PathCreated = 257,
    /// User name okay, need password.
    NeedPassword = 331,
    /// Requested file action pending further information (RNFR, REST).
    PendingFurtherInfo = 350,
    /// Service not available, closing control connection.
    ServiceNotAvailable = 421,
    /// Can't open data connection.
    CantOpenData = 425,
    /// Connection closed; transfer aborted.
    TransferAborted = 426,
    /// Requested file action not taken; file unavailable (busy, changed meanwhile).
    FileUnavailable = 450,
    /// Requested action aborted: local error in processing.
    LocalError = 451,
    /// Requested action not taken: insufficient storage space in system.
    InsufficientStorage = 452,
    /// Syntax error, command unrecognized (also: line too long).
    SyntaxError = 500,
    /// Syntax error in parameters or arguments.
    ArgumentSyntaxError = 501,
    /// Command not implemented.
    NotImplemented = 502,
    /// Bad sequence of commands.
    BadSequence = 503,
    /// Command not implemented for that parameter.
    NotImplementedForParameter = 504,
    /// Network protocol not supported (RFC 2428).
    NetworkProtocolNotSupported = 522,
    /// Not logged in.
    NotLoggedIn = 530,
    /// Requested action not taken: file unavailable (not found, no access).
    FileNotAvailable = 550,
    /// Requested file action aborted: exceeded storage allocation.
    ExceededStorage = 552,
    /// Requested action not taken: file name not allowed.
    FileNameNotAllowed = 553,
    /// Requested action not taken: invalid REST parameter (RFC 1123 4.1.3.4).
    InvalidRestParameter = 554,
}

impl Code {
    pub fn as_u16(self) -> u16 {
        self as u16
    }

    /// Positive preliminary, completion or intermediate (1xx, 2xx, 3xx).
    pub fn is_positive(self) -> bool {
        self.as_u16() < 400
    }
}

/// One reply: a code and one or more lines of text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub code: Code,
    /// The text after the code. With more than one line, the first goes on the `NNN-` line,
    /// the middle ones are sent as they are (callers start them with a space, as FEAT and MLST
    /// require), and the last goes on the closing `NNN ` line.
    pub lines: Vec<Cow<'static, str>>,
}

impl Reply {
    /// A one-line reply.
    pub fn new(code: Code, text: impl Into<Cow<'static, str>>) -> Self {
        Reply {
            code,
            lines: vec![text.into()],
        }
    }

    /// A multi-line reply (RFC 959 section 4.2): `first`, `middle` lines, `last`.
    pub fn multi(
        code: Code,
        first: impl Into<Cow<'static, str>>,
        middle: impl IntoIterator<Item = String>,
        last: impl Into<Cow<'static, str>>,
    ) -> Self {
        let mut lines = vec![first.into()];
        lines.extend(middle.into_iter().map(Cow::Owned));
        lines.push(last.into());
        Reply { code, lines }
    }

    /// The first line's text (for logs and tests).
    pub fn text(&self) -> &str {
        self.lines.first().map(|l| l.as_ref()).unwrap_or("")
    }

    /// Appends the wire form to `out`. CR and LF inside a line are replaced by spaces, so no
    /// text can forge a reply; a middle line that could be read as a closing line is indented.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        let code = self.code.as_u16();
        let n = self.lines.len();
        for (i, line) in self.lines.iter().enumerate() {
            if n == 1 {
                push_code(out, code, b' ');
            } else if i == 0 {
                push_code(out, code, b'-');
            } else if i == n - 1 {
                push_code(out, code, b' ');
            } else if line.as_bytes().first().is_some_and(u8::is_ascii_digit) {
                out.push(b' ');
            }
            out.extend(
                line.bytes()
                    .map(|b| if b == b'\r' || b == b'\n' { b' ' } else { b }),
            );
            out.extend_from_slice(b"\r\n");
        }
        if n == 0 {
            push_code(out, code, b' ');
            out.extend_from_slice(b"\r\n");
        }
    }

    /// The wire form.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64);
        self.encode_into(&mut out);
        out
    }
}

fn push_code(out: &mut Vec<u8>, code: u16, sep: u8) {
    out.push(b'0' + (code / 100) as u8);
    out.push(b'0' + (code / 10 % 10) as u8);
    out.push(b'0' + (code % 10) as u8);
    out.push(sep);
}

/// A path quoted for a 257 reply: in double quotes, with every embedded `"` doubled
/// (RFC 959 appendix II).
pub fn quote_path(path: &str) -> String {
    let mut s = String::with_capacity(path.len() + 2);
    s.push('"');
    for c in path.chars() {
        if c == '"' {
            s.push('"');
        }
        s.push(c);
    }
    s.push('"');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_line() {
        assert_eq!(Reply::new(Code::Ok, "fine").encode(), b"200 fine\r\n");
    }

    #[test]
    fn multi_line_rfc959_form() {
        let r = Reply::multi(
            Code::SystemStatus,
            "Features:",
            [" MDTM".to_owned(), "123 looks like a code".to_owned()],
            "End",
        );
        assert_eq!(
            String::from_utf8(r.encode()).unwrap(),
            "211-Features:\r\n MDTM\r\n 123 looks like a code\r\n211 End\r\n"
        );
    }

    #[test]
    fn no_line_breaks_inside_a_line() {
        let r = Reply::new(Code::Ok, "a\r\n200 forged");
        assert_eq!(r.encode(), b"200 a  200 forged\r\n");
    }

    #[test]
    fn quoting_doubles_quotes() {
        assert_eq!(quote_path("/a\"b"), "\"/a\"\"b\"");
        assert_eq!(quote_path("/"), "\"/\"");
    }
}
