//! FTP and HTTP on the same store: stored by one, fetched by the other, bytes identical; and a
//! file replaced over HTTP while an FTP client downloads it gives that client the whole old
//! version.

use std::process::Command;
use std::time::Duration;

use http::StatusCode;

use super::{pattern, rt, send_admin};
use crate::common::{require_tool, run_with_timeout, sha256_file, TestServer, ADMIN_PASSWORD};

fn user() -> String {
    format!("admin:{ADMIN_PASSWORD}")
}

#[test]
fn ftp_to_http_and_back() {
    if !require_tool("curl") {
        return;
    }
    let server = TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("via-ftp.bin");
    std::fs::write(&src, pattern(2 << 20, 11)).unwrap();
    let (ok, _, err) = run_with_timeout(
        Command::new("curl")
            .args(["-sS", "-u", &user(), "-T"])
            .arg(&src)
            .arg(server.ftp_url("/via-ftp.bin")),
        Duration::from_secs(60),
    );
    assert!(ok, "FTP upload: {err}");
    let fetched = dir.path().join("fetched.bin");
    let (ok, _, err) = run_with_timeout(
        Command::new("curl")
            .args(["-sSf", "-u", &user(), "-o"])
            .arg(&fetched)
            .arg(server.http_url("/via-ftp.bin")),
        Duration::from_secs(60),
    );
    assert!(ok, "HTTP download: {err}");
    assert_eq!(
        sha256_file(&src),
        sha256_file(&fetched),
        "stored by FTP, fetched by HTTP"
    );

    let data = pattern(1 << 20, 12);
    rt().block_on(async {
        let r = send_admin(server.http, "PUT", "/via-http.bin", &[], data.clone()).await;
        assert_eq!(r.status, StatusCode::CREATED);
    });
    let back = dir.path().join("back.bin");
    let (ok, _, err) = run_with_timeout(
        Command::new("curl")
            .args(["-sS", "-u", &user(), "-o"])
            .arg(&back)
            .arg(server.ftp_url("/via-http.bin")),
        Duration::from_secs(60),
    );
    assert!(ok, "FTP download: {err}");
    assert!(
        std::fs::read(&back).unwrap() == data,
        "stored by HTTP, fetched by FTP"
    );
}

#[test]
fn http_replace_during_ftp_download_keeps_the_old_version() {
    if !require_tool("curl") {
        return;
    }
    let server = TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    let old = pattern(6 << 20, 21);
    let new = pattern(6 << 20, 22);
    rt().block_on(async {
        let r = send_admin(server.http, "PUT", "/swap.bin", &[], old.clone()).await;
        assert_eq!(r.status, StatusCode::CREATED);
    });
    // A slow FTP download (about 3 s), with the replacement in the middle of it.
    let out = dir.path().join("got.bin");
    let ftp = Command::new("curl")
        .args(["-sS", "--limit-rate", "2M", "-u", &user(), "-o"])
        .arg(&out)
        .arg(server.ftp_url("/swap.bin"))
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Replace only once the download is under way (logging in takes a while in debug builds).
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while std::fs::metadata(&out).map_or(0, |m| m.len()) < 256 * 1024 {
        assert!(
            std::time::Instant::now() < deadline,
            "the FTP download did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    rt().block_on(async {
        let r = send_admin(server.http, "PUT", "/swap.bin", &[], new.clone()).await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);
    });
    let done = ftp.wait_with_output().unwrap();
    assert!(
        done.status.success(),
        "FTP download failed: {}",
        String::from_utf8_lossy(&done.stderr)
    );
    let got = std::fs::read(&out).unwrap();
    assert_eq!(got.len(), old.len());
    assert!(got == old, "the FTP client got the complete old version");
    rt().block_on(async {
        let r = send_admin(server.http, "GET", "/swap.bin", &[], "").await;
        assert!(r.body[..] == new[..], "HTTP now serves the new version");
    });
}
