//! Followers: a state rebuilt from the stream and kept current from the same
//! consumer, and waits that end — with the position, or with a typed stall —
//! rather than hang.

use std::collections::BTreeMap;
use std::time::Duration;

use cim_store::{
    Error, EventStore, ExpectedVersion, Feed, Follower, FollowerState, Problem, StallCause, StoreConfig, StoredEvent,
};
use cim_test_support::NatsServer;
use serde_json::json;

use crate::common::{event, key};

/// How long a test lets a wait go without progress.
const PATIENCE: Duration = Duration::from_secs(3);
/// A bound on a wait that must end by itself: only a hang reaches it.
const HANG: Duration = Duration::from_secs(60);

/// Events applied per aggregate id, in the order seen; refuses events of
/// aggregate id "bad".
#[derive(Debug, Default)]
struct Seen {
    versions: BTreeMap<String, Vec<u64>>,
}

impl FollowerState for Seen {
    fn apply(&mut self, events: Vec<StoredEvent>, problems: &mut Vec<Problem>) {
        for stored in &events {
            let envelope = &stored.event.envelope;
            if envelope.aggregate_id() == "bad" {
                problems.push(Problem::Rejected {
                    seq: stored.seq,
                    cid: stored.event.cid,
                    reason: "bad aggregates are refused".into(),
                });
                continue;
            }
            let versions = self.versions.entry(envelope.aggregate_id().to_owned()).or_default();
            if versions.last().is_none_or(|&last| envelope.version() > last) {
                versions.push(envelope.version());
            }
        }
    }
}

async fn must_end<T>(wait: impl Future<Output = T>) -> T {
    tokio::time::timeout(HANG, wait).await.expect("the wait ended by itself")
}

#[tokio::test]
async fn a_follower_of_one_type_rebuilds_then_follows_the_tail() {
    let server = NatsServer::start().await;
    let store = EventStore::provision(server.connect().await, StoreConfig::default()).await.unwrap();
    for i in 0..3 {
        let order = key("order", &format!("o{i}"));
        store.append(&order, ExpectedVersion::Exact(0), vec![event("Placed", json!({"i": i}))]).await.unwrap();
        store
            .append(&key("stock", &format!("s{i}")), ExpectedVersion::Any, vec![event("Moved", json!({}))])
            .await
            .unwrap();
        store.append(&order, ExpectedVersion::Exact(1), vec![event("Paid", json!({}))]).await.unwrap();
    }
    store.append(&key("order", "bad"), ExpectedVersion::Exact(0), vec![event("Placed", json!({}))]).await.unwrap();
    // The stream ends with an event the follower does not read.
    store.append(&key("stock", "last"), ExpectedVersion::Exact(0), vec![event("Moved", json!({}))]).await.unwrap();

    let follower = store.follow(Feed::AggregateType("order".into()), Seen::default()).await.unwrap();
    {
        let seen = follower.read();
        assert_eq!(seen.versions.len(), 3, "{seen:?}");
        assert!(seen.versions.values().all(|v| v == &[1, 2]), "{seen:?}");
    }
    let problems = follower.problems();
    assert!(matches!(problems.as_slice(), [Problem::Rejected { .. }]), "{problems:?}");
    must_end(follower.catch_up(PATIENCE)).await.unwrap();

    // The live tail, through the same consumer.
    let later =
        store.append(&key("order", "o1"), ExpectedVersion::Exact(2), vec![event("Shipped", json!({}))]).await.unwrap();
    must_end(follower.wait_for(later.events[0].seq, PATIENCE)).await.unwrap();
    assert_eq!(follower.read().versions["o1"], [1, 2, 3]);
    assert_eq!(follower.applied_seq(), later.events[0].seq);

    // A position past the follower's last event, held by another type's
    // event: the server says nothing of the feed is left up to it.
    let other =
        store.append(&key("stock", "s9"), ExpectedVersion::Exact(0), vec![event("Moved", json!({}))]).await.unwrap();
    must_end(follower.wait_for(other.events[0].seq, PATIENCE)).await.unwrap();
    assert_eq!(follower.applied_seq(), other.events[0].seq);
    assert_eq!(follower.problems().len(), 1, "another type's event is not a problem");

    let ready = follower.wait_until(Duration::from_millis(200), |seen| seen.versions.contains_key("o7")).await;
    assert!(!ready, "no event made o7");
    let appender = {
        let store = store.clone();
        tokio::spawn(async move {
            store.append(&key("order", "o7"), ExpectedVersion::Exact(0), vec![event("Placed", json!({}))]).await
        })
    };
    assert!(follower.wait_until(HANG, |seen| seen.versions.contains_key("o7")).await);
    appender.await.unwrap().unwrap();
}

#[tokio::test]
async fn the_live_dag_reports_a_stalled_feed_within_its_patience() {
    let mut server = NatsServer::start().await;
    let store = EventStore::provision(server.connect().await, StoreConfig::default()).await.unwrap();
    let first =
        store.append(&key("doc", "a"), ExpectedVersion::Exact(0), vec![event("Created", json!({}))]).await.unwrap();
    let dag = store.dag().await.unwrap().clone();
    must_end(dag.wait_for(first.events[0].seq, PATIENCE)).await.unwrap();

    // An administrator deletes the DAG's consumer. A position that will
    // never be stored is reported as such, not waited for.
    let admin = async_nats::jetstream::new(server.connect().await);
    let stream = admin.get_stream(&store.names().events_stream).await.unwrap();
    let consumers: Vec<String> = futures::TryStreamExt::try_collect(stream.consumer_names()).await.unwrap();
    assert!(!consumers.is_empty(), "the DAG reads through a consumer");
    for name in &consumers {
        stream.delete_consumer(name).await.unwrap();
    }
    let never = first.events[0].seq + 100;
    let error = must_end(dag.wait_for(never, PATIENCE)).await.unwrap_err();
    let Error::Stalled { position, applied, cause: StallCause::NotStored { last }, .. } = &error else {
        panic!("expected a stall at a position not stored, got {error}")
    };
    assert_eq!((*position, *applied, *last), (never, first.events[0].seq, first.events[0].seq));
    assert!(error.is_retryable(), "{error}");

    // The server goes away: the wait ends with the stall, naming it.
    server.stop().await;
    let error = must_end(dag.wait_for(first.events[0].seq + 1, PATIENCE)).await.unwrap_err();
    let Error::Stalled { cause: StallCause::Unreachable { .. }, .. } = &error else {
        panic!("expected a stall with the server unreachable, got {error}")
    };
    assert!(dag.problems().is_empty(), "a stall is not a problem of the stream: {:?}", dag.problems());
}

#[tokio::test]
async fn a_follower_comes_back_after_the_server_restarts() {
    let mut server = NatsServer::start().await;
    let store = EventStore::provision(server.connect().await, StoreConfig::default()).await.unwrap();
    let follower: Follower<Seen> = store.follow(Feed::All, Seen::default()).await.unwrap();
    server.restart().await;
    let stored = must_end(store.append(&key("doc", "b"), ExpectedVersion::Exact(0), vec![event("Created", json!({}))]))
        .await
        .unwrap();
    must_end(follower.wait_for(stored.events[0].seq, Follower::<Seen>::DEFAULT_PATIENCE)).await.unwrap();
    assert_eq!(follower.read().versions["b"], [1]);
}
