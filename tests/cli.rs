//! The command line: configuration, user management, the store lock, shutdown.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::common::{filegate_bin, run_with_timeout, TestServer};

fn filegate(data_dir: &std::path::Path) -> Command {
    let mut c = Command::new(filegate_bin());
    c.arg("--data-dir")
        .arg(data_dir)
        .env_remove("FILEGATE_CONFIG");
    c
}

/// Runs filegate with `input` on stdin; returns (success, stdout, stderr).
fn with_stdin(cmd: &mut Command, input: &str) -> (bool, String, String) {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn config_merges_file_env_and_flags() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("filegate.toml");
    std::fs::write(
        &file,
        "grace_period_secs = 7\n[ftp]\naddr = \"127.0.0.1:2999\"\n[http]\naddr = \"127.0.0.1:8999\"\n",
    )
    .unwrap();
    let (ok, out, err) = run_with_timeout(
        Command::new(filegate_bin())
            .args(["config", "--config"])
            .arg(&file)
            .args(["--http-addr", "127.0.0.1:9001"])
            .env("FILEGATE_PASSIVE_PORTS", "40000-40010")
            .env("FILEGATE_ADMIN_PASSWORD", "secret-never-printed"),
        Duration::from_secs(30),
    );
    assert!(ok, "{err}");
    assert!(out.contains("grace_period_secs = 7"), "{out}");
    assert!(
        out.contains("addr = \"127.0.0.1:2999\""),
        "file value kept: {out}"
    );
    assert!(
        out.contains("addr = \"127.0.0.1:9001\""),
        "flag wins over file: {out}"
    );
    assert!(
        out.contains("passive_ports = \"40000-40010\""),
        "env applies: {out}"
    );
    assert!(
        !out.contains("secret-never-printed"),
        "passwords are not printed: {out}"
    );

    let (ok, out, _) = run_with_timeout(
        Command::new(filegate_bin()).arg("config"),
        Duration::from_secs(30),
    );
    assert!(ok);
    assert!(out.contains("data_dir = \"./filegate-data\""), "{out}");
    assert!(out.contains("addr = \"127.0.0.1:2121\""), "{out}");
    assert!(out.contains("addr = \"127.0.0.1:8080\""), "{out}");

    std::fs::write(&file, "grace_period_secs = \"soon\"\n").unwrap();
    let (ok, _, err) = run_with_timeout(
        Command::new(filegate_bin())
            .args(["config", "--config"])
            .arg(&file),
        Duration::from_secs(30),
    );
    assert!(!ok);
    assert!(err.contains("invalid config file"), "{err}");
}

#[test]
fn user_management_on_a_stopped_store() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (ok, out, err) = with_stdin(
        filegate(&data).args([
            "user",
            "add",
            "ann",
            "--home",
            "/users/ann",
            "--perms",
            "read-only",
        ]),
        "ann-pw\n",
    );
    assert!(ok, "{err}");
    assert!(out.contains("added user ann"), "{out}");
    let (ok, _, err) = with_stdin(filegate(&data).args(["user", "add", "ann"]), "x\n");
    assert!(!ok && err.contains("already exists"), "{err}");
    let (ok, _, err) = with_stdin(filegate(&data).args(["user", "add", "bad name"]), "x\n");
    assert!(!ok && err.contains("invalid user name"), "{err}");
    let (ok, _, err) = with_stdin(filegate(&data).args(["user", "add", "bob"]), "\n");
    assert!(!ok && err.contains("empty password"), "{err}");

    let (ok, out, _) = with_stdin(filegate(&data).args(["user", "list"]), "");
    assert!(ok);
    let ann = out
        .lines()
        .find(|l| l.starts_with("ann "))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(
        ann.contains("/users/ann") && ann.contains("list,read") && ann.contains("enabled"),
        "{ann}"
    );

    let (ok, out, err) = with_stdin(
        filegate(&data).args(["user", "grant", "ann", "read,write", "--disable"]),
        "",
    );
    assert!(ok, "{err}");
    assert!(
        out.contains("read,write") && out.contains("disabled"),
        "{out}"
    );
    let (ok, _, err) = with_stdin(filegate(&data).args(["user", "grant", "ann", "fly"]), "");
    assert!(!ok && err.contains("unknown permission"), "{err}");

    let (ok, _, err) = with_stdin(filegate(&data).args(["user", "passwd", "ann"]), "new-pw\n");
    assert!(ok, "{err}");
    let (ok, _, err) = with_stdin(filegate(&data).args(["user", "passwd", "zed"]), "x\n");
    assert!(!ok && err.contains("no user zed"), "{err}");

    let (ok, _, err) = with_stdin(filegate(&data).args(["user", "del", "ann"]), "");
    assert!(ok, "{err}");
    let (ok, out, _) = with_stdin(filegate(&data).args(["user", "list"]), "");
    assert!(ok && !out.contains("ann"), "{out}");
}

#[test]
fn first_start_creates_admin_and_the_store_is_locked_while_serving() {
    let mut server = TestServer::start();
    let data = server.data_dir();
    // A second process on the same store fails at once, with a message that says why.
    let (ok, _, err) = run_with_timeout(
        filegate(&data).args(["user", "list"]),
        Duration::from_secs(30),
    );
    assert!(!ok);
    assert!(err.contains("in use by another process"), "{err}");
    let (ok, _, err) = run_with_timeout(
        filegate(&data).args([
            "serve",
            "--ftp-addr",
            "127.0.0.1:0",
            "--http-addr",
            "127.0.0.1:0",
        ]),
        Duration::from_secs(30),
    );
    assert!(!ok);
    assert!(err.contains("in use by another process"), "{err}");

    // SIGTERM: a clean exit.
    let status = server.stop().expect("server exits within the bound");
    assert!(status.success(), "{status:?}");

    let (ok, out, _) = run_with_timeout(
        filegate(&data).args(["user", "list"]),
        Duration::from_secs(30),
    );
    assert!(ok);
    let admin = out
        .lines()
        .find(|l| l.starts_with("admin "))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(
        admin.contains("list,read,write,delete,mkdir,rename"),
        "{admin}"
    );
}

#[test]
fn generated_admin_password_is_printed_once() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let run = |data: &std::path::Path| {
        let mut child = filegate(data)
            .args([
                "serve",
                "--ftp-addr",
                "127.0.0.1:0",
                "--http-addr",
                "127.0.0.1:0",
            ])
            .env_remove("FILEGATE_ADMIN_PASSWORD")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let ready = std::thread::spawn(move || {
            use std::io::BufRead;
            std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
                .take(200)
                .find(|l| l.contains("filegate serving"))
        });
        let line = ready.join().unwrap();
        assert!(line.is_some(), "server started");
        // A pipe is not a terminal: plain text, no colour codes.
        assert!(
            !line.unwrap_or_default().contains('\x1b'),
            "no ANSI codes in a log file"
        );
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success());
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let first = run(&data);
    assert!(
        first.contains("created user admin with password "),
        "{first}"
    );
    let second = run(&data);
    assert!(!second.contains("password"), "printed only once: {second}");
}
