//! One input through a pipeline: its stages, its sinks, and its journal.
//!
//! Exactly-once effects (`docs/spec/pipelines.md` §5). A run of version
//! `v` of pipeline `p` on input `c` is keyed `p:v<v>:<c>`; its journal is
//! the aggregate `pipeline-run/<key>`:
//!
//! - `RunStarted` before the first stage with effects, and `StageCompleted`
//!   (with the stage's values) after each such stage, so a redelivered input
//!   resumes after the last journaled stage instead of doing it again;
//! - `RunCompleted` (parents: the input; payload: the outputs' CIDs) last.
//!   A redelivered input whose run completed is acknowledged and nothing
//!   runs.
//!
//! Every effect is also idempotent on its own, for a crash between the
//! effect and its journal entry: an appended output (mode `new`) starts an
//! aggregate named from (pipeline, version, input, output index) with the
//! input's timestamp, so its bytes and CID are the same every time and the
//! store finds it already stored; in mode `chain` the DAG is searched for
//! an identical event linking the input; a created unit has an id derived
//! the same way (`unit_exists` means done); an update is skipped when the
//! unit already has an event caused by the input; objects are
//! content-addressed.

use std::sync::Arc;
use std::time::Duration;

use cim_cid::{AggregateKey, Cid, Event, NewEvent, Timestamp, ipld_from_json, ipld_to_json};
use cim_ius_api::{Create, Get, IusCode, Relate, Target, Update};
use cim_pipeline_api::{RUN_AGGREGATE, RunOutcome};
use cim_store::{AggregateQuery, AppendOptions, EventStore, ExpectedVersion, ObjectStore};
use cim_wire::RequestError;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::compile::{Compiled, CompiledSink, Op, ReadAs};
use crate::settings::PipelineSettings;

/// Event types of `pipeline-run/<run>`.
pub mod events {
    /// A manual run's input.
    pub const REQUESTED: &str = "RunRequested";
    /// The run began a stage with effects.
    pub const STARTED: &str = "RunStarted";
    /// A stage with effects completed; its values.
    pub const STAGE_COMPLETED: &str = "StageCompleted";
    /// The run completed; its outputs.
    pub const COMPLETED: &str = "RunCompleted";
    /// An attempt failed (and will be retried).
    pub const FAILED: &str = "RunFailed";
    /// The input went to the dead-letter stream.
    pub const DEAD_LETTERED: &str = "RunDeadLettered";
}

/// What runs need. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Context {
    /// The event store (its DAG built on first use).
    pub store: EventStore,
    /// The object store.
    pub objects: ObjectStore,
    /// The IUS.
    pub ius: cim_ius_api::Client,
    /// The registry (remote stages).
    pub registry: cim_registry_api::Client,
    /// The NATS connection (remote stages, notifications).
    pub client: async_nats::Client,
    /// Settings.
    pub settings: Arc<PipelineSettings>,
}

/// An input: a verified event and its JSON form.
#[derive(Debug, Clone)]
pub struct Input {
    /// The event.
    pub event: Event,
    /// Its stream sequence.
    pub seq: u64,
    /// What the stages see.
    pub json: Value,
}

impl Input {
    /// The input of a stored event.
    pub fn new(event: Event, seq: u64) -> Self {
        let envelope = &event.envelope;
        let json = json!({
            "cid": event.cid.to_string(),
            "seq": seq,
            "aggregate_type": envelope.aggregate_type(),
            "aggregate_id": envelope.aggregate_id(),
            "event_type": envelope.event_type(),
            "version": envelope.version(),
            "schema_version": envelope.schema_version(),
            "timestamp_us": envelope.timestamp().unix_micros(),
            "time": envelope.timestamp().to_string(),
            "prev": envelope.prev().map(ToString::to_string),
            "parents": envelope.parents().iter().map(ToString::to_string).collect::<Vec<_>>(),
            "payload": ipld_to_json(envelope.payload()).unwrap_or(Value::Null),
        });
        Self { event, seq, json }
    }

    /// Its CID.
    pub fn cid(&self) -> Cid {
        self.event.cid
    }
}

/// Which pipeline version runs.
#[derive(Debug, Clone)]
pub struct Pipeline {
    /// Its name.
    pub name: String,
    /// The version.
    pub version: u64,
    /// Compiled.
    pub compiled: Arc<Compiled>,
}

