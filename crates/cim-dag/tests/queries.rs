//! Every query on a hand-built graph with known answers.
//!
//! ```text
//! order/1:     o1 ──▶ o2 ──▶ o3
//!                     ┆       ┆
//! payment/1:          └┄▶ p1 ──▶ p2
//!                             ┆    ┆
//! shipment/1:                 └┄┄┄┄┴┄▶ s1      (parents o3 and p2)
//! customer/1:  c1                              (no links)
//! ```
//!
//! Solid arrows are `prev`, dotted ones parents. Insertion order (and
//! positions 10, 20, …): o1 o2 p1 o3 p2 s1 c1.

use std::collections::HashSet;

use cim_cid::{Cid, Event};
use cim_dag::{DagError, MerkleDag};

use crate::support::{Chains, TestResult, key};

struct Shop {
    dag: MerkleDag,
    o1: Cid,
    o2: Cid,
    o3: Cid,
    p1: Cid,
    p2: Cid,
    s1: Cid,
    c1: Cid,
}

fn shop() -> Shop {
    let (order, payment, shipment, customer) = (key("order/1"), key("payment/1"), key("shipment/1"), key("customer/1"));
    let mut chains = Chains::default();
    let o1 = chains.next(&order, &[]);
    let o2 = chains.next(&order, &[]);
    let p1 = chains.next(&payment, &[o2.cid]);
    let o3 = chains.next(&order, &[]);
    let p2 = chains.next(&payment, &[]);
    let s1 = chains.next(&shipment, &[o3.cid, p2.cid]);
    let c1 = chains.next(&customer, &[]);
    let events: Vec<&Event> = vec![&o1, &o2, &p1, &o3, &p2, &s1, &c1];
    let dag = MerkleDag::from_events(events.into_iter().zip((1..).map(|i| i * 10))).expect("a well-formed shop");
    Shop { dag, o1: o1.cid, o2: o2.cid, o3: o3.cid, p1: p1.cid, p2: p2.cid, s1: s1.cid, c1: c1.cid }
}

fn set(cids: &[Cid]) -> HashSet<Cid> {
    cids.iter().copied().collect()
}

fn ancestors(dag: &MerkleDag, cid: &Cid, max_depth: Option<usize>) -> Vec<Cid> {
    dag.ancestors(cid, max_depth).expect("known event").map(|e| e.cid).collect()
}

fn descendants(dag: &MerkleDag, cid: &Cid, max_depth: Option<usize>) -> Vec<Cid> {
    dag.descendants(cid, max_depth).expect("known event").map(|e| e.cid).collect()
}

#[test]
fn ancestors_nearest_first_and_bounded_by_depth() {
    let s = shop();
    let all = ancestors(&s.dag, &s.s1, None);
    assert_eq!(all.len(), 5, "each ancestor once: {all:?}");
    assert_eq!(set(&all[..2]), set(&[s.o3, s.p2]));
    assert_eq!(set(&all[2..4]), set(&[s.o2, s.p1]));
    assert_eq!(all[4], s.o1);
    assert_eq!(set(&ancestors(&s.dag, &s.s1, Some(1))), set(&[s.o3, s.p2]));
    assert_eq!(set(&ancestors(&s.dag, &s.s1, Some(2))), set(&[s.o3, s.p2, s.o2, s.p1]));
    assert_eq!(ancestors(&s.dag, &s.s1, Some(0)), Vec::<Cid>::new());
    assert_eq!(ancestors(&s.dag, &s.p1, None), vec![s.o2, s.o1]);
    assert_eq!(ancestors(&s.dag, &s.o1, None), Vec::<Cid>::new());
    assert_eq!(ancestors(&s.dag, &s.c1, None), Vec::<Cid>::new());
}

#[test]
fn descendants_nearest_first_and_bounded_by_depth() {
    let s = shop();
    let all = descendants(&s.dag, &s.o1, None);
    assert_eq!(all.len(), 5, "each descendant once: {all:?}");
    assert_eq!(all[0], s.o2);
    assert_eq!(set(&all[1..3]), set(&[s.o3, s.p1]));
    assert_eq!(set(&all[3..]), set(&[s.s1, s.p2]));
    assert_eq!(set(&descendants(&s.dag, &s.o2, Some(1))), set(&[s.o3, s.p1]));
    assert_eq!(descendants(&s.dag, &s.p1, None), vec![s.p2, s.s1]);
    assert_eq!(descendants(&s.dag, &s.s1, None), Vec::<Cid>::new());
    assert_eq!(descendants(&s.dag, &s.c1, None), Vec::<Cid>::new());
    assert_eq!(descendants(&s.dag, &s.o1, Some(0)), Vec::<Cid>::new());
}

