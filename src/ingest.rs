//! Postback and IPN ingestion inside the writer's transaction: dedup,
//! matching, status updates, the events log and replay.
//!
//! Runs serially in the writer thread, so the dedup check and the insert it
//! guards can never race: two identical postbacks arriving together are one
//! `matched` and one `duplicate`, never two conversions.

pub mod bulk;
mod clicks;
mod replay;

use clicks::resolve_click;
pub use clicks::{Prefetched, prefetch_click};
pub use replay::{ReplayError, replay};

use redb::ReadableTable;
use serde_json::{Value, json};

use crate::forward::outbox;
use crate::inbound::ipn::{self, Notification, TxType};
use crate::inbound::postback::{Fields, Kind, Rejection, Status};
use crate::store::records::{self, ConversionRecord, EventRecord};
use crate::store::{StoreError, WriteCtx, health, rollup};
use crate::util::ids;
use crate::util::signing::Verified;

/// What a postback request looked like, as stored in the events log.
#[derive(Clone, Debug)]
pub struct RawRequest {
    pub method: String,
    pub path: String,
    pub query: String,
    pub content_type: Option<String>,
    /// Up to the stored cap.
    pub body: Vec<u8>,
    pub body_truncated: bool,
    pub remote_ip: String,
    pub user_agent: Option<String>,
}

/// A stored request, taken again as it arrived (replays).
impl From<EventRecord> for RawRequest {
    fn from(ev: EventRecord) -> Self {
        RawRequest {
            method: ev.method,
            path: ev.path,
            query: ev.query,
            content_type: ev.content_type,
            body: ev.body,
            body_truncated: ev.body_truncated,
            remote_ip: ev.remote_ip,
            user_agent: ev.user_agent,
        }
    }
}

/// The answer to a postback, as decided in the writer. The JSON body is
/// built from it by [`Outcome::body`] on the handler's thread, not in the
/// writer, which is the serial part of the ingest path.
#[derive(Clone, Debug)]
pub struct Outcome {
    pub event_id: String,
    pub http_status: u16,
    pub answer: Answer,
}

/// What happened to a postback.
#[derive(Clone, Debug)]
pub enum Answer {
    /// Refused (`code` is the stable error code).
    Rejected {
        code: &'static str,
        message: String,
        field: Option<String>,
    },
    /// A signed request whose signature was already accepted.
    SignatureReplay,
    /// The same conversion with the same status.
    Duplicate {
        conversion_id: String,
        status: String,
    },
    /// The same conversion with a new status.
    Updated {
        conversion_id: String,
        status: &'static str,
        previous_status: String,
    },
    /// A new conversion on a recorded click.
    Matched {
        conversion_id: String,
        kind: &'static str,
        click_id: String,
        status: &'static str,
    },
    /// A new conversion on an unknown click ID (stored, answered 202).
    Unmatched {
        conversion_id: String,
        kind: &'static str,
        click_id: String,
        status: &'static str,
        message: String,
    },
    /// An IPN notification that moves no money (cancel-rebill, abandoned
    /// order, connection test): logged and answered, nothing counted.
    Ignored {
        /// The network's own word for it.
        notification: String,
        message: String,
    },
}

const SIGNATURE_REPLAY_MESSAGE: &str =
    "this signed request was already received (same signature); it is not counted again";

impl Answer {
    /// The `result` (or, for a refusal, the `error`) reported and logged.
    pub fn result(&self) -> &str {
        match self {
            Answer::Rejected { code, .. } => code,
            Answer::SignatureReplay | Answer::Duplicate { .. } => "duplicate",
            Answer::Updated { .. } => "updated",
            Answer::Matched { .. } => "matched",
            Answer::Unmatched { .. } => "unmatched",
            Answer::Ignored { .. } => "ignored",
        }
    }

    fn message(&self) -> Option<&str> {
        match self {
            Answer::Rejected { message, .. }
            | Answer::Unmatched { message, .. }
            | Answer::Ignored { message, .. } => Some(message),
            Answer::SignatureReplay => Some(SIGNATURE_REPLAY_MESSAGE),
            _ => None,
        }
    }

