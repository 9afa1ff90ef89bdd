//! Named, versioned objects. A name points (in a KV bucket) to the CID of
//! its latest version record; each record is a DAG-CBOR object linking the
//! content and the previous record, so a name's history is itself a
//! verifiable hash chain.

use async_nats::jetstream::kv;
use cim_cid::{Cid, Timestamp};
use serde::{Deserialize, Serialize};
use tokio::io::AsyncRead;

use crate::{Error, KvOptions, ObjectStore, Result, StoreConfig, provision};

/// Value of a version record's `format` field.
pub const NAMED_FORMAT: &str = "cim-named-v1";
/// Longest object name, in bytes.
pub const MAX_NAME_LEN: usize = 256;
/// How often an update retries when another writer moved the name first.
const UPDATE_RETRIES: usize = 16;

/// One version of a named object: the DAG-CBOR record stored in the object
/// store. Field names are the record's map keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NamedVersion {
    /// Always [`NAMED_FORMAT`].
    pub format: String,
    /// The object's name.
    pub name: String,
    /// Version number, from 1.
    pub version: u64,
    /// CID of the content.
    pub content: Cid,
    /// CID of the previous version's record; null for version 1.
    pub prev: Option<Cid>,
    /// When this version was recorded.
    pub timestamp_us: Timestamp,
}

/// A version record together with its own CID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedRecord {
    /// CID of the record.
    pub cid: Cid,
    /// The record.
    pub record: NamedVersion,
}

/// Named objects over an [`ObjectStore`]. Cheap to clone.
#[derive(Debug, Clone)]
pub struct NamedObjects {
    objects: ObjectStore,
    heads: kv::Store,
}

/// Checks a name: 1–256 bytes of `[A-Za-z0-9_=/.-]`, not starting or ending with `.` or `/`.
pub fn validate_name(name: &str) -> Result<()> {
    let valid = !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'=' | b'/' | b'.' | b'-'))
        && ![b'.', b'/'].contains(&name.as_bytes()[0])
        && ![b'.', b'/'].contains(&name.as_bytes()[name.len() - 1]);
    if valid {
        Ok(())
    } else {
        Err(Error::Invalid(cim_cid::Error::InvalidName {
            what: "object name",
            value: name.to_owned(),
            reason: "must be 1-256 bytes of letters, digits and '_', '=', '/', '.', '-', not starting or ending with '.' or '/'",
        }))
    }
}

impl NamedObjects {
    /// How the names bucket keeps its entries.
    pub fn bucket_options() -> KvOptions {
        KvOptions {
            description: "CIM object names: name -> CID of the latest version record".to_owned(),
            history: 1,
            ..KvOptions::default()
        }
    }

    /// Attaches to the names bucket beside `objects`, which provisioning
    /// created.
    ///
    /// # Errors
    /// [`Error::NotProvisioned`] when the bucket does not exist.
    pub async fn open(objects: ObjectStore, client: async_nats::Client, config: &StoreConfig) -> Result<Self> {
        config.validate()?;
        let js = async_nats::jetstream::new(client);
        let bucket = config.names().names_bucket;
        let heads = provision::attach_kv_bucket(&js, config, &bucket, &Self::bucket_options()).await?;
        Ok(Self { objects, heads })
    }

    /// Creates the names bucket if missing (or adapts it), then opens it:
    /// the admin's path (provisioning).
    pub async fn provision(objects: ObjectStore, client: async_nats::Client, config: &StoreConfig) -> Result<Self> {
        config.validate()?;
        let js = async_nats::jetstream::new(client);
        let bucket = config.names().names_bucket;
        let heads = provision::provision_kv_bucket(&js, config, &bucket, &Self::bucket_options()).await?;
        Ok(Self { objects, heads })
    }

    /// Stores `input` and makes it the next version of `name`.
    pub async fn put(&self, name: &str, input: impl AsyncRead + Unpin) -> Result<NamedRecord> {
        validate_name(name)?;
        let content = self.objects.put(input).await?.cid;
        self.set(name, content).await
    }

    /// Makes the stored object `content` the next version of `name`.
    pub async fn set(&self, name: &str, content: Cid) -> Result<NamedRecord> {
        validate_name(name)?;
        if self.objects.stat(&content).await?.is_none() {
            return Err(Error::ObjectNotFound(content));
        }
        for _ in 0..UPDATE_RETRIES {
            let entry = self.heads.entry(name).await.map_err(|e| Error::nats("reading a name", e))?;
            let live = entry.filter(|e| e.operation == kv::Operation::Put);
            let head = match &live {
                Some(entry) => Some(self.record(name, &parse_cid(name, &entry.value)?).await?),
                None => None,
            };
            let record = NamedVersion {
                format: NAMED_FORMAT.to_owned(),
                name: name.to_owned(),
                version: head.as_ref().map_or(1, |h| h.record.version + 1),
                content,
                prev: head.as_ref().map(|h| h.cid),
                timestamp_us: Timestamp::now(),
            };
            let cid = self.objects.put_ipld(&record).await?;
            let value = cid.to_string().into_bytes().into();
            let moved = match live {
                Some(entry) => self.heads.update(name, value, entry.revision).await.is_err(),
                None => self.heads.create(name, value).await.is_err(),
            };
            if !moved {
                return Ok(NamedRecord { cid, record });
            }
        }
        Err(Error::nats("updating a name", format!("{name:?} kept changing under {UPDATE_RETRIES} attempts")))
    }

