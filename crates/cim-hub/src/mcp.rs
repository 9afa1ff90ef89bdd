//! The MCP server (the official Rust SDK, `rmcp`): tools for AI agents to
//! search and read units and their history, read an aggregate, show an
//! event, walk the DAG, verify, and append an event (write scope only).
//!
//! Served over streamable HTTP at `/mcp` behind the same bearer tokens as
//! the HTTP API, and over stdio by `cim-hub-mcp` with a token given to it.
//! Every tool goes through the same code as the HTTP API.

use std::sync::Arc;

use axum::Router;
use cim_hub_api::Scope;
use cim_ius_api::{Get, List};
use cim_store::{AggregateQuery, ExpectedVersion};
use futures::{StreamExt, TryStreamExt};
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{CallToolResult, ContentBlock, Implementation, ServerCapabilities, ServerConfig};
use rmcp::service::RequestContext;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ErrorData, RoleServer, ServerHandler, schemars, tool, tool_handler, tool_router};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::auth::Principal;
use crate::http::{self, dag::WalkDirection};
use crate::hub::Hub;
use crate::problem::Problem;
use crate::views::EventView;

/// The hub's MCP server. For stdio it holds the principal its token names;
/// over HTTP the principal comes with each request.
#[derive(Debug, Clone)]
pub struct HubMcp {
    hub: Hub,
    principal: Option<Arc<Principal>>,
    tool_router: ToolRouter<Self>,
}

/// Search units.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct SearchUnits {
    /// Only this kind, e.g. `text-document`.
    #[serde(default)]
    pub kind: Option<String>,
    /// Only units with this tag.
    #[serde(default)]
    pub tag: Option<String>,
    /// The page after this unit id.
    #[serde(default)]
    pub after: Option<String>,
    /// At most this many (default 100).
    #[serde(default)]
    pub limit: Option<usize>,
}

/// Read a unit.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct UnitQuery {
    /// The unit's id.
    pub id: String,
    /// The state at this version (default: the current one).
    #[serde(default)]
    pub version: Option<u64>,
    /// The state at this RFC 3339 time.
    #[serde(default)]
    pub at: Option<String>,
}

/// A unit by id.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct UnitId {
    /// The unit's id.
    pub id: String,
}

/// An aggregate.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct AggregateRef {
    /// Its type, e.g. `order`.
    pub aggregate_type: String,
    /// Its id, e.g. `42`.
    pub aggregate_id: String,
    /// First version to return (default 1).
    #[serde(default)]
    pub from_version: Option<u64>,
    /// At most this many events (default 100).
    #[serde(default)]
    pub limit: Option<usize>,
}

/// An event by CID.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct EventRef {
    /// The event's CID (`bafyrei…`).
    pub cid: String,
}

/// A walk of the DAG.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct Walk {
    /// The event to start from.
    pub cid: String,
    /// `ancestors` (default: what it descends from) or `descendants`.
    #[serde(default)]
    pub direction: Option<String>,
    /// Links away at most (default 1).
    #[serde(default)]
    pub depth: Option<usize>,
}

/// An event to append.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct Append {
    /// The aggregate's type (not one another component owns, such as `unit`).
    pub aggregate_type: String,
    /// The aggregate's id.
    pub aggregate_id: String,
    /// What happened, e.g. `NoteTaken`.
    pub event_type: String,
    /// The payload (JSON; `{"/": "<cid>"}` is a link).
    #[serde(default)]
    pub payload: Value,
    /// CIDs of events that caused this one.
    #[serde(default)]
    pub parents: Vec<String>,
    /// Append only if the aggregate is at this version.
    #[serde(default)]
    pub expected_version: Option<u64>,
}

/// What to verify.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub struct Verify {
    /// The aggregate's type.
    pub aggregate_type: String,
    /// The aggregate's id.
    pub aggregate_id: String,
}

