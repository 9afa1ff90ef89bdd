//! Chain verification names each kind of broken history with the right
//! `ChainError`, and keeps going after it.

use cim_cid::{
    AggregateKey, ChainError, ChainVerifier, Cid, Event, EventEnvelope, Ipld, NewEvent, Timestamp, check_next,
    dag_cbor_cid,
};

/// Event `version` of `aggregate`, linking `prev` and `parents`; `tag` makes
/// otherwise equal events differ.
fn event(aggregate: &str, version: u64, prev: Option<Cid>, parents: &[Cid], tag: i64) -> Event {
    let key: AggregateKey = aggregate.parse().expect("aggregate");
    let new = NewEvent::new("Happened", Ipld::Integer(i128::from(tag)))
        .with_parents(parents.iter().copied())
        .with_timestamp(Timestamp::from_unix_micros(1_795_323_600_000_000 + tag));
    Event::encode(EventEnvelope::chained(&key, version, prev, new).expect("envelope")).expect("encode").0
}

#[test]
fn a_sound_history_has_no_problems() {
    let mut v = ChainVerifier::new();
    let a1 = event("a/1", 1, None, &[], 0);
    let a2 = event("a/1", 2, Some(a1.cid), &[], 1);
    let b1 = event("b/1", 1, None, &[a1.cid, a2.cid], 2);
    for e in [&a1, &a2, &b1] {
        v.push(e).expect("sound");
    }
    assert!(v.problems().is_empty());
    assert_eq!(v.event_count(), 3);
    let mut heads: Vec<_> = v.heads().map(|(k, ver, cid)| (k.to_owned(), ver, *cid)).collect();
    heads.sort();
    assert_eq!(heads, vec![("a/1".to_owned(), 2, a2.cid), ("b/1".to_owned(), 1, b1.cid)]);
}

#[test]
fn duplicate() {
    let mut v = ChainVerifier::new();
    let a1 = event("a/1", 1, None, &[], 0);
    v.push(&a1).expect("first");
    assert_eq!(v.push(&a1), Err(ChainError::Duplicate { cid: a1.cid }));
    assert_eq!(v.event_count(), 1);
}

#[test]
fn gap() {
    let mut v = ChainVerifier::new();
    let a1 = event("a/1", 1, None, &[], 0);
    let a2 = event("a/1", 2, Some(a1.cid), &[], 1);
    let a3 = event("a/1", 3, Some(a2.cid), &[], 2);
    v.push(&a1).expect("first");
    let key = a1.envelope.aggregate();
    assert_eq!(v.push(&a3), Err(ChainError::Gap { aggregate: key.clone(), cid: a3.cid, expected: 2, found: 3 }));
    // An aggregate whose first event is missing.
    let mut fresh = ChainVerifier::new();
    assert_eq!(fresh.push(&a2), Err(ChainError::Gap { aggregate: key, cid: a2.cid, expected: 1, found: 2 }));
}

#[test]
fn fork() {
    let mut v = ChainVerifier::new();
    let a1 = event("a/1", 1, None, &[], 0);
    let a2 = event("a/1", 2, Some(a1.cid), &[], 1);
    let a2_other = event("a/1", 2, Some(a1.cid), &[], 99);
    v.push(&a1).expect("first");
    v.push(&a2).expect("second");
    let error = v.push(&a2_other);
    assert_eq!(
        error,
        Err(ChainError::Fork { aggregate: a1.envelope.aggregate(), cid: a2_other.cid, version: 2, head_version: 2 })
    );
    // The fork is not applied: the head stays a2, so a3 after a2 is fine.
    let a3 = event("a/1", 3, Some(a2.cid), &[], 2);
    v.push(&a3).expect("continues after the fork");
    // A second first event is a fork too.
    let a1_other = event("a/1", 1, None, &[], 100);
    assert!(matches!(v.push(&a1_other), Err(ChainError::Fork { version: 1, head_version: 3, .. })));
}

#[test]
fn broken_prev() {
    let mut v = ChainVerifier::new();
    let a1 = event("a/1", 1, None, &[], 0);
    let elsewhere = dag_cbor_cid(b"some other event");
    let a2 = event("a/1", 2, Some(elsewhere), &[], 1);
    v.push(&a1).expect("first");
    assert_eq!(
        v.push(&a2),
        Err(ChainError::BrokenPrev {
            aggregate: a1.envelope.aggregate(),
            cid: a2.cid,
            version: 2,
            expected: Some(a1.cid),
            found: Some(elsewhere)
        })
    );
    // Reported once: the broken event becomes the head, so its successor fits.
    let a3 = event("a/1", 3, Some(a2.cid), &[], 2);
    v.push(&a3).expect("after the break");
    assert_eq!(v.problems().len(), 1);
}

#[test]
fn dangling_parent() {
    let mut v = ChainVerifier::new();
    let missing = dag_cbor_cid(b"never stored");
    let b1 = event("b/1", 1, None, &[missing], 0);
    assert_eq!(v.push(&b1), Err(ChainError::DanglingParent { cid: b1.cid, parent: missing }));
    // A parent already known (e.g. in the target store) is fine.
    let mut v = ChainVerifier::new();
    v.assume_known(missing);
    v.push(&b1).expect("parent known");
}

#[test]
fn assume_head_continues_an_existing_chain() {
    let a1 = event("a/1", 1, None, &[], 0);
    let a2 = event("a/1", 2, Some(a1.cid), &[], 1);
    let mut v = ChainVerifier::new();
    v.assume_head(&a1.envelope.aggregate(), 1, a1.cid);
    v.push(&a2).expect("continues");
    assert!(check_next(&v, &a2).is_err(), "now a duplicate");
}

#[test]
fn every_problem_is_collected_in_order() {
    let mut v = ChainVerifier::new();
    let a1 = event("a/1", 1, None, &[], 0);
    let a3 = event("a/1", 3, Some(a1.cid), &[], 1);
    let b1 = event("b/1", 1, None, &[dag_cbor_cid(b"missing")], 2);
    for e in [&a1, &a1, &a3, &b1] {
        let _ = v.push(e);
    }
    let kinds: Vec<_> = v
        .problems()
        .iter()
        .map(|p| match p {
            ChainError::Duplicate { .. } => "duplicate",
            ChainError::Gap { .. } => "gap",
            ChainError::DanglingParent { .. } => "dangling",
            _ => "other",
        })
        .collect();
    assert_eq!(kinds, ["duplicate", "gap", "dangling"]);
    for problem in v.problems() {
        assert!(!problem.to_string().is_empty());
    }
}
