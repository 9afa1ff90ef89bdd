//! Workload 8: the Pipeline Engine (issue 14). `N` events through a
//! filter → transform → append pipeline run by a real `cim-pipeline`
//! process, checked afterwards (the outputs are exactly the matching
//! inputs, each with its input's CID as its only parent and carrying its
//! `n`), against raw JetStream consume + publish of the same events with the
//! same in-flight window.
//!
//! Both sides read the same `N` stored events from the same stream through
//! a durable pull consumer configured as the engine configures its own
//! (explicit acks, `max_ack_pending`, batches of `window`), with at most
//! `window` inputs in flight. Raw: for each input, publish one output (its
//! bytes, to a subject of the same stream), await the publish ack, then
//! acknowledge the input — for every input, so raw publishes a seventh more
//! outputs than the pipeline, whose filter drops the inputs with `value`
//! 0. The engine: decode and check the event, run the jq filter and
//! transform, append the output (a CID-addressed event with the input as
//! parent), journal `RunCompleted`, acknowledge. Timed from the pipeline's
//! creation (`pipelines.put`) to its last input handled (the engine's
//! status, polled every 20 ms), and for raw from the consumer's creation
//! to the last acknowledgement.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, pull};
use cim_cid::{AggregateKey, Cid, Ipld, NewEvent};
use cim_pipeline_api::{PutPipeline, SourceFormat};
use cim_store::{EventStore, ExpectedVersion, StartAt, StoreConfig};
use cim_test_support::{ServiceProcess, service_config};
use futures::{StreamExt, TryStreamExt};
use serde_json::json;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::{fresh_namespace, mode_for, mode_name};
use crate::report::{Check, Row, WorkloadReport};
use crate::{Bench, server_name};

/// Throughput the engine must reach relative to raw consume + publish.
const TARGET_RATIO: f64 = 0.7;
/// The consumer's `max_ack_pending`, the engine's default.
const MAX_ACK_PENDING: i64 = 1024;
/// How long the engine may take for the whole run.
const RUN_TIMEOUT: Duration = Duration::from_secs(3600);

/// The example pipeline (drop `value` 0, double the rest, append each as
/// `derived`), run here from the start of the stream.
const DOUBLER: &str = include_str!("../../../cim-pipeline/pipelines/doubler.toml");

pub async fn run(bench: &Bench) -> Result<WorkloadReport> {
    let p = &bench.params;
    let durable = bench.main_durable();
    let (count, window) = (p.pipeline_events, p.window);
    let mut report = WorkloadReport::new(
        8,
        "pipeline",
        format!(
            "{count} events through filter → transform → append (a cim-pipeline process), {window} in flight, {}",
            server_name(durable)
        ),
        json!({ "events": count, "window": window, "max_ack_pending": MAX_ACK_PENDING, "durable": durable }),
    );
    let server = bench.server(durable).await;
    let namespace = fresh_namespace("w8");
    let config = StoreConfig::with_namespace(&namespace);
    let client = bench.connect(durable).await?;
    let deployment = cim_deploy::Deployment::embedded().context("components.toml")?;
    cim_deploy::provision::provision(client.clone(), &config, &deployment).await.context("provisioning")?;
    let store = EventStore::open(client.clone(), config.clone()).await.context("opening the event store")?;

    let inputs = append_inputs(&store, count, window).await?;
    let matching = inputs.keys().filter(|n| *n % 7 != 0).count();
    let (raw, bytes) = raw_consume_publish(&client, &config, count, window).await?;
    report.notes.push(format!(
        "{count} inputs ({:.1} B each, stored beforehand), {matching} of them matching the filter",
        bytes as f64 / count as f64
    ));
    let raw_row = Row::new(format!("raw consume + publish + ack, window {window}"), count as u64, bytes, raw, None);

    // The engine's store commits in the mode made for the server, as workload 1's store does.
    let mode = mode_name(mode_for(durable));
    let (elapsed, outputs) = engine_run(&server, &client, &namespace, mode, count, window).await?;
    let engine_row = Row::new(
        format!("cim-pipeline filter → transform → append ({mode}), window {window}"),
        count as u64,
        bytes,
        elapsed,
        None,
    )
    .with("outputs", outputs as f64);

    let checked = check_outputs(&store, &inputs).await?;
    report.notes.push(format!(
        "checked: {checked} outputs, exactly one per matching input, each with its input's CID as its only parent \
         and its n; none for the others"
    ));
    report.notes.push(
        "per input the engine appends the output and journals RunCompleted (two appends); raw publishes one message"
            .to_owned(),
    );
    report.checks.push(Check::at_least(
        "pipeline inputs per second / raw consume + publish",
        engine_row.ops_per_sec / raw_row.ops_per_sec,
        TARGET_RATIO,
    ));
    report.rows.push(raw_row);
    report.rows.push(engine_row);
    Ok(report)
}

