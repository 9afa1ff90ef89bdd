//! `cim server`: the embedded nats-server in the foreground, so newcomers can
//! keep one running and every other `cim` command connects to it.

use clap::Args;
use serde_json::json;
use tokio::signal::unix::{SignalKind, signal};

use crate::cli::GlobalArgs;
use crate::embedded::{EmbeddedServer, lock_for_server};
use crate::exit::Exit;
use crate::output::Output;
use crate::settings::{Settings, Target};

/// Arguments of `cim server`.
#[derive(Debug, Args)]
pub struct ServerArgs {
    /// Client port [default: a free port, announced on start].
    #[arg(long)]
    port: Option<u16>,
}

/// Runs the server until Ctrl-C or SIGTERM, then stops it gracefully.
pub async fn run(global: &GlobalArgs, args: ServerArgs, out: &Output) -> anyhow::Result<Exit> {
    let settings = Settings::resolve(global)?;
    if let Target::Remote { url, .. } = &settings.target {
        out.note(format!("note: ignoring the configured NATS URL {url}: `cim server` runs the embedded server"));
    }
    let data_dir = settings.data_dir()?;
    let lock = lock_for_server(data_dir)?;
    let mut server = EmbeddedServer::start(data_dir, settings.nats_server.as_deref(), lock, args.port, None).await?;
    server.advertise()?;
    let running = server.running();
    out.emit(&json!({ "event": "started", "server": running, "log": server.log_file() }), || {
        format!(
            "cim server: nats-server with JetStream at {} (data: {}, log: {})\n\
             Other cim commands using this data directory connect to it. Press Ctrl-C to stop.",
            running.url,
            data_dir.display(),
            server.log_file().display()
        )
    });
    let mut terminate = signal(SignalKind::terminate())?;
    let mut check = tokio::time::interval(std::time::Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            _ = terminate.recv() => break,
            _ = check.tick() => {
                if !server.is_running() {
                    anyhow::bail!("nats-server exited unexpectedly; see {}", server.log_file().display());
                }
            }
        }
    }
    out.note("stopping nats-server …");
    server.stop().await?;
    out.emit(&json!({ "event": "stopped" }), || "cim server: stopped".to_owned());
    Ok(Exit::Ok)
}
