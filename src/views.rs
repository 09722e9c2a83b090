//! JSON views of stored records: the shapes the admin API answers with,
//! the webhook payload embeds and `export` writes. Built from storage
//! records and kept apart from them, so either can change without the
//! other (records are forever; a view may gain fields).

use serde_json::{Map, Value, json};

use crate::inbound::ipn;
use crate::inbound::presets::{self, MacroSyntax};
use crate::store::catalog::{LinkEntry, SourceEntry};
use crate::store::records::{ClickRecord, ConversionRecord, EventRecord};
use crate::util::clock::rfc3339;
use crate::util::signing;

fn pairs(v: &[(String, String)]) -> Value {
    Value::Array(v.iter().map(|(k, v)| json!([k, v])).collect())
}

/// The postback URL a user pastes into the network.
pub fn postback_url(public_url: &str, s: &SourceEntry) -> String {
    let preset = s.rec.preset.as_deref().and_then(presets::find);
    let syntax = s
        .rec
        .macro_syntax
        .as_deref()
        .and_then(MacroSyntax::parse)
        .or(preset.map(|p| p.syntax))
        .unwrap_or(MacroSyntax::Braces);
    // The fields a conversion needs always; the optional ones (event and
    // geography, after `status` in URL order) only where the preset has a
    // macro for them.
    let (core, optional) = presets::CANONICAL_FIELDS.split_at(5);
    let mut fields: Vec<&str> = core.to_vec();
    if let Some(p) = preset {
        fields.retain(|f| p.macro_for(f).is_some() || s.mapping.params.contains_key(*f));
        for &extra in optional {
            if p.macro_for(extra).is_some() {
                fields.push(extra);
            }
        }
    }
    let query: Vec<String> = fields
        .iter()
        .map(|f| {
            // The source's own mapping names the network's value; otherwise
            // the preset's macro; otherwise the canonical name.
            let name = s
                .rec
                .params
                .iter()
                .find(|(k, _)| k == f)
                .map(|(_, v)| v.as_str())
                .or_else(|| preset.and_then(|p| p.macro_for(f)))
                .unwrap_or(f);
            format!("{f}={}", syntax.wrap(name))
        })
        .collect();
    format!("{public_url}/p/{}?{}", s.rec.key, query.join("&"))
}

/// The IPN URL a user pastes into the marketplace (`/ipn/{key}`).
pub fn ipn_url(public_url: &str, s: &SourceEntry) -> String {
    format!("{public_url}/ipn/{}", s.rec.key)
}

pub fn source(public_url: &str, s: &SourceEntry) -> Value {
    let mut params = Map::new();
    for (k, v) in &s.mapping.params {
        params.insert(k.clone(), json!(v));
    }
    let mut statuses = Map::new();
    for (k, v) in &s.mapping.statuses {
        statuses.insert(k.clone(), json!(v.as_str()));
    }
    json!({
        "id": s.id,
        "name": s.rec.name,
        "key": s.rec.key,
        "preset": s.rec.preset,
        "postback_url": postback_url(public_url, s),
        "default_currency": s.rec.default_currency,
        "macro_syntax": s.rec.macro_syntax,
        "params": pairs_to_object(&s.rec.params),
        "status_map": pairs_to_object(&s.rec.status_map),
        "effective_params": params,
        "effective_status_map": statuses,
        "signing": {
            "required": !s.rec.signing_secrets.is_empty(),
            "secrets": s.rec.signing_secrets.iter().map(|x| signing::mask(x)).collect::<Vec<_>>(),
            "tolerance_s": s.rec.signing_tolerance_s,
        },
        "allow_ips": s.rec.allow_ips,
        "rate_limit": s.rec.rate_limit.map(|(per_second, burst)| json!({"per_second": per_second, "burst": burst})),
        "ipn": s.rec.ipn.as_ref().map(|i| json!({
            "format": i.format,
            "secret": ipn::mask_secret(&i.secret),
            "click_id_field": i.click_id_field,
            "amount": i.amount,
            "include_tests": i.include_tests,
        })),
        "ipn_url": s.rec.ipn.as_ref().map(|_| ipn_url(public_url, s)),
        "created_at": rfc3339(s.rec.created_ms),
    })
}

fn pairs_to_object(v: &[(String, String)]) -> Value {
    Value::Object(v.iter().map(|(k, v)| (k.clone(), json!(v))).collect())
}

pub fn link(public_url: &str, l: &LinkEntry) -> Value {
    json!({
        "slug": l.slug,
        "url": format!("{public_url}/c/{}", l.slug),
        "destination": l.rec.destination,
        "source": l.rec.source_id,
        "campaign": l.rec.campaign,
        "param": l.rec.param,
        "subs": l.rec.subs.iter().map(|(k, v)| (k.clone(), json!(v))).collect::<Map<String, Value>>(),
        "cost": l.rec.cost.as_ref().map(|c| {
            let mut o = Map::new();
            o.insert("model".into(), json!(c.model));
            for (k, v) in [("amount", &c.amount), ("percent", &c.percent), ("param", &c.param), ("currency", &c.currency)] {
                if let Some(v) = v {
                    o.insert(k.into(), json!(v));
                }
            }
            Value::Object(o)
        }),
        "tag_origins": l.rec.tag_origins,
        "created_at": rfc3339(l.rec.created_ms),
    })
}

/// Parameters pulled out of a click's query for convenience.
const CLICK_FIELDS: &[&str] = &[
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "utm_term",
    "utm_content",
    "gclid",
    "gbraid",
    "wbraid",
    "fbclid",
    "ttclid",
    "msclkid",
];

