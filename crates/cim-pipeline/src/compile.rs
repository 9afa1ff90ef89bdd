//! Checking and compiling definitions: every rule of
//! `docs/spec/pipelines.md`, every jq program compiled (errors carry the
//! program's line and column), the trigger checked against what events can
//! be, and the set of pipelines checked for cycles (an output of one that
//! triggers another, and so on back to the first).

use std::collections::BTreeSet;
use std::fmt;

use cim_cid::Timestamp;
use cim_pipeline_api::{DefinitionError, PIPELINE_AGGREGATE, RUN_AGGREGATE, stage};
use serde_json::Value;

use crate::definition::{Definition, Sink, Stage};
use crate::jq::Program;

/// Longest pipeline name.
pub const MAX_NAME: usize = 48;

/// The compiled form of a definition.
#[derive(Debug)]
pub struct Compiled {
    /// The definition as given.
    pub definition: Definition,
    /// When it runs.
    pub trigger: CompiledTrigger,
    /// Its stages.
    pub stages: Vec<CompiledStage>,
    /// Its sinks.
    pub sinks: Vec<CompiledSink>,
}

/// Where a new pipeline's consumer starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// After the last event stored when the pipeline is created.
    New,
    /// At the first event.
    All,
    /// At a stream sequence.
    Sequence(u64),
    /// At a time.
    Time(Timestamp),
}

/// A trigger, compiled.
#[derive(Debug)]
pub struct CompiledTrigger {
    /// Aggregate types; empty: every type but the engine's own.
    pub aggregate_types: Vec<String>,
    /// Event-type globs; `None`: every type.
    pub event_types: Option<Vec<String>>,
    /// The predicate.
    pub predicate: Option<Program>,
    /// Where a new consumer starts.
    pub start: Start,
}

impl CompiledTrigger {
    /// Whether an event of this aggregate and event type can start a run
    /// (the predicate aside).
    pub fn matches(&self, aggregate_type: &str, event_type: &str) -> bool {
        let own = aggregate_type == PIPELINE_AGGREGATE || aggregate_type == RUN_AGGREGATE;
        let type_ok = if self.aggregate_types.is_empty() {
            !own
        } else {
            self.aggregate_types.iter().any(|t| t == aggregate_type)
        };
        type_ok && self.event_types.as_ref().is_none_or(|globs| globs.iter().any(|g| glob(g, event_type)))
    }

    /// The consumer's subject filters under `events_prefix` (e.g. `cim.events`).
    pub fn subjects(&self, events_prefix: &str) -> Vec<String> {
        if self.aggregate_types.is_empty() {
            vec![format!("{events_prefix}.>")]
        } else {
            self.aggregate_types.iter().map(|t| format!("{events_prefix}.{t}.*")).collect()
        }
    }

    /// The trigger in one line.
    pub fn summary(&self) -> String {
        let types = if self.aggregate_types.is_empty() { "*".to_owned() } else { self.aggregate_types.join(",") };
        let events = self.event_types.as_ref().map_or_else(|| "*".to_owned(), |e| e.join(","));
        let predicate = self.predicate.as_ref().map(|p| format!(" where {}", p.code())).unwrap_or_default();
        format!("{types} / {events}{predicate}")
    }
}

/// A stage, compiled.
#[derive(Debug)]
pub struct CompiledStage {
    /// Its name.
    pub name: String,
    /// What it does.
    pub op: Op,
}

impl CompiledStage {
    /// Whether it changes something outside the run.
    pub fn has_effects(&self) -> bool {
        matches!(self.op, Op::IusCreate { .. } | Op::IusUpdate { .. } | Op::PutObject { .. } | Op::Remote { .. })
    }
}

/// How `enrich-object` reads an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadAs {
    /// UTF-8 text.
    Text,
    /// JSON.
    Json,
    /// Base64 of the bytes.
    Base64,
}

