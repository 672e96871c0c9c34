//! SIGKILL a process that is uploading and overwriting files, reopen the store, and check that
//! every file is exactly one complete version, that every upload the process reported as stored
//! survived, and that no orphaned blob or temporary file remains. Repeated several times on
//! the same store.
//!
//! The child is this same test binary, re-executed with `FILEGATE_CRASH_CHILD` set.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use filegate_core::{
    body_from_bytes, read_to_vec, Precondition, SledOptions, SledStore, Storage, VPath, WriteMode,
};
use rand::{Rng, SeedableRng};

const CHILD_ENV: &str = "FILEGATE_CRASH_CHILD";
const FILES: u64 = 12;
const WRITERS: u64 = 3;
const KILLS: usize = 8;

/// The content of version `generation` of file `file`: a header naming both, then bytes that
/// follow from them, of a size that also follows from them (0 to ~600 KiB).
fn content(file: u64, generation: u64) -> Vec<u8> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(file.wrapping_mul(1_000_003) ^ generation);
    let len = match rng.gen_range(0..4) {
        0 => rng.gen_range(0..100),
        1 => rng.gen_range(0..70_000),
        _ => rng.gen_range(0..600_000),
    };
    let mut out = Vec::with_capacity(16 + len);
    out.extend_from_slice(&file.to_be_bytes());
    out.extend_from_slice(&generation.to_be_bytes());
    out.extend((0..len).map(|_| rng.gen::<u8>()));
    out
}

fn path_of(file: u64) -> VPath {
    VPath::parse(&format!("/dir{}/f{file}", file % 3)).unwrap_or_else(|e| panic!("{e}"))
}

fn open(dir: &Path) -> SledStore {
    open_with_report(dir).0
}

fn open_with_report(dir: &Path) -> (SledStore, filegate_core::OpenReport) {
    SledStore::open(dir, &SledOptions::default())
        .unwrap_or_else(|e| panic!("open {}: {e}", dir.display()))
}

/// The child: writers overwrite their files in a loop and print `done FILE GEN` once the store
/// has reported the upload stored. Runs until killed.
async fn child(dir: &Path, start_generation: u64) {
    let store = std::sync::Arc::new(open(dir));
    for d in 0..3 {
        let _ = store
            .mkdir(&VPath::parse(&format!("/dir{d}")).unwrap_or_else(|e| panic!("{e}")))
            .await;
    }
    println!("ready");
    let mut tasks = Vec::new();
    for w in 0..WRITERS {
        let store = std::sync::Arc::clone(&store);
        tasks.push(tokio::spawn(async move {
            let mut generation = start_generation;
            loop {
                for file in (w..FILES).step_by(WRITERS as usize) {
                    let data = content(file, generation);
                    store
                        .write(
                            &path_of(file),
                            WriteMode::Replace,
                            Precondition::None,
                            body_from_bytes(data),
                        )
                        .await
                        .unwrap_or_else(|e| panic!("child write: {e}"));
                    let mut out = std::io::stdout().lock();
                    let _ = writeln!(out, "done {file} {generation}");
                    let _ = out.flush();
                }
                generation += 1;
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
}

#[test]
fn sigkill_during_uploads_loses_nothing() {
    if let Ok(dir) = std::env::var(CHILD_ENV) {
        let start: u64 = std::env::var("FILEGATE_CRASH_GEN")
            .ok()
            .and_then(|g| g.parse().ok())
            .unwrap_or(0);
        let rt = tokio::runtime::Runtime::new().unwrap_or_else(|e| panic!("{e}"));
        rt.block_on(child(Path::new(&dir), start));
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut rng = rand::thread_rng();
    // Highest generation each file was reported stored at, over all runs.
    let mut reported: HashMap<u64, u64> = HashMap::new();
    let mut total_done = 0;
    let mut cleaned = 0;
    for round in 0..KILLS {
        let start_generation = (round as u64) * 1_000_000;
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "sigkill_during_uploads_loses_nothing",
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, dir.path())
            .env("FILEGATE_CRASH_GEN", start_generation.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        // Wait until the child has the store open, then kill it at a random moment.
        // The harness may print its "test ... " prefix on the same line.
        let ready = rx.iter().take(1000).any(|l| l.ends_with("ready"));
        assert!(ready, "child did not start");
        std::thread::sleep(Duration::from_millis(rng.gen_range(100..1200)));
        child.kill().unwrap();
        let _ = child.wait();
        reader.join().unwrap();
        for line in rx.try_iter() {
            let mut parts = line.split_whitespace();
            if parts.next() != Some("done") {
                continue;
            }
            let file: u64 = parts.next().unwrap().parse().unwrap();
            let generation: u64 = parts.next().unwrap().parse().unwrap();
            let e = reported.entry(file).or_insert(generation);
            *e = (*e).max(generation);
            total_done += 1;
        }

        rt.block_on(async {
            let (store, report) = open_with_report(dir.path());
            cleaned += report.temp_files_removed + report.orphan_blobs_removed;
            let mut file_nodes = 0;
            for file in 0..FILES {
                let p = path_of(file);
                let h = match store.read(&p, 0, None).await {
                    Ok(h) => h,
                    Err(filegate_core::StoreError::NotFound) => {
                        assert!(!reported.contains_key(&file), "round {round}: {p} was reported stored but is gone");
                        continue;
                    }
                    Err(e) => panic!("round {round}: read {p}: {e}"),
                };
                file_nodes += 1;
                let digest = h.entry.digest;
                let data = read_to_vec(h.body).await.unwrap();
                assert!(data.len() >= 16, "round {round}: {p} is truncated ({} bytes)", data.len());
                let f = u64::from_be_bytes(data[..8].try_into().unwrap());
                let g = u64::from_be_bytes(data[8..16].try_into().unwrap());
                assert_eq!(f, file, "round {round}: {p} holds another file's bytes");
                assert!(data == content(f, g), "round {round}: {p} is not a complete version (gen {g})");
                assert_eq!(digest, Some(*blake3::hash(&data).as_bytes()), "round {round}: {p} digest");
                if let Some(&last) = reported.get(&file) {
                    assert!(g >= last, "round {round}: {p} went back to generation {g}, but {last} was reported stored");
                }
            }
            // No orphaned blob or temporary file is left once the store has opened.
            let blobs: usize = std::fs::read_dir(dir.path().join("blobs"))
                .unwrap()
                .map(|d| std::fs::read_dir(d.unwrap().path()).unwrap().count())
                .sum();
            assert_eq!(blobs, file_nodes, "round {round}: blob files vs files in the store");
            assert_eq!(std::fs::read_dir(dir.path().join("tmp")).unwrap().count(), 0);
            drop(store);
        });
    }
    eprintln!("crash test: {KILLS} kills, {total_done} uploads reported stored and checked, {cleaned} leftovers removed at open");
    assert!(
        total_done > 0,
        "the child never completed an upload: the test checked nothing"
    );
    assert!(
        cleaned > 0,
        "no kill landed mid-upload: the cleanup at open was never exercised"
    );
}
