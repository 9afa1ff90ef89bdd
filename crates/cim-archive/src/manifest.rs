//! The export manifest: the DAG-CBOR root block of every archive an export
//! writes (specified in `docs/spec/car-export.md`). It says what was
//! selected and links every aggregate's head and every object, so an IPLD
//! tool can walk the whole archive from the root, and an importer can tell
//! a complete archive from one that lost blocks.

use cim_cid::{Cid, Ipld, Timestamp};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Value of the manifest's `format` field.
pub const EXPORT_FORMAT: &str = "cim-export-v1";

/// The manifest. Field names are the DAG-CBOR map keys; absent values are
/// `null`, never missing keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Always [`EXPORT_FORMAT`].
    pub format: String,
    /// When the export was made, microseconds since the Unix epoch.
    pub created_us: Timestamp,
    /// The source store's namespace (informative).
    pub namespace: String,
    /// What was asked for.
    pub selection: Selection,
    /// Number of event blocks in the archive.
    pub events: u64,
    /// Every aggregate in the archive with its head (latest exported
    /// event), sorted by aggregate.
    pub heads: Vec<Head>,
    /// Every object block in the archive, sorted by the CIDs' string form.
    pub objects: Vec<Cid>,
    /// Named objects: each name's latest version record (itself one of the
    /// objects), sorted by name.
    pub names: Vec<NameHead>,
}

/// What an export selected. With no aggregates and no times: everything.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Selection {
    /// Only these aggregates (`type/id`), or all.
    pub aggregates: Option<Vec<String>>,
    /// Only events with a timestamp at or after this time.
    pub since_us: Option<Timestamp>,
    /// Only events with a timestamp before this time.
    pub until_us: Option<Timestamp>,
}

/// An aggregate's head in the archive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Head {
    /// `type/id`.
    pub aggregate: String,
    /// The head's version.
    pub version: u64,
    /// The head event.
    pub head: Cid,
}

/// A name and its latest version record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NameHead {
    /// The name.
    pub name: String,
    /// CID of its latest version record.
    pub head: Cid,
}

impl Manifest {
    /// Canonical DAG-CBOR bytes and CID.
    pub fn encode(&self) -> Result<(Cid, Vec<u8>)> {
        Ok(cim_cid::encode_dag_cbor(self)?)
    }

    /// Decodes and checks the manifest block `root`.
    pub fn decode(root: &Cid, bytes: &[u8]) -> Result<Self> {
        let not_a_manifest = |reason: String| Error::NotAManifest { root: *root, reason };
        let manifest: Self =
            cim_cid::decode_dag_cbor("export manifest", bytes).map_err(|e| not_a_manifest(e.to_string()))?;
        if manifest.format != EXPORT_FORMAT {
            return Err(not_a_manifest(format!(
                "unknown export format {:?}, expected {EXPORT_FORMAT:?}",
                manifest.format
            )));
        }
        Ok(manifest)
    }
}

/// Every link in IPLD data, depth first.
pub fn links(value: &Ipld, found: &mut Vec<Cid>) {
    match value {
        Ipld::Link(cid) => found.push(*cid),
        Ipld::List(items) => items.iter().for_each(|item| links(item, found)),
        Ipld::Map(entries) => entries.values().for_each(|item| links(item, found)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_canonically_with_nulls_and_decodes_back() {
        let manifest = Manifest {
            format: EXPORT_FORMAT.to_owned(),
            created_us: Timestamp::from_unix_micros(1),
            namespace: "cim".to_owned(),
            selection: Selection::default(),
            events: 0,
            heads: Vec::new(),
            objects: vec![cim_cid::raw_cid(b"x")],
            names: Vec::new(),
        };
        let (cid, bytes) = manifest.encode().expect("encode");
        assert_eq!(cid, cim_cid::dag_cbor_cid(&bytes));
        assert_eq!(Manifest::decode(&cid, &bytes).expect("decode"), manifest);
        let wrong = Manifest { format: "other".to_owned(), ..manifest };
        let (cid, bytes) = wrong.encode().expect("encode");
        let error = Manifest::decode(&cid, &bytes).expect_err("another format");
        assert!(matches!(error, Error::NotAManifest { root, .. } if root == cid), "{error}");
    }
}
