//! curl against a real server: what a person types.

use std::path::Path;

use crate::common::{
    curl, curl_status as code, require_tool, sha256_file, TestServer, ADMIN_PASSWORD,
};

fn user() -> String {
    format!("admin:{ADMIN_PASSWORD}")
}

fn write(path: &Path, data: &[u8]) {
    std::fs::write(path, data).unwrap();
}

#[test]
fn curl_upload_download_ranges_conditional() {
    if !require_tool("curl") {
        return;
    }
    let server = TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src.bin");
    write(&src, &super::pattern(5 << 20, 1));
    let u = user();
    let url = server.http_url("/up.bin");
    let src_s = src.display().to_string();
    assert_eq!(code(&["-u", &u, "-T", &src_s, &url]), 201, "-T creates");
    assert_eq!(code(&["-u", &u, "-T", &src_s, &url]), 204, "-T replaces");

    let dst = dir.path().join("dst.bin");
    let dst_s = dst.display().to_string();
    let (ok, _, err) = curl(&["-f", "-u", &u, "-o", &dst_s, &url]);
    assert!(ok, "{err}");
    assert_eq!(sha256_file(&src), sha256_file(&dst), "bytes identical");
    // The same over HTTP/2 (read in pieces, no sendfile), and a large range over HTTP/1.1
    // (sendfile from an offset).
    let (ok, _, err) = curl(&[
        "-f",
        "--http2-prior-knowledge",
        "-u",
        &u,
        "-o",
        &dst_s,
        &url,
    ]);
    assert!(ok, "{err}");
    assert_eq!(
        sha256_file(&src),
        sha256_file(&dst),
        "bytes identical over h2"
    );
    let (ok, _, err) = curl(&["-f", "-u", &u, "-r", "1000001-3000000", "-o", &dst_s, &url]);
    assert!(ok, "{err}");
    let whole = std::fs::read(&src).unwrap();
    assert!(
        std::fs::read(&dst).unwrap() == whole[1_000_001..=3_000_000],
        "large range"
    );

    // -r ranges.
    let (ok, out, err) = curl(&["-f", "-u", &u, "-r", "0-9", &server.http_url("/txt")]);
    assert!(!ok, "missing file fails with -f: {out} {err}");
    let t = dir.path().join("t.txt");
    write(&t, b"0123456789abcdef");
    curl(&[
        "-u",
        &u,
        "-T",
        &t.display().to_string(),
        &server.http_url("/t.txt"),
    ]);
    let (_, out, _) = curl(&["-u", &u, "-r", "3-5", &server.http_url("/t.txt")]);
    assert_eq!(out, "345");
    let (_, out, _) = curl(&["-u", &u, "-r", "-4", &server.http_url("/t.txt")]);
    assert_eq!(out, "cdef");
    let (_, out, _) = curl(&["-u", &u, "-r", "10-100", &server.http_url("/t.txt")]);
    assert_eq!(out, "abcdef", "clamped");
    assert_eq!(
        code(&["-u", &u, "-r", "50-60", &server.http_url("/t.txt")]),
        416
    );

    // -z: conditional on a date (If-Modified-Since), and its negation.
    let later = "Sun, 01 Jan 2090 00:00:00 GMT";
    let earlier = "Sun, 01 Jan 2000 00:00:00 GMT";
    assert_eq!(
        code(&["-u", &u, "-z", later, &server.http_url("/t.txt")]),
        304
    );
    assert_eq!(
        code(&["-u", &u, "-z", earlier, &server.http_url("/t.txt")]),
        200
    );
    assert_eq!(
        code(&[
            "-u",
            &u,
            "-z",
            &format!("-{earlier}"),
            &server.http_url("/t.txt")
        ]),
        412
    );
    // -z with a file: its mtime.
    let (_, out, _) = curl(&[
        "-u",
        &u,
        "-z",
        &t.display().to_string(),
        &server.http_url("/t.txt"),
    ]);
    assert!(out.is_empty() || out == "0123456789abcdef");
}

#[test]
fn curl_webdav_verbs_auth_and_h2c() {
    if !require_tool("curl") {
        return;
    }
    let server = TestServer::start();
    let u = user();
    let h = |p: &str| server.http_url(p);
    assert_eq!(code(&["-u", &u, "-X", "MKCOL", &h("/dir")]), 201);
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("f.txt");
    write(&f, b"moving");
    let fs = f.display().to_string();
    assert_eq!(code(&["-u", &u, "-T", &fs, &h("/dir/f.txt")]), 201);
    assert_eq!(
        code(&[
            "-u",
            &u,
            "-X",
            "MOVE",
            "-H",
            &format!("Destination: {}", h("/dir/g.txt")),
            &h("/dir/f.txt")
        ]),
        201
    );
    let (_, out, _) = curl(&["-u", &u, &h("/dir/g.txt")]);
    assert_eq!(out, "moving");
    assert_eq!(
        code(&["-u", &u, "-X", "DELETE", &h("/dir")]),
        409,
        "not empty"
    );
    assert_eq!(code(&["-u", &u, "-X", "DELETE", &h("/dir/g.txt")]), 204);
    assert_eq!(code(&["-u", &u, "-X", "DELETE", &h("/dir")]), 204);

    // -u with a wrong password, and no credentials.
    assert_eq!(code(&["-u", "admin:nope", &h("/")]), 401);
    assert_eq!(code(&[&h("/")]), 401);

    // A token from POST /_/token, then Bearer.
    let (ok, out, err) = curl(&[
        "-f",
        "-u",
        &u,
        "-X",
        "POST",
        &h("/_/token?ttl=1h&read_only=1"),
    ]);
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let token = v["token"].as_str().unwrap();
    let bearer = format!("Authorization: Bearer {token}");
    assert_eq!(code(&["-H", &bearer, &h("/")]), 200);
    assert_eq!(
        code(&["-H", &bearer, "-T", &fs, &h("/w.txt")]),
        403,
        "read-only token"
    );

    // HTTP/2 with prior knowledge (h2c).
    let (ok, out, err) = curl(&[
        "--http2-prior-knowledge",
        "-u",
        &u,
        "-H",
        "Accept: application/json",
        "-w",
        "\n%{http_version}",
        &h("/"),
    ]);
    assert!(ok, "{err}");
    assert!(out.ends_with("\n2"), "{out}");
    assert!(out.contains("\"entries\""));
    let (ok, out, err) = curl(&[
        "--http2-prior-knowledge",
        "-u",
        &u,
        "-T",
        &fs,
        "-w",
        "%{http_code}",
        &h("/h2.txt"),
    ]);
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "201");
    let (_, out, _) = curl(&[
        "--http2-prior-knowledge",
        "-u",
        &u,
        "-r",
        "1-3",
        &h("/h2.txt"),
    ]);
    assert_eq!(out, "ovi");
}
