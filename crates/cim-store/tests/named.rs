//! Named, versioned objects: a name points to its head; versions chain.

use cim_store::{Error, NamedObjects, ObjectStore, StoreConfig};

#[tokio::test]
async fn names_point_to_their_latest_version_and_keep_history() {
    let server = cim_test_support::NatsServer::start().await;
    let config = StoreConfig::default();
    let objects = ObjectStore::provision(server.connect().await, &config).await.unwrap();
    let named = NamedObjects::provision(objects.clone(), server.connect().await, &config).await.unwrap();

    let v1 = named.put("reports/q3.txt", &b"draft"[..]).await.unwrap();
    let v2 = named.put("reports/q3.txt", &b"final"[..]).await.unwrap();
    assert_eq!((v1.record.version, v2.record.version), (1, 2));
    assert_eq!(v2.record.prev, Some(v1.cid));
    assert_eq!(named.head("reports/q3.txt").await.unwrap(), Some(v2.clone()));
    assert_eq!(objects.get_bytes(&v2.record.content).await.unwrap(), b"final");
    let history = named.history("reports/q3.txt").await.unwrap();
    assert_eq!(history, [v2.clone(), v1.clone()]);
    assert_eq!(named.version("reports/q3.txt", 1).await.unwrap(), v1);
    assert_eq!(named.names().await.unwrap(), ["reports/q3.txt"]);

    assert!(matches!(named.version("reports/q3.txt", 9).await, Err(Error::NameNotFound { version: Some(9), .. })));
    assert!(named.head("nothing").await.unwrap().is_none());
    assert!(matches!(named.put("../bad name", &b"x"[..]).await, Err(Error::Invalid(_))));
    let unknown = cim_cid::raw_cid(b"absent");
    assert!(matches!(named.set("x", unknown).await, Err(Error::ObjectNotFound(_))));
}

#[tokio::test]
async fn concurrent_writers_of_one_name_never_lose_a_version() {
    let server = cim_test_support::NatsServer::start().await;
    let config = StoreConfig::default();
    let mut writers = Vec::new();
    for w in 0..4 {
        let objects = ObjectStore::provision(server.connect().await, &config).await.unwrap();
        let named = NamedObjects::provision(objects, server.connect().await, &config).await.unwrap();
        writers.push(tokio::spawn(async move {
            for i in 0..5 {
                named.put("shared", format!("{w}-{i}").as_bytes()).await.unwrap();
            }
        }));
    }
    for w in writers {
        w.await.unwrap();
    }
    let objects = ObjectStore::provision(server.connect().await, &config).await.unwrap();
    let named = NamedObjects::provision(objects, server.connect().await, &config).await.unwrap();
    let history = named.history("shared").await.unwrap();
    assert_eq!(history.len(), 20);
    assert_eq!(history.iter().map(|r| r.record.version).collect::<Vec<_>>(), (1..=20).rev().collect::<Vec<_>>());
}

#[tokio::test]
async fn a_name_adopts_a_restored_record_only_as_a_fast_forward() {
    let server = cim_test_support::NatsServer::start().await;
    let config = StoreConfig::default();
    let objects = ObjectStore::provision(server.connect().await, &config).await.unwrap();
    let named = NamedObjects::provision(objects.clone(), server.connect().await, &config).await.unwrap();
    let v1 = named.put("doc", &b"one"[..]).await.unwrap();
    let v2 = named.put("doc", &b"two"[..]).await.unwrap();

    // Another store receives the records (as an archive import would) and adopts the head.
    let other = StoreConfig::with_namespace("restored");
    let target_objects = ObjectStore::provision(server.connect().await, &other).await.unwrap();
    let target = NamedObjects::provision(target_objects.clone(), server.connect().await, &other).await.unwrap();
    for record in [&v1, &v2] {
        target_objects.put_bytes(&objects.get_bytes(&record.record.content).await.unwrap()).await.unwrap();
        target_objects.put_ipld(&record.record).await.unwrap();
    }
    assert_eq!(target.adopt("doc", v1.cid).await.unwrap(), v1);
    assert_eq!(target.adopt("doc", v2.cid).await.unwrap(), v2, "a fast-forward");
    assert_eq!(target.adopt("doc", v2.cid).await.unwrap(), v2, "adopting the head again changes nothing");
    let err = target.adopt("doc", v1.cid).await.unwrap_err();
    assert!(matches!(err, Error::NameConflict { head, adopted, .. } if head == v2.cid && adopted == v1.cid), "{err}");
    assert_eq!(target.history("doc").await.unwrap(), [v2.clone(), v1.clone()]);
    let missing = cim_cid::dag_cbor_cid(b"no record");
    assert!(matches!(target.adopt("other", missing).await, Err(Error::ObjectNotFound(_))));
}
