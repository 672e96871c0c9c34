//! Store benchmark (issue 2): throughput through the `Storage` trait for one large file and
//! for many small ones, memory while reading a large file, and the cost of the content digest.
//!
//! Run it in a release build:
//! `cargo run --release -p filegate-bench --bin store -- [--quick] [--runs N] [--dir DIR]`.
//! See `bench/README.md` for what each part measures.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use clap::{Parser, ValueEnum};
use filegate_bench::{
    loadavg, max, mb_per_s, median, percentile_sorted, process_cpu, pseudo_random, rss_kib,
    set_phase, spread, start_watchdog, status_kib, table, thread_cpu, tick, DataPool, RssSampler,
    GIB, KIB, MIB,
};
use filegate_core::{Precondition, SledOptions, SledStore, Storage, VPath, WriteMode};
use futures::StreamExt;
use sha2::Digest as _;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Part {
    /// BLAKE3 vs SHA-256, CPU seconds per GiB.
    Digest,
    /// Write then read one large file (default 1 GiB).
    Big,
    /// Write then read many small files (default 10,000 x 4 KiB), plus a cost breakdown.
    Small,
    /// Resident memory while reading a 4 GiB file.
    Rss,
}

#[derive(Debug, Parser)]
#[command(about = "filegate store benchmark: throughput, memory and digest cost")]
struct Args {
    /// Directory the temporary stores go in (a fresh subdirectory, removed at the end).
    /// Default: the system temp dir (/tmp), i.e. the real disk.
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Runs per measurement; medians are reported (default 5, 3 with --quick).
    #[arg(long)]
    runs: Option<usize>,
    /// Smaller sizes and fewer runs: a smoke run of about a minute.
    #[arg(long)]
    quick: bool,
    /// Parts to run, comma-separated.
    /// `small` runs last by default: with several clients it can hit the sled 0.34.7 flush
    /// deadlock (see README), which ends the run.
    #[arg(long, value_delimiter = ',', default_values = ["digest", "big", "rss", "small"])]
    only: Vec<Part>,
    /// Size of the large file in MiB (default 1024, 256 with --quick).
    #[arg(long)]
    big_mib: Option<u64>,
    /// Upload chunk size in KiB for large bodies.
    #[arg(long, default_value_t = 1024)]
    chunk_kib: usize,
    /// Number of small files (default 10000, 2000 with --quick).
    #[arg(long)]
    small_count: Option<usize>,
    /// Size of each small file in bytes.
    #[arg(long, default_value_t = 4096)]
    small_size: usize,
    /// Concurrent clients for the small-file part, comma-separated (each a separate row). Not 8
    /// by default: 7 or more concurrent uploads can deadlock sled 0.34.7 (see README).
    #[arg(long, value_delimiter = ',', default_values_t = [1, 4])]
    concurrency: Vec<usize>,
    /// Size of the file read in the memory part, in GiB (default 4, 1 with --quick).
    #[arg(long)]
    rss_gib: Option<u64>,
    /// Bytes hashed per digest run, in MiB (default 1024, 256 with --quick).
    #[arg(long)]
    digest_mib: Option<u64>,
    /// Before each large-file read, write 1 to /proc/sys/vm/drop_caches (root only) so the read
    /// comes from disk. Off by default: the machine is shared and the page cache is everyone's.
    #[arg(long)]
    drop_caches: bool,
    /// Unreported runs before the measured ones of the large-file part. On this VM the first
    /// pass over fresh memory is several times slower (the host backs guest pages on first
    /// touch), which is not the store's doing.
    #[arg(long, default_value_t = 1)]
    warmup: usize,
    /// Keep the stores instead of deleting them.
    #[arg(long)]
    keep: bool,
    /// Give up (exit code 3) when no operation completes for this many seconds: a hung store.
    #[arg(long, default_value_t = 120)]
    stall_secs: u64,
    /// Print every RSS sample of the memory part.
    #[arg(long)]
    verbose: bool,
}

