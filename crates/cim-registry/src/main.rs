//! `cim-registry`: the Component Registry service.

use std::process::ExitCode;

use anyhow::Context;
use cim_registry::{Registry, RegistrySettings};

fn main() -> ExitCode {
    cim_runtime::cli::main::<RegistrySettings, _, _>(
        "cim-registry",
        "CIM Component Registry: live components, discovery, schemas and validation",
        |runtime| async move {
            let registry = Registry::open(&runtime).await.context("opening the registry's bucket and event store")?;
            runtime.serve(registry.definition()).await.context("serving")?;
            Ok(())
        },
    )
}
