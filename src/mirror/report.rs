//! What mirror-read tells the person running it, fed by the driver's
//! events: its messages (`-q` keeps only warnings and errors), the `-v`
//! progress (drawn in place on a terminal as the original draws it, one
//! line per event in a file or pipe), and the `-e` scoreboard.

use std::io::Write;
use std::time::{Duration, Instant};

use super::scoreboard::{Field, Scoreboard, MESSAGE, PROGRESS, STATUS};
use crate::progress::Progress;

/// Off a terminal, scan progress lines are written at most this often.
const LINE_INTERVAL: Duration = Duration::from_secs(1);

pub struct Report<'a> {
    diag: &'a mut dyn Write,
    board: Option<Scoreboard>,
    /// Kept clear of the messages.
    progress: Progress,
    verbose: u32,
    quiet: bool,
    /// `diag` is a terminal: progress is redrawn in place.
    tty: bool,
    /// The terminal's cursor is on a line that progress drawing left open.
    sameline: bool,
    /// When the last scan line was written off a terminal, and what it said.
    last_scan: Option<(Instant, String)>,
}

/// How the messages of a run are shown.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Verbosity {
    /// `-v` count.
    pub verbose: u32,
    /// `-q`: nothing but warnings and errors.
    pub quiet: bool,
    /// stderr is a terminal.
    pub tty: bool,
}

impl<'a> Report<'a> {
    pub fn new(
        diag: &'a mut dyn Write,
        v: Verbosity,
        board: Option<Scoreboard>,
        progress: Progress,
    ) -> Self {
        Report {
            diag,
            board,
            progress,
            verbose: if v.quiet { 0 } else { v.verbose },
            quiet: v.quiet,
            tty: v.tty,
            sameline: false,
            last_scan: None,
        }
    }

    /// An informational line (hidden by `-q`).
    pub fn say(&mut self, msg: &str) {
        if !self.quiet {
            self.warn(msg);
        }
    }

    /// A warning or an error, shown whatever `-q` says.
    pub fn warn(&mut self, msg: &str) {
        let diag = &mut self.diag;
        self.progress.suspend(|| {
            let _ = writeln!(diag, "{msg}");
        });
    }

    /// A line for the scoreboard's message field only.
    pub fn board_message(&mut self, msg: &str) {
        self.board(MESSAGE, msg);
    }

    /// A message for the scoreboard and stderr (an error or a stop).
    pub fn incident(&mut self, msg: &str) {
        self.board(MESSAGE, msg);
        self.warn(msg);
    }

    /// A batch starts (not for the later chunks of one transfer).
    pub fn running(&mut self) {
        self.board(STATUS, "Running");
        if self.verbose == 1 {
            if self.tty {
                let lead = if self.sameline { "\r" } else { "\n" };
                self.draw(&format!("{lead}Running  \u{8}\u{8}"));
            } else {
                self.warn("Running");
            }
        }
        self.sameline = true;
    }

    /// The next chunk of a cut transfer follows at once.
    pub fn more_chunks(&mut self) {
        if self.verbose == 1 && self.tty {
            self.draw(" (bulk incremental)");
        }
    }

    /// A prescan is about to print its summary for the first time.
    pub fn before_prescan(&mut self) {
        if self.verbose > 0 && self.tty {
            self.draw("\n");
        }
        self.sameline = false;
    }

    /// The prescan counted another `-S` worth of bytes.
    pub fn prescan_chunk(&mut self, n: u32) {
        if self.verbose > 1 && self.tty {
            self.draw(".");
        }
        self.board(PROGRESS, &format!("Prescan chunk {n}"));
    }

    /// The prescan is done (its summary follows).
    pub fn after_prescan(&mut self) {
        if self.verbose > 1 && self.tty {
            self.draw("\n");
        }
    }

    /// A MIRROR_READ call returned: `progress` is the scan position and
    /// bytes so far; `last` when the scan is complete.
    pub fn scan(&mut self, progress: &str, batches: bool, last: bool) {
        if !batches {
            return;
        }
        if self.verbose == 0 {
            self.board(PROGRESS, progress);
        } else if self.tty {
            self.draw(&format!("\rscan {progress}"));
            self.sameline = false;
        } else {
            let now = Instant::now();
            let (due, news) = match &self.last_scan {
                None => (true, true),
                Some((t, said)) => (now.duration_since(*t) >= LINE_INTERVAL, said != progress),
            };
            if news && (due || last) {
                self.last_scan = Some((now, progress.to_string()));
                self.warn(&format!("scan {progress}"));
            }
        }
    }

