//! Inputs through filter → transform → append: outputs equal exactly the
//! matching inputs, each with its input's CID as parent; and the same with
//! two instances, one killed with -9 mid-run and restarted.

use std::collections::BTreeMap;
use std::time::Duration;

use cim_cid::Cid;

use crate::support::{Engines, append_readings, outputs_by_input, payload_n, wait_until};

/// The example pipeline: doubles every reading whose value is not 0.
const DOUBLER: &str = include_str!("../pipelines/doubler.toml");

/// Checks that the outputs are exactly one per matching input, each
/// linking its input and carrying its `n`.
fn check_exactly_once(inputs: &BTreeMap<usize, Cid>, outputs: &BTreeMap<Cid, Vec<cim_store::StoredEvent>>) {
    let expected: BTreeMap<Cid, usize> = inputs.iter().filter(|(n, _)| *n % 7 != 0).map(|(n, c)| (*c, *n)).collect();
    let doubled: Vec<(&Cid, usize)> = outputs.iter().filter(|(_, o)| o.len() > 1).map(|(c, o)| (c, o.len())).collect();
    assert!(doubled.is_empty(), "inputs with more than one output: {doubled:?}");
    let missing: Vec<&usize> = expected.iter().filter(|(c, _)| !outputs.contains_key(*c)).map(|(_, n)| n).collect();
    assert!(
        missing.is_empty(),
        "{} matching inputs have no output, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(10)]
    );
    let unexpected = outputs.keys().filter(|c| !expected.contains_key(*c)).count();
    assert_eq!(unexpected, 0, "outputs of inputs that do not match");
    for (input, events) in outputs {
        let event = &events[0];
        assert_eq!(event.event.envelope.parents(), [*input], "an output's parents are its input");
        assert_eq!(payload_n(event), Some(expected[input] as u64), "the output carries its input's n");
        assert_eq!(event.event.envelope.event_type(), "Doubled");
    }
}

fn events() -> usize {
    std::env::var("CIM_PIPELINE_TEST_EVENTS").ok().and_then(|v| v.parse().ok()).unwrap_or(3_000)
}

#[tokio::test(flavor = "multi_thread")]
async fn outputs_equal_exactly_the_matching_inputs() {
    let engines = Engines::start(1, "window = 256").await;
    engines.put(DOUBLER).await;
    let count = events();
    let inputs = append_readings(&engines.store, 0, count).await;
    let expected = inputs.keys().filter(|n| *n % 7 != 0).count();
    let started = std::time::Instant::now();
    wait_until(
        Duration::from_secs(600),
        "every output",
        || engines.logs(),
        || async { outputs_by_input(&engines.store).await.len() >= expected },
    )
    .await;
    eprintln!("{count} inputs, {expected} outputs in {:?}", started.elapsed());
    let client = engines.client();
    wait_until(
        Duration::from_secs(60),
        "the consumer to drain",
        || engines.logs(),
        || async {
            let status = client.status(Some("doubler")).await.expect("status");
            status.pipelines[0].consumer.as_ref().is_some_and(|c| c.lag == 0 && c.in_flight == 0)
        },
    )
    .await;
    let outputs = outputs_by_input(&engines.store).await;
    check_exactly_once(&inputs, &outputs);
    let status = client.status(Some("doubler")).await.expect("status");
    let status = &status.pipelines[0];
    assert_eq!(status.completed as usize, expected, "{status:?}");
    assert_eq!(status.skipped as usize, count - expected, "{status:?}");
    assert_eq!((status.failures, status.dead_letters), (0, 0), "{status:?}");
    // Every run is journaled: one RunCompleted per matching input.
    let runs = crate::support::events_of_type(&engines.store, "pipeline-run").await;
    assert_eq!(runs.iter().filter(|e| e.event.envelope.event_type() == "RunCompleted").count(), expected);
}

