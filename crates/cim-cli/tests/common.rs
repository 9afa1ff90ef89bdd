//! Running the real `cim` binary, and the independent JS IPLD implementation.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use cim_test_support::{NatsServer, node_modules, unique_name};
use serde_json::Value;

/// What one run of `cim` did.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    fn from(output: Output) -> Self {
        Self {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// Asserts success and returns stdout parsed as JSON.
    #[track_caller]
    pub fn json(&self) -> Value {
        assert_eq!(self.code, 0, "cim failed:\n{}\n{}", self.stdout, self.stderr);
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", self.stdout))
    }

    /// Asserts success.
    #[track_caller]
    pub fn ok(&self) -> &Self {
        assert_eq!(self.code, 0, "cim failed:\n{}\n{}", self.stdout, self.stderr);
        self
    }

    /// Asserts the exit code and that stderr mentions `text`.
    #[track_caller]
    pub fn fails(&self, code: i32, text: &str) -> &Self {
        assert_eq!(self.code, code, "expected exit {code}:\nstdout: {}\nstderr: {}", self.stdout, self.stderr);
        assert!(self.stderr.contains(text), "stderr lacks {text:?}:\n{}", self.stderr);
        self
    }
}

/// `cim` with `args` and no other settings (an isolated environment).
pub fn cim(args: &[&str]) -> Run {
    cim_without(&[], args)
}

/// [`cim`], also without the environment variables `unset`.
pub fn cim_without(unset: &[&str], args: &[&str]) -> Run {
    let mut command = Command::new(env!("CARGO_BIN_EXE_cim"));
    for name in unset {
        command.env_remove(name);
    }
    let output = command
        .args(args)
        .env_remove("CIM_NATS_URL")
        .env_remove("CIM_CONFIG")
        .env_remove("CIM_DATA_DIR")
        .env_remove("CIM_NAMESPACE")
        .env_remove("RUST_LOG")
        .output()
        .expect("run cim");
    Run::from(output)
}

/// A fresh nats-server and a namespace of its own.
#[derive(Debug)]
pub struct Env {
    pub server: NatsServer,
    pub namespace: String,
}

impl Env {
    pub async fn new() -> Self {
        Self { server: NatsServer::start().await, namespace: unique_name("t").replace('_', "-") }
    }

    /// `cim --nats <url> --namespace <ns> args…`.
    pub fn cim(&self, args: &[&str]) -> Run {
        self.cim_in(&self.namespace, args)
    }

    /// The same server, another namespace.
    pub fn cim_in(&self, namespace: &str, args: &[&str]) -> Run {
        let url = self.server.url();
        let mut all = vec!["--nats", url.as_str(), "--namespace", namespace];
        all.extend_from_slice(args);
        cim(&all)
    }

    /// Appends an event and returns its CID.
    pub fn append(&self, aggregate: &str, event_type: &str, payload: &str, parents: &[&str]) -> String {
        let mut args = vec!["--json", "events", "append", aggregate, event_type, payload];
        for parent in parents {
            args.extend(["--parent", parent]);
        }
        self.cim(&args).json()["cid"].as_str().unwrap().to_owned()
    }

    /// Events, objects and stream messages in a namespace, per `cim status`.
    pub fn counts(&self, namespace: &str) -> (u64, u64, Vec<(String, u64)>) {
        let status = self.cim_in(namespace, &["--json", "status"]).json();
        let streams = status["streams"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| (s["name"].as_str().unwrap().to_owned(), s["messages"].as_u64().unwrap()))
            .collect();
        (status["events"]["events"].as_u64().unwrap(), status["objects"]["objects"].as_u64().unwrap(), streams)
    }
}

/// Runs `tests/js/car_check.mjs` with Node, from `.tools/node` so that its
/// ESM imports resolve; returns its JSON output.
pub fn js(args: &[&Path], mode: &str) -> Value {
    let tools = node_modules().parent().unwrap().to_path_buf();
    let script: PathBuf = tools.join(format!("{}.mjs", unique_name("cim_cli_car_check")));
    std::fs::copy(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/js/car_check.mjs"), &script).unwrap();
    let output = Command::new("node").arg(&script).arg(mode).args(args).current_dir(&tools).output().expect("run node");
    let _ = std::fs::remove_file(&script);
    assert!(output.status.success(), "node failed: {}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).unwrap()
}

/// Appends a small causal history over three aggregates and stores an
/// object the last event links; returns the event CIDs in order.
pub fn history(env: &Env, dir: &Path) -> Vec<String> {
    let file = dir.join("invoice.txt");
    std::fs::write(&file, "invoice 1\n").unwrap();
    let object = env.cim(&["--json", "objects", "put", file.to_str().unwrap(), "--name", "docs/invoice"]).json();
    let object = object["cid"].as_str().unwrap().to_owned();
    let a = env.append("customer/c1", "Registered", r#"{"name":"Ada"}"#, &[]);
    let b = env.append("order/o1", "Placed", r#"{"total":42}"#, &[&a]);
    let c = env.append("payment/p1", "Received", r#"{"amount":42}"#, &[&b]);
    let d = env.append("order/o1", "Paid", &format!(r#"{{"invoice":{{"/":"{object}"}}}}"#), &[&c]);
    vec![a, b, c, d]
}
