//! The hub's request API on NATS (`cim-hub-api`): tokens, webhook
//! subscriptions, inbound endpoints and the delivery log — what `cim hub …`
//! uses.

use bytes::Bytes;
use cim_hub_api::{
    CreateInbound, CreateSubscription, CreateToken, CreatedInbound, CreatedSubscription, CreatedToken, DELIVERIES,
    Deleted, Deliveries, DeliveryQuery, HubCode, INBOUND_CREATE, INBOUND_DELETE, INBOUND_LIST, InboundInfo,
    InboundList, InboundRef, SERVICE, SubscriptionInfo, SubscriptionList, SubscriptionRef, SubscriptionStatus,
    TOKEN_CREATE, TOKEN_LIST, TOKEN_REVOKE, TokenInfo, TokenList, TokenRef, WEBHOOK_CREATE, WEBHOOK_DELETE,
    WEBHOOK_LIST, WEBHOOK_RESUME,
};
use cim_runtime::ServiceDefinition;
use cim_wire::{ApiError, Empty};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::auth::{TOKEN_PREFIX, TokenRecord};
use crate::hub::Hub;
use crate::records::{
    CURSOR_PREFIX, Cursor, INBOUND_PREFIX, InboundRecord, SubscriptionRecord, WEBHOOK_PREFIX, now_rfc3339, valid_id,
};

type Result<T> = std::result::Result<T, ApiError<HubCode>>;

fn unavailable(error: impl std::fmt::Display) -> ApiError<HubCode> {
    ApiError::unavailable(error.to_string())
}

fn invalid(field: &str, message: impl Into<String>) -> ApiError<HubCode> {
    ApiError::api(HubCode::InvalidInput, message).with_details(serde_json::json!({ "field": field }))
}

async fn get_json<T: DeserializeOwned>(hub: &Hub, key: &str) -> Result<Option<T>> {
    hub.kv().get_json(key).await.map_err(unavailable)
}

async fn put_json<T: Serialize>(hub: &Hub, key: &str, value: &T) -> Result<u64> {
    hub.kv().put_json(key, value).await.map_err(unavailable)
}

/// Every value under `prefix`, in key order.
async fn all<T: DeserializeOwned>(hub: &Hub, prefix: &str) -> Result<Vec<T>> {
    let mut keys: Vec<String> = hub.kv().keys().await.map_err(unavailable)?;
    keys.retain(|k| k.starts_with(prefix));
    keys.sort();
    let mut values = Vec::new();
    for key in keys {
        if let Some(value) = get_json(hub, &key).await? {
            values.push(value);
        }
    }
    Ok(values)
}

/// The service definition: the endpoints of `cim-hub-api`.
pub fn definition(hub: &Hub) -> ServiceDefinition {
    let h = hub.clone();
    let definition = ServiceDefinition::of(SERVICE, env!("CARGO_PKG_VERSION"))
        .description("CIM Integration Hub: HTTP API, webhooks, live feed, MCP")
        .capability("hub.http")
        .capability("hub.webhooks")
        .capability("hub.mcp")
        .handle(&TOKEN_CREATE, move |request| create_token(h.clone(), request));
    let h = hub.clone();
    let definition = definition.handle(&TOKEN_LIST, move |_: Empty| list_tokens(h.clone()));
    let h = hub.clone();
    let definition = definition.handle(&TOKEN_REVOKE, move |request| revoke_token(h.clone(), request));
    let h = hub.clone();
    let definition = definition.handle(&WEBHOOK_CREATE, move |request| create_subscription(h.clone(), request));
    let h = hub.clone();
    let definition = definition.handle(&WEBHOOK_LIST, move |_: Empty| list_subscriptions(h.clone()));
    let h = hub.clone();
    let definition = definition.handle(&WEBHOOK_DELETE, move |request| delete_subscription(h.clone(), request));
    let h = hub.clone();
    let definition = definition.handle(&WEBHOOK_RESUME, move |request| resume_subscription(h.clone(), request));
    let h = hub.clone();
    let definition = definition.handle(&DELIVERIES, move |request| deliveries(h.clone(), request));
    let h = hub.clone();
    let definition = definition.handle(&INBOUND_CREATE, move |request| create_inbound(h.clone(), request));
    let h = hub.clone();
    let definition = definition.handle(&INBOUND_LIST, move |_: Empty| list_inbound(h.clone()));
    let h = hub.clone();
    definition.handle(&INBOUND_DELETE, move |request| delete_inbound(h.clone(), request))
}

