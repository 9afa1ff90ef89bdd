//! The engine as a service: start-up and its request API.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use cim_cid::{AggregateKey, Timestamp, ipld_from_json};
use cim_pipeline_api::{
    self as api, ConsumerStatus, DeadLetters, DefinitionError, ListDeadLetters, NameRef, PIPELINE_AGGREGATE,
    PipelineCode, PipelineList, PipelineStatus, PipelineSummary, PipelineView, Put, PutPipeline, RUN_AGGREGATE,
    ReplayDeadLetters, ReplayPipeline, Replayed, ReplayedDeadLetters, RunManual, RunOutcome, Status, StatusQuery,
};
use cim_runtime::{Runtime, ServiceDefinition};
use cim_store::{EventStore, ExpectedVersion, ObjectStore, StoredEvent};
use cim_wire::ApiError;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::compile::{Compiled, Start, check_cycles, compile, triggered};
use crate::deadletter::DeadLetters as DeadLetterStream;
use crate::definition::{guess_format, parse};
use crate::engine::{Engine, Metrics, dead_letter};
use crate::projection::{Defined, Projection, ReplayedPayload, consumer_name, events};
use crate::run::{self, Context, Input, Pipeline};
use crate::settings::PipelineSettings;

type Reply<T> = Result<T, ApiError<PipelineCode>>;

/// A started engine: its state and its workers' stop token.
#[derive(Debug, Clone)]
pub struct App {
    engine: Engine,
    settings: Arc<PipelineSettings>,
}

fn internal(what: &str, error: impl std::fmt::Display) -> ApiError<PipelineCode> {
    ApiError::unavailable(format!("{what}: {error}"))
}

fn invalid(errors: Vec<DefinitionError>) -> ApiError<PipelineCode> {
    let summary = errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ");
    ApiError::api(PipelineCode::InvalidDefinition, format!("the definition is refused: {summary}"))
        .with_details(json!({ "errors": errors }))
}

fn unknown(name: &str) -> ApiError<PipelineCode> {
    ApiError::api(PipelineCode::UnknownPipeline, format!("no pipeline {name:?}")).with_details(json!({"name": name}))
}

impl App {
    /// Opens the stores, the dead-letter stream and the projection, and
    /// starts the workers (stopped by the runtime's shutdown).
    pub async fn open(runtime: &Runtime<PipelineSettings>) -> anyhow::Result<Self> {
        let config = runtime.config();
        let client = runtime.client().clone();
        let settings = Arc::new(config.component.clone());
        crate::jq::set_max_value_bytes(settings.max_value_bytes);
        // No whole-store DAG up front: outputs link inputs the engine read
        // and verified itself. It is built on first use (parents named by a
        // definition's `parents`, `chain` outputs found again, dead-letter
        // replays by CID).
        let store = EventStore::open(client.clone(), config.store.clone()).await?;
        let objects = ObjectStore::open(client.clone(), &config.store).await?;
        let dead_letters = DeadLetterStream::open(client.clone(), &config.store).await?;
        let projection = Projection::start(&store, settings.rules()).await?;
        let ctx = Context {
            store,
            objects,
            ius: cim_ius_api::Client::with_caller(runtime.caller()),
            registry: cim_registry_api::Client::with_caller(runtime.caller()),
            client,
            settings: settings.clone(),
        };
        let metrics = Metrics::default();
        metrics.register(runtime.metrics());
        let engine = Engine::new(ctx, projection, dead_letters, runtime.instance_id().to_owned(), metrics).await?;
        let stop: CancellationToken = runtime.shutdown_token();
        tokio::spawn(engine.clone().run(stop));
        Ok(Self { engine, settings })
    }

    /// The engine.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// The request API.
    pub fn definition(self) -> ServiceDefinition {
        let app = Arc::new(self);
        let mut definition = ServiceDefinition::of(api::SERVICE, env!("CARGO_PKG_VERSION"))
            .description("CIM Pipeline Engine: declarative, event-triggered pipelines with exactly-once effects")
            .capability("pipelines.read")
            .capability("pipelines.write")
            .capability("pipelines.run");
        macro_rules! route {
            ($endpoint:expr, $method:ident) => {{
                let app = app.clone();
                definition = definition.handle(&$endpoint, move |request| {
                    let app = app.clone();
                    async move { app.$method(request).await }
                });
            }};
        }
        route!(api::PUT, put);
        route!(api::VALIDATE, validate);
        route!(api::GET, get);
        route!(api::LIST, list);
        route!(api::PAUSE, pause);
        route!(api::RESUME, resume);
        route!(api::REPLAY, replay);
        route!(api::RUN, run);
        route!(api::STATUS, status);
        route!(api::DEAD_LETTERS, dead_letters);
        route!(api::REPLAY_DEAD_LETTERS, replay_dead_letters);
        definition
    }

