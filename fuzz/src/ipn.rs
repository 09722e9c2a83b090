//! The IPN decoders' input layout and invariants (targets `ipn_clickbank`,
//! `ipn_jvzoo`, `ipn_warriorplus`, `ipn_digistore24`).
//!
//! Layout: a flags byte, the source's secret (length-prefixed), then the
//! rest. Flag bit 0 ("sign") makes the target authenticate the rest the way
//! the network would (ClickBank: encrypt it as the plaintext; JVZoo and
//! Digistore24: append the right `cverify` / `sha_sign`; WarriorPlus:
//! append the key), so the fuzzer reaches the field handling behind the
//! check instead of spending itself on a 32-bit signature. Bit 1 picks the
//! order amount instead of the commission, bit 2 a configured click ID
//! field (`tid`), bit 3 a replay of an already verified request.

use postbackd::inbound::ipn::{
    self, AmountBasis, Auth, Format, Request, Settings, check_invariants,
};
use postbackd::inbound::query::{self, Limits};

use crate::{Reader, Writer};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IpnInput {
    pub flags: u8,
    pub secret: String,
    pub rest: Vec<u8>,
}

impl IpnInput {
    pub fn decode(data: &[u8]) -> Self {
        let mut r = Reader::new(data);
        IpnInput {
            flags: r.u8(),
            secret: r.string(),
            rest: r.rest().to_vec(),
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::default();
        w.u8(self.flags).bytes(self.secret.as_bytes()).rest(&self.rest);
        w.out
    }
}

impl<'a> arbitrary::Arbitrary<'a> for IpnInput {
    fn arbitrary(u: &mut arbitrary::Unstructured<'a>) -> arbitrary::Result<Self> {
        let n = u.len();
        Ok(IpnInput::decode(u.bytes(n)?))
    }
    fn arbitrary_take_rest(u: arbitrary::Unstructured<'a>) -> arbitrary::Result<Self> {
        Ok(IpnInput::decode(u.take_rest()))
    }
}

/// The codes a decoder may refuse with.
const CODES: &[&str] = &[
    "bad_signature",
    "invalid_body",
    "missing_field",
    "invalid_amount",
    "invalid_currency",
    "unknown_transaction_type",
    "invalid_parameter",
];

fn form_pairs(body: &[u8]) -> Option<Vec<(String, String)>> {
    let mut params = Vec::new();
    query::parse_form(body, &Limits::default(), &mut params).ok()?;
    Some(params.into_iter().map(|p| (p.name, p.value)).collect())
}

fn append(body: &[u8], name: &str, value: &str) -> Vec<u8> {
    let mut out = body.to_vec();
    if !out.is_empty() {
        out.push(b'&');
    }
    out.extend(
        form_urlencoded::Serializer::new(String::new())
            .append_pair(name, value)
            .finish()
            .into_bytes(),
    );
    out
}

/// The body the network would send for this input.
pub fn body_for(format: Format, input: &IpnInput) -> Vec<u8> {
    if input.flags & 1 == 0 {
        return input.rest.clone();
    }
    match format {
        Format::ClickBank => {
            let text = String::from_utf8_lossy(&input.rest);
            ipn::clickbank::encrypt(&text, &input.secret, b"526AFD2AE8887CC2")
        }
        Format::JvZoo => match form_pairs(&input.rest) {
            Some(p) => {
                let sig = ipn::jvzoo::cverify(
                    p.iter().map(|(k, v)| (k.as_str(), v.as_str())),
                    &input.secret,
                );
                append(&input.rest, "cverify", &sig)
            }
            None => input.rest.clone(),
        },
        Format::Digistore24 => match form_pairs(&input.rest) {
            Some(p) => {
                let sig = ipn::digistore24::sha_sign(
                    p.iter().map(|(k, v)| (k.as_str(), v.as_str())),
                    &input.secret,
                );
                append(&input.rest, "sha_sign", &sig)
            }
            None => input.rest.clone(),
        },
        Format::WarriorPlus => append(&input.rest, ipn::warriorplus::KEY_FIELD, &input.secret),
    }
}

pub fn settings_for(format: Format, input: &IpnInput) -> Settings {
    Settings {
        format,
        secret: input.secret.clone(),
        click_id_field: (input.flags & 4 != 0).then(|| "tid".to_string()),
        amount: if input.flags & 2 != 0 {
            AmountBasis::Order
        } else {
            AmountBasis::Commission
        },
        include_tests: false,
    }
}

/// Never panics; deterministic; an accepted notification carries what its
/// type needs (`check_invariants`); a refusal has a documented code and
/// does not depend on the secret (so never carries it); every authentication failure is the one
/// uniform refusal; the stored (redacted) body holds no WarriorPlus key.
pub fn check_ipn(format: Format, input: &IpnInput) {
    let body = body_for(format, input);
    let settings = settings_for(format, input);
    let auth = if input.flags & 8 != 0 && format == Format::WarriorPlus {
        Auth::AlreadyVerified
    } else {
        Auth::Verify
    };
    let req = Request {
        content_type: Some("application/x-www-form-urlencoded"),
        body: &body,
    };
    let limits = Limits::default();
    let got = ipn::decode(&req, &settings, &limits, auth);
    assert_eq!(got, ipn::decode(&req, &settings, &limits, auth), "not deterministic");
    match &got {
        Ok(n) => {
            if let Err(why) = check_invariants(n) {
                panic!("accepted notification breaks an invariant: {why}: {n:?}");
            }
        }
        Err(r) => {
            assert!(CODES.contains(&r.code), "undocumented code {}", r.code);
            if r.code == "bad_signature" {
                assert_eq!(*r, ipn::bad_signature(format), "bad_signature is not uniform");
            }
            // A refusal says the same whatever the secret is (so it can
            // never carry it): the same notification authenticated with
            // another secret gets the same answer.
            if input.flags & 1 != 0 && r.code != "bad_signature" && input.secret.len() < 1024 {
                let other = IpnInput {
                    secret: format!("{}~other", input.secret),
                    ..input.clone()
                };
                let body2 = body_for(format, &other);
                let req2 = Request {
                    content_type: Some("application/x-www-form-urlencoded"),
                    body: &body2,
                };
                let again = ipn::decode(&req2, &settings_for(format, &other), &limits, auth);
                assert_eq!(again.as_ref().err(), Some(r), "the refusal depends on the secret");
            }
            assert!(r.message.len() < 1024, "message unbounded");
        }
    }
    if format == Format::WarriorPlus {
        let stored = ipn::redact(format, &body);
        if let Some(pairs) = form_pairs(&stored) {
            for (k, v) in pairs {
                if k.trim().eq_ignore_ascii_case(ipn::warriorplus::KEY_FIELD) {
                    assert_eq!(v, ipn::REDACTED, "security key stored");
                }
            }
        }
        // The stored copy never authenticates by itself.
        let req = Request {
            content_type: None,
            body: &stored,
        };
        if !settings.secret.is_empty() && settings.secret != ipn::REDACTED {
            let again = ipn::decode(&req, &settings, &limits, Auth::Verify);
            let authenticated = match &again {
                Ok(_) => true,
                Err(e) => ipn::is_after_authentication(e.code),
            };
            assert!(!authenticated, "redacted body authenticated: {again:?}");
        }
    }
}
