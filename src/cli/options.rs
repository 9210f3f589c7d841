//! The library's option structs, as the global options make them: each
//! command gets what it uses, typed, and nothing of the command line.

use std::io::IsTerminal;

use super::GlobalOpts;
use crate::bridge::export::ExportOptions;
use crate::bridge::import::ImportOptions;
use crate::events::Events;
use crate::mirror::copy::CopyOptions;
use crate::mirror::read::ReadOptions;
use crate::mirror::remote::SshOptions;
use crate::mirror::write::WriteOptions;
use crate::mount::MountOptions;
use crate::pfs_cmd::{DestroyOptions, COUNTDOWN_STEP};
use crate::progress::Progress;

impl GlobalOpts {
    /// The progress line of `command`: on a terminal only, and neither
    /// under `-q` nor under `-v` (which draws the original's progress).
    fn progress(&self, command: &'static str, unit: &'static str) -> Progress {
        let shown = self.quiet == 0 && self.verbose == 0 && std::io::stderr().is_terminal();
        Progress::stderr(command, unit, shown)
    }

    /// mirror-read's, or mirror-read-stream's with `stream`.
    pub fn read_options(&self, stream: bool, begin_tid: Option<u64>) -> ReadOptions {
        let command = if stream {
            "mirror-read-stream"
        } else {
            "mirror-read"
        };
        ReadOptions {
            two_way: self.two_way,
            stream,
            verbose: self.verbose,
            quiet: self.quiet > 0,
            tty: std::io::stderr().is_terminal(),
            delay: self.delay,
            timeout: self.timeout,
            splitup: self.splitup,
            no_bulk: self.no_bulk,
            bandwidth: self.bandwidth,
            cycle_file: self.cycle_file.clone(),
            scoreboard: self.scoreboard.clone(),
            begin_tid,
            end_tid: None,
            progress: self.progress(command, "records"),
            events: Events::default(),
        }
    }

    /// mirror-write's; `input_len` is the stream's length when standard
    /// input is a file.
    pub fn write_options(&self, input_len: Option<u64>) -> WriteOptions {
        WriteOptions {
            two_way: self.two_way,
            yes: self.yes,
            verbose: self.verbose,
            quiet: self.quiet > 0,
            input_len,
            progress: self.progress("mirror-write", "records"),
            events: Events::default(),
        }
    }

    /// mirror-copy's (mirror-stream's with `stream`): both sides' and
    /// ssh's. The sides share one progress line.
    pub fn copy_options(&self, stream: bool) -> CopyOptions {
        let command = if stream {
            "mirror-stream"
        } else {
            "mirror-copy"
        };
        let progress = self.progress(command, "records");
        CopyOptions {
            read: ReadOptions {
                progress: progress.clone(),
                ..self.read_options(false, None)
            },
            write: WriteOptions {
                progress,
                ..self.write_options(None)
            },
            compress: self.compress,
            stall: self.stall,
            ssh: SshOptions {
                compress: self.ssh_compress,
                port: self.ssh_port.clone(),
                splitup_text: self.splitup_text.clone(),
            },
        }
    }

    /// `-d` skips the countdown.
    pub fn destroy_options(&self) -> DestroyOptions {
        DestroyOptions {
            countdown_step: (self.debug == 0).then_some(COUNTDOWN_STEP),
        }
    }

    pub fn import_options(&self) -> ImportOptions {
        ImportOptions {
            progress: self.progress("import", "files"),
            events: Events::default(),
        }
    }

    pub fn export_options(&self) -> ExportOptions {
        ExportOptions {
            force: self.force,
            progress: self.progress("export", "files"),
            events: Events::default(),
        }
    }

    pub fn mount_options(&self) -> MountOptions {
        MountOptions {
            show_history: self.show_history,
        }
    }
}
