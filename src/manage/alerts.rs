//! Alerts: `POST /api/v1/alerts` (a rule, a threshold, a window, where to
//! send the message), `GET` (each alert with its state and history),
//! `DELETE`. Evaluated by the upkeep loop (`app::alerts`) from the
//! counters the writer keeps; notifications go through the outbox.

use redb::ReadableTable;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::Error;
use crate::app::App;
use crate::forward::notify;
use crate::store::health::{ALERTS, AlertRecord, NotifyRecord};
use crate::store::records;
use crate::util::clock::{now_ms, rfc3339};
use crate::util::signing::mask_after;

/// A rule's facts: what the threshold means and which fields it takes.
pub struct Rule {
    pub name: &'static str,
    /// The threshold's unit, for messages: `percent`, `count`, `MB`.
    pub unit: &'static str,
    /// (least, greatest) threshold; `None`: the rule takes none.
    pub threshold: Option<(u64, u64)>,
    pub default_threshold: Option<&'static str>,
    /// Default window (minutes); `None`: the rule has no window.
    pub window: Option<u32>,
    /// The rule may name a source.
    pub per_source: bool,
}

pub const RULES: &[Rule] = &[
    Rule {
        name: "match_rate_below",
        unit: "percent",
        threshold: Some((0, 100)),
        default_threshold: None,
        window: Some(60),
        per_source: true,
    },
    Rule {
        name: "postback_silence",
        unit: "minutes",
        threshold: None,
        default_threshold: None,
        window: Some(60),
        per_source: true,
    },
    Rule {
        name: "duplicate_rate_above",
        unit: "percent",
        threshold: Some((0, 100)),
        default_threshold: None,
        window: Some(60),
        per_source: true,
    },
    Rule {
        name: "refusals_above",
        unit: "count",
        threshold: Some((0, 100_000_000)),
        default_threshold: None,
        window: Some(60),
        per_source: true,
    },
    Rule {
        name: "dead_deliveries",
        unit: "count",
        threshold: Some((0, 100_000_000)),
        default_threshold: Some("0"),
        window: Some(60),
        per_source: false,
    },
    Rule {
        name: "outbox_backlog",
        unit: "count",
        threshold: Some((1, 100_000_000)),
        default_threshold: None,
        window: None,
        per_source: false,
    },
    Rule {
        name: "disk_free_below",
        unit: "MB",
        threshold: Some((1, 100_000_000)),
        default_threshold: None,
        window: None,
        per_source: false,
    },
];

pub fn rule(name: &str) -> Option<&'static Rule> {
    RULES.iter().find(|r| r.name == name)
}

/// Longest window and least time between notifications: 7 days.
pub const MAX_MINUTES: u32 = 7 * 24 * 60;
/// Least window: one counter bucket.
pub const MIN_WINDOW: u32 = 5;

/// Where to send an alert's messages.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifyIn {
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub url: Option<String>,
    pub bot_token: Option<String>,
    pub chat_id: Option<Value>,
    pub base_url: Option<String>,
    pub secret: Option<String>,
}

/// `POST /api/v1/alerts`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertRequest {
    pub rule: Option<String>,
    pub source: Option<u64>,
    /// A number (or its text): a percentage, a count or megabytes.
    pub threshold: Option<Value>,
    pub window_minutes: Option<u32>,
    /// Least time between two notifications of this alert (default 60).
    pub min_interval_minutes: Option<u32>,
    /// Least postbacks in the window before a rate rule judges (default 10).
    pub min_events: Option<u64>,
    pub notify: Option<NotifyIn>,
}

/// An alert as the API and the dashboard show it (secrets masked).
#[derive(Debug, Clone, Serialize)]
pub struct Alert {
    pub id: u64,
    pub rule: String,
    pub source: Option<u64>,
    pub threshold: Option<String>,
    pub window_minutes: Option<u32>,
    pub min_interval_minutes: u32,
    pub min_events: u64,
    pub notify: Value,
    /// `ok` or `firing`.
    pub state: String,
    pub since: String,
    pub last_value: Option<String>,
    pub last_checked_at: Option<String>,
    pub last_notified_at: Option<String>,
    pub history: Vec<Value>,
    pub created_at: String,
}

