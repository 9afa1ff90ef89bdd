//! Directory tiers (`endpoint = "file:///dir"`, for development and `cim
//! up`): sealed and copied like S3 tiers, verified, a run with nothing
//! new writes nothing, and a
//! missing bucket directory is `NoSuchBucket` with nothing archived.

use cim_storage::settings::TierSettings;
use cim_storage::{Error, TierProblem};
use cim_storage_api::TierName;

use crate::support::{Env, append_events, blob};

#[tokio::test]
async fn directory_tiers_seal_copy_and_name_a_missing_bucket() {
    let env = Env::start().await;
    let root = env.dir.path().join("tiers");
    for bucket in ["warm", "cold"] {
        std::fs::create_dir_all(root.join(bucket)).expect("bucket directory");
    }
    let tier = |bucket: &str| TierSettings {
        endpoint: format!("file://{}", root.display()),
        bucket: bucket.to_owned(),
        ..TierSettings::default()
    };
    let mut settings = env.settings.clone();
    settings.warm = tier("warm");
    settings.cold = tier("cold");
    cim_runtime::Settings::validate(&settings).expect("valid directory tiers");

    // A bucket directory that does not exist: named, nothing archived, and
    // not created behind the operator's back.
    let mut missing = settings.clone();
    missing.cold.bucket = "gone".to_owned();
    let store = env.events().await;
    append_events(&store, 20, 2, None).await;
    let manager = env.manager_with(missing).await;
    let error = manager.seal_and_copy(true).await.expect_err("no bucket directory");
    assert!(matches!(error, Error::Tier { tier: TierName::Cold, problem: TierProblem::NoSuchBucket, .. }), "{error}");
    assert_eq!(manager.status().await.expect("status").sealed_through_seq, 0);
    assert!(!root.join("gone").exists());
    drop(manager);

    let objects = env.objects().await;
    let object = objects.put_bytes(&blob(9000, 3)).await.expect("put");
    let manager = env.manager_with(settings).await;
    let report = manager.seal_and_copy(true).await.expect("seal onto directories");
    assert_eq!(report.sealed_through_seq, 20);
    assert!(report.objects_copied >= 1, "{report:?}");
    for bucket in ["warm", "cold"] {
        let file = root.join(bucket).join(format!("objects/{object}"));
        assert_eq!(std::fs::read(&file).expect("the object's file"), blob(9000, 3));
        let segments = std::fs::read_dir(root.join(bucket).join("segments")).expect("segments").count();
        assert_eq!(segments, report.sealed.len(), "{bucket}");
    }
    let status = manager.status().await.expect("status");
    for tier in &status.tiers {
        assert!(tier.reachable && tier.lag_events == 0 && tier.lag_objects == 0, "{status:?}");
    }
    // Scrub re-hashes the files; a second seal writes nothing again.
    let scrub = manager.scrub(false).await.expect("scrub");
    assert!(scrub.findings.is_empty(), "{scrub:?}");
    append_events(&store, 5, 2, None).await;
    let again = manager.seal_and_copy(true).await.expect("seal again");
    assert_eq!((again.sealed_through_seq, again.sealed.len()), (25, 1), "{again:?}");
    let idle = manager.seal_and_copy(true).await.expect("nothing new");
    assert_eq!((idle.sealed.len(), idle.objects_copied), (0, 0), "{idle:?}");
}