struct Config {
    runs: usize,
    warmup: usize,
    big: u64,
    chunk: usize,
    small_count: usize,
    small_size: usize,
    concurrency: Vec<usize>,
    rss: u64,
    digest: u64,
    drop_caches: bool,
    verbose: bool,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let q = args.quick;
    let cfg = Config {
        runs: args.runs.unwrap_or(if q { 3 } else { 5 }).max(1),
        warmup: args.warmup,
        big: args.big_mib.unwrap_or(if q { 256 } else { 1024 }) * MIB,
        chunk: args.chunk_kib.max(1) * KIB as usize,
        small_count: args.small_count.unwrap_or(if q { 2000 } else { 10_000 }),
        small_size: args.small_size,
        concurrency: args.concurrency.iter().map(|&c| c.max(1)).collect(),
        rss: args.rss_gib.unwrap_or(if q { 1 } else { 4 }) * GIB,
        digest: args.digest_mib.unwrap_or(if q { 256 } else { 1024 }) * MIB,
        drop_caches: args.drop_caches,
        verbose: args.verbose,
    };
    let parent = args.dir.clone().unwrap_or_else(std::env::temp_dir);
    std::fs::create_dir_all(&parent)?;
    let work = tempfile::Builder::new()
        .prefix("filegate-bench-")
        .tempdir_in(&parent)
        .with_context(|| format!("creating a work dir in {}", parent.display()))?;
    start_watchdog(
        Duration::from_secs(args.stall_secs.max(1)),
        Some(work.path().to_owned()),
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;

    println!("# filegate store benchmark\n");
    println!("- started: {}", now_utc());
    println!("- load average at start: {}", loadavg());
    println!(
        "- cpus: {}, store dir: {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        work.path().display()
    );
    println!(
        "- runs: {} (after {} warm-up run(s) for the large file); medians, with (min–max) over the runs\n",
        cfg.runs, cfg.warmup
    );

    let started = Instant::now();
    let mut result = Ok(());
    for part in &args.only {
        let r = match part {
            Part::Digest => digest(&cfg),
            Part::Big => big(&cfg, &rt, work.path()),
            Part::Small => small(&cfg, &rt, work.path()),
            Part::Rss => rss(&cfg, &rt, work.path()),
        };
        if let Err(e) = r {
            result = Err(e.context(format!("{part:?} part")));
            break;
        }
    }
    println!(
        "- finished: {} after {:.0} s; load average now: {}",
        now_utc(),
        started.elapsed().as_secs_f64(),
        loadavg()
    );
    if args.keep {
        let kept = work.keep();
        println!("- stores kept in {}", kept.display());
    }
    result
}

fn now_utc() -> String {
    std::process::Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M:%S UTC"])
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_owned())
        .unwrap_or_else(|| "?".into())
}

fn open(dir: &Path) -> Result<Arc<SledStore>> {
    let (store, _) = SledStore::open(dir, &SledOptions::default())
        .with_context(|| format!("opening a store in {}", dir.display()))?;
    Ok(Arc::new(store))
}

/// Drops the store (sled flushes and releases its lock on drop) and deletes its directory.
fn close_and_remove(store: Arc<SledStore>, dir: &Path) -> Result<()> {
    drop(store);
    std::fs::remove_dir_all(dir).with_context(|| format!("removing {}", dir.display()))
}

