//! The content-addressed object store: a standard JetStream object store
//! bucket in which every object is named by the CID of its content.
//!
//! Writing streams the input in chunks (bounded memory, several chunk
//! acknowledgements in flight) while hashing it; only when the CID is known
//! is the object's metadata published under that name, so identical content
//! is stored once and a failed put leaves nothing behind. Reading re-hashes
//! every byte and fails if the content does not match its CID. Stock NATS
//! clients read the same bucket with `get("<cid>")`.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use async_nats::header::NATS_ROLLUP;
use async_nats::jetstream::consumer::pull::OrderedConfig;
use async_nats::jetstream::object_store::{ObjectInfo, ObjectOptions};
use async_nats::jetstream::{self, context::PublishErrorKind, message::PublishMessage, stream};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE;
use bytes::{Bytes, BytesMut};
use cim_cid::{
    Cid, DAG_CBOR, RAW, RawHasher, Timestamp, cid_from_digest, decode_dag_cbor, encode_dag_cbor, sha256_digest,
};
use futures::stream::{BoxStream, FuturesOrdered};
use futures::{Stream, StreamExt, TryStreamExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tracing::warn;

use crate::consume::{Cleanup, End, ordered_messages};
use crate::direct::{self, Lookup};
use crate::retry::{self, Failure};
use crate::{Error, Result, StoreConfig, provision};

/// Chunks requested from the server at a time when reading an object, so a
/// read holds at most this many chunks in memory.
const READ_BATCH_CHUNKS: i64 = 16;

/// An upload whose chunks are all acknowledged, with the metadata stored
/// under its CID when the upload ended, if any.
struct Uploaded {
    cid: Cid,
    size: u64,
    chunks: usize,
    existing: Option<(u64, ObjectInfo)>,
}

/// What the store knows about an object without reading it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectMeta {
    /// The object's CID (its name in the bucket).
    pub cid: Cid,
    /// Size in bytes.
    pub size: u64,
    /// Number of chunks it is stored in.
    pub chunks: usize,
    /// When it was stored, if the metadata says.
    pub stored_at: Option<Timestamp>,
}

/// How much the object bucket holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BucketUsage {
    /// Bytes stored, chunks and metadata together.
    pub bytes: u64,
    /// Messages stored (chunks and metadata).
    pub messages: u64,
}

/// A content-addressed object store. Cheap to clone.
#[derive(Debug, Clone)]
pub struct ObjectStore {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    js: jetstream::Context,
    bucket: String,
    stream: stream::Stream,
    chunk_bytes: usize,
    put_window: usize,
    cleanup: Cleanup,
}

impl ObjectStore {
    /// Attaches to the store's bucket, which provisioning created (reads its
    /// stream's configuration only): a component's way to open it.
    ///
    /// # Errors
    /// [`Error::NotProvisioned`] when the bucket does not exist.
    pub async fn open(client: async_nats::Client, config: &StoreConfig) -> Result<Self> {
        config.validate()?;
        let js = jetstream::new(client);
        let stream = provision::attach_objects_bucket(&js, config).await?;
        Ok(Self::with_stream(js, stream, config, Cleanup::Expire))
    }

    /// Creates the store's bucket if missing, then opens it: the admin's
    /// path (provisioning). Reads through the returned store delete their
    /// consumers when they end.
    pub async fn provision(client: async_nats::Client, config: &StoreConfig) -> Result<Self> {
        config.validate()?;
        let js = jetstream::new(client);
        let stream = provision::provision_objects_bucket(&js, config).await?;
        Ok(Self::with_stream(js, stream, config, Cleanup::Delete))
    }

    fn with_stream(js: jetstream::Context, stream: stream::Stream, config: &StoreConfig, cleanup: Cleanup) -> Self {
        Self {
            inner: Arc::new(Inner {
                js,
                bucket: config.names().objects_bucket,
                stream,
                chunk_bytes: config.object_chunk_bytes,
                put_window: config.object_put_window,
                cleanup,
            }),
        }
    }

