//! Command-line interface. `serve` runs the server; the other commands talk
//! to a running server's admin API (redb allows one process per file).

mod health;
mod reports;
mod testfire;
mod users;

use std::path::PathBuf;
use std::sync::Arc;

use clap::{Args, Parser, Subcommand};
use hyper::Method;
use serde_json::{Value, json};

use crate::app::App;
use crate::config::{self, Settings, TokenOrigin};
use crate::http::server;
use crate::util::client::HttpClient;

#[derive(Parser, Debug)]
#[command(
    name = "postbackd",
    version,
    about = "Self-hosted conversion tracker: tracking links, S2S postbacks, conversion forwarding"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the server (embedded defaults: ./postbackd-data, 127.0.0.1:8080).
    Serve(Box<ServeArgs>),
    /// Manage postback sources (affiliate network accounts).
    #[command(subcommand)]
    Source(SourceCmd),
    /// Manage tracking links.
    #[command(subcommand)]
    Link(LinkCmd),
    /// Manage forwarding destinations (Meta, Google Ads, GA4, TikTok, webhooks, postbacks).
    #[command(subcommand)]
    Destination(DestinationCmd),
    /// Inspect and replay deliveries to destinations.
    #[command(subcommand)]
    Delivery(DeliveryCmd),
    /// Manage dashboard users (admin or viewer).
    #[command(subcommand)]
    User(users::UserCmd),
    /// Save a consistent snapshot of the running server's database.
    Backup {
        /// File to write (a redb database; restore = stop the server and
        /// put it in place of postbackd.redb).
        #[arg(long)]
        out: PathBuf,
        #[command(flatten)]
        remote: Remote,
    },
    /// Export data from the running server.
    #[command(subcommand)]
    Export(ExportCmd),
    /// Compact the database file (offline: stop the server first).
    Compact {
        /// Data directory holding postbackd.redb.
        #[arg(long, env = "POSTBACKD_DATA_DIR", default_value = "./postbackd-data")]
        data_dir: PathBuf,
    },
    /// Click a link of SOURCE through the running server, fire a postback
    /// for that click and print a green/red verdict.
    /// Print a report: `postbackd report --group-by campaign,day --from 2026-11-01 --to 2026-11-30 --tz Asia/Kolkata`.
    Report {
        /// Up to three dimensions, comma-separated (day, campaign, source, country, sub1...).
        #[arg(long, default_value = "day")]
        group_by: String,
        /// First day (inclusive) or RFC 3339 instant.
        #[arg(long)]
        from: Option<String>,
        /// Last day (inclusive) or RFC 3339 instant (exclusive).
        #[arg(long)]
        to: Option<String>,
        /// IANA time zone of days and hours (default: the server's report_timezone).
        #[arg(long)]
        tz: Option<String>,
        /// click (conversions at their click's time) or conversion.
        #[arg(long)]
        time_basis: Option<String>,
        /// Narrow to DIMENSION=VALUE (repeatable), e.g. --filter country=IN.
        #[arg(long = "filter", value_name = "DIMENSION=VALUE")]
        filters: Vec<String>,
        /// Sort by a metric or dimension (descending).
        #[arg(long)]
        sort: Option<String>,
        /// table (aligned columns) or csv (every metric).
        #[arg(long, default_value = "table")]
        format: String,
        #[command(flatten)]
        remote: Remote,
    },
    /// Manage traffic costs.
    #[command(subcommand)]
    Cost(CostCmd),
    /// Check a postback URL as pasted into a network: every problem with its fix.
    Doctor(health::DoctorArgs),
    /// Replay stored postbacks of a source with its current mapping (after a fix).
    Replay(health::ReplayArgs),
    TestPostback {
        /// Source ID, key or name.
        source: String,
        /// Link slug to click (default: the source's first link).
        #[arg(long)]
        link: Option<String>,
        /// Amount to send (0 = a lead).
        #[arg(long, default_value = "1.00")]
        amount: String,
        #[command(flatten)]
        remote: Remote,
    },
    /// Click a link of SOURCE through the running server, send a valid IPN
    /// notification of the source's format (a sale) for that click to
    /// /ipn/KEY and print a green/red verdict.
    TestIpn {
        /// Source ID, key or name.
        source: String,
        /// Link slug to click (default: the source's first link).
        #[arg(long)]
        link: Option<String>,
        /// Amount of the sale.
        #[arg(long, default_value = "1.00")]
        amount: String,
        #[command(flatten)]
        remote: Remote,
    },
}

