//! A command's failure as it is told: the original's message lines (or
//! this tool's), the exit status, and what `-j`'s `error` events say of
//! it; printed on stderr here and nowhere else.

use std::io::{self, Write};

use crate::cli::CliError;
use crate::events::Events;

/// What a failure prints on stderr, and the exit status it ends with.
#[derive(Debug)]
pub struct Failure {
    pub lines: Vec<Line>,
    pub status: u8,
    /// What `-j`'s `error` events say of it.
    pub class: &'static str,
    pub errno: Option<i32>,
}

/// One message: the original's `errx` (`hammer: msg`), its verbatim
/// `say`, or a usage text.
#[derive(Debug, PartialEq, Eq)]
pub enum Line {
    Errx(String),
    Say(String),
    Usage(&'static str),
}

/// The fix for a path that is on no HAMMER filesystem and in no store.
pub(super) const NO_STORE_HINT: &str = "hint: that path is on no HAMMER filesystem and in no store: \
     make a store with `hammer store-create <dir>` and PFSes in it with `hammer pfs-master <dir>/<name>`";

impl Failure {
    pub fn errx(m: impl std::fmt::Display) -> Self {
        Failure::of(Line::Errx(m.to_string()))
    }

    pub fn of(line: Line) -> Self {
        Failure {
            lines: vec![line],
            ..Failure::status(1)
        }
    }

    /// Nothing (more) to tell: the command told it already.
    pub fn status(status: u8) -> Self {
        Failure {
            lines: Vec::new(),
            status,
            class: "error",
            errno: None,
        }
    }

    /// This failure with exit status `status`.
    pub fn exit(self, status: u8) -> Self {
        Failure { status, ..self }
    }

    pub fn class(self, class: &'static str, errno: Option<i32>) -> Self {
        Failure {
            class,
            errno,
            ..self
        }
    }

    /// Prints the lines on stderr and tells them to `-j`.
    pub fn render(&self, events: &Events) {
        if events.on() {
            for line in &self.lines {
                match line {
                    Line::Errx(m) => events.error(self.class, &format!("hammer: {m}"), self.errno),
                    Line::Say(m) => events.error(self.class, m, self.errno),
                    Line::Usage(u) => events.error(self.class, u, self.errno),
                }
            }
        }
        let mut err = io::stderr().lock();
        for line in &self.lines {
            let _ = match line {
                Line::Errx(m) => writeln!(err, "hammer: {m}"),
                Line::Say(m) => writeln!(err, "{m}"),
                Line::Usage(u) => err.write_all(u.as_bytes()),
            };
            if let Line::Errx(m) | Line::Say(m) = line {
                // ENOTTY is what every HAMMER ioctl gives a path on another
                // filesystem that is in no store either; the hint names the fix.
                if m.ends_with(": Inappropriate ioctl for device") {
                    let _ = writeln!(err, "{NO_STORE_HINT}");
                }
            }
        }
    }
}

/// A refused command line: getopt's message and the usage, or the usage a
/// command's arguments call for, or the restriction's message.
impl From<CliError> for Failure {
    fn from(e: CliError) -> Self {
        match e {
            CliError::IllegalOption(_) | CliError::MissingArgument(_) => Failure {
                lines: vec![Line::Errx(e.to_string()), Line::Usage(crate::cli::USAGE)],
                ..Failure::status(1)
            },
            CliError::NoCommand => Failure::of(Line::Usage(crate::cli::USAGE)),
            CliError::Usage(u) => Failure::of(Line::Usage(u.text)).exit(u.status),
            CliError::UnknownCommand { .. } => Failure {
                lines: vec![Line::Errx(e.to_string()), Line::Usage(crate::cli::USAGE)],
                ..Failure::status(1)
            },
            CliError::OptionAfterCommand { usage, .. } => Failure {
                lines: vec![Line::Errx(e.to_string()), Line::Usage(usage.text)],
                ..Failure::status(usage.status)
            },
            CliError::BadValue { .. } | CliError::Restricted(_) | CliError::NoDryRun(_) => {
                Failure::errx(e)
            }
        }
        .class("usage", None)
    }
}
