//! CARv1, the IPLD content archive: a varint-prefixed DAG-CBOR header
//! `{roots, version: 1}`, then sections `varint(len) | CID bytes | block`.
//!
//! Written here rather than taken from `iroh-car`, because that crate holds
//! every block in memory on both sides and refuses to read blocks over
//! 4 MiB, while an object exported as one raw block may be any size: the
//! writer streams a block's bytes from the object store and the reader
//! hashes a block while reading it, both in bounded memory. The reader
//! reports where a file is cut short or malformed, by byte offset. CARs
//! written here are cross-checked against `@ipld/car` in the CLI's tests.

use std::io;

use cim_cid::Cid;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::error::{Error, Result};

/// Largest header or block read into memory whole: events and manifests
/// are far smaller; a larger raw block is streamed instead.
pub const MAX_IN_MEMORY: u64 = 64 * 1024 * 1024;

/// Size of the buffer a block is hashed through.
const HASH_BUFFER: usize = 256 * 1024;

#[derive(Debug, Serialize, Deserialize)]
struct Header {
    // Absent in a CARv2 pragma (`{version: 2}`), which is then refused by version.
    #[serde(default)]
    roots: Vec<Cid>,
    version: u64,
}

/// Writes the header naming `roots`.
pub async fn write_header(out: &mut (impl AsyncWrite + Unpin), roots: &[Cid]) -> io::Result<()> {
    let (_, bytes) =
        cim_cid::encode_dag_cbor(&Header { roots: roots.to_vec(), version: 1 }).map_err(io::Error::other)?;
    write_varint(out, bytes.len() as u64).await?;
    out.write_all(&bytes).await
}

/// Writes one block held in memory.
pub async fn write_block(out: &mut (impl AsyncWrite + Unpin), cid: &Cid, data: &[u8]) -> io::Result<()> {
    write_block_start(out, cid, data.len() as u64).await?;
    out.write_all(data).await
}

/// Starts a block of `len` bytes; the caller writes exactly those bytes next.
pub async fn write_block_start(out: &mut (impl AsyncWrite + Unpin), cid: &Cid, len: u64) -> io::Result<()> {
    let cid_bytes = cid.to_bytes();
    write_varint(out, cid_bytes.len() as u64 + len).await?;
    out.write_all(&cid_bytes).await
}

async fn write_varint(out: &mut (impl AsyncWrite + Unpin), mut value: u64) -> io::Result<()> {
    let mut bytes = Vec::with_capacity(10);
    loop {
        let byte = (value & 0x7f) as u8;
        value >>= 7;
        if value == 0 {
            bytes.push(byte);
            break;
        }
        bytes.push(byte | 0x80);
    }
    out.write_all(&bytes).await
}

/// A block's place in the file; its bytes follow unread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockStart {
    /// The block's CID as the archive states it.
    pub cid: Cid,
    /// Byte offset of the block's data.
    pub offset: u64,
    /// Length of the data.
    pub len: u64,
}

/// Reads a CARv1 from the start, section by section, from any
/// [`AsyncRead`] (buffer a file: the reader asks for single bytes).
#[derive(Debug)]
pub struct CarReader<R> {
    input: R,
    offset: u64,
    file_len: u64,
}

impl<R: AsyncRead + Unpin> CarReader<R> {
    /// Reads the header of a file of `file_len` bytes; returns the reader and
    /// the roots.
    pub async fn open(input: R, file_len: u64) -> Result<(Self, Vec<Cid>)> {
        let mut reader = Self { input, offset: 0, file_len };
        let Some(len) = reader.varint("the header's length").await? else {
            return Err(Error::Truncated { offset: 0, what: "the file is empty".to_owned() });
        };
        let bytes = reader.data(len, "the header").await?;
        let header: Header = serde_ipld_dagcbor::from_slice(&bytes).map_err(|e| Error::Malformed {
            offset: 0,
            reason: format!("the header is not {{roots, version}} DAG-CBOR: {e}"),
        })?;
        if header.version != 1 {
            let reason = format!("this is a CARv{} file; only CARv1 is read", header.version);
            return Err(Error::Malformed { offset: 0, reason });
        }
        Ok((reader, header.roots))
    }

