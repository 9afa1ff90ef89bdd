//! Checkpoints: every aggregate's head at a stream position, so that a
//! store whose early events were dropped from the stream (tiered away by
//! the Storage Manager) can still rebuild and verify everything after them.
//!
//! A checkpoint is a DAG-CBOR object (`cim-checkpoint-v1`, specified in
//! `docs/spec/storage-tiers.md`) in the object store, named by its CID like
//! any object. When events up to stream sequence *t* are dropped, the
//! Storage Manager first appends an `EventsDropped` event to the aggregate
//! `storage/retention` naming *t* and the checkpoint at *t*, then purges
//! every aggregate's events before its head at *t*
//! ([`EventStore::drop_before_heads`]). A rebuild of a stream with a
//! retention point reads that event (the last on its subject), loads the
//! checkpoint (verified against its CID), starts the MerkleDAG from its
//! heads and reads the stream from *t* + 1: every chain that continues past
//! the checkpoint is verified from there.

use cim_cid::{AggregateKey, Cid, DAG_CBOR, Ipld};
use serde::{Deserialize, Serialize};

use crate::direct::{self, Lookup};
use crate::message::decode_stream_message;
use crate::{Error, EventStore, ObjectStore, Result};

/// Value of a checkpoint's `format` field.
pub const CHECKPOINT_FORMAT: &str = "cim-checkpoint-v1";
/// Aggregate type of the Storage Manager's retention record.
pub const RETENTION_AGGREGATE_TYPE: &str = "storage";
/// Aggregate id of the retention record.
pub const RETENTION_AGGREGATE_ID: &str = "retention";
/// Event type recording a drop of events from the stream.
pub const EVENTS_DROPPED: &str = "EventsDropped";

/// Every aggregate's head at a stream position. Field names are the map
/// keys of the DAG-CBOR object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Checkpoint {
    /// Always [`CHECKPOINT_FORMAT`].
    pub format: String,
    /// The store's namespace.
    pub namespace: String,
    /// The stream position it describes: every event at or before it.
    pub through_seq: u64,
    /// Events at or before `through_seq`.
    pub events: u64,
    /// One per aggregate with events at or before `through_seq`, sorted by
    /// `aggregate`.
    pub heads: Vec<CheckpointHead>,
}

/// One aggregate's head in a [`Checkpoint`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckpointHead {
    /// `type/id`.
    pub aggregate: String,
    /// Version of the head event.
    pub version: u64,
    /// CID of the head event.
    pub head: Cid,
    /// Stream sequence of the head event.
    pub seq: u64,
}

impl Checkpoint {
    /// Its canonical DAG-CBOR bytes and CID.
    ///
    /// # Errors
    /// If it cannot be encoded (it always can).
    pub fn encode(&self) -> Result<(Cid, Vec<u8>)> {
        Ok(cim_cid::encode_dag_cbor(self)?)
    }

    /// Decodes and checks the checkpoint `cid`: the bytes hash to it, are
    /// canonical, name the format, and list each aggregate once, sorted,
    /// with heads at or before `through_seq`.
    ///
    /// # Errors
    /// [`Error::CorruptObject`] naming what is wrong.
    pub fn decode(cid: &Cid, bytes: &[u8]) -> Result<Self> {
        let corrupt = |reason: String| Error::CorruptObject { cid: *cid, reason };
        if cid.codec() != DAG_CBOR {
            return Err(corrupt("a checkpoint's CID must have the dag-cbor codec".to_owned()));
        }
        cim_cid::verify_block(cid, bytes).map_err(|e| corrupt(e.to_string()))?;
        let checkpoint: Self = cim_cid::decode_dag_cbor("checkpoint", bytes).map_err(|e| corrupt(e.to_string()))?;
        if checkpoint.format != CHECKPOINT_FORMAT {
            return Err(corrupt(format!("format {:?}, expected {CHECKPOINT_FORMAT:?}", checkpoint.format)));
        }
        for pair in checkpoint.heads.windows(2) {
            if pair[0].aggregate >= pair[1].aggregate {
                return Err(corrupt(format!("heads not sorted or repeated at {:?}", pair[1].aggregate)));
            }
        }
        for head in &checkpoint.heads {
            head.aggregate.parse::<AggregateKey>().map_err(|e| corrupt(format!("head {:?}: {e}", head.aggregate)))?;
            if head.seq > checkpoint.through_seq || head.seq == 0 || head.version == 0 {
                return Err(corrupt(format!(
                    "head of {} at sequence {} version {} is not at or before {}",
                    head.aggregate, head.seq, head.version, checkpoint.through_seq
                )));
            }
        }
        Ok(checkpoint)
    }
}

/// The payload of an `EventsDropped` event: `{"through_seq", "checkpoint"}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetentionPoint {
    /// Events up to this stream sequence may be gone from the stream.
    pub through_seq: u64,
    /// The checkpoint at `through_seq`.
    pub checkpoint: Cid,
}

impl RetentionPoint {
    /// The event payload.
    pub fn to_payload(&self) -> Ipld {
        Ipld::Map(
            [
                ("checkpoint".to_owned(), Ipld::Link(self.checkpoint)),
                ("through_seq".to_owned(), Ipld::Integer(i128::from(self.through_seq))),
            ]
            .into(),
        )
    }

