//! Events: append, read an aggregate, show one by CID, the log, verify.

use axum::extract::State;
use axum::http::StatusCode;
use cim_hub_api::Scope;
use cim_store::{AggregateQuery, ExpectedVersion, NewEvent, StartAt, Timestamp};
use futures::{StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use super::{ApiJson, ApiPath, ApiQuery, ApiResult, Json, aggregate_key, parse_cid};
use crate::auth::Auth;
use crate::hub::Hub;
use crate::problem::Problem;
use crate::views::EventView;

/// Events to append to one aggregate, atomically.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AppendRequest {
    /// Append only if the aggregate is at this version (0: it has no events
    /// yet); otherwise 409 `version_conflict`. Without it, the events go
    /// after whatever is there.
    #[serde(default)]
    pub expected_version: Option<u64>,
    /// The events, in order: all are stored or none (at most 1000).
    pub events: Vec<NewEventBody>,
}

/// One event to append.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewEventBody {
    /// What happened: 1-128 of `A-Z a-z 0-9 _ - . : /`.
    pub event_type: String,
    /// The payload as DAG-JSON (`{"/": "<cid>"}` is a link); null when absent.
    #[serde(default)]
    #[schema(schema_with = crate::views::any_value)]
    pub payload: Value,
    /// CIDs of stored events that caused this one.
    #[serde(default)]
    pub parents: Vec<String>,
    /// Version of the payload's schema (default 1).
    #[serde(default)]
    pub schema_version: Option<u32>,
    /// When it happened, microseconds since the Unix epoch (default now). A
    /// fixed time makes a retried append idempotent.
    #[serde(default)]
    pub timestamp_us: Option<i64>,
}

/// One appended event.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AppendedView {
    /// Its CID.
    pub cid: String,
    /// Its version in the aggregate.
    pub version: u64,
    /// Its stream sequence.
    pub seq: u64,
}

/// The result of an append.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AppendResponse {
    /// The events, in order.
    pub events: Vec<AppendedView>,
    /// True when these exact events were already stored (a retry): nothing new was written.
    pub already_stored: bool,
}

/// Which of an aggregate's events to read.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ReadParams {
    /// First version (default 1).
    pub from_version: Option<u64>,
    /// Last version.
    pub to_version: Option<u64>,
    /// Only events whose timestamp is at or before this RFC 3339 time.
    pub as_of: Option<String>,
    /// At most this many events (default and maximum: `[hub] max_page_events`).
    pub limit: Option<usize>,
}

/// A page of an aggregate's events.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AggregateEvents {
    /// The aggregate's type.
    pub aggregate_type: String,
    /// The aggregate's id.
    pub aggregate_id: String,
    /// The events, in version order.
    pub events: Vec<EventView>,
    /// When there are more: the `from_version` of the next page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_version: Option<u64>,
}

/// An aggregate, its type and id.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct AggregatePath {
    /// The aggregate's type, e.g. `order`.
    pub aggregate_type: String,
    /// The aggregate's id, e.g. `42`.
    pub aggregate_id: String,
}

