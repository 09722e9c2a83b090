//! Prometheus text-format metrics: request counters by route and status,
//! postback results, commit batch-size and latency histograms, rate limits,
//! retention, the outbox. No secrets, no per-request data.

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

    fn render(&self, out: &mut String, name: &str, help: &str) {
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

    fn render(&self, out: &mut String) {
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
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The whole `/metrics` page.
pub async fn render(app: &crate::server::App) -> String {
    let now = crate::store::now_ms();
    let (depth, oldest) = app
        .store
        .read(move |rtx| crate::forward::worker::queue_stats(rtx, now))
        .await
        .unwrap_or((0, None));
    let mut out = String::with_capacity(4096);
    app.requests.render(&mut out);
    let s = &app.store.stats;
    let counter = |out: &mut String, name: &str, help: &str, v: String| {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}"
        );
    };
    counter(
        &mut out,
        "postbackd_commits_total",
        "Write transactions committed.",
        s.commits.load(Ordering::Relaxed).to_string(),
    );
    counter(
        &mut out,
        "postbackd_committed_writes_total",
        "Writes (clicks, postbacks, admin changes) in committed transactions.",
        s.committed_jobs.load(Ordering::Relaxed).to_string(),
    );
    counter(
        &mut out,
        "postbackd_failed_commits_total",
        "Write transactions that failed (answered 503).",
        s.failed_commits.load(Ordering::Relaxed).to_string(),
    );
    counter(
        &mut out,
        "postbackd_database_reopens_total",
        "Database reopens after an I/O error.",
        s.reopens.load(Ordering::Relaxed).to_string(),
    );
    s.batch_sizes.render(
        &mut out,
        "postbackd_commit_batch_size",
        "Writes per group commit.",
    );
    s.commit_seconds.render(
        &mut out,
        "postbackd_commit_duration_seconds",
        "Time to commit (fsync) one batch.",
    );
    let _ = writeln!(
        out,
        "# HELP postbackd_rate_limited_total Requests refused by a rate limit.\n# TYPE postbackd_rate_limited_total counter"
    );
    for (limit, n) in [
        ("click_ip", &app.rate.counters.clicks_ip),
        ("postback_ip", &app.rate.counters.postbacks_ip),
        ("source", &app.rate.counters.postbacks_source),
    ] {
        let _ = writeln!(
            out,
            "postbackd_rate_limited_total{{limit=\"{limit}\"}} {}",
            n.load(Ordering::Relaxed)
        );
    }
    let _ = writeln!(
        out,
        "# HELP postbackd_retention_purged_total Records deleted by retention, by kind (clicks, events).\n# TYPE postbackd_retention_purged_total counter"
    );
    for (kind, n) in [("clicks", &s.purged_clicks), ("events", &s.purged_events)] {
        let _ = writeln!(
            out,
            "postbackd_retention_purged_total{{kind=\"{kind}\"}} {}",
            n.load(Ordering::Relaxed)
        );
    }
    let cat = app.store.catalog();
    for (name, help, v) in [
        (
            "postbackd_sources",
            "Configured sources.",
            cat.sources.len(),
        ),
        ("postbackd_links", "Configured links.", cat.links.len()),
        (
            "postbackd_destinations",
            "Configured destinations.",
            cat.destinations.len(),
        ),
    ] {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}");
    }
    out.push_str(&crate::api::destinations::metrics(app, depth, oldest));
    out
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
