//! The IUS's messages: commands, queries and their replies.
//! `docs/spec/subjects.md` specifies their JSON.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::model::UnitState;

/// Creates a unit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Create {
    /// The kind, e.g. `text-document`.
    pub kind: String,
    /// The id (`[A-Za-z0-9_-]`, at most 64 bytes); a new one when absent.
    #[serde(default)]
    pub id: Option<String>,
    /// Content, valid against the kind's schema (DAG-JSON: `{"/": cid}` is a link).
    #[serde(default = "empty_object")]
    pub content: Value,
    /// Standard metadata.
    #[serde(default = "empty_object")]
    pub metadata: Value,
    /// Tags.
    #[serde(default)]
    pub tags: Vec<String>,
    /// CIDs of events this command follows from (recorded as `parents`).
    #[serde(default)]
    pub caused_by: Vec<String>,
}

fn empty_object() -> Value {
    Value::Object(serde_json::Map::new())
}

/// Fields every change command has, beside the command's own on the wire.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Target {
    /// The unit.
    pub id: String,
    /// Apply only if the unit is at this version; otherwise `version_conflict`.
    #[serde(default)]
    pub expected_version: Option<u64>,
    /// CIDs of events this command follows from.
    #[serde(default)]
    pub caused_by: Vec<String>,
}

/// Changes content and metadata with an RFC 6902 JSON Patch on
/// `{"content": …, "metadata": …}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(from = "wire::Update")]
pub struct Update {
    /// The unit and preconditions.
    #[serde(flatten)]
    pub target: Target,
    /// The patch: an array of operations.
    pub patch: Value,
}

/// Adds or removes tags.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "wire::Tags")]
pub struct Tags {
    /// The unit and preconditions.
    #[serde(flatten)]
    pub target: Target,
    /// The tags (`[A-Za-z0-9_:.-]`, at most 64 bytes each).
    pub tags: Vec<String>,
}

/// Adds or removes a typed relation to another unit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "wire::Relate")]
pub struct Relate {
    /// The unit and preconditions.
    #[serde(flatten)]
    pub target: Target,
    /// The relation type (`[a-z0-9_-]`), e.g. `cites`.
    pub relation: String,
    /// The other unit.
    pub to: String,
}

/// Attaches an object already in the object store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "wire::Attach")]
pub struct Attach {
    /// The unit and preconditions.
    #[serde(flatten)]
    pub target: Target,
    /// The role, e.g. `body` (`[a-z0-9_-]`).
    pub role: String,
    /// The object's CID.
    pub cid: String,
    /// Its media type; read from the content when absent.
    #[serde(default)]
    pub media_type: Option<String>,
}

/// Detaches the object under a role.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "wire::Detach")]
pub struct Detach {
    /// The unit and preconditions.
    #[serde(flatten)]
    pub target: Target,
    /// The role.
    pub role: String,
}

/// Retires a unit: it keeps its history and refuses further changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "wire::Retire")]
pub struct Retire {
    /// The unit and preconditions.
    #[serde(flatten)]
    pub target: Target,
    /// Why.
    #[serde(default)]
    pub reason: Option<String>,
}

/// The change commands as they are read: the target's fields beside each
/// command's own, every other field refused (serde cannot refuse unknown
/// fields through `flatten`, which the commands use to write).
mod wire {
    use serde::Deserialize;
    use serde_json::Value;

    use super::Target;

