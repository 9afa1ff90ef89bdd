//! Units as clients see them: the state of a unit at one version and its
//! parts. Data only: how a change makes the next state is the service's
//! (`cim_ius::model::apply`).

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Value of a state's `format` field.
pub const STATE_FORMAT: &str = "cim-unit-state-v1";
/// Aggregate type of units.
pub const UNIT_AGGREGATE: &str = "unit";

/// A typed link to another unit.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Relation {
    /// The relation type, e.g. `cites`.
    pub relation: String,
    /// The other unit's id.
    pub target: String,
}

/// An object in the object store attached to a unit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttachedObject {
    /// The object's raw CID, as an IPLD link (`{"/": "bafk…"}` in JSON).
    pub cid: Value,
    /// Media type, e.g. `application/pdf`.
    pub media_type: String,
    /// Size in bytes.
    pub size: u64,
    /// Pixel width, for images whose header says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub width: Option<u64>,
    /// Pixel height, for images whose header says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub height: Option<u64>,
}

/// A unit as of one version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnitState {
    /// Always [`STATE_FORMAT`].
    pub format: String,
    /// The unit's id.
    pub id: String,
    /// Its kind, e.g. `text-document`.
    pub kind: String,
    /// Version of the kind's schema its content follows.
    pub kind_version: u64,
    /// The version of the unit (its event count).
    pub version: u64,
    /// When it was created, RFC 3339.
    pub created_at: String,
    /// When it last changed, RFC 3339.
    pub updated_at: String,
    /// Kind-specific content (IPLD data in DAG-JSON form).
    pub content: Value,
    /// The standard metadata layer.
    pub metadata: Value,
    /// Tags, sorted.
    pub tags: BTreeSet<String>,
    /// Typed links to other units, sorted.
    pub relations: BTreeSet<Relation>,
    /// Attached objects by role, e.g. `body`.
    pub objects: BTreeMap<String, AttachedObject>,
    /// Whether the unit was retired (it then refuses further changes).
    pub retired: bool,
}