#[derive(Subcommand, Debug)]
pub enum CostCmd {
    /// Apply one cost update per CSV row: columns from, to, tz, link |
    /// campaign | source, amount, currency, sub1..sub5, country (a header
    /// line names them).
    Import {
        file: PathBuf,
        #[command(flatten)]
        remote: Remote,
    },
}

#[derive(Args, Debug, Default)]
pub struct ServeArgs {
    /// TOML config file.
    #[arg(long, env = "POSTBACKD_CONFIG")]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub settings: Settings,
}

/// How management commands reach the server.
#[derive(Args, Debug, Clone)]
pub struct Remote {
    /// The running server's base URL.
    #[arg(
        long,
        env = "POSTBACKD_SERVER",
        default_value = "http://127.0.0.1:8080",
        global = true
    )]
    pub server: String,
    /// Data dir whose admin_token file to use when POSTBACKD_ADMIN_TOKEN is unset.
    #[arg(
        long,
        env = "POSTBACKD_DATA_DIR",
        default_value = "./postbackd-data",
        global = true
    )]
    pub data_dir: PathBuf,
}

#[derive(Subcommand, Debug)]
pub enum SourceCmd {
    /// Create a source and print its postback URL.
    Add {
        name: String,
        /// Network preset (clickbank, impact, cj, everflow, cake, adtraction, hasoffers, voluum, keitaro, binom).
        #[arg(long)]
        preset: Option<String>,
        /// Parameter mapping, canonical=name (repeatable), e.g. --param click_id=subid.
        #[arg(long = "param", value_name = "FIELD=NAME")]
        params: Vec<String>,
        /// Status mapping, value=status (repeatable), e.g. --status sale=approved.
        #[arg(long = "status", value_name = "VALUE=STATUS")]
        statuses: Vec<String>,
        /// Default ISO 4217 currency.
        #[arg(long)]
        currency: Option<String>,
        #[command(flatten)]
        remote: Remote,
    },
    /// List sources.
    List {
        #[command(flatten)]
        remote: Remote,
    },
}

#[derive(Subcommand, Debug)]
pub enum LinkCmd {
    /// Create a tracking link to DESTINATION (use {click_id} or --CLICK-ID--).
    Add {
        destination: String,
        #[arg(long)]
        slug: Option<String>,
        /// Source ID the link's traffic converts through.
        #[arg(long)]
        source: Option<u64>,
        #[arg(long)]
        campaign: Option<String>,
        /// Parameter appended with the click ID when DESTINATION has no placeholder.
        #[arg(long)]
        param: Option<String>,
        /// A landing-page origin (https://lp.example.com) allowed to record
        /// clicks on this link with the page tag; repeat for more.
        #[arg(long = "tag-origin")]
        tag_origins: Vec<String>,
        #[command(flatten)]
        remote: Remote,
    },
    /// List links.
    List {
        #[command(flatten)]
        remote: Remote,
    },
}

#[derive(Subcommand, Debug)]
pub enum ExportCmd {
    /// Conversions, newest first, streamed to stdout page by page.
    Conversions {
        /// csv or ndjson.
        #[arg(long, default_value = "csv")]
        format: String,
        #[arg(long)]
        source: Option<u64>,
        #[arg(long)]
        status: Option<String>,
        /// RFC 3339 or Unix seconds.
        #[arg(long)]
        since: Option<String>,
        #[arg(long)]
        until: Option<String>,
        #[command(flatten)]
        remote: Remote,
    },
}

#[derive(Subcommand, Debug)]
pub enum DestinationCmd {
    /// Create a destination. CONFIG is the type's JSON settings, e.g.
    /// '{"pixel_id":"123","access_token":"EAAB..."}' for meta.
    Add {
        name: String,
        /// meta, google_ads, ga4, tiktok, webhook or postback.
        #[arg(long = "type")]
        kind: String,
        #[arg(long)]
        config: String,
        /// Replaces the platform endpoint's origin (proxies).
        #[arg(long)]
        base_url: Option<String>,
        /// Statuses to forward (repeatable; default approved).
        #[arg(long = "status")]
        statuses: Vec<String>,
        #[command(flatten)]
        remote: Remote,
    },
    /// List destinations with their delivery counters.
    List {
        #[command(flatten)]
        remote: Remote,
    },
}

