//! Outbound webhooks: for every active subscription, the events after its
//! position (kept in the hub's KV bucket) are read from the event stream
//! and POSTed in order, signed (Standard Webhooks), retried with
//! exponential backoff; an event whose attempts all fail becomes a dead
//! letter, and a subscription with `webhook_pause_after` dead letters in a
//! row is paused. Every attempt is written to the delivery log.
//!
//! The backlog is JetStream's: the event stream itself plus each
//! subscription's position, so deliveries survive a hub restart (at least
//! once: a crash between a receiver's 2xx and the position's write sends
//! that event again, with the same `webhook-id`). One hub instance at a
//! time delivers: the holder of a lease in the KV bucket.
//!
//! Why not a durable JetStream consumer per subscription: acknowledging
//! needs publish rights on `$JS.ACK.<stream>.>`, and NATS permissions
//! cannot restrict that to the hub's own consumers (consumer names are not
//! subject prefixes), so the hub could acknowledge other components'
//! consumers of the event stream. A position in the hub's own bucket needs
//! no right beyond reading the stream.

use std::collections::HashMap;
use std::time::Duration;

use bytes::Bytes;
use cim_hub_api::{DeliveryOutcome, DeliveryRecord, EventFilter, SubscriptionStatus};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::hub::Hub;
use crate::metrics::HubMetrics;
use crate::records::{CURSOR_PREFIX, Cursor, LEASE_KEY, SubscriptionRecord, WEBHOOK_PREFIX, log_key, now_rfc3339};
use crate::views::EventView;

/// How long a lease lasts without renewal.
const LEASE: Duration = Duration::from_secs(10);
/// How often subscriptions and the lease are checked.
const TICK: Duration = Duration::from_secs(1);

/// The lease's value.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Lease {
    instance: String,
    until_ms: i64,
}

