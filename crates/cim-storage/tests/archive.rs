//! Sealing and copying: segments, manifests, checkpoints and objects on
//! both tiers, verified independently of the manager, idempotent.

use cim_archive::segment::{SegmentManifest, check_chain, read_segment};
use cim_cid::Cid;
use cim_storage_api::TierName;
use cim_store::{Checkpoint, StartAt};
use futures::TryStreamExt;
use object_store::ObjectStoreExt;
use object_store::path::Path;

use crate::support::{Env, append_events, blob};

/// Reads the manifest chain from a tier with a plain S3 client and checks
/// it, every segment in it, and that the segments hold exactly `events`.
async fn check_tier(env: &Env, tier: TierName, events: &[(u64, Cid)]) -> Vec<(Cid, SegmentManifest)> {
    let s3 = env.s3(tier);
    let mut chain = Vec::new();
    for key in env.keys(tier).await.iter().filter(|k| k.starts_with("manifests/")) {
        let cid: Cid = key.rsplit_once('-').expect("index-cid").1.parse().expect("manifest CID");
        let bytes = s3.get(&Path::from(key.as_str())).await.expect("get").bytes().await.expect("bytes");
        chain.push((cid, SegmentManifest::decode(&cid, &bytes).expect("a manifest")));
    }
    check_chain(&chain).expect("the chain is complete and in order");
    let mut found = Vec::new();
    for (_, manifest) in &chain {
        let key = format!("segments/{}", manifest.segment);
        let bytes = s3.get(&Path::from(key)).await.expect("segment").bytes().await.expect("bytes");
        let segment = read_segment(&bytes, Some(&manifest.segment)).await.expect("a valid segment");
        assert_eq!(segment.header_cid, manifest.header);
        found.extend(segment.events.iter().map(|(seq, event)| (*seq, event.cid)));
        let key = format!("objects/{}", manifest.checkpoint);
        let bytes = s3.get(&Path::from(key)).await.expect("checkpoint").bytes().await.expect("bytes");
        let checkpoint = Checkpoint::decode(&manifest.checkpoint, &bytes).expect("a checkpoint");
        assert_eq!(checkpoint.through_seq, manifest.last_seq);
    }
    assert_eq!(found, events, "the {tier} tier's segments hold exactly the stream's events, in order");
    chain
}

#[tokio::test]
async fn seals_and_copies_to_both_tiers_verified_and_idempotent() {
    let env = Env::start().await;
    let mut settings = env.settings.clone();
    settings.copy.single_put_max_bytes = 1024 * 1024;
    settings.copy.part_bytes = 5 * 1024 * 1024;
    let manager = env.manager_with(settings).await;
    let store = env.events().await;
    let objects = env.objects().await;
    let small = objects.put_bytes(&blob(1024, 1)).await.expect("put");
    let big = objects.put_bytes(&blob(11 * 1024 * 1024 + 17, 2)).await.expect("put a multipart-sized object");
    append_events(&store, 120, 7, Some(small)).await;

    let report = manager.seal_and_copy(true).await.expect("seal");
    assert_eq!(report.sealed.len(), 3, "120 events in segments of 50: {report:?}");
    assert_eq!(report.sealed_through_seq, 120);
    assert_eq!(
        report.sealed.iter().map(|s| (s.first_seq, s.last_seq)).collect::<Vec<_>>(),
        [(1, 50), (51, 100), (101, 120)]
    );

    let stream: Vec<(u64, Cid)> = store
        .read_log(StartAt::Beginning)
        .await
        .expect("read")
        .map_ok(|s| (s.seq, s.event.cid))
        .try_collect()
        .await
        .expect("events");
    let warm = check_tier(&env, TierName::Warm, &stream).await;
    let cold = check_tier(&env, TierName::Cold, &stream).await;
    assert_eq!(warm, cold, "both tiers hold the same chain");
    for tier in TierName::ALL {
        let keys = env.keys(tier).await;
        for cid in [small, big] {
            assert!(keys.contains(&format!("objects/{cid}")), "{tier} holds {cid}: {keys:?}");
        }
    }

    let status = manager.status().await.expect("status");
    assert_eq!(status.sealed_through_seq, 120);
    assert_eq!(status.segments, 3);
    for tier in &status.tiers {
        assert_eq!((tier.lag_events, tier.lag_objects), (0, 0), "{tier:?}");
        assert!(tier.reachable, "{tier:?}");
    }
    let written: Vec<u64> = status.tiers.iter().map(|t| t.written).collect();

    // Again: nothing new, nothing written.
    let again = manager.seal_and_copy(true).await.expect("seal again");
    assert!(again.sealed.is_empty() && again.objects_copied == 0, "{again:?}");
    let status = manager.status().await.expect("status");
    assert_eq!(status.tiers.iter().map(|t| t.written).collect::<Vec<_>>(), written);

    // A new manager on the same state (a restart) seals on from 121.
    append_events(&store, 10, 3, None).await;
    drop(manager);
    let manager = env.manager().await;
    let report = manager.seal_and_copy(true).await.expect("seal after a restart");
    assert_eq!(report.sealed.iter().map(|s| (s.index, s.first_seq, s.last_seq)).collect::<Vec<_>>(), [(3, 121, 130)]);
    let status = manager.status().await.expect("status");
    // The segment, its checkpoint and its manifest; the names snapshot is
    // the same (no names) and already verified.
    assert!(status.tiers.iter().all(|t| t.written == 3), "{status:?}");
}
