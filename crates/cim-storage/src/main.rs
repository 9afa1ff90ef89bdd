//! `cim-storage`: the Storage Manager service.

use std::process::ExitCode;

use anyhow::Context;
use cim_storage::{Manager, StorageSettings};

fn main() -> ExitCode {
    // object_store signs and speaks TLS through rustls with ring, the same
    // provider async-nats uses: install it before anything connects.
    let _ = rustls::crypto::ring::default_provider().install_default();
    cim_runtime::cli::main::<StorageSettings, _, _>(
        "cim-storage",
        "CIM Storage Manager: seals events and copies objects to warm and cold S3 tiers, verified; scrub, retention, garbage collection, reads that fall through, restore",
        |runtime| async move {
            let manager = Manager::start(&runtime).await.context("opening the stores and the tiers")?;
            let loops = manager.spawn_loops(runtime.shutdown_token());
            let served = runtime.serve(manager.definition()).await.context("serving");
            for task in loops {
                task.abort();
            }
            served?;
            Ok(())
        },
    )
}