/// Appends `reading/r-<n>` `Measured {n, value: n % 7}` for each `n`, `window`
/// at a time; their CIDs by `n`.
async fn append_inputs(store: &EventStore, count: usize, window: usize) -> Result<BTreeMap<usize, Cid>> {
    let appended: Vec<(usize, Cid)> = futures::stream::iter(0..count)
        .map(|n| {
            let store = store.clone();
            async move {
                let key = AggregateKey::new("reading", format!("r-{n}"))?;
                let payload = cim_cid::ipld_from_json(&json!({ "n": n, "value": n % 7 }))?;
                let appended =
                    store.append(&key, ExpectedVersion::Exact(0), vec![NewEvent::new("Measured", payload)]).await?;
                anyhow::Ok((n, appended.last_cid()))
            }
        })
        .buffer_unordered(window.max(1))
        .try_collect()
        .await
        .context("appending the inputs")?;
    Ok(appended.into_iter().collect())
}

/// Raw: a durable pull consumer on the inputs like the engine's; for each
/// input, publish its bytes and await the ack, then acknowledge the input.
/// The time that took and the inputs' bytes.
async fn raw_consume_publish(
    client: &async_nats::Client,
    config: &StoreConfig,
    count: usize,
    window: usize,
) -> Result<(Duration, u64)> {
    let js = async_nats::jetstream::new(client.clone());
    let names = config.names();
    let stream = js.get_stream(&names.events_stream).await.context("the event stream")?;
    let input_subject = names.aggregate_subject(&AggregateKey::new("reading", "x")?);
    let filter = format!("{}.*", input_subject.rsplit_once('.').map_or(input_subject.as_str(), |(prefix, _)| prefix));
    let output_prefix = names.aggregate_subject(&AggregateKey::new("rawout", "x")?);
    let output_prefix = output_prefix.rsplit_once('.').map_or(output_prefix.as_str(), |(prefix, _)| prefix).to_owned();
    let started = Instant::now();
    let consumer = stream
        .create_consumer(pull::Config {
            durable_name: Some("bench-raw".to_owned()),
            deliver_policy: DeliverPolicy::All,
            ack_policy: AckPolicy::Explicit,
            ack_wait: Duration::from_secs(30),
            max_ack_pending: MAX_ACK_PENDING,
            filter_subject: filter,
            ..Default::default()
        })
        .await
        .context("creating the raw consumer")?;
    let mut messages =
        consumer.stream().max_messages_per_batch(window).messages().await.context("the raw consumer's messages")?;
    let permits = Arc::new(Semaphore::new(window));
    let mut tasks: JoinSet<Result<()>> = JoinSet::new();
    let mut taken = 0;
    let mut bytes = 0;
    while taken < count {
        let permit = permits.clone().acquire_owned().await?;
        let message = match messages.next().await {
            Some(message) => message.map_err(|e| anyhow::anyhow!("the raw consumer: {e}"))?,
            None => bail!("the raw consumer's messages ended"),
        };
        bytes += message.payload.len() as u64;
        let js = js.clone();
        let subject = format!("{output_prefix}.o-{taken}");
        tasks.spawn(async move {
            js.publish(subject, message.payload.clone())
                .await
                .map_err(|e| anyhow::anyhow!("raw publish: {e}"))?
                .await
                .map_err(|e| anyhow::anyhow!("raw publish ack: {e}"))?;
            message.ack().await.map_err(|e| anyhow::anyhow!("raw ack: {e}"))?;
            drop(permit);
            Ok(())
        });
        taken += 1;
        while let Some(done) = tasks.try_join_next() {
            done??;
        }
    }
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    Ok((started.elapsed(), bytes))
}

