//! Scrub: damage behind the manager's back is found by tier, key and CID
//! and repaired from the good tier.

use cim_storage_api::{ItemKind, TierName};
use object_store::ObjectStoreExt;
use object_store::path::Path;

use crate::support::{Env, append_events, blob};

#[tokio::test]
async fn a_flipped_byte_in_warm_is_repaired_from_cold_and_a_lost_segment_from_warm() {
    let env = Env::start().await;
    let manager = env.manager().await;
    let store = env.events().await;
    let objects = env.objects().await;
    let object = objects.put_bytes(&blob(200 * 1024, 9)).await.expect("put");
    append_events(&store, 60, 4, Some(object)).await;
    let sealed = manager.seal_and_copy(true).await.expect("seal").sealed;
    assert_eq!(sealed.len(), 2);

    let clean = manager.scrub(true).await.expect("scrub");
    assert!(clean.findings.is_empty(), "{clean:?}");
    assert!(clean.items_checked >= 2 * 6, "segments, manifests and objects on both tiers: {clean:?}");

    let object_key = format!("objects/{object}");
    env.flip_byte(TierName::Warm, &object_key, 1000).await;
    let segment_key = format!("segments/{}", sealed[0].segment);
    env.delete(TierName::Cold, &segment_key).await;

    // Found, not repaired.
    let report = manager.scrub(false).await.expect("scrub without repair");
    let mut found: Vec<_> =
        report.findings.iter().map(|f| (f.tier, f.kind, f.key.clone(), f.problem.clone(), f.repaired)).collect();
    found.sort_by(|a, b| a.2.cmp(&b.2));
    assert_eq!(
        found,
        [
            (TierName::Warm, ItemKind::Objects, object_key.clone(), "corrupt".to_owned(), false),
            (TierName::Cold, ItemKind::Segments, segment_key.clone(), "missing".to_owned(), false),
        ],
        "{report:#?}"
    );
    assert!(report.findings.iter().any(|f| f.cid == object.to_string()));
    let status = manager.status().await.expect("status");
    let last = status.last_scrub.expect("recorded");
    assert_eq!(last.unrepaired, 2);

    // Repaired, each from the other tier.
    let report = manager.scrub(true).await.expect("scrub");
    let mut repaired: Vec<_> =
        report.findings.iter().map(|f| (f.key.clone(), f.repaired, f.repaired_from.clone())).collect();
    repaired.sort();
    assert_eq!(
        repaired,
        [(object_key.clone(), true, Some("cold".to_owned())), (segment_key.clone(), true, Some("warm".to_owned()))],
        "{report:#?}"
    );
    // The copies are good again, as a plain client reads them.
    let bytes =
        env.s3(TierName::Warm).get(&Path::from(object_key.as_str())).await.expect("get").bytes().await.expect("bytes");
    assert_eq!(bytes.as_ref(), blob(200 * 1024, 9).as_slice());
    assert!(env.keys(TierName::Cold).await.contains(&segment_key));
    let clean = manager.scrub(true).await.expect("scrub");
    assert!(clean.findings.is_empty(), "{clean:?}");
}
