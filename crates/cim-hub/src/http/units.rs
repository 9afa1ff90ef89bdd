//! Units, through the Information Unit System's API crate: the hub sends
//! the IUS's own messages and passes its replies and refusals on.

use axum::extract::State;
use axum::http::StatusCode;
use cim_hub_api::Scope;
use cim_ius_api::{Create, Direction, Get, List, Target, Traverse, Update};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use super::{ApiJson, ApiPath, ApiQuery, ApiResult, Json};
use crate::auth::Auth;
use crate::hub::Hub;
use crate::problem::Problem;

/// A JSON object whose fields the Information Unit System defines
/// (`docs/spec/subjects.md`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(transparent)]
pub struct JsonObject(pub Value);

impl utoipa::PartialSchema for JsonObject {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::Object)
            .description(Some("A JSON object as the Information Unit System or the Component Registry defines it"))
            .into()
    }
}

impl ToSchema for JsonObject {}

fn reply<T: Serialize>(value: T) -> Result<Json<JsonObject>, Problem> {
    serde_json::to_value(value).map(|v| Json(JsonObject(v))).map_err(|e| Problem::internal(e.to_string()))
}

/// Which units to list.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    /// Only this kind.
    pub kind: Option<String>,
    /// Only units with this tag.
    pub tag: Option<String>,
    /// Include retired units.
    pub include_retired: Option<bool>,
    /// The page after this id.
    pub after: Option<String>,
    /// At most this many.
    pub limit: Option<usize>,
}

