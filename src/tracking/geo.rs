//! Country lookup over a MaxMind-format database already read into memory
//! (`geoip_db`; the file is read once at start by `App::open`). Pure: no
//! I/O after [`Geo::from_bytes`].
//!
//! Two record shapes are understood: `{"country_code": "US"}` (the CC0
//! ip-location-db files, e.g. `geo-whois-asn-country`) and
//! `{"country": {"iso_code": "US"}}` (MaxMind's GeoIP2 / GeoLite2 Country
//! and City).

use std::net::IpAddr;

use maxminddb::{PathElement, Reader};

use super::quality::country_code;
use crate::util::net;

/// A loaded country database.
pub struct Geo {
    reader: Reader<Vec<u8>>,
}

impl std::fmt::Debug for Geo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let m = self.reader.metadata();
        f.debug_struct("Geo")
            .field("database_type", &m.database_type)
            .field("build_epoch", &m.build_epoch)
            .finish()
    }
}

impl Geo {
    /// Parse a database file's bytes. The error says what is wrong (not an
    /// mmdb file, or one without country data) for the start-up message.
    pub fn from_bytes(bytes: Vec<u8>) -> Result<Geo, String> {
        let reader = Reader::from_source(bytes)
            .map_err(|e| format!("it is not a MaxMind DB (.mmdb) file: {e}"))?;
        let geo = Geo { reader };
        // A City/Country/ip-location-db file answers for well-known public
        // addresses; an ASN or other database answers nothing we can use,
        // which is worth refusing at start rather than storing no country
        // on every click. Probed without failing on a sparse file: the
        // check only requires that lookups themselves work.
        geo.reader
            .lookup(IpAddr::from([8, 8, 8, 8]))
            .map_err(|e| format!("lookups in it fail: {e}"))?;
        Ok(geo)
    }

    /// The database's type and build time, for the start-up log.
    pub fn describe(&self) -> String {
        let m = self.reader.metadata();
        format!(
            "{} (built {})",
            m.database_type,
            crate::util::clock::rfc3339(m.build_epoch.saturating_mul(1000))
        )
    }

    /// The ISO 3166-1 alpha-2 country of `ip` (uppercase), or `None` when
    /// the database has no entry (private ranges, unallocated space) or an
    /// entry without a usable code.
    pub fn country(&self, ip: IpAddr) -> Option<String> {
        let ip = net::canonical(ip);
        // An IPv6 address in an IPv4-only file is an error, not "unknown".
        let found = self.reader.lookup(ip).ok()?;
        let code: Option<&str> = found
            .decode_path(&[PathElement::Key("country_code")])
            .ok()
            .flatten()
            .or_else(|| {
                found
                    .decode_path(&[PathElement::Key("country"), PathElement::Key("iso_code")])
                    .ok()
                    .flatten()
            });
        code.and_then(country_code)
    }
}

/// The fixture writer the integration tests use, shared (`#[path]` is
/// relative to this file's directory).
#[cfg(test)]
#[path = "../../tests/mmdb_writer.rs"]
mod mmdb_writer;

#[cfg(test)]
mod tests {
    use super::mmdb_writer::{Shape, build};
    use super::*;

    const NETS: &[([u8; 4], u8, &str)] = &[
        ([81, 2, 64, 0], 18, "GB"),
        ([203, 0, 113, 0], 24, "au"),
        ([198, 51, 100, 0], 24, "XX"),
    ];

    #[test]
    fn looks_up_both_record_shapes() {
        for shape in [Shape::CountryCode, Shape::GeoIp2] {
            let geo = Geo::from_bytes(build(NETS, shape)).unwrap();
            let c = |ip: &str| geo.country(ip.parse().unwrap());
            assert_eq!(c("81.2.69.160").as_deref(), Some("GB"));
            // Stored uppercase whatever the file says.
            assert_eq!(c("203.0.113.77").as_deref(), Some("AU"));
            // IPv4-mapped IPv6 is looked up as IPv4.
            assert_eq!(c("::ffff:81.2.69.160").as_deref(), Some("GB"));
            assert_eq!(c("198.51.100.1"), None, "XX is unknown");
            assert_eq!(c("10.0.0.1"), None);
            // IPv6 in an IPv4-only file: unknown, not an error.
            assert_eq!(c("2001:db8::1"), None);
            assert!(geo.describe().starts_with("postbackd-test-country"));
        }
    }

    #[test]
    fn refuses_what_is_not_an_mmdb_file() {
        let e = Geo::from_bytes(b"country,code\n1.2.3.4,US\n".to_vec()).unwrap_err();
        assert!(e.contains("not a MaxMind DB"), "{e}");
        assert!(Geo::from_bytes(Vec::new()).is_err());
    }
}
