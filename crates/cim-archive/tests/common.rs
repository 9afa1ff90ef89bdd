//! Stores on a real server, a small causal history, and a CAR's sections.

use std::path::Path;

use cim_archive::Stores;
use cim_archive::car::{BlockStart, CarReader};
use cim_cid::{AggregateKey, Cid, Ipld, NewEvent, ipld_from_json};
use cim_store::{AggregateQuery, EventStore, ExpectedVersion, NamedObjects, ObjectStore, StoreConfig};
use cim_test_support::NatsServer;

/// The three stores of one namespace.
#[derive(Debug)]
pub struct Store {
    pub events: EventStore,
    pub objects: ObjectStore,
    pub named: NamedObjects,
}

impl Store {
    pub async fn open(server: &NatsServer, namespace: &str) -> Self {
        let config = StoreConfig::with_namespace(namespace);
        let events = EventStore::provision(server.connect().await, config.clone()).await.unwrap();
        let objects = ObjectStore::provision(server.connect().await, &config).await.unwrap();
        let named = NamedObjects::provision(objects.clone(), server.connect().await, &config).await.unwrap();
        Self { events, objects, named }
    }

    pub fn stores(&self) -> Stores<'_> {
        Stores { events: &self.events, objects: &self.objects, named: &self.named }
    }

    /// Events and objects stored.
    pub async fn counts(&self) -> (u64, usize) {
        (self.events.log_state().await.unwrap().events, self.objects.list().await.unwrap().len())
    }

    /// An aggregate's event CIDs in version order.
    pub async fn chain(&self, aggregate: &str) -> Vec<Cid> {
        let events = self.events.read_aggregate(&key(aggregate), AggregateQuery::default()).await.unwrap();
        events.into_iter().map(|e| e.event.cid).collect()
    }

    pub async fn append(&self, aggregate: &str, event_type: &str, payload: serde_json::Value, parents: &[Cid]) -> Cid {
        let event = NewEvent::new(event_type, json(payload)).with_parents(parents.iter().copied());
        self.events.append(&key(aggregate), ExpectedVersion::Any, vec![event]).await.unwrap().last_cid()
    }
}

pub fn key(aggregate: &str) -> AggregateKey {
    aggregate.parse().unwrap()
}

pub fn json(value: serde_json::Value) -> Ipld {
    ipld_from_json(&value).unwrap()
}

/// A causal history over three aggregates; the last event links a raw
/// object, named `docs/invoice`, and a dag-cbor object that links it too.
/// Returns the event CIDs in order and the two objects.
pub async fn history(store: &Store) -> (Vec<Cid>, Cid, Cid) {
    let invoice = store.named.put("docs/invoice", &b"invoice 1\n"[..]).await.unwrap().record.content;
    let receipt = store.objects.put_ipld(&json(serde_json::json!({"invoice": {"/": invoice.to_string()}}))).await;
    let receipt = receipt.unwrap();
    let a = store.append("customer/c1", "Registered", serde_json::json!({"name": "Ada"}), &[]).await;
    let b = store.append("order/o1", "Placed", serde_json::json!({"total": 42}), &[a]).await;
    let c = store.append("payment/p1", "Received", serde_json::json!({"amount": 42}), &[b]).await;
    let d = store.append("order/o1", "Paid", serde_json::json!({"receipt": {"/": receipt.to_string()}}), &[c]).await;
    (vec![a, b, c, d], invoice, receipt)
}

/// Every block of the CAR at `path`, with where its data is.
pub async fn blocks(path: &Path) -> Vec<BlockStart> {
    let bytes = std::fs::read(path).unwrap();
    let (mut car, _) = CarReader::open(bytes.as_slice(), bytes.len() as u64).await.unwrap();
    let mut found = Vec::new();
    while let Some(block) = car.next_block().await.unwrap() {
        car.hash(&block).await.unwrap();
        found.push(block);
    }
    found
}
