//! `postbackd report` (an aligned table, or CSV) and `postbackd cost
//! import FILE.csv` (one cost update per row), through the running
//! server's admin API.

use hyper::Method;
use serde_json::{Value, json};

use super::{Remote, admin, token};
use crate::util::client::HttpClient;

/// The columns the table shows after the group-by dimensions (the CSV has
/// every metric).
const TABLE_METRICS: &[&str] = &[
    "clicks",
    "conversions",
    "revenue",
    "cost",
    "profit",
    "roi",
    "cr",
    "epc",
];

#[allow(clippy::too_many_arguments)]
pub async fn report(
    remote: &Remote,
    group_by: &str,
    from: Option<&str>,
    to: Option<&str>,
    tz: Option<&str>,
    time_basis: Option<&str>,
    filters: &[String],
    sort: Option<&str>,
    format: &str,
) -> Result<(), String> {
    let mut q = form_urlencoded::Serializer::new(String::new());
    q.append_pair("group_by", group_by);
    for (k, v) in [
        ("from", from),
        ("to", to),
        ("tz", tz),
        ("time_basis", time_basis),
        ("sort", sort),
    ] {
        if let Some(v) = v {
            q.append_pair(k, v);
        }
    }
    for f in filters {
        let (k, v) = f
            .split_once('=')
            .ok_or_else(|| format!("--filter takes DIMENSION=VALUE, got `{f}`"))?;
        q.append_pair(&format!("filter.{k}"), v);
    }
    match format {
        "csv" => {
            q.append_pair("format", "csv");
            let url = format!(
                "{}/api/v1/reports?{}",
                remote.server.trim_end_matches('/'),
                q.finish()
            );
            let auth = format!("Bearer {}", token(remote)?);
            let r = HttpClient::new()
                .send(Method::GET, &url, &[("authorization", &auth)], None)
                .await?;
            if r.status != 200 {
                let v = r.json();
                return Err(format!(
                    "{} {}: {}",
                    r.status,
                    v["error"].as_str().unwrap_or("error"),
                    v["message"].as_str().unwrap_or("")
                ));
            }
            print!("{}", String::from_utf8_lossy(&r.body));
            Ok(())
        }
        "table" => {
            let v = admin(
                remote,
                Method::GET,
                &format!("/api/v1/reports?{}", q.finish()),
                None,
            )
            .await?;
            print!("{}", table(&v));
            Ok(())
        }
        _ => Err("--format must be table or csv".into()),
    }
}