/// A failed attempt: in which stage (or sink), and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The stage or sink, if the failure is in one.
    pub stage: Option<String>,
    /// Why.
    pub reason: String,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.stage {
            Some(stage) => write!(f, "{stage}: {}", self.reason),
            None => f.write_str(&self.reason),
        }
    }
}

fn fail(stage: &str, reason: impl Into<String>) -> Failure {
    Failure { stage: Some(stage.to_owned()), reason: reason.into() }
}

fn run_failure(reason: impl Into<String>) -> Failure {
    Failure { stage: None, reason: reason.into() }
}

/// The run's key: `<pipeline>:v<version>:<input CID>`.
pub fn run_key(name: &str, version: u64, input: &Cid) -> String {
    format!("{name}:v{version}:{input}")
}

/// The run's journal aggregate.
pub fn run_aggregate(name: &str, version: u64, input: &Cid) -> AggregateKey {
    AggregateKey::new(RUN_AGGREGATE, run_key(name, version, input)).expect("run keys are valid aggregate ids")
}

/// A short, stable name for output `parts` of a run: 24 hex digits of a sha2-256.
pub fn derived_id(parts: &[&str]) -> String {
    let mut hash = Sha256::new();
    for part in parts {
        hash.update(part.as_bytes());
        hash.update([0]);
    }
    let digest = hash.finalize();
    digest.iter().take(12).map(|b| format!("{b:02x}")).collect()
}

/// What the journal says of an earlier attempt.
#[derive(Debug, Default)]
struct Journal {
    /// How many events it holds.
    events: u64,
    started: bool,
    /// Values after stage `index`, for journaled stages.
    stages: Vec<(usize, Vec<Value>)>,
    /// The outputs of a completed run.
    completed: Option<Vec<String>>,
}

async fn read_journal(store: &EventStore, key: &AggregateKey) -> Result<Journal, Failure> {
    let events = store
        .read_aggregate(key, AggregateQuery::all())
        .await
        .map_err(|e| run_failure(format!("reading the run's journal: {e}")))?;
    let mut journal = Journal { events: events.len() as u64, ..Journal::default() };
    for stored in events {
        let envelope = &stored.event.envelope;
        let payload = ipld_to_json(envelope.payload()).unwrap_or(Value::Null);
        match envelope.event_type() {
            events::STARTED => journal.started = true,
            events::STAGE_COMPLETED => {
                let index = payload["index"].as_u64().unwrap_or(u64::MAX) as usize;
                let values = payload["values"].as_array().cloned().unwrap_or_default();
                journal.stages.push((index, values));
            }
            events::COMPLETED => {
                let outputs = payload["outputs"]
                    .as_array()
                    .map(|a| a.iter().filter_map(|o| o["/"].as_str().map(str::to_owned)).collect())
                    .unwrap_or_default();
                journal.completed = Some(outputs);
            }
            _ => {}
        }
    }
    Ok(journal)
}

/// Appends one journal event; its parent is the input, which the engine
/// read from the stream and verified.
pub async fn journal(
    store: &EventStore,
    key: &AggregateKey,
    expected: ExpectedVersion,
    event_type: &str,
    payload: Value,
    input: Cid,
) -> Result<Cid, Failure> {
    let payload = ipld_from_json(&payload).map_err(|e| run_failure(format!("encoding {event_type}: {e}")))?;
    let event = NewEvent::new(event_type, payload).with_parents(vec![input]);
    let options = AppendOptions { verified_parents: &[input], ..AppendOptions::default() };
    store
        .append_with(key, expected, vec![event], options)
        .await
        .map(|appended| appended.last_cid())
        .map_err(|e| run_failure(format!("journaling {event_type}: {e}")))
}

fn link(cid: &str) -> Value {
    json!({ "/": cid })
}

