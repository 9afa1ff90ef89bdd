//! Remote stages: any component can add a stage to the engine's library.
//!
//! A component that serves stage `<name>` registers the capability
//! `pipeline.stage.<name>` with the Component Registry and lists, among the
//! subjects of its registration, one ending in `.pipeline.stage.<name>`
//! (by convention `<its service prefix>.pipeline.stage.<name>`, e.g.
//! `cim.service.ocr.pipeline.stage.ocr`). The engine finds it by the
//! capability, sends a [`StageRequest`] to that subject and waits for a
//! [`StageReply`] up to the stage's timeout. A reply that is not a
//! `StageReply`, an error reply, no responder or no reply in time fail the
//! input's attempt (it is retried, then dead-lettered with the reason).

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The capability a component serving stage `name` registers.
pub fn capability(name: &str) -> String {
    format!("pipeline.stage.{name}")
}

/// The last tokens of the subject a stage is served on.
pub fn subject_suffix(name: &str) -> String {
    format!(".pipeline.stage.{name}")
}

/// Whether `name` is a valid stage name: 1-64 of `[a-z0-9_-]`, starting with a letter.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

/// What the engine sends a remote stage: one value to process.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageRequest {
    /// The pipeline.
    pub pipeline: String,
    /// Its version.
    pub version: u64,
    /// The stage's name in the pipeline.
    pub stage: String,
    /// CID of the input event the value came from.
    pub input_cid: String,
    /// The value.
    pub value: Value,
    /// Options from the stage's definition (`with = {...}`).
    pub options: Value,
}

/// What a remote stage answers: the values that go on (none: the value is
/// filtered out; several: fan-out).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StageReply {
    /// The values.
    pub values: Vec<Value>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(capability("ocr"), "pipeline.stage.ocr");
        assert!(valid_name("ocr-v2"));
        assert!(!valid_name("Ocr") && !valid_name("a.b") && !valid_name(""));
    }
}
