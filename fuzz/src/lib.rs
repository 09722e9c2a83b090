//! Shared code of the fuzz targets: the byte layout of each structured
//! input (decode for libFuzzer, encode for the seed corpus) and the
//! invariants each target asserts.
//!
//! Why a hand-written layout rather than `#[derive(Arbitrary)]`: the seed
//! corpus under `fuzz/seeds/` is made of realistic postbacks of the preset
//! networks, so a seed must be *encodable* from a request we choose. The
//! derived layout is an implementation detail of the `arbitrary` crate (sizes
//! read from the end of the data, continuation bytes) and changes between its
//! versions; this one is a few length-prefixed fields, written down below,
//! and `examples/gen_seeds.rs` checks `decode(encode(x)) == x` for every seed
//! it writes. Every byte string decodes to some input (missing bytes read as
//! zero, lengths are clamped), so no fuzzer input is wasted on a decode error.

pub mod checks;
pub mod ipn;

use arbitrary::{Arbitrary, Unstructured};

/// Reads the layout: `u8`, little-endian integers, and byte strings with a
/// `u16` little-endian length prefix (clamped to what is left).
pub struct Reader<'a> {
    data: &'a [u8],
}

impl<'a> Reader<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Reader { data }
    }

    pub fn u8(&mut self) -> u8 {
        match self.data.split_first() {
            Some((b, rest)) => {
                self.data = rest;
                *b
            }
            None => 0,
        }
    }

    fn array<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0u8; N];
        for b in &mut out {
            *b = self.u8();
        }
        out
    }

    pub fn u16(&mut self) -> u16 {
        u16::from_le_bytes(self.array())
    }

    pub fn u64(&mut self) -> u64 {
        u64::from_le_bytes(self.array())
    }

    pub fn i64(&mut self) -> i64 {
        i64::from_le_bytes(self.array())
    }

    pub fn u128(&mut self) -> u128 {
        u128::from_le_bytes(self.array())
    }

    /// A length-prefixed byte string.
    pub fn bytes(&mut self) -> &'a [u8] {
        let n = usize::from(self.u16()).min(self.data.len());
        let (head, rest) = self.data.split_at(n);
        self.data = rest;
        head
    }

    /// A length-prefixed string; invalid UTF-8 is replaced (the targets
    /// that need raw bytes use [`Reader::bytes`]).
    pub fn string(&mut self) -> String {
        String::from_utf8_lossy(self.bytes()).into_owned()
    }

    /// Everything left.
    pub fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.data)
    }
}

/// Writes the layout [`Reader`] reads.
#[derive(Default)]
pub struct Writer {
    pub out: Vec<u8>,
}

impl Writer {
    pub fn u8(&mut self, b: u8) -> &mut Self {
        self.out.push(b);
        self
    }
    pub fn u16(&mut self, v: u16) -> &mut Self {
        self.out.extend_from_slice(&v.to_le_bytes());
        self
    }
    pub fn u64(&mut self, v: u64) -> &mut Self {
        self.out.extend_from_slice(&v.to_le_bytes());
        self
    }
    pub fn i64(&mut self, v: i64) -> &mut Self {
        self.out.extend_from_slice(&v.to_le_bytes());
        self
    }
    pub fn u128(&mut self, v: u128) -> &mut Self {
        self.out.extend_from_slice(&v.to_le_bytes());
        self
    }
    pub fn bytes(&mut self, b: &[u8]) -> &mut Self {
        let n = u16::try_from(b.len()).expect("seed field longer than 65535 bytes");
        self.u16(n);
        self.out.extend_from_slice(b);
        self
    }
    pub fn rest(&mut self, b: &[u8]) -> &mut Self {
        self.out.extend_from_slice(b);
        self
    }
}

/// Implements `Arbitrary` for a type with `decode(&[u8]) -> Self`: the
/// whole remaining input is the structured value.
macro_rules! arbitrary_via_decode {
    ($t:ty) => {
        impl<'a> Arbitrary<'a> for $t {
            fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
                let n = u.len();
                Ok(<$t>::decode(u.bytes(n)?))
            }
            fn arbitrary_take_rest(u: Unstructured<'a>) -> arbitrary::Result<Self> {
                Ok(<$t>::decode(u.take_rest()))
            }
        }
    };
}