/// Starts a `cim-pipeline` process on the namespace, creates the pipeline
/// and waits until it handled every input; the time that took and the
/// outputs it reports.
async fn engine_run(
    server: &cim_test_support::NatsServer,
    client: &async_nats::Client,
    namespace: &str,
    commit: &str,
    count: usize,
    window: usize,
) -> Result<(Duration, u64)> {
    let dir = std::env::temp_dir().join(format!("cim-bench-{namespace}"));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let extra = format!(
        "[store]\nnamespace = \"{namespace}\"\ncommit = \"{commit}\"\n\n[pipeline]\nwindow = {window}\nmax_ack_pending = {MAX_ACK_PENDING}\n"
    );
    let config = service_config(server, "bench", &extra).replace("[runtime]\n", "[runtime]\nregister = false\n");
    let binary = engine_binary()?;
    let engine = ServiceProcess::start(binary, &dir, "engine", &config);
    let pipelines = cim_pipeline_api::Client::new(client.clone(), Duration::from_secs(10));
    let ready = Instant::now() + Duration::from_secs(60);
    while pipelines.list().await.is_err() {
        ensure!(Instant::now() < ready, "cim-pipeline did not answer within 60 s:\n{}", engine.log());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let started = Instant::now();
    let request = PutPipeline {
        source: DOUBLER.replacen("[trigger]\n", "[trigger]\nstart = \"all\"\n", 1),
        format: Some(SourceFormat::Toml),
        expected_version: None,
    };
    pipelines.put(&request).await.map_err(|e| anyhow::anyhow!("putting the pipeline: {e}"))?;
    let deadline = started + RUN_TIMEOUT;
    loop {
        if let Ok(status) = pipelines.status(Some("doubler")).await
            && let Some(status) = status.pipelines.first()
        {
            ensure!(status.dead_lettered == 0 && status.failures == 0, "the engine failed on inputs: {status:?}");
            if (status.completed + status.skipped) as usize >= count {
                let elapsed = started.elapsed();
                let _ = std::fs::remove_dir_all(&dir);
                return Ok((elapsed, status.outputs));
            }
        }
        ensure!(Instant::now() < deadline, "the engine did not finish within {RUN_TIMEOUT:?}:\n{}", engine.log());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `cim-pipeline` next to this executable (`cargo xtask bench` builds it).
fn engine_binary() -> Result<std::path::PathBuf> {
    let exe = std::env::current_exe().context("this executable's path")?;
    let dir = exe.parent().context("this executable's directory")?;
    let binary = dir.join("cim-pipeline");
    let profile = if dir.ends_with("release") { " --release" } else { "" };
    ensure!(
        binary.is_file(),
        "no {}: build it with `cargo build{profile} -p cim-pipeline` (`cargo xtask bench` does)",
        binary.display()
    );
    Ok(binary)
}

/// Checks that the outputs are exactly one per matching input, each with
/// its input as its only parent and its `n`; returns how many.
async fn check_outputs(store: &EventStore, inputs: &BTreeMap<usize, Cid>) -> Result<usize> {
    let by_cid: BTreeMap<Cid, usize> = inputs.iter().map(|(n, cid)| (*cid, *n)).collect();
    let outputs: Vec<cim_store::StoredEvent> =
        store.read_type("derived", StartAt::Beginning).await?.try_collect().await.context("reading the outputs")?;
    let mut seen: BTreeMap<usize, usize> = BTreeMap::new();
    for output in &outputs {
        let envelope = &output.event.envelope;
        let [parent] = envelope.parents() else {
            bail!("output {} has parents {:?}", output.cid(), envelope.parents())
        };
        let Some(n) = by_cid.get(parent) else { bail!("output {} has a parent that is no input", output.cid()) };
        ensure!(n % 7 != 0, "input {n} does not match the filter but has an output");
        let carried = match envelope.payload() {
            Ipld::Map(map) => map.get("n").cloned(),
            _ => None,
        };
        ensure!(carried == Some(Ipld::Integer(*n as i128)), "the output of input {n} carries {carried:?}");
        *seen.entry(*n).or_default() += 1;
    }
    let twice: Vec<&usize> = seen.iter().filter(|(_, times)| **times > 1).map(|(n, _)| n).collect();
    ensure!(twice.is_empty(), "inputs with more than one output: {twice:?}");
    let missing = inputs.keys().filter(|n| *n % 7 != 0 && !seen.contains_key(n)).count();
    ensure!(missing == 0, "{missing} matching inputs have no output");
    Ok(outputs.len())
}
