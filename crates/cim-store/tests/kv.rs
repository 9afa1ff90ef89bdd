//! KV helpers: JSON values, watches, and a TTL that expires entries.

use std::time::Duration;

use cim_store::{KvBucket, KvChange, KvOptions, StoreConfig};
use futures::StreamExt;

#[tokio::test]
async fn values_are_watched_and_expire_after_their_ttl() {
    let server = cim_test_support::NatsServer::start().await;
    let options = KvOptions { ttl: Some(Duration::from_secs(1)), ..KvOptions::default() };
    let bucket = KvBucket::open(server.connect().await, &StoreConfig::default(), "liveness", options).await.unwrap();
    bucket.put_json("svc.a", &serde_json::json!({"up": true})).await.unwrap();
    let mut watch = bucket.watch("svc.>").await.unwrap();
    let first = tokio::time::timeout(Duration::from_secs(5), watch.next()).await.unwrap().unwrap().unwrap();
    assert!(matches!(first, KvChange::Put { ref key, .. } if key == "svc.a"));
    bucket.put_json("svc.b", &1).await.unwrap();
    let second = tokio::time::timeout(Duration::from_secs(5), watch.next()).await.unwrap().unwrap().unwrap();
    assert!(matches!(second, KvChange::Put { ref key, .. } if key == "svc.b"));
    assert_eq!(bucket.get_json::<serde_json::Value>("svc.a").await.unwrap(), Some(serde_json::json!({"up": true})));

    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(bucket.get("svc.a").await.unwrap(), None, "the entry expired with its TTL");
    assert!(bucket.keys().await.unwrap().is_empty());
}

#[tokio::test]
async fn per_key_ttl_entries_expire_on_their_own() {
    let server = cim_test_support::NatsServer::start().await;
    let options = KvOptions { per_key_ttl_markers: Some(Duration::from_secs(1)), ..KvOptions::default() };
    let bucket = KvBucket::open(server.connect().await, &StoreConfig::default(), "leases", options).await.unwrap();
    bucket.create_with_ttl("short", "x".into(), Duration::from_secs(1)).await.unwrap();
    bucket.put("forever", "y".into()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(bucket.get("short").await.unwrap(), None);
    assert_eq!(bucket.get("forever").await.unwrap(), Some("y".into()));
}
