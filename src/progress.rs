//! The progress line a long command draws on a terminal (indicatif): bytes
//! and items done, rate, and once the total is known, percentage and ETA.
//! Hidden off a terminal, under `-q` and under `-v` (which keeps the
//! original's own drawing), so no stream or message byte changes.

use std::fmt;
use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressFinish, ProgressState, ProgressStyle};

/// How often the line is redrawn while nothing moves (a wait, a prescan),
/// so the rate and ETA decay instead of freezing.
const TICK: Duration = Duration::from_millis(500);

/// A handle on the process's progress line; clones share it. The default
/// shows nothing and costs a branch per call.
#[derive(Clone, Default)]
pub struct Progress {
    line: Option<Line>,
}

#[derive(Clone)]
struct Line {
    bar: ProgressBar,
    /// Records (or files) done, shown beside the bytes.
    items: Arc<AtomicU64>,
    /// What the items are called: "records", "files".
    unit: &'static str,
    /// False on the second side of an in-process copy: the line is drawn
    /// by the other side, this one only keeps its messages clear of it.
    counts: bool,
    /// The line is on the terminal: not before the run's work begins, so
    /// that what comes first (a question about creating a slave) is not
    /// drawn over.
    drawing: Arc<AtomicBool>,
    target: Arc<dyn Fn() -> ProgressDrawTarget + Send + Sync>,
}

impl fmt::Debug for Progress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.line.is_some() {
            "Progress(shown)"
        } else {
            "Progress(hidden)"
        })
    }
}

impl Progress {
    /// A line on stderr headed by `command`, counting `unit`; `shown`
    /// false gives the hidden handle (the caller knows about `-q`, `-v`
    /// and whether stderr is a terminal).
    pub fn stderr(command: &'static str, unit: &'static str, shown: bool) -> Self {
        if !shown {
            return Progress::default();
        }
        Progress::to(Arc::new(ProgressDrawTarget::stderr), command, unit)
    }

    fn to(
        target: Arc<dyn Fn() -> ProgressDrawTarget + Send + Sync>,
        command: &'static str,
        unit: &'static str,
    ) -> Self {
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::hidden())
            .with_prefix(command)
            .with_finish(ProgressFinish::AndClear);
        let line = Line {
            bar,
            items: Arc::new(AtomicU64::new(0)),
            unit,
            counts: true,
            drawing: Arc::new(AtomicBool::new(false)),
            target,
        };
        line.bar.set_style(line.style(false));
        Progress { line: Some(line) }
    }

    /// The same line for a side that must not count (see `Line::counts`).
    pub fn passive(&self) -> Self {
        Progress {
            line: self.line.clone().map(|l| Line { counts: false, ..l }),
        }
    }

    /// Whether `add` counts: callers skip the work of counting items
    /// when it does not.
    pub fn counts(&self) -> bool {
        self.line.as_ref().is_some_and(|l| l.counts)
    }

    /// A new run on the line: nothing done, no total. Draws nothing
    /// until work is done (a slave's creation may still ask a question).
    pub fn start(&self) {
        if let Some(l) = self.counting() {
            if l.drawing.swap(false, Ordering::Relaxed) {
                l.bar.set_draw_target(ProgressDrawTarget::hidden());
            }
            l.items.store(0, Ordering::Relaxed);
            l.bar.reset();
            if l.bar.length().is_some() {
                l.bar.unset_length();
            }
            if !l.bar.message().is_empty() {
                l.bar.set_message("");
            }
            l.bar.set_style(l.style(false));
        }
    }

    /// `more` bytes are still to come after what is done: percentage and
    /// ETA from here on, the rate measured afresh (what came before was a
    /// scan or a wait, not the transfer).
    pub fn expect(&self, more: u64) {
        if let Some(l) = self.counting() {
            l.show();
            l.bar.set_style(l.style(true));
            l.bar.set_length(l.bar.position().saturating_add(more));
            l.bar.reset_eta();
            l.bar.enable_steady_tick(TICK);
        }
    }

    /// The whole run is `total` bytes (known before it starts, or while it
    /// runs from a count made beside it).
    pub fn set_total(&self, total: u64) {
        if let Some(l) = self.counting() {
            l.bar.set_style(l.style(true));
            l.bar.set_length(total.max(l.bar.position()));
        }
    }

    /// `bytes` and `items` more are done.
    pub fn add(&self, bytes: u64, items: u64) {
        if let Some(l) = self.counting() {
            l.show();
            l.items.fetch_add(items, Ordering::Relaxed);
            if l.bar
                .length()
                .is_some_and(|len| l.bar.position() + bytes > len)
            {
                // An estimate fell short: never past 100%.
                l.bar.set_length(l.bar.position() + bytes);
            }
            l.bar.inc(bytes);
        }
    }

    /// `bytes` and `items` are done in all.
    pub fn at(&self, bytes: u64, items: u64) {
        if let Some(l) = self.counting() {
            l.show();
            l.items.store(items, Ordering::Relaxed);
            if l.bar.length().is_some_and(|len| bytes > len) {
                l.bar.set_length(bytes);
            }
            l.bar.set_position(bytes);
        }
    }

    /// A word after the figures ("waiting"), or none.
    pub fn status(&self, s: &'static str) {
        if let Some(l) = self.counting() {
            l.bar.set_message(s);
        }
    }

    /// Runs `f` (which writes to stderr) with the line taken away, then
    /// draws it again below what `f` wrote. `f` must not use the line.
    pub fn suspend<R>(&self, f: impl FnOnce() -> R) -> R {
        match &self.line {
            Some(l) => l.bar.suspend(f),
            None => f(),
        }
    }

    /// The run is over: the line goes away (until the next `start`).
    pub fn finish(&self) {
        if let Some(l) = self.counting() {
            l.bar.finish_and_clear();
        }
    }

    /// `inner` (stderr) with its lines written above the line: whole
    /// lines at once, a partial one (a question) when flushed.
    pub fn above<'a>(&self, inner: &'a mut dyn Write) -> Above<'a> {
        Above {
            progress: self.clone(),
            inner,
            pending: Vec::new(),
        }
    }

    fn counting(&self) -> Option<&Line> {
        self.line.as_ref().filter(|l| l.counts)
    }
}

