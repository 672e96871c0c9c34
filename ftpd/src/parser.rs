//! The control channel's input: framing into lines, then a nom parser from a line to a
//! [`Command`].
//!
//! Framing is the cheap step: find the LF, cap the line at [`MAX_LINE`] bytes, strip the CR and
//! Telnet IAC sequences. Parsing never fails: an unknown verb or a bad argument is a value
//! ([`Command::Error`]) that the session answers like any other command.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use bytes::{Buf, BytesMut};
use nom::bytes::complete::{tag, tag_no_case, take_while1, take_while_m_n};
use nom::character::complete::{digit1, space0, space1};
use nom::combinator::{all_consuming, map_res, opt};
use nom::multi::separated_list1;
use nom::{IResult, Parser};

use crate::reply::{Code, Reply};

/// Longest control line accepted, in bytes, without its line end.
pub const MAX_LINE: usize = 4096;

/// Telnet "interpret as command" (RFC 854).
const IAC: u8 = 255;

/// One framed control line.
#[derive(Debug, PartialEq, Eq)]
pub enum Line {
    /// A line without its CR LF and without Telnet sequences.
    Complete(Vec<u8>),
    /// A line longer than [`MAX_LINE`]: answered 500, its bytes are skipped up to the next LF.
    TooLong,
}

/// Splits the control stream into lines; keeps the one bit of state framing needs.
#[derive(Debug, Default)]
pub struct LineReader {
    /// True while skipping the rest of a line that was too long.
    discarding: bool,
}

impl LineReader {
    /// The next line in `buf`, consuming it; `None` if more bytes are needed.
    pub fn next_line(&mut self, buf: &mut BytesMut) -> Option<Line> {
        loop {
            let window = buf.len().min(MAX_LINE + 2);
            let lf = buf[..window].iter().position(|&b| b == b'\n');
            if self.discarding {
                match buf.iter().position(|&b| b == b'\n') {
                    Some(i) => {
                        buf.advance(i + 1);
                        self.discarding = false;
                        continue;
                    }
                    None => {
                        buf.clear();
                        return None;
                    }
                }
            }
            return match lf {
                Some(i) => {
                    let raw = buf.split_to(i + 1);
                    let mut line = strip_telnet(&raw[..i]);
                    if line.last() == Some(&b'\r') {
                        line.pop();
                    }
                    if line.len() > MAX_LINE {
                        Some(Line::TooLong)
                    } else {
                        Some(Line::Complete(line))
                    }
                }
                None if buf.len() > MAX_LINE + 1 => {
                    buf.clear();
                    self.discarding = true;
                    Some(Line::TooLong)
                }
                None => None,
            };
        }
    }
}

/// Removes Telnet sequences: IAC IAC is a literal 255; IAC WILL/WONT/DO/DONT take an option
/// byte; any other IAC command (IP, DM, ...) is two bytes; a stray IAC alone is dropped (the DM
/// of a Synch can arrive out of band, leaving IAC followed by the next command).
fn strip_telnet(raw: &[u8]) -> Vec<u8> {
    if !raw.contains(&IAC) {
        return raw.to_vec();
    }
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        let b = raw[i];
        if b != IAC {
            out.push(b);
            i += 1;
            continue;
        }
        match raw.get(i + 1) {
            Some(&IAC) => {
                out.push(IAC);
                i += 2;
            }
            Some(251..=254) => i += 3,
            Some(240..=250) => i += 2,
            _ => i += 1,
        }
    }
    out
}

/// The representation type of TYPE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TypeCode {
    /// TYPE A (or A N): line ends converted on the wire.
    Ascii,
    /// TYPE I or L 8: bytes as they are.
    Image,
    /// A type this server does not do (EBCDIC, A T, L 7, ...).
    Unsupported,
}

/// The argument of EPSV.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EpsvArg {
    /// No argument: the protocol of the control connection.
    Any,
    /// EPSV 1 (IPv4) or EPSV 2 (IPv6).
    Proto(u8),
    /// EPSV ALL: from now on only EPSV sets up data connections.
    All,
}

