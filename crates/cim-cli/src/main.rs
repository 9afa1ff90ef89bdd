//! `cim`: see the library crate `cim_cli` and `docs/cli.md`.

fn main() -> std::process::ExitCode {
    cim_cli::main()
}
