//! A report's metrics and its JSON and CSV forms.
//!
//! Money is exact (`rust_decimal`), converted into the report currency with
//! the admin's rates when the report is read; an amount in a currency
//! without a rate is reported under `unconverted`, never dropped or
//! guessed. Money is written with at least two decimals, ratios with four;
//! a ratio with a zero denominator is `null`.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use rust_decimal::{Decimal, RoundingStrategy};
use serde_json::{Map, Value, json};

use super::rates::Rates;
use super::{Grouped, Money, Params, TimeBasis};
use crate::store::rollup::Counters;

/// Every metric, in column order.
pub const METRICS: [&str; 21] = [
    "clicks",
    "unique_clicks",
    "bot_clicks",
    "conversions",
    "leads",
    "purchases",
    "pending_conversions",
    "refunds",
    "unmatched_conversions",
    "revenue",
    "pending_revenue",
    "refunded_revenue",
    "unmatched_revenue",
    "cost",
    "profit",
    "roi",
    "cr",
    "epc",
    "cpc",
    "cpa",
    "unconverted",
];

/// One computed row (or the totals).
#[derive(Debug, Clone)]
pub struct Metrics {
    pub ints: [i64; 9],
    /// revenue, pending_revenue, refunded_revenue, unmatched_revenue, cost
    /// in the report currency.
    pub money: [Decimal; 5],
    /// Per currency without a rate: its money fields, unconverted.
    pub unconverted: BTreeMap<String, [Decimal; 5]>,
}

fn money_of(c: &Counters) -> [Decimal; 5] {
    [
        c.revenue,
        c.pending_revenue,
        c.refunded_revenue,
        c.unmatched_revenue,
        c.cost,
    ]
}

impl Metrics {
    pub fn of(m: &Money, report_currency: &str, rates: &Rates) -> Metrics {
        let mut out = Metrics {
            ints: [0; 9],
            money: [Decimal::ZERO; 5],
            unconverted: BTreeMap::new(),
        };
        for (cur, c) in m {
            for (k, v) in [
                c.clicks,
                c.unique_clicks,
                c.bot_clicks,
                c.conversions,
                c.leads,
                c.purchases,
                c.pending_conversions,
                c.refunds,
                c.unmatched_conversions,
            ]
            .into_iter()
            .enumerate()
            {
                out.ints[k] += v;
            }
            let money = money_of(c);
            if money.iter().all(Decimal::is_zero) {
                continue;
            }
            let rate = if cur.is_empty() || cur == report_currency {
                Some(Decimal::ONE)
            } else {
                rates.get(cur).copied()
            };
            match rate {
                Some(r) => {
                    for (acc, v) in out.money.iter_mut().zip(money) {
                        *acc += v * r;
                    }
                }
                None => {
                    let acc = out
                        .unconverted
                        .entry(cur.clone())
                        .or_insert([Decimal::ZERO; 5]);
                    for (a, v) in acc.iter_mut().zip(money) {
                        *a += v;
                    }
                }
            }
        }
        out
    }

    fn revenue(&self) -> Decimal {
        self.money[0]
    }
    fn cost(&self) -> Decimal {
        self.money[4]
    }
    fn clicks(&self) -> i64 {
        self.ints[0]
    }
    fn conversions(&self) -> i64 {
        self.ints[3]
    }

    /// A metric's value for sorting and output.
    pub fn value(&self, metric: &str) -> Value {
        let ratio = |n: Decimal, d: Decimal| -> Value {
            if d.is_zero() {
                Value::Null
            } else {
                json!(fmt_ratio(n / d))
            }
        };
        let profit = self.revenue() - self.cost();
        let clicks = Decimal::from(self.clicks());
        let conversions = Decimal::from(self.conversions());
        match metric {
            "profit" => json!(fmt_money(profit)),
            "roi" => ratio(profit, self.cost()),
            "cr" => ratio(conversions, clicks),
            "epc" => ratio(self.revenue(), clicks),
            "cpc" => ratio(self.cost(), clicks),
            "cpa" => ratio(self.cost(), conversions),
            "unconverted" => Value::Object(
                self.unconverted
                    .iter()
                    .filter(|(_, m)| !m[0].is_zero())
                    .map(|(c, m)| (c.clone(), json!(fmt_money(m[0]))))
                    .collect(),
            ),
            _ => match METRICS.iter().position(|m| *m == metric) {
                Some(i) if i < 9 => json!(self.ints[i]),
                Some(i) if i < 14 => json!(fmt_money(self.money[i - 9])),
                _ => Value::Null,
            },
        }
    }