#[tokio::test(flavor = "multi_thread")]
async fn two_instances_one_killed_mid_run_give_exactly_one_output_per_input() {
    // A small window, so that the run lasts and the kill lands mid-run.
    let mut engines = Engines::start(2, "window = 8").await;
    engines.put(DOUBLER).await;
    let count = events().min(5_000);
    let inputs = append_readings(&engines.store, 0, count).await;
    let expected = inputs.keys().filter(|n| *n % 7 != 0).count();
    wait_until(
        Duration::from_secs(300),
        "a third of the outputs",
        || engines.logs(),
        || async { outputs_by_input(&engines.store).await.len() >= expected / 3 },
    )
    .await;
    engines.engines[0].kill9();
    let at_kill = outputs_by_input(&engines.store).await.len();
    assert!(at_kill < expected, "the kill came after the run ({at_kill} of {expected}): nothing was shown");
    // The survivor carries on alone for a while, then the killed one comes back.
    tokio::time::sleep(Duration::from_secs(2)).await;
    engines.engines[0].spawn();
    engines.wait_instances(2).await;
    wait_until(
        Duration::from_secs(300),
        "every output",
        || engines.logs(),
        || async { outputs_by_input(&engines.store).await.len() >= expected },
    )
    .await;
    let client = engines.client();
    wait_until(
        Duration::from_secs(60),
        "the consumer to drain",
        || engines.logs(),
        || async {
            let status = client.status(Some("doubler")).await.expect("status");
            status.pipelines[0].consumer.as_ref().is_some_and(|c| c.lag == 0 && c.in_flight == 0)
        },
    )
    .await;
    // Anything redelivered has been handled by now: count again.
    let outputs = outputs_by_input(&engines.store).await;
    check_exactly_once(&inputs, &outputs);
    assert_eq!(outputs.len(), expected);
}

/// A first delivery expects an empty journal and reads nothing: when another
/// attempt already journaled the run, that append fails, the input is
/// retried, and the retry reads the journal and completes, with still one
/// output and one `RunCompleted`.
#[tokio::test(flavor = "multi_thread")]
async fn a_run_journaled_elsewhere_before_its_first_delivery_completes_once_on_retry() {
    let engines = Engines::start(1, "").await;
    let inputs = append_readings(&engines.store, 1, 1).await;
    let input = inputs[&1];
    let run = cim_pipeline::run::run_aggregate("doubler", 1, &input);
    let stale = cim_cid::NewEvent::new("RunFailed", cim_cid::ipld_from_json(&serde_json::json!({})).expect("payload"))
        .with_parents([input]);
    engines.store.append(&run, cim_store::ExpectedVersion::Exact(0), vec![stale]).await.expect("the other attempt");

    let put = engines.put(&DOUBLER.replacen("[trigger]\n", "[trigger]\nstart = \"all\"\n", 1)).await;
    assert_eq!(put.version, 1, "the run key above names version 1");
    let client = engines.client();
    wait_until(
        Duration::from_secs(60),
        "the run to complete",
        || engines.logs(),
        || async { client.status(Some("doubler")).await.expect("status").pipelines[0].completed == 1 },
    )
    .await;
    let status = client.status(Some("doubler")).await.expect("status");
    assert_eq!(status.pipelines[0].failures, 1, "the first attempt's journal append failed: {status:?}");
    check_exactly_once(&inputs, &outputs_by_input(&engines.store).await);
    let journal = engines.store.read_aggregate(&run, cim_store::AggregateQuery::all()).await.expect("the journal");
    let types: Vec<&str> = journal.iter().map(|e| e.event.envelope.event_type()).collect();
    assert_eq!(types.first(), Some(&"RunFailed"), "{types:?}");
    assert_eq!(types.iter().filter(|t| **t == "RunCompleted").count(), 1, "{types:?}");
    assert_eq!(types.last(), Some(&"RunCompleted"), "{types:?}");
}
