//! Network presets: what postbackd knows about each affiliate network's postback dialect.
//!
//! A *source* is one network account firing server-to-server postbacks at
//! `GET|POST /p/{source_key}`. Every network names things differently (ClickBank's click id
//! comes back as `tid`, CAKE's as `s2`, Keitaro-style senders use `subid`), writes macros
//! differently (`{sub1}`, `#s2#`, `[sid]`) and has its own status vocabulary (`SALE`/`RFND`,
//! `REVERSED`, `lead`/`sale`). A [`Preset`] captures one network's dialect so the user picks a
//! name instead of hand-mapping fields. It is used in two directions:
//!
//! * **Inbound** ([`Preset::params`], [`Preset::statuses`]): when a postback arrives already in
//!   the network's native shape (for example a URL template copied from a tracker integration),
//!   these say which query parameter holds which canonical field and which canonical status a
//!   raw status value means.
//! * **Outbound** ([`Preset::syntax`], [`Preset::macros`], [`Preset::postback_query`]): postbackd
//!   generates the URL the user pastes into the network. It uses postbackd's *canonical* names
//!   as query keys and the network's macros as values, e.g.
//!   `https://t.example.com/p/KEY?click_id={sub1}&amount={payout_amount}&transaction_id={transaction_id}`,
//!   so a postback fired from the generated URL needs no mapping at all.
//!
//! Canonical fields are [`CANONICAL_FIELDS`]; canonical statuses are [`crate::inbound::postback::Status`].
//!
//! Accuracy: every preset's doc comment says which facts were confirmed against the network's
//! (or a tracker's) published documentation and which were not. Unconfirmed values are best
//! guesses that a user must be able to check in the network's UI before relying on them; they
//! are marked rather than silently presented as fact.

/// The canonical fields ([`crate::inbound::postback::FIELDS`], where they are declared with their aliases) in
/// the order generated postback URLs list them: the fields needed to record a conversion
/// first, geography last. A unit test keeps the two the same set.
pub const CANONICAL_FIELDS: &[&str] = &[
    "click_id",
    "amount",
    "transaction_id",
    "currency",
    "status",
    "event",
    "country",
    "state",
    "city",
    "zip",
];

/// How a network writes a macro in a postback URL template.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MacroSyntax {
    /// `{x}` — Everflow, TUNE/HasOffers, Impact, Keitaro, Binom, Voluum.
    Braces,
    /// `${x}` — no built-in preset uses it; it exists for custom sources whose network writes
    /// macros this way.
    DollarBraces,
    /// `#x#` — CAKE.
    Hash,
    /// `[x]` — used by the `cj` preset (unconfirmed there; see its doc comment).
    Brackets,
}

impl MacroSyntax {
    /// Wraps a bare macro name in this syntax: `Braces.wrap("sub1") == "{sub1}"`.
    pub fn wrap(self, name: &str) -> String {
        match self {
            MacroSyntax::Braces => format!("{{{name}}}"),
            MacroSyntax::DollarBraces => format!("${{{name}}}"),
            MacroSyntax::Hash => format!("#{name}#"),
            MacroSyntax::Brackets => format!("[{name}]"),
        }
    }

    /// The syntax as a pattern for display and config files: `"{x}"`, `"${x}"`, `"#x#"`, `"[x]"`.
    pub fn as_str(self) -> &'static str {
        match self {
            MacroSyntax::Braces => "{x}",
            MacroSyntax::DollarBraces => "${x}",
            MacroSyntax::Hash => "#x#",
            MacroSyntax::Brackets => "[x]",
        }
    }

    /// Inverse of [`MacroSyntax::as_str`]; also accepts the names `braces`, `dollar_braces`,
    /// `hash` and `brackets` (any case), because config files are easier to write with words
    /// than with punctuation that needs quoting.
    pub fn parse(s: &str) -> Option<MacroSyntax> {
        let s = s.trim();
        let by_pattern = match s {
            "{x}" => Some(MacroSyntax::Braces),
            "${x}" => Some(MacroSyntax::DollarBraces),
            "#x#" => Some(MacroSyntax::Hash),
            "[x]" => Some(MacroSyntax::Brackets),
            _ => None,
        };
        by_pattern.or_else(|| {
            [
                ("braces", MacroSyntax::Braces),
                ("dollar_braces", MacroSyntax::DollarBraces),
                ("hash", MacroSyntax::Hash),
                ("brackets", MacroSyntax::Brackets),
            ]
            .into_iter()
            .find(|(name, _)| s.eq_ignore_ascii_case(name))
            .map(|(_, syntax)| syntax)
        })
    }
}