    /// Points `name` at an existing version record (for example one restored
    /// from an archive): the record and every earlier one must be stored and
    /// chain back through `prev`, and the name's current head, if any, must
    /// be one of them (a fast-forward). Otherwise the name moved elsewhere
    /// and nothing changes.
    pub async fn adopt(&self, name: &str, record: Cid) -> Result<NamedRecord> {
        validate_name(name)?;
        let adopted = self.record(name, &record).await?;
        if self.objects.stat(&adopted.record.content).await?.is_none() {
            return Err(Error::ObjectNotFound(adopted.record.content));
        }
        let entry = self.heads.entry(name).await.map_err(|e| Error::nats("reading a name", e))?;
        let live = entry.filter(|e| e.operation == kv::Operation::Put);
        let current = match &live {
            Some(entry) => Some(parse_cid(name, &entry.value)?),
            None => None,
        };
        if current == Some(record) {
            return Ok(adopted);
        }
        let ancestors = self.chain_from(name, adopted.clone()).await?;
        if let Some(current) = current
            && !ancestors.iter().any(|r| r.cid == current)
        {
            return Err(Error::NameConflict { name: name.to_owned(), head: current, adopted: record });
        }
        let value = record.to_string().into_bytes().into();
        let moved = match live {
            Some(entry) => self.heads.update(name, value, entry.revision).await.is_err(),
            None => self.heads.create(name, value).await.is_err(),
        };
        if moved {
            let head = self.head(name).await?.map_or(record, |h| h.cid);
            return Err(Error::NameConflict { name: name.to_owned(), head, adopted: record });
        }
        Ok(adopted)
    }

    /// The latest version of `name`, if it exists.
    pub async fn head(&self, name: &str) -> Result<Option<NamedRecord>> {
        validate_name(name)?;
        match self.heads.get(name).await.map_err(|e| Error::nats("reading a name", e))? {
            Some(value) => Ok(Some(self.record(name, &parse_cid(name, &value)?).await?)),
            None => Ok(None),
        }
    }

    /// Every version of `name`, newest first, each record verified and
    /// linked to the next by `prev`.
    pub async fn history(&self, name: &str) -> Result<Vec<NamedRecord>> {
        let head =
            self.head(name).await?.ok_or_else(|| Error::NameNotFound { name: name.to_owned(), version: None })?;
        self.chain_from(name, head).await
    }

    /// `next` and every record before it, newest first, each verified.
    async fn chain_from(&self, name: &str, mut next: NamedRecord) -> Result<Vec<NamedRecord>> {
        let mut versions = Vec::new();
        loop {
            let prev = next.record.prev;
            let expected = next.record.version.checked_sub(1);
            versions.push(next);
            let Some(prev) = prev else { break };
            next = self.record(name, &prev).await?;
            if Some(next.record.version) != expected {
                return Err(Error::CorruptObject {
                    cid: prev,
                    reason: format!("version record of {name:?} is out of sequence"),
                });
            }
        }
        Ok(versions)
    }

    /// A given version of `name`.
    pub async fn version(&self, name: &str, version: u64) -> Result<NamedRecord> {
        self.history(name)
            .await?
            .into_iter()
            .find(|r| r.record.version == version)
            .ok_or_else(|| Error::NameNotFound { name: name.to_owned(), version: Some(version) })
    }

    /// Every name.
    pub async fn names(&self) -> Result<Vec<String>> {
        use futures::TryStreamExt;
        let keys = self.heads.keys().await.map_err(|e| Error::nats("listing names", e))?;
        keys.try_collect().await.map_err(|e| Error::nats("listing names", e))
    }

    async fn record(&self, name: &str, cid: &Cid) -> Result<NamedRecord> {
        let record: NamedVersion = self.objects.get_ipld(cid).await?;
        if record.format != NAMED_FORMAT || record.name != name {
            return Err(Error::CorruptObject { cid: *cid, reason: format!("it is not a version record of {name:?}") });
        }
        Ok(NamedRecord { cid: *cid, record })
    }
}

fn parse_cid(name: &str, value: &[u8]) -> Result<Cid> {
    std::str::from_utf8(value).ok().and_then(|s| s.parse().ok()).ok_or_else(|| Error::CorruptObject {
        cid: cim_cid::raw_cid(value),
        reason: format!("the head of {name:?} is not a CID"),
    })
}
