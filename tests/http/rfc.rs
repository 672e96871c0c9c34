//! RFC 9110/9112 behaviour, case by case, with hyper's client (and raw bytes where a client
//! would not send the request).

use std::time::Duration;

use http::StatusCode;

use super::{admin_basic, basic, pattern, raw, raw_status, rt, send, send_admin};
use crate::common::{ServerOptions, TestServer};

#[test]
fn get_and_head_carry_validators_and_types() {
    let server = TestServer::start();
    let a = server.http;
    rt().block_on(async {
        let r = send_admin(a, "PUT", "/notes.txt", &[], "hello world\n").await;
        assert_eq!(r.status, StatusCode::CREATED, "PUT creates");
        let etag = r.header("etag").unwrap().to_owned();
        assert!(
            etag.starts_with('"') && etag.ends_with('"'),
            "strong, quoted ETag: {etag}"
        );

        let g = send_admin(a, "GET", "/notes.txt", &[], "").await;
        assert_eq!(g.status, StatusCode::OK);
        assert_eq!(g.text(), "hello world\n");
        assert_eq!(g.header("content-length"), Some("12"));
        assert_eq!(g.header("content-type"), Some("text/plain; charset=utf-8"));
        assert_eq!(g.header("accept-ranges"), Some("bytes"));
        assert_eq!(g.header("etag"), Some(etag.as_str()));
        let lm = g.header("last-modified").unwrap();
        assert!(lm.ends_with(" GMT"), "{lm}");

        let h = send_admin(a, "HEAD", "/notes.txt", &[], "").await;
        assert_eq!(h.status, StatusCode::OK);
        assert!(h.body.is_empty(), "HEAD has no body");
        assert_eq!(
            h.header("content-length"),
            Some("12"),
            "HEAD has GET's length"
        );
        assert_eq!(h.header("etag"), Some(etag.as_str()));
        assert_eq!(h.header("last-modified"), Some(lm));

        let png = send_admin(a, "PUT", "/x.png", &[], vec![0u8; 3]).await;
        assert_eq!(png.status, StatusCode::CREATED);
        let g = send_admin(a, "GET", "/x.png", &[], "").await;
        assert_eq!(g.header("content-type"), Some("image/png"));
        let g = send_admin(a, "GET", "/missing", &[], "").await;
        assert_eq!(g.status, StatusCode::NOT_FOUND);
    });
}

#[test]
fn ranges_single_multi_clamped_unsatisfiable_if_range() {
    let server = TestServer::start();
    let a = server.http;
    let data = pattern(1000, 7);
    rt().block_on(async {
        let put = send_admin(a, "PUT", "/r.bin", &[], data.clone()).await;
        let etag = put.header("etag").unwrap().to_owned();

        let r = send_admin(a, "GET", "/r.bin", &[("range", "bytes=10-19")], "").await;
        assert_eq!(r.status, StatusCode::PARTIAL_CONTENT);
        assert_eq!(r.header("content-range"), Some("bytes 10-19/1000"));
        assert_eq!(r.header("content-length"), Some("10"));
        assert_eq!(&r.body[..], &data[10..20]);

        // A last position past the end is clamped (RFC 9110 14.1.2).
        let r = send_admin(a, "GET", "/r.bin", &[("range", "bytes=990-5000")], "").await;
        assert_eq!(r.status, StatusCode::PARTIAL_CONTENT);
        assert_eq!(r.header("content-range"), Some("bytes 990-999/1000"));
        assert_eq!(&r.body[..], &data[990..]);

        let r = send_admin(a, "GET", "/r.bin", &[("range", "bytes=-5")], "").await;
        assert_eq!(r.header("content-range"), Some("bytes 995-999/1000"));
        assert_eq!(&r.body[..], &data[995..]);

        // Several ranges: multipart/byteranges.
        let r = send_admin(a, "GET", "/r.bin", &[("range", "bytes=0-1,500-502")], "").await;
        assert_eq!(r.status, StatusCode::PARTIAL_CONTENT);
        let ct = r.header("content-type").unwrap().to_owned();
        let boundary = ct.strip_prefix("multipart/byteranges; boundary=").unwrap();
        assert_eq!(
            r.header("content-length").unwrap(),
            r.body.len().to_string()
        );
        let parts = split_multipart(&r.body, boundary);
        assert_eq!(parts.len(), 2);
        assert!(
            parts[0].0.contains("Content-Range: bytes 0-1/1000"),
            "{}",
            parts[0].0
        );
        assert_eq!(parts[0].1, &data[0..2]);
        assert!(parts[1].0.contains("Content-Range: bytes 500-502/1000"));
        assert_eq!(parts[1].1, &data[500..503]);

        // Unsatisfiable: 416 with the length.
        let r = send_admin(a, "GET", "/r.bin", &[("range", "bytes=1000-")], "").await;
        assert_eq!(r.status, StatusCode::RANGE_NOT_SATISFIABLE);
        assert_eq!(r.header("content-range"), Some("bytes */1000"));

        // Another unit, or nonsense: ignored, the whole file.
        let r = send_admin(a, "GET", "/r.bin", &[("range", "lines=1-2")], "").await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.body.len(), 1000);

        // If-Range: the same version gives the range, another the whole file.
        let r = send_admin(
            a,
            "GET",
            "/r.bin",
            &[("range", "bytes=0-0"), ("if-range", &etag)],
            "",
        )
        .await;
        assert_eq!(r.status, StatusCode::PARTIAL_CONTENT);
        let r = send_admin(
            a,
            "GET",
            "/r.bin",
            &[("range", "bytes=0-0"), ("if-range", "\"old\"")],
            "",
        )
        .await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.body.len(), 1000);

        // HEAD ignores Range.
        let r = send_admin(a, "HEAD", "/r.bin", &[("range", "bytes=0-0")], "").await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.header("content-length"), Some("1000"));
    });
}