/// What a stage does.
#[derive(Debug)]
pub enum Op {
    /// Keep values where true.
    Filter(Program),
    /// Replace by the outputs.
    Transform(Program),
    /// Replace by the array's elements.
    FanOut(Program),
    /// Add a unit's state.
    EnrichUnit {
        /// The unit's id.
        id: Program,
        /// Key.
        into: String,
    },
    /// Add an object.
    EnrichObject {
        /// Its CID.
        cid: Program,
        /// How to read it.
        read_as: ReadAs,
        /// Key.
        into: String,
    },
    /// Add a PDF's text.
    PdfText {
        /// Its CID.
        cid: Program,
        /// Key.
        into: String,
    },
    /// Add an image's facts.
    ImageFacts {
        /// Its CID.
        cid: Program,
        /// Key.
        into: String,
    },
    /// Create a unit.
    IusCreate {
        /// Kind.
        kind: String,
        /// Content.
        content: Program,
        /// Metadata.
        metadata: Option<Program>,
        /// Tags.
        tags: Vec<String>,
        /// Relation and the other unit.
        relate: Option<(String, Program)>,
        /// Key.
        into: String,
    },
    /// Patch a unit.
    IusUpdate {
        /// Its id.
        id: Program,
        /// The patch.
        patch: Program,
        /// Key.
        into: String,
    },
    /// Put an object.
    PutObject {
        /// The content.
        content: Program,
        /// Key.
        into: String,
    },
    /// Call a remote stage.
    Remote {
        /// Its name.
        stage: String,
        /// Timeout.
        timeout: std::time::Duration,
        /// Options.
        options: Value,
    },
}

/// A sink, compiled.
#[derive(Debug)]
#[allow(clippy::large_enum_variant, reason = "a few per definition, built once; never moved in a hot loop")]
pub enum CompiledSink {
    /// Append events.
    Append {
        /// Aggregate type.
        aggregate_type: String,
        /// Event type.
        event_type: String,
        /// Aggregate id, or the derived default.
        aggregate_id: Option<Program>,
        /// Payload, or the value.
        payload: Option<Program>,
        /// More parents.
        parents: Option<Program>,
        /// Append to existing aggregates.
        chain: bool,
    },
    /// Publish notifications.
    Notify {
        /// Body, or the value.
        payload: Option<Program>,
    },
}

/// What the checks need to know of the engine.
#[derive(Debug, Clone)]
pub struct Rules {
    /// Aggregate types an append sink may write.
    pub output_aggregate_types: Vec<String>,
}

/// Collects errors.
#[derive(Default)]
struct Errors(Vec<DefinitionError>);

impl Errors {
    fn add(&mut self, path: impl fmt::Display, message: impl Into<String>) {
        self.0.push(DefinitionError { path: path.to_string(), message: message.into(), line: None, column: None });
    }

    fn jq(&mut self, path: impl fmt::Display, code: &str) -> Option<Program> {
        match Program::compile(code) {
            Ok(program) => Some(program),
            Err(error) => {
                self.0.push(DefinitionError {
                    path: path.to_string(),
                    message: format!("the jq program does not compile: {}", error.message),
                    line: Some(error.line),
                    column: Some(error.column),
                });
                None
            }
        }
    }

    fn into_result<T>(self, value: impl FnOnce() -> T) -> Result<T, Vec<DefinitionError>> {
        if self.0.is_empty() { Ok(value()) } else { Err(self.0) }
    }
}

/// Whether `name` is a pipeline name.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

fn valid_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= 64
        && key.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

fn event_type_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b':' | b'/')
}

/// Whether `text` matches `pattern`, where `*` is any run of characters.
pub fn glob(pattern: &str, text: &str) -> bool {
    let Some((first, rest)) = pattern.split_once('*') else { return pattern == text };
    let Some(mut remaining) = text.strip_prefix(first) else { return false };
    let mut parts: Vec<&str> = rest.split('*').collect();
    let last = parts.pop().unwrap_or("");
    for part in parts {
        match remaining.find(part) {
            Some(at) => remaining = &remaining[at + part.len()..],
            None => return false,
        }
    }
    remaining.len() >= last.len() && remaining.ends_with(last)
}

