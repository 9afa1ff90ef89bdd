//! Bad input gets a specific error, nothing panics, and nothing is written.

use async_nats::jetstream::{self, stream};
use cim_cid::{AggregateKey, Event, EventEnvelope, Ipld, NewEvent, dag_cbor_cid};
use cim_store::{Error, EventStore, ExpectedVersion, MAX_BATCH_EVENTS, StoreConfig};
use serde_json::json;

use crate::common::{event, key, store, stored_count};

#[tokio::test]
async fn invalid_appends_are_refused_and_write_nothing() {
    let (_server, store) = store().await;
    let doc = key("doc", "x");
    store.append(&doc, ExpectedVersion::Exact(0), vec![event("Created", json!({}))]).await.unwrap();

    let stale = store.append(&doc, ExpectedVersion::Exact(0), vec![event("Edited", json!({}))]).await.unwrap_err();
    assert!(matches!(stale, Error::ConcurrencyConflict { expected: 0, actual: 1, .. }), "{stale}");
    assert!(stale.is_retryable());
    let ahead = store.append(&doc, ExpectedVersion::Exact(5), vec![event("Edited", json!({}))]).await.unwrap_err();
    assert!(matches!(ahead, Error::ConcurrencyConflict { expected: 5, actual: 1, .. }), "{ahead}");

    let dangling = dag_cbor_cid(b"an event that was never stored");
    let orphan = event("Edited", json!({})).with_parents([dangling]);
    let err = store.append(&doc, ExpectedVersion::Exact(1), vec![event("Ok", json!({})), orphan]).await.unwrap_err();
    assert!(matches!(err, Error::DanglingLink { index: 1, parent } if parent == dangling), "{err}");

    let raw_parent = event("Edited", json!({})).with_parents([cim_cid::raw_cid(b"a blob, not an event")]);
    let err = store.append(&doc, ExpectedVersion::Exact(1), vec![raw_parent]).await.unwrap_err();
    assert!(matches!(err, Error::DanglingLink { .. } | Error::Invalid(_)), "{err}");

    let twice = event("Edited", json!({})).with_parents([store.head(&doc).await.unwrap().unwrap().1; 2]);
    let err = store.append(&doc, ExpectedVersion::Exact(1), vec![twice]).await.unwrap_err();
    assert!(err.to_string().contains("twice"), "{err}");

    let big = event("Edited", json!({"blob": "x".repeat(2 * 1024 * 1024)}));
    assert!(matches!(
        store.append(&doc, ExpectedVersion::Exact(1), vec![big]).await,
        Err(Error::EventTooLarge { index: 0, .. })
    ));

    assert!(matches!(store.append(&doc, ExpectedVersion::Exact(1), vec![]).await, Err(Error::EmptyAppend)));
    let many = vec![event("Edited", json!({})); MAX_BATCH_EVENTS + 1];
    assert!(matches!(store.append(&doc, ExpectedVersion::Exact(1), many).await, Err(Error::TooManyEvents { .. })));

    let bad_type = NewEvent::new("has space", Ipld::Null);
    let err = store.append(&doc, ExpectedVersion::Exact(1), vec![bad_type]).await.unwrap_err();
    assert!(matches!(&err, Error::Invalid(cim_cid::Error::InvalidName { what: "event type", .. })), "{err}");

    let nan = NewEvent::new("Measured", Ipld::Float(f64::NAN));
    assert!(matches!(store.append(&doc, ExpectedVersion::Exact(1), vec![nan]).await, Err(Error::Invalid(_))));

    assert!(AggregateKey::new("order", "has.dot").is_err(), "a '.' would split the subject");
    assert!(AggregateKey::new("order", "").is_err());
    assert!(AggregateKey::new("or der", "1").is_err());
    assert!("no-slash".parse::<AggregateKey>().is_err());

    assert_eq!(stored_count(&store).await, 1, "nothing but the first event was written");
}

#[tokio::test]
async fn imports_that_break_a_chain_or_a_cid_write_nothing() {
    let (_server, store) = store().await;
    let doc = key("doc", "imp");
    let first = Event::encode(EventEnvelope::chained(&doc, 1, None, event("Created", json!({}))).unwrap()).unwrap().0;
    let second =
        Event::encode(EventEnvelope::chained(&doc, 2, Some(first.cid), event("Edited", json!({}))).unwrap()).unwrap().0;
    let third =
        Event::encode(EventEnvelope::chained(&doc, 3, Some(second.cid), event("Edited", json!({"n": 3}))).unwrap())
            .unwrap()
            .0;

    let err = store.import(vec![first.clone(), third.clone()]).await.unwrap_err();
    assert!(err.to_string().contains("gap"), "{err}");
    let err = store.import(vec![second.clone()]).await.unwrap_err();
    assert!(err.to_string().contains("gap"), "{err}");
    let mut lying = second.clone();
    lying.cid = third.cid;
    let err = store.import(vec![first.clone(), lying]).await.unwrap_err();
    assert!(err.to_string().contains(&third.cid.to_string()), "{err}");
    assert_eq!(stored_count(&store).await, 0);

    let imported = store.import(vec![first.clone(), second.clone(), third.clone()]).await.unwrap();
    assert_eq!(imported.events.iter().map(|e| e.cid).collect::<Vec<_>>(), [first.cid, second.cid, third.cid]);
    let again = store.import(vec![first, second, third]).await.unwrap();
    assert!(again.already_stored);
    assert_eq!(stored_count(&store).await, 3);
}

#[tokio::test]
async fn a_bad_configuration_or_an_unusable_stream_is_named() {
    let server = cim_test_support::NatsServer::start().await;
    let bad = StoreConfig { namespace: "Upper.Case".into(), ..StoreConfig::default() };
    let err = EventStore::provision(server.connect().await, bad).await.unwrap_err();
    assert!(matches!(&err, Error::Config { field: "namespace", .. }), "{err}");

    // Someone created the stream in memory: the store refuses to use it.
    let js = jetstream::new(server.connect().await);
    let config = StoreConfig::with_namespace("mem");
    let stream_config =
        stream::Config { storage: stream::StorageType::Memory, ..cim_store::events_stream_config(&config) };
    js.create_stream(stream_config).await.unwrap();
    let err = EventStore::provision(server.connect().await, config).await.unwrap_err();
    assert!(matches!(&err, Error::Incompatible { reason, .. } if reason.contains("memory")), "{err}");
}