fn json_result<T: Serialize>(value: &T) -> Result<CallToolResult, ErrorData> {
    let value = serde_json::to_value(value).map_err(|e| ErrorData::internal_error(e.to_string(), None))?;
    let text = serde_json::to_string_pretty(&value).unwrap_or_default();
    let mut result = CallToolResult::success(vec![ContentBlock::text(text)]);
    result.structured_content = Some(value);
    Ok(result)
}

/// A refusal or failure as the tool's result (visible to the agent).
fn problem_result(problem: &Problem) -> CallToolResult {
    let text = format!("{} ({}): {}", problem.title, problem.code, problem.detail);
    let mut result = CallToolResult::error(vec![ContentBlock::text(text)]);
    result.structured_content = serde_json::to_value(problem).ok();
    result
}

fn answer<T: Serialize>(outcome: Result<T, Problem>) -> Result<CallToolResult, ErrorData> {
    match outcome {
        Ok(value) => json_result(&value),
        Err(problem) => Ok(problem_result(&problem)),
    }
}

#[tool_router]
impl HubMcp {
    /// A server for `hub`; `principal` for stdio (over HTTP each request brings its own).
    pub fn new(hub: Hub, principal: Option<Principal>) -> Self {
        Self { hub, principal: principal.map(Arc::new), tool_router: Self::tool_router() }
    }

    fn principal(&self, context: &RequestContext<RoleServer>, needed: Scope) -> Result<Arc<Principal>, Problem> {
        let principal = match &self.principal {
            Some(principal) => principal.clone(),
            None => context
                .extensions
                .get::<axum::http::request::Parts>()
                .and_then(|parts| parts.extensions.get::<Arc<Principal>>().cloned())
                .ok_or_else(|| Problem::unauthorized("no token"))?,
        };
        principal.require(needed)?;
        Ok(principal)
    }