/// One network's postback dialect. See the module documentation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Preset {
    pub id: &'static str,
    pub name: &'static str,
    pub syntax: MacroSyntax,
    /// (canonical field, parameter name the network's own postback uses for it)
    pub params: &'static [(&'static str, &'static str)],
    /// (canonical field, the network's macro name put in the generated URL, unwrapped)
    pub macros: &'static [(&'static str, &'static str)],
    /// (network status value in lowercase, canonical status)
    pub statuses: &'static [(&'static str, &'static str)],
    /// A realistic postback as this network fires it: path-less query string with real-looking
    /// values and the click id written as CLICKID, e.g. "sub1=CLICKID&payout=12.50&transaction_id=ef-9k2...".
    /// Tests substitute CLICKID and fire it at /p/KEY; with the preset's mapping it must yield
    /// click_id, an amount, a transaction_id and (where the network sends one) a status that maps.
    pub example_query: &'static str,
    /// One or two sentences for the README: where in the network's UI this URL goes.
    pub notes: &'static str,
}

impl Preset {
    /// The parameter name this network's own postback uses for `canonical`.
    pub fn param_for(&self, canonical: &str) -> Option<&'static str> {
        lookup(self.params, canonical)
    }

    /// The bare macro name for `canonical` in generated URLs, if the network has one.
    pub fn macro_for(&self, canonical: &str) -> Option<&'static str> {
        lookup(self.macros, canonical)
    }

    /// The query part of the generated postback URL: canonical keys, wrapped macros, in
    /// [`CANONICAL_FIELDS`] order (only fields that have a macro).
    ///
    /// Macros are deliberately not percent-encoded: the network substitutes them textually
    /// before firing, so `{`, `#` or `[` must reach the network's UI exactly as written. (A
    /// CAKE URL containing `#s2#` is not a valid URL until CAKE has replaced the token.)
    pub fn postback_query(&self) -> String {
        CANONICAL_FIELDS
            .iter()
            .filter_map(|field| {
                self.macro_for(field)
                    .map(|m| format!("{field}={}", self.syntax.wrap(m)))
            })
            .collect::<Vec<_>>()
            .join("&")
    }

    /// Maps a raw status value from this network to a canonical status, ignoring case and
    /// surrounding whitespace (networks disagree on `APPROVED` vs `approved`). `None` means the
    /// value is not a money event postbackd knows how to treat; the caller decides what to do.
    pub fn map_status(&self, raw: &str) -> Option<&'static str> {
        let raw = raw.trim();
        self.statuses
            .iter()
            .find(|(network, _)| network.eq_ignore_ascii_case(raw))
            .map(|(_, canonical)| *canonical)
    }
}