fn masked_notify(n: &NotifyRecord) -> Value {
    let mut v = serde_json::json!({"type": n.kind});
    // A Slack webhook URL is a credential (anyone holding it can post):
    // its origin and the start of the path only.
    if let Some(u) = &n.url {
        v["url"] = if n.kind == "slack" {
            mask_after(u, 34).into()
        } else {
            u.clone().into()
        };
    }
    if let Some(t) = &n.bot_token {
        v["bot_token"] = mask_after(t, 6).into();
    }
    if let Some(c) = &n.chat_id {
        v["chat_id"] = c.clone().into();
    }
    if let Some(b) = &n.base_url {
        v["base_url"] = b.clone().into();
    }
    if let Some(s) = &n.secret {
        v["secret"] = crate::util::signing::mask(s).into();
    }
    v
}

pub fn view(id: u64, r: &AlertRecord) -> Alert {
    let rule = rule(&r.rule);
    Alert {
        id,
        rule: r.rule.clone(),
        source: r.source_id,
        threshold: rule.and_then(|x| x.threshold).map(|_| r.threshold.clone()),
        window_minutes: rule.and_then(|x| x.window).map(|_| r.window_minutes),
        min_interval_minutes: r.min_interval_minutes,
        min_events: r.min_events,
        notify: masked_notify(&r.notify),
        state: r.state.clone(),
        since: rfc3339(r.since_ms),
        last_value: r.last_value.clone(),
        last_checked_at: r.last_checked_ms.map(rfc3339),
        last_notified_at: r.last_notified_ms.map(rfc3339),
        history: r
            .history
            .iter()
            .map(|e| {
                serde_json::json!({"at": rfc3339(e.at_ms), "event": e.kind, "message": e.message, "delivery_id": e.delivery_id})
            })
            .collect(),
        created_at: rfc3339(r.created_ms),
    }
}

fn invalid(code: &'static str, msg: impl Into<String>) -> Error {
    Error::invalid(code, msg)
}

fn threshold_of(v: &Option<Value>, r: &Rule) -> Result<String, Error> {
    let Some((lo, hi)) = r.threshold else {
        if v.as_ref().is_some_and(|v| !v.is_null()) {
            return Err(invalid(
                "invalid_threshold",
                format!("{} takes no threshold; set window_minutes instead", r.name),
            ));
        }
        return Ok(String::new());
    };
    let text = match v {
        None | Some(Value::Null) => match r.default_threshold {
            Some(d) => d.to_string(),
            None => {
                return Err(invalid(
                    "missing_threshold",
                    format!("{} needs a threshold ({}, {lo} to {hi})", r.name, r.unit),
                ));
            }
        },
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::String(s)) => s.trim().to_string(),
        Some(_) => {
            return Err(invalid("invalid_threshold", "threshold must be a number"));
        }
    };
    let d: Decimal = text.parse().map_err(|_| {
        invalid(
            "invalid_threshold",
            format!(
                "threshold `{}` is not a number",
                crate::util::text::truncate(&text, 20)
            ),
        )
    })?;
    let whole = r.unit != "percent";
    if d < Decimal::from(lo) || d > Decimal::from(hi) || (whole && !d.fract().is_zero()) {
        return Err(invalid(
            "invalid_threshold",
            format!(
                "threshold for {} must be {}from {lo} to {hi} ({})",
                r.name,
                if whole { "a whole number " } else { "" },
                r.unit
            ),
        ));
    }
    Ok(d.normalize().to_string())
}

fn notify_of(n: Option<NotifyIn>) -> Result<NotifyRecord, Error> {
    let Some(n) = n else {
        return Err(invalid(
            "missing_notify",
            "notify is required: {\"type\": \"slack\", \"url\"}, {\"type\": \"telegram\", \
             \"bot_token\", \"chat_id\"} or {\"type\": \"webhook\", \"url\", \"secret\"}",
        ));
    };
    let chat_id = match n.chat_id {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.trim().to_string()),
        Some(Value::Number(x)) => Some(x.to_string()),
        Some(_) => {
            return Err(invalid(
                "invalid_notify",
                "notify.chat_id must be a number or a string",
            ));
        }
    };
    let rec = NotifyRecord {
        kind: n.kind.unwrap_or_default().trim().to_string(),
        url: n.url.map(|u| u.trim().to_string()),
        bot_token: n.bot_token.map(|t| t.trim().to_string()),
        chat_id,
        base_url: n.base_url.map(|b| b.trim().to_string()),
        secret: n.secret.map(|s| s.trim().to_string()),
    };
    let allowed: &[&str] = match rec.kind.as_str() {
        "slack" => &["url"],
        "telegram" => &["bot_token", "chat_id", "base_url"],
        _ => &["url", "secret"],
    };
    for (field, set) in [
        ("url", rec.url.is_some()),
        ("bot_token", rec.bot_token.is_some()),
        ("chat_id", rec.chat_id.is_some()),
        ("base_url", rec.base_url.is_some()),
        ("secret", rec.secret.is_some()),
    ] {
        if set && !allowed.contains(&field) && !rec.kind.is_empty() {
            return Err(invalid(
                "invalid_notify",
                format!("notify.{field} is not used by a {} target", rec.kind),
            ));
        }
    }
    notify::validate(&rec).map_err(|e| invalid("invalid_notify", e))?;
    Ok(rec)
}

