//! Consistent snapshots of the live database, and offline compaction.
//!
//! A snapshot copies every table from one read transaction into a new redb
//! file: it sees exactly one committed state, whatever is being written
//! meanwhile, and it is a normal database file (restore = put it in place
//! of `postbackd.redb` while the server is stopped).

use std::path::Path;

use redb::{
    Database, Key, ReadTransaction, ReadableDatabase, ReadableTable, TableDefinition, TableHandle,
    Value, WriteTransaction,
};

use crate::store::health;
use crate::store::{
    CLICKS, CONVERSIONS, COSTS, DEDUP, DELIVERIES, DELIVERY_KEYS, DESTINATIONS, EVENTS,
    EXTERNAL_IDS, LINKS, META, OUTBOX, PENDING, ROLLUPS, SIGNATURES, SOURCES, StoreError, USERS,
    VISITS,
};

/// Tables a snapshot leaves out on purpose: sessions (a restored server
/// has everyone sign in again).
const NOT_COPIED: [&str; 1] = ["sessions"];

fn copy<K: Key + 'static, V: Value + 'static>(
    from: &ReadTransaction,
    to: &WriteTransaction,
    def: TableDefinition<K, V>,
    copied: &mut Vec<String>,
) -> Result<u64, StoreError> {
    copied.push(def.name().to_string());
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
    let c = &mut Vec::new();
    n += copy(&rtx, &wtx, META, c)?;
    n += copy(&rtx, &wtx, SOURCES, c)?;
    n += copy(&rtx, &wtx, LINKS, c)?;
    n += copy(&rtx, &wtx, CLICKS, c)?;
    n += copy(&rtx, &wtx, CONVERSIONS, c)?;
    n += copy(&rtx, &wtx, DEDUP, c)?;
    n += copy(&rtx, &wtx, EVENTS, c)?;
    n += copy(&rtx, &wtx, SIGNATURES, c)?;
    n += copy(&rtx, &wtx, DESTINATIONS, c)?;
    n += copy(&rtx, &wtx, DELIVERIES, c)?;
    n += copy(&rtx, &wtx, OUTBOX, c)?;
    n += copy(&rtx, &wtx, PENDING, c)?;
    n += copy(&rtx, &wtx, DELIVERY_KEYS, c)?;
    n += copy(&rtx, &wtx, VISITS, c)?;
    n += copy(&rtx, &wtx, EXTERNAL_IDS, c)?;
    // Users, not their sessions: a restored server has everyone sign in
    // again (the table is created empty when the copy is opened).
    n += copy(&rtx, &wtx, USERS, c)?;
    // Report roll-ups and cost updates: META says the roll-ups are built,
    // so a copy without them would open with empty reports.
    n += copy(&rtx, &wtx, ROLLUPS, c)?;
    n += copy(&rtx, &wtx, COSTS, c)?;
    // Postback health: the counters the alerts and source health read,
    // bulk-replay jobs (a restored one resumes), the alerts and their state.
    n += copy(&rtx, &wtx, health::HEALTH, c)?;
    n += copy(&rtx, &wtx, health::REPLAY_JOBS, c)?;
    n += copy(&rtx, &wtx, health::ALERTS, c)?;
    // A table added to the store and not to this list would be lost by
    // every backup without a word: refuse instead (the backup tests fail).
    for t in rtx.list_tables()? {
        if !c.iter().any(|n| n == t.name()) && !NOT_COPIED.contains(&t.name()) {
            return Err(StoreError::Unavailable(
                format!(
                    "the backup does not copy the `{}` table; add it to store/backup.rs",
                    t.name()
                )
                .into(),
            ));
        }
    }
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