    /// The JetStream object store bucket's name.
    pub fn bucket(&self) -> &str {
        &self.inner.bucket
    }

    /// Stores raw bytes read from `input` (any size, bounded memory) under
    /// their raw (0x55) sha2-256 CID.
    pub async fn put(&self, input: impl AsyncRead + Unpin) -> Result<ObjectMeta> {
        self.put_with_codec(input, RAW).await
    }

    /// Stores bytes held in memory; returns their raw CID.
    pub async fn put_bytes(&self, bytes: &[u8]) -> Result<Cid> {
        Ok(self.put(bytes).await?.cid)
    }

    /// Stores an IPLD value as canonical DAG-CBOR under its dag-cbor CID.
    pub async fn put_ipld<T: Serialize + ?Sized>(&self, value: &T) -> Result<Cid> {
        let (cid, bytes) = encode_dag_cbor(value)?;
        let meta = self.put_with_codec(bytes.as_slice(), DAG_CBOR).await?;
        debug_assert_eq!(meta.cid, cid);
        Ok(cid)
    }

    async fn put_with_codec(&self, mut input: impl AsyncRead + Unpin, codec: u64) -> Result<ObjectMeta> {
        let nuid = nuid::next().to_string();
        let chunk_subject = self.chunk_subject(&nuid);
        match self.upload_chunks(&mut input, &chunk_subject, codec).await {
            Ok(Uploaded { cid, size, chunks, existing }) => {
                let outcome = self.publish_meta(cid, &nuid, size, chunks, existing).await;
                if !matches!(&outcome, Ok(info) if info.nuid == nuid) {
                    // Already stored (or failed): our chunks are not needed.
                    self.purge_chunks(&chunk_subject).await;
                }
                let info = outcome?;
                check_meta(&cid, &info)?;
                Ok(meta_from_info(cid, &info))
            }
            Err(error) => {
                self.purge_chunks(&chunk_subject).await;
                Err(error)
            }
        }
    }

    /// Streams `input` into chunks with up to `put_window` acknowledgements
    /// outstanding, hashing it. Once the input ends the CID is known, so the
    /// look-up of metadata already stored under it runs while the last
    /// acknowledgements are awaited, rather than after them: for an object of
    /// one chunk that is one round trip less (three become two). The metadata
    /// is still published only after every chunk is acknowledged.
    async fn upload_chunks(&self, input: &mut (impl AsyncRead + Unpin), subject: &str, codec: u64) -> Result<Uploaded> {
        let mut hasher = RawHasher::default();
        let mut in_flight = FuturesOrdered::new();
        let mut chunks = 0;
        loop {
            let chunk = read_chunk(input, self.inner.chunk_bytes).await?;
            if chunk.is_empty() {
                break;
            }
            hasher.update(&chunk);
            chunks += 1;
            let ack = self
                .inner
                .js
                .send_publish(subject.to_owned(), PublishMessage::build().payload(chunk))
                .await
                .map_err(|e| Error::nats("publishing an object chunk", e))?;
            // A user that may not write objects gets no acknowledgement,
            // only a denial on the connection: that ends the put at once.
            in_flight.push_back(retry::unless_denied(subject, ack.into_future()));
            if in_flight.len() >= self.inner.put_window {
                in_flight
                    .next()
                    .await
                    .expect("a chunk ack is pending")
                    .map_err(|e| Error::nats("storing an object chunk", e))?;
            }
        }
        let size = hasher.len();
        let cid = cid_from_digest(codec, &hasher.digest());
        let drain = async {
            while let Some(ack) = in_flight.next().await {
                ack.map_err(|e| Error::nats("storing an object chunk", e))?;
            }
            Ok(())
        };
        let ((), existing) = futures::try_join!(drain, self.meta_message(&cid))?;
        Ok(Uploaded { cid, size, chunks, existing })
    }

