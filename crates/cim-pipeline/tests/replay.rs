//! A pipeline replayed from a position: inputs its version completed
//! produce nothing new, so the outputs stay one per input; a manual run;
//! put-object and enrich-object stages; the notify sink.

use std::time::Duration;

use cim_pipeline_api::{ReplayPipeline, RunManual};
use futures::StreamExt;

use crate::support::{Engines, append_readings, outputs_by_input, wait_until};

const STASH: &str = r#"
name = "stash"
[trigger]
aggregate_types = ["reading"]
start = "all"
[[stages]]
name = "store"
type = "put-object"
content = '"reading \(.payload.n)"'
[[stages]]
name = "load"
type = "enrich-object"
cid = ".object.cid"
as = "text"
into = "loaded"
[[sinks]]
type = "append"
aggregate_type = "derived"
event_type = "Stashed"
payload = "{n: .payload.n, text: .loaded.text, cid: .object.cid}"
[[sinks]]
type = "notify"
payload = "{n: .payload.n}"
"#;

#[tokio::test(flavor = "multi_thread")]
async fn replayed_pipelines_add_nothing_twice_and_manual_runs_run() {
    let engines = Engines::start(1, "").await;
    let mut notes = engines.client.subscribe("cim.event.pipeline.stash").await.expect("subscribe");
    let inputs = append_readings(&engines.store, 0, 10).await;
    engines.put(STASH).await;
    let client = engines.client();
    wait_until(
        Duration::from_secs(60),
        "10 outputs",
        || engines.logs(),
        || async { outputs_by_input(&engines.store).await.len() == 10 },
    )
    .await;
    let outputs = outputs_by_input(&engines.store).await;
    for (n, cid) in &inputs {
        let payload = cim_cid::ipld_to_json(outputs[cid][0].event.envelope.payload()).expect("json");
        assert_eq!(payload["text"], format!("reading {n}"), "{payload}");
    }
    let mut noted = 0;
    while noted < 10 {
        let note = tokio::time::timeout(Duration::from_secs(30), notes.next()).await.expect("a notification");
        let note: serde_json::Value = serde_json::from_slice(&note.expect("open").payload).expect("json");
        assert_eq!(note["pipeline"], "stash");
        noted += 1;
    }

    // Replayed from the first event: a new generation; nothing new is appended.
    let replayed =
        client.replay(&ReplayPipeline { name: "stash".into(), sequence: Some(1), time: None }).await.expect("replay");
    assert_eq!(replayed.generation, 1);
    wait_until(
        Duration::from_secs(60),
        "the replay to drain",
        || engines.logs(),
        || async {
            let status = client.status(Some("stash")).await.expect("status");
            let p = &status.pipelines[0];
            p.generation == 1
                && p.duplicates == 10
                && p.consumer.as_ref().is_some_and(|c| c.lag == 0 && c.in_flight == 0)
        },
    )
    .await;
    let after = outputs_by_input(&engines.store).await;
    assert_eq!(after.len(), 10);
    // The replaced generation's consumer is not deleted (the engine may not
    // delete consumers): it gets an inactive threshold, and the server
    // removes it once nobody pulls from it.
    let stream = async_nats::jetstream::new(engines.client.clone()).get_stream("CIM_EVENTS").await.expect("stream");
    wait_until(
        Duration::from_secs(30),
        "the replaced consumer to be retired",
        || engines.logs(),
        || async {
            match stream.get_consumer::<async_nats::jetstream::consumer::pull::Config>("pipeline-stash-g0").await {
                Err(_) => true,
                Ok(mut consumer) => consumer.info().await.is_ok_and(|info| {
                    info.config.inactive_threshold == cim_pipeline::engine::RETIRED_INACTIVE_THRESHOLD
                }),
            }
        },
    )
    .await;
    assert!(after.values().all(|o| o.len() == 1), "a replay appended again");

    // A manual run: its input is journaled, its output links it.
    let outcome =
        client.run(&RunManual { name: "stash".into(), input: serde_json::json!({"n": 99}) }).await.expect("run");
    assert_eq!(outcome.outputs.len(), 1, "{outcome:?}");
    let output: cim_cid::Cid = outcome.outputs[0].parse().expect("cid");
    let outputs = crate::support::events_of_type(&engines.store, "derived").await;
    let event = outputs.into_iter().find(|e| e.event.cid == output).expect("the output is stored");
    assert_eq!(event.event.envelope.parents()[0].to_string(), outcome.input_cid);
    let payload = cim_cid::ipld_to_json(event.event.envelope.payload()).expect("json");
    assert_eq!(payload["text"], "reading 99", "{payload}");
}
