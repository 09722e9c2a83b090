//! The postback-health commands: `postbackd doctor URL` (the doctor's
//! findings for a pasted postback URL) and `postbackd replay --source 3
//! --result missing_click_id --since ...` (a bulk replay, followed to the
//! end). Both call the running server's admin API.

use clap::Args;
use hyper::Method;
use serde_json::{Value, json};

use super::{Remote, admin, strip_nulls};

#[derive(Args, Debug)]
pub struct DoctorArgs {
    /// The postback URL as pasted into the network (quote it: & and # are
    /// special to the shell).
    pub url: String,
    /// The source the URL is meant for (ID).
    #[arg(long)]
    pub source: Option<u64>,
    #[command(flatten)]
    pub remote: Remote,
}

#[derive(Args, Debug)]
pub struct ReplayArgs {
    /// Source ID whose stored postbacks to replay.
    #[arg(long)]
    pub source: u64,
    /// Only events with this result (e.g. missing_click_id).
    #[arg(long)]
    pub result: Option<String>,
    /// RFC 3339 time or Unix seconds (default: the beginning).
    #[arg(long)]
    pub since: Option<String>,
    /// RFC 3339 time or Unix seconds, exclusive (default: now).
    #[arg(long)]
    pub until: Option<String>,
    /// Print the job and return without waiting for it to finish.
    #[arg(long)]
    pub no_wait: bool,
    #[command(flatten)]
    pub remote: Remote,
}

/// Print the findings; an error (exit status 1) when there are any, so a
/// script can check a URL.
pub async fn doctor(a: &DoctorArgs) -> Result<(), String> {
    let body = strip_nulls(json!({"url": a.url, "source": a.source}));
    let v = admin(&a.remote, Method::POST, "/api/v1/doctor", Some(&body)).await?;
    let findings = v["findings"].as_array().cloned().unwrap_or_default();
    if findings.is_empty() {
        println!("no problems found");
        return Ok(());
    }
    for f in &findings {
        let param = f["param"]
            .as_str()
            .map(|p| format!(" [{p}]"))
            .unwrap_or_default();
        println!(
            "{}{param}: {}\n  fix: {}",
            f["code"].as_str().unwrap_or(""),
            f["message"].as_str().unwrap_or(""),
            f["fix"].as_str().unwrap_or("")
        );
    }
    Err(format!("{} problem(s) found", findings.len()))
}

fn progress(v: &Value) -> String {
    format!(
        "replay job {}: {} (scanned {}, replayed {}, created {}, matched {}, unchanged {}, updated {}, still refused {})",
        v["id"],
        v["state"].as_str().unwrap_or(""),
        v["scanned"],
        v["replayed"],
        v["created"],
        v["matched"],
        v["unchanged"],
        v["updated"],
        v["still_refused"]
            .as_object()
            .map_or(0, |m| m.values().filter_map(Value::as_u64).sum::<u64>())
    )
}

/// Start a bulk replay and follow it to the end.
pub async fn replay(a: &ReplayArgs) -> Result<(), String> {
    let body = strip_nulls(json!({
        "source": a.source,
        "result": a.result,
        "since": a.since,
        "until": a.until,
    }));
    let mut v = admin(
        &a.remote,
        Method::POST,
        "/api/v1/events/replay",
        Some(&body),
    )
    .await?;
    let id = v["id"]
        .as_u64()
        .ok_or("the server answered without a job ID")?;
    while !a.no_wait && v["state"] == "running" {
        println!("{}", progress(&v));
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        v = admin(
            &a.remote,
            Method::GET,
            &format!("/api/v1/events/replay/{id}"),
            None,
        )
        .await?;
    }
    println!("{}", progress(&v));
    match v["state"].as_str() {
        Some("failed") => Err(v["error"].as_str().unwrap_or("the job failed").to_string()),
        _ => Ok(()),
    }
}