/// What OPTS sets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OptsArg {
    /// OPTS UTF8 ON/OFF (draft-ietf-ftpext-utf-8-option).
    Utf8(bool),
    /// OPTS MLST fact;fact; (RFC 3659 7.9).
    Mlst(String),
    /// Anything else.
    Other(String),
}

/// Why a line is not a command the session can run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseError {
    /// Not a verb this server knows (500).
    Unknown(String),
    /// A verb from the RFCs this server does not implement (502).
    NotImplemented(&'static str),
    /// The verb needs an argument (501).
    MissingArgument(&'static str),
    /// The argument is malformed (501).
    BadArgument(&'static str),
    /// A parameter value this server does not do (504).
    UnsupportedParameter(&'static str),
    /// EPRT/EPSV with a network protocol other than 1 or 2 (522).
    NetworkProtocol,
    /// A line longer than [`MAX_LINE`] (500).
    LineTooLong,
}

impl ParseError {
    /// The reply to a line that did not parse.
    pub fn reply(&self) -> Reply {
        match self {
            ParseError::Unknown(v) if v.is_empty() => Reply::new(Code::SyntaxError, "Syntax error"),
            ParseError::Unknown(v) => Reply::new(Code::SyntaxError, format!("Unknown command {v}")),
            ParseError::NotImplemented(v) => {
                Reply::new(Code::NotImplemented, format!("{v} not implemented"))
            }
            ParseError::MissingArgument(v) => {
                Reply::new(Code::ArgumentSyntaxError, format!("{v} needs an argument"))
            }
            ParseError::BadArgument(why) => Reply::new(Code::ArgumentSyntaxError, *why),
            ParseError::UnsupportedParameter(why) => {
                Reply::new(Code::NotImplementedForParameter, *why)
            }
            ParseError::LineTooLong => Reply::new(Code::SyntaxError, "Command line too long"),
            ParseError::NetworkProtocol => Reply::new(
                Code::NetworkProtocolNotSupported,
                "Network protocol not supported, use (1,2)",
            ),
        }
    }
}

/// One command from the client. Path arguments are UTF-8 as sent (resolved by the session).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    User(String),
    Pass(String),
    Acct,
    Rein,
    Quit,
    /// PWD or XPWD.
    Pwd,
    /// CWD or XCWD.
    Cwd(String),
    /// CDUP or XCUP.
    Cdup,
    /// MKD or XMKD.
    Mkd(String),
    /// RMD or XRMD.
    Rmd(String),
    Dele(String),
    Rnfr(String),
    Rnto(String),
    Type(TypeCode),
    /// MODE S (anything else is refused by the parser).
    Mode,
    /// STRU F (anything else is refused by the parser).
    Stru,
    Pasv,
    Epsv(EpsvArg),
    Port(SocketAddr),
    Eprt(SocketAddr),
    Retr(String),
    Stor(String),
    Stou(Option<String>),
    Appe(String),
    Rest(u64),
    Abor,
    List(Option<String>),
    Nlst(Option<String>),
    Mlsd(Option<String>),
    Mlst(Option<String>),
    Stat(Option<String>),
    Size(String),
    Mdtm(String),
    Feat,
    Opts(OptsArg),
    Syst,
    Noop,
    Help(Option<String>),
    /// SITE with its argument (only SITE HELP does anything).
    Site(String),
    Allo,
    Host(String),
    /// A line that did not parse, answered like a command.
    Error(ParseError),
    /// An empty line: ignored.
    Empty,
}

impl Command {
    /// The verb for logs (no arguments: passwords never reach a log).
    pub fn verb(&self) -> &'static str {
        match self {
            Command::User(_) => "USER",
            Command::Pass(_) => "PASS",
            Command::Acct => "ACCT",
            Command::Rein => "REIN",
            Command::Quit => "QUIT",
            Command::Pwd => "PWD",
            Command::Cwd(_) => "CWD",
            Command::Cdup => "CDUP",
            Command::Mkd(_) => "MKD",
            Command::Rmd(_) => "RMD",
            Command::Dele(_) => "DELE",
            Command::Rnfr(_) => "RNFR",
            Command::Rnto(_) => "RNTO",
            Command::Type(_) => "TYPE",
            Command::Mode => "MODE",
            Command::Stru => "STRU",
            Command::Pasv => "PASV",
            Command::Epsv(_) => "EPSV",
            Command::Port(_) => "PORT",
            Command::Eprt(_) => "EPRT",
            Command::Retr(_) => "RETR",
            Command::Stor(_) => "STOR",
            Command::Stou(_) => "STOU",
            Command::Appe(_) => "APPE",
            Command::Rest(_) => "REST",
            Command::Abor => "ABOR",
            Command::List(_) => "LIST",
            Command::Nlst(_) => "NLST",
            Command::Mlsd(_) => "MLSD",
            Command::Mlst(_) => "MLST",
            Command::Stat(_) => "STAT",
            Command::Size(_) => "SIZE",
            Command::Mdtm(_) => "MDTM",
            Command::Feat => "FEAT",
            Command::Opts(_) => "OPTS",
            Command::Syst => "SYST",
            Command::Noop => "NOOP",
            Command::Help(_) => "HELP",
            Command::Site(_) => "SITE",
            Command::Allo => "ALLO",
            Command::Host(_) => "HOST",
            Command::Error(_) => "?",
            Command::Empty => "",
        }
    }
}

/// Verbs from the RFCs (and common extensions) that this server knows but does not do.
const NOT_IMPLEMENTED: [&str; 22] = [
    "SMNT", "AUTH", "ADAT", "PROT", "PBSZ", "CCC", "MIC", "CONF", "ENC", "LANG", "MFMT", "MFCT",
    "MFF", "XCRC", "XMD5", "XSHA1", "HASH", "CLNT", "XRSQ", "XSEM", "XMAS", "AVBL",
];

/// Parses one framed line (no CR LF, no Telnet sequences).
pub fn parse_command(line: &[u8]) -> Command {
    let Ok((rest, verb)) = verb(line) else {
        if line.iter().all(|&b| b == b' ') {
            return Command::Empty;
        }
        return Command::Error(ParseError::Unknown(String::new()));
    };
    let mut upper = [0u8; 8];
    if verb.len() > upper.len() {
        return Command::Error(ParseError::Unknown(
            String::from_utf8_lossy(&verb[..8]).into_owned(),
        ));
    }
    for (u, v) in upper.iter_mut().zip(verb) {
        *u = v.to_ascii_uppercase();
    }
    let verb_up = std::str::from_utf8(&upper[..verb.len()]).unwrap_or("?");
    // After the verb: nothing, or spaces and an argument. The argument keeps trailing spaces
    // (a file name may end in one) but not the spaces that separate it from the verb.
    let arg: Option<&[u8]> = match space_then_arg(rest) {
        Ok((_, [])) => None,
        Ok((_, a)) => Some(a),
        Err(_) => return Command::Error(ParseError::Unknown(String::new())),
    };
    match parse_verb(verb_up, arg) {
        Ok(c) => c,
        Err(e) => Command::Error(e),
    }
}

fn verb(input: &[u8]) -> IResult<&[u8], &[u8]> {
    take_while1(|c: u8| c.is_ascii_alphabetic()).parse(input)
}

fn space_then_arg(input: &[u8]) -> IResult<&[u8], &[u8]> {
    if input.is_empty() {
        return Ok((input, input));
    }
    let (arg, _) = space1(input)?;
    Ok((&arg[arg.len()..], arg))
}

fn parse_verb(verb: &str, arg: Option<&[u8]>) -> Result<Command, ParseError> {
    use Command as C;
    let text = || -> Result<Option<String>, ParseError> {
        arg.map(|a| {
            String::from_utf8(a.to_vec())
                .map_err(|_| ParseError::BadArgument("Arguments must be UTF-8"))
        })
        .transpose()
    };
    let need = |name: &'static str| -> Result<String, ParseError> {
        text()?.ok_or(ParseError::MissingArgument(name))
    };
    Ok(match verb {
        "USER" => C::User(need("USER")?),
        // An empty password is allowed (anonymous logins, some clients).
        "PASS" => C::Pass(text()?.unwrap_or_default()),
        "ACCT" => C::Acct,
        "REIN" => C::Rein,
        "QUIT" => C::Quit,
        "PWD" | "XPWD" => C::Pwd,
        "CWD" | "XCWD" => C::Cwd(need("CWD")?),
        "CDUP" | "XCUP" => C::Cdup,
        "MKD" | "XMKD" => C::Mkd(need("MKD")?),
        "RMD" | "XRMD" => C::Rmd(need("RMD")?),
        "DELE" => C::Dele(need("DELE")?),
        "RNFR" => C::Rnfr(need("RNFR")?),
        "RNTO" => C::Rnto(need("RNTO")?),
        "TYPE" => C::Type(type_code(arg.ok_or(ParseError::MissingArgument("TYPE"))?)?),
        "MODE" => match arg.map(|a| a.to_ascii_uppercase()).as_deref() {
            Some(b"S") => C::Mode,
            Some(_) => return Err(ParseError::UnsupportedParameter("Only MODE S is supported")),
            None => return Err(ParseError::MissingArgument("MODE")),
        },
        "STRU" => match arg.map(|a| a.to_ascii_uppercase()).as_deref() {
            Some(b"F") => C::Stru,
            Some(_) => return Err(ParseError::UnsupportedParameter("Only STRU F is supported")),
            None => return Err(ParseError::MissingArgument("STRU")),
        },
        "PASV" => C::Pasv,
        "EPSV" => C::Epsv(epsv_arg(arg)?),
        "PORT" => C::Port(port_arg(arg.ok_or(ParseError::MissingArgument("PORT"))?)?),
        "EPRT" => C::Eprt(eprt_arg(arg.ok_or(ParseError::MissingArgument("EPRT"))?)?),
        "RETR" => C::Retr(need("RETR")?),
        "STOR" => C::Stor(need("STOR")?),
        "STOU" => C::Stou(text()?),
        "APPE" => C::Appe(need("APPE")?),
        "REST" => C::Rest(rest_arg(arg.ok_or(ParseError::MissingArgument("REST"))?)?),
        "ABOR" => C::Abor,
        "LIST" => C::List(text()?),
        "NLST" => C::Nlst(text()?),
        "MLSD" => C::Mlsd(text()?),
        "MLST" => C::Mlst(text()?),
        "STAT" => C::Stat(text()?),
        "SIZE" => C::Size(need("SIZE")?),
        "MDTM" => C::Mdtm(need("MDTM")?),
        "FEAT" => C::Feat,
        "OPTS" => C::Opts(opts_arg(&need("OPTS")?)),
        "SYST" => C::Syst,
        "NOOP" => C::Noop,
        "HELP" => C::Help(text()?),
        "SITE" => C::Site(need("SITE")?),
        "ALLO" => C::Allo,
        "HOST" => C::Host(need("HOST")?),
        other => match NOT_IMPLEMENTED.iter().find(|v| **v == other) {
            Some(v) => return Err(ParseError::NotImplemented(v)),
            None => return Err(ParseError::Unknown(other.to_owned())),
        },
    })
}