#[derive(Subcommand, Debug)]
pub enum DeliveryCmd {
    /// List deliveries, newest first.
    List {
        /// pending, delivered or dead.
        #[arg(long)]
        state: Option<String>,
        #[arg(long)]
        destination: Option<u64>,
        #[command(flatten)]
        remote: Remote,
    },
    /// Queue a delivery again (after fixing the destination's config).
    Retry {
        id: String,
        #[command(flatten)]
        remote: Remote,
    },
    /// Queue every dead delivery (of one destination) again.
    RetryDead {
        #[arg(long)]
        destination: Option<u64>,
        #[command(flatten)]
        remote: Remote,
    },
}

/// Run a parsed command; the returned error is printed by `main`.
pub async fn run(cli: Cli) -> Result<(), String> {
    match cli.command {
        Command::Serve(args) => serve(*args).await,
        Command::Source(SourceCmd::Add {
            name,
            preset,
            params,
            statuses,
            currency,
            remote,
        }) => {
            let mut body = json!({"name": name});
            if let Some(p) = preset {
                body["preset"] = json!(p);
            }
            if !params.is_empty() {
                body["params"] = pairs_arg(&params, "--param")?;
            }
            if !statuses.is_empty() {
                body["status_map"] = pairs_arg(&statuses, "--status")?;
            }
            if let Some(c) = currency {
                body["default_currency"] = json!(c);
            }
            let s = admin(&remote, Method::POST, "/api/v1/sources", Some(&body)).await?;
            println!(
                "source {} created: {}",
                s["id"],
                s["name"].as_str().unwrap_or("")
            );
            println!(
                "postback URL (paste it into the network):\n  {}",
                s["postback_url"].as_str().unwrap_or("")
            );
            Ok(())
        }
        Command::Source(SourceCmd::List { remote }) => {
            each_page(&remote, "/api/v1/sources", |s| {
                println!(
                    "{}\t{}\t{}\t{}",
                    s["id"],
                    s["name"].as_str().unwrap_or(""),
                    s["preset"].as_str().unwrap_or("-"),
                    s["postback_url"].as_str().unwrap_or("")
                );
                Ok(())
            })
            .await
        }
        Command::Link(LinkCmd::Add {
            destination,
            slug,
            source,
            campaign,
            param,
            tag_origins,
            remote,
        }) => {
            let mut body = json!({"destination": destination, "slug": slug, "source": source, "campaign": campaign, "param": param});
            if !tag_origins.is_empty() {
                body["tag_origins"] = json!(tag_origins);
            }
            let body = strip_nulls(body);
            let l = admin(&remote, Method::POST, "/api/v1/links", Some(&body)).await?;
            println!(
                "link {} created: {}",
                l["slug"].as_str().unwrap_or(""),
                l["url"].as_str().unwrap_or("")
            );
            if !tag_origins.is_empty() {
                println!(
                    "page tag for those landing pages: {}",
                    l["tag_snippet"].as_str().unwrap_or("")
                );
            }
            Ok(())
        }
        Command::Link(LinkCmd::List { remote }) => {
            each_page(&remote, "/api/v1/links", |l| {
                println!(
                    "{}\t{}\t{}",
                    l["slug"].as_str().unwrap_or(""),
                    l["url"].as_str().unwrap_or(""),
                    l["destination"].as_str().unwrap_or("")
                );
                Ok(())
            })
            .await
        }
        Command::Destination(DestinationCmd::Add {
            name,
            kind,
            config,
            base_url,
            statuses,
            remote,
        }) => {
            let config: Value =
                serde_json::from_str(&config).map_err(|e| format!("--config is not JSON: {e}"))?;
            let mut body = json!({"name": name, "type": kind, "config": config});
            if let Some(b) = base_url {
                body["base_url"] = json!(b);
            }
            if !statuses.is_empty() {
                body["filter"] = json!({"statuses": statuses});
            }
            let d = admin(&remote, Method::POST, "/api/v1/destinations", Some(&body)).await?;
            println!(
                "destination {} created: {} ({})",
                d["id"],
                d["name"].as_str().unwrap_or(""),
                d["type"].as_str().unwrap_or("")
            );
            Ok(())
        }
        Command::Destination(DestinationCmd::List { remote }) => {
            each_page(&remote, "/api/v1/destinations", |d| {
                println!(
                    "{}\t{}\t{}\tdelivered={} retried={} dead={}",
                    d["id"],
                    d["type"].as_str().unwrap_or(""),
                    d["name"].as_str().unwrap_or(""),
                    d["counters"]["delivered"],
                    d["counters"]["retried"],
                    d["counters"]["dead"]
                );
                Ok(())
            })
            .await
        }
        Command::Delivery(DeliveryCmd::List {
            state,
            destination,
            remote,
        }) => {
            let mut q = form_urlencoded::Serializer::new(String::new());
            if let Some(s) = &state {
                q.append_pair("state", s);
            }
            if let Some(d) = destination {
                q.append_pair("destination", &d.to_string());
            }
            let v = admin(
                &remote,
                Method::GET,
                &format!("/api/v1/deliveries?limit=500&{}", q.finish()),
                None,
            )
            .await?;
            for d in v["items"].as_array().into_iter().flatten() {
                println!(
                    "{}\t{}\tdest={}\tconv={}\tattempts={}\t{}",
                    d["id"].as_str().unwrap_or(""),
                    d["state"].as_str().unwrap_or(""),
                    d["destination"],
                    d["conversion_id"].as_str().unwrap_or(""),
                    d["attempts"],
                    d["last_error"].as_str().unwrap_or("")
                );
            }
            Ok(())
        }
        Command::Delivery(DeliveryCmd::Retry { id, remote }) => {
            let d = admin(
                &remote,
                Method::POST,
                &format!("/api/v1/deliveries/{id}/retry"),
                None,
            )
            .await?;
            // The action tells a re-send of a delivered delivery apart.
            println!(
                "delivery {} queued ({}, {})",
                id,
                d["state"].as_str().unwrap_or(""),
                d["action"].as_str().unwrap_or("")
            );
            Ok(())
        }
        Command::Delivery(DeliveryCmd::RetryDead {
            destination,
            remote,
        }) => {
            let filter = destination
                .map(|d| format!("&destination={d}"))
                .unwrap_or_default();
            // Collect first: a retried delivery that fails again must not be
            // picked up twice by this run.
            let mut ids = Vec::new();
            each_page(
                &remote,
                &format!("/api/v1/deliveries?state=dead&limit=500{filter}"),
                |d| {
                    ids.push(d["id"].as_str().unwrap_or("").to_string());
                    Ok(())
                },
            )
            .await?;
            for id in &ids {
                admin(
                    &remote,
                    Method::POST,
                    &format!("/api/v1/deliveries/{id}/retry"),
                    None,
                )
                .await?;
            }
            println!("{} dead deliveries queued again", ids.len());
            Ok(())
        }
        Command::User(cmd) => users::run(cmd).await,
        Command::Backup { out, remote } => backup(&remote, &out).await,
        Command::Export(ExportCmd::Conversions {
            format,
            source,
            status,
            since,
            until,
            remote,
        }) => export_conversions(&remote, &format, source, status, since, until).await,
        Command::Compact { data_dir } => {
            let path = data_dir.join("postbackd.redb");
            let (before, after) =
                tokio::task::spawn_blocking(move || crate::store::backup::compact(&path))
                    .await
                    .map_err(|e| e.to_string())??;
            println!("compacted: {before} -> {after} bytes");
            Ok(())
        }
        Command::Report {
            group_by,
            from,
            to,
            tz,
            time_basis,
            filters,
            sort,
            format,
            remote,
        } => {
            reports::report(
                &remote,
                &group_by,
                from.as_deref(),
                to.as_deref(),
                tz.as_deref(),
                time_basis.as_deref(),
                &filters,
                sort.as_deref(),
                &format,
            )
            .await
        }
        Command::Cost(CostCmd::Import { file, remote }) => {
            reports::cost_import(&remote, &file).await
        }
        Command::TestPostback {
            source,
            link,
            amount,
            remote,
        } => testfire::test_postback(&remote, &source, link.as_deref(), &amount).await,
        Command::TestIpn {
            source,
            link,
            amount,
            remote,
        } => testfire::test_ipn(&remote, &source, link.as_deref(), &amount).await,
        Command::Doctor(a) => health::doctor(&a).await,
        Command::Replay(a) => health::replay(&a).await,
    }
}

