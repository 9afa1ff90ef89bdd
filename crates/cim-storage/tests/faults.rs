//! Bad input and faults: wrong credentials, a missing bucket, an endpoint
//! that is down — each a specific error; nothing counted as archived.

use cim_storage::{Error, TierProblem};
use cim_storage_api::TierName;

use crate::support::{Env, append_events};

fn tier_problem(error: &Error) -> Option<(TierName, TierProblem)> {
    match error {
        Error::Tier { tier, problem, .. } => Some((*tier, *problem)),
        _ => None,
    }
}

#[tokio::test]
async fn wrong_credentials_a_missing_bucket_and_a_dead_endpoint_are_named_and_nothing_is_archived() {
    let mut env = Env::start().await;
    let store = env.events().await;
    append_events(&store, 10, 2, None).await;

    // Wrong secret for warm.
    let mut settings = env.settings.clone();
    let wrong = env.dir.path().join("wrong.secret");
    std::fs::write(&wrong, "not-the-secret\n").expect("write");
    settings.warm.secret_key_file = Some(wrong);
    let manager = env.manager_with(settings).await;
    let error = manager.seal_and_copy(true).await.expect_err("refused");
    assert_eq!(tier_problem(&error), Some((TierName::Warm, TierProblem::Denied)), "{error}");
    assert_eq!(manager.status().await.expect("status").sealed_through_seq, 0);
    drop(manager);

    // A bucket that does not exist, on cold.
    let mut settings = env.settings.clone();
    settings.cold.bucket = "no-such-bucket".to_owned();
    let manager = env.manager_with(settings).await;
    let error = manager.seal_and_copy(true).await.expect_err("no bucket");
    assert_eq!(tier_problem(&error), Some((TierName::Cold, TierProblem::NoSuchBucket)), "{error}");
    assert_eq!(manager.status().await.expect("status").sealed_through_seq, 0);
    drop(manager);

    // A credential file that is missing: a configuration error at start.
    let mut settings = env.settings.clone();
    settings.cold.access_key_file = Some(env.dir.path().join("missing"));
    let error = cim_storage::Manager::open(
        env.nats.connect().await,
        env.store.clone(),
        settings,
        "t".to_owned(),
        cim_storage::StorageMetrics::default(),
    )
    .await
    .expect_err("no credentials");
    assert!(matches!(error, Error::Config { ref key, .. } if key == "storage.cold.access_key_file"), "{error}");

    // Cold is down: unavailable, retryable; nothing sealed. Back up: sealed.
    let manager = env.manager().await;
    env.cold.kill();
    let error = manager.seal_and_copy(true).await.expect_err("cold is down");
    assert_eq!(tier_problem(&error), Some((TierName::Cold, TierProblem::Unavailable)), "{error}");
    assert!(error.is_retryable());
    let status = manager.status().await.expect("status");
    assert_eq!(status.sealed_through_seq, 0);
    assert!(!status.tiers[1].reachable && status.tiers[1].last_error.is_some(), "{status:?}");
    env.cold.restart().await;
    let report = manager.seal_and_copy(true).await.expect("sealed once cold is back");
    assert_eq!(report.sealed_through_seq, 10);
}