fn cell(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The report as an aligned text table: dimensions left-aligned, numbers
/// right-aligned, a totals line last.
pub fn table(v: &Value) -> String {
    let dims: Vec<String> = v["group_by"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|d| d.as_str().map(str::to_string))
        .collect();
    let mut header: Vec<String> = dims.clone();
    header.extend(TABLE_METRICS.iter().map(|m| m.to_string()));
    let mut lines: Vec<Vec<String>> = vec![header];
    for r in v["rows"].as_array().into_iter().flatten() {
        let mut line: Vec<String> = dims.iter().map(|d| cell(&r[d])).collect();
        line.extend(TABLE_METRICS.iter().map(|m| cell(&r[*m])));
        lines.push(line);
    }
    let mut total: Vec<String> = dims
        .iter()
        .enumerate()
        .map(|(i, _)| {
            if i == 0 {
                "total".into()
            } else {
                String::new()
            }
        })
        .collect();
    total.extend(TABLE_METRICS.iter().map(|m| cell(&v["totals"][*m])));
    lines.push(total);
    let widths: Vec<usize> = (0..lines[0].len())
        .map(|c| {
            lines
                .iter()
                .map(|l| l[c].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = format!(
        "{} to {} ({}, money in {}, time basis {})\n",
        cell(&v["from"]),
        cell(&v["to"]),
        cell(&v["tz"]),
        cell(&v["currency"]),
        cell(&v["time_basis"])
    );
    for l in &lines {
        let cells: Vec<String> = l
            .iter()
            .enumerate()
            .map(|(c, s)| {
                if c < dims.len() {
                    format!("{s:<w$}", w = widths[c])
                } else {
                    format!("{s:>w$}", w = widths[c])
                }
            })
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    for w in v["warnings"].as_array().into_iter().flatten() {
        out.push_str(&format!("warning: {}\n", cell(w)));
    }
    out
}

/// One CSV line's fields (RFC 4180 quotes).
fn csv_fields(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            ('"', _) => quoted = !quoted,
            (',', false) => out.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    out.push(cur);
    out
}

/// The columns of a cost import file (a header line names them; order is
/// free; unknown columns are refused).
pub const COST_COLUMNS: &[&str] = &[
    "from", "to", "tz", "link", "campaign", "source", "amount", "currency", "sub1", "sub2", "sub3",
    "sub4", "sub5", "country",
];

/// The request body of one cost-import row.
pub fn cost_row(header: &[String], fields: &[String]) -> Result<Value, String> {
    let mut body = json!({});
    let mut filter = serde_json::Map::new();
    for (h, v) in header.iter().zip(fields) {
        let v = v.trim();
        if v.is_empty() {
            continue;
        }
        match h.as_str() {
            "source" => {
                body["source"] = json!(
                    v.parse::<u64>()
                        .map_err(|_| format!("source must be a source id, got `{v}`"))?
                )
            }
            "sub1" | "sub2" | "sub3" | "sub4" | "sub5" | "country" => {
                filter.insert(h.clone(), json!(v));
            }
            _ => body[h.as_str()] = json!(v),
        }
    }
    if !filter.is_empty() {
        body["filter"] = Value::Object(filter);
    }
    Ok(body)
}

pub async fn cost_import(remote: &Remote, file: &std::path::Path) -> Result<(), String> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let header: Vec<String> = csv_fields(lines.next().ok_or("the file is empty")?)
        .into_iter()
        .map(|h| h.trim().to_ascii_lowercase())
        .collect();
    if let Some(bad) = header.iter().find(|h| !COST_COLUMNS.contains(&h.as_str())) {
        return Err(format!(
            "unknown column `{bad}`; the columns are: {}",
            COST_COLUMNS.join(", ")
        ));
    }
    let (mut ok, mut failed) = (0, 0);
    for (n, line) in lines.enumerate() {
        let row = n + 2;
        let result = match cost_row(&header, &csv_fields(line)) {
            Ok(body) => admin(remote, Method::POST, "/api/v1/costs", Some(&body)).await,
            Err(e) => Err(e),
        };
        match result {
            Ok(v) => {
                ok += 1;
                println!(
                    "line {row}: {} {} set on {} clicks",
                    cell(&v["amount"]),
                    cell(&v["currency"]),
                    cell(&v["matched_clicks"])
                );
            }
            Err(e) => {
                failed += 1;
                eprintln!("line {row}: {e}");
            }
        }
    }
    println!("{ok} cost updates applied, {failed} refused");
    if failed > 0 {
        return Err(format!("{failed} rows were refused (see above)"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_lines_and_rows() {
        assert_eq!(
            csv_fields("a,\"b,c\",\"d\"\"e\","),
            ["a", "b,c", "d\"e", ""]
        );
        let h: Vec<String> = ["from", "to", "link", "amount", "sub1"]
            .map(String::from)
            .to_vec();
        let f: Vec<String> = ["2026-12-01", "2026-12-01", "spring", "12.50", "zone7"]
            .map(String::from)
            .to_vec();
        assert_eq!(
            cost_row(&h, &f).unwrap(),
            json!({"from": "2026-12-01", "to": "2026-12-01", "link": "spring",
                   "amount": "12.50", "filter": {"sub1": "zone7"}})
        );
    }

    #[test]
    fn table_aligns_numbers_right() {
        let v = json!({"group_by": ["campaign"], "from": "2026-12-01", "to": "2026-12-01",
            "tz": "UTC", "currency": "USD", "time_basis": "click",
            "rows": [{"campaign": "spring", "clicks": 120, "conversions": 3, "revenue": "37.50",
                      "cost": "6.00", "profit": "31.50", "roi": "5.2500", "cr": "0.0250", "epc": "0.3125"},
                     {"campaign": null, "clicks": 7, "conversions": 0, "revenue": "0.00",
                      "cost": "0.00", "profit": "0.00", "roi": null, "cr": "0.0000", "epc": "0.0000"}],
            "totals": {"clicks": 127, "conversions": 3, "revenue": "37.50", "cost": "6.00",
                       "profit": "31.50", "roi": "5.2500", "cr": "0.0236", "epc": "0.2953"},
            "warnings": []});
        let t = table(&v);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines[1].split_whitespace().next(), Some("campaign"));
        assert!(lines[2].starts_with("spring"), "{t}");
        assert!(lines[3].starts_with("-"), "{t}");
        assert!(lines[4].starts_with("total"), "{t}");
        // Right-aligned: the clicks column ends at the same place.
        let end = |l: &str, s: &str| l.find(s).map(|i| i + s.len());
        assert_eq!(end(lines[2], " 120"), end(lines[3], "   7"), "{t}");
    }
}
