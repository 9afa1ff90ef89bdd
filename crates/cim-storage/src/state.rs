//! The manager's own state, in its KV bucket `<namespace>-storage`:
//!
//! | key | value |
//! | --- | --- |
//! | `segment.<index, 12 digits>` | [`SegmentRecord`]: a segment sealed, written and verified on both tiers |
//! | `seal.pending` | [`PendingSeal`]: the seal under way (its manifest, so a restart redoes exactly it) |
//! | `object.<cid>` | [`ObjectRecord`]: where an object was verified, whether hot dropped it |
//! | `retention` | [`RetentionRecord`]: how far hot dropped events |
//! | `scrub.last` | the last [`cim_storage_api::ScrubReport`] (findings capped) |
//!
//! The tiers are the truth: the manifests and items there, re-hashed. The
//! records say what was verified when, so a restart neither copies nor
//! re-verifies what is done; a fresh host rebuilds them from the tiers.

use std::collections::BTreeMap;

use cim_storage_api::{ScrubReport, SegmentInfo, TierName};
use cim_store::{KvBucket, KvOptions, StoreConfig};
use futures::StreamExt;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::Result;

/// The bucket's name under the namespace.
pub const BUCKET: &str = "storage";
/// Findings kept in `scrub.last` (the report itself says how many there were).
const STORED_FINDINGS: usize = 1000;

/// A sealed segment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SegmentRecord {
    /// What its manifest says.
    #[serde(flatten)]
    pub info: SegmentInfo,
    /// Time (µs) of the newest event in it, as the server stored it.
    pub newest_event_us: i64,
    /// When it was last verified on each tier (µs).
    pub verified: BTreeMap<TierName, i64>,
}

impl SegmentRecord {
    /// Whether it was verified on both tiers.
    pub fn verified_on_both(&self) -> bool {
        TierName::ALL.iter().all(|tier| self.verified.get(tier).is_some_and(|&us| us > 0))
    }
}

/// The seal under way.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingSeal {
    /// The manifest's index.
    pub index: u64,
    /// The manifest's CID.
    pub manifest: String,
    /// Its DAG-CBOR bytes, hex.
    pub manifest_hex: String,
    /// Time (µs) of the newest event in the segment.
    pub newest_event_us: i64,
}

/// What the manager knows of one object.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectRecord {
    /// Size in bytes.
    pub size: u64,
    /// When it was last verified on each tier (µs).
    #[serde(default)]
    pub verified: BTreeMap<TierName, i64>,
    /// When hot dropped it (retention or collection), µs.
    #[serde(default)]
    pub dropped_from_hot_us: Option<i64>,
    /// Since when nothing references it (µs), as garbage collection last saw.
    #[serde(default)]
    pub unreferenced_since_us: Option<i64>,
    /// Deleted from every tier by garbage collection.
    #[serde(default)]
    pub collected: bool,
}

impl ObjectRecord {
    /// Whether it was verified on `tier`.
    pub fn verified_on(&self, tier: TierName) -> bool {
        self.verified.get(&tier).is_some_and(|&us| us > 0)
    }

    /// Whether it was verified on both tiers.
    pub fn verified_on_both(&self) -> bool {
        TierName::ALL.into_iter().all(|tier| self.verified_on(tier))
    }
}

/// How far hot dropped events.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetentionRecord {
    /// Events up to here are gone from the stream.
    pub dropped_through_seq: u64,
    /// The checkpoint at that sequence.
    pub checkpoint: Option<String>,
}

/// Everything the bucket held at start.
#[derive(Debug, Default)]
pub struct Loaded {
    /// Segments by index.
    pub segments: BTreeMap<u64, SegmentRecord>,
    /// The seal under way.
    pub pending: Option<PendingSeal>,
    /// Objects by CID string.
    pub objects: BTreeMap<String, ObjectRecord>,
    /// Retention.
    pub retention: RetentionRecord,
    /// The last scrub.
    pub last_scrub: Option<ScrubReport>,
}

/// The bucket. Cheap to clone.
#[derive(Debug, Clone)]
pub struct State {
    kv: KvBucket,
}

