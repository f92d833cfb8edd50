//! The `oubli` command line. Parses arguments, runs the command from
//! [`cli`], and maps errors to exit codes; the work lives in the library.

mod cli;
mod demo;

use std::process::ExitCode;

fn main() -> ExitCode {
    // A panic message can quote the data being processed: print where, not
    // what. Panics the identifier parser is known for are caught and silent.
    std::panic::set_hook(Box::new(|info| {
        if oubli::subject::in_isolated_parse() {
            return;
        }
        let at = info
            .location()
            .map(|l| format!("{}:{}", l.file(), l.line()))
            .unwrap_or_else(|| "unknown location".into());
        eprintln!(
            "oubli: internal error at {at} (details withheld: they may contain personal data)"
        );
    }));
    cli::init_logging();
    match cli::run() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("oubli: {e:#}");
            ExitCode::from(2)
        }
    }
}
