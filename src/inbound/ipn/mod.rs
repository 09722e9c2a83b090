//! Pure decoders of the marketplaces' IPN notifications (ClickBank INS,
//! JVZoo JVZIPN, WarriorPlus, Digistore24): one file per network, and here
//! the shared output type, a [`Notification`] (canonical fields plus a
//! transaction type), the settings a source gives its decoder, the answer
//! body each network expects, and the uniform authentication refusal.
//!
//! A decoder is a function from (raw body, content type, settings) to a
//! typed result: no I/O, no clock, no randomness (the fuzz targets drive
//! them). Every refusal is a [`Rejection`] with a stable code and a
//! sentence naming the fix; every authentication failure is the same
//! [`bad_signature`], whatever failed, so nothing about the secret or the
//! plaintext can be learnt from the answer.

pub mod clickbank;
pub mod digistore24;
pub mod jvzoo;
pub mod warriorplus;

use rust_decimal::Decimal;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

pub use crate::inbound::postback::Rejection;
use crate::inbound::postback::parse_amount;
use crate::inbound::query::{self, Limits, Param};
use crate::util::ids::{self, MAX_CLICK_ID_LEN};

/// The networks whose notifications postbackd decodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Format {
    ClickBank,
    JvZoo,
    WarriorPlus,
    Digistore24,
}

impl Format {
    pub const ALL: [Format; 4] = [
        Format::ClickBank,
        Format::JvZoo,
        Format::WarriorPlus,
        Format::Digistore24,
    ];

    /// For messages ("format must be ...").
    pub const LIST: &'static str = "clickbank, jvzoo, warriorplus or digistore24";

    pub fn as_str(self) -> &'static str {
        match self {
            Format::ClickBank => "clickbank",
            Format::JvZoo => "jvzoo",
            Format::WarriorPlus => "warriorplus",
            Format::Digistore24 => "digistore24",
        }
    }

    pub fn parse(s: &str) -> Option<Format> {
        Format::ALL.into_iter().find(|f| f.as_str() == s)
    }

    /// What a successful receiver answers this network. Digistore24 checks
    /// for the body text `OK`; the others only look at the 200.
    pub fn success_reply(self) -> Reply {
        match self {
            Format::Digistore24 => Reply::PlainOk,
            _ => Reply::Json,
        }
    }
}

/// The body of a successful answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reply {
    /// postbackd's JSON result (status 200).
    Json,
    /// `text/plain` body `OK` (status 200).
    PlainOk,
}

/// Which amount a conversion takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum AmountBasis {
    /// The affiliate's commission, where the network sends it (else the
    /// order amount).
    #[default]
    Commission,
    /// The order total the customer paid.
    Order,
}

impl AmountBasis {
    pub fn as_str(self) -> &'static str {
        match self {
            AmountBasis::Commission => "commission",
            AmountBasis::Order => "order",
        }
    }

    pub fn parse(s: &str) -> Option<AmountBasis> {
        match s {
            "commission" => Some(AmountBasis::Commission),
            "order" => Some(AmountBasis::Order),
            _ => None,
        }
    }
}

/// A source's IPN settings, as its decoder needs them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    pub format: Format,
    /// ClickBank secret key, JVZoo secret key, WarriorPlus security key or
    /// Digistore24 IPN passphrase. Never logged.
    pub secret: String,
    /// The field that carries the click ID, when not the format's default.
    pub click_id_field: Option<String>,
    pub amount: AmountBasis,
    /// Forward test transactions to destinations too.
    pub include_tests: bool,
}

/// What a notification is about, on postbackd's model.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TxType {
    /// A first payment: a new purchase.
    Sale,
    /// A recurring payment: a new conversion (event `rebill`) tied to the
    /// original receipt.
    Rebill,
    /// The original's status becomes `refunded`.
    Refund,
    /// The original's status becomes `chargeback`.
    Chargeback,
    /// Not about money (cancel-rebill, abandoned order, connection test...):
    /// logged and answered, nothing counted.
    Other,
}

impl TxType {
    pub fn as_str(self) -> &'static str {
        match self {
            TxType::Sale => "sale",
            TxType::Rebill => "rebill",
            TxType::Refund => "refund",
            TxType::Chargeback => "chargeback",
            TxType::Other => "other",
        }
    }

    /// Does this type move money (and so need a receipt)?
    pub fn is_money(self) -> bool {
        self != TxType::Other
    }
}

