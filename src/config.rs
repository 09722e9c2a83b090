//! Settings: defaults < TOML file (`--config`) < `POSTBACKD_*` env < flags.
//!
//! Every key `some_key` has the env name `POSTBACKD_SOME_KEY`. Flags and env
//! are merged by clap (a flag beats its env variable); both beat the file.
//! The result is validated once at start and passed explicitly.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;
use ipnet::IpNet;
use serde::Deserialize;

use crate::ratelimit::{Rate, RateConfig};

/// Validated settings.
#[derive(Clone, Debug)]
pub struct Config {
    /// Directory holding `postbackd.redb` and `admin_token`.
    pub data_dir: PathBuf,
    /// Address the HTTP server binds.
    pub listen: SocketAddr,
    /// Base of generated URLs (postback URLs, link URLs), without a
    /// trailing slash; defaults to `http://<listen>`.
    pub public_url: String,
    /// Peers whose `X-Forwarded-For` / `Forwarded` headers are believed.
    pub trusted_proxies: Vec<IpNet>,
    /// Landing-page origins (`scheme://host[:port]`, normalized) whose
    /// pages may record clicks through the page tag (`POST /e/click`), for
    /// every link; a link adds its own.
    pub tag_origins: Vec<String>,
    /// Admin token from the file or env; when `None` the token file in the
    /// data dir is used (generated on first start). Never logged.
    pub admin_token: Option<String>,
    /// Largest postback body accepted (bytes); larger gets 413.
    pub max_body_bytes: usize,
    /// Largest body stored with a postback event (bytes).
    pub stored_body_bytes: usize,
    /// Rate limits (per client IP on `/c` and `/p`, per source on `/p`).
    pub rate: RateConfig,
    /// A client must send a request's headers within this time; on HTTP/1
    /// it is also the keep-alive idle timeout (hyper starts it when it waits
    /// for the next request).
    pub header_read_timeout: Duration,
    /// Most simultaneous client connections; further ones wait in the
    /// kernel's accept queue.
    pub max_connections: usize,
    /// PEM certificate chain and private key: serve HTTPS (h2 and
    /// http/1.1) on `listen`. Both or neither.
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// A plain-HTTP listener that redirects every request to `public_url`.
    pub http_redirect_listen: Option<SocketAddr>,
    /// Serve the admin API on this address only (e.g. loopback), not on
    /// `listen`.
    pub admin_listen: Option<SocketAddr>,
    /// Allow webhook / postback / base_url destinations on private,
    /// loopback and link-local addresses (SSRF guard off).
    pub allow_private_destinations: bool,
    /// Delivery retry and concurrency settings.
    pub forward: crate::forward::worker::Settings,
    /// Purge clicks / postback events older than this many days (None:
    /// keep forever). Conversions are never purged.
    pub retention: crate::retention::Retention,
    /// How often the upkeep loop runs: rate-limiter pruning, forgetting old
    /// signatures, the retention purge.
    pub upkeep_interval: Duration,
    /// Commit with redb's two-phase commit and quick repair: restart after a
    /// crash is instant on any file size, but each commit costs two fsyncs
    /// plus the allocator state, which grows with the file (2.1x fewer
    /// durable clicks/s at 10M clicks). Off (the default): one fsync per
    /// commit, and reopening after a crash checks the file (2 s at 10M
    /// clicks). Durability is the same either way.
    pub fast_recovery: bool,
    /// Reports show money in this ISO 4217 currency (others converted with
    /// the admin's rates).
    pub report_currency: String,
    /// Reports' default IANA time zone.
    pub report_timezone: String,
    /// A MaxMind-format country database (`.mmdb`), read once at start:
    /// every click's `country` is looked up in it. None: a trusted proxy's
    /// `CF-IPCountry`, else unknown.
    pub geoip_db: Option<PathBuf>,
    /// A click is `unique` when its visitor (IP + user agent) has not
    /// clicked the same link within this many hours (1 to 720).
    pub unique_window_hours: u32,
    /// A dashboard session ends after this long without a request
    /// (`session_idle_minutes`).
    pub session_idle: Duration,
    /// ... and this long after sign-in whatever the activity
    /// (`session_max_days`); also the cookie's Max-Age.
    pub session_max: Duration,
}

