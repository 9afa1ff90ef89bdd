//! CIM's in-memory MerkleDAG of events: one node per event, one edge per
//! link (`prev` and `parents`), built on [`daggy`].
//!
//! Architecture invariant: this crate is pure. It does no I/O, no async and
//! knows nothing of NATS; the store feeds it events (rebuilding it from the
//! stream at start-up, then from the live tail) and asks it questions.
//!
//! # Building
//!
//! [`MerkleDag::insert`] takes events in append order, each with a position
//! (the JetStream stream sequence, or any ordinal the caller keeps). It runs
//! [`cim_cid::check_next`] first, so the DAG enforces exactly the chain rules
//! of the stand-alone [`cim_cid::ChainVerifier`]: a duplicate, fork, gap,
//! broken `prev` or dangling parent is refused with its
//! [`ChainError`] and the DAG is left unchanged.
//! [`MerkleDag`] implements [`cim_cid::ChainState`] for that purpose.
//!
//! # Layout
//!
//! Sized for tens of millions of events (measured in `docs/benchmarks.md`,
//! `cargo run --release -p cim-dag --example dag_memory -- 1000000`):
//!
//! - a `daggy::Dag<Node, EdgeKind, u32>`; a node is 48 bytes (the 32-byte
//!   sha2-256 digest of the event's CID, its position as `u64`, its
//!   aggregate as a `u32` index and its version as `u32`), plus petgraph's
//!   8 bytes of edge-list heads; an edge is 20 bytes with a one-byte
//!   `EdgeKind` (`Prev` or `Parent`). The CID itself is not stored: every
//!   event CID is CIDv1, dag-cbor, sha2-256, so the digest determines it.
//! - CID → node in a `hashbrown::HashTable<u32>` of node indices (5 bytes a
//!   slot), hashed from the digest with a randomly keyed SipHash, because
//!   writers choose CIDs and could otherwise grind colliding digests.
//! - aggregates in a vector of `(AggregateKey, head node)` plus a
//!   `HashTable<u32>` found by `(&str, &str)` without allocating. The head's
//!   version is read from its node rather than kept a second time.
//!
//! Indices are `u32`, so one DAG holds at most [`MAX_EVENTS`] events and
//! [`MAX_LINKS`] links; beyond that [`DagError::Capacity`] is returned.
//!
//! # Invariants
//!
//! - **Edges point from the older event to the newer** (prev → event,
//!   parent → event). daggy's `add_edge` skips its cycle search when the
//!   edge's target has no children, and a freshly inserted event has none, so
//!   every insert is O(1 + parents) amortised. Pointing edges the other way
//!   would run a depth-first search per edge. A cycle is impossible anyway:
//!   an event links only CIDs of events that exist before it, and finding
//!   content whose hash it already contains would break sha2-256.
//! - **Insertion order is a topological order.** Everything an event links
//!   is inserted before it and events are never removed, so every edge runs
//!   from a lower node index to a higher one. [`MerkleDag::topological_order`]
//!   is simply insertion order; walks size their visited bitsets to one side
//!   of the start event, and [`MerkleDag::causal_path`] searches only the
//!   events inserted between its two ends.
//!
//! # Queries
//!
//! [`MerkleDag::get`], [`MerkleDag::aggregate_head`], [`MerkleDag::heads`],
//! [`MerkleDag::ancestors`], [`MerkleDag::descendants`],
//! [`MerkleDag::causal_path`], [`MerkleDag::topological_order`],
//! [`MerkleDag::events_of`], and [`MerkleDag::to_dot`] to look at part of the
//! DAG with Graphviz. Events come back as [`EventRef`] views. Queries about
//! one event return [`DagError::UnknownEvent`] for a CID the DAG does not
//! hold, rather than an empty answer that would look like "no ancestors" or
//! "unrelated".
//!
//! # Design notes
//!
//! - An aggregate entry keeps its head node but not its version: the head
//!   node has it, and one copy cannot go stale.
//! - [`DagError::Chain`] boxes the [`ChainError`], which is over 300 bytes;
//!   unboxed it would make every `Result` of the crate that large.
//! - Links are checked once by [`cim_cid::check_next`]; parents are then
//!   looked up again to add their edges (the second look-up hits the cache),
//!   instead of collecting them into a per-insert allocation.

mod dag;
mod dot;
mod index;
mod node;
mod query;

use cim_cid::{ChainError, Cid};

pub use dag::{MAX_EVENTS, MAX_LINKS, MerkleDag};
pub use query::{EventRef, Walk};

/// Errors of building and querying the DAG.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DagError {
    /// The event does not fit the chains in the DAG; the DAG is unchanged.
    /// Boxed because a `ChainError` is several hundred bytes and would make
    /// every `Result` of this crate as large.
    #[error(transparent)]
    Chain(Box<ChainError>),
    /// The event's CID is not CIDv1, dag-cbor, sha2-256, the only CIDs events
    /// have.
    #[error("event CID {cid} cannot be in the DAG: {reason}")]
    UnsupportedCid {
        /// The CID.
        cid: Cid,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The event's version does not fit the DAG's 32-bit versions.
    #[error("event {cid} has version {version}, more than the DAG's limit of {}", u32::MAX)]
    VersionOverflow {
        /// The event.
        cid: Cid,
        /// The version it claims.
        version: u64,
    },
    /// The DAG is full: its `u32` indices allow no more.
    #[error("the DAG cannot hold more {what}: the limit is {limit}")]
    Capacity {
        /// What ran out: `events` or `links`.
        what: &'static str,
        /// The most the DAG can hold.
        limit: usize,
    },
    /// A query named an event that is not in the DAG.
    #[error("event {cid} is not in the DAG")]
    UnknownEvent {
        /// The event asked for.
        cid: Cid,
    },
    /// A checkpoint's heads ([`MerkleDag::insert_base`]) must come before
    /// every other event.
    #[error("base event {cid} cannot be added: the DAG already holds events that are not from the checkpoint")]
    BaseAfterEvents {
        /// The base event refused.
        cid: Cid,
    },
    /// Linking the event would have closed a cycle. Content addressing makes
    /// this impossible; it is reported (and the insert undone) rather than
    /// trusted.
    #[error("inserting event {cid} would close a cycle in the DAG")]
    WouldCycle {
        /// The event.
        cid: Cid,
    },
}

impl From<ChainError> for DagError {
    fn from(error: ChainError) -> Self {
        Self::Chain(Box::new(error))
    }
}

impl DagError {
    /// The chain problem, when the error is one.
    pub fn chain_error(&self) -> Option<&ChainError> {
        match self {
            Self::Chain(error) => Some(error),
            _ => None,
        }
    }
}

/// Result of this crate's operations.
pub type Result<T, E = DagError> = std::result::Result<T, E>;