    /// Every money field of every currency without a rate.
    pub fn unconverted_detail(&self) -> Value {
        let names = [
            "revenue",
            "pending_revenue",
            "refunded_revenue",
            "unmatched_revenue",
            "cost",
        ];
        Value::Object(
            self.unconverted
                .iter()
                .map(|(c, m)| {
                    let fields: Map<String, Value> = names
                        .iter()
                        .zip(m)
                        .filter(|(_, v)| !v.is_zero())
                        .map(|(n, v)| (n.to_string(), json!(fmt_money(*v))))
                        .collect();
                    (c.clone(), Value::Object(fields))
                })
                .collect(),
        )
    }
}

/// Exact money text with at least two decimals (`12.5` → `12.50`).
pub fn fmt_money(d: Decimal) -> String {
    let mut n = d.normalize();
    if n.scale() < 2 {
        n.rescale(2);
    }
    n.to_string()
}

/// A ratio to four places, half away from zero.
pub fn fmt_ratio(d: Decimal) -> String {
    let mut r = d.round_dp_with_strategy(4, RoundingStrategy::MidpointAwayFromZero);
    r.rescale(4);
    r.to_string()
}

/// A computed report.
pub struct Report {
    pub rows: Vec<(Vec<String>, Metrics)>,
    pub totals: Metrics,
    /// Rows before the limit.
    pub total_rows: usize,
}

fn compare(a: &Value, b: &Value) -> Ordering {
    let num = |v: &Value| -> Option<Decimal> {
        match v {
            Value::Number(n) => n.to_string().parse().ok(),
            Value::String(s) => s.parse().ok(),
            _ => None,
        }
    };
    match (num(a), num(b)) {
        (Some(x), Some(y)) => x.cmp(&y),
        (Some(_), None) => Ordering::Greater,
        (None, Some(_)) => Ordering::Less,
        (None, None) => Ordering::Equal,
    }
}

/// Compute, sort and cut the grouped counters.
pub fn build(g: Grouped, p: &Params, report_currency: &str, rates: &Rates) -> Report {
    // A group whose counters cancel out (a conversion approved and
    // refunded within the range, time basis `conversion`) has nothing to
    // show.
    let mut rows: Vec<(Vec<String>, Metrics)> = g
        .rows
        .iter()
        .filter(|(_, m)| !m.values().all(Counters::is_zero))
        .map(|(k, m)| (k.clone(), Metrics::of(m, report_currency, rates)))
        .collect();
    let by_dims = |a: &(Vec<String>, Metrics), b: &(Vec<String>, Metrics)| a.0.cmp(&b.0);
    match &p.sort {
        Some(s) if super::output::METRICS.contains(&s.as_str()) => {
            rows.sort_by(|a, b| compare(&a.1.value(s), &b.1.value(s)).then_with(|| by_dims(a, b)));
        }
        Some(s) => {
            let i = p.group_by.iter().position(|d| d.name() == s).unwrap_or(0);
            rows.sort_by(|a, b| a.0[i].cmp(&b.0[i]).then_with(|| by_dims(a, b)));
        }
        None => {
            // Time first, in order; otherwise the biggest traffic first.
            if p.group_by.iter().any(|d| matches!(d, super::Dim::Time(_))) {
                rows.sort_by(by_dims);
            } else {
                rows.sort_by(|a, b| b.1.clicks().cmp(&a.1.clicks()).then_with(|| by_dims(a, b)));
            }
        }
    }
    if p.descending && p.sort.is_some() {
        rows.reverse();
    }
    let total_rows = rows.len();
    rows.truncate(p.limit);
    Report {
        rows,
        totals: Metrics::of(&g.totals, report_currency, rates),
        total_rows,
    }
}