/// Content types a network sends, plus arbitrary text.
pub const CONTENT_TYPES: &[Option<&str>] = &[
    None,
    Some("application/json"),
    Some("application/json; charset=utf-8"),
    Some("application/x-www-form-urlencoded"),
    Some("application/x-www-form-urlencoded; charset=UTF-8"),
    Some("application/vnd.network+json"),
    Some("text/plain"),
    Some("multipart/form-data; boundary=xyz"),
];

/// Currencies a source's default can be (the API validates it), plus
/// arbitrary text for the parser's own robustness.
pub const DEFAULT_CURRENCIES: &[&str] = &["USD", "EUR", "SEK", "GBP", "JPY"];

/// Parameter-name and status-value overrides of a source (a preset's or the
/// admin's), and its default currency.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MappingInput {
    /// (index into `postback::FIELDS`, parameter name)
    pub params: Vec<(u8, String)>,
    /// (raw status value, index into `Status::ALL`)
    pub statuses: Vec<(String, u8)>,
    /// Index into [`DEFAULT_CURRENCIES`], or arbitrary text.
    pub default_currency: Result<u8, String>,
}

impl Default for MappingInput {
    /// No overrides, USD.
    fn default() -> Self {
        MappingInput {
            params: Vec::new(),
            statuses: Vec::new(),
            default_currency: Ok(0),
        }
    }
}

impl MappingInput {
    fn read(r: &mut Reader<'_>) -> Self {
        let np = r.u8() % 12;
        let params = (0..np).map(|_| (r.u8(), r.string())).collect();
        let ns = r.u8() % 12;
        let statuses = (0..ns).map(|_| (r.string(), r.u8())).collect();
        let sel = r.u8();
        let default_currency = if usize::from(sel) < DEFAULT_CURRENCIES.len() {
            Ok(sel)
        } else if sel < 250 {
            Ok(0)
        } else {
            Err(r.string())
        };
        MappingInput {
            params,
            statuses,
            default_currency,
        }
    }

    fn write(&self, w: &mut Writer) {
        w.u8(u8::try_from(self.params.len()).unwrap());
        for (f, n) in &self.params {
            w.u8(*f).bytes(n.as_bytes());
        }
        w.u8(u8::try_from(self.statuses.len()).unwrap());
        for (raw, s) in &self.statuses {
            w.bytes(raw.as_bytes()).u8(*s);
        }
        match &self.default_currency {
            Ok(i) => w.u8(*i),
            Err(s) => w.u8(255).bytes(s.as_bytes()),
        };
    }

    /// The effective mapping, built the way `store::catalog::mapping_for`
    /// builds it (status keys lowercased).
    pub fn mapping(&self) -> postbackd::inbound::postback::Mapping {
        use postbackd::inbound::postback::{FIELDS, Status};
        let mut m = postbackd::inbound::postback::Mapping {
            default_currency: match &self.default_currency {
                Ok(i) => DEFAULT_CURRENCIES[usize::from(*i) % DEFAULT_CURRENCIES.len()].into(),
                Err(s) => s.clone(),
            },
            ..Default::default()
        };
        for (f, name) in &self.params {
            let field = FIELDS[usize::from(*f) % FIELDS.len()].0;
            m.params.insert(field.to_string(), name.clone());
        }
        for (raw, s) in &self.statuses {
            let st = Status::ALL[usize::from(*s) % Status::ALL.len()];
            m.statuses.insert(raw.to_ascii_lowercase(), st);
        }
        m
    }

