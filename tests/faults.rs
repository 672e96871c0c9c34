//! Faults: a full disk under the store. Writes fail with the protocol's "no space" answer
//! (FTP 452/552, HTTP 507), nothing partial remains, the previous versions stay, and the server
//! keeps serving.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::common::{
    curl, curl_status as http_code, require_tool, run_with_timeout, ServerOptions, TestServer,
    ADMIN_PASSWORD,
};

/// A small tmpfs, unmounted when dropped.
struct SmallDisk {
    path: PathBuf,
    _dir: tempfile::TempDir,
}

impl SmallDisk {
    /// Mounts `mib` MiB; `None` (with the reason printed) where mounting is not allowed, which
    /// fails the test under CI (CI runs as root).
    fn mount(mib: u32) -> Option<SmallDisk> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("disk");
        std::fs::create_dir(&path).unwrap();
        let (ok, _, err) = run_with_timeout(
            Command::new("mount")
                .args(["-t", "tmpfs", "-o", &format!("size={mib}m"), "tmpfs"])
                .arg(&path),
            Duration::from_secs(20),
        );
        if !ok {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("cannot mount a tmpfs for the full-disk test in CI: {err}");
            }
            eprintln!("SKIPPED: cannot mount a tmpfs (needs root): {err}");
            return None;
        }
        Some(SmallDisk { path, _dir: dir })
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}

fn count_files(dir: &Path) -> usize {
    std::fs::read_dir(dir).map_or(0, |rd| rd.count())
}

#[test]
fn full_disk_refuses_writes_cleanly_and_keeps_serving() {
    if !require_tool("curl") {
        return;
    }
    let Some(disk) = SmallDisk::mount(24) else {
        return;
    };
    let data = disk.path.join("data");
    let server = TestServer::start_with(ServerOptions {
        data_dir: Some(data.clone()),
        ..ServerOptions::default()
    });
    let user = format!("admin:{ADMIN_PASSWORD}");
    let work = tempfile::tempdir().unwrap();
    let small = work.path().join("small.txt");
    std::fs::write(&small, b"the old version").unwrap();
    let big = work.path().join("big.bin");
    std::fs::write(&big, vec![7u8; 40 << 20]).unwrap();
    let small_s = small.display().to_string();
    let big_s = big.display().to_string();

    assert_eq!(
        http_code(&["-u", &user, "-T", &small_s, &server.http_url("/keep.txt")]),
        201
    );

    // HTTP: a new file and an overwrite that do not fit.
    assert_eq!(
        http_code(&["-u", &user, "-T", &big_s, &server.http_url("/big.bin")]),
        507
    );
    assert_eq!(
        http_code(&["-u", &user, "-T", &big_s, &server.http_url("/keep.txt")]),
        507
    );
    assert_eq!(
        http_code(&["-u", &user, &server.http_url("/big.bin")]),
        404,
        "nothing partial"
    );

    // FTP: the same through STOR. The server may cut the data connection when the write
    // fails; the answer is on the control connection.
    let script = format!(
        r#"
import ftplib
ftp = ftplib.FTP()
ftp.connect("127.0.0.1", {port}, timeout=30)
ftp.login("admin", "{ADMIN_PASSWORD}")
ftp.voidcmd("TYPE I")
conn = ftp.transfercmd("STOR big-ftp.bin")
try:
    for _ in range(40 * 16):
        conn.sendall(b"\x07" * 65536)
except OSError:
    pass
conn.close()
try:
    print(ftp.getresp())
except ftplib.all_errors as e:
    print(e)
"#,
        port = server.ftp.port()
    );
    let (_, out, err) = run_with_timeout(
        Command::new("python3").arg("-c").arg(&script),
        Duration::from_secs(60),
    );
    assert!(
        out.starts_with("452") || out.starts_with("552"),
        "FTP answers 452 or 552: {out} {err}"
    );
    assert_eq!(
        http_code(&["-u", &user, &server.http_url("/big-ftp.bin")]),
        404
    );

    // Nothing left behind, the old version intact, and the server still serves.
    assert_eq!(
        count_files(&data.join("tmp")),
        0,
        "no temporary file remains"
    );
    let (ok, out, err) = curl(&["-f", "-u", &user, &server.http_url("/keep.txt")]);
    assert!(ok, "{err}");
    assert_eq!(out, "the old version");
    let (ok, out, _) = curl(&["-f", "-u", &user, &server.ftp_url("/keep.txt")]);
    assert!(ok && out == "the old version", "FTP still reads: {out}");
    std::fs::write(&small, b"a new small version").unwrap();
    assert_eq!(
        http_code(&["-u", &user, "-T", &small_s, &server.http_url("/keep.txt")]),
        204
    );
    let (_, out, _) = curl(&["-f", "-u", &user, &server.http_url("/keep.txt")]);
    assert_eq!(
        out, "a new small version",
        "writes work again once they fit"
    );
    drop(server);
}