fn metrics_object(m: &Metrics) -> Map<String, Value> {
    let mut o = Map::new();
    for k in METRICS {
        o.insert(k.to_string(), m.value(k));
    }
    o
}

fn dim_value(v: &str) -> Value {
    if v.is_empty() { Value::Null } else { json!(v) }
}

/// The JSON answer.
pub fn json(r: &Report, p: &Params, report_currency: &str) -> Value {
    let group_by: Vec<&str> = p.group_by.iter().map(|d| d.name()).collect();
    let rows: Vec<Value> = r
        .rows
        .iter()
        .map(|(k, m)| {
            let mut o = metrics_object(m);
            for (d, v) in group_by.iter().zip(k) {
                o.insert(d.to_string(), dim_value(v));
            }
            Value::Object(o)
        })
        .collect();
    let mut warnings = Vec::new();
    for cur in r.totals.unconverted.keys() {
        warnings.push(format!(
            "amounts in {cur} have no rate and are reported under `unconverted`; set one with \
             PUT /api/v1/rates {{\"{cur}\": \"<one {cur} in {report_currency}>\"}}"
        ));
    }
    json!({
        "group_by": group_by,
        "from": p.range.from,
        "to": p.range.to,
        "tz": p.tz_name,
        "time_basis": match p.basis { TimeBasis::Click => "click", TimeBasis::Conversion => "conversion" },
        "currency": report_currency,
        "rows": rows,
        "total_rows": r.total_rows,
        "totals": Value::Object(metrics_object(&r.totals)),
        "unconverted": r.totals.unconverted_detail(),
        "warnings": warnings,
    })
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// The CSV answer: a header line, then the rows (no totals row: a
/// spreadsheet sums columns itself; `unconverted` as `EUR 12.00; ...`).
pub fn csv(r: &Report, p: &Params) -> String {
    let mut out = String::new();
    let mut header: Vec<&str> = p.group_by.iter().map(|d| d.name()).collect();
    header.extend(METRICS);
    out.push_str(&header.join(","));
    out.push('\n');
    for (k, m) in &r.rows {
        let mut cells: Vec<String> = k.iter().map(|v| csv_field(v)).collect();
        for metric in METRICS {
            let cell = match m.value(metric) {
                Value::Null => String::new(),
                Value::String(s) => s,
                Value::Object(o) => o
                    .iter()
                    .map(|(c, v)| format!("{c} {}", v.as_str().unwrap_or("")))
                    .collect::<Vec<_>>()
                    .join("; "),
                v => v.to_string(),
            };
            cells.push(csv_field(&cell));
        }
        out.push_str(&cells.join(","));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_and_ratio_text() {
        let d = |s: &str| s.parse::<Decimal>().unwrap();
        assert_eq!(fmt_money(d("12.5")), "12.50");
        assert_eq!(fmt_money(d("0")), "0.00");
        assert_eq!(fmt_money(d("1.234500")), "1.2345");
        assert_eq!(fmt_money(d("-3")), "-3.00");
        assert_eq!(fmt_ratio(d("1") / d("3")), "0.3333");
        assert_eq!(fmt_ratio(d("0.00005")), "0.0001");
        assert_eq!(fmt_ratio(d("2")), "2.0000");
    }

    #[test]
    fn conversion_with_and_without_rates() {
        let mut m = Money::new();
        let c = |rev: &str, cost: &str| Counters {
            clicks: 2,
            revenue: rev.parse().unwrap(),
            cost: cost.parse().unwrap(),
            ..Counters::default()
        };
        m.insert("".into(), c("0", "1.00"));
        m.insert("EUR".into(), c("10.00", "0"));
        m.insert("GBP".into(), c("5.00", "0"));
        let mut rates = Rates::new();
        rates.insert("EUR".into(), "1.08".parse().unwrap());
        let x = Metrics::of(&m, "USD", &rates);
        assert_eq!(x.value("clicks"), json!(6));
        assert_eq!(x.value("revenue"), json!("10.80"));
        assert_eq!(x.value("profit"), json!("9.80"));
        assert_eq!(x.value("roi"), json!("9.8000"));
        assert_eq!(x.value("cpa"), Value::Null);
        assert_eq!(x.value("unconverted"), json!({"GBP": "5.00"}));
    }
}
