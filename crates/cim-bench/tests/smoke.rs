//! Runs every workload at tiny sizes through the real binary, child
//! processes included, and checks the JSON summary's shape. No timing is
//! asserted: this catches a broken harness, not a slow store.

use std::process::Command;

#[test]
fn every_workload_runs_at_tiny_sizes() {
    // Workload 8 runs the engine's binary from beside cim-bench's.
    let engine = cim_test_support::workspace_binary("cim-pipeline", "cim-pipeline");
    assert_eq!(engine.parent(), std::path::Path::new(env!("CARGO_BIN_EXE_cim-bench")).parent());
    let output = Command::new(env!("CARGO_BIN_EXE_cim-bench"))
        .args(["all", "--quick", "--json", "--events", "300", "--durable-events", "400", "--rebuild-events", "1000"])
        .args([
            "--object-bytes",
            "1000000",
            "--small-objects",
            "3",
            "--latency-events",
            "20",
            "--contended-events",
            "80",
            "--pipeline-events",
            "300",
        ])
        .output()
        .expect("run cim-bench");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "cim-bench failed ({}):\n{stderr}", output.status);
    let summary: serde_json::Value = serde_json::from_slice(&output.stdout).expect("a JSON summary on stdout");
    let workloads = summary["workloads"].as_array().expect("workloads");
    let names: Vec<&str> = workloads.iter().map(|w| w["workload"].as_str().unwrap_or_default()).collect();
    assert_eq!(names, ["append", "latency", "durable", "contended", "rebuild", "objects", "cid", "pipeline"]);
    for workload in workloads {
        let rows = workload["rows"].as_array().expect("rows");
        assert!(rows.len() >= 2, "{workload}");
        for row in rows {
            assert!(row["ops"].as_u64().is_some_and(|ops| ops > 0), "{row}");
        }
        assert!(!workload["checks"].as_array().expect("checks").is_empty(), "{workload}");
    }
    assert!(summary["machine"]["nats_server"].as_str().is_some_and(|v| !v.is_empty()));
    // The tables went to stderr.
    assert!(stderr.contains("== 5. rebuild"), "{stderr}");
}
