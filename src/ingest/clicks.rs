//! Finding the click a postback or IPN names: by click ID, else by
//! external ID, in the writer's transaction or (a postback's, before the
//! write) in a read transaction on the handler's thread.

use redb::ReadableTable;

use crate::inbound::postback::Fields;
use crate::store::records::{self, ClickRecord};
use crate::store::{CLICKS, EXTERNAL_IDS, StoreError, WriteCtx, rollup};

/// What [`prefetch_click`] found.
pub struct Prefetched {
    /// The click's own ID.
    pub id: String,
    pub click: ClickRecord,
    /// Where a new conversion of this request on it counts.
    pub placement: rollup::Placement,
}

/// Where a click is looked up: the writer's transaction, or a read
/// transaction on a handler's thread ([`prefetch_click`]). One lookup
/// order for both, so the two can never disagree on which click matches.
pub(super) trait Clicks {
    fn click(&mut self, id: &str) -> Result<Option<ClickRecord>, StoreError>;
    /// The click ID recorded for an external ID.
    fn external(&mut self, as_sent: &str) -> Result<Option<String>, StoreError>;
}

impl Clicks for WriteCtx<'_> {
    fn click(&mut self, id: &str) -> Result<Option<ClickRecord>, StoreError> {
        click_in(&*self.clicks()?, id)
    }

    fn external(&mut self, as_sent: &str) -> Result<Option<String>, StoreError> {
        external_in(&*self.external_ids()?, as_sent)
    }
}

impl Clicks for redb::ReadTransaction {
    fn click(&mut self, id: &str) -> Result<Option<ClickRecord>, StoreError> {
        click_in(&self.open_table(CLICKS)?, id)
    }

    fn external(&mut self, as_sent: &str) -> Result<Option<String>, StoreError> {
        external_in(&self.open_table(EXTERNAL_IDS)?, as_sent)
    }
}

/// One click, decoded, from either kind of clicks table.
fn click_in(
    t: &impl ReadableTable<&'static str, &'static [u8]>,
    id: &str,
) -> Result<Option<ClickRecord>, StoreError> {
    match t.get(id)? {
        Some(v) => Ok(Some(records::decode(v.value())?)),
        None => Ok(None),
    }
}

/// The click ID recorded for an external ID, from either kind of table.
fn external_in(
    t: &impl ReadableTable<&'static str, &'static str>,
    as_sent: &str,
) -> Result<Option<String>, StoreError> {
    Ok(t.get(as_sent)?.map(|v| v.value().to_string()))
}

/// The click a postback names: by click ID (normalized), else by external
/// ID (`as_sent`: trimmed, case kept). Returns the click's own ID with it.
/// Click IDs first: they are what nearly every postback carries, and an
/// external ID can never equal another click's ID (`record_click`).
pub(super) fn resolve_click(
    db: &mut impl Clicks,
    click_id: &str,
    as_sent: &str,
) -> Result<Option<(String, ClickRecord)>, StoreError> {
    if click_id.is_empty() {
        return Ok(None);
    }
    if let Some(c) = db.click(click_id)? {
        return Ok(Some((click_id.to_string(), c)));
    }
    let Some(id) = db.external(as_sent)? else {
        return Ok(None);
    };
    Ok(db.click(&id)?.map(|c| (id, c)))
}

/// The click `f` names, looked up (and decoded) in a read transaction on
/// the handler's thread, so the single writer does not: a click is in the
/// database before its 302 goes out, so before any postback can name it,
/// and what a conversion takes from it (its time, link, campaign and
/// dimensions) never changes (a cost update changes only its cost). One
/// not found here is looked up again by the writer.
///
/// Its roll-up rows are made here too ([`rollup::prepare`]), for a
/// conversion of `source_id` created at `now_ms` (the time the write uses).
pub fn prefetch_click(
    mut rtx: redb::ReadTransaction,
    source_id: u64,
    f: &Fields,
    now_ms: u64,
) -> Result<Option<Prefetched>, StoreError> {
    let Some((id, click)) = resolve_click(&mut rtx, &f.click_id, &f.click_id_as_sent)? else {
        return Ok(None);
    };
    let placement = rollup::prepare(
        source_id,
        f.kind.as_str(),
        f.event.as_deref(),
        &f.currency,
        &click,
        now_ms,
    );
    Ok(Some(Prefetched {
        id,
        click,
        placement,
    }))
}
