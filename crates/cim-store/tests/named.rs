//! Named, versioned objects: a name points to its head; versions chain.

use cim_store::{Error, NamedObjects, ObjectStore, StoreConfig};

#[tokio::test]
async fn names_point_to_their_latest_version_and_keep_history() {
    let server = cim_test_support::NatsServer::start().await;
    let config = StoreConfig::default();
    let objects = ObjectStore::open(server.connect().await, &config).await.unwrap();
    let named = NamedObjects::open(objects.clone(), server.connect().await, &config).await.unwrap();

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
        let objects = ObjectStore::open(server.connect().await, &config).await.unwrap();
        let named = NamedObjects::open(objects, server.connect().await, &config).await.unwrap();
        writers.push(tokio::spawn(async move {
            for i in 0..5 {
                named.put("shared", format!("{w}-{i}").as_bytes()).await.unwrap();
            }
        }));
    }
    for w in writers {
        w.await.unwrap();
    }
    let objects = ObjectStore::open(server.connect().await, &config).await.unwrap();
    let named = NamedObjects::open(objects, server.connect().await, &config).await.unwrap();
    let history = named.history("shared").await.unwrap();
    assert_eq!(history.len(), 20);
    assert_eq!(history.iter().map(|r| r.record.version).collect::<Vec<_>>(), (1..=20).rev().collect::<Vec<_>>());
}
