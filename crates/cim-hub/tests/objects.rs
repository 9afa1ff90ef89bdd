//! Objects over HTTP: streamed put and get, ETag = CID, immutable caching,
//! Range, limits; a large object through the hub in bounded memory.

use cim_hub_api::Scope;
use futures::StreamExt;

use crate::support::{Stack, json};

fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

#[tokio::test]
async fn objects_are_streamed_cached_by_cid_and_ranged() {
    let stack = Stack::start().await;
    let writer = stack.token(Scope::Write).await;
    let data = pattern(3 * 1024 * 1024 + 17, 7);
    let cid = cim_cid::raw_cid(&data).to_string();
    let put = stack.http.put(stack.url("/v1/objects")).bearer_auth(&writer).body(data.clone()).send().await.unwrap();
    assert_eq!(put.headers()["location"], format!("/v1/objects/{cid}").as_str());
    let stored = json(put, 201).await;
    assert_eq!((stored["cid"].as_str(), stored["size"].as_u64()), (Some(cid.as_str()), Some(data.len() as u64)));

    let url = stack.url(&format!("/v1/objects/{cid}"));
    let got = stack.http.get(&url).bearer_auth(&writer).send().await.unwrap();
    assert_eq!(got.status(), 200);
    assert_eq!(got.headers()["etag"], format!("\"{cid}\"").as_str());
    assert_eq!(got.headers()["cache-control"], "public, max-age=31536000, immutable");
    assert_eq!(got.headers()["content-length"], data.len().to_string().as_str());
    assert_eq!(got.bytes().await.unwrap().as_ref(), data.as_slice());

    let cached =
        stack.http.get(&url).bearer_auth(&writer).header("if-none-match", format!("\"{cid}\"")).send().await.unwrap();
    assert_eq!(cached.status(), 304);

    let range = stack.http.get(&url).bearer_auth(&writer).header("range", "bytes=131000-131199").send().await.unwrap();
    assert_eq!(range.status(), 206);
    assert_eq!(range.headers()["content-range"], format!("bytes 131000-131199/{}", data.len()).as_str());
    assert_eq!(range.bytes().await.unwrap().as_ref(), &data[131_000..131_200]);
    let tail = stack.http.get(&url).bearer_auth(&writer).header("range", "bytes=-10").send().await.unwrap();
    assert_eq!(tail.bytes().await.unwrap().as_ref(), &data[data.len() - 10..]);
    let outside = stack.http.get(&url).bearer_auth(&writer).header("range", "bytes=99999999-").send().await.unwrap();
    assert_eq!(outside.headers()["content-range"], format!("bytes */{}", data.len()).as_str());
    json(outside, 416).await;

    let head = stack.http.head(&url).bearer_auth(&writer).send().await.unwrap();
    assert_eq!(
        (head.status().as_u16(), head.headers()["content-length"].to_str().unwrap()),
        (200, data.len().to_string().as_str())
    );

    // Identical content is stored once, under the same CID.
    let again = json(
        stack.http.put(stack.url("/v1/objects")).bearer_auth(&writer).body(data.clone()).send().await.unwrap(),
        201,
    )
    .await;
    assert_eq!(again["cid"].as_str(), Some(cid.as_str()));

    let reader = stack.token(Scope::Read).await;
    let refused =
        stack.http.put(stack.url("/v1/objects")).bearer_auth(&reader).body(vec![1u8; 10]).send().await.unwrap();
    assert_eq!(json(refused, 403).await["code"], "insufficient_scope");
    let unknown = stack
        .http
        .get(stack.url("/v1/objects/bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e"))
        .bearer_auth(&reader)
        .send()
        .await
        .unwrap();
    assert_eq!(json(unknown, 404).await["code"], "unknown_object");
}