impl Config {
    /// Defaults for a data dir (used by tests and embedded start).
    pub fn with_data_dir(data_dir: impl Into<PathBuf>) -> Config {
        let listen: SocketAddr = ([127, 0, 0, 1], 8080).into();
        Config {
            data_dir: data_dir.into(),
            listen,
            public_url: format!("http://{listen}"),
            trusted_proxies: Vec::new(),
            tag_origins: Vec::new(),
            admin_token: None,
            max_body_bytes: 64 * 1024,
            stored_body_bytes: 64 * 1024,
            rate: RateConfig::default(),
            header_read_timeout: Duration::from_secs(10),
            max_connections: 1024,
            tls_cert: None,
            tls_key: None,
            http_redirect_listen: None,
            admin_listen: None,
            allow_private_destinations: false,
            forward: crate::forward::worker::Settings::default(),
            retention: crate::retention::Retention::default(),
            upkeep_interval: Duration::from_secs(60),
            fast_recovery: false,
            report_currency: "USD".into(),
            report_timezone: "UTC".into(),
            geoip_db: None,
            unique_window_hours: 24,
            session_idle: Duration::from_secs(720 * 60),
            session_max: Duration::from_secs(14 * 86_400),
        }
    }

    pub fn db_path(&self) -> PathBuf {
        self.data_dir.join("postbackd.redb")
    }

    pub fn token_path(&self) -> PathBuf {
        self.data_dir.join("admin_token")
    }
}

impl Default for Config {
    fn default() -> Self {
        Config::with_data_dir("./postbackd-data")
    }
}