    /// Publishes the metadata naming the uploaded chunks `cid`, unless an
    /// object with that CID is already stored; returns the metadata in force.
    /// `existing` is what [`ObjectStore::meta_message`] found for `cid`.
    async fn publish_meta(
        &self,
        cid: Cid,
        nuid: &str,
        size: u64,
        chunks: usize,
        existing: Option<(u64, ObjectInfo)>,
    ) -> Result<ObjectInfo> {
        let expected_seq = match existing {
            Some((_, info)) if !info.deleted => return Ok(info),
            Some((seq, _)) => seq,
            None => 0,
        };
        let info = ObjectInfo {
            name: cid.to_string(),
            description: None,
            metadata: Default::default(),
            headers: None,
            options: Some(ObjectOptions { link: None, max_chunk_size: Some(self.inner.chunk_bytes) }),
            bucket: self.inner.bucket.clone(),
            nuid: nuid.to_owned(),
            size: size as usize,
            chunks,
            modified: Some(time::OffsetDateTime::now_utc()),
            digest: Some(nats_digest(&sha256_digest(&cid)?)),
            deleted: false,
        };
        let payload = serde_json::to_vec(&info).map_err(|e| Error::nats("encoding object metadata", e))?;
        let message = PublishMessage::build()
            .payload(payload.into())
            .header(NATS_ROLLUP, "sub")
            .expected_last_subject_sequence(expected_seq);
        let ack = self
            .inner
            .js
            .send_publish(self.meta_subject(&cid), message)
            .await
            .map_err(|e| Error::nats("publishing object metadata", e))?;
        match retry::unless_denied(&self.meta_subject(&cid), ack.into_future()).await {
            Ok(_) => Ok(info),
            // Another writer stored the same content a moment ago.
            Err(Failure::Failed(e)) if e.kind() == PublishErrorKind::WrongLastSequence => {
                self.meta_message(&cid).await?.map(|(_, info)| info).ok_or(Error::ObjectNotFound(cid))
            }
            Err(e) => Err(Error::nats("publishing object metadata", e)),
        }
    }

    async fn purge_chunks(&self, chunk_subject: &str) {
        if let Err(error) = self.inner.stream.purge().filter(chunk_subject).await {
            warn!(%error, chunk_subject, "could not remove the chunks of an unfinished object put");
        }
    }

    fn chunk_subject(&self, nuid: &str) -> String {
        format!("$O.{}.C.{nuid}", self.inner.bucket)
    }

    fn meta_subject(&self, cid: &Cid) -> String {
        format!("$O.{}.M.{}", self.inner.bucket, URL_SAFE.encode(cid.to_string()))
    }

    /// The latest metadata message for `cid` and its stream sequence.
    async fn meta_message(&self, cid: &Cid) -> Result<Option<(u64, ObjectInfo)>> {
        let subject = self.meta_subject(cid);
        let Some(message) = direct::get(&self.inner.stream, Lookup::LastFor(&subject))
            .await
            .map_err(|e| Error::nats("reading object metadata", e))?
        else {
            return Ok(None);
        };
        let info: ObjectInfo = serde_json::from_slice(&message.payload)
            .map_err(|e| Error::CorruptObject { cid: *cid, reason: format!("its metadata is not valid JSON: {e}") })?;
        Ok(Some((message.sequence, info)))
    }

    /// The object's metadata, checked against its CID; `None` if absent.
    pub async fn stat(&self, cid: &Cid) -> Result<Option<ObjectMeta>> {
        let Some((_, info)) = self.meta_message(cid).await? else { return Ok(None) };
        if info.deleted {
            return Ok(None);
        }
        check_meta(cid, &info)?;
        Ok(Some(meta_from_info(*cid, &info)))
    }

