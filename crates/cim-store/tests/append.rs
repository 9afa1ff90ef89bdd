//! Appends: chaining, atomic multi-event appends, idempotent retries.

use cim_cid::{ChainVerifier, Timestamp};
use cim_store::{AggregateQuery, AppendOptions, Error, ExpectedVersion, StoreConfig};
use serde_json::json;

use crate::common::{event, key, store, store_with, stored_count};

#[tokio::test]
async fn appends_chain_events_by_prev_and_version() {
    let (_server, store) = store().await;
    let order = key("order", "1");
    let first =
        store.append(&order, ExpectedVersion::Exact(0), vec![event("Placed", json!({"items": 2}))]).await.unwrap();
    let second =
        store.append(&order, ExpectedVersion::Exact(1), vec![event("Paid", json!({"amount": 9.5}))]).await.unwrap();
    assert_eq!(first.version(), 1);
    assert_eq!(second.version(), 2);
    assert!(!first.already_stored && !second.already_stored);

    let events = store.read_aggregate(&order, AggregateQuery::all()).await.unwrap();
    assert_eq!(events.len(), 2);
    assert_eq!(events[0].event.cid, first.last_cid());
    assert_eq!(events[1].event.envelope.prev(), Some(&first.last_cid()));
    assert_eq!(events[1].event.envelope.event_type(), "Paid");
    assert_eq!(store.head(&order).await.unwrap(), Some((2, second.last_cid())));
    let mut chain = ChainVerifier::new();
    for stored in &events {
        chain.push(&stored.event).unwrap();
    }
}

#[tokio::test]
async fn several_events_of_one_command_are_stored_together() {
    let (_server, store) = store().await;
    let cart = key("cart", "7");
    let events = (0..5).map(|i| event("ItemAdded", json!({"sku": i}))).collect();
    let appended = store.append(&cart, ExpectedVersion::Exact(0), events).await.unwrap();
    assert_eq!(appended.events.iter().map(|e| e.version).collect::<Vec<_>>(), vec![1, 2, 3, 4, 5]);
    let seqs: Vec<u64> = appended.events.iter().map(|e| e.seq).collect();
    let stored = store.read_aggregate(&cart, AggregateQuery::all()).await.unwrap();
    assert_eq!(stored.iter().map(|e| e.seq).collect::<Vec<_>>(), seqs);
    assert_eq!(
        stored.iter().map(|e| e.event.cid).collect::<Vec<_>>(),
        appended.events.iter().map(|e| e.cid).collect::<Vec<_>>()
    );

    // A multi-event append at a stale version stores none of its events.
    let stale = (0..3).map(|i| event("ItemAdded", json!({"late": i}))).collect();
    let err = store.append(&cart, ExpectedVersion::Exact(2), stale).await.unwrap_err();
    assert!(matches!(err, Error::ConcurrencyConflict { expected: 2, actual: 5, .. }), "{err}");
    assert_eq!(stored_count(&store).await, 5);
}

#[tokio::test]
async fn a_retried_append_is_stored_once() {
    let (_server, store) = store().await;
    let doc = key("doc", "a");
    let at = Timestamp::from_unix_micros(1_763_787_600_000_000);
    let single = vec![event("Created", json!({"title": "x"})).with_timestamp(at)];
    let first = store.append(&doc, ExpectedVersion::Exact(0), single.clone()).await.unwrap();
    let retry = store.append(&doc, ExpectedVersion::Exact(0), single).await.unwrap();
    assert!(retry.already_stored);
    assert_eq!(retry.events, first.events);
    assert_eq!(stored_count(&store).await, 1);

    let batch: Vec<_> = (0..3).map(|i| event("Edited", json!({"n": i})).with_timestamp(at)).collect();
    let first = store.append(&doc, ExpectedVersion::Exact(1), batch.clone()).await.unwrap();
    let retry = store.append(&doc, ExpectedVersion::Exact(1), batch).await.unwrap();
    assert!(retry.already_stored);
    assert_eq!(retry.events, first.events);
    assert_eq!(stored_count(&store).await, 4);

    // A different event at the same version is a conflict, not a duplicate.
    let other = vec![event("Edited", json!({"n": 99})).with_timestamp(at)];
    let err = store.append(&doc, ExpectedVersion::Exact(1), other).await.unwrap_err();
    assert!(matches!(err, Error::ConcurrencyConflict { expected: 1, actual: 4, .. }), "{err}");
}

