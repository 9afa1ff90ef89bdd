//! The IUS as a service: start-up (stores, projection, built-in schemas)
//! and its endpoints.

use std::sync::Arc;
use std::time::{Duration, Instant};

use cim_registry::api::RegisterSchema;
use cim_runtime::{ApiError, RequestError, Runtime, ServiceDefinition};
use cim_store::{EventStore, ObjectStore};
use futures::future::BoxFuture;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tracing::{info, warn};

use crate::api::{self, Kind, Kinds, List, RegisterKind, UnitRef, endpoints};
use crate::ius::Ius;
use crate::kinds::{self, KIND_PREFIX, METADATA_TYPE, schema_type};
use crate::projection::Projection;
use crate::settings::IusSettings;

impl Ius {
    /// Opens the stores, registers the built-in schemas (waiting for the
    /// registry up to `registry_wait_secs`) and rebuilds the projection.
    pub async fn open(runtime: &Runtime<IusSettings>) -> anyhow::Result<Self> {
        let config = runtime.config();
        let client = runtime.client().clone();
        let store = EventStore::open(client.clone(), config.store.clone()).await?;
        let objects = ObjectStore::open(client.clone(), &config.store).await?;
        let registry = cim_registry::Client::new(client, runtime.request_timeout());
        register_builtin(&registry, Duration::from_secs(config.component.registry_wait_secs)).await?;
        let projection = Projection::start(&store).await?;
        Ok(Self { store, objects, projection, registry, settings: Arc::new(config.component.clone()) })
    }

    /// The IUS's request API.
    pub fn definition(self) -> ServiceDefinition {
        let ius = Arc::new(self);
        let builtin_types =
            kinds::builtin().into_iter().map(|(kind, _)| schema_type(kind)).chain([METADATA_TYPE.to_owned()]);
        let mut definition = ServiceDefinition::new(api::SERVICE_NAME, env!("CARGO_PKG_VERSION"), api::PREFIX)
            .description("CIM Information Unit System: immutable, schema-validated units of information")
            .capability("units.read")
            .capability("units.write")
            .capability("units.kinds")
            .produces(builtin_types.clone())
            .consumes(builtin_types);
        definition = route(definition, &ius, endpoints::CREATE, |ius, c| {
            Box::pin(async move { ius.create(c).await.map_err(ApiError::from) })
        });
        definition = route(definition, &ius, endpoints::UPDATE, |ius, c| {
            Box::pin(async move { ius.update(c).await.map_err(ApiError::from) })
        });
        definition = route(definition, &ius, endpoints::TAG, |ius, c| {
            Box::pin(async move { ius.tag(c).await.map_err(ApiError::from) })
        });
        definition = route(definition, &ius, endpoints::UNTAG, |ius, c| {
            Box::pin(async move { ius.untag(c).await.map_err(ApiError::from) })
        });
        definition = route(definition, &ius, endpoints::RELATE, |ius, c| {
            Box::pin(async move { ius.relate(c).await.map_err(ApiError::from) })
        });
        definition = route(definition, &ius, endpoints::UNRELATE, |ius, c| {
            Box::pin(async move { ius.unrelate(c).await.map_err(ApiError::from) })
        });
        definition = route(definition, &ius, endpoints::ATTACH, |ius, c| {
            Box::pin(async move { ius.attach(c).await.map_err(ApiError::from) })
        });
        definition = route(definition, &ius, endpoints::DETACH, |ius, c| {
            Box::pin(async move { ius.detach(c).await.map_err(ApiError::from) })
        });
        definition = route(definition, &ius, endpoints::RETIRE, |ius, c| {
            Box::pin(async move { ius.retire(c).await.map_err(ApiError::from) })
        });
        definition = route(definition, &ius, endpoints::GET, |ius, q| {
            Box::pin(async move { ius.get(q).await.map_err(ApiError::from) })
        });
        definition = route(definition, &ius, endpoints::HISTORY, |ius, q: UnitRef| {
            Box::pin(async move { ius.history(&q.id).await.map_err(ApiError::from) })
        });
        definition = route(definition, &ius, endpoints::VERIFY, |ius, q: UnitRef| {
            Box::pin(async move { ius.verify(&q.id).await.map_err(ApiError::from) })
        });
        definition = route(definition, &ius, endpoints::TRAVERSE, |ius, q| {
            Box::pin(async move { ius.traverse(q).await.map_err(ApiError::from) })
        });
        definition = route(definition, &ius, endpoints::LIST, |ius, q: List| {
            Box::pin(async move { ius.list(&q).map_err(ApiError::from) })
        });
        definition = route(definition, &ius, endpoints::KIND_REGISTER, |ius, q| {
            Box::pin(async move { ius.register_kind(q).await })
        });
        definition = route(definition, &ius, endpoints::KIND_LIST, |ius, _: serde_json::Value| {
            Box::pin(async move { ius.kinds().await })
        });
        route(definition, &ius, endpoints::STATUS, |ius, _: serde_json::Value| {
            Box::pin(async move { Ok(ius.projection.status()) })
        })
    }

