//! Requests are read strictly (a misspelt field is an error, not a field
//! ignored) and a command that would change nothing is refused: in both
//! cases nothing is stored.

use cim_ius_api::{Attach, Create, Get, IusCode, Relate, Tags, Target, Update};
use cim_store::{EventStore, ObjectStore, StoreConfig};
use cim_wire::{ApiError, RequestError};
use serde_json::{Value, json};

use crate::support::Stack;

/// Sends `body` as it is to the IUS endpoint `name`; the reply's error.
async fn refused_raw(stack: &Stack, name: &str, body: &str) -> Value {
    let reply = stack.client.request(format!("cim.service.ius.{name}"), body.to_owned().into()).await.expect("reply");
    let reply: Value = serde_json::from_slice(&reply.payload).expect("a JSON reply");
    assert!(reply["error"].is_object(), "{name} {body}: accepted: {reply}");
    reply["error"].clone()
}

fn no_change(result: Result<impl std::fmt::Debug, RequestError<IusCode>>) -> ApiError<IusCode> {
    match result {
        Err(RequestError::Remote(error)) if error.is(IusCode::NoChange) => error,
        other => panic!("expected no_change, got {other:?}"),
    }
}

fn target(id: &str) -> Target {
    Target { id: id.to_owned(), ..Target::default() }
}

#[tokio::test]
async fn unknown_fields_wrong_shapes_and_wide_integers_are_refused() {
    let stack = Stack::start(1).await;
    let ius = stack.ius_client();
    let create = Create {
        kind: "text-document".into(),
        id: Some("doc".into()),
        content: json!({ "text": "v1" }),
        metadata: json!({}),
        tags: vec![],
        caused_by: vec![],
    };
    ius.create(&create).await.expect("create");
    let store = EventStore::open(stack.client.clone(), StoreConfig::default()).await.expect("store");
    let before = store.log_state().await.expect("state").events;

    // A misspelt precondition must not turn optimistic concurrency off.
    let patch = r#"[{"op": "replace", "path": "/content/text", "value": "v2"}]"#;
    let error =
        refused_raw(&stack, "units.update", &format!(r#"{{"id": "doc", "expected_verison": 7, "patch": {patch}}}"#))
            .await;
    assert_eq!(error["code"], "bad_request", "{error}");
    assert!(error["message"].as_str().expect("message").contains("unknown field `expected_verison`"), "{error}");
    let error = refused_raw(&stack, "units.retire", r#"{"id": "doc", "reason": "x", "garbage": true}"#).await;
    assert!(error["message"].as_str().expect("message").contains("unknown field `garbage`"), "{error}");
    for (name, body) in
        [("units.list", "[]"), ("units.get", r#"["doc"]"#), ("units.tag", r#""doc""#), ("kinds.list", r#"{"x": 1}"#)]
    {
        let error = refused_raw(&stack, name, body).await;
        assert_eq!(error["code"], "bad_request", "{name} {body}: {error}");
    }
    let wide = r#"{"kind": "text-document", "id": "wide", "content": {"text": "t"}, "metadata": {"extensions": {"n": 18446744073709551616}}}"#;
    let error = refused_raw(&stack, "units.create", wide).await;
    assert!(
        error["message"].as_str().expect("message").contains("18446744073709551616 does not fit in 64 bits"),
        "{error}"
    );

    assert_eq!(store.log_state().await.expect("state").events, before, "no refused request stored anything");
    let unit = ius.get(&Get { id: Some("doc".into()), ..Get::default() }).await.expect("get").state;
    assert_eq!((unit.version, unit.retired), (1, false));

    // The largest integers 64 bits hold are kept exactly.
    let exact = r#"{"kind": "text-document", "id": "exact", "content": {"text": "t"}, "metadata": {"extensions": {"max": 18446744073709551615, "min": -9223372036854775808}}}"#;
    let reply = stack.client.request("cim.service.ius.units.create", exact.into()).await.expect("reply");
    let reply: Value = serde_json::from_slice(&reply.payload).expect("JSON");
    assert_eq!(reply["version"], 1, "{reply}");
    let unit = ius.get(&Get { id: Some("exact".into()), ..Get::default() }).await.expect("get").state;
    assert_eq!(unit.metadata, json!({ "extensions": { "max": u64::MAX, "min": i64::MIN } }));
}

#[tokio::test]
async fn a_command_that_changes_nothing_is_refused() {
    let stack = Stack::start(1).await;
    let ius = stack.ius_client();
    let create = |id: &str| Create {
        kind: "text-document".into(),
        id: Some(id.into()),
        content: json!({ "text": "same" }),
        metadata: json!({}),
        tags: vec!["kept".into()],
        caused_by: vec![],
    };
    ius.create(&create("doc")).await.expect("create");
    ius.create(&create("other")).await.expect("create");
    ius.relate(&Relate { target: target("doc"), relation: "cites".into(), to: "other".into() }).await.expect("relate");
    let objects = ObjectStore::open(stack.client.clone(), &StoreConfig::default()).await.expect("objects");
    let cid = objects.put_bytes(b"an attachment").await.expect("put");
    let attach = Attach {
        target: target("doc"),
        role: "body".into(),
        cid: cid.to_string(),
        media_type: Some("text/plain".into()),
    };
    ius.attach(&attach).await.expect("attach");
    let store = EventStore::open(stack.client.clone(), StoreConfig::default()).await.expect("store");
    let before = store.log_state().await.expect("state").events;

    let update = |patch| Update { target: target("doc"), patch };
    no_change(ius.update(&update(json!([]))).await);
    let error =
        no_change(ius.update(&update(json!([{ "op": "replace", "path": "/content/text", "value": "same" }]))).await);
    assert_eq!(error.status, 409);
    assert!(error.message.contains("would change nothing in unit doc at version 3"), "{}", error.message);
    no_change(ius.tag(&Tags { target: target("doc"), tags: vec!["kept".into()] }).await);
    no_change(ius.relate(&Relate { target: target("doc"), relation: "cites".into(), to: "other".into() }).await);
    no_change(ius.attach(&attach).await);

    assert_eq!(store.log_state().await.expect("state").events, before, "no refused command stored anything");
    assert_eq!(ius.get(&Get { id: Some("doc".into()), ..Get::default() }).await.expect("get").state.version, 3);
    // A real change still goes through.
    let changed = ius.tag(&Tags { target: target("doc"), tags: vec!["kept".into(), "new".into()] }).await;
    assert_eq!(changed.expect("a new tag").version, 4);
}
