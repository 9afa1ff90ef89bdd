//! Remote stages: found by capability in the registry, called with a
//! timeout; a stage that times out or answers garbage fails only that input.

use std::time::Duration;

use cim_pipeline_api::ListDeadLetters;
use cim_pipeline_api::stage::{StageReply, StageRequest};
use cim_registry_api::{REGISTER, Registration, SchemaUse};
use futures::StreamExt;

use crate::demo::services;
use crate::support::{Engines, TIMEOUT, events_of_type, wait_until};

#[tokio::test(flavor = "multi_thread")]
async fn remote_stages_are_called_and_their_failures_dead_lettered() {
    let engines = Engines::start(1, "").await;
    let _services = services(&engines).await;
    // A component serving stage `upper`.
    let subject = "cim.service.fake.pipeline.stage.upper";
    let mut requests = engines.client.subscribe(subject).await.expect("subscribe");
    let server = engines.client.clone();
    tokio::spawn(async move {
        while let Some(message) = requests.next().await {
            let request: StageRequest = serde_json::from_slice(&message.payload).expect("a stage request");
            let reply = message.reply.clone().expect("a reply subject");
            let mode = request.value["payload"]["mode"].as_str().unwrap_or_default().to_owned();
            let server = server.clone();
            tokio::spawn(async move {
                let body = match mode.as_str() {
                    "garbage" => b"this is not json".to_vec(),
                    "slow" => {
                        tokio::time::sleep(Duration::from_secs(3)).await;
                        b"{\"values\": []}".to_vec()
                    }
                    _ => {
                        let text = request.value["payload"]["text"].as_str().unwrap_or_default().to_uppercase();
                        serde_json::to_vec(&StageReply {
                            values: vec![serde_json::json!({"upper": text, "by": request.options["by"]})],
                        })
                        .expect("json")
                    }
                };
                server.publish(reply, body.into()).await.expect("reply");
            });
        }
    });
    let caller = cim_wire::Caller::new(engines.client.clone(), TIMEOUT);
    let registration = Registration {
        name: "fake".into(),
        version: "0.1.0".into(),
        instance_id: "f1".into(),
        service_id: "f1".into(),
        description: "serves stage upper".into(),
        subjects: vec![subject.into()],
        capabilities: vec!["pipeline.stage.upper".into()],
        schemas: SchemaUse::default(),
        http: None,
        started_at: "2026-01-01T00:00:00Z".into(),
        heartbeat_secs: 5,
    };
    caller.call_for(&REGISTER, "fake", &registration).await.expect("register");

    engines
        .put(
            r#"
name = "shout"
[trigger]
aggregate_types = ["note"]
[[stages]]
name = "upper"
type = "remote"
stage = "upper"
timeout_ms = 500
with = { by = "test" }
[[sinks]]
type = "append"
aggregate_type = "derived"
event_type = "Shouted"
"#,
        )
        .await;
    for (id, payload) in [
        ("a", serde_json::json!({"text": "hello"})),
        ("b", serde_json::json!({"mode": "garbage"})),
        ("c", serde_json::json!({"mode": "slow"})),
        ("d", serde_json::json!({"text": "world"})),
    ] {
        let key = cim_cid::AggregateKey::new("note", id).expect("key");
        let event = cim_cid::NewEvent::new("Written", cim_cid::ipld_from_json(&payload).expect("payload"));
        engines.store.append(&key, cim_store::ExpectedVersion::Exact(0), vec![event]).await.expect("append");
    }
    let client = engines.client();
    wait_until(
        Duration::from_secs(120),
        "2 outputs and 2 dead letters",
        || engines.logs(),
        || async {
            let outputs = events_of_type(&engines.store, "derived").await.len();
            let letters = client.dead_letters(&ListDeadLetters::default()).await.expect("list").dead_letters.len();
            outputs == 2 && letters == 2
        },
    )
    .await;
    let outputs = events_of_type(&engines.store, "derived").await;
    let uppers: Vec<serde_json::Value> =
        outputs.iter().map(|e| cim_cid::ipld_to_json(e.event.envelope.payload()).expect("json")).collect();
    assert!(uppers.contains(&serde_json::json!({"upper": "HELLO", "by": "test"})), "{uppers:?}");
    assert!(uppers.contains(&serde_json::json!({"upper": "WORLD", "by": "test"})), "{uppers:?}");
    let letters = client.dead_letters(&ListDeadLetters::default()).await.expect("list").dead_letters;
    let reasons: Vec<&str> = letters.iter().map(|l| l.reason.as_str()).collect();
    assert!(reasons.iter().any(|r| r.contains("not a stage reply")), "{reasons:?}");
    assert!(reasons.iter().any(|r| r.contains("did not answer within")), "{reasons:?}");
}
