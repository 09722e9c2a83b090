//! Writes the seed corpus `fuzz/seeds/<target>/` from the preset networks'
//! realistic postbacks (`presets::Preset::example_query`), their generated
//! postback URLs (macros left in, as a misconfigured network sends them)
//! and typical tracking-link destinations.
//!
//! ```sh
//! cd fuzz && cargo +nightly run --example gen_seeds
//! ```
//!
//! Each structured seed is decoded again and compared with what was meant
//! (`decode(encode(x)) == x`), so a layout change cannot silently turn the
//! corpus into noise.

use std::fs;
use std::path::{Path, PathBuf};

use postbackd::inbound::ipn::{self, AmountBasis, Format, Sample, Settings, TxType};
use postbackd::inbound::presets;
use postbackd::util::ids;
use postbackd_fuzz::{
    ClickIdInput, ExpandInput, FieldsInput, LimitsInput, MappingInput, PostbackInput,
    SignatureInput,
};
use postbackd_fuzz::ipn::IpnInput;

/// A fixed click ID (time 2026-11-21, fixed randomness): seeds are stable.
fn click_id(n: u128) -> String {
    ids::id_from_parts(
        1_795_000_000_000,
        0x5eed_0000_0000_0000_0000_0000_0000_0000 + n,
    )
}

struct Out {
    root: PathBuf,
    count: usize,
}

impl Out {
    fn dir(&self, target: &str) -> PathBuf {
        self.root.join(target)
    }

    fn reset(&self, target: &str) {
        let d = self.dir(target);
        if d.exists() {
            fs::remove_dir_all(&d).unwrap();
        }
        fs::create_dir_all(&d).unwrap();
    }

    fn write(&mut self, target: &str, name: &str, bytes: &[u8]) {
        let path = self.dir(target).join(name);
        assert!(!path.exists(), "duplicate seed name {}", path.display());
        fs::write(&path, bytes).unwrap();
        self.count += 1;
    }
}

