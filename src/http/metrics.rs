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
    out.push_str(&postback_health(app, now).await);
    out
}

/// Per-source postback results (the counters the alerts use), all-time,
/// and the match rate of the last hour. Source IDs only: names are the
/// admin's free text.
async fn postback_health(app: &App, now: u64) -> String {
    use crate::store::health::{self, ACCEPTED, GLOBAL};
    let read = app
        .store
        .read(move |rtx| {
            Ok((
                health::totals(rtx)?,
                health::window(rtx, now.saturating_sub(3_600_000), now)?,
            ))
        })
        .await;
    let Ok((totals, hour)) = read else {
        return String::new();
    };
    let cat = app.store.catalog();
    let mut out = String::new();
    out.push_str("# HELP postbackd_source_postbacks_total Postback requests by source and result (matched, unmatched, duplicate, updated, ignored).\n# TYPE postbackd_source_postbacks_total counter\n");
    let mut refusals = String::new();
    // Sources that exist (a deleted source's totals stay in the database
    // but leave the page, as its other series do).
    for (source, counts) in totals.iter().filter(|(s, _)| cat.sources.contains_key(s)) {
        for (result, n) in counts {
            if ACCEPTED.contains(&result.as_str()) {
                out.push_str(&format!(
                    "postbackd_source_postbacks_total{{source=\"{source}\",result=\"{result}\"}} {n}\n"
                ));
            } else {
                refusals.push_str(&format!(
                    "postbackd_source_refusals_total{{source=\"{source}\",reason=\"{result}\"}} {n}\n"
                ));
            }
        }
    }
    out.push_str("# HELP postbackd_source_refusals_total Refused postback requests by source and reason (the error code).\n# TYPE postbackd_source_refusals_total counter\n");
    out.push_str(&refusals);
    out.push_str("# HELP postbackd_source_match_rate_1h Matched / (matched + unmatched + refused) postbacks of the last hour, 0 to 1; absent without such postbacks.\n# TYPE postbackd_source_match_rate_1h gauge\n");
    for id in cat.sources.keys() {
        let Some(c) = hour.get(id) else { continue };
        let judged: u64 = c
            .iter()
            .filter(|(r, _)| !matches!(r.as_str(), "duplicate" | "updated" | "ignored"))
            .map(|(_, n)| n)
            .sum();
        if judged > 0 {
            let m = c.get("matched").copied().unwrap_or(0);
            out.push_str(&format!(
                "postbackd_source_match_rate_1h{{source=\"{id}\"}} {}\n",
                m as f64 / judged as f64
            ));
        }
    }
    let dead = totals
        .get(&GLOBAL)
        .and_then(|c| c.get(health::DEAD_DELIVERY))
        .copied()
        .unwrap_or(0);
    out.push_str(&format!("# HELP postbackd_dead_deliveries_total Deliveries that went dead (alert notifications excluded).\n# TYPE postbackd_dead_deliveries_total counter\npostbackd_dead_deliveries_total {dead}\n"));
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