fn drop_page_cache() -> Result<()> {
    std::process::Command::new("sync").status()?;
    std::fs::write("/proc/sys/vm/drop_caches", "1")
        .context("--drop-caches needs root and a writable /proc/sys/vm/drop_caches")
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

// ---------------------------------------------------------------------------------------------
// Digest: BLAKE3 vs SHA-256.

fn digest(cfg: &Config) -> Result<()> {
    const CHUNK: usize = MIB as usize;
    // 64 MiB of data, cycled: bigger than the caches, so this is not a hot-L2 figure.
    let data = pseudo_random(64 * MIB as usize, 7);
    let chunks = cfg.digest / MIB;
    let gib = cfg.digest as f64 / GIB as f64;
    let mut cpu_b = Vec::new();
    let mut cpu_s = Vec::new();
    let mut sink = 0u8;
    let hash_blake3 = |sink: &mut u8| -> Result<Duration> {
        let c0 = thread_cpu()?;
        let mut h = blake3::Hasher::new();
        for i in 0..chunks as usize {
            let off = (i * CHUNK) % data.len();
            h.update(&data[off..off + CHUNK]);
            tick();
        }
        *sink ^= h.finalize().as_bytes()[0];
        Ok(thread_cpu()? - c0)
    };
    let hash_sha256 = |sink: &mut u8| -> Result<Duration> {
        let c0 = thread_cpu()?;
        let mut h = sha2::Sha256::new();
        for i in 0..chunks as usize {
            let off = (i * CHUNK) % data.len();
            h.update(&data[off..off + CHUNK]);
            tick();
        }
        *sink ^= h.finalize()[0];
        Ok(thread_cpu()? - c0)
    };
    set_phase("digest");
    for run in 0..cfg.runs {
        // Alternate the order so neither always runs on a warmer (or throttled) core.
        if run % 2 == 0 {
            cpu_b.push(secs(hash_blake3(&mut sink)?) / gib);
            cpu_s.push(secs(hash_sha256(&mut sink)?) / gib);
        } else {
            cpu_s.push(secs(hash_sha256(&mut sink)?) / gib);
            cpu_b.push(secs(hash_blake3(&mut sink)?) / gib);
        }
    }
    std::hint::black_box(sink);
    let gbps = |v: &[f64]| GIB as f64 / median(v) / 1e9;
    println!(
        "## Digest: one thread, {} MiB in 1 MiB chunks per run\n",
        cfg.digest / MIB
    );
    println!(
        "{}",
        table(
            &["digest", "CPU s per GiB", "GB/s per core (median)"],
            &[
                vec![
                    "BLAKE3 (blake3 crate)".into(),
                    spread(&cpu_b, 3),
                    format!("{:.2}", gbps(&cpu_b)),
                ],
                vec![
                    "SHA-256 (sha2 crate)".into(),
                    spread(&cpu_s, 3),
                    format!("{:.2}", gbps(&cpu_s)),
                ],
            ],
        )
    );
    println!(
        "SHA-256 / BLAKE3 CPU ratio (medians): {:.2}x; CPU flags: {}\n",
        median(&cpu_s) / median(&cpu_b),
        cpu_flags()
    );
    Ok(())
}

/// The x86 flags the two hashes pick their code paths by.
fn cpu_flags() -> String {
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let flags: Vec<&str> = info
        .lines()
        .find(|l| l.starts_with("flags"))
        .map(|l| l.split_whitespace().collect())
        .unwrap_or_default();
    ["sse4_1", "avx2", "avx512f", "avx512vl", "sha_ni"]
        .iter()
        .filter(|f| flags.contains(f))
        .copied()
        .collect::<Vec<_>>()
        .join(" ")
}

// ---------------------------------------------------------------------------------------------
// One large file.

fn big(cfg: &Config, rt: &tokio::runtime::Runtime, work: &Path) -> Result<()> {
    let pool = DataPool::new(cfg.chunk);
    let expected = pool.blake3(cfg.big, cfg.chunk);
    let gib = cfg.big as f64 / GIB as f64;
    let path = VPath::parse("/big.bin")?;
    let (mut w_mbs, mut r_mbs, mut w_cpu, mut r_cpu) = (vec![], vec![], vec![], vec![]);
    let (mut raw_w, mut raw_r) = (vec![], vec![]);
    for run in 0..cfg.warmup + cfg.runs {
        let warm = run < cfg.warmup;
        set_phase(&format!("big file, run {run}"));
        let dir = work.join(format!("big-{run}"));
        let store = open(&dir)?;
        let (w, wc) = rt.block_on(async {
            let c0 = process_cpu()?;
            let t0 = Instant::now();
            let out = store
                .write(
                    &path,
                    WriteMode::Replace,
                    Precondition::None,
                    pool.body(cfg.big, cfg.chunk),
                )
                .await?;
            let t = t0.elapsed();
            let c = process_cpu()? - c0;
            ensure!(out.entry.size == cfg.big, "stored {} bytes", out.entry.size);
            ensure!(out.entry.digest == Some(expected), "digest mismatch");
            anyhow::Ok((t, c))
        })?;
        if cfg.drop_caches {
            drop_page_cache()?;
        }
        let (r, rc) = rt.block_on(async {
            let c0 = process_cpu()?;
            let t0 = Instant::now();
            let mut h = store.read(&path, 0, None).await?;
            let mut n = 0u64;
            while let Some(chunk) = h.body.next().await {
                n += chunk?.len() as u64;
                tick();
            }
            let t = t0.elapsed();
            let c = process_cpu()? - c0;
            ensure!(n == cfg.big, "read {n} bytes");
            anyhow::Ok((t, c))
        })?;
        close_and_remove(store, &dir)?;
        // The same bytes with plain std::fs: write + fdatasync, then read, as the disk's ceiling.
        let (rw, rr) = raw_big(cfg, &pool, &work.join(format!("raw-{run}")))?;
        let (w, r, rw, rr) = (
            mb_per_s(cfg.big, secs(w)),
            mb_per_s(cfg.big, secs(r)),
            mb_per_s(cfg.big, secs(rw)),
            mb_per_s(cfg.big, secs(rr)),
        );
        eprintln!(
            "big run {run}{}: store write {w:.0} MB/s ({:.2} CPU s/GiB), read {r:.0} MB/s ({:.2} CPU s/GiB); raw write {rw:.0}, read {rr:.0}",
            if warm { " (warm-up, not counted)" } else { "" },
            secs(wc) / gib,
            secs(rc) / gib,
        );
        if warm {
            continue;
        }
        w_mbs.push(w);
        r_mbs.push(r);
        w_cpu.push(secs(wc) / gib);
        r_cpu.push(secs(rc) / gib);
        raw_w.push(rw);
        raw_r.push(rr);
    }
    let cache = if cfg.drop_caches {
        "page cache dropped before each read"
    } else {
        "reads right after the write, so mostly from the page cache"
    };
    println!(
        "## One {} MiB file, {} KiB upload chunks ({cache})\n",
        cfg.big / MIB,
        cfg.chunk / KIB as usize
    );
    println!(
        "{}",
        table(
            &["", "MB/s", "process CPU s per GiB"],
            &[
                vec!["store write".into(), spread(&w_mbs, 0), spread(&w_cpu, 2)],
                vec!["store read".into(), spread(&r_mbs, 0), spread(&r_cpu, 2)],
                vec![
                    "plain std::fs write + fdatasync (baseline)".into(),
                    spread(&raw_w, 0),
                    "".into()
                ],
                vec![
                    "plain std::fs read (baseline)".into(),
                    spread(&raw_r, 0),
                    "".into()
                ],
            ],
        )
    );
    Ok(())
}

fn raw_big(cfg: &Config, pool: &DataPool, dir: &Path) -> Result<(Duration, Duration)> {
    use std::io::Read;
    std::fs::create_dir_all(dir)?;
    let path = dir.join("big.bin");
    let t0 = Instant::now();
    let mut f = File::create(&path)?;
    for p in pool.pieces(cfg.big, cfg.chunk) {
        f.write_all(&p)?;
        tick();
    }
    f.sync_data()?;
    drop(f);
    let w = t0.elapsed();
    if cfg.drop_caches {
        drop_page_cache()?;
    }
    let t0 = Instant::now();
    let mut f = File::open(&path)?;
    let mut buf = vec![0u8; 256 * KIB as usize];
    let mut n = 0u64;
    loop {
        let k = f.read(&mut buf)?;
        if k == 0 {
            break;
        }
        n += k as u64;
        tick();
    }
    let r = t0.elapsed();
    ensure!(n == cfg.big, "raw read {n} bytes");
    std::fs::remove_dir_all(dir)?;
    Ok((w, r))
}

// ---------------------------------------------------------------------------------------------
// Many small files.

/// Per-op latencies (ms, sorted), wall time and process CPU of one phase.
struct Phase {
    lat: Vec<f64>,
    wall: Duration,
    cpu: Duration,
}

impl Phase {
    fn ops_per_s(&self) -> f64 {
        self.lat.len() as f64 / secs(self.wall)
    }
    fn p(&self, p: f64) -> f64 {
        percentile_sorted(&self.lat, p)
    }
    fn cpu_us_per_op(&self) -> f64 {
        secs(self.cpu) * 1e6 / self.lat.len() as f64
    }
}

/// Runs `op(i)` for i in 0..n on `conc` tasks, timing each op.
async fn phase<F, Fut>(n: usize, conc: usize, op: F) -> Result<Phase>
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<()>> + Send,
{
    let op = Arc::new(op);
    let c0 = process_cpu()?;
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for k in 0..conc {
        let op = Arc::clone(&op);
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(n / conc + 1);
            for i in (k..n).step_by(conc) {
                let t = Instant::now();
                op(i).await?;
                lat.push(ms(t.elapsed()));
                tick();
            }
            anyhow::Ok(lat)
        }));
    }
    let mut lat = Vec::with_capacity(n);
    for t in tasks {
        lat.extend(t.await??);
    }
    let wall = t0.elapsed();
    let cpu = process_cpu()? - c0;
    lat.sort_by(f64::total_cmp);
    Ok(Phase { lat, wall, cpu })
}