    /// A batch's records are out; before its SYNC.
    pub fn batch_sent(&mut self, batches: bool) {
        if batches && self.verbose > 0 && !self.sameline {
            if self.tty {
                self.draw("\n");
            }
            self.sameline = true;
        }
    }

    /// Streaming: waiting for the sync point to move.
    pub fn waiting(&mut self) {
        if self.verbose == 0 {
            self.board(STATUS, "Waiting");
        } else if self.tty {
            self.draw(" W");
        } else {
            self.warn("Waiting");
        }
    }

    /// Streaming: new data came sooner than `-i` allows; sleeping.
    pub fn delaying(&mut self) {
        if self.verbose > 0 && self.tty {
            self.draw("\u{8}D");
        }
    }

    /// Streaming: the wait is over.
    pub fn woke(&mut self) {
        if self.verbose > 0 && self.tty {
            self.draw("\u{8} ");
        }
    }

    /// The run is over: the scoreboard shows how it ended instead of a
    /// stale `Running`.
    pub fn finished(&mut self, ok: bool, interrupted: bool, bytes: u64, synced_to: Option<u64>) {
        let upto = synced_to.map_or(String::new(), |t| format!(", synced up to 0x{t:016x}"));
        self.board(PROGRESS, &format!("{bytes} bytes sent{upto}"));
        let status = match (ok, interrupted) {
            (false, _) => "Failed",
            (true, true) => "Stopped by -t",
            (true, false) => "Finished",
        };
        self.board(STATUS, status);
    }

    fn draw(&mut self, s: &str) {
        let _ = self.diag.write_all(s.as_bytes());
        let _ = self.diag.flush();
    }

    fn board(&mut self, field: Field, text: &str) {
        if let Some(sb) = self.board.as_mut() {
            let _ = sb.update(field, text);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(v: Verbosity, events: impl FnOnce(&mut Report<'_>)) -> String {
        let mut out = Vec::new();
        let mut r = Report::new(&mut out, v, None, Progress::default());
        events(&mut r);
        String::from_utf8(out).unwrap()
    }

    fn stream_events(r: &mut Report<'_>) {
        r.running();
        r.say("Mirror-read: Mirror 0000000100000001 to 0000000100000020");
        r.scan("obj=1 tids=1:20 100", true, false);
        r.scan("obj=2 tids=1:20 200", true, true);
        r.batch_sent(true);
        r.waiting();
        r.delaying();
        r.woke();
        r.running();
        r.warn("Warning: something");
    }

    #[test]
    fn a_terminal_gets_the_original_drawing() {
        let v = Verbosity {
            verbose: 1,
            quiet: false,
            tty: true,
        };
        assert_eq!(
            run(v, stream_events),
            "\nRunning  \u{8}\u{8}Mirror-read: Mirror 0000000100000001 to 0000000100000020\n\
             \rscan obj=1 tids=1:20 100\rscan obj=2 tids=1:20 200\n W\u{8}D\u{8} \
             \rRunning  \u{8}\u{8}Warning: something\n"
        );
    }

    #[test]
    fn a_file_gets_one_line_per_event_and_no_control_characters() {
        let v = Verbosity {
            verbose: 1,
            quiet: false,
            tty: false,
        };
        let out = run(v, stream_events);
        assert_eq!(
            out,
            "Running\nMirror-read: Mirror 0000000100000001 to 0000000100000020\n\
             scan obj=1 tids=1:20 100\nscan obj=2 tids=1:20 200\nWaiting\nRunning\n\
             Warning: something\n"
        );
        assert!(!out.contains(['\r', '\u{8}']));
    }

    #[test]
    fn quiet_keeps_only_warnings_and_errors() {
        let v = Verbosity {
            verbose: 2,
            quiet: true,
            tty: true,
        };
        let out = run(v, |r| {
            stream_events(r);
            r.incident("Mirror-read /x interrupted by timer at 0000000100000002");
        });
        assert_eq!(
            out,
            "Warning: something\nMirror-read /x interrupted by timer at 0000000100000002\n"
        );
    }
}