/// Creating an aggregate publishes without reading its head first: a
/// second process (no head seen) that creates an existing aggregate must
/// still find its own earlier event, or a conflict.
#[tokio::test]
async fn creating_an_existing_aggregate_from_another_process_is_a_retry_or_a_conflict() {
    let (server, store) = store().await;
    let other = store_with(&server, StoreConfig::default()).await;
    let doc = key("doc", "created-twice");
    let at = Timestamp::from_unix_micros(1_763_787_600_000_000);
    let created = vec![event("Created", json!({"title": "x"})).with_timestamp(at)];
    let first = store.append(&doc, ExpectedVersion::Exact(0), created.clone()).await.unwrap();
    let retry = other.append(&doc, ExpectedVersion::Exact(0), created).await.unwrap();
    assert!(retry.already_stored);
    assert_eq!(retry.events, first.events);

    let third = store_with(&server, StoreConfig::default()).await;
    let err = third.append(&doc, ExpectedVersion::Exact(0), vec![event("Created", json!({"title": "y"}))]).await;
    assert!(matches!(err, Err(Error::ConcurrencyConflict { expected: 0, actual: 1, .. })), "{err:?}");
    assert_eq!(stored_count(&store).await, 1);
}

/// Parents the caller verified are not looked up; the others are.
#[tokio::test]
async fn verified_parents_are_taken_as_stored_and_the_others_are_checked() {
    let (_server, store) = store().await;
    let input = store.append(&key("reading", "1"), ExpectedVersion::Exact(0), vec![event("Measured", json!({}))]).await;
    let input = input.unwrap().last_cid();
    let options = AppendOptions { verified_parents: &[input], ..AppendOptions::default() };
    let derived = event("Derived", json!({})).with_parents([input]);
    let appended = store.append_with(&key("derived", "1"), ExpectedVersion::Exact(0), vec![derived], options).await;
    assert_eq!(appended.unwrap().version(), 1);

    let unknown = cim_cid::dag_cbor_cid(b"an event that was never stored");
    let both = event("Derived", json!({})).with_parents([input, unknown]);
    let err = store.append_with(&key("derived", "2"), ExpectedVersion::Exact(0), vec![both], options).await;
    assert!(matches!(err, Err(Error::DanglingLink { parent, .. }) if parent == unknown), "{err:?}");
    assert_eq!(stored_count(&store).await, 2);

    // Not looked up at all: the caller answers for them.
    let vouched = AppendOptions { verified_parents: &[unknown], ..AppendOptions::default() };
    let trusted = event("Derived", json!({})).with_parents([unknown]);
    store.append_with(&key("derived", "3"), ExpectedVersion::Exact(0), vec![trusted], vouched).await.unwrap();
    assert_eq!(stored_count(&store).await, 3);
}

#[tokio::test]
async fn any_version_appends_after_the_head_seen_by_the_server() {
    let (server, store) = store().await;
    let other_writer = store_with(&server, Default::default()).await;
    let log = key("log", "main");
    store.append(&log, ExpectedVersion::Any, vec![event("Line", json!(1))]).await.unwrap();
    // The second process moves the head; the first one's hint is now stale.
    other_writer.append(&log, ExpectedVersion::Any, vec![event("Line", json!(2))]).await.unwrap();
    let third = store.append(&log, ExpectedVersion::Any, vec![event("Line", json!(3))]).await.unwrap();
    assert_eq!(third.version(), 3);
    let report = store.verify_aggregate(&log).await.unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);
    assert_eq!(report.verified, 3);
}

#[tokio::test]
async fn the_caller_of_an_append_is_kept_beside_its_events() {
    let (_server, store) = store().await;
    let order = key("order", "caller");
    let one = store
        .append_as(&order, ExpectedVersion::Exact(0), vec![event("Placed", json!({}))], Some("hub:token:t1"))
        .await
        .unwrap();
    let batch = store
        .append_as(
            &order,
            ExpectedVersion::Exact(1),
            (0..3).map(|i| event("Noted", json!({ "i": i }))).collect(),
            Some("hub:token:t2"),
        )
        .await
        .unwrap();
    let plain = store.append(&order, ExpectedVersion::Exact(4), vec![event("Closed", json!({}))]).await.unwrap();
    assert_eq!(store.caller_at(one.events[0].seq).await.unwrap().as_deref(), Some("hub:token:t1"));
    for appended in &batch.events {
        assert_eq!(store.caller_at(appended.seq).await.unwrap().as_deref(), Some("hub:token:t2"));
    }
    assert_eq!(store.caller_at(plain.events[0].seq).await.unwrap(), None);

    // The caller is outside the event: the same event appended without one
    // has the same CID.
    let twin = key("order", "caller-twin");
    let at = Timestamp::from_unix_micros(1_763_787_600_000_000);
    let a = store
        .append_as(&twin, ExpectedVersion::Exact(0), vec![event("Placed", json!({})).with_timestamp(at)], Some("x"))
        .await
        .unwrap();
    let b = store
        .append(&twin, ExpectedVersion::Exact(0), vec![event("Placed", json!({})).with_timestamp(at)])
        .await
        .unwrap();
    assert_eq!(a.last_cid(), b.last_cid());
    assert!(b.already_stored);

    let refused = store.append_as(&order, ExpectedVersion::Any, vec![event("X", json!({}))], Some("line\nbreak")).await;
    assert!(matches!(refused, Err(Error::InvalidCaller(_))), "{refused:?}");
}
