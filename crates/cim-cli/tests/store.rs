//! Events, the DAG, objects and verification through the binary.

use crate::common::{Env, history};

#[tokio::test]
async fn events_append_read_show_and_replay() {
    let env = Env::new().await;
    let dir = tempfile::tempdir().unwrap();
    let cids = history(&env, dir.path());

    let read = env.cim(&["--json", "events", "read", "order/o1"]).json();
    let read = read.as_array().unwrap();
    assert_eq!(read.len(), 2);
    assert_eq!(read[0]["cid"], cids[1].as_str());
    assert_eq!(read[1]["prev"], cids[1].as_str());
    assert_eq!(read[1]["parents"][0], cids[2].as_str());
    assert_eq!(read[0]["payload"]["total"], 42);

    let shown = env.cim(&["--json", "events", "show", &cids[0]]).json();
    assert_eq!((shown["aggregate"].as_str(), shown["version"].as_u64()), (Some("customer/c1"), Some(1)));
    let text = env.cim(&["events", "show", &cids[0]]);
    assert!(text.stdout.contains("customer/c1 v1") && text.stdout.contains("Ada"), "{}", text.stdout);

    // The log in stream order, as JSON lines.
    let log = env.cim(&["--json", "events", "log"]);
    assert_eq!(log.code, 0, "{}", log.stderr);
    let logged: Vec<String> = log
        .stdout
        .lines()
        .map(|line| serde_json::from_str::<serde_json::Value>(line).unwrap()["cid"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(logged, cids);
    let tail = env.cim(&["--json", "events", "tail", "--all", "--limit", "2"]);
    assert_eq!(tail.stdout.lines().count(), 2, "{}", tail.stderr);

    // An expected version that matches appends.
    let next = env.cim(&["--json", "events", "append", "order/o1", "Shipped", "--expect", "2"]).json();
    assert_eq!(next["version"], 3);
}

#[tokio::test]
async fn dag_walks_print_text_json_and_graphviz() {
    let env = Env::new().await;
    let dir = tempfile::tempdir().unwrap();
    let cids = history(&env, dir.path());

    let path = env.cim(&["--json", "dag", "path", &cids[0], &cids[3]]).json();
    let path: Vec<&str> = path["path"].as_array().unwrap().iter().map(|e| e["cid"].as_str().unwrap()).collect();
    assert_eq!(path.first(), Some(&cids[0].as_str()));
    assert_eq!(path.last(), Some(&cids[3].as_str()));

    let ancestors = env.cim(&["--json", "dag", "ancestors", &cids[3]]).json();
    assert_eq!(ancestors["ancestors"].as_array().unwrap().len(), 3);
    let descendants = env.cim(&["dag", "descendants", &cids[0], "--depth", "1"]);
    assert!(descendants.stdout.contains(&cids[1]) && !descendants.stdout.contains(&cids[3]), "{}", descendants.stdout);

    let dot = env.cim(&["dag", "ancestors", &cids[3], "--format", "dot"]);
    assert!(dot.stdout.starts_with("digraph cim {"), "{}", dot.stdout);
    assert!(dot.stdout.contains("style=dashed"), "parent links are dashed: {}", dot.stdout);
    assert_eq!(dot.stdout.matches("label=").count(), 4);

    // No path backwards in time.
    env.cim(&["dag", "path", &cids[3], &cids[0]]).fails(5, "no causal path");
}

#[tokio::test]
async fn objects_put_get_names_and_verify() {
    let env = Env::new().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a.bin");
    let content: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(&file, &content).unwrap();
    let put = env.cim(&["--json", "objects", "put", file.to_str().unwrap(), "--name", "blobs/a"]).json();
    let cid = put["cid"].as_str().unwrap().to_owned();
    assert!(cid.starts_with("bafkrei"), "raw CID: {cid}");
    assert_eq!(put["named"]["version"], 1);
    std::fs::write(&file, b"second version").unwrap();
    env.cim(&["objects", "put", file.to_str().unwrap(), "--name", "blobs/a"]).ok();

    let out = dir.path().join("back.bin");
    env.cim(&["objects", "get", &cid, "-o", out.to_str().unwrap()]).ok();
    assert_eq!(std::fs::read(&out).unwrap(), content);
    let stdout = env.cim(&["objects", "get", "--name", "blobs/a"]);
    assert_eq!(stdout.stdout, "second version");
    let v1 = env.cim(&["objects", "get", "--name", "blobs/a", "--version", "1", "-o", out.to_str().unwrap()]);
    assert_eq!(v1.code, 0, "{}", v1.stderr);

    let history = env.cim(&["--json", "objects", "history", "blobs/a"]).json();
    let versions: Vec<u64> = history.as_array().unwrap().iter().map(|r| r["version"].as_u64().unwrap()).collect();
    assert_eq!(versions, [2, 1]);
    assert_eq!(history[1]["content"], cid.as_str());
    assert_eq!(history[0]["prev"], history[1]["record"]);
    let stat = env.cim(&["--json", "objects", "stat", &cid]).json();
    assert_eq!(stat["size"], 300_000);
    let list = env.cim(&["--json", "objects", "list"]).json();
    assert_eq!(list.as_array().unwrap().len(), 4, "two contents and two version records");

    let verify = env.cim(&["--json", "verify"]).json();
    assert_eq!(
        (verify["ok"].as_bool(), verify["objects"].as_u64(), verify["names"].as_u64()),
        (Some(true), Some(4), Some(1))
    );
    let status = env.cim(&["--json", "status"]).json();
    assert_eq!(status["objects"]["objects"], 4);
    assert_eq!(status["namespace"], env.namespace.as_str());
}
