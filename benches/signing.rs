//! Signature verification per request (criterion): the cost a signed
//! postback adds before anything is stored.
//!
//! `cargo bench --bench signing`

use criterion::{Criterion, criterion_group, criterion_main};
use postbackd::util::signing;
use std::hint::black_box;

fn bench(c: &mut Criterion) {
    let secret = signing::generate_secret();
    let key = signing::decode_secret(&secret).unwrap();
    let other = signing::decode_secret(&signing::generate_secret()).unwrap();
    let ts = 1_700_000_000;
    let msg = format!(
        "/p/0123456789abcdef0123456789abcdef?click_id=0mwppq49qrzvsjuva548n8dgy&amount=12.50&transaction_id=TX-1001&ts={ts}"
    );
    let url = format!("{msg}&sig={}", signing::sign_hex(&key, msg.as_bytes()));
    let one = vec![key.clone()];
    let two = vec![other, key.clone()];
    c.bench_function("verify_get (1 secret)", |b| {
        b.iter(|| signing::verify_get(black_box(&url), &one, ts, 300).unwrap())
    });
    c.bench_function("verify_get (2 secrets, rotation)", |b| {
        b.iter(|| signing::verify_get(black_box(&url), &two, ts, 300).unwrap())
    });
    let body =
        br#"{"click_id":"0mwppq49qrzvsjuva548n8dgy","amount":"12.50","transaction_id":"TX-1001"}"#;
    let sig = signing::sign_webhook(&key, "msg_1", ts, body);
    c.bench_function("verify_webhook (1 secret)", |b| {
        b.iter(|| {
            signing::verify_webhook(
                Some("msg_1"),
                Some("1700000000"),
                Some(black_box(&sig)),
                body,
                &one,
                ts,
                300,
            )
            .unwrap()
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
