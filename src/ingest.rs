//! Postback ingestion inside the writer's transaction: dedup, matching,
//! status updates and the events log.
//!
//! Runs serially in the writer thread, so the dedup check and the insert it
//! guards can never race: two identical postbacks arriving together are one
//! `matched` and one `duplicate`, never two conversions.

use redb::ReadableTable;
use serde_json::{Value, json};

use crate::forward::outbox;
use crate::inbound::postback::{self, Fields, Rejection};
use crate::inbound::query::Limits;
use crate::store::records::{self, ConversionRecord, EventRecord};
use crate::store::{StoreError, WriteCtx, rollup};
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
        }
    }

    fn message(&self) -> Option<&str> {
        match self {
            Answer::Rejected { message, .. } | Answer::Unmatched { message, .. } => Some(message),
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
            Answer::Rejected { .. } | Answer::SignatureReplay => None,
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
    rows: [Vec<u8>; 3],
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
        ClickWrite {
            id,
            bytes: records::encode(rec),
            rows,
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

/// Record one click and count it, in the writer's transaction.
pub fn record_click(ctx: &mut WriteCtx<'_>, mut w: ClickWrite) -> Result<(), StoreError> {
    if let Some((v, now, window)) = w.visitor {
        let previous = ctx.visits()?.insert(v.as_slice(), now)?.map(|g| g.value());
        let unique = crate::tracking::quality::is_unique(previous, now, window);
        // One byte patched in the encoded record (see `set_unique`), and
        // the roll-up counters to match.
        records::set_unique(&mut w.bytes, unique);
        w.counters.unique_clicks = i64::from(unique);
    }
    ctx.clicks()?.insert(w.id.as_str(), w.bytes.as_slice())?;
    rollup::add(ctx, &w.rows, &w.counters)
}

/// The dedup key: (source, transaction_id), or without one
/// (source, click_id, event name). `\x1f` cannot occur in a click ID and is
/// refused in free-text fields (control character), so keys cannot collide.
pub fn dedup_key(source_id: u64, f: &Fields) -> String {
    match &f.transaction_id {
        Some(t) => format!("{source_id}\x1ft\x1f{t}"),
        None => format!("{source_id}\x1fc\x1f{}\x1f{}", f.click_id, f.event_name()),
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

/// Record one postback (its event always; a conversion when it is valid).
/// `signature` is the verified signature of a signed request: a request
/// whose signature was already accepted is answered as a duplicate and
/// never counted twice.
pub fn record_postback(
    ctx: &mut WriteCtx<'_>,
    source_id: u64,
    raw: RawRequest,
    parsed: Result<Fields, Rejection>,
    replay_of: Option<String>,
    signature: Option<Verified>,
    now_ms: u64,
) -> Result<Outcome, StoreError> {
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
            let (status, answer) = apply_conversion(ctx, source_id, &fields, &event_id, now_ms)?;
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
    let ev = EventRecord {
        source_id,
        ms: now_ms,
        method: raw.method,
        path: raw.path,
        query: raw.query,
        content_type: raw.content_type,
        body: raw.body,
        body_truncated: raw.body_truncated,
        remote_ip: raw.remote_ip,
        user_agent: raw.user_agent,
        http_status,
        result: answer.result().to_string(),
        message: answer.message().map(str::to_string),
        conversion_id: answer.conversion_id().map(str::to_string),
        click_id,
        replay_of,
    };
    ctx.events()?
        .insert(event_id.as_str(), records::encode(&ev).as_slice())?;
    Ok(Outcome {
        event_id,
        http_status,
        answer,
    })
}

fn apply_conversion(
    ctx: &mut WriteCtx<'_>,
    source_id: u64,
    f: &Fields,
    event_id: &str,
    now_ms: u64,
) -> Result<(u16, Answer), StoreError> {
    let key = dedup_key(source_id, f);
    let existing = ctx
        .dedup()?
        .get(key.as_str())?
        .map(|v| v.value().to_string());
    if let Some(conv_id) = existing {
        let bytes = ctx
            .conversions()?
            .get(conv_id.as_str())?
            .map(|v| v.value().to_vec())
            .ok_or_else(|| {
                StoreError::Corrupt(format!("dedup points at missing conversion {conv_id}").into())
            })?;
        let mut conv: ConversionRecord = records::decode(&bytes)?;
        let new_status = f.status.as_str();
        if conv.status == new_status {
            let answer = Answer::Duplicate {
                conversion_id: conv_id,
                status: conv.status,
            };
            return Ok((200, answer));
        }
        let previous = std::mem::replace(&mut conv.status, new_status.to_string());
        conv.updated_ms = now_ms;
        conv.history.push((now_ms, new_status.to_string()));
        conv.event_ids.push(event_id.to_string());
        rollup::on_status_change(ctx, &conv, &previous, now_ms)?;
        ctx.conversions()?
            .insert(conv_id.as_str(), records::encode(&conv).as_slice())?;
        outbox::enqueue(ctx, &conv_id, &conv, "conversion.updated", now_ms)?;
        let answer = Answer::Updated {
            conversion_id: conv_id,
            status: new_status,
            previous_status: previous,
        };
        return Ok((200, answer));
    }

    let click = match ctx.clicks()?.get(f.click_id.as_str())? {
        Some(v) => Some(records::decode::<records::ClickRecord>(v.value())?),
        None => None,
    };
    let conv_id = ids::new_id(now_ms);
    let conv = ConversionRecord {
        source_id,
        click_id: f.click_id.clone(),
        matched: click.is_some(),
        slug: click.as_ref().map(|c| c.slug.clone()),
        campaign: click.as_ref().and_then(|c| c.campaign.clone()),
        kind: f.kind.as_str().to_string(),
        event: f.event.clone(),
        amount: f.amount.map(|a| a.to_string()),
        currency: f.currency.clone(),
        status: f.status.as_str().to_string(),
        transaction_id: f.transaction_id.clone(),
        country: f.country.clone(),
        state: f.state.clone(),
        city: f.city.clone(),
        zip: f.zip.clone(),
        created_ms: now_ms,
        updated_ms: now_ms,
        history: vec![(now_ms, f.status.as_str().to_string())],
        event_ids: vec![event_id.to_string()],
        extra: f.extra.clone(),
        rollup_bucket: 0,
        rollup_dims: Vec::new(),
        rollup_cost: None,
        test: false,
    };
    let conv = rollup::placed(ctx, conv, click.as_ref());
    rollup::on_conversion(ctx, &conv)?;
    ctx.conversions()?
        .insert(conv_id.as_str(), records::encode(&conv).as_slice())?;
    ctx.dedup()?.insert(key.as_str(), conv_id.as_str())?;
    outbox::enqueue(ctx, &conv_id, &conv, "conversion.created", now_ms)?;
    let (conversion_id, kind, click_id, status) = (
        conv_id,
        f.kind.as_str(),
        f.click_id.clone(),
        f.status.as_str(),
    );
    if click.is_some() {
        let answer = Answer::Matched {
            conversion_id,
            kind,
            click_id,
            status,
        };
        Ok((200, answer))
    } else {
        let message = format!(
            "No match found: click ID `{}` is not a click recorded by this server; the conversion \
             is stored as unmatched. Check that the tracking link passes the click ID to the network \
             unchanged",
            f.click_id
        );
        let answer = Answer::Unmatched {
            conversion_id,
            kind,
            click_id,
            status,
            message,
        };
        Ok((202, answer))
    }
}

/// Why a replay could not run.
#[derive(Debug)]
pub enum ReplayError {
    NotFound,
    SourceGone(u64),
    Store(StoreError),
}

impl From<StoreError> for ReplayError {
    fn from(e: StoreError) -> Self {
        ReplayError::Store(e)
    }
}

/// Re-process a stored event with its source's current mapping; the result
/// is a new event pointing back at the original.
pub fn replay(
    ctx: &mut WriteCtx<'_>,
    event_id: &str,
    limits: &Limits,
    now_ms: u64,
) -> Result<Outcome, ReplayError> {
    let ev: EventRecord = match ctx.events()?.get(event_id).map_err(StoreError::from)? {
        Some(v) => records::decode(v.value())?,
        None => return Err(ReplayError::NotFound),
    };
    let source = ctx
        .catalog()
        .sources
        .get(&ev.source_id)
        .cloned()
        .ok_or(ReplayError::SourceGone(ev.source_id))?;
    let parsed = postback::parse(
        &postback::Request {
            query: ev.query.as_bytes(),
            content_type: ev.content_type.as_deref(),
            body: &ev.body,
        },
        &source.mapping,
        limits,
    );
    let parsed = if ev.body_truncated && parsed.is_ok() {
        // Never guess from a partial body.
        Err(Rejection {
            code: "too_large",
            message: "the original body was over the size limit and is stored truncated; \
                      it cannot be replayed"
                .into(),
            field: None,
        })
    } else {
        parsed
    };
    let raw = RawRequest {
        method: ev.method,
        path: ev.path,
        query: ev.query,
        content_type: ev.content_type,
        body: ev.body,
        body_truncated: ev.body_truncated,
        remote_ip: ev.remote_ip,
        user_agent: ev.user_agent,
    };
    Ok(record_postback(
        ctx,
        ev.source_id,
        raw,
        parsed,
        Some(event_id.to_string()),
        None,
        now_ms,
    )?)
}
