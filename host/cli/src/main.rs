//! The `oubli` command line: parse, call the rights service
//! (`oubli-core`), render. [`cli`] holds the commands, [`render`] the human
//! output, [`demo`] the demo; `main` only runs and maps errors to exit codes.
//! No logic of the product lives here.

/// `print!` that ends the process quietly when stdout is closed early
/// (`oubli locate … | head`) instead of panicking as `print!` does.
macro_rules! out {
    ($($arg:tt)*) => { $crate::emit(format_args!($($arg)*)) };
}

/// `println!` with the same behaviour as [`out!`].
macro_rules! outln {
    () => { $crate::emit(format_args!("\n")) };
    ($($arg:tt)*) => { $crate::emit(format_args!("{}\n", format_args!($($arg)*))) };
}

mod args;
mod bulk;
mod cli;
#[cfg(feature = "demo")]
mod demo;
mod kit;
mod render;
mod requests;
mod retention;
#[cfg(feature = "demo")]
mod sandbox;
mod service;

use std::process::ExitCode;

/// Write to stdout; a closed pipe ends the process with the status a shell
/// gives to a SIGPIPE death (141), any other failure is reported once.
fn emit(args: std::fmt::Arguments) {
    use std::io::Write;
    if let Err(e) = std::io::stdout().lock().write_fmt(args) {
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            eprintln!("oubli: cannot write to standard output: {e}");
        }
        std::process::exit(141);
    }
}

fn main() -> ExitCode {
    // A panic message can quote the data being processed: print where, not
    // what. Panics the identifier parser is known for are caught and silent.
    std::panic::set_hook(Box::new(|info| {
        if oubli_core::identifiers::in_isolated_parse() {
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
    match cli::run() {
        Ok(code) => code,
        Err(e) => {
            // An error can quote what a connector said: shown neutralised.
            eprintln!(
                "oubli: {}",
                oubli_model::for_display(&format!("{e:#}"), 2000)
            );
            exit_status(&e)
        }
    }
}

/// The one place an error becomes an exit status: 2 when the command
/// cannot do what was asked (bad input, a request's state, policy, nothing
/// by that name), 3 when something it needs is unavailable (try again
/// later), 70 for a bug. 1 is for commands that ran and report a failure.
fn exit_status(e: &anyhow::Error) -> ExitCode {
    use oubli_core::rights::engine::{ErrorKind, RequestError};
    let kind = e
        .chain()
        .find_map(|c| c.downcast_ref::<RequestError>())
        .map(RequestError::kind);
    ExitCode::from(match kind {
        Some(ErrorKind::Unavailable) => 3,
        Some(ErrorKind::Internal) => 70,
        _ => 2,
    })
}
