//! Consistent snapshots of the live database, and offline compaction.
//!
//! A snapshot copies every table from one read transaction into a new redb
//! file: it sees exactly one committed state, whatever is being written
//! meanwhile, and it is a normal database file (restore = put it in place
//! of `postbackd.redb` while the server is stopped).

use std::path::Path;

use redb::{
    Database, Key, ReadTransaction, ReadableDatabase, ReadableTable, TableDefinition, Value,
    WriteTransaction,
};

use crate::store::{
    CLICKS, CONVERSIONS, DEDUP, DELIVERIES, DELIVERY_KEYS, DESTINATIONS, EVENTS, EXTERNAL_IDS,
    LINKS, META, OUTBOX, PENDING, SIGNATURES, SOURCES, StoreError, VISITS,
};

fn copy<K: Key + 'static, V: Value + 'static>(
    from: &ReadTransaction,
    to: &WriteTransaction,
    def: TableDefinition<K, V>,
) -> Result<u64, StoreError> {
    let src = from.open_table(def)?;
    let mut dst = to.open_table(def)?;
    let mut n = 0;
    for row in src.iter()? {
        let (k, v) = row?;
        dst.insert(k.value(), v.value())?;
        n += 1;
    }
    Ok(n)
}

/// Write a snapshot of `db` to `dest` (which must not exist). Returns the
/// number of records copied.
pub fn snapshot(db: &Database, dest: &Path) -> Result<u64, StoreError> {
    let rtx = db.begin_read()?;
    let out = Database::builder().create(dest)?;
    let wtx = out.begin_write()?;
    let mut n = 0;
    n += copy(&rtx, &wtx, META)?;
    n += copy(&rtx, &wtx, SOURCES)?;
    n += copy(&rtx, &wtx, LINKS)?;
    n += copy(&rtx, &wtx, CLICKS)?;
    n += copy(&rtx, &wtx, CONVERSIONS)?;
    n += copy(&rtx, &wtx, DEDUP)?;
    n += copy(&rtx, &wtx, EVENTS)?;
    n += copy(&rtx, &wtx, SIGNATURES)?;
    n += copy(&rtx, &wtx, DESTINATIONS)?;
    n += copy(&rtx, &wtx, DELIVERIES)?;
    n += copy(&rtx, &wtx, OUTBOX)?;
    n += copy(&rtx, &wtx, PENDING)?;
    n += copy(&rtx, &wtx, DELIVERY_KEYS)?;
    n += copy(&rtx, &wtx, VISITS)?;
    n += copy(&rtx, &wtx, EXTERNAL_IDS)?;
    wtx.commit()?;
    Ok(n)
}

/// Compact a database file that no server has open. Returns (bytes
/// before, bytes after).
pub fn compact(path: &Path) -> Result<(u64, u64), String> {
    let before = std::fs::metadata(path)
        .map_err(|e| format!("{}: {e}", path.display()))?
        .len();
    let mut db = Database::open(path).map_err(|e| match e {
        redb::DatabaseError::DatabaseAlreadyOpen => {
            "the database is open in a running postbackd; stop it first (compaction is offline)"
                .to_string()
        }
        e => format!("cannot open {}: {e}", path.display()),
    })?;
    while db
        .compact()
        .map_err(|e| format!("compaction failed: {e}"))?
    {}
    drop(db);
    let after = std::fs::metadata(path).map_err(|e| e.to_string())?.len();
    Ok((before, after))
}
