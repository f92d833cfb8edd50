//! The `oubli` command line. Parses arguments, runs the command from
//! [`cli`], and maps errors to exit codes; the work lives in the library.

mod cli;

use std::process::ExitCode;

fn main() -> ExitCode {
    cli::init_logging();
    match cli::run() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("oubli: {e:#}");
            ExitCode::from(2)
        }
    }
}