    #[tool(
        description = "Search information units by kind and tag (a page in id order; pass `after` = the last id for the next page)."
    )]
    async fn search_units(
        &self,
        Parameters(query): Parameters<SearchUnits>,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        answer(
            async {
                self.principal(&context, Scope::Read)?;
                let list = List {
                    kind: query.kind,
                    tag: query.tag,
                    metadata: Default::default(),
                    include_retired: false,
                    after: query.after,
                    limit: query.limit,
                };
                self.hub.ius().list(&list).await.map_err(Problem::from_request)
            }
            .await,
        )
    }

    #[tool(
        description = "Read an information unit: its content, metadata, tags, relations and attached objects, current or at a version or time, with the CID of that state."
    )]
    async fn get_unit(
        &self,
        Parameters(query): Parameters<UnitQuery>,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        answer(
            async {
                self.principal(&context, Scope::Read)?;
                let get = Get {
                    id: Some(query.id),
                    version: query.version,
                    at: query.at,
                    state_cid: None,
                    min_version: None,
                };
                self.hub.ius().get(&get).await.map_err(Problem::from_request)
            }
            .await,
        )
    }

    #[tool(description = "A unit's history: every change as an event with its CID, version, time and patch.")]
    async fn unit_history(
        &self,
        Parameters(query): Parameters<UnitId>,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        answer(
            async {
                self.principal(&context, Scope::Read)?;
                self.hub.ius().history(&query.id).await.map_err(Problem::from_request)
            }
            .await,
        )
    }

    #[tool(
        description = "Read an aggregate's events in version order (type/id, e.g. order/42), each verified against its CID."
    )]
    async fn read_aggregate(
        &self,
        Parameters(query): Parameters<AggregateRef>,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        answer(
            async {
                self.principal(&context, Scope::Read)?;
                let aggregate = http::aggregate_key(&query.aggregate_type, &query.aggregate_id)?;
                let limit = query.limit.unwrap_or(100).clamp(1, self.hub.settings().max_page_events);
                let events: Vec<_> = self
                    .hub
                    .store()
                    .aggregate_events(&aggregate, AggregateQuery::from_version(query.from_version.unwrap_or(1)))
                    .await?
                    .take(limit)
                    .try_collect()
                    .await?;
                Ok::<_, Problem>(serde_json::json!({ "events": events.iter().map(EventView::of).collect::<Vec<_>>() }))
            }
            .await,
        )
    }

    #[tool(
        description = "Show one event by its CID: aggregate, version, type, payload, prev and parents links, who appended it; verified against its CID."
    )]
    async fn show_event(
        &self,
        Parameters(query): Parameters<EventRef>,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        answer(
            async {
                self.principal(&context, Scope::Read)?;
                http::events::show_event(&self.hub, &query.cid).await
            }
            .await,
        )
    }

    #[tool(
        description = "Walk the MerkleDAG from an event: its ancestors (what it descends from through prev and parents) or descendants, to a depth."
    )]
    async fn walk_dag(
        &self,
        Parameters(query): Parameters<Walk>,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        answer(
            async {
                self.principal(&context, Scope::Read)?;
                let direction = match query.direction.as_deref() {
                    None | Some("ancestors") => WalkDirection::Ancestors,
                    Some("descendants") => WalkDirection::Descendants,
                    Some(other) => {
                        return Err(Problem::bad_request(format!("direction {other:?}: ancestors or descendants")));
                    }
                };
                http::dag::walk_dag(&self.hub, &query.cid, direction, query.depth.unwrap_or(1), 1000).await
            }
            .await,
        )
    }

    #[tool(
        description = "Verify an aggregate: every event against its CID, the hash chain, and that every parent is a stored event."
    )]
    async fn verify(
        &self,
        Parameters(query): Parameters<Verify>,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        answer(
            async {
                self.principal(&context, Scope::Read)?;
                let aggregate = http::aggregate_key(&query.aggregate_type, &query.aggregate_id)?;
                let report = self.hub.store().verify_aggregate(&aggregate).await?;
                Ok::<_, Problem>(serde_json::json!({
                    "ok": report.is_ok(),
                    "verified": report.verified,
                    "problems": report.problems.iter().map(ToString::to_string).collect::<Vec<_>>(),
                }))
            }
            .await,
        )
    }

    #[tool(
        description = "Append an event to an aggregate (needs a write-scoped token). Returns its CID, version and stream sequence. The caller is recorded with the event."
    )]
    async fn append_event(
        &self,
        Parameters(request): Parameters<Append>,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResult, ErrorData> {
        answer(
            async {
                let principal = self.principal(&context, Scope::Write)?;
                let aggregate = http::aggregate_key(&request.aggregate_type, &request.aggregate_id)?;
                self.hub.check_writable(aggregate.aggregate_type())?;
                let events = http::events::new_events(vec![http::events::NewEventBody {
                    event_type: request.event_type,
                    payload: request.payload,
                    parents: request.parents,
                    schema_version: None,
                    timestamp_us: None,
                }])?;
                let expected = request.expected_version.map_or(ExpectedVersion::Any, ExpectedVersion::Exact);
                let caller = format!("{} (mcp)", principal.caller());
                let appended = self.hub.store().append_as(&aggregate, expected, events, Some(&caller)).await?;
                Ok::<_, Problem>(http::events::appended_view(&appended))
            }
            .await,
        )
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for HubMcp {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("cim-hub", env!("CARGO_PKG_VERSION")))
            .with_instructions(
                "CIM: a verifiable, CID-chained event store with information units. Search and read units, read \
                 aggregates and events, walk the DAG of causes, verify chains; append events with a write token.",
            )
    }
}

/// The `/mcp` route: streamable HTTP behind the bearer tokens.
pub fn routes(hub: Hub) -> Router<Hub> {
    let config = StreamableHttpServerConfig::default().disable_allowed_hosts();
    let server = hub.clone();
    let service = StreamableHttpService::new(
        move || Ok(HubMcp::new(server.clone(), None)),
        LocalSessionManager::default().into(),
        config,
    );
    Router::new()
        .nest_service("/mcp", service)
        .layer(axum::middleware::from_fn_with_state(hub, crate::auth::require_token))
}
