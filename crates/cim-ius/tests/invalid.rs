//! Invalid commands get specific errors and write nothing.

use cim_ius_api::{Create, Get, IusCode, Tags, Target, Update};
use cim_store::{EventStore, StoreConfig};
use cim_wire::{ApiError, CommonCode, ErrorCode, RequestError};
use serde_json::json;

use crate::support::Stack;

fn code(result: Result<impl std::fmt::Debug, RequestError<IusCode>>) -> ApiError<IusCode> {
    match result {
        Err(RequestError::Remote(error)) => error,
        other => panic!("expected a service error, got {other:?}"),
    }
}

#[tokio::test]
async fn invalid_commands_get_specific_errors_and_write_nothing() {
    let stack = Stack::start(1).await;
    let ius = stack.ius_client();
    let doc = |content| Create {
        kind: "text-document".into(),
        id: Some("doc".into()),
        content,
        metadata: json!({}),
        tags: vec![],
        caused_by: vec![],
    };
    ius.create(&doc(json!({ "text": "v1" }))).await.expect("create");
    let store = EventStore::open(stack.client.clone(), StoreConfig::default()).await.expect("store");
    let before = store.log_state().await.expect("state").events;

    let error = code(ius.create(&Create { id: Some("other".into()), ..doc(json!({ "text": 42 })) }).await);
    assert!(error.is(IusCode::SchemaViolation), "{error:?}");
    assert_eq!(error.details["violations"][0]["pointer"], "/content/text", "{error:?}");
    let error = code(
        ius.create(&Create {
            id: Some("other".into()),
            metadata: json!({ "titel": "x" }),
            ..doc(json!({ "text": "x" }))
        })
        .await,
    );
    assert_eq!(
        (&error.code, error.details["what"].as_str()),
        (&ErrorCode::Api(IusCode::SchemaViolation), Some("metadata")),
        "{error:?}"
    );
    let error = code(
        ius.update(&Update {
            target: Target { id: "doc".into(), ..Target::default() },
            patch: json!([{ "op": "remove", "path": "/content/text" }]),
        })
        .await,
    );
    assert!(error.is(IusCode::SchemaViolation), "removing required text: {error:?}");

    let raw = stack.client.request("cim.service.ius.units.create", "{\"kind\": ".into()).await.expect("reply");
    let body: serde_json::Value = serde_json::from_slice(&raw.payload).expect("error body");
    assert_eq!(body["error"]["code"], "bad_request", "{body}");
    assert_eq!(raw.headers.expect("headers").get("Nats-Service-Error-Code").map(|v| v.as_str()), Some("400"));

    let error = code(
        ius.tag(&Tags { target: Target { id: "nobody".into(), ..Target::default() }, tags: vec!["x".into()] }).await,
    );
    assert_eq!((&error.code, error.status), (&ErrorCode::Api(IusCode::UnknownUnit), 404));

    let stale = Tags {
        target: Target { id: "doc".into(), expected_version: Some(0), caused_by: vec![] },
        tags: vec!["x".into()],
    };
    let error = code(ius.tag(&stale).await);
    assert_eq!((&error.code, error.retryable), (&ErrorCode::Api(IusCode::VersionConflict), true));
    assert_eq!(error.details["current_version"], 1);

    let error =
        code(ius.create(&Create { id: Some("big".into()), ..doc(json!({ "text": "x".repeat(10_000) })) }).await);
    assert!(error.is_common(CommonCode::PayloadTooLarge), "{error:?}");
    let error = code(ius.create(&Create { kind: "no-such-kind".into(), id: Some("k".into()), ..doc(json!({})) }).await);
    assert!(error.is(IusCode::UnknownKind), "{error:?}");
    let error = code(
        ius.update(&Update {
            target: Target { id: "doc".into(), ..Target::default() },
            patch: json!([{ "op": "replace", "path": "/content/missing/deep", "value": 1 }]),
        })
        .await,
    );
    assert_eq!(
        (&error.code, error.details["path"].as_str()),
        (&ErrorCode::Api(IusCode::PatchFailed), Some("/content/missing/deep"))
    );
    let error = code(ius.create(&doc(json!({ "text": "again" }))).await);
    assert!(error.is(IusCode::UnitExists), "{error:?}");

    assert_eq!(store.log_state().await.expect("state").events, before, "no refused command stored anything");
    let unit = ius.get(&Get { id: Some("doc".into()), ..Get::default() }).await.expect("get");
    assert_eq!(unit.state.version, 1);
}