/// (part headers, part body) of a multipart body.
fn split_multipart<'a>(body: &'a [u8], boundary: &str) -> Vec<(String, &'a [u8])> {
    let delim = format!("--{boundary}");
    let mut out = Vec::new();
    let mut rest = body;
    while let Some(i) = find(rest, delim.as_bytes()) {
        rest = &rest[i + delim.len()..];
        if rest.starts_with(b"--") {
            break;
        }
        let head_end = find(rest, b"\r\n\r\n").unwrap();
        let head = String::from_utf8_lossy(&rest[..head_end]).into_owned();
        let data_start = head_end + 4;
        let next = find(&rest[data_start..], format!("\r\n{delim}").as_bytes()).unwrap();
        out.push((head, &rest[data_start..data_start + next]));
        rest = &rest[data_start + next..];
    }
    out
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[test]
fn conditional_get() {
    let server = TestServer::start();
    let a = server.http;
    rt().block_on(async {
        let put = send_admin(a, "PUT", "/c.txt", &[], "v1").await;
        let etag = put.header("etag").unwrap().to_owned();
        let g = send_admin(a, "GET", "/c.txt", &[], "").await;
        let lm = g.header("last-modified").unwrap().to_owned();

        let r = send_admin(a, "GET", "/c.txt", &[("if-none-match", &etag)], "").await;
        assert_eq!(r.status, StatusCode::NOT_MODIFIED, "If-None-Match");
        assert_eq!(
            r.header("etag"),
            Some(etag.as_str()),
            "304 carries the ETag"
        );
        assert!(r.body.is_empty());

        let r = send_admin(a, "GET", "/c.txt", &[("if-none-match", "*")], "").await;
        assert_eq!(
            r.status,
            StatusCode::NOT_MODIFIED,
            "If-None-Match: * on an existing file"
        );

        let r = send_admin(a, "GET", "/c.txt", &[("if-modified-since", &lm)], "").await;
        assert_eq!(r.status, StatusCode::NOT_MODIFIED, "If-Modified-Since");
        assert_eq!(r.header("etag"), Some(etag.as_str()));

        let r = send_admin(
            a,
            "GET",
            "/c.txt",
            &[("if-none-match", "\"other\""), ("if-modified-since", &lm)],
            "",
        )
        .await;
        assert_eq!(
            r.status,
            StatusCode::OK,
            "If-Modified-Since is ignored when If-None-Match is present"
        );

        let old = "Thu, 01 Jan 1970 00:00:00 GMT";
        let r = send_admin(a, "GET", "/c.txt", &[("if-modified-since", old)], "").await;
        assert_eq!(r.status, StatusCode::OK);

        let r = send_admin(a, "GET", "/c.txt", &[("if-match", "\"stale\"")], "").await;
        assert_eq!(r.status, StatusCode::PRECONDITION_FAILED, "If-Match");
        let r = send_admin(a, "GET", "/c.txt", &[("if-match", &etag)], "").await;
        assert_eq!(r.status, StatusCode::OK);
        let r = send_admin(a, "GET", "/c.txt", &[("if-unmodified-since", old)], "").await;
        assert_eq!(
            r.status,
            StatusCode::PRECONDITION_FAILED,
            "If-Unmodified-Since"
        );
        let r = send_admin(a, "HEAD", "/c.txt", &[("if-none-match", &etag)], "").await;
        assert_eq!(r.status, StatusCode::NOT_MODIFIED, "HEAD too");
    });
}

#[test]
fn put_semantics() {
    let server = TestServer::start();
    let a = server.http;
    rt().block_on(async {
        let r = send_admin(a, "PUT", "/p.txt", &[], "first").await;
        assert_eq!(r.status, StatusCode::CREATED);
        let e1 = r.header("etag").unwrap().to_owned();
        let r = send_admin(a, "PUT", "/p.txt", &[], "again").await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "replace");
        let e2 = r.header("etag").unwrap().to_owned();
        assert_ne!(
            e1, e2,
            "the ETag changes on a same-size rewrite within the same second"
        );

        // Lost-update protection.
        let r = send_admin(a, "PUT", "/p.txt", &[("if-match", &e1)], "lost!").await;
        assert_eq!(r.status, StatusCode::PRECONDITION_FAILED);
        assert_eq!(
            send_admin(a, "GET", "/p.txt", &[], "").await.text(),
            "again",
            "untouched"
        );
        let r = send_admin(a, "PUT", "/p.txt", &[("if-match", &e2)], "third").await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);

        // Create-only.
        let r = send_admin(a, "PUT", "/new.txt", &[("if-none-match", "*")], "n").await;
        assert_eq!(r.status, StatusCode::CREATED);
        let r = send_admin(a, "PUT", "/new.txt", &[("if-none-match", "*")], "m").await;
        assert_eq!(r.status, StatusCode::PRECONDITION_FAILED);
        assert_eq!(send_admin(a, "GET", "/new.txt", &[], "").await.text(), "n");

        // Missing parent: 409, read by the client even while it is still sending a large body.
        let r = send_admin(a, "PUT", "/no/such/dir.txt", &[], "x").await;
        assert_eq!(r.status, StatusCode::CONFLICT);
        let r = send_admin(a, "PUT", "/no/such/big.bin", &[], vec![7u8; 8 << 20]).await;
        assert_eq!(r.status, StatusCode::CONFLICT);

        // Content-Range on PUT: 400, never a truncation.
        let r = send_admin(
            a,
            "PUT",
            "/p.txt",
            &[("content-range", "bytes 0-1/5")],
            "XY",
        )
        .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        assert_eq!(
            send_admin(a, "GET", "/p.txt", &[], "").await.text(),
            "third"
        );

        // Large streamed upload, bytes identical.
        let big = pattern(3 << 20, 3);
        let r = send_admin(a, "PUT", "/big.bin", &[], big.clone()).await;
        assert_eq!(r.status, StatusCode::CREATED);
        let g = send_admin(a, "GET", "/big.bin", &[], "").await;
        assert!(g.body[..] == big[..], "3 MiB round trip");
    });
    // Expect: 100-continue is honoured: the interim response comes before the body is sent.
    let auth = admin_basic();
    let head = format!(
        "PUT /expect.txt HTTP/1.1\r\nHost: x\r\nAuthorization: {auth}\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n"
    );
    let mut s = std::net::TcpStream::connect(a).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    use std::io::{Read, Write};
    s.write_all(head.as_bytes()).unwrap();
    let mut buf = [0u8; 256];
    let n = s.read(&mut buf).unwrap();
    let interim = String::from_utf8_lossy(&buf[..n]).into_owned();
    assert!(interim.starts_with("HTTP/1.1 100 Continue"), "{interim}");
    s.write_all(b"hello").unwrap();
    let n = s.read(&mut buf).unwrap();
    let fin = String::from_utf8_lossy(&buf[..n]).into_owned();
    assert!(fin.starts_with("HTTP/1.1 201"), "{fin}");
    // A doomed upload gets its final status without the body being sent.
    let head = "PUT /expect.txt HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n";
    let text = raw(a, head.as_bytes(), Duration::from_secs(10));
    assert_eq!(raw_status(&text), 401, "{text}");
}

