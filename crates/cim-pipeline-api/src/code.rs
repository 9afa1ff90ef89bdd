//! The engine's error codes.

cim_wire::codes! {
    /// Errors the engine answers with, besides the common ones
    /// ([`cim_wire::CommonCode`]).
    pub enum PipelineCode {
        /// No pipeline with this name (or not at this version). Details: `name`.
        UnknownPipeline = ("unknown_pipeline", 404),
        /// The definition is refused; nothing was stored. Details: `errors`,
        /// a list of [`crate::DefinitionError`] (path, message, and for jq
        /// programs line and column).
        InvalidDefinition = ("invalid_definition", 422),
        /// The pipeline is not at the version the request expected
        /// (retryable after re-reading). Details: `expected_version`, `current_version`.
        VersionConflict = ("version_conflict", 409),
        /// The pipeline is already paused, or not paused. Details: `name`.
        NoChange = ("no_change", 409),
        /// A manual run failed. Details: `stage`, `reason`.
        RunFailed = ("run_failed", 422),
    }
}

#[cfg(test)]
mod tests {
    use cim_wire::{Code, CommonCode};

    use super::*;

    #[test]
    fn codes_do_not_shadow_common_ones() {
        assert!(PipelineCode::ALL.iter().all(|c| CommonCode::parse(c.as_str()).is_none()));
        assert_eq!(PipelineCode::parse("invalid_definition"), Some(PipelineCode::InvalidDefinition));
    }
}
