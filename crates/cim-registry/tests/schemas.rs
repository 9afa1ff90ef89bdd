//! Versions, the compatibility rule, history and validation, on the event store.

use cim_registry::Error;
use cim_registry::schemas::SchemaRegistry;
use cim_store::{EventStore, StoreConfig};
use cim_test_support::NatsServer;
use serde_json::json;

#[tokio::test]
async fn versions_compatibility_history_and_validation() {
    let server = NatsServer::start().await;
    let store = EventStore::provision(server.connect().await, StoreConfig::default()).await.expect("store");
    let registry = SchemaRegistry::new(store.clone(), 64 * 1024);
    let v1 = json!({"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}}});
    let first = registry.register("person", v1.clone(), None, Some(0)).await.expect("v1");
    assert_eq!((first.schema.version, first.unchanged), (1, false));
    assert!(registry.register("person", v1.clone(), None, None).await.expect("again").unchanged);

    let mut v2 = v1.clone();
    v2["properties"]["age"] = json!({"type": "integer"});
    assert_eq!(
        registry.register("person", v2.clone(), Some("adds age".into()), None).await.expect("v2").schema.version,
        2
    );

    let mut retyped = v2.clone();
    retyped["properties"]["age"]["type"] = json!("string");
    match registry.register("person", retyped, None, None).await {
        Err(Error::Incompatible { violations, previous: 2, .. }) => {
            assert_eq!(violations[0].pointer, "/properties/age/type")
        }
        other => panic!("expected incompatible, got {other:?}"),
    }
    let mut stricter = v2.clone();
    stricter["required"] = json!(["name", "age"]);
    assert!(matches!(registry.register("person", stricter, None, None).await, Err(Error::Incompatible { .. })));
    assert!(matches!(
        registry.register("person", v2.clone(), None, Some(1)).await,
        Err(Error::VersionConflict { current: 2, .. })
    ));
    assert!(matches!(
        registry.register("person", json!({"type": 12}), None, None).await,
        Err(Error::InvalidSchema { .. })
    ));
    assert!(matches!(registry.register("bad name", v1.clone(), None, None).await, Err(Error::InvalidName { .. })));

    let history = registry.history("person").await.expect("history");
    assert_eq!(history.iter().map(|v| v.version).collect::<Vec<_>>(), [1, 2]);
    assert_eq!(history[1].description.as_deref(), Some("adds age"));
    let key = cim_store::AggregateKey::new("schema", "person").expect("key");
    assert!(store.verify_aggregate(&key).await.expect("verify").is_ok());

    let report = registry.validate("person", None, &json!({"name": "ada", "age": "old"})).await.expect("validate");
    assert!(!report.valid);
    assert_eq!((report.version, report.errors[0].pointer.as_str()), (2, "/age"));
    let report =
        registry.validate("person", Some(1), &json!({"name": "ada", "age": "old"})).await.expect("validate v1");
    assert!(report.valid, "version 1 does not describe age");
    assert!(matches!(
        registry.validate("person", Some(9), &json!({})).await,
        Err(Error::UnknownVersion { latest: 2, .. })
    ));
    assert!(matches!(registry.validate("nobody", None, &json!({})).await, Err(Error::UnknownSchema { .. })));

    // A fresh registry (another process) reads the same history from the store.
    let other = SchemaRegistry::new(
        EventStore::open(server.connect().await, StoreConfig::default()).await.expect("store"),
        64 * 1024,
    );
    assert_eq!(other.list(None).await.expect("list")[0].latest_version, 2);
    assert_eq!(other.get("person", Some(1)).await.expect("v1").schema, v1);
}
