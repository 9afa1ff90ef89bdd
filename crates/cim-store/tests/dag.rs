//! The MerkleDAG: rebuilt completely at every start, then kept current.

use std::time::Duration;

use cim_store::{EventStore, ExpectedVersion, StoreConfig};
use serde_json::json;

use crate::common::{event, key};

#[tokio::test]
async fn every_start_rebuilds_the_complete_dag_and_follows_the_tail() {
    let server = cim_test_support::NatsServer::start().await;
    let config = StoreConfig::default();
    let writer = EventStore::provision(server.connect().await, config.clone()).await.unwrap();
    let cause =
        writer.append(&key("order", "1"), ExpectedVersion::Exact(0), vec![event("Placed", json!({}))]).await.unwrap();
    for i in 0..20 {
        let e = event("Reserved", json!({"i": i})).with_parents([cause.last_cid()]);
        writer.append(&key("stock", &format!("s{i}")), ExpectedVersion::Exact(0), vec![e]).await.unwrap();
    }

    for start in 0..2 {
        let store = EventStore::open_with_dag(server.connect().await, config.clone()).await.unwrap();
        let dag = store.dag().await.unwrap();
        {
            let graph = dag.read();
            assert_eq!(graph.len() as u64, 21 + start, "start-up {start} rebuilt every event");
            assert_eq!(graph.descendants(&cause.last_cid(), None).unwrap().count() as u64, 20 + start);
        }
        assert!(dag.problems().is_empty());

        // The live tail keeps it current.
        let later = writer
            .append(&key("order", "1"), ExpectedVersion::Exact(1 + start), vec![event("Shipped", json!({}))])
            .await
            .unwrap();
        tokio::time::timeout(Duration::from_secs(10), dag.catch_up()).await.unwrap().unwrap();
        assert!(dag.contains(&later.last_cid()));
        assert_eq!(
            dag.read().causal_path(&cause.last_cid(), &later.last_cid()).unwrap().map(|p| p.len() as u64),
            Some(2 + start)
        );
    }
}
