//! Running pipelines: one durable pull consumer per pipeline (and
//! generation) on the event stream, shared by every instance of the engine
//! (a consumer group: instances split the inputs, and one carries on alone
//! when another dies — its unacknowledged inputs are delivered again after
//! `ack_wait`). Each input is acknowledged after its run completed or was
//! dead-lettered; a failed attempt is delivered again after an exponential
//! backoff (a negative acknowledgement with a delay), up to
//! `max_attempts`.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, PullConsumer, pull};
use async_nats::jetstream::{self, AckKind};
use cim_cid::{Cid, Event, Timestamp};
use cim_pipeline_api::{DeadLetter, RunOutcome};
use cim_store::{ExpectedVersion, Names};
use futures::StreamExt;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::deadletter::DeadLetters;
use crate::projection::{Projection, consumer_name};

/// How long a consumer replaced by a replay lives after its last pull: the
/// server then removes it (components may not delete consumers).
pub const RETIRED_INACTIVE_THRESHOLD: Duration = Duration::from_secs(60);
use crate::run::{self, Context, Failure, Input, Pipeline};

/// Labels of the engine's metrics.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PipelineLabels {
    /// The pipeline.
    pub pipeline: String,
}

/// Labels of input outcomes.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    /// The pipeline.
    pub pipeline: String,
    /// completed, skipped, duplicate, failed, dead_lettered.
    pub outcome: String,
}

/// The engine's Prometheus metrics.
#[derive(Debug, Clone, Default)]
pub struct Metrics {
    /// Inputs by outcome.
    pub inputs: Family<OutcomeLabels, Counter>,
    /// Events appended by sinks.
    pub outputs: Family<PipelineLabels, Counter>,
    /// Matching events not yet delivered.
    pub lag: Family<PipelineLabels, Gauge>,
    /// Entries in the dead-letter stream.
    pub dead_letters: Family<PipelineLabels, Gauge>,
}

impl Metrics {
    /// Registers them with the runtime's registry.
    pub fn register(&self, registry: &cim_runtime::Metrics) {
        registry.register("pipeline_inputs", "Inputs handled, by pipeline and outcome", self.inputs.clone());
        registry.register("pipeline_outputs", "Events appended by sinks, by pipeline", self.outputs.clone());
        registry.register("pipeline_lag", "Matching events not yet delivered to the pipeline", self.lag.clone());
        registry.register("pipeline_dead_letters", "Inputs in the dead-letter stream", self.dead_letters.clone());
    }
}

/// Counts of one pipeline since this instance started.
#[derive(Debug, Default)]
pub struct Counters {
    /// Runs completed.
    pub completed: AtomicU64,
    /// Inputs the trigger left out.
    pub skipped: AtomicU64,
    /// Redeliveries of completed runs.
    pub duplicates: AtomicU64,
    /// Failed attempts.
    pub failures: AtomicU64,
    /// Inputs dead-lettered.
    pub dead_lettered: AtomicU64,
    /// Events appended.
    pub outputs: AtomicU64,
    /// Completions per second, the last ten seconds.
    recent: Mutex<VecDeque<(u64, u64)>>,
}

impl Counters {
    fn complete(&self) {
        self.completed.fetch_add(1, Ordering::Relaxed);
        let second = Instant::now().duration_since(*EPOCH).as_secs();
        let mut recent = self.recent.lock().expect("rate lock");
        match recent.back_mut() {
            Some((at, count)) if *at == second => *count += 1,
            _ => recent.push_back((second, 1)),
        }
        while recent.front().is_some_and(|(at, _)| *at + 10 < second) {
            recent.pop_front();
        }
    }

    /// Completions per second over the last ten seconds.
    pub fn rate(&self) -> f64 {
        let second = Instant::now().duration_since(*EPOCH).as_secs();
        let recent = self.recent.lock().expect("rate lock");
        let total: u64 = recent.iter().filter(|(at, _)| *at + 10 > second).map(|(_, c)| c).sum();
        total as f64 / 10.0
    }
}

static EPOCH: std::sync::LazyLock<Instant> = std::sync::LazyLock::new(Instant::now);