/// Runs `pipeline` on `input`. With `check_journal` (a redelivery, a replay)
/// an earlier attempt's journal is read first: a completed run does nothing,
/// a partial one resumes.
pub async fn execute(
    ctx: &Context,
    pipeline: &Pipeline,
    input: &Input,
    check_journal: bool,
) -> Result<RunOutcome, Failure> {
    let input_cid = input.cid();
    let key = run_aggregate(&pipeline.name, pipeline.version, &input_cid);
    let outcome = |outputs: Vec<String>, values: Vec<Value>, already_done: bool| RunOutcome {
        pipeline: pipeline.name.clone(),
        version: pipeline.version,
        run: key.aggregate_id().to_owned(),
        input_cid: input_cid.to_string(),
        outputs,
        values,
        already_done,
        filtered: false,
    };
    let earlier = if check_journal { read_journal(&ctx.store, &key).await? } else { Journal::default() };
    // The journal's length as far as this run knows: its appends expect
    // exactly that, so they need no read of its head (a first delivery
    // expects an empty journal; if another attempt wrote one, the append
    // fails and the retry reads it).
    let mut journaled = earlier.events;
    let mut next_journal = || {
        journaled += 1;
        ExpectedVersion::Exact(journaled - 1)
    };
    if let Some(outputs) = earlier.completed {
        return Ok(outcome(outputs, Vec::new(), true));
    }
    let compiled = &pipeline.compiled;
    let mut values = vec![input.json.clone()];
    let mut started = earlier.started;
    let resume_after = earlier.stages.iter().map(|(i, _)| *i).max();
    for (index, stage) in compiled.stages.iter().enumerate() {
        if let Some(after) = resume_after
            && index <= after
        {
            if index == after {
                values =
                    earlier.stages.iter().rev().find(|(i, _)| *i == after).map(|(_, v)| v.clone()).unwrap_or_default();
            }
            continue;
        }
        if stage.has_effects() && !started {
            journal(
                &ctx.store,
                &key,
                next_journal(),
                events::STARTED,
                json!({"pipeline": pipeline.name, "version": pipeline.version, "input": link(&input_cid.to_string())}),
                input_cid,
            )
            .await?;
            started = true;
        }
        let mut next = Vec::new();
        for (value_index, value) in values.iter().enumerate() {
            let outputs = apply(ctx, pipeline, input, index, value_index, value, check_journal)
                .await
                .map_err(|reason| fail(&stage.name, reason))?;
            next.extend(outputs);
            if next.len() > ctx.settings.max_values {
                return Err(fail(
                    &stage.name,
                    format!("more than {} values (pipeline.max_values)", ctx.settings.max_values),
                ));
            }
        }
        values = next;
        if stage.has_effects() {
            journal(
                &ctx.store,
                &key,
                next_journal(),
                events::STAGE_COMPLETED,
                json!({"stage": stage.name, "index": index, "values": values}),
                input_cid,
            )
            .await?;
        }
    }
    if values.is_empty() && !started {
        // Filtered out before any effect: nothing to journal (a redelivery
        // filters it out the same way).
        return Ok(RunOutcome { filtered: true, ..outcome(Vec::new(), values, false) });
    }
    let mut outputs = Vec::new();
    let sinks = compiled.sinks.len();
    for (value_index, value) in values.iter().enumerate() {
        for (sink_index, sink) in compiled.sinks.iter().enumerate() {
            let index = value_index * sinks + sink_index;
            let name = format!("sinks[{sink_index}]");
            if let Some(cid) =
                sink_one(ctx, pipeline, input, index, sink, value, check_journal).await.map_err(|r| fail(&name, r))?
            {
                outputs.push(cid.to_string());
            }
        }
    }
    let payload = json!({
        "pipeline": pipeline.name,
        "version": pipeline.version,
        "input": link(&input_cid.to_string()),
        "outputs": outputs.iter().map(|c| link(c)).collect::<Vec<_>>(),
        "values": values.len(),
    });
    journal(&ctx.store, &key, next_journal(), events::COMPLETED, payload, input_cid).await?;
    Ok(outcome(outputs, values, false))
}

/// A jq expression's single value as a string.
fn string_of(program: &crate::jq::Program, value: &Value, what: &str) -> Result<String, String> {
    match program.run_one(value).map_err(|e| format!("{what}: {e}"))? {
        Value::String(text) => Ok(text),
        other => Err(format!("{what} must be a string, not {other}")),
    }
}

/// A CID given as a string or as a DAG-JSON link.
fn cid_of(program: &crate::jq::Program, value: &Value) -> Result<Cid, String> {
    let given = program.run_one(value).map_err(|e| format!("cid: {e}"))?;
    let text = match &given {
        Value::String(text) => text.as_str(),
        Value::Object(map) if map.len() == 1 && map.get("/").is_some_and(Value::is_string) => {
            map["/"].as_str().unwrap_or_default()
        }
        other => return Err(format!("cid must be a CID string or link, not {other}")),
    };
    text.parse().map_err(|e| format!("cid {text:?} is not a CID: {e}"))
}

