//! The dashboard's static files, compiled into the binary. Each is served
//! under a name carrying a hash of its content (`app.3f9c2a1b.css`), so a
//! page can tell browsers to keep it for a year: a new build has new names.

use std::sync::LazyLock;

use hyper::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderValue, X_CONTENT_TYPE_OPTIONS};
use hyper::{Response, StatusCode};
use sha2::{Digest, Sha256};

use crate::http::{Resp, full};

struct Asset {
    stem: &'static str,
    ext: &'static str,
    mime: &'static str,
    body: &'static [u8],
}

const FILES: [Asset; 3] = [
    Asset {
        stem: "app",
        ext: "css",
        mime: "text/css; charset=utf-8",
        body: include_bytes!("static/app.css"),
    },
    Asset {
        stem: "app",
        ext: "js",
        mime: "text/javascript; charset=utf-8",
        body: include_bytes!("static/app.js"),
    },
    Asset {
        stem: "icon",
        ext: "svg",
        mime: "image/svg+xml",
        body: include_bytes!("static/icon.svg"),
    },
];

/// `(served name, file)`, the name computed once from the content.
static NAMED: LazyLock<Vec<(String, &'static Asset)>> = LazyLock::new(|| {
    FILES
        .iter()
        .map(|a| {
            let digest = Sha256::digest(a.body);
            let hash: String = digest[..4].iter().map(|b| format!("{b:02x}")).collect();
            (format!("{}.{hash}.{}", a.stem, a.ext), a)
        })
        .collect()
});

/// The URL of a file by its plain name (`app.css`), for the page head.
pub fn url(plain: &str) -> String {
    NAMED
        .iter()
        .find(|(_, a)| format!("{}.{}", a.stem, a.ext) == plain)
        .map_or_else(String::new, |(name, _)| format!("/ui/assets/{name}"))
}

/// Total bytes of the files every page loads (stylesheet, script, icon).
pub fn total_bytes() -> usize {
    FILES.iter().map(|a| a.body.len()).sum()
}

/// `GET /ui/assets/{name}`; `None` for an unknown or stale name.
pub fn serve(name: &str) -> Option<Resp> {
    let (_, a) = NAMED.iter().find(|(n, _)| n == name)?;
    let mut r = Response::new(full(a.body));
    *r.status_mut() = StatusCode::OK;
    let h = r.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static(a.mime));
    h.insert(
        CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=31536000, immutable"),
    );
    h.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    Some(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_carry_the_content_hash_and_serve() {
        let css = url("app.css");
        assert!(
            css.starts_with("/ui/assets/app.") && css.ends_with(".css"),
            "{css}"
        );
        let name = css.trim_start_matches("/ui/assets/");
        assert!(serve(name).is_some());
        assert!(serve("app.00000000.css").is_none());
        assert_eq!(url("nope.css"), "");
    }
}
