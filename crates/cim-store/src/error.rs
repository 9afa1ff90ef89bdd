//! The store's one error type: NATS failures translated into what they mean
//! for an event and object store.

use cim_cid::{AggregateKey, Cid};

/// Errors of the event store, object store and KV helpers.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Another writer appended first: the aggregate is not at the expected
    /// version. Re-read the aggregate and retry the command.
    #[error("concurrency conflict on {aggregate}: expected version {expected}, the aggregate is at version {actual}")]
    ConcurrencyConflict {
        /// The aggregate.
        aggregate: AggregateKey,
        /// The version the caller expected.
        expected: u64,
        /// The version the aggregate is at.
        actual: u64,
    },
    /// An event, a name or a payload breaks the envelope's rules.
    #[error("invalid input: {0}")]
    Invalid(#[from] cim_cid::Error),
    /// An append holds no events.
    #[error("an append must hold at least one event")]
    EmptyAppend,
    /// An append holds more events than one atomic batch can.
    #[error("an append holds {count} events; at most {max} can be stored atomically")]
    TooManyEvents {
        /// Events in the append.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// An encoded event exceeds the configured limit.
    #[error("event {index} of the append encodes to {size} bytes; the limit is {max}")]
    EventTooLarge {
        /// Position of the event in the append.
        index: usize,
        /// Its encoded size.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// A `parents` link names an event the store does not hold.
    #[error("event {index} of the append links parent {parent}, which is not in the store")]
    DanglingLink {
        /// Position of the event in the append.
        index: usize,
        /// The missing parent.
        parent: Cid,
    },
    /// A stored message is not a valid event: its bytes do not match its
    /// CID, do not decode, or sit under the wrong subject.
    #[error("event at stream sequence {seq}{} is corrupt: {reason}", cid.map(|c| format!(" ({c})")).unwrap_or_default())]
    CorruptEvent {
        /// Stream sequence of the message.
        seq: u64,
        /// The CID the message claims, when it claims a valid one.
        cid: Option<Cid>,
        /// What is wrong.
        reason: String,
    },
    /// A stored object does not match its CID or its metadata.
    #[error("object {cid} is corrupt: {reason}")]
    CorruptObject {
        /// The object.
        cid: Cid,
        /// What is wrong.
        reason: String,
    },
    /// No event with this CID.
    #[error("event {0} is not in the store")]
    EventNotFound(Cid),
    /// No object with this CID.
    #[error("object {0} is not in the store")]
    ObjectNotFound(Cid),
    /// No named object with this name (or version).
    #[error("no named object {name:?}{}", version.map(|v| format!(" at version {v}")).unwrap_or_default())]
    NameNotFound {
        /// The name.
        name: String,
        /// The version asked for, if any.
        version: Option<u64>,
    },
    /// A name cannot be moved to a version record that does not descend
    /// from its current head.
    #[error("name {name:?} is at {head}, which {adopted} does not descend from")]
    NameConflict {
        /// The name.
        name: String,
        /// Its current head record.
        head: Cid,
        /// The record that was to become the head.
        adopted: Cid,
    },
    /// A stream or bucket the store needs does not exist. Components only
    /// attach to what provisioning created; the admin creates it.
    #[error(
        "{resource} does not exist: provision the store first (`cim provision` as the admin user; cim-provision.service on NixOS, `cim up` locally)"
    )]
    NotProvisioned {
        /// The stream or bucket.
        resource: String,
    },
    /// An existing stream or bucket is configured in a way the store cannot
    /// use, and changing it would need an operator's decision.
    #[error("{resource} is configured incompatibly: {reason}")]
    Incompatible {
        /// The stream or bucket.
        resource: String,
        /// What differs.
        reason: String,
    },
    /// A field of the store configuration is out of range.
    #[error("invalid store configuration: `{field}` {reason}")]
    Config {
        /// The field, as named in `StoreConfig` (and the `[store]` TOML section).
        field: &'static str,
        /// What is wrong with its value.
        reason: String,
    },
    /// Events handed to [`EventStore::import`](crate::EventStore::import) do not form one aggregate's run.
    #[error("invalid import: {0}")]
    InvalidImport(String),
    /// The caller recorded with an append cannot be a header value.
    #[error("invalid caller {0:?}: it must be 1-256 printable ASCII characters")]
    InvalidCaller(String),
    /// The store holds more than the in-memory MerkleDAG can index.
    #[error("the MerkleDAG cannot hold the store: {0}")]
    DagCapacity(String),
    /// Reading the input of an object put failed.
    #[error("reading object input: {0}")]
    Io(#[from] std::io::Error),
    /// The server refused this connection's user a request (its
    /// permissions do not allow the subject). Not retryable: asking again
    /// is refused again.
    #[error("{op}: the server refused {subject} to this user (permission denied)")]
    PermissionDenied {
        /// The operation that was refused.
        op: &'static str,
        /// The subject the server refused.
        subject: String,
    },
    /// The stream no longer starts at its first event, and no retention
    /// point (a checkpoint) covers the events that are gone.
    #[error(
        "the event stream starts at sequence {first_seq}, and {}",
        match through_seq {
            Some(seq) => format!("the last retention point covers only up to sequence {seq}"),
            None => "no retention point (checkpoint) says why".to_owned(),
        }
    )]
    Uncovered {
        /// The stream's first sequence.
        first_seq: u64,
        /// How far the last retention point reaches, if there is one.
        through_seq: Option<u64>,
    },
    /// The event was dropped from the stream by retention: the Storage
    /// Manager's tiers hold it.
    #[error("event {cid} (stream sequence {seq}) was dropped from the hot tier; read it from the archive")]
    EventArchived {
        /// The event.
        cid: Cid,
        /// Its stream sequence.
        seq: u64,
    },
    /// A [`Follower`](crate::Follower) did not reach a stream position: its
    /// feed made no progress towards it for `waited`.
    #[error(
        "following the event stream: at stream sequence {applied}, short of {position}, with no progress for {waited:?}: {cause}"
    )]
    Stalled {
        /// The position waited for.
        position: u64,
        /// The position the follower has applied.
        applied: u64,
        /// How long it made no progress.
        waited: std::time::Duration,
        /// Why, as far as the server tells.
        cause: crate::StallCause,
    },
    /// NATS or JetStream failed; `op` says what the store was doing.
    #[error("{op}: {source}")]
    Nats {
        /// The operation that failed.
        op: &'static str,
        /// The client's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl Error {
    /// Wraps a NATS client error with the operation it interrupted; a
    /// refused request becomes [`Error::PermissionDenied`].
    pub(crate) fn nats(op: &'static str, source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        match source.into().downcast::<crate::retry::Denied>() {
            Ok(denied) => Self::PermissionDenied { op, subject: denied.subject },
            Err(source) => Self::Nats { op, source },
        }
    }

    /// True when retrying the same command may succeed: a conflict (after
    /// re-reading), a transient NATS failure, or a follower that stalled
    /// while its feed is still running. A permission denial is not.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::ConcurrencyConflict { .. } | Self::Nats { .. } => true,
            Self::Stalled { cause, .. } => !matches!(cause, crate::StallCause::FeedEnded { .. }),
            _ => false,
        }
    }
}

/// Result of the store's operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;
