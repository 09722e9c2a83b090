//! Sources (affiliate network accounts): validation of the fields an
//! admin sets, and create / change / delete in one write transaction that
//! also updates the in-memory catalog.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Deserialize;

use super::{Error, double_option, valid_name};
use crate::app::App;
use crate::config;
use crate::inbound::currency;
use crate::inbound::ipn;
use crate::inbound::postback::{self, Status};
use crate::inbound::presets::{self, MacroSyntax};
use crate::store;
use crate::store::catalog::SourceEntry;
use crate::store::records::{self, IpnRecord, SourceRecord};
use crate::util::clock::now_ms;
use crate::util::text::truncate;
use crate::util::{ids, signing};

/// Body of `POST /api/v1/sources` and `PATCH /api/v1/sources/{id}`.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct SourceIn {
    pub name: Option<String>,
    pub preset: Option<String>,
    pub params: Option<BTreeMap<String, String>>,
    pub status_map: Option<BTreeMap<String, String>>,
    pub default_currency: Option<String>,
    pub macro_syntax: Option<String>,
    pub signing: Option<SigningIn>,
    pub allow_ips: Option<Vec<String>>,
    /// `null` returns the source to the server's default limit.
    #[serde(default, deserialize_with = "double_option")]
    pub rate_limit: Option<Option<RateLimitIn>>,
    /// `null` removes the IPN receiver.
    #[serde(default, deserialize_with = "double_option")]
    pub ipn: Option<Option<IpnIn>>,
}

/// `"ipn": {"format", "secret", "click_id_field"?, "amount"?, "include_tests"?}`.
/// The secret may be given as its masked form from a GET to keep it.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct IpnIn {
    pub format: Option<String>,
    pub secret: Option<String>,
    /// `""` returns to the format's default field.
    pub click_id_field: Option<String>,
    pub amount: Option<String>,
    pub include_tests: Option<bool>,
}

/// Longest accepted IPN secret (ClickBank keys are 16 characters, JVZoo's
/// and Digistore24's a few dozen).
const MAX_IPN_SECRET: usize = 256;

impl IpnIn {
    /// Apply to the source's current IPN settings (`None` = none yet).
    fn apply(self, current: Option<IpnRecord>) -> Result<IpnRecord, Error> {
        let invalid = |msg: String| Error::invalid("invalid_ipn", msg);
        let format = match (self.format, &current) {
            (Some(f), _) => ipn::Format::parse(&f)
                .ok_or_else(|| {
                    invalid(format!(
                        "ipn.format `{}` is not known; use {}",
                        truncate(&f, 32),
                        ipn::Format::LIST
                    ))
                })?
                .as_str()
                .to_string(),
            (None, Some(c)) => c.format.clone(),
            (None, None) => {
                return Err(invalid(format!(
                    "ipn.format is required: {}",
                    ipn::Format::LIST
                )));
            }
        };
        let secret = match (self.secret, &current) {
            (Some(given), Some(c)) if given == ipn::mask_secret(&c.secret) => c.secret.clone(),
            (Some(given), _) => {
                let ok = !given.trim().is_empty()
                    && given.len() <= MAX_IPN_SECRET
                    && !given.chars().any(char::is_control)
                    && given.trim() == given;
                if !ok {
                    return Err(invalid(format!(
                        "ipn.secret must be 1-{MAX_IPN_SECRET} characters without surrounding \
                         spaces or control characters: copy it from the network's IPN settings"
                    )));
                }
                given
            }
            (None, Some(c)) => c.secret.clone(),
            (None, None) => {
                return Err(invalid(
                    "ipn.secret is required: the network's secret key, security key or IPN \
                     passphrase (see the README, IPN receivers)"
                        .into(),
                ));
            }
        };
        let click_id_field = match self.click_id_field {
            None => current.as_ref().and_then(|c| c.click_id_field.clone()),
            Some(f) if f.is_empty() => None,
            Some(f) => {
                let ok = f.len() <= 64
                    && f.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"_-.[]".contains(&b));
                if !ok {
                    return Err(invalid(
                        "ipn.click_id_field must be 1-64 letters, digits, _ - . [ ]".into(),
                    ));
                }
                Some(f)
            }
        };
        let amount = match self.amount {
            Some(a) => ipn::AmountBasis::parse(&a)
                .ok_or_else(|| invalid("ipn.amount must be commission or order".into()))?
                .as_str()
                .to_string(),
            None => current
                .as_ref()
                .map_or_else(|| "commission".to_string(), |c| c.amount.clone()),
        };
        let include_tests = self
            .include_tests
            .or(current.as_ref().map(|c| c.include_tests))
            .unwrap_or(false);
        Ok(IpnRecord {
            format,
            secret,
            click_id_field,
            amount,
            include_tests,
        })
    }
}

/// `"signing": {"secrets": [...], "generate": true, "tolerance_s": 300}`.
/// Secrets may be given in full, or as their masked form from a GET to keep
/// an existing one; `generate` adds a new random secret; `[]` turns signing
/// off.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct SigningIn {
    pub secrets: Option<Vec<String>>,
    #[serde(default)]
    pub generate: bool,
    pub tolerance_s: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitIn {
    pub per_second: u32,
    pub burst: Option<u32>,
}

