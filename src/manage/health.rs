//! Postback health: the doctor over the catalog (`POST /api/v1/doctor`)
//! and a source's health (`GET /api/v1/sources/{id}/health`): match rate
//! over 1 h / 24 h / 7 d from the counters the writer keeps
//! (`store::health`), the last postback, refusals by reason, the shapes of
//! the refused requests and doctor findings drawn from them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::Error;
use crate::app::App;
use crate::inbound::doctor::{self, DoctorContext, DoctorSource, Finding};
use crate::inbound::postback::literal_macro;
use crate::inbound::presets::{self, MacroSyntax};
use crate::inbound::query;
use crate::store::EVENTS;
use crate::store::health;
use crate::store::records::{self, EventRecord};
use crate::util::clock::{now_ms, rfc3339};
use crate::util::ids;

/// `POST /api/v1/doctor`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DoctorRequest {
    pub url: Option<String>,
    /// The source the URL is meant for (a key of another source is then
    /// `wrong_source_key`).
    pub source: Option<u64>,
}

/// The doctor's verdict.
#[derive(Debug, Clone, Serialize)]
pub struct DoctorReport {
    /// No findings.
    pub ok: bool,
    /// The source the URL's key names, when it names one.
    pub source: Option<u64>,
    pub findings: Vec<Finding>,
}

/// The catalog as the doctor sees it.
pub fn doctor_context(app: &App, expected: Option<u64>) -> DoctorContext {
    let catalog = app.store.catalog();
    DoctorContext {
        public_url: app.config.public_url.clone(),
        expected_source: expected,
        sources: catalog
            .sources
            .values()
            .map(|s| {
                let preset = s.rec.preset.as_deref().and_then(presets::find);
                DoctorSource {
                    id: s.id,
                    name: s.rec.name.clone(),
                    key: s.rec.key.clone(),
                    preset,
                    syntax: s
                        .rec
                        .macro_syntax
                        .as_deref()
                        .and_then(MacroSyntax::parse)
                        .or(preset.map(|p| p.syntax)),
                    own_params: s.rec.params.clone(),
                    mapping: s.mapping.clone(),
                }
            })
            .collect(),
    }
}

/// Diagnose a pasted postback URL. Text that is not a URL is refused
/// (`not_a_url`, 400) with the fix.
pub fn diagnose(app: &App, req: &DoctorRequest) -> Result<DoctorReport, Error> {
    let Some(url) = req.url.as_deref() else {
        return Err(Error::invalid(
            "missing_url",
            "url is required: {\"url\": \"https://your-server/p/KEY?click_id={sub1}&...\"}, the \
             postback URL as you pasted it into the network",
        ));
    };
    let ctx = doctor_context(app, req.source);
    let findings = doctor::diagnose(url, &ctx);
    if let Some(f) = findings.iter().find(|f| f.code == "not_a_url") {
        return Err(Error::invalid(
            "not_a_url",
            format!("{}; {}", f.message, f.fix),
        ));
    }
    let key = url
        .split("/p/")
        .nth(1)
        .map(|r| &r[..r.find(['?', '&', '/']).unwrap_or(r.len())])
        .unwrap_or_default();
    let source = ctx.sources.iter().find(|s| s.key == key).map(|s| s.id);
    Ok(DoctorReport {
        ok: findings.is_empty(),
        source,
        findings,
    })
}

/// Postbacks of one source over a window, from the writer's counters.
#[derive(Debug, Clone, Default, Serialize)]
pub struct WindowHealth {
    pub window: &'static str,
    /// Every postback request of the window.
    pub postbacks: u64,
    pub matched: u64,
    pub unmatched: u64,
    pub duplicate: u64,
    pub updated: u64,
    /// Refused requests (any error code).
    pub refused: u64,
    /// matched / (matched + unmatched + refused), percent; `None` with no
    /// such postbacks.
    pub match_rate: Option<f64>,
}

use crate::store::health::ACCEPTED;

impl WindowHealth {
    pub fn from_counts(window: &'static str, counts: Option<&BTreeMap<String, u64>>) -> Self {
        let mut w = WindowHealth {
            window,
            ..Default::default()
        };
        for (result, n) in counts.into_iter().flatten() {
            w.postbacks += n;
            match result.as_str() {
                "matched" => w.matched += n,
                "unmatched" => w.unmatched += n,
                "duplicate" => w.duplicate += n,
                "updated" => w.updated += n,
                "ignored" => {}
                _ => w.refused += n,
            }
        }
        let judged = w.matched + w.unmatched + w.refused;
        w.match_rate =
            (judged > 0).then(|| (w.matched as f64 * 1000.0 / judged as f64).round() / 10.0);
        w
    }
}

