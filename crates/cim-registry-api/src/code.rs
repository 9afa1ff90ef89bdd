//! The registry's error codes.

cim_wire::codes! {
    /// Errors the registry answers with, besides the common ones
    /// ([`cim_wire::CommonCode`]: `bad_request`, `forbidden`,
    /// `payload_too_large`, `internal`, `unavailable`).
    pub enum RegistryCode {
        /// A component name, instance id, schema type or pattern breaks its
        /// syntax. Details: `what`, `value`.
        InvalidName = ("invalid_name", 400),
        /// No schema of this type. Details: `type`.
        UnknownSchema = ("unknown_schema", 404),
        /// The type has no such version. Details: `type`, `version`, `latest`.
        UnknownSchemaVersion = ("unknown_schema_version", 404),
        /// The document is not a usable JSON Schema.
        InvalidSchema = ("invalid_schema", 422),
        /// The new version breaks the compatibility rule. Details:
        /// `previous_version`, `violations`.
        IncompatibleSchema = ("incompatible_schema", 422),
        /// The type moved on since the caller looked (retryable). Details:
        /// `expected_version`, `current_version`.
        VersionConflict = ("version_conflict", 409),
    }
}

#[cfg(test)]
mod tests {
    use cim_wire::{Code, CommonCode};

    use super::*;

    #[test]
    fn codes_keep_their_spelling_and_do_not_shadow_common_ones() {
        let wire: Vec<(&str, u16)> = RegistryCode::ALL.iter().map(|c| (c.as_str(), c.status())).collect();
        assert_eq!(
            wire,
            [
                ("invalid_name", 400),
                ("unknown_schema", 404),
                ("unknown_schema_version", 404),
                ("invalid_schema", 422),
                ("incompatible_schema", 422),
                ("version_conflict", 409),
            ]
        );
        assert!(RegistryCode::ALL.iter().all(|c| CommonCode::parse(c.as_str()).is_none()));
    }
}
