//! Inbound webhooks: a POST signed with an endpoint's secret (Standard
//! Webhooks) becomes an event of the endpoint's aggregate, once: stale
//! timestamps, bad signatures and replayed `webhook-id`s are refused.

use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use bytes::Bytes;
use cim_store::{ExpectedVersion, NewEvent, Timestamp};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::events::{AppendResponse, appended_view};
use super::{ApiBytes, ApiPath, ApiResult, Json};
use crate::hub::Hub;
use crate::metrics::HubMetrics;
use crate::problem::Problem;
use crate::records::{INBOUND_PREFIX, InboundRecord, SEEN_PREFIX, valid_id};
use crate::signing::{self, Refusal};

fn refuse(hub: &Hub, outcome: &str, problem: Problem) -> Problem {
    HubMetrics::count(&hub.metrics().inbound, outcome);
    problem
}

/// Receives a signed webhook and appends it as an event of
/// `<aggregate_type>/<id>`: payload `{"webhook_id", "body"}`, event type the
/// body's `type` when it is a valid one, time the `webhook-timestamp`.
#[utoipa::path(
    post,
    path = "/v1/hooks/{id}",
    tag = "webhooks",
    params(
        ("id" = String, Path, description = "The inbound endpoint"),
        ("webhook-id" = String, Header, description = "The delivery's id: a second delivery with the same id is refused"),
        ("webhook-timestamp" = String, Header, description = "Unix seconds, within `[hub] inbound_tolerance_secs` of now"),
        ("webhook-signature" = String, Header, description = "`v1,<base64 HMAC-SHA256>` (space-separated list)"),
    ),
    request_body(content = Object, description = "A JSON body, e.g. `{type, timestamp, data}`"),
    responses(
        (status = 201, description = "Stored as an event", body = AppendResponse),
        (status = 401, description = "Bad signature or stale timestamp", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "This webhook-id was received already", body = Problem, content_type = "application/problem+json"),
        (status = "default", description = "A problem", body = Problem, content_type = "application/problem+json"),
    )
)]
pub async fn receive(
    State(hub): State<Hub>,
    ApiPath(id): ApiPath<String>,
    headers: HeaderMap,
    ApiBytes(body): ApiBytes,
) -> ApiResult<(StatusCode, Json<AppendResponse>)> {
    let unknown = || Problem::new(StatusCode::NOT_FOUND, "unknown_inbound", format!("no inbound endpoint {id:?}"));
    if !valid_id(&id) {
        return Err(refuse(&hub, "unknown", unknown()));
    }
    let record: InboundRecord =
        hub.kv().get_json(&format!("{INBOUND_PREFIX}{id}")).await?.ok_or_else(|| refuse(&hub, "unknown", unknown()))?;
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let (webhook_id, timestamp, signature) =
        (header(signing::ID), header(signing::TIMESTAMP), header(signing::SIGNATURE));
    if webhook_id.is_empty() || timestamp.is_empty() || signature.is_empty() {
        return Err(refuse(
            &hub,
            "unsigned",
            Problem::new(
                StatusCode::UNAUTHORIZED,
                "bad_signature",
                "webhook-id, webhook-timestamp and webhook-signature are required",
            ),
        ));
    }
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let tolerance = hub.settings().inbound_tolerance_secs;
    let sent_at = signing::verify(&record.secret, &webhook_id, &timestamp, &signature, &body, now, tolerance).map_err(
        |refusal| match refusal {
            Refusal::Stale { .. } => {
                refuse(&hub, "stale", Problem::new(StatusCode::UNAUTHORIZED, "stale_timestamp", refusal.to_string()))
            }
            Refusal::BadSignature => refuse(
                &hub,
                "bad_signature",
                Problem::new(StatusCode::UNAUTHORIZED, "bad_signature", refusal.to_string()),
            ),
            Refusal::Malformed(reason) => {
                refuse(&hub, "malformed", Problem::new(StatusCode::BAD_REQUEST, "bad_request", reason))
            }
        },
    )?;
    let json: Value = serde_json::from_slice(&body)
        .map_err(|e| refuse(&hub, "not_json", Problem::bad_request(format!("the body is not JSON: {e}"))))?;
    let aggregate = super::aggregate_key(&record.info.aggregate_type, &id)?;
    hub.check_writable(aggregate.aggregate_type())?;
    // Replay protection: the id is remembered for twice the tolerance, so a
    // copy arriving later is stale anyway.
    let digest: String = Sha256::digest(webhook_id.as_bytes()).iter().map(|b| format!("{b:02x}")).collect();
    let seen = format!("{SEEN_PREFIX}{id}.{digest}");
    let ttl = Duration::from_secs(2 * tolerance);
    match hub.kv().inner().create_with_ttl(seen.as_str(), Bytes::from(webhook_id.clone()), ttl).await {
        Ok(_) => {}
        Err(e) if e.kind() == async_nats::jetstream::kv::CreateErrorKind::AlreadyExists => {
            return Err(refuse(
                &hub,
                "replayed",
                Problem::new(
                    StatusCode::CONFLICT,
                    "replayed",
                    format!("webhook-id {webhook_id:?} was received already"),
                )
                .with_details(serde_json::json!({ "webhook_id": webhook_id })),
            ));
        }
        Err(e) => return Err(Problem::unavailable(format!("recording the delivery id: {e}"))),
    }
    let event_type = json
        .get("type")
        .and_then(Value::as_str)
        .filter(|t| cim_cid::validate_event_type(t).is_ok())
        .unwrap_or(&record.info.event_type)
        .to_owned();
    let payload = serde_json::json!({ "webhook_id": webhook_id, "body": json });
    let payload = cim_cid::ipld_from_json(&payload)
        .map_err(|e| Problem::bad_request(format!("the body is not DAG-JSON: {e}")))?;
    let event = NewEvent::new(event_type, payload)
        .with_timestamp(Timestamp::from_unix_micros(sent_at.saturating_mul(1_000_000)));
    let caller = format!("hub:inbound:{id}");
    match hub.store().append_as(&aggregate, ExpectedVersion::Any, vec![event], Some(&caller)).await {
        Ok(appended) => {
            HubMetrics::count(&hub.metrics().inbound, "stored");
            Ok((StatusCode::CREATED, Json(appended_view(&appended))))
        }
        Err(error) => {
            // Not stored: let the sender's retry through.
            let _ = hub.kv().delete(&seen).await;
            Err(error.into())
        }
    }
}