    /// Byte offset of the next unread byte.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The next block's CID and extent, or `None` at the end of the file.
    /// The caller must consume the data with [`CarReader::read`] or
    /// [`CarReader::hash`] before asking for the next block.
    pub async fn next_block(&mut self) -> Result<Option<BlockStart>> {
        let section = self.offset;
        let Some(len) = self.varint("a section's length").await? else { return Ok(None) };
        if len > self.file_len.saturating_sub(self.offset) {
            return Err(Error::Truncated {
                offset: self.file_len,
                what: format!(
                    "the section at byte {section} claims {len} bytes, but only {} remain",
                    self.file_len.saturating_sub(self.offset)
                ),
            });
        }
        let cid = self.cid(section, len).await?;
        let cid_len = cid.encoded_len() as u64;
        Ok(Some(BlockStart { cid, offset: self.offset, len: len - cid_len }))
    }

    /// Reads a block's data into memory (at most [`MAX_IN_MEMORY`] bytes).
    pub async fn read(&mut self, block: &BlockStart) -> Result<Vec<u8>> {
        self.data(block.len, &format!("block {}", block.cid)).await
    }

    /// Reads a block's data in bounded memory, returning its sha2-256 digest.
    pub async fn hash(&mut self, block: &BlockStart) -> Result<[u8; cim_cid::DIGEST_LEN]> {
        let mut hasher = cim_cid::RawHasher::default();
        let mut buffer = vec![0; HASH_BUFFER.min(block.len as usize)];
        let mut left = block.len;
        while left > 0 {
            let want = buffer.len().min(left as usize);
            self.exact(&mut buffer[..want], &format!("block {}", block.cid)).await?;
            hasher.update(&buffer[..want]);
            left -= want as u64;
        }
        Ok(hasher.digest())
    }

    /// The CID opening the section at `section` of `len` bytes: read piece
    /// by piece (version, codec, multihash code and size, digest), so that
    /// not a byte of the block's data is consumed.
    async fn cid(&mut self, section: u64, len: u64) -> Result<Cid> {
        let malformed = |reason: String| Error::Malformed {
            offset: section,
            reason: format!("the section does not start with a CID: {reason}"),
        };
        let mut bytes = Vec::with_capacity(40);
        let first = self.cid_varint(&mut bytes, len).await?.ok_or_else(|| malformed("it is empty".to_owned()))?;
        let ends_early = || malformed("it ends early".to_owned());
        let digest_len = if first == 0x12 {
            // CIDv0: a bare sha2-256 multihash.
            self.cid_varint(&mut bytes, len).await?.ok_or_else(ends_early)?
        } else {
            // Codec, multihash code, digest size.
            self.cid_varint(&mut bytes, len).await?.ok_or_else(ends_early)?;
            self.cid_varint(&mut bytes, len).await?.ok_or_else(ends_early)?;
            self.cid_varint(&mut bytes, len).await?.ok_or_else(ends_early)?
        };
        if digest_len > 64 || bytes.len() as u64 + digest_len > len {
            return Err(malformed(format!("its digest of {digest_len} bytes does not fit")));
        }
        let start = bytes.len();
        bytes.resize(start + digest_len as usize, 0);
        self.exact(&mut bytes[start..], "a section's CID").await?;
        Cid::read_bytes(bytes.as_slice()).map_err(|e| malformed(e.to_string()))
    }

    /// One varint of a CID, its bytes appended to `bytes`; `None` if the
    /// section (of `len` bytes) ends first.
    async fn cid_varint(&mut self, bytes: &mut Vec<u8>, len: u64) -> Result<Option<u64>> {
        let mut value: u64 = 0;
        for index in 0..9 {
            if bytes.len() as u64 >= len {
                return Ok(None);
            }
            let mut byte = [0u8];
            self.exact(&mut byte, "a section's CID").await?;
            bytes.push(byte[0]);
            value |= u64::from(byte[0] & 0x7f) << (7 * index);
            if byte[0] & 0x80 == 0 {
                return Ok(Some(value));
            }
        }
        Ok(None)
    }

    async fn data(&mut self, len: u64, what: &str) -> Result<Vec<u8>> {
        if len > MAX_IN_MEMORY {
            return Err(Error::Malformed {
                offset: self.offset,
                reason: format!("{what} claims {len} bytes, too many to hold"),
            });
        }
        let mut bytes = vec![0; len as usize];
        self.exact(&mut bytes, what).await?;
        Ok(bytes)
    }

