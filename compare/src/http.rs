//! A small HTTP/1.1 keep-alive client over one [`Counted`] connection: requests with their
//! credentials on every one, responses parsed with httparse, bodies framed by Content-Length or
//! chunked. Every wait has a time limit; heads, lines and bodies have size limits.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

use crate::counted::{within, Counted, Counters};

/// Largest response head accepted.
const MAX_HEAD: usize = 64 * 1024;
/// Most header fields parsed.
const MAX_HEADERS: usize = 64;
/// Most lines of a response head (or trailers).
const MAX_HEAD_LINES: usize = 200;

/// How a client proves who it is on every request.
#[derive(Debug, Clone)]
pub enum Auth {
    None,
    Basic { user: String, pass: String },
    Bearer(String),
}

impl Auth {
    fn header(&self) -> Option<String> {
        match self {
            Auth::None => None,
            Auth::Basic { user, pass } => Some(format!(
                "Basic {}",
                STANDARD.encode(format!("{user}:{pass}"))
            )),
            Auth::Bearer(t) => Some(format!("Bearer {t}")),
        }
    }
}

/// A request body.
#[derive(Debug, Clone, Copy)]
pub enum Body<'a> {
    Empty,
    /// `len` bytes made of `pattern` repeated.
    Pattern {
        len: u64,
        pattern: &'a [u8],
    },
}

/// Where a response body goes, and what is known of it if the connection breaks.
#[derive(Debug, Default)]
pub struct Sink {
    /// Keep up to this many bytes of the body in `data`; `None` discards it.
    pub collect_limit: Option<usize>,
    pub data: Vec<u8>,
    /// Body bytes received so far (also after an error).
    pub received: u64,
    /// Read no faster than this many bytes per second.
    pub pace: Option<u64>,
}

impl Sink {
    pub fn discard() -> Sink {
        Sink::default()
    }

    pub fn collect(limit: usize) -> Sink {
        Sink {
            collect_limit: Some(limit),
            ..Sink::default()
        }
    }
}

/// A response head.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// One keep-alive connection (reopened on the next request after it breaks).
pub struct HttpClient {
    addr: SocketAddr,
    conn: Option<BufReader<Counted>>,
    auth: Auth,
    counters: Arc<Counters>,
    timeout: Duration,
}

impl HttpClient {
    /// A client for `addr`; it connects on its first request.
    pub fn new(addr: SocketAddr, auth: Auth, counters: &Arc<Counters>, timeout: Duration) -> Self {
        HttpClient {
            addr,
            conn: None,
            auth,
            counters: Arc::clone(counters),
            timeout,
        }
    }

    pub fn counters(&self) -> &Arc<Counters> {
        &self.counters
    }

    pub fn set_auth(&mut self, auth: Auth) {
        self.auth = auth;
    }

    /// Opens the connection now if it is not open.
    pub async fn connect(&mut self) -> io::Result<()> {
        if self.conn.is_none() {
            let c = Counted::connect(self.addr, &self.counters, self.timeout).await?;
            self.conn = Some(BufReader::with_capacity(64 * 1024, c));
        }
        Ok(())
    }

    /// True while a connection is open.
    pub fn is_connected(&self) -> bool {
        self.conn.is_some()
    }

    /// Sends one request and reads the whole response into `sink`. Any error closes the
    /// connection (the next request opens a new one).
    pub async fn request(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Body<'_>,
        sink: &mut Sink,
    ) -> io::Result<Response> {
        let r = self.exchange(method, path, headers, body, sink).await;
        match &r {
            Ok(resp) => {
                let close = resp
                    .header("connection")
                    .is_some_and(|v| v.eq_ignore_ascii_case("close"));
                if close {
                    self.conn = None;
                }
            }
            Err(_) => self.conn = None,
        }
        r
    }

