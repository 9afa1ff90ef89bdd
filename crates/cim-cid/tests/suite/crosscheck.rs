//! Runs `tests/crosscheck/check_vectors.py`, which recomputes every golden
//! vector with independent IPLD code (PyPI `dag-cbor` and `multiformats`),
//! using the Python of the workspace's tool venv.

use std::path::PathBuf;
use std::process::Command;

#[test]
fn golden_vectors_agree_with_an_independent_ipld_implementation() {
    let crate_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let root = crate_dir.join("../..");
    let python = root.join(".tools/venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run `cargo xtask tools` to create the tool venv (with the PyPI packages dag-cbor and multiformats)",
        python.display()
    );
    let output = Command::new(&python)
        .arg(crate_dir.join("tests/crosscheck/check_vectors.py"))
        .arg(crate_dir.join("tests/vectors/golden.json"))
        .output()
        .expect("run check_vectors.py");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the independent implementation disagrees with the golden vectors ({}); if it cannot import dag_cbor or multiformats, \
         run `cargo xtask tools`\n--- stdout\n{stdout}--- stderr\n{stderr}",
        output.status
    );
    assert!(stdout.contains(" agree, 0 disagree"), "unexpected output from check_vectors.py:\n{stdout}");
}
