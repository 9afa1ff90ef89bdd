//! Garbage collection: a dry run lists the unreferenced objects (not yet
//! due within the grace period, due after it) and deletes nothing; a real
//! run after the grace period deletes them from hot, warm and cold, and
//! leaves every referenced object where it was.

use std::time::Duration;

use cim_storage_api::TierName;

use crate::support::{Env, append_events, blob};

#[tokio::test]
async fn dry_run_lists_and_a_real_run_sweeps_after_the_grace_period_on_every_tier() {
    let env = Env::start().await;
    let objects = env.objects().await;
    let kept = objects.put_bytes(&blob(4096, 1)).await.expect("put");
    let garbage = objects.put_bytes(&blob(5000, 2)).await.expect("put");
    let store = env.events().await;
    append_events(&store, 12, 3, Some(kept)).await;

    let mut settings = env.settings.clone();
    settings.gc.enabled = true;
    settings.gc.grace_secs = 2;
    let manager = env.manager_with(settings).await;
    manager.seal_and_copy(true).await.expect("seal and copy");
    let key = |cid: &cim_cid::Cid| format!("objects/{cid}");
    for tier in TierName::ALL {
        let keys = env.keys(tier).await;
        assert!(keys.contains(&key(&kept)) && keys.contains(&key(&garbage)), "{tier}: {keys:?}");
    }

    // Within the grace period: listed, not due, nothing deleted.
    let report = manager.gc(true).await.expect("dry run");
    assert!(report.dry_run);
    let listed: Vec<(&str, bool)> = report.unreferenced.iter().map(|i| (i.cid.as_str(), i.due)).collect();
    assert_eq!(listed, [(garbage.to_string().as_str(), false)], "{report:?}");
    assert_eq!(report.unreferenced[0].size, 5000);
    assert_eq!((report.swept, report.swept_bytes), (0, 0));
    // A real run within the grace period sweeps nothing either.
    let report = manager.gc(false).await.expect("gc within the grace period");
    assert_eq!((report.swept, report.unreferenced.len()), (0, 1), "{report:?}");

    tokio::time::sleep(Duration::from_millis(2500)).await;

    // Due now; a dry run still deletes nothing.
    let report = manager.gc(true).await.expect("dry run");
    let listed: Vec<(&str, bool)> = report.unreferenced.iter().map(|i| (i.cid.as_str(), i.due)).collect();
    assert_eq!(listed, [(garbage.to_string().as_str(), true)], "{report:?}");
    assert_eq!(report.swept, 0);
    assert!(objects.stat(&garbage).await.expect("stat").is_some());
    for tier in TierName::ALL {
        assert!(env.keys(tier).await.contains(&key(&garbage)), "{tier}: a dry run deleted");
    }

    // The real run: gone from every tier, the referenced object untouched.
    let report = manager.gc(false).await.expect("gc");
    assert!(!report.dry_run);
    assert_eq!((report.swept, report.swept_bytes), (1, 5000), "{report:?}");
    assert!(objects.stat(&garbage).await.expect("stat").is_none(), "still in hot");
    assert!(objects.stat(&kept).await.expect("stat").is_some(), "the referenced object went");
    for tier in TierName::ALL {
        let keys = env.keys(tier).await;
        assert!(!keys.contains(&key(&garbage)), "{tier} still holds it: {keys:?}");
        assert!(keys.contains(&key(&kept)), "{tier} lost the referenced object: {keys:?}");
    }
    // Nothing left to collect; a checkpoint or names snapshot never is.
    let report = manager.gc(false).await.expect("gc again");
    assert_eq!((report.swept, report.unreferenced.len()), (0, 0), "{report:?}");
}