    fn conversion_id(&self) -> Option<&str> {
        match self {
            Answer::Duplicate { conversion_id, .. }
            | Answer::Updated { conversion_id, .. }
            | Answer::Matched { conversion_id, .. }
            | Answer::Unmatched { conversion_id, .. } => Some(conversion_id),
            Answer::Rejected { .. } | Answer::SignatureReplay | Answer::Ignored { .. } => None,
        }
    }
}

impl Outcome {
    /// The response body (the contract's JSON shapes).
    pub fn body(&self) -> Value {
        let mut body = match &self.answer {
            Answer::Rejected {
                code,
                message,
                field,
            } => {
                let mut b = json!({"error": code, "message": message});
                if let Some(f) = field {
                    b["field"] = json!(f);
                }
                b
            }
            Answer::SignatureReplay => {
                json!({"result": "duplicate", "message": SIGNATURE_REPLAY_MESSAGE})
            }
            Answer::Duplicate {
                conversion_id,
                status,
            } => json!({
                "result": "duplicate",
                "conversion_id": conversion_id,
                "status": status,
            }),
            Answer::Updated {
                conversion_id,
                status,
                previous_status,
            } => json!({
                "result": "updated",
                "conversion_id": conversion_id,
                "status": status,
                "previous_status": previous_status,
            }),
            Answer::Matched {
                conversion_id,
                kind,
                click_id,
                status,
            } => json!({
                "result": "matched",
                "conversion_id": conversion_id,
                "type": kind,
                "click_id": click_id,
                "status": status,
            }),
            Answer::Unmatched {
                conversion_id,
                kind,
                click_id,
                status,
                message,
            } => json!({
                "result": "unmatched",
                "error": "no_match",
                "message": message,
                "conversion_id": conversion_id,
                "type": kind,
                "click_id": click_id,
                "status": status,
            }),
            Answer::Ignored {
                notification,
                message,
            } => json!({
                "result": "ignored",
                "notification": notification,
                "message": message,
            }),
        };
        body["event_id"] = json!(self.event_id);
        body
    }
}

/// A click ready for the writer: its record encoded and its roll-up rows
/// computed on the handler's thread (the writer is the serial part).
pub struct ClickWrite {
    pub id: String,
    bytes: Vec<u8>,
    /// Where `unique` is in `bytes` (`records::unique_offset`).
    unique_at: usize,
    /// The external ID to index (`store::EXTERNAL_IDS`), when the caller
    /// gave one.
    external_id: Option<String>,
    /// Every roll-up row it counts in ([`rollup::stored_keys`]).
    rows: Vec<Vec<u8>>,
    counters: rollup::Counters,
    /// The visitor's keyed hash, when `unique` is still to be decided: the
    /// writer decides it, so two racing clicks of one visitor cannot both
    /// be unique.
    visitor: Option<([u8; 16], u64, u64)>,
}

impl ClickWrite {
    /// A click as recorded (`unique` as set in `rec`).
    pub fn new(id: String, rec: &records::ClickRecord) -> ClickWrite {
        let (rows, counters) = rollup::click_row(rec);
        let bytes = records::encode(rec);
        ClickWrite {
            id,
            unique_at: records::unique_offset(rec, bytes.len()),
            external_id: rec.external_id.clone(),
            bytes,
            rows: rollup::stored_keys(&rows),
            counters,
            visitor: None,
        }
    }

    /// Decide `unique` in the writer: the visitor's last click on this
    /// link (the visits table) against `now_ms` and the window.
    pub fn with_visitor(
        mut self,
        visitor: Option<[u8; 16]>,
        now_ms: u64,
        window_ms: u64,
    ) -> ClickWrite {
        self.visitor = visitor.map(|v| (v, now_ms, window_ms));
        self
    }
}

