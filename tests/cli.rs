use std::process::Command;

use crate::durability::spawn_server;
use crate::util::TOKEN;

fn cli(base: &str, args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_postbackd"))
        .args(args)
        .args(["--server", base])
        .env("POSTBACKD_ADMIN_TOKEN", TOKEN)
        .output()
        .unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn source_link_and_test_postback_against_the_running_server() {
    let dir = tempfile::tempdir().unwrap();
    let mut srv = spawn_server(dir.path());
    let (ok, out) = cli(
        &srv.base,
        &["source", "add", "My network", "--preset", "hasoffers"],
    );
    assert!(ok, "{out}");
    assert!(
        out.contains("/p/") && out.contains("click_id={aff_sub}"),
        "{out}"
    );
    let (ok, out) = cli(
        &srv.base,
        &[
            "link",
            "add",
            "https://offer.example/?aff_sub={click_id}",
            "--slug",
            "o1",
            "--source",
            "1",
        ],
    );
    assert!(ok, "{out}");
    let (ok, out) = cli(&srv.base, &["source", "list"]);
    assert!(ok && out.contains("My network"), "{out}");
    let (ok, out) = cli(&srv.base, &["link", "list"]);
    assert!(ok && out.contains("o1"), "{out}");
    let (ok, out) = cli(&srv.base, &["test-postback", "1"]);
    assert!(ok, "{out}");
    assert!(out.contains("GREEN"), "{out}");
    // A source without a link: a red verdict with the reason, exit 1.
    let (ok, _) = cli(&srv.base, &["source", "add", "Other"]);
    assert!(ok);
    let (ok, out) = cli(&srv.base, &["test-postback", "Other"]);
    assert!(!ok && out.contains("has no link"), "{out}");
    // Wrong token: clear error.
    let out = Command::new(env!("CARGO_BIN_EXE_postbackd"))
        .args(["source", "list", "--server", &srv.base])
        .env("POSTBACKD_ADMIN_TOKEN", "wrong-token-wrong-token")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("401"));
    srv.child.kill().unwrap();
    srv.child.wait().unwrap();
}
