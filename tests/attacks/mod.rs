//! Attacks, each a test against a real server: FTP bounce is in `ftp`; here passive-port theft
//! from another address, traversal on both front ends, brute force, a connection flood, slow
//! clients, oversized input and clients that never read. The attacks themselves are in
//! `attacks.py` (raw sockets bound to 127.0.0.2 are simplest there).

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::common::{
    filegate_bin, require_tool, run_with_timeout, ServerOptions, TestServer, ADMIN_PASSWORD,
};

const CONFIG: &str = "\
[ftp]
max_connections_per_ip = 8
idle_timeout_secs = 5
data_timeout_secs = 5
failed_login_delay_ms = 100
max_login_failures = 3
login_block_secs = 600

[http]
header_read_timeout_secs = 3
keep_alive_idle_secs = 5
";

fn add_user(data: &Path, name: &str, home: &str) {
    let mut child = Command::new(filegate_bin())
        .arg("--data-dir")
        .arg(data)
        .args(["user", "add", name, "--home", home, "--perms", "all"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{name}-pw\n").as_bytes())
        .unwrap();
    assert!(child.wait().unwrap().success(), "user add {name}");
}

fn put(server: &TestServer, path: &str, file: &Path) {
    let (ok, _, err) = run_with_timeout(
        Command::new("curl")
            .args([
                "-sS",
                "-f",
                "--max-time",
                "60",
                "-u",
                &format!("admin:{ADMIN_PASSWORD}"),
                "-T",
            ])
            .arg(file)
            .arg(server.http_url(path)),
        Duration::from_secs(90),
    );
    assert!(ok, "upload {path}: {err}");
}

/// A server with ann and bob (bob holds a secret), ready for `attacks.py CHECK`.
fn attack(check: &str) {
    if !require_tool("python3") || !require_tool("curl") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // The admin is made first, so the server does not print a generated password.
    let config = dir.path().join("filegate.toml");
    std::fs::write(&config, CONFIG).unwrap();
    let mut first = Command::new(filegate_bin());
    first.arg("--data-dir").arg(&data).args(["user", "list"]);
    let _ = run_with_timeout(&mut first, Duration::from_secs(30));
    add_user(&data, "ann", "/users/ann");
    add_user(&data, "bob", "/users/bob");
    add_user(&data, "admin", "/");
    let server = TestServer::start_with(ServerOptions {
        data_dir: Some(data.clone()),
        extra_args: vec!["--config".into(), config.display().to_string()],
        ..ServerOptions::default()
    });
    let secret = dir.path().join("secret.txt");
    std::fs::write(&secret, b"bob's secret").unwrap();
    put(&server, "/users/bob/secret.txt", &secret);
    let big = dir.path().join("big.bin");
    std::fs::write(&big, vec![0x5a; 32 << 20]).unwrap();
    put(&server, "/users/ann/big.bin", &big);

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/attacks/attacks.py");
    let (ok, out, err) = run_with_timeout(
        Command::new("python3")
            .arg(&script)
            .arg(check)
            .arg(server.ftp.port().to_string())
            .arg(server.http.port().to_string())
            .arg(server.child.id().to_string()),
        Duration::from_secs(240),
    );
    assert!(
        ok && out.trim_end().ends_with("ok"),
        "{check}:\n{out}\n{err}"
    );
}

#[test]
fn passive_port_theft_from_another_address_is_refused() {
    attack("passive_port_theft");
}

#[test]
fn ftp_traversal_never_leaves_the_home() {
    attack("ftp_traversal");
}

#[test]
fn http_traversal_in_any_spelling_never_leaves_the_home() {
    attack("http_traversal");
}

#[test]
fn brute_force_blocks_the_address_not_the_user() {
    attack("brute_force");
}

#[test]
fn connection_flood_from_one_address_leaves_others_served() {
    attack("connection_flood");
}

#[test]
fn ftp_client_sending_a_byte_a_second_is_cut() {
    attack("ftp_slow_client");
}

#[test]
fn http_headers_a_byte_a_second_are_cut() {
    attack("http_slow_headers");
}

#[test]
fn ftp_line_of_a_mebibyte_gets_500() {
    attack("ftp_huge_line");
}

#[test]
fn http_oversized_headers_and_lengths_are_refused() {
    attack("http_oversized");
}

#[test]
fn clients_that_never_read_cost_bounded_memory() {
    attack("never_reads");
}
