//! Webhooks: outbound round trips verified with the reference
//! `standardwebhooks` library, through the receiver's downtime and a hub
//! restart (delivered once after it returns); dead letters and pausing;
//! inbound requests signed with the reference library, bad signatures,
//! stale timestamps and replays refused.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, StatusCode};
use cim_hub_api::{
    CreateInbound, CreateSubscription, DeliveryOutcome, DeliveryQuery, EventFilter, Scope, SubscriptionStatus,
};
use serde_json::json;

use crate::support::{Stack, json};

/// A webhook receiver on a fixed port that verifies every request with the
/// reference library; it can be taken down (its port closed) and back up.
struct Receiver {
    address: SocketAddr,
    secret: Arc<Mutex<String>>,
    /// Deliveries that verified: webhook-id -> bodies received with it.
    received: Arc<Mutex<BTreeMap<String, Vec<serde_json::Value>>>>,
    rejected: Arc<Mutex<u32>>,
    /// Answer every request with this status instead of 204.
    failing: Arc<Mutex<Option<u16>>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Receiver {
    async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut receiver = Self {
            address: listener.local_addr().unwrap(),
            secret: Arc::default(),
            received: Arc::default(),
            rejected: Arc::default(),
            failing: Arc::default(),
            task: None,
        };
        receiver.serve(listener);
        receiver
    }