/// The engine. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    ctx: Context,
    projection: Projection,
    dead_letters: DeadLetters,
    stream: jetstream::stream::Stream,
    names: Names,
    instance: String,
    metrics: Metrics,
    counters: Mutex<HashMap<String, Arc<Counters>>>,
}

impl Engine {
    /// An engine over these parts; [`Engine::start`] runs it.
    pub async fn new(
        ctx: Context,
        projection: Projection,
        dead_letters: DeadLetters,
        instance: String,
        metrics: Metrics,
    ) -> anyhow::Result<Self> {
        let names = ctx.store.names().clone();
        let stream = ctx.store.jetstream().get_stream(&names.events_stream).await?;
        Ok(Self {
            inner: Arc::new(Inner {
                ctx,
                projection,
                dead_letters,
                stream,
                names,
                instance,
                metrics,
                counters: Mutex::new(HashMap::new()),
            }),
        })
    }

    /// What runs need.
    pub fn context(&self) -> &Context {
        &self.inner.ctx
    }

    /// The projection of pipelines.
    pub fn projection(&self) -> &Projection {
        &self.inner.projection
    }

    /// The dead-letter stream.
    pub fn dead_letters(&self) -> &DeadLetters {
        &self.inner.dead_letters
    }

    /// This instance's id.
    pub fn instance(&self) -> &str {
        &self.inner.instance
    }

    /// The stream's names.
    pub fn names(&self) -> &Names {
        &self.inner.names
    }

    /// The counters of a pipeline.
    pub fn counters(&self, pipeline: &str) -> Arc<Counters> {
        self.inner.counters.lock().expect("counters lock").entry(pipeline.to_owned()).or_default().clone()
    }

    /// Information about a pipeline's consumer, if it exists.
    pub async fn consumer_info(&self, name: &str) -> Option<jetstream::consumer::Info> {
        let mut consumer: PullConsumer = self.inner.stream.get_consumer(name).await.ok()?;
        consumer.info().await.ok().cloned()
    }

    /// Runs the supervisor until `stop`: a worker for every pipeline that is
    /// not paused, stopped and started as the projection changes.
    pub async fn run(self, stop: CancellationToken) {
        let mut workers: HashMap<(String, u64), CancellationToken> = HashMap::new();
        let mut tasks = JoinSet::new();
        let mut seen_revision = u64::MAX;
        let mut last_gauges = Instant::now() - Duration::from_secs(60);
        loop {
            let revision = self.inner.projection.read().revision;
            if revision != seen_revision {
                seen_revision = revision;
                let wanted: Vec<(String, u64)> = {
                    let state = self.inner.projection.read();
                    state.pipelines.values().filter(|p| !p.paused).map(|p| (p.name.clone(), p.generation)).collect()
                };
                let retired: Vec<(String, u64)> = workers.keys().filter(|k| !wanted.contains(k)).cloned().collect();
                for key in retired {
                    if let Some(token) = workers.remove(&key) {
                        info!(pipeline = %key.0, generation = key.1, "stopping the pipeline's worker");
                        token.cancel();
                        let newer = wanted.iter().any(|(name, generation)| *name == key.0 && *generation > key.1);
                        if newer {
                            // Replaced by a replay: its consumer is no longer
                            // needed. The engine may not delete consumers
                            // (docs/spec/permissions.md): it lets the server
                            // remove it once nobody pulls from it.
                            let engine = self.clone();
                            let name = consumer_name(&key.0, key.1);
                            tokio::spawn(async move {
                                if let Err(error) = engine.retire_consumer(&name).await {
                                    debug!(%error, consumer = %name, "retiring a replaced consumer");
                                }
                            });
                        }
                    }
                }
                for key in wanted {
                    if workers.contains_key(&key) {
                        continue;
                    }
                    let token = stop.child_token();
                    workers.insert(key.clone(), token.clone());
                    info!(pipeline = %key.0, generation = key.1, "starting the pipeline's worker");
                    tasks.spawn(self.clone().worker(key.0, key.1, token));
                }
            }
            if last_gauges.elapsed() >= Duration::from_secs(5) {
                last_gauges = Instant::now();
                self.update_gauges().await;
            }
            let changed =
                self.inner.projection.follower().wait_until(Duration::from_secs(1), |s| s.revision != seen_revision);
            tokio::select! {
                () = stop.cancelled() => break,
                _ = changed => {}
            }
            while tasks.try_join_next().is_some() {}
        }
        while tasks.join_next().await.is_some() {}
    }

