//! Graphviz rendering of part of the DAG.

use cim_cid::Cid;
use cim_dag::MerkleDag;

use crate::support::{Chains, TestResult, key};

fn short(cid: &Cid) -> String {
    let text = cid.to_string();
    format!("…{}", &text[text.len() - 8..])
}

#[test]
fn renders_the_selected_events_and_the_links_among_them() -> TestResult {
    let (order, payment) = (key("order/1"), key("payment/7"));
    let mut chains = Chains::default();
    let o1 = chains.next(&order, &[]);
    let o2 = chains.next(&order, &[]);
    let p1 = chains.next(&payment, &[o2.cid]);
    let o3 = chains.next(&order, &[p1.cid]);
    let dag = MerkleDag::from_events([(&o1, 1), (&o2, 2), (&p1, 3), (&o3, 4)])?;

    // o1 is left out, an unknown CID is ignored, a repeat is drawn once, and
    // the order of the request does not matter.
    let unknown = cim_cid::dag_cbor_cid(b"unknown");
    let dot = dag.to_dot([o3.cid, p1.cid, unknown, o2.cid, o3.cid]);

    let (c2, c3, cp) = (o2.cid, o3.cid, p1.cid);
    let expected = format!(
        "digraph cim {{\n  rankdir=LR;\n  node [shape=box, fontname=\"monospace\"];\n\
         \x20 \"{c2}\" [label=\"order/1\\nv2\\n{s2}\", tooltip=\"{c2}\"];\n\
         \x20 \"{cp}\" [label=\"payment/7\\nv1\\n{sp}\", tooltip=\"{cp}\"];\n\
         \x20 \"{c3}\" [label=\"order/1\\nv3\\n{s3}\", tooltip=\"{c3}\"];\n\
         \x20 \"{c2}\" -> \"{cp}\" [style=dashed];\n\
         \x20 \"{c2}\" -> \"{c3}\";\n\
         \x20 \"{cp}\" -> \"{c3}\" [style=dashed];\n\
         }}\n",
        s2 = short(&c2),
        s3 = short(&c3),
        sp = short(&cp),
    );
    assert_eq!(dot, expected);
    // The left-out o1's link to o2 is not drawn.
    assert!(!dot.contains(&o1.cid.to_string()));
    Ok(())
}

#[test]
fn renders_an_empty_selection_as_an_empty_graph() {
    let dag = MerkleDag::new();
    assert_eq!(
        dag.to_dot(Vec::<Cid>::new()),
        "digraph cim {\n  rankdir=LR;\n  node [shape=box, fontname=\"monospace\"];\n}\n"
    );
}

#[test]
fn renders_a_walk_around_an_event() -> TestResult {
    let order = key("order/1");
    let mut chains = Chains::default();
    let events: Vec<_> = (0..5).map(|_| chains.next(&order, &[])).collect();
    let dag = MerkleDag::from_events(events.iter().zip(0..))?;
    let middle = events[2].cid;
    let around: Vec<Cid> = dag
        .ancestors(&middle, Some(1))?
        .chain(dag.descendants(&middle, Some(1))?)
        .map(|e| e.cid)
        .chain([middle])
        .collect();
    let dot = dag.to_dot(&around);
    assert_eq!(dot.matches(" -> ").count(), 2);
    assert_eq!(dot.matches("[label=").count(), 3);
    assert!(!dot.contains("style=dashed"));
    Ok(())
}
