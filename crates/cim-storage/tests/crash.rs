//! `kill -9` of the manager mid-seal and mid-copy: no manifest names a
//! segment that is not on both tiers intact, and the restarted manager
//! finishes without writing again what a tier already held.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use cim_archive::segment::SegmentManifest;
use cim_cid::Cid;
use cim_storage_api::TierName;
use cim_test_support::{ServiceProcess, service_config};
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStore as _, ObjectStoreExt};

use crate::support::{COLD_BUCKET, Env, WARM_BUCKET, append_events, blob};

fn binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_cim-storage"))
}

/// The manager's config: tiers, a one-second schedule, segments of 2000.
fn config(env: &Env) -> String {
    let tier = |name: &str, server: &cim_test_support::S3Server, bucket: &str| {
        let (access, secret) = server.write_credentials(env.dir.path(), name);
        format!(
            "[storage.{name}]\nendpoint = \"{}\"\nbucket = \"{bucket}\"\nallow_http = true\naccess_key_file = \"{}\"\nsecret_key_file = \"{}\"\n\n",
            server.endpoint(),
            access.display(),
            secret.display()
        )
    };
    let extra = format!(
        "[store]\nnamespace = \"{}\"\n\n[storage]\nwork_dir = \"{}\"\n\n{}{}[storage.seal]\nmax_events = 2000\ninterval_secs = 1\nmax_age_secs = 1\n\n[storage.copy]\ninterval_secs = 1\nconcurrency = 2\n\n[storage.scrub]\ninterval_secs = 0\n",
        env.store.namespace,
        env.dir.path().join("work").display(),
        tier("warm", &env.warm, WARM_BUCKET),
        tier("cold", &env.cold, COLD_BUCKET),
    );
    service_config(&env.nats, "crash", &extra)
}

/// Every key on a tier with its ETag and modification time.
async fn snapshot(env: &Env, tier: TierName) -> BTreeMap<String, (Option<String>, i64)> {
    env.s3(tier)
        .list(None)
        .map_ok(|m| (m.location.to_string(), (m.e_tag, m.last_modified.timestamp_micros())))
        .try_collect()
        .await
        .expect("list")
}

/// Every manifest on either tier names a segment both tiers hold intact.
async fn manifests_are_safe(env: &Env) {
    for tier in TierName::ALL {
        for key in env.keys(tier).await.iter().filter(|k| k.starts_with("manifests/")) {
            let cid: Cid = key.rsplit_once('-').expect("index-cid").1.parse().expect("CID");
            let bytes = env.s3(tier).get(&Path::from(key.as_str())).await.expect("get").bytes().await.expect("bytes");
            let manifest = SegmentManifest::decode(&cid, &bytes).expect("manifest");
            for holder in TierName::ALL {
                let key = format!("segments/{}", manifest.segment);
                let bytes = env.s3(holder).get(&Path::from(key.as_str())).await.unwrap_or_else(|e| {
                    panic!("manifest {cid} on {tier} names segment {key}, missing on {holder}: {e}")
                });
                let bytes = bytes.bytes().await.expect("bytes");
                cim_archive::segment::read_segment(&bytes, Some(&manifest.segment))
                    .await
                    .unwrap_or_else(|e| panic!("segment {key} on {holder} is not intact: {e}"));
            }
        }
    }
}

/// Waits until a tier holds a key starting with `prefix`.
async fn wait_for_key(env: &Env, tier: TierName, prefix: &str, process: &ServiceProcess) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if env.keys(tier).await.iter().any(|k| k.starts_with(prefix)) {
            return;
        }
        assert!(Instant::now() < deadline, "no {prefix} on {tier}; log:\n{}", process.log());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until the manager reports everything sealed and copied.
async fn wait_done(env: &Env, last_seq: u64, process: &ServiceProcess) -> cim_storage_api::Status {
    let client = cim_storage_api::Client::new(env.nats.connect().await, Duration::from_secs(10));
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        if let Ok(status) = client.status().await
            && status.sealed_through_seq >= last_seq
            && status.tiers.iter().all(|t| t.lag_objects == 0 && t.lag_events == 0)
        {
            return status;
        }
        assert!(Instant::now() < deadline, "not done; log:\n{}", process.log());
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test]
async fn kill_9_mid_seal_and_mid_copy_leaves_no_partial_segment_and_copies_nothing_twice() {
    let env = Env::start().await;
    let store = env.events().await;
    let objects = env.objects().await;
    for seed in 0..24 {
        objects.put_bytes(&blob(1024 * 1024 + usize::from(seed), seed)).await.expect("put");
    }
    append_events(&store, 2000, 50, None).await;
    let last_seq = store.log_state().await.expect("log").last_seq;

    let mut process = ServiceProcess::start(binary(), env.dir.path(), "storage", &config(&env));
    // Mid-seal: the segment is on warm, its manifest nowhere yet (or only
    // on some tiers).
    wait_for_key(&env, TierName::Warm, "segments/", &process).await;
    process.kill9();
    manifests_are_safe(&env).await;
    let before = snapshot(&env, TierName::Warm).await;

    // Restart; kill again once objects are being copied.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    process.spawn();
    wait_for_key(&env, TierName::Warm, "objects/", &process).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    process.kill9();
    manifests_are_safe(&env).await;
    let middle = snapshot(&env, TierName::Warm).await;

    tokio::time::sleep(Duration::from_millis(1100)).await;
    process.spawn();
    let status = wait_done(&env, last_seq, &process).await;
    manifests_are_safe(&env).await;
    let after = snapshot(&env, TierName::Warm).await;
    // Nothing a tier held before a restart was written again.
    for (key, version) in before.iter().chain(middle.iter()) {
        assert_eq!(after.get(key), Some(version), "{key} was rewritten");
    }
    // The last run had work left only if the second was killed before it
    // finished copying (on a fast machine it may have finished in time).
    if after.len() > middle.len() {
        assert!(status.tiers.iter().all(|t| t.skipped_present > 0 || t.written > 0), "{status:?}");
        let warm = &status.tiers[0];
        assert!(warm.skipped_present >= 1, "the restarted manager found what warm held: {warm:?}");
    }
    assert_eq!(status.segments, 1);
    process.terminate();
}
