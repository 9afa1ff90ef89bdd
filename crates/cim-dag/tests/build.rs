//! Building the DAG: chains across aggregates, causal parents, positions.

use cim_cid::{ChainState, ChainVerifier, Event};
use cim_dag::{EventRef, MerkleDag};

use crate::support::{Chains, TestResult, key};

/// order/1 ×3, payment/1 ×2 (caused by order v2), shipment/1 (caused by
/// order v3 and payment v2), in that append order.
fn shop() -> Vec<Event> {
    let (order, payment, shipment) = (key("order/1"), key("payment/1"), key("shipment/1"));
    let mut chains = Chains::default();
    let o1 = chains.next(&order, &[]);
    let o2 = chains.next(&order, &[]);
    let p1 = chains.next(&payment, &[o2.cid]);
    let o3 = chains.next(&order, &[]);
    let p2 = chains.next(&payment, &[]);
    let s1 = chains.next(&shipment, &[o3.cid, p2.cid]);
    vec![o1, o2, p1, o3, p2, s1]
}

#[test]
fn chains_across_aggregates_with_causal_parents() -> TestResult {
    let events = shop();
    let mut dag = MerkleDag::new();
    assert!(dag.is_empty());
    for (i, event) in events.iter().enumerate() {
        let position = 100 + i as u64;
        let inserted = dag.insert(event, position)?;
        assert_eq!(
            inserted,
            EventRef {
                cid: event.cid,
                position,
                aggregate: &event.envelope.aggregate(),
                version: event.envelope.version()
            }
        );
    }
    assert_eq!(dag.len(), 6);
    // prev links: o2, p2, o3 = 3 (o1, p1, s1 are first in their chains);
    // parent links: p1→o2, s1→o3, s1→p2 = 3.
    assert_eq!(dag.link_count(), 6);
    assert_eq!(dag.aggregate_count(), 3);
    for (i, event) in events.iter().enumerate() {
        assert!(dag.contains(&event.cid));
        let got = dag.get(&event.cid).ok_or("inserted event missing")?;
        assert_eq!((got.cid, got.position, got.version), (event.cid, 100 + i as u64, event.envelope.version()));
        assert_eq!(*got.aggregate, event.envelope.aggregate());
    }
    let head = dag.aggregate_head(&key("order/1")).ok_or("order has a head")?;
    assert_eq!((head.cid, head.version), (events[3].cid, 3));
    assert_eq!(ChainState::head(&dag, "payment", "1"), Some((2, events[4].cid)));
    assert_eq!(ChainState::head(&dag, "payment", "2"), None);
    assert!(dag.aggregate_head(&key("order/2")).is_none());
    assert!(!dag.contains(&cim_cid::dag_cbor_cid(b"not an event")));
    assert!(dag.get(&cim_cid::raw_cid(b"a blob")).is_none());
    Ok(())
}

#[test]
fn accepts_exactly_what_the_chain_verifier_accepts() -> TestResult {
    let events = shop();
    let mut verifier = ChainVerifier::new();
    let mut dag = MerkleDag::new();
    for event in &events {
        verifier.push(event)?;
        dag.insert(event, 0)?;
        assert_eq!(verifier.event_count(), dag.len());
    }
    let mut verifier_heads: Vec<_> = verifier.heads().map(|(k, v, c)| (k.to_owned(), v, *c)).collect();
    let mut dag_heads: Vec<_> = dag.aggregates().map(|e| (e.aggregate.to_string(), e.version, e.cid)).collect();
    verifier_heads.sort();
    dag_heads.sort();
    assert_eq!(verifier_heads, dag_heads);
    Ok(())
}

#[test]
fn from_events_matches_inserting_one_by_one() -> TestResult {
    let events = shop();
    let mut one_by_one = MerkleDag::new();
    for (i, event) in events.iter().enumerate() {
        one_by_one.insert(event, i as u64)?;
    }
    let built = MerkleDag::from_events(events.iter().enumerate().map(|(i, e)| (e, i as u64)))?;
    assert_eq!(crate::support::snapshot(&built), crate::support::snapshot(&one_by_one));
    let owned = MerkleDag::from_events(events.into_iter().zip(0..))?;
    assert_eq!(crate::support::snapshot(&owned), crate::support::snapshot(&one_by_one));
    Ok(())
}

#[test]
fn from_events_stops_at_the_first_refused_event() {
    let mut events = shop();
    events.swap(1, 2); // p1 links o2 before o2 is in
    let error = MerkleDag::from_events(events.iter().map(|e| (e, 0))).expect_err("p1 comes before its parent");
    assert!(matches!(error.chain_error(), Some(cim_cid::ChainError::DanglingParent { .. })), "{error}");
}

#[test]
fn shrink_to_fit_keeps_everything_and_allows_more_inserts() -> TestResult {
    let events = shop();
    let mut dag = MerkleDag::with_capacity(1000);
    for event in &events[..5] {
        dag.insert(event, 0)?;
    }
    let before = crate::support::snapshot(&dag);
    dag.shrink_to_fit();
    assert_eq!(crate::support::snapshot(&dag), before);
    dag.insert(&events[5], 5)?;
    assert_eq!(dag.len(), 6);
    assert_eq!(dag.get(&events[5].cid).map(|e| e.position), Some(5));
    Ok(())
}

#[test]
fn an_event_may_name_its_prev_as_a_parent_too() -> TestResult {
    let order = key("order/9");
    let mut chains = Chains::default();
    let first = chains.next(&order, &[]);
    let second = chains.next(&order, &[first.cid]);
    let dag = MerkleDag::from_events([(&first, 1), (&second, 2)])?;
    assert_eq!(dag.link_count(), 2);
    assert_eq!(dag.ancestors(&second.cid, None)?.map(|e| e.cid).collect::<Vec<_>>(), vec![first.cid]);
    assert_eq!(dag.events_of(&order).iter().map(|e| e.cid).collect::<Vec<_>>(), vec![first.cid, second.cid]);
    Ok(())
}

#[test]
fn debug_output_is_a_summary() -> TestResult {
    let dag = MerkleDag::from_events(shop().into_iter().zip(0..))?;
    assert_eq!(format!("{dag:?}"), "MerkleDag { events: 6, links: 6, aggregates: 3, base: None, .. }");
    Ok(())
}