/// The shape of refused requests: their parameter names, sorted.
#[derive(Debug, Clone, Serialize)]
pub struct RefusedShape {
    /// e.g. `payout&subid&txid`.
    pub params: String,
    pub result: String,
    pub count: u64,
    /// The most recent such event (open it with GET /api/v1/events/ID).
    pub example_event: String,
}

/// A finding drawn from real refused requests.
#[derive(Debug, Clone, Serialize)]
pub struct InferredFinding {
    pub code: String,
    pub param: Option<String>,
    /// Refused requests it explains, among those sampled.
    pub count: u64,
    pub message: String,
    pub fix: String,
}

/// `GET /api/v1/sources/{id}/health`.
#[derive(Debug, Clone, Serialize)]
pub struct SourceHealth {
    pub source: u64,
    pub name: String,
    pub last_postback_at: Option<String>,
    /// 1 h, 24 h and 7 d.
    pub windows: Vec<WindowHealth>,
    /// Refusals of the last 24 h by code.
    pub refusals_24h: BTreeMap<String, u64>,
    /// The most common shapes of the sampled refused requests.
    pub top_refused_shapes: Vec<RefusedShape>,
    pub findings: Vec<InferredFinding>,
    /// Refused requests of the last 24 h read for shapes and findings (the
    /// most recent, at most [`SAMPLE`]).
    pub sampled: u64,
}

/// Refused events read for shapes and findings.
pub const SAMPLE: usize = 500;
/// Events examined (newest first) to find them: bounds the read.
pub const SCAN: usize = 20_000;

const HOUR: u64 = 3_600_000;

pub async fn source_health(app: &App, source_id: u64) -> Result<SourceHealth, Error> {
    let catalog = app.store.catalog();
    let Some(source) = catalog.sources.get(&source_id).cloned() else {
        return Err(Error::not_found(
            "unknown_source",
            format!("no source with id {source_id}"),
        ));
    };
    let now = now_ms();
    let (windows, last, sample) = app
        .store
        .read(move |rtx| {
            let mut windows = Vec::new();
            for (label, span) in [("1h", HOUR), ("24h", 24 * HOUR), ("7d", 7 * 24 * HOUR)] {
                let t = health::window(rtx, now.saturating_sub(span), now)?;
                windows.push(WindowHealth::from_counts(label, t.get(&source_id)));
            }
            let t24 = health::window(rtx, now.saturating_sub(24 * HOUR), now)?;
            let last = health::last_postbacks(rtx)?.get(&source_id).copied();
            let events = rtx.open_table(EVENTS)?;
            let lo = ids::lower_bound(now.saturating_sub(24 * HOUR));
            let mut sample: Vec<(String, EventRecord)> = Vec::new();
            for row in events.range(lo.as_str()..)?.rev().take(SCAN) {
                let (k, v) = row?;
                let ev: EventRecord = records::decode(v.value())?;
                if ev.source_id == source_id
                    && ev.replay_of.is_none()
                    && !ACCEPTED.contains(&ev.result.as_str())
                {
                    sample.push((k.value().to_string(), ev));
                    if sample.len() >= SAMPLE {
                        break;
                    }
                }
            }
            Ok(((windows, t24.get(&source_id).cloned()), last, sample))
        })
        .await?;
    let (windows, counts24) = windows;
    let refusals_24h: BTreeMap<String, u64> = counts24
        .unwrap_or_default()
        .into_iter()
        .filter(|(r, _)| !ACCEPTED.contains(&r.as_str()))
        .collect();
    let (top_refused_shapes, findings) = infer(
        &sample,
        &refusals_24h,
        &source.mapping,
        source.rec.preset.as_deref(),
    );
    Ok(SourceHealth {
        source: source_id,
        name: source.rec.name.clone(),
        last_postback_at: last.map(rfc3339),
        windows,
        refusals_24h,
        top_refused_shapes,
        findings,
        sampled: sample.len() as u64,
    })
}

/// A refused event's parameters (query, then a form body).
fn params_of(ev: &EventRecord) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let limits = query::Limits::default();
    let _ = query::parse_form(ev.query.as_bytes(), &limits, &mut out);
    if !ev.body.is_empty() && !ev.body.starts_with(b"{") {
        let _ = query::parse_form(&ev.body, &limits, &mut out);
    }
    out.into_iter().map(|p| (p.name, p.value)).collect()
}

