//! Reads that fall through to the Storage Manager's tiers when hot no
//! longer holds what is asked for: objects, events, and the archived part of
//! the event log. Everything read is verified here against its CID, whatever
//! the manager checked.

use std::time::Duration;

use anyhow::{Context, anyhow};
use cim_cid::{Cid, Event, RawHasher};
use cim_storage_api::{ItemKind, ReadRange, StorageCode, TierName};
use cim_store::StoredEvent;
use cim_wire::RequestError;
use tokio::io::{AsyncWrite, AsyncWriteExt};

use crate::services::Remote;
use crate::session::Session;

/// How long one request to the manager may take.
const TIMEOUT: Duration = Duration::from_secs(60);

/// The Storage Manager, for reads that fall through.
pub fn storage(session: &Session) -> Remote<cim_storage_api::Client> {
    Remote::storage(session, TIMEOUT)
}

/// Whether the manager says no tier holds the item.
pub fn is_not_found(error: &RequestError<StorageCode>) -> bool {
    error.remote().is_some_and(|e| e.is(StorageCode::NotFound))
}

/// Reads a whole item from the tiers into memory, verified against `cid`
/// (a copy that does not hash to it is read again from the other tier).
pub async fn read_item(session: &Session, kind: ItemKind, cid: &Cid) -> anyhow::Result<Vec<u8>> {
    let remote = storage(session);
    let mut last = None;
    for tier in [None, Some(TierName::Cold), Some(TierName::Warm)] {
        let mut bytes = Vec::new();
        let key = cid.to_string();
        let result = remote.client.read_all(kind, &key, tier, |chunk| {
            bytes.extend_from_slice(chunk);
            Ok(())
        });
        let source = tier.map_or("the first tier that answered".to_owned(), |t| format!("the {t} tier"));
        if let Err(error) = remote.check(result.await, |_| None) {
            last = Some(error.context(format!("reading it from {source}")));
            continue;
        }
        let mut hasher = RawHasher::default();
        hasher.update(&bytes);
        let actual = cim_cid::cid_from_digest(cid.codec(), &hasher.digest());
        if actual == *cid {
            return Ok(bytes);
        }
        last = Some(anyhow!("the copy on {source} ({} bytes) hashes to {actual}", bytes.len()));
    }
    Err(crate::exit::problems(format!(
        "no tier gave an intact copy of {kind} {cid}: {:#}; nothing was written (`cim storage scrub` repairs a tier from a good copy)",
        last.expect("tried")
    )))
}

/// Copies an object from the tiers into `output`, verified as it streams:
/// an error at the end if the bytes do not hash to `cid` (so a file must be
/// kept only if this succeeds). Returns the bytes written.
pub async fn copy_object(session: &Session, cid: &Cid, output: &mut (impl AsyncWrite + Unpin)) -> anyhow::Result<u64> {
    let remote = storage(session);
    let mut range = ReadRange {
        kind: ItemKind::Objects,
        cid: cid.to_string(),
        offset: 0,
        len: cim_storage_api::MAX_READ_LEN,
        tier: None,
    };
    let mut hasher = RawHasher::default();
    loop {
        let item = remote
            .check(remote.client.read(&range).await, |_| None)
            .with_context(|| format!("reading object {cid} from the tiers"))?;
        range.tier = range.tier.or(item.tier);
        hasher.update(&item.bytes);
        output.write_all(&item.bytes).await?;
        range.offset += item.bytes.len() as u64;
        if range.offset >= item.size || item.bytes.is_empty() {
            break;
        }
    }
    output.flush().await?;
    let actual = cim_cid::cid_from_digest(cid.codec(), &hasher.digest());
    if actual != *cid {
        return Err(crate::exit::problems(format!(
            "object {cid} read from the {} tier hashes to {actual}: damaged there (`cim storage scrub` repairs it)",
            range.tier.map_or("?".to_owned(), |t| t.to_string())
        )));
    }
    Ok(range.offset)
}

/// An event hot dropped, from the archive, verified against its CID.
pub async fn archived_event(session: &Session, cid: &Cid) -> anyhow::Result<StoredEvent> {
    let remote = storage(session);
    let found = remote
        .check(remote.client.event(&cid.to_string()).await, |_| None)
        .with_context(|| format!("looking for event {cid} in the archive"))?;
    let event = Event::from_block(cid, &found.bytes).with_context(|| format!("event {cid} from the archive"))?;
    // The archive keeps no server time: the event's own timestamp stands in.
    Ok(StoredEvent { seq: found.seq, stored_at: event.envelope.timestamp(), event })
}