#[test]
fn delete_mkcol_move_copy() {
    let server = TestServer::start();
    let a = server.http;
    rt().block_on(async {
        let r = send_admin(a, "MKCOL", "/d", &[], "").await;
        assert_eq!(r.status, StatusCode::CREATED);
        let r = send_admin(a, "MKCOL", "/d", &[], "").await;
        assert_eq!(
            r.status,
            StatusCode::METHOD_NOT_ALLOWED,
            "MKCOL on an existing path"
        );
        let r = send_admin(a, "MKCOL", "/x/y", &[], "").await;
        assert_eq!(r.status, StatusCode::CONFLICT, "MKCOL without a parent");

        send_admin(a, "PUT", "/d/f.txt", &[], "F").await;
        let r = send_admin(a, "DELETE", "/d", &[], "").await;
        assert_eq!(
            r.status,
            StatusCode::CONFLICT,
            "DELETE of a non-empty directory"
        );

        let r = send_admin(a, "MOVE", "/d/f.txt", &[("destination", "/g.txt")], "").await;
        assert_eq!(r.status, StatusCode::CREATED);
        assert_eq!(send_admin(a, "GET", "/g.txt", &[], "").await.text(), "F");
        assert_eq!(
            send_admin(a, "GET", "/d/f.txt", &[], "").await.status,
            StatusCode::NOT_FOUND
        );

        send_admin(a, "PUT", "/h.txt", &[], "H").await;
        let full_dest = format!("http://{a}/h.txt");
        let r = send_admin(
            a,
            "MOVE",
            "/g.txt",
            &[("destination", &full_dest), ("overwrite", "F")],
            "",
        )
        .await;
        assert_eq!(r.status, StatusCode::PRECONDITION_FAILED, "Overwrite: F");
        assert_eq!(send_admin(a, "GET", "/h.txt", &[], "").await.text(), "H");
        let r = send_admin(a, "MOVE", "/g.txt", &[("destination", &full_dest)], "").await;
        assert_eq!(
            r.status,
            StatusCode::NO_CONTENT,
            "MOVE over an existing file"
        );
        assert_eq!(send_admin(a, "GET", "/h.txt", &[], "").await.text(), "F");

        let r = send_admin(a, "COPY", "/h.txt", &[("destination", "/d/copy.txt")], "").await;
        assert_eq!(r.status, StatusCode::CREATED);
        assert_eq!(
            send_admin(a, "GET", "/d/copy.txt", &[], "").await.text(),
            "F"
        );
        assert_eq!(
            send_admin(a, "GET", "/h.txt", &[], "").await.text(),
            "F",
            "source stays"
        );
        let r = send_admin(a, "COPY", "/d", &[("destination", "/d2")], "").await;
        assert_eq!(r.status, StatusCode::CREATED, "COPY of a directory");
        assert_eq!(
            send_admin(a, "GET", "/d2/copy.txt", &[], "").await.text(),
            "F"
        );
        let r = send_admin(a, "MOVE", "/d", &[("destination", "/d/inside")], "").await;
        assert_eq!(r.status, StatusCode::CONFLICT, "into itself");
        let r = send_admin(a, "MOVE", "/h.txt", &[], "").await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "no Destination");

        let r = send_admin(a, "DELETE", "/d/copy.txt", &[], "").await;
        assert_eq!(r.status, StatusCode::NO_CONTENT);
        let r = send_admin(a, "DELETE", "/d", &[], "").await;
        assert_eq!(
            r.status,
            StatusCode::NO_CONTENT,
            "DELETE of an empty directory"
        );
        let r = send_admin(a, "DELETE", "/d", &[], "").await;
        assert_eq!(r.status, StatusCode::NOT_FOUND);
    });
}

