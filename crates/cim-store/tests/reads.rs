//! Reading: an aggregate by version and time, the log from a position, and a
//! live subscription that catches up, then tails.

use std::time::Duration;

use cim_cid::Timestamp;
use cim_store::{AggregateQuery, ExpectedVersion, StartAt};
use futures::{StreamExt, TryStreamExt};
use serde_json::json;

use crate::common::{event, key, store};

#[tokio::test]
async fn an_aggregate_reads_from_a_version_and_as_of_a_time() {
    let (_server, store) = store().await;
    let doc = key("doc", "r1");
    for version in 0..6u64 {
        let at = Timestamp::from_unix_micros(1_000_000 * (version as i64 + 1));
        let e = event("Edited", json!({"v": version + 1})).with_timestamp(at);
        store.append(&doc, ExpectedVersion::Exact(version), vec![e]).await.unwrap();
    }
    // Another aggregate's events must not leak in.
    store.append(&key("doc", "r2"), ExpectedVersion::Any, vec![event("Edited", json!({}))]).await.unwrap();

    let versions = |events: Vec<cim_store::StoredEvent>| events.iter().map(|e| e.version()).collect::<Vec<_>>();
    assert_eq!(versions(store.read_aggregate(&doc, AggregateQuery::all()).await.unwrap()), [1, 2, 3, 4, 5, 6]);
    assert_eq!(versions(store.read_aggregate(&doc, AggregateQuery::from_version(4)).await.unwrap()), [4, 5, 6]);
    assert_eq!(versions(store.read_aggregate(&doc, AggregateQuery::up_to_version(2)).await.unwrap()), [1, 2]);
    let as_of = AggregateQuery::as_of(Timestamp::from_unix_micros(3_500_000));
    assert_eq!(versions(store.read_aggregate(&doc, as_of).await.unwrap()), [1, 2, 3]);
    assert!(store.read_aggregate(&key("doc", "none"), AggregateQuery::all()).await.unwrap().is_empty());
}

#[tokio::test]
async fn the_log_reads_from_a_sequence_or_a_time_and_ends() {
    let (_server, store) = store().await;
    for i in 0..10 {
        store
            .append(&key("item", &format!("{}", i % 3)), ExpectedVersion::Any, vec![event("Seen", json!(i))])
            .await
            .unwrap();
    }
    let all: Vec<_> = store.read_log(StartAt::Beginning).await.unwrap().try_collect().await.unwrap();
    assert_eq!(all.iter().map(|e| e.seq).collect::<Vec<_>>(), (1..=10).collect::<Vec<_>>());
    let tail: Vec<_> = store.read_log(StartAt::Sequence(8)).await.unwrap().try_collect().await.unwrap();
    assert_eq!(tail.iter().map(|e| e.seq).collect::<Vec<_>>(), [8, 9, 10]);

    tokio::time::sleep(Duration::from_millis(20)).await;
    let cut = Timestamp::now();
    tokio::time::sleep(Duration::from_millis(20)).await;
    let late =
        store.append(&key("item", "late"), ExpectedVersion::Any, vec![event("Seen", json!("late"))]).await.unwrap();
    let since: Vec<_> = store.read_log(StartAt::Time(cut)).await.unwrap().try_collect().await.unwrap();
    assert_eq!(since.iter().map(|e| e.event.cid).collect::<Vec<_>>(), [late.last_cid()]);
    assert!(store.read_log(StartAt::Sequence(1000)).await.unwrap().next().await.is_none());
}