    async fn update_gauges(&self) {
        let names: Vec<(String, u64)> =
            self.inner.projection.read().pipelines.values().map(|p| (p.name.clone(), p.generation)).collect();
        for (name, generation) in names {
            let labels = PipelineLabels { pipeline: name.clone() };
            if let Some(info) = self.consumer_info(&consumer_name(&name, generation)).await {
                self.inner.metrics.lag.get_or_create(&labels).set(info.num_pending as i64);
            }
            if let Ok(count) = self.inner.dead_letters.count(&name).await {
                self.inner.metrics.dead_letters.get_or_create(&labels).set(count as i64);
            }
        }
    }

    /// Consumes a pipeline's inputs until `stop`, recreating its consumer
    /// subscription after errors.
    async fn worker(self, name: String, generation: u64, stop: CancellationToken) {
        let mut delay = Duration::from_millis(200);
        while !stop.is_cancelled() {
            match self.consume(&name, generation, &stop).await {
                Ok(()) => break,
                Err(error) => {
                    warn!(pipeline = %name, %error, "consuming the pipeline's inputs; trying again");
                    tokio::select! {
                        () = stop.cancelled() => break,
                        () = tokio::time::sleep(delay) => {}
                    }
                    delay = (delay * 2).min(Duration::from_secs(5));
                }
            }
        }
    }

    /// Gives a replaced consumer an inactive threshold
    /// ([`RETIRED_INACTIVE_THRESHOLD`]), so the server removes it once no
    /// instance pulls from it any more.
    pub async fn retire_consumer(&self, consumer_name: &str) -> anyhow::Result<()> {
        let mut consumer =
            self.inner.stream.get_consumer::<pull::Config>(consumer_name).await.map_err(|e| anyhow::anyhow!("{e}"))?;
        let current = consumer.info().await?.config.clone();
        let current = <pull::Config as jetstream::consumer::FromConsumer>::try_from_consumer_config(current)
            .map_err(|e| anyhow::anyhow!("the consumer's configuration: {e}"))?;
        let retired = pull::Config { inactive_threshold: RETIRED_INACTIVE_THRESHOLD, ..current };
        self.inner.stream.update_consumer(retired).await?;
        Ok(())
    }

    /// Gets the pipeline's consumer, creating it (or adapting its subject
    /// filters to the current version's trigger).
    pub async fn ensure_consumer(&self, name: &str, generation: u64) -> anyhow::Result<PullConsumer> {
        let settings = &self.inner.ctx.settings;
        let (subjects, start_sequence, start_time) = {
            let state = self.inner.projection.read();
            let pipeline = state.pipelines.get(name).ok_or_else(|| anyhow::anyhow!("no pipeline {name}"))?;
            let subjects = pipeline.current().compiled.trigger.subjects(&self.inner.names.events_prefix);
            (subjects, pipeline.start_sequence, pipeline.start_time.clone())
        };
        let consumer_name = consumer_name(name, generation);
        let deliver_policy = match (start_sequence, start_time) {
            (Some(start_sequence), _) => DeliverPolicy::ByStartSequence { start_sequence },
            (None, Some(time)) => DeliverPolicy::ByStartTime {
                start_time: Timestamp::parse_rfc3339(&time)?
                    .to_offset_date_time()
                    .ok_or_else(|| anyhow::anyhow!("start time out of range"))?,
            },
            (None, None) => DeliverPolicy::All,
        };
        let config = pull::Config {
            durable_name: Some(consumer_name.clone()),
            name: Some(consumer_name.clone()),
            description: Some(format!("cim-pipeline: inputs of pipeline {name}, generation {generation}")),
            deliver_policy,
            ack_policy: AckPolicy::Explicit,
            ack_wait: Duration::from_secs(settings.ack_wait_secs),
            max_deliver: -1,
            max_ack_pending: settings.max_ack_pending,
            filter_subjects: subjects.clone(),
            ..Default::default()
        };
        match self.inner.stream.get_consumer::<pull::Config>(&consumer_name).await {
            Ok(mut consumer) => {
                let current = consumer.info().await?.config.clone();
                let mut have = current.filter_subjects.clone();
                if !current.filter_subject.is_empty() {
                    have.push(current.filter_subject.clone());
                }
                if have != subjects {
                    info!(pipeline = %name, ?subjects, "the trigger changed: updating the consumer's subjects");
                    let current =
                        <pull::Config as jetstream::consumer::FromConsumer>::try_from_consumer_config(current)
                            .map_err(|e| anyhow::anyhow!("the consumer's configuration: {e}"))?;
                    let updated = pull::Config { filter_subjects: subjects, filter_subject: String::new(), ..current };
                    return Ok(self.inner.stream.update_consumer(updated).await?);
                }
                Ok(consumer)
            }
            Err(_) => Ok(self.inner.stream.get_or_create_consumer(&consumer_name, config).await?),
        }
    }

