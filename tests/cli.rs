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
    // A link for the page tag: its origins, and the snippet to paste.
    let (ok, out) = cli(
        &srv.base,
        &[
            "link",
            "add",
            "https://offer.example/?s={click_id}",
            "--slug",
            "lp1",
            "--tag-origin",
            "https://lp.example",
            "--tag-origin",
            "https://www.lp.example/",
        ],
    );
    assert!(ok, "{out}");
    assert!(
        out.contains("page tag") && out.contains("/t.js?v=") && out.contains("data-link=\"lp1\""),
        "{out}"
    );
    let (ok, out) = cli(
        &srv.base,
        &[
            "link",
            "add",
            "https://offer.example/",
            "--tag-origin",
            "lp.example",
        ],
    );
    assert!(!ok && out.contains("invalid_tag_origins"), "{out}");
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

/// Dead deliveries listed and replayed from the command line.
#[tokio::test(flavor = "multi_thread")]
async fn destinations_and_dead_deliveries_from_the_cli() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    let fixed = Arc::new(AtomicBool::new(false));
    let f = fixed.clone();
    let mock = crate::mock::Mock::start(Arc::new(move |_, _| {
        if f.load(Ordering::SeqCst) {
            (200, vec![], "{}".into())
        } else {
            (
                400,
                vec![],
                "{\"error\":{\"message\":\"bad pixel\"}}".into(),
            )
        }
    }))
    .await;
    let dir = tempfile::tempdir().unwrap();
    let mut srv = crate::durability::spawn_server_with(
        dir.path(),
        &[
            "--allow-private-destinations",
            "true",
            "--forward-retry-base-ms",
            "50",
        ],
    );
    let base = srv.base.clone();
    let run = move |args: Vec<String>| {
        let base = base.clone();
        async move {
            tokio::task::spawn_blocking(move || {
                let a: Vec<&str> = args.iter().map(String::as_str).collect();
                cli(&base, &a)
            })
            .await
            .unwrap()
        }
    };
    let (ok, out) = run(vec![
        "destination".into(),
        "add".into(),
        "pixel".into(),
        "--type".into(),
        "meta".into(),
        "--config".into(),
        r#"{"pixel_id":"1","access_token":"t"}"#.into(),
        "--base-url".into(),
        mock.base.clone(),
    ])
    .await;
    assert!(ok, "{out}");
    let (ok, out) = run(vec!["source".into(), "add".into(), "net".into()]).await;
    assert!(ok, "{out}");
    let (ok, out) = run(vec![
        "link".into(),
        "add".into(),
        "https://o.example/?s={click_id}".into(),
        "--slug".into(),
        "l".into(),
        "--source".into(),
        "1".into(),
    ])
    .await;
    assert!(ok, "{out}");
    let (ok, out) = run(vec!["test-postback".into(), "1".into()]).await;
    assert!(ok && out.contains("GREEN"), "{out}");
    let mut dead = String::new();
    for _ in 0..100 {
        let (_, out) = run(vec![
            "delivery".into(),
            "list".into(),
            "--state".into(),
            "dead".into(),
        ])
        .await;
        if out.contains("bad pixel") {
            dead = out;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(dead.contains("dead"), "the 400 made the delivery dead");
    fixed.store(true, Ordering::SeqCst);
    let (ok, out) = run(vec!["delivery".into(), "retry-dead".into()]).await;
    assert!(
        ok && out.contains("1 dead deliveries queued again"),
        "{out}"
    );
    let mut delivered = false;
    for _ in 0..100 {
        let (_, out) = run(vec!["destination".into(), "list".into()]).await;
        if out.contains("delivered=1") {
            delivered = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(delivered);
    srv.child.kill().unwrap();
    srv.child.wait().unwrap();
}

/// `test-ipn` for each network: a fresh click, a valid notification of the
/// source's format through the running binary, a green verdict.
#[tokio::test(flavor = "multi_thread")]
async fn test_ipn_for_every_format() {
    use hyper::Method;
    use postbackd::util::client::HttpClient;
    use serde_json::json;
    let dir = tempfile::tempdir().unwrap();
    let mut srv = spawn_server(dir.path());
    let http = HttpClient::new();
    for (i, format) in ["clickbank", "jvzoo", "warriorplus", "digistore24"]
        .into_iter()
        .enumerate()
    {
        let r = http
            .json(
                Method::POST,
                &format!("{}/api/v1/sources", srv.base),
                Some(TOKEN),
                Some(&json!({"name": format, "ipn": {"format": format, "secret": "cli-secret-1"}})),
            )
            .await
            .unwrap();
        assert_eq!(r.status, 201);
        let id = r.json()["id"].clone();
        let r = http
            .json(
                Method::POST,
                &format!("{}/api/v1/links", srv.base),
                Some(TOKEN),
                Some(&json!({"destination": "https://offer.example/?tid={click_id}", "source": id, "slug": format!("l{i}")})),
            )
            .await
            .unwrap();
        assert_eq!(r.status, 201);
        let base = srv.base.clone();
        let (ok, out) = tokio::task::spawn_blocking(move || cli(&base, &["test-ipn", format]))
            .await
            .unwrap();
        assert!(ok && out.contains("GREEN"), "{format}: {out}");
        assert!(!out.contains("cli-secret-1"), "{out}");
    }
    // A source without IPN settings: red, with the fix.
    let base = srv.base.clone();
    let (ok, _) = tokio::task::spawn_blocking({
        let base = base.clone();
        move || cli(&base, &["source", "add", "Plain"])
    })
    .await
    .unwrap();
    assert!(ok);
    let (ok, out) = tokio::task::spawn_blocking(move || cli(&base, &["test-ipn", "Plain"]))
        .await
        .unwrap();
    assert!(!ok && out.contains("no IPN settings"), "{out}");
    srv.child.kill().unwrap();
    srv.child.wait().unwrap();
}