#[derive(Default)]
struct Series {
    ops: Vec<f64>,
    p50: Vec<f64>,
    p99: Vec<f64>,
    cpu: Vec<f64>,
}

impl Series {
    fn push(&mut self, p: &Phase) {
        self.ops.push(p.ops_per_s());
        self.p50.push(p.p(50.0));
        self.p99.push(p.p(99.0));
        self.cpu.push(p.cpu_us_per_op());
    }
    fn row(&self, name: String) -> Vec<String> {
        let cell = |v: &[f64], prec| {
            if v.is_empty() {
                String::new()
            } else {
                spread(v, prec)
            }
        };
        vec![
            name,
            cell(&self.ops, 0),
            cell(&self.p50, 3),
            cell(&self.p99, 3),
            cell(&self.cpu, 0),
        ]
    }
}

fn small(cfg: &Config, rt: &tokio::runtime::Runtime, work: &Path) -> Result<()> {
    let n = cfg.small_count;
    let size = cfg.small_size;
    let pool = DataPool::new(size);
    let mut rows = Vec::new();
    let mut parts: Vec<(String, Series)> = Vec::new();
    for &conc in &cfg.concurrency {
        let (mut ws, mut rs) = (Series::default(), Series::default());
        // No warm-up here: small files barely touch fresh memory, and a run costs a minute
        // when the shared disk is busy.
        for run in 0..cfg.runs {
            set_phase(&format!("small files, {conc} client(s), run {run}"));
            let dir = work.join(format!("small-{conc}-{run}"));
            let store = open(&dir)?;
            let (w, r) = rt.block_on(async {
                store.mkdir(&VPath::parse("/s")?).await?;
                let st = Arc::clone(&store);
                let pl = pool.clone();
                let w = phase(n, conc, move |i| {
                    let st = Arc::clone(&st);
                    let body = filegate_core::body_from_bytes(pl.chunk(i as u64, size, size));
                    async move {
                        let p = VPath::parse(&format!("/s/f{i:06}"))?;
                        st.write(&p, WriteMode::Replace, Precondition::None, body)
                            .await?;
                        Ok(())
                    }
                })
                .await?;
                let st = Arc::clone(&store);
                let r = phase(n, conc, move |i| {
                    let st = Arc::clone(&st);
                    async move {
                        let p = VPath::parse(&format!("/s/f{i:06}"))?;
                        let h = st.read(&p, 0, None).await?;
                        let body = filegate_core::read_to_vec(h.body).await?;
                        ensure!(body.len() == size, "read {} bytes", body.len());
                        Ok(())
                    }
                })
                .await?;
                anyhow::Ok((w, r))
            })?;
            ws.push(&w);
            rs.push(&r);
            eprintln!(
                "small c={conc} run {run}: write {:.0} files/s (p50 {:.3} ms, p99 {:.3} ms), read {:.0} files/s",
                w.ops_per_s(),
                w.p(50.0),
                w.p(99.0),
                r.ops_per_s()
            );
            if conc == 1 {
                breakdown(cfg, rt, &store, &dir, run, &mut parts)?;
            }
            close_and_remove(store, &dir)?;
        }
        rows.push(ws.row(format!("write, {conc} client(s)")));
        rows.push(rs.row(format!("read, {conc} client(s)")));
    }
    println!("## {n} files of {size} bytes (reads right after the writes, from the page cache)\n");
    println!(
        "{}",
        table(
            &["", "files/s", "p50 ms", "p99 ms", "process CPU µs/op"],
            &rows
        )
    );
    if !parts.is_empty() {
        println!(
            "### Where a small write's time goes (one client, {} ops per run)\n",
            n.min(BREAKDOWN_OPS)
        );
        let rows: Vec<Vec<String>> = parts.iter().map(|(name, s)| s.row(name.clone())).collect();
        println!(
            "{}",
            table(
                &["step", "ops/s", "p50 ms", "p99 ms", "process CPU µs/op"],
                &rows
            )
        );
    }
    Ok(())
}

