//! A DAG started from a checkpoint: the heads of every aggregate as base
//! events, then the events after them, checked exactly as from the start.

use cim_cid::ChainError;
use cim_dag::{DagError, MerkleDag};

use crate::support::{Chains, key};

#[test]
fn continues_the_chains_of_its_base_and_refuses_what_breaks_them() {
    let (order, payment) = (key("order/1"), key("payment/1"));
    let mut chains = Chains::default();
    let o1 = chains.next(&order, &[]);
    let o2 = chains.next(&order, &[]);
    let p1 = chains.next(&payment, &[o1.cid]);
    // Checkpoint at position 3: order at v2 (o2, position 2), payment at v1.
    let o3 = chains.next(&order, &[o1.cid]); // parent before the checkpoint, not a head
    let p2 = chains.next(&payment, &[o3.cid]);

    let mut dag = MerkleDag::new();
    dag.insert_base(&order, 2, o2.cid, 2, 3).expect("base");
    dag.insert_base(&payment, 1, p1.cid, 3, 3).expect("base");
    assert_eq!(dag.base_position(), Some(3));
    dag.insert(&o3, 4).expect("continues order");
    dag.insert(&p2, 5).expect("continues payment");
    assert_eq!(dag.len(), 4);
    assert_eq!(dag.external_parents(), 1, "o3's parent o1 is before the checkpoint");
    assert_eq!(dag.aggregate_head(&order).map(|e| e.cid), Some(o3.cid));
    // The prev edge from the base head is there; the external parent has none.
    assert_eq!(dag.link_count(), 3);

    // A second v3 of order forks; an event skipping a version is a gap.
    let mut other = Chains::default();
    other.next(&order, &[]);
    other.next(&order, &[]);
    let fork = other.next(&order, &[]);
    let error = dag.insert(&fork, 6).expect_err("fork");
    assert!(matches!(error.chain_error(), Some(ChainError::Fork { .. })), "{error}");
    // Base events come first.
    let error = dag.insert_base(&key("late/1"), 1, fork.cid, 1, 3).expect_err("after events");
    assert!(matches!(error, DagError::BaseAfterEvents { .. }), "{error}");
}

#[test]
fn a_dag_from_the_first_event_still_refuses_unknown_parents() {
    let order = key("order/1");
    let mut chains = Chains::default();
    let o1 = chains.next(&order, &[]);
    let o2 = chains.next(&key("other/1"), &[o1.cid]);
    let mut dag = MerkleDag::new();
    let error = dag.insert(&o2, 1).expect_err("dangling");
    assert!(matches!(error.chain_error(), Some(ChainError::DanglingParent { .. })), "{error}");
}
