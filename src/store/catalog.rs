//! The in-memory catalog of sources and links.
//!
//! Both hot paths (`/c/{slug}`, `/p/{key}`) need a link or a source before
//! anything else; reading them from redb on a tokio worker would be blocking
//! I/O on the request path. They are few and change only through the admin
//! API, so the writer thread keeps this snapshot and swaps in a new one
//! after each commit that changed it. Readers clone an `Arc`.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};

use super::records::{DestinationRecord, IpnRecord, LinkRecord, SourceRecord};
use crate::inbound::ipn;
use crate::inbound::postback::{Mapping, Status};
use crate::inbound::presets;

/// A source with its effective mapping precomputed.
#[derive(Debug)]
pub struct SourceEntry {
    pub id: u64,
    pub rec: SourceRecord,
    pub mapping: Mapping,
    /// Decoded HMAC keys of `rec.signing_secrets`; signing is required
    /// when non-empty.
    pub signing_keys: Vec<Vec<u8>>,
    /// Parsed `rec.allow_ips`; empty = any client.
    pub allow_ips: Vec<ipnet::IpNet>,
    /// `rec.ipn` as the decoders take it; `None` = no IPN receiver.
    pub ipn: Option<ipn::Settings>,
}

impl SourceEntry {
    pub fn new(id: u64, rec: SourceRecord) -> Self {
        let mapping = mapping_for(&rec);
        // Both lists were validated by the admin API before being stored.
        let signing_keys = rec
            .signing_secrets
            .iter()
            .filter_map(|s| crate::util::signing::decode_secret(s).ok())
            .collect();
        let allow_ips = rec
            .allow_ips
            .iter()
            .filter_map(|n| n.parse().ok())
            .collect();
        let ipn = rec.ipn.as_ref().and_then(ipn_settings);
        SourceEntry {
            id,
            rec,
            mapping,
            signing_keys,
            allow_ips,
            ipn,
        }
    }
}

/// The decoder's settings from a stored record (validated by the admin
/// API before it was stored; an unknown format reads as no receiver).
pub fn ipn_settings(r: &IpnRecord) -> Option<ipn::Settings> {
    Some(ipn::Settings {
        format: ipn::Format::parse(&r.format)?,
        secret: r.secret.clone(),
        click_id_field: r.click_id_field.clone(),
        amount: ipn::AmountBasis::parse(&r.amount).unwrap_or_default(),
        include_tests: r.include_tests,
    })
}

/// Preset first, then the source's own overrides.
pub fn mapping_for(rec: &SourceRecord) -> Mapping {
    let mut m = Mapping {
        default_currency: rec.default_currency.clone(),
        ..Mapping::default()
    };
    if let Some(p) = rec.preset.as_deref().and_then(presets::find) {
        for (field, name) in p.params {
            m.params.insert((*field).to_string(), (*name).to_string());
        }
        for (raw, st) in p.statuses {
            if let Some(st) = Status::parse(st) {
                m.statuses.insert(raw.to_ascii_lowercase(), st);
            }
        }
    }
    for (field, name) in &rec.params {
        m.params.insert(field.clone(), name.clone());
    }
    for (raw, st) in &rec.status_map {
        if let Some(st) = Status::parse(st) {
            m.statuses.insert(raw.to_ascii_lowercase(), st);
        }
    }
    m
}

/// A link with its slug.
#[derive(Debug)]
pub struct LinkEntry {
    pub slug: String,
    pub rec: LinkRecord,
}

/// A destination with its config parsed.
#[derive(Debug)]
pub struct DestinationEntry {
    pub id: u64,
    pub rec: DestinationRecord,
    /// `rec.config` parsed (validated when stored).
    pub config: serde_json::Value,
}

impl DestinationEntry {
    /// Does a conversion in this state go to this destination?
    pub fn wants(&self, source_id: u64, kind: &str, status: &str) -> bool {
        (self.rec.filter_sources.is_empty() || self.rec.filter_sources.contains(&source_id))
            && (self.rec.filter_types.is_empty() || self.rec.filter_types.iter().any(|t| t == kind))
            && self.rec.filter_statuses.iter().any(|s| s == status)
    }
}

/// Snapshot of all sources, links and destinations.
#[derive(Clone, Debug, Default)]
pub struct Catalog {
    pub sources: BTreeMap<u64, Arc<SourceEntry>>,
    /// Source key -> source ID.
    by_key: HashMap<String, u64>,
    pub links: BTreeMap<String, Arc<LinkEntry>>,
    pub destinations: BTreeMap<u64, Arc<DestinationEntry>>,
}

impl Catalog {
    pub fn source_by_key(&self, key: &str) -> Option<&Arc<SourceEntry>> {
        self.by_key.get(key).and_then(|id| self.sources.get(id))
    }

    pub fn put_source(&mut self, id: u64, rec: SourceRecord) -> Arc<SourceEntry> {
        if let Some(old) = self.sources.get(&id) {
            self.by_key.remove(&old.rec.key);
        }
        self.by_key.insert(rec.key.clone(), id);
        let entry = Arc::new(SourceEntry::new(id, rec));
        self.sources.insert(id, entry.clone());
        entry
    }

    pub fn remove_source(&mut self, id: u64) {
        if let Some(old) = self.sources.remove(&id) {
            self.by_key.remove(&old.rec.key);
        }
    }

    pub fn put_link(&mut self, slug: String, rec: LinkRecord) -> Arc<LinkEntry> {
        let entry = Arc::new(LinkEntry {
            slug: slug.clone(),
            rec,
        });
        self.links.insert(slug, entry.clone());
        entry
    }

    pub fn remove_link(&mut self, slug: &str) {
        self.links.remove(slug);
    }

    pub fn put_destination(&mut self, id: u64, rec: DestinationRecord) -> Arc<DestinationEntry> {
        let config = serde_json::from_str(&rec.config).unwrap_or(serde_json::Value::Null);
        let entry = Arc::new(DestinationEntry { id, rec, config });
        self.destinations.insert(id, entry.clone());
        entry
    }

    pub fn remove_destination(&mut self, id: u64) {
        self.destinations.remove(&id);
    }
}

/// The shared cell readers load from.
#[derive(Debug, Default)]
pub struct CatalogCell(RwLock<Arc<Catalog>>);

impl CatalogCell {
    pub fn load(&self) -> Arc<Catalog> {
        // A poisoned lock only means a writer panicked mid-swap of an Arc;
        // the Arc inside is still a complete snapshot.
        self.0.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn store(&self, c: Catalog) {
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(c);
    }
}
