//! The files in `packaging/` agree with the code: the example config loads
//! as shipped and with every example line uncommented, lists every key the
//! server accepts, and the unit and the .deb metadata use its paths.

use std::path::{Path, PathBuf};

use postbackd::config::{self, Config, Settings};

fn repo_file(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(repo_file(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// `key = value` lines, set or commented out (`# key = value`): (key, set?).
fn key_lines(text: &str) -> Vec<(String, bool)> {
    text.lines()
        .filter_map(|line| {
            let (body, set) = match line.strip_prefix("# ") {
                Some(rest) => (rest, false),
                None => (line, true),
            };
            let (key, _) = body.split_once(" = ")?;
            let is_key =
                !key.is_empty() && key.bytes().all(|b| b.is_ascii_lowercase() || b == b'_');
            is_key.then(|| (key.to_string(), set))
        })
        .collect()
}

/// The keys the TOML file accepts, taken from serde's own "expected one of"
/// list for an unknown key (`Settings` denies unknown fields), so a key
/// added to the code is a key missing from the example until it is listed.
fn accepted_keys() -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let probe = dir.path().join("probe.toml");
    std::fs::write(&probe, "not_a_postbackd_key = 1\n").unwrap();
    let err = config::load(Some(&probe), Settings::default())
        .unwrap_err()
        .to_string();
    let list = err
        .split("expected one of")
        .nth(1)
        .and_then(|rest| rest.lines().next())
        .unwrap_or_else(|| panic!("no list of accepted keys in: {err}"));
    let keys: Vec<String> = list
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect();
    assert!(keys.len() > 10, "{keys:?} from {err}");
    keys
}

fn load_text(text: &str) -> Result<Config, config::ConfigError> {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("postbackd.toml");
    std::fs::write(&f, text).unwrap();
    config::load(Some(&f), Settings::default())
}

#[test]
fn example_config_loads_as_shipped_with_defaults_but_the_data_dir() {
    let c = config::load(
        Some(&repo_file("packaging/postbackd.toml")),
        Settings::default(),
    )
    .expect("packaging/postbackd.toml must load");
    assert_eq!(c.data_dir, Path::new("/var/lib/postbackd"));
    // Every value set in the example is the default: only data_dir differs.
    let expected = Config::with_data_dir("/var/lib/postbackd");
    assert_eq!(format!("{c:?}"), format!("{expected:?}"));
}

#[test]
fn example_config_lists_every_accepted_key_once() {
    let text = read("packaging/postbackd.toml");
    let lines = key_lines(&text);
    let accepted = accepted_keys();
    for key in &accepted {
        let n = lines.iter().filter(|(k, _)| k == key).count();
        assert_eq!(
            n, 1,
            "`{key}` is accepted by the server but appears {n} times in packaging/postbackd.toml \
             (list it once, set to its default or commented with an example value)"
        );
    }
    for (key, _) in &lines {
        assert!(
            accepted.contains(key),
            "packaging/postbackd.toml lists `{key}`, which the server does not accept"
        );
    }
}

#[test]
fn example_config_loads_with_every_example_uncommented() {
    let text = read("packaging/postbackd.toml");
    let uncommented: String = text
        .lines()
        .map(|line| match line.strip_prefix("# ") {
            Some(rest) if !key_lines(rest).is_empty() => rest,
            _ => line,
        })
        .collect::<Vec<_>>()
        .join("\n");
    let commented = key_lines(&text).iter().filter(|(_, set)| !set).count();
    assert!(commented > 0);
    assert_eq!(
        key_lines(&uncommented)
            .iter()
            .filter(|(_, set)| !set)
            .count(),
        0
    );
    let c = load_text(&uncommented).unwrap_or_else(|e| {
        panic!("packaging/postbackd.toml with its examples uncommented must load: {e}")
    });
    assert!(c.public_url.starts_with("https://"));
    assert!(c.admin_token.is_some());
    assert!(c.tls_cert.is_some() && c.tls_key.is_some());
    assert!(c.http_redirect_listen.is_some());
    assert!(c.admin_listen.is_some());
}

#[test]
fn unit_and_deb_metadata_use_the_example_paths() {
    let unit = read("packaging/postbackd.service");
    let directive = |name: &str| -> Vec<String> {
        unit.lines()
            .filter_map(|l| l.strip_prefix(&format!("{name}=")))
            .map(str::to_string)
            .collect()
    };
    assert_eq!(
        directive("ExecStart"),
        ["/usr/bin/postbackd serve --config /etc/postbackd/postbackd.toml"]
    );
    let state = directive("StateDirectory");
    assert_eq!(state.len(), 1);
    let c = config::load(
        Some(&repo_file("packaging/postbackd.toml")),
        Settings::default(),
    )
    .unwrap();
    assert_eq!(c.data_dir, Path::new("/var/lib").join(&state[0]));
    // The unit stops within the server's drain time (10 s) plus margin.
    assert_eq!(directive("TimeoutStopSec"), ["30"]);

    let manifest: toml::Table = toml::from_str(&read("Cargo.toml")).unwrap();
    let deb = &manifest["package"]["metadata"]["deb"];
    let assets: Vec<(String, String)> = deb["assets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a[0].as_str().unwrap().to_string(),
                a[1].as_str().unwrap().to_string(),
            )
        })
        .collect();
    for (src, dest) in [
        ("target/release/postbackd", "usr/bin/"),
        ("packaging/postbackd.toml", "etc/postbackd/postbackd.toml"),
    ] {
        assert!(
            assets.contains(&(src.to_string(), dest.to_string())),
            "{src} -> {dest} missing from {assets:?}"
        );
    }
    assert_eq!(
        deb["conf-files"].as_array().unwrap()[0].as_str(),
        Some("/etc/postbackd/postbackd.toml")
    );
    assert_eq!(
        deb["systemd-units"]["unit-name"].as_str(),
        Some("postbackd")
    );
    assert_eq!(deb["maintainer-scripts"].as_str(), Some("packaging/"));
    // Debian policy 5.6.2: "Name <address>", an address mail can reach, not
    // a reserved test domain (RFC 2606) left from a template.
    let maintainer = deb["maintainer"].as_str().unwrap();
    let (name, rest) = maintainer.split_once(" <").expect("Name <address>");
    let addr = rest.strip_suffix('>').expect("Name <address>");
    assert!(!name.trim().is_empty(), "{maintainer}");
    let domain = addr.rsplit_once('@').expect("an email address").1;
    assert!(domain.contains('.'), "{maintainer}");
    for reserved in [".example", ".invalid", ".test", ".localhost", "example.com"] {
        assert!(
            !domain.ends_with(reserved),
            "placeholder maintainer {maintainer}"
        );
    }
    assert_eq!(
        manifest["package"]["repository"]
            .as_str()
            .map(|r| r.starts_with("https://")),
        Some(true),
        "the package names its repository"
    );
}
