//! The server under test: its addresses and credentials, its process figures from /proc, and,
//! in embedded mode, a `filegate serve` child on a temporary store and free loopback ports.

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

/// Where the server listens and who compare logs in as.
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub ftp: SocketAddr,
    pub http: SocketAddr,
    pub user: String,
    pub pass: String,
}

/// Memory and CPU of a process at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcSample {
    /// Resident set size in KiB (VmRSS).
    pub rss_kib: u64,
    /// User + system CPU time in nanoseconds (the larger of the tick counters and the sum of
    /// the threads' scheduler statistics, which are finer).
    pub cpu_ns: u64,
}

/// Reads RSS and CPU time of `pid` from /proc.
pub fn proc_sample(pid: u32) -> anyhow::Result<ProcSample> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("cannot read /proc/{pid}/status"))?;
    let rss_kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .context("no VmRSS in /proc status")?;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("cannot read /proc/{pid}/stat"))?;
    let ticks = stat_cpu_ticks(&stat).context("unreadable /proc stat")?;
    // USER_HZ is 100 on every Linux architecture compare runs on.
    let tick_ns = ticks.saturating_mul(10_000_000);
    let mut sched_ns = 0u64;
    if let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/task")) {
        for task in dir.flatten() {
            if let Ok(s) = std::fs::read_to_string(task.path().join("schedstat")) {
                sched_ns += s
                    .split_whitespace()
                    .next()
                    .and_then(|v| v.parse::<u64>().ok())
                    .unwrap_or(0);
            }
        }
    }
    Ok(ProcSample {
        rss_kib,
        cpu_ns: tick_ns.max(sched_ns),
    })
}

/// utime + stime (fields 14 and 15) of a /proc/PID/stat line.
fn stat_cpu_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// A free loopback port (bound and released; good enough on a machine we share politely).
pub fn free_port() -> anyhow::Result<u16> {
    let l = TcpListener::bind("127.0.0.1:0").context("cannot find a free port")?;
    Ok(l.local_addr()?.port())
}

/// `n` consecutive loopback ports that are free now.
pub fn free_port_range(n: u16) -> anyhow::Result<(u16, u16)> {
    for _ in 0..50 {
        let first: u16 = 20000 + rand::random::<u16>() % 30000;
        let last = first + n - 1;
        let all_free = (first..=last).all(|p| TcpListener::bind(("127.0.0.1", p)).is_ok());
        if all_free {
            return Ok((first, last));
        }
    }
    bail!("no range of {n} free ports found")
}

/// A `filegate serve` child on a temporary store.
pub struct Embedded {
    exe: PathBuf,
    /// The temporary directory with the store and the config file; removed on drop.
    dir: tempfile::TempDir,
    pub endpoint: Endpoint,
    passive: (u16, u16),
    child: Option<Child>,
    /// stderr lines of the current child, read by a thread so the pipe never fills.
    lines: Option<mpsc::Receiver<String>>,
}

/// What the embedded server is configured with beyond the defaults: room for 1,000 idle
/// clients of each kind from one address, and a short grace period so a restart is quick.
const BASE_CONFIG: &str = "grace_period_secs = 1\n\n[ftp]\nmax_connections = 4096\nmax_connections_per_ip = 4096\n\n[http]\nmax_connections = 4096\n";

impl Embedded {
    /// Starts `exe serve` on a new temporary store; `http_extra` is appended to the `[http]`
    /// table of its config file.
    pub fn start(exe: &Path, http_extra: &str) -> anyhow::Result<Embedded> {
        let dir = tempfile::Builder::new()
            .prefix("filegate-compare-")
            .tempdir()
            .context("cannot create a temporary directory")?;
        std::fs::write(
            dir.path().join("filegate.toml"),
            format!("{BASE_CONFIG}{http_extra}"),
        )
        .context("cannot write the config file")?;
        let pass = format!("cmp-{:016x}", rand::random::<u64>());
        let endpoint = Endpoint {
            ftp: SocketAddr::from(([127, 0, 0, 1], free_port()?)),
            http: SocketAddr::from(([127, 0, 0, 1], free_port()?)),
            user: "admin".into(),
            pass,
        };
        let mut e = Embedded {
            exe: exe.to_owned(),
            dir,
            endpoint,
            passive: free_port_range(300)?,
            child: None,
            lines: None,
        };
        e.spawn()?;
        Ok(e)
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The child's process id (0 if it is not running).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    fn spawn(&mut self) -> anyhow::Result<()> {
        let mut child = Command::new(&self.exe)
            .arg("--config")
            .arg(self.dir.path().join("filegate.toml"))
            .arg("--data-dir")
            .arg(self.data_dir())
            .arg("--ftp-addr")
            .arg(self.endpoint.ftp.to_string())
            .arg("--http-addr")
            .arg(self.endpoint.http.to_string())
            .arg("--passive-ports")
            .arg(format!("{}-{}", self.passive.0, self.passive.1))
            .arg("--admin-password")
            .arg(&self.endpoint.pass)
            .arg("serve")
            .env("RUST_LOG", "warn,filegate=info")
            .env_remove("FILEGATE_CONFIG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("cannot start {}", self.exe.display()))?;
        let stderr = child.stderr.take().context("no stderr pipe")?;
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                // Nobody listening any more is fine: keep draining the pipe.
                let _ = tx.send(line);
            }
        });
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut last = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                self.stop();
                bail!(
                    "the server did not start within 60 s; it said: {}",
                    last.join(" | ")
                );
            }
            match rx.recv_timeout(left.min(Duration::from_millis(200))) {
                Ok(line) => {
                    if line.contains("filegate serving") {
                        break;
                    }
                    last.push(line);
                    if last.len() > 5 {
                        last.remove(0);
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    self.stop();
                    bail!("the server exited at startup: {}", last.join(" | "));
                }
            }
        }
        self.lines = Some(rx);
        Ok(())
    }

    /// SIGTERM, wait for the exit (killing it after 15 s), and start again on the same store
    /// and ports. Blocking; returns when the new server is serving.
    pub fn restart(&mut self) -> anyhow::Result<()> {
        self.stop();
        self.spawn()
    }

    /// SIGTERM and wait (at most 15 s, then SIGKILL).
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if let Ok(pid) = i32::try_from(child.id()) {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGTERM,
            );
        }
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                self.lines = None;
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
        self.lines = None;
    }
}

impl Drop for Embedded {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn cpu_ticks_from_stat() {
        let line = "1234 (tokio (x) y) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 4 0";
        assert_eq!(stat_cpu_ticks(line), Some(325));
        assert_eq!(stat_cpu_ticks("garbage"), None);
    }

    #[test]
    fn own_process_is_readable() {
        let s = proc_sample(std::process::id()).unwrap();
        assert!(s.rss_kib > 0);
    }
}
