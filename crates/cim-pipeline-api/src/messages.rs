//! The engine's messages. `docs/spec/subjects.md` specifies their JSON.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The language a definition is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceFormat {
    /// TOML (the default).
    Toml,
    /// JSON.
    Json,
}

/// Creates a pipeline, or a new version of one, from its definition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PutPipeline {
    /// The definition's text (`docs/spec/pipelines.md`).
    pub source: String,
    /// Its language; TOML unless it says otherwise.
    #[serde(default)]
    pub format: Option<SourceFormat>,
    /// Store only if the pipeline is at this version (0: it does not exist yet).
    #[serde(default)]
    pub expected_version: Option<u64>,
}

/// What a put stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Put {
    /// The pipeline.
    pub name: String,
    /// Its version now (1 for a new pipeline).
    pub version: u64,
    /// CID of the event that defines this version.
    pub event_cid: String,
    /// True when the definition equals the current version's: nothing was stored.
    pub unchanged: bool,
}

/// One reason a definition is refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DefinitionError {
    /// Where in the definition, e.g. `stages[1].jq` or `trigger.event_types[0]`.
    pub path: String,
    /// What is wrong.
    pub message: String,
    /// For a jq program or the definition's text: the line (from 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
    /// For a jq program or the definition's text: the column (from 1, in characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub column: Option<u32>,
}

impl std::fmt::Display for DefinitionError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.path)?;
        if let Some(line) = self.line {
            write!(f, " (line {line}")?;
            if let Some(column) = self.column {
                write!(f, ", column {column}")?;
            }
            write!(f, ")")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Names a pipeline, optionally at a version.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NameRef {
    /// The pipeline.
    pub name: String,
    /// A version (default: the current one).
    #[serde(default)]
    pub version: Option<u64>,
}

/// A pipeline's definition at one version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PipelineView {
    /// The pipeline.
    pub name: String,
    /// The version shown.
    pub version: u64,
    /// The pipeline's current version.
    pub current_version: u64,
    /// Whether it is paused now.
    pub paused: bool,
    /// How often it was replayed from a position (its consumer's generation).
    pub generation: u64,
    /// The definition as the engine reads it (JSON).
    pub definition: Value,
    /// The text it was given in.
    pub source: String,
    /// The text's language.
    pub format: SourceFormat,
    /// CID of the event that defined this version (empty for `validate`).
    pub event_cid: String,
    /// The pipelines this one's outputs trigger, and those whose outputs trigger it.
    #[serde(default)]
    pub triggers: Vec<String>,
    /// The pipelines whose outputs trigger this one.
    #[serde(default)]
    pub triggered_by: Vec<String>,
}

/// Lists pipelines.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListPipelines {
    /// Include removed pipelines.
    #[serde(default)]
    pub include_paused: Option<bool>,
}

/// A pipeline in a list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PipelineSummary {
    /// The pipeline.
    pub name: String,
    /// Its current version.
    pub version: u64,
    /// Whether it is paused.
    pub paused: bool,
    /// Its consumer's generation.
    pub generation: u64,
    /// What it does, if it says.
    pub description: Option<String>,
    /// Its trigger, in one line.
    pub trigger: String,
}

/// Pipelines, by name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PipelineList {
    /// The pipelines.
    pub pipelines: Vec<PipelineSummary>,
}

/// Processes the event stream again, from a position (the inputs'
/// exactly-once keys still hold: inputs this version already completed
/// produce nothing new).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplayPipeline {
    /// The pipeline.
    pub name: String,
    /// From this stream sequence.
    #[serde(default)]
    pub sequence: Option<u64>,
    /// From this time (RFC 3339); neither: from the first event.
    #[serde(default)]
    pub time: Option<String>,
}

/// Where a pipeline is now replayed from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Replayed {
    /// The pipeline.
    pub name: String,
    /// Its new generation.
    pub generation: u64,
    /// The durable consumer that serves it now.
    pub consumer: String,
    /// Where it starts, in words.
    pub from: String,
}

/// Runs a pipeline once on an input given by hand (its trigger is not applied).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunManual {
    /// The pipeline.
    pub name: String,
    /// The input: the `payload` of the input event the stages see.
    pub input: Value,
}