/// Checks and compiles a definition. Every problem found is reported.
pub fn compile(definition: Definition, rules: &Rules) -> Result<Compiled, Vec<DefinitionError>> {
    let mut errors = Errors::default();
    if !valid_name(&definition.name) {
        errors.add("name", format!("{:?} must be 1-{MAX_NAME} of [a-z0-9-], starting with a letter", definition.name));
    }
    let trigger = compile_trigger(&definition, &mut errors);
    let mut names = BTreeSet::new();
    let mut stages = Vec::new();
    for (index, stage) in definition.stages.iter().enumerate() {
        let path = format!("stages[{index}]");
        if !stage::valid_name(stage.name()) {
            errors.add(
                format!("{path}.name"),
                format!("{:?} must be 1-64 of [a-z0-9_-], starting with a letter", stage.name()),
            );
        } else if !names.insert(stage.name().to_owned()) {
            errors.add(format!("{path}.name"), format!("two stages are named {:?}", stage.name()));
        }
        if let Some(op) = compile_stage(stage, &path, &mut errors) {
            stages.push(CompiledStage { name: stage.name().to_owned(), op });
        }
    }
    let mut sinks = Vec::new();
    for (index, sink) in definition.sinks.iter().enumerate() {
        if let Some(sink) = compile_sink(sink, &format!("sinks[{index}]"), rules, &mut errors) {
            sinks.push(sink);
        }
    }
    if definition.sinks.is_empty() && !definition.stages.iter().any(Stage::has_effects) {
        errors.add("sinks", "the pipeline has no effect: add a sink, or a stage that writes (ius-create, ius-update, put-object, remote)");
    }
    let trigger = trigger.filter(|_| errors.0.is_empty());
    match trigger {
        Some(trigger) => errors.into_result(|| Compiled { definition, trigger, stages, sinks }),
        None => Err(errors.0),
    }
}

