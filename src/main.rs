//! The `hammer` binary: parse the command line, open `-j`'s sink, run the
//! command its table entry names, and print its failure with its exit
//! status.

use std::ffi::OsString;
use std::process::ExitCode;

use hammer_mirror::cli;
use hammer_mirror::commands::{self, Failure};
use hammer_mirror::events::Events;

fn main() -> ExitCode {
    let argv: Vec<OsString> = std::env::args_os().collect();
    let inv = match cli::parse(argv.clone()) {
        Ok(inv) => inv,
        Err(e) => {
            // The refusal is told to the sink the command line names, if any.
            let events = cli::events_of_refused(argv)
                .and_then(|(dest, word)| Events::open(&dest, &word).ok())
                .unwrap_or_default();
            return end(&events, Err(e.into()));
        }
    };
    let events = match commands::events(&inv) {
        Ok(events) => events,
        Err(f) => {
            // No sink to end.
            f.render(&Events::default());
            return ExitCode::from(f.status);
        }
    };
    end(&events, commands::run(&inv, &events))
}

/// Tells the outcome, ends `-j`'s events with its exit status, and
/// returns it.
fn end(events: &Events, outcome: Result<(), Failure>) -> ExitCode {
    let status = match outcome {
        Ok(()) => 0,
        Err(f) => {
            f.render(events);
            f.status
        }
    };
    events.end(status);
    ExitCode::from(status)
}
