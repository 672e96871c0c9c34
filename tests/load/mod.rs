//! Mixed load: FTP sessions and HTTP clients at once on overlapping paths (small numbers here;
//! `bench/load.sh` runs 500 + 500 for 60 s). Zero errors besides expected conflicts, and every
//! downloaded body is one complete uploaded version.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::common::{require_tool, run_with_timeout, TestServer, ADMIN_PASSWORD};

#[test]
fn mixed_ftp_and_http_load_has_no_errors_and_no_torn_files() {
    if !require_tool("python3") {
        return;
    }
    let server = TestServer::start();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/load/load.py");
    let (ok, out, err) = run_with_timeout(
        Command::new("python3").arg(&script).args([
            &server.ftp.port().to_string(),
            &server.http.port().to_string(),
            "admin",
            ADMIN_PASSWORD,
            "12",
            "12",
            "8",
            &server.child.id().to_string(),
        ]),
        Duration::from_secs(300),
    );
    assert!(ok, "load failed:\n{out}\n{err}");
    let totals: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    for key in ["uploads", "downloads", "lists", "renames"] {
        assert!(
            totals[key].as_u64().unwrap() > 0,
            "no {key} happened: {out}"
        );
    }
    assert_eq!(totals["errors"], 0, "{out}");
    assert_eq!(totals["bad_bodies"], 0, "{out}");
}
