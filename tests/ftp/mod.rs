//! The FTP front end with real clients (lftp, curl, Python ftplib) against a real
//! `filegate serve` on loopback. Every client call has a time limit.

#![allow(clippy::unwrap_used)]

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{require_tool, sha256_file, ServerOptions, TestServer, ADMIN_PASSWORD};

/// Runs a command with a time limit, its output going to files (so a chatty client can never
/// block on a full pipe); returns (success, stdout, stderr).
fn run_capture(cmd: &mut Command, limit: Duration) -> (bool, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let out_path = dir.path().join("out");
    let err_path = dir.path().join("err");
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(fs::File::create(&out_path).unwrap())
        .stderr(fs::File::create(&err_path).unwrap())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break Some(s);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let out = fs::read_to_string(&out_path).unwrap_or_default();
    let mut err = fs::read_to_string(&err_path).unwrap_or_default();
    if status.is_none() {
        err.push_str(&format!("\n(killed after {limit:?})"));
    }
    (status.is_some_and(|s| s.success()), out, err)
}

/// Runs an lftp script against the server, from directory `cwd`.
fn lftp(server: &TestServer, passive: bool, script: &str, cwd: &Path) -> (bool, String, String) {
    let full = format!(
        "set ftp:ssl-allow no; set net:timeout 15; set net:max-retries 2; \
         set net:reconnect-interval-base 1; set cmd:fail-exit yes; set xfer:clobber on; \
         set ftp:passive-mode {}; open -u admin,{ADMIN_PASSWORD} ftp://{}; {script}",
        if passive { "on" } else { "off" },
        server.ftp
    );
    let r = run_capture(
        Command::new("lftp").arg("-c").arg(&full).current_dir(cwd),
        Duration::from_secs(180),
    );
    if !r.0 {
        eprintln!("lftp failed: {script}\nstdout:\n{}\nstderr:\n{}", r.1, r.2);
    }
    r
}

/// Runs curl with credentials and a time limit.
fn curl(args: &[&str]) -> (bool, String, String) {
    let r = run_capture(
        Command::new("curl")
            .args(["-sS", "--max-time", "120", "-u"])
            .arg(format!("admin:{ADMIN_PASSWORD}"))
            .args(args),
        Duration::from_secs(150),
    );
    if !r.0 {
        eprintln!("curl {args:?} failed\nstdout:\n{}\nstderr:\n{}", r.1, r.2);
    }
    r
}

/// Deterministic pseudo-random bytes (xorshift), so failures reproduce.
fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

fn write_file(path: &Path, len: usize, seed: u64) {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).unwrap();
    }
    fs::write(path, pseudo_random(len, seed)).unwrap();
}

/// A nested tree of `n` files (three levels, sizes from 0 to ~20 KB).
fn make_tree(root: &Path, n: usize) {
    for i in 0..n {
        let path = root
            .join(format!("d{}", i % 5))
            .join(format!("e{}", i % 3))
            .join(format!("f{i:03}.bin"));
        write_file(&path, (i * 97) % 20_000, i as u64 + 1);
    }
}

/// Every file under `root`, relative, sorted.
fn list_files(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in fs::read_dir(&dir).unwrap() {
            let e = e.unwrap();
            let p = e.path();
            if e.file_type().unwrap().is_dir() {
                stack.push(p);
            } else {
                out.push(p.strip_prefix(root).unwrap().to_path_buf());
            }
        }
    }
    out.sort();
    out
}

fn assert_trees_equal(a: &Path, b: &Path) {
    let fa = list_files(a);
    let fb = list_files(b);
    assert_eq!(fa, fb, "the trees hold different files");
    for f in &fa {
        assert_eq!(
            fs::read(a.join(f)).unwrap(),
            fs::read(b.join(f)).unwrap(),
            "{f:?} differs"
        );
    }
}

fn lftp_session(passive: bool) {
    if !require_tool("lftp") {
        return;
    }
    let server = TestServer::start();
    let local = tempfile::tempdir().unwrap();
    let l = local.path();
    fs::write(l.join("small.txt"), b"hello\nworld\n").unwrap();
    write_file(&l.join("blob.bin"), 65_537, 7);

    let (ok, out, _) = lftp(
        &server,
        passive,
        "mkdir d; cd d; put small.txt; put blob.bin; ls; get blob.bin -o back.bin; \
         mv blob.bin renamed.bin; rm small.txt; cls -1; cd ..; ls",
        l,
    );
    assert!(ok);
    assert!(
        out.contains("small.txt") && out.contains("blob.bin"),
        "{out}"
    );
    assert!(out.contains("renamed.bin"), "{out}");
    assert_eq!(
        sha256_file(&l.join("back.bin")),
        sha256_file(&l.join("blob.bin"))
    );
    let after_rm = out.split("renamed.bin").nth(1).unwrap_or_default();
    assert!(!after_rm.contains("small.txt"), "rm left the file: {out}");
    assert!(
        out.lines()
            .any(|line| line.starts_with("drwx") && line.ends_with(" d")),
        "{out}"
    );

    // mirror -R of a nested tree of 200 files, and mirror back: identical trees.
    make_tree(&l.join("tree"), 200);
    let (ok, _, _) = lftp(&server, passive, "mirror -R tree /tree", l);
    assert!(ok);
    let (ok, _, _) = lftp(&server, passive, "mirror /tree back", l);
    assert!(ok);
    assert_trees_equal(&l.join("tree"), &l.join("back"));
    assert_eq!(list_files(&l.join("back")).len(), 200);
}

