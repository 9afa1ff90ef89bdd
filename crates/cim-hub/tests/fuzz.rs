//! schemathesis (PyPI, in `.tools/venv`) reads the served OpenAPI document
//! and fuzzes a live hub: no 5xx, every status, content type, header and
//! body as documented. A short run here (CI): a few examples per operation,
//! the examples and fuzzing phases, a time budget of its own; and a bound
//! only a hang reaches, after which schemathesis is killed and the test
//! fails with its output. `CIM_HUB_FUZZ_EXAMPLES`, `CIM_HUB_FUZZ_SECS` and
//! `CIM_HUB_FUZZ_PHASES` make it longer.

use std::time::Duration;

use cim_hub_api::Scope;

use crate::support::Stack;

#[tokio::test]
async fn schemathesis_finds_no_server_error_and_no_mismatch() {
    let st = cim_test_support::tools_dir().join("venv/bin/st");
    if !st.exists() {
        assert!(std::env::var_os("CI").is_none(), "CI must install schemathesis (cargo xtask tools)");
        eprintln!("skipped: no schemathesis in .tools/venv (cargo xtask tools)");
        return;
    }
    let stack = Stack::start_with(true, "").await;
    let admin = stack.token(Scope::Admin).await;
    let examples = std::env::var("CIM_HUB_FUZZ_EXAMPLES").unwrap_or_else(|_| "5".to_owned());
    let seconds: u64 = std::env::var("CIM_HUB_FUZZ_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(30);
    let phases = std::env::var("CIM_HUB_FUZZ_PHASES").unwrap_or_else(|_| "examples,coverage,fuzzing".to_owned());
    let report = stack.dir.path().join("schemathesis");
    let run = tokio::process::Command::new(&st)
        .arg("run")
        .arg(stack.url("/v1/openapi.json"))
        .args(["--checks", "not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance"])
        .args(["--max-examples", &examples, "--max-time", &seconds.to_string(), "--phases", &phases])
        .args(["--workers", "1", "--seed", "1", "--no-color", "--no-shrink"])
        .args(["--request-timeout", "10", "--generation-database", "none", "--exclude-path", "/v1/feed"])
        .arg("--report-dir")
        .arg(&report)
        .arg("-H")
        .arg(format!("Authorization: Bearer {admin}"))
        .env("SCHEMATHESIS_HOOKS", "")
        .current_dir(stack.dir.path()) // its .schemathesis/ cache goes with the temp dir
        .kill_on_drop(true)
        .output();
    // A bound only a hang reaches: the time budget and then some.
    let hang = Duration::from_secs(seconds * 4 + 300);
    let output = match tokio::time::timeout(hang, run).await {
        Ok(output) => output.expect("run schemathesis"),
        Err(_) => panic!(
            "schemathesis did not end within {}s (budget {seconds}s); report dir {}; hub log (tail):\n{}",
            hang.as_secs(),
            report.display(),
            tail(&stack.hub.log())
        ),
    };
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    eprintln!("{}", text.lines().rev().take(40).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join("\n"));
    assert!(
        output.status.success(),
        "schemathesis found problems:\n{text}\nhub log (tail):\n{}",
        tail(&stack.hub.log())
    );
}

fn tail(log: &str) -> String {
    log.lines().rev().take(60).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join("\n")
}
