//! Builders of real, encoded events and a small deterministic PRNG.

use std::collections::{BTreeMap, HashMap};

use cim_cid::{AggregateKey, Cid, Event, EventEnvelope, Ipld, NewEvent, Timestamp};
use cim_dag::MerkleDag;

pub type TestResult = Result<(), Box<dyn std::error::Error>>;

/// An aggregate key from `type/id`.
pub fn key(text: &str) -> AggregateKey {
    text.parse().expect("test aggregate keys are valid")
}

/// An encoded event at an explicit place in a chain; `salt` makes it unique.
pub fn event_at(aggregate: &AggregateKey, version: u64, prev: Option<Cid>, parents: &[Cid], salt: i64) -> Event {
    let payload = Ipld::Map(BTreeMap::from([("n".to_owned(), Ipld::Integer(i128::from(salt)))]));
    let new = NewEvent::new("Happened", payload)
        .with_parents(parents.iter().copied())
        .with_timestamp(Timestamp::from_unix_micros(1_767_225_600_000_000 + salt));
    let envelope = EventEnvelope::chained(aggregate, version, prev, new).expect("test envelopes are valid");
    Event::encode(envelope).expect("test envelopes encode").0
}

/// Appends well-formed events to any number of chains.
#[derive(Debug, Default)]
pub struct Chains {
    heads: HashMap<AggregateKey, (u64, Cid)>,
    salt: i64,
}

impl Chains {
    /// The next event of `aggregate`, caused by `parents`.
    pub fn next(&mut self, aggregate: &AggregateKey, parents: &[Cid]) -> Event {
        let (version, prev) = self.heads.get(aggregate).map_or((1, None), |&(v, cid)| (v + 1, Some(cid)));
        self.salt += 1;
        let event = event_at(aggregate, version, prev, parents, self.salt);
        self.heads.insert(aggregate.clone(), (version, event.cid));
        event
    }
}

/// Everything observable about a DAG, to show that a refused insert left
/// it unchanged.
#[derive(Debug, PartialEq, Eq)]
pub struct Snapshot {
    len: usize,
    links: usize,
    events: Vec<(Cid, u64, AggregateKey, u64)>,
    aggregates: Vec<(AggregateKey, u64, Cid)>,
    heads: Vec<Cid>,
    ancestors: Vec<Vec<Cid>>,
}

pub fn snapshot(dag: &MerkleDag) -> Snapshot {
    Snapshot {
        len: dag.len(),
        links: dag.link_count(),
        events: dag.topological_order().map(|e| (e.cid, e.position, e.aggregate.clone(), e.version)).collect(),
        aggregates: dag.aggregates().map(|e| (e.aggregate.clone(), e.version, e.cid)).collect(),
        heads: dag.heads().map(|e| e.cid).collect(),
        ancestors: dag
            .topological_order()
            .map(|e| dag.ancestors(&e.cid, None).expect("listed events are known").map(|a| a.cid).collect())
            .collect(),
    }
}

/// SplitMix64: a tiny deterministic PRNG, so failures reproduce.
#[derive(Debug)]
pub struct SplitMix(u64);

impl SplitMix {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform-enough in `0..n` for tests (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
}
