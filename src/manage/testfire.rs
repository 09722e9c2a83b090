//! Test-fire from the dashboard: one click on a link of the source, then
//! a postback for that click built from the source's own mapping, through
//! the same click builder (`manage::clicks`) and the same postback
//! normalizer and writer job (`inbound::postback::parse`,
//! `ingest::record_postback`) as real traffic. The verdict is the one a
//! real postback would get, and both land in the events log and the
//! reports like any other (the click carries `utm_source=postbackd-test`).
//! Signing and IP allowlists are the network's transport, not tested here:
//! the request never leaves the server.

use serde_json::{Map, Value};

use super::{Error, clicks, links, sources};
use crate::app::App;
use crate::inbound::postback;
use crate::ingest::{self, RawRequest};
use crate::util::clock::now_ms;

/// The user agent of test-fire clicks and postbacks.
pub const AGENT: &str = "postbackd test-fire (dashboard)";

/// What a test-fire did.
#[derive(Debug, Clone)]
pub struct TestFire {
    pub slug: String,
    pub click_id: String,
    /// The postback's query string, as a network would have sent it.
    pub query: String,
    pub event_id: String,
    /// `matched`, `duplicate`, ... or the refusal's error code.
    pub result: String,
    /// The refusal's sentence, when refused.
    pub message: Option<String>,
    pub http_status: u16,
}

pub async fn fire(
    app: &App,
    source_id: u64,
    link: Option<&str>,
    amount: &str,
) -> Result<TestFire, Error> {
    let source = sources::get(app, source_id)?;
    let slug = match link {
        Some(l) => links::get(app, l)?.slug.clone(),
        None => links::list(app)
            .into_iter()
            .find(|l| l.rec.source_id == Some(source_id))
            .map(|l| l.slug.clone())
            .ok_or_else(|| {
                Error::invalid(
                    "no_link",
                    "this source has no tracking link: create one on the Links page with this source, then fire again",
                )
            })?,
    };
    let mut params = Map::new();
    params.insert("utm_source".into(), Value::String("postbackd-test".into()));
    let (click_id, _) = clicks::create(
        app,
        clicks::ClickIn {
            link: Some(slug.clone()),
            user_agent: Some(AGENT.into()),
            params: Some(params),
            ..Default::default()
        },
    )
    .await?;
    // The postback the network would send: the source's parameter names.
    let name = |field: &str| {
        source
            .mapping
            .params
            .get(field)
            .map_or(field, String::as_str)
            .to_string()
    };
    // (The serializer is not Send: built and finished in one expression.)
    let query = form_urlencoded::Serializer::new(String::new())
        .append_pair(&name("click_id"), &click_id)
        .append_pair(&name("amount"), amount)
        .append_pair(&name("transaction_id"), &format!("test-{click_id}"))
        .finish();
    let parsed = postback::parse(
        &postback::Request {
            query: query.as_bytes(),
            content_type: None,
            body: &[],
        },
        &source.mapping,
        &app.limits,
    );
    let raw = RawRequest {
        method: "GET".into(),
        path: format!("/p/{}", source.rec.key),
        query: query.clone(),
        content_type: None,
        body: Vec::new(),
        body_truncated: false,
        remote_ip: "127.0.0.1".into(),
        user_agent: Some(AGENT.into()),
    };
    let now = now_ms();
    let o = app
        .store
        .write(move |ctx| {
            ingest::record_postback(ctx, ingest::Postback::new(source_id, raw, parsed), now)
        })
        .await?;
    let message = match &o.answer {
        ingest::Answer::Rejected { message, .. } => Some(message.clone()),
        _ => None,
    };
    Ok(TestFire {
        slug,
        click_id,
        query,
        event_id: o.event_id.clone(),
        result: o.answer.result().to_string(),
        message,
        http_status: o.http_status,
    })
}