    async fn consume(&self, name: &str, generation: u64, stop: &CancellationToken) -> anyhow::Result<()> {
        let consumer = self.ensure_consumer(name, generation).await?;
        let window = self.inner.ctx.settings.window;
        let mut messages = consumer
            .stream()
            .max_messages_per_batch(window)
            .expires(Duration::from_secs(10))
            .heartbeat(Duration::from_secs(4))
            .messages()
            .await?;
        let permits = Arc::new(Semaphore::new(window));
        let mut tasks = JoinSet::new();
        let result = loop {
            let permit = tokio::select! {
                () = stop.cancelled() => break Ok(()),
                permit = permits.clone().acquire_owned() => permit?,
            };
            let item = tokio::select! {
                () = stop.cancelled() => break Ok(()),
                item = messages.next() => item,
            };
            match item {
                None => break Err(anyhow::anyhow!("the consumer's message stream ended")),
                Some(Err(error)) => break Err(anyhow::anyhow!("the consumer's message stream failed: {error}")),
                Some(Ok(message)) => {
                    let engine = self.clone();
                    let name = name.to_owned();
                    tasks.spawn(async move {
                        engine.handle(&name, generation, message).await;
                        drop(permit);
                    });
                }
            }
            while tasks.try_join_next().is_some() {}
        };
        // Inputs already taken are finished (or, if the process stops, delivered again).
        while tasks.join_next().await.is_some() {}
        result
    }

