//! The delivery worker: drains the outbox with a global and a
//! per-destination concurrency limit, retries with exponential backoff and
//! jitter (honouring `Retry-After`) within each platform's age limit, and
//! writes every attempt's result back to redb.
//!
//! Time comes from an injectable clock and waits are tokio timers, so the
//! scheduling is tested under paused time with no real sleeps.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use redb::ReadableTable;
use tokio::sync::{Notify, Semaphore};

use super::http::{Outbound, Response, SendError};
use super::notify;
use super::outbox::{self, AttemptResult, parse_outbox_key};
use super::platforms::{self, Event, Kind, OutRequest, Verdict};
use crate::store::health::{ALERTS, AlertRecord};
use crate::store::records::{self, ClickRecord, ConversionRecord, DeliveryRecord};
use crate::store::{CLICKS, CONVERSIONS, DELIVERIES, OUTBOX, Store, StoreError};

pub use crate::util::clock::{Clock, system_clock};

/// Sends a built request. Production uses [`Outbound`] (real HTTP); the
/// scheduling tests substitute a scripted transport under paused time.
pub trait Transport: Send + Sync {
    fn send<'a>(
        &'a self,
        req: &'a OutRequest,
    ) -> Pin<Box<dyn Future<Output = Result<Response, SendError>> + Send + 'a>>;
}

impl Transport for Outbound {
    fn send<'a>(
        &'a self,
        req: &'a OutRequest,
    ) -> Pin<Box<dyn Future<Output = Result<Response, SendError>> + Send + 'a>> {
        Box::pin(Outbound::send(self, req))
    }
}

/// Tunables.
#[derive(Clone, Copy, Debug)]
pub struct Settings {
    /// First retry delay; doubles per attempt (full jitter).
    pub backoff_base: Duration,
    /// Longest delay between attempts.
    pub backoff_cap: Duration,
    /// Attempts in flight per destination.
    pub per_destination: usize,
    /// Attempts in flight in all.
    pub global: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            backoff_base: Duration::from_secs(30),
            backoff_cap: Duration::from_secs(6 * 3600),
            per_destination: 4,
            global: 32,
        }
    }
}

/// Exponential backoff with full jitter: a uniform delay in
/// `[base·2^(attempt-1) / 2, base·2^(attempt-1)]`, capped. `rand01` in [0, 1).
pub fn backoff(s: &Settings, attempt: u32, rand01: f64) -> Duration {
    let exp = s
        .backoff_base
        .saturating_mul(1u32 << attempt.saturating_sub(1).min(20));
    let top = exp.min(s.backoff_cap);
    top.mul_f64(0.5 + 0.5 * rand01.clamp(0.0, 1.0))
}

/// Outcome counters of one destination.
#[derive(Debug, Default)]
pub struct DestinationCounters {
    pub delivered: AtomicU64,
    pub retried: AtomicU64,
    pub dead: AtomicU64,
}

/// The worker.
pub struct Forwarder {
    store: Arc<Store>,
    transport: Arc<dyn Transport>,
    clock: Clock,
    settings: Settings,
    /// Deliveries with an attempt running: never started twice at once.
    in_flight: Mutex<HashSet<String>>,
    per_destination: Mutex<HashMap<u64, Arc<Semaphore>>>,
    global: Arc<Semaphore>,
    /// Google OAuth access tokens per destination, with expiry (ms).
    google_tokens: Mutex<HashMap<u64, (String, u64)>>,
    /// Woken when an attempt finishes (a slot is free).
    slot_free: Notify,
    pub counters: Mutex<HashMap<u64, Arc<DestinationCounters>>>,
}

/// Deliveries read per scan of the due index.
const SCAN: usize = 256;
/// Sleep between scans when nothing is queued.
const IDLE: Duration = Duration::from_secs(30);
/// Longest sleep even when the next due time is known.
const MAX_SLEEP: Duration = Duration::from_secs(3600);

