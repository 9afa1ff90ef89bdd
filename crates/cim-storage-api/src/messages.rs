//! The Storage Manager's messages. CIDs travel as strings (base32,
//! `bafy…`/`bafk…`); `docs/services.md` and `docs/spec/storage-tiers.md`
//! specify the JSON and the stored formats.

use serde::{Deserialize, Serialize};

/// What a tier holds: the kinds of item, each under `<prefix><kind>/…`.
/// Checkpoints and names snapshots are objects (IPLD objects the manifests
/// link), so they are kept, scrubbed and restored as objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ItemKind {
    /// Objects of the object store, by CID.
    Objects,
    /// Sealed event segments (CAR files), by the raw CID of their bytes.
    Segments,
    /// Segment manifests, the CID-chained list of segments.
    Manifests,
}

impl ItemKind {
    /// Every kind.
    pub const ALL: [Self; 3] = [Self::Objects, Self::Segments, Self::Manifests];

    /// Its name on the wire and as a key prefix.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Objects => "objects",
            Self::Segments => "segments",
            Self::Manifests => "manifests",
        }
    }
}

impl std::fmt::Display for ItemKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The two lower tiers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TierName {
    /// The NAS (MinIO-like).
    Warm,
    /// The cloud (Wasabi-like).
    Cold,
}

impl TierName {
    /// Both, warm first.
    pub const ALL: [Self; 2] = [Self::Warm, Self::Cold];

    /// `warm` or `cold`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Warm => "warm",
            Self::Cold => "cold",
        }
    }

    /// The other tier.
    pub fn other(self) -> Self {
        match self {
            Self::Warm => Self::Cold,
            Self::Cold => Self::Warm,
        }
    }
}

impl std::fmt::Display for TierName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Reads part of an item a tier holds: the reply is the raw bytes
/// (`READ`), at most `len` of them (the manager caps it at
/// [`MAX_READ_LEN`](crate::MAX_READ_LEN)), framed by
/// [`encode_read_reply`](crate::encode_read_reply).
/// The caller hashes the whole item against its CID.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReadRange {
    /// What kind of item.
    pub kind: ItemKind,
    /// Its CID.
    pub cid: String,
    /// First byte.
    #[serde(default)]
    pub offset: u64,
    /// Bytes wanted.
    pub len: u64,
    /// Read from this tier only (default: warm, then cold if warm lacks it
    /// or holds it corrupt).
    #[serde(default)]
    pub tier: Option<TierName>,
}

/// Locates an event that was dropped from the hot tier.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventRef {
    /// The event's CID.
    pub cid: String,
}

/// Which segments to list.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SegmentQuery {
    /// Only segments holding stream sequences at or after this one.
    #[serde(default)]
    pub from_seq: Option<u64>,
    /// Only segments holding stream sequences at or before this one.
    #[serde(default)]
    pub to_seq: Option<u64>,
}

/// One sealed segment, as its manifest describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SegmentInfo {
    /// Position in the manifest chain (0, 1, …).
    pub index: u64,
    /// CID of its manifest.
    pub manifest: String,
    /// Raw CID of the segment's CAR bytes.
    pub segment: String,
    /// CID of the segment's root block (its header).
    pub header: String,
    /// First stream sequence.
    pub first_seq: u64,
    /// Last stream sequence.
    pub last_seq: u64,
    /// Events.
    pub events: u64,
    /// Bytes of the CAR.
    pub bytes: u64,
    /// CID of the checkpoint at `last_seq`.
    pub checkpoint: String,
    /// CID of the names snapshot, if any.
    pub names: Option<String>,
    /// When it was sealed, microseconds since the Unix epoch.
    pub sealed_us: i64,
}

/// Segments, oldest first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SegmentList {
    /// The segments.
    pub segments: Vec<SegmentInfo>,
}

/// One object, by CID.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ObjectRef {
    /// Its CID.
    pub cid: String,
}

/// Where an object is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectStat {
    /// Its CID.
    pub cid: String,
    /// Size in bytes.
    pub size: u64,
    /// Whether the hot tier (the JetStream object store) holds it.
    pub hot: bool,
    /// Lower tiers that hold it (verified there, or listed there and not
    /// yet verified by this manager, on a host rebuilt from the tiers).
    pub tiers: Vec<TierName>,
}

/// A page of the objects the archive knows.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ObjectQuery {
    /// Start after this CID (the previous page's `next`).
    #[serde(default)]
    pub after: Option<String>,
    /// Most entries (default and maximum 1000).
    #[serde(default)]
    pub limit: Option<u32>,
}

/// A page of objects, by CID string order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectPage {
    /// The objects.
    pub objects: Vec<ObjectStat>,
    /// The `after` of the next page, if there is one.
    pub next: Option<String>,
}

/// Seals and copies now.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SealRequest {
    /// Seal every event stored so far, even below the policy's thresholds.
    #[serde(default)]
    pub force: bool,
}

/// What a seal and copy did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealReport {
    /// Segments sealed now (written and verified on both tiers).
    pub sealed: Vec<SegmentInfo>,
    /// Objects copied to a tier and verified there.
    pub objects_copied: u64,
    /// Bytes of objects copied (each tier counted).
    pub object_bytes_copied: u64,
    /// Copies skipped because the tier already held the item, verified.
    pub already_present: u64,
    /// Last stream sequence sealed after this run.
    pub sealed_through_seq: u64,
}

