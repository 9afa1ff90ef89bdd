//! `cim pipelines` against real `cim-pipeline` processes: a refused
//! definition (exit 2, every error with its position, nothing stored); a
//! pipeline defined from a file whose outputs link their inputs (`cim dag
//! descendants`); a manual run (`cim pipelines run`); pause and resume
//! without losing inputs; a stage failing on some inputs, dead-lettered
//! with the reason and replayed after a fix; and
//! an engine killed with -9 and restarted, which carries on from where it
//! stopped, with exactly one output per input.

use std::time::{Duration, Instant};

use cim_test_support::{ServiceProcess, service_config, workspace_binary};
use serde_json::Value;

use crate::common::Env;

/// A nats-server and one engine on the namespace `cim` uses.
struct Engine {
    env: Env,
    process: ServiceProcess,
    dir: tempfile::TempDir,
}

impl Engine {
    async fn start() -> Self {
        let env = Env::new().await;
        // As cim-provision.service does: the engine only attaches.
        env.cim(&["provision"]).ok();
        let dir = tempfile::tempdir().unwrap();
        let extra = format!(
            "[store]\nnamespace = \"{}\"\n[pipeline]\nack_wait_secs = 3\nmax_attempts = 3\nretry_first_delay_ms = 50\nretry_max_delay_ms = 200\n",
            env.namespace
        );
        let config = service_config(&env.server, "p1", &extra).replace("[runtime]\n", "[runtime]\nregister = false\n");
        let process =
            ServiceProcess::start(workspace_binary("cim-pipeline", "cim-pipeline"), dir.path(), "engine", &config);
        let engine = Self { env, process, dir };
        engine.wait_up();
        engine
    }

    /// Waits until the engine answers `cim pipelines list`.
    fn wait_up(&self) {
        self.wait("the engine to answer", || self.env.cim(&["pipelines", "--timeout", "1", "list"]).code == 0);
    }

    fn wait(&self, what: &str, mut done: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(120);
        while !done() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}; engine log:\n{}", self.process.log());
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn json(&self, args: &[&str]) -> Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        self.env.cim(&all).json()
    }

    fn file(&self, name: &str, text: &str) -> String {
        let path = self.dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.to_str().unwrap().to_owned()
    }

    /// Appends `reading/r-<n>` `Measured {n, value: n % 7}` for each `n`; their CIDs.
    fn readings(&self, ns: impl Iterator<Item = u64>) -> Vec<(u64, String)> {
        ns.map(|n| {
            let payload = format!(r#"{{"n": {n}, "value": {}}}"#, n % 7);
            (n, self.env.append(&format!("reading/r-{n}"), "Measured", &payload, &[]))
        })
        .collect()
    }

    /// The outputs (`derived/…` events) among an event's descendants.
    fn outputs_of(&self, input: &str) -> Vec<Value> {
        let walk = self.json(&["dag", "descendants", input, "--depth", "1"]);
        walk["descendants"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["aggregate"].as_str().unwrap().starts_with("derived/"))
            .cloned()
            .collect()
    }

    fn status(&self, name: &str) -> Value {
        self.json(&["pipelines", "status", name])["pipelines"][0].clone()
    }
}

/// The example pipeline: doubles every reading whose value is not 0.
const DOUBLER: &str = include_str!("../../cim-pipeline/pipelines/doubler.toml");

/// Checks each input has exactly the outputs it should: one if its value is
/// not 0, with its `n` and its input as the only parent; none otherwise.
fn check_outputs(engine: &Engine, inputs: &[(u64, String)]) {
    for (n, cid) in inputs {
        let outputs = engine.outputs_of(cid);
        let expected = usize::from(n % 7 != 0);
        assert_eq!(outputs.len(), expected, "input {n} has {} outputs: {outputs:?}", outputs.len());
        if let Some(output) = outputs.first() {
            let event = engine.json(&["events", "show", output["cid"].as_str().unwrap()]);
            assert_eq!(event["event_type"], "Doubled", "{event}");
            assert_eq!(event["parents"], serde_json::json!([cid]), "{event}");
            assert_eq!(event["payload"]["n"].as_u64(), Some(*n), "{event}");
            assert_eq!(event["payload"]["double"].as_u64(), Some(2 * (n % 7)), "{event}");
        }
    }
}