/// Every setting, each optional: read from the TOML file (serde, by key)
/// and from `serve`'s flags and `POSTBACKD_*` variables (clap); [`load`]
/// layers them over the defaults. One struct, so a new setting is declared
/// once (and documented in packaging/postbackd.toml: tests/packaging.rs
/// checks).
#[derive(Args, Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Data directory (database and admin token).
    #[arg(long, env = "POSTBACKD_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Listen address, host:port.
    #[arg(long, env = "POSTBACKD_LISTEN")]
    pub listen: Option<String>,
    /// Base URL users reach (used in generated URLs).
    #[arg(long, env = "POSTBACKD_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Comma-separated proxies (IPs or CIDRs) whose X-Forwarded-For is trusted.
    #[arg(long, env = "POSTBACKD_TRUSTED_PROXIES", value_parser = ProxyList::parse_arg)]
    pub trusted_proxies: Option<ProxyList>,
    /// Comma-separated landing-page origins (https://lp.example.com) allowed to use the page tag.
    #[arg(long, env = "POSTBACKD_TAG_ORIGINS", value_parser = ProxyList::parse_arg)]
    pub tag_origins: Option<ProxyList>,
    /// The admin API's bearer token: from the file or POSTBACKD_ADMIN_TOKEN
    /// (never a flag: command lines are visible to every local user).
    #[arg(skip)]
    pub admin_token: Option<String>,
    /// Largest postback body in bytes.
    #[arg(long, env = "POSTBACKD_MAX_BODY_BYTES")]
    pub max_body_bytes: Option<usize>,
    /// Largest body stored with a postback event, in bytes.
    #[arg(long, env = "POSTBACKD_STORED_BODY_BYTES")]
    pub stored_body_bytes: Option<usize>,
    /// Per-client-IP limit on clicks: PER_SECOND/BURST or off.
    #[arg(long, env = "POSTBACKD_RATE_LIMIT_CLICK_IP")]
    pub rate_limit_click_ip: Option<String>,
    /// Per-client-IP limit on postbacks: PER_SECOND/BURST or off.
    #[arg(long, env = "POSTBACKD_RATE_LIMIT_POSTBACK_IP")]
    pub rate_limit_postback_ip: Option<String>,
    /// Default per-source limit on postbacks: PER_SECOND/BURST or off.
    #[arg(long, env = "POSTBACKD_RATE_LIMIT_SOURCE")]
    pub rate_limit_source: Option<String>,
    /// Seconds a client has to send request headers (also the HTTP/1 keep-alive idle timeout).
    #[arg(long, env = "POSTBACKD_HEADER_READ_TIMEOUT_SECS")]
    pub header_read_timeout_secs: Option<u64>,
    /// Most simultaneous client connections.
    #[arg(long, env = "POSTBACKD_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,
    /// PEM certificate chain: serve HTTPS (reloaded on SIGHUP).
    #[arg(long, env = "POSTBACKD_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, env = "POSTBACKD_TLS_KEY")]
    pub tls_key: Option<PathBuf>,
    /// Plain-HTTP address that redirects to the HTTPS public URL.
    #[arg(long, env = "POSTBACKD_HTTP_REDIRECT_LISTEN")]
    pub http_redirect_listen: Option<String>,
    /// Serve the admin API only on this address (e.g. 127.0.0.1:8081).
    #[arg(long, env = "POSTBACKD_ADMIN_LISTEN")]
    pub admin_listen: Option<String>,
    /// Allow destinations on private, loopback and link-local addresses.
    #[arg(long, env = "POSTBACKD_ALLOW_PRIVATE_DESTINATIONS")]
    pub allow_private_destinations: Option<bool>,
    /// First delivery retry delay in ms (doubles per attempt, with jitter).
    #[arg(long, env = "POSTBACKD_FORWARD_RETRY_BASE_MS")]
    pub forward_retry_base_ms: Option<u64>,
    /// Longest delay between delivery attempts, seconds.
    #[arg(long, env = "POSTBACKD_FORWARD_RETRY_CAP_SECS")]
    pub forward_retry_cap_secs: Option<u64>,
    /// Purge clicks older than this many days (0: keep forever).
    #[arg(long, env = "POSTBACKD_RETENTION_CLICKS_DAYS")]
    pub retention_clicks_days: Option<u32>,
    /// Purge postback events older than this many days (0: keep forever).
    #[arg(long, env = "POSTBACKD_RETENTION_EVENTS_DAYS")]
    pub retention_events_days: Option<u32>,
    /// Seconds between upkeep runs (retention purge, limiter pruning), 1-3600.
    #[arg(long, env = "POSTBACKD_UPKEEP_INTERVAL_SECS")]
    pub upkeep_interval_secs: Option<u64>,
    /// Two-phase commit + quick repair (fast restart after a crash; two
    /// fsyncs per commit). false: one fsync per commit.
    #[arg(long, env = "POSTBACKD_FAST_RECOVERY")]
    pub fast_recovery: Option<bool>,
    /// Currency reports are shown in (ISO 4217), e.g. USD.
    #[arg(long, env = "POSTBACKD_REPORT_CURRENCY")]
    pub report_currency: Option<String>,
    /// Default time zone of reports (IANA), e.g. Asia/Kolkata.
    #[arg(long, env = "POSTBACKD_REPORT_TIMEZONE")]
    pub report_timezone: Option<String>,
    /// MaxMind-format country database (.mmdb) for each click's country.
    #[arg(long, env = "POSTBACKD_GEOIP_DB")]
    pub geoip_db: Option<PathBuf>,
    /// Hours within which a visitor's repeat click on a link is not unique, 1-720.
    #[arg(long, env = "POSTBACKD_UNIQUE_WINDOW_HOURS")]
    pub unique_window_hours: Option<u32>,
    /// Minutes without a request after which a dashboard session ends, 1-43200.
    #[arg(long, env = "POSTBACKD_SESSION_IDLE_MINUTES")]
    pub session_idle_minutes: Option<u64>,
    /// Days after sign-in after which a dashboard session ends, 1-365.
    #[arg(long, env = "POSTBACKD_SESSION_MAX_DAYS")]
    pub session_max_days: Option<u64>,
}

/// `trusted_proxies`, `tag_origins`: a TOML array, or a comma-separated
/// flag / variable.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(transparent)]
pub struct ProxyList(pub Vec<String>);

impl ProxyList {
    fn parse_arg(s: &str) -> Result<ProxyList, std::convert::Infallible> {
        Ok(ProxyList(s.split(',').map(str::to_string).collect()))
    }
}

/// A setting that cannot be used, with the fix.
#[derive(Debug)]
pub struct ConfigError(pub String);

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