#[test]
fn listings_json_and_html() {
    let server = TestServer::start();
    let a = server.http;
    rt().block_on(async {
        send_admin(a, "MKCOL", "/docs", &[], "").await;
        send_admin(a, "PUT", "/docs/a%20b.txt", &[], "12345").await;
        send_admin(a, "MKCOL", "/docs/sub", &[], "").await;
        let r = send_admin(a, "GET", "/docs", &[("accept", "application/json")], "").await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.header("content-type"), Some("application/json"));
        let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        let entries = v["entries"].as_array().unwrap();
        assert_eq!(entries.len(), 2);
        let f = &entries[0];
        assert_eq!(f["name"], "a b.txt");
        assert_eq!(f["kind"], "file");
        assert_eq!(f["size"], 5);
        assert!(f["modified"].as_str().unwrap().ends_with('Z'));
        assert!(f["etag"].as_str().unwrap().starts_with('"'));
        assert_eq!(entries[1]["kind"], "dir");

        let r = send_admin(a, "GET", "/docs/", &[("accept", "text/html")], "").await;
        assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
        let page = r.text();
        assert!(page.contains("href=\"/docs/a%20b.txt\""), "{page}");
        assert!(page.contains("href=\"/docs/sub/\""));
        assert!(page.contains("enctype=\"multipart/form-data\""));
        assert!(page.contains("<nav id=\"crumbs\">"));
    });
}

