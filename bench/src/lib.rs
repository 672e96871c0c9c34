//! Helpers for filegate's benchmarks: CPU time and memory from `/proc`, summary statistics,
//! deterministic test data and markdown tables. The benchmarks themselves are in `src/bin/`.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::Bytes;
use filegate_core::BodyStream;

pub const KIB: u64 = 1024;
pub const MIB: u64 = 1024 * KIB;
pub const GIB: u64 = 1024 * MIB;

/// Clock ticks per second of the `utime`/`stime` fields of `/proc/*/stat`. Linux reports them in
/// USER_HZ, which is 100 on every architecture it runs on today (reading it properly needs
/// `sysconf`, i.e. libc and `unsafe`, which this workspace denies).
const USER_HZ: u64 = 100;

/// CPU time (user + system) of a `/proc/.../stat` file, in its 10 ms ticks.
fn stat_cpu(path: &str) -> anyhow::Result<Duration> {
    let text = std::fs::read_to_string(path)?;
    parse_stat_cpu(&text)
}

/// Parses utime + stime (fields 14 and 15) of a `/proc/*/stat` line. The second field (the
/// command) is in parentheses and may hold spaces, so fields are counted after the last ')'.
pub fn parse_stat_cpu(text: &str) -> anyhow::Result<Duration> {
    let rest = text
        .rsplit_once(')')
        .map(|(_, r)| r)
        .ok_or_else(|| anyhow::anyhow!("unexpected /proc stat format"))?;
    // `rest` starts at field 3 (state), so field N is at index N - 3.
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| -> anyhow::Result<u64> {
        Ok(fields
            .get(i)
            .ok_or_else(|| anyhow::anyhow!("short /proc stat line"))?
            .parse::<u64>()?)
    };
    let total = ticks(14 - 3)? + ticks(15 - 3)?;
    Ok(Duration::from_millis(total * 1000 / USER_HZ))
}

/// CPU time used so far by this whole process (all threads, live and exited), 10 ms resolution.
pub fn process_cpu() -> anyhow::Result<Duration> {
    stat_cpu("/proc/self/stat")
}

/// CPU time used so far by the calling thread, in nanoseconds (from `/proc/thread-self/schedstat`).
pub fn thread_cpu() -> anyhow::Result<Duration> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat")?;
    let ns: u64 = text
        .split_whitespace()
        .next()
        .ok_or_else(|| anyhow::anyhow!("empty schedstat"))?
        .parse()?;
    Ok(Duration::from_nanos(ns))
}

/// A field of `/proc/self/status` in KiB (`VmRSS`, `VmHWM`, ...).
pub fn status_kib(field: &str) -> anyhow::Result<u64> {
    let text = std::fs::read_to_string("/proc/self/status")?;
    parse_status_kib(&text, field)
}

pub fn parse_status_kib(text: &str, field: &str) -> anyhow::Result<u64> {
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix(field).and_then(|r| r.strip_prefix(':')) {
            let n = rest
                .split_whitespace()
                .next()
                .ok_or_else(|| anyhow::anyhow!("empty {field}"))?;
            return Ok(n.parse()?);
        }
    }
    anyhow::bail!("no {field} in /proc/self/status")
}

/// This process's resident set, in KiB.
pub fn rss_kib() -> anyhow::Result<u64> {
    status_kib("VmRSS")
}

/// Samples VmRSS on a thread of its own every `period` until stopped.
pub struct RssSampler {
    stop: Arc<AtomicBool>,
    handle: JoinHandle<Vec<(Duration, u64)>>,
}

impl RssSampler {
    pub fn start(period: Duration) -> RssSampler {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let handle = std::thread::spawn(move || {
            let t0 = Instant::now();
            let mut samples = Vec::new();
            loop {
                if let Ok(kib) = rss_kib() {
                    samples.push((t0.elapsed(), kib));
                }
                if flag.load(Ordering::Relaxed) {
                    return samples;
                }
                std::thread::sleep(period);
            }
        });
        RssSampler { stop, handle }
    }

