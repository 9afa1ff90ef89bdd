//! The [`MerkleDag`] itself: building it, and the look-ups every query uses.

use std::borrow::Borrow;
use std::fmt;

use cim_cid::{AggregateKey, ChainError, ChainState, Cid, Event};
use daggy::{Dag, NodeIndex};

use crate::index::{Aggregates, CidIndex};
use crate::node::{EdgeKind, Node, compact_version, event_digest, lookup_digest};
use crate::query::EventRef;
use crate::{DagError, Result};

/// Most events (and most links) one DAG can hold: node and edge indices are
/// `u32`, and `u32::MAX` is petgraph's "no index" marker.
pub const MAX_EVENTS: usize = u32::MAX as usize - 1;
/// Most links (`prev` plus `parents`, over all events) one DAG can hold.
pub const MAX_LINKS: usize = u32::MAX as usize - 1;

/// The in-memory MerkleDAG of events: one node per event, one edge per link.
///
/// Build it with [`MerkleDag::insert`] (or [`MerkleDag::from_events`]) in
/// append order; it refuses, and is left unchanged by, any event that
/// [`cim_cid::check_next`] refuses. See the crate documentation for the
/// layout and its invariants.
#[derive(Clone, Default)]
pub struct MerkleDag {
    pub(crate) dag: Dag<Node, EdgeKind, u32>,
    pub(crate) ids: CidIndex,
    pub(crate) aggregates: Aggregates,
    /// Set when the DAG starts from a checkpoint rather than from the first
    /// event (see [`MerkleDag::insert_base`]).
    pub(crate) base: Option<Base>,
}

/// What a DAG started from a checkpoint knows of the events before it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Base {
    /// Position of the checkpoint: every event at or before it is known
    /// only through the aggregate heads inserted as base events.
    pub(crate) position: u64,
    /// Parent links of later events that name an event before the
    /// checkpoint which is not a base event: accepted, without an edge.
    pub(crate) external_parents: u64,
    /// Base events inserted (they are the first nodes).
    pub(crate) events: usize,
}

impl fmt::Debug for MerkleDag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MerkleDag")
            .field("events", &self.len())
            .field("links", &self.link_count())
            .field("aggregates", &self.aggregate_count())
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

impl MerkleDag {
    /// An empty DAG.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty DAG with room for `events` events before it reallocates; use
    /// it when the stream's length is known, e.g. to rebuild from a stream.
    pub fn with_capacity(events: usize) -> Self {
        let mut dag = Self::new();
        dag.reserve(events);
        dag
    }

    /// Builds a DAG from events in append order with their positions.
    ///
    /// Fails on the first event [`MerkleDag::insert`] refuses.
    pub fn from_events<I, E>(events: I) -> Result<Self>
    where
        I: IntoIterator<Item = (E, u64)>,
        E: Borrow<Event>,
    {
        let events = events.into_iter();
        let mut dag = Self::with_capacity(events.size_hint().0);
        for (event, position) in events {
            dag.insert(event.borrow(), position)?;
        }
        Ok(dag)
    }

    /// Makes room for `additional` more events, and for a quarter more links
    /// than that (every event but an aggregate's first links its `prev`, and
    /// some link parents too).
    pub fn reserve(&mut self, additional: usize) {
        self.dag.reserve_nodes(additional);
        self.dag.reserve_edges(additional.saturating_add(additional / 4));
        self.ids.reserve(self.dag.raw_nodes(), additional);
    }

    /// Releases spare capacity, e.g. once a rebuild has caught up with the
    /// stream. Later inserts grow the storage again as needed.
    pub fn shrink_to_fit(&mut self) {
        self.dag.shrink_to_fit();
        self.ids.shrink_to_fit(self.dag.raw_nodes());
        self.aggregates.shrink_to_fit();
    }

