//! The Storage Manager's request API, shared by the manager (which serves
//! it), the CLI and any component that reads what the hot tier dropped:
//!
//! - the endpoints as typed [`cim_wire::Endpoint`] constants ([`STATUS`],
//!   [`SEAL`], [`SCRUB`], [`READ`], ...);
//! - the messages ([`Status`], [`SegmentInfo`], [`ScrubReport`], ...);
//! - [`StorageCode`], the manager's error codes;
//! - [`Client`], the client side, with [`Client::read_all`] to stream an
//!   item in ranges.
//!
//! [`READ`] and [`EVENT`] answer raw bytes rather than JSON: the caller
//! checks them against the CID it asked for (the manager has checked them
//! too, but nothing read is trusted without its hash).
//!
//! API boundary: depends on `cim-wire`, serde and serde_json only; no
//! server code. `docs/services.md` specifies the subjects and bodies;
//! `docs/spec/storage-tiers.md` the stored formats.

mod client;
mod code;
mod messages;

use cim_wire::{Empty, Endpoint, Service};

pub use client::{ArchivedEventBytes, Client, Item};
pub use code::StorageCode;
pub use messages::{
    EventRef, Finding, GcItem, GcReport, GcRequest, HotStatus, ItemKind, NamesSnapshotRef, ObjectPage, ObjectQuery,
    ObjectRef, ObjectStat, ReadRange, RetentionReport, RetentionRequest, ScrubReport, ScrubRequest, SealReport,
    SealRequest, SegmentInfo, SegmentList, SegmentQuery, Status, TierName, TierStatus,
};

/// The manager's micro service: name `cim-storage`, subjects
/// `cim.service.storage.…`.
pub const SERVICE: Service = Service::new("cim-storage", "cim.service.storage");

/// Usage per tier, lag, last scrub.
pub const STATUS: Endpoint<Empty, Status, StorageCode> = SERVICE.endpoint("status");
/// Seal the event stream and copy objects down now.
pub const SEAL: Endpoint<SealRequest, SealReport, StorageCode> = SERVICE.endpoint("seal");
/// Re-hash every item on every tier; repair from a good copy.
pub const SCRUB: Endpoint<ScrubRequest, ScrubReport, StorageCode> = SERVICE.endpoint("scrub");
/// Sweep unreferenced objects after their grace period (or list them).
pub const GC: Endpoint<GcRequest, GcReport, StorageCode> = SERVICE.endpoint("gc");
/// Apply the retention policy to the hot tier now (or list what would go).
pub const RETENTION: Endpoint<RetentionRequest, RetentionReport, StorageCode> = SERVICE.endpoint("retention");
/// The sealed segments, oldest first.
pub const SEGMENTS: Endpoint<SegmentQuery, SegmentList, StorageCode> = SERVICE.endpoint("segments.list");
/// Where an object is.
pub const OBJECT_STAT: Endpoint<ObjectRef, ObjectStat, StorageCode> = SERVICE.endpoint("objects.stat");
/// The objects the archive knows, a page at a time.
pub const OBJECT_LIST: Endpoint<ObjectQuery, ObjectPage, StorageCode> = SERVICE.endpoint("objects.list");
/// The newest names snapshot.
pub const NAMES: Endpoint<Empty, NamesSnapshotRef, StorageCode> = SERVICE.endpoint("names");
/// Part of an item on a tier, as raw bytes (the reply is not JSON:
/// [`encode_read_reply`]).
pub const READ: Endpoint<ReadRange, bytes::Bytes, StorageCode> = SERVICE.endpoint("read");
/// One event dropped from hot, found by CID in the archive: its raw bytes
/// ([`encode_event_reply`]).
pub const EVENT: Endpoint<EventRef, bytes::Bytes, StorageCode> = SERVICE.endpoint("events.get");

/// Most bytes one [`READ`] answers (below NATS's default 1 MiB payload).
pub const MAX_READ_LEN: u64 = 768 * 1024;

/// The body of a [`READ`] reply: the item's whole size (8 bytes, big
/// endian), the tier the bytes came from (1 byte: 0 warm, 1 cold), then the
/// bytes.
pub fn encode_read_reply(size: u64, tier: TierName, bytes: &[u8]) -> Vec<u8> {
    let mut body = Vec::with_capacity(9 + bytes.len());
    body.extend_from_slice(&size.to_be_bytes());
    body.push(u8::from(tier == TierName::Cold));
    body.extend_from_slice(bytes);
    body
}

/// The body of an [`EVENT`] reply: the event's stream sequence (8 bytes,
/// big endian), the length of the segment's CID string (2 bytes, big
/// endian), that string, then the event's bytes.
pub fn encode_event_reply(seq: u64, segment: &str, bytes: &[u8]) -> Vec<u8> {
    let mut body = Vec::with_capacity(10 + segment.len() + bytes.len());
    body.extend_from_slice(&seq.to_be_bytes());
    body.extend_from_slice(&(segment.len() as u16).to_be_bytes());
    body.extend_from_slice(segment.as_bytes());
    body.extend_from_slice(bytes);
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_are_the_documented_ones() {
        assert_eq!(STATUS.subject(), "cim.service.storage.status");
        assert_eq!(READ.subject(), "cim.service.storage.read");
        assert_eq!(SEGMENTS.subject(), "cim.service.storage.segments.list");
        assert_eq!(EVENT.subject(), "cim.service.storage.events.get");
    }

    #[test]
    fn kinds_and_tiers_on_the_wire() {
        let range =
            ReadRange { kind: ItemKind::Segments, cid: "b".into(), offset: 0, len: 1, tier: Some(TierName::Cold) };
        assert_eq!(
            serde_json::to_value(&range).expect("encode"),
            serde_json::json!({"kind": "segments", "cid": "b", "offset": 0, "len": 1, "tier": "cold"})
        );
        assert!(serde_json::from_str::<ReadRange>(r#"{"kind":"x","cid":"b","len":1}"#).is_err());
    }
}
