//! Postbacks to a traffic source: a `postback` destination's config (a URL
//! template), how the template is expanded for a conversion, and the
//! request. The receiver's answers need no more than the shared status
//! rules.
//!
//! `GET` of the expanded `url_template` (see [`expand_postback`]), no body.

use hyper::Method;

use super::{
    Attempt, BuildError, Config, Event, Info, OutRequest, Platform, days, split_origin, with_origin,
};
use crate::tracking::template::{self, Placeholders};

pub(super) struct Postback;

static INFO: Info = Info {
    name: "postback",
    label: "the postback URL",
    // How long the caller keeps retrying a delivery.
    max_age: days(7),
    default_origin: None,
    required: &[(
        "url_template",
        "the traffic source's postback URL with tokens such as {click_id} and {amount}",
    )],
    optional: &[],
    secret_fields: &[],
};

impl Platform for Postback {
    fn info(&self) -> &'static Info {
        &INFO
    }

    fn validate(&self, config: Config<'_>) -> Result<(), String> {
        if let Some(t) = config.get("url_template") {
            crate::tracking::click::validate_destination(t).map_err(|e| {
                format!(
                    "config.url_template is not usable ({e}); tokens may appear only in the path \
                     and query, never in the scheme, host or port"
                )
            })?;
        }
        Ok(())
    }

    /// The template's origin: tokens never reach it (see
    /// [`expand_postback`]), so it is the host the request goes to.
    fn admin_url(&self, config: Config<'_>) -> Option<String> {
        split_origin(config.get("url_template")?).map(|(o, _)| o.to_string())
    }

    /// No limit of its own: an update about an old conversion (a chargeback
    /// weeks later) is as fresh as the change, and the caller bounds the
    /// retries with `max_age`.
    fn event_time(&self, _ev: &Event<'_>) -> Option<(u64, &'static str)> {
        None
    }

    fn build(&self, a: &Attempt<'_>) -> Result<OutRequest, BuildError> {
        let url = expand_postback(a.config.str("url_template"), a.ev);
        Ok(OutRequest {
            method: Method::GET,
            url: with_origin(&url, a.base_origin),
            headers: vec![],
            body: vec![],
        })
    }
}

/// Expand a postback `url_template` for one conversion. Tokens:
/// `{click_id}`, `{amount}`, `{currency}`, `{transaction_id}`, `{event}`
/// (custom event name, else `lead`/`purchase`), `{type}` (`lead`/`purchase`),
/// `{status}`, `{conversion_id}`, and any other `{name}`: the click's first
/// query parameter `name` (a traffic source's own click ID, `utm_source`...).
/// Values are percent-encoded (only RFC 3986 unreserved characters stay);
/// a missing value is empty. Only the part after the authority is touched,
/// so no value can change the scheme, host or port.
pub fn expand_postback(template: &str, ev: &Event<'_>) -> String {
    let c = ev.conversion;
    let lookup = |name: &str| -> Option<String> {
        match name {
            "click_id" => Some(c.click_id.clone()),
            "amount" => c.amount.clone(),
            "currency" => Some(c.currency.clone()),
            "transaction_id" => c.transaction_id.clone(),
            "event" => Some(
                c.event
                    .clone()
                    .filter(|e| !e.trim().is_empty())
                    .unwrap_or_else(|| c.kind.clone()),
            ),
            "type" => Some(c.kind.clone()),
            "status" => Some(c.status.clone()),
            "conversion_id" => Some(ev.conversion_id.to_string()),
            _ => ev.click.and_then(|cl| {
                cl.params
                    .iter()
                    .find(|(k, _)| k == name)
                    .map(|(_, v)| v.clone())
            }),
        }
    };
    template::expand(template, Placeholders::Braces, lookup).0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::forward::platforms::fixtures::*;
    use crate::forward::platforms::{Kind, admin_url, build, validate_config};
    use serde_json::json;

    #[test]
    fn postback_request() {
        let (c, cl) = (conversion(), click());
        let cfg = json!({"url_template":
            "https://ts.example/pb?cid={s2}&payout={amount}&cur={currency}&tx={transaction_id}&ev={event}&st={status}&id={conversion_id}&c={click_id}&m={missing}&raw={not%20a%20token}"});
        let r = build(Kind::Postback, &cfg, None, &ev(&c, Some(&cl)), None).unwrap();
        assert_eq!(r.method, Method::GET);
        assert!(r.body.is_empty() && r.headers.is_empty());
        assert_eq!(
            r.url,
            "https://ts.example/pb?cid=src%20click%2F1&payout=12.50&cur=USD&tx=tx%201%2F2&ev=purchase\
             &st=approved&id=cnv_01&c=0k2x9abcdefghjkmnpqrstvw&m=&raw={not%20a%20token}"
        );
        let r = build(
            Kind::Postback,
            &cfg,
            Some("http://127.0.0.1:7000"),
            &ev(&c, None),
            None,
        )
        .unwrap();
        assert!(
            r.url
                .starts_with("http://127.0.0.1:7000/pb?cid=&payout=12.50"),
            "{}",
            r.url
        );
    }

    #[test]
    fn postback_values_cannot_move_the_host() {
        let c = conversion();
        let mut cl = click();
        cl.params = vec![(s("x"), s("@evil.com/#?"))];
        let cfg = json!({"url_template": "https://ts.example/{x}"});
        let r = build(Kind::Postback, &cfg, None, &ev(&c, Some(&cl)), None).unwrap();
        assert_eq!(r.url, "https://ts.example/%40evil.com%2F%23%3F");
        for bad in [
            "https://{host}.example/pb",
            "https://ts.example:{port}/pb",
            "{scheme}://ts.example/pb",
            "https://user@ts.example/pb",
            "ftp://ts.example/",
        ] {
            assert!(
                validate_config(Kind::Postback, &json!({"url_template": bad})).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn postback_admin_url() {
        assert_eq!(
            admin_url(
                Kind::Postback,
                &json!({"url_template": "https://ts.example:8443/pb?c={click_id}"})
            )
            .as_deref(),
            Some("https://ts.example:8443")
        );
    }
}
