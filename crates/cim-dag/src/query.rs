//! Queries: views of events, walks through the graph, paths, heads and
//! orders.

use std::collections::VecDeque;

use cim_cid::{AggregateKey, Cid};
use daggy::NodeIndex;
use daggy::petgraph::graph::{DiGraph, EdgeIndex};
use daggy::petgraph::visit::{EdgeRef, Visitable};
use daggy::petgraph::{Direction, Incoming, Outgoing};

use crate::Result;
use crate::dag::MerkleDag;
use crate::node::{EdgeKind, Node};

/// petgraph's visit map for the graph: a `fixedbitset::FixedBitSet`.
type BitSet = <DiGraph<Node, EdgeKind, u32> as Visitable>::Map;

/// A view of one event in the DAG. Cheap to make: the CID is rebuilt from
/// the stored digest, the aggregate is borrowed from the DAG.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EventRef<'a> {
    /// The event's CID.
    pub cid: Cid,
    /// The position given when the event was inserted, e.g. its JetStream
    /// stream sequence.
    pub position: u64,
    /// The aggregate the event belongs to.
    pub aggregate: &'a AggregateKey,
    /// The event's version in its aggregate's chain, from 1.
    pub version: u64,
}

/// A breadth-first walk from one event through its ancestors or
/// descendants, nearest first; see [`MerkleDag::ancestors`] and
/// [`MerkleDag::descendants`]. Each event is yielded once.
#[derive(Debug)]
pub struct Walk<'a> {
    dag: &'a MerkleDag,
    direction: Direction,
    queue: VecDeque<(NodeIndex<u32>, usize)>,
    /// Bit `i - offset` is set once node `i` has been queued.
    visited: BitSet,
    offset: usize,
    max_depth: Option<usize>,
}

impl<'a> Walk<'a> {
    fn new(dag: &'a MerkleDag, start: NodeIndex<u32>, direction: Direction, max_depth: Option<usize>) -> Self {
        // Links always point from older (lower index) to newer events, so
        // ancestors all lie below `start` and descendants all above it: the
        // visited set need only cover that side.
        let (offset, bits) = match direction {
            Incoming => (0, start.index()),
            Outgoing => (start.index() + 1, dag.len() - start.index() - 1),
        };
        let mut walk =
            Self { dag, direction, queue: VecDeque::new(), visited: BitSet::with_capacity(bits), offset, max_depth };
        walk.expand(start, 0);
        walk
    }

    /// Queues the unvisited neighbours of `node`, found at `depth`.
    fn expand(&mut self, node: NodeIndex<u32>, depth: usize) {
        if self.max_depth.is_some_and(|max| depth >= max) {
            return;
        }
        for next in self.dag.dag.graph().neighbors_directed(node, self.direction) {
            if !self.visited.put(next.index() - self.offset) {
                self.queue.push_back((next, depth + 1));
            }
        }
    }
}

impl<'a> Iterator for Walk<'a> {
    type Item = EventRef<'a>;

    fn next(&mut self) -> Option<EventRef<'a>> {
        let (node, depth) = self.queue.pop_front()?;
        self.expand(node, depth);
        Some(self.dag.event_ref(node))
    }
}

