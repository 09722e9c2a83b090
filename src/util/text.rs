//! Cutting untrusted or long text for messages, logs and stored fields.
//! Two meanings, each defined once: [`truncate`] keeps at most N bytes
//! (storage and log bounds, where size is what matters), [`ellipsize`] keeps
//! at most N characters and says it cut (text a person reads).

/// `s` cut to at most `max` bytes, on a character boundary.
pub fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// `s` cut to at most `max` characters, ending in `…` when cut.
pub fn ellipsize(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts() {
        assert_eq!(truncate("abc", 5), "abc");
        assert_eq!(truncate("abcdef", 3), "abc");
        // "é" is two bytes: never cut inside it.
        assert_eq!(truncate("aé", 2), "a");
        assert_eq!(ellipsize("abc", 3), "abc");
        assert_eq!(ellipsize("abcdef", 4), "abc…");
        assert_eq!(ellipsize("éééé", 2), "é…");
    }
}