/// Appends events to an aggregate, atomically, with optimistic concurrency.
#[utoipa::path(
    post,
    path = "/v1/aggregates/{aggregate_type}/{aggregate_id}/events",
    tag = "events",
    params(AggregatePath),
    request_body = AppendRequest,
    responses(
        (status = 201, description = "Stored", body = AppendResponse),
        (status = 200, description = "Already stored by an earlier attempt", body = AppendResponse),
        (status = 409, description = "The aggregate is not at `expected_version`", body = Problem, content_type = "application/problem+json"),
        (status = "default", description = "A problem", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn append(
    State(hub): State<Hub>,
    Auth(principal): Auth,
    ApiPath(path): ApiPath<AggregatePath>,
    ApiJson(request): ApiJson<AppendRequest>,
) -> ApiResult<(StatusCode, Json<AppendResponse>)> {
    principal.require(Scope::Write)?;
    let aggregate = aggregate_key(&path.aggregate_type, &path.aggregate_id)?;
    hub.check_writable(aggregate.aggregate_type())?;
    let events = new_events(request.events)?;
    let expected = request.expected_version.map_or(ExpectedVersion::Any, ExpectedVersion::Exact);
    let appended = hub.store().append_as(&aggregate, expected, events, Some(&principal.caller())).await?;
    let status = if appended.already_stored { StatusCode::OK } else { StatusCode::CREATED };
    Ok((status, Json(appended_view(&appended))))
}

/// The store's events from a request's.
pub(crate) fn new_events(bodies: Vec<NewEventBody>) -> Result<Vec<NewEvent>, Problem> {
    if bodies.is_empty() {
        return Err(Problem::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_event", "`events` is empty"));
    }
    if bodies.len() > cim_store::MAX_BATCH_EVENTS {
        return Err(Problem::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("at most {} events can be appended at once", cim_store::MAX_BATCH_EVENTS),
        ));
    }
    bodies
        .into_iter()
        .enumerate()
        .map(|(index, body)| {
            let payload = cim_cid::ipld_from_json(&body.payload)
                .map_err(|e| Problem::bad_request(format!("events[{index}].payload is not DAG-JSON: {e}")))?;
            let parents = body
                .parents
                .iter()
                .map(|p| parse_cid(&format!("events[{index}].parents"), p))
                .collect::<Result<Vec<_>, _>>()?;
            let mut event = NewEvent::new(body.event_type, payload)
                .with_parents(parents)
                .with_schema_version(body.schema_version.unwrap_or(1));
            if let Some(micros) = body.timestamp_us {
                event = event.with_timestamp(Timestamp::from_unix_micros(micros));
            }
            Ok(event)
        })
        .collect()
}

pub(crate) fn appended_view(appended: &cim_store::Appended) -> AppendResponse {
    AppendResponse {
        events: appended
            .events
            .iter()
            .map(|e| AppendedView { cid: e.cid.to_string(), version: e.version, seq: e.seq })
            .collect(),
        already_stored: appended.already_stored,
    }
}

/// Reads an aggregate's events in version order, each verified against its CID.
#[utoipa::path(
    get,
    path = "/v1/aggregates/{aggregate_type}/{aggregate_id}/events",
    tag = "events",
    params(AggregatePath, ReadParams),
    responses(
        (status = 200, description = "The events", body = AggregateEvents),
        (status = "default", description = "A problem", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn read(
    State(hub): State<Hub>,
    Auth(principal): Auth,
    ApiPath(path): ApiPath<AggregatePath>,
    ApiQuery(params): ApiQuery<ReadParams>,
) -> ApiResult<Json<AggregateEvents>> {
    principal.require(Scope::Read)?;
    let aggregate = aggregate_key(&path.aggregate_type, &path.aggregate_id)?;
    let as_of = params
        .as_of
        .as_deref()
        .map(Timestamp::parse_rfc3339)
        .transpose()
        .map_err(|e| Problem::bad_request(format!("as_of: {e}")))?;
    let max = hub.settings().max_page_events;
    let limit = params.limit.unwrap_or(max).clamp(1, max);
    let query = AggregateQuery { from_version: params.from_version.unwrap_or(1), to_version: params.to_version, as_of };
    let events: Vec<_> = hub.store().aggregate_events(&aggregate, query).await?.take(limit + 1).try_collect().await?;
    let next_version = (events.len() > limit).then(|| events[limit].version());
    Ok(Json(AggregateEvents {
        aggregate_type: path.aggregate_type,
        aggregate_id: path.aggregate_id,
        events: events.iter().take(limit).map(EventView::of).collect(),
        next_version,
    }))
}

/// What a verification found.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct VerifyView {
    /// True when nothing is wrong.
    pub ok: bool,
    /// Events that passed every check.
    pub verified: u64,
    /// Aggregates seen.
    pub aggregates: u64,
    /// Everything wrong.
    pub problems: Vec<String>,
}

impl VerifyView {
    fn of(report: &cim_store::VerifyReport) -> Self {
        Self {
            ok: report.is_ok(),
            verified: report.verified,
            aggregates: report.aggregates,
            problems: report.problems.iter().map(ToString::to_string).collect(),
        }
    }
}

/// Verifies an aggregate: every event against its CID, the chain, the parents.
#[utoipa::path(
    get,
    path = "/v1/aggregates/{aggregate_type}/{aggregate_id}/verify",
    tag = "events",
    params(AggregatePath),
    responses(
        (status = 200, description = "The report", body = VerifyView),
        (status = "default", description = "A problem", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn verify_aggregate(
    State(hub): State<Hub>,
    Auth(principal): Auth,
    ApiPath(path): ApiPath<AggregatePath>,
) -> ApiResult<Json<VerifyView>> {
    principal.require(Scope::Read)?;
    let aggregate = aggregate_key(&path.aggregate_type, &path.aggregate_id)?;
    Ok(Json(VerifyView::of(&hub.store().verify_aggregate(&aggregate).await?)))
}

/// Verifies the whole store (admin): every event, every chain, every link.
#[utoipa::path(
    post,
    path = "/v1/verify",
    tag = "events",
    responses(
        (status = 200, description = "The report", body = VerifyView),
        (status = "default", description = "A problem", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn verify_store(State(hub): State<Hub>, Auth(principal): Auth) -> ApiResult<Json<VerifyView>> {
    principal.require(Scope::Admin)?;
    Ok(Json(VerifyView::of(&hub.store().verify(|_, _| {}).await?)))
}

/// Which aggregates to list.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AggregatesParams {
    /// The aggregate type.
    #[serde(rename = "type")]
    #[param(rename = "type")]
    pub aggregate_type: String,
}

/// One aggregate and its number of events.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AggregateSummary {
    /// Its id.
    pub aggregate_id: String,
    /// Its events.
    pub events: u64,
}

/// The aggregates of one type.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AggregateList {
    /// The type.
    pub aggregate_type: String,
    /// By id.
    pub aggregates: Vec<AggregateSummary>,
}

/// Lists the aggregates of one type with their number of events.
#[utoipa::path(
    get,
    path = "/v1/aggregates",
    tag = "events",
    params(AggregatesParams),
    responses(
        (status = 200, description = "The aggregates", body = AggregateList),
        (status = "default", description = "A problem", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn list_aggregates(
    State(hub): State<Hub>,
    Auth(principal): Auth,
    ApiQuery(params): ApiQuery<AggregatesParams>,
) -> ApiResult<Json<AggregateList>> {
    principal.require(Scope::Read)?;
    cim_cid::validate_aggregate_type(&params.aggregate_type)
        .map_err(|e| Problem::new(StatusCode::BAD_REQUEST, "invalid_name", e.to_string()))?;
    let aggregates = hub.store().aggregates(&params.aggregate_type).await?;
    Ok(Json(AggregateList {
        aggregate_type: params.aggregate_type,
        aggregates: aggregates
            .into_iter()
            .map(|(key, events)| AggregateSummary { aggregate_id: key.aggregate_id().to_owned(), events })
            .collect(),
    }))
}

/// Shows one event by CID, verified, with who appended it when recorded.
#[utoipa::path(
    get,
    path = "/v1/events/{cid}",
    tag = "events",
    params(("cid" = String, Path, description = "The event's CID")),
    responses(
        (status = 200, description = "The event", body = EventView),
        (status = 404, description = "No such event", body = Problem, content_type = "application/problem+json"),
        (status = "default", description = "A problem", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn show(
    State(hub): State<Hub>,
    Auth(principal): Auth,
    ApiPath(cid): ApiPath<String>,
) -> ApiResult<Json<EventView>> {
    principal.require(Scope::Read)?;
    Ok(Json(show_event(&hub, &cid).await?))
}

/// One event by CID, with its caller.
pub(crate) async fn show_event(hub: &Hub, cid: &str) -> Result<EventView, Problem> {
    let cid = parse_cid("cid", cid)?;
    let stored = match hub.store().event(&cid).await {
        // Appended a moment ago, perhaps by another writer: the DAG that
        // places events may not have it yet.
        Err(cim_store::Error::EventNotFound(_)) => {
            hub.store().dag().await?.catch_up().await?;
            hub.store().event(&cid).await?
        }
        other => other?,
    };
    let mut view = EventView::of(&stored);
    view.caller = hub.store().caller_at(stored.seq).await?;
    Ok(view)
}

/// Where to read the log from.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct LogParams {
    /// Events after this stream sequence (default 0: from the first).
    pub after: Option<u64>,
    /// At most this many (default and maximum: `[hub] max_page_events`).
    pub limit: Option<usize>,
}

/// A page of the log.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct LogPage {
    /// In stream order.
    pub events: Vec<EventView>,
    /// The `after` of the next page, when there may be more.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_after: Option<u64>,
}

/// Reads every aggregate's events in stream order (a topological order of the DAG).
#[utoipa::path(
    get,
    path = "/v1/events",
    tag = "events",
    params(LogParams),
    responses(
        (status = 200, description = "A page of the log", body = LogPage),
        (status = "default", description = "A problem", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn log(
    State(hub): State<Hub>,
    Auth(principal): Auth,
    ApiQuery(params): ApiQuery<LogParams>,
) -> ApiResult<Json<LogPage>> {
    principal.require(Scope::Read)?;
    let max = hub.settings().max_page_events;
    let limit = params.limit.unwrap_or(max).clamp(1, max);
    let after = params.after.unwrap_or(0);
    let last = hub.store().log_state().await?.last_seq;
    if after >= last {
        return Ok(Json(LogPage { events: Vec::new(), next_after: None }));
    }
    let start = StartAt::Sequence(after.saturating_add(1));
    let end = last.min(after.saturating_add(limit as u64));
    let events: Vec<_> = hub.store().read_log_until(start, end).await?.try_collect().await?;
    let next_after = (end < last).then_some(end);
    Ok(Json(LogPage { events: events.iter().map(EventView::of).collect(), next_after }))
}