#[test]
fn lftp_passive_session_and_mirror() {
    lftp_session(true);
}

#[test]
fn lftp_active_session_and_mirror() {
    lftp_session(false);
}

#[test]
fn lftp_get_c_resumes_an_interrupted_download() {
    if !require_tool("lftp") {
        return;
    }
    let server = TestServer::start();
    let local = tempfile::tempdir().unwrap();
    let l = local.path();
    let full = pseudo_random(3 << 20, 11);
    fs::write(l.join("full.bin"), &full).unwrap();
    assert!(lftp(&server, true, "put full.bin -o remote.bin", l).0);
    // An interrupted download left the first MiB; its bytes are zeroed here, so the result
    // shows that only the rest was fetched (REST), not the whole file again.
    let mut partial = vec![0u8; 1 << 20];
    fs::write(l.join("part.bin"), &partial).unwrap();
    assert!(lftp(&server, true, "get -c remote.bin -o part.bin", l).0);
    partial.extend_from_slice(&full[1 << 20..]);
    assert_eq!(fs::read(l.join("part.bin")).unwrap(), partial);
    // And with a true prefix the result is the file.
    fs::write(l.join("part2.bin"), &full[..1_234_567]).unwrap();
    assert!(lftp(&server, false, "get -c remote.bin -o part2.bin", l).0);
    assert_eq!(
        sha256_file(&l.join("part2.bin")),
        sha256_file(&l.join("full.bin"))
    );
}

#[test]
fn curl_upload_download_resume_and_listing() {
    if !require_tool("curl") {
        return;
    }
    let server = TestServer::start();
    let local = tempfile::tempdir().unwrap();
    let l = local.path();
    let src = l.join("src.bin");
    write_file(&src, 300_000, 3);
    let src_s = src.to_str().unwrap();
    let url = |p: &str| server.ftp_url(p);

    // Upload (-T), creating the directory; download with each data-connection style.
    assert!(curl(&["--ftp-create-dirs", "-T", src_s, &url("/c/src.bin")]).0);
    for (style, extra) in [
        ("epsv", vec![]),
        ("pasv-flag", vec!["--ftp-pasv"]),
        ("pasv", vec!["--disable-epsv"]),
        ("port", vec!["--ftp-port", "127.0.0.1"]),
        ("eprt", vec!["--ftp-port", "-", "--disable-eprt"]),
    ] {
        let out = l.join(format!("down-{style}.bin"));
        let mut args = extra.clone();
        let out_s = out.to_str().unwrap().to_owned();
        let u = url("/c/src.bin");
        args.extend(["-o", &out_s, &u]);
        assert!(curl(&args).0, "{style}");
        assert_eq!(sha256_file(&out), sha256_file(&src), "{style}");
        // Uploads in the same style.
        let name = format!("/c/up-{style}.bin");
        let mut args = extra.clone();
        let u = url(&name);
        args.extend(["-T", src_s, &u]);
        assert!(curl(&args).0, "upload {style}");
    }

    // Listing (LIST) and names only (NLST).
    let (ok, list, _) = curl(&[&url("/c/")]);
    assert!(ok);
    assert!(
        list.lines()
            .any(|line| line.starts_with("-rw-r--r--") && line.ends_with(" src.bin")),
        "{list}"
    );
    let (ok, names, _) = curl(&["-l", &url("/c/")]);
    assert!(ok);
    let mut names: Vec<&str> = names.lines().collect();
    names.sort();
    assert_eq!(
        names,
        [
            "src.bin",
            "up-eprt.bin",
            "up-epsv.bin",
            "up-pasv-flag.bin",
            "up-pasv.bin",
            "up-port.bin"
        ]
    );

    // Resume a download: the local file has a prefix, -C - fetches the rest.
    let part = l.join("part.bin");
    fs::write(&part, &fs::read(&src).unwrap()[..100_000]).unwrap();
    assert!(curl(&["-C", "-", "-o", part.to_str().unwrap(), &url("/c/src.bin")]).0);
    assert_eq!(sha256_file(&part), sha256_file(&src));

    // Resume an upload: the server has a prefix, -C - -T sends the rest.
    let prefix = l.join("prefix.bin");
    fs::write(&prefix, &fs::read(&src).unwrap()[..123_456]).unwrap();
    assert!(curl(&["-T", prefix.to_str().unwrap(), &url("/c/resumed.bin")]).0);
    assert!(curl(&["-C", "-", "-T", src_s, &url("/c/resumed.bin")]).0);
    let back = l.join("resumed.bin");
    assert!(curl(&["-o", back.to_str().unwrap(), &url("/c/resumed.bin")]).0);
    assert_eq!(sha256_file(&back), sha256_file(&src));

    // A missing file is an error, not an empty download.
    assert!(!curl(&["-o", l.join("x").to_str().unwrap(), &url("/c/missing")]).0);
}

