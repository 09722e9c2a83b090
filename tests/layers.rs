//! The layering of `src/` (README, "Architecture"): every top-level module
//! has a layer, and a module may import only from layers below its own.
//! Modules on the same layer do not import each other, so there is no
//! cycle between top-level modules. The check reads every `crate::` path
//! in `src/**/*.rs` (`use` lines, grouped `use crate::{a, b}`, and paths in
//! code such as `crate::util::clock::now_ms()`), test modules included.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Top-level modules by layer, highest first. A new module must be placed
/// here (and in the README's Architecture section) before it builds green.
const LAYERS: &[(u8, &[&str])] = &[
    (10, &["cli"]),
    (9, &["http"]),
    (8, &["manage"]),
    (7, &["app"]),
    (6, &["config"]),
    (5, &["ingest", "retention", "reports"]),
    (4, &["forward", "ratelimit"]),
    (3, &["views"]),
    (2, &["store"]),
    (1, &["inbound", "tracking"]),
    (0, &["util", "tls"]),
];

fn layer_of(module: &str) -> Option<u8> {
    LAYERS
        .iter()
        .find(|(_, mods)| mods.contains(&module))
        .map(|(l, _)| *l)
}

/// One import that breaks the layering.
#[derive(Debug, PartialEq, Eq)]
struct Violation {
    file: String,
    from: String,
    to: String,
    why: &'static str,
}

/// Source text without `//` comments (doc comments name modules freely).
fn strip_comments(src: &str) -> String {
    src.lines()
        .map(|l| match l.find("//") {
            // A `//` inside a string literal (a URL) keeps the line: only
            // cut where the comment marker is not inside quotes.
            Some(i) if l[..i].matches('"').count() % 2 == 0 => &l[..i],
            _ => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn ident_at(s: &str) -> &str {
    let end = s
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(s.len());
    &s[..end]
}

/// The top-level modules a file refers to through `crate::`.
fn referenced(src: &str) -> Vec<String> {
    let code = strip_comments(src);
    let mut out = Vec::new();
    let mut rest = code.as_str();
    while let Some(i) = rest.find("crate::") {
        // `postbackd_crate::` or `mycrate::` are not the crate root.
        let before = rest[..i].chars().next_back();
        rest = &rest[i + "crate::".len()..];
        if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_') {
            continue;
        }
        if let Some(group) = rest.strip_prefix('{') {
            // `crate::{a, b::c, d::{e, f}}`: the first name of each item
            // at the group's top level.
            let mut depth = 0usize;
            let mut start = 0usize;
            let mut end = group.len();
            for (j, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => {
                        end = j;
                        break;
                    }
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        out.push(ident_at(group[start..j].trim()).to_string());
                        start = j + 1;
                    }
                    _ => {}
                }
            }
            out.push(ident_at(group[start..end].trim()).to_string());
            rest = &group[end..];
        } else {
            out.push(ident_at(rest).to_string());
        }
    }
    out.retain(|m| !m.is_empty() && m != "self");
    out.sort();
    out.dedup();
    out
}

/// The top-level module a file under `src/` belongs to (`None` for the
/// crate roots `lib.rs` and `main.rs`).
fn module_of(rel: &Path) -> Option<String> {
    let first = rel.components().next()?.as_os_str().to_str()?;
    let name = first.strip_suffix(".rs").unwrap_or(first);
    (name != "lib" && name != "main").then(|| name.to_string())
}

/// Every violation in a set of `(path under src/, text)` files.
fn check(files: &[(PathBuf, String)]) -> Vec<Violation> {
    let mut out = Vec::new();
    for (rel, text) in files {
        let Some(from) = module_of(rel) else { continue };
        let file = rel.display().to_string();
        let Some(from_layer) = layer_of(&from) else {
            out.push(Violation {
                file,
                from: from.clone(),
                to: from,
                why: "module has no layer in tests/layers.rs LAYERS",
            });
            continue;
        };
        for to in referenced(text) {
            if to == from {
                continue;
            }
            match layer_of(&to) {
                None => out.push(Violation {
                    file: file.clone(),
                    from: from.clone(),
                    to,
                    why: "imports a module with no layer",
                }),
                Some(l) if l > from_layer => out.push(Violation {
                    file: file.clone(),
                    from: from.clone(),
                    to,
                    why: "upward import: a module may only use layers below its own",
                }),
                Some(l) if l == from_layer => out.push(Violation {
                    file: file.clone(),
                    from: from.clone(),
                    to,
                    why: "import between modules of one layer (a possible cycle)",
                }),
                Some(_) => {}
            }
        }
    }
    out
}