    /// Stops sampling (taking one last sample) and returns the samples.
    pub fn stop(self) -> Vec<(Duration, u64)> {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.join().unwrap_or_default()
    }
}

/// Operations completed so far, for the watchdog.
static PROGRESS: AtomicU64 = AtomicU64::new(0);
/// What is running, for the watchdog's message.
static PHASE: Mutex<String> = Mutex::new(String::new());

/// Records that an operation (or a chunk of one) completed.
pub fn tick() {
    PROGRESS.fetch_add(1, Ordering::Relaxed);
}

/// Names what runs next, for the watchdog's message.
pub fn set_phase(name: &str) {
    if let Ok(mut p) = PHASE.lock() {
        name.clone_into(&mut p);
    }
    tick();
}

/// Ends the process with exit code 3 if no [`tick`] comes for `stall`: a hung store (a
/// deadlock) must fail the benchmark, not hang it. `cleanup` is removed first.
pub fn start_watchdog(stall: Duration, cleanup: Option<std::path::PathBuf>) {
    std::thread::spawn(move || {
        let mut last = PROGRESS.load(Ordering::Relaxed);
        let mut since = Instant::now();
        loop {
            std::thread::sleep(Duration::from_millis(500));
            let now = PROGRESS.load(Ordering::Relaxed);
            if now != last {
                last = now;
                since = Instant::now();
                continue;
            }
            if since.elapsed() >= stall {
                let phase = PHASE.lock().map(|p| p.clone()).unwrap_or_default();
                let msg = format!(
                    "STALL: nothing completed for {} s during \"{phase}\" (after {now} ops in all); \
                     the store is hung. Threads: {}",
                    stall.as_secs(),
                    thread_states()
                );
                println!("\n**{msg}**\n");
                eprintln!("{msg}");
                if let Some(dir) = &cleanup {
                    let _ = std::fs::remove_dir_all(dir);
                }
                std::process::exit(3);
            }
        }
    });
}

/// name:state:wchan of every thread of this process, from /proc (what a hang waits on).
pub fn thread_states() -> String {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return "?".into();
    };
    let mut out = Vec::new();
    for t in tasks.flatten() {
        let p = t.path();
        let comm = std::fs::read_to_string(p.join("comm")).unwrap_or_default();
        let wchan = std::fs::read_to_string(p.join("wchan")).unwrap_or_default();
        let state = std::fs::read_to_string(p.join("stat"))
            .ok()
            .and_then(|s| {
                s.rsplit_once(')')
                    .and_then(|(_, r)| r.split_whitespace().next().map(str::to_owned))
            })
            .unwrap_or_default();
        out.push(format!("{}:{state}:{}", comm.trim(), wchan.trim()));
    }
    out.sort();
    out.join(", ")
}

/// Median of `v` (mean of the two middle values for an even count); NaN if empty.
pub fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    match s.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => s[n / 2],
        n => (s[n / 2 - 1] + s[n / 2]) / 2.0,
    }
}

/// The `p`-th percentile (0..=100) by nearest rank of an ascending-sorted slice; NaN if empty.
pub fn percentile_sorted(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

pub fn min(v: &[f64]) -> f64 {
    v.iter().copied().fold(f64::INFINITY, f64::min)
}

pub fn max(v: &[f64]) -> f64 {
    v.iter().copied().fold(f64::NEG_INFINITY, f64::max)
}

/// "median (min–max)" of several runs, with `prec` decimals.
pub fn spread(v: &[f64], prec: usize) -> String {
    if v.len() < 2 {
        return format!("{:.prec$}", median(v));
    }
    format!("{:.prec$} ({:.prec$}–{:.prec$})", median(v), min(v), max(v))
}

/// A markdown table.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut out = format!("| {} |\n", headers.join(" | "));
    out.push_str(&format!(
        "|{}\n",
        headers.iter().map(|_| " --- |").collect::<String>()
    ));
    for r in rows {
        out.push_str(&format!("| {} |\n", r.join(" | ")));
    }
    out
}

