//! The `/metrics` page (Prometheus text format): requests, commits,
//! rate limits, retention, the catalog, the outbox and deliveries. No secrets, no
//! per-request data.

use std::fmt::Write as _;
use std::sync::atomic::Ordering;

use hyper::Response;
use hyper::header::{CONTENT_TYPE, HeaderValue};

use super::{Resp, full};
use crate::app::App;

/// `GET /metrics`.
pub async fn page(app: &App) -> Resp {
    let text = render(app).await;
    let mut r = Response::new(full(text));
    r.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    r
}

/// The whole `/metrics` page.
pub async fn render(app: &App) -> String {
    let now = crate::util::clock::now_ms();
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
        ("login", &app.rate.counters.logins),
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
    out.push_str(&forwarding(app, depth, oldest));
    out
}

/// Metrics lines for forwarding.
fn forwarding(app: &App, depth: u64, oldest_ms: Option<u64>) -> String {
    let mut out = String::new();
    out.push_str("# HELP postbackd_outbox_pending Deliveries waiting to be sent.\n# TYPE postbackd_outbox_pending gauge\n");
    out.push_str(&format!("postbackd_outbox_pending {depth}\n"));
    out.push_str("# HELP postbackd_outbox_oldest_pending_seconds Age of the oldest pending delivery.\n# TYPE postbackd_outbox_oldest_pending_seconds gauge\n");
    out.push_str(&format!(
        "postbackd_outbox_oldest_pending_seconds {}\n",
        oldest_ms.map_or(0.0, |m| m as f64 / 1000.0)
    ));
    out.push_str("# HELP postbackd_deliveries_total Delivery attempts by destination and outcome.\n# TYPE postbackd_deliveries_total counter\n");
    let cat = app.store.catalog();
    for d in cat.destinations.values() {
        let c = app.forwarder.counters_for(d.id);
        for (outcome, n) in [
            ("delivered", c.delivered.load(Ordering::Relaxed)),
            ("retried", c.retried.load(Ordering::Relaxed)),
            ("dead", c.dead.load(Ordering::Relaxed)),
        ] {
            out.push_str(&format!(
                "postbackd_deliveries_total{{destination=\"{}\",type=\"{}\",outcome=\"{outcome}\"}} {n}\n",
                d.id, d.rec.kind
            ));
        }
    }
    out
}