fn compile_trigger(definition: &Definition, errors: &mut Errors) -> Option<CompiledTrigger> {
    let trigger = &definition.trigger;
    let mut aggregate_types = Vec::new();
    if trigger.aggregate_types.is_empty() {
        errors.add("trigger.aggregate_types", "matches nothing: the list is empty (use [\"*\"] for every type)");
    }
    let all = trigger.aggregate_types.iter().any(|t| t == "*");
    for (index, aggregate_type) in trigger.aggregate_types.iter().enumerate() {
        let path = format!("trigger.aggregate_types[{index}]");
        if aggregate_type == "*" {
            continue;
        }
        if aggregate_type == PIPELINE_AGGREGATE || aggregate_type == RUN_AGGREGATE {
            errors.add(path, format!("`{aggregate_type}` is the engine's own aggregate type: a pipeline triggered by the engine's events would trigger itself"));
        } else if aggregate_type.contains('*') || aggregate_type.contains('>') {
            errors.add(path, format!("{aggregate_type:?}: aggregate types are whole types, or \"*\" for every type"));
        } else if let Err(e) = cim_cid::validate_aggregate_type(aggregate_type) {
            errors.add(path, format!("matches nothing: {e}"));
        } else if !all {
            aggregate_types.push(aggregate_type.clone());
        }
    }
    if let Some(patterns) = &trigger.event_types {
        if patterns.is_empty() {
            errors.add("trigger.event_types", "matches nothing: the list is empty (leave it out for every event type)");
        }
        for (index, pattern) in patterns.iter().enumerate() {
            let path = format!("trigger.event_types[{index}]");
            if pattern.is_empty() || pattern.len() > 128 {
                errors.add(path, "matches nothing: an event type is 1-128 characters");
            } else if let Some(bad) = pattern.bytes().find(|b| *b != b'*' && !event_type_char(*b)) {
                errors.add(
                    path,
                    format!(
                        "{pattern:?} matches nothing: event types have no {:?} (they are A-Z a-z 0-9 _ - . : /)",
                        bad as char
                    ),
                );
            }
        }
    }
    let predicate = trigger.predicate.as_deref().and_then(|code| {
        let program = errors.jq("trigger.where", code)?;
        if matches!(code.trim(), "false" | "null" | "empty") {
            errors.add("trigger.where", format!("matches nothing: `{}` is never true", code.trim()));
        }
        Some(program)
    });
    let start = match (trigger.start.as_deref(), trigger.from_sequence, trigger.from_time.as_deref()) {
        (None | Some("new"), None, None) => Start::New,
        (Some("all"), None, None) => Start::All,
        (None, Some(sequence), None) if sequence > 0 => Start::Sequence(sequence),
        (None, Some(_), None) => {
            errors.add("trigger.from_sequence", "stream sequences start at 1");
            Start::New
        }
        (None, None, Some(text)) => match Timestamp::parse_rfc3339(text) {
            Ok(time) => Start::Time(time),
            Err(e) => {
                errors.add("trigger.from_time", format!("{text:?} is not an RFC 3339 time: {e}"));
                Start::New
            }
        },
        (Some(other), None, None) => {
            errors.add("trigger.start", format!("{other:?} is neither \"new\" nor \"all\""));
            Start::New
        }
        _ => {
            errors.add("trigger", "give one of start, from_sequence and from_time");
            Start::New
        }
    };
    let event_types = trigger.event_types.clone();
    Some(CompiledTrigger { aggregate_types, event_types, predicate, start })
}

fn into_key(into: &Option<String>, default: &str, path: &str, errors: &mut Errors) -> String {
    let key = into.clone().unwrap_or_else(|| default.to_owned());
    if !valid_key(&key) {
        errors.add(format!("{path}.into"), format!("{key:?} must be 1-64 of [A-Za-z0-9_], not starting with a digit"));
    }
    key
}

