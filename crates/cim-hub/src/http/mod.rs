//! The public HTTP API: routes, their OpenAPI document (generated from the
//! handlers' annotations by utoipa, so the document and the routes come
//! from the same code), authentication, limits, and problem+json for every
//! error.

#![allow(unused_qualifications)] // in the code utoipa's attributes generate

pub mod dag;
pub mod events;
pub(crate) mod feed;
mod hooks;
mod objects;
mod registry;
mod units;

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, FromRequest, FromRequestParts, MatchedPath, Request, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::Response;
use serde::de::DeserializeOwned;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::hub::Hub;
use crate::metrics::HttpLabels;
use crate::problem::Problem;

/// Where the OpenAPI document is served.
pub const OPENAPI_PATH: &str = "/v1/openapi.json";
/// Where the AsyncAPI document is served.
pub const ASYNCAPI_PATH: &str = "/v1/asyncapi.json";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "CIM Integration Hub",
        description = "The HTTP API of CIM's Integration Hub: events (append, read, show, verify), \
content-addressed objects (streamed, Range, ETag = CID), units (through the Information Unit System), \
the Component Registry, the live event feed (Server-Sent Events) and inbound webhooks. \
Every error is application/problem+json (RFC 9457).",
        license(name = "MIT OR Apache-2.0"),
    ),
    modifiers(&Bearer),
    tags(
        (name = "events", description = "The verifiable event store"),
        (name = "objects", description = "The content-addressed object store"),
        (name = "units", description = "Information units, through the Information Unit System"),
        (name = "registry", description = "Components and schemas, through the Component Registry"),
        (name = "feed", description = "The live event feed"),
        (name = "webhooks", description = "Inbound webhooks"),
    )
)]
struct ApiDoc;

struct Bearer;

impl Modify for Bearer {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                Http::builder().scheme(HttpAuthScheme::Bearer).bearer_format("cimhub_<id>_<secret>").build(),
            ),
        );
    }
}

/// The routes with bearer authentication, and their document.
fn authenticated() -> OpenApiRouter<Hub> {
    OpenApiRouter::new()
        .routes(routes!(events::append, events::read))
        .routes(routes!(events::verify_aggregate))
        .routes(routes!(events::list_aggregates))
        .routes(routes!(events::show))
        .routes(routes!(events::log))
        .routes(routes!(events::verify_store))
        .routes(routes!(dag::walk))
        .routes(routes!(dag::aggregate_graph))
        .routes(routes!(objects::put))
        .routes(routes!(objects::get, objects::head))
        .routes(routes!(units::list, units::create))
        .routes(routes!(units::get, units::update))
        .routes(routes!(units::history))
        .routes(routes!(units::verify))
        .routes(routes!(units::related))
        .routes(routes!(registry::components))
        .routes(routes!(registry::schemas))
        .routes(routes!(registry::schema))
        .routes(routes!(feed::feed))
}

/// The OpenAPI document, as served at [`OPENAPI_PATH`].
pub fn openapi() -> utoipa::openapi::OpenApi {
    let (_, doc) = api_router().split_for_parts();
    doc
}

fn api_router() -> OpenApiRouter<Hub> {
    OpenApiRouter::with_openapi(ApiDoc::openapi()).merge(authenticated()).routes(routes!(hooks::receive))
}

/// The whole HTTP application of the hub.
pub fn router(hub: Hub, extra: Router<Hub>) -> Router {
    let (api, doc) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(authenticated().route_layer(middleware::from_fn_with_state(hub.clone(), crate::auth::require_token)))
        .routes(routes!(hooks::receive))
        .split_for_parts();
    let openapi_json = Arc::new(doc.to_pretty_json().unwrap_or_default());
    let asyncapi_json = Arc::new(serde_json::to_string_pretty(&crate::asyncapi::document(&hub)).unwrap_or_default());
    let max_body = hub.settings().max_body_bytes;
    api.route(
        OPENAPI_PATH,
        axum::routing::get(move || {
            let body = openapi_json.clone();
            async move { ([(header::CONTENT_TYPE, "application/json")], body.as_str().to_owned()) }
        }),
    )
    .route(
        ASYNCAPI_PATH,
        axum::routing::get(move || {
            let body = asyncapi_json.clone();
            async move { ([(header::CONTENT_TYPE, "application/json")], body.as_str().to_owned()) }
        }),
    )
    .merge(extra)
    .fallback(|| async { Problem::not_found("no such route") })
    .method_not_allowed_fallback(|| async {
        Problem::new(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "this route does not take this method")
    })
    .layer(DefaultBodyLimit::max(max_body))
    .layer(middleware::from_fn_with_state(hub.clone(), count_responses))
    .with_state(hub)
}

