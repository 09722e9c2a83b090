//! The test-fire commands: `postbackd test-postback` (a click through the
//! running server, a postback for it, a verdict) and `postbackd test-ipn`
//! (the same with the source's IPN format).

use hyper::Method;
use serde_json::{Value, json};

use super::{Remote, admin};
use crate::http::tracking::CLICK_ID_HEADER;
use crate::util::client::HttpClient;

/// The "test-fire": one click, one postback, a verdict.
/// Find SOURCE (ID, key or name), click its link (or `link`) through the
/// running server, and return (base URL, the source's JSON, the click ID).
async fn fresh_click(
    remote: &Remote,
    source: &str,
    link: Option<&str>,
    agent: &str,
    check: fn(&Value) -> Result<(), String>,
) -> Result<(String, Value, String), String> {
    let base = remote.server.trim_end_matches('/').to_string();
    let sources = admin(remote, Method::GET, "/api/v1/sources", None).await?;
    let src = sources["items"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|s| {
            s["id"].as_u64().is_some_and(|id| id.to_string() == source)
                || s["key"] == source
                || s["name"] == source
        })
        .cloned()
        .ok_or_else(|| format!("no source `{source}`; list them with `postbackd source list`"))?;
    check(&src)?;
    let links = admin(remote, Method::GET, "/api/v1/links", None).await?;
    let slug = match link {
        Some(l) => l.to_string(),
        None => links["items"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|l| l["source"] == src["id"])
            .and_then(|l| l["slug"].as_str().map(str::to_string))
            .ok_or_else(|| {
                format!(
                    "source {} has no link; create one with `postbackd link add URL --source {}` or pass --link SLUG",
                    src["id"], src["id"]
                )
            })?,
    };
    let http = HttpClient::new();
    let ua = format!("postbackd {agent}");
    let click = http
        .send(
            Method::GET,
            &format!("{base}/c/{slug}?utm_source=postbackd-test"),
            &[("user-agent", ua.as_str())],
            None,
        )
        .await?;
    let Some(click_id) = click.header(CLICK_ID_HEADER).map(str::to_string) else {
        println!(
            "\x1b[31mRED\x1b[0m the click on /c/{slug} was answered {} without a click ID: {}",
            click.status,
            String::from_utf8_lossy(&click.body)
        );
        return Err("test failed".into());
    };
    println!(
        "click {click_id} recorded; redirect: {}",
        click.header("location").unwrap_or("")
    );
    Ok((base, src, click_id))
}

/// `test-ipn`: a fresh click, then the server's own sample notification
/// for it (`POST /api/v1/sources/{id}/ipn-sample`, which holds the secret)
/// sent to the source's IPN URL as the network would.
pub(super) async fn test_ipn(
    remote: &Remote,
    source: &str,
    link: Option<&str>,
    amount: &str,
) -> Result<(), String> {
    let (base, src, click_id) = fresh_click(remote, source, link, "test-ipn", |src| {
        if src["ipn"].is_null() {
            return Err(format!(
                "source {} has no IPN settings; set them with PATCH /api/v1/sources/{} {{\"ipn\": {{\"format\", \"secret\"}}}}",
                src["id"], src["id"]
            ));
        }
        Ok(())
    })
    .await?;
    let format = src["ipn"]["format"].as_str().unwrap_or("").to_string();
    let sample = admin(
        remote,
        Method::POST,
        &format!("/api/v1/sources/{}/ipn-sample", src["id"]),
        Some(&json!({"click_id": click_id, "amount": amount})),
    )
    .await?;
    let content_type = sample["content_type"]
        .as_str()
        .unwrap_or("application/json");
    let body = sample["body"].as_str().unwrap_or("").as_bytes().to_vec();
    let http = HttpClient::new();
    let r = http
        .send(
            Method::POST,
            &format!("{base}/ipn/{}", src["key"].as_str().unwrap_or("")),
            &[
                ("user-agent", "postbackd test-ipn"),
                ("content-type", content_type),
            ],
            Some(body),
        )
        .await?;
    // Digistore24 is answered `OK`; the verdict is then in the event.
    let v = if r.status == 200 && r.body.as_ref() == b"OK" {
        let id = r.header("x-postbackd-event-id").unwrap_or("").to_string();
        let e = admin(remote, Method::GET, &format!("/api/v1/events/{id}"), None).await?;
        json!({"result": e["result"], "conversion_id": e["conversion_id"], "click_id": e["click_id"]})
    } else {
        r.json()
    };
    if r.status == 200 && v["result"] == "matched" && v["click_id"] == click_id.as_str() {
        println!(
            "\x1b[32mGREEN\x1b[0m {format} notification matched click {click_id}: conversion {}",
            v["conversion_id"].as_str().unwrap_or("")
        );
        Ok(())
    } else {
        println!(
            "\x1b[31mRED\x1b[0m {format} notification answered {} {}: {}",
            r.status,
            v["result"].as_str().or(v["error"].as_str()).unwrap_or(""),
            v["message"]
                .as_str()
                .unwrap_or(&String::from_utf8_lossy(&r.body))
        );
        Err("test failed".into())
    }
}

pub(super) async fn test_postback(
    remote: &Remote,
    source: &str,
    link: Option<&str>,
    amount: &str,
) -> Result<(), String> {
    let (base, src, click_id) =
        fresh_click(remote, source, link, "test-postback", |_| Ok(())).await?;
    let http = HttpClient::new();
    let click_param = src["effective_params"]["click_id"]
        .as_str()
        .unwrap_or("click_id");
    let amount_param = src["effective_params"]["amount"]
        .as_str()
        .unwrap_or("amount");
    let txid = format!("test-{click_id}");
    let url = format!(
        "{base}/p/{}?{}",
        src["key"].as_str().unwrap_or(""),
        form_urlencoded::Serializer::new(String::new())
            .append_pair(click_param, &click_id)
            .append_pair(amount_param, amount)
            .append_pair("transaction_id", &txid)
            .append_pair("postbackd_test", "1")
            .finish()
    );
    let pb = http
        .send(
            Method::GET,
            &url,
            &[("user-agent", "postbackd test-postback")],
            None,
        )
        .await?;
    let v = pb.json();
    if pb.status == 200 && v["result"] == "matched" && v["click_id"] == click_id.as_str() {
        println!(
            "\x1b[32mGREEN\x1b[0m postback matched click {click_id}: conversion {} ({}, status {})",
            v["conversion_id"].as_str().unwrap_or(""),
            v["type"].as_str().unwrap_or(""),
            v["status"].as_str().unwrap_or("")
        );
        Ok(())
    } else {
        println!(
            "\x1b[31mRED\x1b[0m postback answered {} {}: {}",
            pb.status,
            v["result"].as_str().or(v["error"].as_str()).unwrap_or(""),
            v["message"]
                .as_str()
                .unwrap_or(&String::from_utf8_lossy(&pb.body))
        );
        Err("test failed".into())
    }
}
