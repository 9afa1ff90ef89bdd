//! KV helpers: JSON values, watches, TTLs that expire entries, and buckets
//! that provisioning creates and components attach to.

use std::time::Duration;

use cim_store::{Error, KvBucket, KvChange, KvOptions, StoreConfig};
use futures::StreamExt;

/// A bound only a hang reaches.
const HANG: Duration = Duration::from_secs(30);

#[tokio::test]
async fn values_are_watched_and_expire_after_their_ttl() {
    let server = cim_test_support::NatsServer::start().await;
    let options = KvOptions { ttl: Some(Duration::from_secs(1)), ..KvOptions::default() };
    let bucket =
        KvBucket::provision(server.connect().await, &StoreConfig::default(), "liveness", options).await.unwrap();
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
    let bucket = KvBucket::provision(server.connect().await, &StoreConfig::default(), "leases", options).await.unwrap();
    bucket.create_with_ttl("short", "x".into(), Duration::from_secs(1)).await.unwrap();
    bucket.put("forever", "y".into()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(bucket.get("short").await.unwrap(), None);
    assert_eq!(bucket.get("forever").await.unwrap(), Some("y".into()));
}

/// A liveness entry: every rewrite carries the TTL again, so the entry
/// outlives any number of TTLs while it is rewritten, and goes one TTL
/// after the last rewrite — seen by a watcher as a removal. (With a TTL set
/// only when the key is created, as async-nats's `create_with_ttl` does, the
/// first rewrite would make the entry permanent.)
#[tokio::test]
async fn an_entry_rewritten_with_its_ttl_lives_one_ttl_after_its_last_write() {
    let server = cim_test_support::NatsServer::start().await;
    let options = KvOptions { per_key_ttl_markers: Some(Duration::from_secs(5)), ..KvOptions::default() };
    let bucket = KvBucket::provision(server.connect().await, &StoreConfig::default(), "beats", options).await.unwrap();
    let ttl = Duration::from_secs(2);
    let mut watch = bucket.watch("beat.>").await.unwrap();

    // Rewritten for at least 2.75 s, longer than its TTL: had the TTL not
    // started again with each write, the watch would see a removal before
    // the last write.
    let mut last = 0;
    for beat in 0..12 {
        last = bucket.put_json_with_ttl("beat.a", &beat, ttl).await.unwrap();
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    // Now it goes by itself.
    let removed = tokio::time::timeout(HANG, async {
        while let Some(change) = watch.next().await {
            if let KvChange::Removed { key, revision } = change.unwrap() {
                return (key, revision);
            }
        }
        panic!("the watch ended");
    })
    .await
    .expect("the entry expires once it is no longer rewritten");
    assert_eq!(removed.0, "beat.a");
    assert!(removed.1 > last, "removed only after its last write ({} <= {last})", removed.1);
    assert_eq!(bucket.get("beat.a").await.unwrap(), None);
}

#[tokio::test]
async fn a_component_attaches_only_to_a_provisioned_bucket_kept_as_it_says() {
    let server = cim_test_support::NatsServer::start().await;
    let config = StoreConfig::default();
    let options = KvOptions {
        description: "test".to_owned(),
        history: 1,
        ttl: None,
        per_key_ttl_markers: Some(Duration::from_secs(60)),
    };
    let error = KvBucket::open(server.connect().await, &config, "owned", options.clone()).await.unwrap_err();
    assert!(matches!(&error, Error::NotProvisioned { resource } if resource.contains("cim-owned")), "{error}");
    assert!(error.to_string().contains("cim provision"), "{error}");
    assert!(!error.is_retryable());

    KvBucket::provision(server.connect().await, &config, "owned", options.clone()).await.unwrap();
    let bucket = KvBucket::open(server.connect().await, &config, "owned", options.clone()).await.unwrap();
    bucket.put_with_ttl("a", "1".into(), Duration::from_secs(60)).await.unwrap();
    // The description is for operators; what the component relies on must agree.
    let described = KvOptions { description: "other words".to_owned(), ..options.clone() };
    KvBucket::open(server.connect().await, &config, "owned", described).await.unwrap();

    let more_history = KvOptions { history: 5, ..options.clone() };
    let error = KvBucket::open(server.connect().await, &config, "owned", more_history.clone()).await.unwrap_err();
    assert!(
        matches!(&error, Error::Incompatible { reason, .. } if reason.contains("keeps 1 revisions per key, not 5") && reason.contains("cim provision")),
        "{error}"
    );
    let no_ttl = KvOptions { per_key_ttl_markers: None, ..options.clone() };
    let error = KvBucket::open(server.connect().await, &config, "owned", no_ttl).await.unwrap_err();
    assert!(matches!(&error, Error::Incompatible { reason, .. } if reason.contains("TTL per entry")), "{error}");

    // Provisioning adapts the bucket, keeping its entries.
    KvBucket::provision(server.connect().await, &config, "owned", more_history.clone()).await.unwrap();
    let bucket = KvBucket::open(server.connect().await, &config, "owned", more_history).await.unwrap();
    assert_eq!(bucket.get("a").await.unwrap(), Some("1".into()));
}