impl State {
    /// How the bucket keeps its records: `[buckets.storage]` of
    /// `components.toml`, which provisioning creates it with. One revision
    /// per key, kept until the manager replaces or deletes it.
    pub fn bucket_options() -> KvOptions {
        KvOptions {
            description: "CIM Storage Manager: segment, object, retention and scrub records (what is sealed, copied and verified on each tier)".to_owned(),
            history: 1,
            ttl: None,
            per_key_ttl_markers: None,
        }
    }

    /// Attaches to `<namespace>-storage`, which provisioning created (the
    /// manager's NATS user may not create or change streams).
    ///
    /// # Errors
    /// The bucket is missing (`cim_store::Error::NotProvisioned`) or kept
    /// otherwise than [`State::bucket_options`] (`Incompatible`).
    pub async fn open(client: async_nats::Client, config: &StoreConfig) -> Result<Self> {
        Ok(Self { kv: KvBucket::open(client, config, BUCKET, Self::bucket_options()).await? })
    }

    /// Reads every record.
    pub async fn load(&self) -> Result<Loaded> {
        let keys = self.kv.keys().await?;
        let mut loaded = Loaded::default();
        let values: Vec<_> = futures::stream::iter(keys)
            .map(|key| async move {
                let value = self.kv.get(&key).await;
                (key, value)
            })
            .buffer_unordered(32)
            .collect()
            .await;
        for (key, value) in values {
            let Some(value) = value? else { continue };
            if let Some(index) = key.strip_prefix("segment.") {
                if let (Ok(index), Some(record)) = (index.parse(), decode::<SegmentRecord>(&key, &value)) {
                    loaded.segments.insert(index, record);
                }
            } else if let Some(cid) = key.strip_prefix("object.") {
                if let Some(record) = decode::<ObjectRecord>(&key, &value) {
                    loaded.objects.insert(cid.to_owned(), record);
                }
            } else if key == "seal.pending" {
                loaded.pending = decode(&key, &value);
            } else if key == "retention" {
                loaded.retention = decode(&key, &value).unwrap_or_default();
            } else if key == "scrub.last" {
                loaded.last_scrub = decode(&key, &value);
            }
        }
        Ok(loaded)
    }

    /// Records a sealed segment.
    pub async fn put_segment(&self, record: &SegmentRecord) -> Result<()> {
        self.kv.put_json(&format!("segment.{:012}", record.info.index), record).await?;
        Ok(())
    }

    /// Records the seal under way.
    pub async fn put_pending(&self, pending: &PendingSeal) -> Result<()> {
        self.kv.put_json("seal.pending", pending).await?;
        Ok(())
    }

    /// The seal is done (or abandoned).
    pub async fn clear_pending(&self) -> Result<()> {
        self.kv.delete("seal.pending").await?;
        Ok(())
    }

    /// Records what is known of an object.
    pub async fn put_object(&self, cid: &str, record: &ObjectRecord) -> Result<()> {
        self.kv.put_json(&format!("object.{cid}"), record).await?;
        Ok(())
    }

    /// Records retention.
    pub async fn put_retention(&self, record: &RetentionRecord) -> Result<()> {
        self.kv.put_json("retention", record).await?;
        Ok(())
    }

    /// Records a scrub, keeping at most the first thousand findings.
    pub async fn put_scrub(&self, report: &ScrubReport) -> Result<()> {
        let mut stored = report.clone();
        stored.findings.truncate(STORED_FINDINGS);
        self.kv.put_json("scrub.last", &stored).await?;
        Ok(())
    }
}

fn decode<T: DeserializeOwned>(key: &str, value: &[u8]) -> Option<T> {
    match serde_json::from_slice(value) {
        Ok(record) => Some(record),
        Err(error) => {
            tracing::warn!(key, %error, "ignoring an unreadable state record");
            None
        }
    }
}

/// Hex of bytes.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// Bytes of hex.
pub fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips() {
        assert_eq!(unhex(&hex(b"\x00\xffab")).as_deref(), Some(&b"\x00\xffab"[..]));
        assert_eq!(unhex("0"), None);
        assert_eq!(unhex("zz"), None);
    }
}
