//! Retention: hot drops sealed segments and objects that both tiers hold
//! verified; reads of them fall through, verified; the store rebuilds and
//! verifies from the checkpoint, and its chains go on.

use cim_cid::{AggregateKey, Event, Ipld, NewEvent};
use cim_storage_api::{ItemKind, ReadRange};
use cim_store::{ExpectedVersion, StartAt};
use futures::TryStreamExt;

use crate::support::{Env, append_events, blob};

#[tokio::test]
async fn dropped_events_and_objects_read_through_the_tiers_and_the_store_rebuilds_from_the_checkpoint() {
    let env = Env::start().await;
    let mut settings = env.settings.clone();
    settings.retention.enabled = true;
    settings.retention.events_max_hot = 60;
    settings.retention.objects_max_hot_bytes = 1;
    let manager = env.manager_with(settings.clone()).await;
    let store = env.events().await;
    let objects = env.objects().await;
    let object = objects.put_bytes(&blob(300 * 1024, 3)).await.expect("put");
    append_events(&store, 150, 5, Some(object)).await;
    let early: Vec<Event> = store
        .read_log_until(StartAt::Beginning, 100)
        .await
        .expect("read")
        .map_ok(|s| s.event)
        .try_collect()
        .await
        .expect("events");

    // Nothing is dropped before it is sealed.
    let nothing = manager.retention(false).await.expect("retention");
    assert_eq!(nothing.events_dropped, 0);
    assert!(nothing.objects_dropped.is_empty(), "{nothing:?}");

    manager.seal_and_copy(true).await.expect("seal");
    let dry = manager.retention(true).await.expect("dry run");
    assert_eq!((dry.events_dropped_through_seq, dry.events_dropped), (100, 100), "{dry:?}");
    assert!(dry.objects_dropped.contains(&object.to_string()));
    assert!(objects.stat(&object).await.expect("stat").is_some(), "a dry run drops nothing");

    let report = manager.retention(false).await.expect("retention");
    // Two segments (100 events) go; each of the 5 aggregates keeps its head.
    assert_eq!((report.events_dropped_through_seq, report.events_dropped), (100, 95), "{report:?}");
    assert!(objects.stat(&object).await.expect("stat").is_none(), "the object left hot");

    // Reads fall through, verified.
    let dropped = &early[2];
    let (seq, _, bytes) = manager.archived_event(&dropped.cid).await.expect("archived event");
    assert_eq!(seq, 3);
    assert_eq!(Event::from_block(&dropped.cid, &bytes).expect("verifies").cid, dropped.cid);
    let range = ReadRange { kind: ItemKind::Objects, cid: object.to_string(), offset: 0, len: 512 * 1024, tier: None };
    let (size, _, bytes) = manager.read_range(&range).await.expect("object from a tier");
    assert_eq!((size, bytes.as_ref()), (300 * 1024, blob(300 * 1024, 3).as_slice()));

    // A fresh store (every process restarted) rebuilds from the checkpoint.
    let fresh = env.events().await;
    let checkpoint = fresh.start_checkpoint().await.expect("checkpoint").expect("there is one");
    assert_eq!(checkpoint.1.through_seq, 100);
    let dag = fresh.dag().await.expect("rebuild from the checkpoint");
    assert_eq!(dag.read().base_position(), Some(100));
    assert!(dag.problems().is_empty(), "{:?}", dag.problems());
    let report = fresh.verify(|_, _| {}).await.expect("verify");
    assert!(report.is_ok(), "{report:?}");
    assert_eq!(report.checkpoint.map(|(_, seq)| seq), Some(100));
    // Every chain goes on: o0 has 30 events, the next is version 31.
    let aggregate = AggregateKey::new("order", "o0").expect("key");
    let appended = fresh
        .append(&aggregate, ExpectedVersion::Exact(30), vec![NewEvent::new("Happened", Ipld::Null)])
        .await
        .expect("append continues the chain");
    assert_eq!(appended.version(), 31);
    // And the manager, restarted, goes on sealing.
    drop(manager);
    let manager = env.manager_with(settings).await;
    let report = manager.seal_and_copy(true).await.expect("seal");
    assert_eq!(report.sealed.last().map(|s| s.last_seq), Some(fresh.log_state().await.expect("log").last_seq));
}
