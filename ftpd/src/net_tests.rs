//! The tokio layer over real loopback sockets, in-process: account revocation, graceful
//! shutdown, a burst of simultaneous clients, data connections.

use std::sync::Arc;
use std::time::Duration;

use filegate_core::{password, Permissions, Services, SledOptions, SledStore, User};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio_util::sync::CancellationToken;

use crate::{FtpConfig, FtpServer};

const LIMIT: Duration = Duration::from_secs(20);

struct Running {
    services: Services,
    addr: std::net::SocketAddr,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    _dir: tempfile::TempDir,
}

async fn start(config: FtpConfig) -> Running {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = SledStore::open(dir.path(), &SledOptions::default()).unwrap();
    let services = Services::new(Arc::new(store), None);
    services
        .accounts
        .create_user(&User {
            name: "ann".into(),
            password_hash: password::hash("pw").unwrap(),
            home: "/".into(),
            permissions: Permissions::all(),
            disabled: false,
            token_generation: 0,
        })
        .await
        .unwrap();
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener: TcpListener = socket.listen(1024).unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = CancellationToken::new();
    let server = FtpServer::new(config, services.clone());
    let task = tokio::spawn(server.run(listener, shutdown.clone()));
    Running {
        services,
        addr,
        shutdown,
        task,
        _dir: dir,
    }
}

fn config() -> FtpConfig {
    FtpConfig {
        passive_ports: crate::PortRange {
            first: 20000,
            last: 29999,
        },
        failed_login_delay_ms: 0,
        ..FtpConfig::default()
    }
}

struct Client {
    reader: BufReader<TcpStream>,
}

impl Client {
    async fn connect(addr: std::net::SocketAddr) -> Client {
        let s = tokio::time::timeout(LIMIT, TcpStream::connect(addr))
            .await
            .unwrap()
            .unwrap();
        Client {
            reader: BufReader::new(s),
        }
    }

    /// The last line of the next reply ("" at EOF).
    async fn reply(&mut self) -> String {
        loop {
            let mut line = String::new();
            let n = tokio::time::timeout(LIMIT, self.reader.read_line(&mut line))
                .await
                .unwrap()
                .unwrap_or(0);
            if n == 0 {
                return String::new();
            }
            let b = line.as_bytes();
            if b.len() >= 4 && b[..3].iter().all(u8::is_ascii_digit) && b[3] == b' ' {
                return line.trim_end().to_owned();
            }
        }
    }

    async fn cmd(&mut self, line: &str) -> String {
        self.reader
            .get_mut()
            .write_all(format!("{line}\r\n").as_bytes())
            .await
            .unwrap();
        self.reply().await
    }

    async fn login(addr: std::net::SocketAddr) -> Client {
        let mut c = Client::connect(addr).await;
        assert!(c.reply().await.starts_with("220"));
        assert!(c.cmd("USER ann").await.starts_with("331"));
        assert!(c.cmd("PASS pw").await.starts_with("230"));
        c
    }
}