const BREAKDOWN_OPS: usize = 1000;
/// How the rows of sub-steps in the breakdown start.
const SUBSTEP: &str = "  of which";

/// Times the pieces a small upload is made of, separately: the blob file's durable write
/// (what `blobs.rs` does: temp file, write, fdatasync, rename, fsync of the shard directory),
/// and one sled transaction plus flush, through `mkdir` (which commits and flushes but has no
/// blob), then `stat` (a lookup only).
fn breakdown(
    cfg: &Config,
    rt: &tokio::runtime::Runtime,
    store: &Arc<SledStore>,
    dir: &Path,
    run: usize,
    parts: &mut Vec<(String, Series)>,
) -> Result<()> {
    let n = cfg.small_count.min(BREAKDOWN_OPS);
    let size = cfg.small_size;
    let pool = DataPool::new(size);
    let raw = dir.join("raw");
    let tmp = raw.join("tmp");
    std::fs::create_dir_all(&tmp)?;
    let mut results: Vec<(String, Phase)> = Vec::new();

    // The blob pattern, step by step, on this thread (the store runs it on the blocking pool).
    let mut steps: [Vec<f64>; 3] = Default::default();
    let c0 = process_cpu()?;
    let t0 = Instant::now();
    for i in 0..n {
        let data = pool.chunk(i as u64 + 1_000_000, size, size);
        let shard = raw.join(format!("{:02x}", i & 0xff));
        let t = Instant::now();
        let mut f = tempfile::Builder::new().prefix("up-").tempfile_in(&tmp)?;
        f.as_file_mut().write_all(&data)?;
        let t1 = Instant::now();
        f.as_file().sync_data()?;
        let t2 = Instant::now();
        std::fs::create_dir_all(&shard)?;
        f.persist(shard.join(format!("{i:016x}")))?;
        File::open(&shard)?.sync_all()?;
        let t3 = Instant::now();
        steps[0].push(ms(t1 - t));
        steps[1].push(ms(t2 - t1));
        steps[2].push(ms(t3 - t2));
        tick();
    }
    let wall = t0.elapsed();
    let cpu = process_cpu()? - c0;
    let mut total: Vec<f64> = (0..n)
        .map(|i| steps[0][i] + steps[1][i] + steps[2][i])
        .collect();
    total.sort_by(f64::total_cmp);
    results.push((
        "blob file alone: create + write + fdatasync + rename + fsync dir".into(),
        Phase {
            lat: total,
            wall,
            cpu,
        },
    ));
    let names = [
        "  of which: create temp file + write",
        "  of which: fdatasync",
        "  of which: rename + fsync shard dir",
    ];
    for (name, mut lat) in names.iter().zip(steps) {
        lat.sort_by(f64::total_cmp);
        let sum: f64 = lat.iter().sum();
        results.push((
            (*name).into(),
            Phase {
                lat,
                wall: Duration::from_secs_f64(sum / 1e3),
                cpu: Duration::ZERO,
            },
        ));
    }

    let (mk, st) = rt.block_on(async {
        store.mkdir(&VPath::parse("/m")?).await?;
        let s = Arc::clone(store);
        let mk = phase(n, 1, move |i| {
            let s = Arc::clone(&s);
            async move {
                s.mkdir(&VPath::parse(&format!("/m/d{i:06}"))?).await?;
                Ok(())
            }
        })
        .await?;
        let s = Arc::clone(store);
        let st = phase(n, 1, move |i| {
            let s = Arc::clone(&s);
            async move {
                s.stat(&VPath::parse(&format!("/m/d{i:06}"))?).await?;
                Ok(())
            }
        })
        .await?;
        anyhow::Ok((mk, st))
    })?;
    results.push(("store mkdir: sled transaction + flush, no blob".into(), mk));
    results.push(("store stat: sled lookup only".into(), st));

    if parts.is_empty() {
        parts.extend(results.iter().map(|(n, _)| (n.clone(), Series::default())));
    }
    for ((name, series), (_, p)) in parts.iter_mut().zip(&results) {
        series.push(p);
        if name.starts_with(SUBSTEP) {
            // Sub-steps have latencies only: no wall time or CPU figure of their own.
            series.ops.pop();
            series.cpu.pop();
        }
    }
    eprintln!(
        "small breakdown run {run}: blob file p50 {:.3} ms, mkdir p50 {:.3} ms",
        results[0].1.p(50.0),
        results[4].1.p(50.0)
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Memory while reading a large file.

fn rss(cfg: &Config, rt: &tokio::runtime::Runtime, work: &Path) -> Result<()> {
    let pool = DataPool::new(cfg.chunk);
    set_phase("memory while reading");
    let dir = work.join("rss");
    let store = open(&dir)?;
    let path = VPath::parse("/huge.bin")?;
    let period = Duration::from_millis(100);

    let start_w = rss_kib()?;
    let sampler = RssSampler::start(period);
    let t0 = Instant::now();
    rt.block_on(store.write(
        &path,
        WriteMode::Replace,
        Precondition::None,
        pool.body(cfg.rss, cfg.chunk),
    ))?;
    let wt = t0.elapsed();
    let end_w = rss_kib()?;
    let w_samples = sampler.stop();

    let start_r = rss_kib()?;
    let hwm_before = status_kib("VmHWM")?;
    let sampler = RssSampler::start(period);
    let t0 = Instant::now();
    let n = rt.block_on(async {
        let mut h = store.read(&path, 0, None).await?;
        let mut n = 0u64;
        while let Some(chunk) = h.body.next().await {
            n += chunk?.len() as u64;
            tick();
        }
        anyhow::Ok(n)
    })?;
    let rt_ = t0.elapsed();
    let end_r = rss_kib()?;
    let r_samples = sampler.stop();
    let hwm_after = status_kib("VmHWM")?;
    if n != cfg.rss {
        bail!("read {n} of {} bytes", cfg.rss);
    }
    close_and_remove(store, &dir)?;

    if cfg.verbose {
        for (name, s) in [("write", &w_samples), ("read", &r_samples)] {
            let series: Vec<String> = s
                .iter()
                .map(|(t, k)| format!("{:.1}s:{}", t.as_secs_f64(), k / 1024))
                .collect();
            eprintln!("rss MiB during {name}: {}", series.join(" "));
        }
    }
    let mib = |k: u64| format!("{:.1}", k as f64 / 1024.0);
    let peak = |s: &[(Duration, u64)]| s.iter().map(|&(_, k)| k).max().unwrap_or(0);
    let row = |name: &str, start: u64, s: &[(Duration, u64)], end: u64, t: Duration| {
        let peak = peak(s).max(end);
        vec![
            name.to_owned(),
            mib(start),
            mib(peak),
            mib(end),
            format!("{:+.1}", (peak as f64 - start as f64) / 1024.0),
            s.len().to_string(),
            format!("{:.0}", mb_per_s(cfg.rss, secs(t))),
        ]
    };
    println!(
        "## Memory (VmRSS, sampled every {} ms) with one {} GiB file\n",
        period.as_millis(),
        cfg.rss / GIB
    );
    println!(
        "{}",
        table(
            &[
                "phase",
                "RSS start MiB",
                "RSS max MiB",
                "RSS end MiB",
                "growth MiB",
                "samples",
                "MB/s",
            ],
            &[
                row("write", start_w, &w_samples, end_w, wt),
                row("read", start_r, &r_samples, end_r, rt_),
            ],
        )
    );
    println!(
        "VmHWM (peak RSS of the process so far) before the read {} MiB, after {} MiB\n",
        mib(hwm_before),
        mib(hwm_after)
    );
    // Flat means within a few MiB; say so plainly in the output.
    let growth = max(&r_samples
        .iter()
        .map(|&(_, k)| k as f64 - start_r as f64)
        .collect::<Vec<_>>());
    println!(
        "Read phase: RSS {} (max growth {:.1} MiB over {} GiB read)\n",
        if growth <= 8.0 * 1024.0 {
            "flat"
        } else {
            "NOT flat"
        },
        growth / 1024.0,
        cfg.rss / GIB
    );
    Ok(())
}
