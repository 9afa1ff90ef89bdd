//! The MerkleDAG: walks from an event, and an aggregate's chain with its
//! causal links (what the explorer draws).

use std::collections::{BTreeMap, HashSet};

use axum::extract::State;
use cim_hub_api::Scope;
use cim_store::AggregateQuery;
use futures::{StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::events::AggregatePath;
use super::{ApiPath, ApiQuery, ApiResult, Json, aggregate_key, parse_cid};
use crate::auth::Auth;
use crate::hub::Hub;
use crate::problem::Problem;

/// Which way to walk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum WalkDirection {
    /// What the event descends from (its `prev` and parents, transitively).
    Ancestors,
    /// What descends from the event.
    Descendants,
}

/// How far to walk.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct WalkParams {
    /// Ancestors (default) or descendants.
    pub direction: Option<WalkDirection>,
    /// Links away at most (default 1, at most 64).
    pub depth: Option<usize>,
    /// Events at most (default and maximum 1000).
    pub limit: Option<usize>,
}

/// One event reached by a walk.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DagNode {
    /// Its CID.
    pub cid: String,
    /// Its aggregate's type.
    pub aggregate_type: String,
    /// Its aggregate's id.
    pub aggregate_id: String,
    /// Its version.
    pub version: u64,
    /// Its stream sequence.
    pub seq: u64,
}

/// The events a walk reached, nearest first.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DagWalk {
    /// Where it started.
    pub from: String,
    /// Which way.
    pub direction: WalkDirection,
    /// Nearest first.
    pub events: Vec<DagNode>,
    /// True when `limit` cut the walk short.
    pub truncated: bool,
}

/// Walks the MerkleDAG from an event through `prev` and `parents` links.
#[utoipa::path(
    get,
    path = "/v1/dag/{cid}",
    tag = "events",
    params(("cid" = String, Path, description = "The event to start from"), WalkParams),
    responses(
        (status = 200, description = "The events reached", body = DagWalk),
        (status = "default", description = "A problem", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn walk(
    State(hub): State<Hub>,
    Auth(principal): Auth,
    ApiPath(cid): ApiPath<String>,
    ApiQuery(params): ApiQuery<WalkParams>,
) -> ApiResult<Json<DagWalk>> {
    principal.require(Scope::Read)?;
    let direction = params.direction.unwrap_or(WalkDirection::Ancestors);
    Ok(Json(walk_dag(&hub, &cid, direction, params.depth.unwrap_or(1), params.limit.unwrap_or(1000)).await?))
}

/// A walk of the DAG (shared with MCP).
pub(crate) async fn walk_dag(
    hub: &Hub,
    cid: &str,
    direction: WalkDirection,
    depth: usize,
    limit: usize,
) -> Result<DagWalk, Problem> {
    let start = parse_cid("cid", cid)?;
    let depth = depth.clamp(1, 64);
    let limit = limit.clamp(1, 1000);
    let dag = hub.store().dag().await?;
    // Events appended a moment ago (the start, or its descendants) are there.
    dag.catch_up().await?;
    let graph = dag.read();
    let walk = match direction {
        WalkDirection::Ancestors => graph.ancestors(&start, Some(depth)),
        WalkDirection::Descendants => graph.descendants(&start, Some(depth)),
    }
    .map_err(|e| Problem::new(axum::http::StatusCode::NOT_FOUND, "unknown_event", e.to_string()))?;
    let mut events = Vec::new();
    let mut truncated = false;
    for event in walk {
        if events.len() == limit {
            truncated = true;
            break;
        }
        events.push(DagNode {
            cid: event.cid.to_string(),
            aggregate_type: event.aggregate.aggregate_type().to_owned(),
            aggregate_id: event.aggregate.aggregate_id().to_owned(),
            version: event.version,
            seq: event.position,
        });
    }
    Ok(DagWalk { from: start.to_string(), direction, events, truncated })
}

/// A node of an aggregate's graph.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct GraphNode {
    /// The event's CID.
    pub cid: String,
    /// Its aggregate, `type/id`.
    pub aggregate: String,
    /// Its version.
    pub version: u64,
    /// Its type.
    pub event_type: String,
    /// Its stream sequence.
    pub seq: u64,
    /// Whether it belongs to the aggregate drawn (otherwise it is a cause or an effect).
    pub own: bool,
}

/// A link between two events.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct GraphEdge {
    /// The linking (newer) event.
    pub from: String,
    /// The linked (older) event.
    pub to: String,
    /// `prev` or `parent`.
    pub kind: String,
}

