//! What the integration tests share: running the built binary (also as a
//! remote side, through a stand-in for ssh) and checking what it printed,
//! and the fixtures; in the modules below, stores, PFSes and trees to run
//! it on (`setup`), streams built, piped and scanned (`stream`),
//! `FailAfter` (`fail_after`), the seeded `Rng` (`rng`, which the benches
//! build too), runs with stderr on a terminal (`pty`) and LazyFS under a
//! store, to cut its power (`lazyfs`). The one integration test binary
//! (tests/integration) uses all of it.

mod damage;
mod fail_after;
// The S3 servers, for a hammer built with S3 chains.
#[cfg(feature = "s3")]
mod garage;
// The power-loss tests, which the kernel double does not run again.
#[cfg(not(feature = "kernel-double"))]
pub mod lazyfs;
mod pty;
mod rng;
pub mod rss;
mod setup;
mod stream;
mod tmpfs;

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub use damage::*;
pub use fail_after::{FailAfter, Fault};
#[cfg(feature = "s3")]
pub use garage::{garage, hammer_without_aws, s3s, Garage};
pub use pty::{on_tty, spawn_on_tty};
pub use rng::Rng;
pub use setup::*;
pub use stream::*;
pub use tmpfs::Tmpfs;

/// The built hammer, its cleanups' pidfiles in a directory of the tests'
/// own (cli.md §25), never in /var/run, where an abort-cleanup of another
/// test, or of the machine's, would find them.
pub fn hammer() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_hammer"));
    c.env("HAMMER_RUNDIR", rundir());
    c
}

/// The tests' directory for cleanups' pidfiles: made once, shared, and
/// never scanned but by a test that names it.
fn rundir() -> &'static Path {
    static DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("hammer-rundir");
        fs::create_dir_all(&dir).unwrap();
        dir
    })
}

pub fn run(args: &[&str]) -> Output {
    hammer().args(args).stdin(Stdio::null()).output().unwrap()
}

pub fn ok(args: &[&str]) -> Output {
    let out = run(args);
    assert!(
        out.status.success(),
        "hammer {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Runs `cmd` with `input` on its standard input, written from another
/// thread: a command that exits without reading it all (a refused
/// request) neither blocks the test nor fails it.
pub fn run_with_input(cmd: &mut Command, input: &[u8]) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    let feeder = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let out = child.wait_with_output().unwrap();
    feeder.join().unwrap();
    out
}

/// A stand-in for ssh, `<dir>/fake-rsh`, to pass as HAMMER_RSH: it
/// appends its argv to `<dir>/rsh.log`, writes the pid of the remote
/// hammer to `<dir>/pid.<n>` (n counting from 0) and runs that hammer,
/// the one under test, locally.
pub fn fake_rsh(dir: &Path) -> PathBuf {
    let script = dir.join("fake-rsh");
    fs::write(
        &script,
        format!(
            "#!/bin/sh\nprintf '%s\\n' \"$*\" >> '{d}/rsh.log'\nwhile [ \"$1\" != hammer ]; do shift; done\nshift\necho $$ > '{d}/pid.'$(ls '{d}' | grep -c '^pid')\nexec '{h}' \"$@\"\n",
            d = dir.display(),
            h = env!("CARGO_BIN_EXE_hammer")
        ),
    )
    .unwrap();
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
    script
}

/// Asserts that a run's stderr contains `want`, showing all of it if not.
#[track_caller]
pub fn assert_stderr_has(out: &Output, want: &str) {
    let err = text(&out.stderr);
    assert!(err.contains(want), "stderr lacks {want:?}:\n{err}");
}

/// Asserts that a run's stderr ends with `want`, showing all of it if not.
#[track_caller]
pub fn assert_stderr_ends(out: &Output, want: &str) {
    let err = text(&out.stderr);
    assert!(
        err.ends_with(want),
        "stderr does not end in {want:?}:\n{err}"
    );
}

/// Polls `cond` until it holds; after `secs` seconds, fails naming `what`
/// with what `diag` says then.
#[track_caller]
pub fn wait_for(what: &str, secs: u64, mut cond: impl FnMut() -> bool, diag: impl Fn() -> String) {
    let end = Instant::now() + Duration::from_secs(secs);
    while !cond() {
        assert!(
            Instant::now() < end,
            "timed out waiting for {what}: {}",
            diag()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits for `child` to end, at most `secs` seconds (then fails naming
/// `what`), and collects what it printed on the pipes it was given.
#[track_caller]
pub fn wait_output(what: &str, secs: u64, mut child: Child) -> Output {
    let mut ended = false;
    wait_for(
        what,
        secs,
        || {
            ended = child.try_wait().unwrap().is_some();
            ended
        },
        || "still running".into(),
    );
    child.wait_with_output().unwrap()
}

/// What a run printed and how it ended: stdout, stderr, and the exit
/// status (-1 for a signal).
pub fn outcome(out: &Output) -> (String, String, i32) {
    (
        text(&out.stdout),
        text(&out.stderr),
        out.status.code().unwrap_or(-1),
    )
}

/// Real streams and outputs of the DragonFly hammer(8), and the spec's
/// texts.
pub const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");

/// A file of `FIXTURES`.
pub fn fixture(name: &str) -> PathBuf {
    Path::new(FIXTURES).join(name)
}

/// Sends `sig` to a running child (hammer under test).
pub fn signal(child: &Child, sig: nix::sys::signal::Signal) {
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), sig).unwrap();
}

/// SIGKILL to `child` once `delay` has passed, and its end waited for.
pub fn kill_after(what: &str, delay: std::time::Duration, child: Child) {
    std::thread::sleep(delay);
    signal(&child, nix::sys::signal::Signal::SIGKILL);
    wait_output(what, 60, child);
}
