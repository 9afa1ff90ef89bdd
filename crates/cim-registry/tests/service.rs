//! The registry binary on a real nats-server, started without a
//! configuration file: only its own name may register a component, and
//! capability patterns match by subject tokens.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use cim_registry_api::{
    Client, ComponentQuery, DEREGISTER, Deregistration, REGISTER, Registration, RegistryCode, SchemaUse,
};
use cim_test_support::NatsServer;
use cim_wire::{Caller, CommonCode, RequestError};

const TIMEOUT: Duration = Duration::from_secs(10);

/// The registry process, killed on drop.
struct Registry {
    child: Child,
    log: PathBuf,
}

impl Registry {
    /// Starts the binary with flags only: no `--config`, no `CIM_CONFIG`.
    fn start(server: &NatsServer, dir: &Path) -> Self {
        let log = dir.join("registry.log");
        let file = std::fs::File::create(&log).expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_cim-registry"))
            .args(["--nats-url", &server.url(), "--http-listen", "127.0.0.1:0", "--instance-id", "r1"])
            .env_remove("CIM_CONFIG")
            .env_remove("CIM_NATS_SERVER")
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("log handle"))
            .stderr(file)
            .spawn()
            .expect("start cim-registry");
        Self { child, log }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn registration(name: &str, instance: &str, capabilities: &[&str]) -> Registration {
    Registration {
        name: name.to_owned(),
        version: "0.1.0".to_owned(),
        instance_id: instance.to_owned(),
        service_id: "test".to_owned(),
        description: "a test component".to_owned(),
        subjects: vec![],
        capabilities: capabilities.iter().map(|c| (*c).to_owned()).collect(),
        schemas: SchemaUse::default(),
        http: None,
        started_at: "2025-01-01T00:00:00Z".to_owned(),
        heartbeat_secs: 5,
    }
}

fn names(list: &cim_registry_api::ComponentList) -> Vec<&str> {
    list.components.iter().map(|c| c.registration.name.as_str()).collect()
}

async fn capable(client: &Client, pattern: &str) -> Vec<String> {
    let query = ComponentQuery { name: None, capability: Some(pattern.to_owned()) };
    let list = client.components(&query).await.expect("list");
    names(&list).into_iter().map(str::to_owned).collect()
}

#[tokio::test]
async fn starts_without_a_config_and_registers_only_the_subjects_component() {
    let server = NatsServer::start().await;
    crate::provision(&server).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let registry = Registry::start(&server, dir.path());
    let nats = server.connect().await;
    let client = Client::new(nats.clone(), TIMEOUT);
    let caller = Caller::new(nats, TIMEOUT);

    // With nothing but defaults and flags, it serves and registers itself.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let query = ComponentQuery { name: Some("cim-registry".into()), capability: None };
        if let Ok(list) = client.components(&query).await
            && list.components.iter().any(|c| c.registration.instance_id == "r1")
        {
            break;
        }
        assert!(Instant::now() < deadline, "the registry did not register itself; log:\n{}", registry.log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // A registration must come on its own component's subject.
    let fake = registration("cim-fake", "f1", &["units.read", "units.read.deep", "schemas.validate"]);
    let error = caller.call_for(&REGISTER, "cim-other", &fake).await.expect_err("another component's subject");
    let refused = error.remote().expect("a refusal");
    assert!(refused.is_common(CommonCode::Forbidden) && refused.status == 403, "{refused:?}");
    let listed = client.components(&ComponentQuery { name: Some("cim-fake".into()), capability: None }).await;
    assert!(listed.expect("list").components.is_empty(), "nothing registered");
    let ack = caller.call_for(&REGISTER, "cim-fake", &fake).await.expect("its own subject");
    assert_eq!(ack.ttl_secs, 15, "the default TTL");

    // Nor may one component deregister another.
    let gone = Deregistration { name: "cim-fake".into(), instance_id: "f1".into() };
    let error = caller.call_for(&DEREGISTER, "cim-registry", &gone).await.expect_err("another component's subject");
    assert!(error.remote().is_some_and(|e| e.is_common(CommonCode::Forbidden)), "{error:?}");

    // Capability patterns match by subject tokens; names stay globs.
    assert_eq!(capable(&client, "units.*").await, ["cim-fake"]);
    assert_eq!(capable(&client, "units.>").await, ["cim-fake"]);
    assert_eq!(capable(&client, "units.read.*").await, ["cim-fake"]);
    assert!(capable(&client, "units").await.is_empty());
    assert_eq!(capable(&client, "*.validate").await, ["cim-fake", "cim-registry"]);
    assert_eq!(capable(&client, "registry.*").await, ["cim-registry"]);
    let globbed = client.components(&ComponentQuery { name: Some("cim-f?k*".into()), capability: None }).await;
    assert_eq!(names(&globbed.expect("list")), ["cim-fake"]);
    for bad in ["units.>.read", "units.rea*", "units..read"] {
        let query = ComponentQuery { name: None, capability: Some(bad.into()) };
        let error = client.components(&query).await.expect_err("not a pattern");
        assert!(error.is(RegistryCode::InvalidName) && error.remote().is_some_and(|e| e.status == 400), "{error:?}");
    }

    let ack = caller.call_for(&DEREGISTER, "cim-fake", &gone).await.expect("its own subject");
    assert!(ack.removed);
    assert!(matches!(caller.call_for(&REGISTER, "a.b", &fake).await, Err(RequestError::Transport { .. })));
}

#[test]
fn refuses_to_start_on_a_server_nobody_provisioned() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let server = runtime.block_on(NatsServer::start());
    let dir = tempfile::tempdir().expect("temp dir");
    let mut registry = Registry::start(&server, dir.path());
    // It attaches only: a missing bucket or stream is an error naming what
    // to run, and the process exits (systemd restarts it until provisioning
    // has run).
    let status = registry.child.wait().expect("the registry exits");
    assert!(!status.success(), "{status}");
    let log = registry.log();
    assert!(log.contains("does not exist: provision the store first") && log.contains("cim provision"), "{log}");
}
