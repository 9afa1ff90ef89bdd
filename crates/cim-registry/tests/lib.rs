//! Integration tests of the registry on a real nats-server: the schema
//! registry and the component directory as libraries, and the binary as a
//! process.

mod components;
mod schemas;
mod service;

/// Provisions `server` as cim-provision.service does: the registry only
/// attaches to its stream and bucket.
async fn provision(server: &cim_test_support::NatsServer) {
    let deployment = cim_deploy::Deployment::embedded().expect("components.toml");
    cim_deploy::provision::provision(server.connect().await, &cim_store::StoreConfig::default(), &deployment)
        .await
        .expect("provisioning");
}
