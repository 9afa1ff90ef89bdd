//! A real three-node JetStream cluster: replicated streams keep every
//! acknowledged event when a node dies, and chains stay linear.

use std::time::Duration;

use cim_store::{AggregateQuery, EventStore, ExpectedVersion, ObjectStore, StoreConfig};
use cim_test_support::NatsCluster;
use serde_json::json;

use crate::common::{event, key};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicated_store_survives_losing_a_node() {
    let mut cluster = NatsCluster::start(3).await;
    let config = StoreConfig { replicas: 3, ..StoreConfig::default() };
    let store = EventStore::provision(cluster.connect().await, config.clone()).await.unwrap();
    let objects = ObjectStore::provision(cluster.connect().await, &config).await.unwrap();
    let js = async_nats::jetstream::new(cluster.connect().await);
    let mut stream = js.get_stream("CIM_EVENTS").await.unwrap();
    assert_eq!(stream.info().await.unwrap().config.num_replicas, 3);

    let ledger = key("ledger", "main");
    let mut acknowledged = Vec::new();
    for i in 0..20u64 {
        acknowledged.push(
            store.append(&ledger, ExpectedVersion::Exact(i), vec![event("Posted", json!(i))]).await.unwrap().last_cid(),
        );
    }
    let blob = objects.put_bytes(&vec![7u8; 200_000]).await.unwrap();

    cluster.kill_node(2);
    // Appends go on with two of three replicas; retry while leadership moves.
    let mut version = 20;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while version < 40 {
        match store.append(&ledger, ExpectedVersion::Exact(version), vec![event("Posted", json!(version))]).await {
            Ok(appended) => {
                acknowledged.push(appended.last_cid());
                version += 1;
            }
            Err(e) if e.is_retryable() && tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(200)).await
            }
            Err(e) => panic!("append with a node down: {e}"),
        }
    }
    let stored_while_down = loop {
        match objects.put_bytes(b"stored while node 2 was down").await {
            Ok(cid) => break cid,
            Err(e) if e.is_retryable() && tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(200)).await
            }
            Err(e) => panic!("object put with a node down: {e}"),
        }
    };
    cluster.restart_node(2).await;

    let chain = store.read_aggregate(&ledger, AggregateQuery::all()).await.unwrap();
    assert_eq!(chain.iter().map(|e| e.event.cid).collect::<Vec<_>>(), acknowledged);
    let report = store.verify(|_, _| {}).await.unwrap();
    assert!(report.is_ok(), "{:?}", report.problems);
    assert_eq!(objects.get_bytes(&blob).await.unwrap(), vec![7u8; 200_000]);

    // Through the node that just rejoined: it may still be catching up, but
    // what the majority acknowledged is read all the same.
    let rejoined = async_nats::connect(cluster.node(2).url()).await.unwrap();
    let objects = ObjectStore::provision(rejoined.clone(), &config).await.unwrap();
    assert_eq!(objects.get_bytes(&stored_while_down).await.unwrap(), b"stored while node 2 was down");
    let store = EventStore::provision(rejoined, config).await.unwrap();
    assert_eq!(store.head(&ledger).await.unwrap().map(|(version, _)| version), Some(40));
}
