//! Interoperability with an independent IPLD implementation: `@ipld/car`,
//! `@ipld/dag-cbor` and `multiformats` on Node, from `.tools/node`.

use std::collections::BTreeSet;

use crate::common::{Env, history, js};

#[tokio::test]
async fn cim_cars_load_in_js_with_the_same_cids_and_js_cars_import() {
    let env = Env::new().await;
    let dir = tempfile::tempdir().unwrap();
    let cids = history(&env, dir.path());
    let car = dir.path().join("all.car");
    let exported = env.cim(&["--json", "export", "-o", car.to_str().unwrap()]).json();

    let read = js(&[&car], "read");
    assert_eq!(read["roots"], serde_json::json!([exported["root"]]));
    let blocks = read["blocks"].as_array().unwrap();
    assert_eq!(blocks.len(), 7);
    for block in blocks {
        assert_eq!(block["hash_ok"], true, "JS finds a bad hash: {block}");
        assert_eq!(block["canonical"], true, "JS re-encodes differently: {block}");
    }
    let js_events: BTreeSet<&str> = read["events"].as_array().unwrap().iter().map(|c| c.as_str().unwrap()).collect();
    assert_eq!(js_events, cids.iter().map(String::as_str).collect());
    assert_eq!(read["manifest_format"], "cim-export-v1");
    let heads = read["manifest_heads"].as_array().unwrap();
    assert!(
        heads.iter().any(|h| h["aggregate"] == "order/o1" && h["version"] == 2 && h["head"] == cids[3].as_str()),
        "{heads:?}"
    );
    // Walking links from the root reaches every block, and no link dangles.
    assert_eq!(read["reached"], 7);
    assert_eq!(read["unreached"], serde_json::json!([]));
    assert_eq!(read["dangling"], serde_json::json!([]));

    // A CAR written by @ipld/car (blocks reversed, its own manifest) imports.
    let repacked = dir.path().join("js.car");
    let written = js(&[&car, &repacked], "repack");
    assert_ne!(written["root"], exported["root"]);
    let imported = env.cim_in("fromjs", &["--json", "import", repacked.to_str().unwrap()]).json();
    assert_eq!((imported["events_written"].as_u64(), imported["objects_written"].as_u64()), (Some(4), Some(2)));
    assert_eq!(imported["root"], written["root"]);
    let read = env.cim_in("fromjs", &["--json", "events", "read", "order/o1"]).json();
    assert_eq!(read[1]["cid"], cids[3].as_str());
    assert_eq!(env.cim_in("fromjs", &["--json", "verify"]).json()["ok"], true);
}