#[test]
fn authentication_and_tokens() {
    let server = TestServer::start();
    let a = server.http;
    rt().block_on(async {
        send_admin(a, "MKCOL", "/share", &[], "").await;
        send_admin(a, "PUT", "/share/s.txt", &[], "shared").await;
        send_admin(a, "PUT", "/secret.txt", &[], "secret").await;

        let r = send(a, "GET", "/secret.txt", &[], "").await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        let challenges: Vec<_> = r.headers.get_all("www-authenticate").iter().collect();
        assert!(challenges
            .iter()
            .any(|c| c.to_str().unwrap().starts_with("Basic ")));
        let bad = basic("admin", "wrong");
        let r = send(a, "GET", "/secret.txt", &[("authorization", &bad)], "").await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "wrong password");
        let r = send(
            a,
            "GET",
            "/secret.txt",
            &[("authorization", &basic("nobody", "x"))],
            "",
        )
        .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "unknown user");

        // A scoped, read-only token.
        let r = send_admin(
            a,
            "POST",
            "/_/token?ttl=10m&read_only=true&prefix=/share",
            &[],
            "",
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        let token = v["token"].as_str().unwrap().to_owned();
        let bearer = format!("Bearer {token}");
        let r = send(a, "GET", "/share/s.txt", &[("authorization", &bearer)], "").await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.text(), "shared");
        let r = send(a, "GET", "/secret.txt", &[("authorization", &bearer)], "").await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "outside the prefix");
        let r = send(a, "PUT", "/share/w.txt", &[("authorization", &bearer)], "w").await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "read-only");
        // As a share link.
        let r = send(a, "GET", &format!("/share/s.txt?token={token}"), &[], "").await;
        assert_eq!(r.status, StatusCode::OK);
        let r = send(
            a,
            "GET",
            &format!("/share/?token={token}"),
            &[("accept", "text/html")],
            "",
        )
        .await;
        assert!(
            r.text().contains(&format!("/share/s.txt?token={token}")),
            "links carry the token"
        );
        assert!(
            !r.text().contains("<form"),
            "no upload form for a read-only token"
        );
        // Tampered.
        let mut t2 = token.clone().into_bytes();
        let i = t2.len() - 3;
        t2[i] = if t2[i] == b'A' { b'B' } else { b'A' };
        let tampered = format!("Bearer {}", String::from_utf8(t2).unwrap());
        let r = send(
            a,
            "GET",
            "/share/s.txt",
            &[("authorization", &tampered)],
            "",
        )
        .await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        assert!(r
            .headers
            .get_all("www-authenticate")
            .iter()
            .any(|c| c.to_str().unwrap().contains("invalid_token")));
        // A token cannot mint tokens.
        let r = send(a, "POST", "/_/token", &[("authorization", &bearer)], "").await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
        // A writable token.
        let r = send_admin(a, "POST", "/_/token?ttl=60", &[], "").await;
        let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        let rw = format!("Bearer {}", v["token"].as_str().unwrap());
        let r = send(a, "PUT", "/share/w.txt", &[("authorization", &rw)], "w").await;
        assert_eq!(r.status, StatusCode::CREATED);
        let r = send_admin(a, "POST", "/_/token?ttl=999d", &[], "").await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "ttl over the cap");
    });
}

