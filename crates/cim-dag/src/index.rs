//! Look-up tables beside the graph: CID → node, and the aggregates with their
//! heads.
//!
//! Both are `hashbrown::HashTable<u32>`s holding only indices; the keys live
//! once, in the graph's nodes or the aggregates vector, and are reached through
//! the index when the table probes or grows. Hashes are keyed with a random
//! [`RandomState`] (SipHash), not taken straight from the digest: CIDs are
//! chosen by whoever writes events, and a writer could grind payloads whose
//! digests share their low bits and pile them into one probe sequence.

use std::hash::{BuildHasher, RandomState};

use cim_cid::{AggregateKey, DIGEST_LEN};
use daggy::NodeIndex;
use hashbrown::HashTable;

use crate::node::Node;

/// The graph's raw node storage, indexed by node index.
pub(crate) type Nodes<'a> = &'a [daggy::petgraph::graph::Node<Node, u32>];

/// CID digest → node index.
#[derive(Debug, Clone, Default)]
pub(crate) struct CidIndex {
    table: HashTable<u32>,
    hasher: RandomState,
}

impl CidIndex {
    pub(crate) fn hash(&self, digest: &[u8; DIGEST_LEN]) -> u64 {
        self.hasher.hash_one(digest)
    }

    /// The node holding `digest`, given its `hash`.
    pub(crate) fn find(&self, nodes: Nodes<'_>, hash: u64, digest: &[u8; DIGEST_LEN]) -> Option<NodeIndex<u32>> {
        self.table.find(hash, |&ix| nodes[ix as usize].weight.digest == *digest).map(|&ix| NodeIndex::new(ix as usize))
    }

    /// Records the node `ix`, already in `nodes`, whose digest is not yet indexed.
    pub(crate) fn insert(&mut self, nodes: Nodes<'_>, hash: u64, ix: u32) {
        let hasher = &self.hasher;
        self.table.insert_unique(hash, ix, |&i| hasher.hash_one(nodes[i as usize].weight.digest));
    }

    pub(crate) fn reserve(&mut self, nodes: Nodes<'_>, additional: usize) {
        let hasher = &self.hasher;
        self.table.reserve(additional, |&i| hasher.hash_one(nodes[i as usize].weight.digest));
    }

    pub(crate) fn shrink_to_fit(&mut self, nodes: Nodes<'_>) {
        let hasher = &self.hasher;
        self.table.shrink_to_fit(|&i| hasher.hash_one(nodes[i as usize].weight.digest));
    }
}

/// An aggregate and its latest event. Its version is the head node's
/// version, so it is not stored twice.
#[derive(Debug, Clone)]
pub(crate) struct AggregateEntry {
    pub(crate) key: AggregateKey,
    pub(crate) head: NodeIndex<u32>,
}

/// Every aggregate with events, found by `(type, id)` without allocating.
#[derive(Debug, Clone, Default)]
pub(crate) struct Aggregates {
    entries: Vec<AggregateEntry>,
    table: HashTable<u32>,
    hasher: RandomState,
}

impl Aggregates {
    fn hash(hasher: &RandomState, aggregate_type: &str, aggregate_id: &str) -> u64 {
        hasher.hash_one((aggregate_type, aggregate_id))
    }

    /// Index of the aggregate `(aggregate_type, aggregate_id)`.
    pub(crate) fn find(&self, aggregate_type: &str, aggregate_id: &str) -> Option<u32> {
        let hash = Self::hash(&self.hasher, aggregate_type, aggregate_id);
        self.table
            .find(hash, |&ix| {
                let key = &self.entries[ix as usize].key;
                key.aggregate_type() == aggregate_type && key.aggregate_id() == aggregate_id
            })
            .copied()
    }

    /// Adds an aggregate not yet in the table at `ix`, the next index.
    pub(crate) fn push(&mut self, ix: u32, key: AggregateKey, head: NodeIndex<u32>) {
        debug_assert_eq!(ix as usize, self.entries.len());
        let hash = Self::hash(&self.hasher, key.aggregate_type(), key.aggregate_id());
        self.entries.push(AggregateEntry { key, head });
        let (entries, hasher) = (&self.entries, &self.hasher);
        self.table.insert_unique(hash, ix, |&i| {
            let key = &entries[i as usize].key;
            Self::hash(hasher, key.aggregate_type(), key.aggregate_id())
        });
    }

    pub(crate) fn get(&self, ix: u32) -> &AggregateEntry {
        &self.entries[ix as usize]
    }

    pub(crate) fn set_head(&mut self, ix: u32, head: NodeIndex<u32>) {
        self.entries[ix as usize].head = head;
    }

    pub(crate) fn entries(&self) -> &[AggregateEntry] {
        &self.entries
    }

    pub(crate) fn shrink_to_fit(&mut self) {
        self.entries.shrink_to_fit();
        let (entries, hasher) = (&self.entries, &self.hasher);
        self.table.shrink_to_fit(|&i| {
            let key = &entries[i as usize].key;
            Self::hash(hasher, key.aggregate_type(), key.aggregate_id())
        });
    }
}
