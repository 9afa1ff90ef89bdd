//! Putting an item on a tier, verified: the one way anything is written
//! below hot.
//!
//! [`ensure_on`] makes a tier hold an item under its key with bytes that
//! hash to its CID, and proves it by reading the item back and re-hashing
//! it. It is idempotent: an item already there is verified rather than
//! written again (a restart copies nothing twice), a corrupt one is
//! replaced. Small items are written with a conditional put where the
//! provider supports it; large ones as multipart uploads after asking
//! whether the key exists.

use std::path::PathBuf;

use bytes::Bytes;
use cim_cid::Cid;
use cim_storage_api::ItemKind;
use futures::StreamExt;
use futures::stream::BoxStream;
use tokio_util::io::ReaderStream;

use crate::error::{Error, Result};
use crate::tier::Tier;

/// Where an item's bytes come from when a tier needs them.
#[derive(Debug, Clone)]
pub enum Source {
    /// The hot object store (verified as it is read).
    Hot(cim_store::ObjectStore),
    /// A local file (a segment just built).
    File(PathBuf),
    /// Bytes in memory.
    Bytes(Bytes),
    /// Another tier (its bytes are verified on the way: the copy is
    /// re-hashed after writing).
    Tier(Tier),
}

/// What [`ensure_on`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ensured {
    /// The tier held it, verified; nothing was written.
    Present,
    /// Written (or rewritten over a corrupt copy) and verified.
    Written,
}

/// Makes `tier` hold the item `cid` (of `size` bytes) under `key`, reading
/// it from `source` if it must be written, and verifies it by reading it
/// back. `single_put_max` is the largest item written in one request.
///
/// # Errors
/// The tier fails, the source lacks the item, or the written copy does not
/// hash to `cid` ([`Error::Corrupt`]); nothing is then counted as verified.
pub async fn ensure_on(
    tier: &Tier,
    kind: ItemKind,
    key: &str,
    cid: &Cid,
    size: u64,
    source: &Source,
    single_put_max: u64,
) -> Result<Ensured> {
    // A large item: ask first (multipart uploads cannot be conditional).
    let small = size <= single_put_max;
    if !small
        && let Some(found) = tier.head(key).await?
        && found == size
        && verify(tier, kind, key, cid).await?.is_ok()
    {
        tier.counters().skipped_present.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        return Ok(Ensured::Present);
    }
    let written = if small {
        let bytes = read_all(source, kind, key, cid, size).await?;
        let created = tier.put(key, bytes.clone(), true).await?;
        if !created {
            // Already there: it counts only if it is intact.
            if verify(tier, kind, key, cid).await?.is_ok() {
                return Ok(Ensured::Present);
            }
            tier.put(key, bytes, false).await?;
        }
        true
    } else {
        let chunks = stream(source, kind, key, cid).await?;
        tier.put_stream(key, chunks).await?;
        true
    };
    match verify(tier, kind, key, cid).await? {
        Ok(()) => Ok(if written { Ensured::Written } else { Ensured::Present }),
        Err(reason) => Err(Error::Corrupt {
            tier: Some(tier.name()),
            kind,
            cid: *cid,
            reason: format!("after writing it: {reason}"),
        }),
    }
}

/// Reads the item back from `tier` and hashes it: `Ok(Ok(()))` when it
/// hashes to `cid`, `Ok(Err(why))` when it is missing or does not.
pub async fn verify(tier: &Tier, kind: ItemKind, key: &str, cid: &Cid) -> Result<std::result::Result<(), String>> {
    let _ = kind;
    Ok(match tier.hash(key, cid.codec()).await? {
        None => Err("missing".to_owned()),
        Some((actual, _)) if actual == *cid => Ok(()),
        Some((actual, size)) => Err(format!("its {size} bytes hash to {actual}")),
    })
}

async fn read_all(source: &Source, kind: ItemKind, key: &str, cid: &Cid, size: u64) -> Result<Bytes> {
    Ok(match source {
        Source::Bytes(bytes) => bytes.clone(),
        Source::File(path) => Bytes::from(tokio::fs::read(path).await?),
        Source::Hot(objects) => Bytes::from(objects.get_bytes(cid).await?),
        Source::Tier(other) => {
            let bytes = other.get(key).await?.ok_or(Error::NotFound { kind, cid: *cid })?;
            if bytes.len() as u64 != size {
                return Err(Error::Corrupt {
                    tier: Some(other.name()),
                    kind,
                    cid: *cid,
                    reason: format!("{} bytes, expected {size}", bytes.len()),
                });
            }
            bytes
        }
    })
}

async fn stream(source: &Source, kind: ItemKind, key: &str, cid: &Cid) -> Result<BoxStream<'static, Result<Bytes>>> {
    Ok(match source {
        Source::Bytes(bytes) => futures::stream::once(std::future::ready(Ok(bytes.clone()))).boxed(),
        Source::File(path) => {
            let file = tokio::fs::File::open(path).await?;
            ReaderStream::with_capacity(file, 1 << 20).map(|chunk| chunk.map_err(Error::from)).boxed()
        }
        Source::Hot(objects) => objects.get(cid).await?.map(|chunk| chunk.map_err(Error::from)).boxed(),
        Source::Tier(other) => {
            let (_, chunks) = other.get_stream(key).await?.ok_or(Error::NotFound { kind, cid: *cid })?;
            chunks
        }
    })
}
