//! The registry as a service: its `[registry]` settings and its endpoints.

use std::sync::Arc;
use std::time::Duration;

use cim_registry_api::{
    self as api, ComponentList, DeregistrationAck, RegistrationAck, RegistryCode, SchemaHistory, SchemaTypes,
};
use cim_runtime::{Invalid, Runtime, ServiceDefinition, Settings};
use cim_store::EventStore;
use cim_wire::ApiError;
use serde::{Deserialize, Serialize};

use crate::components::Directory;
use crate::schemas::SchemaRegistry;

/// `[registry]` settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RegistrySettings {
    /// Seconds an entry lives after its last heartbeat (2–3600).
    pub component_ttl_secs: u64,
    /// Largest schema accepted, bytes of JSON.
    pub max_schema_bytes: usize,
}

impl Default for RegistrySettings {
    fn default() -> Self {
        Self { component_ttl_secs: 15, max_schema_bytes: 256 * 1024 }
    }
}

impl Settings for RegistrySettings {
    const SECTION: &'static str = "registry";

    fn validate(&self) -> Result<(), Invalid> {
        if !(2..=3600).contains(&self.component_ttl_secs) {
            return Err(Invalid::new("component_ttl_secs", "must be between 2 and 3600"));
        }
        if !(1024..=16 * 1024 * 1024).contains(&self.max_schema_bytes) {
            return Err(Invalid::new("max_schema_bytes", "must be between 1024 and 16777216"));
        }
        Ok(())
    }
}

/// The registry's state: the component directory and the schema registry.
#[derive(Debug, Clone)]
pub struct Registry {
    /// Live components.
    pub directory: Directory,
    /// Schemas.
    pub schemas: SchemaRegistry,
}

type Reply<T> = Result<T, ApiError<RegistryCode>>;

/// Refuses a registration or deregistration whose body names another
/// component than the subject it came on: a component's NATS user may only
/// publish its own registration subjects, so the subject says who it is.
fn check_caller(token: &str, name: &str, what: &str) -> Reply<()> {
    if token == name {
        return Ok(());
    }
    Err(ApiError::forbidden(format!(
        "a {what} for component {name:?} must be sent on the subject of {name:?}, not of {token:?}"
    ))
    .with_details(serde_json::json!({ "subject_component": token, "component": name })))
}

impl Registry {
    /// Opens the bucket and the event store the runtime's configuration
    /// names. Only the schema aggregates are read (by subject), so the
    /// whole-store MerkleDAG is never built.
    pub async fn open(runtime: &Runtime<RegistrySettings>) -> Result<Self, crate::Error> {
        let config = runtime.config();
        let ttl = Duration::from_secs(config.component.component_ttl_secs);
        let directory = Directory::open(runtime.client().clone(), &config.store, ttl).await?;
        let store = EventStore::open(runtime.client().clone(), config.store.clone()).await?;
        let schemas = SchemaRegistry::new(store, config.component.max_schema_bytes);
        Ok(Self { directory, schemas })
    }

    /// The registry's request API.
    pub fn definition(self) -> ServiceDefinition {
        let registry = Arc::new(self);
        let ttl_secs = registry.directory.ttl().as_secs();
        let with = |registry: &Arc<Registry>| registry.clone();
        ServiceDefinition::of(api::SERVICE, env!("CARGO_PKG_VERSION"))
            .description("CIM Component Registry: live components, discovery, schemas and validation")
            .capability("registry.components")
            .capability("registry.schemas")
            .capability("schemas.validate")
            .handle_for(&api::REGISTER, {
                let registry = with(&registry);
                move |token, registration| {
                    let registry = registry.clone();
                    async move {
                        check_caller(&token, &registration.name, "registration")?;
                        registry.directory.register(registration).await?;
                        Ok(RegistrationAck { ttl_secs })
                    }
                }
            })
            .handle_for(&api::DEREGISTER, {
                let registry = with(&registry);
                move |token, request| {
                    let registry = registry.clone();
                    async move {
                        check_caller(&token, &request.name, "deregistration")?;
                        let removed = registry.directory.deregister(&request.name, &request.instance_id).await?;
                        Ok(DeregistrationAck { removed })
                    }
                }
            })
            .handle(&api::LIST, {
                let registry = with(&registry);
                move |query| {
                    let registry = registry.clone();
                    async move { Ok(ComponentList { components: registry.directory.list(&query).await? }) }
                }
            })
            .handle(&api::GRAPH, {
                let registry = with(&registry);
                move |_| {
                    let registry = registry.clone();
                    async move { Ok(registry.directory.graph().await?) }
                }
            })
            .handle(&api::SCHEMA_REGISTER, {
                let registry = with(&registry);
                move |request| {
                    let registry = registry.clone();
                    async move {
                        Ok(registry
                            .schemas
                            .register(&request.type_name, request.schema, request.description, request.expected_version)
                            .await?)
                    }
                }
            })
            .handle(&api::SCHEMA_GET, {
                let registry = with(&registry);
                move |request| {
                    let registry = registry.clone();
                    async move { Ok(registry.schemas.get(&request.type_name, request.version).await?) }
                }
            })
            .handle(&api::SCHEMA_LIST, {
                let registry = with(&registry);
                move |request| {
                    let registry = registry.clone();
                    async move { Ok(SchemaTypes { types: registry.schemas.list(request.prefix.as_deref()).await? }) }
                }
            })
            .handle(&api::SCHEMA_HISTORY, {
                let registry = with(&registry);
                move |request| {
                    let registry = registry.clone();
                    async move { Ok(SchemaHistory { versions: registry.schemas.history(&request.type_name).await? }) }
                }
            })
            .handle(&api::SCHEMA_VALIDATE, {
                let registry = with(&registry);
                move |request| {
                    let registry = registry.clone();
                    async move {
                        Ok(registry.schemas.validate(&request.type_name, request.version, &request.instance).await?)
                    }
                }
            })
    }
}

#[cfg(test)]
mod tests {
    use cim_wire::CommonCode;

    use super::*;

    #[test]
    fn only_the_subjects_component_may_register() {
        assert!(check_caller("cim-ius", "cim-ius", "registration").is_ok());
        let refused = check_caller("cim-ius", "cim-registry", "registration").expect_err("another component");
        assert!(refused.is_common(CommonCode::Forbidden) && refused.status == 403, "{refused:?}");
    }
}