#[test]
fn binary_files_of_every_size_round_trip() {
    if !require_tool("curl") {
        return;
    }
    let server = TestServer::start();
    let local = tempfile::tempdir().unwrap();
    let l = local.path();
    for (i, size) in [0usize, 1, 65_537, 100 << 20].into_iter().enumerate() {
        let src = l.join(format!("s{size}"));
        write_file(&src, size, 100 + i as u64);
        let u = server.ftp_url(&format!("/sizes/{size}.bin"));
        assert!(
            curl(&["--ftp-create-dirs", "-T", src.to_str().unwrap(), &u]).0,
            "{size}"
        );
        let back = l.join(format!("b{size}"));
        assert!(curl(&["-o", back.to_str().unwrap(), &u]).0, "{size}");
        assert_eq!(fs::metadata(&back).unwrap().len(), size as u64);
        assert_eq!(sha256_file(&back), sha256_file(&src), "{size} bytes");
    }
}

#[test]
fn python_ftplib_rfc_checks() {
    if !require_tool("python3") {
        return;
    }
    let server = TestServer::start();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ftp/ftplib_checks.py");
    let (ok, out, err) = run_capture(
        Command::new("python3")
            .arg(&script)
            .arg(server.ftp.ip().to_string())
            .arg(server.ftp.port().to_string())
            .arg("admin")
            .arg(ADMIN_PASSWORD),
        Duration::from_secs(300),
    );
    println!("{out}");
    assert!(ok, "ftplib checks failed:\n{out}\n{err}");
    assert!(out.contains(" passed, 0 failed"), "{out}");
}

/// A raw control connection, for the limits.
struct Raw {
    reader: BufReader<TcpStream>,
}

impl Raw {
    fn connect(server: &TestServer) -> Raw {
        let s = TcpStream::connect_timeout(&server.ftp, Duration::from_secs(10)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
        Raw {
            reader: BufReader::new(s),
        }
    }

    /// The next complete reply (its last line), or "" at EOF.
    fn reply(&mut self) -> String {
        loop {
            let mut line = String::new();
            match self.reader.read_line(&mut line) {
                Ok(0) | Err(_) => return String::new(),
                Ok(_) => {}
            }
            let b = line.as_bytes();
            if b.len() >= 4 && b[..3].iter().all(u8::is_ascii_digit) && b[3] == b' ' {
                return line.trim_end().to_owned();
            }
        }
    }

    fn send(&mut self, line: &str) {
        let _ = self
            .reader
            .get_mut()
            .write_all(format!("{line}\r\n").as_bytes());
    }

    fn cmd(&mut self, line: &str) -> String {
        self.send(line);
        self.reply()
    }

    /// True once the server has closed the connection.
    fn closed(&mut self) -> bool {
        let mut buf = [0u8; 64];
        matches!(self.reader.read(&mut buf), Ok(0) | Err(_))
    }
}

fn with_config(toml: &str) -> (tempfile::TempDir, ServerOptions) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("filegate.toml");
    fs::write(&path, toml).unwrap();
    let opts = ServerOptions {
        extra_args: vec!["--config".into(), path.to_str().unwrap().into()],
        ..ServerOptions::default()
    };
    (dir, opts)
}