fn rust_files(dir: &Path, root: &Path, out: &mut Vec<(PathBuf, String)>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            rust_files(&p, root, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            let text = std::fs::read_to_string(&p).unwrap();
            out.push((p.strip_prefix(root).unwrap().to_path_buf(), text));
        }
    }
}

fn sources() -> Vec<(PathBuf, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&root, &root, &mut files);
    files
}

#[test]
fn imports_point_down_the_layers() {
    let files = sources();
    assert!(files.len() > 30, "read src/: {} files", files.len());
    let violations = check(&files);
    assert!(
        violations.is_empty(),
        "layering broken (README, Architecture):\n{}",
        violations
            .iter()
            .map(|v| format!("  {}: {} -> {}: {}", v.file, v.from, v.to, v.why))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn every_module_in_lib_rs_has_a_layer() {
    let lib =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/lib.rs")).unwrap();
    let mods: Vec<&str> = lib
        .lines()
        .filter_map(|l| l.trim().strip_prefix("pub mod "))
        .map(|m| m.trim_end_matches(';'))
        .collect();
    assert!(mods.len() >= 10, "{mods:?}");
    let mut seen = BTreeMap::new();
    for m in &mods {
        assert!(
            layer_of(m).is_some(),
            "src/lib.rs declares `{m}`, which has no layer"
        );
        seen.insert(*m, ());
    }
    for (_, layer) in LAYERS {
        for m in *layer {
            assert!(
                seen.contains_key(m),
                "LAYERS names `{m}`, which src/lib.rs does not declare"
            );
        }
    }
}

#[test]
fn the_checker_sees_what_it_must() {
    let f = |path: &str, text: &str| (PathBuf::from(path), text.to_string());
    // The shapes an import takes, each pointing up from the store.
    for text in [
        "use crate::http::Resp;",
        "use crate::{util::ids, http};",
        "use crate::{\n    util::{ids, net},\n    manage::sources,\n};",
        "fn f() { let _ = crate::app::App::open; }",
    ] {
        let v = check(&[f("store/mod.rs", text)]);
        assert_eq!(v.len(), 1, "{text}: {v:?}");
        assert_eq!(v[0].from, "store");
        assert!(v[0].why.starts_with("upward"), "{v:?}");
    }
    // Same layer, both directions, is refused; downward and self are fine.
    assert_eq!(
        check(&[f("inbound/query.rs", "use crate::tracking::click;")]).len(),
        1
    );
    assert!(
        check(&[f(
            "http/mod.rs",
            "use crate::{app::App, util, http::error};"
        )])
        .is_empty()
    );
    // Comments and look-alike names are not imports.
    assert!(
        check(&[f(
            "util/ids.rs",
            "// see crate::http\n/// [`crate::app::App`]\nuse mycrate::http;"
        )])
        .is_empty()
    );
    // A file of a module without a layer is reported.
    assert_eq!(check(&[f("dashboard/mod.rs", "")]).len(), 1);
    // The crate roots may declare everything.
    assert!(check(&[f("lib.rs", "pub use crate::http;")]).is_empty());
}

#[test]
fn files_say_what_they_own_and_stay_readable() {
    for (rel, text) in sources() {
        assert!(
            text.starts_with("//!"),
            "src/{}: open with a //! comment saying what the file owns",
            rel.display()
        );
        // Non-test code: everything before the file's `#[cfg(test)]` module.
        let code = text.split("\n#[cfg(test)]").next().unwrap_or("");
        let lines = code.lines().count();
        assert!(
            lines <= 1000,
            "src/{}: {lines} lines of non-test code; split it by what it does",
            rel.display()
        );
    }
}
