//! Shared helpers: a store on a fresh server, events from JSON.

use cim_cid::{AggregateKey, Ipld, NewEvent, ipld_from_json};
use cim_store::{EventStore, ObjectStore, StoreConfig};
use cim_test_support::NatsServer;

/// A fresh durable server and an event store on it.
pub async fn store() -> (NatsServer, EventStore) {
    let server = NatsServer::start().await;
    let store = EventStore::provision(server.connect().await, StoreConfig::default()).await.expect("open store");
    (server, store)
}

/// An event store on `server` with its own namespace and configuration.
pub async fn store_with(server: &NatsServer, config: StoreConfig) -> EventStore {
    EventStore::provision(server.connect().await, config).await.expect("open store")
}

/// An object store on a fresh server.
pub async fn objects() -> (NatsServer, ObjectStore) {
    let server = NatsServer::start().await;
    let objects = ObjectStore::provision(server.connect().await, &StoreConfig::default()).await.expect("open objects");
    (server, objects)
}

pub fn key(aggregate_type: &str, id: &str) -> AggregateKey {
    AggregateKey::new(aggregate_type, id).expect("valid aggregate key")
}

pub fn json(value: serde_json::Value) -> Ipld {
    ipld_from_json(&value).expect("JSON is IPLD")
}

pub fn event(event_type: &str, value: serde_json::Value) -> NewEvent {
    NewEvent::new(event_type, json(value))
}

/// Messages in the event stream.
pub async fn stored_count(store: &EventStore) -> u64 {
    store.log_state().await.expect("log state").events
}
