//! The fuzz harness over deterministic pseudo-random mutations of the golden
//! vectors' bytes: a stable-toolchain stand-in for `cargo fuzz` that runs in
//! every test run.

use super::fuzz_harness::decode_event;
use super::golden::{Kind, build};

/// xorshift64*: deterministic, so a failure reproduces from its round number.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// CBOR bytes that change meaning: heads with 1/8-byte arguments, indefinite
/// and break markers, tag 42, null, floats, a large length.
const INTERESTING: &[u8] = &[
    0x00, 0x01, 0x17, 0x18, 0x19, 0x1b, 0x20, 0x40, 0x5f, 0x60, 0x7f, 0x80, 0x9f, 0xa0, 0xbf, 0xd8, 0x2a, 0xf5, 0xf6,
    0xf7, 0xf9, 0xfa, 0xfb, 0xff,
];

fn mutate(rng: &mut Rng, seed: &[u8], other: &[u8]) -> Vec<u8> {
    let mut data = seed.to_vec();
    for _ in 0..=rng.below(3) {
        let at = rng.below(data.len());
        match rng.below(7) {
            0 if !data.is_empty() => data[at] ^= 1 << rng.below(8),
            1 if !data.is_empty() => data[at] = INTERESTING[rng.below(INTERESTING.len())],
            2 if !data.is_empty() => data[at] = rng.next() as u8,
            3 => data.insert(at, INTERESTING[rng.below(INTERESTING.len())]),
            4 if !data.is_empty() => {
                data.remove(at);
            }
            5 => data.truncate(at),
            _ => {
                // Splice: a slice of another seed over this one.
                let from = rng.below(other.len());
                let len = rng.below(other.len() - from + 1).min(32);
                data.splice(at..(at + len).min(data.len()), other[from..from + len].iter().copied());
            }
        }
    }
    data
}

#[test]
fn decoders_survive_mutated_golden_vectors() {
    let seeds: Vec<Vec<u8>> = build().into_iter().filter(|b| b.kind != Kind::Raw).map(|b| b.bytes).collect();
    let mut rng = Rng(0x00c1_5eed_cafe_f00d);
    for seed in &seeds {
        decode_event(seed);
    }
    for round in 0..20_000 {
        let seed = &seeds[round % seeds.len()];
        let other = &seeds[rng.below(seeds.len())];
        let data = mutate(&mut rng, seed, other);
        if std::panic::catch_unwind(|| decode_event(&data)).is_err() {
            panic!("round {round}: input {}", super::golden::to_hex(&data));
        }
    }
}
