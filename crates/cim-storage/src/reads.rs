//! Reads that fall through to the tiers: ranges of any item (objects hot
//! dropped, segments, manifests), events hot dropped found by CID, and the
//! listings a restore walks.

use std::collections::HashMap;

use bytes::Bytes;
use cim_cid::{Cid, DIGEST_LEN};
use cim_storage_api::{
    ItemKind, MAX_READ_LEN, ObjectPage, ObjectQuery, ObjectStat, ReadRange, SegmentInfo, SegmentQuery, TierName,
};
use tracing::info;

use crate::error::{Error, Result};
use crate::manager::Manager;
use crate::tier::Tier;

/// Where each event of the segments hot dropped is: built on the first
/// look-up of a dropped event, by reading those segments once, and extended
/// as retention drops more. About 50 bytes an event.
#[derive(Debug, Default)]
pub struct EventIndex {
    /// Segments indexed (by index).
    indexed: usize,
    /// Digest of the event CID → (segment index, stream sequence, byte
    /// offset of the block's data in the segment, its length).
    events: HashMap<[u8; DIGEST_LEN], (u32, u64, u64, u32)>,
}

impl Manager {
    /// Part of an item on a tier: `(size, tier, bytes)`.
    ///
    /// # Errors
    /// A malformed request, or no tier holds the item.
    pub async fn read_range(&self, range: &ReadRange) -> Result<(u64, TierName, Bytes)> {
        let cid: Cid = range.cid.parse().map_err(|e| Error::Invalid(format!("{:?} is not a CID: {e}", range.cid)))?;
        let len = range.len.min(MAX_READ_LEN);
        let key = self.key_of(range.kind, &cid).await;
        let order: Vec<TierName> = match range.tier {
            Some(tier) => vec![tier],
            None => TierName::ALL.to_vec(),
        };
        let mut last_error = None;
        for name in order {
            let tier = self.tier(name);
            if len == 0 || range.offset > 0 {
                // Past the end, or asking for nothing: the size answers.
                if let Some(size) = tier.head(&key).await? {
                    if range.offset >= size || len == 0 {
                        return Ok((size, name, Bytes::new()));
                    }
                } else {
                    continue;
                }
            }
            match tier.get_range(&key, range.offset..range.offset + len).await {
                Ok(Some((size, bytes))) => return Ok((size, name, bytes)),
                Ok(None) => continue,
                Err(error) => {
                    // An empty item has no byte 0 to range over.
                    if range.offset == 0 && tier.head(&key).await.ok().flatten() == Some(0) {
                        return Ok((0, name, Bytes::new()));
                    }
                    last_error = Some(error);
                }
            }
        }
        Err(last_error.unwrap_or(Error::NotFound { kind: range.kind, cid }))
    }

    /// An event hot dropped, found in the archive: `(seq, segment, bytes)`,
    /// verified against its CID.
    ///
    /// # Errors
    /// No segment hot dropped holds it.
    pub async fn archived_event(&self, cid: &Cid) -> Result<(u64, Cid, Bytes)> {
        let digest = cim_cid::sha256_digest(cid)?;
        let mut guard = self.inner.event_index.lock().await;
        let index = &mut *guard;
        let log = self.inner.events.log_state().await?;
        let segments = self.inner.archive.read().await.segments.clone();
        // Index every dropped segment not indexed yet (retention moves on).
        while index.indexed < segments.len() && segments[index.indexed].info.first_seq < log.first_seq {
            let segment = &segments[index.indexed];
            let segment_cid: Cid = segment.info.segment.parse().map_err(|_| Error::Archive("segment CID".into()))?;
            let bytes = self.read_tier_item(ItemKind::Segments, &segment_cid).await?;
            let mut reader = cim_archive::car::CarReader::open(bytes.as_ref(), bytes.len() as u64).await?.0;
            let _header = reader.next_block().await?;
            if let Some(header) = _header {
                reader.read(&header).await?;
            }
            let mut seq = segment.info.first_seq;
            while let Some(block) = reader.next_block().await? {
                let block_digest = cim_cid::sha256_digest(&block.cid)?;
                index.events.insert(block_digest, (index.indexed as u32, seq, block.offset, block.len as u32));
                reader.read(&block).await?;
                seq += 1;
            }
            index.indexed += 1;
            info!(segment = %segment_cid, events = index.events.len(), "indexed a segment hot dropped");
        }
        let &(segment_index, seq, offset, len) =
            index.events.get(&digest).ok_or(Error::NotFound { kind: ItemKind::Segments, cid: *cid })?;
        drop(guard);
        let segment_cid: Cid =
            segments[segment_index as usize].info.segment.parse().map_err(|_| Error::Archive("segment CID".into()))?;
        let key = Tier::key(ItemKind::Segments, &segment_cid, None);
        for tier in self.tiers() {
            let Some((_, bytes)) = tier.get_range(&key, offset..offset + u64::from(len)).await? else { continue };
            if cim_cid::Event::from_block(cid, &bytes).is_ok() {
                return Ok((seq, segment_cid, bytes));
            }
        }
        Err(Error::Corrupt {
            tier: None,
            kind: ItemKind::Segments,
            cid: segment_cid,
            reason: format!("event {cid} does not verify on any tier"),
        })
    }

