//! Counters and histograms in Prometheus text format: request counters by
//! route and status, fixed-bucket histograms (commit batch sizes and
//! latency). The page that gathers them is `http::metrics`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// A fixed-bucket histogram (cumulative on output).
#[derive(Debug)]
pub struct Histogram {
    bounds: &'static [f64],
    counts: Vec<AtomicU64>,
    /// Sum of observations, in millionths of the unit.
    sum_micro: AtomicU64,
    count: AtomicU64,
}

impl Histogram {
    pub fn new(bounds: &'static [f64]) -> Histogram {
        Histogram {
            bounds,
            counts: (0..bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum_micro: AtomicU64::new(0),
            count: AtomicU64::new(0),
        }
    }

    pub fn observe(&self, v: f64) {
        if let Some(i) = self.bounds.iter().position(|b| v <= *b) {
            self.counts[i].fetch_add(1, Ordering::Relaxed);
        }
        self.sum_micro
            .fetch_add((v * 1e6) as u64, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    pub fn render(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        let mut cumulative = 0;
        for (b, c) in self.bounds.iter().zip(&self.counts) {
            cumulative += c.load(Ordering::Relaxed);
            let _ = writeln!(out, "{name}_bucket{{le=\"{b}\"}} {cumulative}");
        }
        let count = self.count.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
        let _ = writeln!(
            out,
            "{name}_sum {}",
            self.sum_micro.load(Ordering::Relaxed) as f64 / 1e6
        );
        let _ = writeln!(out, "{name}_count {count}");
    }
}

/// Writes per commit.
pub const BATCH_BUCKETS: &[f64] = &[
    1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0, 4096.0,
];
/// Commit (fsync) latency, seconds.
pub const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
];

/// Request and result counters.
#[derive(Debug, Default)]
pub struct RequestMetrics {
    /// (route, HTTP status) -> count.
    requests: Mutex<BTreeMap<(&'static str, u16), u64>>,
    /// postback result (`matched`, …, or an error code) -> count.
    postbacks: Mutex<BTreeMap<String, u64>>,
    /// (IPN format, result) -> count.
    ipns: Mutex<BTreeMap<(&'static str, String), u64>>,
}

impl RequestMetrics {
    pub fn request(&self, route: &'static str, status: u16) {
        *lock(&self.requests).entry((route, status)).or_default() += 1;
    }

    pub fn postback(&self, result: &str) {
        let mut m = lock(&self.postbacks);
        match m.get_mut(result) {
            Some(n) => *n += 1,
            None => {
                // Results are a small closed set of codes; cap anyway.
                if m.len() < 64 {
                    m.insert(result.to_string(), 1);
                }
            }
        }
    }

    pub fn ipn(&self, format: &'static str, result: &str) {
        let mut m = lock(&self.ipns);
        let key = (format, result.to_string());
        // Formats and results are small closed sets; cap anyway.
        if m.len() < 256 || m.contains_key(&key) {
            *m.entry(key).or_default() += 1;
        }
    }

    pub fn render(&self, out: &mut String) {
        let _ = writeln!(
            out,
            "# HELP postbackd_http_requests_total HTTP requests by route and status.\n# TYPE postbackd_http_requests_total counter"
        );
        for ((route, status), n) in lock(&self.requests).iter() {
            let _ = writeln!(
                out,
                "postbackd_http_requests_total{{route=\"{route}\",status=\"{status}\"}} {n}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP postbackd_postbacks_total Postbacks by result (matched, duplicate, updated, unmatched, or the error code).\n# TYPE postbackd_postbacks_total counter"
        );
        for (result, n) in lock(&self.postbacks).iter() {
            let _ = writeln!(out, "postbackd_postbacks_total{{result=\"{result}\"}} {n}");
        }
        let _ = writeln!(
            out,
            "# HELP postbackd_ipn_total IPN notifications by format and result (matched, duplicate, updated, unmatched, ignored, or the error code).\n# TYPE postbackd_ipn_total counter"
        );
        for ((format, result), n) in lock(&self.ipns).iter() {
            let _ = writeln!(
                out,
                "postbackd_ipn_total{{format=\"{format}\",result=\"{result}\"}} {n}"
            );
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_is_cumulative() {
        let h = Histogram::new(&[1.0, 2.0]);
        h.observe(0.5);
        h.observe(1.5);
        h.observe(9.0);
        let mut s = String::new();
        h.render(&mut s, "x", "help");
        assert!(s.contains("x_bucket{le=\"1\"} 1\n"));
        assert!(s.contains("x_bucket{le=\"2\"} 2\n"));
        assert!(s.contains("x_bucket{le=\"+Inf\"} 3\n"));
        assert!(s.contains("x_count 3\n"));
        assert!(s.contains("x_sum 11\n"));
    }
}
