//! The registry as a service: its `[registry]` settings and its endpoints.

use std::sync::Arc;
use std::time::Duration;

use cim_runtime::registration::{Deregistration, DeregistrationAck, Registration, RegistrationAck};
use cim_runtime::{ApiError, Invalid, Runtime, ServiceDefinition, Settings};
use cim_store::EventStore;
use serde::{Deserialize, Serialize};

use crate::api::{
    self, ComponentList, ComponentQuery, ListSchemas, RegisterSchema, SchemaHistory, SchemaRef, SchemaTypes, Validate,
    endpoints,
};
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

impl Registry {
    /// Opens the bucket and the event store the runtime's configuration names.
    pub async fn open(runtime: &Runtime<RegistrySettings>) -> Result<Self, crate::Error> {
        let config = runtime.config();
        let ttl = Duration::from_secs(config.component.component_ttl_secs);
        let directory = Directory::open(runtime.client().clone(), &config.store, ttl).await?;
        let store = EventStore::open_with_dag(runtime.client().clone(), config.store.clone()).await?;
        let schemas = SchemaRegistry::new(store, config.component.max_schema_bytes);
        Ok(Self { directory, schemas })
    }

    /// The registry's request API.
    pub fn definition(self) -> ServiceDefinition {
        let registry = Arc::new(self);
        let ttl_secs = registry.directory.ttl().as_secs();
        let with = |registry: &Arc<Registry>| registry.clone();
        ServiceDefinition::new(api::SERVICE_NAME, env!("CARGO_PKG_VERSION"), api::PREFIX)
            .description("CIM Component Registry: live components, discovery, schemas and validation")
            .capability("registry.components")
            .capability("registry.schemas")
            .capability("schemas.validate")
            .endpoint(endpoints::REGISTER, {
                let registry = with(&registry);
                move |registration: Registration| {
                    let registry = registry.clone();
                    async move {
                        registry.directory.register(registration).await.map_err(ApiError::from)?;
                        Ok(RegistrationAck { ttl_secs })
                    }
                }
            })
            .endpoint(endpoints::DEREGISTER, {
                let registry = with(&registry);
                move |request: Deregistration| {
                    let registry = registry.clone();
                    async move {
                        let removed = registry.directory.deregister(&request.name, &request.instance_id).await.map_err(ApiError::from)?;
                        Ok(DeregistrationAck { removed })
                    }
                }
            })
            .endpoint(endpoints::LIST, {
                let registry = with(&registry);
                move |query: ComponentQuery| {
                    let registry = registry.clone();
                    async move { Ok(ComponentList { components: registry.directory.list(&query).await.map_err(ApiError::from)? }) }
                }
            })
            .endpoint(endpoints::GRAPH, {
                let registry = with(&registry);
                move |_: serde_json::Value| {
                    let registry = registry.clone();
                    async move { registry.directory.graph().await.map_err(ApiError::from) }
                }
            })
            .endpoint(endpoints::SCHEMA_REGISTER, {
                let registry = with(&registry);
                move |request: RegisterSchema| {
                    let registry = registry.clone();
                    async move {
                        registry
                            .schemas
                            .register(&request.type_name, request.schema, request.description, request.expected_version)
                            .await
                            .map_err(ApiError::from)
                    }
                }
            })
            .endpoint(endpoints::SCHEMA_GET, {
                let registry = with(&registry);
                move |request: SchemaRef| {
                    let registry = registry.clone();
                    async move { registry.schemas.get(&request.type_name, request.version).await.map_err(ApiError::from) }
                }
            })
            .endpoint(endpoints::SCHEMA_LIST, {
                let registry = with(&registry);
                move |request: ListSchemas| {
                    let registry = registry.clone();
                    async move { Ok(SchemaTypes { types: registry.schemas.list(request.prefix.as_deref()).await.map_err(ApiError::from)? }) }
                }
            })
            .endpoint(endpoints::SCHEMA_HISTORY, {
                let registry = with(&registry);
                move |request: SchemaRef| {
                    let registry = registry.clone();
                    async move { Ok(SchemaHistory { versions: registry.schemas.history(&request.type_name).await.map_err(ApiError::from)? }) }
                }
            })
            .endpoint(endpoints::VALIDATE, {
                let registry = with(&registry);
                move |request: Validate| {
                    let registry = registry.clone();
                    async move {
                        registry.schemas.validate(&request.type_name, request.version, &request.instance).await.map_err(ApiError::from)
                    }
                }
            })
    }
}