fn strip_nulls(v: Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(m.into_iter().filter(|(_, v)| !v.is_null()).collect()),
        other => other,
    }
}

fn pairs_arg(items: &[String], flag: &str) -> Result<Value, String> {
    let mut m = serde_json::Map::new();
    for it in items {
        let (k, v) = it
            .split_once('=')
            .ok_or_else(|| format!("{flag} takes KEY=VALUE, got `{it}`"))?;
        m.insert(k.to_string(), json!(v));
    }
    Ok(Value::Object(m))
}

fn token(remote: &Remote) -> Result<String, String> {
    if let Ok(t) = std::env::var("POSTBACKD_ADMIN_TOKEN")
        && !t.is_empty()
    {
        return Ok(t);
    }
    let path = remote.data_dir.join("admin_token");
    std::fs::read_to_string(&path)
        .map(|t| t.trim().to_string())
        .map_err(|e| {
            format!(
                "no admin token: set POSTBACKD_ADMIN_TOKEN or pass --data-dir of the server ({}: {e})",
                path.display()
            )
        })
}

async fn admin(
    remote: &Remote,
    method: Method,
    path: &str,
    body: Option<&Value>,
) -> Result<Value, String> {
    let token = token(remote)?;
    let url = format!("{}{path}", remote.server.trim_end_matches('/'));
    let r = HttpClient::new()
        .json(method, &url, Some(&token), body)
        .await?;
    let v = r.json();
    if r.status >= 300 {
        return Err(format!(
            "{} {}: {}",
            r.status,
            v["error"].as_str().unwrap_or("error"),
            v["message"].as_str().unwrap_or("")
        ));
    }
    Ok(v)
}

