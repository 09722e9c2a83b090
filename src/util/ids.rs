//! Identifiers: click, conversion and event IDs.
//!
//! Contract: lowercase `[0-9a-z]`, at most 32 characters, at least 80 random
//! bits, time-ordered prefix. We use 9 base36 digits of Unix milliseconds
//! (enough until the year 5188) followed by 16 random base36 digits
//! (log2(36^16) ≈ 82.7 bits): 25 characters. The time prefix makes redb
//! inserts append-mostly and lets `since`/`until` filters become key ranges.

const ALPHABET: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
/// Width of the time prefix.
pub const TIME_DIGITS: usize = 9;
/// Width of the random suffix.
pub const RANDOM_DIGITS: usize = 16;
/// Total ID length.
pub const ID_LEN: usize = TIME_DIGITS + RANDOM_DIGITS;
/// Longest click ID we accept for matching (IDs of other trackers included).
pub const MAX_CLICK_ID_LEN: usize = 128;

/// A new ID for time `now_ms`, with fresh OS randomness.
pub fn new_id(now_ms: u64) -> String {
    let mut buf = [0u8; 16];
    os_random(&mut buf);
    id_from_parts(now_ms, u128::from_le_bytes(buf))
}

/// Bytes of OS randomness, drawn from a per-thread buffer refilled 4 KiB at
/// a time: one `getrandom` system call per 256 IDs instead of one per ID
/// (the call showed in the hot path's profile). The bytes are the kernel
/// CSPRNG's own output, each handed out once.
fn os_random(out: &mut [u8]) {
    use std::cell::RefCell;
    const POOL: usize = 4096;
    thread_local! {
        static BUF: RefCell<(Box<[u8; POOL]>, usize)> = RefCell::new((Box::new([0; POOL]), POOL));
    }
    BUF.with_borrow_mut(|(pool, used)| {
        for chunk in out.chunks_mut(POOL) {
            if POOL - *used < chunk.len() {
                // getrandom only fails on exotic platforms with no entropy
                // source; an ID without randomness would be guessable, so
                // refuse loudly rather than silently degrade.
                getrandom::fill(&mut pool[..]).expect("OS random number generator unavailable");
                *used = 0;
            }
            chunk.copy_from_slice(&pool[*used..*used + chunk.len()]);
            // Never hand the same bytes out twice.
            pool[*used..*used + chunk.len()].fill(0);
            *used += chunk.len();
        }
    });
}

/// `bytes` of OS randomness as lowercase hex (source keys, admin tokens).
pub fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    // Same stance as new_id: no entropy, no unguessable secrets.
    getrandom::fill(&mut buf).expect("OS random number generator unavailable");
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

/// Deterministic ID construction (tests, benches, fuzzing).
pub fn id_from_parts(now_ms: u64, random: u128) -> String {
    let mut out = [0u8; ID_LEN];
    let mut t = now_ms;
    for slot in out[..TIME_DIGITS].iter_mut().rev() {
        *slot = ALPHABET[(t % 36) as usize];
        t /= 36;
    }
    // Eight digits from each 64-bit half: u64 arithmetic instead of u128
    // division. 36^8 < 2^64, so each half's digits are (very nearly)
    // uniform and the 16 digits carry log2(36^16) = 82.7 random bits.
    let halves = [(random >> 64) as u64, random as u64];
    for (half, digits) in halves
        .iter()
        .zip(out[TIME_DIGITS..].chunks_mut(RANDOM_DIGITS / 2))
    {
        let mut r = *half;
        for slot in digits.iter_mut().rev() {
            *slot = ALPHABET[(r % 36) as usize];
            r /= 36;
        }
    }
    // Every byte comes from ALPHABET, so this is always valid ASCII.
    out.iter().map(|&b| b as char).collect()
}

/// The smallest ID with a time prefix of `ms` (for range scans).
pub fn lower_bound(ms: u64) -> String {
    let mut s = id_from_parts(ms, 0);
    s.truncate(TIME_DIGITS);
    s
}

/// Milliseconds encoded in an ID's time prefix, if it has one.
pub fn time_of(id: &str) -> Option<u64> {
    let prefix = id.get(..TIME_DIGITS)?;
    let mut t: u64 = 0;
    for b in prefix.bytes() {
        let d = match b {
            b'0'..=b'9' => b - b'0',
            b'a'..=b'z' => b - b'a' + 10,
            _ => return None,
        };
        t = t.checked_mul(36)?.checked_add(u64::from(d))?;
    }
    Some(t)
}

/// Normalize a click ID for matching: trim surrounding whitespace, ignore
/// case (some networks upper- or lower-case sub IDs).
pub fn normalize_click_id(raw: &str) -> String {
    raw.trim().to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_have_contract_shape() {
        let id = new_id(1_700_000_000_000);
        assert_eq!(id.len(), ID_LEN);
        assert!(id.len() <= 32);
        assert!(
            id.bytes()
                .all(|b| b.is_ascii_digit() || b.is_ascii_lowercase())
        );
        assert_eq!(time_of(&id), Some(1_700_000_000_000));
    }

    #[test]
    fn ids_are_time_ordered_and_unique() {
        let a = new_id(1_000);
        let b = new_id(1_001);
        assert!(a < b);
        assert_ne!(new_id(5), new_id(5));
        assert!(lower_bound(1_001).as_str() <= b.as_str());
        assert!(lower_bound(1_001).as_str() > a.as_str());
    }

    #[test]
    fn normalization_trims_and_lowercases() {
        assert_eq!(normalize_click_id("  AbC12 \t"), "abc12");
    }
}
