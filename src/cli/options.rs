//! The library's option structs, as the global options make them: each
//! command gets what it uses, typed, and nothing of the command line.

use std::io::IsTerminal;

use super::GlobalOpts;
use crate::bridge::export::ExportOptions;
use crate::bridge::import::ImportOptions;
use crate::mirror::copy::CopyOptions;
use crate::mirror::read::ReadOptions;
use crate::mirror::remote::SshOptions;
use crate::mirror::write::WriteOptions;
use crate::pfs_cmd::{DestroyOptions, COUNTDOWN_STEP};

impl GlobalOpts {
    /// mirror-read's, or mirror-read-stream's with `stream`.
    pub fn read_options(&self, stream: bool, begin_tid: Option<u64>) -> ReadOptions {
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
        }
    }

    pub fn write_options(&self) -> WriteOptions {
        WriteOptions {
            two_way: self.two_way,
            yes: self.yes,
            verbose: self.verbose,
            quiet: self.quiet > 0,
        }
    }

    /// mirror-copy's and mirror-stream's: both sides' and ssh's.
    pub fn copy_options(&self) -> CopyOptions {
        CopyOptions {
            read: self.read_options(false, None),
            write: self.write_options(),
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
            quiet: self.quiet > 0,
        }
    }

    pub fn export_options(&self) -> ExportOptions {
        ExportOptions {
            force: self.force,
            quiet: self.quiet > 0,
        }
    }
}