    /// Handles one delivered input; never fails (a failure is retried or
    /// dead-lettered).
    async fn handle(&self, name: &str, generation: u64, message: jetstream::Message) {
        let counters = self.counters(name);
        let outcome = |outcome: &str| {
            self.inner
                .metrics
                .inputs
                .get_or_create(&OutcomeLabels { pipeline: name.to_owned(), outcome: outcome.to_owned() })
                .inc();
        };
        let (delivered, seq) = match message.info() {
            Ok(info) => (info.delivered.max(1) as u64, info.stream_sequence),
            Err(error) => {
                warn!(pipeline = %name, %error, "a delivered message without metadata");
                let _ = message.ack_with(AckKind::Term).await;
                return;
            }
        };
        let Some((version, compiled, _paused)) = self.inner.projection.current(name) else {
            let _ = message.ack_with(AckKind::Nak(Some(Duration::from_secs(1)))).await;
            return;
        };
        let pipeline = Pipeline { name: name.to_owned(), version, compiled };
        let settings = self.inner.ctx.settings.clone();
        let event = match decode(&self.inner.names, &message, seq) {
            Ok(event) => event,
            Err(reason) => {
                // Not an event of this store: nothing to retry.
                let claimed = message
                    .headers
                    .as_ref()
                    .and_then(|h| h.get(async_nats::header::NATS_MESSAGE_ID))
                    .map(|v| v.to_string())
                    .unwrap_or_else(|| format!("seq-{seq}"));
                warn!(pipeline = %name, seq, %reason, "a corrupt input goes to the dead-letter stream");
                let letter = DeadLetter {
                    pipeline: name.to_owned(),
                    version,
                    input_cid: claimed,
                    input_seq: seq,
                    stage: None,
                    reason: format!("the input is not a valid event: {reason}"),
                    attempts: delivered,
                    failed_at: Timestamp::now().to_string(),
                };
                if self.inner.dead_letters.put(&letter).await.is_ok() {
                    let _ = message.ack_with(AckKind::Term).await;
                    counters.dead_lettered.fetch_add(1, Ordering::Relaxed);
                    outcome("dead_lettered");
                } else {
                    let _ = message.ack_with(AckKind::Nak(Some(Duration::from_secs(5)))).await;
                }
                return;
            }
        };
        let envelope = &event.envelope;
        if !pipeline.compiled.trigger.matches(envelope.aggregate_type(), envelope.event_type()) {
            let _ = message.ack().await;
            counters.skipped.fetch_add(1, Ordering::Relaxed);
            outcome("skipped");
            return;
        }
        let input = Input::new(event, seq);
        let attempt = async {
            if message.payload.len() > settings.max_input_bytes {
                return Err(Failure {
                    stage: None,
                    reason: format!(
                        "the input has {} bytes; at most {} are taken (pipeline.max_input_bytes)",
                        message.payload.len(),
                        settings.max_input_bytes
                    ),
                });
            }
            if delivered > settings.max_attempts {
                return Err(Failure {
                    stage: None,
                    reason: format!(
                        "delivered {delivered} times without an attempt finishing (the engine stopped during it)"
                    ),
                });
            }
            if let Some(predicate) = &pipeline.compiled.trigger.predicate {
                match predicate.test(&input.json) {
                    Ok(true) => {}
                    Ok(false) => return Ok(None),
                    Err(error) => {
                        return Err(Failure { stage: Some("trigger.where".to_owned()), reason: error.to_string() });
                    }
                }
            }
            let check_journal = delivered > 1 || generation > 0;
            run::execute(&self.inner.ctx, &pipeline, &input, check_journal).await.map(Some)
        };
        // Keep the server from delivering the input elsewhere while it runs.
        let ticker = async {
            let every = Duration::from_secs(settings.ack_wait_secs).mul_f64(0.4).max(Duration::from_millis(500));
            loop {
                tokio::time::sleep(every).await;
                let _ = message.ack_with(AckKind::Progress).await;
            }
        };
        let result = tokio::select! {
            result = attempt => result,
            () = ticker => unreachable!("the ticker never ends"),
        };
        match result {
            Ok(None | Some(RunOutcome { filtered: true, .. })) => {
                let _ = message.ack().await;
                counters.skipped.fetch_add(1, Ordering::Relaxed);
                outcome("skipped");
            }
            Ok(Some(run)) => {
                if let Err(error) = message.ack().await {
                    debug!(%error, "acknowledging an input (it will be delivered again and found completed)");
                }
                if run.already_done {
                    counters.duplicates.fetch_add(1, Ordering::Relaxed);
                    outcome("duplicate");
                } else {
                    counters.complete();
                    counters.outputs.fetch_add(run.outputs.len() as u64, Ordering::Relaxed);
                    self.inner
                        .metrics
                        .outputs
                        .get_or_create(&PipelineLabels { pipeline: name.to_owned() })
                        .inc_by(run.outputs.len() as u64);
                    outcome("completed");
                }
            }
            Err(failure) => self.failed(&pipeline, &input, &message, delivered, failure).await,
        }
    }

