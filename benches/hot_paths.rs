//! Criterion benches of the hot pure functions: what every click and
//! postback spends before touching storage.
//!
//! `cargo bench --bench hot_paths`

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use postbackd::inbound::postback::{self, Mapping};
use postbackd::inbound::query::{self, Limits};
use postbackd::store::records::{self, ClickRecord, ConversionRecord};
use postbackd::tracking::click;
use postbackd::util::ids;

fn bench(c: &mut Criterion) {
    let q = b"sub1=0mwppq49qrzvsjuva548n8dgy&payout=12.50&transaction_id=56d75d3a4d6e433fb215698c056d0d58&currency=USD&status=approved&country=US&utm_source=fb";
    c.bench_function("query::parse_form (7 params)", |b| {
        b.iter(|| {
            let mut out = Vec::new();
            query::parse_form(black_box(q), &Limits::default(), &mut out).unwrap();
            out
        })
    });
    let mut m = Mapping {
        default_currency: "USD".into(),
        ..Default::default()
    };
    m.params.insert("click_id".into(), "sub1".into());
    c.bench_function("postback::parse (query to fields)", |b| {
        b.iter(|| {
            postback::parse(
                &postback::Request {
                    query: black_box(q),
                    ..Default::default()
                },
                &m,
                &Limits::default(),
            )
            .unwrap()
        })
    });
    c.bench_function("ids::new_id (click ID, OS randomness)", |b| {
        b.iter(|| ids::new_id(black_box(1_700_000_000_000)))
    });
    let dest = "https://network.example/offer?aff_id=42&sub1={click_id}&sub2={utm_source}&sub3={utm_campaign}";
    let params = vec![
        ("utm_source".to_string(), "facebook ads".to_string()),
        ("utm_campaign".to_string(), "spring/2026".to_string()),
    ];
    c.bench_function("click::expand (template, 3 tokens)", |b| {
        b.iter(|| {
            click::expand(
                black_box(dest),
                "0mwppq49qrzvsjuva548n8dgy",
                &params,
                "sub1",
            )
        })
    });
    let rec = ClickRecord {
        ms: 1_700_000_000_000,
        slug: "spring".into(),
        source_id: Some(1),
        campaign: Some("spring-sale".into()),
        head: false,
        ip: "203.0.113.45".into(),
        user_agent: Some("Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148".into()),
        referrer: Some("https://news.example/article".into()),
        params: params.clone(),
        fbc: None,
        fbp: None,
    };
    let bytes = records::encode(&rec);
    c.bench_function("records::encode (click)", |b| {
        b.iter(|| records::encode(black_box(&rec)))
    });
    c.bench_function("records::decode (click)", |b| {
        b.iter(|| records::decode::<ClickRecord>(black_box(&bytes)).unwrap())
    });
    let conv = ConversionRecord {
        source_id: 1,
        click_id: "0mwppq49qrzvsjuva548n8dgy".into(),
        matched: true,
        slug: Some("spring".into()),
        campaign: None,
        kind: "purchase".into(),
        event: None,
        amount: Some("12.50".into()),
        currency: "USD".into(),
        status: "approved".into(),
        transaction_id: Some("56d75d3a4d6e433fb215698c056d0d58".into()),
        country: Some("US".into()),
        state: None,
        city: None,
        zip: None,
        created_ms: 1_700_000_000_000,
        updated_ms: 1_700_000_000_000,
        history: vec![(1_700_000_000_000, "approved".into())],
        event_ids: vec!["0mwppq4a5abf6gakvdm7dh3n9".into()],
        extra: vec![],
        test: false,
        original_id: None,
    };
    let cbytes = records::encode(&conv);
    c.bench_function("records::decode (conversion)", |b| {
        b.iter(|| records::decode::<ConversionRecord>(black_box(&cbytes)).unwrap())
    });
    println!(
        "encoded sizes: click {} bytes, conversion {} bytes",
        bytes.len(),
        cbytes.len()
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
