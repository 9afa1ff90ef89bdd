//! Power loss: `kill -9` of a durable nats-server during an append storm.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use cim_cid::Cid;
use cim_store::{AggregateQuery, CommitMode, EventStore, ExpectedVersion, StoreConfig};
use cim_test_support::NatsServer;
use serde_json::json;

use crate::common::{event, key};

async fn storm(config: StoreConfig) {
    let mut server = NatsServer::start().await; // sync_interval: always
    let store = EventStore::provision(server.connect().await, config.clone()).await.unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let acks = Arc::new(AtomicUsize::new(0));
    let mut writers = Vec::new();
    for writer in 0..16 {
        let (store, stop, acks) = (store.clone(), stop.clone(), acks.clone());
        writers.push(tokio::spawn(async move {
            let aggregate = key("sensor", &format!("s{}", writer % 8));
            let mut acknowledged = Vec::new();
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let events =
                    (0..1 + n % 3).map(|i| event("Reading", json!({"writer": writer, "n": n, "i": i}))).collect();
                // Errors while the server is down are expected; only
                // acknowledged appends count.
                if let Ok(appended) = store.append(&aggregate, ExpectedVersion::Any, events).await {
                    acknowledged.extend(appended.events.iter().map(|e| e.cid));
                    acks.fetch_add(appended.events.len(), Ordering::Relaxed);
                }
            }
            acknowledged
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    server.kill();
    let before_kill = acks.load(Ordering::Relaxed);
    tokio::time::sleep(Duration::from_millis(500)).await;
    server.restart().await;
    let after_restart = acks.load(Ordering::Relaxed);
    let restarted = std::time::Instant::now();
    while acks.load(Ordering::Relaxed) < after_restart + 50 && restarted.elapsed() < Duration::from_secs(60) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!("resumed after {:?}", restarted.elapsed());
    stop.store(true, Ordering::Relaxed);
    assert!(before_kill > 0, "appends were acknowledged before the kill");
    assert!(acks.load(Ordering::Relaxed) > after_restart, "appends resumed after the restart");
    let mut acknowledged = Vec::new();
    for writer in writers {
        acknowledged.extend(writer.await.unwrap());
    }
    assert!(acknowledged.len() > 100, "the storm appended too little to prove anything: {}", acknowledged.len());

    let reader = EventStore::provision(server.connect().await, config).await.unwrap();
    let mut stored: HashMap<Cid, usize> = HashMap::new();
    for s in 0..8 {
        for e in reader.read_aggregate(&key("sensor", &format!("s{s}")), AggregateQuery::all()).await.unwrap() {
            *stored.entry(e.event.cid).or_default() += 1;
        }
    }
    for cid in &acknowledged {
        assert_eq!(stored.get(cid), Some(&1), "acknowledged event {cid} must be stored exactly once");
    }
    let report = reader.verify(|_, _| {}).await.unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);
    assert_eq!(report.verified as usize, stored.values().sum::<usize>());
    println!("{before_kill} acknowledged before the kill, {} in all, {} stored", acknowledged.len(), report.verified);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_loses_no_acknowledged_event_with_group_commit() {
    storm(StoreConfig { namespace: "grouped".into(), commit: CommitMode::Grouped, ..StoreConfig::default() }).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_loses_no_acknowledged_event_with_direct_commit() {
    storm(StoreConfig { namespace: "direct".into(), commit: CommitMode::Direct, ..StoreConfig::default() }).await;
}