    /// GET into a discarding sink; returns the status and the body length.
    pub async fn get(&mut self, path: &str) -> io::Result<(u16, u64)> {
        let mut sink = Sink::discard();
        let r = self
            .request("GET", path, &[], Body::Empty, &mut sink)
            .await?;
        Ok((r.status, sink.received))
    }

    async fn exchange(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Body<'_>,
        sink: &mut Sink,
    ) -> io::Result<Response> {
        self.connect().await?;
        let timeout = self.timeout;
        let auth = self.auth.header();
        let conn = self
            .conn
            .as_mut()
            .ok_or_else(|| io::Error::other("no connection"))?;
        let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {}\r\n", self.addr);
        if let Some(a) = auth {
            head.push_str(&format!("Authorization: {a}\r\n"));
        }
        for (n, v) in headers {
            head.push_str(&format!("{n}: {v}\r\n"));
        }
        match body {
            Body::Empty if method == "PUT" || method == "POST" => {
                head.push_str("Content-Length: 0\r\n")
            }
            Body::Empty => {}
            Body::Pattern { len, .. } => head.push_str(&format!("Content-Length: {len}\r\n")),
        }
        head.push_str("\r\n");
        self.counters.round_trip();
        let stream = conn.get_mut();
        within(timeout, "http send", stream.write_all(head.as_bytes())).await?;
        if let Body::Pattern { len, pattern } = body {
            let mut left = len;
            while left > 0 {
                let n = (pattern.len() as u64).min(left) as usize;
                within(timeout, "http body write", stream.write_all(&pattern[..n])).await?;
                left -= n as u64;
            }
        }
        within(timeout, "http send", stream.flush()).await?;
        // 1xx interim responses are skipped (bounded).
        for _ in 0..4 {
            let resp = read_head(conn, timeout).await?;
            if (100..200).contains(&resp.status) {
                continue;
            }
            let no_body = method == "HEAD" || resp.status == 204 || resp.status == 304;
            if !no_body {
                read_body(conn, &resp, timeout, sink).await?;
            }
            return Ok(resp);
        }
        Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "too many interim responses",
        ))
    }

    /// Sends a GET and reads about `bytes` of the response, then returns, leaving the
    /// transfer open and stalled (the server's writes block once the socket buffers fill).
    pub async fn start_stalled_get(&mut self, path: &str, bytes: u64) -> io::Result<()> {
        self.connect().await?;
        let timeout = self.timeout;
        let auth = self.auth.header();
        let conn = self
            .conn
            .as_mut()
            .ok_or_else(|| io::Error::other("no connection"))?;
        let mut head = format!("GET {path} HTTP/1.1\r\nHost: {}\r\n", self.addr);
        if let Some(a) = auth {
            head.push_str(&format!("Authorization: {a}\r\n"));
        }
        head.push_str("\r\n");
        within(
            timeout,
            "http send",
            conn.get_mut().write_all(head.as_bytes()),
        )
        .await?;
        let resp = read_head(conn, timeout).await?;
        if !resp.ok() {
            return Err(io::Error::other(format!("GET {path}: {}", resp.status)));
        }
        let mut buf = vec![0u8; 64 * 1024];
        let mut got = 0u64;
        while got < bytes {
            let want = buf.len().min((bytes - got) as usize);
            let n = within(timeout, "http body", conn.read(&mut buf[..want])).await?;
            if n == 0 {
                break;
            }
            got += n as u64;
        }
        Ok(())
    }

    /// Closes the connection.
    pub fn close(&mut self) {
        self.conn = None;
    }
}