    /// Reads it back from an event payload.
    pub fn from_payload(payload: &Ipld) -> Option<Self> {
        let Ipld::Map(map) = payload else { return None };
        let Some(Ipld::Link(checkpoint)) = map.get("checkpoint") else { return None };
        let Some(Ipld::Integer(through_seq)) = map.get("through_seq") else { return None };
        Some(Self { through_seq: u64::try_from(*through_seq).ok()?, checkpoint: *checkpoint })
    }
}

impl EventStore {
    /// The last retention point recorded in the stream, if any.
    ///
    /// # Errors
    /// The server cannot be read, or the last `storage/retention` event is
    /// corrupt or not an `EventsDropped` record.
    pub async fn retention_point(&self) -> Result<Option<RetentionPoint>> {
        let subject = format!("{}.{RETENTION_AGGREGATE_TYPE}.{RETENTION_AGGREGATE_ID}", self.names().events_prefix);
        let Some(message) = direct::get(self.stream(), Lookup::LastFor(&subject))
            .await
            .map_err(|e| Error::nats("reading the retention record", e))?
        else {
            return Ok(None);
        };
        let stored = decode_stream_message(self.names(), &message)?;
        let envelope = &stored.event.envelope;
        if envelope.event_type() != EVENTS_DROPPED {
            return Err(Error::CorruptEvent {
                seq: stored.seq,
                cid: Some(stored.event.cid),
                reason: format!("the retention record is a {:?}, not an {EVENTS_DROPPED}", envelope.event_type()),
            });
        }
        RetentionPoint::from_payload(envelope.payload()).map(Some).ok_or_else(|| Error::CorruptEvent {
            seq: stored.seq,
            cid: Some(stored.event.cid),
            reason: "an EventsDropped payload must be {\"through_seq\": int, \"checkpoint\": link}".to_owned(),
        })
    }

    /// The checkpoint a rebuild starts from: `None` while no events were
    /// dropped from the stream (no retention point is recorded); otherwise
    /// the checkpoint of the last retention point, loaded from the object
    /// store and verified.
    ///
    /// # Errors
    /// The stream starts past 1 and no retention point covers the events
    /// that are gone ([`Error::Uncovered`]), or the checkpoint cannot be read
    /// or is corrupt.
    pub async fn start_checkpoint(&self) -> Result<Option<(Cid, Checkpoint)>> {
        let log = self.log_state().await?;
        let Some(point) = self.retention_point().await? else {
            if log.first_seq > 1 {
                return Err(Error::Uncovered { first_seq: log.first_seq, through_seq: None });
            }
            return Ok(None);
        };
        if point.through_seq + 1 < log.first_seq {
            return Err(Error::Uncovered { first_seq: log.first_seq, through_seq: Some(point.through_seq) });
        }
        let objects = ObjectStore::open(self.client().clone(), self.config()).await?;
        let bytes = objects.get_bytes(&point.checkpoint).await?;
        let checkpoint = Checkpoint::decode(&point.checkpoint, &bytes)?;
        if checkpoint.through_seq != point.through_seq {
            return Err(Error::CorruptObject {
                cid: point.checkpoint,
                reason: format!(
                    "the retention record names it for sequence {}, but it describes sequence {}",
                    point.through_seq, checkpoint.through_seq
                ),
            });
        }
        Ok(Some((point.checkpoint, checkpoint)))
    }

    /// Drops from the stream every event at or before `checkpoint`'s
    /// position except each aggregate's head there: for each aggregate of
    /// the checkpoint (those whose head moved since `previous`, the last
    /// checkpoint dropped through), the messages on its subject before its
    /// head are purged. Each head stays, so writers keep finding their
    /// aggregate's last event and version on its subject, and the server's
    /// expected-sequence check goes on guarding the chain (a purge up to a
    /// sequence would leave an aggregate without events that looks new, and
    /// its next append would fork it).
    ///
    /// Only the Storage Manager does this, for events verified on both
    /// lower tiers, after recording the retention point; its NATS user is
    /// the only one allowed to. Returns the messages purged.
    ///
    /// # Errors
    /// A purge is refused ([`Error::PermissionDenied`] for other users) or
    /// fails; purges already done stay done, and running it again is safe.
    pub async fn drop_before_heads(&self, checkpoint: &Checkpoint, previous: Option<&Checkpoint>) -> Result<u64> {
        let subject = format!("$JS.API.STREAM.PURGE.{}", self.names().events_stream);
        let before: std::collections::HashMap<&str, u64> =
            previous.map(|p| p.heads.iter().map(|h| (h.aggregate.as_str(), h.seq)).collect()).unwrap_or_default();
        let mut purged = 0;
        for head in &checkpoint.heads {
            if head.version <= 1 || before.get(head.aggregate.as_str()) == Some(&head.seq) {
                continue;
            }
            let aggregate: AggregateKey = head.aggregate.parse()?;
            let filter = self.names().aggregate_subject(&aggregate);
            let purge = self.stream().purge().filter(filter).sequence(head.seq).into_future();
            let response = crate::retry::unless_denied(&subject, purge)
                .await
                .map_err(|e| Error::nats("purging events from the stream", e))?;
            purged += response.purged;
        }
        Ok(purged)
    }
}