fn compile_stage(stage: &Stage, path: &str, errors: &mut Errors) -> Option<Op> {
    let jq = |errors: &mut Errors, field: &str, code: &str| errors.jq(format!("{path}.{field}"), code);
    Some(match stage {
        Stage::Filter { jq: code, .. } => Op::Filter(jq(errors, "jq", code)?),
        Stage::Transform { jq: code, .. } => Op::Transform(jq(errors, "jq", code)?),
        Stage::FanOut { jq: code, .. } => Op::FanOut(jq(errors, "jq", code)?),
        Stage::EnrichUnit { id, into, .. } => {
            let into = into_key(into, "unit", path, errors);
            Op::EnrichUnit { id: jq(errors, "id", id)?, into }
        }
        Stage::EnrichObject { cid, read_as, into, .. } => {
            let into = into_key(into, "object", path, errors);
            let read_as = match read_as.as_deref() {
                None | Some("text") => ReadAs::Text,
                Some("json") => ReadAs::Json,
                Some("base64") => ReadAs::Base64,
                Some(other) => {
                    errors.add(format!("{path}.as"), format!("{other:?} is none of text, json, base64"));
                    ReadAs::Text
                }
            };
            Op::EnrichObject { cid: jq(errors, "cid", cid)?, read_as, into }
        }
        Stage::PdfText { cid, into, .. } => {
            let into = into_key(into, "pdf", path, errors);
            Op::PdfText { cid: jq(errors, "cid", cid)?, into }
        }
        Stage::ImageFacts { cid, into, .. } => {
            let into = into_key(into, "image", path, errors);
            Op::ImageFacts { cid: jq(errors, "cid", cid)?, into }
        }
        Stage::IusCreate { kind, content, metadata, tags, relate, into, .. } => {
            let into = into_key(into, "unit", path, errors);
            let valid_kind = !kind.is_empty()
                && kind.len() <= 64
                && kind.starts_with(|c: char| c.is_ascii_lowercase())
                && kind.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
            if !valid_kind {
                errors.add(format!("{path}.kind"), format!("{kind:?} must be [a-z0-9-], starting with a letter"));
            }
            for (index, tag) in tags.iter().enumerate() {
                let ok = !tag.is_empty()
                    && tag.len() <= 64
                    && tag.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b':' | b'.'));
                if !ok {
                    errors.add(format!("{path}.tags[{index}]"), format!("{tag:?} must be 1-64 of [A-Za-z0-9_:.-]"));
                }
            }
            let relate = match relate {
                Some(relate) => {
                    let ok = !relate.relation.is_empty()
                        && relate.relation.len() <= 64
                        && relate
                            .relation
                            .bytes()
                            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
                    if !ok {
                        errors.add(
                            format!("{path}.relate.relation"),
                            format!("{:?} must be 1-64 of [a-z0-9_-]", relate.relation),
                        );
                    }
                    Some((relate.relation.clone(), jq(errors, "relate.to", &relate.to)?))
                }
                None => None,
            };
            let metadata = match metadata {
                Some(code) => Some(jq(errors, "metadata", code)?),
                None => None,
            };
            Op::IusCreate {
                kind: kind.clone(),
                content: jq(errors, "content", content)?,
                metadata,
                tags: tags.clone(),
                relate,
                into,
            }
        }
        Stage::IusUpdate { id, patch, into, .. } => {
            let into = into_key(into, "unit", path, errors);
            let id = jq(errors, "id", id);
            Op::IusUpdate { id: id?, patch: jq(errors, "patch", patch)?, into }
        }
        Stage::PutObject { content, into, .. } => {
            let into = into_key(into, "object", path, errors);
            Op::PutObject { content: jq(errors, "content", content)?, into }
        }
        Stage::Remote { stage: remote, timeout_ms, options, .. } => {
            if !stage::valid_name(remote) {
                errors.add(
                    format!("{path}.stage"),
                    format!("{remote:?} is not a stage name: 1-64 of [a-z0-9_-], starting with a letter"),
                );
            }
            let timeout_ms = timeout_ms.unwrap_or(5_000);
            if !(1..=600_000).contains(&timeout_ms) {
                errors.add(format!("{path}.timeout_ms"), "must be between 1 and 600000");
            }
            Op::Remote {
                stage: remote.clone(),
                timeout: std::time::Duration::from_millis(timeout_ms),
                options: options.clone().unwrap_or(Value::Object(Default::default())),
            }
        }
    })
}

fn compile_sink(sink: &Sink, path: &str, rules: &Rules, errors: &mut Errors) -> Option<CompiledSink> {
    Some(match sink {
        Sink::Append { aggregate_type, event_type, aggregate_id, payload, parents, mode } => {
            if let Err(e) = cim_cid::validate_aggregate_type(aggregate_type) {
                errors.add(format!("{path}.aggregate_type"), e.to_string());
            } else if !rules.output_aggregate_types.contains(aggregate_type) {
                errors.add(
                    format!("{path}.aggregate_type"),
                    format!(
                        "the engine may not write aggregate type `{aggregate_type}`: it writes only {} (pipeline.output_aggregate_types)",
                        rules.output_aggregate_types.iter().map(|t| format!("`{t}`")).collect::<Vec<_>>().join(", ")
                    ),
                );
            }
            if event_type.is_empty() || event_type.len() > 128 || !event_type.bytes().all(event_type_char) {
                errors.add(
                    format!("{path}.event_type"),
                    format!("{event_type:?} must be 1-128 of A-Z a-z 0-9 _ - . : /"),
                );
            }
            let chain = match mode.as_deref() {
                None | Some("new") => false,
                Some("chain") => true,
                Some(other) => {
                    errors.add(format!("{path}.mode"), format!("{other:?} is neither \"new\" nor \"chain\""));
                    false
                }
            };
            if chain && aggregate_id.is_none() {
                errors.add(
                    format!("{path}.aggregate_id"),
                    "mode \"chain\" appends to existing aggregates: say which (a jq expression)",
                );
            }
            let compile = |errors: &mut Errors, field: &str, code: &Option<String>| match code {
                Some(code) => errors.jq(format!("{path}.{field}"), code).map(Some),
                None => Some(None),
            };
            let aggregate_id = compile(errors, "aggregate_id", aggregate_id);
            let payload = compile(errors, "payload", payload);
            let parents = compile(errors, "parents", parents);
            CompiledSink::Append {
                aggregate_type: aggregate_type.clone(),
                event_type: event_type.clone(),
                aggregate_id: aggregate_id?,
                payload: payload?,
                parents: parents?,
                chain,
            }
        }
        Sink::Notify { payload } => CompiledSink::Notify {
            payload: match payload {
                Some(code) => Some(errors.jq(format!("{path}.payload"), code)?),
                None => None,
            },
        },
    })
}