/// Build the configuration from an optional TOML file and overrides.
pub fn load(file: Option<&Path>, over: Settings) -> Result<Config, ConfigError> {
    let fc: Settings = match file {
        Some(p) => {
            let text = std::fs::read_to_string(p).map_err(|e| {
                ConfigError(format!("cannot read config file {}: {e}", p.display()))
            })?;
            toml::from_str(&text)
                .map_err(|e| ConfigError(format!("config file {}: {e}", p.display())))?
        }
        None => Settings::default(),
    };
    let mut c = Config::default();
    if let Some(d) = over.data_dir.or(fc.data_dir) {
        c.data_dir = d;
    }
    if let Some(l) = over.listen.or(fc.listen) {
        c.listen = l.parse().map_err(|_| {
            ConfigError(format!(
                "listen `{l}` is not an address; use host:port such as 127.0.0.1:8080 or [::]:8080"
            ))
        })?;
    }
    c.public_url = match over.public_url.or(fc.public_url) {
        Some(u) => validate_public_url(&u)?,
        None => format!("http://{}", c.listen),
    };
    let proxies: Option<Vec<String>> = over.trusted_proxies.or(fc.trusted_proxies).map(|l| {
        l.0.iter()
            .map(|p| p.trim().to_string())
            .filter(|p| !p.is_empty())
            .collect()
    });
    if let Some(list) = proxies {
        c.trusted_proxies = list
            .iter()
            .map(|p| parse_net(p))
            .collect::<Result<_, _>>()?;
    }
    if let Some(list) = over.tag_origins.or(fc.tag_origins) {
        c.tag_origins = list
            .0
            .iter()
            .map(|o| o.trim())
            .filter(|o| !o.is_empty())
            .map(|o| {
                crate::tracking::origin::normalize(o)
                    .map_err(|m| ConfigError(format!("tag_origins: {m}")))
            })
            .collect::<Result<_, _>>()?;
    }
    c.admin_token = over
        .admin_token
        .or(fc.admin_token)
        .filter(|t| !t.is_empty());
    if let Some(t) = &c.admin_token
        && t.len() < 16
    {
        return Err(ConfigError(
            "admin_token is shorter than 16 characters; use a long random value \
                 (or unset it to have one generated)"
                .into(),
        ));
    }
    if let Some(n) = over.max_body_bytes.or(fc.max_body_bytes) {
        c.max_body_bytes = n;
    }
    if let Some(n) = over.stored_body_bytes.or(fc.stored_body_bytes) {
        c.stored_body_bytes = n;
    }
    if let Some(r) = over.rate_limit_click_ip.or(fc.rate_limit_click_ip) {
        c.rate.click_ip = parse_rate("rate_limit_click_ip", &r)?;
    }
    if let Some(r) = over.rate_limit_postback_ip.or(fc.rate_limit_postback_ip) {
        c.rate.postback_ip = parse_rate("rate_limit_postback_ip", &r)?;
    }
    if let Some(r) = over.rate_limit_source.or(fc.rate_limit_source) {
        c.rate.source_default = parse_rate("rate_limit_source", &r)?;
    }
    if let Some(t) = over
        .header_read_timeout_secs
        .or(fc.header_read_timeout_secs)
    {
        if !(1..=300).contains(&t) {
            return Err(ConfigError(
                "header_read_timeout_secs must be 1 to 300".into(),
            ));
        }
        c.header_read_timeout = Duration::from_secs(t);
    }
    if let Some(n) = over.max_connections.or(fc.max_connections) {
        if n == 0 {
            return Err(ConfigError("max_connections must be at least 1".into()));
        }
        c.max_connections = n;
    }
    c.tls_cert = over.tls_cert.or(fc.tls_cert);
    c.tls_key = over.tls_key.or(fc.tls_key);
    let addr = |key: &str, v: String| -> Result<SocketAddr, ConfigError> {
        v.parse().map_err(|_| {
            ConfigError(format!(
                "{key} `{v}` is not an address; use host:port such as 127.0.0.1:8081"
            ))
        })
    };
    if let Some(a) = over.http_redirect_listen.or(fc.http_redirect_listen) {
        if c.tls_cert.is_none() {
            return Err(ConfigError(
                "http_redirect_listen redirects to HTTPS: set tls_cert and tls_key too".into(),
            ));
        }
        if !c.public_url.starts_with("https://") {
            return Err(ConfigError(
                "http_redirect_listen redirects to public_url, which must then be an https:// URL"
                    .into(),
            ));
        }
        c.http_redirect_listen = Some(addr("http_redirect_listen", a)?);
    }
    if let Some(a) = over.admin_listen.or(fc.admin_listen) {
        c.admin_listen = Some(addr("admin_listen", a)?);
    }
    if let Some(b) = over
        .allow_private_destinations
        .or(fc.allow_private_destinations)
    {
        c.allow_private_destinations = b;
    }
    if let Some(ms) = over.forward_retry_base_ms.or(fc.forward_retry_base_ms) {
        if ms == 0 {
            return Err(ConfigError(
                "forward_retry_base_ms must be at least 1".into(),
            ));
        }
        c.forward.backoff_base = Duration::from_millis(ms);
    }
    if let Some(secs) = over.forward_retry_cap_secs.or(fc.forward_retry_cap_secs) {
        if secs == 0 {
            return Err(ConfigError(
                "forward_retry_cap_secs must be at least 1".into(),
            ));
        }
        c.forward.backoff_cap = Duration::from_secs(secs);
    }
    if let Some(b) = over.fast_recovery.or(fc.fast_recovery) {
        c.fast_recovery = b;
    }
    if let Some(cur) = over.report_currency.or(fc.report_currency) {
        c.report_currency = crate::inbound::currency::normalize(&cur).ok_or_else(|| {
            ConfigError(format!(
                "report_currency `{cur}` is not an ISO 4217 code; use one such as USD or EUR"
            ))
        })?;
    }
    if let Some(tz) = over.report_timezone.or(fc.report_timezone) {
        if jiff::tz::TimeZone::get(&tz).is_err() {
            return Err(ConfigError(format!(
                "report_timezone `{tz}` is not a time zone; use an IANA name such as UTC or \
                 America/New_York"
            )));
        }
        c.report_timezone = tz;
    }
    // 0 means keep forever, like leaving the key out.
    c.retention.clicks_days = over
        .retention_clicks_days
        .or(fc.retention_clicks_days)
        .filter(|d| *d > 0);
    c.retention.events_days = over
        .retention_events_days
        .or(fc.retention_events_days)
        .filter(|d| *d > 0);
    if let Some(secs) = over.upkeep_interval_secs.or(fc.upkeep_interval_secs) {
        // 0 would make tokio's interval panic; past an hour, signatures
        // (remembered 65 min) and limiter keys pile up for too long.
        if !(1..=3600).contains(&secs) {
            return Err(ConfigError(
                "upkeep_interval_secs must be 1 to 3600 (the default is 60)".into(),
            ));
        }
        c.upkeep_interval = Duration::from_secs(secs);
    }
    // An empty value (POSTBACKD_GEOIP_DB= in an env file) means unset.
    c.geoip_db = over
        .geoip_db
        .or(fc.geoip_db)
        .filter(|p| !p.as_os_str().is_empty());
    if let Some(h) = over.unique_window_hours.or(fc.unique_window_hours) {
        // Past 30 days the visits table would hold a month of visitors,
        // and "unique" stops meaning a new visit.
        if !(1..=720).contains(&h) {
            return Err(ConfigError(
                "unique_window_hours must be 1 to 720 (the default is 24)".into(),
            ));
        }
        c.unique_window_hours = h;
    }
    if let Some(m) = over.session_idle_minutes.or(fc.session_idle_minutes) {
        if !(1..=43_200).contains(&m) {
            return Err(ConfigError(
                "session_idle_minutes must be 1 to 43200 (30 days; the default is 720)".into(),
            ));
        }
        c.session_idle = Duration::from_secs(m * 60);
    }
    if let Some(d) = over.session_max_days.or(fc.session_max_days) {
        if !(1..=365).contains(&d) {
            return Err(ConfigError(
                "session_max_days must be 1 to 365 (the default is 14)".into(),
            ));
        }
        c.session_max = Duration::from_secs(d * 86_400);
    }
    Ok(c)
}

