//! `cim-hub`: the Integration Hub service.

use std::process::ExitCode;

use cim_hub::HubSettings;

fn main() -> ExitCode {
    cim_runtime::cli::main::<HubSettings, _, _>(
        "cim-hub",
        "CIM Integration Hub: HTTP API, webhooks, live feed, MCP server, DAG explorer",
        cim_hub::run,
    )
}