async fn backup(remote: &Remote, out: &std::path::Path) -> Result<(), String> {
    let token = token(remote)?;
    let url = format!("{}/api/v1/backup", remote.server.trim_end_matches('/'));
    let tmp = out.with_extension("partial");
    let (status, written) = HttpClient::new()
        .download(
            Method::POST,
            &url,
            &[("authorization", &format!("Bearer {token}"))],
            &tmp,
        )
        .await?;
    if status != 200 {
        let body = std::fs::read_to_string(&tmp).unwrap_or_default();
        let _ = std::fs::remove_file(&tmp);
        return Err(format!("backup failed: {status} {body}"));
    }
    std::fs::rename(&tmp, out).map_err(|e| format!("{}: {e}", out.display()))?;
    println!("backup written to {} ({written} bytes)", out.display());
    println!("restore: stop the server, copy it to <data dir>/postbackd.redb, start the server");
    Ok(())
}

/// Call `f` on every item of a cursor-paginated admin listing
/// (`path` already has its query), one page at a time.
async fn each_page(
    remote: &Remote,
    path: &str,
    mut f: impl FnMut(&Value) -> Result<(), String>,
) -> Result<(), String> {
    let mut cursor = String::new();
    loop {
        let page = admin(remote, Method::GET, &format!("{path}{cursor}"), None).await?;
        for item in page["items"].as_array().into_iter().flatten() {
            f(item)?;
        }
        match page["next_cursor"].as_str() {
            Some(c) => {
                let sep = if path.contains('?') { '&' } else { '?' };
                cursor = format!("{sep}cursor={c}");
            }
            None => return Ok(()),
        }
    }
}