    /// Parses, checks and compiles a definition, including cycles with the
    /// other pipelines.
    fn check(&self, request: &PutPipeline) -> Reply<(Compiled, api::SourceFormat)> {
        let format = request.format.unwrap_or_else(|| guess_format(&request.source));
        let definition = parse(&request.source, format).map_err(|e| invalid(vec![e]))?;
        let compiled = compile(definition, &self.settings.rules()).map_err(invalid)?;
        let projection = self.engine.projection().read();
        let others: Vec<Arc<Compiled>> = projection.pipelines.values().map(|p| p.current().compiled.clone()).collect();
        let others: Vec<&Compiled> = others.iter().map(Arc::as_ref).collect();
        check_cycles(&compiled, &others).map_err(|e| invalid(vec![e]))?;
        Ok((compiled, format))
    }

    async fn validate(&self, request: PutPipeline) -> Reply<PipelineView> {
        let (compiled, format) = self.check(&request)?;
        Ok(PipelineView {
            name: compiled.definition.name.clone(),
            version: 0,
            current_version: self.engine.projection().current(&compiled.definition.name).map_or(0, |c| c.0),
            paused: false,
            generation: 0,
            definition: Projection::definition_json(&compiled),
            source: request.source,
            format,
            event_cid: String::new(),
            triggers: Vec::new(),
            triggered_by: Vec::new(),
        })
    }

    async fn append(&self, name: &str, expected: u64, event_type: &str, payload: Value) -> Reply<StoredEvent> {
        let key = AggregateKey::new(PIPELINE_AGGREGATE, name).map_err(|e| ApiError::bad_request(e.to_string()))?;
        let payload = ipld_from_json(&payload).map_err(|e| ApiError::internal(e.to_string()))?;
        let event = cim_cid::NewEvent::new(event_type, payload).with_timestamp(Timestamp::now());
        // The chain's previous event, read before appending: the follower may
        // apply the new event from the stream before this request goes on.
        let prev = if expected == 0 {
            None
        } else {
            self.engine.projection().read().pipelines.get(name).filter(|p| p.head.0 == expected).map(|p| p.head.1)
        };
        let store = &self.engine.context().store;
        let appended = match store.append(&key, ExpectedVersion::Exact(expected), vec![event.clone()]).await {
            Ok(appended) => appended,
            Err(cim_store::Error::ConcurrencyConflict { actual, .. }) => {
                return Err(ApiError::api(PipelineCode::VersionConflict,
                    format!("pipeline {name} changed meanwhile (its aggregate is at version {actual}); read it and try again"),
                )
                .with_details(json!({"expected_version": expected, "current_version": actual}))
                .retryable());
            }
            Err(e) => return Err(internal("storing the pipeline's event", e)),
        };
        let stored = appended.events[0];
        // The stored event, rebuilt here to apply it at once; if that does not
        // give its CID (the projection moved), read it back instead.
        let rebuilt = cim_cid::EventEnvelope::chained(&key, stored.version, prev, event)
            .ok()
            .and_then(|envelope| cim_cid::Event::encode(envelope).ok())
            .map(|(event, _)| StoredEvent { seq: stored.seq, stored_at: Timestamp::now(), event })
            .filter(|rebuilt| rebuilt.event.cid == stored.cid);
        match rebuilt {
            Some(stored_event) => {
                self.engine.projection().apply_appended(stored_event.clone());
                Ok(stored_event)
            }
            None => store.event(&stored.cid).await.map_err(|e| internal("reading the stored event back", e)),
        }
    }

