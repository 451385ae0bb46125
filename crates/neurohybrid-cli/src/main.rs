//! The `neurohybrid` binary; everything lives in the library (`neurohybrid_cli::run`).

use std::process::ExitCode;

fn main() -> ExitCode {
    match neurohybrid_cli::run(std::env::args_os()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line, so scripts and people see the reason without a backtrace.
            eprintln!("neurohybrid: error: {}", e.one_line());
            ExitCode::FAILURE
        }
    }
}