fn csv_field(v: &Value) -> String {
    let s = match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

async fn export_conversions(
    remote: &Remote,
    format: &str,
    source: Option<u64>,
    status: Option<String>,
    since: Option<String>,
    until: Option<String>,
) -> Result<(), String> {
    use std::io::Write;
    if format != "csv" && format != "ndjson" {
        return Err("--format must be csv or ndjson".into());
    }
    let mut q = form_urlencoded::Serializer::new(String::new());
    q.append_pair("limit", "500");
    if let Some(s) = source {
        q.append_pair("source", &s.to_string());
    }
    for (k, v) in [("status", &status), ("since", &since), ("until", &until)] {
        if let Some(v) = v {
            q.append_pair(k, v);
        }
    }
    let base = q.finish();
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let w = |e: std::io::Error| e.to_string();
    if format == "csv" {
        writeln!(out, "{}", crate::views::CONVERSION_COLUMNS.join(",")).map_err(w)?;
    }
    each_page(remote, &format!("/api/v1/conversions?{base}"), |c| {
        if format == "csv" {
            let row: Vec<String> = crate::views::CONVERSION_COLUMNS
                .iter()
                .map(|k| csv_field(&c[*k]))
                .collect();
            writeln!(out, "{}", row.join(",")).map_err(w)
        } else {
            writeln!(out, "{c}").map_err(w)
        }
    })
    .await?;
    out.flush().map_err(w)?;
    Ok(())
}

async fn serve(args: ServeArgs) -> Result<(), String> {
    let mut over = args.settings;
    over.admin_token = std::env::var("POSTBACKD_ADMIN_TOKEN").ok();
    let cfg = config::load(args.config.as_deref(), over).map_err(|e| e.to_string())?;
    let listener = tokio::net::TcpListener::bind(cfg.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", cfg.listen))?;
    let mut cfg = cfg;
    if let Ok(bound) = listener.local_addr() {
        // With port 0 the OS picks the port: show and generate the real one.
        if cfg.public_url == format!("http://{}", cfg.listen) {
            let scheme = if cfg.tls_cert.is_some() {
                "https"
            } else {
                "http"
            };
            cfg.public_url = format!("{scheme}://{bound}");
        }
        cfg.listen = bound;
    }
    let bind = |a: Option<std::net::SocketAddr>, what: &'static str| async move {
        match a {
            None => Ok(None),
            Some(a) => tokio::net::TcpListener::bind(a)
                .await
                .map(Some)
                .map_err(|e| format!("cannot listen on {a} ({what}): {e}")),
        }
    };
    let admin_listener = bind(cfg.admin_listen, "admin_listen").await?;
    let redirect_listener = bind(cfg.http_redirect_listen, "http_redirect_listen").await?;
    if let Some(l) = &admin_listener {
        cfg.admin_listen = l.local_addr().ok();
    }
    if let Some(l) = &redirect_listener {
        cfg.http_redirect_listen = l.local_addr().ok();
    }
    let (app, origin) = App::open(cfg).map_err(|e| e.to_string())?;
    let app = Arc::new(app);
    // Always handle SIGHUP (`systemctl reload`): without TLS there is
    // nothing to reload, but the default action would kill the server.
    // Installed before the banner, so a reload right after start-up is
    // never fatal.
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::hangup()) {
            Ok(hup) => {
                tokio::spawn(reload_on_sighup(hup, app.tls.clone()));
            }
            Err(e) => tracing::warn!(error = %e, "cannot listen for SIGHUP"),
        }
    }
    let c = &app.config;
    let scheme = if app.tls.is_some() { "https" } else { "http" };
    println!(
        "postbackd {} listening on {scheme}://{}",
        env!("CARGO_PKG_VERSION"),
        c.listen
    );
    if let Some(a) = c.admin_listen {
        println!(
            "admin API:  http{}://{a}/api/v1",
            if app.tls.is_some() { "s" } else { "" }
        );
    }
    if let Some(a) = c.http_redirect_listen {
        println!("redirect:   http://{a} -> {}", c.public_url);
    }
    println!("data dir:   {}", c.data_dir.display());
    println!("public URL: {}", c.public_url);
    match origin {
        TokenOrigin::Generated => {
            println!(
                "admin token (printed once; stored in {}):",
                c.token_path().display()
            );
            println!("  {}", app.admin_token());
        }
        TokenOrigin::File => println!("admin token: in {}", c.token_path().display()),
        TokenOrigin::Configured => println!("admin token: from POSTBACKD_ADMIN_TOKEN / config"),
    }
    // The dashboard is served where the admin API is.
    let dashboard = match c.admin_listen {
        Some(a) => format!("{scheme}://{a}"),
        None => c.public_url.clone(),
    };
    match crate::manage::users::setup_link(&app).await {
        Ok(Some(token)) => {
            println!(
                "dashboard:  no user yet; create the first admin here (works once, for 24 h):"
            );
            println!("  {dashboard}/setup/{token}");
        }
        Ok(None) => println!("dashboard:  {dashboard}/login"),
        Err(e) => println!("dashboard:  cannot make the set-up link: {}", e.message),
    }
    println!(
        "next: create a source (an affiliate network account) and paste its postback URL into the network:"
    );
    println!(
        "  curl -s -X POST {}/api/v1/sources -H \"Authorization: Bearer $(cat {})\" -d '{{\"name\":\"My network\",\"preset\":\"everflow\"}}'",
        c.public_url,
        c.token_path().display()
    );
    println!(
        "  (or: postbackd source add \"My network\" --preset everflow; the README has the walkthrough)"
    );
    tracing::info!(listen = %c.listen, "serving");

    let listeners = server::Listeners {
        main: listener,
        admin: admin_listener,
        redirect: redirect_listener,
    };
    server::run(listeners, app.clone(), shutdown_signal()).await;
    tracing::info!("stopped");
    Ok(())
}

