//! A unit's life through the client library: create → patch → relate →
//! attach an image → retire; history with CIDs; the chain verifies; past
//! states by version, CID and time; traversal; lists.

use cim_ius_api::{Attach, Create, Direction, Get, List, Relate, Retire, Target, Traverse, Update};
use serde_json::json;

use crate::support::Stack;

/// A 3×2 PNG header (signature and IHDR) and a little more.
const PNG: [u8; 37] = [
    0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 13, b'I', b'H', b'D', b'R', 0, 0, 0, 3, 0, 0, 0, 2, 8, 2,
    0, 0, 0, 0x12, 0x16, 0xF1, 0x4D, 1, 2, 3, 4,
];

fn target(id: &str, version: u64) -> Target {
    Target { id: id.to_owned(), expected_version: Some(version), caused_by: Vec::new() }
}

#[tokio::test]
async fn lifecycle_history_past_states_and_traversal() {
    let stack = Stack::start(1).await;
    let ius = stack.ius_client();
    let create = |id: &str, text: &str| Create {
        kind: "text-document".into(),
        id: Some(id.into()),
        content: json!({ "text": text }),
        metadata: json!({ "title": id, "language": "en" }),
        tags: vec!["draft".into()],
        caused_by: Vec::new(),
    };
    let first = ius.create(&create("doc-1", "hello")).await.expect("create");
    assert_eq!(first.version, 1);
    let other = ius.create(&create("doc-2", "cited")).await.expect("create");

    let patch = json!([{ "op": "replace", "path": "/content/text", "value": "hello, world" }, { "op": "add", "path": "/metadata/authors", "value": ["ada"] }]);
    let patched = ius.update(&Update { target: target("doc-1", 1), patch }).await.expect("patch");
    let related = ius
        .relate(&Relate {
            target: Target { caused_by: vec![other.event_cid.clone()], ..target("doc-1", 2) },
            relation: "cites".into(),
            to: "doc-2".into(),
        })
        .await
        .expect("relate");
    // The object goes into the object store first, then is attached by CID.
    let objects =
        cim_store::ObjectStore::open(stack.client.clone(), &cim_store::StoreConfig::default()).await.expect("objects");
    let cid = objects.put_bytes(&PNG).await.expect("put");
    let attach = Attach { target: target("doc-1", 3), role: "figure".into(), cid: cid.to_string(), media_type: None };
    let attached = ius.attach(&attach).await.expect("attach");
    let retired =
        ius.retire(&Retire { target: target("doc-1", 4), reason: Some("superseded".into()) }).await.expect("retire");
    assert_eq!(retired.version, 5);

    let current = ius.get(&Get { id: Some("doc-1".into()), ..Get::default() }).await.expect("get");
    assert!(current.state.retired);
    assert_eq!(current.state_cid, retired.state_cid);
    let figure = &current.state.objects["figure"];
    assert_eq!(
        (figure.media_type.as_str(), figure.size, figure.width, figure.height),
        ("image/png", PNG.len() as u64, Some(3), Some(2))
    );
    assert_eq!(current.state.content, json!({ "text": "hello, world" }));

    let history = ius.history("doc-1").await.expect("history");
    let types: Vec<&str> = history.events.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(types, ["UnitCreated", "UnitUpdated", "UnitRelated", "ObjectAttached", "UnitRetired"]);
    let cids: Vec<&str> = history.events.iter().map(|e| e.cid.as_str()).collect();
    assert_eq!(
        cids,
        [&first.event_cid, &patched.event_cid, &related.event_cid, &attached.event_cid, &retired.event_cid]
            .map(String::as_str)
    );
    assert_eq!(history.events[2].parents, std::slice::from_ref(&other.event_cid), "the causal link is recorded");
    assert_eq!(history.events[1].prev.as_deref(), Some(first.event_cid.as_str()));
    assert_eq!(history.events[1].payload["state"], json!(patched.state_cid));

    let verified = ius.verify("doc-1").await.expect("verify");
    assert_eq!((verified.verified, verified.problems.len()), (5, 0));

    let at_two =
        ius.get(&Get { id: Some("doc-1".into()), version: Some(2), ..Get::default() }).await.expect("version 2");
    assert_eq!((at_two.state.version, at_two.state_cid.as_str()), (2, patched.state_cid.as_str()));
    assert_eq!(at_two.state.metadata["authors"], json!(["ada"]));
    assert!(at_two.state.relations.is_empty() && !at_two.state.retired);
    let by_cid =
        ius.get(&Get { state_cid: Some(patched.state_cid.clone()), ..Get::default() }).await.expect("by state CID");
    assert_eq!(by_cid, at_two);
    let at_time = ius
        .get(&Get { id: Some("doc-1".into()), at: Some(history.events[1].timestamp.clone()), ..Get::default() })
        .await
        .expect("as of");
    assert_eq!(at_time.state.version, 2);

    let reached = ius
        .traverse(&Traverse {
            id: "doc-1".into(),
            depth: Some(2),
            relation: Some("cites".into()),
            direction: Direction::Out,
        })
        .await
        .expect("traverse");
    assert_eq!(reached.units.len(), 1);
    assert_eq!((reached.units[0].id.as_str(), reached.units[0].relation.as_str()), ("doc-2", "cites"));
    let back = ius
        .traverse(&Traverse { id: "doc-2".into(), depth: None, relation: None, direction: Direction::In })
        .await
        .expect("traverse in");
    assert_eq!(back.units[0].id, "doc-1");

    let live = ius.list(&List { kind: Some("text-document".into()), ..List::default() }).await.expect("list");
    assert_eq!(live.units.iter().map(|u| u.id.as_str()).collect::<Vec<_>>(), ["doc-2"], "retired units are left out");
    let all = ius
        .list(&List { tag: Some("draft".into()), include_retired: true, limit: Some(1), ..List::default() })
        .await
        .expect("page 1");
    assert_eq!((all.units.len(), all.next.as_deref()), (1, Some("doc-1")));
    let rest = ius
        .list(&List { tag: Some("draft".into()), include_retired: true, after: all.next, ..List::default() })
        .await
        .expect("page 2");
    assert_eq!((rest.units[0].id.as_str(), rest.next), ("doc-2", None));
    let by_title = ius
        .list(&List { metadata: serde_json::from_value(json!({ "title": "doc-2" })).expect("map"), ..List::default() })
        .await
        .expect("by metadata");
    assert_eq!(by_title.units.len(), 1);

    // A kind registered at run time, with its schema.
    ius.register_kind(
        "recipe",
        json!({ "type": "object", "required": ["steps"], "properties": { "steps": { "type": "array" } } }),
    )
    .await
    .expect("kind");
    ius.create(&Create {
        kind: "recipe".into(),
        id: None,
        content: json!({ "steps": [] }),
        metadata: json!({}),
        tags: vec![],
        caused_by: vec![],
    })
    .await
    .expect("unit of the new kind");
}
