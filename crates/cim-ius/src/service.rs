//! The IUS as a service: start-up (stores, projection, built-in schemas)
//! and its endpoints.

use std::sync::Arc;
use std::time::Duration;

use cim_ius_api::{self as api, IusCode, Kind, Kinds, RegisterKind};
use cim_registry_api::{RegisterSchema, RegistryCode};
use cim_runtime::{Runtime, ServiceDefinition};
use cim_store::retry::Policy;
use cim_store::{EventStore, ObjectStore};
use cim_wire::{ApiError, Endpoint, RequestError};
use futures::future::BoxFuture;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tracing::{info, warn};

use crate::ius::Ius;
use crate::kinds::{self, KIND_PREFIX, METADATA_TYPE, schema_type};
use crate::projection::Projection;
use crate::settings::IusSettings;

type Reply<T> = Result<T, ApiError<IusCode>>;

impl Ius {
    /// Opens the stores, registers the built-in schemas (waiting for the
    /// registry up to `registry_wait_secs`) and rebuilds the projection.
    pub async fn open(runtime: &Runtime<IusSettings>) -> anyhow::Result<Self> {
        let config = runtime.config();
        let client = runtime.client().clone();
        let store = EventStore::open(client.clone(), config.store.clone()).await?;
        let objects = ObjectStore::open(client, &config.store).await?;
        let registry = cim_registry_api::Client::with_caller(runtime.caller());
        register_builtin(&registry, Duration::from_secs(config.component.registry_wait_secs)).await?;
        let projection = Projection::start(&store).await?;
        Ok(Self { store, objects, projection, registry, settings: Arc::new(config.component.clone()) })
    }

    /// The IUS's request API.
    pub fn definition(self) -> ServiceDefinition {
        let ius = Arc::new(self);
        let builtin_types =
            kinds::builtin().into_iter().map(|(kind, _)| schema_type(kind)).chain([METADATA_TYPE.to_owned()]);
        let mut definition = ServiceDefinition::of(api::SERVICE, env!("CARGO_PKG_VERSION"))
            .description("CIM Information Unit System: immutable, schema-validated units of information")
            .capability("units.read")
            .capability("units.write")
            .capability("units.kinds")
            .produces(builtin_types.clone())
            .consumes(builtin_types);
        definition = route(definition, &ius, &api::CREATE, |ius, c| Box::pin(async move { Ok(ius.create(c).await?) }));
        definition = route(definition, &ius, &api::UPDATE, |ius, c| Box::pin(async move { Ok(ius.update(c).await?) }));
        definition = route(definition, &ius, &api::TAG, |ius, c| Box::pin(async move { Ok(ius.tag(c).await?) }));
        definition = route(definition, &ius, &api::UNTAG, |ius, c| Box::pin(async move { Ok(ius.untag(c).await?) }));
        definition = route(definition, &ius, &api::RELATE, |ius, c| Box::pin(async move { Ok(ius.relate(c).await?) }));
        definition =
            route(definition, &ius, &api::UNRELATE, |ius, c| Box::pin(async move { Ok(ius.unrelate(c).await?) }));
        definition = route(definition, &ius, &api::ATTACH, |ius, c| Box::pin(async move { Ok(ius.attach(c).await?) }));
        definition = route(definition, &ius, &api::DETACH, |ius, c| Box::pin(async move { Ok(ius.detach(c).await?) }));
        definition = route(definition, &ius, &api::RETIRE, |ius, c| Box::pin(async move { Ok(ius.retire(c).await?) }));
        definition = route(definition, &ius, &api::GET, |ius, q| Box::pin(async move { Ok(ius.get(q).await?) }));
        definition =
            route(definition, &ius, &api::HISTORY, |ius, q| Box::pin(async move { Ok(ius.history(&q.id).await?) }));
        definition =
            route(definition, &ius, &api::VERIFY, |ius, q| Box::pin(async move { Ok(ius.verify(&q.id).await?) }));
        definition =
            route(definition, &ius, &api::TRAVERSE, |ius, q| Box::pin(async move { Ok(ius.traverse(q).await?) }));
        definition = route(definition, &ius, &api::LIST, |ius, q| Box::pin(async move { Ok(ius.list(&q)?) }));
        definition =
            route(definition, &ius, &api::KIND_REGISTER, |ius, q| Box::pin(async move { ius.register_kind(q).await }));
        definition = route(definition, &ius, &api::KIND_LIST, |ius, _| Box::pin(async move { ius.kinds().await }));
        route(definition, &ius, &api::STATUS, |ius, _| Box::pin(async move { Ok(ius.projection.status()) }))
    }

    /// Registers a kind (or a new version of its schema) in the registry.
    pub async fn register_kind(&self, request: RegisterKind) -> Reply<Kind> {
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
    pub async fn kinds(&self) -> Reply<Kinds> {
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

/// The registry's own error (e.g. `incompatible_schema`) passes through,
/// its code unchanged on the wire.
fn registry_error(error: RequestError<RegistryCode>) -> ApiError<IusCode> {
    match error {
        RequestError::Remote(error) => error.retype(),
        RequestError::PermissionDenied { .. } => ApiError::internal(format!("asking the Component Registry: {error}")),
        other => ApiError::unavailable(format!("the Component Registry is unavailable: {other}")),
    }
}

fn route<T, R>(
    definition: ServiceDefinition,
    ius: &Arc<Ius>,
    endpoint: &Endpoint<T, R, IusCode>,
    handler: fn(Arc<Ius>, T) -> BoxFuture<'static, Reply<R>>,
) -> ServiceDefinition
where
    T: DeserializeOwned + Send + 'static,
    R: Serialize + 'static,
{
    let ius = ius.clone();
    definition.handle(endpoint, move |request: T| handler(ius.clone(), request))
}

/// Registers the metadata schema and the built-in kinds, retrying (with the
/// store's retry policy) while the registry does not answer, for up to `wait`.
async fn register_builtin(registry: &cim_registry_api::Client, wait: Duration) -> anyhow::Result<()> {
    let policy = Policy::new(Duration::from_millis(250), Duration::from_secs(2), wait);
    let schemas = std::iter::once((METADATA_TYPE.to_owned(), kinds::metadata_schema()))
        .chain(kinds::builtin().into_iter().map(|(kind, schema)| (schema_type(kind), schema)));
    for (type_name, schema) in schemas {
        let request = RegisterSchema {
            type_name: type_name.clone(),
            schema,
            description: Some("built into cim-ius".to_owned()),
            expected_version: None,
        };
        let warned = std::cell::Cell::new(false);
        let registered = policy
            .retry(
                || registry.register_schema(&request),
                |error| {
                    if error.is_retryable() && !warned.replace(true) {
                        warn!(%error, "waiting for the Component Registry");
                    }
                    error.is_retryable()
                },
            )
            .await
            .map_err(|error| anyhow::anyhow!("registering the built-in schema {type_name}: {error}"))?;
        info!(schema = %type_name, version = registered.schema.version, unchanged = registered.unchanged, "built-in schema registered");
    }
    Ok(())
}