    /// Reads an object as a stream of verified chunks: the last item is an
    /// error if the content does not hash to `cid` (so a caller writing to a
    /// file must not keep it unless the stream ends cleanly).
    pub async fn get(&self, cid: &Cid) -> Result<ObjectReader> {
        let Some((_, info)) = self.meta_message(cid).await? else { return Err(Error::ObjectNotFound(*cid)) };
        if info.deleted {
            return Err(Error::ObjectNotFound(*cid));
        }
        check_meta(cid, &info)?;
        let meta = meta_from_info(*cid, &info);
        let chunks: BoxStream<'static, Result<Bytes>> = if info.chunks == 0 {
            futures::stream::empty().boxed()
        } else {
            let chunk_subject = self.chunk_subject(&info.nuid);
            let Some(last) = direct::get(&self.inner.stream, Lookup::LastFor(&chunk_subject))
                .await
                .map_err(|e| Error::nats("reading an object's last chunk", e))?
            else {
                return Err(Error::CorruptObject {
                    cid: *cid,
                    reason: format!("its metadata lists {} chunks but none are stored", info.chunks),
                });
            };
            if info.chunks == 1 {
                // The chunk just read is the whole content: no consumer needed.
                futures::stream::once(std::future::ready(Ok(last.payload))).boxed()
            } else {
                let config =
                    OrderedConfig { filter_subject: chunk_subject, max_batch: READ_BATCH_CHUNKS, ..Default::default() };
                ordered_messages(&self.inner.stream, config, End::At(last.sequence), self.inner.cleanup)
                    .await?
                    .map(|m| m.map(|m| m.split().0.payload))
                    .boxed()
            }
        };
        Ok(ObjectReader { meta, chunks, hasher: Some(RawHasher::default()) })
    }

    /// Reads a whole object into memory, verified.
    pub async fn get_bytes(&self, cid: &Cid) -> Result<Vec<u8>> {
        let reader = self.get(cid).await?;
        let mut bytes = Vec::with_capacity(reader.meta().size as usize);
        reader
            .try_for_each(|chunk| {
                bytes.extend_from_slice(&chunk);
                futures::future::ready(Ok(()))
            })
            .await?;
        Ok(bytes)
    }

    /// Copies an object into `output`, verified; returns the bytes written.
    /// On a verification error part of the content may have been written.
    pub async fn copy_to(&self, cid: &Cid, output: &mut (impl AsyncWrite + Unpin)) -> Result<u64> {
        let mut reader = self.get(cid).await?;
        let mut written = 0;
        while let Some(chunk) = reader.next().await {
            let chunk = chunk?;
            output.write_all(&chunk).await?;
            written += chunk.len() as u64;
        }
        output.flush().await?;
        Ok(written)
    }

    /// Reads and decodes a DAG-CBOR object.
    pub async fn get_ipld<T: DeserializeOwned + Serialize>(&self, cid: &Cid) -> Result<T> {
        if cid.codec() != DAG_CBOR {
            return Err(Error::Invalid(cim_cid::Error::UnsupportedCid { cid: *cid, reason: "not a dag-cbor CID" }));
        }
        let bytes = self.get_bytes(cid).await?;
        decode_dag_cbor("IPLD object", &bytes).map_err(|e| Error::CorruptObject { cid: *cid, reason: e.to_string() })
    }

    /// Re-reads an object and checks it against its CID.
    pub async fn verify(&self, cid: &Cid) -> Result<ObjectMeta> {
        let reader = self.get(cid).await?;
        let meta = reader.meta().clone();
        reader.try_for_each(|_| futures::future::ready(Ok(()))).await?;
        Ok(meta)
    }

    /// Removes an object from the bucket: its metadata becomes a delete
    /// marker (so readers find it absent, never half there), then its chunks
    /// are purged. Returns whether it was there. Only the Storage Manager
    /// does this (retention and garbage collection, for objects safe on the
    /// lower tiers or unreferenced); other users may not purge the bucket.
    ///
    /// # Errors
    /// The server refuses or fails; a concurrent change of the object's
    /// metadata is retried once.
    pub async fn delete(&self, cid: &Cid) -> Result<bool> {
        for _ in 0..2 {
            let Some((seq, info)) = self.meta_message(cid).await? else { return Ok(false) };
            if info.deleted {
                // A marker from an earlier delete: finish purging its chunks.
                self.purge_chunks_checked(&self.chunk_subject(&info.nuid)).await?;
                return Ok(false);
            }
            let marker = ObjectInfo { deleted: true, size: 0, chunks: 0, digest: None, ..info.clone() };
            let payload = serde_json::to_vec(&marker).map_err(|e| Error::nats("encoding object metadata", e))?;
            let message = PublishMessage::build()
                .payload(payload.into())
                .header(NATS_ROLLUP, "sub")
                .expected_last_subject_sequence(seq);
            let subject = self.meta_subject(cid);
            let ack = self
                .inner
                .js
                .send_publish(subject.clone(), message)
                .await
                .map_err(|e| Error::nats("publishing an object's delete marker", e))?;
            match retry::unless_denied(&subject, ack.into_future()).await {
                Ok(_) => {
                    self.purge_chunks_checked(&self.chunk_subject(&info.nuid)).await?;
                    return Ok(true);
                }
                Err(Failure::Failed(e)) if e.kind() == PublishErrorKind::WrongLastSequence => continue,
                Err(e) => return Err(Error::nats("publishing an object's delete marker", e)),
            }
        }
        Err(Error::nats("deleting an object", std::io::Error::other("its metadata keeps changing")))
    }

    async fn purge_chunks_checked(&self, chunk_subject: &str) -> Result<()> {
        let subject = format!("$JS.API.STREAM.PURGE.OBJ_{}", self.inner.bucket);
        let purge = self.inner.stream.purge().filter(chunk_subject).into_future();
        retry::unless_denied(&subject, purge).await.map_err(|e| Error::nats("purging an object's chunks", e))?;
        Ok(())
    }

    /// Stores raw bytes that must be the object `expected`: the content is
    /// hashed as it is uploaded, and unless it hashes to `expected` its
    /// chunks are purged and nothing is published ([`Error::CorruptObject`]).
    /// `expected`'s codec says how the bytes are addressed (raw or
    /// dag-cbor). For restoring objects read from elsewhere.
    ///
    /// # Errors
    /// The bytes are not `expected`, or the put fails.
    pub async fn put_expecting(&self, mut input: impl AsyncRead + Unpin, expected: &Cid) -> Result<ObjectMeta> {
        let nuid = nuid::next().to_string();
        let chunk_subject = self.chunk_subject(&nuid);
        match self.upload_chunks(&mut input, &chunk_subject, expected.codec()).await {
            Ok(Uploaded { cid, .. }) if cid != *expected => {
                self.purge_chunks(&chunk_subject).await;
                Err(Error::CorruptObject { cid: *expected, reason: format!("the bytes given hash to {cid}") })
            }
            Ok(Uploaded { cid, size, chunks, existing }) => {
                let outcome = self.publish_meta(cid, &nuid, size, chunks, existing).await;
                if !matches!(&outcome, Ok(info) if info.nuid == nuid) {
                    self.purge_chunks(&chunk_subject).await;
                }
                let info = outcome?;
                check_meta(&cid, &info)?;
                Ok(meta_from_info(cid, &info))
            }
            Err(error) => {
                self.purge_chunks(&chunk_subject).await;
                Err(error)
            }
        }
    }

    /// Bytes and messages the bucket's stream holds.
    pub async fn usage(&self) -> Result<BucketUsage> {
        let info =
            self.inner.stream.get_info().await.map_err(|e| Error::nats("reading the object bucket's state", e))?;
        Ok(BucketUsage { bytes: info.state.bytes, messages: info.state.messages })
    }

    /// Every object in the bucket, by CID. Entries whose name is not a CID
    /// (written by other tools) are skipped.
    pub async fn list(&self) -> Result<Vec<ObjectMeta>> {
        let bucket =
            self.inner.js.get_object_store(&self.inner.bucket).await.map_err(|e| Error::nats("listing objects", e))?;
        let infos: Vec<ObjectInfo> = bucket
            .list()
            .await
            .map_err(|e| Error::nats("listing objects", e))?
            .try_collect()
            .await
            .map_err(|e| Error::nats("listing objects", e))?;
        Ok(infos.iter().filter_map(|info| Some(meta_from_info(info.name.parse().ok()?, info))).collect())
    }
}

