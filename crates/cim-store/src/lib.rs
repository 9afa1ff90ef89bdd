//! CIM's stores on NATS JetStream: a verifiable, CID-chained event store, a
//! content-addressed object store, named versioned objects, and KV helpers.
//!
//! API boundary: this is the only crate (besides the service runtime) that
//! speaks NATS directly. Everything it returns has been verified against its
//! CID; everything it writes is addressed by CID.
//!
//! Architecture invariants:
//! - Order is enforced by the server. Every append carries the stream
//!   sequence of the aggregate's head as `Nats-Expected-Last-Subject-Sequence`;
//!   any number of writers in any number of processes cannot fork a chain.
//!   In-process state ([`EventStore`]'s head hints) is only a hint.
//! - The events of one append are stored together or not at all (a JetStream
//!   atomic batch); the message id of every event is its CID, so a retried
//!   append is stored once.
//! - The MerkleDAG is rebuilt from the first event at every start with an
//!   ephemeral ordered consumer — never a durable one. It is one
//!   [`Follower`]: the shared way to build a state from the stream and keep
//!   it current, which components' projections use too.
//! - Retries follow one [`retry::Policy`]; a request the server refuses to
//!   this user fails at once with [`Error::PermissionDenied`].
//!
//! The stream, subjects, headers and buckets are specified in
//! `docs/spec/jetstream.md`.

mod checkpoint;
mod commit;
mod config;
mod consume;
mod direct;
mod error;
mod events;
mod follow;
mod kv;
mod live_dag;
mod message;
mod named;
mod objects;
mod provision;
mod read;
mod restore;
pub mod retry;
mod verify;

pub use checkpoint::{
    CHECKPOINT_FORMAT, Checkpoint, CheckpointHead, EVENTS_DROPPED, RETENTION_AGGREGATE_ID, RETENTION_AGGREGATE_TYPE,
    RetentionPoint,
};
pub use config::{CommitMode, MAX_BATCH_EVENTS, Names, StoreConfig};
pub use error::{Error, Result};
pub use events::{AppendOptions, Appended, AppendedEvent, EventStore, ExpectedVersion};
pub use follow::{Feed, Follower, FollowerState, StallCause};
pub use kv::{KvBucket, KvChange, KvOptions};
pub use live_dag::LiveDag;
pub use message::StoredEvent;
pub use named::{MAX_NAME_LEN, NAMED_FORMAT, NamedObjects, NamedRecord, NamedVersion, validate_name};
pub use objects::{BucketUsage, ObjectMeta, ObjectReader, ObjectStore};
pub use provision::events_stream_config;
pub use read::{AggregateQuery, LogState, StartAt};
pub use verify::{Problem, VerifyReport};

pub use cim_cid::{AggregateKey, Cid, Event, Ipld, NewEvent, Timestamp};