    /// Starts the DAG from a checkpoint instead of from the first event:
    /// `cid` is the head of `aggregate` at `version`, at `position`, and the
    /// events before it are not in the DAG. Call it for every aggregate of
    /// the checkpoint, before any [`MerkleDag::insert`]; `checkpoint` is the
    /// checkpoint's position (every base event is at or before it).
    ///
    /// Later events must continue these heads exactly as [`insert`] checks
    /// (next version, `prev` linking the head). A parent that names an event
    /// before the checkpoint other than a head cannot be checked here: it is
    /// accepted without an edge and counted ([`MerkleDag::external_parents`]);
    /// a full verification reads the archive to check it.
    ///
    /// # Errors
    /// [`DagError::Chain`] (a fork) if the aggregate is already in the DAG
    /// or the CID already is; [`DagError::UnsupportedCid`] for a CID no event
    /// has; [`DagError::Capacity`] when full; [`DagError::BaseAfterEvents`]
    /// once ordinary events were inserted.
    ///
    /// [`insert`]: MerkleDag::insert
    pub fn insert_base(
        &mut self,
        aggregate: &AggregateKey,
        version: u64,
        cid: Cid,
        position: u64,
        checkpoint: u64,
    ) -> Result<EventRef<'_>> {
        let only_base = self.base.is_some_and(|base| base.position == checkpoint && base.events == self.len());
        if !self.is_empty() && !only_base {
            return Err(DagError::BaseAfterEvents { cid });
        }
        if self.contains(&cid) {
            return Err(ChainError::Duplicate { cid }.into());
        }
        if let Some(ix) = self.aggregates.find(aggregate.aggregate_type(), aggregate.aggregate_id()) {
            let (head_version, _) = self.head_of(ix);
            return Err(ChainError::Fork { aggregate: aggregate.clone(), cid, version, head_version }.into());
        }
        let digest = event_digest(&cid)?;
        let version = u32::try_from(version).map_err(|_| DagError::VersionOverflow { cid, version })?;
        if self.len() >= MAX_EVENTS {
            return Err(DagError::Capacity { what: "events", limit: MAX_EVENTS });
        }
        let next_node = index_u32(self.len())?;
        let aggregate_ix = index_u32(self.aggregate_count())?;
        let node = self.dag.add_node(Node { digest, position, aggregate: aggregate_ix, version });
        self.ids.insert(self.dag.raw_nodes(), self.ids.hash(&digest), next_node);
        self.aggregates.push(aggregate_ix, aggregate.clone(), node);
        self.base.get_or_insert(Base { position: checkpoint, external_parents: 0, events: 0 }).events += 1;
        Ok(self.event_ref(node))
    }

    /// The checkpoint position the DAG starts from, if it does not start
    /// from the first event.
    pub fn base_position(&self) -> Option<u64> {
        self.base.map(|base| base.position)
    }

    /// Parent links accepted without an edge because they name an event
    /// before the checkpoint (0 for a DAG built from the first event).
    pub fn external_parents(&self) -> u64 {
        self.base.map_or(0, |base| base.external_parents)
    }

    /// Adds the next event in append order, at `position` (the JetStream
    /// stream sequence, or any ordinal the caller keeps).
    ///
    /// The event must pass [`cim_cid::check_next`] against the DAG: not a
    /// duplicate, the next version of its aggregate, `prev` linking the
    /// aggregate's head and every parent already in the DAG. Otherwise the
    /// [`ChainError`](cim_cid::ChainError) is returned as
    /// [`DagError::Chain`] (see [`DagError::chain_error`]) and the DAG is
    /// unchanged.
    ///
    /// The event's CID is trusted to be its envelope's CID, as
    /// [`Event::from_block`] and [`Event::encode`] guarantee; it is not
    /// re-hashed. Costs O(1 + parents) amortised.
    pub fn insert(&mut self, event: &Event, position: u64) -> Result<EventRef<'_>> {
        let envelope = &event.envelope;
        let aggregate = self.aggregates.find(envelope.aggregate_type(), envelope.aggregate_id());
        cim_cid::check_next(&Inserting { dag: self, event, aggregate }, event)?;
        let digest = event_digest(&event.cid)?;
        let version = compact_version(event)?;
        let new_links = usize::from(envelope.prev().is_some()) + envelope.parents().len();
        let external = if self.base.is_some() {
            envelope.parents().iter().filter(|parent| !self.contains(parent)).count() as u64
        } else {
            0
        };
        if self.len() >= MAX_EVENTS {
            return Err(DagError::Capacity { what: "events", limit: MAX_EVENTS });
        }
        if new_links > MAX_LINKS - self.link_count() {
            return Err(DagError::Capacity { what: "links", limit: MAX_LINKS });
        }
        // Both fit: there are fewer than MAX_EVENTS events, and no more
        // aggregates than events.
        let next_node = index_u32(self.len())?;
        let aggregate_ix = match aggregate {
            Some(ix) => ix,
            None => index_u32(self.aggregate_count())?,
        };

        // Nothing below fails, short of a broken internal invariant; the
        // node (and with it any edge already added) is then removed again.
        let node = self.dag.add_node(Node { digest, position, aggregate: aggregate_ix, version });
        debug_assert_eq!(node.index(), next_node as usize);
        // check_next proved `prev` is the aggregate's head.
        let prev = aggregate.map(|ix| self.aggregates.get(ix).head);
        if let Err(error) = self.link(node, prev, event) {
            self.dag.remove_node(node);
            return Err(error);
        }
        self.ids.insert(self.dag.raw_nodes(), self.ids.hash(&digest), next_node);
        match aggregate {
            Some(ix) => self.aggregates.set_head(ix, node),
            None => self.aggregates.push(aggregate_ix, envelope.aggregate(), node),
        }
        if let Some(base) = &mut self.base {
            base.external_parents += external;
        }
        Ok(self.event_ref(node))
    }

    /// Adds the edges from `prev` and from each of `event`'s parents to its
    /// freshly added `node`.
    fn link(&mut self, node: NodeIndex<u32>, prev: Option<NodeIndex<u32>>, event: &Event) -> Result<()> {
        if let Some(prev) = prev {
            self.add_edge(prev, node, EdgeKind::Prev, &event.cid)?;
        }
        for parent in event.envelope.parents() {
            // check_next proved every parent is in the DAG, or (from a
            // checkpoint) before it.
            let older = match self.node_of(parent) {
                Some(older) => older,
                None if self.base.is_some() => continue,
                None => return Err(ChainError::DanglingParent { cid: event.cid, parent: *parent }.into()),
            };
            self.add_edge(older, node, EdgeKind::Parent, &event.cid)?;
        }
        Ok(())
    }

    /// Adds the edge `older → node`, where `node` is the event `cid`, just
    /// added.
    fn add_edge(&mut self, older: NodeIndex<u32>, node: NodeIndex<u32>, kind: EdgeKind, cid: &Cid) -> Result<()> {
        // `node` is new, so it has no children: daggy skips its cycle search
        // and the edge costs O(1). Content addressing makes a cycle
        // impossible; the result is checked all the same.
        self.dag.add_edge(older, node, kind).map_err(|_| DagError::WouldCycle { cid: *cid })?;
        Ok(())
    }

    /// Number of events.
    pub fn len(&self) -> usize {
        self.dag.node_count()
    }

    /// True when the DAG holds no event.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of links (edges): each event's `prev`, if any, plus its parents.
    pub fn link_count(&self) -> usize {
        self.dag.edge_count()
    }

    /// Number of aggregates with at least one event.
    pub fn aggregate_count(&self) -> usize {
        self.aggregates.entries().len()
    }

    /// Whether the event `cid` is in the DAG.
    pub fn contains(&self, cid: &Cid) -> bool {
        self.node_of(cid).is_some()
    }

    /// The event `cid`, if it is in the DAG.
    pub fn get(&self, cid: &Cid) -> Option<EventRef<'_>> {
        self.node_of(cid).map(|node| self.event_ref(node))
    }

    /// The latest event of `aggregate`, if it has any.
    pub fn aggregate_head(&self, aggregate: &AggregateKey) -> Option<EventRef<'_>> {
        let ix = self.aggregates.find(aggregate.aggregate_type(), aggregate.aggregate_id())?;
        Some(self.event_ref(self.aggregates.get(ix).head))
    }

    /// The node holding the event `cid`.
    pub(crate) fn node_of(&self, cid: &Cid) -> Option<NodeIndex<u32>> {
        let digest = lookup_digest(cid)?;
        self.ids.find(self.dag.raw_nodes(), self.ids.hash(&digest), &digest)
    }

    /// The node holding `cid`, or [`DagError::UnknownEvent`].
    pub(crate) fn require(&self, cid: &Cid) -> Result<NodeIndex<u32>> {
        self.node_of(cid).ok_or(DagError::UnknownEvent { cid: *cid })
    }

    pub(crate) fn node(&self, node: NodeIndex<u32>) -> &Node {
        &self.dag[node]
    }

    pub(crate) fn event_ref(&self, node: NodeIndex<u32>) -> EventRef<'_> {
        let weight = self.node(node);
        EventRef {
            cid: weight.cid(),
            position: weight.position,
            aggregate: &self.aggregates.get(weight.aggregate).key,
            version: u64::from(weight.version),
        }
    }
}