#[test]
fn walks_of_unknown_events_are_errors() {
    let s = shop();
    let stranger = cim_cid::dag_cbor_cid(b"stranger");
    assert_eq!(s.dag.ancestors(&stranger, None).err(), Some(DagError::UnknownEvent { cid: stranger }));
    assert_eq!(s.dag.descendants(&stranger, None).err(), Some(DagError::UnknownEvent { cid: stranger }));
    assert_eq!(s.dag.causal_path(&stranger, &s.s1), Err(DagError::UnknownEvent { cid: stranger }));
    assert_eq!(s.dag.causal_path(&s.o1, &stranger), Err(DagError::UnknownEvent { cid: stranger }));
}

#[test]
fn causal_path_is_a_shortest_chain_of_links() -> TestResult {
    let s = shop();
    // o1→o2→o3→s1 (3 links) beats o1→o2→p1→p2→s1 (4 links).
    assert_eq!(s.dag.causal_path(&s.o1, &s.s1)?, Some(vec![s.o1, s.o2, s.o3, s.s1]));
    assert_eq!(s.dag.causal_path(&s.o2, &s.p2)?, Some(vec![s.o2, s.p1, s.p2]));
    assert_eq!(s.dag.causal_path(&s.p1, &s.s1)?, Some(vec![s.p1, s.p2, s.s1]));
    assert_eq!(s.dag.causal_path(&s.o3, &s.s1)?, Some(vec![s.o3, s.s1]));
    assert_eq!(s.dag.causal_path(&s.o2, &s.o2)?, Some(vec![s.o2]));
    // Unrelated, or the wrong way round.
    assert_eq!(s.dag.causal_path(&s.o3, &s.p2)?, None);
    assert_eq!(s.dag.causal_path(&s.p1, &s.o3)?, None);
    assert_eq!(s.dag.causal_path(&s.s1, &s.o1)?, None);
    assert_eq!(s.dag.causal_path(&s.o1, &s.c1)?, None);
    assert_eq!(s.dag.causal_path(&s.c1, &s.s1)?, None);
    Ok(())
}

#[test]
fn heads_are_the_events_nothing_links() {
    let s = shop();
    assert_eq!(s.dag.heads().map(|e| e.cid).collect::<Vec<_>>(), vec![s.s1, s.c1]);
    assert_eq!(MerkleDag::new().heads().count(), 0);
}

#[test]
fn topological_order_is_insertion_order() {
    let s = shop();
    let order: Vec<(Cid, u64)> = s.dag.topological_order().map(|e| (e.cid, e.position)).collect();
    assert_eq!(order, vec![(s.o1, 10), (s.o2, 20), (s.p1, 30), (s.o3, 40), (s.p2, 50), (s.s1, 60), (s.c1, 70)]);
    assert_eq!(s.dag.topological_order().len(), 7);
    assert_eq!(s.dag.topological_order().next_back().map(|e| e.cid), Some(s.c1));
}

#[test]
fn aggregates_and_their_heads() {
    let s = shop();
    let heads: Vec<(String, u64, Cid)> =
        s.dag.aggregates().map(|e| (e.aggregate.to_string(), e.version, e.cid)).collect();
    assert_eq!(
        heads,
        vec![
            ("order/1".to_owned(), 3, s.o3),
            ("payment/1".to_owned(), 2, s.p2),
            ("shipment/1".to_owned(), 1, s.s1),
            ("customer/1".to_owned(), 1, s.c1),
        ]
    );
    assert_eq!(s.dag.aggregate_head(&key("payment/1")).map(|e| e.cid), Some(s.p2));
    assert_eq!(s.dag.aggregate_head(&key("payment/2")), None);
}

#[test]
fn events_of_an_aggregate_in_version_order() {
    let s = shop();
    let order: Vec<(Cid, u64, u64)> =
        s.dag.events_of(&key("order/1")).iter().map(|e| (e.cid, e.version, e.position)).collect();
    assert_eq!(order, vec![(s.o1, 1, 10), (s.o2, 2, 20), (s.o3, 3, 40)]);
    let payment: Vec<Cid> = s.dag.events_of(&key("payment/1")).iter().map(|e| e.cid).collect();
    assert_eq!(payment, vec![s.p1, s.p2]);
    assert!(s.dag.events_of(&key("order/2")).is_empty());
    assert!(s.dag.events_of(&key("orders/1")).is_empty());
    assert!(s.dag.events_of(&key("order/1")).iter().all(|e| e.aggregate.to_string() == "order/1"));
}