/// Shapes and findings of sampled refused events (newest first).
fn infer(
    sample: &[(String, EventRecord)],
    refusals_24h: &BTreeMap<String, u64>,
    mapping: &crate::inbound::postback::Mapping,
    preset: Option<&str>,
) -> (Vec<RefusedShape>, Vec<InferredFinding>) {
    let mut shapes: BTreeMap<(String, String), (u64, String)> = BTreeMap::new();
    let mut guessed: BTreeMap<String, u64> = BTreeMap::new();
    let mut macros: BTreeMap<(String, String), u64> = BTreeMap::new();
    let mut other: BTreeMap<String, (u64, String)> = BTreeMap::new();
    for (id, ev) in sample {
        let params = params_of(ev);
        let mut names: Vec<&str> = params.iter().map(|(n, _)| n.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        let shape = shapes
            .entry((names.join("&"), ev.result.clone()))
            .or_insert((0, id.clone()));
        shape.0 += 1;
        match ev.result.as_str() {
            "missing_click_id" => {
                if let Some(p) = doctor::probable_click_id_param(&params, mapping) {
                    *guessed.entry(p.to_string()).or_default() += 1;
                } else {
                    other
                        .entry(ev.result.clone())
                        .or_insert((0, String::new()))
                        .0 += 1;
                }
            }
            "unsubstituted_macro" => {
                for (n, v) in &params {
                    if let Some(m) = literal_macro(v) {
                        *macros.entry((n.clone(), m.to_string())).or_default() += 1;
                        break;
                    }
                }
            }
            r => {
                let e = other
                    .entry(r.to_string())
                    .or_insert((0, ev.message.clone().unwrap_or_default()));
                e.0 += 1;
            }
        }
    }
    let mut top: Vec<RefusedShape> = shapes
        .into_iter()
        .map(|((params, result), (count, example_event))| RefusedShape {
            params,
            result,
            count,
            example_event,
        })
        .collect();
    top.sort_by(|a, b| b.count.cmp(&a.count).then(a.params.cmp(&b.params)));
    top.truncate(10);

    let reads = doctor::click_id_names(mapping);
    let mut findings = Vec::new();
    let sampled_missing = sample
        .iter()
        .filter(|(_, e)| e.result == "missing_click_id")
        .count() as u64;
    for (param, k) in guessed {
        // Every sampled one had it: the counter says how many there were
        // in all. Otherwise say what was read.
        let total = refusals_24h.get("missing_click_id").copied().unwrap_or(k);
        let (count, message) = if k == sampled_missing {
            (
                total.max(k),
                format!(
                    "{} refused request{} in the last 24 hours had `{param}` but the mapping \
                     reads the click ID from {reads}",
                    total.max(k),
                    if total.max(k) == 1 { "" } else { "s" }
                ),
            )
        } else {
            (
                k,
                format!(
                    "{k} of the {sampled_missing} most recent missing_click_id requests had \
                     `{param}` but the mapping reads the click ID from {reads}"
                ),
            )
        };
        findings.push(InferredFinding {
            code: "click_id_in_other_param".into(),
            param: Some(param.clone()),
            count,
            message,
            fix: format!(
                "set the source's params mapping {{\"click_id\": \"{param}\"}} (PATCH \
                 /api/v1/sources/ID), then replay the refused requests: POST \
                 /api/v1/events/replay {{\"source\": ID, \"result\": \"missing_click_id\"}}"
            ),
        });
    }
    let preset = preset.and_then(presets::find);
    for ((param, m), count) in macros {
        let hint = preset
            .and_then(|p| {
                p.macro_for("click_id")
                    .map(|x| format!(" ({}'s click-ID macro is {})", p.name, p.syntax.wrap(x)))
            })
            .unwrap_or_default();
        findings.push(InferredFinding {
            code: "literal_macro".into(),
            param: Some(param.clone()),
            count,
            message: format!(
                "{count} refused request{} in the last 24 hours carried the literal macro `{m}` \
                 in `{param}`: the network does not replace it{hint}",
                if count == 1 { "" } else { "s" }
            ),
            fix: "fix the macro in the network's postback URL (POST /api/v1/doctor checks it); \
                  these requests carry no click ID and cannot be replayed into conversions"
                .into(),
        });
    }
    for (code, (count, message)) in other {
        findings.push(InferredFinding {
            fix: match code.as_str() {
                "missing_click_id" => "check that the tracking link passes the click ID to the \
                                       network and that the postback URL carries its macro"
                    .into(),
                _ => "open one of these events (GET /api/v1/events?result=CODE) for the full \
                      request; after fixing the mapping, replay them"
                    .replace("CODE", &code),
            },
            message: if message.is_empty() {
                format!("{count} refused request(s) in the last 24 hours: {code}")
            } else {
                format!("{count} refused request(s) in the last 24 hours: {message}")
            },
            code,
            param: None,
            count,
        });
    }
    findings.sort_by_key(|f| std::cmp::Reverse(f.count));
    (top, findings)
}