#[test]
fn permissions_and_anonymous() {
    // A read-only user and anonymous access, set up on the store before the server starts.
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = dir.path().join("filegate.toml");
    std::fs::write(&config, "[anonymous]\nenabled = true\nroot = \"/pub\"\n").unwrap();
    // With users already there, the server does not create admin: add both.
    for (name, perms, pw) in [
        ("admin", "all", crate::common::ADMIN_PASSWORD),
        ("reader", "read-only", "reader-pw"),
    ] {
        let ok = std::process::Command::new(crate::common::filegate_bin())
            .arg("--data-dir")
            .arg(&data)
            .args(["user", "add", name, "--perms", perms])
            .stdin(std::process::Stdio::piped())
            .spawn()
            .and_then(|mut c| {
                use std::io::Write;
                c.stdin
                    .take()
                    .unwrap()
                    .write_all(format!("{pw}\n").as_bytes())?;
                c.wait()
            })
            .unwrap();
        assert!(ok.success(), "filegate user add {name}");
    }
    let server = TestServer::start_with(ServerOptions {
        data_dir: Some(data),
        extra_args: vec!["--config".into(), config.display().to_string()],
        ..Default::default()
    });
    let a = server.http;
    rt().block_on(async {
        send_admin(a, "MKCOL", "/pub", &[], "").await;
        send_admin(a, "PUT", "/pub/p.txt", &[], "public").await;
        let reader = basic("reader", "reader-pw");
        let r = send(a, "GET", "/pub/p.txt", &[("authorization", &reader)], "").await;
        assert_eq!(r.status, StatusCode::OK);
        let r = send(a, "PUT", "/pub/q.txt", &[("authorization", &reader)], "x").await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "permission denial is 403");
        let r = send(a, "DELETE", "/pub/p.txt", &[("authorization", &reader)], "").await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
        // Anonymous: read-only, rooted at /pub.
        let r = send(a, "GET", "/p.txt", &[], "").await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.text(), "public");
        let r = send(a, "PUT", "/q.txt", &[], "x").await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
    });
}

#[test]
fn request_hygiene() {
    let server = TestServer::start();
    let a = server.http;
    let auth = admin_basic();
    let req = |text: String| raw_status(&raw(a, text.as_bytes(), Duration::from_secs(10)));
    assert_eq!(
        req(format!(
            "GET / HTTP/1.1\r\nAuthorization: {auth}\r\nConnection: close\r\n\r\n"
        )),
        400,
        "missing Host"
    );
    assert_eq!(
        req(format!("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\nAuthorization: {auth}\r\nConnection: close\r\n\r\n")),
        400,
        "duplicated Host"
    );
    let text = raw(
        a,
        b"BREW /pot HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
        Duration::from_secs(10),
    );
    assert_eq!(raw_status(&text), 405, "{text}");
    assert!(
        text.to_ascii_lowercase()
            .contains("\r\nallow: get, head, put"),
        "{text}"
    );
    // Traversal in any spelling never leaves the root.
    for path in [
        "/../etc/passwd",
        "/%2e%2e/etc/passwd",
        "/%2E%2E%2Fetc%2Fpasswd",
        "/a/..%2f..%2fetc",
        "/..%5c..%5cetc",
        "/a\\..\\..\\etc",
        "/a%00b",
        "/%ff",
    ] {
        let s = req(format!(
            "GET {path} HTTP/1.1\r\nHost: a\r\nAuthorization: {auth}\r\nConnection: close\r\n\r\n"
        ));
        assert!(s == 400 || s == 404, "{path}: {s}");
    }
    // Malformed requests get a 4xx and the server keeps serving.
    for junk in [
        &b"GARBAGE\r\n\r\n"[..],
        b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
        b"GET / HTTP/9.9\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\nBad Header\r\n\r\n",
    ] {
        let text = raw(a, junk, Duration::from_secs(10));
        let s = raw_status(&text);
        assert!(
            (400..500).contains(&s) || text.is_empty(),
            "{junk:?}: {text}"
        );
    }
    rt().block_on(async {
        let r = send_admin(a, "GET", "/_/health", &[], "").await;
        assert_eq!(r.status, StatusCode::OK, "still serving");
        let r = send(a, "OPTIONS", "/", &[], "").await;
        assert!(r.header("allow").unwrap().contains("MKCOL"));
    });
}

