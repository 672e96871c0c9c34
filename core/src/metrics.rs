//! Counters both front ends update and the HTTP gateway reports at `/_/metrics`.

use std::sync::atomic::{AtomicI64, Ordering};

/// Live gauges shared by the front ends of one process.
#[derive(Debug, Default)]
pub struct Gauges {
    /// FTP control connections open now.
    pub ftp_sessions: AtomicI64,
    /// HTTP connections open now.
    pub http_connections: AtomicI64,
}

/// Increments a gauge and decrements it again when dropped.
pub struct GaugeGuard<'a>(&'a AtomicI64);

impl<'a> GaugeGuard<'a> {
    pub fn new(gauge: &'a AtomicI64) -> Self {
        gauge.fetch_add(1, Ordering::Relaxed);
        GaugeGuard(gauge)
    }
}

impl Drop for GaugeGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}
