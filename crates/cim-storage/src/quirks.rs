//! What S3 providers do differently, in one place.
//!
//! - **Conditional puts.** AWS, MinIO, Wasabi and SeaweedFS honour
//!   `If-None-Match: *` on a single PUT (`PutMode::Create`); a provider that
//!   does not is configured with `conditional_put = false`, and the manager
//!   asks for the key first ([`crate::tier::Tier::put`]). Multipart uploads
//!   are never conditional here. Either way, items are named by the CID of
//!   their bytes, so a second write of a key writes the same bytes, and
//!   every write is read back and re-hashed before it counts.
//! - **Listing.** Keys are listed under `<prefix><kind>/`; providers differ
//!   in page sizes and in whether a listing is consistent right after a
//!   write, so nothing is concluded from a listing alone: an item counts
//!   once it was read back and hashed.
//! - **Missing buckets.** s3s-fs stores objects as files and creates a
//!   missing bucket's directory on a PUT instead of answering
//!   `NoSuchBucket`; its listing does refuse a missing bucket. So seal and
//!   copy list every tier once before writing (`require_tiers`).
//! - **Directory tiers** (`endpoint = "file:///dir"`, object_store's
//!   `LocalFileSystem`; for development and `cim up`). A create-only put is
//!   a staged file hard-linked to its name, which the file system refuses
//!   atomically when the name exists (`AlreadyExists`, as a conditional PUT
//!   answers `412`): `conditional_put = true` works, on file systems with
//!   hard links (not on some network or FUSE mounts: there set
//!   `conditional_put = false`). A multipart upload is a staged file
//!   renamed at its end, so a failed one never shows. Every write is
//!   fsynced (file and directory). A missing bucket directory lists as
//!   empty and is created by a write, so [`crate::tier::Tier::check`] asks
//!   the file system and answers `NoSuchBucket`. Staged files (`#` in
//!   their names) are skipped by listings.
//! - **Error codes.** A missing bucket is a 404 like a missing key
//!   (`NoSuchBucket` vs `NoSuchKey`), bad credentials are 403
//!   (`InvalidAccessKeyId`, `SignatureDoesNotMatch`, `AccessDenied`), a full
//!   disk is 507 `InsufficientStorage` on MinIO (`XMinioStorageFull`) and a
//!   500 naming the error on others. [`classify`] reads the codes out of
//!   `object_store`'s errors.

use crate::error::TierProblem;

/// What kind of failure an `object_store` error is.
pub fn classify(error: &::object_store::Error) -> TierProblem {
    use ::object_store::Error as E;
    let text = error.to_string();
    let says = |needles: &[&str]| needles.iter().any(|needle| text.contains(needle));
    if says(&["NoSuchBucket", "The specified bucket does not exist"]) {
        return TierProblem::NoSuchBucket;
    }
    match error {
        E::NotFound { .. } => TierProblem::NotFound,
        E::AlreadyExists { .. } | E::Precondition { .. } => TierProblem::AlreadyExists,
        E::PermissionDenied { .. } | E::Unauthenticated { .. } => TierProblem::Denied,
        _ if says(&[
            "InvalidAccessKeyId",
            "SignatureDoesNotMatch",
            "AccessDenied",
            "status: 403",
            "403 Forbidden",
            "401 Unauthorized",
        ]) =>
        {
            TierProblem::Denied
        }
        _ if says(&[
            "InsufficientStorage",
            "XMinioStorageFull",
            "No space left",
            "no space left",
            "507 Insufficient Storage",
            "QuotaExceeded",
        ]) =>
        {
            TierProblem::Full
        }
        E::Generic { .. } => TierProblem::Unavailable,
        _ => TierProblem::Other,
    }
}
