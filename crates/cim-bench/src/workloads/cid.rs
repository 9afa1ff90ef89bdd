//! Workload 7: CID computation (sha2-256 plus the CID around it) at 256 B
//! (an event) and 64 KiB (an object chunk), against the machine's sha-256
//! limit as `openssl speed -evp sha256` measures it for the same block size.

use std::hint::black_box;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::Result;
use cim_cid::{Event, EventEnvelope, RawHasher, dag_cbor_cid, raw_cid};
use serde_json::json;

use crate::Bench;
use crate::data::{EventMaker, Rng, aggregate};
use crate::report::{Check, Row, WorkloadReport};

const TARGET_RATIO: f64 = 0.8;
const SIZES: [usize; 2] = [256, 64 * 1024];

pub async fn run(bench: &Bench) -> Result<WorkloadReport> {
    let seconds = bench.params.cid_seconds;
    let mut report = WorkloadReport::new(
        7,
        "cid",
        format!("CIDs of 256 B and 64 KiB blocks, {seconds} s each, one thread"),
        json!({ "sizes": SIZES, "seconds": seconds }),
    );
    let budget = Duration::from_secs_f64(seconds);
    for size in SIZES {
        let mut block = vec![0u8; size];
        Rng::new(7).fill(&mut block);
        let dag = time_loop(budget, size, || {
            black_box(dag_cbor_cid(black_box(&block)));
        });
        let raw = time_loop(budget, size, || {
            black_box(raw_cid(black_box(&block)));
        });
        let streamed = time_loop(budget, size, || {
            let mut hasher = RawHasher::default();
            hasher.update(black_box(&block));
            black_box(hasher.finish());
        });
        let openssl = openssl_sha256(size, seconds);
        let rows = [
            dag.label(format!("{size} B: dag-cbor CID (dag_cbor_cid)")),
            raw.label(format!("{size} B: raw CID (raw_cid)")),
            streamed.label(format!("{size} B: raw CID, streaming (RawHasher)")),
        ];
        match openssl {
            Ok(bytes_per_sec) => {
                report.rows.push(Row::new(
                    format!("{size} B: openssl speed -evp sha256"),
                    (bytes_per_sec / size as f64) as u64,
                    bytes_per_sec as u64,
                    Duration::from_secs(1),
                    None,
                ));
                for row in &rows {
                    report.checks.push(Check::at_least(
                        format!("{}: MB/s / openssl", row.label),
                        row.mib_per_sec * 1_048_576.0 / bytes_per_sec,
                        TARGET_RATIO,
                    ));
                }
            }
            Err(e) => report.notes.push(format!("openssl speed unavailable ({e:#}): no sha-256 limit to compare with")),
        }
        report.rows.extend(rows);
    }
    // Not a target: what an event costs beyond its hash (dag-cbor encoding, checks).
    let maker = EventMaker::new(256)?;
    let key = aggregate(1);
    let prev = Some(dag_cbor_cid(b"prev"));
    let template = maker.new_event(1, 2);
    let encode = time_loop(budget, 0, || {
        let envelope = EventEnvelope::chained(&key, 2, prev, template.clone()).expect("a valid event");
        black_box(Event::encode(envelope).expect("encodes"));
    });
    let bytes = maker.encode(1, 2, prev, Vec::new())?.1;
    let decode = time_loop(budget, bytes.len(), || {
        black_box(Event::from_block(&dag_cbor_cid(&bytes), black_box(&bytes)).expect("decodes"));
    });
    report.rows.push(encode.label("256 B event: build + encode + CID (no target)".to_owned()));
    report.rows.push(decode.label("256 B event: verify CID + decode + canonical check (no target)".to_owned()));
    Ok(report)
}

struct Timed {
    ops: u64,
    bytes: u64,
    elapsed: Duration,
}

impl Timed {
    fn label(&self, label: String) -> Row {
        Row::new(label, self.ops, self.bytes, self.elapsed, None)
    }
}

/// Runs `f` repeatedly for about `budget`, checking the clock every 64 calls.
fn time_loop(budget: Duration, bytes_per_op: usize, mut f: impl FnMut()) -> Timed {
    let started = Instant::now();
    let mut ops = 0u64;
    while started.elapsed() < budget || ops == 0 {
        for _ in 0..64 {
            f();
        }
        ops += 64;
    }
    Timed { ops, bytes: ops * bytes_per_op as u64, elapsed: started.elapsed() }
}

/// Bytes per second of `openssl speed -evp sha256` at `size`-byte blocks.
fn openssl_sha256(size: usize, seconds: f64) -> Result<f64> {
    let secs = seconds.ceil().max(1.0) as u64;
    let output = Command::new("openssl")
        .args(["speed", "-evp", "sha256", "-bytes", &size.to_string(), "-seconds", &secs.to_string()])
        .output()?;
    anyhow::ensure!(output.status.success(), "openssl speed failed: {}", String::from_utf8_lossy(&output.stderr));
    parse_openssl(&String::from_utf8_lossy(&output.stdout))
}

/// Reads the last `sha256 …k` figure (1000s of bytes per second) of `openssl speed`.
fn parse_openssl(text: &str) -> Result<f64> {
    let line = text
        .lines()
        .rev()
        .find(|l| l.trim_start().to_ascii_lowercase().starts_with("sha256"))
        .ok_or_else(|| anyhow::anyhow!("no sha256 line in {text:?}"))?;
    let figure = line.split_whitespace().last().unwrap_or_default();
    let thousands: f64 =
        figure.trim_end_matches('k').parse().map_err(|e| anyhow::anyhow!("cannot read {figure:?}: {e}"))?;
    Ok(thousands * 1000.0)
}

#[cfg(test)]
mod tests {
    use super::parse_openssl;

    #[test]
    fn parses_openssl_speed_output() {
        let text = "version: 3.0.19\nbuilt on: x\nCPUINFO: OPENSSL_ia32cap=0x\nThe 'numbers' are in 1000s of bytes per second processed.\ntype           256 bytes\nsha256          1234567.89k\n";
        assert_eq!(parse_openssl(text).expect("parses"), 1_234_567_890.0);
        assert!(parse_openssl("nothing").is_err());
    }
}
