//! The compact node and edge weights stored in the graph, and the checked
//! conversions from an event's CID and version into them.

use cim_cid::{Cid, DAG_CBOR, DIGEST_LEN, Event};

use crate::{DagError, Result};

/// One event in the graph: 48 bytes, no heap.
///
/// The CID is not stored: every event CID is CIDv1, dag-cbor, sha2-256, so
/// the 32-byte digest determines it (see [`Node::cid`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Node {
    /// The sha2-256 digest inside the event's CID.
    pub(crate) digest: [u8; DIGEST_LEN],
    /// The caller's ordinal for the event, e.g. its JetStream stream sequence.
    pub(crate) position: u64,
    /// Index of the event's aggregate in the aggregates table.
    pub(crate) aggregate: u32,
    /// The event's version in its aggregate's chain.
    pub(crate) version: u32,
}

impl Node {
    /// The event's CID, rebuilt from the digest.
    pub(crate) fn cid(&self) -> Cid {
        cim_cid::cid_from_digest(DAG_CBOR, &self.digest)
    }
}

/// Why one event links another. Edges run from the older event to the newer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub(crate) enum EdgeKind {
    /// The older event is the newer one's `prev`: the aggregate's hash chain.
    Prev,
    /// The older event is one of the newer one's `parents`: a causal link.
    Parent,
}

/// The digest of an event CID the DAG can hold: CIDv1, dag-cbor, sha2-256.
pub(crate) fn event_digest(cid: &Cid) -> Result<[u8; DIGEST_LEN]> {
    if cid.codec() != DAG_CBOR {
        return Err(DagError::UnsupportedCid {
            cid: *cid,
            reason: "an event's CID must have the dag-cbor codec (0x71)",
        });
    }
    cim_cid::sha256_digest(cid).map_err(|error| DagError::UnsupportedCid {
        cid: *cid,
        reason: match error {
            cim_cid::Error::UnsupportedCid { reason, .. } => reason,
            _ => "not a CIDv1 with a sha2-256 multihash",
        },
    })
}

/// The digest of `cid` if it is one the DAG could hold, for look-ups.
pub(crate) fn lookup_digest(cid: &Cid) -> Option<[u8; DIGEST_LEN]> {
    event_digest(cid).ok()
}

/// Narrows an event's version to the node's `u32`.
///
/// After [`cim_cid::check_next`] this cannot fail: a version is the previous
/// one plus one and the DAG holds fewer than `u32::MAX` events. It is checked
/// anyway, so that a future way of starting a chain mid-way cannot truncate.
pub(crate) fn compact_version(event: &Event) -> Result<u32> {
    let version = event.envelope.version();
    u32::try_from(version).map_err(|_| DagError::VersionOverflow { cid: event.cid, version })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_and_edge_are_compact() {
        // The memory budget (docs/benchmarks.md) rests on these sizes.
        assert_eq!(size_of::<Node>(), 48);
        assert_eq!(size_of::<EdgeKind>(), 1);
        assert_eq!(size_of::<daggy::petgraph::graph::Node<Node, u32>>(), 56);
        assert_eq!(size_of::<daggy::petgraph::graph::Edge<EdgeKind, u32>>(), 20);
    }

    #[test]
    fn version_beyond_u32_is_refused() -> std::result::Result<(), Box<dyn std::error::Error>> {
        let aggregate = cim_cid::AggregateKey::new("order", "1")?;
        let at = |version| -> std::result::Result<Event, Box<dyn std::error::Error>> {
            let prev = Some(cim_cid::dag_cbor_cid(b"prev"));
            let new = cim_cid::NewEvent::new("Happened", cim_cid::Ipld::Null)
                .with_timestamp(cim_cid::Timestamp::from_unix_micros(0));
            Ok(Event::encode(cim_cid::EventEnvelope::chained(&aggregate, version, prev, new)?)?.0)
        };
        assert_eq!(compact_version(&at(u64::from(u32::MAX))?)?, u32::MAX);
        let too_big = u64::from(u32::MAX) + 1;
        let event = at(too_big)?;
        assert_eq!(compact_version(&event), Err(DagError::VersionOverflow { cid: event.cid, version: too_big }));
        Ok(())
    }

    #[test]
    fn only_dag_cbor_sha256_cids_are_events() {
        let block = cim_cid::dag_cbor_cid(b"x");
        assert!(event_digest(&block).is_ok());
        let raw = cim_cid::raw_cid(b"x");
        assert!(matches!(event_digest(&raw), Err(DagError::UnsupportedCid { .. })));
    }
}
