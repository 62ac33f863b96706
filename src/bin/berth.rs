//! `berth`: the command-line client of berthd.

fn main() -> std::process::ExitCode {
    berth_cli::main()
}