    /// A preset's mapping, as a source with that preset and no overrides.
    pub fn from_preset(p: &postbackd::inbound::presets::Preset, currency: u8) -> Self {
        use postbackd::inbound::postback::{FIELDS, Status};
        MappingInput {
            params: p
                .params
                .iter()
                .map(|(f, n)| {
                    let i = FIELDS.iter().position(|(c, _)| c == f).unwrap();
                    (u8::try_from(i).unwrap(), (*n).to_string())
                })
                .collect(),
            statuses: p
                .statuses
                .iter()
                .filter_map(|(raw, st)| {
                    let st = Status::parse(st)?;
                    let i = Status::ALL.iter().position(|s| *s == st).unwrap();
                    Some(((*raw).to_string(), u8::try_from(i).unwrap()))
                })
                .collect(),
            default_currency: Ok(currency),
        }
    }
}

/// Parsing limits: the server's defaults, or small ones so the limit paths
/// are reached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LimitsInput {
    Default,
    Small {
        max_params: u8,
        max_name_len: u8,
        max_value_len: u8,
    },
}

impl LimitsInput {
    pub fn limits(self) -> postbackd::inbound::query::Limits {
        match self {
            LimitsInput::Default => postbackd::inbound::query::Limits::default(),
            LimitsInput::Small {
                max_params,
                max_name_len,
                max_value_len,
            } => postbackd::inbound::query::Limits {
                max_params: usize::from(max_params),
                max_name_len: usize::from(max_name_len),
                max_value_len: usize::from(max_value_len),
            },
        }
    }
}

/// (b) A whole postback request as the handler hands it to
/// `postback::parse`. Layout: `u8` method (odd = POST), `u8` content-type
/// selector (index into [`CONTENT_TYPES`], else an arbitrary string
/// follows), `u8` limits selector (< 240 = defaults, else three `u8`
/// limits), the mapping, the query bytes, then the body is the rest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PostbackInput {
    pub post: bool,
    pub content_type: Result<u8, String>,
    pub limits: LimitsInput,
    pub mapping: MappingInput,
    pub query: Vec<u8>,
    pub body: Vec<u8>,
}

impl PostbackInput {
    pub fn decode(data: &[u8]) -> Self {
        let mut r = Reader::new(data);
        let post = r.u8() % 2 == 1;
        let sel = r.u8();
        let content_type = if usize::from(sel) < CONTENT_TYPES.len() {
            Ok(sel)
        } else if sel < 240 {
            Ok(sel % CONTENT_TYPES.len() as u8)
        } else {
            Err(r.string())
        };
        let limits = if r.u8() < 240 {
            LimitsInput::Default
        } else {
            LimitsInput::Small {
                max_params: r.u8(),
                max_name_len: r.u8(),
                max_value_len: r.u8(),
            }
        };
        let mapping = MappingInput::read(&mut r);
        let query = r.bytes().to_vec();
        let body = r.rest().to_vec();
        PostbackInput {
            post,
            content_type,
            limits,
            mapping,
            query,
            body,
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::default();
        w.u8(u8::from(self.post));
        match &self.content_type {
            Ok(i) => w.u8(*i),
            Err(s) => w.u8(255).bytes(s.as_bytes()),
        };
        match self.limits {
            LimitsInput::Default => w.u8(0),
            LimitsInput::Small {
                max_params,
                max_name_len,
                max_value_len,
            } => w.u8(255).u8(max_params).u8(max_name_len).u8(max_value_len),
        };
        self.mapping.write(&mut w);
        w.bytes(&self.query).rest(&self.body);
        w.out
    }

    pub fn content_type(&self) -> Option<&str> {
        match &self.content_type {
            Ok(i) => CONTENT_TYPES[usize::from(*i) % CONTENT_TYPES.len()],
            Err(s) => Some(s),
        }
    }
}
arbitrary_via_decode!(PostbackInput);

/// (c) A link destination template and one click's values. Layout:
/// template, click ID, `u8` parameter count then (name, value) pairs, the
/// appended parameter name; all length-prefixed strings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExpandInput {
    pub template: String,
    pub click_id: String,
    pub params: Vec<(String, String)>,
    pub append_param: String,
}

