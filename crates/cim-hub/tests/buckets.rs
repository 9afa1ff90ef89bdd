//! The hub attaches to the buckets provisioning creates: refused before
//! provisioning, and its buckets are kept as components.toml says.

use cim_hub::hub::{BUCKET, Hub, LOG_BUCKET};
use cim_store::{KvBucket, StoreConfig};
use cim_test_support::NatsServer;

#[test]
fn the_buckets_are_kept_as_components_toml_says() {
    let deployment = cim_deploy::Deployment::embedded().expect("components.toml");
    let buckets = deployment.buckets();
    assert_eq!(buckets[BUCKET].owner, "hub");
    assert_eq!(buckets[BUCKET].options(), Hub::bucket_options());
    assert_eq!(buckets[LOG_BUCKET].owner, "hub");
    assert_eq!(buckets[LOG_BUCKET].options(), Hub::log_bucket_options());
}

/// Before provisioning the hub's bucket does not exist and attaching to it
/// says so (the hub's user could not create it); afterwards it attaches.
#[tokio::test]
async fn the_hub_attaches_only_to_provisioned_buckets() {
    let server = NatsServer::start().await;
    let store = StoreConfig::default();
    let error = KvBucket::open(server.connect().await, &store, BUCKET, Hub::bucket_options()).await.unwrap_err();
    assert!(error.to_string().contains("provision the store first"), "{error}");
    crate::support::provision(&server).await;
    KvBucket::open(server.connect().await, &store, BUCKET, Hub::bucket_options()).await.expect("attaching");
    KvBucket::open(server.connect().await, &store, LOG_BUCKET, Hub::log_bucket_options()).await.expect("attaching");
}
