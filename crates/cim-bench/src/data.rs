//! Deterministic test data: a small PRNG, events of a chosen encoded size,
//! and an endless byte source for objects.

use std::pin::Pin;
use std::task::{Context, Poll};

use anyhow::{Context as _, Result};
use bytes::Bytes;
use cim_cid::{AggregateKey, Cid, Event, EventEnvelope, Ipld, NewEvent, Timestamp};
use tokio::io::{AsyncRead, ReadBuf};

/// SplitMix64: tiny, fast, reproducible; plenty for test data and sampling.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A uniform float in [0, 1).
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// A uniform integer in `0..n`.
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_f64() * n as f64) as usize
    }

    /// Fills `buf` with random bytes.
    pub fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let bits = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&bits[..chunk.len()]);
        }
    }
}

/// A fixed event time, so that the same inputs always encode to the same bytes.
pub const EPOCH: Timestamp = Timestamp::from_unix_micros(1_790_000_000_000_000);

/// The benchmark's aggregates: type `bench`, ids `a<n>`.
pub fn aggregate(n: usize) -> AggregateKey {
    AggregateKey::new("bench", format!("a{n}")).expect("a valid aggregate key")
}

/// Builds events whose encoding is `target` bytes for a typical event (a
/// version with a `prev` link, no parents): the payload is a byte string
/// sized to make up the difference.
#[derive(Debug, Clone)]
pub struct EventMaker {
    payload_len: usize,
}

impl EventMaker {
    /// A maker for events of about `target` encoded bytes.
    pub fn new(target: usize) -> Result<Self> {
        let key = aggregate(100);
        let prev = Some(cim_cid::dag_cbor_cid(b"prev"));
        let size = |len: usize| -> Result<usize> {
            let envelope = EventEnvelope::chained(
                &key,
                100,
                prev,
                NewEvent::new("Bench", Ipld::Bytes(vec![0; len])).with_timestamp(EPOCH),
            )?;
            Ok(envelope.encode()?.1.len())
        };
        let base = size(0)?;
        let mut payload_len = target.saturating_sub(base);
        // The byte string's length prefix grows with it: step down until it fits.
        while payload_len > 0 && size(payload_len)? > target {
            payload_len -= 1;
        }
        Ok(Self { payload_len })
    }

    /// The event `version` of aggregate `n` as the caller of `append` gives it;
    /// its payload is random but a function of `(n, version)`.
    pub fn new_event(&self, n: usize, version: u64) -> NewEvent {
        let mut payload = vec![0; self.payload_len];
        Rng::new((n as u64) << 32 ^ version).fill(&mut payload);
        let micros = EPOCH.unix_micros() + version as i64;
        NewEvent::new("Bench", Ipld::Bytes(payload)).with_timestamp(Timestamp::from_unix_micros(micros))
    }

    /// The event exactly as the store encodes it when `new_event(n, version)`
    /// is appended after `prev`, with `parents` added.
    pub fn encode(&self, n: usize, version: u64, prev: Option<Cid>, parents: Vec<Cid>) -> Result<(Cid, Bytes)> {
        let new_event = self.new_event(n, version).with_parents(parents);
        let envelope =
            EventEnvelope::chained(&aggregate(n), version, prev, new_event).context("building a benchmark event")?;
        let (event, bytes) = Event::encode(envelope)?;
        Ok((event.cid, Bytes::from(bytes)))
    }
}

/// A source of `len` pseudo-random bytes, read in pieces as large as the
/// reader asks for; byte `i` depends only on the seed and `i`, so the same
/// seed gives the same bytes however the reads are split.
#[derive(Debug)]
pub struct ByteSource {
    seed: u64,
    pos: u64,
    len: u64,
}

impl ByteSource {
    /// `len` bytes from `seed`.
    pub fn new(seed: u64, len: u64) -> Self {
        Self { seed, pos: 0, len }
    }

    fn word(&self, index: u64) -> [u8; 8] {
        Rng::new(self.seed ^ index.wrapping_mul(0xd1b5_4a32_d192_ed03)).next_u64().to_le_bytes()
    }
}

impl AsyncRead for ByteSource {
    fn poll_read(mut self: Pin<&mut Self>, _: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let n = (buf.remaining() as u64).min(self.len - self.pos) as usize;
        let out = &mut buf.initialize_unfilled_to(n)[..n];
        let mut filled = 0;
        while filled < n {
            let pos = self.pos + filled as u64;
            let offset = (pos % 8) as usize;
            let take = (8 - offset).min(n - filled);
            out[filled..filled + take].copy_from_slice(&self.word(pos / 8)[offset..offset + take]);
            filled += take;
        }
        buf.advance(n);
        self.pos += n as u64;
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::AsyncReadExt;

    use super::*;

    #[test]
    fn events_have_the_target_size() {
        let maker = EventMaker::new(256).expect("a maker");
        let (_, bytes) = maker.encode(7, 5, Some(cim_cid::dag_cbor_cid(b"x")), Vec::new()).expect("an event");
        assert!((250..=256).contains(&bytes.len()), "{}", bytes.len());
    }

    #[tokio::test]
    async fn byte_source_is_deterministic_and_exact() {
        let mut a = Vec::new();
        ByteSource::new(1, 100_003).read_to_end(&mut a).await.expect("read");
        let mut b = vec![0; 100_003];
        let mut source = ByteSource::new(1, 100_003);
        let mut at = 0;
        while at < b.len() {
            let end = (at + 4093).min(b.len());
            at += source.read(&mut b[at..end]).await.expect("read");
        }
        assert_eq!(a.len(), 100_003);
        assert_eq!(a, b);
    }
}
