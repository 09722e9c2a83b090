//! Rate limits (governor, GCRA): per client IP on `/c` and `/p`, and per
//! source on `/p` (each source its own quota: the server default or the
//! source's `rate_limit`); per client IP and per user name on the
//! dashboard's sign-in form.
//!
//! Keyed state is bounded: [`RateLimits::retain_recent`] runs on a timer and
//! drops keys whose state has fully replenished. Rate-limited requests are
//! counted here, not written to storage one by one (a flood must not become
//! a disk-filling write load).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::store::catalog::SourceEntry;

/// A quota: sustained requests per second and burst size. `None` = no limit.
pub type Rate = Option<(u32, u32)>;

/// Server-wide limit settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateConfig {
    /// Per client IP on `/c/{slug}`.
    pub click_ip: Rate,
    /// Per client IP on `/p/{key}`.
    pub postback_ip: Rate,
    /// Per source on `/p/{key}`, unless the source sets its own.
    pub source_default: Rate,
}

impl Default for RateConfig {
    fn default() -> Self {
        RateConfig {
            click_ip: Some((50, 100)),
            postback_ip: Some((200, 400)),
            source_default: Some((100, 200)),
        }
    }
}

fn quota((per_second, burst): (u32, u32)) -> Option<Quota> {
    Some(
        Quota::per_second(NonZeroU32::new(per_second)?).allow_burst(NonZeroU32::new(burst.max(1))?),
    )
}

/// Which limit refused a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Limited {
    ClientIp,
    Source,
}

/// Rate-limited request counters, for `/metrics`.
#[derive(Debug, Default)]
pub struct LimitCounters {
    pub clicks_ip: AtomicU64,
    pub postbacks_ip: AtomicU64,
    pub postbacks_source: AtomicU64,
    /// Dashboard sign-in attempts refused (per IP or per name).
    pub logins: AtomicU64,
}

/// Sign-in attempts per client IP: 10 at once, then one every 6 s (10 a
/// minute). Enough for a person who mistypes; an argon2 verification per
/// attempt is the cost an attacker pays, and this bounds it per address.
const LOGIN_IP: (Duration, u32) = (Duration::from_secs(6), 10);
/// Sign-in attempts per user name, from anywhere: 5 at once, then one every
/// 12 s, so guessing one user's password from many addresses stays slow.
/// The price: someone hammering a name delays that user's sign-in by
/// seconds, never locks the account.
const LOGIN_NAME: (Duration, u32) = (Duration::from_secs(12), 5);

fn login_quota((period, burst): (Duration, u32)) -> Quota {
    Quota::with_period(period)
        .expect("non-zero period")
        .allow_burst(NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN))
}

type SourceLimiter = ((u32, u32), Arc<DefaultDirectRateLimiter>);

pub struct RateLimits {
    config: RateConfig,
    clock: DefaultClock,
    click_ip: Option<DefaultKeyedRateLimiter<IpAddr>>,
    postback_ip: Option<DefaultKeyedRateLimiter<IpAddr>>,
    /// One limiter per source, rebuilt when its quota changes.
    sources: Mutex<HashMap<u64, SourceLimiter>>,
    login_ip: DefaultKeyedRateLimiter<IpAddr>,
    login_name: DefaultKeyedRateLimiter<String>,
    pub counters: LimitCounters,
}

impl RateLimits {
    pub fn new(config: RateConfig) -> RateLimits {
        let keyed = |r: Rate| r.and_then(quota).map(RateLimiter::keyed);
        RateLimits {
            config,
            clock: DefaultClock::default(),
            click_ip: keyed(config.click_ip),
            postback_ip: keyed(config.postback_ip),
            sources: Mutex::new(HashMap::new()),
            login_ip: RateLimiter::keyed(login_quota(LOGIN_IP)),
            login_name: RateLimiter::keyed(login_quota(LOGIN_NAME)),
            counters: LimitCounters::default(),
        }
    }

    /// Check a click from `ip`. `Err` carries how long to wait.
    pub fn check_click(&self, ip: IpAddr) -> Result<(), Duration> {
        let r = self.check_keyed(self.click_ip.as_ref(), ip);
        if r.is_err() {
            self.counters.clicks_ip.fetch_add(1, Ordering::Relaxed);
        }
        r
    }

    /// Check a postback from `ip` (before the source is known).
    pub fn check_postback_ip(&self, ip: IpAddr) -> Result<(), Duration> {
        let r = self.check_keyed(self.postback_ip.as_ref(), ip);
        if r.is_err() {
            self.counters.postbacks_ip.fetch_add(1, Ordering::Relaxed);
        }
        r
    }

