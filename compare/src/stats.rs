//! Order statistics over samples: percentiles (linear interpolation between closest ranks),
//! medians, means, and a summary of latencies. Pure functions, no clocks.

use std::time::Duration;

use serde::Serialize;

/// The `p`-th percentile (0..=100) of `samples`, interpolating linearly between the two
/// closest ranks (the "R-7" definition spreadsheets use). `None` for no samples or a `p`
/// outside 0..=100; NaN samples are ignored.
pub fn percentile(samples: &[f64], p: f64) -> Option<f64> {
    if !(0.0..=100.0).contains(&p) {
        return None;
    }
    let mut v: Vec<f64> = samples.iter().copied().filter(|x| !x.is_nan()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    Some(percentile_sorted(&v, p))
}

/// Like [`percentile`] on an already sorted, NaN-free, non-empty slice.
fn percentile_sorted(sorted: &[f64], p: f64) -> f64 {
    let rank = p / 100.0 * (sorted.len() - 1) as f64;
    let lo = rank.floor() as usize;
    let hi = rank.ceil() as usize;
    let frac = rank - lo as f64;
    sorted[lo] + (sorted[hi] - sorted[lo]) * frac
}

/// The median (the 50th percentile).
pub fn median(samples: &[f64]) -> Option<f64> {
    percentile(samples, 50.0)
}

/// The arithmetic mean; `None` for no samples.
pub fn mean(samples: &[f64]) -> Option<f64> {
    if samples.is_empty() {
        return None;
    }
    Some(samples.iter().sum::<f64>() / samples.len() as f64)
}

/// Latencies of one run: milliseconds at the usual percentiles, and the rate over the wall time.
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct LatencySummary {
    pub count: usize,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    /// Operations per second over the wall time the whole run took.
    pub ops_per_sec: f64,
}

impl LatencySummary {
    /// Summarizes `latencies` of operations that took `wall` in all; `None` without samples
    /// or with a zero wall time.
    pub fn new(latencies: &[Duration], wall: Duration) -> Option<LatencySummary> {
        if latencies.is_empty() || wall.is_zero() {
            return None;
        }
        let mut ms: Vec<f64> = latencies.iter().map(|d| d.as_secs_f64() * 1e3).collect();
        ms.sort_by(f64::total_cmp);
        Some(LatencySummary {
            count: ms.len(),
            p50_ms: percentile_sorted(&ms, 50.0),
            p90_ms: percentile_sorted(&ms, 90.0),
            p99_ms: percentile_sorted(&ms, 99.0),
            max_ms: ms[ms.len() - 1],
            ops_per_sec: ms.len() as f64 / wall.as_secs_f64(),
        })
    }
}

/// `a / b`, or `None` when the ratio is meaningless (b is zero or either is not finite).
pub fn ratio(a: f64, b: f64) -> Option<f64> {
    let r = a / b;
    (a.is_finite() && b.is_finite() && b != 0.0 && r.is_finite()).then_some(r)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn percentiles_interpolate_between_ranks() {
        let v = [1.0, 2.0, 3.0, 4.0];
        assert!(close(percentile(&v, 0.0).unwrap(), 1.0));
        assert!(close(percentile(&v, 100.0).unwrap(), 4.0));
        assert!(close(percentile(&v, 50.0).unwrap(), 2.5));
        assert!(close(percentile(&v, 25.0).unwrap(), 1.75));
        // Order of the input does not matter.
        assert!(close(
            percentile(&[4.0, 1.0, 3.0, 2.0], 75.0).unwrap(),
            3.25
        ));
    }

    #[test]
    fn percentile_edges() {
        assert_eq!(percentile(&[], 50.0), None);
        assert_eq!(percentile(&[1.0], 101.0), None);
        assert_eq!(percentile(&[1.0], -1.0), None);
        assert!(close(percentile(&[7.0], 99.0).unwrap(), 7.0));
        assert!(close(percentile(&[f64::NAN, 5.0], 50.0).unwrap(), 5.0));
        assert_eq!(percentile(&[f64::NAN], 50.0), None);
    }

    #[test]
    fn medians_and_means() {
        assert!(close(median(&[3.0, 1.0, 2.0]).unwrap(), 2.0));
        assert!(close(median(&[1.0, 2.0, 3.0, 10.0]).unwrap(), 2.5));
        assert_eq!(median(&[]), None);
        assert!(close(mean(&[1.0, 2.0, 6.0]).unwrap(), 3.0));
        assert_eq!(mean(&[]), None);
    }

    #[test]
    fn p99_of_a_hundred_samples() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert!(close(percentile(&v, 99.0).unwrap(), 99.01));
        assert!(close(percentile(&v, 50.0).unwrap(), 50.5));
    }

    #[test]
    fn latency_summary() {
        let lat: Vec<Duration> = (1..=10).map(Duration::from_millis).collect();
        let s = LatencySummary::new(&lat, Duration::from_secs(2)).unwrap();
        assert_eq!(s.count, 10);
        assert!(close(s.p50_ms, 5.5));
        assert!(close(s.max_ms, 10.0));
        assert!(close(s.ops_per_sec, 5.0));
        assert!(LatencySummary::new(&[], Duration::from_secs(1)).is_none());
        assert!(LatencySummary::new(&lat, Duration::ZERO).is_none());
    }

    #[test]
    fn ratios() {
        assert_eq!(ratio(1.0, 0.0), None);
        assert_eq!(ratio(f64::NAN, 1.0), None);
        assert!(close(ratio(3.0, 2.0).unwrap(), 1.5));
    }
}