/// What a run produced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunOutcome {
    /// The pipeline.
    pub pipeline: String,
    /// The version that ran.
    pub version: u64,
    /// The run's aggregate id (`pipeline-run/<run>`).
    pub run: String,
    /// CID of the input event (for a manual run, the `RunRequested` event holding the input).
    pub input_cid: String,
    /// CIDs of the events appended by its sinks.
    pub outputs: Vec<String>,
    /// The values that reached the sinks.
    pub values: Vec<Value>,
    /// True when an earlier run of this input had completed: nothing new was done.
    pub already_done: bool,
    /// True when the stages, none with effects, left no value: the input
    /// was filtered out, nothing was journaled and no sink ran.
    #[serde(default)]
    pub filtered: bool,
}

/// Asks for the status of one pipeline or all.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusQuery {
    /// Only this pipeline.
    #[serde(default)]
    pub name: Option<String>,
}

/// A pipeline's durable consumer, as the server has it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsumerStatus {
    /// The consumer's name.
    pub name: String,
    /// Matching events not delivered yet: the lag.
    pub lag: u64,
    /// Delivered and not yet acknowledged, by every instance.
    pub in_flight: u64,
    /// Delivered more than once, among those in flight.
    pub redelivered: u64,
    /// Stream sequence of the last event acknowledged in order.
    pub ack_floor: u64,
}

/// One pipeline's status.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PipelineStatus {
    /// The pipeline.
    pub name: String,
    /// Its current version.
    pub version: u64,
    /// Whether it is paused.
    pub paused: bool,
    /// Its consumer's generation.
    pub generation: u64,
    /// Its consumer, when it exists.
    pub consumer: Option<ConsumerStatus>,
    /// Inputs in the dead-letter stream now.
    pub dead_letters: u64,
    /// Counts of the answering instance since it started: inputs completed.
    pub completed: u64,
    /// Inputs the trigger's filters left out.
    pub skipped: u64,
    /// Redelivered inputs found already completed (nothing done twice).
    pub duplicates: u64,
    /// Failed attempts (each retried or dead-lettered).
    pub failures: u64,
    /// Inputs sent to the dead-letter stream.
    pub dead_lettered: u64,
    /// Events appended by its sinks.
    pub outputs: u64,
    /// Inputs completed per second over the last ten seconds, by the answering instance.
    pub rate_per_sec: f64,
}

/// The status of pipelines, as one instance sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Status {
    /// The answering instance.
    pub instance: String,
    /// The pipelines.
    pub pipelines: Vec<PipelineStatus>,
}

/// Lists dead letters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListDeadLetters {
    /// Only this pipeline's.
    #[serde(default)]
    pub pipeline: Option<String>,
    /// At most this many (default 100).
    #[serde(default)]
    pub limit: Option<usize>,
}

/// An input a pipeline gave up on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadLetter {
    /// The pipeline.
    pub pipeline: String,
    /// The version that failed.
    pub version: u64,
    /// CID of the input event.
    pub input_cid: String,
    /// Its stream sequence.
    pub input_seq: u64,
    /// The stage that failed, if one did.
    pub stage: Option<String>,
    /// Why.
    pub reason: String,
    /// Attempts made.
    pub attempts: u64,
    /// When it was dead-lettered, RFC 3339.
    pub failed_at: String,
}

/// Dead letters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadLetters {
    /// By pipeline, then input.
    pub dead_letters: Vec<DeadLetter>,
}

/// Runs dead-lettered inputs again with each pipeline's current version.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplayDeadLetters {
    /// Only this pipeline's.
    #[serde(default)]
    pub pipeline: Option<String>,
    /// Only this input.
    #[serde(default)]
    pub input_cid: Option<String>,
    /// At most this many (default 100).
    #[serde(default)]
    pub limit: Option<usize>,
}

/// The outcome of replaying dead letters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplayedDeadLetters {
    /// Inputs that completed and left the dead-letter stream.
    pub replayed: Vec<String>,
    /// Inputs that failed again (with the new reason); they stay.
    pub failed: Vec<DeadLetter>,
}
