//! Limits and lifecycle: header size and count, the header read timeout, keep-alive idle
//! timeout, maximum connections, the body cap, and graceful shutdown.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use http::StatusCode;

use super::{admin_basic, pattern, raw, raw_status, rt, send_admin};
use crate::common::{ServerOptions, TestServer};

fn server_with(http_table: &str) -> (TestServer, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("filegate.toml");
    std::fs::write(&config, format!("[http]\n{http_table}")).unwrap();
    let server = TestServer::start_with(ServerOptions {
        extra_args: vec!["--config".into(), config.display().to_string()],
        ..Default::default()
    });
    (server, dir)
}

#[test]
fn header_limits_and_body_cap() {
    let (server, _dir) =
        server_with("max_header_bytes = 8192\nmax_headers = 20\nmax_body_bytes = 1000\n");
    let a = server.http;
    let big = format!(
        "GET / HTTP/1.1\r\nHost: a\r\nX-Big: {}\r\nConnection: close\r\n\r\n",
        "x".repeat(20_000)
    );
    let s = raw_status(&raw(a, big.as_bytes(), Duration::from_secs(10)));
    assert_eq!(s, 431, "header too large");
    let many: String = (0..40).map(|i| format!("X-H{i}: v\r\n")).collect();
    let req = format!("GET / HTTP/1.1\r\nHost: a\r\n{many}Connection: close\r\n\r\n");
    let s = raw_status(&raw(a, req.as_bytes(), Duration::from_secs(10)));
    assert_eq!(s, 431, "too many headers");
    rt().block_on(async {
        let r = send_admin(a, "PUT", "/small", &[], vec![0u8; 1000]).await;
        assert_eq!(r.status, StatusCode::CREATED);
        let r = send_admin(a, "PUT", "/big", &[], vec![0u8; 1001]).await;
        assert_eq!(
            r.status,
            StatusCode::PAYLOAD_TOO_LARGE,
            "declared length over the cap"
        );
        let r = send_admin(a, "GET", "/big", &[], "").await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "nothing stored");
    });
    // Chunked, so the cap trips while streaming.
    let auth = admin_basic();
    let mut req = format!(
        "PUT /chunked HTTP/1.1\r\nHost: a\r\nAuthorization: {auth}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    )
    .into_bytes();
    for _ in 0..3 {
        req.extend_from_slice(format!("{:x}\r\n", 600).as_bytes());
        req.extend_from_slice(&[b'z'; 600]);
        req.extend_from_slice(b"\r\n");
    }
    req.extend_from_slice(b"0\r\n\r\n");
    let s = raw_status(&raw(a, &req, Duration::from_secs(10)));
    assert_eq!(s, 413, "chunked body over the cap");
    rt().block_on(async {
        let r = send_admin(a, "GET", "/chunked", &[], "").await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "nothing stored");
    });
}

#[test]
fn timeouts_and_connection_limit() {
    let (server, _dir) = server_with(
        "header_read_timeout_secs = 2\nkeep_alive_idle_secs = 2\nmax_connections = 3\n",
    );
    let a = server.http;
    // A slow client that never finishes its header is cut off.
    let mut slow = TcpStream::connect(a).unwrap();
    slow.set_read_timeout(Some(Duration::from_secs(15)))
        .unwrap();
    slow.write_all(b"GET / HTTP/1.1\r\nHo").unwrap();
    let t = Instant::now();
    let mut buf = [0u8; 1024];
    let n = slow.read(&mut buf).unwrap_or(0);
    let text = String::from_utf8_lossy(&buf[..n]).into_owned();
    assert!(n == 0 || text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(
        t.elapsed() < Duration::from_secs(10),
        "closed by the header read timeout"
    );
    drop(slow);

    // An idle keep-alive connection is closed.
    let mut ka = TcpStream::connect(a).unwrap();
    ka.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    ka.write_all(b"GET /_/health HTTP/1.1\r\nHost: a\r\n\r\n")
        .unwrap();
    let n = ka.read(&mut buf).unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    let t = Instant::now();
    let n = ka.read(&mut buf).unwrap_or(0);
    assert_eq!(n, 0, "the server closes the idle connection");
    assert!(t.elapsed() < Duration::from_secs(10));
    drop(ka);

    // Three connections are served at once; a fourth waits until one goes.
    let hold: Vec<TcpStream> = (0..3)
        .map(|_| {
            let mut s = TcpStream::connect(a).unwrap();
            s.write_all(b"GET /_/health HTTP/1.1\r\nHost: a\r\n\r\n")
                .unwrap();
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            let n = s.read(&mut buf).unwrap();
            assert!(n > 0);
            s
        })
        .collect();
    let t = Instant::now();
    let text = raw(
        a,
        b"GET /_/health HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
        Duration::from_secs(15),
    );
    assert_eq!(raw_status(&text), 200, "{text}");
    assert!(
        t.elapsed() >= Duration::from_millis(800),
        "the fourth connection waited for a free slot ({:?})",
        t.elapsed()
    );
    drop(hold);
}

#[test]
fn graceful_shutdown_lets_downloads_finish() {
    let server = TestServer::start();
    let a = server.http;
    let data = pattern(48 << 20, 9);
    rt().block_on(async {
        let r = send_admin(a, "PUT", "/big.bin", &[], data.clone()).await;
        assert_eq!(r.status, StatusCode::CREATED);
    });
    let auth = admin_basic();
    let mut s = TcpStream::connect(a).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s.write_all(
        format!("GET /big.bin HTTP/1.1\r\nHost: a\r\nAuthorization: {auth}\r\n\r\n").as_bytes(),
    )
    .unwrap();
    let mut got = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    while got.len() < 1 << 20 {
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0);
        got.extend_from_slice(&buf[..n]);
    }
    // SIGTERM while the download is running.
    let pid = server.child.id().to_string();
    assert!(std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    std::thread::sleep(Duration::from_millis(500));
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) => panic!("download broken by the shutdown: {e}"),
        }
    }
    let split = got.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    assert_eq!(got.len() - split, data.len(), "the whole body arrived");
    assert!(got[split..] == data[..]);
    let mut server = server;
    let status = server.stop();
    assert!(status.is_some_and(|s| s.success()), "{status:?}");
}
