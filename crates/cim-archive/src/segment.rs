//! Sealed segments of the event stream and their CID-chained manifests,
//! the formats the Storage Manager keeps on its tiers
//! (`docs/spec/storage-tiers.md`):
//!
//! - a **segment** is a CARv1 file holding the events of stream sequences
//!   *a*..=*b* in stream order; its one root is a [`SegmentHeader`] block
//!   listing their CIDs. The segment is named by the raw (0x55) sha2-256
//!   CID of the whole file, so one hash checks every byte of it.
//! - a **segment manifest** ([`SegmentManifest`]) describes one segment and
//!   links the manifest before it, the checkpoint at *b* (every aggregate's
//!   head: `cim_store::Checkpoint`) and the snapshot of the object names
//!   ([`NamesSnapshot`]). Walking the chain from the newest manifest proves
//!   the archive complete and in order ([`check_chain`]).
//!
//! [`SegmentBuilder`] writes a segment in bounded memory (a temporary file);
//! [`read_segment`] verifies one completely and returns its events.

use std::path::Path;

use cim_cid::{Cid, DAG_CBOR, Event, RAW, RawHasher, Timestamp};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt, BufWriter};

use crate::car::{self, CarReader};
use crate::error::{Error, Result};
use crate::manifest::NameHead;

/// Value of a segment header's `format` field.
pub const SEGMENT_FORMAT: &str = "cim-segment-v1";
/// Value of a segment manifest's `format` field.
pub const SEGMENT_MANIFEST_FORMAT: &str = "cim-segment-manifest-v1";
/// Value of a names snapshot's `format` field.
pub const NAMES_FORMAT: &str = "cim-names-v1";

/// The root block of a segment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SegmentHeader {
    /// Always [`SEGMENT_FORMAT`].
    pub format: String,
    /// The store's namespace.
    pub namespace: String,
    /// Stream sequence of the first event.
    pub first_seq: u64,
    /// Stream sequence of the last event.
    pub last_seq: u64,
    /// The events' CIDs in stream order: event *i* is at `first_seq + i`.
    pub events: Vec<Cid>,
}

/// One entry of the manifest chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SegmentManifest {
    /// Always [`SEGMENT_MANIFEST_FORMAT`].
    pub format: String,
    /// The store's namespace.
    pub namespace: String,
    /// Position in the chain: 0 for the first segment.
    pub index: u64,
    /// The previous manifest; null for index 0.
    pub prev: Option<Cid>,
    /// Raw CID of the segment's bytes.
    pub segment: Cid,
    /// CID of the segment's header block (its CAR root).
    pub header: Cid,
    /// First stream sequence in the segment.
    pub first_seq: u64,
    /// Last stream sequence in the segment.
    pub last_seq: u64,
    /// Events in the segment.
    pub events: u64,
    /// Bytes of the segment file.
    pub bytes: u64,
    /// The checkpoint at `last_seq` (a `cim-checkpoint-v1` object).
    pub checkpoint: Cid,
    /// The object names when it was sealed (a [`NamesSnapshot`] object).
    pub names: Option<Cid>,
    /// When it was sealed, microseconds since the Unix epoch.
    pub sealed_us: Timestamp,
}

/// Every object name and its latest version record, at a seal.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NamesSnapshot {
    /// Always [`NAMES_FORMAT`].
    pub format: String,
    /// Sorted by name.
    pub names: Vec<NameHead>,
}

