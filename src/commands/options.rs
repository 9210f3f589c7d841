//! The library's option structs, as a command's context makes them from
//! the global options: each command gets what it uses, typed, with the
//! `-j` events and the progress line it tells, and nothing of the command
//! line.

use std::io::IsTerminal;
use std::path::PathBuf;

use super::pfs::{DestroyOptions, COUNTDOWN_STEP};
use super::Context;
use crate::bridge::exclude::ExcludeOptions;
use crate::bridge::export::ExportOptions;
use crate::bridge::import::ImportOptions;
use crate::mirror::copy::CopyOptions;
use crate::mirror::read::ReadOptions;
use crate::mirror::remote::SshOptions;
use crate::mirror::write::WriteOptions;
use crate::mount::MountOptions;
use crate::progress::Progress;

impl Context<'_> {
    /// The command's progress line, counting `unit`: on a terminal only,
    /// and neither under `-q` nor under `-v` (which draws the original's
    /// progress).
    fn progress(&self, unit: &'static str) -> Progress {
        let o = self.opts;
        let shown = o.quiet == 0 && o.verbose == 0 && std::io::stderr().is_terminal();
        Progress::stderr(self.word, unit, shown)
    }

    /// mirror-read's, or mirror-read-stream's with `stream`.
    pub fn read_options(&self, stream: bool, begin_tid: Option<u64>) -> ReadOptions {
        let o = self.opts;
        ReadOptions {
            two_way: o.two_way,
            stream,
            verbose: o.verbose,
            quiet: o.quiet > 0,
            tty: std::io::stderr().is_terminal(),
            delay: o.delay,
            timeout: o.timeout,
            splitup: o.splitup,
            no_bulk: o.no_bulk,
            bandwidth: o.bandwidth,
            cycle_file: o.cycle_file.clone(),
            scoreboard: o.scoreboard.clone(),
            begin_tid,
            end_tid: None,
            progress: self.progress("records"),
            events: self.events.clone(),
        }
    }

    /// mirror-write's; `input_len` is the stream's length when standard
    /// input is a file.
    pub fn write_options(&self, input_len: Option<u64>) -> WriteOptions {
        let o = self.opts;
        WriteOptions {
            two_way: o.two_way,
            yes: o.yes,
            verbose: o.verbose,
            quiet: o.quiet > 0,
            input_len,
            progress: self.progress("records"),
            events: self.events.clone(),
        }
    }

    /// mirror-copy's (mirror-stream's): both sides' and ssh's. The sides
    /// share one progress line.
    pub fn copy_options(&self) -> CopyOptions {
        let o = self.opts;
        let progress = self.progress("records");
        CopyOptions {
            read: ReadOptions {
                progress: progress.clone(),
                ..self.read_options(false, None)
            },
            write: WriteOptions {
                progress,
                ..self.write_options(None)
            },
            compress: o.compress,
            stall: o.stall,
            ssh: self.ssh_options(),
        }
    }

    /// How a remote side is reached: `-X`, `-p`, and `-S` as typed.
    pub fn ssh_options(&self) -> SshOptions {
        let o = self.opts;
        SshOptions {
            compress: o.ssh_compress,
            port: o.ssh_port.clone(),
            splitup_text: o.splitup_text.clone(),
        }
    }

    /// `-d` skips the countdown.
    pub fn destroy_options(&self) -> DestroyOptions {
        DestroyOptions {
            countdown_step: (self.opts.debug == 0).then_some(COUNTDOWN_STEP),
        }
    }

    pub fn import_options(&self, excludes: &ExcludeOptions) -> ImportOptions {
        ImportOptions {
            progress: self.progress("files"),
            events: self.events.clone(),
            excludes: excludes.clone(),
        }
    }

    pub fn export_options(&self, inside: &[PathBuf]) -> ExportOptions {
        ExportOptions {
            force: self.opts.force,
            progress: self.progress("files"),
            events: self.events.clone(),
            inside: inside.to_vec(),
        }
    }

    /// `-a` lists `@@` in the mount's root.
    pub fn mount_options(&self) -> MountOptions {
        MountOptions {
            show_history: self.opts.show_history,
        }
    }
}