async fn create_token(hub: Hub, request: CreateToken) -> Result<CreatedToken> {
    let name = request.name.trim();
    if name.is_empty()
        || name.len() > 64
        || !name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b' ' | b'_' | b'-' | b'.' | b'@'))
    {
        return Err(invalid("name", "a token's name is 1-64 of A-Z a-z 0-9 space _ - . @"));
    }
    let settings = hub.settings();
    let rate_per_sec = request.rate_per_sec.unwrap_or(settings.rate_per_sec);
    let burst = request.burst.unwrap_or(settings.burst);
    if rate_per_sec == 0 || burst == 0 {
        return Err(invalid("rate_per_sec", "rate_per_sec and burst must be at least 1"));
    }
    let (id, token, secret_sha256) = crate::auth::generate();
    let info = TokenInfo {
        id: id.clone(),
        name: name.to_owned(),
        scope: request.scope,
        rate_per_sec,
        burst,
        created_at: now_rfc3339(),
    };
    let record = TokenRecord { info: info.clone(), secret_sha256 };
    let revision = put_json(&hub, &format!("{TOKEN_PREFIX}{id}"), &record).await?;
    hub.tokens().observe(&id, revision, Some(record));
    Ok(CreatedToken { info, token })
}

async fn list_tokens(hub: Hub) -> Result<TokenList> {
    let records: Vec<TokenRecord> = all(&hub, TOKEN_PREFIX).await?;
    Ok(TokenList { tokens: records.into_iter().map(|r| r.info).collect() })
}

async fn revoke_token(hub: Hub, request: TokenRef) -> Result<Deleted> {
    let key = format!("{TOKEN_PREFIX}{}", request.id);
    if crate::auth::parse(&format!("cimhub_{}_x", request.id)).is_none()
        || get_json::<TokenRecord>(&hub, &key).await?.is_none()
    {
        return Err(ApiError::api(HubCode::UnknownToken, format!("no token {:?}", request.id))
            .with_details(serde_json::json!({ "id": request.id })));
    }
    hub.kv().delete(&key).await.map_err(unavailable)?;
    Ok(Deleted { deleted: true })
}

fn check_url(url: &str) -> Result<()> {
    let parsed = reqwest::Url::parse(url).map_err(|e| invalid("url", format!("{url:?} is not a URL: {e}")))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host().is_none() {
        return Err(invalid("url", "the URL must be http:// or https:// with a host"));
    }
    Ok(())
}

async fn create_subscription(hub: Hub, request: CreateSubscription) -> Result<CreatedSubscription> {
    check_url(&request.url)?;
    crate::http::feed::check_filter(&request.filter).map_err(|p| invalid("filter", p.detail))?;
    let after = match request.after_seq {
        Some(after) => after,
        None => hub.store().log_state().await.map_err(unavailable)?.last_seq,
    };
    let id: String = format!("wh-{}", nuid::next().to_string().to_lowercase());
    let secret = crate::signing::new_secret();
    let record = SubscriptionRecord {
        id: id.clone(),
        url: request.url,
        filter: request.filter,
        description: request.description,
        created_at: now_rfc3339(),
        status: SubscriptionStatus::Active,
        paused_reason: None,
        secret: secret.clone(),
    };
    let cursor = Cursor { delivered_seq: after, consecutive_dead: 0 };
    put_json(&hub, &format!("{CURSOR_PREFIX}{id}"), &cursor).await?;
    put_json(&hub, &format!("{WEBHOOK_PREFIX}{id}"), &record).await?;
    Ok(CreatedSubscription { info: record.info(cursor), secret })
}

async fn cursor_of(hub: &Hub, id: &str) -> Result<Cursor> {
    Ok(get_json(hub, &format!("{CURSOR_PREFIX}{id}")).await?.unwrap_or_default())
}

async fn list_subscriptions(hub: Hub) -> Result<SubscriptionList> {
    let records: Vec<SubscriptionRecord> = all(&hub, WEBHOOK_PREFIX).await?;
    let mut subscriptions = Vec::new();
    for record in records {
        let cursor = cursor_of(&hub, &record.id).await?;
        subscriptions.push(record.info(cursor));
    }
    Ok(SubscriptionList { subscriptions })
}

fn unknown_subscription(id: &str) -> ApiError<HubCode> {
    ApiError::api(HubCode::UnknownSubscription, format!("no webhook subscription {id:?}"))
        .with_details(serde_json::json!({ "id": id }))
}

async fn subscription(hub: &Hub, id: &str) -> Result<(SubscriptionRecord, u64)> {
    if !valid_id(id) {
        return Err(unknown_subscription(id));
    }
    let entry = hub.kv().inner().entry(format!("{WEBHOOK_PREFIX}{id}")).await.map_err(unavailable)?;
    match entry {
        Some(entry) if entry.operation == async_nats::jetstream::kv::Operation::Put => {
            let record = serde_json::from_slice(&entry.value).map_err(|e| ApiError::internal(e.to_string()))?;
            Ok((record, entry.revision))
        }
        _ => Err(unknown_subscription(id)),
    }
}

