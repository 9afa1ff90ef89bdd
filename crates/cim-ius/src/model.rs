//! Units, the changes made to them, and how a change makes the next state.
//!
//! The data types ([`UnitState`], [`AttachedObject`], [`Relation`]) are
//! `cim_ius_api::model`'s, re-exported here.
//!
//! A unit's state is a pure function of its events: [`apply`] is the only
//! place a state is made, used alike by commands (to compute and validate
//! the next state before appending) and by the projection and past-state
//! queries (to replay). Every state has a CID: CIDv1 dag-cbor sha2-256 of
//! the state's canonical DAG-CBOR ([`state_cid`]). States are not stored —
//! they are recomputed from the chain — but each event records the CID of
//! the state it produces (`state`), so a replay proves it reproduces
//! exactly what the writer saw.

use std::collections::{BTreeMap, BTreeSet};

use cim_cid::{Cid, Timestamp, encode_dag_cbor, ipld_from_json};
pub use cim_ius_api::model::{AttachedObject, Relation, STATE_FORMAT, UNIT_AGGREGATE, UnitState};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One change to a unit: the payload of one event. The event type is the
/// variant's name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event_type", content = "payload")]
pub enum Change {
    /// The unit came to be.
    UnitCreated {
        /// Its kind.
        kind: String,
        /// The kind schema version.
        kind_version: u64,
        /// Its content.
        content: Value,
        /// Its metadata.
        metadata: Value,
        /// Its tags.
        tags: BTreeSet<String>,
    },
    /// Content and metadata changed by an RFC 6902 JSON Patch applied to
    /// `{"content": …, "metadata": …}`.
    UnitUpdated {
        /// The patch.
        patch: Value,
    },
    /// Tags added.
    UnitTagged {
        /// The tags.
        tags: BTreeSet<String>,
    },
    /// Tags removed.
    UnitUntagged {
        /// The tags.
        tags: BTreeSet<String>,
    },
    /// A relation added.
    UnitRelated(Relation),
    /// A relation removed.
    UnitUnrelated(Relation),
    /// An object attached under a role (replacing what was there).
    ObjectAttached {
        /// The role, e.g. `body`.
        role: String,
        /// The object.
        object: AttachedObject,
    },
    /// The object under a role detached.
    ObjectDetached {
        /// The role.
        role: String,
    },
    /// The unit retired.
    UnitRetired {
        /// Why.
        #[serde(default)]
        reason: Option<String>,
    },
}

/// Why a change cannot apply to a state.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ApplyError {
    /// Only the first event may create a unit, and it must.
    #[error("{0}")]
    Sequence(String),
    /// The JSON Patch does not apply.
    #[error("JSON Patch operation {operation} at {path:?} does not apply: {reason}")]
    Patch {
        /// Index of the failing operation.
        operation: usize,
        /// Its path.
        path: String,
        /// Why.
        reason: String,
    },
    /// The unit is retired.
    #[error("unit {id} is retired")]
    Retired {
        /// The unit.
        id: String,
    },
    /// The change would change nothing (e.g. untagging a tag it lacks).
    #[error("{0}")]
    NoOp(String),
}

impl Change {
    /// The event type of this change.
    pub fn event_type(&self) -> &'static str {
        match self {
            Self::UnitCreated { .. } => "UnitCreated",
            Self::UnitUpdated { .. } => "UnitUpdated",
            Self::UnitTagged { .. } => "UnitTagged",
            Self::UnitUntagged { .. } => "UnitUntagged",
            Self::UnitRelated(_) => "UnitRelated",
            Self::UnitUnrelated(_) => "UnitUnrelated",
            Self::ObjectAttached { .. } => "ObjectAttached",
            Self::ObjectDetached { .. } => "ObjectDetached",
            Self::UnitRetired { .. } => "UnitRetired",
        }
    }
}

