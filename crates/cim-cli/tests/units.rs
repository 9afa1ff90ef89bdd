//! `cim units` against real cim-registry and cim-ius processes: a unit's
//! lifecycle, its history and chain, past states, traversal and lists;
//! invalid commands get the right exit codes and write nothing.

use serde_json::{Value, json};

use crate::services::{MAX_UNIT_BYTES, Services, png};

fn cids(history: &Value) -> Vec<String> {
    history["events"].as_array().unwrap().iter().map(|e| e["cid"].as_str().unwrap().to_owned()).collect()
}

#[tokio::test]
async fn a_unit_lifecycle_through_the_cli() {
    let s = Services::start().await;
    let dir = tempfile::tempdir().unwrap();

    // Create: content inline and from a file, metadata, tags.
    let first = s.json(&[
        "units",
        "create",
        "text-document",
        r#"{"text": "hello"}"#,
        "--id",
        "doc-1",
        "--metadata",
        r#"{"title": "doc-1", "language": "en"}"#,
        "--tag",
        "draft",
    ]);
    assert_eq!((first["id"].as_str(), first["version"].as_u64()), (Some("doc-1"), Some(1)));
    let content = dir.path().join("doc-2.json");
    std::fs::write(&content, r#"{"text": "cited", "format": "markdown"}"#).unwrap();
    let other = s.json(&[
        "units",
        "create",
        "text-document",
        "--content-file",
        content.to_str().unwrap(),
        "--id",
        "doc-2",
        "--metadata",
        r#"{"title": "doc-2"}"#,
        "--tag",
        "draft",
    ]);

    // Update by JSON Patch, relate (caused by doc-2's creation), attach a PNG, retire.
    let patch = r#"[{"op": "replace", "path": "/content/text", "value": "hello, world"},
                   {"op": "add", "path": "/metadata/authors", "value": ["ada"]}]"#;
    let patched = s.json(&["units", "update", "doc-1", "--patch", patch, "--expect", "1"]);
    assert_eq!(patched["version"], 2);
    let cause = other["event_cid"].as_str().unwrap();
    let related = s.json(&["units", "relate", "doc-1", "cites", "doc-2", "--expect", "2", "--caused-by", cause]);
    let image = png(3, 2);
    let figure = dir.path().join("figure.png");
    std::fs::write(&figure, &image).unwrap();
    let attached = s.json(&["units", "attach", "doc-1", figure.to_str().unwrap(), "--role", "figure", "--expect", "3"]);
    assert_eq!(
        (attached["object"]["media_type"].as_str(), attached["object"]["width"].as_u64()),
        (Some("image/png"), Some(3)),
        "the service read the media type and pixels: {attached}"
    );
    assert_eq!(
        (attached["object"]["height"].as_u64(), attached["object"]["size"].as_u64()),
        (Some(2), Some(image.len() as u64))
    );
    let object = attached["object"]["cid"]["/"].as_str().unwrap().to_owned();
    let text = s.cim(&["units", "retire", "doc-1", "--reason", "superseded", "--expect", "4"]);
    assert!(text.ok().stdout.contains("unit doc-1 is now at version 5"), "{}", text.stdout);

    // The attached object is the file, in the store cim uses.
    let back = dir.path().join("back.png");
    s.cim(&["objects", "get", &object, "-o", back.to_str().unwrap()]).ok();
    assert_eq!(std::fs::read(&back).unwrap(), image);

    // History: each event with its CID, the state CID it made, its causes.
    let history = s.json(&["units", "history", "doc-1"]);
    let types: Vec<&str> =
        history["events"].as_array().unwrap().iter().map(|e| e["event_type"].as_str().unwrap()).collect();
    assert_eq!(types, ["UnitCreated", "UnitUpdated", "UnitRelated", "ObjectAttached", "UnitRetired"]);
    let event_cids = cids(&history);
    assert_eq!(event_cids[1], patched["event_cid"].as_str().unwrap());
    assert_eq!(event_cids[2], related["event_cid"].as_str().unwrap());
    assert_eq!(event_cids[3], attached["committed"]["event_cid"].as_str().unwrap());
    assert_eq!(history["events"][2]["parents"], json!([cause]));
    assert_eq!(history["events"][1]["payload"]["state"], patched["state_cid"]);
    let text = s.cim(&["units", "history", "doc-1"]);
    for cid in &event_cids {
        assert!(text.stdout.contains(cid.as_str()), "text history lacks {cid}:\n{}", text.stdout);
    }
    assert!(text.stdout.contains(&format!("caused by {cause}")), "{}", text.stdout);
    // The same events are the store's aggregate unit/doc-1.
    let read = s.json(&["events", "read", "unit/doc-1"]);
    let read: Vec<&str> = read.as_array().unwrap().iter().map(|e| e["cid"].as_str().unwrap()).collect();
    assert_eq!(read, event_cids);

    // The chain verifies, through the store and through the service.
    let verified = s.json(&["verify", "--aggregate", "unit/doc-1"]);
    assert_eq!((verified["ok"].as_bool(), verified["events"].as_u64()), (Some(true), Some(5)));
    let verified = s.json(&["units", "verify", "doc-1"]);
    assert_eq!((verified["ok"].as_bool(), verified["verified"].as_u64()), (Some(true), Some(5)));

    // Past states: by version, by state CID, by time.
    let current = s.json(&["units", "show", "doc-1"]);
    assert_eq!((current["state"]["retired"].as_bool(), current["state"]["version"].as_u64()), (Some(true), Some(5)));
    let at_two = s.json(&["units", "show", "doc-1", "--version", "2"]);
    assert_eq!(at_two["state_cid"], patched["state_cid"]);
    assert_eq!(at_two["state"]["content"], json!({"text": "hello, world"}));
    assert_eq!(at_two["state"]["metadata"]["authors"], json!(["ada"]));
    assert_eq!((&at_two["state"]["relations"], at_two["state"]["retired"].as_bool()), (&json!([]), Some(false)));
    assert_eq!(s.json(&["units", "show", "--state", patched["state_cid"].as_str().unwrap()]), at_two);
    let when = history["events"][1]["timestamp"].as_str().unwrap();
    assert_eq!(s.json(&["units", "show", "doc-1", "--at", when])["state"]["version"], 2);
    let text = s.cim(&["units", "show", "doc-1"]);
    assert!(text.ok().stdout.contains("retired") && text.stdout.contains("cites → doc-2"), "{}", text.stdout);
    assert!(text.stdout.contains("figure: ") && text.stdout.contains("image/png"), "{}", text.stdout);

    // Traversal finds the related unit, both ways.
    let reached = s.json(&["units", "related", "doc-1", "--depth", "2", "--relation", "cites"]);
    assert_eq!(reached["units"].as_array().unwrap().len(), 1);
    assert_eq!(
        (reached["units"][0]["id"].as_str(), reached["units"][0]["relation"].as_str()),
        (Some("doc-2"), Some("cites"))
    );
    let back = s.json(&["units", "related", "doc-2", "--direction", "in"]);
    assert_eq!(back["units"][0]["id"], "doc-1");
    assert_eq!(s.json(&["units", "related", "doc-1", "--relation", "mentions"])["units"], json!([]));

    // Lists: retired units left out unless asked for; pages; metadata filters.
    let live = s.json(&["units", "list", "--kind", "text-document"]);
    assert_eq!(
        live["units"].as_array().unwrap().iter().map(|u| u["id"].as_str().unwrap()).collect::<Vec<_>>(),
        ["doc-2"]
    );
    let page = s.json(&["units", "list", "--tag", "draft", "--include-retired", "--limit", "1"]);
    assert_eq!((page["units"].as_array().unwrap().len(), page["next"].as_str()), (1, Some("doc-1")));
    let all = s.json(&["units", "list", "--tag", "draft", "--include-retired", "--limit", "1", "--all"]);
    assert_eq!((all["units"].as_array().unwrap().len(), &all["next"]), (2, &Value::Null));
    let titled = s.json(&["units", "list", "--meta", "title=doc-2"]);
    assert_eq!(titled["units"][0]["id"], "doc-2");

    // Kinds: the built-in ones, and one registered at run time.
    assert!(s.json(&["units", "kinds"])["kinds"].as_array().unwrap().iter().any(|k| k["kind"] == "pdf"));
    let schema = dir.path().join("recipe.json");
    std::fs::write(&schema, r#"{"type": "object", "required": ["steps"], "properties": {"steps": {"type": "array"}}}"#)
        .unwrap();
    s.json(&["units", "register-kind", "recipe", schema.to_str().unwrap()]);
    let recipe = s.json(&["units", "create", "recipe", r#"{"steps": []}"#]);
    assert_eq!(recipe["version"], 1, "a new id is made up: {recipe}");
}

#[tokio::test]
async fn invalid_unit_commands_get_the_right_exit_codes_and_write_nothing() {
    let s = Services::start().await;
    let dir = tempfile::tempdir().unwrap();
    s.json(&["units", "create", "text-document", r#"{"text": "v1"}"#, "--id", "doc"]);
    let before = s.counts();

    // Schema violation: exit 2, the message names the JSON pointer; --json keeps the details.
    s.cim(&["units", "create", "text-document", r#"{"text": 42}"#, "--id", "bad"])
        .fails(2, "\"/content/text\"")
        .fails(2, "cim registry schemas show unit:text-document");
    let run = s.cim(&["--json", "units", "create", "text-document", r#"{"text": 42}"#, "--id", "bad"]);
    assert_eq!(run.code, 2);
    let error: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(error["service_error"]["code"], "schema_violation");
    assert_eq!(error["service_error"]["details"]["violations"][0]["pointer"], "/content/text");
    s.cim(&["units", "create", "text-document", r#"{"text": "x"}"#, "--metadata", r#"{"titel": "x"}"#])
        .fails(2, "metadata of unit");
    s.cim(&["units", "update", "doc", "--patch", r#"[{"op": "remove", "path": "/content/text"}]"#])
        .fails(2, "schema_violation");

    // Bad JSON never reaches the service.
    s.cim(&["units", "create", "text-document", r#"{"text": "#]).fails(2, "the content is not valid JSON");
    s.cim(&["units", "update", "doc", "--patch", "[{"]).fails(2, "the patch is not valid JSON");
    let broken = dir.path().join("broken.json");
    std::fs::write(&broken, "{").unwrap();
    s.cim(&["units", "create", "text-document", "--content-file", broken.to_str().unwrap()])
        .fails(2, "broken.json is not valid JSON");
    s.cim(&["units", "tag", "doc", "x", "--caused-by", "not-a-cid"]).fails(2, "is not a CID");
    s.cim(&["units", "show", "doc", "--at", "yesterday"]).fails(2, "RFC 3339");

    // A patch that does not apply.
    s.cim(&[
        "units",
        "update",
        "doc",
        "--patch",
        r#"[{"op": "replace", "path": "/content/missing/deep", "value": 1}]"#,
    ])
    .fails(2, "patch_failed");

    // Unknown unit, kind, state.
    s.cim(&["units", "tag", "nobody", "x"]).fails(5, "unit nobody does not exist");
    s.cim(&["units", "show", "nobody"]).fails(5, "does not exist").fails(5, "cim units list");
    s.cim(&["units", "history", "nobody"]).fails(5, "does not exist");
    s.cim(&["units", "create", "no-such-kind", "{}"]).fails(5, "unknown kind").fails(5, "cim units kinds");
    s.cim(&["units", "show", "--state", "bafyreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy"])
        .fails(5, "no unit state has CID");
    let file = dir.path().join("a.png");
    std::fs::write(&file, png(1, 1)).unwrap();
    s.cim(&["units", "attach", "nobody", file.to_str().unwrap()]).fails(5, "unit nobody does not exist");

    // Stale version: exit 4, naming the version to retry with.
    s.cim(&["units", "tag", "doc", "x", "--expect", "0"])
        .fails(4, "retry with --expect 1")
        .fails(4, "unit doc is at version 1, not 0");
    s.cim(&["units", "create", "text-document", r#"{"text": "again"}"#, "--id", "doc"]).fails(4, "choose another --id");

    // Oversized payload.
    let big = json!({ "text": "x".repeat(MAX_UNIT_BYTES + 1) }).to_string();
    s.cim(&["units", "create", "text-document", &big, "--id", "big"])
        .fails(2, "payload_too_large")
        .fails(2, "cim units attach");

    // Nothing of that was written: no event, no object.
    assert_eq!(s.counts(), before);
    assert_eq!(s.json(&["units", "show", "doc"])["state"]["version"], 1);
}
