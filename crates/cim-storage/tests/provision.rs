//! Least privilege: the manager only attaches to what provisioning created
//! as the admin, and its bucket is the one `components.toml` describes.

use cim_storage::settings::TierSettings;
use cim_storage::state::State;
use cim_storage::{Error, Manager, StorageMetrics, StorageSettings};
use cim_store::StoreConfig;
use cim_test_support::NatsServer;

#[test]
fn its_bucket_is_provisioned_as_components_toml_says() {
    let deployment = cim_deploy::Deployment::embedded().expect("components.toml");
    let bucket = deployment.buckets().get("storage").expect("[buckets.storage]");
    assert_eq!(bucket.owner, "storage");
    assert_eq!(bucket.options(), State::bucket_options());
}

#[tokio::test]
async fn refuses_to_start_on_a_server_nobody_provisioned() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let server = NatsServer::start().await;
    // Tiers nobody listens on: the store is attached before any is asked.
    let dir = tempfile::tempdir().expect("temporary directory");
    let tier = |port: u16, name: &str| {
        let (access, secret) = (dir.path().join(format!("{name}-access")), dir.path().join(format!("{name}-secret")));
        std::fs::write(&access, "key").expect("access key file");
        std::fs::write(&secret, "secret").expect("secret key file");
        TierSettings {
            endpoint: format!("http://127.0.0.1:{port}"),
            bucket: format!("cim-{name}"),
            allow_http: true,
            access_key_file: Some(access),
            secret_key_file: Some(secret),
            ..TierSettings::default()
        }
    };
    let settings = StorageSettings { warm: tier(1, "warm"), cold: tier(2, "cold"), ..StorageSettings::default() };
    let error = Manager::open(
        server.connect().await,
        StoreConfig::default(),
        settings,
        "test".to_owned(),
        StorageMetrics::default(),
    )
    .await
    .expect_err("an unprovisioned server");
    assert!(
        matches!(error, Error::Store(cim_store::Error::NotProvisioned { .. })),
        "expected NotProvisioned, got {error}"
    );
}
