//! Operations endpoints: `/api/v1/presets`, `/api/v1/stats` and
//! `/api/v1/backup` (a streamed snapshot of the database).

use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::{Response, StatusCode};
use serde_json::{Value, json};

use crate::app::App;
use crate::http::error::ApiError;
use crate::http::{ChannelBody, Resp, json_response};
use crate::inbound::presets;
use crate::manage::records;

pub fn list_presets() -> Resp {
    let items: Vec<Value> = presets::all()
        .iter()
        .map(|p| {
            json!({
                "id": p.id,
                "name": p.name,
                "macro_syntax": p.syntax.as_str(),
                "click_id_param": p.param_for("click_id"),
                "postback_query": p.postback_query(),
                "notes": p.notes,
            })
        })
        .collect();
    json_response(StatusCode::OK, &json!({"items": items}))
}

pub async fn stats(app: &App) -> Result<Resp, ApiError> {
    let s = records::stats(app).await?;
    let per_commit = |v: u64| {
        if s.commits == 0 {
            0.0
        } else {
            v as f64 / s.commits as f64
        }
    };
    Ok(json_response(
        StatusCode::OK,
        &json!({
            "clicks": s.clicks,
            "conversions": s.conversions,
            "events": s.events,
            "commits": s.commits,
            "committed_writes": s.committed_writes,
            "avg_batch": per_commit(s.committed_writes),
            "max_batch": s.max_batch,
            "failed_commits": s.failed_commits,
            "avg_commit_ms": per_commit(s.commit_micros) / 1000.0,
        }),
    ))
}

/// `POST /api/v1/backup`: a consistent snapshot of the database, streamed
/// as a redb file. Restore: stop the server, put the file in place of
/// `postbackd.redb` in the data dir, start it.
pub async fn backup(app: &App) -> Result<Resp, ApiError> {
    use tokio::io::AsyncReadExt;
    let (tmp, records) = records::snapshot(app).await?;
    let io_err = |e: std::io::Error| {
        tracing::error!(error = %e, "backup file");
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "the snapshot could not be read back; check disk space and retry",
        )
    };
    let mut file = tokio::fs::File::open(&tmp).await.map_err(io_err)?;
    let len = file.metadata().await.map_err(io_err)?.len();
    // Unlinked now; the open handle keeps the data until the stream ends.
    let _ = tokio::fs::remove_file(&tmp).await;
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    tokio::spawn(async move {
        loop {
            let mut buf = vec![0u8; 256 * 1024];
            match file.read(&mut buf).await {
                Ok(0) => break,
                Ok(n) => {
                    buf.truncate(n);
                    if tx.send(Ok(bytes::Bytes::from(buf))).await.is_err() {
                        break;
                    }
                }
                Err(e) => {
                    let _ = tx.send(Err(e)).await;
                    break;
                }
            }
        }
    });
    let mut r = Response::new(http_body_util::BodyExt::boxed(ChannelBody(rx)));
    let h = r.headers_mut();
    h.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    h.insert(hyper::header::CONTENT_LENGTH, HeaderValue::from(len));
    h.insert("x-postbackd-records", HeaderValue::from(records));
    Ok(r)
}