    /// Segments overlapping the query, oldest first.
    pub async fn segments(&self, query: &SegmentQuery) -> Vec<SegmentInfo> {
        let archive = self.inner.archive.read().await;
        archive
            .segments
            .iter()
            .filter(|s| query.from_seq.is_none_or(|from| s.info.last_seq >= from))
            .filter(|s| query.to_seq.is_none_or(|to| s.info.first_seq <= to))
            .map(|s| s.info.clone())
            .collect()
    }

    /// Where an object is.
    ///
    /// # Errors
    /// A malformed CID, or nobody knows the object.
    pub async fn object_stat(&self, cid: &str) -> Result<ObjectStat> {
        let parsed: Cid = cid.parse().map_err(|e| Error::Invalid(format!("{cid:?} is not a CID: {e}")))?;
        let hot = self.inner.objects.stat(&parsed).await?;
        let record = self.inner.object_records.lock().await.get(&parsed.to_string()).cloned();
        if hot.is_none() && record.as_ref().is_none_or(|r| r.collected) {
            return Err(Error::NotFound { kind: ItemKind::Objects, cid: parsed });
        }
        let record = record.unwrap_or_default();
        Ok(ObjectStat {
            cid: parsed.to_string(),
            hot: hot.is_some(),
            size: hot.map_or(record.size, |m| m.size),
            tiers: TierName::ALL.into_iter().filter(|t| record.verified.contains_key(t)).collect(),
        })
    }

    /// A page of the objects the tiers hold, by CID.
    pub async fn object_page(&self, query: &ObjectQuery) -> ObjectPage {
        let limit = query.limit.unwrap_or(1000).clamp(1, 1000) as usize;
        let records = self.inner.object_records.lock().await;
        let mut objects = Vec::with_capacity(limit);
        let range = match &query.after {
            Some(after) => {
                records.range::<String, _>((std::ops::Bound::Excluded(after.clone()), std::ops::Bound::Unbounded))
            }
            None => records.range::<String, _>(..),
        };
        let mut next = None;
        for (cid, record) in range.filter(|(_, r)| !r.collected) {
            let tiers: Vec<TierName> = TierName::ALL.into_iter().filter(|t| record.verified.contains_key(t)).collect();
            if tiers.is_empty() {
                continue;
            }
            if objects.len() == limit {
                next = objects.last().map(|o: &ObjectStat| o.cid.clone());
                break;
            }
            objects.push(ObjectStat {
                cid: cid.clone(),
                size: record.size,
                hot: record.dropped_from_hot_us.is_none(),
                tiers,
            });
        }
        ObjectPage { objects, next }
    }

    /// The newest names snapshot.
    pub async fn names_snapshot_cid(&self) -> Option<String> {
        self.inner.archive.read().await.segments.last().and_then(|s| s.info.names.clone())
    }
}
