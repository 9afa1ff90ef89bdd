//! A stage that fails on some inputs: each is retried, then dead-lettered
//! with its reason; the others flow on; after a fix, the dead letters are
//! replayed and produce their outputs, exactly once.

use std::time::Duration;

use cim_pipeline_api::{ListDeadLetters, ReplayDeadLetters};

use crate::support::{Engines, append_readings, events_of_type, outputs_by_input, wait_until};

const FRAGILE: &str = r#"
name = "fragile"
[trigger]
aggregate_types = ["reading"]
[[stages]]
name = "check"
type = "transform"
jq = 'if .payload.n % 10 == 3 then error("boom on \(.payload.n)") else {n: .payload.n} end'
[[sinks]]
type = "append"
aggregate_type = "derived"
event_type = "Checked"
"#;

#[tokio::test(flavor = "multi_thread")]
async fn failing_inputs_are_retried_dead_lettered_and_replayed_after_a_fix() {
    let engines = Engines::start(1, "").await;
    engines.put(FRAGILE).await;
    let inputs = append_readings(&engines.store, 0, 40).await;
    let failing: Vec<usize> = inputs.keys().copied().filter(|n| n % 10 == 3).collect();
    let client = engines.client();
    wait_until(
        Duration::from_secs(120),
        "4 dead letters and 36 outputs",
        || engines.logs(),
        || async {
            let letters = client.dead_letters(&ListDeadLetters::default()).await.expect("list");
            letters.dead_letters.len() == failing.len() && outputs_by_input(&engines.store).await.len() == 36
        },
    )
    .await;
    let letters =
        client.dead_letters(&ListDeadLetters { pipeline: Some("fragile".into()), limit: None }).await.expect("list");
    for letter in &letters.dead_letters {
        let n = inputs.iter().find(|(_, c)| c.to_string() == letter.input_cid).map(|(n, _)| *n).expect("an input");
        assert!(failing.contains(&n));
        assert_eq!(letter.attempts, 3, "{letter:?}");
        assert_eq!(letter.stage.as_deref(), Some("check"));
        assert!(letter.reason.contains(&format!("boom on {n}")), "{letter:?}");
    }
    // Each failing input was tried three times, each failure journaled.
    let status = client.status(Some("fragile")).await.expect("status");
    assert_eq!(status.pipelines[0].failures, 3 * failing.len() as u64, "{status:?}");
    assert_eq!(status.pipelines[0].dead_letters, failing.len() as u64);
    let runs = events_of_type(&engines.store, "pipeline-run").await;
    let count = |t: &str| runs.iter().filter(|e| e.event.envelope.event_type() == t).count();
    assert_eq!(
        (count("RunFailed"), count("RunDeadLettered"), count("RunCompleted")),
        (2 * failing.len(), failing.len(), 36)
    );

    // Replaying before the fix fails again and keeps them.
    let replayed = client.replay_dead_letters(&ReplayDeadLetters::default()).await.expect("replay");
    assert_eq!((replayed.replayed.len(), replayed.failed.len()), (0, failing.len()));

    // The fix: version 2 no longer fails.
    let put = engines.put(&FRAGILE.replace("error(\"boom on \\(.payload.n)\")", "{n: .payload.n, fixed: true}")).await;
    assert_eq!(put.version, 2);
    let replayed = client
        .replay_dead_letters(&ReplayDeadLetters { pipeline: Some("fragile".into()), ..Default::default() })
        .await
        .expect("replay");
    assert_eq!((replayed.replayed.len(), replayed.failed.len()), (failing.len(), 0), "{replayed:?}");
    assert!(client.dead_letters(&ListDeadLetters::default()).await.expect("list").dead_letters.is_empty());
    // Every input has exactly one output now; the replayed ones by version 2.
    let outputs = outputs_by_input(&engines.store).await;
    assert_eq!(outputs.len(), 40);
    assert!(outputs.values().all(|o| o.len() == 1));
    for n in &failing {
        let output = &outputs[&inputs[n]][0];
        let payload = cim_cid::ipld_to_json(output.event.envelope.payload()).expect("json");
        assert_eq!(payload, serde_json::json!({"n": n, "fixed": true}));
    }
    // Replaying again does nothing more.
    let again = client.replay_dead_letters(&ReplayDeadLetters::default()).await.expect("replay");
    assert!(again.replayed.is_empty() && again.failed.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_inputs_never_stall_the_others() {
    // A jq runtime error on one input, a too-large input, and a fan-out past the limit.
    let engines = Engines::start(1, "max_input_bytes = 2048\nmax_values = 5").await;
    engines
        .put(
            r#"
name = "picky"
[trigger]
aggregate_types = ["thing"]
[[stages]]
name = "spread"
type = "fan-out"
jq = '[range(.payload.copies)] | map({i: ., of: 1})'
[[stages]]
name = "divide"
type = "transform"
jq = 'if .i == 0 then error("division by zero") else {q: (.of / .i)} end'
[[sinks]]
type = "append"
aggregate_type = "derived"
event_type = "Quotient"
"#,
        )
        .await;
    let store = &engines.store;
    let append = |id: &str, payload: serde_json::Value| {
        let key = cim_cid::AggregateKey::new("thing", id).expect("key");
        let event = cim_cid::NewEvent::new("Made", cim_cid::ipld_from_json(&payload).expect("payload"));
        async move { store.append(&key, cim_store::ExpectedVersion::Any, vec![event]).await.expect("append") }
    };
    append("big", serde_json::json!({"copies": 1, "pad": "x".repeat(4000)})).await;
    append("many", serde_json::json!({"copies": 50})).await;
    append("fine", serde_json::json!({"copies": 2})).await;
    let client = engines.client();
    wait_until(
        Duration::from_secs(120),
        "3 dead letters",
        || engines.logs(),
        || async { client.dead_letters(&ListDeadLetters::default()).await.expect("list").dead_letters.len() == 3 },
    )
    .await;
    let letters = client.dead_letters(&ListDeadLetters::default()).await.expect("list").dead_letters;
    let reasons: Vec<String> = letters.iter().map(|l| format!("{:?}: {}", l.stage, l.reason)).collect();
    assert!(reasons.iter().any(|r| r.contains("max_input_bytes")), "{reasons:?}");
    assert!(reasons.iter().any(|r| r.contains("max_values")), "{reasons:?}");
    // "fine" makes copies 0 and 1: the first is refused by the program, so it too is dead-lettered;
    assert!(reasons.iter().any(|r| r.contains("divide") && r.contains("jq error")), "{reasons:?}");
    // and after all that, the engine still works: a good input flows.
    append("good", serde_json::json!({"copies": 0})).await;
    engines
        .put(
            r#"
name = "after"
[trigger]
aggregate_types = ["thing"]
start = "all"
[[stages]]
name = "pass"
type = "transform"
jq = '{id: .aggregate_id}'
[[sinks]]
type = "append"
aggregate_type = "derived"
event_type = "Seen"
"#,
        )
        .await;
    // `after` takes every thing but the one too large (dead-lettered again, by `after`).
    wait_until(
        Duration::from_secs(60),
        "3 outputs of `after`",
        || engines.logs(),
        || async {
            events_of_type(&engines.store, "derived")
                .await
                .iter()
                .filter(|e| e.event.envelope.event_type() == "Seen")
                .count()
                == 3
        },
    )
    .await;
    wait_until(
        Duration::from_secs(60),
        "the large input dead-lettered by `after`",
        || engines.logs(),
        || async {
            let letters = client
                .dead_letters(&ListDeadLetters { pipeline: Some("after".into()), limit: None })
                .await
                .expect("list")
                .dead_letters;
            letters.len() == 1 && letters[0].reason.contains("max_input_bytes")
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn forged_messages_on_the_event_stream_are_dead_lettered_and_never_run() {
    // Someone with publish rights on an event subject writes what is not an
    // event of the store: no message id, or one that is not the bytes' CID.
    let engines = Engines::start(1, "").await;
    engines
        .put(
            r#"
name = "watch"
[trigger]
aggregate_types = ["thing"]
[[stages]]
name = "pass"
type = "transform"
jq = '{id: .aggregate_id}'
[[sinks]]
type = "append"
aggregate_type = "derived"
event_type = "Seen"
"#,
        )
        .await;
    let js = async_nats::jetstream::new(engines.client.clone());
    js.publish("cim.events.thing.bare", "not an event".into()).await.expect("publish").await.expect("stored");
    let mut headers = async_nats::HeaderMap::new();
    headers.insert(async_nats::header::NATS_MESSAGE_ID, "bafyreicxoctzze3z3qvlzvy46ia6qupjtmi5tei62adtnizbxctsgp7xfe");
    js.publish_with_headers("cim.events.thing.lying", headers, "garbage".into())
        .await
        .expect("publish")
        .await
        .expect("stored");
    // A real event after them still flows.
    let key = cim_cid::AggregateKey::new("thing", "real").expect("key");
    let payload = cim_cid::ipld_from_json(&serde_json::json!({"ok": true})).expect("payload");
    let real = engines
        .store
        .append(&key, cim_store::ExpectedVersion::Exact(0), vec![cim_cid::NewEvent::new("Made", payload)])
        .await
        .expect("append")
        .last_cid();
    let client = engines.client();
    wait_until(
        Duration::from_secs(60),
        "2 dead letters and the real event's output",
        || engines.logs(),
        || async {
            let letters = client.dead_letters(&ListDeadLetters::default()).await.expect("list").dead_letters;
            letters.len() == 2 && outputs_by_input(&engines.store).await.contains_key(&real)
        },
    )
    .await;
    let letters = client.dead_letters(&ListDeadLetters::default()).await.expect("list").dead_letters;
    for letter in &letters {
        assert!(letter.reason.starts_with("the input is not a valid event"), "{letter:?}");
    }
    assert!(letters.iter().any(|l| l.reason.contains("no Nats-Msg-Id")), "{letters:?}");
    let outputs = outputs_by_input(&engines.store).await;
    assert_eq!(outputs.len(), 1, "only the real event produced an output");
    let status = client.status(Some("watch")).await.expect("status");
    assert_eq!((status.pipelines[0].completed, status.pipelines[0].dead_lettered), (1, 2), "{status:?}");
}

/// The dead-letter bucket the engine attaches to is the one provisioning
/// creates from `components.toml` (`[buckets.pipeline-dlq]`), description
/// included (attaching does not compare it).
#[test]
fn the_dead_letter_bucket_is_provisioned_as_the_engine_attaches_to_it() {
    let deployment = cim_deploy::Deployment::embedded().expect("components.toml");
    let bucket = deployment.buckets().get(cim_pipeline::deadletter::BUCKET).expect("[buckets.pipeline-dlq]");
    assert_eq!(bucket.owner, "pipeline");
    assert_eq!(bucket.options(), cim_pipeline::deadletter::DeadLetters::bucket_options());
}

/// A program that builds a runaway value on some inputs: those fail on
/// `max_value_bytes`, are retried and dead-lettered with that reason; the
/// others flow on.
#[tokio::test(flavor = "multi_thread")]
async fn a_runaway_value_is_dead_lettered_and_the_rest_flow_on() {
    const BLOAT: &str = r#"
name = "bloat"
[trigger]
aggregate_types = ["reading"]
[[stages]]
name = "grow"
type = "transform"
jq = 'if .payload.n % 10 == 4 then {n: .payload.n, big: [range(100000) | tostring]} else {n: .payload.n} end'
[[sinks]]
type = "append"
aggregate_type = "derived"
event_type = "Grown"
"#;
    let engines = Engines::start(1, "max_value_bytes = 65536").await;
    engines.put(BLOAT).await;
    let inputs = append_readings(&engines.store, 0, 30).await;
    let client = engines.client();
    wait_until(
        Duration::from_secs(120),
        "3 dead letters and 27 outputs",
        || engines.logs(),
        || async {
            let letters = client.dead_letters(&ListDeadLetters::default()).await.expect("list");
            letters.dead_letters.len() == 3 && outputs_by_input(&engines.store).await.len() == 27
        },
    )
    .await;
    for letter in client.dead_letters(&ListDeadLetters::default()).await.expect("list").dead_letters {
        let n = inputs.iter().find(|(_, c)| c.to_string() == letter.input_cid).map(|(n, _)| *n).expect("an input");
        assert_eq!(n % 10, 4, "{letter:?}");
        assert_eq!(letter.stage.as_deref(), Some("grow"));
        assert!(letter.reason.contains("exceed 65536 bytes (pipeline.max_value_bytes)"), "{letter:?}");
    }
    let outputs = outputs_by_input(&engines.store).await;
    assert!(outputs.values().all(|o| o.len() == 1));
}