/// A decoded, authenticated notification.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notification {
    pub tx_type: TxType,
    /// The network's own word for the type (`SALE`, `on_payment`...).
    pub raw_type: String,
    /// A test transaction: stored flagged, not forwarded by default.
    pub test: bool,
    /// The network's receipt / order ID: the dedup key with the type, and
    /// what ties a rebill, refund or chargeback to its sale. Present for
    /// every money type.
    pub receipt: Option<String>,
    /// What tells two rebills of one receipt apart (the network's
    /// per-payment ID or time). Present for every rebill.
    pub sequence: Option<String>,
    /// Click ID candidates, normalized (trimmed, lowercase), in the order
    /// the network sent them; ingest takes the first that is a recorded
    /// click, else the first.
    pub click_ids: Vec<String>,
    /// The amount on the chosen basis, never negative (a refund's reversal
    /// is stored as its absolute value). Present for sales and rebills.
    pub amount: Option<Decimal>,
    /// ISO 4217, uppercase; `None` = the source's default.
    pub currency: Option<String>,
    pub country: Option<String>,
    pub state: Option<String>,
    pub city: Option<String>,
    pub zip: Option<String>,
    /// A few fields worth keeping with the conversion (vendor, product).
    pub extra: Vec<(String, String)>,
    /// ClickBank's decrypted JSON, stored with the event for the operator.
    pub plaintext: Option<String>,
}

impl Notification {
    fn new(tx_type: TxType, raw_type: &str) -> Self {
        Notification {
            tx_type,
            raw_type: raw_type.to_string(),
            test: false,
            receipt: None,
            sequence: None,
            click_ids: Vec::new(),
            amount: None,
            currency: None,
            country: None,
            state: None,
            city: None,
            zip: None,
            extra: Vec::new(),
            plaintext: None,
        }
    }
}

/// The parts of a request a notification is read from.
#[derive(Clone, Copy, Debug, Default)]
pub struct Request<'a> {
    pub content_type: Option<&'a str>,
    pub body: &'a [u8],
}

/// How much of the notification's authentication to check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Auth {
    /// Check it (every live request).
    Verify,
    /// A replay of a stored request that was authenticated when it arrived
    /// and whose secret was redacted before storing (WarriorPlus): the
    /// stored copy can no longer prove it, the original did.
    AlreadyVerified,
}

/// Decode a notification with a source's settings.
pub fn decode(
    req: &Request<'_>,
    settings: &Settings,
    limits: &Limits,
    auth: Auth,
) -> Result<Notification, Rejection> {
    let n = match settings.format {
        Format::ClickBank => clickbank::decode(req, settings, limits)?,
        Format::JvZoo => jvzoo::decode(req, settings, limits)?,
        Format::WarriorPlus => warriorplus::decode(req, settings, limits, auth)?,
        Format::Digistore24 => digistore24::decode(req, settings, limits)?,
    };
    debug_assert!(check_invariants(&n).is_ok());
    Ok(n)
}

/// What every accepted notification carries (the fuzz targets assert it):
/// a money type has a receipt, a sale or rebill an amount, a rebill a
/// sequence; click IDs are normalized and bounded; free text is bounded.
pub fn check_invariants(n: &Notification) -> Result<(), String> {
    if n.tx_type.is_money() && n.receipt.as_deref().is_none_or(str::is_empty) {
        return Err("money notification without a receipt".into());
    }
    if matches!(n.tx_type, TxType::Sale | TxType::Rebill) && n.amount.is_none() {
        return Err("sale or rebill without an amount".into());
    }
    if n.tx_type == TxType::Rebill && n.sequence.as_deref().is_none_or(str::is_empty) {
        return Err("rebill without a sequence".into());
    }
    if n.amount.is_some_and(|a| a.is_sign_negative()) {
        return Err("negative amount".into());
    }
    for c in &n.click_ids {
        if c.is_empty()
            || c.len() > MAX_CLICK_ID_LEN
            || *c != ids::normalize_click_id(c)
            || c.chars().any(char::is_control)
        {
            return Err(format!("bad click ID candidate {c:?}"));
        }
    }
    for v in [
        &n.receipt,
        &n.sequence,
        &n.country,
        &n.state,
        &n.city,
        &n.zip,
    ]
    .into_iter()
    .flatten()
    {
        if v.len() > MAX_TEXT || v.chars().any(char::is_control) || v.trim() != v {
            return Err(format!("bad text field {v:?}"));
        }
    }
    if let Some(c) = &n.currency
        && !crate::inbound::currency::is_iso4217(c)
    {
        return Err(format!("bad currency {c:?}"));
    }
    Ok(())
}

