use hyper::Method;
use postbackd::inbound::presets;
use serde_json::json;

use crate::util::{TestServer, text};

/// Each preset maps a realistic postback of its network: the click is
/// matched, the amount, transaction ID and status come from the network's
/// own parameter names.
#[tokio::test(flavor = "multi_thread")]
async fn every_preset_maps_its_networks_postback() {
    let s = TestServer::start().await;
    for p in presets::all() {
        let (src, slug) = s
            .source_and_link(json!({"name": p.name, "preset": p.id}))
            .await;
        // The generated postback URL uses the network's macro syntax.
        let url = src["postback_url"].as_str().unwrap();
        let click_macro = p.syntax.wrap(p.macro_for("click_id").unwrap());
        assert!(
            url.contains(&format!("click_id={click_macro}")),
            "{}: {url}",
            p.id
        );

        let click = s.click(&slug, "").await;
        let query = p.example_query.replace("CLICKID", &click);
        let r = s.postback(&src, &query).await;
        assert_eq!(r.status, 200, "{}: {query}: {}", p.id, text(&r));
        let v = r.json();
        assert_eq!(v["result"], "matched", "{}: {v}", p.id);
        assert_eq!(v["click_id"], click.as_str());

        let pairs: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect();
        let value_of = |field: &str| {
            let name = p.param_for(field).unwrap_or(field);
            pairs
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.clone())
        };
        let conv = s
            .admin(
                Method::GET,
                &format!(
                    "/api/v1/conversions/{}",
                    v["conversion_id"].as_str().unwrap()
                ),
                None,
            )
            .await
            .json();
        let amount = value_of("amount").expect("example carries an amount");
        assert_eq!(conv["amount"], amount.as_str(), "{}", p.id);
        assert_eq!(conv["type"], "purchase", "{}", p.id);
        let txid = value_of("transaction_id").expect("example carries a transaction id");
        assert_eq!(conv["transaction_id"], txid.as_str(), "{}", p.id);
        let expected_status = value_of("status")
            .map(|raw| p.map_status(&raw).unwrap())
            .unwrap_or("approved");
        assert_eq!(conv["status"], expected_status, "{}", p.id);
        if let Some(cur) = value_of("currency") {
            assert_eq!(conv["currency"], cur.to_uppercase().as_str(), "{}", p.id);
        }

        // The same postback again is a duplicate.
        let again = s.postback(&src, &query).await;
        assert_eq!(again.json()["result"], "duplicate", "{}", p.id);
    }
}

/// Everflow's `transaction_id` is the click's; a lead and a later sale share
/// it. Deduping on it would answer the sale "duplicate" and lose it.
#[tokio::test(flavor = "multi_thread")]
async fn everflow_lead_then_sale_on_one_click_are_two_conversions() {
    let s = TestServer::start().await;
    let (src, slug) = s
        .source_and_link(json!({"name": "ef", "preset": "everflow"}))
        .await;
    let click = s.click(&slug, "").await;
    let lead = s
        .postback(
            &src,
            &format!("sub1={click}&payout=0&transaction_id=CLICKTX&conversion_id=c1&event=Lead"),
        )
        .await;
    assert_eq!(lead.json()["result"], "matched", "{}", text(&lead));
    let sale = s
        .postback(
            &src,
            &format!("sub1={click}&payout=25&transaction_id=CLICKTX&conversion_id=c2&event=Sale"),
        )
        .await;
    assert_eq!(sale.json()["result"], "matched", "{}", text(&sale));
    assert_eq!(sale.json()["type"], "purchase");
    let again = s
        .postback(
            &src,
            &format!("sub1={click}&payout=25&transaction_id=CLICKTX&conversion_id=c2&event=Sale"),
        )
        .await;
    assert_eq!(again.json()["result"], "duplicate");
}
