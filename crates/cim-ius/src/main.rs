//! `cim-ius`: the Information Unit System service.

use std::process::ExitCode;

use anyhow::Context;
use cim_ius::{Ius, IusSettings};

fn main() -> ExitCode {
    cim_runtime::cli::main::<IusSettings, _, _>(
        "cim-ius",
        "CIM Information Unit System: immutable, schema-validated units of information",
        |runtime| async move {
            let ius = Ius::open(&runtime).await.context("starting the Information Unit System")?;
            runtime.serve(ius.definition()).await.context("serving")?;
            Ok(())
        },
    )
}
