//! Content addresses: CIDv1 with a sha2-256 multihash, for dag-cbor blocks
//! (events, IPLD objects) and raw bytes (blobs).

use cid::Cid;
use multihash_codetable::{Code, MultihashDigest};
use sha2::{Digest, Sha256};

use crate::{Error, Result};

/// Multicodec code of DAG-CBOR, the codec of events and structured objects.
pub const DAG_CBOR: u64 = 0x71;
/// Multicodec code of raw bytes, the codec of blobs.
pub const RAW: u64 = 0x55;
/// Multihash code of sha2-256, the only hash CIM writes.
pub const SHA2_256: u64 = 0x12;
/// Length of a sha2-256 digest in bytes.
pub const DIGEST_LEN: usize = 32;

/// The CID of a dag-cbor block: CIDv1, codec dag-cbor, sha2-256.
pub fn dag_cbor_cid(block: &[u8]) -> Cid {
    Cid::new_v1(DAG_CBOR, Code::Sha2_256.digest(block))
}

/// The CID of raw bytes held in memory: CIDv1, codec raw, sha2-256.
pub fn raw_cid(bytes: &[u8]) -> Cid {
    Cid::new_v1(RAW, Code::Sha2_256.digest(bytes))
}

/// Builds a CIDv1 from a codec and a sha2-256 digest.
pub fn cid_from_digest(codec: u64, digest: &[u8; DIGEST_LEN]) -> Cid {
    let multihash =
        multihash::Multihash::<64>::wrap(SHA2_256, digest).expect("a 32-byte digest always fits a 64-byte multihash");
    Cid::new_v1(codec, multihash)
}

/// The sha2-256 digest inside a CID written by CIM, or an error naming why the
/// CID is not one CIM can check (CIDv0, another codec or another hash).
pub fn sha256_digest(cid: &Cid) -> Result<[u8; DIGEST_LEN]> {
    if cid.version() != cid::Version::V1 {
        return Err(Error::UnsupportedCid { cid: *cid, reason: "not a CIDv1" });
    }
    if cid.codec() != DAG_CBOR && cid.codec() != RAW {
        return Err(Error::UnsupportedCid { cid: *cid, reason: "codec is neither dag-cbor (0x71) nor raw (0x55)" });
    }
    let hash = cid.hash();
    if hash.code() != SHA2_256 {
        return Err(Error::UnsupportedCid { cid: *cid, reason: "multihash is not sha2-256 (0x12)" });
    }
    hash.digest().try_into().map_err(|_| Error::UnsupportedCid { cid: *cid, reason: "sha2-256 digest is not 32 bytes" })
}

/// Checks that `block` hashes to `cid` under the CID's own codec.
///
/// Fails with [`Error::CidMismatch`] naming both CIDs when the bytes were
/// altered, and with [`Error::UnsupportedCid`] for CIDs CIM does not write.
pub fn verify_block(cid: &Cid, block: &[u8]) -> Result<()> {
    let expected = sha256_digest(cid)?;
    let actual: [u8; DIGEST_LEN] = Sha256::digest(block).into();
    if expected == actual {
        Ok(())
    } else {
        Err(Error::CidMismatch { expected: *cid, actual: cid_from_digest(cid.codec(), &actual) })
    }
}

/// Computes the CID of a byte stream incrementally, in constant memory.
///
/// ```
/// let mut hasher = cim_cid::RawHasher::default();
/// hasher.update(b"hello ");
/// hasher.update(b"world");
/// assert_eq!(hasher.finish(), cim_cid::raw_cid(b"hello world"));
/// ```
#[derive(Debug, Clone, Default)]
pub struct RawHasher {
    sha: Sha256,
    len: u64,
}

impl RawHasher {
    /// Feeds the next bytes of the stream.
    pub fn update(&mut self, bytes: &[u8]) {
        self.sha.update(bytes);
        self.len += bytes.len() as u64;
    }

    /// Number of bytes hashed so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// True when nothing has been hashed yet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The sha2-256 digest of everything fed so far.
    pub fn digest(self) -> [u8; DIGEST_LEN] {
        self.sha.finalize().into()
    }

    /// The raw-codec CID of everything fed so far.
    pub fn finish(self) -> Cid {
        cid_from_digest(RAW, &self.digest())
    }
}