/// Version `generation` of test file `file`: a header naming both, then bytes that follow from
/// them, so any downloaded body can be checked for being one complete version.
fn version(file: u32, generation: u32) -> Vec<u8> {
    let len = 1000 + ((file as usize * 7919 + generation as usize * 104_729) % 300_000);
    let mut out = Vec::with_capacity(8 + len);
    out.extend_from_slice(&file.to_be_bytes());
    out.extend_from_slice(&generation.to_be_bytes());
    let mut x = u64::from(file) << 32 | u64::from(generation);
    out.extend((0..len).map(|_| {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (x >> 56) as u8
    }));
    out
}

fn check_version(name: &str, body: &[u8]) {
    assert!(body.len() >= 8, "{name}: truncated to {} bytes", body.len());
    let file = u32::from_be_bytes(body[..4].try_into().unwrap());
    let generation = u32::from_be_bytes(body[4..8].try_into().unwrap());
    assert!(
        body == version(file, generation),
        "{name}: not one complete version"
    );
}

fn blob_count(data: &Path) -> usize {
    std::fs::read_dir(data.join("blobs"))
        .map(|rd| {
            rd.map(|d| std::fs::read_dir(d.unwrap().path()).map_or(0, |r| r.count()))
                .sum()
        })
        .unwrap_or(0)
}

