//! Alert evaluation, run by the upkeep loop: each alert's rule is judged
//! from the counters the writer already keeps (`store::health`: postback
//! results per source and 5-minute bucket, dead deliveries, each source's
//! last postback), the outbox's pending count and the data dir's free
//! space. No scan of the events table per tick.
//!
//! An alert fires once when its rule is breached and sends one resolved
//! message when it clears. Two notifications of one alert are at least
//! `min_interval_minutes` apart, except that a resolve is never held back
//! (so a flapping rule sends at most a fire and a resolve per interval,
//! never a storm). The state change and the notification's delivery are
//! written in one transaction, so a crash cannot fire twice or lose the
//! message; the outbox retries it like any delivery.
//!
//! Windows are whole buckets: "the last 60 minutes" counts the 5-minute
//! buckets that overlap it, so up to 5 minutes more.

use std::collections::BTreeMap;

use redb::{ReadableTable, ReadableTableMetadata};

use super::App;
use crate::forward::outbox;
use crate::store::health::{
    self, ACCEPTED, ALERT_HISTORY_LEN, ALERTS, AlertEvent, AlertRecord, GLOBAL, Tallies,
};
use crate::store::{PENDING, StoreError, records};
use crate::util::clock::rfc3339;

/// What the rules look at, read once per tick.
#[derive(Clone, Debug, Default)]
pub struct Inputs {
    pub now_ms: u64,
    /// Counts over each window in use (minutes).
    pub windows: BTreeMap<u32, Tallies>,
    /// The last 7 days: the usual match rate.
    pub week: Tallies,
    pub last_postbacks: BTreeMap<u64, u64>,
    /// Pending deliveries in the outbox.
    pub pending: u64,
    /// Free space of the data dir's file system, MB.
    pub disk_free_mb: Option<u64>,
    pub names: BTreeMap<u64, String>,
}

/// A rule's verdict at one tick.
#[derive(Clone, Debug, PartialEq)]
pub struct Judgement {
    pub breached: bool,
    /// The observed value, in the rule's unit.
    pub value: String,
    /// The message to send if this fires, and if it resolves.
    pub fired: String,
    pub resolved: String,
}

/// What a tick does to an alert.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Fire,
    Resolve,
}

impl Action {
    pub fn event_type(self) -> &'static str {
        match self {
            Action::Fire => "alert.fired",
            Action::Resolve => "alert.resolved",
        }
    }
}

/// Fire, resolve or nothing. See the module documentation.
pub fn decide(a: &AlertRecord, breached: bool, now_ms: u64) -> Option<Action> {
    let interval = u64::from(a.min_interval_minutes) * 60_000;
    match (a.state.as_str(), breached) {
        ("firing", false) => Some(Action::Resolve),
        ("firing", true) => None,
        (_, true) if a.last_notified_ms.is_none_or(|t| now_ms >= t + interval) => {
            Some(Action::Fire)
        }
        _ => None,
    }
}

fn sum(t: &Tallies, source: Option<u64>) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for (s, counts) in t {
        if *s == GLOBAL || source.is_some_and(|x| x != *s) {
            continue;
        }
        for (r, n) in counts {
            *out.entry(r.clone()).or_default() += n;
        }
    }
    out
}

fn get(c: &BTreeMap<String, u64>, k: &str) -> u64 {
    c.get(k).copied().unwrap_or(0)
}

fn refused(c: &BTreeMap<String, u64>) -> u64 {
    c.iter()
        .filter(|(r, _)| !ACCEPTED.contains(&r.as_str()))
        .map(|(_, n)| n)
        .sum()
}