async fn read_head(conn: &mut BufReader<Counted>, timeout: Duration) -> io::Result<Response> {
    let mut head = Vec::with_capacity(512);
    for _ in 0..MAX_HEAD_LINES {
        let before = head.len();
        let limit = (MAX_HEAD - before) as u64;
        if limit == 0 {
            break;
        }
        let n = within(timeout, "http response", async {
            let mut take = (&mut *conn).take(limit);
            take.read_until(b'\n', &mut head).await
        })
        .await?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the server closed the connection",
            ));
        }
        let line = &head[before..];
        if line == b"\r\n" || line == b"\n" {
            let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
            let mut parsed = httparse::Response::new(&mut fields);
            return match parsed.parse(&head) {
                Ok(httparse::Status::Complete(_)) => Ok(Response {
                    status: parsed.code.unwrap_or(0),
                    headers: parsed
                        .headers
                        .iter()
                        .map(|h| {
                            (
                                h.name.to_owned(),
                                String::from_utf8_lossy(h.value).into_owned(),
                            )
                        })
                        .collect(),
                }),
                Ok(httparse::Status::Partial) => Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "incomplete response head",
                )),
                Err(e) => Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("bad response head: {e}"),
                )),
            };
        }
    }
    Err(io::Error::new(
        io::ErrorKind::InvalidData,
        "response head too large",
    ))
}

async fn read_body(
    conn: &mut BufReader<Counted>,
    resp: &Response,
    timeout: Duration,
    sink: &mut Sink,
) -> io::Result<()> {
    let chunked = resp
        .header("transfer-encoding")
        .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
    if chunked {
        // Bounded by the body's own size: each chunk is read fully or the read fails.
        loop {
            let line = read_line(conn, timeout).await?;
            let size_text = line.split(';').next().unwrap_or("").trim();
            let size = u64::from_str_radix(size_text, 16)
                .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "bad chunk size line"))?;
            if size == 0 {
                for _ in 0..MAX_HEAD_LINES {
                    if read_line(conn, timeout).await?.is_empty() {
                        return Ok(());
                    }
                }
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "too many trailers",
                ));
            }
            read_exact_into(conn, size, timeout, sink).await?;
            if !read_line(conn, timeout).await?.is_empty() {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "chunk not followed by CRLF",
                ));
            }
        }
    }
    match resp.header("content-length") {
        Some(v) => {
            let len: u64 = v
                .trim()
                .parse()
                .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "bad Content-Length"))?;
            read_exact_into(conn, len, timeout, sink).await
        }
        None => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "response without Content-Length or chunked framing",
        )),
    }
}

async fn read_line(conn: &mut BufReader<Counted>, timeout: Duration) -> io::Result<String> {
    let mut line = Vec::new();
    let n = within(timeout, "http chunk", async {
        let mut take = (&mut *conn).take(4096);
        take.read_until(b'\n', &mut line).await
    })
    .await?;
    if n == 0 {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "connection closed in a chunked body",
        ));
    }
    Ok(String::from_utf8_lossy(&line)
        .trim_end_matches(['\r', '\n'])
        .to_owned())
}

async fn read_exact_into(
    conn: &mut BufReader<Counted>,
    len: u64,
    timeout: Duration,
    sink: &mut Sink,
) -> io::Result<()> {
    let mut buf = vec![0u8; (256 * 1024).min(len.max(1) as usize)];
    let mut left = len;
    let started = Instant::now();
    let start_received = sink.received;
    while left > 0 {
        let want = buf.len().min(left as usize);
        let n = within(timeout, "http body", conn.read(&mut buf[..want])).await?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "connection closed in the body",
            ));
        }
        left -= n as u64;
        sink.received += n as u64;
        if let Some(limit) = sink.collect_limit {
            if sink.data.len() + n > limit {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "body larger than expected",
                ));
            }
            sink.data.extend_from_slice(&buf[..n]);
        }
        if let Some(rate) = sink.pace {
            pace(started, sink.received - start_received, rate).await;
        }
    }
    Ok(())
}

/// Sleeps until `done` bytes at `rate` bytes per second would have taken since `started`.
pub async fn pace(started: Instant, done: u64, rate: u64) {
    if rate == 0 {
        return;
    }
    let due = Duration::from_secs_f64(done as f64 / rate as f64);
    let elapsed = started.elapsed();
    if due > elapsed {
        tokio::time::sleep(due - elapsed).await;
    }
}
