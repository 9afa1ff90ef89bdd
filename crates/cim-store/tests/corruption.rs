//! Damaged stored bytes are detected on read and by verification, naming
//! the item: bytes flipped on disk (the server then cannot load the
//! message and skips it), and messages whose bytes disagree with the CID
//! they claim (a writer that bypassed the store).

use std::path::{Path, PathBuf};

use async_nats::jetstream::{self, message::PublishMessage};
use cim_cid::{ChainError, Event, EventEnvelope};
use cim_store::{AggregateQuery, Error, EventStore, ExpectedVersion, ObjectStore, Problem, StoreConfig};
use cim_test_support::NatsServer;
use serde_json::json;

use crate::common::{event, key};

const MARKER: &str = "flip-a-byte-in-here";

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(files_under(&path));
        } else {
            files.push(path);
        }
    }
    files
}

/// Stops the server, flips one byte inside `MARKER` wherever it was stored
/// on disk, and starts the server again.
async fn flip_marker_on_disk(server: &mut NatsServer) {
    server.stop().await;
    let mut flipped = 0;
    for file in files_under(server.store_dir()) {
        let mut bytes = std::fs::read(&file).unwrap();
        if let Some(at) = bytes.windows(MARKER.len()).position(|w| w == MARKER.as_bytes()) {
            bytes[at + 5] ^= 0x01;
            std::fs::write(&file, bytes).unwrap();
            flipped += 1;
        }
    }
    assert!(flipped > 0, "the marker was stored on disk");
    server.restart().await;
}

#[tokio::test]
async fn an_event_damaged_on_disk_is_named_by_reads_verification_and_the_dag() {
    let mut server = NatsServer::start().await;
    let store = EventStore::provision(server.connect().await, StoreConfig::default()).await.unwrap();
    let doc = key("doc", "d");
    store.append(&doc, ExpectedVersion::Exact(0), vec![event("Created", json!({"text": "fine"}))]).await.unwrap();
    let victim =
        store.append(&doc, ExpectedVersion::Exact(1), vec![event("Edited", json!({"text": MARKER}))]).await.unwrap();
    let after =
        store.append(&doc, ExpectedVersion::Exact(2), vec![event("Edited", json!({"text": "after"}))]).await.unwrap();
    drop(store);
    flip_marker_on_disk(&mut server).await;

    let store = EventStore::provision(server.connect().await, StoreConfig::default()).await.unwrap();
    let report = store.verify(|_, _| {}).await.unwrap();
    assert_eq!(report.verified, 1);
    assert_eq!(report.problems.len(), 2, "{:?}", report.problems);
    assert_eq!(report.problems[0], Problem::Missing { from: 2, to: 2 });
    let Problem::Chain { seq: 3, error } = &report.problems[1] else {
        panic!("expected a chain problem, got {:?}", report.problems[1])
    };
    let ChainError::Gap { cid, expected: 2, found: 3, .. } = error.as_ref() else {
        panic!("expected a gap before version 3, got {error}")
    };
    assert_eq!(*cid, after.last_cid());

    let error = store.read_aggregate(&doc, AggregateQuery::all()).await.unwrap_err();
    let Error::CorruptEvent { seq: 3, reason, .. } = &error else { panic!("{error}") };
    assert!(reason.contains(&victim.last_cid().to_string()), "the error names the lost event: {reason}");

    let dag = EventStore::open_with_dag(server.connect().await, StoreConfig::default()).await.unwrap();
    let problems = dag.dag().await.unwrap().problems();
    assert!(problems.contains(&Problem::Missing { from: 2, to: 2 }), "{problems:?}");
}

#[tokio::test]
async fn the_last_event_damaged_on_disk_does_not_hang_readers() {
    let mut server = NatsServer::start().await;
    let store = EventStore::provision(server.connect().await, StoreConfig::default()).await.unwrap();
    let doc = key("doc", "tail");
    store.append(&doc, ExpectedVersion::Exact(0), vec![event("Created", json!({"text": "fine"}))]).await.unwrap();
    store.append(&doc, ExpectedVersion::Exact(1), vec![event("Edited", json!({"text": MARKER}))]).await.unwrap();
    drop(store);
    flip_marker_on_disk(&mut server).await;

    let store = EventStore::open_with_dag(server.connect().await, StoreConfig::default()).await.unwrap();
    assert_eq!(store.dag().await.unwrap().problems(), [Problem::Missing { from: 2, to: 2 }]);
    let report = store.verify(|_, _| {}).await.unwrap();
    assert_eq!(report.problems, [Problem::Missing { from: 2, to: 2 }]);
    assert!(report.problems[0].to_string().contains("stream sequence 2"));
}

