//! `kill -9` of cim-ius during a stream of commands, then a restart: every
//! acknowledged command is there, and the projection equals a fresh
//! rebuild from the stream.

use std::time::Duration;

use cim_ius::Projection;
use cim_ius_api::{Create, Get, Tags, Target};
use cim_store::{EventStore, StoreConfig};
use serde_json::json;

use crate::support::Stack;

#[tokio::test]
async fn sigkill_loses_no_acknowledged_command() {
    let mut stack = Stack::start(1).await;
    let ius = stack.ius_client();
    for index in 0..4 {
        let create = Create {
            kind: "text-document".into(),
            id: Some(format!("u{index}")),
            content: json!({ "text": "x" }),
            metadata: json!({}),
            tags: vec![],
            caused_by: vec![],
        };
        ius.create(&create).await.expect("create");
    }
    let writer = tokio::spawn({
        let ius = ius.clone();
        async move {
            let mut acknowledged = Vec::new();
            for n in 0.. {
                let command = Tags {
                    target: Target { id: format!("u{}", n % 4), ..Target::default() },
                    tags: vec![format!("t{n}")],
                };
                match ius.tag(&command).await {
                    Ok(committed) => acknowledged.push(committed),
                    Err(_) => break,
                }
            }
            acknowledged
        }
    });
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stack.ius[0].kill9();
    let acknowledged = writer.await.expect("writer");
    assert!(acknowledged.len() > 10, "only {} commands before the kill", acknowledged.len());
    println!("{} commands acknowledged before SIGKILL", acknowledged.len());

    stack.ius[0].spawn();
    stack.wait_serving("cim-ius").await;
    for committed in &acknowledged {
        let past = ius
            .get(&Get { id: Some(committed.id.clone()), version: Some(committed.version), ..Get::default() })
            .await
            .expect("acknowledged version");
        assert_eq!(past.state_cid, committed.state_cid, "{committed:?}");
    }
    let store = EventStore::open(stack.client.clone(), StoreConfig::default()).await.expect("store");
    let fresh = Projection::start(&store).await.expect("fresh rebuild").status();
    let served = ius.status().await.expect("status");
    assert_eq!((served.digest.as_str(), served.units), (fresh.digest.as_str(), fresh.units));
    assert!(served.problems.is_empty() && fresh.problems.is_empty(), "{served:?}");
    for index in 0..4 {
        assert!(ius.verify(&format!("u{index}")).await.expect("verify").problems.is_empty());
    }
}
