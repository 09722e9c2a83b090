//! Writing the time levels: the batch's merged increments ([`Pending`]),
//! applied once per row before the commit, and the one-time build of the
//! coarse levels for a database whose roll-ups have only 15-minute rows.

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use redb::ReadableTable;

use super::{Counters, Cube, Level, Part, at_level, subs_key};
use crate::store::{ROLLUPS, StoreError};

type RollupTable<'t> = redb::Table<'t, &'static [u8], &'static [u8]>;

/// The roll-up layout this build writes, kept in `meta` (`rollups_built`):
/// 1 = 15-minute rows only; 2 = 15-minute, hour and day rows; 3 = and the
/// sub-ID cube's hour, day and week rows.
pub const LAYOUT: u8 = 3;

/// Rows merged in memory before a rebuild applies them (bounded memory:
/// about 250 bytes a row).
pub const FLUSH_ROWS: usize = 100_000;

/// Roll-up increments not yet applied, merged per row key. A batch of
/// clicks on a few links shares its hour and day rows, so each is read and
/// written once per batch instead of once per click. Hashed, not sorted:
/// the writer merges ~20 rows per conversion but a batch has few distinct
/// rows, so sorting those once at [`Pending::flush`] (for writes that walk
/// the table in key order) is cheaper than a sorted map's comparisons on
/// every merge.
#[derive(Debug, Default)]
pub struct Pending {
    rows: HashMap<RowKey, Counters, foldhash::fast::RandomState>,
}

/// A row key in [`Pending`], compared for equality 8 bytes at a time. The
/// shipped static build links musl, whose `memcmp` (behind `==` on byte
/// slices) compares a byte at a time, and a batch's keys share long
/// prefixes (same link, bucket and dims up to the last field): about 300
/// instructions per equal 35-byte key that way (callgrind).
#[derive(Debug)]
struct RowKey(Vec<u8>);

impl PartialEq for RowKey {
    fn eq(&self, other: &Self) -> bool {
        let (a, b) = (self.0.as_slice(), other.0.as_slice());
        if a.len() != b.len() {
            return false;
        }
        let (a_words, a_rest) = a.as_chunks::<8>();
        let (b_words, b_rest) = b.as_chunks::<8>();
        a_words
            .iter()
            .zip(b_words)
            .all(|(x, y)| u64::from_ne_bytes(*x) == u64::from_ne_bytes(*y))
            && a_rest.iter().zip(b_rest).all(|(x, y)| x == y)
    }
}

impl Eq for RowKey {}

impl std::hash::Hash for RowKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.hash(state);
    }
}

impl Pending {
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    fn add(&mut self, key: Vec<u8>, delta: &Counters) {
        match self.rows.entry(RowKey(key)) {
            Entry::Occupied(acc) => acc.into_mut().add(delta),
            Entry::Vacant(row) => {
                row.insert(delta.clone());
            }
        }
    }

    /// `delta` into a 15-minute row (if its cube stores them) and the same
    /// row at every coarser level its cube keeps.
    pub fn add_levels(&mut self, quarter_key: &[u8], delta: &Counters) {
        for k in row_keys(quarter_key) {
            self.add(k, delta);
        }
    }

    /// `delta` into the coarser rows only (building levels from stored
    /// 15-minute rows).
    fn add_coarse(&mut self, cube: Cube, quarter_key: &[u8], delta: &Counters) {
        for level in cube.levels() {
            if *level != Level::Quarter {
                self.add(at_level(quarter_key, *level), delta);
            }
        }
    }

    /// `delta` into rows given by their final keys ([`stored_keys`]),
    /// which are moved in: the writer only merges.
    pub fn add_stored(&mut self, keys: Vec<Vec<u8>>, delta: &Counters) {
        for k in keys {
            self.add(k, delta);
        }
    }

    /// Apply every merged increment to `t` and empty the set.
    pub fn flush(&mut self, t: &mut RollupTable<'_>) -> Result<(), StoreError> {
        let mut rows: Vec<(Vec<u8>, Counters)> = self
            .rows
            .drain()
            .filter(|(_, d)| !d.is_zero())
            .map(|(k, d)| (k.0, d))
            .collect();
        rows.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        for (k, d) in rows {
            add_to(t, &k, &d)?;
        }
        Ok(())
    }
}

/// Every stored row a count with these 15-minute keys goes to: the
/// 15-minute rows of the cubes that store them and each cube's coarser
/// rows. Made where the count is computed (a click's on the handler's
/// thread), so the writer does not build keys ([`Pending::add_stored`]).
pub fn stored_keys(quarter_keys: &super::RowKeys) -> Vec<Vec<u8>> {
    quarter_keys.iter().flat_map(|k| row_keys(k)).collect()
}

/// The stored rows one 15-minute key counts in: itself if its cube stores
/// 15-minute rows, and the same row at each coarser level of its cube.
fn row_keys(quarter_key: &[u8]) -> Vec<Vec<u8>> {
    let Some((cube, _, Level::Quarter)) = quarter_key.first().and_then(|p| Cube::of_prefix(*p))
    else {
        return Vec::new();
    };
    cube.levels()
        .iter()
        .map(|level| match level {
            Level::Quarter => quarter_key.to_vec(),
            l => at_level(quarter_key, *l),
        })
        .collect()
}

