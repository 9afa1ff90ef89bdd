//! Archives that are damaged, cut short or do not fit the store: refused,
//! with the byte offset where that is known, and nothing written.

use std::path::Path;

use cim_archive::car::{write_block, write_header};
use cim_archive::manifest::{EXPORT_FORMAT, Head, Manifest, Selection};
use cim_archive::{Error, ExportSelection, Silent, export, import};
use cim_cid::{AggregateKey, ChainError, RAW, Timestamp};
use cim_test_support::NatsServer;

use crate::common::{Store, blocks, history, key};

/// Imports `content` into `store`; asserts it is refused and nothing is
/// written; returns why.
async fn refused(store: &Store, dir: &Path, name: &str, content: &[u8]) -> Error {
    let path = dir.join(name);
    std::fs::write(&path, content).unwrap();
    let before = store.counts().await;
    let error = import(store.stores(), &path, &Silent).await.expect_err(name);
    assert!(error.is_refusal(), "{name}: {error}");
    assert_eq!(store.counts().await, before, "{name} changed the store");
    error
}

#[tokio::test]
async fn damaged_or_cut_archives_are_refused_by_offset_and_nothing_is_written() {
    let server = NatsServer::start().await;
    let source = Store::open(&server, "source").await;
    history(&source).await;
    let dir = tempfile::tempdir().unwrap();
    let car = dir.path().join("all.car");
    export(source.stores(), &ExportSelection::default(), &car, &Silent).await.unwrap();
    let bytes = std::fs::read(&car).unwrap();
    let sections = blocks(&car).await;
    assert_eq!(sections.len(), 1 + 4 + 3, "manifest, four events, three objects");
    let target = Store::open(&server, "target").await;
    let flipped = |at: u64| {
        let mut copy = bytes.clone();
        copy[at as usize] ^= 0x01;
        copy
    };

    // One flipped byte in an event, in the raw object, in the manifest.
    let raw = sections.iter().find(|b| b.cid.codec() == RAW).unwrap();
    for (name, block) in [("event.car", &sections[2]), ("object.car", raw), ("manifest.car", &sections[0])] {
        let error = refused(&target, dir.path(), name, &flipped(block.offset + block.len - 1)).await;
        match &error {
            Error::CidMismatch { cid, actual, offset } => {
                assert_eq!((cid, offset), (&block.cid, &block.offset), "{name}");
                assert_ne!(actual, cid);
            }
            other => panic!("{name}: {other}"),
        }
        assert!(error.to_string().contains("the archive was altered or damaged"), "{error}");
    }

    // Cut short inside a block, and exactly at a block boundary.
    let cut = bytes.len() - 5;
    let error = refused(&target, dir.path(), "cut.car", &bytes[..cut]).await;
    assert!(matches!(error, Error::Truncated { offset, .. } if offset == cut as u64), "{error}");
    let last_but_one = &sections[sections.len() - 2];
    let boundary = (last_but_one.offset + last_but_one.len) as usize;
    let error = refused(&target, dir.path(), "boundary.car", &bytes[..boundary]).await;
    assert!(matches!(error, Error::ManifestMismatch(_)), "{error}");
    assert!(error.to_string().contains("was it cut short?"), "{error}");
    let error = refused(&target, dir.path(), "empty.car", &[]).await;
    assert!(matches!(error, Error::Truncated { offset: 0, .. }), "{error}");

    // A section whose length runs past the end of the file.
    let mut overlong = bytes.clone();
    overlong.extend_from_slice(&[0x7f, 0x01, 0x71]);
    let error = refused(&target, dir.path(), "overlong.car", &overlong).await;
    assert!(matches!(error, Error::Truncated { offset, .. } if offset == overlong.len() as u64), "{error}");
    assert!(error.to_string().contains(&format!("the section at byte {}", bytes.len())), "{error}");
}

#[tokio::test]
async fn an_archive_that_would_fork_a_chain_is_a_conflict() {
    let server = NatsServer::start().await;
    let source = Store::open(&server, "source").await;
    let (cids, _, _) = history(&source).await;
    let dir = tempfile::tempdir().unwrap();
    let car = dir.path().join("all.car");
    export(source.stores(), &ExportSelection::default(), &car, &Silent).await.unwrap();

    // Another store where customer/c1 began differently.
    let other = Store::open(&server, "other").await;
    let grace = other.append("customer/c1", "Registered", serde_json::json!({"name": "Grace"}), &[]).await;
    let error = refused(&other, dir.path(), "fork.car", &std::fs::read(&car).unwrap()).await;
    assert!(error.is_conflict(), "{error}");
    match &error {
        Error::ChainConflict { aggregate, version, store, archive } => {
            assert_eq!((aggregate, *version, store, archive), (&key("customer/c1"), 1, &grace, &cids[0]));
        }
        other => panic!("{other}"),
    }
    assert!(error.to_string().contains("importing would fork the chain"), "{error}");
}

#[tokio::test]
async fn an_archive_whose_chains_do_not_continue_the_store_is_refused() {
    let server = NatsServer::start().await;
    let source = Store::open(&server, "source").await;
    let (cids, _, _) = history(&source).await;
    // An archive holding only order/o1's second event: its manifest is
    // right, but the event has neither its predecessor nor its parent.
    let stored = source.events.read_aggregate(&key("order/o1"), Default::default()).await.unwrap();
    let (cid, event) = stored[1].event.envelope.encode().unwrap();
    assert_eq!(cid, cids[3]);
    let manifest = Manifest {
        format: EXPORT_FORMAT.to_owned(),
        created_us: Timestamp::now(),
        namespace: "source".to_owned(),
        selection: Selection::default(),
        events: 1,
        heads: vec![Head { aggregate: "order/o1".to_owned(), version: 2, head: cid }],
        objects: Vec::new(),
        names: Vec::new(),
    };
    let (root, manifest_bytes) = manifest.encode().unwrap();
    let mut car = Vec::new();
    write_header(&mut car, &[root]).await.unwrap();
    write_block(&mut car, &root, &manifest_bytes).await.unwrap();
    write_block(&mut car, &cid, &event).await.unwrap();

    let dir = tempfile::tempdir().unwrap();
    let target = Store::open(&server, "target").await;
    let error = refused(&target, dir.path(), "gap.car", &car).await;
    let Error::Chains(problems) = &error else { panic!("{error}") };
    let order: AggregateKey = key("order/o1");
    assert!(
        matches!(&problems[..], [ChainError::Gap { aggregate, expected: 1, found: 2, .. }] if *aggregate == order),
        "{error}"
    );

    // With its predecessor stored, the parent is still missing.
    let first = stored[0].event.clone();
    let customer = source.events.read_aggregate(&key("customer/c1"), Default::default()).await.unwrap();
    target.events.import(vec![customer[0].event.clone()]).await.unwrap();
    target.events.import(vec![first]).await.unwrap();
    let error = refused(&target, dir.path(), "dangling.car", &car).await;
    let Error::Chains(problems) = &error else { panic!("{error}") };
    assert!(
        matches!(&problems[..], [ChainError::DanglingParent { cid, parent }] if (*cid, *parent) == (cids[3], cids[2])),
        "{error}"
    );
}
