//! Resident set sizes of a child process, read from /proc while it runs
//! (VmHWM is the kernel's own high-water mark), without `unsafe`; the
//! benches build this file too (`#[path]`).

use std::io;
use std::process::{Child, ExitStatus};
use std::time::Duration;

/// A `kB` field of a running process's /proc status (`VmHWM`, `VmRSS`);
/// `None` once it is gone.
pub fn status_kib(pid: u32, field: &str) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))?
        .trim()
        .strip_suffix(" kB")?
        .parse()
        .ok()
}

/// Waits for `child`, returning its status and peak RSS in KiB.
#[allow(dead_code)] // the benches' (the tests read status_kib)
pub fn wait_peak_rss(mut child: Child) -> io::Result<(ExitStatus, u64)> {
    let pid = child.id();
    let mut peak = 0;
    loop {
        if let Some(v) = status_kib(pid, "VmHWM") {
            peak = peak.max(v);
        }
        if let Some(status) = child.try_wait()? {
            return Ok((status, peak));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}
