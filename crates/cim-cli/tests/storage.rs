//! `cim storage` and `cim restore` end to end, all real processes: a
//! nats-server per host, SeaweedFS as the warm tier, s3s-fs as the cold one,
//! and the `cim-storage` binary. Archive through the CLI, lose the whole
//! JetStream store, restore onto a fresh server; damaged or truncated
//! copies on the tiers are refused before anything is written.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cim_test_support::{NatsServer, S3Server, ServiceProcess, service_config, workspace_binary};
use object_store::aws::AmazonS3Builder;
use object_store::{ObjectStoreExt, PutPayload};
use serde_json::Value;

use crate::common::{Env, history};

const WARM_BUCKET: &str = "cim-warm";
const COLD_BUCKET: &str = "cim-cold";

/// The two S3 servers, with their buckets.
struct Tiers {
    warm: S3Server,
    cold: S3Server,
}

impl Tiers {
    async fn start() -> Self {
        let (warm, cold) = tokio::join!(S3Server::seaweedfs(), S3Server::s3s_fs());
        warm.create_bucket(WARM_BUCKET);
        cold.create_bucket(COLD_BUCKET);
        Self { warm, cold }
    }

    /// A plain S3 client of the warm tier, to damage what the manager wrote.
    fn warm_s3(&self) -> Arc<dyn object_store::ObjectStore> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        Arc::new(
            AmazonS3Builder::new()
                .with_endpoint(self.warm.endpoint())
                .with_bucket_name(WARM_BUCKET)
                .with_region("us-east-1")
                .with_access_key_id(self.warm.access_key())
                .with_secret_access_key(self.warm.secret_key())
                .with_allow_http(true)
                .build()
                .unwrap(),
        )
    }
}

/// The manager's configuration: the store namespace, both tiers (keys in
/// files), segments of `max_events`, no schedules (the CLI drives it).
fn config(server: &NatsServer, namespace: &str, tiers: &Tiers, dir: &Path, instance: &str) -> String {
    let tier = |name: &str, s3: &S3Server, bucket: &str| {
        let (access, secret) = s3.write_credentials(dir, &format!("{instance}-{name}"));
        format!(
            "[storage.{name}]\nendpoint = \"{}\"\nbucket = \"{bucket}\"\nallow_http = true\naccess_key_file = \"{}\"\nsecret_key_file = \"{}\"\n\n",
            s3.endpoint(),
            access.display(),
            secret.display()
        )
    };
    let extra = format!(
        "[store]\nnamespace = \"{namespace}\"\n\n[storage]\nwork_dir = \"{}\"\n\n{}{}[storage.seal]\nmax_events = 10\ninterval_secs = 0\n\n[storage.copy]\ninterval_secs = 0\n\n[storage.scrub]\ninterval_secs = 0\n",
        dir.join(format!("{instance}-work")).display(),
        tier("warm", &tiers.warm, WARM_BUCKET),
        tier("cold", &tiers.cold, COLD_BUCKET),
    );
    service_config(server, instance, &extra)
}

/// Starts `cim-storage` for `env` and waits until `cim storage status` answers.
fn start_manager(env: &Env, tiers: &Tiers, dir: &Path, instance: &str) -> ServiceProcess {
    // As cim-provision.service does: the manager only attaches.
    env.cim(&["provision"]).ok();
    let process = ServiceProcess::start(
        workspace_binary("cim-storage", "cim-storage"),
        dir,
        instance,
        &config(&env.server, &env.namespace, tiers, dir, instance),
    );
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if env.cim(&["--json", "storage", "status"]).code == 0 {
            return process;
        }
        assert!(Instant::now() < deadline, "the manager does not answer; log:\n{}", process.log());
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Every event of the log as (stream sequence, CID).
fn log(env: &Env) -> Vec<(u64, String)> {
    let run = env.cim(&["--json", "events", "log"]);
    run.ok();
    run.stdout
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            (v["seq"].as_u64().unwrap(), v["cid"].as_str().unwrap().to_owned())
        })
        .collect()
}

/// Every object's CID, sorted.
fn objects(env: &Env) -> Vec<String> {
    let listed = env.cim(&["--json", "objects", "list"]).json();
    let mut cids: Vec<String> = listed
        .as_array()
        .or_else(|| listed["objects"].as_array())
        .unwrap()
        .iter()
        .map(|o| o["cid"].as_str().unwrap().to_owned())
        .collect();
    cids.sort();
    cids
}