/// Most secrets active at once (rotation needs two; a few more is slack).
const MAX_SECRETS: usize = 4;

impl SourceIn {
    /// Apply to a record, validating every field.
    /// Returns the secrets set or generated by this request (shown once).
    pub fn apply(self, rec: &mut SourceRecord) -> Result<Vec<String>, Error> {
        let mut new_secrets = Vec::new();
        if let Some(sg) = self.signing {
            if let Some(list) = sg.secrets {
                let mut out = Vec::new();
                for given in list {
                    // A masked secret from a GET keeps the existing one.
                    if let Some(existing) = rec
                        .signing_secrets
                        .iter()
                        .find(|e| signing::mask(e) == given)
                    {
                        out.push(existing.clone());
                        continue;
                    }
                    signing::decode_secret(&given).map_err(|why| {
                        Error::invalid("invalid_signing", format!("invalid signing secret: {why}"))
                    })?;
                    new_secrets.push(given.clone());
                    out.push(given);
                }
                rec.signing_secrets = out;
            }
            if sg.generate {
                let s = signing::generate_secret();
                new_secrets.push(s.clone());
                rec.signing_secrets.insert(0, s);
            }
            rec.signing_secrets.dedup();
            if rec.signing_secrets.len() > MAX_SECRETS {
                return Err(Error::invalid(
                    "invalid_signing",
                    format!(
                        "at most {MAX_SECRETS} secrets can be active; drop old ones from `secrets`"
                    ),
                ));
            }
            if let Some(t) = sg.tolerance_s {
                if !(1..=3600).contains(&t) {
                    return Err(Error::invalid(
                        "invalid_signing",
                        "tolerance_s must be 1 to 3600 seconds",
                    ));
                }
                rec.signing_tolerance_s = t;
            }
        }
        if let Some(list) = self.allow_ips {
            let mut out = Vec::new();
            for ip in list {
                let net = config::parse_net(ip.trim())
                    .map_err(|e| Error::invalid("invalid_allow_ips", e.to_string()))?;
                out.push(net.trunc().to_string());
            }
            rec.allow_ips = out;
        }
        if let Some(rl) = self.rate_limit {
            rec.rate_limit = match rl {
                None => None,
                Some(r) => {
                    let burst = r.burst.unwrap_or(r.per_second.saturating_mul(2));
                    if !(1..=1_000_000).contains(&r.per_second) || !(1..=1_000_000).contains(&burst)
                    {
                        return Err(Error::invalid(
                            "invalid_rate_limit",
                            "rate_limit needs per_second and burst from 1 to 1000000",
                        ));
                    }
                    Some((r.per_second, burst))
                }
            };
        }
        if let Some(i) = self.ipn {
            rec.ipn = match i {
                None => None,
                Some(i) => Some(i.apply(rec.ipn.take())?),
            };
        }
        if let Some(n) = self.name {
            rec.name = valid_name(&n)?;
        }
        if let Some(p) = self.preset {
            if p.is_empty() {
                rec.preset = None;
            } else {
                let preset = presets::find(&p).ok_or_else(|| {
                    let ids: Vec<&str> = presets::all().iter().map(|p| p.id).collect();
                    Error::invalid(
                        "unknown_preset",
                        format!(
                            "no preset `{}`; use one of: {}",
                            truncate(&p, 32),
                            ids.join(", ")
                        ),
                    )
                })?;
                rec.preset = Some(preset.id.to_string());
            }
        }
        if let Some(params) = self.params {
            let mut out = Vec::new();
            for (field, name) in params {
                if !postback::is_canonical(&field) {
                    return Err(Error::invalid(
                        "invalid_params",
                        format!(
                            "`{}` is not a canonical field; map one of: {}",
                            truncate(&field, 32),
                            postback::FIELD_LIST
                        ),
                    ));
                }
                let ok = !name.is_empty()
                    && name.len() <= 64
                    && name
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"_-.[]".contains(&b));
                if !ok {
                    return Err(Error::invalid(
                        "invalid_params",
                        format!(
                            "parameter name for {field} must be 1-64 letters, digits, _ - . [ ]"
                        ),
                    ));
                }
                out.push((field, name));
            }
            rec.params = out;
        }
        if let Some(map) = self.status_map {
            let mut out = Vec::new();
            for (raw, st) in map {
                if Status::parse(&st).is_none() || raw.is_empty() || raw.len() > 64 {
                    return Err(Error::invalid(
                        "invalid_status_map",
                        format!(
                            "status_map maps a network's value to {}; `{}` → `{}` is not valid",
                            Status::LIST,
                            truncate(&raw, 32),
                            truncate(&st, 32)
                        ),
                    ));
                }
                out.push((raw.to_ascii_lowercase(), st));
            }
            rec.status_map = out;
        }
        if let Some(c) = self.default_currency {
            rec.default_currency = currency::normalize(&c).ok_or_else(|| {
                Error::invalid(
                    "invalid_currency",
                    "default_currency must be an ISO 4217 code such as USD",
                )
            })?;
        }
        if let Some(m) = self.macro_syntax {
            if m.is_empty() {
                rec.macro_syntax = None;
            } else {
                let s = MacroSyntax::parse(&m).ok_or_else(|| {
                    Error::invalid(
                        "invalid_macro_syntax",
                        "macro_syntax must be one of {x}, ${x}, #x#, [x]",
                    )
                })?;
                rec.macro_syntax = Some(s.as_str().to_string());
            }
        }
        Ok(new_secrets)
    }
}