async fn delete_subscription(hub: Hub, request: SubscriptionRef) -> Result<Deleted> {
    subscription(&hub, &request.id).await?;
    hub.kv().delete(&format!("{WEBHOOK_PREFIX}{}", request.id)).await.map_err(unavailable)?;
    hub.kv().delete(&format!("{CURSOR_PREFIX}{}", request.id)).await.map_err(unavailable)?;
    Ok(Deleted { deleted: true })
}

async fn resume_subscription(hub: Hub, request: SubscriptionRef) -> Result<SubscriptionInfo> {
    let (mut record, revision) = subscription(&hub, &request.id).await?;
    record.status = SubscriptionStatus::Active;
    record.paused_reason = None;
    let mut cursor = cursor_of(&hub, &record.id).await?;
    cursor.consecutive_dead = 0;
    put_json(&hub, &format!("{CURSOR_PREFIX}{}", record.id), &cursor).await?;
    let bytes = Bytes::from(serde_json::to_vec(&record).map_err(|e| ApiError::internal(e.to_string()))?);
    hub.kv()
        .inner()
        .update(format!("{WEBHOOK_PREFIX}{}", record.id), bytes, revision)
        .await
        .map_err(|e| ApiError::unavailable(format!("the subscription changed meanwhile; try again ({e})")))?;
    Ok(record.info(cursor))
}

async fn deliveries(hub: Hub, query: DeliveryQuery) -> Result<Deliveries> {
    let limit = query.limit.unwrap_or(100).clamp(1, 1000);
    let mut keys: Vec<String> = hub.log().keys().await.map_err(unavailable)?;
    if let Some(subscription) = &query.subscription {
        let prefix = format!("{subscription}.");
        keys.retain(|k| k.starts_with(&prefix));
    }
    // Keys sort by subscription, then sequence; newest first overall by the
    // time of the last attempt.
    let mut entries: Vec<cim_hub_api::DeliveryRecord> = Vec::new();
    for key in keys {
        if let Some(entry) = hub.log().get_json::<cim_hub_api::DeliveryRecord>(&key).await.map_err(unavailable)?
            && query.outcome.is_none_or(|o| o == entry.outcome)
        {
            entries.push(entry);
        }
    }
    entries.sort_by(|a, b| b.at.cmp(&a.at).then(b.seq.cmp(&a.seq)));
    entries.truncate(limit);
    Ok(Deliveries { deliveries: entries })
}

async fn create_inbound(hub: Hub, request: CreateInbound) -> Result<CreatedInbound> {
    if !valid_id(&request.id) {
        return Err(invalid("id", "an endpoint id is 1-64 of a-z 0-9 _ -"));
    }
    cim_cid::AggregateKey::new(&request.aggregate_type, &request.id)
        .map_err(|e| invalid("aggregate_type", e.to_string()))?;
    cim_cid::validate_event_type(&request.event_type).map_err(|e| invalid("event_type", e.to_string()))?;
    if hub.check_writable(&request.aggregate_type).is_err() {
        return Err(invalid("aggregate_type", format!("{:?} belongs to another component", request.aggregate_type)));
    }
    let secret = crate::signing::new_secret();
    let info = InboundInfo {
        id: request.id.clone(),
        aggregate_type: request.aggregate_type,
        event_type: request.event_type,
        description: request.description,
        path: format!("/v1/hooks/{}", request.id),
        created_at: now_rfc3339(),
    };
    let record = InboundRecord { info: info.clone(), secret: secret.clone() };
    let bytes = Bytes::from(serde_json::to_vec(&record).map_err(|e| ApiError::internal(e.to_string()))?);
    match hub.kv().inner().create(format!("{INBOUND_PREFIX}{}", request.id), bytes).await {
        Ok(_) => Ok(CreatedInbound { info, secret }),
        Err(e) if e.kind() == async_nats::jetstream::kv::CreateErrorKind::AlreadyExists => {
            Err(ApiError::api(HubCode::InboundExists, format!("inbound endpoint {:?} exists", request.id))
                .with_details(serde_json::json!({ "id": request.id })))
        }
        Err(e) => Err(unavailable(e)),
    }
}

async fn list_inbound(hub: Hub) -> Result<InboundList> {
    let records: Vec<InboundRecord> = all(&hub, INBOUND_PREFIX).await?;
    Ok(InboundList { endpoints: records.into_iter().map(|r| r.info).collect() })
}

async fn delete_inbound(hub: Hub, request: InboundRef) -> Result<Deleted> {
    let key = format!("{INBOUND_PREFIX}{}", request.id);
    if !valid_id(&request.id) || get_json::<InboundRecord>(&hub, &key).await?.is_none() {
        return Err(ApiError::api(HubCode::UnknownInbound, format!("no inbound endpoint {:?}", request.id))
            .with_details(serde_json::json!({ "id": request.id })));
    }
    hub.kv().delete(&key).await.map_err(unavailable)?;
    Ok(Deleted { deleted: true })
}
