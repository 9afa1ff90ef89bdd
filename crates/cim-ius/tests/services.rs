//! Both binaries start from config files, register, appear as NATS micro
//! services, answer requests, stop cleanly on SIGTERM, and an instance
//! whose heartbeats stop leaves the registry within its TTL.

use std::time::{Duration, Instant};

use cim_registry_api::ComponentQuery;
use cim_store::{KvBucket, KvChange, StoreConfig};
use serde_json::Value;

use crate::support::Stack;

async fn ping(client: &async_nats::Client, name: &str) -> Value {
    let reply = client.request(format!("$SRV.PING.{name}"), "".into()).await.expect("a raw $SRV.PING is answered");
    serde_json::from_slice(&reply.payload).expect("JSON pong")
}

#[tokio::test]
async fn start_register_discover_and_stop_on_sigterm() {
    let mut stack = Stack::start(1).await;
    for name in ["cim-registry", "cim-ius"] {
        let pong = ping(&stack.client, name).await;
        assert_eq!(
            (pong["type"].as_str(), pong["name"].as_str()),
            (Some("io.nats.micro.v1.ping_response"), Some(name))
        );
    }
    let registry = stack.registry_client();
    let writers = registry
        .components(&ComponentQuery { name: None, capability: Some("units.*".into()) })
        .await
        .expect("discover");
    assert_eq!(writers.components.len(), 1);
    let ius = &writers.components[0].registration;
    assert!(ius.subjects.contains(&"cim.service.ius.units.create".to_owned()), "{ius:?}");
    let graph = registry.graph().await.expect("graph");
    assert!(graph.nodes.iter().any(|n| n.name == "cim-registry") && graph.nodes.iter().any(|n| n.name == "cim-ius"));
    let kinds = stack.ius_client().kinds().await.expect("kinds");
    assert_eq!(kinds.kinds.len(), 6, "{kinds:?}");

    let status = stack.ius[0].terminate();
    assert!(status.success(), "cim-ius exit: {status}\n{}", stack.ius[0].log());
    let log = stack.ius[0].log();
    assert!(log.contains("deregistered from the Component Registry") && log.contains("stopped"), "{log}");
    let left =
        registry.components(&ComponentQuery { name: Some("cim-ius".into()), capability: None }).await.expect("list");
    assert!(left.components.is_empty(), "deregistered at once: {left:?}");
    assert!(stack.client.request("$SRV.PING.cim-ius", "".into()).await.is_err());
    let status = stack.registry.terminate();
    assert!(status.success(), "cim-registry exit: {status}\n{}", stack.registry.log());
}

#[tokio::test]
async fn an_instance_whose_heartbeats_stop_expires_within_its_ttl() {
    let mut stack = Stack::start(1).await;
    let registry = stack.registry_client();
    let mut changes = {
        // The registry's KV bucket (`<namespace>-components`, one key
        // `<name>.<instance>` per instance), watched as any client can.
        let deployment = cim_deploy::Deployment::embedded().expect("components.toml");
        let options = deployment.buckets()["components"].options();
        let bucket = KvBucket::open(stack.client.clone(), &StoreConfig::default(), "components", options)
            .await
            .expect("the registry's bucket");
        bucket.watch(">").await.expect("watch")
    };
    stack.ius[0].kill9();
    let killed = Instant::now();
    let ttl = Duration::from_secs(3);
    loop {
        let listed = registry
            .components(&ComponentQuery { name: Some("cim-ius".into()), capability: None })
            .await
            .expect("list");
        if listed.components.is_empty() {
            break;
        }
        assert!(killed.elapsed() < ttl + Duration::from_secs(3), "still listed {:?} after SIGKILL", killed.elapsed());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let gone_after = killed.elapsed();
    println!("entry gone {gone_after:?} after SIGKILL (TTL {ttl:?}, heartbeat 1 s)");
    assert!(gone_after <= ttl + Duration::from_secs(1), "gone after {gone_after:?}");
    // Watchers see the expiry as a removal.
    use futures::StreamExt;
    let saw_gone = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(change) = changes.next().await {
            if matches!(change, Ok(KvChange::Removed { ref key, .. }) if key.starts_with("cim-ius.")) {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(saw_gone, Ok(true));
}
