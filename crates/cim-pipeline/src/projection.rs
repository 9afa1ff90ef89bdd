//! The current set of pipelines: a `cim_store::Follower` of the `pipeline`
//! aggregates. Every change of a pipeline is an event of `pipeline/<name>`:
//! `PipelineDefined` (a version), `PipelinePaused`, `PipelineResumed`,
//! `PipelineReplayed` (a new generation of its consumer, from a position).
//! The instance that appends also applies the event at once, so its next
//! request sees it.

use std::collections::BTreeMap;
use std::sync::Arc;

use cim_cid::{Cid, ipld_to_json};
use cim_pipeline_api::{PIPELINE_AGGREGATE, SourceFormat};
use cim_store::{EventStore, Feed, Follower, FollowerState, Problem, StoredEvent};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::compile::{Compiled, Rules, compile};
use crate::definition::{Definition, parse};

/// Event types of `pipeline/<name>`.
pub mod events {
    /// A new version of the definition.
    pub const DEFINED: &str = "PipelineDefined";
    /// Inputs wait.
    pub const PAUSED: &str = "PipelinePaused";
    /// Inputs flow again.
    pub const RESUMED: &str = "PipelineResumed";
    /// A new consumer generation, from a position.
    pub const REPLAYED: &str = "PipelineReplayed";
}

/// Payload of `PipelineDefined`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Defined {
    /// The version this event makes (1, 2, ...).
    pub version: u64,
    /// The text as given.
    pub source: String,
    /// Its language.
    pub format: SourceFormat,
    /// Where the pipeline's first consumer starts (fixed when version 1 is
    /// stored, so every instance creates the same consumer).
    pub start_sequence: Option<u64>,
    /// Or the time it starts at, RFC 3339.
    pub start_time: Option<String>,
}

/// Payload of `PipelineReplayed`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplayedPayload {
    /// The new generation.
    pub generation: u64,
    /// From this stream sequence.
    pub start_sequence: Option<u64>,
    /// Or from this time, RFC 3339.
    pub start_time: Option<String>,
}

/// One version of a pipeline.
#[derive(Debug)]
pub struct Version {
    /// Its number.
    pub version: u64,
    /// The event that defined it.
    pub event_cid: Cid,
    /// The definition's text and language.
    pub source: String,
    /// Its language.
    pub format: SourceFormat,
    /// Compiled.
    pub compiled: Arc<Compiled>,
}

/// A pipeline as the projection holds it.
#[derive(Debug)]
pub struct Pipeline {
    /// Its name.
    pub name: String,
    /// Every version, oldest first.
    pub versions: Vec<Version>,
    /// Whether it is paused.
    pub paused: bool,
    /// Its consumer's generation (0 until replayed).
    pub generation: u64,
    /// Where the current generation's consumer starts: a sequence or a time.
    pub start_sequence: Option<u64>,
    /// Or a time, RFC 3339.
    pub start_time: Option<String>,
    /// The aggregate's version and head CID.
    pub head: (u64, Cid),
}

impl Pipeline {
    /// The current version.
    pub fn current(&self) -> &Version {
        self.versions.last().expect("a pipeline has a version")
    }

    /// The durable consumer of the current generation.
    pub fn consumer_name(&self) -> String {
        consumer_name(&self.name, self.generation)
    }
}

/// The durable consumer of a pipeline's generation.
pub fn consumer_name(name: &str, generation: u64) -> String {
    format!("pipeline-{name}-g{generation}")
}

/// The pipelines by name, and a counter of changes.
#[derive(Debug)]
pub struct Pipelines {
    rules: Rules,
    /// By name.
    pub pipelines: BTreeMap<String, Pipeline>,
    /// Bumped by every change.
    pub revision: u64,
}

