//! The registry's messages: components, the component graph, schemas and
//! validation. `docs/spec/subjects.md` specifies their JSON.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::registration::Registration;

/// Which components to list.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ComponentQuery {
    /// Component name pattern, a glob: `*` any run of characters, `?` one
    /// character, e.g. `cim-*`.
    #[serde(default)]
    pub name: Option<String>,
    /// A capability the component must have, as a NATS subject pattern
    /// ([`crate::capability`]): `units.*` matches `units.read` but not
    /// `units.read.x`; `units.>` matches both.
    #[serde(default)]
    pub capability: Option<String>,
}

/// A live component instance as the registry holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComponentRecord {
    /// What the instance registered.
    pub registration: Registration,
    /// Its last heartbeat, RFC 3339.
    pub last_seen: String,
}

/// Live component instances.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComponentList {
    /// Sorted by name, then instance.
    pub components: Vec<ComponentRecord>,
}

/// The component graph: components and the schema types that flow between them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Graph {
    /// One node per component name.
    pub nodes: Vec<GraphNode>,
    /// `from` produces `schema`, which `to` consumes.
    pub edges: Vec<GraphEdge>,
}

/// A component in the graph.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GraphNode {
    /// Component name.
    pub name: String,
    /// Live instances.
    pub instances: Vec<String>,
    /// Union of the instances' capabilities.
    pub capabilities: Vec<String>,
}

/// A schema type flowing from a producer to a consumer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GraphEdge {
    /// Producer.
    pub from: String,
    /// Consumer.
    pub to: String,
    /// The schema type.
    pub schema: String,
}

/// Registers a new version of a schema type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegisterSchema {
    /// The type, `[A-Za-z0-9_:-]`, e.g. `unit:text-document`.
    #[serde(rename = "type")]
    pub type_name: String,
    /// A JSON Schema (draft 2020-12 unless it says otherwise in `$schema`).
    pub schema: Value,
    /// What the version changes.
    #[serde(default)]
    pub description: Option<String>,
    /// Register only if the type's latest version is this one (0: new type).
    #[serde(default)]
    pub expected_version: Option<u64>,
}

/// A type and, optionally, a version (default: the latest).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SchemaRef {
    /// The type.
    #[serde(rename = "type")]
    pub type_name: String,
    /// The version; the latest when absent.
    #[serde(default)]
    pub version: Option<u64>,
}

/// One stored version of a schema type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SchemaVersion {
    /// The type.
    #[serde(rename = "type")]
    pub type_name: String,
    /// The version, from 1.
    pub version: u64,
    /// The schema.
    pub schema: Value,
    /// What the version changes.
    pub description: Option<String>,
    /// CID of the event that registered it.
    pub cid: String,
    /// When it was registered, RFC 3339.
    pub registered_at: String,
}

/// The outcome of a registration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Registered {
    /// The version now in force.
    #[serde(flatten)]
    pub schema: SchemaVersion,
    /// True when the schema equals the latest version, so nothing was stored.
    pub unchanged: bool,
}

/// Lists schema types.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListSchemas {
    /// Only types starting with this prefix, e.g. `unit:`.
    #[serde(default)]
    pub prefix: Option<String>,
}

/// A type and its latest version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SchemaType {
    /// The type.
    #[serde(rename = "type")]
    pub type_name: String,
    /// Its latest version.
    pub latest_version: u64,
}

/// Schema types, sorted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SchemaTypes {
    /// The types.
    pub types: Vec<SchemaType>,
}

/// Every version of a type, oldest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SchemaHistory {
    /// The versions.
    pub versions: Vec<SchemaVersion>,
}

/// Validates an instance against a schema version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Validate {
    /// The type.
    #[serde(rename = "type")]
    pub type_name: String,
    /// The version; the latest when absent.
    #[serde(default)]
    pub version: Option<u64>,
    /// The JSON to check.
    pub instance: Value,
}

/// What a validation found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValidationReport {
    /// The type.
    #[serde(rename = "type")]
    pub type_name: String,
    /// The version checked against.
    pub version: u64,
    /// True when there are no errors.
    pub valid: bool,
    /// Every violation.
    pub errors: Vec<Violation>,
}

/// One schema violation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Violation {
    /// JSON pointer into the instance, e.g. `/content/text` (`""`: the whole instance).
    pub pointer: String,
    /// JSON pointer of the schema keyword that failed.
    pub schema_pointer: String,
    /// What is wrong.
    pub message: String,
}