/// The one answer to every authentication failure: a wrong or missing
/// signature or key, a ClickBank body that does not decrypt or decrypts to
/// something that is not a JSON object. One message whatever failed, so the
/// answer is no padding (or plaintext) oracle.
pub fn bad_signature(format: Format) -> Rejection {
    let fix = match format {
        Format::ClickBank => {
            "check that the source's ipn secret is the Secret Key of your ClickBank account \
             (Account Settings > My Site > Advanced Tools) and the INS version is 6.0 or later"
        }
        Format::JvZoo => {
            "check that the source's ipn secret is the JVZIPN Secret Key of your JVZoo account \
             (My Account > Seller Info)"
        }
        Format::WarriorPlus => {
            "check that the source's ipn secret is the Security Key shown with the IPN settings \
             in WarriorPlus"
        }
        Format::Digistore24 => {
            "check that the source's ipn secret is the IPN passphrase of the Digistore24 IPN \
             connection (Settings > Integrations (IPN))"
        }
    };
    Rejection::new(
        "bad_signature",
        None,
        format!("the notification could not be authenticated; {fix}"),
    )
}

/// Is this refusal one that only an authenticated notification can get
/// (a field problem found after the check)? Replay uses it to know whether
/// a redacted WarriorPlus request was authentic when it arrived.
pub fn is_after_authentication(code: &str) -> bool {
    matches!(
        code,
        "missing_field"
            | "invalid_amount"
            | "invalid_currency"
            | "unknown_transaction_type"
            | "invalid_parameter"
    )
}

/// Longest kept free-text value (receipt, geography, extra fields).
pub const MAX_TEXT: usize = 256;

/// An IPN secret for display: at most a quarter of it, and at most 4
/// characters, then an ellipsis (enough to tell two apart, never enough to
/// use: a ClickBank secret key is only up to 16 characters chosen by the
/// user, so the fixed 4 of a signing secret's mask would be too many for a
/// short one).
pub fn mask_secret(secret: &str) -> String {
    let shown = (secret.chars().count() / 4).min(4);
    crate::util::signing::mask_after(secret, shown)
}

/// Placeholder for a secret cut out of a stored request.
pub const REDACTED: &str = "[redacted]";

/// The body as stored in the events log: a secret the notification carries
/// in clear (WarriorPlus's `WP_SECURITYKEY`) replaced by [`REDACTED`].
/// Other formats carry no secret (a signature is not one) and are stored
/// as received.
pub fn redact(format: Format, body: &[u8]) -> Vec<u8> {
    match format {
        Format::WarriorPlus => warriorplus::redact(body),
        _ => body.to_vec(),
    }
}

/// Form fields of a notification body (JVZoo, WarriorPlus, Digistore24).
fn form_params(format: Format, body: &[u8], limits: &Limits) -> Result<Vec<Param>, Rejection> {
    let mut out = Vec::new();
    query::parse_form(body, limits, &mut out).map_err(|e| {
        Rejection::new(
            "invalid_body",
            None,
            format!(
                "the body is not a readable form ({}); {} sends application/x-www-form-urlencoded: \
                 point its IPN at this URL unchanged",
                match e {
                    query::ParseError::InvalidUtf8 { .. } => "not UTF-8",
                    query::ParseError::TooManyParams { .. } => "too many fields",
                    query::ParseError::TooLong { .. } => "a field is too long",
                    query::ParseError::InvalidJson { .. } => "not a form",
                },
                network_name(format)
            ),
        )
    })?;
    Ok(out)
}

