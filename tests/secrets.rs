//! No secret (admin token, signing secrets, IPN secrets, dashboard passwords and
//! session tokens) appears in logs, stored events, metrics or error bodies, in a run
//! that used every one of them.

use std::io::Read;
use std::process::{Command, Stdio};

use hyper::Method;
use postbackd::util::client::HttpClient;
use postbackd::util::signing;
use serde_json::json;

#[tokio::test(flavor = "multi_thread")]
async fn secrets_never_leak() {
    let dir = tempfile::tempdir().unwrap();
    let token = "leakcheck-admin-token-5f0e9a7c1d";
    let user_secret = signing::generate_secret();
    let mut child = Command::new(env!("CARGO_BIN_EXE_postbackd"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .env("POSTBACKD_ADMIN_TOKEN", token)
        // Everything our code and our dependencies log.
        .env("POSTBACKD_LOG", "trace")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut first = Vec::new();
    let mut byte = [0u8; 1];
    while stdout.read(&mut byte).unwrap() == 1 && byte[0] != b'\n' {
        first.push(byte[0]);
    }
    let first = String::from_utf8(first).unwrap();
    let base = first
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap()
        .to_string();
    let mut stderr = child.stderr.take().unwrap();
    let log_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let out_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });

    let http = HttpClient::new();
    let admin = |m: Method, p: &str, b: Option<serde_json::Value>| {
        let http = http.clone();
        let url = format!("{base}{p}");
        async move { http.json(m, &url, Some(token), b.as_ref()).await.unwrap() }
    };
    let mut bodies = Vec::new();
    let gen_src = admin(
        Method::POST,
        "/api/v1/sources",
        Some(json!({"name": "gen", "signing": {"generate": true}})),
    )
    .await;
    let generated = gen_src.json()["signing"]["new_secrets"][0]
        .as_str()
        .unwrap()
        .to_string();
    let user_src = admin(
        Method::POST,
        "/api/v1/sources",
        Some(json!({"name": "user", "signing": {"secrets": [user_secret]}})),
    )
    .await;
    assert_eq!(user_src.status, 201);
    let l = admin(
        Method::POST,
        "/api/v1/links",
        Some(json!({"slug": "s", "destination": "https://n.example/?s={click_id}"})),
    )
    .await;
    assert_eq!(l.status, 201);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    for (src, secret) in [
        (gen_src.json(), generated.clone()),
        (user_src.json(), user_secret.clone()),
    ] {
        let key = src["key"].as_str().unwrap();
        let k = signing::decode_secret(&secret).unwrap();
        for (i, t) in [now, now - 1000].into_iter().enumerate() {
            let msg = format!("/p/{key}?click_id=abc{i}&amount=1&ts={t}");
            let url = format!("{base}{msg}&sig={}", signing::sign_hex(&k, msg.as_bytes()));
            bodies.push(http.send(Method::GET, &url, &[], None).await.unwrap().body);
        }
        // Wrong signature, unsigned, and the secret itself sent as a parameter
        // name would be the sender's leak, not ours: not sent.
        let bad = format!("{base}/p/{key}?click_id=x&ts={now}&sig={}", "0".repeat(64));
        bodies.push(http.send(Method::GET, &bad, &[], None).await.unwrap().body);
        bodies.push(
            http.send(
                Method::GET,
                &format!("{base}/p/{key}?click_id=y"),
                &[],
                None,
            )
            .await
            .unwrap()
            .body,
        );
    }
    // IPN receivers: right and wrong secrets, every format (WarriorPlus's
    // key travels in the body and must be redacted from the events log).
    let mut ipn_secrets = Vec::new();
    for f in postbackd::inbound::ipn::Format::ALL {
        let secret = format!("ipn-leakcheck-{}-7c1d9e", f.as_str());
        let src = admin(
            Method::POST,
            "/api/v1/sources",
            Some(json!({"name": f.as_str(), "ipn": {"format": f.as_str(), "secret": secret}})),
        )
        .await;
        assert_eq!(src.status, 201);
        bodies.push(src.body.clone());
        let key = src.json()["key"].as_str().unwrap().to_string();
        for (i, used) in [secret.as_str(), "wrong-secret"].into_iter().enumerate() {
            let (ct, body) = crate::ipn::notification(
                f,
                used,
                postbackd::inbound::ipn::TxType::Sale,
                false,
                Some("abc"),
                &format!("leak{i}"),
                "1",
            );
            let r = http
                .send(
                    Method::POST,
                    &format!("{base}/ipn/{key}"),
                    &[("content-type", ct)],
                    Some(body),
                )
                .await
                .unwrap();
            bodies.push(r.body);
        }
        ipn_secrets.push(secret);
    }
    // Wrong and right admin tokens, bad requests.
    bodies.push(
        http.json(
            Method::GET,
            &format!("{base}/api/v1/sources"),
            Some("wrong-token"),
            None,
        )
        .await
        .unwrap()
        .body,
    );
    bodies.push(
        admin(
            Method::POST,
            "/api/v1/sources",
            Some(json!({"name": "x", "signing": {"secrets": ["whsec_bad"]}})),
        )
        .await
        .body,
    );
    bodies.push(admin(Method::GET, "/api/v1/sources", None).await.body);
    bodies.push(
        admin(Method::GET, "/api/v1/events?limit=500", None)
            .await
            .body,
    );
    bodies.push(admin(Method::GET, "/api/v1/conversions", None).await.body);
    bodies.push(admin(Method::GET, "/api/v1/stats", None).await.body);
    bodies.push(
        http.send(Method::GET, &format!("{base}/metrics"), &[], None)
            .await
            .unwrap()
            .body,
    );
    // Dashboard: a user's password, a wrong one, the session token.
    let password = "leakcheck-password-77c1e0";
    bodies.push(
        admin(
            Method::POST,
            "/api/v1/users",
            Some(json!({"name": "leak", "password": password, "role": "admin"})),
        )
        .await
        .body,
    );
    bodies.push(admin(Method::GET, "/api/v1/users", None).await.body);
    let login = |pw: &'static str| {
        let (http, base) = (http.clone(), base.clone());
        async move {
            let body = format!("name=leak&password={pw}").into_bytes();
            http.send(
                Method::POST,
                &format!("{base}/login"),
                &[
                    ("content-type", "application/x-www-form-urlencoded"),
                    ("origin", &base),
                ],
                Some(body),
            )
            .await
            .unwrap()
        }
    };
    let wrong = login("leakcheck-wrong-pw-4410").await;
    assert_eq!(wrong.status, 401);
    bodies.push(wrong.body.clone());
    let signed = login(password).await;
    assert_eq!(signed.status, 303);
    let session_token = signed
        .header("set-cookie")
        .and_then(|c| c.strip_prefix("postbackd_session="))
        .and_then(|c| c.split(';').next())
        .unwrap()
        .to_string();
    bodies.push(signed.body.clone());

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    child.wait().unwrap();
    let logs = log_reader.join().unwrap();
    let out = out_reader.join().unwrap();
    // The logs were captured and do describe the requests.
    assert!(
        logs.contains("postback") && logs.contains("bad_signature"),
        "{logs}"
    );
    assert!(
        logs.contains("admin request without a valid token"),
        "{logs}"
    );

    let mut needles = vec![token.to_string()];
    for s in [&generated, &user_secret] {
        needles.push(s.clone());
        // The base64 key without its prefix, too.
        needles.push(s.trim_start_matches("whsec_").to_string());
    }
    needles.extend(ipn_secrets);
    needles.push(password.to_string());
    needles.push("leakcheck-wrong-pw-4410".to_string());
    needles.push(session_token.clone());
    let responses: Vec<String> = bodies
        .iter()
        .map(|b| String::from_utf8_lossy(b).into_owned())
        .collect();
    let db = std::fs::read(dir.path().join("postbackd.redb")).unwrap();
    for n in &needles {
        assert!(!logs.contains(n.as_str()), "a secret is in the logs");
        assert!(!out.contains(n.as_str()), "a secret is on stdout");
        for r in &responses {
            assert!(!r.contains(n.as_str()), "a secret is in a response: {r}");
        }
    }
    // Stored events: the database holds the signing secrets in the sources
    // table (it must, to verify), but not the admin token, and the events
    // log holds no secret: checked through the API above. The token:
    assert!(
        !db.windows(token.len()).any(|w| w == token.as_bytes()),
        "the admin token is in the database"
    );
    for n in [password, session_token.as_str()] {
        assert!(
            !db.windows(n.len()).any(|w| w == n.as_bytes()),
            "a password or session token is in the database"
        );
    }
}