#[tokio::test]
async fn objects_over_the_limit_get_413_and_leave_nothing() {
    let stack = Stack::start_with(false, "max_object_bytes = 1000000\n").await;
    let writer = stack.token(Scope::Write).await;
    let declared =
        stack.http.put(stack.url("/v1/objects")).bearer_auth(&writer).body(vec![0u8; 1_000_001]).send().await.unwrap();
    assert_eq!(json(declared, 413).await["code"], "payload_too_large");
    // Streamed without a length: cut off when it passes the limit.
    let chunks = futures::stream::iter((0..20).map(|_| Ok::<_, std::io::Error>(vec![1u8; 100_000])));
    let streamed = stack
        .http
        .put(stack.url("/v1/objects"))
        .bearer_auth(&writer)
        .body(reqwest::Body::wrap_stream(chunks))
        .send()
        .await
        .unwrap();
    assert_eq!(json(streamed, 413).await["code"], "payload_too_large");
    let store = cim_store::ObjectStore::open(stack.nats.clone(), &cim_store::StoreConfig::default()).await.unwrap();
    assert!(store.list().await.unwrap().is_empty(), "a refused put leaves no object");
}

/// Peak resident memory of a process, from `/proc/<pid>/status`.
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        .unwrap()
}

/// A large object through the hub, both ways, streamed: the hub's peak RSS
/// stays bounded. `CIM_HUB_BIG_OBJECT_MIB` sets the size (default 128;
/// docs/benchmarks.md reports 1024).
#[tokio::test]
async fn a_large_object_passes_through_in_bounded_memory() {
    let mib: usize = std::env::var("CIM_HUB_BIG_OBJECT_MIB").ok().and_then(|v| v.parse().ok()).unwrap_or(128);
    let stack = Stack::start().await;
    let writer = stack.token(Scope::Write).await;
    let pid = stack.hub.id().expect("the hub runs");
    let before = peak_rss_kib(pid);
    const CHUNK: usize = 1 << 20;
    let block = pattern(CHUNK, 11);
    let mut hasher = cim_cid::RawHasher::default();
    for i in 0..mib {
        let mut chunk = block.clone();
        chunk[..8].copy_from_slice(&(i as u64).to_le_bytes());
        hasher.update(&chunk);
    }
    let expected = cim_cid::cid_from_digest(cim_cid::RAW, &hasher.digest()).to_string();
    let upload = futures::stream::iter((0..mib).map(move |i| {
        let mut chunk = block.clone();
        chunk[..8].copy_from_slice(&(i as u64).to_le_bytes());
        Ok::<_, std::io::Error>(chunk)
    }));
    let started = std::time::Instant::now();
    let stored = json(
        stack
            .http
            .put(stack.url("/v1/objects"))
            .bearer_auth(&writer)
            .body(reqwest::Body::wrap_stream(upload))
            .send()
            .await
            .unwrap(),
        201,
    )
    .await;
    let put_secs = started.elapsed().as_secs_f64();
    assert_eq!(stored["cid"].as_str(), Some(expected.as_str()));
    let started = std::time::Instant::now();
    let response =
        stack.http.get(stack.url(&format!("/v1/objects/{expected}"))).bearer_auth(&writer).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let mut body = response.bytes_stream();
    let mut hasher = cim_cid::RawHasher::default();
    while let Some(chunk) = body.next().await {
        hasher.update(&chunk.unwrap());
    }
    let get_secs = started.elapsed().as_secs_f64();
    assert_eq!(cim_cid::cid_from_digest(cim_cid::RAW, &hasher.digest()).to_string(), expected);
    let peak = peak_rss_kib(pid);
    eprintln!(
        "big object: {mib} MiB; put {put_secs:.1} s ({:.0} MiB/s), get {get_secs:.1} s ({:.0} MiB/s); hub peak RSS {} MiB (before: {} MiB)",
        mib as f64 / put_secs,
        mib as f64 / get_secs,
        peak / 1024,
        before / 1024
    );
    assert!(peak < 100 * 1024, "the hub's peak RSS is {} MiB", peak / 1024);
}
