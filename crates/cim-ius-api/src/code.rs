//! The IUS's error codes.

cim_wire::codes! {
    /// Errors the IUS answers with, besides the common ones
    /// ([`cim_wire::CommonCode`]: `bad_request`, `payload_too_large`,
    /// `internal`, `unavailable`). `kinds.register` also passes the
    /// registry's refusals of a schema through unchanged (e.g.
    /// `incompatible_schema`, `invalid_schema`).
    pub enum IusCode {
        /// No unit with this id. Details: `id`.
        UnknownUnit = ("unknown_unit", 404),
        /// No unit state has this CID. Details: `state_cid`.
        UnknownState = ("unknown_state", 404),
        /// The unit is not at the version the command expected (retryable
        /// after re-reading). Details: `id`, `expected_version`, `current_version`.
        VersionConflict = ("version_conflict", 409),
        /// Content or metadata breaks its schema. Details: `what`, `schema`,
        /// `schema_version`, `violations` (pointers into the unit).
        SchemaViolation = ("schema_violation", 422),
        /// A JSON Patch does not apply. Details: `operation`, `path`.
        PatchFailed = ("patch_failed", 422),
        /// No schema is registered for the kind. Details: `kind`.
        UnknownKind = ("unknown_kind", 404),
        /// The unit is retired and takes no more changes.
        UnitRetired = ("unit_retired", 409),
        /// A unit with this id exists already.
        UnitExists = ("unit_exists", 409),
        /// The change would change nothing (e.g. removing a tag it lacks).
        NoChange = ("no_change", 409),
        /// The object to attach is not in the object store. Details: `cid`.
        UnknownObject = ("unknown_object", 404),
        /// A `caused_by` CID names no stored event. Details: `cid`.
        UnknownParent = ("unknown_parent", 422),
    }
}

#[cfg(test)]
mod tests {
    use cim_wire::{Code, CommonCode};

    use super::*;

    #[test]
    fn codes_keep_their_spelling_and_do_not_shadow_common_ones() {
        let wire: Vec<(&str, u16)> = IusCode::ALL.iter().map(|c| (c.as_str(), c.status())).collect();
        assert_eq!(
            wire,
            [
                ("unknown_unit", 404),
                ("unknown_state", 404),
                ("version_conflict", 409),
                ("schema_violation", 422),
                ("patch_failed", 422),
                ("unknown_kind", 404),
                ("unit_retired", 409),
                ("unit_exists", 409),
                ("no_change", 409),
                ("unknown_object", 404),
                ("unknown_parent", 422),
            ]
        );
        assert!(IusCode::ALL.iter().all(|c| CommonCode::parse(c.as_str()).is_none()));
    }
}
