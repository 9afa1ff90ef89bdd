//! A request the server refuses to the connection's user fails at once as
//! `PermissionDenied`: it is not retried, nor waited for, as if the server
//! were away. And a component — a user that may not administer streams or
//! delete consumers — attaches and reads without sending one request its
//! user may not make.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use cim_store::{AggregateQuery, Error, EventStore, ExpectedVersion, ObjectStore, StartAt, StoreConfig};
use cim_test_support::NatsServer;
use cim_wire::{NatsConfig, connect_options, server_addrs};
use futures::StreamExt;
use serde_json::json;

use crate::common::{event, key};

/// `reader` may not create consumers; `writer` may not publish events of
/// orders nor object chunks; `component` may do what components.toml's
/// rules give a component (no stream administration, no consumer deletion,
/// no account information). Each may do everything else.
const USERS: &str = r#"
accounts {
  A {
    jetstream: enabled
    users: [
      { user: admin, password: admin-pw }
      { user: reader, password: reader-pw, permissions: { publish: { allow: [">"], deny: ["$JS.API.CONSUMER.CREATE.>"] }, subscribe: [">"] } }
      { user: writer, password: writer-pw, permissions: { publish: { allow: [">"], deny: ["cim.events.order.>", "$O.cim-objects.C.>"] }, subscribe: [">"] } }
      { user: component, password: component-pw, permissions: { publish: { allow: [">"], deny: ["$JS.API.STREAM.CREATE.>", "$JS.API.STREAM.UPDATE.>", "$JS.API.STREAM.PURGE.>", "$JS.API.STREAM.DELETE.>", "$JS.API.CONSUMER.DELETE.>", "$JS.API.INFO"] }, subscribe: [">"] } }
    ]
  }
}
"#;

/// The server errors a connection reported (its own, unlike the
/// process-wide `cim_wire::denials`).
type Reported = Arc<Mutex<Vec<String>>>;

/// A connection whose permission denials reach `cim_wire::denials`, as
/// every CIM process connects.
async fn connect(server: &NatsServer, user: &str) -> async_nats::Client {
    connect_reporting(server, user, NatsConfig::default().request_timeout_secs).await.0
}

/// As [`connect`], with requests timing out after `request_timeout_secs`,
/// and the server errors reported on this connection.
async fn connect_reporting(
    server: &NatsServer,
    user: &str,
    request_timeout_secs: u64,
) -> (async_nats::Client, Reported) {
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
    let reported = Reported::default();
    let errors = reported.clone();
    let on_event = move |event: &async_nats::Event| {
        if let async_nats::Event::ServerError(error) = event {
            errors.lock().expect("errors").push(error.to_string());
        }
    };
    let options = connect_options(&config, "cim-store-test", on_event).await.expect("options");
    (options.connect(server_addrs(&config).expect("addrs")).await.expect("connect"), reported)
}

/// A bound that only a hang (or a retry loop) reaches: the request timeout
/// alone is 10 s, and the unavailable-retry window 10 s more.
const HANG: Duration = Duration::from_secs(60);

#[tokio::test]
async fn refused_requests_fail_at_once_as_permission_denied() {
    let server = NatsServer::builder().config_extra(USERS).start().await;
    let admin = EventStore::provision(connect(&server, "admin").await, StoreConfig::default()).await.unwrap();
    ObjectStore::provision(connect(&server, "admin").await, &StoreConfig::default()).await.unwrap();
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
async fn a_component_attaches_only_to_provisioned_stores_and_never_administers() {
    let server = NatsServer::builder().config_extra(USERS).start().await;
    let config = StoreConfig::default();
    // Were a refused request waited for, each call would take the request
    // timeout: far longer than the bound.
    let (component, reported) = connect_reporting(&server, "component", 600).await;

    // Nothing is provisioned: attaching says so, at once; provisioning is
    // refused to this user.
    let error = tokio::time::timeout(HANG, EventStore::open(component.clone(), config.clone()))
        .await
        .expect("the attach ends")
        .unwrap_err();
    assert!(matches!(&error, Error::NotProvisioned { resource } if resource.contains("CIM_EVENTS")), "{error}");
    let error =
        tokio::time::timeout(HANG, ObjectStore::open(component.clone(), &config)).await.expect("ends").unwrap_err();
    assert!(matches!(&error, Error::NotProvisioned { resource } if resource.contains("cim-objects")), "{error}");
    assert!(reported.lock().unwrap().is_empty(), "attaching sends nothing refused: {:?}", reported.lock().unwrap());
    let error = tokio::time::timeout(HANG, EventStore::provision(component.clone(), config.clone()))
        .await
        .expect("the provisioning ends")
        .unwrap_err();
    let Error::PermissionDenied { subject, .. } = &error else { panic!("expected a permission denial, got {error}") };
    assert_eq!(subject, "$JS.API.STREAM.CREATE.CIM_EVENTS");
    reported.lock().unwrap().clear();

    // The admin provisions; the component attaches, writes and reads.
    let admin = connect(&server, "admin").await;
    EventStore::provision(admin.clone(), config.clone()).await.unwrap();
    let cid = ObjectStore::provision(admin.clone(), &config).await.unwrap().put_bytes(b"content").await.unwrap();
    let store = tokio::time::timeout(HANG, EventStore::open(component.clone(), config.clone()))
        .await
        .expect("the attach ends")
        .unwrap();
    let objects = ObjectStore::open(component.clone(), &config).await.unwrap();
    let doc = key("doc", "1");
    store.append(&doc, ExpectedVersion::Exact(0), vec![event("Created", json!({}))]).await.unwrap();
    for _ in 0..20 {
        assert_eq!(store.read_aggregate(&doc, AggregateQuery::all()).await.unwrap().len(), 1);
    }
    let mut partial = store.read_log(StartAt::Beginning).await.unwrap();
    partial.next().await.unwrap().unwrap();
    drop(partial);
    store.dag().await.unwrap().catch_up().await.unwrap();
    assert_eq!(objects.get_bytes(&cid).await.unwrap(), b"content");
    drop((store, objects));

    // Its reads' consumers are left to the server's inactive threshold: no
    // CONSUMER.DELETE (which its user may not send) went out.
    component.flush().await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(reported.lock().unwrap().is_empty(), "refused requests: {:?}", reported.lock().unwrap());
    let mut stream = async_nats::jetstream::new(admin).get_stream("CIM_EVENTS").await.unwrap();
    assert!(stream.info().await.unwrap().state.consumer_count > 0, "the reads' consumers are left to expire");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    while stream.info().await.unwrap().state.consumer_count > 0 {
        assert!(tokio::time::Instant::now() < deadline, "the server never removed the abandoned consumers");
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}
