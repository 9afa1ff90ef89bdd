//! Bad command-line input: specific errors, documented exit codes (2 usage,
//! 4 conflict, 5 not found), and nothing written.

use crate::common::Env;

#[tokio::test]
async fn bad_input_gets_specific_errors_and_exit_codes() {
    let env = Env::new().await;
    let first = env.append("order/o1", "Placed", r#"{"total":1}"#, &[]);
    let unknown = "bafyreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy";

    env.cim(&["events", "append", "order/o1", "Paid", r#"{"total": "#]).fails(2, "the payload is not valid JSON");
    env.cim(&["events", "append", "order", "Paid"]).fails(2, "expected <type>/<id>, e.g. order/42");
    env.cim(&["events", "append", "order/o 1", "Paid"]).fails(2, "aggregate id");
    env.cim(&["events", "append", "order/o1", "Paid!"]).fails(2, "event type");
    env.cim(&["events", "show", "not-a-cid"]).fails(2, "is not a CID");
    env.cim(&["events", "show", unknown]).fails(5, &format!("event {unknown} is not in the store"));
    env.cim(&["events", "append", "order/o1", "Paid", "--parent", unknown]).fails(5, "names no stored event");
    env.cim(&["events", "append", "order/o1", "Paid", "--expect", "0"])
        .fails(4, "retry with --expect 1")
        .fails(4, "expected version 0, the aggregate is at version 1");
    env.cim(&["events", "read", "order/nothing"]).fails(5, "order/nothing has no events");
    env.cim(&["verify", "--aggregate", "order/nothing"]).fails(5, "has no events");
    env.cim(&["objects", "stat", "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy"])
        .fails(5, "is not in the store");
    env.cim(&["objects", "history", "no/such/name"]).fails(5, "no named object");
    env.cim(&["dag", "ancestors", unknown]).fails(5, "is not in the store");
    env.cim(&["export", "-o", "/tmp/never.car", "--aggregate", "order/nothing"]).fails(5, "has no events");
    env.cim(&["import", "/nonexistent.car"]).fails(1, "cannot open /nonexistent.car");
    // Usage errors found by the argument parser exit 2 as well.
    env.cim(&["events", "append"]).fails(2, "required");
    env.cim(&["--namespace", "Bad.NS", "status"]).fails(2, "namespace");

    // Nothing of that was written.
    assert_eq!(env.counts(&env.namespace).0, 1);
    let read = env.cim(&["--json", "events", "read", "order/o1"]).json();
    assert_eq!(read.as_array().unwrap().len(), 1);
    assert_eq!(read[0]["cid"], first.as_str());

    // With --json the error is a JSON object on stdout.
    let run = env.cim(&["--json", "events", "append", "order/o1", "Paid", "--expect", "7"]);
    assert_eq!(run.code, 4);
    let error: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!((error["kind"].as_str(), error["exit_code"].as_u64()), (Some("conflict"), Some(4)));
}

#[tokio::test]
async fn an_unreachable_server_says_what_to_do() {
    let run = crate::common::cim(&["--nats", "nats://127.0.0.1:1", "status"]);
    run.fails(1, "cannot connect to NATS at nats://127.0.0.1:1").fails(1, "--nats");
}