#[test]
fn health_and_metrics() {
    let server = TestServer::start();
    let a = server.http;
    rt().block_on(async {
        let r = send(a, "GET", "/_/health", &[], "").await;
        assert_eq!(r.status, StatusCode::OK);
        send_admin(a, "PUT", "/m.bin", &[], vec![1u8; 1000]).await;
        send_admin(a, "GET", "/m.bin", &[], "").await;
        let r = send(a, "GET", "/_/metrics", &[], "").await;
        assert_eq!(r.status, StatusCode::OK);
        let text = r.text();
        for needle in [
            "filegate_http_requests_total{method=\"PUT\",status=\"201\"} 1",
            "filegate_http_requests_total{method=\"GET\",status=\"200\"} 2",
            "filegate_http_received_bytes_total 1000",
            "filegate_http_connections ",
            "filegate_ftp_sessions ",
            "filegate_store_bytes 1000",
        ] {
            assert!(text.contains(needle), "{needle} missing in:\n{text}");
        }
        assert!(text.contains("filegate_http_sent_bytes_total "));
        let r = send(a, "POST", "/_/metrics", &[], "").await;
        assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
    });
}

#[test]
fn cli_tokens_and_revocation_survive_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let opts = || ServerOptions {
        data_dir: Some(data.clone()),
        ..Default::default()
    };
    let cli = |args: &[&str]| {
        let out = std::process::Command::new(crate::common::filegate_bin())
            .arg("--data-dir")
            .arg(&data)
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    // A token minted over HTTP before a restart still works after it (the key is in the store).
    let mut server = TestServer::start_with(opts());
    let minted = rt().block_on(async {
        send_admin(server.http, "PUT", "/f.txt", &[], "F").await;
        let r = send_admin(server.http, "POST", "/_/token?ttl=1h", &[], "").await;
        let v: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        v["token"].as_str().unwrap().to_owned()
    });
    server.stop();
    drop(server);
    let issued = cli(&[
        "token",
        "issue",
        "--user",
        "admin",
        "--ttl",
        "10m",
        "--read-only",
    ]);
    assert!(issued.starts_with("fgt1."), "{issued}");
    let server = TestServer::start_with(opts());
    rt().block_on(async {
        for t in [&minted, &issued] {
            let status = bearer_get(server.http, t).await;
            assert_eq!(status, StatusCode::OK, "token works across a restart");
        }
        let auth = format!("Bearer {issued}");
        let r = send(
            server.http,
            "PUT",
            "/g.txt",
            &[("authorization", &auth)],
            "g",
        )
        .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "--read-only");
    });
    let mut server = server;
    server.stop();
    drop(server);
    let out = cli(&["token", "revoke", "--user", "admin"]);
    assert!(out.contains("revoked"), "{out}");
    let server = TestServer::start_with(opts());
    rt().block_on(async {
        for t in [&minted, &issued] {
            let status = bearer_get(server.http, t).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "revoked");
        }
        let r = send_admin(server.http, "GET", "/f.txt", &[], "").await;
        assert_eq!(r.status, StatusCode::OK, "Basic still works");
    });
}

/// The status of `GET /f.txt` with `token` as the bearer.
async fn bearer_get(http: std::net::SocketAddr, token: &str) -> StatusCode {
    let auth = format!("Bearer {token}");
    send(http, "GET", "/f.txt", &[("authorization", &auth)], "")
        .await
        .status
}