    async fn put(&self, request: PutPipeline) -> Reply<Put> {
        let (compiled, format) = self.check(&request)?;
        let name = compiled.definition.name.clone();
        let (aggregate_version, current) = {
            let state = self.engine.projection().read();
            match state.pipelines.get(&name) {
                Some(p) => (p.head.0, Some((p.current().version, Projection::definition_json(&p.current().compiled)))),
                None => (0, None),
            }
        };
        let current_version = current.as_ref().map_or(0, |c| c.0);
        if let Some(expected) = request.expected_version
            && expected != current_version
        {
            return Err(ApiError::api(
                PipelineCode::VersionConflict,
                format!("pipeline {name} is at version {current_version}, not {expected}"),
            )
            .with_details(json!({"expected_version": expected, "current_version": current_version}))
            .retryable());
        }
        if let Some((version, definition)) = &current
            && *definition == Projection::definition_json(&compiled)
        {
            let event_cid = {
                let state = self.engine.projection().read();
                state.pipelines.get(&name).map(|p| p.current().event_cid.to_string()).unwrap_or_default()
            };
            return Ok(Put { name, version: *version, event_cid, unchanged: true });
        }
        let (start_sequence, start_time) = if current.is_none() {
            match compiled.trigger.start {
                Start::New => {
                    let log =
                        self.engine.context().store.log_state().await.map_err(|e| internal("reading the stream", e))?;
                    (Some(log.last_seq + 1), None)
                }
                Start::All => (None, None),
                Start::Sequence(seq) => (Some(seq), None),
                Start::Time(time) => (None, Some(time.to_string())),
            }
        } else {
            (None, None)
        };
        let version = current_version + 1;
        let defined = Defined { version, source: request.source, format, start_sequence, start_time };
        let payload = serde_json::to_value(&defined).map_err(|e| ApiError::internal(e.to_string()))?;
        let stored = self.append(&name, aggregate_version, events::DEFINED, payload).await?;
        Ok(Put { name, version, event_cid: stored.event.cid.to_string(), unchanged: false })
    }

    async fn get(&self, request: NameRef) -> Reply<PipelineView> {
        let state = self.engine.projection().read();
        let pipeline = state.pipelines.get(&request.name).ok_or_else(|| unknown(&request.name))?;
        let version = match request.version {
            Some(v) => pipeline.versions.iter().find(|r| r.version == v).ok_or_else(|| {
                ApiError::api(PipelineCode::UnknownPipeline, format!("pipeline {} has no version {v}", request.name))
                    .with_details(json!({"name": request.name, "version": v}))
            })?,
            None => pipeline.current(),
        };
        let all: Vec<Arc<Compiled>> = state.pipelines.values().map(|p| p.current().compiled.clone()).collect();
        let triggers = triggered(&version.compiled, all.iter().map(Arc::as_ref))
            .into_iter()
            .map(|(c, _)| c.definition.name.clone())
            .collect();
        let triggered_by = all
            .iter()
            .filter(|other| triggered(other, [version.compiled.as_ref()]).len() == 1)
            .map(|c| c.definition.name.clone())
            .collect();
        Ok(PipelineView {
            name: pipeline.name.clone(),
            version: version.version,
            current_version: pipeline.current().version,
            paused: pipeline.paused,
            generation: pipeline.generation,
            definition: Projection::definition_json(&version.compiled),
            source: version.source.clone(),
            format: version.format,
            event_cid: version.event_cid.to_string(),
            triggers,
            triggered_by,
        })
    }

    fn summary(&self, name: &str) -> Reply<PipelineSummary> {
        let state = self.engine.projection().read();
        let p = state.pipelines.get(name).ok_or_else(|| unknown(name))?;
        let compiled = &p.current().compiled;
        Ok(PipelineSummary {
            name: p.name.clone(),
            version: p.current().version,
            paused: p.paused,
            generation: p.generation,
            description: compiled.definition.description.clone(),
            trigger: compiled.trigger.summary(),
        })
    }

    async fn list(&self, _: api::ListPipelines) -> Reply<PipelineList> {
        let names: Vec<String> = self.engine.projection().read().pipelines.keys().cloned().collect();
        let pipelines = names.iter().map(|n| self.summary(n)).collect::<Reply<Vec<_>>>()?;
        Ok(PipelineList { pipelines })
    }