pub fn click(id: &str, c: &ClickRecord) -> Value {
    let mut v = json!({
        "click_id": id,
        "created_at": rfc3339(c.ms),
        "link": c.slug,
        "source": c.source_id,
        "campaign": c.campaign,
        "method": if c.head { "HEAD" } else { "GET" },
        "ip": c.ip,
        "user_agent": c.user_agent,
        "referrer": c.referrer,
        "fbc": c.fbc,
        "fbp": c.fbp,
        "query": pairs(&c.params),
        "device": device(c),
        "os": c.os,
        "browser": c.browser,
        "country": c.country,
        "bot": c.bot,
        "unique": c.unique,
        "via": if c.via.is_empty() { "redirect" } else { c.via.as_str() },
        "landing_url": c.landing_url,
        "external_id": c.external_id,
    });
    for f in CLICK_FIELDS {
        let val = c
            .params
            .iter()
            .find(|(k, _)| k == f)
            .map(|(_, v)| v.clone());
        v[*f] = json!(val);
    }
    v
}

/// A click's device class; `null` for clicks recorded before click
/// quality (their record has no device).
pub fn device(c: &ClickRecord) -> Value {
    if c.device.is_empty() {
        Value::Null
    } else {
        json!(c.device)
    }
}

/// The fields of a conversion that every view of it carries, in
/// [`CONVERSION_COLUMNS`] order after the ID. The admin API, the webhook
/// payload and `export` build on this one list, so they cannot drift.
pub fn conversion_fields(c: &ConversionRecord) -> Map<String, Value> {
    let mut m = Map::new();
    for (k, v) in [
        ("created_at", json!(rfc3339(c.created_ms))),
        ("updated_at", json!(rfc3339(c.updated_ms))),
        ("source", json!(c.source_id)),
        ("click_id", json!(c.click_id)),
        ("matched", json!(c.matched)),
        ("link", json!(c.slug)),
        ("campaign", json!(c.campaign)),
        ("type", json!(c.kind)),
        ("event", json!(c.event)),
        ("amount", json!(c.amount)),
        ("currency", json!(c.currency)),
        ("status", json!(c.status)),
        ("transaction_id", json!(c.transaction_id)),
        ("country", json!(c.country)),
        ("state", json!(c.state)),
        ("city", json!(c.city)),
        ("zip", json!(c.zip)),
        ("test", json!(c.test)),
        ("original_conversion_id", json!(c.original_id)),
    ] {
        m.insert(k.to_string(), v);
    }
    m.insert(
        "history".into(),
        c.history
            .iter()
            .map(|(ms, st)| json!({"at": rfc3339(*ms), "status": st}))
            .collect(),
    );
    m
}

/// The scalar columns of a conversion (`export --format csv`): `id`, then
/// the fields of [`conversion_fields`] but the history.
pub const CONVERSION_COLUMNS: &[&str] = &[
    "id",
    "created_at",
    "updated_at",
    "source",
    "click_id",
    "matched",
    "link",
    "campaign",
    "type",
    "event",
    "amount",
    "currency",
    "status",
    "transaction_id",
    "country",
    "state",
    "city",
    "zip",
    "test",
    "original_conversion_id",
];

/// A conversion in the admin API (and `export --format ndjson`): the
/// shared fields, its ID, the events that touched it, and the extra
/// parameters as `[name, value]` pairs (every value, in order).
pub fn conversion(id: &str, c: &ConversionRecord) -> Value {
    let mut m = conversion_fields(c);
    m.insert("id".into(), json!(id));
    m.insert("event_ids".into(), json!(c.event_ids));
    m.insert("extra".into(), pairs(&c.extra));
    Value::Object(m)
}

pub fn event(id: &str, e: &EventRecord) -> Value {
    let body = match std::str::from_utf8(&e.body) {
        Ok(s) => json!(s),
        Err(_) => json!(String::from_utf8_lossy(&e.body)),
    };
    json!({
        "id": id,
        "received_at": rfc3339(e.ms),
        "source": e.source_id,
        "method": e.method,
        "path": e.path,
        "query": e.query,
        "content_type": e.content_type,
        "body": body,
        "body_utf8": std::str::from_utf8(&e.body).is_ok(),
        "body_truncated": e.body_truncated,
        "remote_ip": e.remote_ip,
        "user_agent": e.user_agent,
        "http_status": e.http_status,
        "result": e.result,
        "message": e.message,
        "conversion_id": e.conversion_id,
        "click_id": e.click_id,
        "replay_of": e.replay_of,
        // ClickBank's decrypted notification, for the operator to read.
        "decoded": e.decoded,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversion_columns_are_the_shared_scalar_fields() {
        let c = ConversionRecord {
            source_id: 1,
            click_id: "k".into(),
            matched: true,
            slug: Some("s".into()),
            campaign: None,
            kind: "purchase".into(),
            event: None,
            amount: Some("1.50".into()),
            currency: "USD".into(),
            status: "approved".into(),
            transaction_id: Some("t".into()),
            country: None,
            state: None,
            city: None,
            zip: None,
            created_ms: 1,
            updated_ms: 2,
            history: vec![(1, "approved".into())],
            event_ids: vec!["e".into()],
            extra: vec![("a".into(), "b".into())],
            ..Default::default()
        };
        let fields = conversion_fields(&c);
        let mut want: Vec<&str> = fields
            .keys()
            .map(String::as_str)
            .filter(|k| *k != "history")
            .collect();
        want.push("id");
        want.sort_unstable();
        let mut got = CONVERSION_COLUMNS.to_vec();
        got.sort_unstable();
        assert_eq!(got, want);
        let api = conversion("c1", &c);
        for k in CONVERSION_COLUMNS {
            assert!(api.get(*k).is_some(), "{k}");
        }
    }
}
