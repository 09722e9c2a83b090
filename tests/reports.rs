//! `/api/v1/reports` against a brute-force recount of the stored records.
//!
//! Clicks and conversions are written through the real write path
//! (`ingest::record_click`, `ingest::record_postback`, the same functions
//! the `/c` and `/p` handlers call), at chosen times, so days in Kolkata and
//! New York can be put on their edges. The recount below reads the stored
//! clicks and conversions and applies the report's definitions itself; it
//! shares no code with the roll-ups but the money formatting.

use std::collections::BTreeMap;

use hyper::Method;
use postbackd::inbound::postback::{Fields, Kind, Status};
use postbackd::ingest::{self, ClickWrite, RawRequest};
use postbackd::reports::output::fmt_money;
use postbackd::store::records::{self, ClickRecord, ConversionRecord};
use postbackd::store::rollup::Level;
use postbackd::store::{CLICKS, CONVERSIONS};
use postbackd::util::ids;
use redb::ReadableTable;
use rust_decimal::Decimal;
use serde_json::{Value, json};

use crate::util::{TestServer, text};

fn ms(s: &str) -> u64 {
    s.parse::<jiff::Timestamp>().unwrap().as_millisecond() as u64
}

/// Write a click at `at` through the click path's writer function.
async fn click_at(s: &TestServer, mut rec: ClickRecord, at: u64) -> String {
    rec.ms = at;
    let id = ids::new_id(at);
    let w = ClickWrite::new(id.clone(), &rec);
    s.app
        .store
        .write(move |ctx| ingest::record_click(ctx, w))
        .await
        .unwrap()
        .unwrap();
    id
}

fn raw() -> RawRequest {
    RawRequest {
        method: "GET".into(),
        path: "/p/test".into(),
        query: String::new(),
        content_type: None,
        body: Vec::new(),
        body_truncated: false,
        remote_ip: "127.0.0.1".into(),
        user_agent: None,
    }
}

/// Write a postback at `at` through the postback path's writer function.
#[allow(clippy::too_many_arguments)]
async fn postback_at(
    s: &TestServer,
    source: u64,
    click_id: &str,
    amount: Option<&str>,
    currency: &str,
    status: Status,
    tx: &str,
    event: Option<&str>,
    at: u64,
) -> Value {
    let amount: Option<Decimal> = amount.map(|a| a.parse().unwrap());
    let f = Fields {
        click_id: click_id.to_string(),
        click_id_as_sent: click_id.to_string(),
        kind: if amount.is_some_and(|a| !a.is_zero()) {
            Kind::Purchase
        } else {
            Kind::Lead
        },
        amount,
        currency: currency.into(),
        transaction_id: Some(tx.to_string()),
        event: event.map(str::to_string),
        status,
        country: None,
        state: None,
        city: None,
        zip: None,
        extra: Vec::new(),
    };
    // Half the postbacks (by transaction ID) take the HTTP handler's path:
    // the click found and the roll-up rows made before the write
    // (`ingest::prefetch_click`); the others the writer's own lookup (a
    // replay's, an IPN's). The recount must hold for both.
    let prefetched = if tx.bytes().map(u32::from).sum::<u32>() % 2 == 0 {
        let rtx = s.app.store.begin_read().unwrap();
        ingest::prefetch_click(rtx, source, &f, at).unwrap()
    } else {
        None
    };
    let o = s
        .app
        .store
        .write(move |ctx| {
            let mut p = ingest::Postback::new(source, raw(), Ok(f));
            p.click = prefetched;
            ingest::record_postback(ctx, p, at)
        })
        .await
        .unwrap();
    o.body()
}

/// The report's grouped counters read through the hour and day rows equal
/// those read from the 15-minute rows alone, exactly (every cell, every
/// currency, every counter).
/// Returns how many rows each read (coarse levels, 15-minute rows alone).
async fn same_as_quarter_rows(s: &TestServer, q: &str) -> (u64, u64) {
    let pairs: Vec<(String, String)> = q
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let p = postbackd::reports::Params::parse(&pairs, "UTC", 0).unwrap();
    let (fast, slow) = s
        .app
        .store
        .read(move |rtx| {
            Ok((
                postbackd::reports::run(rtx, &p)?,
                postbackd::reports::run_at(rtx, &p, Some(&[Level::Quarter]))?,
            ))
        })
        .await
        .unwrap();
    assert_eq!(fast.rows, slow.rows, "{q}");
    assert_eq!(fast.totals, slow.totals, "{q}");
    (fast.rows_read, slow.rows_read)
}

async fn report(s: &TestServer, q: &str) -> Value {
    let r = s
        .admin(Method::GET, &format!("/api/v1/reports?{q}"), None)
        .await;
    assert_eq!(r.status, 200, "{q}: {}", text(&r));
    r.json()
}

