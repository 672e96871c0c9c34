//! A small FTP client (passive mode, binary type) whose control and data connections are all
//! [`Counted`]. Every wait has a time limit; replies and lines have size limits.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

use crate::counted::{within, Counted, Counters};

/// Longest reply line accepted.
const MAX_LINE: usize = 8 * 1024;
/// Most lines in one multi-line reply.
const MAX_REPLY_LINES: usize = 1000;

/// One reply: its code and the text of its last line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub code: u16,
    pub text: String,
}

/// What went wrong with an FTP operation.
#[derive(Debug)]
pub enum FtpError {
    /// The connection failed or timed out.
    Io(io::Error),
    /// The server answered with an unexpected code.
    Refused(Reply),
    /// The server closed the control connection.
    Closed,
}

impl std::fmt::Display for FtpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FtpError::Io(e) => write!(f, "ftp: {e}"),
            FtpError::Refused(r) => write!(f, "ftp: refused: {} {}", r.code, r.text),
            FtpError::Closed => write!(f, "ftp: the server closed the control connection"),
        }
    }
}

impl std::error::Error for FtpError {}

impl From<io::Error> for FtpError {
    fn from(e: io::Error) -> Self {
        FtpError::Io(e)
    }
}

impl FtpError {
    /// A 421 or a closed connection: the server ended the session.
    pub fn session_ended(&self) -> bool {
        match self {
            FtpError::Closed => true,
            FtpError::Refused(r) => r.code == 421,
            FtpError::Io(e) => matches!(
                e.kind(),
                io::ErrorKind::ConnectionReset
                    | io::ErrorKind::BrokenPipe
                    | io::ErrorKind::UnexpectedEof
                    | io::ErrorKind::ConnectionAborted
            ),
        }
    }
}

pub type FtpResult<T> = Result<T, FtpError>;

/// One FTP session (a control connection).
pub struct FtpClient {
    ctrl: BufReader<Counted>,
    counters: Arc<Counters>,
    /// Limit for every single wait (a reply, a connect, one read of data).
    timeout: Duration,
    /// The server's address, where passive data connections go when PASV names another.
    server_ip: IpAddr,
}

impl FtpClient {
    /// Connects and reads the greeting (220).
    pub async fn connect(
        addr: SocketAddr,
        counters: &Arc<Counters>,
        timeout: Duration,
    ) -> FtpResult<FtpClient> {
        let stream = Counted::connect(addr, counters, timeout).await?;
        let mut client = FtpClient {
            ctrl: BufReader::new(stream),
            counters: Arc::clone(counters),
            timeout,
            server_ip: addr.ip(),
        };
        let greeting = client.read_reply().await?;
        if greeting.code != 220 {
            return Err(FtpError::Refused(greeting));
        }
        Ok(client)
    }

    /// Connects, logs in and sets binary type.
    pub async fn login_to(
        addr: SocketAddr,
        user: &str,
        pass: &str,
        counters: &Arc<Counters>,
        timeout: Duration,
    ) -> FtpResult<FtpClient> {
        let mut c = FtpClient::connect(addr, counters, timeout).await?;
        c.login(user, pass).await?;
        c.expect("TYPE I", &[200]).await?;
        Ok(c)
    }

    pub fn counters(&self) -> &Arc<Counters> {
        &self.counters
    }

    /// USER and PASS.
    pub async fn login(&mut self, user: &str, pass: &str) -> FtpResult<()> {
        let r = self.command(&format!("USER {user}")).await?;
        match r.code {
            230 => return Ok(()),
            331 => {}
            _ => return Err(FtpError::Refused(r)),
        }
        self.expect(&format!("PASS {pass}"), &[230, 202]).await?;
        Ok(())
    }

    /// Sends one command and reads its reply (one round trip).
    pub async fn command(&mut self, line: &str) -> FtpResult<Reply> {
        self.send(line).await?;
        self.read_reply().await
    }

    /// Sends a command and checks the reply code.
    pub async fn expect(&mut self, line: &str, codes: &[u16]) -> FtpResult<Reply> {
        let r = self.command(line).await?;
        if codes.contains(&r.code) {
            Ok(r)
        } else {
            Err(FtpError::Refused(r))
        }
    }

    async fn send(&mut self, line: &str) -> FtpResult<()> {
        let mut bytes = Vec::with_capacity(line.len() + 2);
        bytes.extend_from_slice(line.as_bytes());
        bytes.extend_from_slice(b"\r\n");
        let stream = self.ctrl.get_mut();
        within(self.timeout, "ftp send", async {
            stream.write_all(&bytes).await?;
            stream.flush().await
        })
        .await?;
        self.counters.round_trip();
        Ok(())
    }