/// The (aggregate type, event type) pairs a pipeline's runs write.
pub fn outputs(compiled: &Compiled) -> Vec<(String, String)> {
    let mut outputs = Vec::new();
    for stage in &compiled.stages {
        match &stage.op {
            Op::IusCreate { relate, .. } => {
                outputs.push(("unit".to_owned(), "UnitCreated".to_owned()));
                if relate.is_some() {
                    outputs.push(("unit".to_owned(), "UnitRelated".to_owned()));
                }
            }
            Op::IusUpdate { .. } => outputs.push(("unit".to_owned(), "UnitUpdated".to_owned())),
            _ => {}
        }
    }
    for sink in &compiled.sinks {
        if let CompiledSink::Append { aggregate_type, event_type, .. } = sink {
            outputs.push((aggregate_type.clone(), event_type.clone()));
        }
    }
    outputs
}

/// Pipelines whose trigger an output of `from` matches (its predicate aside).
pub fn triggered<'a>(
    from: &Compiled,
    all: impl IntoIterator<Item = &'a Compiled>,
) -> Vec<(&'a Compiled, (String, String))> {
    let outputs = outputs(from);
    all.into_iter()
        .filter_map(|to| outputs.iter().find(|(a, e)| to.trigger.matches(a, e)).map(|o| (to, o.clone())))
        .collect()
}

/// Refuses `new` if, with the other pipelines (`others`, without any
/// version of `new`), an output of some pipeline triggers a chain of
/// pipelines that leads back to it. The error names the cycle.
pub fn check_cycles(new: &Compiled, others: &[&Compiled]) -> Result<(), DefinitionError> {
    let mut all: Vec<&Compiled> = others.iter().copied().filter(|c| c.definition.name != new.definition.name).collect();
    all.push(new);
    // Depth-first search for a path from `new` back to `new`.
    let mut stack: Vec<(&Compiled, Vec<String>)> = vec![(new, Vec::new())];
    let mut seen = BTreeSet::new();
    while let Some((at, steps)) = stack.pop() {
        for (next, (aggregate_type, event_type)) in triggered(at, all.iter().copied()) {
            let step = format!(
                "`{}` writes {aggregate_type}/{event_type}, which `{}`'s trigger matches",
                at.definition.name, next.definition.name
            );
            let mut path = steps.clone();
            path.push(step);
            if next.definition.name == new.definition.name {
                return Err(DefinitionError {
                    path: "trigger".to_owned(),
                    message: format!("a cycle between pipelines: {}", path.join("; ")),
                    line: None,
                    column: None,
                });
            }
            if seen.insert(next.definition.name.clone()) {
                stack.push((next, path));
            }
        }
    }
    Ok(())
}