/// Record one click and count it, in the writer's transaction. Answers
/// whether the click is unique.
///
/// A click with an external ID that another click holds (or that is
/// another click's ID) is not recorded: the answer is `Ok(Err(that click's
/// ID))`, and nothing was written.
pub fn record_click(
    ctx: &mut WriteCtx<'_>,
    mut w: ClickWrite,
) -> Result<Result<bool, String>, StoreError> {
    if let Some(ext) = &w.external_id {
        if let Some(other) = ctx.external_ids()?.get(ext.as_str())? {
            return Ok(Err(other.value().to_string()));
        }
        let as_click = ids::normalize_click_id(ext);
        if as_click != w.id && ctx.clicks()?.get(as_click.as_str())?.is_some() {
            return Ok(Err(as_click));
        }
        ctx.external_ids()?.insert(ext.as_str(), w.id.as_str())?;
    }
    if let Some((v, now, window)) = w.visitor {
        let previous = ctx.visits()?.insert(v.as_slice(), now)?.map(|g| g.value());
        let unique = crate::tracking::quality::is_unique(previous, now, window);
        // One byte patched in the encoded record (see `set_unique`), and
        // the roll-up counters to match.
        records::set_unique(&mut w.bytes, w.unique_at, unique);
        w.counters.unique_clicks = i64::from(unique);
    }
    ctx.clicks()?.insert(w.id.as_str(), w.bytes.as_slice())?;
    rollup::add_stored(ctx, w.rows, &w.counters)?;
    Ok(Ok(w.counters.unique_clicks > 0))
}

/// The dedup key: (source, transaction_id), or without one
/// (source, click_id, event name). `\x1f` cannot occur in a click ID and is
/// refused in free-text fields (control character), so keys cannot collide.
/// `click_id` is the matched click's ID (a postback naming a click by its
/// external ID dedupes with one naming it by click ID), else the click ID
/// as received.
pub fn dedup_key(source_id: u64, f: &Fields, click_id: &str) -> String {
    match &f.transaction_id {
        Some(t) => format!("{source_id}\x1ft\x1f{t}"),
        None => format!("{source_id}\x1fc\x1f{click_id}\x1f{}", f.event_name()),
    }
}

/// Signed timestamps older than this (seconds) can no longer be replayed:
/// they are outside every source's tolerance (at most 3600 s), with margin.
pub const SIGNATURE_MEMORY_S: i64 = 3600 + 300;

/// Key of a seen signature: the signed timestamp (big-endian, sign bit
/// flipped so negative times order first) then the signature bytes.
pub fn signature_key(v: &Verified) -> Vec<u8> {
    let mut k = ((v.ts as u64) ^ (1 << 63)).to_be_bytes().to_vec();
    k.extend_from_slice(&v.sig);
    k
}

/// Forget signatures whose timestamp is before `cutoff_ts`.
pub fn forget_signatures(ctx: &mut WriteCtx<'_>, cutoff_ts: i64) -> Result<(), StoreError> {
    let upper = ((cutoff_ts as u64) ^ (1 << 63)).to_be_bytes();
    ctx.signatures()?
        .retain_in(..upper.as_slice(), |_, ()| false)?;
    Ok(())
}

/// HTTP status of a rejection code.
pub fn rejection_status(code: &str) -> u16 {
    match code {
        "too_large" => 413,
        "bad_signature" | "stale_signature" => 401,
        "ip_not_allowed" => 403,
        _ => 400,
    }
}

/// A postback request for [`record_postback`].
pub struct Postback {
    pub source_id: u64,
    pub raw: RawRequest,
    pub parsed: Result<Fields, Rejection>,
    /// The event this re-processes (a replay).
    pub replay_of: Option<String>,
    /// The verified signature of a signed request.
    pub signature: Option<Verified>,
    /// The click it names, when the handler already found it
    /// ([`prefetch_click`]); `None` makes the writer look.
    pub click: Option<Prefetched>,
}

impl Postback {
    /// An unsigned request, not a replay, its click looked up by the writer.
    pub fn new(source_id: u64, raw: RawRequest, parsed: Result<Fields, Rejection>) -> Postback {
        Postback {
            source_id,
            raw,
            parsed,
            replay_of: None,
            signature: None,
            click: None,
        }
    }
}