    /// Reads one reply, single- or multi-line.
    pub async fn read_reply(&mut self) -> FtpResult<Reply> {
        let first = self.read_line().await?;
        let code = reply_code(&first).ok_or_else(|| bad_reply(&first))?;
        if first.as_bytes().get(3) != Some(&b'-') {
            return Ok(Reply {
                code,
                text: first.get(4..).unwrap_or("").to_owned(),
            });
        }
        let end = format!("{code} ");
        for _ in 0..MAX_REPLY_LINES {
            let line = self.read_line().await?;
            if line.starts_with(&end) || line == end.trim_end() {
                return Ok(Reply {
                    code,
                    text: line.get(4..).unwrap_or("").to_owned(),
                });
            }
        }
        Err(FtpError::Io(io::Error::new(
            io::ErrorKind::InvalidData,
            "multi-line reply too long",
        )))
    }

    async fn read_line(&mut self) -> FtpResult<String> {
        let mut buf = Vec::new();
        let ctrl = &mut self.ctrl;
        let n = within(self.timeout, "ftp reply", async {
            let mut limited = ctrl.take(MAX_LINE as u64);
            limited.read_until(b'\n', &mut buf).await
        })
        .await?;
        if n == 0 {
            return Err(FtpError::Closed);
        }
        if buf.last() != Some(&b'\n') {
            return Err(bad_reply("a reply line without an end"));
        }
        let s = String::from_utf8_lossy(&buf);
        Ok(s.trim_end_matches(['\r', '\n']).to_owned())
    }

    /// PASV and a connection to the address it names.
    async fn open_data(&mut self) -> FtpResult<Counted> {
        let r = self.expect("PASV", &[227]).await?;
        let addr = parse_pasv(&r.text, self.server_ip).ok_or_else(|| bad_reply(&r.text))?;
        Ok(Counted::connect(addr, &self.counters, self.timeout).await?)
    }

    /// Starts a download (PASV, optional REST, RETR) and returns its data connection.
    pub async fn start_retr(&mut self, path: &str, offset: u64) -> FtpResult<DataConn> {
        let data = self.open_data().await?;
        if offset > 0 {
            self.expect(&format!("REST {offset}"), &[350]).await?;
        }
        self.expect(&format!("RETR {path}"), &[150, 125]).await?;
        Ok(DataConn {
            stream: data,
            timeout: self.timeout,
        })
    }

    /// Reads the reply that ends a transfer (226 or 250).
    pub async fn finish_transfer(&mut self) -> FtpResult<()> {
        let r = self.read_reply().await?;
        if r.code == 226 || r.code == 250 {
            Ok(())
        } else {
            Err(FtpError::Refused(r))
        }
    }

    /// Downloads a whole file, discarding it; returns its length.
    pub async fn retr(&mut self, path: &str) -> FtpResult<u64> {
        let mut data = self.start_retr(path, 0).await?;
        let n = data.drain(None).await?;
        drop(data);
        self.finish_transfer().await?;
        Ok(n)
    }

    /// Downloads a whole file into memory.
    pub async fn retr_bytes(&mut self, path: &str, limit: usize) -> FtpResult<Vec<u8>> {
        let mut data = self.start_retr(path, 0).await?;
        let out = data.collect(limit).await?;
        drop(data);
        self.finish_transfer().await?;
        Ok(out)
    }

    /// A machine listing (MLSD) of a directory; returns the listing's bytes.
    pub async fn mlsd(&mut self, path: &str) -> FtpResult<Vec<u8>> {
        let data = self.open_data().await?;
        self.expect(&format!("MLSD {path}"), &[150, 125]).await?;
        let mut data = DataConn {
            stream: data,
            timeout: self.timeout,
        };
        let out = data.collect(16 * 1024 * 1024).await?;
        drop(data);
        self.finish_transfer().await?;
        Ok(out)
    }

    /// Uploads `len` bytes: `pattern` repeated.
    pub async fn stor(&mut self, path: &str, len: u64, pattern: &[u8]) -> FtpResult<()> {
        let data = self.open_data().await?;
        self.expect(&format!("STOR {path}"), &[150, 125]).await?;
        let mut data = DataConn {
            stream: data,
            timeout: self.timeout,
        };
        data.send_pattern(len, pattern).await?;
        let DataConn { mut stream, .. } = data;
        within(self.timeout, "ftp data close", stream.shutdown()).await?;
        drop(stream);
        self.finish_transfer().await
    }

    pub async fn dele(&mut self, path: &str) -> FtpResult<()> {
        self.expect(&format!("DELE {path}"), &[250])
            .await
            .map(|_| ())
    }

