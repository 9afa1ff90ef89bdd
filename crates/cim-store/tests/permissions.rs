//! A request the server refuses to the connection's user fails at once as
//! `PermissionDenied`: it is not retried, nor waited for, as if the server
//! were away.

use std::time::Duration;

use cim_store::{AggregateQuery, Error, EventStore, ExpectedVersion, ObjectStore, StoreConfig};
use cim_test_support::NatsServer;
use cim_wire::{NatsConfig, connect_options, server_addrs};
use serde_json::json;

use crate::common::{event, key};

/// `reader` may not create consumers; `writer` may not publish events of
/// orders nor object chunks; `component` may not create or update streams. Each may do
/// everything else.
const USERS: &str = r#"
accounts {
  A {
    jetstream: enabled
    users: [
      { user: admin, password: admin-pw }
      { user: reader, password: reader-pw, permissions: { publish: { allow: [">"], deny: ["$JS.API.CONSUMER.CREATE.>"] }, subscribe: [">"] } }
      { user: writer, password: writer-pw, permissions: { publish: { allow: [">"], deny: ["cim.events.order.>", "$O.cim-objects.C.>"] }, subscribe: [">"] } }
      { user: component, password: component-pw, permissions: { publish: { allow: [">"], deny: ["$JS.API.STREAM.CREATE.>", "$JS.API.STREAM.UPDATE.>"] }, subscribe: [">"] } }
    ]
  }
}
"#;

/// A connection whose permission denials reach `cim_wire::denials`, as
/// every CIM process connects.
async fn connect(server: &NatsServer, user: &str) -> async_nats::Client {
    connect_waiting(server, user, NatsConfig::default().request_timeout_secs).await
}

/// As [`connect`], with requests timing out after `request_timeout_secs`.
async fn connect_waiting(server: &NatsServer, user: &str, request_timeout_secs: u64) -> async_nats::Client {
    let dir = tempfile::tempdir().expect("tempdir");
    let password = dir.path().join("pw");
    std::fs::write(&password, format!("{user}-pw\n")).expect("password file");
    let config = NatsConfig {
        url: vec![server.url()],
        user: Some(user.to_owned()),
        password_file: Some(password),
        request_timeout_secs,
        ..NatsConfig::default()
    };
    let options = connect_options(&config, "cim-store-test", |_| {}).await.expect("options");
    options.connect(server_addrs(&config).expect("addrs")).await.expect("connect")
}

/// A bound that only a hang (or a retry loop) reaches: the request timeout
/// alone is 10 s, and the unavailable-retry window 10 s more.
const HANG: Duration = Duration::from_secs(60);

#[tokio::test]
async fn refused_requests_fail_at_once_as_permission_denied() {
    let server = NatsServer::builder().config_extra(USERS).start().await;
    let admin = EventStore::open(connect(&server, "admin").await, StoreConfig::default()).await.unwrap();
    let order = key("order", "1");
    admin.append(&order, ExpectedVersion::Exact(0), vec![event("Placed", json!({}))]).await.unwrap();

    // Reading an aggregate needs a consumer.
    let reader = EventStore::open(connect(&server, "reader").await, StoreConfig::default()).await.unwrap();
    let error = tokio::time::timeout(HANG, reader.read_aggregate(&order, AggregateQuery::all()))
        .await
        .expect("the read ends")
        .unwrap_err();
    let Error::PermissionDenied { subject, .. } = &error else { panic!("expected a permission denial, got {error}") };
    assert!(subject.starts_with("$JS.API.CONSUMER.CREATE.CIM_EVENTS."), "{subject}");
    assert!(!error.is_retryable(), "{error}");
    // Point reads are allowed.
    assert_eq!(reader.head(&order).await.unwrap().map(|(version, _)| version), Some(1));

    // Appending to orders is refused; other aggregates are not.
    let writer = EventStore::open(connect(&server, "writer").await, StoreConfig::default()).await.unwrap();
    let error =
        tokio::time::timeout(HANG, writer.append(&order, ExpectedVersion::Exact(1), vec![event("Paid", json!({}))]))
            .await
            .expect("the append ends")
            .unwrap_err();
    let Error::PermissionDenied { subject, .. } = &error else { panic!("expected a permission denial, got {error}") };
    assert_eq!(subject, "cim.events.order.1");
    assert!(!error.is_retryable(), "{error}");
    writer.append(&key("stock", "1"), ExpectedVersion::Exact(0), vec![event("Moved", json!({}))]).await.unwrap();
    assert_eq!(admin.head(&order).await.unwrap().map(|(version, _)| version), Some(1), "nothing was stored");

    // Writing an object is refused at its first chunk.
    let objects = ObjectStore::open(connect(&server, "writer").await, &StoreConfig::default()).await.unwrap();
    let error = tokio::time::timeout(HANG, objects.put_bytes(b"not allowed")).await.expect("the put ends").unwrap_err();
    let Error::PermissionDenied { subject, .. } = &error else { panic!("expected a permission denial, got {error}") };
    assert!(subject.starts_with("$O.cim-objects.C."), "{subject}");
}

#[tokio::test]
async fn a_user_that_may_not_create_streams_opens_the_stores_without_waiting_out_a_timeout() {
    let server = NatsServer::builder().config_extra(USERS).start().await;
    let admin = connect(&server, "admin").await;
    EventStore::open(admin.clone(), StoreConfig::default()).await.unwrap();
    ObjectStore::open(admin, &StoreConfig::default()).await.unwrap();

    // Were the refused creation waited for, each open would take the
    // request timeout: far longer than the bound.
    let component = connect_waiting(&server, "component", 600).await;
    let store = tokio::time::timeout(HANG, EventStore::open(component.clone(), StoreConfig::default()))
        .await
        .expect("the open does not wait out the request timeout")
        .unwrap();
    store.append(&key("stock", "1"), ExpectedVersion::Exact(0), vec![event("Moved", json!({}))]).await.unwrap();
    let objects = tokio::time::timeout(HANG, ObjectStore::open(component, &StoreConfig::default()))
        .await
        .expect("the open does not wait out the request timeout")
        .unwrap();
    let cid = objects.put_bytes(b"content").await.unwrap();
    assert_eq!(objects.get_bytes(&cid).await.unwrap(), b"content");
}