fn type_code(arg: &[u8]) -> Result<TypeCode, ParseError> {
    // TYPE A [N|T|C] | I | E [..] | L byte-size
    type TypeArg<'a> = (&'a [u8], Option<&'a [u8]>);
    let parsed: IResult<&[u8], TypeArg<'_>> = all_consuming((
        take_while_m_n(1, 1, |c: u8| c.is_ascii_alphabetic()),
        opt(nom::sequence::preceded(
            space1,
            take_while1(|c: u8| c.is_ascii_alphanumeric()),
        )),
    ))
    .parse(arg.trim_ascii_end());
    let Ok((_, (t, param))) = parsed else {
        return Err(ParseError::BadArgument("Unrecognised TYPE"));
    };
    let param = param.map(|p| p.to_ascii_uppercase());
    Ok(match (t[0].to_ascii_uppercase(), param.as_deref()) {
        (b'A', None | Some(b"N")) => TypeCode::Ascii,
        (b'I', None) => TypeCode::Image,
        (b'L', Some(b"8")) => TypeCode::Image,
        (b'A' | b'E' | b'L', _) => TypeCode::Unsupported,
        _ => return Err(ParseError::BadArgument("Unrecognised TYPE")),
    })
}

fn epsv_arg(arg: Option<&[u8]>) -> Result<EpsvArg, ParseError> {
    let Some(arg) = arg.map(<[u8]>::trim_ascii) else {
        return Ok(EpsvArg::Any);
    };
    if arg.eq_ignore_ascii_case(b"ALL") {
        return Ok(EpsvArg::All);
    }
    match std::str::from_utf8(arg)
        .ok()
        .and_then(|s| s.parse::<u8>().ok())
    {
        Some(p @ (1 | 2)) => Ok(EpsvArg::Proto(p)),
        Some(_) => Err(ParseError::NetworkProtocol),
        None => Err(ParseError::BadArgument("Bad EPSV argument")),
    }
}

