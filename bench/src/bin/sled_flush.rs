//! Reproduces, with sled alone, the hang the store benchmark hit with 8 concurrent small
//! uploads: sled 0.34.7 transactions plus `flush_async` from several tasks at once stop for
//! good (every thread parked). Known upstream as sled issue 1308 (open; fixed only on sled's
//! unreleased main branch).
//!
//! The store's write path per upload is: one `Tree::transaction` that inserts the entry, then
//! `Db::flush_async().await`. This binary does exactly that from `--tasks` tasks, with
//! `--flush async` (what the store does) or `--flush blocking` (`Db::flush` on tokio's blocking
//! pool, the usual workaround), and reports whether it finished or hung.
//!
//! sled's concurrency control is process-global, so run one mode per process:
//! `cargo run --release -p filegate-bench --bin sled_flush -- --flush async`.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::{Parser, ValueEnum};
use filegate_bench::{set_phase, start_watchdog, tick};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Flush {
    /// `Db::flush_async().await`, as filegate-core's store does.
    Async,
    /// `Db::flush()` inside `tokio::task::spawn_blocking`.
    Blocking,
    /// No explicit flush (sled's own background flush only): the control.
    None,
}

#[derive(Debug, Parser)]
#[command(about = "sled 0.34.7: concurrent transaction + flush, does it hang?")]
struct Args {
    #[arg(long, value_enum, default_value = "async")]
    flush: Flush,
    /// Concurrent tasks, each doing transaction + flush in a loop.
    #[arg(long, default_value_t = 8)]
    tasks: usize,
    /// Total operations.
    #[arg(long, default_value_t = 50_000)]
    ops: usize,
    /// Directory for the temporary database (default: the system temp dir).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Seconds without progress that count as a hang (exit code 3).
    #[arg(long, default_value_t = 20)]
    stall_secs: u64,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let parent = args.dir.clone().unwrap_or_else(std::env::temp_dir);
    let work = tempfile::Builder::new()
        .prefix("filegate-sled-flush-")
        .tempdir_in(&parent)?;
    start_watchdog(
        Duration::from_secs(args.stall_secs.max(1)),
        Some(work.path().to_owned()),
    );
    set_phase(&format!(
        "{} tasks, transaction + flush ({:?})",
        args.tasks, args.flush
    ));
    // The store's settings (core/src/sled_store/mod.rs: open_sled).
    let db = sled::Config::new()
        .path(work.path().join("db"))
        .cache_capacity(64 * 1024 * 1024)
        .flush_every_ms(Some(1000))
        .open()
        .context("opening sled")?;
    let tree = db.open_tree("ns")?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let t0 = Instant::now();
    let tasks = args.tasks.max(1);
    let ops = args.ops;
    let flush = args.flush;
    rt.block_on(async {
        let mut handles = Vec::new();
        for k in 0..tasks {
            let db = db.clone();
            let tree = tree.clone();
            handles.push(tokio::spawn(async move {
                for i in (k..ops).step_by(tasks) {
                    let key = (i as u64).to_be_bytes();
                    tree.transaction(|tx| {
                        tx.insert(&key, &[7u8; 60][..])?;
                        Ok::<_, sled::transaction::ConflictableTransactionError<()>>(())
                    })
                    .map_err(|e| anyhow::anyhow!("transaction: {e:?}"))?;
                    match flush {
                        Flush::Async => {
                            db.flush_async().await?;
                        }
                        Flush::Blocking => {
                            let db = db.clone();
                            tokio::task::spawn_blocking(move || db.flush()).await??;
                        }
                        Flush::None => {}
                    }
                    tick();
                }
                anyhow::Ok(())
            }));
        }
        for h in handles {
            h.await??;
        }
        anyhow::Ok(())
    })?;
    let secs = t0.elapsed().as_secs_f64();
    println!(
        "finished: {ops} transactions + flush ({flush:?}) from {tasks} tasks in {secs:.1} s ({:.0} ops/s), no hang",
        ops as f64 / secs
    );
    Ok(())
}
