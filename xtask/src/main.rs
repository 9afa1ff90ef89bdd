//! Repository automation, run as `cargo xtask <task>` (an alias in
//! `.cargo/config.toml`).

mod bench;
mod cmd;
mod demo;
mod nix;
mod storage_demo;
mod test;
mod tools;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(about = "CIM repository automation")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Debug, Subcommand)]
enum Task {
    /// Install the pinned external tools (nats-server, IPLD libraries for
    /// cross-checks) into .tools/; does nothing when they are up to date.
    Tools,
    /// Install the tools, then run every Rust test, the doc tests and the Nix
    /// checks.
    Test,
    /// Only the Nix checks: parse every .nix file, evaluate the modules with
    /// nixpkgs' lib (when .tools/nixpkgs.lib exists), check the rendered
    /// configurations with the real binaries and run them live.
    Nix {
        /// Rewrite nix/eval/rendered/ from the evaluation instead of failing
        /// when it differs.
        #[arg(long)]
        update_rendered: bool,
    },
    /// Install the tools, build `cim` and run `cim demo` on an embedded
    /// nats-server with a fresh data directory under .cim/.
    Demo,
    /// Install the tools and run the benchmark harness in release mode:
    /// `cargo run --release -p cim-bench -- ARGS` (`all` when ARGS are only
    /// flags; `--quick` for tiny sizes). See docs/benchmarks.md.
    Bench {
        /// Workloads and flags for cim-bench (`--help` lists them).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<std::ffi::OsString>,
    },
    /// Install the tools and run the Storage Manager end to end in release
    /// mode (1M events, 1,000 objects to 64 MiB: archive, scrub, delete hot,
    /// restore, verify; raw S3 beside it). `--quick` for tiny sizes. See
    /// docs/benchmarks.md.
    StorageDemo {
        /// Flags for storage-demo (`--help` lists them).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<std::ffi::OsString>,
    },
}

fn main() -> ExitCode {
    let root = workspace_root();
    let result = match Cli::parse().task {
        Task::Tools => tools::install(&root),
        Task::Test => test::run_all(&root),
        Task::Nix { update_rendered } => {
            tools::install(&root).and_then(|()| nix::checks(&root, nix::Options { update_rendered }))
        }
        Task::Demo => demo::run_demo(&root),
        Task::Bench { args } => bench::run_bench(&root, &args),
        Task::StorageDemo { args } => storage_demo::run_demo(&root, &args),
    };
    // Not `main() -> Result`: that prints a backtrace whenever RUST_BACKTRACE is set.
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask lives in the workspace root").to_path_buf()
}