fn number<T: std::str::FromStr>(input: &[u8]) -> IResult<&[u8], T> {
    map_res(digit1, |d: &[u8]| {
        std::str::from_utf8(d)
            .map_err(|_| ())
            .and_then(|s| s.parse::<T>().map_err(|_| ()))
    })
    .parse(input)
}

fn port_arg(arg: &[u8]) -> Result<SocketAddr, ParseError> {
    let parsed = all_consuming(nom::sequence::delimited(
        space0,
        separated_list1((space0, tag(","), space0), number::<u8>),
        space0,
    ))
    .parse(arg);
    match parsed {
        Ok((_, n)) if n.len() == 6 => Ok(SocketAddr::new(
            IpAddr::V4(Ipv4Addr::new(n[0], n[1], n[2], n[3])),
            u16::from(n[4]) << 8 | u16::from(n[5]),
        )),
        _ => Err(ParseError::BadArgument(
            "Bad PORT argument, expected h1,h2,h3,h4,p1,p2",
        )),
    }
}

fn eprt_arg(arg: &[u8]) -> Result<SocketAddr, ParseError> {
    // |proto|address|port| with any printable delimiter (RFC 2428 section 2).
    let arg = arg.trim_ascii();
    let bad = ParseError::BadArgument("Bad EPRT argument, expected |proto|address|port|");
    let Some(&d) = arg.first() else {
        return Err(bad);
    };
    if !(33..=126).contains(&d) {
        return Err(bad);
    }
    let fields: Vec<&[u8]> = arg.split(|&b| b == d).collect();
    // "", proto, addr, port, "" around four delimiters.
    let [empty1, proto, addr, port, empty2] = fields.as_slice() else {
        return Err(bad);
    };
    if !empty1.is_empty() || !empty2.is_empty() {
        return Err(bad);
    }
    let proto: u8 = match number::<u8>(proto) {
        Ok(([], p)) => p,
        _ => return Err(bad),
    };
    let port: u16 = match number::<u16>(port) {
        Ok(([], p)) => p,
        _ => return Err(bad),
    };
    let addr = std::str::from_utf8(addr).map_err(|_| bad.clone())?;
    let ip = match proto {
        1 => IpAddr::V4(addr.parse::<Ipv4Addr>().map_err(|_| bad.clone())?),
        2 => IpAddr::V6(addr.parse::<Ipv6Addr>().map_err(|_| bad.clone())?),
        _ => return Err(ParseError::NetworkProtocol),
    };
    Ok(SocketAddr::new(ip, port))
}

