//! The live feed: Server-Sent Events of stored events, filtered by
//! aggregate and event type, resumable with `Last-Event-ID` (the stream
//! sequence) with no gap and no duplicate — catch-up and live tail are one
//! ordered consumer from the sequence after it.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use cim_hub_api::{EventFilter, Scope};
use cim_store::StartAt;
use futures::{Stream, StreamExt};
use serde::Deserialize;
use utoipa::IntoParams;

use super::{ApiQuery, ApiResult};
use crate::auth::Auth;
use crate::hub::Hub;
use crate::problem::Problem;
use crate::views::EventView;

/// Which events, from where.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct FeedParams {
    /// Only this aggregate type.
    pub aggregate_type: Option<String>,
    /// Only this aggregate id (with `aggregate_type`).
    pub aggregate_id: Option<String>,
    /// Only this event type.
    pub event_type: Option<String>,
    /// Events after this stream sequence (0: from the first); without it
    /// (and without `Last-Event-ID`), only events stored from now on.
    pub after: Option<u64>,
}

/// Whether `view` passes `filter`.
pub fn matches(filter: &EventFilter, view: &EventView) -> bool {
    filter.aggregate_type.as_ref().is_none_or(|t| *t == view.aggregate_type)
        && filter.aggregate_id.as_ref().is_none_or(|i| *i == view.aggregate_id)
        && filter.event_type.as_ref().is_none_or(|t| *t == view.event_type)
}

/// Checks a filter's names.
pub fn check_filter(filter: &EventFilter) -> Result<(), Problem> {
    let invalid = |e: cim_cid::Error| Problem::new(axum::http::StatusCode::BAD_REQUEST, "invalid_name", e.to_string());
    if let Some(t) = &filter.aggregate_type {
        cim_cid::validate_aggregate_type(t).map_err(invalid)?;
    }
    if let Some(id) = &filter.aggregate_id {
        let Some(t) = &filter.aggregate_type else {
            return Err(Problem::bad_request("aggregate_id needs aggregate_type"));
        };
        cim_cid::AggregateKey::new(t, id).map_err(invalid)?;
    }
    if let Some(t) = &filter.event_type {
        cim_cid::validate_event_type(t).map_err(invalid)?;
    }
    Ok(())
}

/// Verified events from stream sequence `after + 1` on, live, filtered.
pub async fn events_after(
    hub: &Hub,
    filter: EventFilter,
    after: u64,
) -> Result<impl Stream<Item = cim_store::Result<EventView>> + Send + 'static, Problem> {
    let start = StartAt::Sequence(after.saturating_add(1));
    let events = match &filter.aggregate_type {
        Some(t) => hub.store().subscribe_type(t, start).await?,
        None => hub.store().subscribe(start).await?,
    };
    Ok(events.filter_map(move |item| {
        let out = match item {
            Ok(stored) => {
                let view = EventView::of(&stored);
                matches(&filter, &view).then_some(Ok(view))
            }
            Err(error) => Some(Err(error)),
        };
        futures::future::ready(out)
    }))
}

/// Counts an open feed until dropped.
struct Open(crate::hub::Hub);

impl Drop for Open {
    fn drop(&mut self) {
        self.0.metrics().feeds.dec();
    }
}

/// Streams events as they are stored (`text/event-stream`): each message's
/// `id` is the event's stream sequence and its `data` the event as JSON.
/// Reconnecting with `Last-Event-ID` resumes right after the last event
/// received: every event exactly once, in order.
#[utoipa::path(
    get,
    path = "/v1/feed",
    tag = "feed",
    params(
        FeedParams,
        ("Last-Event-ID" = Option<String>, Header, description = "Resume after this stream sequence (wins over `after`)"),
    ),
    responses(
        (status = 200, description = "Server-Sent Events: `id: <seq>`, `data: <event JSON>`", content_type = "text/event-stream", body = String),
        (status = "default", description = "A problem", body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn feed(
    State(hub): State<Hub>,
    Auth(principal): Auth,
    ApiQuery(params): ApiQuery<FeedParams>,
    headers: HeaderMap,
) -> ApiResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    principal.require(Scope::Read)?;
    let filter = EventFilter {
        aggregate_type: params.aggregate_type,
        aggregate_id: params.aggregate_id,
        event_type: params.event_type,
    };
    check_filter(&filter)?;
    let last_event_id = match headers.get("last-event-id") {
        None => None,
        Some(value) => Some(
            value
                .to_str()
                .ok()
                .and_then(|v| v.trim().parse::<u64>().ok())
                .ok_or_else(|| Problem::bad_request("Last-Event-ID must be a stream sequence (an integer)"))?,
        ),
    };
    let after = match last_event_id.or(params.after) {
        Some(after) => after,
        None => hub.store().log_state().await?.last_seq,
    };
    let events = events_after(&hub, filter, after).await?;
    hub.metrics().feeds.inc();
    let open = Open(hub.clone());
    let stream = events
        .map(move |item| {
            let _open = &open;
            let event = match item {
                Ok(view) => Event::default()
                    .id(view.seq.to_string())
                    .json_data(&view)
                    .unwrap_or_else(|_| Event::default().comment("unencodable event")),
                Err(error) => {
                    let problem = Problem::from_store(error);
                    Event::default().event("problem").json_data(&problem).unwrap_or_default()
                }
            };
            Ok(event)
        })
        .boxed();
    let keepalive = Duration::from_secs(hub.settings().feed_keepalive_secs);
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(keepalive)))
}