    /// Registers a kind (or a new version of its schema) in the registry.
    pub async fn register_kind(&self, request: RegisterKind) -> Result<Kind, ApiError> {
        if !kinds::valid_kind(&request.kind) {
            return Err(ApiError::bad_request(format!(
                "kind {:?} must be [a-z0-9-], starting with a letter",
                request.kind
            )));
        }
        let register = RegisterSchema {
            type_name: schema_type(&request.kind),
            schema: request.schema,
            description: None,
            expected_version: None,
        };
        let registered = self.registry.register_schema(&register).await.map_err(registry_error)?;
        Ok(Kind { kind: request.kind, version: registered.schema.version })
    }

    /// Every kind with a schema in the registry.
    pub async fn kinds(&self) -> Result<Kinds, ApiError> {
        let types = self.registry.schemas(Some(KIND_PREFIX)).await.map_err(registry_error)?;
        let kinds = types
            .types
            .into_iter()
            .filter_map(|t| {
                Some(Kind { kind: t.type_name.strip_prefix(KIND_PREFIX)?.to_owned(), version: t.latest_version })
            })
            .collect();
        Ok(Kinds { kinds })
    }
}

/// The registry's own error (e.g. `incompatible_schema`) passes through.
fn registry_error(error: RequestError) -> ApiError {
    match error {
        RequestError::Remote(error) => error,
        other => ApiError::unavailable(format!("the Component Registry is unavailable: {other}")),
    }
}

fn route<T, R>(
    definition: ServiceDefinition,
    ius: &Arc<Ius>,
    name: &str,
    handler: fn(Arc<Ius>, T) -> BoxFuture<'static, Result<R, ApiError>>,
) -> ServiceDefinition
where
    T: DeserializeOwned + Send + 'static,
    R: Serialize + 'static,
{
    let ius = ius.clone();
    definition.endpoint(name, move |request: T| handler(ius.clone(), request))
}

/// Registers the metadata schema and the built-in kinds, retrying while the
/// registry does not answer.
async fn register_builtin(registry: &cim_registry::Client, wait: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + wait;
    let schemas = std::iter::once((METADATA_TYPE.to_owned(), kinds::metadata_schema()))
        .chain(kinds::builtin().into_iter().map(|(kind, schema)| (schema_type(kind), schema)));
    for (type_name, schema) in schemas {
        let request = RegisterSchema {
            type_name: type_name.clone(),
            schema,
            description: Some("built into cim-ius".to_owned()),
            expected_version: None,
        };
        loop {
            match registry.register_schema(&request).await {
                Ok(registered) => {
                    info!(schema = %type_name, version = registered.schema.version, unchanged = registered.unchanged, "built-in schema registered");
                    break;
                }
                Err(error) if error.is_retryable() && Instant::now() < deadline => {
                    warn!(%error, "waiting for the Component Registry");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                Err(error) => anyhow::bail!("registering the built-in schema {type_name}: {error}"),
            }
        }
    }
    Ok(())
}