/// See `Progress::above`.
pub struct Above<'a> {
    progress: Progress,
    inner: &'a mut dyn Write,
    pending: Vec<u8>,
}

impl Above<'_> {
    fn emit(&mut self, upto: usize) -> io::Result<()> {
        let (inner, pending) = (&mut self.inner, &mut self.pending);
        let r = self.progress.suspend(|| {
            inner
                .write_all(&pending[..upto])
                .and_then(|()| inner.flush())
        });
        pending.drain(..upto);
        r
    }
}

impl Write for Above<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.progress.line.is_none() {
            return self.inner.write(buf);
        }
        self.pending.extend_from_slice(buf);
        if let Some(last) = self.pending.iter().rposition(|&b| b == b'\n') {
            self.emit(last + 1)?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.pending.is_empty() {
            return self.inner.flush();
        }
        self.emit(self.pending.len())
    }
}

impl Drop for Above<'_> {
    fn drop(&mut self) {
        let _ = self.flush();
    }
}

impl Line {
    fn show(&self) {
        if !self.drawing.swap(true, Ordering::Relaxed) {
            self.bar.set_draw_target((self.target)());
        }
    }

    fn style(&self, total_known: bool) -> ProgressStyle {
        let template = if total_known {
            "{prefix} {binary_bytes}/{binary_total_bytes} {percent}% {items} \
             {binary_bytes_per_sec} ETA {eta_up} {msg}"
        } else {
            "{prefix} {binary_bytes} {items} {binary_bytes_per_sec} {elapsed_precise} {msg}"
        };
        let items = Arc::clone(&self.items);
        let unit = self.unit;
        ProgressStyle::with_template(template)
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .with_key("items", move |_: &ProgressState, w: &mut dyn fmt::Write| {
                let _ = write!(w, "{} {unit}", items.load(Ordering::Relaxed));
            })
            .with_key("eta_up", |state: &ProgressState, w: &mut dyn fmt::Write| {
                let _ = w.write_str(&eta_up(state.eta()));
            })
    }
}