/// Re-read the TLS certificate and key on every SIGHUP.
#[cfg(unix)]
async fn reload_on_sighup(
    mut hup: tokio::signal::unix::Signal,
    store: Option<Arc<crate::tls::CertStore>>,
) {
    while hup.recv().await.is_some() {
        match &store {
            None => tracing::info!("SIGHUP: no TLS certificate configured, nothing to reload"),
            Some(store) => match store.reload() {
                Ok(()) => tracing::info!("TLS certificate reloaded"),
                Err(e) => {
                    tracing::error!(error = %e, "TLS reload failed; keeping the current certificate")
                }
            },
        }
    }
}

/// SIGINT or SIGTERM.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Here rather than in config.rs: it drives the flag parser, and config
    // sits below the command line.
    #[test]
    fn trusted_proxies_from_the_file_and_from_the_command_line() {
        use clap::Parser;
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("c.toml");
        std::fs::write(&f, "trusted_proxies = [\"10.0.0.1\", \"192.168.0.0/16\"]\n").unwrap();
        let c = config::load(Some(&f), Settings::default()).unwrap();
        assert_eq!(c.trusted_proxies.len(), 2);
        // The flag (or POSTBACKD_TRUSTED_PROXIES) is one comma-separated
        // value, spaces allowed; it wins over the file.
        let cli =
            Cli::try_parse_from(["postbackd", "serve", "--trusted-proxies", "127.0.0.1, ::1,"])
                .unwrap();
        let Command::Serve(args) = cli.command else {
            panic!("serve");
        };
        let c = config::load(Some(&f), args.settings).unwrap();
        let got: Vec<String> = c.trusted_proxies.iter().map(|n| n.to_string()).collect();
        assert_eq!(got, ["127.0.0.1/32", "::1/128"]);
    }

    #[test]
    fn upkeep_interval_from_file_and_flag_within_bounds() {
        use clap::Parser;
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("c.toml");
        assert_eq!(
            config::load(None, Settings::default())
                .unwrap()
                .upkeep_interval,
            std::time::Duration::from_secs(60)
        );
        std::fs::write(&f, "upkeep_interval_secs = 5\n").unwrap();
        let c = config::load(Some(&f), Settings::default()).unwrap();
        assert_eq!(c.upkeep_interval, std::time::Duration::from_secs(5));
        // The flag (clap also reads POSTBACKD_UPKEEP_INTERVAL_SECS) beats the file.
        let cli =
            Cli::try_parse_from(["postbackd", "serve", "--upkeep-interval-secs", "1"]).unwrap();
        let Command::Serve(args) = cli.command else {
            panic!("serve");
        };
        let c = config::load(Some(&f), args.settings).unwrap();
        assert_eq!(c.upkeep_interval, std::time::Duration::from_secs(1));
        for bad in ["0", "3601"] {
            std::fs::write(&f, format!("upkeep_interval_secs = {bad}\n")).unwrap();
            let e = config::load(Some(&f), Settings::default()).unwrap_err();
            assert!(e.to_string().contains("1 to 3600"), "{e}");
        }
    }
}