    async fn set_paused(&self, name: &str, paused: bool) -> Reply<PipelineSummary> {
        let (head, is_paused) = {
            let state = self.engine.projection().read();
            let p = state.pipelines.get(name).ok_or_else(|| unknown(name))?;
            (p.head.0, p.paused)
        };
        if is_paused == paused {
            let what = if paused { "already paused" } else { "not paused" };
            return Err(ApiError::api(PipelineCode::NoChange, format!("pipeline {name} is {what}"))
                .with_details(json!({"name": name})));
        }
        let event_type = if paused { events::PAUSED } else { events::RESUMED };
        self.append(name, head, event_type, json!({})).await?;
        self.summary(name)
    }

    async fn pause(&self, request: NameRef) -> Reply<PipelineSummary> {
        self.set_paused(&request.name, true).await
    }

    async fn resume(&self, request: NameRef) -> Reply<PipelineSummary> {
        self.set_paused(&request.name, false).await
    }

    async fn replay(&self, request: ReplayPipeline) -> Reply<Replayed> {
        let (head, generation) = {
            let state = self.engine.projection().read();
            let p = state.pipelines.get(&request.name).ok_or_else(|| unknown(&request.name))?;
            (p.head.0, p.generation)
        };
        let (start_sequence, start_time, from) = match (request.sequence, request.time) {
            (Some(_), Some(_)) => return Err(ApiError::bad_request("give a sequence or a time, not both")),
            (Some(0), None) => return Err(ApiError::bad_request("stream sequences start at 1")),
            (Some(seq), None) => (Some(seq), None, format!("stream sequence {seq}")),
            (None, Some(time)) => {
                let parsed = Timestamp::parse_rfc3339(&time).map_err(|e| ApiError::bad_request(e.to_string()))?;
                (None, Some(parsed.to_string()), format!("time {parsed}"))
            }
            (None, None) => (Some(1), None, "the first event".to_owned()),
        };
        let generation = generation + 1;
        let payload = serde_json::to_value(ReplayedPayload { generation, start_sequence, start_time })
            .map_err(|e| ApiError::internal(e.to_string()))?;
        self.append(&request.name, head, events::REPLAYED, payload).await?;
        Ok(Replayed {
            name: request.name.clone(),
            generation,
            consumer: consumer_name(&request.name, generation),
            from,
        })
    }

    async fn run(&self, request: RunManual) -> Reply<RunOutcome> {
        let (version, compiled, _) =
            self.engine.projection().current(&request.name).ok_or_else(|| unknown(&request.name))?;
        let ctx = self.engine.context();
        let key = AggregateKey::new(RUN_AGGREGATE, format!("{}:manual:{}", request.name, nuid::next()))
            .map_err(|e| ApiError::internal(e.to_string()))?;
        let payload = json!({"pipeline": request.name, "version": version, "input": request.input});
        let payload = ipld_from_json(&payload).map_err(|e| ApiError::bad_request(format!("the input: {e}")))?;
        let event = cim_cid::NewEvent::new(run::events::REQUESTED, payload).with_timestamp(Timestamp::now());
        let appended = ctx
            .store
            .append(&key, ExpectedVersion::Exact(0), vec![event])
            .await
            .map_err(|e| internal("storing the run's input", e))?;
        // Read back by its own aggregate (a read of the stream), not by CID:
        // the CID index is built by a follower that may not have it yet.
        let stored = ctx
            .store
            .read_aggregate(&key, cim_store::AggregateQuery::all())
            .await
            .map_err(|e| internal("reading the run's input", e))?
            .into_iter()
            .find(|stored| stored.event.cid == appended.last_cid())
            .ok_or_else(|| ApiError::internal("reading the run's input: the stored event is missing"))?;
        let mut input = Input::new(stored.event, stored.seq);
        // The stages see the given input as the payload.
        input.json["payload"] = request.input;
        let pipeline = Pipeline { name: request.name.clone(), version, compiled };
        match run::execute(ctx, &pipeline, &input, false).await {
            Ok(outcome) => {
                let counters = self.engine.counters(&request.name);
                counters.outputs.fetch_add(outcome.outputs.len() as u64, Ordering::Relaxed);
                Ok(outcome)
            }
            Err(failure) => Err(ApiError::api(PipelineCode::RunFailed, format!("the run failed: {failure}"))
                .with_details(
                    json!({"stage": failure.stage, "reason": failure.reason, "input_cid": input.cid().to_string()}),
                )),
        }
    }