fn rest_arg(arg: &[u8]) -> Result<u64, ParseError> {
    match all_consuming(number::<u64>).parse(arg.trim_ascii()) {
        Ok((_, n)) => Ok(n),
        Err(_) => Err(ParseError::BadArgument("REST needs a byte offset")),
    }
}

fn opts_arg(arg: &str) -> OptsArg {
    let parsed: IResult<&str, (&str, &str)> = (
        nom::branch::alt((
            tag_no_case("UTF8"),
            tag_no_case("UTF-8"),
            tag_no_case("MLST"),
        )),
        nom::combinator::rest,
    )
        .parse(arg);
    match parsed {
        Ok((_, (name, value))) if name.eq_ignore_ascii_case("MLST") => {
            OptsArg::Mlst(value.trim().to_owned())
        }
        Ok((_, (_, value))) => match value.trim().to_ascii_uppercase().as_str() {
            "ON" | "" => OptsArg::Utf8(true),
            "OFF" => OptsArg::Utf8(false),
            _ => OptsArg::Other(arg.to_owned()),
        },
        Err(_) => OptsArg::Other(arg.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(input: &[u8]) -> Vec<Line> {
        let mut buf = BytesMut::from(input);
        let mut r = LineReader::default();
        let mut out = Vec::new();
        while let Some(l) = r.next_line(&mut buf) {
            out.push(l);
        }
        out
    }

    fn one(input: &[u8]) -> Command {
        match frame(input).as_slice() {
            [Line::Complete(l)] => parse_command(l),
            other => panic!("{input:?} framed as {other:?}"),
        }
    }

    /// The edge-case table: raw bytes in, command out.
    #[test]
    fn edge_case_table() {
        let v4 = |a, b, c, d, p| SocketAddr::new(IpAddr::V4(Ipv4Addr::new(a, b, c, d)), p);
        let cases: Vec<(&[u8], Command)> = vec![
            (b"USER ann\r\n", Command::User("ann".into())),
            (b"user ann\r\n", Command::User("ann".into())),
            (b"uSeR ann\r\n", Command::User("ann".into())),
            (b"USER ann\n", Command::User("ann".into())),
            (b"USER  ann\r\n", Command::User("ann".into())),
            (b"PASS \r\n", Command::Pass(String::new())),
            (b"PASS\r\n", Command::Pass(String::new())),
            (b"PASS a b  \r\n", Command::Pass("a b  ".into())),
            (
                b"CWD dir with spaces \r\n",
                Command::Cwd("dir with spaces ".into()),
            ),
            (
                b"CWD\r\n",
                Command::Error(ParseError::MissingArgument("CWD")),
            ),
            (b"xcwd /a\r\n", Command::Cwd("/a".into())),
            (b"XPWD\r\n", Command::Pwd),
            (b"pwd\r\n", Command::Pwd),
            (b"CDUP\r\n", Command::Cdup),
            (b"XMKD d\r\n", Command::Mkd("d".into())),
            (b"RETR \xc3\xbc.txt\r\n", Command::Retr("ü.txt".into())),
            (
                b"RETR \xfe\r\n",
                Command::Error(ParseError::BadArgument("Arguments must be UTF-8")),
            ),
            // A lone 0xff is a Telnet IAC, not part of the name.
            (
                b"RETR \xff\r\n",
                Command::Error(ParseError::MissingArgument("RETR")),
            ),
            (b"TYPE I\r\n", Command::Type(TypeCode::Image)),
            (b"type a\r\n", Command::Type(TypeCode::Ascii)),
            (b"TYPE A N\r\n", Command::Type(TypeCode::Ascii)),
            (b"TYPE L 8\r\n", Command::Type(TypeCode::Image)),
            (b"TYPE E\r\n", Command::Type(TypeCode::Unsupported)),
            (b"TYPE L 7\r\n", Command::Type(TypeCode::Unsupported)),
            (
                b"TYPE X\r\n",
                Command::Error(ParseError::BadArgument("Unrecognised TYPE")),
            ),
            (b"MODE s\r\n", Command::Mode),
            (
                b"MODE B\r\n",
                Command::Error(ParseError::UnsupportedParameter("Only MODE S is supported")),
            ),
            (b"STRU F\r\n", Command::Stru),
            (
                b"STRU R\r\n",
                Command::Error(ParseError::UnsupportedParameter("Only STRU F is supported")),
            ),
            (
                b"PORT 127,0,0,1,4,1\r\n",
                Command::Port(v4(127, 0, 0, 1, 1025)),
            ),
            (
                b"PORT 127, 0, 0, 1, 4, 1\r\n",
                Command::Port(v4(127, 0, 0, 1, 1025)),
            ),
            (
                b"PORT 127,0,0,1,4\r\n",
                Command::Error(ParseError::BadArgument(
                    "Bad PORT argument, expected h1,h2,h3,h4,p1,p2",
                )),
            ),
            (
                b"PORT 127,0,0,1,4,256\r\n",
                Command::Error(ParseError::BadArgument(
                    "Bad PORT argument, expected h1,h2,h3,h4,p1,p2",
                )),
            ),
            (
                b"EPRT |1|10.0.0.1|6275|\r\n",
                Command::Eprt(v4(10, 0, 0, 1, 6275)),
            ),
            (
                b"EPRT !2!::1!6275!\r\n",
                Command::Eprt("[::1]:6275".parse().unwrap()),
            ),
            (
                b"EPRT |3|x|1|\r\n",
                Command::Error(ParseError::NetworkProtocol),
            ),
            (
                b"EPRT |1|10.0.0.1|99999|\r\n",
                Command::Error(ParseError::BadArgument(
                    "Bad EPRT argument, expected |proto|address|port|",
                )),
            ),
            (
                b"EPRT |1|::1|80|\r\n",
                Command::Error(ParseError::BadArgument(
                    "Bad EPRT argument, expected |proto|address|port|",
                )),
            ),
            (b"EPSV\r\n", Command::Epsv(EpsvArg::Any)),
            (b"EPSV all\r\n", Command::Epsv(EpsvArg::All)),
            (b"EPSV 2\r\n", Command::Epsv(EpsvArg::Proto(2))),
            (b"EPSV 7\r\n", Command::Error(ParseError::NetworkProtocol)),
            (b"REST 100\r\n", Command::Rest(100)),
            (
                b"REST -1\r\n",
                Command::Error(ParseError::BadArgument("REST needs a byte offset")),
            ),
            (
                b"REST 99999999999999999999999\r\n",
                Command::Error(ParseError::BadArgument("REST needs a byte offset")),
            ),
            (b"LIST\r\n", Command::List(None)),
            (b"LIST -la\r\n", Command::List(Some("-la".into()))),
            (b"NLST  \r\n", Command::Nlst(None)),
            (b"MLSD\r\n", Command::Mlsd(None)),
            (b"MLST x\r\n", Command::Mlst(Some("x".into()))),
            (b"STAT\r\n", Command::Stat(None)),
            (b"STOU\r\n", Command::Stou(None)),
            (b"OPTS UTF8 ON\r\n", Command::Opts(OptsArg::Utf8(true))),
            (b"opts utf8 off\r\n", Command::Opts(OptsArg::Utf8(false))),
            (
                b"OPTS MLST type;size;\r\n",
                Command::Opts(OptsArg::Mlst("type;size;".into())),
            ),
            (b"OPTS FOO\r\n", Command::Opts(OptsArg::Other("FOO".into()))),
            (b"SITE HELP\r\n", Command::Site("HELP".into())),
            (
                b"HOST ftp.example.com\r\n",
                Command::Host("ftp.example.com".into()),
            ),
            (b"ALLO 1000\r\n", Command::Allo),
            (
                b"AUTH TLS\r\n",
                Command::Error(ParseError::NotImplemented("AUTH")),
            ),
            (
                b"FOO\r\n",
                Command::Error(ParseError::Unknown("FOO".into())),
            ),
            (
                b"RETR1\r\n",
                Command::Error(ParseError::Unknown(String::new())),
            ),
            // A tab separates like a space.
            (b"NOOP\tx\r\n", Command::Noop),
            (b"CWD\td\r\n", Command::Cwd("d".into())),
            (
                b"ABCDEFGHIJ\r\n",
                Command::Error(ParseError::Unknown("ABCDEFGH".into())),
            ),
            (
                b"1234\r\n",
                Command::Error(ParseError::Unknown(String::new())),
            ),
            (b"\r\n", Command::Empty),
            (b"   \r\n", Command::Empty),
            // Telnet: IAC IP IAC DM before ABOR (RFC 959 section 4.1.3), with the DM inline or
            // pulled out of band (leaving a lone IAC).
            (b"\xff\xf4\xff\xf2ABOR\r\n", Command::Abor),
            (b"\xff\xf4\xffABOR\r\n", Command::Abor),
            (b"\xff\xfb\x01NOOP\r\n", Command::Noop),
            (
                b"CWD a\xff\xffb\r\n",
                Command::Error(ParseError::BadArgument("Arguments must be UTF-8")),
            ),
            (b"QUIT\r\n", Command::Quit),
        ];
        for (input, want) in cases {
            assert_eq!(
                one(input),
                want,
                "input {:?}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn overlong_line_is_one_error_and_the_next_line_survives() {
        let mut input = b"NOOP\r\n".to_vec();
        input.extend(std::iter::repeat_n(b'A', 10_000));
        input.extend_from_slice(b"\r\nPWD\r\n");
        let mut buf = BytesMut::new();
        let mut r = LineReader::default();
        let mut out = Vec::new();
        // Fed in pieces, as a socket would.
        for chunk in input.chunks(1000) {
            buf.extend_from_slice(chunk);
            while let Some(l) = r.next_line(&mut buf) {
                out.push(l);
            }
            assert!(buf.len() <= MAX_LINE + 1000, "buffer grew to {}", buf.len());
        }
        assert_eq!(
            out,
            vec![
                Line::Complete(b"NOOP".to_vec()),
                Line::TooLong,
                Line::Complete(b"PWD".to_vec())
            ]
        );
    }

    #[test]
    fn line_of_exactly_max_is_accepted() {
        let mut input = b"CWD ".to_vec();
        input.extend(std::iter::repeat_n(b'a', MAX_LINE - 4));
        input.extend_from_slice(b"\r\n");
        assert!(matches!(frame(&input).as_slice(), [Line::Complete(l)] if l.len() == MAX_LINE));
        let mut longer = b"CWD ".to_vec();
        longer.extend(std::iter::repeat_n(b'a', MAX_LINE - 3));
        longer.extend_from_slice(b"\r\n");
        assert_eq!(frame(&longer), vec![Line::TooLong]);
    }

    #[test]
    fn partial_lines_wait_for_more() {
        let mut buf = BytesMut::from(&b"NO"[..]);
        let mut r = LineReader::default();
        assert_eq!(r.next_line(&mut buf), None);
        buf.extend_from_slice(b"OP\r");
        assert_eq!(r.next_line(&mut buf), None);
        buf.extend_from_slice(b"\nPW");
        assert_eq!(
            r.next_line(&mut buf),
            Some(Line::Complete(b"NOOP".to_vec()))
        );
        assert_eq!(&buf[..], b"PW");
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        // A cheap deterministic sweep over short inputs of interesting bytes.
        let alphabet = [
            b'A', b'r', b' ', b'\r', b'\n', 0xff, 0xf4, b'|', b',', b'1', 0,
        ];
        let mut r = LineReader::default();
        for a in alphabet {
            for b in alphabet {
                for c in alphabet {
                    for d in alphabet {
                        let mut buf = BytesMut::from(&[a, b, c, d, b'\n'][..]);
                        while let Some(Line::Complete(l)) = r.next_line(&mut buf) {
                            let _ = parse_command(&l);
                        }
                    }
                }
            }
        }
        for verb in ["PORT", "EPRT", "TYPE", "REST", "EPSV", "OPTS", "MODE"] {
            for arg in [
                "",
                "|",
                "||||",
                "|1|||",
                ",,,,,",
                "A B C",
                "99999999999999999999",
            ] {
                let _ = parse_command(format!("{verb} {arg}").as_bytes());
            }
        }
    }

    proptest::proptest! {
        /// Framing invariants for any byte stream cut anywhere: no line holds an LF or is longer
        /// than MAX_LINE, the buffer stays bounded, and parsing never panics.
        #[test]
        fn framing_invariants(input in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..12_000), cut in 1usize..5000) {
            let mut buf = BytesMut::new();
            let mut r = LineReader::default();
            for chunk in input.chunks(cut) {
                buf.extend_from_slice(chunk);
                while let Some(line) = r.next_line(&mut buf) {
                    if let Line::Complete(l) = line {
                        proptest::prop_assert!(!l.contains(&b'\n'));
                        proptest::prop_assert!(l.len() <= MAX_LINE);
                        let cmd = parse_command(&l);
                        // Replies to any command are well-formed single or multi lines.
                        if let Command::Error(e) = cmd {
                            let wire = e.reply().encode();
                            proptest::prop_assert!(wire.ends_with(b"\r\n"));
                            proptest::prop_assert_eq!(wire.iter().filter(|&&b| b == b'\n').count(), 1);
                        }
                    }
                }
                proptest::prop_assert!(buf.len() <= MAX_LINE + 2);
            }
        }
    }
}