fn lookup(pairs: &'static [(&'static str, &'static str)], key: &str) -> Option<&'static str> {
    pairs.iter().find(|(k, _)| *k == key).map(|(_, v)| *v)
}

/// ClickBank (affiliate side).
///
/// Confirmed: `tid` is ClickBank's affiliate tracking parameter on HopLinks and is returned in
/// postback notifications (ClickBank's Affiliate Tracking Parameters article; Aftrad's and CPV
/// Lab's ClickBank guides). Transaction types SALE, BILL, RFND, CGBK, INSF, CANCEL-REBILL,
/// UNCANCEL-REBILL, TEST and TEST_SALE (ClickBank Instant Notification docs; a ClickBank staff
/// answer confirms SALE-RB for the first payment of a subscription and BILL for rebills).
///
/// UNCONFIRMED: the macro syntax and the macro/parameter names (`amount`, `receipt`,
/// `currency`, `transactionType`) of ClickBank's newer S2S Postback/Pixels feature. ClickBank's
/// "Postback macros" section could not be read; check it in the integration editor. The older
/// Instant Notification Service is an encrypted JSON POST, not a query-string postback, so it
/// cannot be pointed at `/p/KEY` directly.
///
/// Status choices: TEST_* become `pending` so an integration test is visible but never counted
/// as approved revenue. CANCEL-REBILL / UNCANCEL-REBILL are left unmapped: they change a
/// subscription, not money already earned.
const CLICKBANK: Preset = Preset {
    id: "clickbank",
    name: "ClickBank",
    syntax: MacroSyntax::Braces,
    params: &[
        ("click_id", "tid"),
        ("amount", "amount"),
        ("transaction_id", "receipt"),
        ("currency", "currency"),
        ("status", "transactionType"),
    ],
    macros: &[
        ("click_id", "tid"),
        ("amount", "amount"),
        ("transaction_id", "receipt"),
        ("currency", "currency"),
        ("status", "transactionType"),
    ],
    statuses: &[
        ("sale", "approved"),
        ("sale-rb", "approved"),
        ("bill", "approved"),
        ("rfnd", "refunded"),
        ("cgbk", "chargeback"),
        // INSF is an eCheck returned for insufficient funds: a chargeback in effect.
        ("insf", "chargeback"),
        ("test", "pending"),
        ("test_sale", "pending"),
        ("test_bill", "pending"),
        ("test_rfnd", "refunded"),
    ],
    example_query: "tid=CLICKID&amount=37.42&receipt=KX7Q2M9P&currency=USD&transactionType=SALE",
    notes: "In your ClickBank affiliate account add this URL as a server-to-server postback \
            under the Postback/Pixels integrations, and pass postbackd's click id on your \
            HopLink as tid=.",
};

/// Impact (impact.com), partner side.
///
/// Confirmed from impact.com's help centre and partner API reference: macros are
/// case-sensitive PascalCase in braces — `{ActionId}`, `{Status}`, `{Payout}`, `{Amount}`,
/// `{Currency}`; action states PENDING, APPROVED, REVERSED; event notifications are set under
/// Settings → Technical → Event Notifications. Impact's own example bodies and its GET
/// notification reference name the keys `action_id`, `status`, `payout`, `currency`, which
/// is why those are the inbound parameter names.
///
/// Confirmed only by third-party guides: `{SubId1}` returns the `subId1` value appended to the
/// tracking link (also: some guides say `{ActionStatus}` and `{OID}` instead of `{Status}`
/// and `{ActionId}`; impact.com's own docs use the latter).
///
/// Status choice: REVERSED means the partner will not be paid (returns, fraud, errors), so it
/// maps to `rejected`; Impact does not say which reversals are customer refunds.
const IMPACT: Preset = Preset {
    id: "impact",
    name: "Impact",
    syntax: MacroSyntax::Braces,
    params: &[
        ("click_id", "subId1"),
        ("amount", "payout"),
        ("transaction_id", "action_id"),
        ("currency", "currency"),
        ("status", "status"),
    ],
    macros: &[
        ("click_id", "SubId1"),
        ("amount", "Payout"),
        ("transaction_id", "ActionId"),
        ("currency", "Currency"),
        ("status", "Status"),
    ],
    statuses: &[
        ("pending", "pending"),
        ("approved", "approved"),
        ("reversed", "rejected"),
    ],
    example_query: "subId1=CLICKID&payout=8.40&action_id=19816.4963.1048576&currency=USD&status=PENDING",
    notes: "In impact.com open Settings → Technical → Event Notifications, edit Action \
            Lifecycle Events and paste this URL (GET); add subId1=<click id> to your Impact \
            tracking links.",
};

/// CJ Affiliate.
///
/// Confirmed: `sid` is the publisher's shopper/sub id on CJ links (reported back as
/// `shopperId`); commission action statuses are `new`, `extended`, `locked` and `closed`
/// (Commission Detail API field references).
///
/// UNCONFIRMED: CJ's documentation describes advertiser-side S2S tracking and publisher
/// commission *APIs*, but no publisher postback URL with macros was found. The bracket syntax
/// and the names `commission`, `commission_id`, `action_status`, `currency` are placeholders
/// modelled on the Commission Detail API fields, for a publisher postback if your account has
/// one or for a small adapter that polls the API and forwards to `/p/KEY`.
///
/// Status choices: `new`/`extended` are still open to correction → `pending`;
/// `locked`/`closed` can no longer change → `approved`. CJ reports corrections as separate
/// negative-amount commissions, not as a status.
const CJ: Preset = Preset {
    id: "cj",
    name: "CJ Affiliate",
    syntax: MacroSyntax::Brackets,
    params: &[
        ("click_id", "sid"),
        ("amount", "commission"),
        ("transaction_id", "commission_id"),
        ("currency", "currency"),
        ("status", "action_status"),
    ],
    macros: &[
        ("click_id", "sid"),
        ("amount", "commission"),
        ("transaction_id", "commission_id"),
        ("currency", "currency"),
        ("status", "action_status"),
    ],
    statuses: &[
        ("new", "pending"),
        ("extended", "pending"),
        ("locked", "approved"),
        ("closed", "approved"),
    ],
    example_query: "sid=CLICKID&commission=4.75&commission_id=3071923451&currency=USD&action_status=new",
    notes: "CJ documents no publisher postback with macros; use this URL if your CJ account \
            offers one, or feed it from a script polling CJ's Commission Detail API. Put the \
            click id in sid= on your CJ links.",
};

/// Everflow, partner (affiliate) side.
///
/// Confirmed from Everflow's help centre and API reference: macros are always in curly
/// braces; `{transaction_id}` is Everflow's click-level transaction id; partner sub ids are
/// `sub1`–`sub5`; conversion statuses are approved, pending, rejected, invalid.
///
/// Confirmed only by third-party guides: `{payout_amount}` for the partner payout and
/// `{event_name}` for the post-conversion event name in partner postbacks. No partner-postback
/// currency or status macro was confirmed, so none is generated.
///
/// `{transaction_id}` identifies the click, so a base conversion and its later events share
/// it: used as postbackd's dedup key it would answer a real sale after a lead as a duplicate.
/// The preset therefore reads the per-conversion `conversion_id` (Everflow's reporting API
/// gives every conversion and post-conversion event its own `conversion_id`) as the
/// transaction ID. UNCONFIRMED: that `{conversion_id}` is offered as a partner-postback macro
/// on every Everflow network; where it is not, map transaction_id to another unique value.
const EVERFLOW: Preset = Preset {
    id: "everflow",
    name: "Everflow",
    syntax: MacroSyntax::Braces,
    params: &[
        ("click_id", "sub1"),
        ("amount", "payout"),
        ("transaction_id", "conversion_id"),
        ("event", "event"),
    ],
    macros: &[
        ("click_id", "sub1"),
        ("amount", "payout_amount"),
        ("transaction_id", "conversion_id"),
        ("event", "event_name"),
    ],
    statuses: &[
        ("approved", "approved"),
        ("pending", "pending"),
        ("rejected", "rejected"),
        ("invalid", "rejected"),
    ],
    example_query: "sub1=CLICKID&payout=12.50&transaction_id=56d75d3a4d6e433fb215698c056d0d58&conversion_id=8f1c2b7d90e34a6f&event=Purchase",
    notes: "In the Everflow partner portal add a global (or offer) postback with this URL; \
            put postbackd's click id in sub1= on your Everflow tracking link.",
};

/// CAKE, affiliate side.
///
/// Confirmed from CAKE's knowledge base: tokens are written `#token#`; `#s1#`–`#s5#` return
/// the sub ids (`s1` is reserved for sub-affiliate ids, `s2` is the recommended slot for a
/// click id, values over 100 characters spill into the next sub id); `#price#` is the payout;
/// `#leadid#` is CAKE's conversion id ("most commonly used for any type of transaction or
/// order ID"); `#tid#` is the advertiser's transaction id. Pixels go on the offer's Testing &
/// Tracking tab. CAKE conversion statuses: Approved, Pending, Rejected, Scrubbed.
///
/// Not available as tokens: currency and status. The status table is kept for postbacks
/// built by hand, but no status macro is generated.
const CAKE: Preset = Preset {
    id: "cake",
    name: "CAKE",
    syntax: MacroSyntax::Hash,
    params: &[
        ("click_id", "s2"),
        ("amount", "price"),
        ("transaction_id", "leadid"),
    ],
    macros: &[
        ("click_id", "s2"),
        ("amount", "price"),
        ("transaction_id", "leadid"),
    ],
    statuses: &[
        ("approved", "approved"),
        ("pending", "pending"),
        ("rejected", "rejected"),
        // Scrubbed: removed by CAKE's quality/fraud control, never paid.
        ("scrubbed", "rejected"),
    ],
    example_query: "s2=CLICKID&price=22.00&leadid=7A3C91F0B2D4",
    notes: "In the CAKE affiliate portal open the offer, go to Testing & Tracking and place \
            this URL as a server postback; pass postbackd's click id as s2= on the tracking \
            link.",
};

/// Adtraction, partner side.
///
/// Confirmed: `epi` (plus `epi2`–`epi5`) is Adtraction's partner parameter for sending your
/// own data (such as a click id) on tracking links; it is tied to the resulting transactions
/// (Adtraction help centre).
///
/// UNCONFIRMED: whether and how Adtraction fires partner postbacks — the macro syntax, the
/// names `commission`, `transaction_id`, `currency`, `status` and the status values below are
/// placeholders. Check Adtraction's partner settings before relying on this preset.
const ADTRACTION: Preset = Preset {
    id: "adtraction",
    name: "Adtraction",
    syntax: MacroSyntax::Braces,
    params: &[
        ("click_id", "epi"),
        ("amount", "commission"),
        ("transaction_id", "transaction_id"),
        ("currency", "currency"),
        ("status", "status"),
    ],
    macros: &[
        ("click_id", "epi"),
        ("amount", "commission"),
        ("transaction_id", "transaction_id"),
        ("currency", "currency"),
        ("status", "status"),
    ],
    statuses: &[
        ("pending", "pending"),
        ("approved", "approved"),
        ("rejected", "rejected"),
    ],
    example_query: "epi=CLICKID&commission=15.60&transaction_id=2198471123&currency=SEK&status=pending",
    notes: "Add this URL where your Adtraction partner account accepts a postback, and add \
            epi=<click id> to your Adtraction tracking links (Customise link).",
};

/// HasOffers / TUNE, affiliate side.
///
/// Confirmed: macros in curly braces; `{aff_sub}` returns the affiliate sub id passed on the
/// tracking link, `{transaction_id}` is TUNE's unique transaction id (TUNE developer docs);
/// `click_id={aff_sub}&payout={payout}&conversion_id={transaction_id}` global postbacks
/// (integration guides); conversion statuses approved, pending, rejected.
///
/// UNCONFIRMED: `{country_code}` is documented for offer URLs; that it also works in
/// affiliate postbacks is assumed. No currency or status macro was confirmed; TUNE normally
/// fires affiliate postbacks for approved conversions only.
const HASOFFERS: Preset = Preset {
    id: "hasoffers",
    name: "HasOffers / TUNE",
    syntax: MacroSyntax::Braces,
    params: &[
        ("click_id", "aff_sub"),
        ("amount", "payout"),
        ("transaction_id", "transaction_id"),
        ("country", "country_code"),
    ],
    macros: &[
        ("click_id", "aff_sub"),
        ("amount", "payout"),
        ("transaction_id", "transaction_id"),
        ("country", "country_code"),
    ],
    statuses: &[
        ("approved", "approved"),
        ("pending", "pending"),
        ("rejected", "rejected"),
    ],
    example_query: "aff_sub=CLICKID&payout=3.25&transaction_id=102f1d4e5a8b3c7e9d0a1b2c3d4e5f60&country_code=US",
    notes: "In the TUNE/HasOffers affiliate portal add this as a global postback (or on the \
            offer's tracking page); pass postbackd's click id as aff_sub= on the tracking link.",
};

/// Voluum-style sender: anything that fires Voluum's incoming postback format.
///
/// Confirmed from Voluum's documentation: the postback parameters are `cid` (click id,
/// required), `payout`, `txid` (transaction id), `currency`, `et` (custom conversion type)
/// and `param1`–`param5`. The format carries no status.
///
/// Macros: these are Voluum's own traffic-source postback tokens, for when Voluum itself
/// sends to postbackd as a traffic source. `{externalid}` (the id Voluum received from the
/// traffic source, i.e. postbackd's click id) is confirmed. `{payout}` is UNCONFIRMED.
/// A network that merely imitates Voluum's format has its own macros; edit them.
const VOLUUM: Preset = Preset {
    id: "voluum",
    name: "Voluum-style sender",
    syntax: MacroSyntax::Braces,
    params: &[
        ("click_id", "cid"),
        ("amount", "payout"),
        ("transaction_id", "txid"),
        ("currency", "currency"),
        ("event", "et"),
    ],
    macros: &[("click_id", "externalid"), ("amount", "payout")],
    statuses: &[],
    example_query: "cid=CLICKID&payout=1.80&txid=TX-55012&currency=USD&et=purchase",
    notes: "In Voluum, capture postbackd's click id as the traffic source's External ID and \
            set this as the traffic source's postback URL; other senders that speak Voluum's \
            cid/payout/txid format can post to /p/KEY unchanged.",
};

/// Keitaro-style sender: anything that fires Keitaro's incoming postback format.
///
/// Confirmed from Keitaro's documentation: parameters `subid` (required), `tid`, `payout`
/// (or `revenue`), `status` (default `sale`), `currency` (lowercase such as `usd` is
/// accepted); statuses lead (payout unconfirmed), sale (confirmed), rejected (cancelled),
/// rebill (upsell).
///
/// Macros: Keitaro's own S2S postback placeholders, for when Keitaro sends to postbackd as a
/// traffic source: `{external_id}` (the id received from the traffic source, i.e. postbackd's
/// click id), `{revenue}`, `{tid}` and `{city}` are confirmed. Keitaro documents the status
/// placeholder as `{status:mapping}`; that plain `{status}` yields the raw status is
/// UNCONFIRMED.
const KEITARO: Preset = Preset {
    id: "keitaro",
    name: "Keitaro-style sender",
    syntax: MacroSyntax::Braces,
    params: &[
        ("click_id", "subid"),
        ("amount", "payout"),
        ("transaction_id", "tid"),
        ("currency", "currency"),
        ("status", "status"),
    ],
    macros: &[
        ("click_id", "external_id"),
        ("amount", "revenue"),
        ("transaction_id", "tid"),
        ("status", "status"),
        ("city", "city"),
    ],
    statuses: &[
        ("lead", "pending"),
        ("sale", "approved"),
        ("rejected", "rejected"),
        // A rebill is an additional paid sale on the same click.
        ("rebill", "approved"),
    ],
    example_query: "subid=CLICKID&status=sale&payout=21.00&tid=52949935&currency=usd",
    notes: "In Keitaro, receive postbackd's click id as the traffic source's external_id and \
            set this as the S2S postback of the traffic source or campaign; senders using \
            Keitaro's subid/status/payout/tid format can post to /p/KEY unchanged.",
};

/// Binom-style sender: anything that fires Binom's incoming postback format.
///
/// Confirmed from Binom's documentation: `cnv_id` carries the click id, `payout` the payout,
/// `cnv_status` a free-form status (docs show signup, checkout, approve, reject, Hold),
/// `cnv_currency` the currency. Binom's traffic-source postback tokens include
/// `{externalid}` (the id received from the traffic source, i.e. postbackd's click id),
/// `{cnv_status}`, `{cnv_currency}`, `{country_code}` and `{city}`.
///
/// UNCONFIRMED: a Binom transaction-id parameter (`txid` here is a guess) and the `{payout}`
/// token. Binom has no fixed status vocabulary, so only the values in its docs plus the
/// obvious canonical spellings are mapped; add your network's values.
const BINOM: Preset = Preset {
    id: "binom",
    name: "Binom-style sender",
    syntax: MacroSyntax::Braces,
    params: &[
        ("click_id", "cnv_id"),
        ("amount", "payout"),
        ("transaction_id", "txid"),
        ("currency", "cnv_currency"),
        ("status", "cnv_status"),
    ],
    macros: &[
        ("click_id", "externalid"),
        ("amount", "payout"),
        ("currency", "cnv_currency"),
        ("status", "cnv_status"),
        ("country", "country_code"),
        ("city", "city"),
    ],
    statuses: &[
        ("approve", "approved"),
        ("approved", "approved"),
        ("hold", "pending"),
        ("pending", "pending"),
        ("reject", "rejected"),
        ("rejected", "rejected"),
    ],
    example_query: "cnv_id=CLICKID&payout=9.90&txid=BN-771204&cnv_currency=EUR&cnv_status=approve",
    notes: "In Binom, receive postbackd's click id as the traffic source's external id and \
            set this as the traffic source Postback URL (or the campaign's S2S postback); \
            senders using Binom's cnv_id/payout/cnv_status format can post to /p/KEY unchanged.",
};

static PRESETS: [Preset; 10] = [
    CLICKBANK, IMPACT, CJ, EVERFLOW, CAKE, ADTRACTION, HASOFFERS, VOLUUM, KEITARO, BINOM,
];

/// Every built-in preset, in display order.
pub fn all() -> &'static [Preset] {
    &PRESETS
}