#[tokio::test]
async fn a_message_whose_bytes_disagree_with_its_cid_is_named() {
    let server = NatsServer::start().await;
    let store = EventStore::provision(server.connect().await, StoreConfig::default()).await.unwrap();
    let doc = key("doc", "rogue");
    let first = store.append(&doc, ExpectedVersion::Exact(0), vec![event("Created", json!({"n": 1}))]).await.unwrap();

    // A writer that bypasses the store publishes version 2 with one byte
    // of the payload changed after the CID was computed.
    let envelope = EventEnvelope::chained(&doc, 2, Some(first.last_cid()), event("Edited", json!({"n": 2}))).unwrap();
    let (claimed, mut bytes) = Event::encode(envelope).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x01;
    let js = jetstream::new(server.connect().await);
    let message = PublishMessage::build().payload(bytes.into()).message_id(claimed.cid.to_string());
    js.send_publish("cim.events.doc.rogue", message).await.unwrap().await.unwrap();

    let error = store.read_aggregate(&doc, AggregateQuery::all()).await.unwrap_err();
    assert!(
        matches!(&error, Error::CorruptEvent { seq: 2, cid: Some(c), reason } if *c == claimed.cid && reason.contains("hash")),
        "{error}"
    );
    let report = store.verify(|_, _| {}).await.unwrap();
    assert_eq!(report.verified, 1);
    assert!(
        matches!(&report.problems[..], [Problem::Corrupt { seq: 2, cid: Some(c), .. }] if *c == claimed.cid),
        "{:?}",
        report.problems
    );

    // Garbage that is not DAG-CBOR at all, under its own (correct) CID.
    let garbage = b"\xff\x00 not dag-cbor".to_vec();
    let message =
        PublishMessage::build().payload(garbage.clone().into()).message_id(cim_cid::dag_cbor_cid(&garbage).to_string());
    js.send_publish("cim.events.doc.garbage", message).await.unwrap().await.unwrap();
    let error = store.read_aggregate(&key("doc", "garbage"), AggregateQuery::all()).await.unwrap_err();
    assert!(matches!(&error, Error::CorruptEvent { seq: 3, reason, .. } if reason.contains("decode")), "{error}");

    // An intact event stored under another aggregate's subject.
    let envelope = EventEnvelope::chained(&key("doc", "elsewhere"), 1, None, event("Created", json!({}))).unwrap();
    let (moved, bytes) = Event::encode(envelope).unwrap();
    let message = PublishMessage::build().payload(bytes.into()).message_id(moved.cid.to_string());
    js.send_publish("cim.events.doc.victim", message).await.unwrap().await.unwrap();
    let error = store.read_aggregate(&key("doc", "victim"), AggregateQuery::all()).await.unwrap_err();
    assert!(matches!(&error, Error::CorruptEvent { seq: 4, reason, .. } if reason.contains("subject")), "{error}");
}

#[tokio::test]
async fn an_object_damaged_on_disk_or_in_its_metadata_fails_verification() {
    let mut server = NatsServer::start().await;
    let objects = ObjectStore::provision(server.connect().await, &StoreConfig::default()).await.unwrap();
    let mut content = vec![b'.'; 300_000];
    content[200_000..200_000 + MARKER.len()].copy_from_slice(MARKER.as_bytes());
    let meta = objects.put(content.as_slice()).await.unwrap();
    let intact = objects.put_bytes(b"intact").await.unwrap();
    drop(objects);
    flip_marker_on_disk(&mut server).await;

    let objects = ObjectStore::provision(server.connect().await, &StoreConfig::default()).await.unwrap();
    let error = objects.get_bytes(&meta.cid).await.unwrap_err();
    assert!(matches!(&error, Error::CorruptObject { cid, .. } if *cid == meta.cid), "{error}");
    assert!(matches!(objects.verify(&meta.cid).await, Err(Error::CorruptObject { .. })));
    assert_eq!(objects.get_bytes(&intact).await.unwrap(), b"intact");

    // Metadata rewritten to claim another digest under the same name.
    let js = jetstream::new(server.connect().await);
    let bucket = js.get_object_store(objects.bucket()).await.unwrap();
    let mut info = bucket.info(intact.to_string()).await.unwrap();
    info.digest = Some("SHA-256=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=".to_owned());
    let subject = format!("$O.{}.M.{}", objects.bucket(), base64_url(&intact.to_string()));
    let message =
        PublishMessage::build().payload(serde_json::to_vec(&info).unwrap().into()).header("Nats-Rollup", "sub");
    js.send_publish(subject, message).await.unwrap().await.unwrap();
    let error = objects.get_bytes(&intact).await.unwrap_err();
    assert!(matches!(&error, Error::CorruptObject { reason, .. } if reason.contains("digest")), "{error}");
}

/// An object of one chunk is read with a single direct get rather than a
/// consumer; damage is still found.
#[tokio::test]
async fn a_damaged_single_chunk_object_fails_verification() {
    let mut server = NatsServer::start().await;
    let objects = ObjectStore::provision(server.connect().await, &StoreConfig::default()).await.unwrap();
    let content = format!("{}{MARKER}{}", ".".repeat(1_000), ".".repeat(1_000));
    let meta = objects.put(content.as_bytes()).await.unwrap();
    assert_eq!(meta.chunks, 1);
    assert_eq!(objects.get_bytes(&meta.cid).await.unwrap(), content.as_bytes());
    drop(objects);
    flip_marker_on_disk(&mut server).await;

    let objects = ObjectStore::provision(server.connect().await, &StoreConfig::default()).await.unwrap();
    let error = objects.get_bytes(&meta.cid).await.unwrap_err();
    assert!(matches!(&error, Error::CorruptObject { cid, .. } if *cid == meta.cid), "{error}");
}

fn base64_url(text: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE.encode(text)
}