pub async fn create_alert(app: &App, req: AlertRequest) -> Result<Alert, Error> {
    let names = RULES.iter().map(|r| r.name).collect::<Vec<_>>().join(", ");
    let Some(name) = req.rule.as_deref().map(str::trim) else {
        return Err(invalid(
            "missing_rule",
            format!("rule is required: one of {names}"),
        ));
    };
    let Some(r) = rule(name) else {
        return Err(invalid(
            "unknown_rule",
            format!(
                "rule `{}` is not known; use one of {names}",
                crate::util::text::truncate(name, 40)
            ),
        ));
    };
    if let Some(s) = req.source {
        if !r.per_source {
            return Err(invalid(
                "invalid_source",
                format!("{} is about the whole server; leave source out", r.name),
            ));
        }
        if !app.store.catalog().sources.contains_key(&s) {
            return Err(invalid(
                "unknown_source",
                format!("no source with id {s}; list them with GET /api/v1/sources"),
            ));
        }
    }
    let threshold = threshold_of(&req.threshold, r)?;
    let window = match (r.window, req.window_minutes) {
        (None, Some(_)) => {
            return Err(invalid(
                "invalid_window",
                format!(
                    "{} has no window: it looks at the current value; leave window_minutes out",
                    r.name
                ),
            ));
        }
        (None, None) => 0,
        (Some(d), w) => {
            let w = w.unwrap_or(d);
            if !(MIN_WINDOW..=MAX_MINUTES).contains(&w) {
                return Err(invalid(
                    "invalid_window",
                    format!("window_minutes must be from {MIN_WINDOW} to {MAX_MINUTES} (7 days)"),
                ));
            }
            w
        }
    };
    let interval = req.min_interval_minutes.unwrap_or(60);
    if !(1..=MAX_MINUTES).contains(&interval) {
        return Err(invalid(
            "invalid_interval",
            format!("min_interval_minutes must be from 1 to {MAX_MINUTES}"),
        ));
    }
    let min_events = req.min_events.unwrap_or(10);
    if !(1..=1_000_000).contains(&min_events) {
        return Err(invalid(
            "invalid_min_events",
            "min_events must be from 1 to 1000000",
        ));
    }
    let notify = notify_of(req.notify)?;
    super::destinations::guard_url(app, &notify::target_url(&notify)).await?;
    let now = now_ms();
    let rec = AlertRecord {
        rule: r.name.to_string(),
        source_id: req.source,
        threshold,
        window_minutes: window,
        min_interval_minutes: interval,
        min_events,
        notify,
        created_ms: now,
        state: "ok".into(),
        since_ms: now,
        ..Default::default()
    };
    let stored = rec.clone();
    let id = app
        .store
        .write(move |ctx| {
            let id = crate::store::next_counter(ctx, "next_alert_id")?;
            ctx.alerts()?
                .insert(id, records::encode(&stored).as_slice())?;
            Ok(id)
        })
        .await?;
    Ok(view(id, &rec))
}

/// Every alert with its state and history, by ID.
pub async fn list_alerts(app: &App) -> Result<Vec<Alert>, Error> {
    Ok(app
        .store
        .read(|rtx| {
            let t = rtx.open_table(ALERTS)?;
            let mut out = Vec::new();
            for row in t.iter()? {
                let (k, v) = row?;
                out.push(view(k.value(), &records::decode(v.value())?));
            }
            Ok(out)
        })
        .await?)
}

pub async fn delete_alert(app: &App, id: u64) -> Result<(), Error> {
    let found = app
        .store
        .write(move |ctx| Ok(ctx.alerts()?.remove(id)?.is_some()))
        .await?;
    if found {
        Ok(())
    } else {
        Err(Error::not_found(
            "unknown_alert",
            format!("no alert with id {id}"),
        ))
    }
}
