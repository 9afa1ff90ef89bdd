//! CARv1, the IPLD content archive: a varint-prefixed DAG-CBOR header
//! `{roots, version: 1}`, then sections `varint(len) | CID bytes | block`.
//!
//! Written here rather than taken from `iroh-car`, because that crate holds
//! every block in memory on both sides and refuses to read blocks over
//! 4 MiB, while an object exported as one raw block may be any size: this
//! writer streams a block's bytes from the object store and this reader
//! hashes a block while reading it, both in bounded memory. The reader
//! reports where a file is cut short or malformed, by byte offset. CARs
//! written here are cross-checked against `@ipld/car` in the tests.

use std::io::{self, Read};

use cim_cid::Cid;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncWrite, AsyncWriteExt};

/// Largest header or CID-and-block section read into memory whole: events
/// and manifests are far smaller; a larger raw block is streamed instead.
pub const MAX_IN_MEMORY: u64 = 64 * 1024 * 1024;

/// A CAR problem, with the byte offset where it was found.
#[derive(Debug, thiserror::Error)]
pub enum CarError {
    /// The file ends in the middle of something.
    #[error("the CAR is cut short at byte {offset}: {what}")]
    Truncated {
        /// Where the file ends.
        offset: u64,
        /// What was being read.
        what: String,
    },
    /// The bytes are not a CAR.
    #[error("malformed CAR at byte {offset}: {reason}")]
    Malformed {
        /// Where.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// Reading the file failed.
    #[error("reading the CAR: {0}")]
    Io(#[from] io::Error),
}

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

/// Reads a CARv1 from the start, section by section.
#[derive(Debug)]
pub struct CarReader<R> {
    input: R,
    offset: u64,
    file_len: u64,
}

impl<R: Read> CarReader<R> {
    /// Reads the header of a file of `file_len` bytes; returns the reader and
    /// the roots.
    pub fn open(input: R, file_len: u64) -> Result<(Self, Vec<Cid>), CarError> {
        let mut reader = Self { input, offset: 0, file_len };
        let Some(len) = reader.varint("the header's length")? else {
            return Err(CarError::Truncated { offset: 0, what: "the file is empty".to_owned() });
        };
        let bytes = reader.data(len, "the header")?;
        let header: Header = serde_ipld_dagcbor::from_slice(&bytes).map_err(|e| CarError::Malformed {
            offset: 0,
            reason: format!("the header is not {{roots, version}} DAG-CBOR: {e}"),
        })?;
        if header.version != 1 {
            let reason = format!("this is a CARv{} file; only CARv1 is read", header.version);
            return Err(CarError::Malformed { offset: 0, reason });
        }
        Ok((reader, header.roots))
    }

    /// The next block's CID and extent, or `None` at the end of the file.
    /// The caller must consume the data with [`CarReader::read`] or
    /// [`CarReader::hash`] before asking for the next block.
    pub fn next_block(&mut self) -> Result<Option<BlockStart>, CarError> {
        let section = self.offset;
        let Some(len) = self.varint("a section's length")? else { return Ok(None) };
        if len > self.file_len.saturating_sub(self.offset) {
            return Err(CarError::Truncated {
                offset: self.file_len,
                what: format!(
                    "the section at byte {section} claims {len} bytes, but only {} remain",
                    self.file_len - self.offset
                ),
            });
        }
        let mut limited = (&mut self.input).take(len);
        let cid = Cid::read_bytes(&mut limited).map_err(|e| CarError::Malformed {
            offset: section,
            reason: format!("the section does not start with a CID: {e}"),
        })?;
        let cid_len = cid.encoded_len() as u64;
        self.offset += cid_len;
        Ok(Some(BlockStart { cid, offset: self.offset, len: len - cid_len }))
    }

    /// Reads a block's data into memory (at most [`MAX_IN_MEMORY`] bytes).
    pub fn read(&mut self, block: &BlockStart) -> Result<Vec<u8>, CarError> {
        self.data(block.len, &format!("block {}", block.cid))
    }

    /// Reads a block's data in bounded memory, returning its sha2-256 digest.
    pub fn hash(&mut self, block: &BlockStart) -> Result<[u8; cim_cid::DIGEST_LEN], CarError> {
        let mut hasher = cim_cid::RawHasher::default();
        let mut buffer = vec![0; 256 * 1024];
        let mut left = block.len;
        while left > 0 {
            let want = buffer.len().min(left as usize);
            self.exact(&mut buffer[..want], &format!("block {}", block.cid))?;
            hasher.update(&buffer[..want]);
            left -= want as u64;
        }
        Ok(hasher.digest())
    }

    fn data(&mut self, len: u64, what: &str) -> Result<Vec<u8>, CarError> {
        if len > MAX_IN_MEMORY {
            return Err(CarError::Malformed {
                offset: self.offset,
                reason: format!("{what} claims {len} bytes, too many to hold"),
            });
        }
        let mut bytes = vec![0; len as usize];
        self.exact(&mut bytes, what)?;
        Ok(bytes)
    }

    fn exact(&mut self, buffer: &mut [u8], what: &str) -> Result<(), CarError> {
        match self.input.read_exact(buffer) {
            Ok(()) => {
                self.offset += buffer.len() as u64;
                Ok(())
            }
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                Err(CarError::Truncated { offset: self.file_len, what: format!("in the middle of {what}") })
            }
            Err(e) => Err(e.into()),
        }
    }

    /// An unsigned LEB128 varint; `None` at a clean end of file.
    fn varint(&mut self, what: &str) -> Result<Option<u64>, CarError> {
        let start = self.offset;
        let mut value: u64 = 0;
        for index in 0..10 {
            let mut byte = [0u8];
            if self.input.read(&mut byte)? == 0 {
                if index == 0 {
                    return Ok(None);
                }
                return Err(CarError::Truncated { offset: self.offset, what: format!("in the middle of {what}") });
            }
            self.offset += 1;
            value |= u64::from(byte[0] & 0x7f) << (7 * index);
            if byte[0] & 0x80 == 0 {
                return Ok(Some(value));
            }
        }
        Err(CarError::Malformed { offset: start, reason: format!("{what} is not a valid varint") })
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
        let (mut reader, roots) = CarReader::open(car.as_slice(), car.len() as u64).expect("open");
        assert_eq!(roots, [event]);
        let first = reader.next_block().expect("read").expect("a block");
        assert_eq!((first.cid, reader.read(&first).expect("data")), (event, b"\xa0".to_vec()));
        let second = reader.next_block().expect("read").expect("a block");
        assert_eq!(cim_cid::cid_from_digest(cim_cid::RAW, &reader.hash(&second).expect("hash")), blob);
        assert!(reader.next_block().expect("clean end").is_none());

        let cut = &car[..car.len() - 2];
        let (mut reader, _) = CarReader::open(cut, cut.len() as u64).expect("open");
        let first = reader.next_block().expect("read").expect("a block");
        reader.read(&first).expect("data");
        let error = reader.next_block().expect_err("cut short");
        assert!(matches!(error, CarError::Truncated { .. }), "{error}");
        assert!(error.to_string().contains("claims"), "{error}");
    }

    #[test]
    fn garbage_is_not_a_car() {
        let error = CarReader::open(&b"\x05hello"[..], 6).expect_err("not CBOR");
        assert!(matches!(error, CarError::Malformed { .. }), "{error}");
        assert!(matches!(CarReader::open(&b""[..], 0).expect_err("empty"), CarError::Truncated { .. }));
    }
}
