//! A minimal MaxMind DB (.mmdb) writer for test fixtures: an IPv4 search
//! tree (24-bit records) over a few networks, each mapped to a small
//! record, then the metadata, as the format spec lays them out
//! (maxmind.github.io/MaxMind-DB). Tests build their country database with
//! it at run time, so `cargo test` needs neither the network nor a binary
//! fixture of unclear origin. Also compiled into `src/tracking/geo.rs`'s
//! unit tests (`#[path]`).

/// A record the fixture can hold.
#[allow(dead_code)] // the integration tests use one shape, geo.rs's unit tests both
pub enum Shape {
    /// `{"country_code": "US"}`, as the ip-location-db files have it.
    CountryCode,
    /// `{"country": {"iso_code": "US"}}`, as MaxMind's GeoIP2 files.
    GeoIp2,
}

#[derive(Clone, Copy)]
enum Rec {
    Empty,
    Node(usize),
    Data(usize),
}

/// An mmdb file mapping each `(network, prefix length, country)` to a
/// record of `shape`. Networks must not overlap.
pub fn build(networks: &[([u8; 4], u8, &str)], shape: Shape) -> Vec<u8> {
    let mut nodes: Vec<[Rec; 2]> = vec![[Rec::Empty, Rec::Empty]];
    let mut data = Vec::new();
    for &(addr, prefix, country) in networks {
        let offset = data.len();
        match shape {
            Shape::CountryCode => {
                map(&mut data, 1);
                string(&mut data, "country_code");
                string(&mut data, country);
            }
            Shape::GeoIp2 => {
                map(&mut data, 1);
                string(&mut data, "country");
                map(&mut data, 1);
                string(&mut data, "iso_code");
                string(&mut data, country);
            }
        }
        let bits = u32::from_be_bytes(addr);
        let mut node = 0;
        for depth in 0..prefix {
            let bit = ((bits >> (31 - depth)) & 1) as usize;
            if depth + 1 == prefix {
                nodes[node][bit] = Rec::Data(offset);
            } else {
                node = match nodes[node][bit] {
                    Rec::Node(n) => n,
                    _ => {
                        nodes.push([Rec::Empty, Rec::Empty]);
                        let n = nodes.len() - 1;
                        nodes[node][bit] = Rec::Node(n);
                        n
                    }
                };
            }
        }
    }
    let count = nodes.len();
    let mut out = Vec::new();
    for pair in &nodes {
        for rec in pair {
            let v = match *rec {
                Rec::Empty => count,
                Rec::Node(n) => n,
                Rec::Data(off) => count + 16 + off,
            } as u32;
            out.extend_from_slice(&v.to_be_bytes()[1..]);
        }
    }
    out.extend_from_slice(&[0u8; 16]);
    out.extend_from_slice(&data);
    out.extend_from_slice(b"\xAB\xCD\xEFMaxMind.com");
    map(&mut out, 9);
    string(&mut out, "binary_format_major_version");
    uint(&mut out, 5, 2);
    string(&mut out, "binary_format_minor_version");
    uint(&mut out, 5, 0);
    string(&mut out, "build_epoch");
    uint(&mut out, 9, 1_700_000_000);
    string(&mut out, "database_type");
    string(&mut out, "postbackd-test-country");
    string(&mut out, "description");
    map(&mut out, 0);
    string(&mut out, "ip_version");
    uint(&mut out, 5, 4);
    string(&mut out, "languages");
    out.extend_from_slice(&[0x00, 0x04]); // array (extended type 11), empty
    string(&mut out, "node_count");
    uint(&mut out, 6, count as u64);
    string(&mut out, "record_size");
    uint(&mut out, 5, 24);
    out
}

fn map(out: &mut Vec<u8>, entries: u8) {
    assert!(entries < 29);
    out.push((7 << 5) | entries);
}

fn string(out: &mut Vec<u8>, s: &str) {
    assert!(s.len() < 29);
    out.push((2 << 5) | s.len() as u8);
    out.extend_from_slice(s.as_bytes());
}

/// An unsigned integer of type 5 (uint16), 6 (uint32) or 9 (uint64, an
/// extended type): big-endian, without leading zero bytes.
fn uint(out: &mut Vec<u8>, kind: u8, v: u64) {
    let bytes: Vec<u8> = v
        .to_be_bytes()
        .into_iter()
        .skip_while(|b| *b == 0)
        .collect();
    if kind > 7 {
        out.push(bytes.len() as u8);
        out.push(kind - 7);
    } else {
        out.push((kind << 5) | bytes.len() as u8);
    }
    out.extend_from_slice(&bytes);
}
