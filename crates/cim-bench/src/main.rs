//! `cim-bench`: see the library's documentation and `docs/benchmarks.md`.

fn main() -> std::process::ExitCode {
    cim_bench::main()
}