/// The object store's digest header form: `SHA-256=<base64url>`.
fn nats_digest(digest: &[u8; 32]) -> String {
    format!("SHA-256={}", URL_SAFE.encode(digest))
}

fn check_meta(cid: &Cid, info: &ObjectInfo) -> Result<()> {
    let digest = sha256_digest(cid)?;
    if info.name != cid.to_string() {
        return Err(Error::CorruptObject { cid: *cid, reason: format!("its metadata names {:?}", info.name) });
    }
    if info.digest.as_deref().is_some_and(|d| d != nats_digest(&digest)) {
        return Err(Error::CorruptObject {
            cid: *cid,
            reason: format!("its metadata digest {:?} disagrees with the CID", info.digest),
        });
    }
    Ok(())
}

fn meta_from_info(cid: Cid, info: &ObjectInfo) -> ObjectMeta {
    ObjectMeta {
        cid,
        size: info.size as u64,
        chunks: info.chunks,
        stored_at: info.modified.map(|t| Timestamp::from_unix_micros((t.unix_timestamp_nanos() / 1_000) as i64)),
    }
}

/// Reads up to `size` bytes, fewer only at the end of the input.
async fn read_chunk(input: &mut (impl AsyncRead + Unpin), size: usize) -> Result<Bytes> {
    let mut buffer = BytesMut::with_capacity(size);
    while buffer.len() < size {
        let mut limited = (&mut *input).take((size - buffer.len()) as u64);
        if limited.read_buf(&mut buffer).await? == 0 {
            break;
        }
    }
    Ok(buffer.freeze())
}

