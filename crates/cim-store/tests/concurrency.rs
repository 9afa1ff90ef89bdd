//! Many writers, in tasks and in separate OS processes, on one aggregate:
//! the server's expected-sequence check keeps one unforked chain.

use std::collections::HashSet;
use std::process::Stdio;

use cim_cid::Cid;
use cim_store::{AggregateQuery, Error, EventStore, ExpectedVersion, StoreConfig};
use serde_json::json;

use crate::common::{event, key};

const EVENTS_PER_WRITER: usize = 500;
const CHILD_ENV: &str = "CIM_TEST_WRITER_URL";

/// Appends `EVENTS_PER_WRITER` events at the version it last read, re-reading
/// after each conflict. Returns the acknowledged CIDs and the conflicts.
async fn write(store: &EventStore, writer: &str) -> (Vec<Cid>, usize) {
    let aggregate = key("counter", "shared");
    let (mut acknowledged, mut conflicts) = (Vec::new(), 0);
    while acknowledged.len() < EVENTS_PER_WRITER {
        let version = store.head(&aggregate).await.unwrap().map_or(0, |(v, _)| v);
        let next = vec![event("Incremented", json!({"writer": writer, "n": acknowledged.len()}))];
        match store.append(&aggregate, ExpectedVersion::Exact(version), next).await {
            Ok(appended) => acknowledged.push(appended.last_cid()),
            Err(Error::ConcurrencyConflict { expected, actual, .. }) => {
                assert_eq!(expected, version);
                assert!(actual > expected, "a conflict reports the newer version ({actual} > {expected})");
                conflicts += 1;
            }
            Err(other) => panic!("a rejected append must be a conflict, got: {other}"),
        }
    }
    (acknowledged, conflicts)
}

