//! Manual cost updates: "these clicks cost this much in total". The writer
//! finds the matching clicks of the range, gives each its share of the
//! amount (exactly: the last click takes the rounding remainder) and moves
//! the click's roll-up counters in the same transaction. Setting, not
//! adding: the same update twice leaves every click's cost as the first
//! one did.

use std::collections::BTreeMap;

use redb::ReadableTable;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::store::records::{self, ClickRecord, Record};
use crate::store::rollup::{self, Counters};
use crate::store::{StoreError, WriteCtx};
use crate::util::ids;

/// Decimal places of a click's share (the remainder goes to the last).
const SHARE_DP: u32 = 8;

/// Which clicks an update covers.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CostScope {
    pub link: Option<String>,
    pub campaign: Option<String>,
    pub source: Option<u64>,
    /// Stored dimension name (`sub1`, `country`...) -> value.
    pub filter: Vec<(String, String)>,
}

/// A stored cost update (`GET /api/v1/costs`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CostUpdateRecord {
    pub scope: CostScope,
    pub from_ms: u64,
    pub to_ms: u64,
    /// As given (`from`, `to`, `tz`), for the list.
    pub from: String,
    pub to: String,
    pub tz: String,
    pub amount: String,
    /// Empty: the report currency.
    pub currency: String,
    pub matched_clicks: u64,
    pub created_ms: u64,
}

impl Record for CostUpdateRecord {
    const VERSION: u8 = 1;
    const KIND: &'static str = "cost update";
}

fn matches(c: &ClickRecord, scope: &CostScope, dims: &[String]) -> bool {
    !c.bot
        && scope.link.as_deref().is_none_or(|l| c.slug == l)
        && scope
            .campaign
            .as_deref()
            .is_none_or(|k| c.campaign.as_deref() == Some(k))
        && scope.source.is_none_or(|s| c.source_id == Some(s))
        && scope
            .filter
            .iter()
            .all(|(d, v)| rollup::dim_index(d).is_some_and(|i| dims.get(i).is_some_and(|x| x == v)))
}

/// Apply an update: returns how many clicks it covers. Stores the update
/// with that count under `id`.
pub fn apply(
    ctx: &mut WriteCtx<'_>,
    id: &str,
    mut update: CostUpdateRecord,
) -> Result<u64, StoreError> {
    let amount: Decimal = update
        .amount
        .parse()
        .map_err(|_| StoreError::Corrupt("cost update amount".into()))?;
    let lo = ids::lower_bound(update.from_ms);
    let hi = ids::lower_bound(update.to_ms);
    let mut hits: Vec<(String, ClickRecord)> = Vec::new();
    {
        let t = ctx.clicks()?;
        for row in t.range::<&str>(lo.as_str()..hi.as_str())? {
            let (k, v) = row?;
            let c: ClickRecord = records::decode(v.value())?;
            if c.ms < update.from_ms || c.ms >= update.to_ms {
                continue;
            }
            let dims = rollup::click_dims(&c);
            if matches(&c, &update.scope, &dims) {
                hits.push((k.value().to_string(), c));
            }
        }
    }
    let n = hits.len() as u64;
    if n > 0 {
        let share = (amount / Decimal::from(n)).round_dp(SHARE_DP);
        let last = amount - share * Decimal::from(n - 1);
        // Moves of roll-up counters, merged per row so a batch of clicks in
        // one bucket touches its rows once.
        let mut moves: BTreeMap<Vec<u8>, Counters> = BTreeMap::new();
        let mut push = |k: Vec<u8>, c: Counters| match moves.get_mut(&k) {
            Some(acc) => acc.add(&c),
            None => {
                moves.insert(k, c);
            }
        };
        for (i, (key, mut c)) in hits.into_iter().enumerate() {
            let each = if i as u64 == n - 1 { last } else { share };
            let new_cost = Some((each.normalize().to_string(), update.currency.clone()));
            if c.cost == new_cost {
                continue;
            }
            let (old_row, old_counters) = rollup::click_row(&c);
            c.cost = new_cost;
            let (new_row, new_counters) = rollup::click_row(&c);
            for k in old_row {
                push(k, old_counters.negated());
            }
            for k in new_row {
                push(k, new_counters.clone());
            }
            ctx.clicks()?
                .insert(key.as_str(), records::encode(&c).as_slice())?;
        }
        for (k, d) in moves {
            rollup::add(ctx, std::slice::from_ref(&k), &d)?;
        }
    }
    update.matched_clicks = n;
    ctx.costs()?
        .insert(id, records::encode(&update).as_slice())?;
    Ok(n)
}