#[tokio::test]
async fn a_subscription_catches_up_then_tails_without_gaps() {
    let (_server, store) = store().await;
    let feed = key("feed", "f");
    for i in 0..3u64 {
        store.append(&feed, ExpectedVersion::Exact(i), vec![event("Posted", json!(i))]).await.unwrap();
    }
    let mut live = store.subscribe(StartAt::Sequence(2)).await.unwrap();
    let writer = store.clone();
    let appender = tokio::spawn(async move {
        for i in 3..6u64 {
            writer.append(&feed, ExpectedVersion::Exact(i), vec![event("Posted", json!(i))]).await.unwrap();
        }
    });
    let mut seen = Vec::new();
    while seen.len() < 5 {
        let next =
            tokio::time::timeout(Duration::from_secs(10), live.next()).await.expect("tail delivers").unwrap().unwrap();
        seen.push(next.version());
    }
    appender.await.unwrap();
    assert_eq!(seen, [2, 3, 4, 5, 6]);
}

#[tokio::test]
async fn one_event_is_found_by_cid() {
    let (_server, store) = store().await;
    let appended = store
        .append(&key("note", "n"), ExpectedVersion::Exact(0), vec![event("Written", json!({"t": "hi"}))])
        .await
        .unwrap();
    let found = store.event(&appended.last_cid()).await.unwrap();
    assert_eq!(found.event.envelope.payload(), &crate::common::json(json!({"t": "hi"})));
    let missing = cim_cid::dag_cbor_cid(b"no such event");
    assert!(matches!(store.event(&missing).await, Err(cim_store::Error::EventNotFound(c)) if c == missing));
}

#[tokio::test]
async fn reads_by_aggregate_type_and_up_to_a_sequence() {
    let (_server, store) = store().await;
    for (t, id) in [("unit", "a"), ("order", "1"), ("unit", "b"), ("unit", "a"), ("order", "2")] {
        store.append(&key(t, id), ExpectedVersion::Any, vec![event("Changed", json!({}))]).await.unwrap();
    }
    let units: Vec<_> = store.read_type("unit", StartAt::Beginning).await.unwrap().try_collect().await.unwrap();
    assert_eq!(units.iter().map(|e| e.seq).collect::<Vec<_>>(), [1, 3, 4]);
    assert_eq!(store.aggregates("unit").await.unwrap(), [(key("unit", "a"), 2), (key("unit", "b"), 1)]);
    assert!(store.aggregates("nothing").await.unwrap().is_empty());
    assert!(matches!(store.read_type("bad.type", StartAt::Beginning).await, Err(cim_store::Error::Invalid(_))));

    let first_three: Vec<_> = store.read_log_until(StartAt::Beginning, 3).await.unwrap().try_collect().await.unwrap();
    assert_eq!(first_three.iter().map(|e| e.seq).collect::<Vec<_>>(), [1, 2, 3]);

    let mut live = store.subscribe_type("order", StartAt::Beginning).await.unwrap();
    let next_order = store.clone();
    tokio::spawn(async move {
        next_order.append(&key("unit", "c"), ExpectedVersion::Any, vec![event("Changed", json!({}))]).await.unwrap();
        next_order.append(&key("order", "3"), ExpectedVersion::Any, vec![event("Placed", json!({}))]).await.unwrap();
    });
    let mut seen = Vec::new();
    while seen.len() < 3 {
        let next = tokio::time::timeout(Duration::from_secs(10), live.next()).await.unwrap().unwrap().unwrap();
        seen.push(next.event.envelope.aggregate().to_string());
    }
    assert_eq!(seen, ["order/1", "order/2", "order/3"]);
}

#[tokio::test]
async fn reads_release_their_consumers() {
    // JetStream allows a stream 1,000 consumers; every read must give its own back.
    let (_server, store) = store().await;
    let item = key("item", "hot");
    store.append(&item, ExpectedVersion::Exact(0), vec![event("Made", json!({}))]).await.unwrap();
    for _ in 0..1_100 {
        assert_eq!(store.read_aggregate(&item, AggregateQuery::all()).await.unwrap().len(), 1);
    }
    let mut partial = store.read_log(StartAt::Beginning).await.unwrap();
    partial.next().await.unwrap().unwrap();
    drop(partial);
    let js = store.jetstream();
    let mut stream = js.get_stream("CIM_EVENTS").await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(stream.info().await.unwrap().state.consumer_count < 10);
}