/// Lists units by kind and tag, in id order.
#[utoipa::path(
    get,
    path = "/v1/units",
    tag = "units",
    params(ListParams),
    responses(
        (status = 200, description = "A page of units: `{units, next?}`", body = JsonObject),
        (status = "default", description = "A problem", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn list(
    State(hub): State<Hub>,
    Auth(principal): Auth,
    ApiQuery(params): ApiQuery<ListParams>,
) -> ApiResult<Json<JsonObject>> {
    principal.require(Scope::Read)?;
    let query = List {
        kind: params.kind,
        tag: params.tag,
        metadata: Default::default(),
        include_retired: params.include_retired.unwrap_or(false),
        after: params.after,
        limit: params.limit,
    };
    reply(hub.ius().list(&query).await.map_err(Problem::from_request)?)
}

/// Creates a unit (the body is the IUS's `units.create`).
#[utoipa::path(
    post,
    path = "/v1/units",
    tag = "units",
    request_body(content = JsonObject, description = "`{kind, id?, content, metadata?, tags?, caused_by?}`"),
    responses(
        (status = 201, description = "Created: `{id, version, event_cid, state_cid}`", body = JsonObject),
        (status = "default", description = "A problem", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn create(
    State(hub): State<Hub>,
    Auth(principal): Auth,
    ApiJson(command): ApiJson<Create>,
) -> ApiResult<(StatusCode, Json<JsonObject>)> {
    principal.require(Scope::Write)?;
    let committed = hub.ius().create(&command).await.map_err(Problem::from_request)?;
    Ok((StatusCode::CREATED, reply(committed)?))
}

/// Which state of a unit.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct GetParams {
    /// The state at this version.
    pub version: Option<u64>,
    /// The state at this RFC 3339 time.
    pub at: Option<String>,
    /// The state with this CID.
    pub state_cid: Option<String>,
}

/// A unit's current or past state.
#[utoipa::path(
    get,
    path = "/v1/units/{id}",
    tag = "units",
    params(("id" = String, Path, description = "The unit's id"), GetParams),
    responses(
        (status = 200, description = "`{state, state_cid, event_cid}`", body = JsonObject),
        (status = "default", description = "A problem", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn get(
    State(hub): State<Hub>,
    Auth(principal): Auth,
    ApiPath(id): ApiPath<String>,
    ApiQuery(params): ApiQuery<GetParams>,
) -> ApiResult<Json<JsonObject>> {
    principal.require(Scope::Read)?;
    let query =
        Get { id: Some(id), version: params.version, at: params.at, state_cid: params.state_cid, min_version: None };
    reply(hub.ius().get(&query).await.map_err(Problem::from_request)?)
}

/// A JSON Patch of a unit.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchBody {
    /// Apply only at this version; otherwise 409.
    #[serde(default)]
    pub expected_version: Option<u64>,
    /// CIDs of events this change follows from.
    #[serde(default)]
    pub caused_by: Vec<String>,
    /// RFC 6902 operations on `{"content", "metadata"}`.
    #[schema(value_type = Vec<Object>)]
    pub patch: Value,
}

/// Changes a unit's content and metadata with an RFC 6902 JSON Patch.
#[utoipa::path(
    patch,
    path = "/v1/units/{id}",
    tag = "units",
    params(("id" = String, Path, description = "The unit's id")),
    request_body = PatchBody,
    responses(
        (status = 200, description = "`{id, version, event_cid, state_cid}`", body = JsonObject),
        (status = "default", description = "A problem", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn update(
    State(hub): State<Hub>,
    Auth(principal): Auth,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<PatchBody>,
) -> ApiResult<Json<JsonObject>> {
    principal.require(Scope::Write)?;
    let command = Update {
        target: Target { id, expected_version: body.expected_version, caused_by: body.caused_by },
        patch: body.patch,
    };
    reply(hub.ius().update(&command).await.map_err(Problem::from_request)?)
}

/// A unit's events, each with its CID.
#[utoipa::path(
    get,
    path = "/v1/units/{id}/history",
    tag = "units",
    params(("id" = String, Path, description = "The unit's id")),
    responses(
        (status = 200, description = "`{events: [...]}`", body = JsonObject),
        (status = "default", description = "A problem", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn history(
    State(hub): State<Hub>,
    Auth(principal): Auth,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<JsonObject>> {
    principal.require(Scope::Read)?;
    reply(hub.ius().history(&id).await.map_err(Problem::from_request)?)
}

/// Verifies a unit's chain.
#[utoipa::path(
    get,
    path = "/v1/units/{id}/verify",
    tag = "units",
    params(("id" = String, Path, description = "The unit's id")),
    responses(
        (status = 200, description = "`{verified, problems}`", body = JsonObject),
        (status = "default", description = "A problem", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn verify(
    State(hub): State<Hub>,
    Auth(principal): Auth,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<JsonObject>> {
    principal.require(Scope::Read)?;
    reply(hub.ius().verify(&id).await.map_err(Problem::from_request)?)
}

/// How to walk relations.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct RelatedParams {
    /// Links away at most.
    pub depth: Option<u32>,
    /// Only this relation type.
    pub relation: Option<String>,
    /// `out` (default), `in` or `both`.
    pub direction: Option<String>,
}

/// Units related to a unit, to a depth.
#[utoipa::path(
    get,
    path = "/v1/units/{id}/related",
    tag = "units",
    params(("id" = String, Path, description = "The unit's id"), RelatedParams),
    responses(
        (status = 200, description = "`{units: [{id, kind, depth, from, relation}]}`", body = JsonObject),
        (status = "default", description = "A problem", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn related(
    State(hub): State<Hub>,
    Auth(principal): Auth,
    ApiPath(id): ApiPath<String>,
    ApiQuery(params): ApiQuery<RelatedParams>,
) -> ApiResult<Json<JsonObject>> {
    principal.require(Scope::Read)?;
    let direction = match params.direction.as_deref() {
        None => None,
        Some(text) => Some(
            serde_json::from_value::<Direction>(Value::String(text.to_owned()))
                .map_err(|_| Problem::bad_request(format!("direction: {text:?} is not out, in or both")))?,
        ),
    };
    let query =
        Traverse { id, depth: params.depth, relation: params.relation, direction: direction.unwrap_or_default() };
    reply(hub.ius().traverse(&query).await.map_err(Problem::from_request)?)
}
