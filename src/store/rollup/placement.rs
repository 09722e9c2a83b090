//! A new matched conversion's roll-up rows, made before the write: on the
//! postback handler's thread, from the click it found there
//! (`ingest::prefetch_click`). Building the keys of a conversion's ~17
//! stored rows is ~13,000 instructions that the single writer need not
//! spend; it only merges them ([`super::on_conversion`]).

use super::{Part, RowKeys, bucket_of, dims_of, keys, stored_keys};
use crate::store::records::ClickRecord;

/// Where a new conversion counts, for the inputs it was made from; the
/// writer uses it only when its conversion has the same currency and
/// creation time (it is built from the same request, so it always does).
pub struct Placement {
    pub(super) created_ms: u64,
    pub(super) bucket: u32,
    pub(super) dims: Vec<String>,
    pub(super) rows: Rows,
}

/// A conversion's stored rows in one currency: at its click's bucket, then
/// at its creation's ([`super::on_conversion`]).
pub struct Rows {
    pub(super) currency: String,
    pub(super) at: [Vec<Vec<u8>>; 2],
}

/// The placement of a conversion of `kind` / `event` in `currency`, from
/// source `source_id`, created at `created_ms`, on `click`.
pub fn prepare(
    source_id: u64,
    kind: &str,
    event: Option<&str>,
    currency: &str,
    click: &ClickRecord,
    created_ms: u64,
) -> Placement {
    let bucket = bucket_of(click.ms);
    let dims = dims_of(source_id, kind, event, Some(click));
    let rows = |part: Part, at: u32| -> Vec<Vec<u8>> {
        let quarter: RowKeys = keys(part, at, currency, &dims);
        stored_keys(&quarter)
    };
    let at_click = rows(Part::ConversionsAtClick, bucket);
    let at_change = rows(Part::ConversionsAtChange, bucket_of(created_ms));
    Placement {
        created_ms,
        bucket,
        dims,
        rows: Rows {
            currency: currency.to_string(),
            at: [at_click, at_change],
        },
    }
}
