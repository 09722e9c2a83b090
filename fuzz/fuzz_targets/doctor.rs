//! The postback doctor (`inbound::doctor::diagnose`) on arbitrary text:
//! never panics, deterministic, only documented codes, every finding with
//! a sentence and a fix of bounded length, `not_a_url` alone, a bounded
//! number of findings. The first byte picks the context (public_url
//! http/https, which preset's source the key names, an expected source).
#![no_main]

use libfuzzer_sys::fuzz_target;
use postbackd::inbound::doctor::{self, CODES, DoctorContext, DoctorSource};
use postbackd::inbound::postback::Mapping;
use postbackd::inbound::presets;

fn context(selector: u8) -> DoctorContext {
    let sources = presets::all()
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let mut mapping = Mapping::default();
            for (f, n) in p.params {
                mapping.params.insert((*f).into(), (*n).into());
            }
            DoctorSource {
                id: i as u64 + 1,
                name: p.name.into(),
                key: format!("k{}", p.id),
                preset: Some(p),
                syntax: Some(p.syntax),
                own_params: if selector & 4 != 0 {
                    vec![("click_id".into(), "subid".into())]
                } else {
                    Vec::new()
                },
                mapping,
            }
        })
        .collect();
    DoctorContext {
        public_url: if selector & 1 != 0 {
            "https://t.example.com".into()
        } else {
            "http://127.0.0.1:8080".into()
        },
        sources,
        expected_source: (selector & 2 != 0).then_some(u64::from(selector >> 4) % 11),
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(rest);
    let ctx = context(selector);
    let a = doctor::diagnose(&text, &ctx);
    assert_eq!(a, doctor::diagnose(&text, &ctx), "deterministic");
    assert!(a.len() <= 300, "{} findings", a.len());
    for f in &a {
        assert!(CODES.contains(&f.code), "undocumented code {}", f.code);
        assert!(!f.message.is_empty() && f.message.len() < 1200, "{}", f.message);
        assert!(!f.fix.is_empty() && f.fix.len() < 1200, "{}", f.fix);
        assert!(f.param.as_ref().is_none_or(|p| p.chars().count() <= 64));
    }
    if a.iter().any(|f| f.code == "not_a_url") {
        assert_eq!(a.len(), 1, "not_a_url comes alone");
    }
});