/// A source as saved, and the secrets this request set or generated: those
/// are shown in full once, so the sender can be configured; every later
/// read shows them masked.
pub struct Saved {
    pub entry: Arc<SourceEntry>,
    pub new_secrets: Vec<String>,
}

fn unknown(id: u64) -> Error {
    Error::not_found("unknown_source", format!("no source with id {id}"))
}

/// Every source, by id.
pub fn list(app: &App) -> Vec<Arc<SourceEntry>> {
    app.store.catalog().sources.values().cloned().collect()
}

pub fn get(app: &App, id: u64) -> Result<Arc<SourceEntry>, Error> {
    app.store
        .catalog()
        .sources
        .get(&id)
        .cloned()
        .ok_or_else(|| unknown(id))
}

pub async fn create(app: &App, input: SourceIn) -> Result<Saved, Error> {
    if input.name.as_deref().is_none_or(|n| n.trim().is_empty()) {
        return Err(Error::invalid("invalid_name", "name is required"));
    }
    let mut rec = SourceRecord {
        name: String::new(),
        key: ids::random_hex(16),
        preset: None,
        params: Vec::new(),
        status_map: Vec::new(),
        default_currency: "USD".into(),
        macro_syntax: None,
        created_ms: now_ms(),
        signing_secrets: Vec::new(),
        signing_tolerance_s: signing::DEFAULT_TOLERANCE_S,
        allow_ips: Vec::new(),
        rate_limit: None,
        ipn: None,
    };
    let new_secrets = input.apply(&mut rec)?;
    let entry = app
        .store
        .write(move |ctx| {
            let id = store::next_counter(ctx, "next_source_id")?;
            ctx.sources()?
                .insert(id, records::encode(&rec).as_slice())?;
            Ok(ctx.catalog_mut().put_source(id, rec))
        })
        .await?;
    Ok(Saved { entry, new_secrets })
}

pub async fn update(app: &App, id: u64, input: SourceIn) -> Result<Saved, Error> {
    let mut rec = get(app, id)?.rec.clone();
    let new_secrets = input.apply(&mut rec)?;
    let entry = app
        .store
        .write(move |ctx| {
            if !ctx.catalog().sources.contains_key(&id) {
                return Ok(None);
            }
            ctx.sources()?
                .insert(id, records::encode(&rec).as_slice())?;
            Ok(Some(ctx.catalog_mut().put_source(id, rec)))
        })
        .await?
        .ok_or_else(|| unknown(id))?;
    Ok(Saved { entry, new_secrets })
}

pub async fn delete(app: &App, id: u64) -> Result<(), Error> {
    let removed = app
        .store
        .write(move |ctx| {
            let existed = ctx.sources()?.remove(id)?.is_some();
            if existed {
                ctx.catalog_mut().remove_source(id);
            }
            Ok(existed)
        })
        .await?;
    if removed { Ok(()) } else { Err(unknown(id)) }
}

/// Body of `POST /api/v1/sources/{id}/ipn-sample`.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct SampleIn {
    pub click_id: String,
    pub amount: Option<String>,
}

/// A valid notification of the source's IPN format for a click, signed or
/// encrypted with its secret (`postbackd test-ipn`): (content type, body).
/// A sale with receipt `test-<click ID>`.
pub fn ipn_sample(app: &App, id: u64, input: SampleIn) -> Result<(&'static str, Vec<u8>), Error> {
    let entry = get(app, id)?;
    let Some(settings) = &entry.ipn else {
        return Err(Error::invalid(
            "ipn_not_configured",
            "this source has no IPN settings; set \"ipn\": {\"format\", \"secret\"} first",
        ));
    };
    let click_id = ids::normalize_click_id(&input.click_id);
    if click_id.is_empty() || click_id.len() > ids::MAX_CLICK_ID_LEN {
        return Err(Error::invalid(
            "invalid_click_id",
            "click_id must be a click ID",
        ));
    }
    let amount = input.amount.unwrap_or_else(|| "1.00".into());
    postback::parse_amount(&amount)
        .map_err(|why| Error::invalid("invalid_amount", format!("amount: {why}")))?;
    // ClickBank's IVs are 16 ASCII characters; 8 random bytes in hex.
    let mut iv = [0u8; 16];
    for (d, h) in iv.iter_mut().zip(ids::random_hex(8).bytes()) {
        *d = h;
    }
    let sample = ipn::Sample {
        tx_type: ipn::TxType::Sale,
        test: false,
        click_id: Some(click_id.clone()),
        receipt: format!("test-{click_id}"),
        sequence: "1".into(),
        amount,
        iv,
    };
    Ok(ipn::sample(settings, &sample))
}
