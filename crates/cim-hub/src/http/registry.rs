//! The Component Registry, through its API crate.

use axum::extract::State;
use cim_hub_api::Scope;
use cim_registry_api::ComponentQuery;
use serde::Deserialize;
use utoipa::IntoParams;

use super::units::JsonObject;
use super::{ApiPath, ApiQuery, ApiResult, Json};
use crate::auth::Auth;
use crate::hub::Hub;
use crate::problem::Problem;

fn reply<T: serde::Serialize>(value: T) -> Result<Json<JsonObject>, Problem> {
    serde_json::to_value(value).map(|v| Json(JsonObject(v))).map_err(|e| Problem::internal(e.to_string()))
}

/// Which components.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ComponentParams {
    /// A name glob, e.g. `cim-*`.
    pub name: Option<String>,
    /// A capability pattern with NATS token semantics, e.g. `units.>`.
    pub capability: Option<String>,
}

/// The live components, by name glob and capability.
#[utoipa::path(
    get,
    path = "/v1/registry/components",
    tag = "registry",
    params(ComponentParams),
    responses(
        (status = 200, description = "`{components: [{registration, last_seen}]}`", body = JsonObject),
        (status = "default", description = "A problem", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn components(
    State(hub): State<Hub>,
    Auth(principal): Auth,
    ApiQuery(params): ApiQuery<ComponentParams>,
) -> ApiResult<Json<JsonObject>> {
    principal.require(Scope::Read)?;
    let query = ComponentQuery { name: params.name, capability: params.capability };
    reply(hub.registry().components(&query).await.map_err(Problem::from_request)?)
}

/// Which schema types.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct SchemasParams {
    /// Only types starting with this.
    pub prefix: Option<String>,
}

/// The schema types with their latest versions.
#[utoipa::path(
    get,
    path = "/v1/registry/schemas",
    tag = "registry",
    params(SchemasParams),
    responses(
        (status = 200, description = "`{types: [{type, latest_version}]}`", body = JsonObject),
        (status = "default", description = "A problem", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn schemas(
    State(hub): State<Hub>,
    Auth(principal): Auth,
    ApiQuery(params): ApiQuery<SchemasParams>,
) -> ApiResult<Json<JsonObject>> {
    principal.require(Scope::Read)?;
    reply(hub.registry().schemas(params.prefix.as_deref()).await.map_err(Problem::from_request)?)
}

/// Which version.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct SchemaParams {
    /// The version (default: the latest).
    pub version: Option<u64>,
}

/// One version of a schema.
#[utoipa::path(
    get,
    path = "/v1/registry/schemas/{type}",
    tag = "registry",
    params(("type" = String, Path, description = "The schema type, e.g. `unit:text-document`"), SchemaParams),
    responses(
        (status = 200, description = "`{type, version, schema, description, cid, registered_at}`", body = JsonObject),
        (status = "default", description = "A problem", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn schema(
    State(hub): State<Hub>,
    Auth(principal): Auth,
    ApiPath(type_name): ApiPath<String>,
    ApiQuery(params): ApiQuery<SchemaParams>,
) -> ApiResult<Json<JsonObject>> {
    principal.require(Scope::Read)?;
    reply(hub.registry().schema(&type_name, params.version).await.map_err(Problem::from_request)?)
}
