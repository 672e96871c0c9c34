//! Shared test support: a real `filegate serve` on loopback, and client tools.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};

/// Password of `admin` in every test server.
pub const ADMIN_PASSWORD: &str = "admin-test-pw";

/// The filegate binary under test.
pub fn filegate_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_filegate"))
}

/// A free loopback port (bound then released; good enough on a test machine).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("no free port: {e}"))
}

/// A block of `n` consecutive free ports for passive data connections, distinct per server
/// started by this process.
pub fn free_port_range(n: u16) -> (u16, u16) {
    static NEXT: AtomicU16 = AtomicU16::new(0);
    for _ in 0..200 {
        let slot = NEXT.fetch_add(1, Ordering::Relaxed) % 100;
        // Below Linux's ephemeral range (32768+), where client sockets would collide.
        let base = 20000 + ((std::process::id() as u16 % 50) * 200 + slot * n) % 12000;
        let all_free = (base..base + n).all(|p| TcpListener::bind(("127.0.0.1", p)).is_ok());
        if all_free {
            return (base, base + n - 1);
        }
    }
    panic!("no free passive port range")
}

/// A running `filegate serve` on a temporary store; killed when dropped.
pub struct TestServer {
    pub child: Child,
    pub dir: tempfile::TempDir,
    pub ftp: SocketAddr,
    pub http: SocketAddr,
    pub passive: (u16, u16),
    /// The store's directory (under `dir` unless the options named one).
    pub data: PathBuf,
}

#[derive(Default)]
pub struct ServerOptions {
    pub extra_args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub data_dir: Option<PathBuf>,
}

impl TestServer {
    pub fn start() -> TestServer {
        Self::start_with(ServerOptions::default())
    }

    pub fn start_with(opts: ServerOptions) -> TestServer {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
        let data_dir = opts
            .data_dir
            .clone()
            .unwrap_or_else(|| dir.path().join("data"));
        // A port found free can be taken by someone else before the server binds it; then
        // the server exits at once and we try again with other ports.
        for _attempt in 0..5 {
            let ftp: SocketAddr = SocketAddr::from(([127, 0, 0, 1], free_port()));
            let http: SocketAddr = SocketAddr::from(([127, 0, 0, 1], free_port()));
            let passive = free_port_range(20);
            let mut cmd = Command::new(filegate_bin());
            cmd.arg("serve")
                .arg("--data-dir")
                .arg(&data_dir)
                .arg("--ftp-addr")
                .arg(ftp.to_string())
                .arg("--http-addr")
                .arg(http.to_string())
                .arg("--passive-ports")
                .arg(format!("{}-{}", passive.0, passive.1))
                .arg("--admin-password")
                .arg(ADMIN_PASSWORD)
                .arg("--grace-period")
                .arg("5")
                .args(&opts.extra_args)
                .env_remove("FILEGATE_CONFIG")
                .env("RUST_LOG", "info")
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
            for (k, v) in &opts.env {
                cmd.env(k, v);
            }
            let mut child = cmd
                .spawn()
                .unwrap_or_else(|e| panic!("spawn filegate: {e}"));
            // Forward the server's output to the test's output, and watch for readiness.
            let (tx, rx) = std::sync::mpsc::channel();
            if let Some(err) = child.stderr.take() {
                std::thread::spawn(move || {
                    for line in BufReader::new(err).lines().map_while(Result::ok) {
                        eprintln!("[server] {line}");
                        if line.contains("filegate serving") {
                            let _ = tx.send(());
                        }
                    }
                });
            }
            if let Some(out) = child.stdout.take() {
                std::thread::spawn(move || {
                    for line in BufReader::new(out).lines().map_while(Result::ok) {
                        eprintln!("[server stdout] {line}");
                    }
                });
            }
            let deadline = Instant::now() + Duration::from_secs(90);
            let mut exited = false;
            while Instant::now() < deadline {
                if rx.recv_timeout(Duration::from_millis(100)).is_ok() {
                    return TestServer {
                        child,
                        dir,
                        ftp,
                        http,
                        passive,
                        data: data_dir,
                    };
                }
                if let Ok(Some(_)) = child.try_wait() {
                    exited = true;
                    break;
                }
            }
            let _ = child.kill();
            let _ = child.wait();
            assert!(exited, "filegate did not start within 90 s");
        }
        panic!("filegate exited at start five times (see its output above)")
    }

    /// Sends SIGTERM and waits (bounded) for the exit status. The store stays on disk until
    /// the server is dropped.
    pub fn stop(&mut self) -> Option<std::process::ExitStatus> {
        let pid = self.child.id();
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(pid.to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    pub fn http_url(&self, path: &str) -> String {
        format!("http://{}{}", self.http, path)
    }

    pub fn ftp_url(&self, path: &str) -> String {
        format!("ftp://{}{}", self.ftp, path)
    }

    pub fn data_dir(&self) -> PathBuf {
        self.data.clone()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether an external client is present. Missing under `CI=true` is a failure; elsewhere the
/// test is skipped with a printed reason.
pub fn require_tool(tool: &str) -> bool {
    let found = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .stdout(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !found {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("{tool} is required in CI (.ci/run installs it) but was not found");
        }
        eprintln!("SKIPPED: {tool} is not installed");
    }
    found
}

/// Runs a command with a time limit; returns (status ok, stdout, stderr).
pub fn run_with_timeout(cmd: &mut Command, limit: Duration) -> (bool, String, String) {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    let deadline = Instant::now() + limit;
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            _ => {
                let _ = child.kill();
                break;
            }
        }
    }
    let out = child
        .wait_with_output()
        .unwrap_or_else(|e| panic!("wait {cmd:?}: {e}"));
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// SHA-256 of a file, via coreutils (what a user would compare with).
pub fn sha256_file(path: &Path) -> String {
    let out = Command::new("sha256sum")
        .arg(path)
        .output()
        .unwrap_or_else(|e| panic!("sha256sum: {e}"));
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_owned()
}

/// Runs curl with `args` (silent, errors shown, 60 s at most); returns (ok, stdout, stderr).
pub fn curl(args: &[&str]) -> (bool, String, String) {
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "--max-time", "60"]).args(args);
    run_with_timeout(&mut cmd, Duration::from_secs(90))
}

/// The HTTP status curl got for a request whose body goes nowhere.
pub fn curl_status(args: &[&str]) -> u16 {
    let mut all = vec!["-o", "/dev/null", "-w", "%{http_code}"];
    all.extend_from_slice(args);
    let (_, out, err) = curl(&all);
    out.trim()
        .parse()
        .unwrap_or_else(|_| panic!("curl {args:?}: {out} {err}"))
}