#[tokio::test]
async fn pipelines_through_the_cli() {
    let mut engine = Engine::start().await;
    let cim = |args: &[&str]| engine.env.cim(args);

    // A refused definition: exit 2, every error with where it is; nothing stored.
    let bad = engine.file(
        "bad.toml",
        &DOUBLER
            .replace("name = \"doubler\"", "name = \"Bad Name\"")
            .replace(".payload.value != 0", ".payload.value !=\\n   "),
    );
    let refused = cim(&["pipelines", "put", &bad]);
    refused.fails(2, "the definition is refused (2 errors); nothing was stored");
    assert!(refused.stderr.contains("\n  name: "), "{}", refused.stderr);
    assert!(refused.stderr.contains("\n  stages[0].jq (line 2, column "), "{}", refused.stderr);
    cim(&["pipelines", "validate", &bad]).fails(2, "stages[0].jq (line 2");
    let unknown = engine.file("unknown.toml", &DOUBLER.replace("type = \"transform\"", "type = \"transmogrify\""));
    cim(&["pipelines", "put", &unknown]).fails(2, "unknown variant `transmogrify`");
    assert!(cim(&["pipelines", "list"]).ok().stdout.contains("no pipelines"));
    cim(&["events", "read", "pipeline/doubler"]).fails(5, "no events");

    // Defined from a file; validated first; events flow through it.
    let good = engine.file("doubler.toml", DOUBLER);
    assert!(cim(&["pipelines", "validate", &good]).ok().stdout.contains("is a valid definition of pipeline doubler"));
    let put = engine.json(&["pipelines", "put", &good]);
    assert_eq!((put["name"].as_str(), put["version"].as_u64()), (Some("doubler"), Some(1)), "{put}");
    assert_eq!(engine.json(&["pipelines", "put", &good])["unchanged"], true);
    let listed = cim(&["pipelines", "list"]);
    assert!(listed.ok().stdout.contains("doubler") && listed.stdout.contains("running"), "{}", listed.stdout);
    let inputs = engine.readings(1..=14);
    engine.wait("12 outputs", || engine.status("doubler")["completed"].as_u64() == Some(12));
    check_outputs(&engine, &inputs);

    // A manual run: its input is journaled as an event, its output links it.
    let run = engine.json(&["pipelines", "run", "doubler", r#"{"n": 100, "value": 4}"#]);
    let input_cid = run["input_cid"].as_str().unwrap().to_owned();
    assert_eq!(run["outputs"].as_array().map(Vec::len), Some(1), "{run}");
    let outputs = engine.outputs_of(&input_cid);
    assert_eq!(outputs.len(), 1, "{outputs:?}");
    let output = engine.json(&["events", "show", outputs[0]["cid"].as_str().unwrap()]);
    assert_eq!(output["parents"], serde_json::json!([input_cid]), "{output}");
    assert_eq!(output["payload"]["double"].as_u64(), Some(8), "{output}");

    // Paused, inputs wait; resumed, they flow, none lost.
    assert!(cim(&["pipelines", "pause", "doubler"]).ok().stdout.contains("paused doubler"));
    cim(&["pipelines", "pause", "doubler"]).fails(4, "already paused");
    let waiting = engine.readings(15..=21);
    engine.wait("7 inputs waiting", || engine.status("doubler")["consumer"]["lag"].as_u64() == Some(7));
    assert!(waiting.iter().all(|(_, cid)| engine.outputs_of(cid).is_empty()), "a paused pipeline ran");
    assert!(cim(&["pipelines", "resume", "doubler"]).ok().stdout.contains("resumed doubler"));
    engine.wait("18 outputs", || engine.status("doubler")["completed"].as_u64() == Some(18));
    check_outputs(&engine, &waiting);

    // Killed with -9 and restarted: it carries on, exactly once.
    engine.process.kill9();
    let during = engine.readings(22..=35);
    engine.process.spawn();
    engine.wait_up();
    engine.wait("every output after the restart", || {
        let status = engine.status("doubler");
        status["consumer"]["lag"].as_u64() == Some(0) && status["consumer"]["in_flight"].as_u64() == Some(0)
    });
    check_outputs(&engine, &during);
    // Nothing done before the kill was done again: the restarted engine ran
    // the 12 new matching inputs only.
    let status = engine.status("doubler");
    assert_eq!((status["completed"].as_u64(), status["duplicates"].as_u64()), (Some(12), Some(0)), "{status}");
    assert_eq!(engine.outputs_of(&inputs[0].1).len(), 1);

    // A stage that fails on some inputs: retried, dead-lettered with the reason, replayed after a fix.
    let fragile = r#"
name = "fragile"
[trigger]
aggregate_types = ["thing"]
[[stages]]
name = "check"
type = "transform"
jq = 'if .payload.n % 3 == 0 then error("no multiples of three: \(.payload.n)") else {n: .payload.n} end'
[[sinks]]
type = "append"
aggregate_type = "derived"
event_type = "Checked"
"#;
    let fragile_file = engine.file("fragile.toml", fragile);
    engine.json(&["pipelines", "put", &fragile_file]);
    let things: Vec<(u64, String)> = (1..=6)
        .map(|n| (n, engine.env.append(&format!("thing/t-{n}"), "Made", &format!(r#"{{"n": {n}}}"#), &[])))
        .collect();
    engine.wait("2 dead letters", || {
        engine.json(&["pipelines", "dead-letters", "--pipeline", "fragile"])["dead_letters"].as_array().unwrap().len()
            == 2
    });
    engine.wait("4 completed", || engine.status("fragile")["completed"].as_u64() == Some(4));
    let letters = cim(&["pipelines", "dead-letters"]);
    for (n, cid) in &things {
        let listed = letters.stdout.contains(cid.as_str());
        assert_eq!(listed, n % 3 == 0, "input {n}:\n{}", letters.stdout);
        assert_eq!(engine.outputs_of(cid).len(), usize::from(n % 3 != 0), "input {n}");
    }
    assert!(letters.stdout.contains("3 attempts") && letters.stdout.contains("check: "), "{}", letters.stdout);
    assert!(letters.stdout.contains("no multiples of three: 6"), "{}", letters.stdout);
    // Before the fix, they fail again (exit 3) and stay.
    let again = cim(&["pipelines", "replay-dead-letters", "--pipeline", "fragile"]);
    assert_eq!(again.code, 3, "{}{}", again.stdout, again.stderr);
    assert!(again.stdout.contains("0 replayed, 2 failed again"), "{}", again.stdout);
    let fixed = engine.file(
        "fixed.toml",
        &fragile.replace(r#"error("no multiples of three: \(.payload.n)")"#, "{n: .payload.n, fixed: true}"),
    );
    assert_eq!(engine.json(&["pipelines", "put", &fixed])["version"], 2);
    let replayed = cim(&["pipelines", "replay-dead-letters"]);
    assert!(replayed.ok().stdout.contains("2 replayed, 0 failed again"), "{}", replayed.stdout);
    assert!(cim(&["pipelines", "dead-letters"]).ok().stdout.contains("no dead letters"));
    for (n, cid) in &things {
        let outputs = engine.outputs_of(cid);
        assert_eq!(outputs.len(), 1, "input {n}: {outputs:?}");
        let event = engine.json(&["events", "show", outputs[0]["cid"].as_str().unwrap()]);
        assert_eq!(event["payload"]["fixed"].as_bool(), (n % 3 == 0).then_some(true), "{event}");
    }
    let status = cim(&["pipelines", "status"]);
    assert!(status.ok().stdout.contains("fragile v2 running"), "{}", status.stdout);
    // The definitions are events: two versions of fragile.
    let history = engine.json(&["events", "read", "pipeline/fragile"]);
    assert_eq!(history.as_array().unwrap().len(), 2, "{history}");
}