impl Pipelines {
    fn apply_one(&mut self, stored: &StoredEvent) -> Result<(), String> {
        let envelope = &stored.event.envelope;
        let name = envelope.aggregate_id().to_owned();
        let version = envelope.version();
        if let Some(pipeline) = self.pipelines.get(&name)
            && pipeline.head.0 >= version
        {
            return Ok(()); // applied already (by this instance, at once)
        }
        let payload = ipld_to_json(envelope.payload()).map_err(|e| e.to_string())?;
        let head = (version, stored.event.cid);
        match envelope.event_type() {
            events::DEFINED => {
                let defined: Defined = serde_json::from_value(payload).map_err(|e| format!("PipelineDefined: {e}"))?;
                let definition: Definition = parse(&defined.source, defined.format).map_err(|e| e.to_string())?;
                let compiled = compile(definition, &self.rules)
                    .map_err(|e| e.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))?;
                let record = Version {
                    version: defined.version,
                    event_cid: stored.event.cid,
                    source: defined.source,
                    format: defined.format,
                    compiled: Arc::new(compiled),
                };
                match self.pipelines.get_mut(&name) {
                    Some(pipeline) => {
                        pipeline.versions.push(record);
                        pipeline.head = head;
                    }
                    None => {
                        self.pipelines.insert(
                            name.clone(),
                            Pipeline {
                                name,
                                versions: vec![record],
                                paused: false,
                                generation: 0,
                                start_sequence: defined.start_sequence,
                                start_time: defined.start_time,
                                head,
                            },
                        );
                    }
                }
            }
            other => {
                let pipeline =
                    self.pipelines.get_mut(&name).ok_or_else(|| format!("{other} before PipelineDefined"))?;
                match other {
                    events::PAUSED => pipeline.paused = true,
                    events::RESUMED => pipeline.paused = false,
                    events::REPLAYED => {
                        let replayed: ReplayedPayload =
                            serde_json::from_value(payload).map_err(|e| format!("PipelineReplayed: {e}"))?;
                        pipeline.generation = replayed.generation;
                        pipeline.start_sequence = replayed.start_sequence;
                        pipeline.start_time = replayed.start_time;
                    }
                    unknown => return Err(format!("unknown event type {unknown}")),
                }
                pipeline.head = head;
            }
        }
        self.revision += 1;
        Ok(())
    }
}

impl FollowerState for Pipelines {
    fn apply(&mut self, events: Vec<StoredEvent>, problems: &mut Vec<Problem>) {
        for stored in events {
            if let Err(reason) = self.apply_one(&stored) {
                tracing::error!(seq = stored.seq, cid = %stored.event.cid, %reason, "a pipeline event cannot be applied");
                problems.push(Problem::Rejected { seq: stored.seq, cid: stored.event.cid, reason });
            }
        }
    }
}

/// The projection of pipelines. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Projection {
    follower: Follower<Pipelines>,
}

impl Projection {
    /// Rebuilds it from the stream and follows the live tail.
    pub async fn start(store: &EventStore, rules: Rules) -> cim_store::Result<Self> {
        let state = Pipelines { rules, pipelines: BTreeMap::new(), revision: 0 };
        let follower = store.follow(Feed::AggregateType(PIPELINE_AGGREGATE.to_owned()), state).await?;
        Ok(Self { follower })
    }

    /// The follower.
    pub fn follower(&self) -> &Follower<Pipelines> {
        &self.follower
    }

    /// Applies an event this instance just appended.
    pub fn apply_appended(&self, stored: StoredEvent) {
        self.follower.apply_now(&[stored]);
    }

    /// Reads the state.
    pub fn read(&self) -> std::sync::RwLockReadGuard<'_, Pipelines> {
        self.follower.read()
    }

    /// The compiled current version of a pipeline, its version and whether it is paused.
    pub fn current(&self, name: &str) -> Option<(u64, Arc<Compiled>, bool)> {
        let state = self.read();
        let pipeline = state.pipelines.get(name)?;
        let current = pipeline.current();
        Some((current.version, current.compiled.clone(), pipeline.paused))
    }

    /// The definition of a pipeline as JSON.
    pub fn definition_json(compiled: &Compiled) -> Value {
        serde_json::to_value(&compiled.definition).unwrap_or(Value::Null)
    }
}