/// An object being read: a stream of chunks, re-hashed as they pass. After
/// the last chunk it checks size and CID and yields an error on mismatch.
pub struct ObjectReader {
    meta: ObjectMeta,
    chunks: BoxStream<'static, Result<Bytes>>,
    hasher: Option<RawHasher>,
}

impl std::fmt::Debug for ObjectReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObjectReader").field("meta", &self.meta).finish_non_exhaustive()
    }
}

impl ObjectReader {
    /// The object's metadata.
    pub fn meta(&self) -> &ObjectMeta {
        &self.meta
    }

    /// The object as an `AsyncRead`; a verification failure is an I/O error.
    pub fn into_async_read(self) -> impl AsyncRead + Send + Unpin {
        tokio_util::io::StreamReader::new(self.map_err(std::io::Error::other))
    }

    fn finish(&mut self, hasher: RawHasher) -> Result<()> {
        let cid = self.meta.cid;
        let corrupt = |reason| Err(Error::CorruptObject { cid, reason });
        if hasher.len() != self.meta.size {
            return corrupt(format!("{} bytes are stored, its metadata says {}", hasher.len(), self.meta.size));
        }
        let actual = cid_from_digest(cid.codec(), &hasher.digest());
        if actual != cid {
            return corrupt(format!("the stored bytes hash to {actual}"));
        }
        Ok(())
    }
}

impl Stream for ObjectReader {
    type Item = Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.hasher.is_none() {
            return Poll::Ready(None);
        }
        match self.chunks.poll_next_unpin(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Some(Ok(chunk))) => {
                self.hasher.as_mut().expect("hasher present while reading").update(&chunk);
                Poll::Ready(Some(Ok(chunk)))
            }
            Poll::Ready(Some(Err(error))) => {
                self.hasher = None;
                Poll::Ready(Some(Err(error)))
            }
            Poll::Ready(None) => {
                let hasher = self.hasher.take().expect("hasher present while reading");
                match self.finish(hasher) {
                    Ok(()) => Poll::Ready(None),
                    Err(error) => Poll::Ready(Some(Err(error))),
                }
            }
        }
    }
}