    async fn exact(&mut self, buffer: &mut [u8], what: &str) -> Result<()> {
        match self.input.read_exact(buffer).await {
            Ok(_) => {
                self.offset += buffer.len() as u64;
                Ok(())
            }
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                Err(Error::Truncated { offset: self.file_len, what: format!("in the middle of {what}") })
            }
            Err(e) => Err(Error::io("reading the CAR")(e)),
        }
    }

    /// An unsigned LEB128 varint; `None` at a clean end of file.
    async fn varint(&mut self, what: &str) -> Result<Option<u64>> {
        let start = self.offset;
        let mut value: u64 = 0;
        for index in 0..10 {
            let mut byte = [0u8];
            if self.input.read(&mut byte).await.map_err(Error::io("reading the CAR"))? == 0 {
                if index == 0 {
                    return Ok(None);
                }
                return Err(Error::Truncated { offset: self.offset, what: format!("in the middle of {what}") });
            }
            self.offset += 1;
            value |= u64::from(byte[0] & 0x7f) << (7 * index);
            if byte[0] & 0x80 == 0 {
                return Ok(Some(value));
            }
        }
        Err(Error::Malformed { offset: start, reason: format!("{what} is not a valid varint") })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn sample() -> (Vec<u8>, Cid, Cid) {
        let event = cim_cid::dag_cbor_cid(b"\xa0");
        let blob = cim_cid::raw_cid(b"hello");
        let mut car = Vec::new();
        write_header(&mut car, &[event]).await.expect("header");
        write_block(&mut car, &event, b"\xa0").await.expect("block");
        write_block(&mut car, &blob, b"hello").await.expect("block");
        (car, event, blob)
    }

    #[tokio::test]
    async fn round_trips_blocks_and_reports_truncation_by_offset() {
        let (car, event, blob) = sample().await;
        let (mut reader, roots) = CarReader::open(car.as_slice(), car.len() as u64).await.expect("open");
        assert_eq!(roots, [event]);
        let first = reader.next_block().await.expect("read").expect("a block");
        assert_eq!((first.cid, reader.read(&first).await.expect("data")), (event, b"\xa0".to_vec()));
        let second = reader.next_block().await.expect("read").expect("a block");
        assert_eq!(second.offset + second.len, car.len() as u64);
        assert_eq!(cim_cid::cid_from_digest(cim_cid::RAW, &reader.hash(&second).await.expect("hash")), blob);
        assert!(reader.next_block().await.expect("clean end").is_none());

        let cut = &car[..car.len() - 2];
        let (mut reader, _) = CarReader::open(cut, cut.len() as u64).await.expect("open");
        let first = reader.next_block().await.expect("read").expect("a block");
        reader.read(&first).await.expect("data");
        let error = reader.next_block().await.expect_err("cut short");
        assert!(matches!(error, Error::Truncated { offset, .. } if offset == cut.len() as u64), "{error}");
        assert!(error.to_string().contains("claims"), "{error}");
    }

    #[tokio::test]
    async fn garbage_is_not_a_car() {
        let error = CarReader::open(&b"\x05hello"[..], 6).await.expect_err("not CBOR");
        assert!(matches!(error, Error::Malformed { offset: 0, .. }), "{error}");
        assert!(matches!(CarReader::open(&b""[..], 0).await.expect_err("empty"), Error::Truncated { .. }));
    }

    #[tokio::test]
    async fn a_section_without_a_cid_is_malformed_at_its_offset() {
        let (mut car, _, _) = sample().await;
        let (reader, _) = CarReader::open(car.as_slice(), car.len() as u64).await.expect("open");
        let section = reader.offset() as usize;
        // CIDv1 claiming a digest longer than the section.
        car.truncate(section);
        car.extend_from_slice(&[5, 0x01, 0x71, 0x12, 0x20, 0x00]);
        let (mut reader, _) = CarReader::open(car.as_slice(), car.len() as u64).await.expect("open");
        let error = reader.next_block().await.expect_err("no CID");
        assert!(matches!(error, Error::Malformed { offset, .. } if offset == section as u64), "{error}");
    }
}