fn pairs(q: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(q.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// The example as a JSON object body; numeric-looking values as JSON
/// numbers (networks that POST JSON send amounts as numbers).
fn json_body(q: &str) -> Vec<u8> {
    let mut s = String::from("{");
    for (i, (k, v)) in pairs(q).iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        let numeric = !v.is_empty()
            && v.bytes().all(|b| b.is_ascii_digit() || b == b'.')
            && v.bytes().filter(|b| *b == b'.').count() == 1;
        if numeric {
            s.push_str(&format!("{k:?}:{v}"));
        } else {
            s.push_str(&format!("{k:?}:{v:?}"));
        }
    }
    s.push('}');
    s.into_bytes()
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds");
    let mut out = Out { root, count: 0 };
    let all = presets::all();

    // (a) query_form: raw query strings.
    out.reset("query_form");
    for (i, p) in all.iter().enumerate() {
        let q = p.example_query.replace("CLICKID", &click_id(i as u128));
        out.write("query_form", &format!("{}-example", p.id), q.as_bytes());
        out.write(
            "query_form",
            &format!("{}-macros", p.id),
            p.postback_query().as_bytes(),
        );
        // As a sender that percent-encodes its unreplaced macros sends it.
        let encoded: String = pairs(&p.postback_query())
            .iter()
            .fold(
                form_urlencoded::Serializer::new(String::new()),
                |mut s, (k, v)| {
                    s.append_pair(k, v);
                    s
                },
            )
            .finish();
        out.write(
            "query_form",
            &format!("{}-macros-encoded", p.id),
            encoded.as_bytes(),
        );
    }
    for (name, q) in [
        (
            "readme",
            "sub1=018jz1x4kq2m8v3n7p5r&payout=12.50&transaction_id=TX-1001",
        ),
        ("overlong-slash", "click_id=%c0%af&amount=1"),
        ("double-encoded", "click_id=%257Bclickid%257D&amount=%2531"),
        ("crlf-nul", "click_id=abc%0d%0aSet-Cookie:%20x%00&amount=1"),
        ("malformed-escapes", "a=%zz%&b=%&c=%4&+=+&&=&x"),
        ("utf8", "city=S%C3%A3o+Paulo&state=%E6%9D%B1%E4%BA%AC"),
    ] {
        out.write("query_form", name, q.as_bytes());
    }

    // (b) postback_request: each network's postback as GET, form POST and
    // JSON POST with its preset's mapping; the macro URL without one.
    out.reset("postback_request");
    for (i, p) in all.iter().enumerate() {
        let q = p.example_query.replace("CLICKID", &click_id(i as u128));
        let mapping = MappingInput::from_preset(p, 0);
        let seeds = [
            ("get", false, Ok(0), q.clone().into_bytes(), Vec::new()),
            ("form", true, Ok(3), Vec::new(), q.clone().into_bytes()),
            ("json", true, Ok(1), Vec::new(), json_body(&q)),
            // No content type: the body is sniffed.
            (
                "json-sniffed",
                true,
                Ok(0),
                b"click_id=x".to_vec(),
                json_body(&q),
            ),
            (
                "odd-type",
                true,
                Err("Application/JSON ; charset=latin1".to_string()),
                Vec::new(),
                json_body(&q),
            ),
        ];
        for (variant, post, content_type, query, body) in seeds {
            let input = PostbackInput {
                post,
                content_type,
                limits: LimitsInput::Default,
                mapping: mapping.clone(),
                query,
                body,
            };
            let bytes = input.encode();
            assert_eq!(PostbackInput::decode(&bytes), input, "{} {variant}", p.id);
            out.write("postback_request", &format!("{}-{variant}", p.id), &bytes);
        }
        let macros = PostbackInput {
            post: false,
            content_type: Ok(0),
            limits: LimitsInput::Default,
            mapping: MappingInput::default(),
            query: p.postback_query().into_bytes(),
            body: Vec::new(),
        };
        let bytes = macros.encode();
        assert_eq!(PostbackInput::decode(&bytes), macros);
        out.write("postback_request", &format!("{}-macros", p.id), &bytes);
    }
    let tight = PostbackInput {
        post: false,
        content_type: Ok(0),
        limits: LimitsInput::Small {
            max_params: 3,
            max_name_len: 8,
            max_value_len: 16,
        },
        mapping: MappingInput {
            params: vec![(0, "s2".into())],
            statuses: vec![("Approve".into(), 0), ("rfnd".into(), 3)],
            default_currency: Err("usd".into()),
        },
        query: b"s2=abc&amount=1.00&status=RFND&extra=%E2%82%AC".to_vec(),
        body: Vec::new(),
    };
    let bytes = tight.encode();
    assert_eq!(PostbackInput::decode(&bytes), tight);
    out.write("postback_request", "small-limits", &bytes);

    // (c) link_expand: destinations as admins write them, clicks as ads
    // send them (hostile values included).
    out.reset("link_expand");
    let templates = [
        "https://offer.example/?sub1={click_id}",
        "https://offer.example/lp?aff_sub=--CLICK-ID--&src={utm_source}&cmp={utm_campaign}",
        "https://offer.example/lp",
        "https://offer.example/lp?a=1#section",
        "http://[2001:db8::1]:8080/x?tid={click_id}",
        "HTTPS://Offer.Example:443/p/{gclid}/{click_id}?q={fbclid}",
        "https://hop.clickbank.net/?affiliate=me&vendor=v&tid={click_id}",
        "https://t.example/c?s2=--CLICK-ID--&s3={{click_id}}&s4={click_id",
    ];
    let clicks: [Vec<(String, String)>; 3] = [
        vec![
            ("utm_source".into(), "facebook".into()),
            ("utm_campaign".into(), "spring sale".into()),
            ("fbclid".into(), "IwAR1xYz".into()),
        ],
        vec![
            ("utm_source".into(), "//evil.example/@x?y#z\\w".into()),
            ("gclid".into(), "https://evil.example:1/".into()),
            ("fbclid".into(), "%2F%2Fevil\r\n".into()),
        ],
        Vec::new(),
    ];
    for (ti, t) in templates.iter().enumerate() {
        for (ci, params) in clicks.iter().enumerate() {
            let input = ExpandInput {
                template: (*t).to_string(),
                click_id: click_id((ti * 3 + ci) as u128),
                params: params.clone(),
                append_param: ["click_id", "tid", "sub/1?#"][ci].to_string(),
            };
            let bytes = input.encode();
            assert_eq!(ExpandInput::decode(&bytes), input);
            out.write("link_expand", &format!("t{ti}-c{ci}"), &bytes);
        }
    }

    // (d) amount_currency_status: each network's values with its statuses.
    out.reset("amount_currency_status");
    for p in all {
        let q = pairs(p.example_query);
        let get = |field: &str| {
            let name = p.param_for(field).unwrap_or(field);
            q.iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        };
        let input = FieldsInput {
            amount: get("amount"),
            currency: get("currency"),
            status: get("status"),
            mapping: MappingInput::from_preset(p, 1),
        };
        let bytes = input.encode();
        assert_eq!(FieldsInput::decode(&bytes), input);
        out.write("amount_currency_status", p.id, &bytes);
    }
    for (name, amount, currency, status) in [
        ("comma", "1,50", "eur", "approved"),
        ("exponent", "1e5", "XTS", "Sale"),
        ("negative", "-12.50", " usd ", "refund"),
        ("long", "1234567890123456.12345678901", "US", "chargeback"),
        ("macros", "{payout}", "#currency#", "[status]"),
    ] {
        let input = FieldsInput {
            amount: amount.into(),
            currency: currency.into(),
            status: status.into(),
            mapping: MappingInput::default(),
        };
        let bytes = input.encode();
        assert_eq!(FieldsInput::decode(&bytes), input);
        out.write("amount_currency_status", name, &bytes);
    }

    // (e) click_id: our IDs as networks echo them, other trackers' IDs,
    // and every preset's click macro left unreplaced.
    out.reset("click_id");
    let mut raws: Vec<(String, String)> = vec![
        ("ours".into(), click_id(1)),
        ("ours-upper".into(), click_id(2).to_uppercase()),
        ("ours-padded".into(), format!(" \t{}\n", click_id(3))),
        ("uuid".into(), "5f0c6a1e-8d2b-4c7e-9a3f-1b2c3d4e5f60".into()),
        ("voluum".into(), "AJKd8s9QmZ0kR2vB1xYp3W".into()),
        ("replace".into(), "REPLACE".into()),
        ("control".into(), "abc\u{1f}def".into()),
        ("unicode".into(), "ÄBC\u{2028}".into()),
    ];
    for p in all {
        if let Some(m) = p.macro_for("click_id") {
            raws.push((format!("{}-macro", p.id), p.syntax.wrap(m)));
        }
    }
    for (i, (name, raw)) in raws.into_iter().enumerate() {
        let input = ClickIdInput {
            raw,
            ms: 1_795_000_000_000 + i as u64,
            random: (u128::MAX / 31).wrapping_mul(i as u128),
        };
        let bytes = input.encode();
        assert_eq!(ClickIdInput::decode(&bytes), input);
        out.write("click_id", &name, &bytes);
    }

    // (f) signature: each network's postback signed as a GET and as a
    // Standard Webhooks JSON POST, in time and stale; and unsigned ones.
    out.reset("signature");
    // The Standard Webhooks documentation's example secret.
    let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let key = postbackd::util::signing::decode_secret(secret).unwrap();
    let ts = 1_795_000_000i64;
    for (i, p) in all.iter().enumerate() {
        let q = p.example_query.replace("CLICKID", &click_id(i as u128));
        for (variant, mode, now) in [
            ("get", 2u8, ts + 100),
            ("get-stale", 2, ts + 301),
            ("webhook", 3, ts - 60),
            ("get-unsigned", 0, ts),
            ("webhook-unsigned", 1, ts),
        ] {
            let input = SignatureInput {
                mode,
                tamper: if i % 2 == 0 { 0 } else { 17 },
                key: key.clone(),
                secret: if i % 3 == 0 {
                    secret.into()
                } else {
                    "whsec_c2hvcnQ=".into()
                },
                message: if mode % 2 == 0 {
                    format!("/p/0f3c9a7d2b1e4c58?{q}")
                } else {
                    format!("msg_2{}", click_id(i as u128))
                },
                signature: match mode {
                    0 => "0".repeat(64),
                    1 => "v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4=".into(),
                    _ => "v2,unsupported".into(),
                },
                ts,
                now,
                tolerance_s: 300,
                body: if mode % 2 == 1 {
                    json_body(&q)
                } else {
                    Vec::new()
                },
            };
            let bytes = input.encode();
            assert_eq!(SignatureInput::decode(&bytes), input);
            out.write("signature", &format!("{}-{variant}", p.id), &bytes);
        }
    }

    ipn_seeds(&mut out);

    println!("wrote {} seeds under {}", out.count, out.root.display());
}

/// The IPN targets' seeds: the published vectors of
/// `tests/data/ipn_vectors.json` as received (flag 0), their plaintext or
/// fields re-signed by the target (flag 1), and a sample of every
/// transaction type of each format (`ipn::sample`), with the other flags.
fn ipn_seeds(out: &mut Out) {
    let vectors: serde_json::Value =
        serde_json::from_str(include_str!("../../tests/data/ipn_vectors.json")).unwrap();
    let form = |pairs: &[(&str, &str)]| {
        let mut ser = form_urlencoded::Serializer::new(String::new());
        for (k, v) in pairs {
            ser.append_pair(k, v);
        }
        ser.finish().into_bytes()
    };
    let fields = |v: &serde_json::Value| -> Vec<(String, String)> {
        v.as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
            .collect()
    };
    let put = |out: &mut Out, target: &str, name: &str, input: IpnInput| {
        let bytes = input.encode();
        assert_eq!(IpnInput::decode(&bytes), input);
        out.write(target, name, &bytes);
    };
    for f in Format::ALL {
        out.reset(&format!("ipn_{}", f.as_str()));
    }

    let cb = &vectors["clickbank_ins"];
    let secret = cb["secret"].as_str().unwrap().to_string();
    let body = serde_json::to_vec(&cb["body"]).unwrap();
    put(out, "ipn_clickbank", "vector-encrypted", IpnInput { flags: 0, secret: secret.clone(), rest: body });
    let plain = cb["plaintext"].as_str().unwrap().as_bytes().to_vec();
    put(out, "ipn_clickbank", "vector-plaintext", IpnInput { flags: 1, secret: secret.clone(), rest: plain.clone() });
    put(out, "ipn_clickbank", "vector-plaintext-order", IpnInput { flags: 3, secret, rest: plain });

    for (i, v) in vectors["jvzoo_jvzipn"]["vectors"].as_array().unwrap().iter().enumerate() {
        let secret = v["secret"].as_str().unwrap().to_string();
        let pairs = fields(&v["fields"]);
        let mut with: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let unsigned = form(&with);
        with.push(("cverify", v["cverify"].as_str().unwrap()));
        put(out, "ipn_jvzoo", &format!("vector{i}-signed"), IpnInput { flags: 0, secret: secret.clone(), rest: form(&with) });
        put(out, "ipn_jvzoo", &format!("vector{i}-resigned"), IpnInput { flags: 1, secret, rest: unsigned });
    }
    for (i, v) in vectors["digistore24"]["vectors"].as_array().unwrap().iter().enumerate() {
        let secret = v["passphrase"].as_str().unwrap().to_string();
        let pairs = fields(&v["fields"]);
        let mut with: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let unsigned = form(&with);
        with.push(("sha_sign", v["sha_sign"].as_str().unwrap()));
        put(out, "ipn_digistore24", &format!("vector{i}-signed"), IpnInput { flags: 0, secret: secret.clone(), rest: form(&with) });
        put(out, "ipn_digistore24", &format!("vector{i}-resigned"), IpnInput { flags: 1, secret, rest: unsigned });
    }

    // Samples: every type, signed by the sampler (flag 0) and, for the
    // form formats, without their signature field for the target to sign.
    for f in Format::ALL {
        let target = format!("ipn_{}", f.as_str());
        for (j, tx) in [TxType::Sale, TxType::Rebill, TxType::Refund, TxType::Chargeback, TxType::Other]
            .into_iter()
            .enumerate()
        {
            for test in [false, true] {
                let settings = Settings {
                    format: f,
                    secret: "s3cret-key-42".into(),
                    click_id_field: None,
                    amount: AmountBasis::Commission,
                    include_tests: false,
                };
                let sample = Sample {
                    tx_type: tx,
                    test,
                    click_id: Some(click_id(j as u128)),
                    receipt: format!("RCPT{j}"),
                    sequence: "2026-11-21T10:00:00-08:00".into(),
                    amount: if tx == TxType::Refund { "-12.50".into() } else { "12.50".into() },
                    iv: *b"526AFD2AE8887CC2",
                };
                let (_, body) = ipn::sample(&settings, &sample);
                let name = format!("sample-{}{}", tx.as_str(), if test { "-test" } else { "" });
                put(out, &target, &name, IpnInput { flags: 0, secret: settings.secret.clone(), rest: body.clone() });
                let unsigned = match f {
                    Format::ClickBank => Some(ipn::clickbank::decrypt(&body, &settings.secret).unwrap().into_bytes()),
                    _ => {
                        let sig = match f {
                            Format::JvZoo => "cverify",
                            Format::Digistore24 => "sha_sign",
                            _ => ipn::warriorplus::KEY_FIELD,
                        };
                        let kept: Vec<(String, String)> = form_urlencoded::parse(&body)
                            .filter(|(k, _)| k != sig)
                            .map(|(k, v)| (k.into_owned(), v.into_owned()))
                            .collect();
                        let kept: Vec<(&str, &str)> = kept.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
                        Some(form(&kept))
                    }
                };
                if let Some(rest) = unsigned {
                    put(out, &target, &format!("{name}-unsigned"), IpnInput { flags: 1 | 4 | 8, secret: settings.secret.clone(), rest });
                }
            }
        }
    }
}