/// "40 missing_click_id, 12 invalid_amount": the largest refusals first.
fn breakdown(c: &BTreeMap<String, u64>, keep: impl Fn(&str) -> bool) -> String {
    let mut v: Vec<(&String, &u64)> = c.iter().filter(|(r, _)| keep(r)).collect();
    v.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    v.iter()
        .take(3)
        .map(|(r, n)| format!("{n} {r}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Results a match rate leaves out: repeats and notifications that move
/// no money.
const NOT_JUDGED: &[&str] = &["duplicate", "updated", "ignored"];

fn pct(n: u64, d: u64) -> f64 {
    (n as f64 * 1000.0 / d as f64).round() / 10.0
}

fn window_text(min: u32) -> String {
    match min {
        60 => "the last hour".into(),
        1440 => "the last 24 hours".into(),
        m if m % 1440 == 0 => format!("the last {} days", m / 1440),
        m if m % 60 == 0 => format!("the last {} hours", m / 60),
        m => format!("the last {m} minutes"),
    }
}

fn threshold(a: &AlertRecord) -> f64 {
    a.threshold.parse().unwrap_or(0.0)
}

/// Judge one alert; `None` when it cannot be judged now (too few
/// postbacks in the window, a source that never sent one, no disk figure):
/// its state then stays as it is.
pub fn judge(a: &AlertRecord, i: &Inputs) -> Option<Judgement> {
    // A deleted source sends nothing any more: not a silence to report.
    if a.source_id.is_some_and(|s| !i.names.contains_key(&s)) {
        return None;
    }
    let place = match a.source_id {
        Some(s) => format!(
            "source {} (id {s})",
            i.names.get(&s).map_or("", String::as_str)
        ),
        None => "all sources".to_string(),
    };
    let health_link = match a.source_id {
        Some(s) => format!("GET /api/v1/sources/{s}/health"),
        None => "GET /api/v1/sources/ID/health".into(),
    };
    let win = window_text(a.window_minutes);
    let counts = i
        .windows
        .get(&a.window_minutes)
        .map(|t| sum(t, a.source_id))
        .unwrap_or_default();
    let t = threshold(a);
    match a.rule.as_str() {
        "match_rate_below" => {
            let matched = get(&counts, "matched");
            let judged: u64 = counts
                .iter()
                .filter(|(r, _)| !NOT_JUDGED.contains(&r.as_str()))
                .map(|(_, n)| n)
                .sum();
            if judged < a.min_events {
                return None;
            }
            let rate = pct(matched, judged);
            let week = sum(&i.week, a.source_id);
            let wm = get(&week, "matched");
            let wj: u64 = week
                .iter()
                .filter(|(r, _)| !NOT_JUDGED.contains(&r.as_str()))
                .map(|(_, n)| n)
                .sum();
            let usual = if wj > 0 {
                format!(" (usually {}%)", pct(wm, wj))
            } else {
                String::new()
            };
            let missed = |r: &str| r != "matched" && !NOT_JUDGED.contains(&r);
            let misses = breakdown(&counts, missed);
            let top = counts
                .iter()
                .filter(|(r, _)| missed(r))
                .max_by_key(|(_, n)| **n)
                .map_or("unmatched", |(r, _)| r.as_str());
            let filter = if top == "unmatched" { "no_match" } else { top };
            let events_filter = a
                .source_id
                .map_or(String::new(), |s| format!("source={s}&"));
            Some(Judgement {
                breached: rate < t,
                value: format!("{rate}"),
                fired: format!(
                    "Match rate of {place} fell to {rate}% over {win}{usual}: {} of {judged} \
                     postbacks had no known click ID ({misses}). Open Postbacks filtered on \
                     {filter} (GET /api/v1/events?{events_filter}result={top}), and \
                     {health_link} for the fix.",
                    judged - matched
                ),
                resolved: format!(
                    "Resolved: match rate of {place} is back to {rate}% over {win} (the alert is \
                     below {t}%)."
                ),
            })
        }
        "postback_silence" => {
            let last = match a.source_id {
                Some(s) => i.last_postbacks.get(&s).copied(),
                None => i
                    .last_postbacks
                    .iter()
                    .filter(|(s, _)| **s != GLOBAL)
                    .map(|(_, t)| *t)
                    .max(),
            }?;
            let silent_min = i.now_ms.saturating_sub(last) / 60_000;
            Some(Judgement {
                breached: i.now_ms.saturating_sub(last) >= u64::from(a.window_minutes) * 60_000,
                value: silent_min.to_string(),
                fired: format!(
                    "No postbacks from {place} for {silent_min} minutes (the last at {}). Check \
                     that the offer is live and the network's postback URL is still in place \
                     (POST /api/v1/doctor checks it); {health_link} shows what arrived.",
                    rfc3339(last)
                ),
                resolved: format!(
                    "Resolved: postbacks from {place} are arriving again (the last at {}).",
                    rfc3339(last)
                ),
            })
        }
        "duplicate_rate_above" => {
            let total: u64 = counts.values().sum();
            if total < a.min_events {
                return None;
            }
            let dup = get(&counts, "duplicate");
            let rate = pct(dup, total);
            Some(Judgement {
                breached: rate > t,
                value: format!("{rate}"),
                fired: format!(
                    "Duplicate rate of {place} rose to {rate}% over {win} (alert above {t}%): \
                     {dup} of {total} postbacks repeated a conversion already counted. Check \
                     that the network is not firing the postback twice or retrying answered \
                     ones (GET /api/v1/events?result=duplicate)."
                ),
                resolved: format!(
                    "Resolved: duplicate rate of {place} is down to {rate}% over {win}."
                ),
            })
        }
        "refusals_above" => {
            let n = refused(&counts);
            Some(Judgement {
                breached: n as f64 > t,
                value: n.to_string(),
                fired: format!(
                    "{place} had {n} refused postbacks over {win} (alert above {t}): {}. Open \
                     {health_link} for the reasons and the fix, then replay them (POST \
                     /api/v1/events/replay).",
                    breakdown(&counts, |r| !ACCEPTED.contains(&r))
                ),
                resolved: format!("Resolved: {place} had {n} refused postbacks over {win}."),
            })
        }
        "dead_deliveries" => {
            let n = i
                .windows
                .get(&a.window_minutes)
                .and_then(|t| t.get(&GLOBAL))
                .map_or(0, |c| get(c, health::DEAD_DELIVERY));
            Some(Judgement {
                breached: n as f64 > t,
                value: n.to_string(),
                fired: format!(
                    "{n} deliveries went dead over {win} (alert above {t}): a destination \
                     refuses them. Open GET /api/v1/deliveries?state=dead for the reason, fix \
                     the destination, then retry them."
                ),
                resolved: format!("Resolved: {n} dead deliveries over {win}."),
            })
        }
        "outbox_backlog" => Some(Judgement {
            breached: i.pending as f64 > t,
            value: i.pending.to_string(),
            fired: format!(
                "The outbox has {} pending deliveries (alert above {t}): a destination is slow \
                 or down. Open GET /api/v1/deliveries?state=pending to see which.",
                i.pending
            ),
            resolved: format!(
                "Resolved: the outbox is down to {} pending deliveries.",
                i.pending
            ),
        }),
        "disk_free_below" => {
            let free = i.disk_free_mb?;
            Some(Judgement {
                breached: (free as f64) < t,
                value: free.to_string(),
                fired: format!(
                    "The data dir's disk has {free} MB free (alert below {t} MB): when it is \
                     full, postbacks and clicks are answered 503. Free space (old backups, \
                     retention_days) or grow the disk."
                ),
                resolved: format!("Resolved: the data dir's disk has {free} MB free."),
            })
        }
        _ => None,
    }
}

/// Free space of the file system holding `dir`, MB.
pub fn disk_free_mb(dir: &std::path::Path) -> Option<u64> {
    let s = rustix::fs::statvfs(dir).ok()?;
    Some(s.f_bavail.saturating_mul(s.f_frsize) / (1024 * 1024))
}

/// Every alert.
pub async fn load(app: &App) -> Result<Vec<(u64, AlertRecord)>, StoreError> {
    app.store
        .read(|rtx| {
            let t = rtx.open_table(ALERTS)?;
            let mut out = Vec::new();
            for row in t.iter()? {
                let (k, v) = row?;
                out.push((k.value(), records::decode(v.value())?));
            }
            Ok(out)
        })
        .await
}

/// Read what `alerts` look at.
pub async fn gather(
    app: &App,
    alerts: &[(u64, AlertRecord)],
    now_ms: u64,
) -> Result<Inputs, StoreError> {
    let mut windows: Vec<u32> = alerts.iter().map(|(_, a)| a.window_minutes).collect();
    windows.sort_unstable();
    windows.dedup();
    let mut i = app
        .store
        .read(move |rtx| {
            let mut i = Inputs {
                now_ms,
                ..Default::default()
            };
            for w in windows {
                let from = now_ms.saturating_sub(u64::from(w) * 60_000);
                i.windows.insert(w, health::window(rtx, from, now_ms)?);
            }
            i.week = health::window(rtx, now_ms.saturating_sub(7 * 86_400_000), now_ms)?;
            i.last_postbacks = health::last_postbacks(rtx)?;
            i.pending = rtx.open_table(PENDING)?.len()?;
            Ok(i)
        })
        .await?;
    if alerts.iter().any(|(_, a)| a.rule == "disk_free_below") {
        i.disk_free_mb = disk_free_mb(&app.config.data_dir);
    }
    i.names = app
        .store
        .catalog()
        .sources
        .values()
        .map(|s| (s.id, s.rec.name.clone()))
        .collect();
    Ok(i)
}

/// Judge every alert against `inputs` and write the result: the observed
/// values, and for each fire or resolve the new state, the history entry
/// and the notification's delivery, in one transaction. Returns the
/// transitions.
pub async fn evaluate(
    app: &App,
    alerts: &[(u64, AlertRecord)],
    inputs: &Inputs,
) -> Result<Vec<(u64, Action)>, StoreError> {
    let now = inputs.now_ms;
    let mut plans = Vec::new();
    for (id, a) in alerts {
        let j = judge(a, inputs);
        let action = j.as_ref().and_then(|j| decide(a, j.breached, now));
        plans.push((*id, j, action));
    }
    if plans.is_empty() {
        return Ok(Vec::new());
    }
    app.store
        .write(move |ctx| {
            let mut done = Vec::new();
            for (id, j, action) in plans {
                let Some(bytes) = ctx.alerts()?.get(id)?.map(|v| v.value().to_vec()) else {
                    continue; // deleted meanwhile
                };
                let mut a: AlertRecord = records::decode(&bytes)?;
                a.last_checked_ms = Some(now);
                if let Some(j) = &j {
                    a.last_value = Some(j.value.clone());
                }
                // Judged again here, on the stored state: a tick racing
                // another (a slow one) cannot fire twice.
                let action = action.filter(|_| {
                    j.as_ref()
                        .and_then(|j| decide(&a, j.breached, now))
                        .is_some()
                });
                if let (Some(action), Some(j)) = (action, &j) {
                    let text = match action {
                        Action::Fire => &j.fired,
                        Action::Resolve => &j.resolved,
                    };
                    let delivery = outbox::enqueue_notice(ctx, id, action.event_type(), text, now)?;
                    a.state = match action {
                        Action::Fire => "firing",
                        Action::Resolve => "ok",
                    }
                    .into();
                    a.since_ms = now;
                    a.last_notified_ms = Some(now);
                    a.history.push(AlertEvent {
                        at_ms: now,
                        kind: match action {
                            Action::Fire => "fired",
                            Action::Resolve => "resolved",
                        }
                        .into(),
                        message: text.clone(),
                        delivery_id: delivery,
                    });
                    if a.history.len() > ALERT_HISTORY_LEN {
                        let excess = a.history.len() - ALERT_HISTORY_LEN;
                        a.history.drain(..excess);
                    }
                    done.push((id, action));
                }
                ctx.alerts()?.insert(id, records::encode(&a).as_slice())?;
            }
            Ok(done)
        })
        .await
}

/// One upkeep tick: judge every alert at `now_ms`.
pub async fn tick(app: &App, now_ms: u64) -> Result<Vec<(u64, Action)>, StoreError> {
    let alerts = load(app).await?;
    if alerts.is_empty() {
        return Ok(Vec::new());
    }
    let inputs = gather(app, &alerts, now_ms).await?;
    evaluate(app, &alerts, &inputs).await
}

#[cfg(test)]
mod tests {
    //! Each rule under paused tokio time: an hour and a half of minutes,
    //! breached for a while, healthy, breached again within the minimum
    //! interval, then flapping every minute. Each alert must send exactly
    //! one fired and one resolved message.

    use std::sync::Arc;
    use std::time::Duration;

    use super::*;
    use crate::config::Config;
    use crate::store::DELIVERIES;
    use crate::store::health::NotifyRecord;

    const BASE: u64 = 1_800_000_000_000;

    /// What one simulated minute looks like.
    #[derive(Clone, Copy, PartialEq, Eq)]
    enum Minute {
        Healthy,
        Breached,
    }

    /// Healthy 0-29, breached 30-59, healthy 60-69, breached 70-74
    /// (within the minimum interval of the resolve), then flapping every
    /// minute to 118 (still within it), then healthy to 150. (A breach 60
    /// minutes after the resolve would rightly fire again.)
    fn script(m: u64) -> Minute {
        match m {
            30..=59 | 70..=74 => Minute::Breached,
            80..=118 if m.is_multiple_of(2) => Minute::Breached,
            _ => Minute::Healthy,
        }
    }

    fn app() -> (tempfile::TempDir, Arc<App>) {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = Config::with_data_dir(dir.path());
        cfg.admin_token = Some("t".repeat(32));
        let (app, _) = App::open(cfg).unwrap();
        (dir, Arc::new(app))
    }

    async fn add_alert(app: &App, rule: &str, threshold: &str, window: u32) -> u64 {
        let rec = AlertRecord {
            rule: rule.into(),
            source_id: Some(1).filter(|_| {
                !matches!(
                    rule,
                    "dead_deliveries" | "outbox_backlog" | "disk_free_below"
                )
            }),
            threshold: threshold.into(),
            window_minutes: window,
            min_interval_minutes: 60,
            min_events: 5,
            notify: NotifyRecord {
                kind: "slack".into(),
                url: Some("https://hooks.slack.com/services/T0/B0/X".into()),
                ..Default::default()
            },
            created_ms: BASE,
            state: "ok".into(),
            since_ms: BASE,
            ..Default::default()
        };
        app.store
            .write(move |ctx| {
                ctx.alerts()?.insert(1, records::encode(&rec).as_slice())?;
                Ok(1)
            })
            .await
            .unwrap()
    }

    async fn count(app: &App, source: u64, result: &'static str, n: u32, ms: u64) {
        app.store
            .write(move |ctx| {
                for _ in 0..n {
                    health::count(ctx, source, result, ms)?;
                }
                Ok(())
            })
            .await
            .unwrap();
    }

    /// The notifications queued, in order: (event type, text).
    async fn notices(app: &App) -> Vec<(String, String)> {
        app.store
            .read(|rtx| {
                let t = rtx.open_table(DELIVERIES)?;
                let mut out = Vec::new();
                for row in t.iter()? {
                    let d: records::DeliveryRecord = records::decode(row?.1.value())?;
                    if d.alert_id.is_some() {
                        out.push((d.event_type, d.notice.unwrap_or_default()));
                    }
                }
                Ok(out)
            })
            .await
            .unwrap()
    }

    /// Run the script for one rule; `feed` writes a minute's counters,
    /// `tweak` sets the measured inputs (backlog, disk).
    async fn scenario(
        rule: &str,
        threshold: &str,
        window: u32,
        feed: impl AsyncFeed,
        tweak: impl Fn(Minute, &mut Inputs),
    ) -> Vec<(String, String)> {
        let (_dir, app) = app();
        add_alert(&app, rule, threshold, window).await;
        let start = tokio::time::Instant::now();
        let mut transitions = Vec::new();
        for m in 0..150u64 {
            tokio::time::advance(Duration::from_secs(60)).await;
            let now = BASE + start.elapsed().as_millis() as u64;
            feed.feed(&app, script(m), now).await;
            let alerts = load(&app).await.unwrap();
            let mut inputs = gather(&app, &alerts, now).await.unwrap();
            inputs.names.insert(1, "Everflow".into());
            tweak(script(m), &mut inputs);
            for (_, a) in evaluate(&app, &alerts, &inputs).await.unwrap() {
                transitions.push((m, a));
            }
        }
        let n = notices(&app).await;
        assert_eq!(
            n.iter().map(|(t, _)| t.as_str()).collect::<Vec<_>>(),
            ["alert.fired", "alert.resolved"],
            "{rule}: {transitions:?}"
        );
        // Fired during the first breach, resolved after it, never later.
        assert!(
            matches!(transitions[0], (30..=59, Action::Fire)),
            "{rule}: {transitions:?}"
        );
        assert!(
            matches!(transitions[1], (60..=70, Action::Resolve)),
            "{rule}: {transitions:?}"
        );
        let stored = load(&app).await.unwrap();
        assert_eq!(stored[0].1.state, "ok");
        assert_eq!(stored[0].1.history.len(), 2);
        n
    }

    trait AsyncFeed {
        fn feed<'a>(
            &'a self,
            app: &'a App,
            m: Minute,
            now: u64,
        ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + 'a>>;
    }

    /// Writes `healthy` or `breached` counts of source 1 each minute.
    struct Counts(
        &'static [(&'static str, u32)],
        &'static [(&'static str, u32)],
        u64,
    );

    impl AsyncFeed for Counts {
        fn feed<'a>(
            &'a self,
            app: &'a App,
            m: Minute,
            now: u64,
        ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + 'a>> {
            Box::pin(async move {
                let rows = if m == Minute::Healthy { self.0 } else { self.1 };
                for (r, n) in rows {
                    count(app, self.2, r, *n, now).await;
                }
            })
        }
    }

    fn keep(_: Minute, _: &mut Inputs) {}

    #[tokio::test(start_paused = true)]
    async fn match_rate_below_fires_once_and_resolves_once() {
        let feed = Counts(
            &[("matched", 10)],
            &[("unmatched", 6), ("missing_click_id", 4)],
            1,
        );
        let n = scenario("match_rate_below", "80", 5, feed, keep).await;
        assert!(n[0].1.starts_with("Match rate of source"), "{}", n[0].1);
        assert!(n[0].1.contains("had no known click ID"), "{}", n[0].1);
        assert!(n[0].1.contains("(usually "), "{}", n[0].1);
        assert!(n[1].1.starts_with("Resolved: match rate"), "{}", n[1].1);
    }

    #[tokio::test(start_paused = true)]
    async fn postback_silence_fires_once_and_resolves_once() {
        let feed = Counts(&[("matched", 1)], &[], 1);
        let n = scenario("postback_silence", "", 10, feed, keep).await;
        assert!(n[0].1.starts_with("No postbacks from source"), "{}", n[0].1);
    }

    #[tokio::test(start_paused = true)]
    async fn duplicate_rate_above_fires_once_and_resolves_once() {
        let feed = Counts(&[("matched", 10)], &[("matched", 5), ("duplicate", 5)], 1);
        let n = scenario("duplicate_rate_above", "20", 5, feed, keep).await;
        assert!(n[0].1.starts_with("Duplicate rate of source"), "{}", n[0].1);
    }

    #[tokio::test(start_paused = true)]
    async fn refusals_above_fires_once_and_resolves_once() {
        let feed = Counts(&[("matched", 10)], &[("missing_click_id", 10)], 1);
        let n = scenario("refusals_above", "5", 5, feed, keep).await;
        assert!(n[0].1.contains("refused postbacks"), "{}", n[0].1);
        assert!(n[0].1.contains("missing_click_id"), "{}", n[0].1);
    }

    #[tokio::test(start_paused = true)]
    async fn dead_deliveries_fires_once_and_resolves_once() {
        let feed = Counts(&[], &[(health::DEAD_DELIVERY, 1)], GLOBAL);
        let n = scenario("dead_deliveries", "0", 5, feed, keep).await;
        assert!(n[0].1.contains("deliveries went dead"), "{}", n[0].1);
    }

    #[tokio::test(start_paused = true)]
    async fn outbox_backlog_fires_once_and_resolves_once() {
        let n = scenario("outbox_backlog", "100", 0, Counts(&[], &[], 1), |m, i| {
            i.pending = if m == Minute::Healthy { 10 } else { 500 };
        })
        .await;
        assert!(n[0].1.contains("500 pending deliveries"), "{}", n[0].1);
    }

    #[tokio::test(start_paused = true)]
    async fn disk_free_below_fires_once_and_resolves_once() {
        let n = scenario("disk_free_below", "1000", 0, Counts(&[], &[], 1), |m, i| {
            i.disk_free_mb = Some(if m == Minute::Healthy { 5000 } else { 100 });
        })
        .await;
        assert!(n[0].1.contains("100 MB free"), "{}", n[0].1);
    }

    #[test]
    fn decide_holds_a_second_fire_back_for_the_interval() {
        let mut a = AlertRecord {
            min_interval_minutes: 60,
            state: "ok".into(),
            ..Default::default()
        };
        assert_eq!(decide(&a, true, 1_000), Some(Action::Fire));
        a.state = "firing".into();
        a.last_notified_ms = Some(1_000);
        assert_eq!(decide(&a, true, 2_000), None);
        assert_eq!(decide(&a, false, 2_000), Some(Action::Resolve));
        a.state = "ok".into();
        a.last_notified_ms = Some(2_000);
        assert_eq!(decide(&a, true, 2_000 + 59 * 60_000), None);
        assert_eq!(decide(&a, true, 2_000 + 60 * 60_000), Some(Action::Fire));
        assert_eq!(decide(&a, false, 2_000), None);
    }

    #[test]
    fn an_alert_on_a_deleted_source_is_not_judged() {
        let a = AlertRecord {
            rule: "postback_silence".into(),
            source_id: Some(4),
            window_minutes: 10,
            ..Default::default()
        };
        let mut i = Inputs {
            now_ms: BASE,
            ..Default::default()
        };
        i.last_postbacks.insert(4, BASE - 3_600_000);
        assert_eq!(judge(&a, &i), None);
        i.names.insert(4, "CAKE".into());
        let j = judge(&a, &i).unwrap();
        assert!(j.breached);
        assert!(
            j.fired
                .starts_with("No postbacks from source CAKE (id 4) for 60 minutes"),
            "{}",
            j.fired
        );
    }

    #[test]
    fn the_real_disk_has_a_free_figure() {
        assert!(disk_free_mb(std::path::Path::new(".")).is_some());
    }
}