/// Record one postback (its event always; a conversion when it is valid).
/// A signed request whose signature was already accepted is answered as a
/// duplicate and never counted twice.
pub fn record_postback(
    ctx: &mut WriteCtx<'_>,
    p: Postback,
    now_ms: u64,
) -> Result<Outcome, StoreError> {
    let Postback {
        source_id,
        raw,
        parsed,
        replay_of,
        signature,
        click,
    } = p;
    let event_id = ids::new_id(now_ms);
    let sig_key = signature.as_ref().map(signature_key);
    let replayed = match &sig_key {
        Some(k) => ctx.signatures()?.get(k.as_slice())?.is_some(),
        None => false,
    };
    let (http_status, answer, click_id) = match parsed {
        Err(rej) => {
            let status = rejection_status(rej.code);
            let answer = Answer::Rejected {
                code: rej.code,
                message: rej.message,
                field: rej.field.map(str::to_string),
            };
            (status, answer, None)
        }
        Ok(fields) if replayed => (200, Answer::SignatureReplay, Some(fields.click_id)),
        Ok(fields) => {
            let (status, answer) =
                apply_conversion(ctx, source_id, &fields, click, &event_id, now_ms)?;
            (status, answer, Some(fields.click_id))
        }
    };
    // Remember the signature only once it produced an accepted answer: a
    // retry of a request that failed (a mapping mistake, say) is not a replay.
    if let Some(k) = sig_key
        && !replayed
        && (200..300).contains(&http_status)
    {
        ctx.signatures()?.insert(k.as_slice(), ())?;
    }
    let event = Logged {
        source_id,
        http_status,
        answer: &answer,
        click_id,
        replay_of,
        decoded: None,
        authenticated: false,
    };
    write_event(ctx, &event_id, raw, event, now_ms)?;
    Ok(Outcome {
        event_id,
        http_status,
        answer,
    })
}

/// What an event records beside its raw request.
struct Logged<'a> {
    source_id: u64,
    http_status: u16,
    answer: &'a Answer,
    click_id: Option<String>,
    replay_of: Option<String>,
    decoded: Option<String>,
    authenticated: bool,
}

/// Write one request and its result to the events log.
fn write_event(
    ctx: &mut WriteCtx<'_>,
    event_id: &str,
    raw: RawRequest,
    l: Logged<'_>,
    now_ms: u64,
) -> Result<(), StoreError> {
    let ev = EventRecord {
        source_id: l.source_id,
        ms: now_ms,
        method: raw.method,
        path: raw.path,
        query: raw.query,
        content_type: raw.content_type,
        body: raw.body,
        body_truncated: raw.body_truncated,
        remote_ip: raw.remote_ip,
        user_agent: raw.user_agent,
        http_status: l.http_status,
        result: l.answer.result().to_string(),
        message: l.answer.message().map(str::to_string),
        conversion_id: l.answer.conversion_id().map(str::to_string),
        click_id: l.click_id,
        replay_of: l.replay_of,
        decoded: l.decoded,
        authenticated: l.authenticated,
    };
    ctx.events()?
        .insert(event_id, records::encode(&ev).as_slice())?;
    // The health counters (match rate, refusals, alerts) count what the
    // network sent; a replay is the operator's, not the network's.
    if ev.replay_of.is_none() {
        health::count(ctx, ev.source_id, &ev.result, now_ms)?;
    }
    Ok(())
}

/// The conversion a dedup key points at, if any.
fn find_dedup(ctx: &mut WriteCtx<'_>, key: &str) -> Result<Option<String>, StoreError> {
    Ok(ctx.dedup()?.get(key)?.map(|v| v.value().to_string()))
}

fn load_conversion(ctx: &mut WriteCtx<'_>, id: &str) -> Result<ConversionRecord, StoreError> {
    let bytes = ctx
        .conversions()?
        .get(id)?
        .map(|v| v.value().to_vec())
        .ok_or_else(|| {
            StoreError::Corrupt(format!("dedup points at missing conversion {id}").into())
        })?;
    records::decode(&bytes)
}

/// Does a conversion go to the destinations? A network's test transaction
/// only when its source includes tests.
fn forwards(conv: &ConversionRecord, include_tests: bool) -> bool {
    !conv.test || include_tests
}

