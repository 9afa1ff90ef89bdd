//! Two cim-ius instances serving the same units at once never fork a
//! chain; conflicts reach clients as retryable errors.

use cim_ius_api::{Create, Get, IusCode, Tags, Target};
use cim_wire::RequestError;
use serde_json::json;

use crate::support::Stack;

#[tokio::test]
async fn two_instances_never_fork_a_chain() {
    let mut stack = Stack::start(1).await;
    stack.add_ius("ius1").await;
    let ius = stack.ius_client();
    let create = Create {
        kind: "text-document".into(),
        id: Some("shared".into()),
        content: json!({ "text": "x" }),
        metadata: json!({}),
        tags: vec![],
        caused_by: vec![],
    };
    ius.create(&create).await.expect("create");

    let mut writers = Vec::new();
    for writer in 0..6 {
        let ius = ius.clone();
        writers.push(tokio::spawn(async move {
            let (mut stored, mut conflicts) = (0, 0);
            for n in 0..15 {
                // Read, then write expecting what was read: racing writers conflict.
                let seen =
                    ius.get(&Get { id: Some("shared".into()), ..Get::default() }).await.expect("get").state.version;
                let command = Tags {
                    target: Target { id: "shared".into(), expected_version: Some(seen), caused_by: vec![] },
                    tags: vec![format!("w{writer}-{n}")],
                };
                match ius.tag(&command).await {
                    Ok(_) => stored += 1,
                    Err(RequestError::Remote(error)) if error.is(IusCode::VersionConflict) => {
                        assert!(error.retryable, "{error:?}");
                        conflicts += 1;
                    }
                    Err(other) => panic!("unexpected error {other:?}"),
                }
            }
            (stored, conflicts)
        }));
    }
    let (mut stored, mut conflicts) = (0, 0);
    for writer in writers {
        let (s, c) = writer.await.expect("writer");
        stored += s;
        conflicts += c;
    }
    println!("{stored} tags stored, {conflicts} conflicts");
    assert!(conflicts > 0, "six racing writers should have conflicted");
    let history = ius.history("shared").await.expect("history");
    assert_eq!(history.events.len(), 1 + stored, "exactly the acknowledged commands, one chain");
    for (index, event) in history.events.iter().enumerate() {
        assert_eq!(event.version, index as u64 + 1);
        assert_eq!(event.prev.as_deref(), index.checked_sub(1).map(|i| history.events[i].cid.as_str()));
    }
    assert!(ius.verify("shared").await.expect("verify").problems.is_empty());
    // Both instances converge on the same projection.
    let latest = history.events.len() as u64;
    for _ in 0..10 {
        ius.get(&Get { id: Some("shared".into()), min_version: Some(latest), ..Get::default() })
            .await
            .expect("caught up");
    }
}