#[tokio::test]
async fn archive_lose_hot_restore_verified_and_damaged_copies_refused() {
    let tiers = Tiers::start().await;
    let dir = tempfile::tempdir().unwrap();
    let first = Env::new().await;
    history(&first, dir.path());
    for n in 0..25 {
        first.append(&format!("order/o{}", n % 4), "Changed", &format!(r#"{{"n":{n}}}"#), &[]);
    }
    let big = dir.path().join("big.bin");
    std::fs::write(&big, (0..3 * 1024 * 1024 + 5).map(|i: u32| (i % 251) as u8).collect::<Vec<u8>>()).unwrap();
    first.cim(&["objects", "put", big.to_str().unwrap(), "--name", "blobs/big"]).ok();
    let events = log(&first);
    let before_seal = objects(&first);
    assert!(events.len() >= 28, "{events:?}");

    // Archive through the CLI.
    let mut manager = start_manager(&first, &tiers, dir.path(), "m1");
    let sealed = first.cim(&["--json", "storage", "seal", "--force"]).json();
    assert_eq!(sealed["sealed_through_seq"].as_u64(), Some(events.len() as u64), "{sealed}");
    let segments = sealed["sealed"].as_array().unwrap();
    assert_eq!(segments.len(), events.len().div_ceil(10), "segments of 10: {sealed}");
    // Sealing adds each segment's checkpoint and the names snapshot to hot
    // (and to the tiers): the restore brings back all of them.
    let stored = objects(&first);
    assert!(stored.len() > before_seal.len(), "{stored:?}");
    assert!(before_seal.iter().all(|cid| stored.contains(cid)), "{stored:?}");
    let status = first.cim(&["--json", "storage", "status"]).json();
    for tier in status["tiers"].as_array().unwrap() {
        assert_eq!((tier["lag_events"].as_u64(), tier["lag_objects"].as_u64()), (Some(0), Some(0)), "{status}");
        assert_eq!(tier["reachable"], true, "{status}");
    }
    let text = first.cim(&["storage", "status"]);
    text.ok();
    assert!(text.stdout.contains("sealed through stream sequence"), "{}", text.stdout);
    manager.terminate();

    // A brand-new host: an empty JetStream, the same tiers.
    let mut second = Env::new().await;
    second.namespace = first.namespace.clone();
    let mut manager = start_manager(&second, &tiers, dir.path(), "m2");
    let status = second.cim(&["--json", "storage", "status"]).json();
    assert_eq!(status["restore_needed"], true, "{status}");

    // The first segment damaged on both tiers: one byte flipped on warm,
    // truncated on cold. Refused, and nothing written.
    let segment = segments[0]["segment"].as_str().unwrap().to_owned();
    let key = object_store::path::Path::from(format!("segments/{segment}"));
    let warm = tiers.warm_s3();
    let original = warm.get(&key).await.unwrap().bytes().await.unwrap().to_vec();
    let mut flipped = original.clone();
    flipped[original.len() / 2] ^= 0x01;
    warm.put(&key, PutPayload::from(flipped)).await.unwrap();
    let cold_file = tiers.cold.object_file(COLD_BUCKET, &format!("segments/{segment}")).unwrap();
    assert_eq!(std::fs::read(&cold_file).unwrap(), original, "cold holds the same bytes");
    std::fs::write(&cold_file, &original[..original.len() - 7]).unwrap();
    second.cim(&["restore"]).fails(3, &format!("no tier gave an intact copy of segments {segment}"));
    let (events_after, objects_after, _) = second.counts(&second.namespace);
    assert_eq!((events_after, objects_after), (0, 0), "a refused restore writes nothing");

    // Cold intact again, warm still damaged: the restore reads past warm.
    std::fs::write(&cold_file, &original).unwrap();
    let restored = second.cim(&["--json", "restore"]).json();
    assert_eq!(restored["events_written"].as_u64(), Some(events.len() as u64), "{restored}");
    assert_eq!(restored["objects"].as_u64(), Some(stored.len() as u64), "{restored}");
    assert_eq!(restored["names"].as_u64(), Some(2), "{restored}");

    assert_eq!(log(&second), events, "identical CIDs at identical stream sequences");
    assert_eq!(objects(&second), stored, "every object back");
    let verify = second.cim(&["--json", "verify"]).json();
    assert_eq!(verify["ok"], true, "{verify}");
    let fetched = dir.path().join("fetched.bin");
    second.cim(&["objects", "get", "--name", "blobs/big", "-o", fetched.to_str().unwrap()]).ok();
    assert_eq!(std::fs::read(&fetched).unwrap(), std::fs::read(&big).unwrap());

    // Again: nothing to write.
    let again = second.cim(&["--json", "restore"]).json();
    assert_eq!((again["events_written"].as_u64(), again["objects_written"].as_u64()), (Some(0), Some(0)), "{again}");
    manager.terminate();
}
