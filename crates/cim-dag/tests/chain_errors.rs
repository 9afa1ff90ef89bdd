//! Every chain problem is refused with `cim_cid`'s own error, and the DAG is
//! left exactly as it was.

use cim_cid::{ChainError, Cid, Event};
use cim_dag::{DagError, MerkleDag};

use crate::support::{Chains, TestResult, event_at, key, snapshot};

/// order/1 v1..v3 and payment/1 v1 (caused by order v2).
fn dag() -> (MerkleDag, Vec<Cid>) {
    let (order, payment) = (key("order/1"), key("payment/1"));
    let mut chains = Chains::default();
    let o1 = chains.next(&order, &[]);
    let o2 = chains.next(&order, &[]);
    let p1 = chains.next(&payment, &[o2.cid]);
    let o3 = chains.next(&order, &[]);
    let cids = vec![o1.cid, o2.cid, o3.cid, p1.cid];
    (MerkleDag::from_events([(o1, 1), (o2, 2), (p1, 3), (o3, 4)]).expect("well-formed"), cids)
}

/// Inserts `event`, expects `expected`, and checks nothing changed.
fn refused(dag: &mut MerkleDag, event: &Event, expected: DagError) {
    let before = snapshot(dag);
    let error = dag.insert(event, 99).expect_err("the event must be refused");
    assert_eq!(error, expected);
    assert_eq!(snapshot(dag), before, "a refused insert changed the DAG");
    assert!(!dag.contains(&event.cid) || matches!(expected.chain_error(), Some(ChainError::Duplicate { .. })));
}

#[test]
fn duplicate() {
    let (mut dag, _) = dag();
    let order = key("order/1");
    let mut chains = Chains::default();
    let o1 = chains.next(&order, &[]); // the same bytes as the first event
    refused(&mut dag, &o1, ChainError::Duplicate { cid: o1.cid }.into());
}

#[test]
fn fork() {
    let (mut dag, cids) = dag();
    let order = key("order/1");
    let fork = event_at(&order, 2, Some(cids[0]), &[], 1000);
    let expected = ChainError::Fork { aggregate: order, cid: fork.cid, version: 2, head_version: 3 };
    refused(&mut dag, &fork, expected.into());
}

#[test]
fn gap() {
    let (mut dag, cids) = dag();
    let order = key("order/1");
    let gapped = event_at(&order, 5, Some(cids[2]), &[], 1000);
    let expected = ChainError::Gap { aggregate: order, cid: gapped.cid, expected: 4, found: 5 };
    refused(&mut dag, &gapped, expected.into());
}

#[test]
fn gap_in_a_new_aggregate() {
    let (mut dag, cids) = dag();
    let invoice = key("invoice/1");
    let gapped = event_at(&invoice, 2, Some(cids[0]), &[], 1000);
    let expected = ChainError::Gap { aggregate: invoice.clone(), cid: gapped.cid, expected: 1, found: 2 };
    refused(&mut dag, &gapped, expected.into());
    assert_eq!(dag.aggregate_head(&invoice), None);
    assert_eq!(dag.aggregate_count(), 2);
}

#[test]
fn broken_prev() {
    let (mut dag, cids) = dag();
    let order = key("order/1");
    let broken = event_at(&order, 4, Some(cids[1]), &[], 1000);
    let expected = ChainError::BrokenPrev {
        aggregate: order,
        cid: broken.cid,
        version: 4,
        expected: Some(cids[2]),
        found: Some(cids[1]),
    };
    refused(&mut dag, &broken, expected.into());
}

#[test]
fn dangling_parent() {
    let (mut dag, cids) = dag();
    let missing = cim_cid::dag_cbor_cid(b"an event the DAG never saw");
    let refund = key("refund/1");
    let orphan = event_at(&refund, 1, None, &[cids[3], missing], 1000);
    refused(&mut dag, &orphan, ChainError::DanglingParent { cid: orphan.cid, parent: missing }.into());
    assert_eq!(dag.aggregate_head(&refund), None, "a refused event's aggregate must not appear");
}

#[test]
fn an_event_cid_that_is_not_dag_cbor() {
    let (mut dag, _) = dag();
    let mut event = event_at(&key("note/1"), 1, None, &[], 1000);
    let blob = cim_cid::raw_cid(b"pretending to be an event");
    event.cid = blob;
    let error = dag.insert(&event, 5).expect_err("a raw CID is not an event");
    assert!(matches!(error, DagError::UnsupportedCid { cid, .. } if cid == blob), "{error}");
    assert!(dag.aggregate_head(&key("note/1")).is_none());
    assert_eq!(dag.len(), 4);
}

#[test]
fn a_refused_event_does_not_block_the_right_one() -> TestResult {
    let (mut dag, cids) = dag();
    let order = key("order/1");
    let wrong = event_at(&order, 4, Some(cids[0]), &[], 1000);
    assert!(dag.insert(&wrong, 5).is_err());
    let right = event_at(&order, 4, Some(cids[2]), &[cids[3]], 1001);
    let inserted = dag.insert(&right, 5)?;
    assert_eq!((inserted.cid, inserted.version, inserted.position), (right.cid, 4, 5));
    assert_eq!(dag.aggregate_head(&order).map(|e| e.cid), Some(right.cid));
    // The refused event left no trace: inserting it again still names the same problem.
    assert!(matches!(
        dag.insert(&wrong, 6).err().as_ref().and_then(DagError::chain_error),
        Some(ChainError::Fork { .. })
    ));
    Ok(())
}

#[test]
fn chain_errors_display_as_cim_cid_writes_them() {
    let (mut dag, cids) = dag();
    let fork = event_at(&key("order/1"), 1, None, &[], 1000);
    let error = dag.insert(&fork, 0).expect_err("a second version 1");
    assert_eq!(
        error.to_string(),
        format!("fork in order/1: event {} claims version 1, but the chain is already at version 3", fork.cid)
    );
    assert!(!cids.contains(&fork.cid));
}