fn cell<'a>(rep: &'a Value, dim: &str, value: &str) -> &'a Value {
    rep["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r[dim] == value)
        .unwrap_or_else(|| panic!("no row {dim}={value} in {rep}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn days_follow_the_time_zone_and_dst() {
    let s = TestServer::start().await;
    let (_, slug) = s.source_and_link(json!({"name": "net"})).await;
    let base = ClickRecord {
        slug: slug.clone(),
        ip: "198.51.100.7".into(),
        device: "desktop".into(),
        ..Default::default()
    };
    // 23:50 and 00:10 in Kolkata (UTC+05:30), one day apart there, the same
    // day in UTC.
    click_at(&s, base.clone(), ms("2026-11-30T18:20:00Z")).await;
    click_at(&s, base.clone(), ms("2026-11-30T18:40:00Z")).await;
    let r = report(
        &s,
        "group_by=day&from=2026-11-30&to=2026-12-01&tz=Asia/Kolkata",
    )
    .await;
    assert_eq!(cell(&r, "day", "2026-11-30")["clicks"], 1, "{r}");
    assert_eq!(cell(&r, "day", "2026-12-01")["clicks"], 1, "{r}");
    let r = report(&s, "group_by=day&from=2026-11-30&to=2026-12-01&tz=UTC").await;
    assert_eq!(cell(&r, "day", "2026-11-30")["clicks"], 2, "{r}");
    assert_eq!(r["rows"].as_array().unwrap().len(), 1, "{r}");

    // New York leaves DST on 2026-11-01 (a 25-hour day): 00:30 EDT and
    // 23:30 EST are both that day; 00:10 EST the next.
    click_at(&s, base.clone(), ms("2026-11-01T04:30:00Z")).await;
    click_at(&s, base.clone(), ms("2026-11-02T04:30:00Z")).await;
    click_at(&s, base.clone(), ms("2026-11-02T05:10:00Z")).await;
    let r = report(
        &s,
        "group_by=day&from=2026-11-01&to=2026-11-02&tz=America/New_York",
    )
    .await;
    assert_eq!(cell(&r, "day", "2026-11-01")["clicks"], 2, "{r}");
    assert_eq!(cell(&r, "day", "2026-11-02")["clicks"], 1, "{r}");
    // Hours on the fall-back day carry their offset: two 01:00 hours.
    let r = report(
        &s,
        "group_by=hour&from=2026-11-01T04:00:00Z&to=2026-11-01T07:00:00Z&tz=America/New_York",
    )
    .await;
    assert_eq!(r["rows"].as_array().unwrap().len(), 1, "{r}");
    assert_eq!(r["rows"][0]["hour"], "2026-11-01T00:00-04:00", "{r}");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_report_requests_say_why() {
    let s = TestServer::start().await;
    for (q, code) in [
        ("group_by=planet", "unknown_dimension"),
        ("group_by=day,source,link,campaign", "invalid_group_by"),
        ("group_by=day,day", "invalid_group_by"),
        ("from=2026-12-02&to=2026-12-01", "invalid_range"),
        ("from=2025-01-01&to=2026-12-01", "invalid_range"),
        ("from=yesterday", "invalid_range"),
        ("tz=Mars/Olympus", "invalid_tz"),
        ("time_basis=sometimes", "invalid_time_basis"),
        ("filter.planet=mars", "unknown_dimension"),
        ("sort=happiness", "invalid_sort"),
        ("limit=0", "invalid_limit"),
        ("format=xml", "invalid_format"),
        ("groupby=day", "invalid_parameter"),
    ] {
        let r = s
            .admin(Method::GET, &format!("/api/v1/reports?{q}"), None)
            .await;
        assert_eq!(r.status, 400, "{q}: {}", text(&r));
        let v = r.json();
        assert_eq!(v["error"], code, "{q}: {v}");
        assert!(v["message"].as_str().unwrap().len() > 20, "{q}: {v}");
    }
    for (body, code) in [
        (json!({"EUR": "-1"}), "invalid_rate"),
        (json!({"EUR": "abc"}), "invalid_rate"),
        (json!({"EURO": "1.1"}), "invalid_currency"),
        (json!({"USD": "1"}), "invalid_rates"),
    ] {
        let r = s
            .admin(Method::PUT, "/api/v1/rates", Some(body.clone()))
            .await;
        assert_eq!(
            (r.status, r.json()["error"].clone()),
            (400, json!(code)),
            "{body}"
        );
    }
    for (body, code) in [
        (
            json!({"cost": {"model": "cpm", "amount": "1"}}),
            "invalid_cost",
        ),
        (json!({"cost": {"model": "cpc"}}), "invalid_cost"),
        (
            json!({"cost": {"model": "cpc", "amount": "-0.1"}}),
            "invalid_cost",
        ),
        (
            json!({"cost": {"model": "revshare", "percent": "140"}}),
            "invalid_cost",
        ),
        (
            json!({"cost": {"model": "cpc", "amount": "1", "currency": "XXXX"}}),
            "invalid_currency",
        ),
        (json!({"subs": {"sub9": "zone"}}), "invalid_subs"),
        (json!({"subs": {"sub1": "zone id"}}), "invalid_subs"),
    ] {
        let mut b = body.clone();
        b["destination"] = json!("https://offer.example/?s={click_id}");
        let r = s.admin(Method::POST, "/api/v1/links", Some(b)).await;
        assert_eq!(
            (r.status, r.json()["error"].clone()),
            (400, json!(code)),
            "{body}"
        );
    }
    s.stop().await;
}

/// A small deterministic generator (xorshift64*): the same data every run.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[self.below(xs.len() as u64) as usize]
    }
}

/// The counters of one report cell, recounted.
#[derive(Default, Debug, Clone)]
struct Cell {
    ints: BTreeMap<&'static str, i64>,
    /// metric -> currency -> amount
    money: BTreeMap<&'static str, BTreeMap<String, Decimal>>,
}

impl Cell {
    fn int(&mut self, k: &'static str, v: i64) {
        *self.ints.entry(k).or_default() += v;
    }
    fn money(&mut self, k: &'static str, cur: &str, v: Decimal) {
        *self
            .money
            .entry(k)
            .or_default()
            .entry(cur.to_string())
            .or_default() += v;
    }
    /// The metric in USD with EUR at 1.08; GBP has no rate.
    fn usd(&self, k: &str) -> String {
        let mut total = Decimal::ZERO;
        if let Some(m) = self.money.get(k) {
            for (cur, v) in m {
                match cur.as_str() {
                    "" | "USD" => total += *v,
                    "EUR" => total += *v * Decimal::new(108, 2),
                    _ => {}
                }
            }
        }
        fmt_money(total)
    }
    fn gbp(&self, k: &str) -> Option<String> {
        let v = self.money.get(k)?.get("GBP")?;
        (!v.is_zero()).then(|| fmt_money(*v))
    }
}

/// Add one status's contribution to a cell (the report's definitions).
fn contribute(cell: &mut Cell, c: &ConversionRecord, status: &str, sign: i64, cpa: Option<&str>) {
    let amount: Decimal = c
        .amount
        .as_deref()
        .map(|a| a.parse().unwrap())
        .unwrap_or_default();
    let s = Decimal::from(sign);
    if !c.matched {
        if status == "approved" {
            cell.int("unmatched_conversions", sign);
            cell.money("unmatched_revenue", &c.currency, amount * s);
        }
        return;
    }
    match status {
        "approved" => {
            cell.int("conversions", sign);
            cell.int(
                if c.kind == "lead" {
                    "leads"
                } else {
                    "purchases"
                },
                sign,
            );
            cell.money("revenue", &c.currency, amount * s);
            if let Some(a) = cpa {
                cell.money("cost", "", a.parse::<Decimal>().unwrap() * s);
            }
        }
        "pending" => {
            cell.int("pending_conversions", sign);
            cell.money("pending_revenue", &c.currency, amount * s);
        }
        "refunded" | "chargeback" => {
            cell.int("refunds", sign);
            cell.money("refunded_revenue", &c.currency, amount * s);
        }
        _ => {}
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_cell_equals_a_recount_of_the_records() {
    let s = TestServer::start().await;
    let src = s.source(json!({"name": "net"})).await;
    let source = src["id"].as_u64().unwrap();
    // Three links: CPC in USD, CPA, and auto-cost from a click parameter.
    let links = [
        ("alpha", "spring", json!({"model": "cpc", "amount": "0.05"})),
        ("beta", "spring", json!({"model": "cpa", "amount": "4.00"})),
        (
            "gamma",
            "autumn",
            json!({"model": "param", "param": "cost"}),
        ),
    ];
    for (slug, campaign, cost) in &links {
        let r = s
            .admin(
                Method::POST,
                "/api/v1/links",
                Some(json!({
                    "slug": slug, "destination": "https://offer.example/?s={click_id}",
                    "source": source, "campaign": campaign, "cost": cost,
                    "subs": {"sub1": "zone"},
                })),
            )
            .await;
        assert_eq!(r.status, 201, "{}", text(&r));
    }
    let r = s
        .admin(Method::PUT, "/api/v1/rates", Some(json!({"EUR": "1.08"})))
        .await;
    assert_eq!(r.status, 200, "{}", text(&r));

    let start = ms("2026-11-10T00:00:00Z");
    let span = 4 * 86_400_000u64;
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut clicks: Vec<(String, u64)> = Vec::new();
    for _ in 0..400 {
        let slug = rng.pick(&["alpha", "beta", "gamma"]);
        let at = start + rng.below(span / 60_000) * 60_000;
        let mut params = vec![(
            "zone".to_string(),
            rng.pick(&["z1", "z2", "z3", "z4"]).to_string(),
        )];
        if slug == "gamma" {
            params.push((
                "cost".into(),
                rng.pick(&["0.10", "0.25", "bad", "1"]).into(),
            ));
        }
        let link = s.app.store.catalog().links.get(slug).unwrap().clone();
        let bot = rng.below(10) == 0;
        let rec = ClickRecord {
            slug: slug.into(),
            source_id: link.rec.source_id,
            campaign: link.rec.campaign.clone(),
            ip: "198.51.100.1".into(),
            device: if bot {
                "bot".into()
            } else {
                rng.pick(&["desktop", "mobile", "tablet"]).into()
            },
            country: Some(rng.pick(&["US", "IN", "DE"]).into()).filter(|_| rng.below(8) != 0),
            bot,
            unique: !bot && rng.below(3) != 0,
            subs: postbackd::store::rollup::click_subs(&link.rec.subs, &params),
            cost: if bot {
                None
            } else {
                postbackd::store::rollup::click_cost(link.rec.cost.as_ref(), &params)
            },
            params,
            ..Default::default()
        };
        let id = click_at(&s, rec, at).await;
        clicks.push((id, at));
    }
    let statuses = [
        Status::Approved,
        Status::Pending,
        Status::Refunded,
        Status::Chargeback,
        Status::Rejected,
    ];
    for n in 0..220 {
        let (click_id, click_ms) = if rng.below(6) == 0 {
            (format!("unknown{n}"), start + rng.below(span))
        } else {
            clicks[rng.below(clicks.len() as u64) as usize].clone()
        };
        let at = click_ms + rng.below(36) * 3_600_000;
        let amount = match rng.below(4) {
            0 => None,
            1 => Some("0"),
            2 => Some("12.50"),
            _ => Some("0.333"),
        };
        let currency = rng.pick(&["USD", "USD", "EUR", "GBP"]);
        let event = if rng.below(5) == 0 {
            Some("Trial")
        } else {
            None
        };
        let tx = format!("T{n}");
        let first = if rng.below(3) == 0 {
            Status::Pending
        } else {
            Status::Approved
        };
        let v = postback_at(
            &s, source, &click_id, amount, currency, first, &tx, event, at,
        )
        .await;
        assert!(
            v["result"] == "matched" || v["result"] == "unmatched",
            "{v}"
        );
        // Some change status later, some twice.
        let mut t = at;
        for _ in 0..rng.below(3) {
            t += rng.below(48) * 3_600_000 + 60_000;
            let st = statuses[rng.below(statuses.len() as u64) as usize];
            postback_at(&s, source, &click_id, amount, currency, st, &tx, event, t).await;
        }
    }

    // The recount: every stored click and conversion, with the report's
    // definitions applied here.
    let (stored_clicks, stored_convs) = s
        .app
        .store
        .read(|rtx| {
            let mut cl = BTreeMap::new();
            for row in rtx.open_table(CLICKS)?.iter()? {
                let (k, v) = row?;
                cl.insert(
                    k.value().to_string(),
                    records::decode::<ClickRecord>(v.value())?,
                );
            }
            let mut cv = Vec::new();
            for row in rtx.open_table(CONVERSIONS)?.iter()? {
                let (_, v) = row?;
                cv.push(records::decode::<ConversionRecord>(v.value())?);
            }
            Ok((cl, cv))
        })
        .await
        .unwrap();
    assert_eq!(stored_clicks.len(), 400);
    let cpa_of = |slug: &str| (slug == "beta").then_some("4.00");

    // Whole days in the zone, and (not on any day or hour edge in UTC)
    // instants, so reports read 15-minute, hour and day rows.
    let ranges = [
        ("2026-11-11", "2026-11-13"),
        ("2026-11-10T05:45:00Z", "2026-11-13T17:15:00Z"),
    ];
    for tz in ["UTC", "Asia/Kolkata", "America/New_York"] {
        for basis in ["click", "conversion"] {
            for (group, (from, to)) in [
                vec!["day"],
                vec!["campaign"],
                vec!["country", "device"],
                vec!["sub1", "day"],
                vec!["event"],
                vec!["device", "campaign", "day"],
                vec!["hour"],
                vec!["week", "campaign"],
                vec!["month", "sub1"],
            ]
            .into_iter()
            .flat_map(|g| ranges.map(|r| (g.clone(), r)))
            {
                let tz_ = jiff::tz::TimeZone::get(tz).unwrap();
                let edge = |v: &str, next_day: bool| -> u64 {
                    match v.parse::<jiff::civil::Date>() {
                        Ok(d) => {
                            let d = if next_day { d.tomorrow().unwrap() } else { d };
                            d.to_zoned_datetime(tz_.clone())
                                .unwrap()
                                .timestamp()
                                .as_millisecond() as u64
                        }
                        Err(_) => ms(v),
                    }
                };
                let (lo, hi) = (edge(from, false), edge(to, true));
                let click_only = group
                    .iter()
                    .any(|d| !matches!(*d, "hour" | "day" | "week" | "month" | "event"));
                let time_name = |at: u64, d: &str| -> String {
                    let z = jiff::Timestamp::from_millisecond(at as i64)
                        .unwrap()
                        .in_tz(tz)
                        .unwrap();
                    match d {
                        "hour" => z.strftime("%Y-%m-%dT%H:00%:z").to_string(),
                        "day" => z.date().to_string(),
                        "week" => {
                            let w = z.date().iso_week_date();
                            format!("{:04}-W{:02}", w.year(), w.week())
                        }
                        _ => z.strftime("%Y-%m").to_string(),
                    }
                };
                let mut cells: BTreeMap<Vec<String>, Cell> = BTreeMap::new();
                let mut totals = Cell::default();
                let dim = |c: &ClickRecord, d: &str, at: u64, event: &str| -> String {
                    match d {
                        "hour" | "day" | "week" | "month" => time_name(at, d),
                        "campaign" => c.campaign.clone().unwrap_or_default(),
                        "country" => c.country.clone().unwrap_or_default(),
                        "device" => c.device.clone(),
                        "sub1" => c.subs.first().cloned().unwrap_or_default(),
                        "event" => event.to_string(),
                        _ => unreachable!(),
                    }
                };
                for c in stored_clicks.values() {
                    if c.ms < lo || c.ms >= hi {
                        continue;
                    }
                    let key: Vec<String> = group.iter().map(|d| dim(c, d, c.ms, "")).collect();
                    for cell in [cells.entry(key).or_default(), &mut totals] {
                        if c.bot {
                            cell.int("bot_clicks", 1);
                        } else {
                            cell.int("clicks", 1);
                            cell.int("unique_clicks", i64::from(c.unique));
                            if let Some((a, cur)) = &c.cost {
                                cell.money("cost", cur, a.parse().unwrap());
                            }
                        }
                    }
                }
                for c in &stored_convs {
                    let click = stored_clicks.get(&c.click_id).filter(|_| c.matched);
                    let event = c.event.clone().unwrap_or_else(|| c.kind.clone());
                    let cpa = click.and_then(|cl| cpa_of(&cl.slug));
                    // (time, status, sign) contributions.
                    let mut parts: Vec<(u64, String, i64)> = Vec::new();
                    if basis == "click" {
                        parts.push((click.map_or(c.created_ms, |cl| cl.ms), c.status.clone(), 1));
                    } else {
                        let mut prev: Option<&str> = None;
                        for (t, st) in &c.history {
                            if let Some(p) = prev {
                                parts.push((*t, p.to_string(), -1));
                            }
                            parts.push((*t, st.clone(), 1));
                            prev = Some(st);
                        }
                    }
                    for (t, st, sign) in parts {
                        if t < lo || t >= hi {
                            continue;
                        }
                        contribute(&mut totals, c, &st, sign, cpa);
                        let key: Vec<String> = match click {
                            Some(cl) => group.iter().map(|d| dim(cl, d, t, &event)).collect(),
                            None if click_only => continue,
                            None => group
                                .iter()
                                .map(|d| {
                                    if *d == "event" {
                                        event.clone()
                                    } else {
                                        time_name(t, d)
                                    }
                                })
                                .collect(),
                        };
                        contribute(cells.entry(key).or_default(), c, &st, sign, cpa);
                    }
                }
                let q = format!(
                    "group_by={}&from={from}&to={to}&tz={tz}&time_basis={basis}&limit=10000",
                    group.join(",")
                );
                let rep = report(&s, &q).await;
                same_as_quarter_rows(&s, &q).await;
                let rows = rep["rows"].as_array().unwrap();
                let check = |got: &Value, want: &Cell, what: &str| {
                    for m in [
                        "clicks",
                        "unique_clicks",
                        "bot_clicks",
                        "conversions",
                        "leads",
                        "purchases",
                        "pending_conversions",
                        "refunds",
                        "unmatched_conversions",
                    ] {
                        assert_eq!(
                            got[m],
                            json!(want.ints.get(m).copied().unwrap_or(0)),
                            "{q} {what} {m}: {got}"
                        );
                    }
                    for m in [
                        "revenue",
                        "pending_revenue",
                        "refunded_revenue",
                        "unmatched_revenue",
                        "cost",
                    ] {
                        assert_eq!(got[m], json!(want.usd(m)), "{q} {what} {m}: {got}");
                    }
                    assert_eq!(
                        got["unconverted"]
                            .get("GBP")
                            .and_then(Value::as_str)
                            .map(str::to_string),
                        want.gbp("revenue"),
                        "{q} {what}: {got}"
                    );
                };
                check(&rep["totals"], &totals, "totals");
                // Rows the recount has with every counter at zero do not
                // exist in the report (nothing was counted there).
                let nonzero: BTreeMap<_, _> = cells
                    .into_iter()
                    .filter(|(_, c)| {
                        c.ints.values().any(|v| *v != 0)
                            || c.money.values().any(|m| m.values().any(|v| !v.is_zero()))
                    })
                    .collect();
                assert_eq!(rows.len(), nonzero.len(), "{q}: {rep}");
                for (key, want) in &nonzero {
                    let got = rows
                        .iter()
                        .find(|r| {
                            group.iter().zip(key).all(|(d, v)| {
                                r[*d] == if v.is_empty() { Value::Null } else { json!(v) }
                            })
                        })
                        .unwrap_or_else(|| panic!("{q}: no row {key:?} in {rep}"));
                    check(got, want, &format!("{key:?}"));
                }
            }
        }
    }
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn cost_updates_set_never_add() {
    let s = TestServer::start().await;
    let r = s
        .admin(
            Method::POST,
            "/api/v1/links",
            Some(
                json!({"slug": "zz", "destination": "https://offer.example/?s={click_id}",
                        "campaign": "c1", "cost": {"model": "cpc", "amount": "0.05"},
                        "subs": {"sub1": "zone"}}),
            ),
        )
        .await;
    assert_eq!(r.status, 201, "{}", text(&r));
    let link = s.app.store.catalog().links.get("zz").unwrap().clone();
    for i in 0..9u64 {
        let params = vec![(
            "zone".to_string(),
            if i % 3 == 0 { "z1" } else { "z2" }.to_string(),
        )];
        let rec = ClickRecord {
            slug: "zz".into(),
            campaign: Some("c1".into()),
            ip: "198.51.100.9".into(),
            device: "mobile".into(),
            subs: postbackd::store::rollup::click_subs(&link.rec.subs, &params),
            cost: postbackd::store::rollup::click_cost(link.rec.cost.as_ref(), &params),
            params,
            ..Default::default()
        };
        click_at(&s, rec, ms("2026-11-20T10:00:00Z") + i * 60_000).await;
    }
    let day = "group_by=sub1&from=2026-11-20&to=2026-11-20";
    let r = report(&s, day).await;
    assert_eq!(r["totals"]["cost"], "0.45", "{r}");
    let update = json!({"link": "zz", "from": "2026-11-20", "to": "2026-11-20", "amount": "10"});
    for _ in 0..2 {
        let r = s
            .admin(Method::POST, "/api/v1/costs", Some(update.clone()))
            .await;
        assert_eq!(r.status, 200, "{}", text(&r));
        assert_eq!(r.json()["matched_clicks"], 9);
        let rep = report(&s, day).await;
        assert_eq!(
            rep["totals"]["cost"], "10.00",
            "the same update twice sets, never adds: {rep}"
        );
        assert_eq!(rep["totals"]["cpc"], "1.1111", "{rep}");
    }
    let r = s
        .admin(
            Method::POST,
            "/api/v1/costs",
            Some(
                json!({"campaign": "c1", "from": "2026-11-20", "to": "2026-11-20",
                        "amount": 3, "filter": {"sub1": "z1"}}),
            ),
        )
        .await;
    assert_eq!(
        (r.status, r.json()["matched_clicks"].clone()),
        (200, json!(3)),
        "{}",
        text(&r)
    );
    let rep = report(&s, day).await;
    assert_eq!(cell(&rep, "sub1", "z1")["cost"], "3.00", "{rep}");
    // The six other clicks keep their share of the first update.
    assert_eq!(cell(&rep, "sub1", "z2")["cost"], "6.66666667", "{rep}");
    // A range without clicks: answered, counted, and said so.
    let r = s
        .admin(
            Method::POST,
            "/api/v1/costs",
            Some(json!({"link": "zz", "from": "2026-11-21", "to": "2026-11-21", "amount": "5"})),
        )
        .await;
    let v = r.json();
    assert_eq!(
        (r.status, v["matched_clicks"].clone()),
        (200, json!(0)),
        "{v}"
    );
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("nothing was changed"),
        "{v}"
    );
    for (body, code) in [
        (
            json!({"from": "2026-11-20", "to": "2026-11-20", "amount": "1"}),
            "invalid_cost_scope",
        ),
        (
            json!({"link": "zz", "campaign": "c1", "from": "2026-11-20", "to": "2026-11-20", "amount": "1"}),
            "invalid_cost_scope",
        ),
        (
            json!({"link": "nope", "from": "2026-11-20", "to": "2026-11-20", "amount": "1"}),
            "unknown_link",
        ),
        (
            json!({"link": "zz", "from": "2026-11-20", "to": "2026-11-20", "amount": "-1"}),
            "invalid_amount",
        ),
        (
            json!({"link": "zz", "from": "2026-11-20", "to": "2026-11-20", "amount": "1,5"}),
            "invalid_amount",
        ),
        (
            json!({"link": "zz", "to": "2026-11-20", "amount": "1"}),
            "invalid_range",
        ),
        (
            json!({"link": "zz", "from": "2026-11-20", "to": "2026-11-20", "amount": "1", "currency": "EURO"}),
            "invalid_currency",
        ),
        (
            json!({"link": "zz", "from": "2026-11-20", "to": "2026-11-20", "amount": "1", "filter": {"event": "x"}}),
            "unknown_dimension",
        ),
    ] {
        let r = s
            .admin(Method::POST, "/api/v1/costs", Some(body.clone()))
            .await;
        assert_eq!(
            (r.status, r.json()["error"].clone()),
            (400, json!(code)),
            "{body}: {}",
            text(&r)
        );
    }
    let list = s.admin(Method::GET, "/api/v1/costs", None).await.json();
    assert_eq!(list["items"].as_array().unwrap().len(), 4, "{list}");
    assert_eq!(
        list["items"][0]["matched_clicks"], 0,
        "newest first: {list}"
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn rollups_are_rebuilt_for_a_database_from_before_them() {
    let dir = tempfile::tempdir().unwrap();
    let s = TestServer::start_at(dir.path(), |_| {}).await;
    let src = s.source(json!({"name": "net"})).await;
    let source = src["id"].as_u64().unwrap();
    s.link(json!({"slug": "old", "destination": "https://offer.example/?s={click_id}", "source": source, "campaign": "k"}))
        .await;
    let t0 = ms("2026-11-05T12:00:00Z");
    let mut ids = Vec::new();
    for i in 0..6u64 {
        let rec = ClickRecord {
            slug: "old".into(),
            source_id: Some(source),
            campaign: Some("k".into()),
            ip: "198.51.100.3".into(),
            ..Default::default()
        };
        ids.push(click_at(&s, rec, t0 + i * 3_600_000).await);
    }
    postback_at(
        &s,
        source,
        &ids[0],
        Some("10.00"),
        "USD",
        Status::Approved,
        "A",
        None,
        t0 + 60_000,
    )
    .await;
    postback_at(
        &s,
        source,
        &ids[1],
        Some("4.00"),
        "EUR",
        Status::Pending,
        "B",
        None,
        t0 + 4_000_000,
    )
    .await;
    postback_at(
        &s,
        source,
        &ids[1],
        Some("4.00"),
        "EUR",
        Status::Approved,
        "B",
        None,
        t0 + 90_000_000,
    )
    .await;
    postback_at(
        &s,
        source,
        "nosuchclick",
        Some("2.00"),
        "USD",
        Status::Approved,
        "C",
        None,
        t0,
    )
    .await;
    postback_at(
        &s,
        source,
        &ids[0],
        Some("10.00"),
        "USD",
        Status::Refunded,
        "A",
        None,
        t0 + 100_000_000,
    )
    .await;
    let queries = [
        "group_by=day&from=2026-11-05&to=2026-11-07&time_basis=click",
        "group_by=day&from=2026-11-05&to=2026-11-07&time_basis=conversion",
        "group_by=source,campaign&from=2026-11-05&to=2026-11-07",
        "group_by=sub1,event&from=2026-11-05&to=2026-11-07&tz=Asia/Kolkata",
    ];
    let mut before = Vec::new();
    for q in queries {
        before.push(report(&s, q).await);
    }
    assert_eq!(before[0]["totals"]["clicks"], 6, "{}", before[0]);
    s.stop().await;

    // Make it the database of an older build: no roll-ups, no marker, no
    // placement on the conversions.
    {
        let db = redb::Database::create(dir.path().join("postbackd.redb")).unwrap();
        let txn = db.begin_write().unwrap();
        txn.delete_table(postbackd::store::ROLLUPS).unwrap();
        txn.open_table(postbackd::store::META)
            .unwrap()
            .remove("rollups_built")
            .unwrap();
        {
            let mut t = txn.open_table(CONVERSIONS).unwrap();
            let rows: Vec<(String, ConversionRecord)> = t
                .iter()
                .unwrap()
                .map(|r| {
                    let (k, v) = r.unwrap();
                    (k.value().to_string(), records::decode(v.value()).unwrap())
                })
                .collect();
            for (k, mut c) in rows {
                c.rollup_dims.clear();
                c.rollup_bucket = 0;
                t.insert(k.as_str(), records::encode(&c).as_slice())
                    .unwrap();
            }
        }
        txn.commit().unwrap();
    }
    let s = TestServer::start_at(dir.path(), |_| {}).await;
    for (q, want) in queries.iter().zip(&before) {
        let got = report(&s, q).await;
        assert_eq!(got["rows"], want["rows"], "{q}");
        assert_eq!(got["totals"], want["totals"], "{q}");
    }
    // A status change after the rebuild moves what the rebuild counted.
    postback_at(
        &s,
        source,
        &ids[1],
        Some("4.00"),
        "EUR",
        Status::Chargeback,
        "B",
        None,
        t0 + 100_000_000,
    )
    .await;
    let r = report(&s, queries[0]).await;
    assert_eq!(r["totals"]["refunds"], 2, "{r}");
    let mut before = Vec::new();
    for q in queries {
        before.push(report(&s, q).await);
    }
    s.stop().await;

    // Make it a database of the first roll-up layout: 15-minute rows only
    // (prefixes under 16). Its hour and day rows are built from those at
    // the next start.
    {
        let db = redb::Database::create(dir.path().join("postbackd.redb")).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let mut t = txn.open_table(postbackd::store::ROLLUPS).unwrap();
            t.retain_in::<&[u8], _>(&[16u8][..].., |_, _| false)
                .unwrap();
            txn.open_table(postbackd::store::META)
                .unwrap()
                .insert("rollups_built", [1u8].as_slice())
                .unwrap();
        }
        txn.commit().unwrap();
    }
    let s = TestServer::start_at(dir.path(), |_| {}).await;
    for (q, want) in queries.iter().zip(&before) {
        let got = report(&s, q).await;
        assert_eq!(got["rows"], want["rows"], "{q}");
        assert_eq!(got["totals"], want["totals"], "{q}");
        same_as_quarter_rows(&s, q).await;
    }
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn coarse_rows_equal_quarter_rows_for_any_range_and_zone() {
    let s = TestServer::start().await;
    let src = s.source(json!({"name": "net"})).await;
    let source = src["id"].as_u64().unwrap();
    for slug in ["a", "b"] {
        s.link(
            json!({"slug": slug, "destination": "https://offer.example/?s={click_id}",
                      "source": source, "campaign": format!("c{slug}"), "subs": {"sub1": "zone"}}),
        )
        .await;
    }
    // Seventeen days from the day before New York's fall-back
    // (2026-11-01), so reports read whole weeks of the sub-ID cube too;
    // many clicks a job so that one batch merges many increments per row.
    const DAYS: u64 = 17;
    let start = ms("2026-10-31T00:00:00Z");
    let mut rng = Rng(0x1234_5678_9abc_def1);
    let mut ids = Vec::new();
    for _ in 0..12 {
        let mut writes = Vec::new();
        for _ in 0..40 {
            let slug = rng.pick(&["a", "b"]);
            let at = start + rng.below(DAYS * 1440) * 60_000;
            let id = ids::new_id(at);
            let rec = ClickRecord {
                ms: at,
                slug: slug.into(),
                source_id: Some(source),
                campaign: Some(format!("c{slug}")),
                ip: "198.51.100.4".into(),
                device: rng.pick(&["desktop", "mobile"]).into(),
                unique: rng.below(2) == 0,
                subs: vec![rng.pick(&["z1", "z2", "z3"]).to_string()],
                ..Default::default()
            };
            writes.push(ClickWrite::new(id.clone(), &rec));
            ids.push((id, at));
        }
        s.app
            .store
            .write(move |ctx| {
                for w in writes {
                    ingest::record_click(ctx, w)?.expect("no external ID in this test");
                }
                Ok(())
            })
            .await
            .unwrap();
    }
    for n in 0..60 {
        let (id, at) = ids[rng.below(ids.len() as u64) as usize].clone();
        let t = at + rng.below(20) * 3_600_000;
        let tx = format!("D{n}");
        postback_at(
            &s,
            source,
            &id,
            Some("3.30"),
            "USD",
            Status::Pending,
            &tx,
            None,
            t,
        )
        .await;
        if rng.below(2) == 0 {
            postback_at(
                &s,
                source,
                &id,
                Some("3.30"),
                "USD",
                Status::Approved,
                &tx,
                None,
                t + 5_400_000,
            )
            .await;
        }
    }
    for _ in 0..60 {
        let tz = rng.pick(&["UTC", "Asia/Kolkata", "Asia/Kathmandu", "America/New_York"]);
        let basis = rng.pick(&["click", "conversion"]);
        let group = rng.pick(&[
            "day",
            "hour",
            "sub1",
            "campaign,day",
            "week",
            "month,device",
            "event,hour",
        ]);
        let b0 = rng.below(DAYS * 96);
        let b1 = b0 + 1 + rng.below(DAYS * 96 - b0 + 8);
        let at = |b: u64| {
            jiff::Timestamp::from_millisecond((start + b * 900_000) as i64)
                .unwrap()
                .to_string()
        };
        let mut q = format!(
            "group_by={group}&from={}&to={}&tz={tz}&time_basis={basis}&limit=10000",
            at(b0),
            at(b1)
        );
        if rng.below(3) == 0 {
            q.push_str("&filter.sub1=z2");
        }
        same_as_quarter_rows(&s, &q).await;
    }
    // The whole span by zone: week rows of the sub-ID cube in the middle.
    for tz in ["UTC", "Asia/Kolkata", "America/New_York"] {
        let q = format!("group_by=sub1,event&from=2026-10-31&to=2026-11-16&tz={tz}");
        let (coarse, quarters) = same_as_quarter_rows(&s, &q).await;
        // Three zones × two events at most per week or day row: the coarse
        // read is a small fraction of the 15-minute one.
        assert!(
            coarse * 4 < quarters,
            "{q}: {coarse} rows, {quarters} from 15-minute rows"
        );
    }
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_batch_counts_nothing() {
    let s = TestServer::start().await;
    s.link(json!({"slug": "f", "destination": "https://offer.example/?s={click_id}"}))
        .await;
    let at = ms("2026-11-20T10:00:00Z");
    let w = ClickWrite::new(
        ids::new_id(at),
        &ClickRecord {
            ms: at,
            slug: "f".into(),
            ip: "198.51.100.5".into(),
            ..Default::default()
        },
    );
    let r: Result<(), _> = s
        .app
        .store
        .write(move |ctx| {
            ingest::record_click(ctx, w)?.expect("no external ID in this test");
            Err(postbackd::store::StoreError::Unavailable("injected".into()))
        })
        .await;
    assert!(r.is_err());
    let rep = report(&s, "group_by=day&from=2026-11-20&to=2026-11-20").await;
    assert_eq!(rep["totals"]["clicks"], 0, "{rep}");
    // The next batch counts only its own click.
    let w = ClickWrite::new(
        ids::new_id(at),
        &ClickRecord {
            ms: at,
            slug: "f".into(),
            ip: "198.51.100.5".into(),
            ..Default::default()
        },
    );
    s.app
        .store
        .write(move |ctx| ingest::record_click(ctx, w))
        .await
        .unwrap()
        .expect("no external ID in this test");
    let rep = report(&s, "group_by=day&from=2026-11-20&to=2026-11-20").await;
    assert_eq!(rep["totals"]["clicks"], 1, "{rep}");
    s.stop().await;
}