fn now_ms() -> i64 {
    (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

/// Takes or renews the lease; true while this instance holds it.
async fn hold_lease(hub: &Hub) -> bool {
    let store = hub.kv().inner();
    let mine = Lease { instance: hub.instance_id().to_owned(), until_ms: now_ms() + LEASE.as_millis() as i64 };
    let Ok(value) = serde_json::to_vec(&mine) else { return false };
    match store.entry(LEASE_KEY).await {
        Ok(Some(entry)) if entry.operation == async_nats::jetstream::kv::Operation::Put => {
            let current: Option<Lease> = serde_json::from_slice(&entry.value).ok();
            let free = current.is_none_or(|l| l.instance == mine.instance || l.until_ms < now_ms());
            free && store.update(LEASE_KEY, Bytes::from(value), entry.revision).await.is_ok()
        }
        Ok(Some(entry)) => store.update(LEASE_KEY, Bytes::from(value), entry.revision).await.is_ok(),
        Ok(None) => store.create(LEASE_KEY, Bytes::from(value)).await.is_ok(),
        Err(error) => {
            warn!(%error, "reading the dispatcher lease");
            false
        }
    }
}

/// One subscription's delivery task.
struct Running {
    revision: u64,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

/// Runs the dispatcher until `stop`.
pub async fn run(hub: Hub, stop: CancellationToken) {
    let mut running: HashMap<String, Running> = HashMap::new();
    let mut leading = false;
    loop {
        let lead = hold_lease(&hub).await;
        if lead != leading {
            info!(instance = hub.instance_id(), leading = lead, "outbound webhook dispatcher lease");
            leading = lead;
        }
        let wanted = if lead { active_subscriptions(&hub).await } else { Some(HashMap::new()) };
        if let Some(wanted) = wanted {
            running.retain(|id, run| {
                let keep =
                    wanted.get(id).is_some_and(|(_, revision)| *revision == run.revision) && !run.task.is_finished();
                if !keep {
                    run.stop.cancel();
                }
                keep
            });
            for (id, (record, revision)) in wanted {
                if running.contains_key(&id) {
                    continue;
                }
                let token = stop.child_token();
                let task = tokio::spawn(deliver(hub.clone(), record, revision, token.clone()));
                running.insert(id, Running { revision, stop: token, task });
            }
        }
        tokio::select! {
            () = stop.cancelled() => break,
            () = tokio::time::sleep(TICK) => {}
        }
    }
    for (_, run) in running {
        run.stop.cancel();
        let _ = run.task.await;
    }
    // Let another instance take over at once.
    let _ = hub.kv().delete(LEASE_KEY).await;
}

/// The active subscriptions with their record revisions; `None` when the
/// bucket cannot be read (keep what runs).
async fn active_subscriptions(hub: &Hub) -> Option<HashMap<String, (SubscriptionRecord, u64)>> {
    let keys = hub.kv().keys().await.ok()?;
    let mut active = HashMap::new();
    for key in keys.into_iter().filter(|k| k.starts_with(WEBHOOK_PREFIX)) {
        let entry = hub.kv().inner().entry(key.as_str()).await.ok()??;
        if entry.operation != async_nats::jetstream::kv::Operation::Put {
            continue;
        }
        let Ok(record) = serde_json::from_slice::<SubscriptionRecord>(&entry.value) else { continue };
        if record.status == SubscriptionStatus::Active {
            active.insert(record.id.clone(), (record, entry.revision));
        }
    }
    Some(active)
}

/// The wait before attempt `attempt + 1`: the base doubled per attempt,
/// capped, with ±20 % jitter.
pub fn backoff(base_ms: u64, max_ms: u64, attempt: u32) -> Duration {
    let exp = base_ms.saturating_mul(1u64 << (attempt.saturating_sub(1)).min(30)).min(max_ms);
    let jitter = u64::from(u16::from_le_bytes(crate::auth::random_bytes::<2>())) % 41; // 0..=40
    Duration::from_millis(exp * (80 + jitter) / 100)
}

/// The body POSTed for an event: `{type, timestamp, data}`.
#[derive(Debug, Serialize)]
struct Payload<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    timestamp: &'a str,
    data: &'a EventView,
}

async fn save_cursor(hub: &Hub, id: &str, cursor: Cursor) {
    if let Err(error) = hub.kv().put_json(&format!("{CURSOR_PREFIX}{id}"), &cursor).await {
        warn!(subscription = id, %error, "saving the delivery position");
    }
}

async fn log(hub: &Hub, record: &DeliveryRecord) {
    if let Err(error) = hub.log().put_json(&log_key(&record.subscription, record.seq), record).await {
        warn!(subscription = %record.subscription, %error, "writing the delivery log");
    }
}

/// What one POST came to.
enum Attempt {
    Delivered(u16),
    Failed(Option<u16>, String),
}

async fn post(hub: &Hub, record: &SubscriptionRecord, webhook_id: &str, body: &[u8]) -> Attempt {
    let timestamp = time::OffsetDateTime::now_utc().unix_timestamp();
    let signature = match crate::signing::sign(&record.secret, webhook_id, timestamp, body) {
        Ok(signature) => signature,
        Err(error) => return Attempt::Failed(None, error),
    };
    let sent = hub
        .http()
        .post(&record.url)
        .header("content-type", "application/json")
        .header(crate::signing::ID, webhook_id)
        .header(crate::signing::TIMESTAMP, timestamp.to_string())
        .header(crate::signing::SIGNATURE, signature)
        .body(body.to_vec())
        .send()
        .await;
    match sent {
        Ok(response) if response.status().is_success() => Attempt::Delivered(response.status().as_u16()),
        Ok(response) => {
            Attempt::Failed(Some(response.status().as_u16()), format!("the receiver answered {}", response.status()))
        }
        Err(error) => Attempt::Failed(None, error.to_string()),
    }
}

/// Delivers one subscription's events until stopped or paused.
async fn deliver(hub: Hub, record: SubscriptionRecord, revision: u64, stop: CancellationToken) {
    let settings = hub.settings().clone();
    let id = record.id.clone();
    let mut cursor: Cursor =
        hub.kv().get_json(&format!("{CURSOR_PREFIX}{id}")).await.ok().flatten().unwrap_or_default();
    let filter: EventFilter = record.filter.clone();
    let events = match crate::http::feed::events_after(&hub, filter, cursor.delivered_seq).await {
        Ok(events) => events,
        Err(problem) => {
            warn!(subscription = %id, detail = %problem.detail, "reading the events to deliver");
            return;
        }
    };
    let mut events = std::pin::pin!(events);
    info!(subscription = %id, after = cursor.delivered_seq, url = %record.url, "delivering");
    loop {
        let item = tokio::select! {
            () = stop.cancelled() => return,
            item = events.next() => item,
        };
        let view = match item {
            Some(Ok(view)) => view,
            Some(Err(error)) => {
                warn!(subscription = %id, %error, "reading the events to deliver; starting again");
                return;
            }
            None => return,
        };
        let webhook_id = format!("msg_{id}_{}", view.cid);
        let body =
            match serde_json::to_vec(&Payload { kind: &view.event_type, timestamp: &view.timestamp, data: &view }) {
                Ok(body) => body,
                Err(error) => {
                    warn!(subscription = %id, %error, "encoding a webhook body");
                    return;
                }
            };
        let mut entry = DeliveryRecord {
            subscription: id.clone(),
            webhook_id: webhook_id.clone(),
            seq: view.seq,
            event_cid: view.cid.clone(),
            event_type: view.event_type.clone(),
            attempts: 0,
            outcome: DeliveryOutcome::Retrying,
            http_status: None,
            error: None,
            at: now_rfc3339(),
        };
        loop {
            entry.attempts += 1;
            let attempt = post(&hub, &record, &webhook_id, &body).await;
            entry.at = now_rfc3339();
            match attempt {
                Attempt::Delivered(status) => {
                    entry.outcome = DeliveryOutcome::Delivered;
                    entry.http_status = Some(status);
                    entry.error = None;
                    HubMetrics::count(&hub.metrics().deliveries, "delivered");
                    cursor = Cursor { delivered_seq: view.seq, consecutive_dead: 0 };
                    save_cursor(&hub, &id, cursor).await;
                    log(&hub, &entry).await;
                    break;
                }
                Attempt::Failed(status, error) => {
                    entry.http_status = status;
                    entry.error = Some(error);
                    if entry.attempts >= settings.webhook_max_attempts {
                        entry.outcome = DeliveryOutcome::Dead;
                        HubMetrics::count(&hub.metrics().deliveries, "dead");
                        cursor = Cursor { delivered_seq: view.seq, consecutive_dead: cursor.consecutive_dead + 1 };
                        save_cursor(&hub, &id, cursor).await;
                        log(&hub, &entry).await;
                        warn!(subscription = %id, seq = view.seq, attempts = entry.attempts, "dead letter");
                        if cursor.consecutive_dead >= settings.webhook_pause_after {
                            pause(&hub, &record, revision, cursor.consecutive_dead).await;
                            return;
                        }
                        break;
                    }
                    HubMetrics::count(&hub.metrics().deliveries, "failed");
                    log(&hub, &entry).await;
                    let wait = backoff(settings.webhook_backoff_ms, settings.webhook_backoff_max_ms, entry.attempts);
                    tokio::select! {
                        () = stop.cancelled() => return,
                        () = tokio::time::sleep(wait) => {}
                    }
                }
            }
        }
    }
}

async fn pause(hub: &Hub, record: &SubscriptionRecord, revision: u64, dead: u32) {
    let mut paused = record.clone();
    paused.status = SubscriptionStatus::Paused;
    paused.paused_reason = Some(format!("{dead} dead letters in a row"));
    let Ok(bytes) = serde_json::to_vec(&paused) else { return };
    match hub.kv().inner().update(format!("{WEBHOOK_PREFIX}{}", record.id), Bytes::from(bytes), revision).await {
        Ok(_) => warn!(subscription = %record.id, dead, "paused"),
        Err(error) => warn!(subscription = %record.id, %error, "pausing (the subscription changed meanwhile)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap_with_jitter() {
        for _ in 0..50 {
            let first = backoff(1000, 60_000, 1).as_millis();
            assert!((800..=1200).contains(&first), "{first}");
            let third = backoff(1000, 60_000, 3).as_millis();
            assert!((3200..=4800).contains(&third), "{third}");
            let capped = backoff(1000, 60_000, 30).as_millis();
            assert!((48_000..=72_000).contains(&capped), "{capped}");
        }
    }
}