fn network_name(f: Format) -> &'static str {
    match f {
        Format::ClickBank => "ClickBank",
        Format::JvZoo => "JVZoo",
        Format::WarriorPlus => "WarriorPlus",
        Format::Digistore24 => "Digistore24",
    }
}

/// Fields by name; a name given twice is `None` in [`Fields::unique`]
/// (an authenticated field must not be ambiguous).
struct Fields<'a> {
    params: &'a [Param],
}

impl<'a> Fields<'a> {
    fn get(&self, name: &str) -> Option<&'a str> {
        self.params
            .iter()
            .find(|p| p.name == name)
            .map(|p| p.value.as_str())
    }

    /// A non-empty trimmed value.
    fn text(&self, name: &str) -> Option<&'a str> {
        self.get(name).map(str::trim).filter(|v| !v.is_empty())
    }

    fn has_duplicates(&self) -> bool {
        let mut names: Vec<&str> = self.params.iter().map(|p| p.name.as_str()).collect();
        names.sort_unstable();
        names.windows(2).any(|w| w[0] == w[1])
    }
}

/// Constant-time equality of two secrets of any length: both are hashed
/// first, so neither the contents nor the length leak through timing.
fn secret_eq(a: &[u8], b: &[u8]) -> bool {
    let ha = Sha256::digest(a);
    let hb = Sha256::digest(b);
    ha.as_slice().ct_eq(hb.as_slice()).into()
}

/// Uppercase hex.
fn hex_upper(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(HEX[usize::from(b >> 4)]));
        s.push(char::from(HEX[usize::from(b & 15)]));
    }
    s
}

fn missing(format: Format, field: &str, what: &str) -> Rejection {
    Rejection::new(
        "missing_field",
        None,
        format!(
            "the {} notification has no `{field}` ({what}); it cannot be counted without it. \
             Check the IPN version in the network's settings, then replay the event",
            network_name(format)
        ),
    )
}

fn unknown_type(format: Format, field: &str, value: &str) -> Rejection {
    Rejection::new(
        "unknown_transaction_type",
        None,
        format!(
            "the {} notification's `{field}` is `{}`, a type postbackd does not know; \
             nothing was counted. Report it, or replay the event after an upgrade",
            network_name(format),
            short(value)
        ),
    )
}

/// A bounded free-text value: trimmed, at most [`MAX_TEXT`] bytes, no
/// control characters; anything else is refused with `invalid_parameter`.
fn text_field(format: Format, field: &str, v: Option<&str>) -> Result<Option<String>, Rejection> {
    let Some(v) = v.map(str::trim).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    if v.len() > MAX_TEXT || v.chars().any(char::is_control) {
        return Err(Rejection::new(
            "invalid_parameter",
            None,
            format!(
                "the {} notification's `{field}` is longer than {MAX_TEXT} bytes or contains \
                 control characters; it cannot be stored as sent",
                network_name(format)
            ),
        ));
    }
    Ok(Some(v.to_string()))
}

/// The settings most decoder tests use: commission amounts, no tests
/// forwarded, the format's own click ID field.
#[cfg(test)]
fn test_settings(format: Format, secret: &str) -> Settings {
    Settings {
        format,
        secret: secret.into(),
        click_id_field: None,
        amount: AmountBasis::Commission,
        include_tests: false,
    }
}

