//! Real nats-server processes: they start, serve JetStream with the features
//! CIM relies on, survive restarts and run as a cluster.

use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use async_nats::HeaderMap;
use async_nats::header::{NATS_BATCH_COMMIT, NATS_BATCH_ID, NATS_BATCH_SEQUENCE, NATS_EXPECTED_LAST_SUBJECT_SEQUENCE};
use async_nats::jetstream::{self, stream};
use cim_test_support::{NatsCluster, NatsServer, unique_name};

async fn create_stream(js: &jetstream::Context, replicas: usize) -> stream::Stream {
    let name = unique_name("test");
    let mut stream = js
        .create_stream(stream::Config {
            subjects: vec![format!("{name}.>")],
            name,
            num_replicas: replicas,
            allow_atomic_publish: true,
            ..Default::default()
        })
        .await
        .expect("create stream");
    // A replicated stream answers publishes only once its own leader is
    // elected, which can come after the create request returns.
    let deadline = Instant::now() + Duration::from_secs(30);
    while replicas > 1 && stream.info().await.ok().and_then(|i| i.cluster.as_ref()?.leader.clone()).is_none() {
        assert!(Instant::now() < deadline, "the stream elected no leader in 30 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stream
}

async fn message_count(stream: &mut stream::Stream) -> u64 {
    stream.info().await.expect("stream info").state.messages
}

/// Publishes one message per header map as an atomic batch and returns the
/// commit's result.
async fn publish_batch(
    client: &async_nats::Client,
    js: &jetstream::Context,
    subject: &str,
    messages: &[HeaderMap],
) -> Result<jetstream::publish::PublishAck, jetstream::context::PublishError> {
    let batch = unique_name("batch");
    let with_batch = |index: usize, extra: &HeaderMap| {
        let mut headers = extra.clone();
        headers.insert(NATS_BATCH_ID, batch.as_str());
        headers.insert(NATS_BATCH_SEQUENCE, (index + 1).to_string().as_str());
        headers
    };
    let (last, init) = messages.split_last().expect("a batch has messages");
    for (index, extra) in init.iter().enumerate() {
        client
            .publish_with_headers(subject.to_owned(), with_batch(index, extra), "event".into())
            .await
            .expect("publish");
    }
    let mut commit = with_batch(init.len(), last);
    commit.insert(NATS_BATCH_COMMIT, "1");
    js.publish_with_headers(subject.to_owned(), commit, "event".into()).await.expect("send commit").await
}

/// A blocking `GET` of a monitoring endpoint's JSON.
fn monitor_json(server: &NatsServer, path: &str) -> serde_json::Value {
    let mut stream = TcpStream::connect(("127.0.0.1", server.monitor_port())).expect("connect to the monitoring port");
    write!(stream, "GET {path} HTTP/1.0\r\n\r\n").expect("send request");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read response");
    let (_, body) = response.split_once("\r\n\r\n").expect("HTTP response with a body");
    serde_json::from_str(body).expect("JSON body")
}

#[tokio::test]
async fn server_supports_atomic_batches() {
    let server = NatsServer::start().await;
    assert_eq!(server.url(), format!("nats://127.0.0.1:{}", server.port()));
    let client = server.connect().await;
    let js = jetstream::new(client.clone());
    let mut stream = create_stream(&js, 1).await;
    let subject = format!("{}.a", stream.cached_info().config.name);

    let ack = publish_batch(&client, &js, &subject, &vec![HeaderMap::new(); 3]).await.expect("commit batch");
    assert_eq!(ack.sequence, 3);

    // A wrong expectation on the last message rejects the whole batch; a
    // server older than 2.12 would have stored the first message anyway.
    let mut wrong = HeaderMap::new();
    wrong.insert(NATS_EXPECTED_LAST_SUBJECT_SEQUENCE, "99");
    let rejected = publish_batch(&client, &js, &subject, &[HeaderMap::new(), wrong]).await;
    assert!(rejected.is_err(), "batch with a wrong expected sequence was accepted: {rejected:?}");
    assert_eq!(message_count(&mut stream).await, 3);
}

#[tokio::test]
async fn durable_setting_controls_sync_always() {
    let durable = NatsServer::start().await;
    assert_eq!(monitor_json(&durable, "/varz")["jetstream"]["config"]["sync_always"], true);
    let fast = NatsServer::builder().durable(false).start().await;
    assert_ne!(monitor_json(&fast, "/varz")["jetstream"]["config"]["sync_always"], true);
}

#[tokio::test]
async fn kill_and_restart_keep_acknowledged_messages() {
    let mut server = NatsServer::start().await;
    let port = server.port();
    let js = jetstream::new(server.connect().await);
    let stream = create_stream(&js, 1).await;
    let subject = format!("{}.a", stream.cached_info().config.name);
    for n in 0..50 {
        js.publish(subject.clone(), n.to_string().into()).await.expect("publish").await.expect("ack");
    }

    server.kill();
    assert!(!server.is_running());
    assert!(TcpStream::connect(("127.0.0.1", port)).is_err(), "killed server still accepts connections");

    server.restart().await;
    assert_eq!(server.port(), port);
    let js = jetstream::new(server.connect().await);
    let mut stream = js.get_stream(&stream.cached_info().config.name).await.expect("stream after restart");
    assert_eq!(message_count(&mut stream).await, 50);
    let last = stream.get_last_raw_message_by_subject(&subject).await.expect("last message");
    assert_eq!(&last.payload[..], b"49");
}

#[tokio::test]
async fn stopped_server_store_dir_can_be_reopened() {
    let store = tempfile::tempdir().expect("temporary directory");
    let mut first = NatsServer::builder().store_dir(store.path()).start().await;
    assert_eq!(first.store_dir(), store.path());
    let js = jetstream::new(first.connect().await);
    let stream = create_stream(&js, 1).await;
    let name = stream.cached_info().config.name.clone();
    js.publish(format!("{name}.a"), "kept".into()).await.expect("publish").await.expect("ack");
    first.stop().await;
    assert!(!first.is_running());

    let second = NatsServer::builder().store_dir(store.path()).start().await;
    let js = jetstream::new(second.connect().await);
    let mut stream = js.get_stream(&name).await.expect("stream in the reopened store");
    assert_eq!(message_count(&mut stream).await, 1);
}

#[tokio::test]
async fn builder_sets_max_payload_and_extra_config() {
    let server = NatsServer::builder()
        .max_payload(64 * 1024)
        .config_extra(r#"authorization { users: [{ user: "cim", password: "secret" }] }"#)
        .start()
        .await;
    assert!(async_nats::connect(server.url()).await.is_err(), "connected without credentials");
    let client = async_nats::ConnectOptions::with_user_and_password("cim".into(), "secret".into())
        .connect(server.url())
        .await
        .expect("connect with credentials");
    assert_eq!(client.server_info().max_payload, 64 * 1024);
}

#[tokio::test]
#[should_panic(expected = "error parsing sync_interval")]
async fn failed_start_panics_with_the_server_log() {
    NatsServer::builder().config_extra("jetstream { sync_interval: sometimes }").start().await;
}

#[tokio::test]
async fn many_servers_start_at_once_on_distinct_ports() {
    let servers = futures::future::join_all((0..20).map(|_| NatsServer::start())).await;
    let ports: HashSet<u16> = servers.iter().flat_map(|server| [server.port(), server.monitor_port()]).collect();
    assert_eq!(ports.len(), 40, "ports shared between servers");
}

#[tokio::test]
async fn cluster_replicates_and_survives_losing_a_node() {
    let mut cluster = NatsCluster::start(3).await;
    assert_eq!(cluster.urls().len(), 3);
    let js = jetstream::new(cluster.connect().await);
    let mut stream = create_stream(&js, 3).await;
    let subject = format!("{}.a", stream.cached_info().config.name);
    for n in 0..10 {
        js.publish(subject.clone(), n.to_string().into()).await.expect("publish").await.expect("ack");
    }

    // Kill the stream's leader: the hardest node to lose.
    let leader =
        stream.info().await.expect("info").cluster.as_ref().and_then(|c| c.leader.clone()).expect("stream leader");
    let index: usize = leader.trim_start_matches('n').parse().expect("node name n<index>");
    cluster.kill_node(index);

    let deadline = Instant::now() + Duration::from_secs(30);
    let mut stored = 10;
    while stored < 20 {
        let acked = match js.publish(subject.clone(), stored.to_string().into()).await {
            Ok(ack) => ack.await.is_ok(),
            Err(_) => false,
        };
        if acked {
            stored += 1;
        } else {
            assert!(Instant::now() < deadline, "publishes kept failing for 30 s after losing {leader}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    // A new client finds a live node among the URLs.
    let js_after = jetstream::new(cluster.connect().await);
    let mut stream = js_after.get_stream(&stream.cached_info().config.name).await.expect("stream");
    assert_eq!(message_count(&mut stream).await, 20);

    cluster.restart_node(index).await;
    let js = jetstream::new(async_nats::connect(cluster.node(index).url()).await.expect("connect to restarted node"));
    let mut stream = js.get_stream(&stream.cached_info().config.name).await.expect("stream");
    assert_eq!(message_count(&mut stream).await, 20);
    // The leader sees the restarted replica catch up.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let replicas = stream.info().await.expect("info").cluster.clone().expect("cluster info").replicas;
        if replicas.len() == 2 && replicas.iter().all(|replica| replica.current) {
            break;
        }
        assert!(Instant::now() < deadline, "replicas not current 30 s after the restart: {replicas:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
