//! The client side of the Storage Manager's request API.

use std::time::Duration;

use bytes::Bytes;
use cim_wire::{Caller, Empty, RequestError};

use crate::{
    EVENT, EventRef, GC, GcReport, GcRequest, ItemKind, MAX_READ_LEN, NAMES, NamesSnapshotRef, OBJECT_LIST,
    OBJECT_STAT, ObjectPage, ObjectQuery, ObjectRef, ObjectStat, READ, RETENTION, ReadRange, RetentionReport,
    RetentionRequest, SCRUB, SEAL, SEGMENTS, STATUS, ScrubReport, ScrubRequest, SealReport, SealRequest, SegmentList,
    SegmentQuery, Status, StorageCode, TierName,
};

/// What a Storage Manager request ends with.
pub type Result<T> = std::result::Result<T, RequestError<StorageCode>>;

/// Part of an item read from a tier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    /// The bytes.
    pub bytes: Bytes,
    /// The item's whole size.
    pub size: u64,
    /// The tier they came from.
    pub tier: Option<TierName>,
}

/// An event read from the archive (not yet verified by the caller).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchivedEventBytes {
    /// Its canonical DAG-CBOR bytes.
    pub bytes: Bytes,
    /// Its stream sequence.
    pub seq: u64,
    /// The segment holding it.
    pub segment: String,
}

/// Talks to any instance of the Storage Manager. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Client {
    caller: Caller,
}

impl Client {
    /// A client on `nats`, waiting `timeout` for each reply.
    pub fn new(nats: async_nats::Client, timeout: Duration) -> Self {
        Self { caller: Caller::new(nats, timeout) }
    }

    /// A client calling through `caller`.
    pub fn with_caller(caller: Caller) -> Self {
        Self { caller }
    }

    /// The caller it uses.
    pub fn caller(&self) -> &Caller {
        &self.caller
    }

    /// Usage per tier, lag, last scrub.
    pub async fn status(&self) -> Result<Status> {
        self.caller.call(&STATUS, &Empty {}).await
    }

    /// Seals and copies now.
    pub async fn seal(&self, force: bool) -> Result<SealReport> {
        self.caller.call(&SEAL, &SealRequest { force }).await
    }

    /// Scrubs every tier now.
    pub async fn scrub(&self, repair: bool) -> Result<ScrubReport> {
        self.caller.call(&SCRUB, &ScrubRequest { no_repair: !repair }).await
    }

    /// Garbage collection (or its dry run).
    pub async fn gc(&self, dry_run: bool) -> Result<GcReport> {
        self.caller.call(&GC, &GcRequest { dry_run }).await
    }

    /// Retention (or its dry run).
    pub async fn retention(&self, dry_run: bool) -> Result<RetentionReport> {
        self.caller.call(&RETENTION, &RetentionRequest { dry_run }).await
    }

    /// Sealed segments overlapping the sequences asked for, oldest first.
    pub async fn segments(&self, query: &SegmentQuery) -> Result<SegmentList> {
        self.caller.call(&SEGMENTS, query).await
    }

    /// Where an object is.
    pub async fn object_stat(&self, cid: &str) -> Result<ObjectStat> {
        self.caller.call(&OBJECT_STAT, &ObjectRef { cid: cid.to_owned() }).await
    }

    /// A page of the objects the archive knows.
    pub async fn objects(&self, query: &ObjectQuery) -> Result<ObjectPage> {
        self.caller.call(&OBJECT_LIST, query).await
    }

    /// The newest names snapshot.
    pub async fn names(&self) -> Result<NamesSnapshotRef> {
        self.caller.call(&NAMES, &Empty {}).await
    }

    /// Reads part of an item.
    pub async fn read(&self, range: &ReadRange) -> Result<Item> {
        let message = self.caller.call_raw(&READ, range).await?;
        let body = message.payload;
        if body.len() < 9 {
            return Err(RequestError::Transport {
                subject: READ.subject(),
                reason: "the reply is too short".to_owned(),
            });
        }
        let size = u64::from_be_bytes(body[..8].try_into().expect("8 bytes"));
        let tier = Some(if body[8] == 0 { TierName::Warm } else { TierName::Cold });
        Ok(Item { bytes: body.slice(9..), size, tier })
    }

    /// Reads a whole item in ranges of [`MAX_READ_LEN`], handing each to
    /// `sink` in order; returns its size. Every range after the first comes
    /// from the tier the first came from, so the bytes are one copy. The
    /// caller hashes them: nothing here checks them.
    pub async fn read_all(
        &self,
        kind: ItemKind,
        cid: &str,
        tier: Option<TierName>,
        mut sink: impl FnMut(&[u8]) -> std::io::Result<()>,
    ) -> Result<u64> {
        let mut range = ReadRange { kind, cid: cid.to_owned(), offset: 0, len: MAX_READ_LEN, tier };
        loop {
            let item = self.read(&range).await?;
            if range.tier.is_none() {
                range.tier = item.tier;
            }
            sink(&item.bytes).map_err(|e| RequestError::Transport {
                subject: READ.subject(),
                reason: format!("writing what was read: {e}"),
            })?;
            range.offset += item.bytes.len() as u64;
            if range.offset >= item.size {
                return Ok(item.size);
            }
            if item.bytes.is_empty() {
                return Err(RequestError::Transport {
                    subject: READ.subject(),
                    reason: format!("{kind} {cid}: an empty read at byte {} of {}", range.offset, item.size),
                });
            }
        }
    }

    /// An event dropped from hot, found in the archive by CID. The caller
    /// verifies its bytes against the CID.
    pub async fn event(&self, cid: &str) -> Result<ArchivedEventBytes> {
        let message = self.caller.call_raw(&EVENT, &EventRef { cid: cid.to_owned() }).await?;
        let body = message.payload;
        let malformed =
            || RequestError::Transport { subject: EVENT.subject(), reason: "the reply is malformed".to_owned() };
        if body.len() < 10 {
            return Err(malformed());
        }
        let seq = u64::from_be_bytes(body[..8].try_into().expect("8 bytes"));
        let len = usize::from(u16::from_be_bytes([body[8], body[9]]));
        let segment =
            body.get(10..10 + len).and_then(|s| std::str::from_utf8(s).ok()).ok_or_else(malformed)?.to_owned();
        Ok(ArchivedEventBytes { bytes: body.slice(10 + len..), seq, segment })
    }
}