/// Add `delta` to one stored row (creating it; removing it when it comes
/// to zero). An existing row is updated in place (one descent of the tree
/// instead of a get and an insert).
fn add_to(t: &mut RollupTable<'_>, key: &[u8], delta: &Counters) -> Result<(), StoreError> {
    let mut zero = false;
    let found = match t.get_mut(key)? {
        Some(mut guard) => {
            let mut c = Counters::decode(guard.value())?;
            c.add(delta);
            if c.is_zero() {
                zero = true;
            } else {
                guard.insert(c.encode().as_slice())?;
            }
            true
        }
        None => false,
    };
    if zero {
        t.remove(key)?;
    } else if !found {
        t.insert(key, delta.encode().as_slice())?;
    }
    Ok(())
}

/// Bring the roll-ups of an existing database to [`LAYOUT`], in the opening
/// transaction (a crash mid-way leaves the old layout, rebuilt at the next
/// start). `layout`: what `meta` said (`None`: no roll-ups at all).
pub fn upgrade(txn: &redb::WriteTransaction, layout: Option<u8>) -> Result<(), StoreError> {
    match layout {
        None => {
            tracing::info!(
                "building report roll-ups from the stored clicks and conversions (once)"
            );
            let (clicks, conversions) = super::rebuild(txn)?;
            tracing::info!(clicks, conversions, "report roll-ups built");
        }
        Some(v) if v < LAYOUT => {
            tracing::info!("building the hour and day rows of the report roll-ups (once)");
            let rows = build_levels(txn)?;
            tracing::info!(rows, "report roll-ups: hour and day rows built");
        }
        Some(_) => {}
    }
    Ok(())
}

/// Build the hour and day rows from the stored 15-minute rows (not from the
/// clicks: retention may have purged clicks whose counts the roll-ups keep).
/// Any coarse row already there is dropped first, so the result is exactly
/// the sum of the 15-minute rows. Returns the 15-minute rows read.
pub fn build_levels(txn: &redb::WriteTransaction) -> Result<u64, StoreError> {
    const CHUNK: usize = 50_000;
    let mut t = txn.open_table(ROLLUPS)?;
    // Stored 15-minute prefixes are 1..=9 (10..=12 would be the sub-ID
    // cube's, which it never stores), coarse ones 17 and up.
    t.retain_in::<&[u8], _>(&[16u8][..].., |_, _| false)?;
    let mut pending = Pending::default();
    let mut n = 0u64;
    // Only the cubes whose 15-minute rows feed coarser rows (their own, or
    // the sub-ID cube's): each one's 15-minute rows are the prefixes of its
    // three parts, contiguous.
    for cube in [Cube::Full, Cube::Lean, Cube::Links] {
        let mut from: Vec<u8> = vec![cube.prefix(Part::Clicks)];
        let end = [cube.prefix(Part::ConversionsAtChange) + 1];
        loop {
            let mut chunk: Vec<(Vec<u8>, Counters)> = Vec::with_capacity(CHUNK);
            for row in t.range::<&[u8]>(from.as_slice()..&end[..])? {
                let (k, v) = row?;
                chunk.push((k.value().to_vec(), Counters::decode(v.value())?));
                if chunk.len() == CHUNK {
                    break;
                }
            }
            let Some((last, _)) = chunk.last() else {
                break;
            };
            // The smallest key after `last`.
            from = last.clone();
            from.push(0);
            for (k, c) in &chunk {
                match cube {
                    // The full cube has no coarser rows: it feeds the
                    // sub-ID cube's.
                    Cube::Full => {
                        if let Some(sk) = subs_key(k) {
                            pending.add_coarse(Cube::Subs, &sk, c);
                        }
                    }
                    _ => pending.add_coarse(cube, k, c),
                }
            }
            pending.flush(&mut t)?;
            let before = n;
            n += chunk.len() as u64;
            if n / 1_000_000 != before / 1_000_000 {
                tracing::info!(rows = n, "building hour and day roll-up rows");
            }
            if chunk.len() < CHUNK {
                break;
            }
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn row_keys_are_equal_exactly_when_their_bytes_are() {
        let base: Vec<u8> = (0u8..35).collect();
        let key = |b: &[u8]| RowKey(b.to_vec());
        assert!(key(&base) == key(&base));
        assert!(key(&[]) == key(&[]));
        // A difference in a whole word, in the tail, and in the length.
        for at in [0, 7, 8, 31, 32, 34] {
            let mut other = base.clone();
            other[at] ^= 1;
            assert!(key(&base) != key(&other), "byte {at}");
        }
        assert!(key(&base) != key(&base[..34]));
        assert!(key(&base[..8]) != key(&base[..9]));
    }

    #[test]
    fn a_batch_merges_its_increments_per_row() {
        let mut p = Pending::default();
        let one = Counters {
            clicks: 1,
            ..Counters::default()
        };
        for k in [b"b".as_slice(), b"a", b"b", b"c", b"b"] {
            p.add(k.to_vec(), &one);
        }
        p.add(b"c".to_vec(), &one.negated());
        assert_eq!(p.len(), 3);
        let mut rows: Vec<(Vec<u8>, i64)> = p
            .rows
            .iter()
            .map(|(k, c)| (k.0.clone(), c.clicks))
            .collect();
        rows.sort();
        assert_eq!(
            rows,
            [(b"a".to_vec(), 1), (b"b".to_vec(), 3), (b"c".to_vec(), 0)]
        );
    }
}