/// `PER_SECOND/BURST` (e.g. `100/200`), `PER_SECOND` (burst = 2×), or `off`.
pub fn parse_rate(key: &str, s: &str) -> Result<Rate, ConfigError> {
    let s = s.trim();
    if s.eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    let err = || {
        ConfigError(format!(
            "{key} `{s}` must be PER_SECOND/BURST such as 100/200, or off"
        ))
    };
    let (rate, burst) = match s.split_once('/') {
        Some((r, b)) => (
            r.trim().parse::<u32>().map_err(|_| err())?,
            b.trim().parse::<u32>().map_err(|_| err())?,
        ),
        None => {
            let r = s.parse::<u32>().map_err(|_| err())?;
            (r, r.saturating_mul(2))
        }
    };
    if rate == 0 || burst == 0 {
        return Err(err());
    }
    Ok(Some((rate, burst)))
}

fn validate_public_url(u: &str) -> Result<String, ConfigError> {
    let trimmed = u.trim().trim_end_matches('/');
    let ok = (trimmed.starts_with("http://") || trimmed.starts_with("https://"))
        && trimmed
            .parse::<hyper::Uri>()
            .is_ok_and(|x| x.host().is_some());
    if !ok {
        return Err(ConfigError(format!(
            "public_url `{u}` is not an http(s) URL; use the address users reach, such as https://t.example.com"
        )));
    }
    Ok(trimmed.to_string())
}

