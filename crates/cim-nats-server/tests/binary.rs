//! Locating the binary and checking its version.

use cim_nats_server::{Binary, Error};

use crate::{binary, fake_binary};

#[test]
fn the_pinned_binary_is_new_enough() {
    let binary = binary();
    let numbers: Vec<u32> = binary.version().split(['.', '-']).take(2).map(|n| n.parse().unwrap()).collect();
    assert!((numbers[0], numbers[1]) >= (2, 12), "{}", binary.version());
}

#[test]
fn an_old_server_is_refused_with_advice() {
    let dir = tempfile::tempdir().unwrap();
    let error = Binary::at(fake_binary(dir.path(), "nats-server: v2.9.10")).unwrap_err();
    assert!(matches!(error, Error::TooOld { ref found, .. } if found == "2.9.10"), "{error:?}");
    let message = error.to_string();
    assert!(message.contains("2.12 or newer") && message.contains("cargo xtask tools"), "{message}");
}

#[test]
fn a_missing_binary_says_how_to_install_one() {
    let error = Binary::at("/nonexistent/nats-server").unwrap_err();
    assert!(matches!(error, Error::Missing { .. }), "{error:?}");
    assert!(error.to_string().contains("CIM_NATS_SERVER"), "{error}");
}

#[test]
fn garbage_version_output_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let error = Binary::at(fake_binary(dir.path(), "hello")).unwrap_err();
    assert!(matches!(error, Error::UnknownVersion { ref output, .. } if output.contains("hello")), "{error:?}");
}