#[test]
fn sigkill_under_load_then_restart_keeps_whole_versions() {
    if !require_tool("curl") {
        return;
    }
    let keep = tempfile::tempdir().unwrap();
    let data = keep.path().join("data");
    let work = tempfile::tempdir().unwrap();
    let files = 8u32;
    for round in 0..3u32 {
        let mut server = TestServer::start_with(ServerOptions {
            data_dir: Some(data.clone()),
            ..ServerOptions::default()
        });
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stored = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let clients: Vec<_> = (0..4u32)
            .map(|c| {
                let stop = std::sync::Arc::clone(&stop);
                let stored = std::sync::Arc::clone(&stored);
                let (ftp, http) = (server.ftp_url(""), server.http_url(""));
                let src = work.path().join(format!("c{c}"));
                std::thread::spawn(move || {
                    let user = format!("admin:{ADMIN_PASSWORD}");
                    let mut generation = round * 10_000;
                    while !stop.load(std::sync::atomic::Ordering::Relaxed)
                        && generation < round * 10_000 + 500
                    {
                        for file in (c..files).step_by(4) {
                            std::fs::write(&src, version(file, generation)).unwrap();
                            let url = if generation % 2 == 0 {
                                format!("{http}/f{file}")
                            } else {
                                format!("{ftp}/f{file}")
                            };
                            let (ok, _, _) = run_with_timeout(
                                Command::new("curl")
                                    .args(["-sS", "-f", "--max-time", "20", "-u", &user, "-T"])
                                    .arg(&src)
                                    .arg(&url),
                                Duration::from_secs(30),
                            );
                            if ok {
                                stored.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            }
                        }
                        generation += 1;
                    }
                })
            })
            .collect();
        // Let uploads flow (the first logins hash a password), then kill at an arbitrary moment.
        for _ in 0..600 {
            if stored.load(std::sync::atomic::Ordering::Relaxed) >= 6 {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        std::thread::sleep(Duration::from_millis(50 + u64::from(round) * 170));
        let _ = server.child.kill(); // SIGKILL, mid-upload
        let _ = server.child.wait();
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        for c in clients {
            c.join().unwrap();
        }
        drop(server);

        // Restart on the same store: every file is one whole version, nothing is left over.
        let server = TestServer::start_with(ServerOptions {
            data_dir: Some(data.clone()),
            ..ServerOptions::default()
        });
        let user = format!("admin:{ADMIN_PASSWORD}");
        let mut present = 0;
        for file in 0..files {
            let out = work.path().join("got");
            let _ = std::fs::remove_file(&out);
            let (ok, _, _) = curl(&[
                "-f",
                "-u",
                &user,
                "-o",
                &out.display().to_string(),
                &server.http_url(&format!("/f{file}")),
            ]);
            if ok {
                present += 1;
                check_version(
                    &format!("round {round} f{file}"),
                    &std::fs::read(&out).unwrap(),
                );
            }
        }
        assert!(
            present > 0,
            "round {round}: no upload completed before the kill"
        );
        assert_eq!(
            count_files(&data.join("tmp")),
            0,
            "round {round}: temporary files left"
        );
        assert_eq!(blob_count(&data), present, "round {round}: orphaned blobs");
        drop(server);
    }
}

fn open_fds(pid: u32) -> usize {
    count_files(Path::new(&format!("/proc/{pid}/fd")))
}

#[test]
fn clients_vanishing_mid_transfer_leak_nothing() {
    use std::io::{Read, Write};
    use std::net::TcpStream;
    if !require_tool("curl") {
        return;
    }
    let server = TestServer::start();
    let user = format!("admin:{ADMIN_PASSWORD}");
    let work = tempfile::tempdir().unwrap();
    let big = work.path().join("big");
    std::fs::write(&big, version(1, 1)).unwrap();
    let mut payload = Vec::new();
    for g in 1..40 {
        payload.extend(version(2, g));
    }
    std::fs::write(work.path().join("large"), &payload).unwrap();
    let big_s = big.display().to_string();
    let large_s = work.path().join("large").display().to_string();
    assert_eq!(
        http_code(&["-u", &user, "-T", &big_s, &server.http_url("/kept")]),
        201
    );
    assert_eq!(
        http_code(&["-u", &user, "-T", &large_s, &server.http_url("/large")]),
        201
    );
    let pid = server.child.id();
    let basic = format!(
        "Basic {}",
        base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &user)
    );
    // Warm up both front ends once, then take the baseline.
    let _ = curl(&[
        "-f",
        "-u",
        &user,
        "-o",
        "/dev/null",
        &server.ftp_url("/kept"),
    ]);
    std::thread::sleep(Duration::from_millis(300));
    let before = open_fds(pid);

    for _ in 0..10 {
        // HTTP upload that stops halfway.
        let mut s = TcpStream::connect(server.http).unwrap();
        write!(s, "PUT /kept HTTP/1.1\r\nHost: x\r\nAuthorization: {basic}\r\nContent-Length: 10000000\r\n\r\n").unwrap();
        s.write_all(&vec![1u8; 1 << 20]).unwrap();
        drop(s);
        // HTTP download abandoned after the first bytes.
        let mut s = TcpStream::connect(server.http).unwrap();
        write!(
            s,
            "GET /large HTTP/1.1\r\nHost: x\r\nAuthorization: {basic}\r\n\r\n"
        )
        .unwrap();
        let mut buf = [0u8; 65536];
        let _ = s.read(&mut buf).unwrap();
        drop(s);
        // FTP upload and download cut off by killing the client.
        let mut up = Command::new("curl")
            .args([
                "-sS",
                "--limit-rate",
                "200k",
                "-u",
                &user,
                "-T",
                &large_s,
                &server.ftp_url("/kept"),
            ])
            .spawn()
            .unwrap();
        let mut down = Command::new("curl")
            .args([
                "-sS",
                "--limit-rate",
                "200k",
                "-u",
                &user,
                "-o",
                "/dev/null",
                &server.ftp_url("/large"),
            ])
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(400));
        let _ = up.kill();
        let _ = down.kill();
        let _ = up.wait();
        let _ = down.wait();
    }
    // Every connection, data channel, blob handle and temporary file is released (bounded wait:
    // the server notices dead peers through its timeouts and resets).
    let mut after = open_fds(pid);
    for _ in 0..300 {
        if after <= before {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
        after = open_fds(pid);
    }
    assert!(
        after <= before,
        "descriptors leaked: {before} before, {after} after"
    );
    assert_eq!(
        count_files(&server.data_dir().join("tmp")),
        0,
        "no partial upload remains"
    );
    let got = work.path().join("got");
    let (ok, _, err) = curl(&[
        "-f",
        "-u",
        &user,
        "-o",
        &got.display().to_string(),
        &server.http_url("/kept"),
    ]);
    assert!(ok, "{err}");
    check_version("kept", &std::fs::read(&got).unwrap());
}
