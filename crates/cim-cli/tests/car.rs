//! CAR export and import through the binary: round trips, and archives that
//! are tampered with, cut short or in conflict with the store, refused with
//! nothing written.

use std::path::Path;

use crate::common::{Env, history};

/// `(start, end)` of every section after the header: a varint length, then
/// that many bytes.
fn sections(car: &[u8]) -> Vec<(usize, usize)> {
    let varint = |at: &mut usize| {
        let (mut value, mut shift) = (0usize, 0);
        loop {
            let byte = car[*at];
            *at += 1;
            value |= usize::from(byte & 0x7f) << shift;
            shift += 7;
            if byte & 0x80 == 0 {
                return value;
            }
        }
    };
    let mut at = 0;
    let header = varint(&mut at);
    at += header;
    let mut found = Vec::new();
    while at < car.len() {
        let start = at;
        let len = varint(&mut at);
        at += len;
        found.push((start, at));
    }
    found
}

fn aggregate_cids(env: &Env, namespace: &str, aggregate: &str) -> Vec<String> {
    let read = env.cim_in(namespace, &["--json", "events", "read", aggregate]).json();
    read.as_array().unwrap().iter().map(|e| e["cid"].as_str().unwrap().to_owned()).collect()
}

#[tokio::test]
async fn export_then_import_reproduces_every_cid_and_chain() {
    let env = Env::new().await;
    let dir = tempfile::tempdir().unwrap();
    let cids = history(&env, dir.path());
    let car = dir.path().join("all.car");
    let exported = env.cim(&["--json", "export", "-o", car.to_str().unwrap()]).json();
    assert_eq!(exported["events"], 4);
    assert_eq!(exported["objects"], 2, "the invoice and its name's version record");
    assert_eq!(exported["manifest"]["names"][0]["name"], "docs/invoice");

    let imported = env.cim_in("copy", &["--json", "import", car.to_str().unwrap()]).json();
    assert_eq!((imported["events_written"].as_u64(), imported["objects_written"].as_u64()), (Some(4), Some(2)));
    for aggregate in ["customer/c1", "order/o1", "payment/p1"] {
        assert_eq!(aggregate_cids(&env, "copy", aggregate), aggregate_cids(&env, &env.namespace, aggregate));
    }
    assert_eq!(imported["names"][0], "docs/invoice");
    let original = env.cim(&["--json", "objects", "history", "docs/invoice"]).json();
    let restored = env.cim_in("copy", &["--json", "objects", "history", "docs/invoice"]).json();
    assert_eq!(restored, original, "the name points at the same version records");
    let shown = env.cim_in("copy", &["--json", "events", "show", &cids[3]]).json();
    assert_eq!(shown["parents"][0], cids[2].as_str());
    let verify = env.cim_in("copy", &["--json", "verify"]).json();
    assert_eq!(
        (verify["ok"].as_bool(), verify["events"].as_u64(), verify["objects"].as_u64()),
        (Some(true), Some(4), Some(2))
    );

    // Importing again writes nothing; a dry run writes nothing either.
    let again = env.cim_in("copy", &["--json", "import", car.to_str().unwrap()]).json();
    assert_eq!((again["events_written"].as_u64(), again["events_present"].as_u64()), (Some(0), Some(4)));
    let dry = env.cim_in("dry", &["--json", "import", "--dry-run", car.to_str().unwrap()]).json();
    assert_eq!(dry["dry_run"], true);
    assert_eq!(env.counts("dry").0, 0);

    // One aggregate comes with everything it descends from, and what it links.
    let some = dir.path().join("payment.car");
    let exported = env.cim(&["--json", "export", "-o", some.to_str().unwrap(), "--aggregate", "payment/p1"]).json();
    assert_eq!(exported["events"], 3, "payment/p1 v1, order/o1 v1, customer/c1 v1");
    assert_eq!(exported["objects"], 0);
    let imported = env.cim_in("partial", &["--json", "import", some.to_str().unwrap()]).json();
    assert_eq!(imported["events_written"], 3);
    assert_eq!(aggregate_cids(&env, "partial", "order/o1"), &cids[1..2]);
    // The rest of order/o1 then continues the chain already there.
    let imported = env.cim_in("partial", &["--json", "import", car.to_str().unwrap()]).json();
    assert_eq!((imported["events_written"].as_u64(), imported["events_present"].as_u64()), (Some(1), Some(3)));
    assert_eq!(env.cim_in("partial", &["--json", "verify"]).json()["ok"], true);
}

#[tokio::test]
async fn tampered_or_truncated_archives_are_refused_and_nothing_is_written() {
    let env = Env::new().await;
    let dir = tempfile::tempdir().unwrap();
    history(&env, dir.path());
    let car = dir.path().join("all.car");
    env.cim(&["export", "-o", car.to_str().unwrap()]).ok();
    let bytes = std::fs::read(&car).unwrap();
    let blocks = sections(&bytes);
    assert_eq!(blocks.len(), 1 + 4 + 2, "manifest, four events, two objects");
    let before = env.counts("target");

    let refuse = |name: &str, content: &[u8], code: i32, message: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, content).unwrap();
        env.cim_in("target", &["import", path.to_str().unwrap()])
            .fails(code, message)
            .fails(code, "nothing was written");
        assert_eq!(env.counts("target"), before, "{name} changed the store");
    };
    let flipped = |at: usize| {
        let mut copy = bytes.clone();
        copy[at] ^= 0x01;
        copy
    };
    // One flipped byte in an event, in an object, in the manifest.
    let (_, second_event_end) = blocks[2];
    refuse("event.car", &flipped(second_event_end - 3), 3, "the archive was altered or damaged");
    refuse("object.car", &flipped(bytes.len() - 1), 3, "the archive was altered or damaged");
    refuse("manifest.car", &flipped(blocks[0].1 - 2), 3, "the archive was altered or damaged");
    // Cut short inside a block, and exactly at a block boundary.
    refuse("cut.car", &bytes[..bytes.len() - 5], 3, "cut short");
    refuse("boundary.car", &bytes[..blocks[5].1], 3, "cut short?");
    refuse("empty.car", &[], 3, "the file is empty");
}

#[tokio::test]
async fn an_archive_that_would_fork_a_chain_is_a_conflict() {
    let env = Env::new().await;
    let dir = tempfile::tempdir().unwrap();
    history(&env, dir.path());
    let car = dir.path().join("all.car");
    env.cim(&["export", "-o", car.to_str().unwrap()]).ok();
    // Another store where customer/c1 began differently.
    env.cim_in("other", &["events", "append", "customer/c1", "Registered", r#"{"name":"Grace"}"#]).ok();
    let before = env.counts("other");
    env.cim_in("other", &["import", car.to_str().unwrap()])
        .fails(4, "the store's customer/c1 differs from the archive's at version 1")
        .fails(4, "importing would fork the chain");
    assert_eq!(env.counts("other"), before);
    assert!(Path::new(&car).exists());
}