fn decode_checked<T>(what: &'static str, cid: &Cid, bytes: &[u8], format: &str, found: impl Fn(&T) -> &str) -> Result<T>
where
    T: serde::de::DeserializeOwned + Serialize,
{
    let invalid =
        |reason: String| Error::InvalidBlock { cid: *cid, offset: 0, reason: format!("not a {what}: {reason}") };
    if cid.codec() != DAG_CBOR {
        return Err(invalid("its CID is not dag-cbor".to_owned()));
    }
    cim_cid::verify_block(cid, bytes).map_err(|e| invalid(e.to_string()))?;
    let value: T = cim_cid::decode_dag_cbor(what, bytes).map_err(|e| invalid(e.to_string()))?;
    if found(&value) != format {
        return Err(invalid(format!("format {:?}, expected {format:?}", found(&value))));
    }
    Ok(value)
}

impl SegmentHeader {
    /// Decodes the header block `cid`, checking its hash, form and counts.
    pub fn decode(cid: &Cid, bytes: &[u8]) -> Result<Self> {
        let header: Self = decode_checked("segment header", cid, bytes, SEGMENT_FORMAT, |h: &Self| &h.format)?;
        let span = header.last_seq.checked_sub(header.first_seq).map(|d| d + 1);
        if header.first_seq == 0 || span != Some(header.events.len() as u64) {
            return Err(Error::InvalidBlock {
                cid: *cid,
                offset: 0,
                reason: format!(
                    "a segment of sequences {}..={} must list {} events, it lists {}",
                    header.first_seq,
                    header.last_seq,
                    span.unwrap_or(0),
                    header.events.len()
                ),
            });
        }
        Ok(header)
    }
}

impl SegmentManifest {
    /// Canonical DAG-CBOR bytes and CID.
    pub fn encode(&self) -> Result<(Cid, Vec<u8>)> {
        Ok(cim_cid::encode_dag_cbor(self)?)
    }

    /// Decodes the manifest `cid`, checking its hash and form.
    pub fn decode(cid: &Cid, bytes: &[u8]) -> Result<Self> {
        let manifest: Self =
            decode_checked("segment manifest", cid, bytes, SEGMENT_MANIFEST_FORMAT, |m: &Self| &m.format)?;
        if manifest.segment.codec() != RAW || manifest.first_seq == 0 || manifest.last_seq < manifest.first_seq {
            return Err(Error::InvalidBlock {
                cid: *cid,
                offset: 0,
                reason: "its segment link must be raw and its sequences a range from 1 up".to_owned(),
            });
        }
        Ok(manifest)
    }
}

impl NamesSnapshot {
    /// A snapshot of `names` (sorted here).
    pub fn new(mut names: Vec<NameHead>) -> Self {
        names.sort_by(|a, b| a.name.cmp(&b.name));
        Self { format: NAMES_FORMAT.to_owned(), names }
    }

    /// Canonical DAG-CBOR bytes and CID.
    pub fn encode(&self) -> Result<(Cid, Vec<u8>)> {
        Ok(cim_cid::encode_dag_cbor(self)?)
    }

    /// Decodes the snapshot `cid`, checking its hash and form.
    pub fn decode(cid: &Cid, bytes: &[u8]) -> Result<Self> {
        let snapshot: Self = decode_checked("names snapshot", cid, bytes, NAMES_FORMAT, |n: &Self| &n.format)?;
        if snapshot.names.windows(2).any(|pair| pair[0].name >= pair[1].name) {
            return Err(Error::InvalidBlock {
                cid: *cid,
                offset: 0,
                reason: "names not sorted or repeated".to_owned(),
            });
        }
        Ok(snapshot)
    }
}

/// Checks a manifest chain, oldest first: indices 0, 1, …; each links the
/// one before; the sequences run on from 1 without gap or overlap.
///
/// # Errors
/// [`Error::ManifestMismatch`] naming the first break.
pub fn check_chain(chain: &[(Cid, SegmentManifest)]) -> Result<()> {
    let mut expected_prev = None;
    let mut next_seq = 1;
    for (position, (cid, manifest)) in chain.iter().enumerate() {
        let broken = |what: String| {
            Error::ManifestMismatch(format!("segment manifest {cid} (index {}): {what}", manifest.index))
        };
        if manifest.index != position as u64 {
            return Err(broken(format!("is at position {position} of the chain")));
        }
        if manifest.prev != expected_prev {
            return Err(broken(format!(
                "links prev {}, the manifest before it is {}",
                fmt_link(manifest.prev.as_ref()),
                fmt_link(expected_prev.as_ref())
            )));
        }
        if manifest.first_seq != next_seq {
            return Err(broken(format!(
                "starts at sequence {}, the chain reached {}",
                manifest.first_seq,
                next_seq - 1
            )));
        }
        if manifest.last_seq - manifest.first_seq + 1 != manifest.events {
            return Err(broken(format!(
                "claims {} events for {} sequences",
                manifest.events,
                manifest.last_seq - manifest.first_seq + 1
            )));
        }
        expected_prev = Some(*cid);
        next_seq = manifest.last_seq + 1;
    }
    Ok(())
}

fn fmt_link(link: Option<&Cid>) -> String {
    link.map_or_else(|| "null".to_owned(), Cid::to_string)
}

/// Writes a segment: events are pushed in stream order into a body file,
/// then [`SegmentBuilder::finish`] writes the CAR (header, root block,
/// body) while hashing it.
#[derive(Debug)]
pub struct SegmentBuilder {
    namespace: String,
    first_seq: u64,
    next_seq: u64,
    cids: Vec<Cid>,
    body: BufWriter<tokio::fs::File>,
    body_path: tempfile::TempPath,
    body_bytes: u64,
}

/// A segment written to a local file, with what its manifest needs.
#[derive(Debug)]
pub struct BuiltSegment {
    /// The file (removed when dropped).
    pub path: tempfile::TempPath,
    /// Raw CID of the file's bytes: the segment's name.
    pub cid: Cid,
    /// CID of its header block.
    pub header_cid: Cid,
    /// First stream sequence.
    pub first_seq: u64,
    /// Last stream sequence.
    pub last_seq: u64,
    /// Events.
    pub events: u64,
    /// Bytes of the file.
    pub bytes: u64,
}

impl SegmentBuilder {
    /// A segment of `namespace` starting at stream sequence `first_seq`,
    /// built in `dir`.
    pub async fn new(dir: &Path, namespace: &str, first_seq: u64) -> Result<Self> {
        let (file, body_path) = tempfile::Builder::new()
            .prefix(".segment-body-")
            .tempfile_in(dir)
            .map_err(Error::io(format!("cannot create a file in {}", dir.display())))?
            .into_parts();
        Ok(Self {
            namespace: namespace.to_owned(),
            first_seq,
            next_seq: first_seq,
            cids: Vec::new(),
            body: BufWriter::with_capacity(1 << 20, tokio::fs::File::from_std(file)),
            body_path,
            body_bytes: 0,
        })
    }

    /// Adds the event at stream sequence `seq` (the next one), given its CID
    /// and canonical bytes.
    ///
    /// # Errors
    /// A sequence out of order, or the body cannot be written.
    pub async fn push(&mut self, seq: u64, cid: &Cid, bytes: &[u8]) -> Result<()> {
        if seq != self.next_seq {
            return Err(Error::Malformed {
                offset: self.body_bytes,
                reason: format!(
                    "segment events must have consecutive sequences: expected {}, got {seq}",
                    self.next_seq
                ),
            });
        }
        let before = cid.encoded_len() as u64 + bytes.len() as u64;
        car::write_block(&mut self.body, cid, bytes).await.map_err(Error::io("writing a segment"))?;
        self.body_bytes += before + varint_len(before);
        self.cids.push(*cid);
        self.next_seq += 1;
        Ok(())
    }

    /// Events pushed.
    pub fn events(&self) -> u64 {
        self.cids.len() as u64
    }

    /// Bytes of event sections pushed.
    pub fn body_bytes(&self) -> u64 {
        self.body_bytes
    }

    /// Writes the segment file in `dir` and names it.
    ///
    /// # Errors
    /// No events were pushed, or the file cannot be written.
    pub async fn finish(mut self, dir: &Path) -> Result<BuiltSegment> {
        if self.cids.is_empty() {
            return Err(Error::Malformed { offset: 0, reason: "a segment holds at least one event".to_owned() });
        }
        self.body.flush().await.map_err(Error::io("writing a segment"))?;
        let last_seq = self.next_seq - 1;
        let header = SegmentHeader {
            format: SEGMENT_FORMAT.to_owned(),
            namespace: self.namespace,
            first_seq: self.first_seq,
            last_seq,
            events: self.cids,
        };
        let (header_cid, header_bytes) = cim_cid::encode_dag_cbor(&header)?;
        let mut start = Vec::new();
        car::write_header(&mut start, &[header_cid]).await.map_err(Error::io("encoding a segment"))?;
        car::write_block(&mut start, &header_cid, &header_bytes).await.map_err(Error::io("encoding a segment"))?;

        let (file, path) = tempfile::Builder::new()
            .prefix(".segment-")
            .tempfile_in(dir)
            .map_err(Error::io(format!("cannot create a file in {}", dir.display())))?
            .into_parts();
        let mut out = BufWriter::with_capacity(1 << 20, tokio::fs::File::from_std(file));
        let mut hasher = RawHasher::default();
        out.write_all(&start).await.map_err(Error::io("writing a segment"))?;
        hasher.update(&start);
        let mut body = self.body.into_inner();
        body.seek(std::io::SeekFrom::Start(0)).await.map_err(Error::io("reading a segment body"))?;
        let mut buffer = vec![0; 1 << 20];
        loop {
            let read = body.read(&mut buffer).await.map_err(Error::io("reading a segment body"))?;
            if read == 0 {
                break;
            }
            hasher.update(&buffer[..read]);
            out.write_all(&buffer[..read]).await.map_err(Error::io("writing a segment"))?;
        }
        out.flush().await.map_err(Error::io("writing a segment"))?;
        out.into_inner().sync_all().await.map_err(Error::io("writing a segment"))?;
        drop(self.body_path);
        let bytes = hasher.len();
        Ok(BuiltSegment {
            path,
            cid: cim_cid::cid_from_digest(RAW, &hasher.digest()),
            header_cid,
            first_seq: self.first_seq,
            last_seq,
            events: header.events.len() as u64,
            bytes,
        })
    }
}

fn varint_len(mut value: u64) -> u64 {
    let mut len = 1;
    while value >= 0x80 {
        value >>= 7;
        len += 1;
    }
    len
}

/// A segment read and verified: its header and its events with their
/// stream sequences.
#[derive(Debug, Clone)]
pub struct ReadSegment {
    /// CID of the header block.
    pub header_cid: Cid,
    /// The header.
    pub header: SegmentHeader,
    /// The events, in stream order, with their sequences.
    pub events: Vec<(u64, Event)>,
}

/// Verifies a whole segment held in memory: when `expected` is given, the
/// bytes hash to it; the CAR's one root is a [`SegmentHeader`]; the blocks
/// after it are exactly the events it lists, in order, each hashing to its
/// CID and decoding as a valid event envelope.
///
/// # Errors
/// The first thing wrong, by byte offset or CID.
pub async fn read_segment(bytes: &[u8], expected: Option<&Cid>) -> Result<ReadSegment> {
    if let Some(expected) = expected {
        let mut hasher = RawHasher::default();
        hasher.update(bytes);
        let actual = cim_cid::cid_from_digest(expected.codec(), &hasher.digest());
        if actual != *expected {
            return Err(Error::CidMismatch { cid: *expected, actual, offset: 0 });
        }
    }
    let (mut reader, roots) = CarReader::open(bytes, bytes.len() as u64).await?;
    let [root] = roots.as_slice() else {
        return Err(Error::Malformed {
            offset: 0,
            reason: format!("a segment has one root, this one {}", roots.len()),
        });
    };
    let Some(first) = reader.next_block().await? else {
        return Err(Error::Truncated {
            offset: reader.offset(),
            what: "a segment without its header block".to_owned(),
        });
    };
    if first.cid != *root {
        return Err(Error::Malformed {
            offset: first.offset,
            reason: format!("the first block is {}, not the root {root}", first.cid),
        });
    }
    let header_bytes = reader.read(&first).await?;
    let header = SegmentHeader::decode(root, &header_bytes)?;
    let mut events = Vec::with_capacity(header.events.len());
    for (index, cid) in header.events.iter().enumerate() {
        let Some(block) = reader.next_block().await? else {
            return Err(Error::ManifestMismatch(format!(
                "segment {root} lists {} events but holds {index}",
                header.events.len()
            )));
        };
        if block.cid != *cid {
            return Err(Error::InvalidBlock {
                cid: block.cid,
                offset: block.offset,
                reason: format!("event {index} of the segment must be {cid}"),
            });
        }
        let data = reader.read(&block).await?;
        let event = Event::from_block(cid, &data).map_err(|e| Error::InvalidBlock {
            cid: *cid,
            offset: block.offset,
            reason: e.to_string(),
        })?;
        events.push((header.first_seq + index as u64, event));
    }
    if let Some(extra) = reader.next_block().await? {
        return Err(Error::Malformed {
            offset: extra.offset,
            reason: format!("block {} after the segment's last event", extra.cid),
        });
    }
    Ok(ReadSegment { header_cid: *root, header, events })
}