/// Give a stored conversion a new status (`updated`, forwarded per the
/// destinations' filters), or say it already has it (`duplicate`).
fn set_status(
    ctx: &mut WriteCtx<'_>,
    conv_id: String,
    new_status: Status,
    event_id: &str,
    include_tests: bool,
    now_ms: u64,
) -> Result<Answer, StoreError> {
    let mut conv = load_conversion(ctx, &conv_id)?;
    let new = new_status.as_str();
    if conv.status == new {
        return Ok(Answer::Duplicate {
            conversion_id: conv_id,
            status: conv.status,
        });
    }
    let previous = std::mem::replace(&mut conv.status, new.to_string());
    conv.updated_ms = now_ms;
    conv.history.push((now_ms, new.to_string()));
    conv.event_ids.push(event_id.to_string());
    rollup::on_status_change(ctx, &conv, &previous, now_ms)?;
    ctx.conversions()?
        .insert(conv_id.as_str(), records::encode(&conv).as_slice())?;
    if forwards(&conv, include_tests) {
        outbox::enqueue(ctx, &conv_id, &conv, "conversion.updated", now_ms)?;
    }
    Ok(Answer::Updated {
        conversion_id: conv_id,
        status: new,
        previous_status: previous,
    })
}

/// `duplicate` of a stored conversion, with its current status.
fn duplicate_of(ctx: &mut WriteCtx<'_>, conv_id: String) -> Result<Answer, StoreError> {
    let conv = load_conversion(ctx, &conv_id)?;
    Ok(Answer::Duplicate {
        conversion_id: conv_id,
        status: conv.status,
    })
}

/// The parts of a new conversion that differ between a postback and an
/// IPN notification.
struct NewConversion<'a> {
    /// The matched click's ID, else the click ID as received.
    click_id: String,
    /// The matched click (`resolve_click`).
    click: Option<records::ClickRecord>,
    kind: Kind,
    event: Option<String>,
    amount: Option<String>,
    currency: String,
    status: Status,
    transaction_id: Option<String>,
    geo: [Option<String>; 4],
    extra: Vec<(String, String)>,
    test: bool,
    original_id: Option<String>,
    /// Dedup keys that will point at it.
    keys: &'a [String],
    /// Its roll-up rows, made before the write ([`prefetch_click`]).
    placement: Option<rollup::Placement>,
}

/// Store a new conversion under its dedup keys, queue its deliveries, and
/// answer `matched` (200) or `unmatched` (202).
fn insert_conversion(
    ctx: &mut WriteCtx<'_>,
    source_id: u64,
    n: NewConversion<'_>,
    event_id: &str,
    include_tests: bool,
    now_ms: u64,
) -> Result<(u16, Answer), StoreError> {
    let click = n.click;
    let conv_id = ids::new_id(now_ms);
    let [country, state, city, zip] = n.geo;
    let conv = ConversionRecord {
        source_id,
        click_id: n.click_id.clone(),
        matched: click.is_some(),
        slug: click.as_ref().map(|c| c.slug.clone()),
        campaign: click.as_ref().and_then(|c| c.campaign.clone()),
        kind: n.kind.as_str().to_string(),
        event: n.event,
        amount: n.amount,
        currency: n.currency,
        status: n.status.as_str().to_string(),
        transaction_id: n.transaction_id,
        country,
        state,
        city,
        zip,
        created_ms: now_ms,
        updated_ms: now_ms,
        history: vec![(now_ms, n.status.as_str().to_string())],
        event_ids: vec![event_id.to_string()],
        extra: n.extra,
        test: n.test,
        original_id: n.original_id,
        ..Default::default()
    };
    // Where the reports count it (its click's bucket and dimensions), in
    // this transaction.
    let (conv, rows) = rollup::placed(ctx, conv, click.as_ref(), n.placement);
    rollup::on_conversion(ctx, &conv, rows)?;
    ctx.conversions()?
        .insert(conv_id.as_str(), records::encode(&conv).as_slice())?;
    for key in n.keys {
        ctx.dedup()?.insert(key.as_str(), conv_id.as_str())?;
    }
    if forwards(&conv, include_tests) {
        outbox::enqueue(ctx, &conv_id, &conv, "conversion.created", now_ms)?;
    }
    let (conversion_id, kind, click_id, status) =
        (conv_id, n.kind.as_str(), n.click_id, n.status.as_str());
    if click.is_some() {
        let answer = Answer::Matched {
            conversion_id,
            kind,
            click_id,
            status,
        };
        return Ok((200, answer));
    }
    let message = if click_id.is_empty() {
        "No click ID: the notification carries none; the conversion is stored as unmatched. \
         Check that the affiliate link carries the click ID in the network's tracking parameter"
            .to_string()
    } else {
        format!(
            "No match found: click ID `{click_id}` is not a click recorded by this server; the \
             conversion is stored as unmatched. Check that the tracking link passes the click ID \
             to the network unchanged"
        )
    };
    let answer = Answer::Unmatched {
        conversion_id,
        kind,
        click_id,
        status,
        message,
    };
    Ok((202, answer))
}