/// Run as a child process by `writers_in_tasks_and_processes_never_fork_a_chain`:
/// does nothing unless the parent set `CIM_TEST_WRITER_URL`.
#[tokio::test]
async fn child_writer() {
    let Ok(url) = std::env::var(CHILD_ENV) else { return };
    let namespace = std::env::var("CIM_TEST_NAMESPACE").unwrap();
    let client = async_nats::connect(url).await.unwrap();
    let store = EventStore::provision(client, StoreConfig::with_namespace(namespace)).await.unwrap();
    let (acknowledged, conflicts) = write(&store, &format!("process-{}", std::process::id())).await;
    for cid in acknowledged {
        println!("ACK {cid}");
    }
    println!("CONFLICTS {conflicts}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn writers_in_tasks_and_processes_never_fork_a_chain() {
    let server = cim_test_support::NatsServer::start().await;
    let namespace = "race";
    let config = StoreConfig::with_namespace(namespace);

    let mut children = Vec::new();
    for _ in 0..4 {
        let child = tokio::process::Command::new(std::env::current_exe().unwrap())
            .args(["concurrency::child_writer", "--exact", "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, server.url())
            .env("CIM_TEST_NAMESPACE", namespace)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        children.push(child);
    }
    let mut tasks = Vec::new();
    for writer in 0..4 {
        let store = EventStore::provision(server.connect().await, config.clone()).await.unwrap();
        tasks.push(tokio::spawn(async move { write(&store, &format!("task-{writer}")).await }));
    }

    let mut acknowledged = Vec::new();
    let mut conflicts = 0;
    for task in tasks {
        let (acks, c) = task.await.unwrap();
        acknowledged.extend(acks);
        conflicts += c;
    }
    for child in children {
        let output = child.wait_with_output().await.unwrap();
        assert!(output.status.success(), "a writer process failed");
        let stdout = String::from_utf8(output.stdout).unwrap();
        // The test harness may print its own text before ours on a line.
        let field = |line: &str, tag: &str| line.find(tag).map(|at| line[at + tag.len()..].trim().to_owned());
        let acks: Vec<Cid> = stdout.lines().filter_map(|l| field(l, "ACK ")).map(|c| c.parse().unwrap()).collect();
        assert_eq!(acks.len(), EVENTS_PER_WRITER, "process output: {stdout}");
        acknowledged.extend(acks);
        conflicts += stdout.lines().find_map(|l| field(l, "CONFLICTS ")).unwrap().parse::<usize>().unwrap();
    }

    let store = EventStore::provision(server.connect().await, config).await.unwrap();
    let chain = store.read_aggregate(&key("counter", "shared"), AggregateQuery::all()).await.unwrap();
    let stored: HashSet<Cid> = chain.iter().map(|e| e.event.cid).collect();
    let acknowledged_set: HashSet<Cid> = acknowledged.iter().copied().collect();
    assert_eq!(acknowledged.len(), 8 * EVENTS_PER_WRITER);
    assert_eq!(acknowledged_set.len(), acknowledged.len(), "every acknowledged event is distinct");
    assert_eq!(chain.len(), acknowledged.len(), "the chain holds exactly the acknowledged appends");
    assert_eq!(stored, acknowledged_set);
    for (i, stored) in chain.iter().enumerate() {
        assert_eq!(stored.version(), i as u64 + 1);
        assert_eq!(stored.event.envelope.prev(), i.checked_sub(1).map(|p| &chain[p].event.cid));
    }
    let report = store.verify(|_, _| {}).await.unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);
    assert!(conflicts > 0, "eight writers on one aggregate must have collided");
    println!("{} appends, {conflicts} conflicts", acknowledged.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_commit_batches_contended_appends_without_losing_or_forking() {
    let server = cim_test_support::NatsServer::start().await;
    let store = EventStore::provision(server.connect().await, StoreConfig::default()).await.unwrap();
    let mut writers = Vec::new();
    for writer in 0..64 {
        let store = store.clone();
        writers.push(tokio::spawn(async move {
            let aggregate = key("cart", &format!("c{}", writer % 16));
            let (mut acknowledged, mut conflicts) = (Vec::new(), 0);
            for round in 0..20 {
                let version = store.head(&aggregate).await.unwrap().map_or(0, |(v, _)| v);
                let events = (0..1 + round % 3)
                    .map(|i| event("Added", json!({"writer": writer, "round": round, "i": i})))
                    .collect();
                match store.append(&aggregate, ExpectedVersion::Exact(version), events).await {
                    Ok(appended) => acknowledged.extend(appended.events.iter().map(|e| e.cid)),
                    Err(Error::ConcurrencyConflict { .. }) => conflicts += 1,
                    Err(other) => panic!("a rejected append must be a conflict, got: {other}"),
                }
            }
            (acknowledged, conflicts)
        }));
    }
    let mut acknowledged = HashSet::new();
    let mut conflicts = 0;
    for writer in writers {
        let (acks, c) = writer.await.unwrap();
        for cid in acks {
            assert!(acknowledged.insert(cid), "{cid} acknowledged twice");
        }
        conflicts += c;
    }
    let mut stored = HashSet::new();
    for cart in 0..16 {
        for e in store.read_aggregate(&key("cart", &format!("c{cart}")), AggregateQuery::all()).await.unwrap() {
            stored.insert(e.event.cid);
        }
    }
    assert_eq!(stored, acknowledged, "the chains hold exactly the acknowledged events");
    let report = store.verify(|_, _| {}).await.unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);
    assert!(conflicts > 0);

    // Appends of different writers were committed together.
    let js = async_nats::jetstream::new(server.connect().await);
    let stream = js.get_stream("CIM_EVENTS").await.unwrap();
    let mut batches: std::collections::HashMap<String, HashSet<String>> = Default::default();
    for seq in 1..=report.last_seq {
        let message = stream.get_raw_message(seq).await.unwrap();
        if let Some(batch) = message.headers.get(async_nats::header::NATS_BATCH_ID) {
            batches.entry(batch.to_string()).or_default().insert(message.subject.to_string());
        }
    }
    assert!(batches.values().any(|subjects| subjects.len() > 1), "no batch held more than one aggregate");
}
