//! `filegate compare --embedded --quick`: every row of the table is there, measured, with
//! finite and plausible figures (not particular values: those depend on the machine).

use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::common::{filegate_bin, run_with_timeout};

/// Every row's number and a metric it must carry, with the range it must fall in.
const EXPECTED: [(u64, &str, f64, f64); 8] = [
    (1, "http_download_sent_bytes", 20.0, 10_000.0),
    (2, "ftp_seq_p50_ms", 0.0, 10_000.0),
    (3, "http_download_mb_per_sec", 0.1, 1e6),
    (4, "ftp_idle_kib_per_client", -1e6, 1e6),
    (5, "http_basic_cached_cpu_us", 0.0, 1e7),
    (6, "ftp_clients_logged_in_again", 0.0, 1000.0),
    (7, "http_bearer_refused_ms", 0.0, 10_000.0),
    (8, "http_alternating_requests", 1.0, 1e6),
];

#[test]
fn quick_embedded_run_reports_every_row() {
    let dir = tempfile::tempdir().unwrap();
    let md = dir.path().join("report.md");
    let svg = dir.path().join("chart.svg");
    let (ok, stdout, stderr) = run_with_timeout(
        Command::new(filegate_bin())
            .args([
                "compare",
                "--embedded",
                "--quick",
                "--json",
                "--no-progress",
            ])
            .arg("--out")
            .arg(&md)
            .arg("--svg")
            .arg(&svg)
            .env_remove("FILEGATE_CONFIG")
            .current_dir(dir.path()),
        Duration::from_secs(240),
    );
    assert!(ok, "compare failed\nstdout: {stdout}\nstderr: {stderr}");
    let report: Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}\nstderr: {stderr}"));
    assert_eq!(report["mode"], "embedded");
    assert_eq!(report["quick"], true);
    let rows = report["rows"].as_array().expect("rows");
    assert_eq!(rows.len(), 8, "{report:#}");
    for (row, (id, metric, lo, hi)) in rows.iter().zip(EXPECTED) {
        assert_eq!(row["id"].as_u64(), Some(id), "{row:#}");
        let verdict = row["verdict"].as_str().unwrap_or_default();
        assert!(
            ["holds", "does_not_hold", "mixed"].contains(&verdict),
            "row {id} not measured: {row:#}"
        );
        for side in ["claim", "ftp", "http", "why"] {
            let text = row[side].as_str().unwrap_or_default();
            assert!(!text.is_empty(), "row {id} has no {side}");
            assert!(!text.contains("NaN"), "row {id}: {side} says NaN: {text}");
        }
        let metrics = row["metrics"].as_object().expect("metrics");
        assert!(!metrics.is_empty(), "row {id} has no metrics");
        for (name, v) in metrics {
            // serde_json writes non-finite floats as null.
            let v = v
                .as_f64()
                .unwrap_or_else(|| panic!("row {id}: {name} is not a finite number: {v}"));
            assert!(v.is_finite(), "row {id}: {name} = {v}");
        }
        let v = metrics[metric].as_f64().expect(metric);
        assert!(
            (lo..=hi).contains(&v),
            "row {id}: {metric} = {v}, outside {lo}..={hi}"
        );
    }
    // Figures that must be positive wherever they are measured.
    let m = |id: usize, name: &str| rows[id - 1]["metrics"][name].as_f64().unwrap_or(-1.0);
    assert!(
        m(1, "ftp_download_round_trips") >= 2.0,
        "PASV + RETR at least"
    );
    assert_eq!(m(1, "http_download_round_trips"), 1.0);
    assert!(m(2, "http_seq_ops_per_sec") > 0.0);
    assert!(m(3, "ftp_upload_mb_per_sec") > 0.0);
    assert!(m(5, "ftp_login_cpu_us") > 0.0);
    assert_eq!(m(8, "http_errors"), 0.0);
    let markdown = std::fs::read_to_string(&md).unwrap();
    assert_eq!(
        markdown.matches("\n| ").count(),
        9,
        "header + 8 rows: {markdown}"
    );
    let chart = std::fs::read_to_string(&svg).unwrap();
    assert!(
        chart.starts_with("<svg") && chart.contains("<rect"),
        "{chart}"
    );
}