fn apply_conversion(
    ctx: &mut WriteCtx<'_>,
    source_id: u64,
    f: &Fields,
    prefetched: Option<Prefetched>,
    event_id: &str,
    now_ms: u64,
) -> Result<(u16, Answer), StoreError> {
    let (found, placement) = match prefetched {
        Some(p) => (Some((p.id, p.click)), Some(p.placement)),
        None => (resolve_click(ctx, &f.click_id, &f.click_id_as_sent)?, None),
    };
    let (click_id, click) = match found {
        Some((id, c)) => (id, Some(c)),
        None => (f.click_id.clone(), None),
    };
    let key = dedup_key(source_id, f, &click_id);
    if let Some(conv_id) = find_dedup(ctx, &key)? {
        let answer = set_status(ctx, conv_id, f.status, event_id, false, now_ms)?;
        return Ok((200, answer));
    }
    let n = NewConversion {
        click_id,
        click,
        kind: f.kind,
        event: f.event.clone(),
        amount: f.amount.map(|a| a.to_string()),
        currency: f.currency.clone(),
        status: f.status,
        transaction_id: f.transaction_id.clone(),
        geo: [
            f.country.clone(),
            f.state.clone(),
            f.city.clone(),
            f.zip.clone(),
        ],
        extra: f.extra.clone(),
        test: false,
        original_id: None,
        keys: std::slice::from_ref(&key),
        placement,
    };
    insert_conversion(ctx, source_id, n, event_id, false, now_ms)
}

/// Record one IPN notification: its event always (with the decrypted
/// plaintext when there is one), a conversion or a status change when it
/// is about money. `decoded` is the decoder's verdict, made on the
/// handler's thread.
pub fn record_ipn(
    ctx: &mut WriteCtx<'_>,
    source_id: u64,
    raw: RawRequest,
    decoded: Result<Notification, Rejection>,
    include_tests: bool,
    replay_of: Option<String>,
    now_ms: u64,
) -> Result<Outcome, StoreError> {
    let event_id = ids::new_id(now_ms);
    let authenticated = match &decoded {
        Ok(_) => true,
        Err(r) => ipn::is_after_authentication(r.code),
    };
    let (http_status, answer, click_id, plaintext) = match decoded {
        Err(rej) => {
            let status = rejection_status(rej.code);
            let answer = Answer::Rejected {
                code: rej.code,
                message: rej.message,
                field: rej.field.map(str::to_string),
            };
            (status, answer, None, None)
        }
        Ok(n) => {
            let (status, answer, click) =
                apply_ipn(ctx, source_id, &n, &event_id, include_tests, now_ms)?;
            (status, answer, click, n.plaintext)
        }
    };
    let event = Logged {
        source_id,
        http_status,
        answer: &answer,
        click_id,
        replay_of,
        decoded: plaintext,
        authenticated,
    };
    write_event(ctx, &event_id, raw, event, now_ms)?;
    Ok(Outcome {
        event_id,
        http_status,
        answer,
    })
}

