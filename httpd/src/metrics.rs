//! Request counters and the Prometheus text at `/_/metrics`. Lock-free: one atomic per
//! (method, status) pair.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use filegate_core::metrics::Gauges;
use filegate_core::Usage;
use http::{Method, StatusCode};

/// Methods counted by name; anything else counts as "OTHER".
const METHODS: [&str; 10] = [
    "GET", "HEAD", "PUT", "DELETE", "MKCOL", "MOVE", "COPY", "POST", "OPTIONS", "OTHER",
];
const STATUSES: usize = 600;

/// Counters of one gateway.
pub struct Metrics {
    /// Requests by `method index * STATUSES + status`.
    requests: Box<[AtomicU64]>,
    /// Request body bytes received.
    pub received: Arc<AtomicU64>,
    /// Response body bytes sent.
    pub sent: Arc<AtomicU64>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            requests: (0..METHODS.len() * STATUSES)
                .map(|_| AtomicU64::new(0))
                .collect(),
            received: Arc::new(AtomicU64::new(0)),
            sent: Arc::new(AtomicU64::new(0)),
        }
    }
}

fn method_index(m: &Method) -> usize {
    let s = m.as_str();
    METHODS[..METHODS.len() - 1]
        .iter()
        .position(|n| *n == s)
        .unwrap_or(METHODS.len() - 1)
}

impl Metrics {
    pub fn record(&self, method: &Method, status: StatusCode) {
        let s = usize::from(status.as_u16()).min(STATUSES - 1);
        if let Some(c) = self.requests.get(method_index(method) * STATUSES + s) {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The Prometheus text exposition.
    pub fn render(&self, gauges: &Gauges, usage: Option<Usage>) -> String {
        let mut out = String::with_capacity(2048);
        out.push_str("# HELP filegate_http_requests_total HTTP requests by method and status.\n");
        out.push_str("# TYPE filegate_http_requests_total counter\n");
        for (i, c) in self.requests.iter().enumerate() {
            let n = c.load(Ordering::Relaxed);
            if n > 0 {
                let (m, s) = (METHODS[i / STATUSES], i % STATUSES);
                let _ = writeln!(
                    out,
                    "filegate_http_requests_total{{method=\"{m}\",status=\"{s}\"}} {n}"
                );
            }
        }
        let mut one = |name: &str, kind: &str, help: &str, v: i128| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}"
            );
        };
        one(
            "filegate_http_received_bytes_total",
            "counter",
            "Request body bytes received over HTTP.",
            self.received.load(Ordering::Relaxed).into(),
        );
        one(
            "filegate_http_sent_bytes_total",
            "counter",
            "Response body bytes sent over HTTP.",
            self.sent.load(Ordering::Relaxed).into(),
        );
        one(
            "filegate_http_connections",
            "gauge",
            "Open HTTP connections.",
            gauges.http_connections.load(Ordering::Relaxed).into(),
        );
        one(
            "filegate_ftp_sessions",
            "gauge",
            "Open FTP control connections.",
            gauges.ftp_sessions.load(Ordering::Relaxed).into(),
        );
        if let Some(u) = usage {
            one(
                "filegate_store_bytes",
                "gauge",
                "Bytes of file content in the store.",
                u.bytes.into(),
            );
            one(
                "filegate_store_files",
                "gauge",
                "Files in the store.",
                u.files.into(),
            );
            one(
                "filegate_store_directories",
                "gauge",
                "Directories in the store.",
                u.dirs.into(),
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders() {
        let m = Metrics::default();
        m.record(&Method::GET, StatusCode::OK);
        m.record(&Method::GET, StatusCode::OK);
        m.record(
            &Method::from_bytes(b"BREW").unwrap(),
            StatusCode::METHOD_NOT_ALLOWED,
        );
        m.sent.fetch_add(10, Ordering::Relaxed);
        let g = Gauges::default();
        g.ftp_sessions.fetch_add(2, Ordering::Relaxed);
        let text = m.render(
            &g,
            Some(Usage {
                files: 1,
                dirs: 2,
                bytes: 3,
            }),
        );
        assert!(
            text.contains("filegate_http_requests_total{method=\"GET\",status=\"200\"} 2\n"),
            "{text}"
        );
        assert!(text.contains("filegate_http_requests_total{method=\"OTHER\",status=\"405\"} 1\n"));
        assert!(text.contains("filegate_http_sent_bytes_total 10\n"));
        assert!(text.contains("filegate_ftp_sessions 2\n"));
        assert!(text.contains("filegate_store_bytes 3\n"));
    }
}
