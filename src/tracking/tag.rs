//! The page tag (`GET /t.js`): the script of `tag.js` with the known
//! affiliate link hosts (`inbound::presets::link_hosts`, the one table the
//! server also documents) put in at its `__POSTBACKD_HOSTS__` marker, once
//! per process, and the version that goes in its URL (`/t.js?v=VERSION`):
//! the start of the SHA-256 of the served text, so a changed script gets a
//! new URL and a cached one can be kept for a year.

use std::sync::OnceLock;

use sha2::{Digest, Sha256};

use crate::inbound::presets;

/// The readable source, in the repository beside this file.
const SOURCE: &str = include_str!("tag.js");
const MARKER: &str = "__POSTBACKD_HOSTS__";

struct Served {
    text: String,
    version: String,
}

fn served() -> &'static Served {
    static S: OnceLock<Served> = OnceLock::new();
    S.get_or_init(|| {
        let hosts: serde_json::Map<String, serde_json::Value> = presets::link_hosts()
            .into_iter()
            .map(|(h, p)| (h.to_string(), serde_json::Value::from(p)))
            .collect();
        let table = serde_json::Value::Object(hosts).to_string();
        let text = SOURCE.replacen(MARKER, &table, 1);
        let digest = Sha256::digest(text.as_bytes());
        let version = digest[..6].iter().map(|b| format!("{b:02x}")).collect();
        Served { text, version }
    })
}

/// The script as served.
pub fn script() -> &'static str {
    &served().text
}

/// Its version: 12 hex digits of its SHA-256.
pub fn version() -> &'static str {
    &served().version
}

/// The snippet to paste on a landing page for `slug`.
pub fn snippet(public_url: &str, slug: &str) -> String {
    format!(
        "<script async src=\"{public_url}/t.js?v={}\" data-link=\"{slug}\"></script>",
        version()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_are_inlined_and_the_version_follows_the_text() {
        let s = script();
        assert!(!s.contains(MARKER));
        assert!(
            s.contains(r#""hop.clickbank.net":"tid""#),
            "the preset table is in"
        );
        assert_eq!(version().len(), 12);
        let d = Sha256::digest(s.as_bytes());
        assert!(version().starts_with(&format!("{:02x}", d[0])));
        // A few KB, as promised.
        assert!(s.len() < 12 * 1024, "{} bytes", s.len());
    }

    #[test]
    fn snippet_names_the_versioned_url() {
        let s = snippet("https://t.example", "spring");
        assert!(s.starts_with("<script async src=\"https://t.example/t.js?v="));
        assert!(s.ends_with("data-link=\"spring\"></script>"));
    }
}
