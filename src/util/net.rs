//! Client address resolution behind trusted reverse proxies.

use std::net::IpAddr;

use hyper::HeaderMap;
use ipnet::IpNet;

/// The address of the client that made the request.
///
/// `X-Forwarded-For` and `Forwarded` are honoured only when the TCP peer is
/// a configured trusted proxy; then the chain is walked from the right and
/// the first address that is not itself a trusted proxy is the client. An
/// untrusted peer's headers are ignored: anyone can send them.
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let peer = canonical(peer);
    let is_trusted = |ip: IpAddr| is_trusted(ip, trusted);
    if !is_trusted(peer) {
        return peer;
    }
    // X-Forwarded-For first: nginx ($proxy_add_x_forwarded_for) and Caddy
    // append the peer they saw to it, so its right end is trustworthy. A
    // `Forwarded` header is usually passed through untouched, i.e. chosen
    // by the client; it is read only when no X-Forwarded-For is present.
    let mut chain: Vec<IpAddr> = Vec::new();
    for v in headers.get_all("x-forwarded-for") {
        let Ok(v) = v.to_str() else { continue };
        chain.extend(v.split(',').filter_map(|s| s.trim().parse::<IpAddr>().ok()));
    }
    if chain.is_empty() {
        for v in headers.get_all("forwarded") {
            let Ok(v) = v.to_str() else { continue };
            for element in v.split(',') {
                for pair in element.split(';') {
                    let Some((k, val)) = pair.trim().split_once('=') else {
                        continue;
                    };
                    if k.trim().eq_ignore_ascii_case("for")
                        && let Some(ip) = parse_forwarded_for(val.trim())
                    {
                        chain.push(ip);
                    }
                }
            }
        }
    }
    for ip in chain.into_iter().rev().map(canonical) {
        if !is_trusted(ip) {
            return ip;
        }
    }
    peer
}

/// Is `peer` (the TCP peer) one of the configured trusted proxies, whose
/// headers (`X-Forwarded-For`, `CF-IPCountry`) may be believed?
pub fn is_trusted(peer: IpAddr, trusted: &[IpNet]) -> bool {
    let peer = canonical(peer);
    trusted.iter().any(|n| n.contains(&peer))
}

/// `for=` values: `192.0.2.1`, `"[2001:db8::1]:443"`, `192.0.2.1:80`.
fn parse_forwarded_for(v: &str) -> Option<IpAddr> {
    let v = v.trim_matches('"');
    if let Some(rest) = v.strip_prefix('[') {
        return rest.split(']').next()?.parse().ok();
    }
    v.parse()
        .ok()
        .or_else(|| v.rsplit_once(':').and_then(|(h, _)| h.parse().ok()))
}

/// IPv4-mapped IPv6 addresses compare as IPv4.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut m = HeaderMap::new();
        for (k, v) in pairs {
            m.append(*k, v.parse().unwrap());
        }
        m
    }

    #[test]
    fn untrusted_peer_headers_ignored() {
        let ip = client_ip(
            "198.51.100.7".parse().unwrap(),
            &h(&[("x-forwarded-for", "1.2.3.4")]),
            &[],
        );
        assert_eq!(ip, "198.51.100.7".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn x_forwarded_for_beats_a_client_supplied_forwarded() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        // The client sent `Forwarded: for=1.1.1.1`; the proxy appended the
        // real peer to X-Forwarded-For.
        let headers = h(&[
            ("forwarded", "for=1.1.1.1"),
            ("x-forwarded-for", "203.0.113.9"),
        ]);
        let ip = client_ip("10.0.0.1".parse().unwrap(), &headers, &trusted);
        assert_eq!(ip, "203.0.113.9".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn trusted_proxy_chain() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let headers = h(&[("x-forwarded-for", "6.6.6.6, 203.0.113.9, 10.0.0.2")]);
        let ip = client_ip("10.0.0.1".parse().unwrap(), &headers, &trusted);
        assert_eq!(ip, "203.0.113.9".parse::<IpAddr>().unwrap());
        let fwd = h(&[("forwarded", "for=\"[2001:db8::5]:4711\";proto=https")]);
        let ip = client_ip("::ffff:10.0.0.1".parse().unwrap(), &fwd, &trusted);
        assert_eq!(ip, "2001:db8::5".parse::<IpAddr>().unwrap());
    }
}