/// The amount the source's `amount` setting chooses: the commission or the
/// order field, the other when the chosen one is absent; required for a sale
/// or a rebill. `lookup` gives a field's value when the notification has it.
fn chosen_amount(
    format: Format,
    basis: AmountBasis,
    (commission, order): (&'static str, &'static str),
    tx: TxType,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<Option<Decimal>, Rejection> {
    let (primary, fallback) = match basis {
        AmountBasis::Commission => (commission, order),
        AmountBasis::Order => (order, commission),
    };
    let (field, raw) = match lookup(primary) {
        Some(v) => (primary, Some(v)),
        None => (fallback, lookup(fallback)),
    };
    let amount = match raw {
        Some(v) => amount_field(format, field, &v, tx)?,
        None => None,
    };
    if matches!(tx, TxType::Sale | TxType::Rebill) && amount.is_none() {
        return Err(missing(format, primary, "the amount"));
    }
    Ok(amount)
}

/// Parse an amount. Refunds and chargebacks may carry the reversal as a
/// negative or zero amount: the sign is dropped for them, never refused.
fn amount_field(
    format: Format,
    field: &str,
    v: &str,
    tx: TxType,
) -> Result<Option<Decimal>, Rejection> {
    let v = v.trim();
    if v.is_empty() {
        return Ok(None);
    }
    let reversal = matches!(tx, TxType::Refund | TxType::Chargeback);
    let unsigned = match v.strip_prefix('-') {
        Some(rest) if reversal => rest,
        _ => v,
    };
    parse_amount(unsigned).map(Some).map_err(|why| {
        Rejection::new(
            "invalid_amount",
            None,
            format!(
                "the {} notification's `{field}` `{}` is not an amount: {why}",
                network_name(format),
                short(v)
            ),
        )
    })
}

fn currency_field(
    format: Format,
    field: &str,
    v: Option<&str>,
) -> Result<Option<String>, Rejection> {
    match v.map(str::trim).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(c) => crate::inbound::currency::normalize(c)
            .map(Some)
            .ok_or_else(|| {
                Rejection::new(
                    "invalid_currency",
                    None,
                    format!(
                        "the {} notification's `{field}` `{}` is not an ISO 4217 currency code; \
                     the source's default_currency applies only when it is absent",
                        network_name(format),
                        short(c)
                    ),
                )
            }),
    }
}

/// A click ID candidate, normalized; `None` when it cannot be a click ID
/// (empty, too long, control characters): the notification is then
/// stored unmatched rather than refused, since the sale is real.
fn click_candidate(raw: &str) -> Option<String> {
    let c = ids::normalize_click_id(raw);
    (!c.is_empty() && c.len() <= MAX_CLICK_ID_LEN && !c.chars().any(char::is_control)).then_some(c)
}

/// A value for a message: bounded and escaped.
fn short(v: &str) -> String {
    let cut = crate::util::text::truncate(v, 64);
    let more = if cut.len() < v.len() { "…" } else { "" };
    format!("{}{more}", cut.escape_debug())
}

/// What a sample notification should say (`postbackd test-ipn`, tests,
/// fuzz seeds): the inverse of the decoders.
#[derive(Clone, Debug)]
pub struct Sample {
    pub tx_type: TxType,
    pub test: bool,
    pub click_id: Option<String>,
    pub receipt: String,
    /// Rebill sequence (payment number or time).
    pub sequence: String,
    /// Decimal text, e.g. `12.50`.
    pub amount: String,
    /// ClickBank's IV: 16 bytes (the network uses 16 ASCII characters).
    pub iv: [u8; 16],
}

/// A valid notification of the source's format: (content type, body).
pub fn sample(settings: &Settings, s: &Sample) -> (&'static str, Vec<u8>) {
    match settings.format {
        Format::ClickBank => ("application/json", clickbank::sample(settings, s)),
        Format::JvZoo => (FORM, jvzoo::sample(settings, s)),
        Format::WarriorPlus => (FORM, warriorplus::sample(settings, s)),
        Format::Digistore24 => (FORM, digistore24::sample(settings, s)),
    }
}

const FORM: &str = "application/x-www-form-urlencoded";

fn form(pairs: &[(&str, &str)]) -> Vec<u8> {
    let mut ser = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        ser.append_pair(k, v);
    }
    ser.finish().into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_show_at_most_a_quarter() {
        assert_eq!(mask_secret("MYSECRETKEY16CHR"), "MYSE…");
        assert_eq!(mask_secret("SHORTKEY"), "SH…");
        assert_eq!(mask_secret("abc"), "…");
        assert_eq!(mask_secret(&"x".repeat(64)), "xxxx…");
    }

    #[test]
    fn formats_and_bases_round_trip() {
        for f in Format::ALL {
            assert_eq!(Format::parse(f.as_str()), Some(f));
            assert!(Format::LIST.contains(f.as_str()));
        }
        assert_eq!(Format::Digistore24.success_reply(), Reply::PlainOk);
        assert_eq!(Format::ClickBank.success_reply(), Reply::Json);
        for a in [AmountBasis::Commission, AmountBasis::Order] {
            assert_eq!(AmountBasis::parse(a.as_str()), Some(a));
        }
    }
}