/// The state after `change`, made at `at`, to unit `id` in `state`.
pub fn apply(id: &str, state: Option<&UnitState>, change: &Change, at: Timestamp) -> Result<UnitState, ApplyError> {
    let mut next = match (state, change) {
        (None, Change::UnitCreated { kind, kind_version, content, metadata, tags }) => {
            return Ok(UnitState {
                format: STATE_FORMAT.to_owned(),
                id: id.to_owned(),
                kind: kind.clone(),
                kind_version: *kind_version,
                version: 1,
                created_at: at.to_string(),
                updated_at: at.to_string(),
                content: content.clone(),
                metadata: metadata.clone(),
                tags: tags.clone(),
                relations: BTreeSet::new(),
                objects: BTreeMap::new(),
                retired: false,
            });
        }
        (None, _) => {
            return Err(ApplyError::Sequence(format!(
                "unit {id} does not exist yet; its first event must be UnitCreated"
            )));
        }
        (Some(_), Change::UnitCreated { .. }) => return Err(ApplyError::Sequence(format!("unit {id} already exists"))),
        (Some(state), _) if state.retired => return Err(ApplyError::Retired { id: id.to_owned() }),
        (Some(state), _) => state.clone(),
    };
    match change {
        Change::UnitCreated { .. } => unreachable!("handled above"),
        Change::UnitUpdated { patch } => {
            let operations: json_patch::Patch = serde_json::from_value(patch.clone()).map_err(|e| {
                ApplyError::Patch { operation: 0, path: String::new(), reason: format!("not an RFC 6902 patch: {e}") }
            })?;
            let mut document = serde_json::json!({ "content": next.content, "metadata": next.metadata });
            json_patch::patch(&mut document, &operations).map_err(|e| ApplyError::Patch {
                operation: e.operation,
                path: e.path.to_string(),
                reason: e.kind.to_string(),
            })?;
            let Value::Object(mut document) = document else {
                return Err(ApplyError::Patch {
                    operation: 0,
                    path: String::new(),
                    reason: "the patch replaced the whole document".to_owned(),
                });
            };
            let (Some(content), Some(metadata)) = (document.remove("content"), document.remove("metadata")) else {
                return Err(ApplyError::Patch {
                    operation: 0,
                    path: String::new(),
                    reason: "the patch removed /content or /metadata".to_owned(),
                });
            };
            if let Some(extra) = document.keys().next() {
                return Err(ApplyError::Patch {
                    operation: 0,
                    path: format!("/{extra}"),
                    reason: "only /content and /metadata can be patched".to_owned(),
                });
            }
            next.content = content;
            next.metadata = metadata;
        }
        Change::UnitTagged { tags } => next.tags.extend(tags.iter().cloned()),
        Change::UnitUntagged { tags } => {
            if let Some(missing) = tags.iter().find(|tag| !next.tags.contains(*tag)) {
                return Err(ApplyError::NoOp(format!("unit {id} has no tag {missing:?}")));
            }
            next.tags.retain(|tag| !tags.contains(tag));
        }
        Change::UnitRelated(relation) => {
            next.relations.insert(relation.clone());
        }
        Change::UnitUnrelated(relation) => {
            if !next.relations.remove(relation) {
                return Err(ApplyError::NoOp(format!(
                    "unit {id} has no {:?} relation to {}",
                    relation.relation, relation.target
                )));
            }
        }
        Change::ObjectAttached { role, object } => {
            next.objects.insert(role.clone(), object.clone());
        }
        Change::ObjectDetached { role } => {
            if next.objects.remove(role).is_none() {
                return Err(ApplyError::NoOp(format!("unit {id} has no object attached as {role:?}")));
            }
        }
        Change::UnitRetired { .. } => next.retired = true,
    }
    next.version += 1;
    next.updated_at = at.to_string();
    Ok(next)
}

/// The CID of a state: CIDv1, dag-cbor, sha2-256 of its canonical DAG-CBOR
/// (content and metadata read as DAG-JSON, so links stay links).
pub fn state_cid(state: &UnitState) -> Result<Cid, cim_cid::Error> {
    let json = serde_json::to_value(state).map_err(|e| cim_cid::Error::Encode(e.to_string()))?;
    let ipld = ipld_from_json(&json)?;
    Ok(encode_dag_cbor(&ipld)?.0)
}

/// The JSON form of an object link.
pub fn link(cid: &Cid) -> Value {
    serde_json::json!({ "/": cid.to_string() })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn created() -> UnitState {
        let change = Change::UnitCreated {
            kind: "text-document".into(),
            kind_version: 1,
            content: json!({"text": "hi"}),
            metadata: json!({}),
            tags: BTreeSet::new(),
        };
        apply("u1", None, &change, Timestamp::from_unix_micros(0)).expect("create")
    }

    #[test]
    fn patches_content_and_metadata_only() {
        let state = created();
        let patch = Change::UnitUpdated {
            patch: json!([{"op": "replace", "path": "/content/text", "value": "bye"}, {"op": "add", "path": "/metadata/title", "value": "T"}]),
        };
        let next = apply("u1", Some(&state), &patch, Timestamp::from_unix_micros(1)).expect("patch");
        assert_eq!((next.version, &next.content, &next.metadata), (2, &json!({"text": "bye"}), &json!({"title": "T"})));
        let bad = Change::UnitUpdated { patch: json!([{"op": "remove", "path": "/content/missing"}]) };
        let error = apply("u1", Some(&state), &bad, Timestamp::from_unix_micros(1)).expect_err("does not apply");
        assert!(
            matches!(error, ApplyError::Patch { operation: 0, ref path, .. } if path == "/content/missing"),
            "{error:?}"
        );
        let outside = Change::UnitUpdated { patch: json!([{"op": "add", "path": "/tags", "value": []}]) };
        assert!(apply("u1", Some(&state), &outside, Timestamp::from_unix_micros(1)).is_err());
    }

    #[test]
    fn state_cids_differ_by_version_and_are_stable() {
        let state = created();
        let tagged = apply(
            "u1",
            Some(&state),
            &Change::UnitTagged { tags: ["a".to_owned()].into() },
            Timestamp::from_unix_micros(1),
        )
        .expect("tag");
        assert_ne!(state_cid(&state).expect("cid"), state_cid(&tagged).expect("cid"));
        assert_eq!(state_cid(&tagged).expect("cid"), state_cid(&tagged.clone()).expect("cid"));
        let retired = apply("u1", Some(&tagged), &Change::UnitRetired { reason: None }, Timestamp::from_unix_micros(2))
            .expect("retire");
        assert!(matches!(
            apply("u1", Some(&retired), &Change::UnitTagged { tags: BTreeSet::new() }, Timestamp::from_unix_micros(3)),
            Err(ApplyError::Retired { .. })
        ));
    }
}
