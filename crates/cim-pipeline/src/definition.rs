//! Pipeline definitions as written (TOML or JSON): their types, and
//! parsing with precise errors. What the types mean is specified in
//! `docs/spec/pipelines.md`; [`crate::compile`] checks and compiles them.

use cim_pipeline_api::{DefinitionError, SourceFormat};
use serde::{Deserialize, Serialize};

/// A pipeline definition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Definition {
    /// The pipeline's name: 1-48 of `[a-z0-9-]`, starting with a letter.
    pub name: String,
    /// What it does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Which events it runs on.
    pub trigger: Trigger,
    /// What it does with each, in order.
    #[serde(default)]
    pub stages: Vec<Stage>,
    /// Where the values that come out of the last stage go.
    #[serde(default)]
    pub sinks: Vec<Sink>,
}

/// Which events start a run, and from where in the stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Trigger {
    /// Aggregate types, each a whole type or `*` (every type but the
    /// engine's own).
    pub aggregate_types: Vec<String>,
    /// Event-type patterns (`*` any run of characters); absent: every type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_types: Option<Vec<String>>,
    /// A jq predicate over the input; runs only where it is true.
    #[serde(default, rename = "where", skip_serializing_if = "Option::is_none")]
    pub predicate: Option<String>,
    /// `new` (events stored after the pipeline is created; the default) or
    /// `all` (from the first event).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<String>,
    /// Start at this stream sequence instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_sequence: Option<u64>,
    /// Start at this time (RFC 3339) instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_time: Option<String>,
}

/// A relation an `ius-create` stage adds from the new unit to another.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Relate {
    /// The relation type, e.g. `extracted-from`.
    pub relation: String,
    /// jq: the other unit's id.
    pub to: String,
}

/// A stage: takes each value and gives zero or more.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Stage {
    /// Keeps the values for which the jq predicate is true.
    Filter {
        /// The stage's name.
        name: String,
        /// The predicate.
        jq: String,
    },
    /// Replaces each value by the jq program's outputs (none, one or many).
    Transform {
        /// The stage's name.
        name: String,
        /// The program.
        jq: String,
    },
    /// Replaces each value by the elements of the array the jq expression gives.
    FanOut {
        /// The stage's name.
        name: String,
        /// The expression; must give one array.
        jq: String,
    },
    /// Adds a unit's current state (through the IUS) as `.<into>`.
    EnrichUnit {
        /// The stage's name.
        name: String,
        /// jq: the unit's id.
        id: String,
        /// Where to put it (default `unit`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        into: Option<String>,
    },
    /// Adds an object of the object store as `.<into>`: `{cid, size, text}`
    /// (`as = "text"`), `{cid, size, json}` (`"json"`) or `{cid, size, base64}`.
    EnrichObject {
        /// The stage's name.
        name: String,
        /// jq: the object's CID (a string, or a link `{"/": cid}`).
        cid: String,
        /// `text` (default), `json` or `base64`.
        #[serde(default, rename = "as", skip_serializing_if = "Option::is_none")]
        read_as: Option<String>,
        /// Where to put it (default `object`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        into: Option<String>,
    },
    /// Adds the text of a PDF object as `.<into>`: `{cid, pages, text, page_texts}`.
    PdfText {
        /// The stage's name.
        name: String,
        /// jq: the PDF's CID.
        cid: String,
        /// Where to put it (default `pdf`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        into: Option<String>,
    },
    /// Adds an image object's facts as `.<into>`: `{cid, size, media_type, width, height}`.
    ImageFacts {
        /// The stage's name.
        name: String,
        /// jq: the image's CID.
        cid: String,
        /// Where to put it (default `image`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        into: Option<String>,
    },
    /// Creates a unit through the IUS, caused by the input; adds
    /// `{id, version, event_cid, state_cid}` as `.<into>`.
    IusCreate {
        /// The stage's name.
        name: String,
        /// The unit's kind.
        kind: String,
        /// jq: its content.
        content: String,
        /// jq: its metadata.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        metadata: Option<String>,
        /// Its tags.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        tags: Vec<String>,
        /// A relation from the new unit to another.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        relate: Option<Relate>,
        /// Where to put what was created (default `unit`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        into: Option<String>,
    },
    /// Patches a unit through the IUS, caused by the input.
    IusUpdate {
        /// The stage's name.
        name: String,
        /// jq: the unit's id.
        id: String,
        /// jq: the RFC 6902 patch (an array of operations).
        patch: String,
        /// Where to put what was committed (default `unit`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        into: Option<String>,
    },
    /// Puts an object into the object store; adds `{cid, size}` as `.<into>`.
    PutObject {
        /// The stage's name.
        name: String,
        /// jq: the content, a string (stored as UTF-8) or any JSON value
        /// (stored as its JSON text).
        content: String,
        /// Where to put its CID (default `object`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        into: Option<String>,
    },
    /// A stage another component serves (capability `pipeline.stage.<stage>`).
    Remote {
        /// The stage's name in this pipeline.
        name: String,
        /// The remote stage's name.
        stage: String,
        /// Milliseconds to wait for its answer.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        timeout_ms: Option<u64>,
        /// Options passed to it.
        #[serde(default, rename = "with", skip_serializing_if = "Option::is_none")]
        options: Option<serde_json::Value>,
    },
}

