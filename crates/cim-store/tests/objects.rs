//! The content-addressed object store: dedup, verified reads, stock-client
//! compatibility, bounded memory for large objects.

use cim_cid::{RawHasher, raw_cid};
use cim_store::Error;
use futures::TryStreamExt;
use tokio::io::AsyncReadExt;

use crate::common::objects;

#[tokio::test]
async fn objects_are_named_by_their_cid_and_stored_once() {
    let (server, objects) = objects().await;
    let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let meta = objects.put(data.as_slice()).await.unwrap();
    assert_eq!(meta.cid, raw_cid(&data));
    assert_eq!(meta.size, data.len() as u64);
    assert_eq!(meta.chunks, 3); // 128 KiB chunks
    assert_eq!(objects.get_bytes(&meta.cid).await.unwrap(), data);

    let again = objects.put(data.as_slice()).await.unwrap();
    assert_eq!(again, meta, "identical content is stored once");
    let js = async_nats::jetstream::new(server.connect().await);
    let mut stream = js.get_stream(format!("OBJ_{}", objects.bucket())).await.unwrap();
    assert_eq!(stream.info().await.unwrap().state.messages, 3 + 1, "three chunks and one metadata message");

    // A stock NATS object store client reads it by CID.
    let bucket = js.get_object_store(objects.bucket()).await.unwrap();
    let mut stock = Vec::new();
    bucket.get(meta.cid.to_string()).await.unwrap().read_to_end(&mut stock).await.unwrap();
    assert_eq!(stock, data);

    let usage = objects.usage().await.unwrap();
    assert_eq!(usage.messages, 4);
    assert!(usage.bytes > data.len() as u64, "{usage:?}");

    let listed = objects.list().await.unwrap();
    assert_eq!(listed.iter().map(|m| m.cid).collect::<Vec<_>>(), [meta.cid]);
    let empty = objects.put(&b""[..]).await.unwrap();
    assert_eq!(empty.cid, raw_cid(b""));
    assert_eq!(objects.get_bytes(&empty.cid).await.unwrap(), b"");
}

#[tokio::test]
async fn ipld_objects_round_trip_under_dag_cbor_cids() {
    let (_server, objects) = objects().await;
    let value = crate::common::json(serde_json::json!({"name": "report", "pages": 3}));
    let cid = objects.put_ipld(&value).await.unwrap();
    assert_eq!(cid.codec(), cim_cid::DAG_CBOR);
    assert_eq!(cid, cim_cid::encode_dag_cbor(&value).unwrap().0);
    assert_eq!(objects.get_ipld::<cim_cid::Ipld>(&cid).await.unwrap(), value);
    let missing = raw_cid(b"never stored");
    assert!(matches!(objects.get(&missing).await, Err(Error::ObjectNotFound(c)) if c == missing));
    assert!(objects.stat(&missing).await.unwrap().is_none());
}

/// Pseudo-random bytes generated on the fly: a large input without a file.
struct Generated {
    remaining: u64,
    state: u64,
}

impl tokio::io::AsyncRead for Generated {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let n = (buf.remaining() as u64).min(self.remaining).min(64 * 1024) as usize;
        let mut chunk = Vec::with_capacity(n + 8);
        while chunk.len() < n {
            self.state = self.state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            chunk.extend_from_slice(&self.state.to_le_bytes());
        }
        self.remaining -= n as u64;
        buf.put_slice(&chunk[..n]);
        std::task::Poll::Ready(Ok(()))
    }
}

fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

const CHILD_ENV: &str = "CIM_TEST_BIG_OBJECT_URL";
const GIB: u64 = 1 << 30;

/// Run in a child process by `a_1_gib_object_round_trips_in_bounded_memory`,
/// so the peak RSS measured is this work's alone.
#[tokio::test]
async fn child_big_object() {
    let Ok(url) = std::env::var(CHILD_ENV) else { return };
    let client = async_nats::connect(url).await.unwrap();
    let objects = cim_store::ObjectStore::provision(client, &Default::default()).await.unwrap();
    let mut expected = RawHasher::default();
    let mut source = Generated { remaining: GIB, state: 7 };
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = source.read(&mut buf).await.unwrap();
        if n == 0 {
            break;
        }
        expected.update(&buf[..n]);
    }
    let meta = objects.put(Generated { remaining: GIB, state: 7 }).await.unwrap();
    assert_eq!(meta.cid, expected.finish());
    assert_eq!(meta.size, GIB);
    let mut read_back = RawHasher::default();
    objects
        .get(&meta.cid)
        .await
        .unwrap()
        .try_for_each(|chunk| {
            read_back.update(&chunk);
            futures::future::ready(Ok(()))
        })
        .await
        .unwrap();
    assert_eq!(read_back.finish(), meta.cid);
    println!("PEAK_RSS_KIB {}", peak_rss_kib());
}

#[tokio::test]
async fn a_1_gib_object_round_trips_in_bounded_memory() {
    let server = cim_test_support::NatsServer::start().await;
    let output = tokio::process::Command::new(std::env::current_exe().unwrap())
        .args(["objects::child_big_object", "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, server.url())
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "child failed: {stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    let peak: u64 = stdout
        .lines()
        .find_map(|l| l.find("PEAK_RSS_KIB ").map(|at| l[at + 13..].trim().to_owned()))
        .expect("child reports its peak RSS")
        .parse()
        .unwrap();
    println!("peak RSS for a 1 GiB put + get: {} MiB", peak / 1024);
    assert!(peak < 100 * 1024, "peak RSS {peak} KiB exceeds 100 MiB");
}
