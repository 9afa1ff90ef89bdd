//! Writes a synthetic export archive of many small events, to measure
//! imports (`docs/benchmarks.md`):
//!
//! ```text
//! cargo run --release -p cim-archive --example synthetic_car -- FILE EVENTS AGGREGATES
//! ```
//!
//! Events go round-robin over the aggregates `bench/a<i>`, so the file
//! interleaves the chains the way a store's log does; every tenth event
//! names the latest event of another aggregate as its parent. Timestamps are
//! fixed, so the same arguments always write the same file. The manifest
//! comes first, as `cim export` writes it: a first pass computes the heads,
//! a second writes the blocks.

use std::path::PathBuf;

use cim_archive::car::{write_block, write_header};
use cim_archive::manifest::{EXPORT_FORMAT, Head, Manifest, Selection};
use cim_cid::{AggregateKey, Cid, EventEnvelope, Ipld, NewEvent, Timestamp};
use tokio::io::{AsyncWriteExt, BufWriter};

/// Calls `each` with every event's CID and bytes, in file order.
fn generate(events: u64, aggregates: u64, mut each: impl FnMut(Cid, Vec<u8>)) -> Vec<(u64, Cid)> {
    let keys: Vec<AggregateKey> =
        (0..aggregates).map(|a| AggregateKey::new("bench", format!("a{a}")).expect("valid key")).collect();
    let mut heads: Vec<(u64, Option<Cid>)> = vec![(0, None); aggregates as usize];
    for n in 0..events {
        let a = (n % aggregates) as usize;
        let other = ((n + aggregates - 1) % aggregates) as usize;
        let parents = if n % 10 == 0 && other != a { heads[other].1 } else { None };
        let payload = Ipld::Map([("n".to_owned(), Ipld::Integer(i128::from(n)))].into_iter().collect());
        let event = NewEvent::new("Counted", payload)
            .with_parents(parents)
            .with_timestamp(Timestamp::from_unix_micros(1_700_000_000_000_000 + n as i64));
        let (version, prev) = heads[a];
        let envelope = EventEnvelope::chained(&keys[a], version + 1, prev, event).expect("valid event");
        let (cid, bytes) = envelope.encode().expect("encodes");
        heads[a] = (version + 1, Some(cid));
        each(cid, bytes);
    }
    heads.into_iter().map(|(version, cid)| (version, cid.expect("every aggregate has events"))).collect()
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: synthetic_car FILE EVENTS AGGREGATES";
    let path = PathBuf::from(args.next().expect(usage));
    let events: u64 = args.next().and_then(|n| n.parse().ok()).expect(usage);
    let aggregates: u64 = args.next().and_then(|n| n.parse().ok()).expect(usage);
    assert!(aggregates > 0 && events >= aggregates, "{usage}: at least one event per aggregate");

    let heads = generate(events, aggregates, |_, _| {});
    let mut heads: Vec<Head> = heads
        .into_iter()
        .enumerate()
        .map(|(a, (version, head))| Head { aggregate: format!("bench/a{a}"), version, head })
        .collect();
    heads.sort_by(|a, b| a.aggregate.cmp(&b.aggregate));
    let manifest = Manifest {
        format: EXPORT_FORMAT.to_owned(),
        created_us: Timestamp::from_unix_micros(1_700_000_000_000_000),
        namespace: "bench".to_owned(),
        selection: Selection::default(),
        events,
        heads,
        objects: Vec::new(),
        names: Vec::new(),
    };
    let (root, bytes) = manifest.encode().expect("encodes");

    let mut out = BufWriter::new(tokio::fs::File::create(&path).await?);
    write_header(&mut out, &[root]).await?;
    write_block(&mut out, &root, &bytes).await?;
    let mut blocks = Vec::new();
    generate(events, aggregates, |cid, bytes| blocks.push((cid, bytes)));
    for (cid, bytes) in blocks {
        write_block(&mut out, &cid, &bytes).await?;
    }
    out.flush().await?;
    println!("{}: {events} events in {aggregates} aggregates, root {root}", path.display());
    Ok(())
}