/// The time left as hh:mm:ss, rounded up: indicatif's own rounds down, so
/// the end always came later than it said (a second short, a fifth of
/// what is left at the 90% mark of a 40 s copy).
fn eta_up(left: Duration) -> String {
    let s = left.as_secs() + u64::from(left.subsec_nanos() > 0);
    format!("{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

#[cfg(test)]
mod tests {
    use super::*;
    use indicatif::{InMemoryTerm, TermLike};

    fn on_term() -> (Progress, InMemoryTerm) {
        let term = InMemoryTerm::new(4, 120);
        let t = term.clone();
        let target = move || ProgressDrawTarget::term_like(Box::new(t.clone()));
        (
            Progress::to(Arc::new(target), "mirror-read", "records"),
            term,
        )
    }

    /// The line as drawn now: the steady tick stopped first (its thread
    /// joined), as its redraw, a clear then a write, could be half done
    /// when the terminal is read on a loaded machine.
    fn drawn(p: &Progress, term: &InMemoryTerm) -> String {
        if let Some(l) = &p.line {
            l.bar.disable_steady_tick();
        }
        p.suspend(|| ());
        term.contents()
    }

    #[test]
    fn the_line_shows_bytes_items_rate_percentage_and_eta() {
        let (p, term) = on_term();
        p.start();
        p.add(512 << 10, 10);
        p.expect(1536 << 10);
        p.add(512 << 10, 5);
        let shown = drawn(&p, &term);
        assert!(
            shown.starts_with("mirror-read 1.00 MiB/2.00 MiB 50% 15 records "),
            "{shown}"
        );
        assert!(shown.contains("ETA 00:00:"), "{shown}");
    }

    #[test]
    fn without_a_total_there_is_no_percentage() {
        let (p, term) = on_term();
        p.start();
        p.add(3 << 20, 7);
        let shown = drawn(&p, &term);
        assert!(
            shown.starts_with("mirror-read 3.00 MiB 7 records "),
            "{shown}"
        );
        assert!(!shown.contains('%') && !shown.contains("ETA"), "{shown}");
    }

    #[test]
    fn a_short_estimate_never_shows_more_than_all() {
        let (p, term) = on_term();
        p.start();
        p.expect(1 << 20);
        p.add(3 << 20, 1);
        assert!(drawn(&p, &term).contains("3.00 MiB/3.00 MiB 100%"));
    }

    #[test]
    fn a_passive_handle_counts_nothing_and_finish_clears() {
        let (p, term) = on_term();
        p.start();
        let other = p.passive();
        assert!(p.counts() && !other.counts());
        other.add(5 << 20, 5);
        other.expect(1);
        other.finish();
        p.add(1 << 20, 1);
        assert!(drawn(&p, &term).starts_with("mirror-read 1.00 MiB 1 records"));
        p.finish();
        assert_eq!(term.contents(), "");
        assert_eq!(term.width(), 120);
    }

    #[test]
    fn nothing_is_drawn_before_work_begins() {
        let (p, term) = on_term();
        p.start();
        p.set_total(10 << 20);
        p.status("waiting");
        let mut out = Vec::new();
        write!(p.above(&mut out), "Create it? (y/n) ").unwrap();
        assert_eq!(term.contents(), "");
        p.add(1 << 20, 1);
        assert!(term
            .contents()
            .starts_with("mirror-read 1.00 MiB/10.00 MiB 10%"));
    }

    #[test]
    fn lines_written_above_come_whole_and_the_line_stays_below() {
        let (p, term) = on_term();
        p.start();
        p.add(1 << 20, 1);
        let mut out = Vec::new();
        {
            let mut above = p.above(&mut out);
            write!(above, "Mirror-write: ").unwrap();
            assert!(term.contents().starts_with("mirror-read 1.00 MiB"));
            writeln!(above, "received termination request").unwrap();
            write!(above, "Create it? (y/n) ").unwrap();
            above.flush().unwrap();
        }
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "Mirror-write: received termination request\nCreate it? (y/n) "
        );
        assert!(term.contents().starts_with("mirror-read 1.00 MiB"));
    }

    #[test]
    fn the_eta_is_rounded_up() {
        assert_eq!(eta_up(Duration::ZERO), "00:00:00");
        assert_eq!(eta_up(Duration::from_millis(1)), "00:00:01");
        assert_eq!(eta_up(Duration::from_secs(59)), "00:00:59");
        assert_eq!(eta_up(Duration::from_millis(59_001)), "00:01:00");
        assert_eq!(eta_up(Duration::from_secs(3 * 3600 + 62)), "03:01:02");
    }

    #[test]
    fn hidden_does_nothing_but_run_what_it_is_given() {
        let p = Progress::stderr("x", "records", false);
        assert!(!p.counts());
        p.start();
        p.add(1, 1);
        assert_eq!(p.suspend(|| 7), 7);
        p.finish();
    }
}
