//! Chain verification: each aggregate's events form a hash chain through
//! `prev`, numbered by `version`; `parents` must link to events that exist.
//!
//! The rules live in [`check_next`] over a [`ChainState`], so the in-memory
//! MerkleDAG and the stand-alone [`ChainVerifier`] enforce exactly the same
//! thing.

use std::collections::{HashMap, HashSet};

use cid::Cid;

use crate::event::{AggregateKey, Event};

/// A chain problem, naming the event and the aggregate it breaks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ChainError {
    /// The event was already seen: the store holds it twice.
    #[error("event {cid} appears twice")]
    Duplicate {
        /// The repeated event.
        cid: Cid,
    },
    /// Versions skip: events between the head and this one are missing.
    #[error("gap in {aggregate}: expected version {expected}, event {cid} has version {found}")]
    Gap {
        /// The aggregate.
        aggregate: AggregateKey,
        /// The event after the gap.
        cid: Cid,
        /// The version that should come next.
        expected: u64,
        /// The version the event claims.
        found: u64,
    },
    /// A second event claims a version the chain already has.
    #[error(
        "fork in {aggregate}: event {cid} claims version {version}, but the chain is already at version {head_version}"
    )]
    Fork {
        /// The aggregate.
        aggregate: AggregateKey,
        /// The forking event.
        cid: Cid,
        /// The version it claims.
        version: u64,
        /// The version the chain had reached.
        head_version: u64,
    },
    /// The event's `prev` is not the aggregate's previous event.
    #[error("broken chain in {aggregate} at version {version}: event {cid} links prev {found}, expected {expected}", found = fmt_link(found.as_ref()), expected = fmt_link(expected.as_ref()))]
    BrokenPrev {
        /// The aggregate.
        aggregate: AggregateKey,
        /// The event with the wrong link.
        cid: Cid,
        /// Its version.
        version: u64,
        /// CID of the aggregate's previous event.
        expected: Option<Cid>,
        /// What the event links instead.
        found: Option<Cid>,
    },
    /// A parent link points at no known event.
    #[error("event {cid} links parent {parent}, which is not in the store")]
    DanglingParent {
        /// The event holding the link.
        cid: Cid,
        /// The missing parent.
        parent: Cid,
    },
}

fn fmt_link(link: Option<&Cid>) -> String {
    link.map_or_else(|| "null".to_owned(), Cid::to_string)
}

/// What chain verification needs to know about the events seen so far.
pub trait ChainState {
    /// Version and CID of the aggregate's latest event, if it has any.
    fn head(&self, aggregate_type: &str, aggregate_id: &str) -> Option<(u64, Cid)>;
    /// Whether the event `cid` is known.
    fn contains(&self, cid: &Cid) -> bool;
}

/// Checks that `event` may follow the events in `state`: not a duplicate, the
/// next version of its aggregate, linked to the aggregate's head, and with
/// every parent known. Reports the first problem found.
pub fn check_next(state: &impl ChainState, event: &Event) -> Result<(), ChainError> {
    let envelope = &event.envelope;
    if state.contains(&event.cid) {
        return Err(ChainError::Duplicate { cid: event.cid });
    }
    let version = envelope.version();
    let head = state.head(envelope.aggregate_type(), envelope.aggregate_id());
    let (head_version, head_cid) = head.map_or((0, None), |(v, c)| (v, Some(c)));
    if version <= head_version {
        return Err(ChainError::Fork { aggregate: envelope.aggregate(), cid: event.cid, version, head_version });
    }
    if version > head_version + 1 {
        return Err(ChainError::Gap {
            aggregate: envelope.aggregate(),
            cid: event.cid,
            expected: head_version + 1,
            found: version,
        });
    }
    if envelope.prev() != head_cid.as_ref() {
        return Err(ChainError::BrokenPrev {
            aggregate: envelope.aggregate(),
            cid: event.cid,
            version,
            expected: head_cid,
            found: envelope.prev().copied(),
        });
    }
    if let Some(parent) = envelope.parents().iter().find(|p| !state.contains(p)) {
        return Err(ChainError::DanglingParent { cid: event.cid, parent: *parent });
    }
    Ok(())
}

/// Verifies a sequence of events in append order (each aggregate's events in
/// version order, parents before children), collecting every problem.
///
/// After a gap or a broken `prev` the event still becomes the head, so one
/// break is reported once rather than for every later event; a fork or a
/// duplicate is not applied.
#[derive(Debug, Default)]
pub struct ChainVerifier {
    heads: HashMap<String, (u64, Cid)>,
    known: HashSet<Cid>,
    problems: Vec<ChainError>,
}

impl ChainVerifier {
    /// A verifier that knows no events.
    pub fn new() -> Self {
        Self::default()
    }

    /// Checks the next event and records it; returns the problem, if any,
    /// which is also kept for [`ChainVerifier::problems`].
    pub fn push(&mut self, event: &Event) -> Result<(), ChainError> {
        let outcome = check_next(self, event);
        let applies = !matches!(outcome, Err(ChainError::Fork { .. } | ChainError::Duplicate { .. }));
        if applies {
            let envelope = &event.envelope;
            self.heads
                .insert(head_key(envelope.aggregate_type(), envelope.aggregate_id()), (envelope.version(), event.cid));
            self.known.insert(event.cid);
        }
        if let Err(problem) = &outcome {
            self.problems.push(problem.clone());
        }
        outcome
    }

    /// Treats `cid` as an existing event (for example one already in the
    /// target store when importing), so parents may link to it.
    pub fn assume_known(&mut self, cid: Cid) {
        self.known.insert(cid);
    }

    /// Starts an aggregate's chain at an existing head (version and CID).
    pub fn assume_head(&mut self, aggregate: &AggregateKey, version: u64, cid: Cid) {
        self.heads.insert(head_key(aggregate.aggregate_type(), aggregate.aggregate_id()), (version, cid));
        self.known.insert(cid);
    }

    /// Every problem found so far, in the order found.
    pub fn problems(&self) -> &[ChainError] {
        &self.problems
    }

    /// Number of events accepted into the chains.
    pub fn event_count(&self) -> usize {
        self.known.len()
    }

    /// Heads of every aggregate seen: version and CID of its latest event.
    pub fn heads(&self) -> impl Iterator<Item = (&str, u64, &Cid)> {
        self.heads.iter().map(|(key, (version, cid))| (key.as_str(), *version, cid))
    }
}

// Aggregate types and ids never contain '/', so the joined key is unambiguous.
fn head_key(aggregate_type: &str, aggregate_id: &str) -> String {
    format!("{aggregate_type}/{aggregate_id}")
}

impl ChainState for ChainVerifier {
    fn head(&self, aggregate_type: &str, aggregate_id: &str) -> Option<(u64, Cid)> {
        self.heads.get(&head_key(aggregate_type, aggregate_id)).copied()
    }

    fn contains(&self, cid: &Cid) -> bool {
        self.known.contains(cid)
    }
}