/// An IPN notification on the v1 model. Dedup keys are the network's
/// receipt plus the type (plus the payment's own ID for a rebill), so a
/// retried notification is a `duplicate`, and a refund or chargeback finds
/// its sale by the receipt. Every accepted notification is answered 200:
/// the networks retry anything else for days, and an unmatched one is
/// already stored.
fn apply_ipn(
    ctx: &mut WriteCtx<'_>,
    source_id: u64,
    n: &Notification,
    event_id: &str,
    include_tests: bool,
    now_ms: u64,
) -> Result<(u16, Answer, Option<String>), StoreError> {
    if !n.tx_type.is_money() {
        let answer = Answer::Ignored {
            notification: n.raw_type.clone(),
            message: format!(
                "a `{}` notification moves no money: it is logged, nothing is counted",
                n.raw_type.escape_debug()
            ),
        };
        return Ok((200, answer, n.click_ids.first().cloned()));
    }
    let receipt = n.receipt.as_deref().unwrap_or_default();
    let base = format!("{source_id}\x1fi\x1f{receipt}");
    let sale_key = format!("{base}\x1fsale");
    let own_key = match n.tx_type {
        TxType::Rebill => format!(
            "{base}\x1frebill\x1f{}",
            n.sequence.as_deref().unwrap_or("")
        ),
        TxType::Sale => sale_key.clone(),
        other => format!("{base}\x1f{}", other.as_str()),
    };
    if let Some(conv_id) = find_dedup(ctx, &own_key)? {
        let click = load_conversion(ctx, &conv_id)?.click_id;
        return Ok((200, duplicate_of(ctx, conv_id)?, Some(click)));
    }
    let original = match n.tx_type {
        TxType::Sale => None,
        _ => find_dedup(ctx, &sale_key)?,
    };
    let status = match n.tx_type {
        TxType::Refund => Status::Refunded,
        TxType::Chargeback => Status::Chargeback,
        _ => Status::Approved,
    };
    // A refund or chargeback of a known sale changes the sale.
    if status != Status::Approved
        && let Some(orig) = original.clone()
    {
        ctx.dedup()?.insert(own_key.as_str(), orig.as_str())?;
        let click = load_conversion(ctx, &orig)?.click_id;
        let answer = set_status(ctx, orig, status, event_id, include_tests, now_ms)?;
        return Ok((200, answer, Some(click)));
    }
    // First recorded candidate, else the first; a rebill without one takes
    // its sale's click.
    // (Candidates are normalized, so an external ID matches here only as
    // lowercase.)
    let mut click_id = n.click_ids.first().cloned().unwrap_or_default();
    let mut click = None;
    for c in &n.click_ids {
        if let Some((id, rec)) = resolve_click(ctx, c, c)? {
            (click_id, click) = (id, Some(rec));
            break;
        }
    }
    if click_id.is_empty()
        && let Some(orig) = &original
    {
        click_id = load_conversion(ctx, orig)?.click_id;
        click = resolve_click(ctx, &click_id, &click_id)?.map(|(_, c)| c);
    }
    let currency = n.currency.clone().unwrap_or_else(|| {
        ctx.catalog()
            .sources
            .get(&source_id)
            .map_or_else(|| "USD".to_string(), |s| s.rec.default_currency.clone())
    });
    // A refund whose sale was never received is stored with its status,
    // under the sale's key too: the sale arriving late is then a duplicate
    // of it, and the conversion stays refunded.
    let keys = if status == Status::Approved {
        vec![own_key]
    } else {
        vec![own_key, sale_key]
    };
    let mut extra = n.extra.clone();
    extra.push(("ipn_type".to_string(), n.raw_type.clone()));
    let new = NewConversion {
        click_id: click_id.clone(),
        click,
        kind: Kind::Purchase,
        event: (n.tx_type == TxType::Rebill).then(|| "rebill".to_string()),
        amount: n.amount.map(|a| a.to_string()),
        currency,
        status,
        transaction_id: n.receipt.clone(),
        geo: [
            n.country.clone(),
            n.state.clone(),
            n.city.clone(),
            n.zip.clone(),
        ],
        extra,
        test: n.test,
        original_id: original.filter(|_| n.tx_type == TxType::Rebill),
        keys: &keys,
        placement: None,
    };
    let (status, answer) = insert_conversion(ctx, source_id, new, event_id, include_tests, now_ms)?;
    // 200 whatever the match: see above.
    let status = if status == 202 { 200 } else { status };
    Ok((status, answer, Some(click_id)))
}

/// The refusal for `/ipn/{key}` on a source without IPN settings.
pub fn not_configured() -> Rejection {
    Rejection::new(
        "ipn_not_configured",
        None,
        "this source has no IPN settings; set \"ipn\": {\"format\", \"secret\"} on it \
         (PATCH /api/v1/sources/ID), or use its postback_url for networks that call postback URLs"
            .into(),
    )
}