    /// Check a postback for `source`.
    pub fn check_source(&self, source: &SourceEntry) -> Result<(), Duration> {
        let Some(rate) = source.rec.rate_limit.or(self.config.source_default) else {
            return Ok(());
        };
        let limiter = {
            let mut map = self.sources.lock().unwrap_or_else(|e| e.into_inner());
            match map.get(&source.id) {
                Some((r, l)) if *r == rate => l.clone(),
                _ => {
                    let Some(q) = quota(rate) else { return Ok(()) };
                    let l = Arc::new(RateLimiter::direct(q));
                    map.insert(source.id, (rate, l.clone()));
                    l
                }
            }
        };
        limiter.check().map_err(|nu| {
            self.counters
                .postbacks_source
                .fetch_add(1, Ordering::Relaxed);
            nu.wait_time_from(self.clock.now())
        })
    }

    /// Check a sign-in attempt from `ip` for user `name` (the address
    /// first, so a flood from one address cannot use up a name's quota).
    /// `Err` carries how long to wait.
    pub fn check_login(&self, ip: IpAddr, name: &str) -> Result<(), Duration> {
        let r = self
            .login_ip
            .check_key(&limit_key(ip))
            // Keyed by at most 64 bytes (the longest valid name): a made-up
            // megabyte name must not become a megabyte key.
            .and_then(|()| {
                let key = crate::util::text::truncate(name.trim(), 64).to_lowercase();
                self.login_name.check_key(&key)
            })
            .map_err(|nu| nu.wait_time_from(self.clock.now()));
        if r.is_err() {
            self.counters.logins.fetch_add(1, Ordering::Relaxed);
        }
        r
    }

    fn check_keyed(
        &self,
        limiter: Option<&DefaultKeyedRateLimiter<IpAddr>>,
        ip: IpAddr,
    ) -> Result<(), Duration> {
        let Some(l) = limiter else { return Ok(()) };
        l.check_key(&limit_key(ip))
            .map_err(|nu| nu.wait_time_from(self.clock.now()))
    }

    /// Forget keys whose state has replenished, and release the memory.
    /// `live_sources` drops limiters of deleted sources.
    pub fn retain_recent(&self, live_sources: &dyn Fn(u64) -> bool) {
        for l in [&self.click_ip, &self.postback_ip].into_iter().flatten() {
            l.retain_recent();
            l.shrink_to_fit();
        }
        self.login_ip.retain_recent();
        self.login_ip.shrink_to_fit();
        self.login_name.retain_recent();
        self.login_name.shrink_to_fit();
        self.sources
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|id, _| live_sources(*id));
    }

    /// Keys held by the per-IP limiters (clicks, postbacks).
    pub fn ip_keys(&self) -> (usize, usize) {
        let n = |l: &Option<DefaultKeyedRateLimiter<IpAddr>>| l.as_ref().map_or(0, |l| l.len());
        (n(&self.click_ip), n(&self.postback_ip))
    }
}

/// IPv6 clients are limited per /64: one subscriber usually holds a whole
/// /64 and could otherwise rotate addresses to escape the limit.
fn limit_key(ip: IpAddr) -> IpAddr {
    match crate::util::net::canonical(ip) {
        IpAddr::V6(v6) => {
            let seg = v6.segments();
            IpAddr::V6(Ipv6Addr::new(seg[0], seg[1], seg[2], seg[3], 0, 0, 0, 0))
        }
        v4 => v4,
    }
}

/// `Retry-After` seconds for a wait (at least 1).
pub fn retry_after_secs(wait: Duration) -> u64 {
    wait.as_secs() + u64::from(wait.subsec_nanos() > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_ip_limit_and_v6_prefix() {
        let r = RateLimits::new(RateConfig {
            click_ip: Some((1, 2)),
            postback_ip: None,
            source_default: None,
        });
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2::ffff".parse().unwrap();
        assert!(r.check_click(a).is_ok());
        assert!(r.check_click(b).is_ok());
        let wait = r.check_click(a).unwrap_err();
        assert!(retry_after_secs(wait) >= 1);
        assert!(r.check_click("192.0.2.1".parse().unwrap()).is_ok());
        assert!(r.check_postback_ip(a).is_ok(), "postbacks unlimited here");
        assert_eq!(r.counters.clicks_ip.load(Ordering::Relaxed), 1);
    }
}