impl Stage {
    /// The stage's name.
    pub fn name(&self) -> &str {
        match self {
            Self::Filter { name, .. }
            | Self::Transform { name, .. }
            | Self::FanOut { name, .. }
            | Self::EnrichUnit { name, .. }
            | Self::EnrichObject { name, .. }
            | Self::PdfText { name, .. }
            | Self::ImageFacts { name, .. }
            | Self::IusCreate { name, .. }
            | Self::IusUpdate { name, .. }
            | Self::PutObject { name, .. }
            | Self::Remote { name, .. } => name,
        }
    }

    /// Whether it changes something outside the run (and is journaled, so
    /// that a redelivered input does not do it twice).
    pub fn has_effects(&self) -> bool {
        matches!(self, Self::IusCreate { .. } | Self::IusUpdate { .. } | Self::PutObject { .. } | Self::Remote { .. })
    }
}

/// Where the values that come out of the stages go.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Sink {
    /// Appends one event per value, whose `parents` include the input.
    Append {
        /// The aggregate type (one the engine may write).
        aggregate_type: String,
        /// The event type.
        event_type: String,
        /// jq: the aggregate id. Default: one new aggregate per output,
        /// named from the pipeline, version, input and output index.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        aggregate_id: Option<String>,
        /// jq: the payload (default `.`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        payload: Option<String>,
        /// jq: more parents, an array of event CIDs (besides the input).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        parents: Option<String>,
        /// `new`: each output starts its own aggregate (the default);
        /// `chain`: outputs are appended to existing aggregates.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        mode: Option<String>,
    },
    /// Publishes each value on `cim.event.pipeline.<pipeline>` (at least once;
    /// `Nats-Msg-Id` says which output it is).
    Notify {
        /// jq: the message body (default `.`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        payload: Option<String>,
    },
}

/// Parses a definition; errors name the key and, for TOML, the line and column.
pub fn parse(source: &str, format: SourceFormat) -> Result<Definition, DefinitionError> {
    match format {
        SourceFormat::Toml => {
            let at = |error: &toml::de::Error| {
                error.span().map(|span| crate::jq_position(source, span.start)).unwrap_or((None, None))
            };
            let deserializer = toml::de::Deserializer::parse(source).map_err(|e| {
                let (line, column) = at(&e);
                DefinitionError { path: String::new(), message: e.message().to_owned(), line, column }
            })?;
            serde_path_to_error::deserialize(deserializer).map_err(|e| {
                let path = e.path().to_string();
                let (line, column) = at(e.inner());
                DefinitionError {
                    path: if path == "." { String::new() } else { path },
                    message: e.inner().message().to_owned(),
                    line,
                    column,
                }
            })
        }
        SourceFormat::Json => {
            let mut deserializer = serde_json::Deserializer::from_str(source);
            serde_path_to_error::deserialize(&mut deserializer).map_err(|e| DefinitionError {
                path: if e.path().to_string() == "." { String::new() } else { e.path().to_string() },
                message: e.inner().to_string(),
                line: u32::try_from(e.inner().line()).ok().filter(|l| *l > 0),
                column: u32::try_from(e.inner().column()).ok().filter(|c| *c > 0),
            })
        }
    }
}

/// The format of a definition whose format was not given: JSON if it starts
/// with `{`, else TOML.
pub fn guess_format(source: &str) -> SourceFormat {
    if source.trim_start().starts_with('{') { SourceFormat::Json } else { SourceFormat::Toml }
}