/// An aggregate's chain with its causes and effects.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AggregateGraph {
    /// The events.
    pub nodes: Vec<GraphNode>,
    /// The links.
    pub edges: Vec<GraphEdge>,
}

/// An aggregate's chain, the events that caused its events (parents) and
/// the events its events caused (children), with every link between them.
#[utoipa::path(
    get,
    path = "/v1/aggregates/{aggregate_type}/{aggregate_id}/graph",
    tag = "events",
    params(AggregatePath),
    responses(
        (status = 200, description = "The graph", body = AggregateGraph),
        (status = "default", description = "A problem", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn aggregate_graph(
    State(hub): State<Hub>,
    Auth(principal): Auth,
    ApiPath(path): ApiPath<AggregatePath>,
) -> ApiResult<Json<AggregateGraph>> {
    principal.require(Scope::Read)?;
    let aggregate = aggregate_key(&path.aggregate_type, &path.aggregate_id)?;
    let max = hub.settings().max_page_events;
    let own: Vec<_> =
        hub.store().aggregate_events(&aggregate, AggregateQuery::all()).await?.take(max).try_collect().await?;
    let mut nodes: BTreeMap<String, GraphNode> = BTreeMap::new();
    let mut edges = Vec::new();
    let mut others = HashSet::new();
    for stored in &own {
        let envelope = &stored.event.envelope;
        let cid = stored.event.cid.to_string();
        nodes.insert(
            cid.clone(),
            GraphNode {
                cid: cid.clone(),
                aggregate: aggregate.to_string(),
                version: envelope.version(),
                event_type: envelope.event_type().to_owned(),
                seq: stored.seq,
                own: true,
            },
        );
        if let Some(prev) = envelope.prev() {
            edges.push(GraphEdge { from: cid.clone(), to: prev.to_string(), kind: "prev".to_owned() });
        }
        for parent in envelope.parents() {
            edges.push(GraphEdge { from: cid.clone(), to: parent.to_string(), kind: "parent".to_owned() });
            others.insert(*parent);
        }
    }
    // The events the aggregate's events caused, from the DAG (caught up
    // with the stream, so an effect appended a moment ago is there).
    let dag = hub.store().dag().await?;
    dag.catch_up().await?;
    let children: Vec<(cim_cid::Cid, cim_cid::Cid)> = {
        let graph = dag.read();
        let mut children = Vec::new();
        for stored in &own {
            if let Ok(walk) = graph.descendants(&stored.event.cid, Some(1)) {
                for child in walk.filter(|c| *c.aggregate != aggregate) {
                    children.push((child.cid, stored.event.cid));
                }
            }
        }
        children
    };
    for (child, parent) in &children {
        edges.push(GraphEdge { from: child.to_string(), to: parent.to_string(), kind: "parent".to_owned() });
        others.insert(*child);
    }
    for cid in others.into_iter().take(max) {
        let key = cid.to_string();
        if nodes.contains_key(&key) {
            continue;
        }
        if let Ok(stored) = hub.store().event(&cid).await {
            let envelope = &stored.event.envelope;
            nodes.insert(
                key.clone(),
                GraphNode {
                    cid: key,
                    aggregate: envelope.aggregate().to_string(),
                    version: envelope.version(),
                    event_type: envelope.event_type().to_owned(),
                    seq: stored.seq,
                    own: false,
                },
            );
        }
    }
    edges.retain(|e| nodes.contains_key(&e.from) && nodes.contains_key(&e.to));
    let mut nodes: Vec<GraphNode> = nodes.into_values().collect();
    nodes.sort_by_key(|n| n.seq);
    Ok(Json(AggregateGraph { nodes, edges }))
}