/// Looks a preset up by id, ignoring case (ids come from config files and URLs typed by hand).
pub fn find(id: &str) -> Option<&'static Preset> {
    let id = id.trim();
    PRESETS.iter().find(|p| p.id.eq_ignore_ascii_case(id))
}

/// Where a network's affiliate links point, for the page tag's AutoTag
/// (`/t.js`): a link to one of these hosts, or to a subdomain of one, gets
/// the click ID in the network's tracking parameter. One table, served to
/// the script by the server (`http::tag`), never copied into it.
///
/// Networks on their own white-label domains (Everflow, CAKE, most TUNE
/// networks) are not listed: their links take `{click_id}` /
/// `--CLICK-ID--`, or the page names their host with `data-hosts`.
const LINK_HOSTS: &[(&str, LinkParam)] = &[
    // ClickBank HopLinks: vendor.hop.clickbank.net, hop.clickbank.net.
    ("hop.clickbank.net", LinkParam::Preset("clickbank")),
    // Impact's shared tracking domains (brands also use vanity ones).
    ("sjv.io", LinkParam::Preset("impact")),
    ("pxf.io", LinkParam::Preset("impact")),
    ("7eer.net", LinkParam::Preset("impact")),
    ("evyy.net", LinkParam::Preset("impact")),
    ("ojrq.net", LinkParam::Preset("impact")),
    // CJ's link domains.
    ("anrdoezrs.net", LinkParam::Preset("cj")),
    ("dpbolvw.net", LinkParam::Preset("cj")),
    ("jdoqocy.com", LinkParam::Preset("cj")),
    ("kqzyfj.com", LinkParam::Preset("cj")),
    ("tkqlhce.com", LinkParam::Preset("cj")),
    ("qksrv.net", LinkParam::Preset("cj")),
    ("track.adtraction.com", LinkParam::Preset("adtraction")),
    // TUNE/HasOffers' default tracking domain.
    ("go2cloud.org", LinkParam::Preset("hasoffers")),
    // Digistore24 promolinks take the click ID as `cid` (returned in the
    // IPN's `cid`, the first field `inbound::ipn::digistore24` reads).
    ("digistore24.com", LinkParam::Fixed("cid")),
    // JVZoo affiliate links take `tid` (returned as `caffitid`).
    ("jvzoo.com", LinkParam::Fixed("tid")),
    ("jvz1.com", LinkParam::Fixed("tid")),
    ("jvz2.com", LinkParam::Fixed("tid")),
    ("jvz3.com", LinkParam::Fixed("tid")),
    ("jvz4.com", LinkParam::Fixed("tid")),
    ("jvz5.com", LinkParam::Fixed("tid")),
    ("jvz6.com", LinkParam::Fixed("tid")),
    ("jvz7.com", LinkParam::Fixed("tid")),
    ("jvz8.com", LinkParam::Fixed("tid")),
    ("jvz9.com", LinkParam::Fixed("tid")),
];

