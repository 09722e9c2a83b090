//! Currency rates for reports: one unit of a currency in the report
//! currency (`{"EUR": "1.08"}`), set by the admin (`PUT /api/v1/rates`),
//! stored in the `meta` table. Money is summed per currency in the
//! roll-ups and converted only when a report is read, so a changed rate
//! applies to every report from then on and never rewrites stored sums.

use std::collections::BTreeMap;

use rust_decimal::Decimal;

use super::Error;
use crate::inbound::currency;
use crate::store::{META, StoreError, WriteCtx};

const KEY: &str = "report_rates";
/// Most currencies with a rate.
pub const MAX_RATES: usize = 200;

/// Currency → rate.
pub type Rates = BTreeMap<String, Decimal>;

fn decode(b: &[u8]) -> Result<Rates, StoreError> {
    let m: BTreeMap<String, String> = serde_json::from_slice(b)
        .map_err(|e| StoreError::Corrupt(format!("report rates: {e}").into()))?;
    Ok(m.into_iter()
        .filter_map(|(k, v)| Some((k, v.parse().ok()?)))
        .collect())
}

pub fn load(rtx: &redb::ReadTransaction) -> Result<Rates, StoreError> {
    let t = rtx.open_table(META)?;
    let v = t.get(KEY)?;
    match v {
        Some(v) => decode(v.value()),
        None => Ok(Rates::new()),
    }
}

/// Validate rates as given (`{"EUR": "1.08"}`): ISO 4217 codes, positive
/// decimals written as text (a JSON number is accepted too).
pub fn parse(input: &serde_json::Map<String, serde_json::Value>) -> Result<Rates, Error> {
    if input.len() > MAX_RATES {
        return Err(Error::new(
            "invalid_rates",
            format!("at most {MAX_RATES} rates"),
        ));
    }
    let mut out = Rates::new();
    for (code, v) in input {
        let c = currency::normalize(code).ok_or_else(|| {
            Error::new(
                "invalid_currency",
                format!(
                    "`{}` is not an ISO 4217 currency code such as EUR",
                    crate::util::text::truncate(code, 16)
                ),
            )
        })?;
        let text = match v {
            serde_json::Value::String(s) => s.trim().to_string(),
            serde_json::Value::Number(n) => n.to_string(),
            _ => String::new(),
        };
        let rate: Decimal = text
            .parse()
            .ok()
            .filter(|d: &Decimal| d.is_sign_positive() && !d.is_zero())
            .filter(|_| !text.contains(['e', 'E']))
            .ok_or_else(|| {
                Error::new(
                    "invalid_rate",
                    format!(
                        "the rate of {c} must be a positive decimal such as \"1.08\" (one {c} in \
                         the report currency)"
                    ),
                )
            })?;
        out.insert(c, rate.normalize());
    }
    Ok(out)
}

/// Replace the stored rates.
pub fn store(ctx: &mut WriteCtx<'_>, rates: &Rates) -> Result<(), StoreError> {
    let m: BTreeMap<&str, String> = rates
        .iter()
        .map(|(k, v)| (k.as_str(), v.to_string()))
        .collect();
    let bytes = serde_json::to_vec(&m).unwrap_or_default();
    ctx.meta()?.insert(KEY, bytes.as_slice())?;
    Ok(())
}