    pub async fn size(&mut self, path: &str) -> FtpResult<u64> {
        let r = self.expect(&format!("SIZE {path}"), &[213]).await?;
        r.text.trim().parse().map_err(|_| bad_reply(&r.text))
    }

    /// QUIT, ignoring errors (the session ends either way).
    pub async fn quit(mut self) {
        let _ = self.command("QUIT").await;
    }
}

/// An open data connection.
pub struct DataConn {
    stream: Counted,
    timeout: Duration,
}

impl DataConn {
    /// Reads until the server closes the connection (or `max` bytes), discarding; returns the
    /// count.
    pub async fn drain(&mut self, max: Option<u64>) -> FtpResult<u64> {
        let mut buf = vec![0u8; 256 * 1024];
        let mut total = 0u64;
        loop {
            let want = match max {
                Some(m) if total >= m => return Ok(total),
                Some(m) => buf.len().min((m - total) as usize),
                None => buf.len(),
            };
            let n = within(self.timeout, "ftp data", self.stream.read(&mut buf[..want])).await?;
            if n == 0 {
                return Ok(total);
            }
            total += n as u64;
        }
    }

    /// Reads at most `max` bytes into `buf`; 0 at the end.
    pub async fn read_some(&mut self, buf: &mut [u8]) -> FtpResult<usize> {
        Ok(within(self.timeout, "ftp data", self.stream.read(buf)).await?)
    }

    async fn collect(&mut self, limit: usize) -> FtpResult<Vec<u8>> {
        let mut out = Vec::new();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = within(self.timeout, "ftp data", self.stream.read(&mut buf)).await?;
            if n == 0 {
                return Ok(out);
            }
            if out.len() + n > limit {
                return Err(bad_reply("data larger than expected"));
            }
            out.extend_from_slice(&buf[..n]);
        }
    }

    async fn send_pattern(&mut self, len: u64, pattern: &[u8]) -> FtpResult<()> {
        let mut left = len;
        while left > 0 {
            let n = (pattern.len() as u64).min(left) as usize;
            within(
                self.timeout,
                "ftp data write",
                self.stream.write_all(&pattern[..n]),
            )
            .await?;
            left -= n as u64;
        }
        Ok(())
    }
}

fn reply_code(line: &str) -> Option<u16> {
    let digits = line.get(..3)?;
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    match line.as_bytes().get(3) {
        None | Some(b' ') | Some(b'-') => digits.parse().ok(),
        Some(_) => None,
    }
}

fn bad_reply(text: &str) -> FtpError {
    FtpError::Io(io::Error::new(
        io::ErrorKind::InvalidData,
        format!("unexpected reply: {text:?}"),
    ))
}

/// The address in a 227 reply ("Entering Passive Mode (h1,h2,h3,h4,p1,p2)"). A private or
/// unspecified address there is replaced by the control connection's (as clients do for NAT).
pub fn parse_pasv(text: &str, server_ip: IpAddr) -> Option<SocketAddr> {
    let start = text.find(|c: char| c.is_ascii_digit())?;
    let nums: Vec<u16> = text[start..]
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .take(6)
        .map(|s| s.parse().ok())
        .collect::<Option<Vec<u16>>>()?;
    if nums.len() != 6 || nums.iter().any(|&n| n > 255) {
        return None;
    }
    let port = nums[4] * 256 + nums[5];
    let ip = IpAddr::from([nums[0] as u8, nums[1] as u8, nums[2] as u8, nums[3] as u8]);
    let ip = if ip.is_unspecified() { server_ip } else { ip };
    Some(SocketAddr::new(ip, port))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn pasv_replies() {
        let lo: IpAddr = "127.0.0.1".parse().unwrap();
        assert_eq!(
            parse_pasv("Entering Passive Mode (127,0,0,1,195,80).", lo),
            Some("127.0.0.1:50000".parse().unwrap())
        );
        assert_eq!(
            parse_pasv("=0,0,0,0,4,1", lo),
            Some("127.0.0.1:1025".parse().unwrap())
        );
        assert_eq!(parse_pasv("Entering Passive Mode (1,2,3)", lo), None);
        assert_eq!(parse_pasv("(300,0,0,1,1,1)", lo), None);
    }

    #[test]
    fn reply_codes() {
        assert_eq!(reply_code("220 ready"), Some(220));
        assert_eq!(reply_code("211-Features"), Some(211));
        assert_eq!(reply_code("226"), Some(226));
        assert_eq!(reply_code("22x ok"), None);
        assert_eq!(reply_code("2200 x"), None);
    }
}