    async fn status(&self, request: StatusQuery) -> Reply<Status> {
        let pipelines: Vec<(String, u64, bool, u64)> = {
            let state = self.engine.projection().read();
            state
                .pipelines
                .values()
                .filter(|p| request.name.as_ref().is_none_or(|n| *n == p.name))
                .map(|p| (p.name.clone(), p.current().version, p.paused, p.generation))
                .collect()
        };
        if let Some(name) = &request.name
            && pipelines.is_empty()
        {
            return Err(unknown(name));
        }
        let mut statuses = Vec::new();
        for (name, version, paused, generation) in pipelines {
            let consumer = consumer_name(&name, generation);
            let consumer = self.engine.consumer_info(&consumer).await.map(|info| ConsumerStatus {
                name: consumer,
                lag: info.num_pending,
                in_flight: info.num_ack_pending as u64,
                redelivered: info.num_redelivered as u64,
                ack_floor: info.ack_floor.stream_sequence,
            });
            let dead_letters =
                self.engine.dead_letters().count(&name).await.map_err(|e| internal("counting dead letters", e))?;
            let c = self.engine.counters(&name);
            let load = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
            statuses.push(PipelineStatus {
                name,
                version,
                paused,
                generation,
                consumer,
                dead_letters,
                completed: load(&c.completed),
                skipped: load(&c.skipped),
                duplicates: load(&c.duplicates),
                failures: load(&c.failures),
                dead_lettered: load(&c.dead_lettered),
                outputs: load(&c.outputs),
                rate_per_sec: c.rate(),
            });
        }
        Ok(Status { instance: self.engine.instance().to_owned(), pipelines: statuses })
    }

    async fn dead_letters(&self, request: ListDeadLetters) -> Reply<DeadLetters> {
        let limit = request.limit.unwrap_or(100).clamp(1, 10_000);
        let dead_letters = self
            .engine
            .dead_letters()
            .list(request.pipeline.as_deref(), limit)
            .await
            .map_err(|e| internal("reading the dead-letter stream", e))?;
        Ok(DeadLetters { dead_letters })
    }

    async fn replay_dead_letters(&self, request: ReplayDeadLetters) -> Reply<ReplayedDeadLetters> {
        let limit = request.limit.unwrap_or(100).clamp(1, 10_000);
        let letters = self
            .engine
            .dead_letters()
            .list(request.pipeline.as_deref(), usize::MAX)
            .await
            .map_err(|e| internal("reading the dead-letter stream", e))?;
        let ctx = self.engine.context();
        let mut replayed = Vec::new();
        let mut failed = Vec::new();
        for letter in
            letters.into_iter().filter(|l| request.input_cid.as_ref().is_none_or(|c| *c == l.input_cid)).take(limit)
        {
            let Some((version, compiled, _)) = self.engine.projection().current(&letter.pipeline) else {
                failed.push(DeadLetterFailure::gone(letter));
                continue;
            };
            let pipeline = Pipeline { name: letter.pipeline.clone(), version, compiled };
            let cid = match letter.input_cid.parse() {
                Ok(cid) => cid,
                Err(_) => {
                    failed.push(letter);
                    continue;
                }
            };
            let stored = match ctx.store.event(&cid).await {
                Ok(stored) => stored,
                Err(e) => {
                    failed.push(api::DeadLetter { reason: format!("the input cannot be read: {e}"), ..letter });
                    continue;
                }
            };
            let input = Input::new(stored.event, stored.seq);
            match run::execute(ctx, &pipeline, &input, true).await {
                Ok(_) => {
                    self.engine
                        .dead_letters()
                        .remove(&letter.pipeline, &letter.input_cid)
                        .await
                        .map_err(|e| internal("removing a replayed dead letter", e))?;
                    let counters = self.engine.counters(&letter.pipeline);
                    counters.outputs.fetch_add(0, Ordering::Relaxed);
                    replayed.push(letter.input_cid);
                }
                Err(failure) => {
                    let again = dead_letter(&pipeline, &input, letter.attempts + 1, &failure);
                    self.engine.dead_letters().put(&again).await.map_err(|e| internal("updating a dead letter", e))?;
                    failed.push(again);
                }
            }
        }
        Ok(ReplayedDeadLetters { replayed, failed })
    }
}

struct DeadLetterFailure;

impl DeadLetterFailure {
    fn gone(letter: api::DeadLetter) -> api::DeadLetter {
        api::DeadLetter { reason: format!("pipeline {} no longer exists", letter.pipeline), ..letter }
    }
}