struct Loaded {
    delivery: DeliveryRecord,
    conversion: Option<ConversionRecord>,
    click: Option<ClickRecord>,
    /// An alert notification's alert (`delivery.alert_id`).
    alert: Option<AlertRecord>,
}

impl Forwarder {
    pub fn new(
        store: Arc<Store>,
        transport: Arc<dyn Transport>,
        clock: Clock,
        settings: Settings,
    ) -> Arc<Forwarder> {
        Arc::new(Forwarder {
            store,
            transport,
            clock,
            settings,
            in_flight: Mutex::new(HashSet::new()),
            per_destination: Mutex::new(HashMap::new()),
            global: Arc::new(Semaphore::new(settings.global.max(1))),
            google_tokens: Mutex::new(HashMap::new()),
            slot_free: Notify::new(),
            counters: Mutex::new(HashMap::new()),
        })
    }

    /// Counters of a destination.
    pub fn counters_for(&self, destination: u64) -> Arc<DestinationCounters> {
        lock(&self.counters).entry(destination).or_default().clone()
    }

    /// Drain the outbox until `stop` resolves.
    pub async fn run(self: Arc<Self>, stop: impl Future<Output = ()>) {
        tokio::pin!(stop);
        loop {
            let now = (self.clock)();
            let scan = self
                .store
                .read(move |rtx| {
                    let t = rtx.open_table(OUTBOX)?;
                    let mut due = Vec::new();
                    let mut next = None;
                    for row in t.iter()? {
                        let (k, _) = row?;
                        let Some((at, id)) = parse_outbox_key(k.value()) else {
                            continue;
                        };
                        if at > now {
                            next = Some(at);
                            break;
                        }
                        due.push((at, id.to_string()));
                        if due.len() >= SCAN {
                            break;
                        }
                    }
                    Ok((due, next))
                })
                .await;
            let (due, next) = match scan {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!(error = %e, "outbox scan failed; retrying");
                    (Vec::new(), Some(now + 1000))
                }
            };
            for (at, id) in due {
                if lock(&self.in_flight).insert(id.clone()) {
                    let this = self.clone();
                    tokio::spawn(async move {
                        this.attempt(at, &id).await;
                        lock(&this.in_flight).remove(&id);
                        this.slot_free.notify_one();
                    });
                }
            }
            // Sleep until the next due attempt (or a write wakes us); with
            // nothing queued, rescan now and then anyway.
            let wait = next
                .map(|at| Duration::from_millis(at.saturating_sub(now)))
                .unwrap_or(IDLE)
                .min(MAX_SLEEP);
            tokio::select! {
                () = self.store.forwarder_wake.notified() => {}
                () = self.slot_free.notified() => {}
                () = tokio::time::sleep(wait) => {}
                () = &mut stop => return,
            }
        }
    }

    async fn attempt(self: &Arc<Self>, scheduled_ms: u64, id: &str) {
        let Ok(_global) = self.global.clone().acquire_owned().await else {
            return;
        };
        let key = id.to_string();
        let loaded = self
            .store
            .read(move |rtx| {
                let d = rtx.open_table(DELIVERIES)?;
                let Some(v) = d.get(key.as_str())? else {
                    return Ok(None);
                };
                let delivery: DeliveryRecord = records::decode(v.value())?;
                let c = rtx.open_table(CONVERSIONS)?;
                let conversion: Option<ConversionRecord> =
                    match c.get(delivery.conversion_id.as_str())? {
                        Some(v) => Some(records::decode(v.value())?),
                        None => None,
                    };
                let click = match &conversion {
                    Some(conv) if conv.matched => {
                        let k = rtx.open_table(CLICKS)?;
                        match k.get(conv.click_id.as_str())? {
                            Some(v) => Some(records::decode::<ClickRecord>(v.value())?),
                            None => None,
                        }
                    }
                    _ => None,
                };
                let alert = match delivery.alert_id {
                    Some(a) => match rtx.open_table(ALERTS)?.get(a)? {
                        Some(v) => Some(records::decode::<AlertRecord>(v.value())?),
                        None => None,
                    },
                    None => None,
                };
                Ok(Some(Loaded {
                    delivery,
                    conversion,
                    click,
                    alert,
                }))
            })
            .await;
        let loaded = match loaded {
            Ok(Some(l)) => l,
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(error = %e, delivery = id, "cannot load delivery; will retry");
                return;
            }
        };
        if loaded.delivery.state != outbox::PENDING || loaded.delivery.next_ms != scheduled_ms {
            return;
        }
        let dest_id = loaded.delivery.destination_id;
        let sem = lock(&self.per_destination)
            .entry(dest_id)
            .or_insert_with(|| Arc::new(Semaphore::new(self.settings.per_destination.max(1))))
            .clone();
        let Ok(_slot) = sem.acquire_owned().await else {
            return;
        };
        // The decision time: the log's `at` and the base of the next
        // attempt's delay are the same instant.
        let decided = (self.clock)();
        let result = self.try_deliver(&loaded, id, decided).await;
        let counters = self.counters_for(dest_id);
        match &result {
            AttemptResult::Delivered { .. } => counters.delivered.fetch_add(1, Ordering::Relaxed),
            AttemptResult::Retry { .. } => counters.retried.fetch_add(1, Ordering::Relaxed),
            AttemptResult::Dead { .. } => counters.dead.fetch_add(1, Ordering::Relaxed),
        };
        let now = decided;
        let key = id.to_string();
        if let Err(e) = self
            .store
            .write(move |ctx| outbox::record_attempt(ctx, &key, scheduled_ms, result, now))
            .await
        {
            // The attempt will run again (at-least-once); the platform
            // dedupes on the event ID.
            tracing::warn!(error = %e, delivery = id, "cannot record delivery attempt");
        }
    }

    async fn try_deliver(&self, l: &Loaded, id: &str, now: u64) -> AttemptResult {
        if let Some(alert_id) = l.delivery.alert_id {
            return self.try_notify(l, id, now, alert_id).await;
        }
        let catalog = self.store.catalog();
        let Some(dest) = catalog
            .destinations
            .get(&l.delivery.destination_id)
            .cloned()
        else {
            return dead(None, "the destination was deleted");
        };
        let Some(conv) = &l.conversion else {
            return dead(None, "the conversion no longer exists");
        };
        let Some(kind) = Kind::parse(&dest.rec.kind) else {
            return dead(None, "unknown destination type");
        };
        // Ad platforms refuse events older than their window, counted from
        // the conversion; a webhook or postback about a status change (a
        // chargeback weeks later) is as fresh as the change itself.
        let since = match kind {
            Kind::Webhook | Kind::Postback => l.delivery.created_ms,
            _ => conv.created_ms,
        };
        let deadline = since.saturating_add(kind.max_age().as_millis() as u64);
        if now > deadline {
            return dead(
                None,
                &format!(
                    "expired: the conversion is older than {} accepts ({} h)",
                    kind.as_str(),
                    kind.max_age().as_secs() / 3600
                ),
            );
        }
        let secrets: Vec<String> = platforms::secret_fields(kind)
            .iter()
            .filter_map(|f| {
                dest.config
                    .get(*f)
                    .and_then(|v| v.as_str())
                    .map(str::to_string)
            })
            .collect();
        let secret_refs: Vec<&str> = secrets.iter().map(String::as_str).collect();
        let base_url = dest.rec.base_url.as_deref();
        let token = if kind == Kind::GoogleAds {
            match self
                .google_token(dest.id, &dest.config, base_url, now, &secret_refs)
                .await
            {
                Ok(t) => Some(t),
                Err((status, verdict)) => return self.finish(l, now, deadline, verdict, status),
            }
        } else {
            None
        };
        let ev = Event {
            delivery_id: id,
            conversion_id: &l.delivery.conversion_id,
            conversion: conv,
            click: l.click.as_ref(),
            now_ms: now,
        };
        let req = match platforms::build(kind, &dest.config, base_url, &ev, token.as_deref()) {
            Ok(r) => r,
            Err(platforms::BuildError::Permanent(why)) => return dead(None, &why),
        };
        let verdict = match self.transport.send(&req).await {
            Err(SendError::Refused(why)) => Verdict::Dead { reason: why },
            Err(SendError::Transient(why)) => Verdict::Retry {
                after: None,
                reason: why,
            },
            Ok(resp) => {
                if kind == Kind::GoogleAds && resp.status == 401 {
                    // The cached token may have been revoked early.
                    lock(&self.google_tokens).remove(&dest.id);
                }
                let v = platforms::classify(
                    kind,
                    resp.status,
                    &resp.headers,
                    &resp.body,
                    now,
                    &secret_refs,
                );
                return self.finish(l, now, deadline, v, Some(resp.status));
            }
        };
        self.finish(l, now, deadline, verdict, None)
    }

    /// One attempt of an alert's notification (`forward::notify`).
    async fn try_notify(&self, l: &Loaded, id: &str, now: u64, alert_id: u64) -> AttemptResult {
        let Some(alert) = &l.alert else {
            return dead(None, "the alert was deleted");
        };
        let deadline = l.delivery.created_ms.saturating_add(notify::MAX_AGE_MS);
        if now > deadline {
            return dead(None, "expired: the notification is older than a day");
        }
        let secrets = notify::secrets(&alert.notify);
        let scrub = |why: String| {
            secrets
                .iter()
                .filter(|s| !s.is_empty())
                .fold(why, |w, s| w.replace(s.as_str(), "[redacted]"))
        };
        let notice = notify::Notice {
            delivery_id: id,
            alert_id,
            event_type: &l.delivery.event_type,
            text: l.delivery.notice.as_deref().unwrap_or_default(),
            at_ms: l.delivery.created_ms,
            now_ms: now,
        };
        let req = match notify::build(&alert.notify, &notice) {
            Ok(r) => r,
            Err(platforms::BuildError::Permanent(why)) => return dead(None, &scrub(why)),
        };
        let verdict = match self.transport.send(&req).await {
            Err(SendError::Refused(why)) => Verdict::Dead { reason: scrub(why) },
            Err(SendError::Transient(why)) => Verdict::Retry {
                after: None,
                reason: scrub(why),
            },
            Ok(resp) => {
                let refs: Vec<&str> = secrets.iter().map(String::as_str).collect();
                // Slack, Telegram and a webhook answer with the shared
                // status rules: 2xx taken, 429/5xx retried (Retry-After
                // honoured), other 4xx dead.
                let v = platforms::classify(
                    Kind::Webhook,
                    resp.status,
                    &resp.headers,
                    &resp.body,
                    now,
                    &refs,
                );
                return self.finish(l, now, deadline, v, Some(resp.status));
            }
        };
        self.finish(l, now, deadline, verdict, None)
    }

    fn finish(
        &self,
        l: &Loaded,
        now: u64,
        deadline: u64,
        v: Verdict,
        status: Option<u16>,
    ) -> AttemptResult {
        match v {
            Verdict::Delivered => AttemptResult::Delivered {
                status: status.unwrap_or(200),
                note: None,
            },
            Verdict::Dead { reason } => AttemptResult::Dead { status, reason },
            Verdict::Retry { after, reason } => {
                let mut r = self.schedule(l, now, deadline, (status, reason, after));
                if let AttemptResult::Retry { status: s, .. } = &mut r {
                    *s = status;
                }
                r
            }
        }
    }

    /// The next attempt after a failure, or dead when it would fall past
    /// the platform's age limit.
    fn schedule(
        &self,
        l: &Loaded,
        now: u64,
        deadline: u64,
        (status, reason, after): (Option<u16>, String, Option<Duration>),
    ) -> AttemptResult {
        let attempt = l.delivery.attempts + 1;
        let mut delay = backoff(&self.settings, attempt, jitter());
        if let Some(a) = after {
            delay = delay.max(a);
        }
        let next_ms = now.saturating_add(delay.as_millis() as u64);
        if next_ms > deadline {
            return AttemptResult::Dead {
                status,
                reason: format!(
                    "gave up: the next attempt would be past the platform's age limit; last error: {reason}"
                ),
            };
        }
        AttemptResult::Retry {
            status,
            reason,
            next_ms,
        }
    }

    /// A cached or freshly exchanged Google OAuth access token; on failure
    /// the verdict for the delivery (a revoked refresh token is permanent).
    async fn google_token(
        &self,
        dest: u64,
        config: &serde_json::Value,
        base_url: Option<&str>,
        now: u64,
        secrets: &[&str],
    ) -> Result<String, (Option<u16>, Verdict)> {
        if let Some((t, exp)) = lock(&self.google_tokens).get(&dest)
            && *exp > now
        {
            return Ok(t.clone());
        }
        let req = platforms::google_token_request(config, base_url);
        match self.transport.send(&req).await {
            Err(SendError::Refused(why)) => Err((
                None,
                Verdict::Dead {
                    reason: format!("OAuth token: {why}"),
                },
            )),
            Err(SendError::Transient(why)) => Err((
                None,
                Verdict::Retry {
                    after: None,
                    reason: format!("OAuth token: {why}"),
                },
            )),
            Ok(resp) if resp.status == 200 => match platforms::parse_google_token(&resp.body) {
                Ok((token, expires_in)) => {
                    // Refresh a minute early.
                    let exp = now + expires_in.saturating_sub(60) * 1000;
                    lock(&self.google_tokens).insert(dest, (token.clone(), exp));
                    Ok(token)
                }
                Err(e) => Err((
                    Some(200),
                    Verdict::Retry {
                        after: None,
                        reason: format!("OAuth token: {e}"),
                    },
                )),
            },
            Ok(resp) => {
                let v = match platforms::classify(
                    Kind::GoogleAds,
                    resp.status,
                    &resp.headers,
                    &resp.body,
                    now,
                    secrets,
                ) {
                    Verdict::Dead { reason } => Verdict::Dead {
                        reason: format!("OAuth token refresh refused: {reason}"),
                    },
                    Verdict::Retry { after, reason } => Verdict::Retry {
                        after,
                        reason: format!("OAuth token refresh failed: {reason}"),
                    },
                    Verdict::Delivered => Verdict::Retry {
                        after: None,
                        reason: format!("OAuth token refresh answered {}", resp.status),
                    },
                };
                Err((Some(resp.status), v))
            }
        }
    }
}

fn dead(status: Option<u16>, reason: &str) -> AttemptResult {
    AttemptResult::Dead {
        status,
        reason: reason.to_string(),
    }
}

fn jitter() -> f64 {
    let mut b = [0u8; 8];
    let _ = getrandom::fill(&mut b);
    (u64::from_le_bytes(b) >> 11) as f64 / (1u64 << 53) as f64
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Count pending deliveries and the age of the oldest (ms), for metrics.
pub fn queue_stats(
    rtx: &redb::ReadTransaction,
    now: u64,
) -> Result<(u64, Option<u64>), StoreError> {
    use redb::ReadableTableMetadata;
    let p = rtx.open_table(crate::store::PENDING)?;
    let depth = p.len()?;
    let oldest = match p.first()? {
        Some((k, _)) => crate::util::ids::time_of(k.value()).map(|t| now.saturating_sub(t)),
        None => None,
    };
    Ok((depth, oldest))
}