/// Which parameter a [`LINK_HOSTS`] entry's links take.
enum LinkParam {
    /// The preset's `click_id` parameter.
    Preset(&'static str),
    /// A network without a postback preset (an IPN marketplace).
    Fixed(&'static str),
}

/// `(host, parameter)` for every known affiliate link host.
pub fn link_hosts() -> Vec<(&'static str, &'static str)> {
    LINK_HOSTS
        .iter()
        .filter_map(|(host, p)| {
            let param = match p {
                LinkParam::Preset(id) => find(id)?.param_for("click_id")?,
                LinkParam::Fixed(param) => param,
            };
            Some((*host, param))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inbound::postback::{self, Status};

    #[test]
    fn every_link_host_has_its_parameter() {
        let hosts = link_hosts();
        assert_eq!(hosts.len(), LINK_HOSTS.len(), "a preset id is misspelt");
        let param = |h: &str| hosts.iter().find(|(x, _)| *x == h).map(|(_, p)| *p);
        assert_eq!(param("hop.clickbank.net"), Some("tid"));
        assert_eq!(param("sjv.io"), Some("subId1"));
        assert_eq!(param("anrdoezrs.net"), Some("sid"));
        assert_eq!(param("track.adtraction.com"), Some("epi"));
        assert_eq!(param("go2cloud.org"), Some("aff_sub"));
        for (h, _) in &hosts {
            assert_eq!(*h, h.to_ascii_lowercase());
        }
    }

    #[test]
    fn url_order_lists_every_canonical_field_once() {
        let mut url: Vec<&str> = CANONICAL_FIELDS.to_vec();
        let mut declared: Vec<&str> = postback::FIELDS.iter().map(|(f, _)| *f).collect();
        url.sort_unstable();
        declared.sort_unstable();
        assert_eq!(url, declared);
    }

    /// The simple query parser the brief asks for: split on `&`, then on the first `=`.
    fn parse_query(q: &str) -> Vec<(&str, &str)> {
        q.split('&')
            .filter(|kv| !kv.is_empty())
            .map(|kv| kv.split_once('=').unwrap_or((kv, "")))
            .collect()
    }

    fn value<'a>(pairs: &[(&'a str, &'a str)], key: &str) -> Option<&'a str> {
        pairs.iter().find(|(k, _)| *k == key).map(|(_, v)| *v)
    }

    #[test]
    fn example_query_carries_click_id_under_mapped_param() {
        for p in all() {
            let pairs = parse_query(p.example_query);
            let param = p.param_for("click_id").expect("every preset maps click_id");
            assert_eq!(value(&pairs, param), Some("CLICKID"), "preset {}", p.id);
        }
    }

    #[test]
    fn example_query_yields_amount_transaction_id_and_mappable_status() {
        for p in all() {
            let pairs = parse_query(p.example_query);

            let amount_param = p.param_for("amount").expect("amount param");
            let amount = value(&pairs, amount_param).expect("amount in example");
            assert!(
                amount.parse::<f64>().is_ok_and(|a| a > 0.0),
                "preset {}",
                p.id
            );

            let tx_param = p.param_for("transaction_id").expect("transaction_id param");
            let tx = value(&pairs, tx_param).expect("transaction_id in example");
            assert!(!tx.is_empty(), "preset {}", p.id);

            if let Some(status_param) = p.param_for("status")
                && let Some(raw) = value(&pairs, status_param)
            {
                assert!(p.map_status(raw).is_some(), "preset {} status {raw}", p.id);
            }

            // Kept independent of the currency module so this module's tests stand alone;
            // currency.rs validates the actual code list.
            if let Some(cur_param) = p.param_for("currency")
                && let Some(raw) = value(&pairs, cur_param)
            {
                assert!(
                    raw.len() == 3 && raw.bytes().all(|b| b.is_ascii_alphabetic()),
                    "preset {} currency {raw}",
                    p.id
                );
            }
        }
    }

    #[test]
    fn example_query_only_uses_mapped_params() {
        // Catches an example that drifts from the mapping (e.g. renaming a param in one place).
        for p in all() {
            for (key, _) in parse_query(p.example_query) {
                // A canonical name beside its mapped parameter is allowed: Everflow's
                // click-level transaction_id arrives next to conversion_id.
                assert!(
                    p.params.iter().any(|(_, param)| *param == key)
                        || CANONICAL_FIELDS.contains(&key),
                    "preset {}: {key} is not in params",
                    p.id
                );
            }
        }
    }

    #[test]
    fn statuses_map_to_canonical_and_are_lowercase() {
        for p in all() {
            for (raw, canonical) in p.statuses {
                assert!(Status::parse(canonical).is_some(), "{} {raw}", p.id);
                assert_eq!(*raw, raw.to_ascii_lowercase(), "{} {raw}", p.id);
                assert_eq!(p.map_status(raw), Some(*canonical));
            }
        }
    }

    #[test]
    fn fields_are_canonical_and_unique() {
        for p in all() {
            for table in [p.params, p.macros] {
                for (i, (field, name)) in table.iter().enumerate() {
                    assert!(CANONICAL_FIELDS.contains(field), "{} {field}", p.id);
                    assert!(!name.is_empty(), "{} {field}", p.id);
                    assert!(
                        table[..i].iter().all(|(f, _)| f != field),
                        "{} duplicates {field}",
                        p.id
                    );
                }
            }
            assert!(p.macro_for("click_id").is_some(), "{} click_id macro", p.id);
            assert!(!p.notes.is_empty() && !p.name.is_empty());
        }
    }

    #[test]
    fn ids_are_unique_lowercase_and_findable() {
        let ids: Vec<_> = all().iter().map(|p| p.id).collect();
        assert_eq!(
            ids,
            [
                "clickbank",
                "impact",
                "cj",
                "everflow",
                "cake",
                "adtraction",
                "hasoffers",
                "voluum",
                "keitaro",
                "binom"
            ]
        );
        for p in all() {
            assert_eq!(p.id, p.id.to_ascii_lowercase());
            assert_eq!(find(p.id).map(|f| f.id), Some(p.id));
            assert_eq!(find(&p.id.to_ascii_uppercase()).map(|f| f.id), Some(p.id));
        }
        assert_eq!(find("Everflow").map(|p| p.name), Some("Everflow"));
        assert!(find("nope").is_none());
        assert!(find("").is_none());
    }

    #[test]
    fn everflow_postback_query() {
        let p = find("everflow").unwrap();
        assert_eq!(
            p.postback_query(),
            "click_id={sub1}&amount={payout_amount}&transaction_id={conversion_id}&event={event_name}"
        );
    }

    #[test]
    fn postback_query_uses_syntax_and_canonical_order() {
        assert_eq!(
            find("cake").unwrap().postback_query(),
            "click_id=#s2#&amount=#price#&transaction_id=#leadid#"
        );
        assert_eq!(
            find("cj").unwrap().postback_query(),
            "click_id=[sid]&amount=[commission]&transaction_id=[commission_id]\
             &currency=[currency]&status=[action_status]"
        );
        assert_eq!(
            find("binom").unwrap().postback_query(),
            "click_id={externalid}&amount={payout}&currency={cnv_currency}\
             &status={cnv_status}&country={country_code}&city={city}"
        );
        // Declaration order must not matter: output follows CANONICAL_FIELDS.
        let shuffled = Preset {
            macros: &[("city", "c"), ("click_id", "k"), ("amount", "a")],
            ..*find("everflow").unwrap()
        };
        assert_eq!(
            shuffled.postback_query(),
            "click_id={k}&amount={a}&city={c}"
        );
        let none = Preset {
            macros: &[],
            ..*find("everflow").unwrap()
        };
        assert_eq!(none.postback_query(), "");
    }

    #[test]
    fn map_status_is_case_insensitive() {
        let cb = find("clickbank").unwrap();
        assert_eq!(cb.map_status("SALE"), Some("approved"));
        assert_eq!(cb.map_status("Rfnd"), Some("refunded"));
        assert_eq!(cb.map_status(" CGBK "), Some("chargeback"));
        assert_eq!(cb.map_status("CANCEL-REBILL"), None);
        let impact = find("impact").unwrap();
        assert_eq!(impact.map_status("REVERSED"), Some("rejected"));
        assert_eq!(find("keitaro").unwrap().map_status("Lead"), Some("pending"));
        assert_eq!(find("voluum").unwrap().map_status("approved"), None);
    }

    #[test]
    fn param_and_macro_lookup() {
        let impact = find("impact").unwrap();
        assert_eq!(impact.param_for("click_id"), Some("subId1"));
        assert_eq!(impact.macro_for("click_id"), Some("SubId1"));
        assert_eq!(impact.macro_for("zip"), None);
        assert_eq!(impact.param_for("nonsense"), None);
    }

    #[test]
    fn macro_syntax_round_trips() {
        for s in [
            MacroSyntax::Braces,
            MacroSyntax::DollarBraces,
            MacroSyntax::Hash,
            MacroSyntax::Brackets,
        ] {
            assert_eq!(MacroSyntax::parse(s.as_str()), Some(s));
            // as_str is itself the wrapping of "x".
            assert_eq!(s.wrap("x"), s.as_str());
        }
        assert_eq!(MacroSyntax::Braces.wrap("sub1"), "{sub1}");
        assert_eq!(MacroSyntax::DollarBraces.wrap("sub1"), "${sub1}");
        assert_eq!(MacroSyntax::Hash.wrap("s2"), "#s2#");
        assert_eq!(MacroSyntax::Brackets.wrap("sid"), "[sid]");
        assert_eq!(MacroSyntax::parse("braces"), Some(MacroSyntax::Braces));
        assert_eq!(
            MacroSyntax::parse("Dollar_Braces"),
            Some(MacroSyntax::DollarBraces)
        );
        assert_eq!(MacroSyntax::parse("HASH"), Some(MacroSyntax::Hash));
        assert_eq!(
            MacroSyntax::parse(" brackets "),
            Some(MacroSyntax::Brackets)
        );
        assert_eq!(MacroSyntax::parse("curly"), None);
        assert_eq!(MacroSyntax::parse("{y}"), None);
        assert_eq!(MacroSyntax::parse(""), None);
    }
}