/// Scrubs now.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScrubRequest {
    /// Report only; do not repair.
    #[serde(default)]
    pub no_repair: bool,
}

/// Something wrong a scrub found on a tier.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// The tier.
    pub tier: TierName,
    /// The kind of item.
    pub kind: ItemKind,
    /// Its key on the tier.
    pub key: String,
    /// Its CID.
    pub cid: String,
    /// `missing`, `corrupt` or `unreadable`.
    pub problem: String,
    /// Details (what the bytes hash to, the error).
    pub detail: String,
    /// Repaired from the other tier (or hot), verified.
    pub repaired: bool,
    /// Where the good copy came from.
    pub repaired_from: Option<String>,
}

/// What a scrub found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScrubReport {
    /// When it started, microseconds since the Unix epoch.
    pub started_us: i64,
    /// When it ended.
    pub finished_us: i64,
    /// Items re-hashed (every tier counted).
    pub items_checked: u64,
    /// Bytes re-hashed.
    pub bytes_checked: u64,
    /// Problems, by tier and key.
    pub findings: Vec<Finding>,
    /// Findings repaired.
    pub repaired: u64,
    /// Findings left as they are.
    pub unrepaired: u64,
}

/// Garbage collection of unreferenced objects.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GcRequest {
    /// List what would go; delete nothing.
    #[serde(default)]
    pub dry_run: bool,
}

/// An object garbage collection found unreferenced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GcItem {
    /// Its CID.
    pub cid: String,
    /// Size in bytes.
    pub size: u64,
    /// When it was first seen unreferenced, microseconds since the epoch.
    pub unreferenced_since_us: i64,
    /// Whether the grace period has passed (it is, or would be, swept).
    pub due: bool,
}

/// What garbage collection found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GcReport {
    /// Nothing was deleted.
    pub dry_run: bool,
    /// Grace period, seconds.
    pub grace_secs: u64,
    /// Objects referenced (from events, names and units).
    pub referenced: u64,
    /// Unreferenced objects.
    pub unreferenced: Vec<GcItem>,
    /// Objects deleted from every tier now.
    pub swept: u64,
    /// Their bytes.
    pub swept_bytes: u64,
}

/// Applies the retention policy now.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionRequest {
    /// List what would be dropped; drop nothing.
    #[serde(default)]
    pub dry_run: bool,
}

/// What retention dropped from the hot tier.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetentionReport {
    /// Nothing was dropped.
    pub dry_run: bool,
    /// Events up to this stream sequence are (or would be) gone from hot.
    pub events_dropped_through_seq: u64,
    /// Events dropped now.
    pub events_dropped: u64,
    /// The checkpoint a rebuild of the hot tier starts from.
    pub checkpoint: Option<String>,
    /// Objects dropped from hot now (or that would be).
    pub objects_dropped: Vec<String>,
    /// Their bytes.
    pub object_bytes_dropped: u64,
}

/// The hot tier as the manager sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HotStatus {
    /// First stream sequence still in hot.
    pub first_seq: u64,
    /// Last stream sequence.
    pub last_seq: u64,
    /// Events in hot.
    pub events: u64,
    /// Bytes of the event stream.
    pub event_bytes: u64,
    /// Objects in hot.
    pub objects: u64,
    /// Bytes of the object bucket.
    pub object_bytes: u64,
    /// Events up to this sequence were dropped by retention (0: none).
    pub dropped_through_seq: u64,
}

/// One lower tier.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TierStatus {
    /// `warm` or `cold`.
    pub name: String,
    /// The S3 endpoint.
    pub endpoint: String,
    /// The bucket.
    pub bucket: String,
    /// Key prefix inside the bucket.
    pub prefix: String,
    /// Whether the last request to it succeeded.
    pub reachable: bool,
    /// The last error, if the last request failed.
    pub last_error: Option<String>,
    /// Objects verified on it.
    pub objects: u64,
    /// Their bytes.
    pub object_bytes: u64,
    /// Segments on it.
    pub segments: u64,
    /// Their bytes.
    pub segment_bytes: u64,
    /// Stream sequences hot holds beyond what is sealed and verified here.
    pub lag_events: u64,
    /// Hot objects not yet verified here.
    pub lag_objects: u64,
    /// Items and bytes written to it since the manager started.
    pub written: u64,
    /// Bytes written since the manager started.
    pub written_bytes: u64,
    /// Writes skipped because it already held the item, verified.
    pub skipped_present: u64,
}

/// The manager's status.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    /// Store namespace.
    pub namespace: String,
    /// The answering instance.
    pub instance: String,
    /// The hot tier.
    pub hot: HotStatus,
    /// Segments sealed.
    pub segments: u64,
    /// Last stream sequence sealed (0: none).
    pub sealed_through_seq: u64,
    /// CID of the newest manifest.
    pub manifest_head: Option<String>,
    /// The lower tiers, warm first.
    pub tiers: Vec<TierStatus>,
    /// The last scrub, if any.
    pub last_scrub: Option<ScrubReport>,
    /// The hot tier is behind the archive: `cim restore` it.
    pub restore_needed: bool,
    /// What the manager is doing now, if anything (`seal`, `scrub`, …).
    pub busy: Vec<String>,
}

/// The newest names snapshot in the archive.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NamesSnapshotRef {
    /// Its CID, if a seal recorded one.
    pub cid: Option<String>,
}