#[test]
fn limits_connections_idle_bad_commands_and_failed_logins() {
    let (_cfg, opts) = with_config(
        "[ftp]\nmax_connections_per_ip = 2\nidle_timeout_secs = 2\nfailed_login_delay_ms = 50\n\
         max_login_failures = 2\nlogin_block_secs = 600\nmax_bad_commands = 3\n",
    );
    let server = TestServer::start_with(opts);

    // Per-address limit: the third connection is told 421.
    let mut a = Raw::connect(&server);
    let mut b = Raw::connect(&server);
    assert!(a.reply().starts_with("220"));
    assert!(b.reply().starts_with("220"));
    let mut c = Raw::connect(&server);
    assert!(c.reply().starts_with("421"), "third connection");
    drop(b);
    // The slot comes back once the server sees the close.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut d = loop {
        let mut d = Raw::connect(&server);
        if d.reply().starts_with("220") {
            break d;
        }
        assert!(Instant::now() < deadline, "the slot never came back");
        std::thread::sleep(Duration::from_millis(50));
    };

    // Consecutive bad commands: 421 after the third.
    assert!(d.cmd("BOGUS").starts_with("500"));
    assert!(d.cmd("BOGUS").starts_with("500"));
    assert!(d.cmd("BOGUS").starts_with("500"));
    assert!(d.reply().starts_with("421"));
    assert!(d.closed());

    // A line over 4 KiB is 500 and the session survives.
    a.send(&format!("NOOP {}", "x".repeat(5000)));
    assert!(a.reply().starts_with("500"));
    assert!(a.cmd("NOOP").starts_with("200"));

    // Idle timeout: 421 and close.
    let started = Instant::now();
    assert!(a.reply().starts_with("421"), "idle timeout");
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(a.closed());

    // Failed logins: a delay each, then the address is blocked.
    let mut e = Raw::connect(&server);
    assert!(e.reply().starts_with("220"));
    assert!(e.cmd("USER admin").starts_with("331"));
    let t = Instant::now();
    assert!(e.cmd("PASS wrong").starts_with("530"));
    assert!(t.elapsed() >= Duration::from_millis(50));
    assert!(e.cmd("USER admin").starts_with("331"));
    assert!(e.cmd("PASS wrong").starts_with("530"));
    assert!(e.reply().starts_with("421"), "blocked after two failures");
    let mut f = Raw::connect(&server);
    assert!(
        f.reply().starts_with("421"),
        "a blocked address is refused at once"
    );
    drop(c);
}

#[test]
fn graceful_shutdown_lets_transfers_finish_and_closes_idle_sessions() {
    if !require_tool("curl") {
        return;
    }
    let mut server = TestServer::start();
    let local = tempfile::tempdir().unwrap();
    let src = local.path().join("big.bin");
    write_file(&src, 4 << 20, 5);
    let u = server.ftp_url("/big.bin");
    assert!(curl(&["-T", src.to_str().unwrap(), &u]).0);

    let mut idle = Raw::connect(&server);
    assert!(idle.reply().starts_with("220"));
    assert!(idle.cmd("USER admin").starts_with("331"));
    assert!(idle
        .cmd(&format!("PASS {ADMIN_PASSWORD}"))
        .starts_with("230"));

    // A slow download (about 1 s) is running when the server is told to stop.
    let back = local.path().join("back.bin");
    let mut slow = Command::new("curl")
        .args(["-sS", "--max-time", "60", "--limit-rate", "4M", "-u"])
        .arg(format!("admin:{ADMIN_PASSWORD}"))
        .arg("-o")
        .arg(&back)
        .arg(&u)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Stop once the transfer is under way (a session between commands is idle and gets 421).
    let deadline = Instant::now() + Duration::from_secs(30);
    while fs::metadata(&back).map_or(0, |m| m.len()) == 0 {
        assert!(Instant::now() < deadline, "the download never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    let status = server.stop();
    assert!(
        status.is_some_and(|s| s.success()),
        "server exit: {status:?}"
    );
    assert!(idle.reply().starts_with("421"), "idle session told 421");
    let deadline = Instant::now() + Duration::from_secs(60);
    let curl_status = loop {
        if let Some(s) = slow.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "curl never finished");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(curl_status.success(), "the running transfer finished");
    assert_eq!(sha256_file(&back), sha256_file(&src));
}

#[test]
fn fifty_clients_connecting_at_once_all_get_their_greeting() {
    let server = TestServer::start();
    let addr = server.ftp;
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(50));
    let threads: Vec<_> = (0..50)
        .map(|_| {
            let barrier = std::sync::Arc::clone(&barrier);
            std::thread::spawn(move || {
                barrier.wait();
                let s = TcpStream::connect_timeout(&addr, Duration::from_secs(10))?;
                s.set_read_timeout(Some(Duration::from_secs(15)))?;
                let mut line = String::new();
                BufReader::new(s).read_line(&mut line)?;
                Ok::<String, std::io::Error>(line)
            })
        })
        .collect();
    for t in threads {
        let line = t.join().unwrap().unwrap();
        assert!(line.starts_with("220 "), "{line:?}");
    }
}
