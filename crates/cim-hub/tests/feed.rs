//! The live feed: disconnect and resume with Last-Event-ID under an append
//! storm — every event exactly once, in order.

use std::time::Duration;

use cim_hub_api::Scope;
use cim_store::{AggregateKey, EventStore, ExpectedVersion, Ipld, NewEvent, StoreConfig};
use futures::StreamExt;

use crate::support::Stack;

/// Reads Server-Sent Events until `take` events arrived (or the stream
/// ends); returns their (id, data).
async fn read_events(response: reqwest::Response, take: usize) -> Vec<(u64, serde_json::Value)> {
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let mut body = response.bytes_stream();
    let mut buffer = String::new();
    let mut events = Vec::new();
    while events.len() < take {
        let Ok(Some(chunk)) = tokio::time::timeout(Duration::from_secs(15), body.next()).await else { break };
        buffer.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
        while let Some(end) = buffer.find("\n\n") {
            let block: String = buffer.drain(..end + 2).collect();
            let (mut id, mut data) = (None, String::new());
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("id:") {
                    id = v.trim().parse().ok();
                } else if let Some(v) = line.strip_prefix("data:") {
                    data.push_str(v.trim_start());
                }
            }
            if let Some(id) = id {
                events.push((id, serde_json::from_str(&data).unwrap()));
                if events.len() == take {
                    break;
                }
            }
        }
    }
    events
}

#[tokio::test]
async fn resuming_with_last_event_id_under_an_append_storm_loses_and_repeats_nothing() {
    let stack = Stack::start().await;
    let reader = stack.token(Scope::Read).await;
    let store = EventStore::open(stack.nats.clone(), StoreConfig::default()).await.unwrap();
    const WRITERS: usize = 4;
    const EACH: usize = 250;
    let storm: Vec<_> = (0..WRITERS)
        .map(|w| {
            let store = store.clone();
            tokio::spawn(async move {
                let key = AggregateKey::new("storm", format!("w{w}")).unwrap();
                for i in 0..EACH {
                    let event = NewEvent::new("Blew", Ipld::Integer(i as i128));
                    store.append(&key, ExpectedVersion::Exact(i as u64), vec![event]).await.unwrap();
                }
            })
        })
        .collect();
    let total = WRITERS * EACH;
    let mut received: Vec<(u64, serde_json::Value)> = Vec::new();
    let mut connections = 0;
    while received.len() < total {
        connections += 1;
        assert!(connections < 200, "too many reconnections");
        let mut request = stack.http.get(stack.url("/v1/feed")).bearer_auth(&reader);
        request = match received.last() {
            Some((id, _)) => request.header("Last-Event-ID", id.to_string()),
            None => request.query(&[("after", "0")]),
        };
        // Take an uneven number each time, then hang up.
        let take = 37 + (connections * 53) % 101;
        let got = read_events(request.send().await.unwrap(), take).await;
        assert!(
            !got.is_empty(),
            "connection {connections} after {} events brought none; hub log:\n{}",
            received.len(),
            stack.hub.log()
        );
        received.extend(got);
    }
    for writer in storm {
        writer.await.unwrap();
    }
    let seqs: Vec<u64> = received.iter().map(|(id, _)| *id).collect();
    assert_eq!(seqs, (1..=total as u64).collect::<Vec<_>>(), "every event exactly once, in order");
    for (id, event) in &received {
        assert_eq!(event["seq"].as_u64(), Some(*id));
        assert_eq!(event["verified"], true);
    }
    // Each writer's events arrive in version order.
    for w in 0..WRITERS {
        let versions: Vec<u64> = received
            .iter()
            .filter(|(_, e)| e["aggregate_id"] == format!("w{w}"))
            .map(|(_, e)| e["version"].as_u64().unwrap())
            .collect();
        assert_eq!(versions, (1..=EACH as u64).collect::<Vec<_>>());
    }
    assert!(connections > 5, "the test should reconnect several times ({connections})");
}

#[tokio::test]
async fn the_feed_filters_by_aggregate_and_type_and_starts_live_by_default() {
    let stack = Stack::start().await;
    let reader = stack.token(Scope::Read).await;
    let writer = stack.token(Scope::Write).await;
    let append = |aggregate: &'static str, event_type: &'static str| {
        let url = stack.url(&format!("/v1/aggregates/{aggregate}/events"));
        let body = serde_json::json!({"events": [{"event_type": event_type}]});
        let request = stack.http.post(url).bearer_auth(&writer).json(&body);
        async move { assert_eq!(request.send().await.unwrap().status(), 201) }
    };
    append("order/1", "Placed").await;
    let live = stack
        .http
        .get(stack.url("/v1/feed?aggregate_type=order&event_type=Paid"))
        .bearer_auth(&reader)
        .send()
        .await
        .unwrap();
    append("order/1", "Placed").await;
    append("cart/1", "Paid").await;
    append("order/2", "Paid").await;
    let events = read_events(live, 1).await;
    assert_eq!(events.len(), 1);
    assert_eq!((events[0].1["aggregate_id"].as_str(), events[0].1["event_type"].as_str()), (Some("2"), Some("Paid")));
    let bad =
        stack.http.get(stack.url("/v1/feed")).bearer_auth(&reader).header("Last-Event-ID", "x").send().await.unwrap();
    assert_eq!(bad.status(), 400);
    let bad = stack.http.get(stack.url("/v1/feed?aggregate_id=1")).bearer_auth(&reader).send().await.unwrap();
    assert_eq!(bad.status(), 400);
}