    /// A failed attempt: retried after a backoff, or dead-lettered after the last.
    async fn failed(
        &self,
        pipeline: &Pipeline,
        input: &Input,
        message: &jetstream::Message,
        delivered: u64,
        failure: Failure,
    ) {
        let settings = &self.inner.ctx.settings;
        let counters = self.counters(&pipeline.name);
        counters.failures.fetch_add(1, Ordering::Relaxed);
        let outcome = |outcome: &str| {
            self.inner
                .metrics
                .inputs
                .get_or_create(&OutcomeLabels { pipeline: pipeline.name.clone(), outcome: outcome.to_owned() })
                .inc();
        };
        let key = run::run_aggregate(&pipeline.name, pipeline.version, &input.cid());
        // Best effort, after whatever else wrote to the run's journal.
        let journal = |event_type: &'static str, payload| {
            run::journal(&self.inner.ctx.store, &key, ExpectedVersion::Any, event_type, payload, input.cid())
        };
        if delivered < settings.max_attempts {
            let delay = retry_delay(settings, delivered);
            warn!(pipeline = %pipeline.name, input = %input.cid(), attempt = delivered, retry_in = ?delay, %failure, "an attempt failed; retrying later");
            let payload = serde_json::json!({"attempt": delivered, "stage": failure.stage, "reason": failure.reason, "retry_in_ms": delay.as_millis() as u64});
            let _ = journal(run::events::FAILED, payload).await;
            let _ = message.ack_with(AckKind::Nak(Some(delay))).await;
            outcome("failed");
            return;
        }
        warn!(pipeline = %pipeline.name, input = %input.cid(), attempts = delivered, %failure, "giving up: the input goes to the dead-letter stream");
        let letter = dead_letter(pipeline, input, delivered, &failure);
        if let Err(error) = self.inner.dead_letters.put(&letter).await {
            warn!(%error, "writing the dead letter failed; the input will be delivered again");
            let _ = message.ack_with(AckKind::Nak(Some(Duration::from_secs(5)))).await;
            return;
        }
        let payload = serde_json::json!({"attempts": delivered, "stage": failure.stage, "reason": failure.reason});
        let _ = journal(run::events::DEAD_LETTERED, payload).await;
        let _ = message.ack_with(AckKind::Term).await;
        counters.dead_lettered.fetch_add(1, Ordering::Relaxed);
        outcome("dead_lettered");
    }
}

/// The dead letter of a failed input.
pub fn dead_letter(pipeline: &Pipeline, input: &Input, attempts: u64, failure: &Failure) -> DeadLetter {
    DeadLetter {
        pipeline: pipeline.name.clone(),
        version: pipeline.version,
        input_cid: input.cid().to_string(),
        input_seq: input.seq,
        stage: failure.stage.clone(),
        reason: failure.reason.clone(),
        attempts,
        failed_at: Timestamp::now().to_string(),
    }
}

/// The delay before attempt `attempt + 1`: the first delay doubled per
/// attempt, up to the maximum, with jitter (the store's retry policy).
pub fn retry_delay(settings: &crate::settings::PipelineSettings, attempt: u64) -> Duration {
    let policy = cim_store::retry::Policy::new(
        Duration::from_millis(settings.retry_first_delay_ms),
        Duration::from_millis(settings.retry_max_delay_ms),
        Duration::from_secs(u64::MAX / 4),
    );
    policy
        .backoff()
        .nth(attempt.saturating_sub(1) as usize)
        .unwrap_or(Duration::from_millis(settings.retry_max_delay_ms))
}

/// Verifies a delivered message as an event of the store: its bytes hash to
/// the CID in `Nats-Msg-Id`, decode as an envelope, and belong to the
/// aggregate of its subject.
pub fn decode(names: &Names, message: &jetstream::Message, seq: u64) -> Result<Event, String> {
    let cid: Cid = message
        .headers
        .as_ref()
        .and_then(|h| h.get(async_nats::header::NATS_MESSAGE_ID))
        .ok_or("no Nats-Msg-Id header")?
        .as_str()
        .parse()
        .map_err(|e| format!("its Nats-Msg-Id is not a CID: {e}"))?;
    let event = Event::from_block(&cid, &message.payload).map_err(|e| e.to_string())?;
    let envelope = &event.envelope;
    if names.aggregate_of_subject(message.subject.as_str())
        != Some((envelope.aggregate_type(), envelope.aggregate_id()))
    {
        return Err(format!(
            "it belongs to {} but is stored under {} (sequence {seq})",
            envelope.aggregate(),
            message.subject
        ));
    }
    Ok(event)
}