/// Deterministic, incompressible-looking bytes (xorshift64*), so no layer can shortcut them.
pub fn pseudo_random(len: usize, seed: u64) -> Bytes {
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        out.extend_from_slice(&x.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes());
    }
    out.truncate(len);
    Bytes::from(out)
}

/// A pool of test data that large bodies are sliced from (slicing `Bytes` copies nothing), so a
/// 4 GiB upload is generated on the fly from 17 MiB.
#[derive(Clone)]
pub struct DataPool {
    data: Bytes,
}

/// Distinct chunk start offsets the pool cycles through.
const POOL_SPAN: u64 = 16 * MIB;

impl DataPool {
    pub fn new(max_chunk: usize) -> DataPool {
        DataPool {
            data: pseudo_random(POOL_SPAN as usize + max_chunk, 0x9e37_79b9_7f4a_7c15),
        }
    }

    /// Chunk `i` of a body cut in `chunk`-byte pieces, `len` bytes long (the last may be short).
    pub fn chunk(&self, i: u64, chunk: usize, len: usize) -> Bytes {
        // An odd multiplier so consecutive chunks and files start at different offsets.
        let start = ((i.wrapping_mul(chunk as u64 + 4099)) % POOL_SPAN) as usize;
        self.data.slice(start..start + len.min(chunk))
    }

    /// The pieces of a `total`-byte body in `chunk`-byte pieces.
    pub fn pieces(&self, total: u64, chunk: usize) -> impl Iterator<Item = Bytes> + Send + 'static {
        let pool = self.clone();
        let n = total.div_ceil(chunk as u64);
        (0..n).map(move |i| {
            let left = total - i * chunk as u64;
            pool.chunk(i, chunk, left.min(chunk as u64) as usize)
        })
    }

    /// A streaming upload body of `total` bytes, produced lazily.
    pub fn body(&self, total: u64, chunk: usize) -> BodyStream {
        Box::pin(futures::stream::iter(self.pieces(total, chunk).map(|p| {
            tick();
            Ok(p)
        })))
    }

    /// The BLAKE3 digest the store should record for [`DataPool::body`].
    pub fn blake3(&self, total: u64, chunk: usize) -> [u8; 32] {
        let mut h = blake3::Hasher::new();
        for p in self.pieces(total, chunk) {
            h.update(&p);
        }
        *h.finalize().as_bytes()
    }
}

/// Bytes per second as MB/s (10^6, like dd and most disk tools) and MiB/s.
pub fn mb_per_s(bytes: u64, secs: f64) -> f64 {
    bytes as f64 / secs / 1e6
}

/// `uptime`'s load averages, for the record.
pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_with_spaces_in_comm() {
        let line = "1234 (my (odd) cmd) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 37 0 0 20 0 3 0 5 1000 200 184467";
        assert_eq!(
            parse_stat_cpu(line).expect("parse"),
            Duration::from_millis(2870)
        );
    }

    #[test]
    fn parses_status() {
        let s = "Name:\tstore\nVmHWM:\t   9000 kB\nVmRSS:\t   8123 kB\n";
        assert_eq!(parse_status_kib(s, "VmRSS").expect("rss"), 8123);
        assert_eq!(parse_status_kib(s, "VmHWM").expect("hwm"), 9000);
        assert!(parse_status_kib(s, "VmSwap").is_err());
    }

    #[test]
    fn stats() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        let s: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile_sorted(&s, 50.0), 50.0);
        assert_eq!(percentile_sorted(&s, 99.0), 99.0);
        assert_eq!(percentile_sorted(&s, 100.0), 100.0);
    }

    #[test]
    fn pieces_cover_the_total() {
        let pool = DataPool::new(1000);
        let total: usize = pool.pieces(10_500, 1000).map(|b| b.len()).sum();
        assert_eq!(total, 10_500);
        assert_ne!(pool.chunk(0, 1000, 1000), pool.chunk(1, 1000, 1000));
    }

    #[test]
    fn own_cpu_time_is_readable() {
        assert!(process_cpu().is_ok());
        assert!(thread_cpu().is_ok());
        assert!(rss_kib().expect("rss") > 0);
    }
}