/// Counts responses by route and status.
async fn count_responses(State(hub): State<Hub>, request: Request, next: Next) -> Response {
    let route = request.extensions().get::<MatchedPath>().map_or("unmatched", |p| p.as_str()).to_owned();
    let response = next.run(request).await;
    hub.metrics().http.get_or_create(&HttpLabels { route, status: response.status().as_u16() }).inc();
    response
}

/// A JSON body, read as strictly as the NATS services read theirs
/// ([`cim_runtime::strict_json`]): a JSON object, no unknown fields, no
/// trailing text, integers within 64 bits. Any refusal is a problem naming
/// where the body went wrong, not axum's plain text.
#[derive(Debug, Clone)]
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = Problem;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !is_json(request.headers()) {
            return Err(Problem::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "the body must be JSON (Content-Type: application/json)",
            ));
        }
        let body = Bytes::from_request(request, state).await.map_err(|rejection| {
            let status = rejection.status();
            if status == StatusCode::PAYLOAD_TOO_LARGE {
                Problem::new(status, "payload_too_large", rejection.body_text())
            } else {
                Problem::bad_request(rejection.body_text())
            }
        })?;
        cim_runtime::strict_json::from_slice(&body)
            .map(Self)
            .map_err(|refusal| Problem::bad_request(format!("invalid request body: {refusal}")))
    }
}

/// Whether the request declares a JSON body (`application/json`, or a
/// `+json` media type such as `application/merge-patch+json`).
fn is_json(headers: &axum::http::HeaderMap) -> bool {
    let Some(Ok(value)) = headers.get(header::CONTENT_TYPE).map(|v| v.to_str()) else {
        return false;
    };
    let Ok(mime) = value.parse::<mime::Mime>() else {
        return false;
    };
    mime.type_() == mime::APPLICATION && (mime.subtype() == mime::JSON || mime.suffix() == Some(mime::JSON))
}

/// Query parameters; ones that do not parse are a problem.
#[derive(Debug, Clone)]
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| Self(q.0))
            .map_err(|rejection: QueryRejection| Problem::bad_request(rejection.body_text()))
    }
}

/// Path parameters; ones that do not parse are a problem.
#[derive(Debug, Clone)]
pub struct ApiPath<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for ApiPath<T> {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| Self(p.0))
            .map_err(|rejection: PathRejection| Problem::bad_request(rejection.body_text()))
    }
}

/// Parses a CID given in a path or body.
pub fn parse_cid(field: &str, text: &str) -> Result<cim_cid::Cid, Problem> {
    text.parse().map_err(|e| {
        Problem::bad_request(format!("{field}: {text:?} is not a CID: {e}"))
            .with_details(serde_json::json!({ "field": field }))
    })
}

/// Parses an aggregate named in a path.
pub fn aggregate_key(aggregate_type: &str, aggregate_id: &str) -> Result<cim_cid::AggregateKey, Problem> {
    cim_cid::AggregateKey::new(aggregate_type, aggregate_id)
        .map_err(|e| Problem::new(StatusCode::BAD_REQUEST, "invalid_name", e.to_string()))
}

pub use axum::Json;

pub(crate) use crate::problem::ApiResult;

/// A raw body within `[hub] max_body_bytes`; too large is a 413 problem.
#[derive(Debug, Clone)]
pub struct ApiBytes(pub bytes::Bytes);

impl<S: Send + Sync> FromRequest<S> for ApiBytes {
    type Rejection = Problem;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        bytes::Bytes::from_request(request, state).await.map(Self).map_err(|rejection| {
            let status = rejection.status();
            if status == StatusCode::PAYLOAD_TOO_LARGE {
                Problem::new(status, "payload_too_large", rejection.body_text())
            } else {
                Problem::bad_request(rejection.body_text())
            }
        })
    }
}
