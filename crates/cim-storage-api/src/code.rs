//! The Storage Manager's error codes.

cim_wire::codes! {
    /// Errors the Storage Manager answers with, besides the common ones
    /// ([`cim_wire::CommonCode`]: `bad_request`, `forbidden`,
    /// `payload_too_large`, `internal`, `unavailable`).
    pub enum StorageCode {
        /// A CID, kind or range in the request is malformed. Details:
        /// `what`, `value`.
        InvalidRequest = ("invalid_request", 400),
        /// No tier holds the item. Details: `kind`, `cid`.
        NotFound = ("not_found", 404),
        /// Every tier that holds the item holds it corrupt (its bytes do not
        /// hash to its CID). Details: `kind`, `cid`, `tiers`.
        Corrupt = ("corrupt", 422),
        /// A tier refused the manager's credentials (retrying will not
        /// help until they are fixed). Details: `tier`.
        TierDenied = ("tier_denied", 502),
        /// A tier is unreachable, slow or failing (retryable). Details:
        /// `tier`.
        TierUnavailable = ("tier_unavailable", 503),
        /// A tier's bucket does not exist. Details: `tier`, `bucket`.
        NoSuchBucket = ("no_such_bucket", 502),
        /// A tier is out of space. Details: `tier`.
        TierFull = ("tier_full", 507),
        /// The operation is already running (seal, scrub, gc, retention);
        /// retry when it is done.
        Busy = ("busy", 409),
        /// The hot store is behind the archive (a fresh host): restore it
        /// first; sealing, retention and collection are paused.
        RestoreNeeded = ("restore_needed", 409),
    }
}

#[cfg(test)]
mod tests {
    use cim_wire::{Code, CommonCode};

    use super::*;

    #[test]
    fn codes_do_not_shadow_common_ones() {
        assert!(StorageCode::ALL.iter().all(|c| CommonCode::parse(c.as_str()).is_none()));
        assert_eq!(StorageCode::parse("not_found"), Some(StorageCode::NotFound));
    }
}