fn with(value: &Value, key: &str, added: Value) -> Result<Value, String> {
    let mut value = value.clone();
    match value.as_object_mut() {
        Some(map) => {
            map.insert(key.to_owned(), added);
            Ok(value)
        }
        None => Err(format!("cannot add `{key}`: the value is not an object")),
    }
}

fn ius_error(what: &str, error: RequestError<IusCode>) -> String {
    format!("{what}: {error}")
}

async fn object_bytes(ctx: &Context, cid: &Cid) -> Result<Vec<u8>, String> {
    let meta = ctx
        .objects
        .stat(cid)
        .await
        .map_err(|e| format!("reading object {cid}: {e}"))?
        .ok_or_else(|| format!("object {cid} is not in the object store"))?;
    if meta.size > ctx.settings.max_object_bytes {
        return Err(format!(
            "object {cid} has {} bytes; stages read at most {} (pipeline.max_object_bytes)",
            meta.size, ctx.settings.max_object_bytes
        ));
    }
    ctx.objects.get_bytes(cid).await.map_err(|e| format!("reading object {cid}: {e}"))
}

/// Applies stage `index` to one value.
async fn apply(
    ctx: &Context,
    pipeline: &Pipeline,
    input: &Input,
    index: usize,
    value_index: usize,
    value: &Value,
    redelivered: bool,
) -> Result<Vec<Value>, String> {
    let stage = &pipeline.compiled.stages[index];
    let limit = ctx.settings.max_values;
    match &stage.op {
        Op::Filter(program) => {
            Ok(if program.test(value).map_err(|e| e.to_string())? { vec![value.clone()] } else { vec![] })
        }
        Op::Transform(program) => program.run(value, limit).map_err(|e| e.to_string()),
        Op::FanOut(program) => match program.run_one(value).map_err(|e| e.to_string())? {
            Value::Array(items) => Ok(items),
            other => Err(format!("fan-out needs an array, not {other}")),
        },
        Op::EnrichUnit { id, into } => {
            let id = string_of(id, value, "id")?;
            let view = ctx
                .ius
                .get(&Get { id: Some(id.clone()), ..Get::default() })
                .await
                .map_err(|e| ius_error(&format!("reading unit {id}"), e))?;
            let state = serde_json::to_value(&view.state).map_err(|e| e.to_string())?;
            Ok(vec![with(
                value,
                into,
                json!({"state": state, "state_cid": view.state_cid, "event_cid": view.event_cid}),
            )?])
        }
        Op::EnrichObject { cid, read_as, into } => {
            let cid = cid_of(cid, value)?;
            let bytes = object_bytes(ctx, &cid).await?;
            let mut object = json!({"cid": cid.to_string(), "size": bytes.len()});
            match read_as {
                ReadAs::Text => object["text"] = Value::String(String::from_utf8_lossy(&bytes).into_owned()),
                ReadAs::Json => {
                    object["json"] =
                        serde_json::from_slice(&bytes).map_err(|e| format!("object {cid} is not JSON: {e}"))?
                }
                ReadAs::Base64 => object["base64"] = Value::String(base64(&bytes)),
            }
            Ok(vec![with(value, into, object)?])
        }
        Op::PdfText { cid, into } => {
            let cid = cid_of(cid, value)?;
            let bytes = object_bytes(ctx, &cid).await?;
            let timeout = Duration::from_secs(ctx.settings.pdf_timeout_secs);
            let pages = crate::media::pdf_text(bytes, timeout).await?;
            let text = pages.join("\n");
            Ok(vec![with(
                value,
                into,
                json!({"cid": cid.to_string(), "pages": pages.len(), "text": text, "page_texts": pages}),
            )?])
        }
        Op::ImageFacts { cid, into } => {
            let cid = cid_of(cid, value)?;
            let bytes = object_bytes(ctx, &cid).await?;
            let facts = crate::media::image_facts(&bytes)?;
            let mut facts = facts;
            facts["cid"] = Value::String(cid.to_string());
            Ok(vec![with(value, into, facts)?])
        }
        Op::IusCreate { kind, content, metadata, tags, relate, into } => {
            let input_cid = input.cid().to_string();
            let id = format!(
                "p-{}",
                derived_id(&[
                    &pipeline.name,
                    &pipeline.version.to_string(),
                    &input_cid,
                    &index.to_string(),
                    &value_index.to_string()
                ])
            );
            let content = content.run_one(value).map_err(|e| format!("content: {e}"))?;
            let metadata = match metadata {
                Some(program) => program.run_one(value).map_err(|e| format!("metadata: {e}"))?,
                None => json!({}),
            };
            let command = Create {
                kind: kind.clone(),
                id: Some(id.clone()),
                content,
                metadata,
                tags: tags.clone(),
                caused_by: vec![input_cid.clone()],
            };
            let committed = match ctx.ius.create(&command).await {
                Ok(committed) => json!(committed),
                Err(e) if e.is(IusCode::UnitExists) => {
                    // An earlier attempt created it: only if the input caused it.
                    let history =
                        ctx.ius.history(&id).await.map_err(|e| ius_error(&format!("reading unit {id}"), e))?;
                    let first = history.events.first().ok_or_else(|| format!("unit {id} has no history"))?;
                    if !first.parents.contains(&input_cid) {
                        return Err(format!("unit {id} exists and was not created by this input"));
                    }
                    let last = history.events.last().unwrap_or(first);
                    json!({"id": id, "version": last.version, "event_cid": first.cid, "state_cid": last.payload["state"]})
                }
                Err(e) => return Err(ius_error("creating the unit", e)),
            };
            if let Some((relation, to)) = relate {
                let to = string_of(to, value, "relate.to")?;
                let command = Relate {
                    target: Target { id: id.clone(), expected_version: None, caused_by: vec![input_cid.clone()] },
                    relation: relation.clone(),
                    to,
                };
                match ctx.ius.relate(&command).await {
                    Ok(_) => {}
                    Err(e) if e.is(IusCode::NoChange) => {}
                    Err(e) => return Err(ius_error("relating the unit", e)),
                }
            }
            Ok(vec![with(value, into, committed)?])
        }
        Op::IusUpdate { id, patch, into } => {
            let id = string_of(id, value, "id")?;
            let input_cid = input.cid().to_string();
            if redelivered {
                let history = ctx.ius.history(&id).await.map_err(|e| ius_error(&format!("reading unit {id}"), e))?;
                if let Some(done) =
                    history.events.iter().find(|e| e.event_type == "UnitUpdated" && e.parents.contains(&input_cid))
                {
                    return Ok(vec![with(
                        value,
                        into,
                        json!({"id": id, "version": done.version, "event_cid": done.cid}),
                    )?]);
                }
            }
            let patch = patch.run_one(value).map_err(|e| format!("patch: {e}"))?;
            let command =
                Update { target: Target { id: id.clone(), expected_version: None, caused_by: vec![input_cid] }, patch };
            let committed = ctx.ius.update(&command).await.map_err(|e| ius_error(&format!("updating unit {id}"), e))?;
            Ok(vec![with(value, into, json!(committed))?])
        }
        Op::PutObject { content, into } => {
            let bytes = match content.run_one(value).map_err(|e| format!("content: {e}"))? {
                Value::String(text) => text.into_bytes(),
                other => serde_json::to_vec(&other).map_err(|e| e.to_string())?,
            };
            let cid = ctx.objects.put_bytes(&bytes).await.map_err(|e| format!("putting the object: {e}"))?;
            Ok(vec![with(value, into, json!({"cid": cid.to_string(), "size": bytes.len()}))?])
        }
        Op::Remote { stage: remote, timeout, options } => {
            crate::remote::call(ctx, pipeline, input, &stage.name, remote, *timeout, options, value).await
        }
    }
}

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Sends one value to one sink; the CID of an appended event.
async fn sink_one(
    ctx: &Context,
    pipeline: &Pipeline,
    input: &Input,
    index: usize,
    sink: &CompiledSink,
    value: &Value,
    redelivered: bool,
) -> Result<Option<Cid>, String> {
    let input_cid = input.cid();
    match sink {
        CompiledSink::Append { aggregate_type, event_type, aggregate_id, payload, parents, chain } => {
            let id = match aggregate_id {
                Some(program) => string_of(program, value, "aggregate_id")?,
                None => format!(
                    "{}-{}",
                    pipeline.name,
                    derived_id(&[
                        &pipeline.name,
                        &pipeline.version.to_string(),
                        &input_cid.to_string(),
                        &index.to_string()
                    ])
                ),
            };
            let key =
                AggregateKey::new(aggregate_type.as_str(), id.as_str()).map_err(|e| format!("aggregate_id: {e}"))?;
            let payload = match payload {
                Some(program) => program.run_one(value).map_err(|e| format!("payload: {e}"))?,
                None => value.clone(),
            };
            let payload = ipld_from_json(&payload).map_err(|e| format!("payload: {e}"))?;
            let mut all_parents = vec![input_cid];
            if let Some(program) = parents {
                match program.run_one(value).map_err(|e| format!("parents: {e}"))? {
                    Value::Array(items) => {
                        for item in items {
                            let text = item.as_str().ok_or_else(|| format!("parents: {item} is not a CID string"))?;
                            let cid: Cid = text.parse().map_err(|e| format!("parents: {text:?} is not a CID: {e}"))?;
                            if !all_parents.contains(&cid) {
                                all_parents.push(cid);
                            }
                        }
                    }
                    other => return Err(format!("parents must be an array of CIDs, not {other}")),
                }
            }
            let timestamp = input.event.envelope.timestamp();
            let event = NewEvent::new(event_type.as_str(), payload).with_parents(all_parents).with_timestamp(timestamp);
            let options = AppendOptions { verified_parents: &[input_cid], ..AppendOptions::default() };
            if *chain {
                if redelivered && let Some(cid) = find_chained(ctx, &key, input_cid, &event).await? {
                    return Ok(Some(cid));
                }
                let appended = ctx
                    .store
                    .append_with(&key, ExpectedVersion::Any, vec![event], options)
                    .await
                    .map_err(|e| format!("appending to {key}: {e}"))?;
                return Ok(Some(appended.last_cid()));
            }
            match ctx.store.append_with(&key, ExpectedVersion::Exact(0), vec![event], options).await {
                Ok(appended) => Ok(Some(appended.last_cid())),
                Err(cim_store::Error::ConcurrencyConflict { actual, .. }) => Err(format!(
                    "{key} already has {actual} events that are not this output (mode \"new\" starts a new aggregate per output)"
                )),
                Err(e) => Err(format!("appending to {key}: {e}")),
            }
        }
        CompiledSink::Notify { payload } => {
            let body = match payload {
                Some(program) => program.run_one(value).map_err(|e| format!("payload: {e}"))?,
                None => value.clone(),
            };
            let message = json!({"pipeline": pipeline.name, "version": pipeline.version, "input_cid": input_cid.to_string(), "index": index, "value": body});
            let mut headers = async_nats::HeaderMap::new();
            headers.insert(
                async_nats::header::NATS_MESSAGE_ID,
                format!("{}:{index}", run_key(&pipeline.name, pipeline.version, &input_cid)).as_str(),
            );
            let bytes = serde_json::to_vec(&message).map_err(|e| e.to_string())?;
            ctx.client
                .publish_with_headers(format!("cim.event.pipeline.{}", pipeline.name), headers, bytes.into())
                .await
                .map_err(|e| format!("publishing the notification: {e}"))?;
            Ok(None)
        }
    }
}

/// In mode `chain`, an event of `key` that links the input and equals
/// `event` but for its place in the chain: an earlier attempt's output.
async fn find_chained(ctx: &Context, key: &AggregateKey, input: Cid, event: &NewEvent) -> Result<Option<Cid>, String> {
    let dag = ctx.store.dag().await.map_err(|e| e.to_string())?;
    dag.catch_up().await.map_err(|e| e.to_string())?;
    let candidates: Vec<Cid> = {
        let dag = dag.read();
        match dag.descendants(&input, Some(1)) {
            Ok(walk) => walk.filter(|e| e.aggregate == key).map(|e| e.cid).collect(),
            Err(_) => Vec::new(),
        }
    };
    for cid in candidates {
        let stored = ctx.store.event(&cid).await.map_err(|e| e.to_string())?;
        let envelope = &stored.event.envelope;
        if envelope.event_type() == event.event_type
            && envelope.payload() == &event.payload
            && envelope.parents() == event.parents.as_slice()
            && Some(envelope.timestamp()) == event.timestamp
        {
            return Ok(Some(cid));
        }
    }
    Ok(None)
}

/// The time of an input as a timestamp (manual runs use now).
pub fn now() -> Timestamp {
    Timestamp::now()
}