/// A CIDR or a bare address (a /32 or /128).
pub fn parse_net(s: &str) -> Result<IpNet, ConfigError> {
    s.parse::<IpNet>()
        .or_else(|_| s.parse::<std::net::IpAddr>().map(IpNet::from))
        .map_err(|_| {
            ConfigError(format!(
                "`{s}` is not an IP address or CIDR range such as 10.0.0.0/8"
            ))
        })
}

/// Where the admin token came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenOrigin {
    /// `POSTBACKD_ADMIN_TOKEN` or the config file.
    Configured,
    /// The token file in the data dir, from an earlier start.
    File,
    /// Generated now and written to the token file (print it once).
    Generated,
}

/// The admin token: configured, or read from / generated into the data
/// dir's `admin_token` (mode 0600).
pub fn admin_token(c: &Config) -> std::io::Result<(String, TokenOrigin)> {
    if let Some(t) = &c.admin_token {
        return Ok((t.clone(), TokenOrigin::Configured));
    }
    let path = c.token_path();
    match std::fs::read_to_string(&path) {
        Ok(t) if !t.trim().is_empty() => return Ok((t.trim().to_string(), TokenOrigin::File)),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let token = crate::util::ids::random_hex(24);
    std::fs::create_dir_all(&c.data_dir)?;
    write_private(&path, token.as_bytes())?;
    Ok((token, TokenOrigin::Generated))
}

/// Write a file readable only by its owner, durably.
fn write_private(path: &Path, data: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(path)?;
    f.write_all(data)?;
    f.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precedence_file_then_overrides() {
        let dir = std::env::temp_dir().join(format!("pbd-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("c.toml");
        std::fs::write(
            &f,
            "listen = \"127.0.0.1:9000\"\npublic_url = \"https://t.example.com/\"\n",
        )
        .unwrap();
        let c = load(Some(&f), Settings::default()).unwrap();
        assert_eq!(c.listen.port(), 9000);
        assert_eq!(c.public_url, "https://t.example.com");
        let c = load(
            Some(&f),
            Settings {
                listen: Some("127.0.0.1:9001".into()),
                ..Settings::default()
            },
        )
        .unwrap();
        assert_eq!(c.listen.port(), 9001);
        assert_eq!(c.public_url, "https://t.example.com");
        std::fs::write(&f, "bogus = 1\n").unwrap();
        assert!(load(Some(&f), Settings::default()).is_err());
    }

    #[test]
    fn session_expiry_settings_within_bounds() {
        let c = load(None, Settings::default()).unwrap();
        assert_eq!(c.session_idle, Duration::from_secs(720 * 60));
        assert_eq!(c.session_max, Duration::from_secs(14 * 86_400));
        let c = load(
            None,
            Settings {
                session_idle_minutes: Some(5),
                session_max_days: Some(1),
                ..Settings::default()
            },
        )
        .unwrap();
        assert_eq!(
            (c.session_idle, c.session_max),
            (Duration::from_secs(300), Duration::from_secs(86_400))
        );
        for (idle, max) in [
            (Some(0), None),
            (Some(43_201), None),
            (None, Some(0)),
            (None, Some(366)),
        ] {
            let e = load(
                None,
                Settings {
                    session_idle_minutes: idle,
                    session_max_days: max,
                    ..Settings::default()
                },
            )
            .unwrap_err();
            assert!(e.0.contains("must be 1 to"), "{e}");
        }
    }

    #[test]
    fn default_public_url_follows_listen() {
        let c = load(
            None,
            Settings {
                listen: Some("127.0.0.1:7000".into()),
                ..Settings::default()
            },
        )
        .unwrap();
        assert_eq!(c.public_url, "http://127.0.0.1:7000");
    }

    #[cfg(unix)]
    #[test]
    fn generated_token_is_private_and_stable() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!(
            "pbd-tok-{}-{}",
            std::process::id(),
            crate::util::ids::new_id(0)
        ));
        let c = Config::with_data_dir(&dir);
        let (t1, o1) = admin_token(&c).unwrap();
        assert_eq!(o1, TokenOrigin::Generated);
        let mode = std::fs::metadata(c.token_path())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let (t2, o2) = admin_token(&c).unwrap();
        assert_eq!((t1, o2), (t2, TokenOrigin::File));
        let _ = std::fs::remove_dir_all(dir);
    }
}