impl ExpandInput {
    pub fn decode(data: &[u8]) -> Self {
        let mut r = Reader::new(data);
        let template = r.string();
        let click_id = r.string();
        let n = r.u8() % 16;
        let params = (0..n).map(|_| (r.string(), r.string())).collect();
        let append_param = r.string();
        ExpandInput {
            template,
            click_id,
            params,
            append_param,
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::default();
        w.bytes(self.template.as_bytes())
            .bytes(self.click_id.as_bytes());
        w.u8(u8::try_from(self.params.len()).unwrap());
        for (k, v) in &self.params {
            w.bytes(k.as_bytes()).bytes(v.as_bytes());
        }
        w.bytes(self.append_param.as_bytes());
        w.out
    }
}
arbitrary_via_decode!(ExpandInput);

/// (d) The amount, currency and status values of a postback and the
/// source's mapping. Layout: three strings, then the mapping.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldsInput {
    pub amount: String,
    pub currency: String,
    pub status: String,
    pub mapping: MappingInput,
}

impl FieldsInput {
    pub fn decode(data: &[u8]) -> Self {
        let mut r = Reader::new(data);
        FieldsInput {
            amount: r.string(),
            currency: r.string(),
            status: r.string(),
            mapping: MappingInput::read(&mut r),
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::default();
        w.bytes(self.amount.as_bytes())
            .bytes(self.currency.as_bytes())
            .bytes(self.status.as_bytes());
        self.mapping.write(&mut w);
        w.out
    }
}
arbitrary_via_decode!(FieldsInput);

/// (e) A click ID as a network echoes it back, and the parts of a new ID.
/// Layout: the raw value (string), `u64` milliseconds, `u128` randomness.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClickIdInput {
    pub raw: String,
    pub ms: u64,
    pub random: u128,
}

impl ClickIdInput {
    pub fn decode(data: &[u8]) -> Self {
        let mut r = Reader::new(data);
        ClickIdInput {
            raw: r.string(),
            ms: r.u64(),
            random: r.u128(),
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::default();
        w.bytes(self.raw.as_bytes()).u64(self.ms).u128(self.random);
        w.out
    }
}
arbitrary_via_decode!(ClickIdInput);

/// (f) Signature verification input. Layout: `u8` mode (even = GET, odd =
/// Standard Webhooks POST; bit 1 = the input carries a signature computed
/// with the key, else the fuzzer's own text is the signature), `u8` tamper
/// position (0 = none), the HMAC key bytes, a candidate `whsec_` secret,
/// the message (GET: path and query before `ts`; POST: `webhook-id`), the
/// raw signature text (unsigned modes: GET `sig`, POST `webhook-signature`),
/// `i64` signed timestamp, `i64` server clock, `u64` tolerance, the body is
/// the rest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignatureInput {
    pub mode: u8,
    pub tamper: u8,
    pub key: Vec<u8>,
    pub secret: String,
    pub message: String,
    pub signature: String,
    pub ts: i64,
    pub now: i64,
    pub tolerance_s: u64,
    pub body: Vec<u8>,
}

impl SignatureInput {
    pub fn decode(data: &[u8]) -> Self {
        let mut r = Reader::new(data);
        SignatureInput {
            mode: r.u8() % 4,
            tamper: r.u8(),
            key: r.bytes().to_vec(),
            secret: r.string(),
            message: r.string(),
            signature: r.string(),
            ts: r.i64(),
            now: r.i64(),
            tolerance_s: r.u64(),
            body: r.rest().to_vec(),
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::default();
        w.u8(self.mode)
            .u8(self.tamper)
            .bytes(&self.key)
            .bytes(self.secret.as_bytes())
            .bytes(self.message.as_bytes())
            .bytes(self.signature.as_bytes())
            .i64(self.ts)
            .i64(self.now)
            .u64(self.tolerance_s)
            .rest(&self.body);
        w.out
    }

    pub fn is_get(&self) -> bool {
        self.mode.is_multiple_of(2)
    }

    pub fn signed(&self) -> bool {
        self.mode & 2 != 0
    }
}
arbitrary_via_decode!(SignatureInput);