    fn serve(&mut self, listener: tokio::net::TcpListener) {
        let (secret, received, rejected, failing) =
            (self.secret.clone(), self.received.clone(), self.rejected.clone(), self.failing.clone());
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |headers: HeaderMap, body: bytes::Bytes| {
                let (secret, received, rejected, failing) =
                    (secret.clone(), received.clone(), rejected.clone(), failing.clone());
                async move {
                    if let Some(status) = *failing.lock().unwrap() {
                        return StatusCode::from_u16(status).unwrap();
                    }
                    let webhook = standardwebhooks::Webhook::new(&secret.lock().unwrap()).unwrap();
                    if webhook.verify(&body, &headers).is_err() {
                        *rejected.lock().unwrap() += 1;
                        return StatusCode::UNAUTHORIZED;
                    }
                    let id = headers["webhook-id"].to_str().unwrap().to_owned();
                    received.lock().unwrap().entry(id).or_default().push(serde_json::from_slice(&body).unwrap());
                    StatusCode::NO_CONTENT
                }
            }),
        );
        self.task = Some(tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        }));
    }

    fn url(&self) -> String {
        format!("http://{}/hook", self.address)
    }

    /// Closes the port: connections are refused.
    async fn down(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
    }

    async fn up(&mut self) {
        let listener = tokio::net::TcpListener::bind(self.address).await.unwrap();
        self.serve(listener);
    }

    fn count(&self) -> usize {
        self.received.lock().unwrap().len()
    }

    async fn wait_for(&self, deliveries: usize, stack: &Stack) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.count() < deliveries {
            assert!(
                Instant::now() < deadline,
                "{} of {deliveries} deliveries; hub log:\n{}",
                self.count(),
                stack.hub.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

async fn append(stack: &Stack, token: &str, aggregate: &str, event_type: &str) {
    let body = json!({"events": [{"event_type": event_type, "payload": {"n": 1}}]});
    let response = stack
        .http
        .post(stack.url(&format!("/v1/aggregates/{aggregate}/events")))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    json(response, 201).await;
}

#[tokio::test]
async fn outbound_webhooks_survive_receiver_downtime_and_a_hub_restart_and_arrive_once() {
    // Enough attempts (at most 0.4 s apart) to outlast the downtime.
    let mut stack = Stack::start_with(false, "webhook_max_attempts = 100").await;
    let writer = stack.token(Scope::Write).await;
    let mut receiver = Receiver::start().await;
    let created = stack
        .client()
        .subscribe(&CreateSubscription {
            url: receiver.url(),
            filter: EventFilter { aggregate_type: Some("order".into()), ..EventFilter::default() },
            description: "test".into(),
            after_seq: None,
        })
        .await
        .unwrap();
    *receiver.secret.lock().unwrap() = created.secret.clone();
    assert!(created.secret.starts_with("whsec_"));

    append(&stack, &writer, "order/1", "Placed").await;
    append(&stack, &writer, "cart/1", "Ignored").await;
    receiver.wait_for(1, &stack).await;

    // The receiver goes away: the hub keeps retrying with backoff.
    receiver.down().await;
    for i in 2..=4 {
        append(&stack, &writer, &format!("order/{i}"), "Placed").await;
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let log = stack
            .client()
            .deliveries(&DeliveryQuery { outcome: Some(DeliveryOutcome::Retrying), ..Default::default() })
            .await
            .unwrap();
        if log.deliveries.iter().any(|d| d.attempts >= 2 && d.error.is_some()) {
            break;
        }
        assert!(Instant::now() < deadline, "no retry recorded; log:\n{}", stack.hub.log());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The hub dies meanwhile and starts again: the backlog is in JetStream.
    stack.hub.kill9();
    append_direct(&stack, "order/5").await;
    stack.restart_hub().await;
    receiver.up().await;
    receiver.wait_for(5, &stack).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let received = receiver.received.lock().unwrap().clone();
    assert_eq!(received.len(), 5, "five events for `order`: {received:?}");
    assert!(received.values().all(|bodies| bodies.len() == 1), "each delivered once: {received:?}");
    assert_eq!(*receiver.rejected.lock().unwrap(), 0, "every delivery verifies with the reference library");
    let mut ids: Vec<&str> = received.values().map(|b| b[0]["data"]["aggregate_id"].as_str().unwrap()).collect();
    ids.sort_unstable();
    assert_eq!(ids, ["1", "2", "3", "4", "5"]);
    let first = &received.values().next().unwrap()[0];
    assert_eq!(first["type"], "Placed");
    assert!(first["data"]["cid"].as_str().unwrap().starts_with("bafyrei"));

    let log = stack
        .client()
        .deliveries(&DeliveryQuery { subscription: Some(created.info.id.clone()), ..Default::default() })
        .await
        .unwrap();
    assert_eq!(log.deliveries.iter().filter(|d| d.outcome == DeliveryOutcome::Delivered).count(), 5);
    let listed = stack.client().subscriptions().await.unwrap().subscriptions;
    assert_eq!(listed[0].status, SubscriptionStatus::Active);
    assert!(!serde_json::to_string(&listed).unwrap().contains(&created.secret), "listings hold no secret");
}

/// Appends through the store directly (the hub is down).
async fn append_direct(stack: &Stack, aggregate: &str) {
    let store = cim_store::EventStore::open(stack.nats.clone(), cim_store::StoreConfig::default()).await.unwrap();
    let (t, id) = aggregate.split_once('/').unwrap();
    let key = cim_store::AggregateKey::new(t, id).unwrap();
    let event = cim_store::NewEvent::new("Placed", cim_store::Ipld::Null);
    store.append(&key, cim_store::ExpectedVersion::Any, vec![event]).await.unwrap();
}

#[tokio::test]
async fn failing_receivers_get_dead_letters_and_are_paused_then_resumed() {
    let stack = Stack::start().await;
    let writer = stack.token(Scope::Write).await;
    let receiver = Receiver::start().await;
    *receiver.failing.lock().unwrap() = Some(500);
    let created = stack
        .client()
        .subscribe(&CreateSubscription {
            url: receiver.url(),
            filter: EventFilter::default(),
            description: String::new(),
            after_seq: None,
        })
        .await
        .unwrap();
    *receiver.secret.lock().unwrap() = created.secret.clone();
    for i in 1..=3 {
        append(&stack, &writer, &format!("thing/{i}"), "Made").await;
    }
    // Four attempts each, then a dead letter; two dead letters pause it.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let subscription = stack.client().subscriptions().await.unwrap().subscriptions.remove(0);
        if subscription.status == SubscriptionStatus::Paused {
            assert_eq!(subscription.consecutive_dead, 2);
            assert!(subscription.paused_reason.unwrap().contains("dead letters"));
            break;
        }
        assert!(Instant::now() < deadline, "not paused; log:\n{}", stack.hub.log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let dead = stack
        .client()
        .deliveries(&DeliveryQuery { outcome: Some(DeliveryOutcome::Dead), ..Default::default() })
        .await
        .unwrap();
    assert_eq!(dead.deliveries.len(), 2);
    assert!(dead.deliveries.iter().all(|d| d.attempts == 4 && d.http_status == Some(500)));

    // Resumed, it delivers the rest; the dead letters stay dead.
    *receiver.failing.lock().unwrap() = None;
    stack.client().resume(&created.info.id).await.unwrap();
    receiver.wait_for(1, &stack).await;
    let received = receiver.received.lock().unwrap().clone();
    assert_eq!(received.len(), 1);
    assert_eq!(received.values().next().unwrap()[0]["data"]["aggregate_id"], "3");
    assert!(stack.client().resume("wh-nope").await.is_err());
}

#[tokio::test]
async fn inbound_webhooks_are_verified_deduplicated_and_stored() {
    let stack = Stack::start().await;
    let created = stack
        .client()
        .create_inbound(&CreateInbound {
            id: "github".into(),
            aggregate_type: "gh".into(),
            event_type: "Received".into(),
            description: String::new(),
        })
        .await
        .unwrap();
    assert_eq!(created.info.path, "/v1/hooks/github");
    let signer = standardwebhooks::Webhook::new(&created.secret).unwrap();
    let url = stack.url("/v1/hooks/github");
    let send = |id: &str, timestamp: i64, body: &str, signature: Option<String>| {
        let signature = signature.unwrap_or_else(|| signer.sign(id, timestamp, body.as_bytes()).unwrap());
        stack
            .http
            .post(&url)
            .header("content-type", "application/json")
            .header("webhook-id", id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(body.to_owned())
            .send()
    };
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let body = r#"{"type": "push", "data": {"ref": "main"}}"#;
    let stored = json(send("msg_1", now, body, None).await.unwrap(), 201).await;
    let cid = stored["events"][0]["cid"].as_str().unwrap().to_owned();

    let replay = json(send("msg_1", now, body, None).await.unwrap(), 409).await;
    assert_eq!(replay["code"], "replayed");
    let tampered = json(
        send(
            "msg_2",
            now,
            r#"{"type": "push", "data": {"ref": "evil"}}"#,
            Some(signer.sign("msg_2", now, body.as_bytes()).unwrap()),
        )
        .await
        .unwrap(),
        401,
    )
    .await;
    assert_eq!(tampered["code"], "bad_signature");
    let other = standardwebhooks::Webhook::new("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
    let wrong_key =
        json(send("msg_3", now, body, Some(other.sign("msg_3", now, body.as_bytes()).unwrap())).await.unwrap(), 401)
            .await;
    assert_eq!(wrong_key["code"], "bad_signature");
    let stale = json(send("msg_4", now - 3600, body, None).await.unwrap(), 401).await;
    assert_eq!(stale["code"], "stale_timestamp");
    let future = json(send("msg_5", now + 3600, body, None).await.unwrap(), 401).await;
    assert_eq!(future["code"], "stale_timestamp");
    let unsigned = stack.http.post(&url).body(body).send().await.unwrap();
    assert_eq!(json(unsigned, 401).await["code"], "bad_signature");
    let unknown = stack.http.post(stack.url("/v1/hooks/nope")).body(body).send().await.unwrap();
    assert_eq!(json(unknown, 404).await["code"], "unknown_inbound");
    let not_json = json(send("msg_6", now, "not json", None).await.unwrap(), 400).await;
    assert_eq!(not_json["code"], "bad_request");

    // Exactly one event: the first delivery, typed by the body's `type`.
    let reader = stack.token(Scope::Read).await;
    let events = json(
        stack.http.get(stack.url("/v1/aggregates/gh/github/events")).bearer_auth(&reader).send().await.unwrap(),
        200,
    )
    .await;
    let events = events["events"].as_array().unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["cid"], cid.as_str());
    assert_eq!(events[0]["event_type"], "push");
    assert_eq!(events[0]["payload"]["webhook_id"], "msg_1");
    assert_eq!(events[0]["payload"]["body"]["data"]["ref"], "main");
    assert_eq!(events[0]["timestamp_us"].as_i64(), Some(now * 1_000_000));
    let shown =
        json(stack.http.get(stack.url(&format!("/v1/events/{cid}"))).bearer_auth(&reader).send().await.unwrap(), 200)
            .await;
    assert_eq!(shown["caller"], "hub:inbound:github");
    assert!(
        stack
            .client()
            .create_inbound(&CreateInbound {
                id: "github".into(),
                aggregate_type: "gh".into(),
                event_type: "X".into(),
                description: String::new()
            })
            .await
            .is_err()
    );
    assert!(
        stack
            .client()
            .create_inbound(&CreateInbound {
                id: "u".into(),
                aggregate_type: "unit".into(),
                event_type: "X".into(),
                description: String::new()
            })
            .await
            .is_err()
    );
}
