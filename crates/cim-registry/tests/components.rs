//! The component directory: its bucket is the one components.toml
//! describes, and liveness is a TTL on every write.

use std::time::Duration;

use cim_registry::components::{ComponentChange, Directory};
use cim_registry_api::{Registration, SchemaUse};
use cim_store::StoreConfig;
use cim_test_support::NatsServer;
use futures::StreamExt;

/// A bound only a hang reaches.
const HANG: Duration = Duration::from_secs(60);

fn registration(instance: &str) -> Registration {
    Registration {
        name: "cim-test".to_owned(),
        version: "0.1.0".to_owned(),
        instance_id: instance.to_owned(),
        service_id: "test".to_owned(),
        description: "a test component".to_owned(),
        subjects: vec![],
        capabilities: vec![],
        schemas: SchemaUse::default(),
        http: None,
        started_at: "2025-01-01T00:00:00Z".to_owned(),
        heartbeat_secs: 1,
    }
}

#[test]
fn the_bucket_is_kept_as_components_toml_says() {
    let deployment = cim_deploy::Deployment::embedded().expect("components.toml");
    let bucket = &deployment.buckets()[cim_registry::components::COMPONENTS_BUCKET];
    assert_eq!(bucket.owner, "registry");
    assert_eq!(bucket.options(), Directory::bucket_options());
}

/// An entry lives while its heartbeats go on — for longer than the TTL —
/// and goes one TTL after the last: the TTL is on each write, not the
/// bucket's, so any registry setting works with the one provisioned bucket.
#[tokio::test]
async fn an_entry_lives_one_ttl_after_its_last_heartbeat() {
    let server = NatsServer::start().await;
    let store = StoreConfig::default();
    let error = Directory::open(server.connect().await, &store, Duration::from_secs(2)).await.unwrap_err();
    assert!(error.to_string().contains("does not exist: provision the store first"), "{error}");
    crate::provision(&server).await;

    for ttl in [2, 3] {
        let directory = Directory::open(server.connect().await, &store, Duration::from_secs(ttl)).await.unwrap();
        let instance = format!("ttl{ttl}");
        let mut changes = directory.watch().await.unwrap();
        // Heartbeats for at least 2.5 s (more than a 2 s TTL): had the
        // TTL not started again with each one, the entry would have gone
        // before the last (and without a TTL on the writes, never).
        for _ in 0..10 {
            directory.register(registration(&instance)).await.unwrap();
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        // Every heartbeat is seen before the entry goes.
        let seen = tokio::time::timeout(HANG, async {
            let mut seen = 0;
            loop {
                match changes.next().await.expect("the watch goes on").unwrap() {
                    ComponentChange::Seen(record) if record.registration.instance_id == instance => seen += 1,
                    ComponentChange::Gone { instance_id, .. } if instance_id == instance => return seen,
                    _ => {}
                }
            }
        })
        .await
        .unwrap_or_else(|_| panic!("{instance} never expired after its last heartbeat"));
        assert_eq!(seen, 10, "{instance} expired while it was beating");
        let listed = directory.list(&Default::default()).await.unwrap();
        assert!(listed.iter().all(|r| r.registration.instance_id != instance), "{listed:?}");
    }
}