    macro_rules! with_target {
        ($command:ident { $($(#[$attribute:meta])* $field:ident: $type:ty),* $(,)? }) => {
            #[derive(Debug, Deserialize)]
            #[serde(deny_unknown_fields)]
            pub struct $command {
                id: String,
                #[serde(default)]
                expected_version: Option<u64>,
                #[serde(default)]
                caused_by: Vec<String>,
                $($(#[$attribute])* $field: $type,)*
            }

            impl From<$command> for super::$command {
                fn from(wire: $command) -> Self {
                    let target =
                        Target { id: wire.id, expected_version: wire.expected_version, caused_by: wire.caused_by };
                    Self { target, $($field: wire.$field),* }
                }
            }
        };
    }

    with_target!(Update { patch: Value });
    with_target!(Tags { tags: Vec<String> });
    with_target!(Relate { relation: String, to: String });
    with_target!(Attach { role: String, cid: String, #[serde(default)] media_type: Option<String> });
    with_target!(Detach { role: String });
    with_target!(Retire { #[serde(default)] reason: Option<String> });
}

/// What a command stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Committed {
    /// The unit.
    pub id: String,
    /// Its version now.
    pub version: u64,
    /// CID of the event appended.
    pub event_cid: String,
    /// CID of the new state.
    pub state_cid: String,
}

/// Reads a unit: the current state, or a past one by version, time or state CID.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Get {
    /// The unit (not needed with `state_cid`).
    #[serde(default)]
    pub id: Option<String>,
    /// The state at this version.
    #[serde(default)]
    pub version: Option<u64>,
    /// The state as of this time (RFC 3339).
    #[serde(default)]
    pub at: Option<String>,
    /// The state with this CID.
    #[serde(default)]
    pub state_cid: Option<String>,
    /// For the current state: wait (briefly) until this instance has seen at
    /// least this version, e.g. one another instance just wrote.
    #[serde(default)]
    pub min_version: Option<u64>,
}

/// A unit's state with its CID.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UnitView {
    /// The state.
    pub state: UnitState,
    /// Its CID.
    pub state_cid: String,
    /// CID of the event that produced it.
    pub event_cid: String,
}

/// Names a unit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnitRef {
    /// The unit.
    pub id: String,
}

/// One event of a unit's history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryEntry {
    /// Version it produced.
    pub version: u64,
    /// The event's CID.
    pub cid: String,
    /// The previous event's CID.
    pub prev: Option<String>,
    /// CIDs of the events it follows from.
    pub parents: Vec<String>,
    /// Event type, e.g. `UnitUpdated`.
    pub event_type: String,
    /// When, RFC 3339.
    pub timestamp: String,
    /// The payload (DAG-JSON), including `state`, the CID of the state it made.
    pub payload: Value,
}

/// A unit's history, oldest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct History {
    /// The events.
    pub events: Vec<HistoryEntry>,
}

/// The outcome of verifying a unit's chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verified {
    /// Events that passed.
    pub verified: u64,
    /// What is wrong; empty when the chain verifies.
    pub problems: Vec<String>,
}

/// Direction of a traversal.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Relations the unit has.
    #[default]
    Out,
    /// Relations other units have to it.
    In,
    /// Both.
    Both,
}

/// Walks relations from a unit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Traverse {
    /// Where to start.
    pub id: String,
    /// How many relations away (default 1).
    #[serde(default)]
    pub depth: Option<u32>,
    /// Only relations of this type.
    #[serde(default)]
    pub relation: Option<String>,
    /// Which way.
    #[serde(default)]
    pub direction: Direction,
}

/// A unit reached by a traversal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reached {
    /// The unit.
    pub id: String,
    /// Its kind.
    pub kind: String,
    /// Relations away from the start.
    pub depth: u32,
    /// The unit it was reached from.
    pub from: String,
    /// The relation followed.
    pub relation: String,
}

/// What a traversal reached, nearest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Traversal {
    /// The units.
    pub units: Vec<Reached>,
}

/// Lists units, in id order, a page at a time.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct List {
    /// Only this kind.
    #[serde(default)]
    pub kind: Option<String>,
    /// Only units with this tag.
    #[serde(default)]
    pub tag: Option<String>,
    /// Only units whose metadata has these top-level values.
    #[serde(default)]
    pub metadata: serde_json::Map<String, Value>,
    /// Include retired units.
    #[serde(default)]
    pub include_retired: bool,
    /// The `next` cursor of the previous page.
    #[serde(default)]
    pub after: Option<String>,
    /// Page size (default 100).
    #[serde(default)]
    pub limit: Option<usize>,
}

/// A unit in a list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// The unit.
    pub id: String,
    /// Its kind.
    pub kind: String,
    /// Its version.
    pub version: u64,
    /// Its title, if its metadata has one.
    pub title: Option<String>,
    /// Its tags.
    pub tags: Vec<String>,
    /// Whether it is retired.
    pub retired: bool,
    /// Its state CID.
    pub state_cid: String,
}

/// One page of units.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Page {
    /// The units.
    pub units: Vec<Summary>,
    /// Pass as `after` for the next page; absent on the last.
    pub next: Option<String>,
}

/// Registers a kind (or a new version of its schema).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegisterKind {
    /// The kind (`[a-z0-9-]`, starting with a letter).
    pub kind: String,
    /// JSON Schema of its content.
    pub schema: Value,
}

/// A kind and its latest schema version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Kind {
    /// The kind.
    pub kind: String,
    /// Latest schema version.
    pub version: u64,
}

/// Kinds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Kinds {
    /// Sorted by name.
    pub kinds: Vec<Kind>,
}

/// What an instance's projection of current states holds, as
/// [`crate::STATUS`] answers it: equal digests, equal projections.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProjectionStatus {
    /// Units held.
    pub units: usize,
    /// Stream sequence of the last event applied.
    pub applied_seq: u64,
    /// CID of the sorted list of `[unit id, state CID]`: equal digests, equal projections.
    pub digest: String,
    /// Events that could not be applied.
    pub problems: Vec<String>,
}