#[tokio::test]
async fn a_changed_password_closes_open_sessions() {
    let r = start(config()).await;
    let mut c = Client::login(r.addr).await;
    let mut ann = r.services.accounts.user("ann").await.unwrap().unwrap();
    // A permission change keeps the session and applies at once.
    ann.permissions = Permissions::LIST | Permissions::READ;
    r.services.accounts.update_user(&ann).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(c.cmd("MKD x").await.starts_with("550"));
    ann.password_hash = password::hash("new").unwrap();
    r.services.accounts.update_user(&ann).await.unwrap();
    assert!(c.reply().await.starts_with("421"));
    assert_eq!(c.reply().await, "", "closed");
    r.shutdown.cancel();
    tokio::time::timeout(LIMIT, r.task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn a_deleted_user_is_closed_at_once() {
    let r = start(config()).await;
    let mut c = Client::login(r.addr).await;
    let mut other = Client::connect(r.addr).await;
    assert!(other.reply().await.starts_with("220"));
    r.services.accounts.delete_user("ann").await.unwrap();
    assert!(c.reply().await.starts_with("421"));
    // A session not logged in as that user is untouched.
    assert!(other.cmd("NOOP").await.starts_with("200"));
}

#[tokio::test]
async fn shutdown_says_421_and_run_returns_when_all_sessions_are_gone() {
    let r = start(config()).await;
    let mut a = Client::login(r.addr).await;
    let mut b = Client::connect(r.addr).await;
    assert!(b.reply().await.starts_with("220"));
    r.shutdown.cancel();
    assert!(a.reply().await.starts_with("421"));
    assert!(b.reply().await.starts_with("421"));
    tokio::time::timeout(LIMIT, r.task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(
        TcpStream::connect(r.addr).await.is_err(),
        "no longer listening"
    );
}

#[tokio::test]
async fn fifty_clients_at_once_all_get_their_greeting() {
    let r = start(config()).await;
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let addr = r.addr;
        tasks.push(tokio::spawn(async move {
            let mut c = Client::connect(addr).await;
            c.reply().await
        }));
    }
    for t in tasks {
        assert!(t.await.unwrap().starts_with("220"));
    }
}

#[tokio::test]
async fn gauge_counts_sessions() {
    use std::sync::atomic::Ordering;
    let r = start(config()).await;
    let mut c = Client::login(r.addr).await;
    assert_eq!(r.services.gauges.ftp_sessions.load(Ordering::Relaxed), 1);
    assert!(c.cmd("QUIT").await.starts_with("221"));
    for _ in 0..100 {
        if r.services.gauges.ftp_sessions.load(Ordering::Relaxed) == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the gauge never went back to 0");
}

#[tokio::test]
async fn stor_and_retr_over_passive_and_active() {
    let r = start(config()).await;
    let mut c = Client::login(r.addr).await;
    assert!(c.cmd("TYPE I").await.starts_with("200"));
    // Upload over EPSV.
    let epsv = c.cmd("EPSV").await;
    let port: u16 = epsv
        .split("|||")
        .nth(1)
        .and_then(|s| s.trim_end_matches(['|', ')']).parse().ok())
        .unwrap();
    let mut data = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    assert!(c.cmd("STOR f.bin").await.starts_with("150"));
    let body: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    data.write_all(&body).await.unwrap();
    drop(data);
    assert!(c.reply().await.starts_with("226"));
    // Download over PORT (the server connects to us).
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let lp = listener.local_addr().unwrap().port();
    let port_cmd = format!("PORT 127,0,0,1,{},{}", lp >> 8, lp & 0xff);
    assert!(c.cmd(&port_cmd).await.starts_with("200"));
    assert!(c.cmd("RETR f.bin").await.starts_with("150"));
    let (mut s, _) = tokio::time::timeout(LIMIT, listener.accept())
        .await
        .unwrap()
        .unwrap();
    let mut got = Vec::new();
    tokio::time::timeout(LIMIT, s.read_to_end(&mut got))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got, body);
    assert!(c.reply().await.starts_with("226"));
    // An interrupted upload keeps the previous version.
    let epsv = c.cmd("EPSV").await;
    let port: u16 = epsv
        .split("|||")
        .nth(1)
        .and_then(|s| s.trim_end_matches(['|', ')']).parse().ok())
        .unwrap();
    let mut data = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    assert!(c.cmd("STOR f.bin").await.starts_with("150"));
    data.write_all(b"partial").await.unwrap();
    // Reset, not FIN: the client died.
    socket2::SockRef::from(&data)
        .set_linger(Some(Duration::ZERO))
        .unwrap();
    drop(data);
    let reply = c.reply().await;
    assert!(
        reply.starts_with("426") || reply.starts_with("226"),
        "{reply}"
    );
    if reply.starts_with("426") {
        assert_eq!(c.cmd("SIZE f.bin").await, "213 300000");
    }
}

#[tokio::test]
async fn an_idle_session_is_small() {
    let r = start(config()).await;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let _client = TcpStream::connect(addr).await.unwrap();
    let (stream, peer) = listener.accept().await.unwrap();
    let shared = Arc::new(crate::server::Shared::for_tests(
        config(),
        r.services.clone(),
    ));
    let conn = crate::connection::Connection::new(stream, peer, shared).unwrap();
    let conn_size = std::mem::size_of_val(&conn);
    let fut = conn.run();
    let fut_size = std::mem::size_of_val(&fut);
    eprintln!("connection {conn_size} B, its task future {fut_size} B");
    assert!(
        fut_size < 3072,
        "the session's task future is {fut_size} bytes"
    );
}

#[tokio::test]
async fn idle_time_counts_from_the_last_command_not_through_a_long_transfer() {
    let r = start(FtpConfig {
        idle_timeout_secs: 1,
        ..config()
    })
    .await;
    let mut c = Client::login(r.addr).await;
    assert!(c.cmd("TYPE I").await.starts_with("200"));
    let epsv = c.cmd("EPSV").await;
    let port: u16 = epsv
        .split("|||")
        .nth(1)
        .and_then(|s| s.trim_end_matches(['|', ')']).parse().ok())
        .unwrap();
    let mut data = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    assert!(c.cmd("STOR slow.bin").await.starts_with("150"));
    // An upload that takes longer than the idle timeout.
    for _ in 0..6 {
        data.write_all(b"0123456789").await.unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    drop(data);
    assert!(c.reply().await.starts_with("226"));
    assert!(c.cmd("NOOP").await.starts_with("200"), "not timed out");
    // Then a real idle period ends the session.
    assert!(c.reply().await.starts_with("421"));
}

fn epsv_port(reply: &str) -> u16 {
    reply
        .split("|||")
        .nth(1)
        .and_then(|s| s.trim_end_matches(['|', ')']).parse().ok())
        .unwrap_or_else(|| panic!("not an EPSV reply: {reply}"))
}

/// `n` consecutive ports that nothing listens on now, above the range the other tests search
/// from and outside the kernel's ephemeral range (so no outgoing connection takes one), so that
/// this test's pool holds every port of its range.
fn free_port_range(n: u16) -> crate::PortRange {
    let ephemeral = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| {
            let mut it = s.split_whitespace().map(|x| x.parse::<u16>().ok());
            Some((it.next()??, it.next()??))
        })
        .unwrap_or((32768, 60999));
    let starts: Vec<u16> = (30_000..=u16::MAX - n)
        .filter(|&first| first + n - 1 < ephemeral.0 || first > ephemeral.1)
        .step_by(usize::from(n))
        .collect();
    // From a different place in each test process, so parallel runs seldom meet.
    let offset = std::process::id() as usize;
    for i in 0..starts.len() {
        let first = starts[(offset + i * 97) % starts.len()];
        let last = first + n - 1;
        let all_free = (first..=last)
            .map(|p| std::net::TcpListener::bind(("127.0.0.1", p)))
            .collect::<Result<Vec<_>, _>>()
            .is_ok();
        if all_free {
            return crate::PortRange { first, last };
        }
    }
    panic!("no {n} free consecutive ports from 30000 outside the ephemeral range {ephemeral:?}");
}

/// Stores `/f.txt` holding "hello".
async fn put_hello(r: &Running) {
    r.services
        .storage
        .write(
            &filegate_core::VPath::parse("/f.txt").unwrap(),
            filegate_core::WriteMode::Replace,
            filegate_core::Precondition::None,
            filegate_core::body_from_bytes(&b"hello"[..]),
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn a_passive_port_is_reused_drained_of_stale_connections_and_released_when_idle() {
    let r = start(config()).await;
    put_hello(&r).await;
    let mut c = Client::login(r.addr).await;
    assert!(c.cmd("TYPE I").await.starts_with("200"));
    let fetch = |port: u16| async move {
        let mut data = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        let mut got = Vec::new();
        (data.read_to_end(&mut got).await.map(|_| got), data)
    };
    let first = epsv_port(&c.cmd("EPSV").await);
    let (got, _) = {
        let f = fetch(first);
        let reply = c.cmd("RETR f.txt").await;
        // 150 and 226 may come in one write; `cmd` returns the first complete reply.
        assert!(reply.starts_with("150"), "{reply}");
        let got = f.await;
        assert!(c.reply().await.starts_with("226"));
        got
    };
    assert_eq!(got.unwrap(), b"hello");
    // The next EPSV gets the same port, without a new bind.
    let again = epsv_port(&c.cmd("EPSV").await);
    assert_eq!(again, first);
    // A connection the client then abandons (the RETR fails) stays queued on the port...
    let stale = TcpStream::connect(("127.0.0.1", again)).await.unwrap();
    assert!(c.cmd("RETR missing.txt").await.starts_with("550"));
    // ...and is dropped by the next EPSV, so the next transfer uses the client's new one.
    let third = epsv_port(&c.cmd("EPSV").await);
    assert_eq!(third, first);
    let f = fetch(third);
    assert!(c.cmd("RETR f.txt").await.starts_with("150"));
    let (got, _) = f.await;
    assert_eq!(got.unwrap(), b"hello");
    assert!(c.reply().await.starts_with("226"));
    let mut stale = stale;
    let mut buf = Vec::new();
    let n = tokio::time::timeout(LIMIT, stale.read_to_end(&mut buf)).await;
    assert!(
        matches!(n, Ok(Ok(0)) | Ok(Err(_))),
        "the stale connection was closed"
    );
    // Unused for a while, the port is closed.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(c.cmd("NOOP").await.starts_with("200"));
    let refused = TcpStream::connect(("127.0.0.1", first)).await;
    assert!(refused.is_err(), "the spare passive port was released");
}

#[tokio::test]
async fn when_most_passive_ports_are_held_a_session_gives_its_port_back_after_a_transfer() {
    let mut cfg = config();
    cfg.passive_ports = free_port_range(4);
    let r = start(cfg).await;
    put_hello(&r).await;
    async fn download(c: &mut Client) -> u16 {
        let port = epsv_port(&c.cmd("EPSV").await);
        let mut data = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        assert!(c.cmd("RETR f.txt").await.starts_with("150"));
        let mut got = Vec::new();
        tokio::time::timeout(LIMIT, data.read_to_end(&mut got))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(got, b"hello");
        assert!(c.reply().await.starts_with("226"));
        port
    }
    let mut sessions = Vec::new();
    for _ in 0..5 {
        sessions.push(Client::login(r.addr).await);
    }
    // Three of four held, armed by EPSV (an armed port waits for its transfer, with no timer).
    for c in &mut sessions[..3] {
        epsv_port(&c.cmd("EPSV").await);
    }
    // The fourth takes the last one and, with all four held, gives it back after its transfer.
    let last = download(&mut sessions[3]).await;
    // A round trip: the session has finished with the transfer once it answers.
    assert!(sessions[3].cmd("NOOP").await.starts_with("200"));
    assert!(
        TcpStream::connect(("127.0.0.1", last)).await.is_err(),
        "port {last} given back"
    );
    // So a fifth session still gets a port at once (not 425 until a kept one times out).
    assert!(sessions[4].cmd("TYPE I").await.starts_with("200"));
    download(&mut sessions[4]).await;
}