impl MerkleDag {
    /// The events `cid` descends from (through `prev` and `parents`,
    /// transitively), nearest first, not including `cid` itself.
    ///
    /// `max_depth` limits how many links away to go: `Some(1)` gives the
    /// event's own `prev` and parents. Fails with
    /// [`DagError::UnknownEvent`](crate::DagError::UnknownEvent) if `cid` is
    /// not in the DAG. The walk is lazy; its visited set is a bitset over the
    /// events older than `cid`.
    pub fn ancestors(&self, cid: &Cid, max_depth: Option<usize>) -> Result<Walk<'_>> {
        Ok(Walk::new(self, self.require(cid)?, Incoming, max_depth))
    }

    /// The events that descend from `cid` (that link it as `prev` or parent,
    /// transitively), nearest first, not including `cid` itself.
    ///
    /// `max_depth` as for [`MerkleDag::ancestors`]; the visited set is a
    /// bitset over the events newer than `cid`.
    pub fn descendants(&self, cid: &Cid, max_depth: Option<usize>) -> Result<Walk<'_>> {
        Ok(Walk::new(self, self.require(cid)?, Outgoing, max_depth))
    }

    /// A shortest chain of links from the event `from` to its descendant
    /// `to`, both included and in that order (each event in the path is
    /// linked by the next); `[from]` when they are the same event, `None`
    /// when `to` does not descend from `from`.
    ///
    /// Fails with [`DagError::UnknownEvent`](crate::DagError::UnknownEvent)
    /// if either is not in the DAG. Searches backwards from `to`, only among
    /// events inserted between the two.
    pub fn causal_path(&self, from: &Cid, to: &Cid) -> Result<Option<Vec<Cid>>> {
        let (start, goal) = (self.require(from)?, self.require(to)?);
        if start == goal {
            return Ok(Some(vec![*from]));
        }
        if start.index() > goal.index() {
            return Ok(None);
        }
        let low = start.index();
        let mut visited = BitSet::with_capacity(goal.index() - low + 1);
        visited.insert(goal.index() - low);
        // Breadth-first from `to` along incoming links; each entry keeps the
        // queue position of the newer event it was reached from, so the
        // queue doubles as the tree of shortest paths back to `to`.
        let mut queue: Vec<(NodeIndex<u32>, usize)> = vec![(goal, 0)];
        let mut head = 0;
        while let Some(&(node, _)) = queue.get(head) {
            for older in self.dag.graph().neighbors_directed(node, Incoming) {
                if older.index() < low || visited.put(older.index() - low) {
                    continue;
                }
                if older == start {
                    let mut path = vec![*from];
                    let mut at = head;
                    loop {
                        path.push(self.node(queue[at].0).cid());
                        if at == 0 {
                            return Ok(Some(path));
                        }
                        at = queue[at].1;
                    }
                }
                queue.push((older, head));
            }
            head += 1;
        }
        Ok(None)
    }

    /// The events nothing links yet (no `prev` or parent link points at
    /// them), in insertion order: the frontier of the DAG.
    ///
    /// Not the same as the aggregates' heads: an aggregate's latest event
    /// stops being a DAG head once another event names it as a parent.
    /// Scans every event.
    pub fn heads(&self) -> impl Iterator<Item = EventRef<'_>> {
        self.dag
            .raw_nodes()
            .iter()
            .enumerate()
            .filter(|(_, node)| node.next_edge(Outgoing) == EdgeIndex::end())
            .map(|(ix, _)| self.event_ref(NodeIndex::new(ix)))
    }

    /// Every event in a topological order: each after its `prev` and its
    /// parents.
    ///
    /// This is simply insertion order. An event can only be inserted once
    /// everything it links is in the DAG, so every link points from an
    /// earlier-inserted event to a later one, and node indices are never
    /// reused (events are never removed).
    pub fn topological_order(&self) -> impl DoubleEndedIterator<Item = EventRef<'_>> + ExactSizeIterator {
        (0..self.len()).map(|ix| self.event_ref(NodeIndex::new(ix)))
    }

    /// Every aggregate's latest event (its head), in the order the
    /// aggregates first appeared.
    pub fn aggregates(&self) -> impl ExactSizeIterator<Item = EventRef<'_>> {
        self.aggregates.entries().iter().map(|entry| self.event_ref(entry.head))
    }

    /// The events of `aggregate` in version order (empty if it has none),
    /// found by following `prev` links back from its head.
    pub fn events_of(&self, aggregate: &AggregateKey) -> Vec<EventRef<'_>> {
        let Some(ix) = self.aggregates.find(aggregate.aggregate_type(), aggregate.aggregate_id()) else {
            return Vec::new();
        };
        let head = self.aggregates.get(ix).head;
        let mut events = Vec::with_capacity(self.node(head).version as usize);
        let mut node = Some(head);
        while let Some(current) = node {
            events.push(self.event_ref(current));
            node = self.prev_of(current);
        }
        events.reverse();
        events
    }

    /// The node `node` links as its `prev`.
    pub(crate) fn prev_of(&self, node: NodeIndex<u32>) -> Option<NodeIndex<u32>> {
        self.dag
            .graph()
            .edges_directed(node, Incoming)
            .find(|edge| *edge.weight() == EdgeKind::Prev)
            .map(|edge| edge.source())
    }
}
