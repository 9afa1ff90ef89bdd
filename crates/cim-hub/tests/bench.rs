//! HTTP load with `oha` against the hub, beside the same operations on the
//! store used directly (in this process, same server, same concurrency,
//! same run): throughput and p99, as ratios. Runs only with
//! `CIM_HUB_BENCH=1` (`CIM_HUB_BENCH_SECS`, default 10; `CIM_HUB_BENCH_CONCURRENCY`,
//! default 32); `docs/benchmarks.md` reports a run.

use std::sync::Arc;
use std::time::{Duration, Instant};

use cim_hub_api::Scope;
use cim_store::{AggregateKey, AggregateQuery, EventStore, ExpectedVersion, Ipld, NewEvent, StoreConfig};
use serde_json::Value;

use crate::support::Stack;

fn oha() -> std::path::PathBuf {
    let local = cim_test_support::tools_dir().join("oha/bin/oha");
    if local.exists() { local } else { "oha".into() }
}

/// Throughput (requests/s) and p99 (ms) of an oha run.
async fn run_oha(args: &[String]) -> (f64, f64, Value) {
    let output = tokio::process::Command::new(oha())
        .args(["--no-tui", "--output-format", "json"])
        .args(args)
        .output()
        .await
        .expect("run oha");
    assert!(output.status.success(), "oha failed: {}", String::from_utf8_lossy(&output.stderr));
    let report: Value = serde_json::from_slice(&output.stdout).expect("oha's JSON");
    let rps = report["summary"]["requestsPerSec"].as_f64().unwrap_or_default();
    let p99 = report["latencyPercentiles"]["p99"].as_f64().unwrap_or_default() * 1000.0;
    (rps, p99, report["statusCodeDistribution"].clone())
}

/// Runs `op` from `concurrency` tasks for `secs`; throughput and p99 (ms).
async fn run_direct<F, Fut>(concurrency: usize, secs: u64, op: F) -> (f64, f64)
where
    F: Fn(u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send,
{
    let op = Arc::new(op);
    let end = Instant::now() + Duration::from_secs(secs);
    let started = Instant::now();
    let tasks: Vec<_> = (0..concurrency)
        .map(|task| {
            let op = op.clone();
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut i = 0u64;
                while Instant::now() < end {
                    let at = Instant::now();
                    op(task as u64 * 1_000_000_000 + i).await;
                    latencies.push(at.elapsed());
                    i += 1;
                }
                latencies
            })
        })
        .collect();
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.unwrap());
    }
    let elapsed = started.elapsed().as_secs_f64();
    all.sort();
    let p99 = all.get(all.len() * 99 / 100).copied().unwrap_or_default().as_secs_f64() * 1000.0;
    (all.len() as f64 / elapsed, p99)
}

#[tokio::test]
async fn http_load_through_the_hub_against_the_store() {
    if std::env::var_os("CIM_HUB_BENCH").is_none() {
        eprintln!("skipped: set CIM_HUB_BENCH=1 (and have oha) to run the load benchmark");
        return;
    }
    let secs: u64 = std::env::var("CIM_HUB_BENCH_SECS").ok().and_then(|v| v.parse().ok()).unwrap_or(10);
    let concurrency: usize = std::env::var("CIM_HUB_BENCH_CONCURRENCY").ok().and_then(|v| v.parse().ok()).unwrap_or(32);
    let stack = Stack::start_with(false, "rate_per_sec = 1000000\nburst = 1000000\n").await;
    let request = cim_hub_api::CreateToken {
        name: "bench".into(),
        scope: Scope::Write,
        rate_per_sec: Some(1_000_000),
        burst: Some(1_000_000),
    };
    let token = stack.client().create_token(&request).await.unwrap().token;
    let store = EventStore::open(stack.nats.clone(), StoreConfig::default()).await.unwrap();
    let duration = format!("{secs}s");
    let common = |extra: &[&str]| -> Vec<String> {
        let mut args: Vec<String> = vec![
            "-z".into(),
            duration.clone(),
            "-c".into(),
            concurrency.to_string(),
            "-H".into(),
            format!("Authorization: Bearer {token}"),
        ];
        args.extend(extra.iter().map(|s| (*s).to_owned()));
        args
    };

    // Appends: one event to a fresh aggregate each time.
    let url = format!("{}/v1/aggregates/bench/h[a-z0-9]{{16}}/events", stack.api);
    let body = r#"{"events":[{"event_type":"Benchmarked","payload":{"n":1}}]}"#;
    let (hub_append, hub_append_p99, statuses) =
        run_oha(&common(&["-m", "POST", "-H", "content-type: application/json", "-d", body, "--rand-regex-url", &url]))
            .await;
    eprintln!("hub appends statuses: {statuses}");
    let direct = store.clone();
    let (store_append, store_append_p99) = run_direct(concurrency, secs, move |i| {
        let store = direct.clone();
        async move {
            let key = AggregateKey::new("bench", format!("d{i}")).unwrap();
            let mut payload = std::collections::BTreeMap::new();
            payload.insert("n".to_owned(), Ipld::Integer(1));
            store
                .append(&key, ExpectedVersion::Any, vec![NewEvent::new("Benchmarked", Ipld::Map(payload))])
                .await
                .unwrap();
        }
    })
    .await;

    // Reads: one aggregate of 10 events.
    let key = AggregateKey::new("bench", "read").unwrap();
    store
        .append(&key, ExpectedVersion::Exact(0), (0..10).map(|i| NewEvent::new("Read", Ipld::Integer(i))).collect())
        .await
        .unwrap();
    let (hub_read, hub_read_p99, statuses) =
        run_oha(&common(&[&format!("{}/v1/aggregates/bench/read/events", stack.api)])).await;
    eprintln!("hub reads statuses: {statuses}");
    let direct = store.clone();
    let (store_read, store_read_p99) = run_direct(concurrency, secs, move |_| {
        let store = direct.clone();
        let key = key.clone();
        async move {
            let events = store.read_aggregate(&key, AggregateQuery::all()).await.unwrap();
            assert_eq!(events.len(), 10);
        }
    })
    .await;

    let report = serde_json::json!({
        "seconds": secs, "concurrency": concurrency,
        "append": {"hub_per_sec": hub_append, "store_per_sec": store_append, "ratio": hub_append / store_append,
                   "hub_p99_ms": hub_append_p99, "store_p99_ms": store_append_p99},
        "read": {"hub_per_sec": hub_read, "store_per_sec": store_read, "ratio": hub_read / store_read,
                 "hub_p99_ms": hub_read_p99, "store_p99_ms": store_read_p99},
    });
    eprintln!("hub load: {}", serde_json::to_string_pretty(&report).unwrap());
}