/// A count or index below [`MAX_EVENTS`] as the graph's `u32` index.
fn index_u32(n: usize) -> Result<u32> {
    u32::try_from(n).map_err(|_| DagError::Capacity { what: "events", limit: MAX_EVENTS })
}

impl MerkleDag {
    /// Version and CID of the head of the aggregate at index `ix`.
    fn head_of(&self, ix: u32) -> (u64, Cid) {
        let head = self.node(self.aggregates.get(ix).head);
        (u64::from(head.version), head.cid())
    }
}

impl ChainState for MerkleDag {
    fn head(&self, aggregate_type: &str, aggregate_id: &str) -> Option<(u64, Cid)> {
        self.aggregates.find(aggregate_type, aggregate_id).map(|ix| self.head_of(ix))
    }

    fn contains(&self, cid: &Cid) -> bool {
        MerkleDag::contains(self, cid)
    }
}

/// The DAG as [`cim_cid::check_next`] sees it while `event` is inserted:
/// the event's aggregate has been looked up already, so the check does not
/// hash and probe for it a second time.
struct Inserting<'a> {
    dag: &'a MerkleDag,
    event: &'a Event,
    aggregate: Option<u32>,
}

impl ChainState for Inserting<'_> {
    fn head(&self, aggregate_type: &str, aggregate_id: &str) -> Option<(u64, Cid)> {
        let envelope = &self.event.envelope;
        if aggregate_type == envelope.aggregate_type() && aggregate_id == envelope.aggregate_id() {
            self.aggregate.map(|ix| self.dag.head_of(ix))
        } else {
            self.dag.head(aggregate_type, aggregate_id)
        }
    }

    fn contains(&self, cid: &Cid) -> bool {
        // From a checkpoint, a parent the DAG does not hold may be an event
        // before it: accepted (and counted) rather than refused. The event
        // itself must still be new.
        self.dag.contains(cid)
            || (self.dag.base.is_some() && cid != &self.event.cid && self.event.envelope.parents().contains(cid))
    }
}
