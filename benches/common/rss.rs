//! Peak resident set size of a child process, read from /proc while it
//! runs (VmHWM is the kernel's own high-water mark), without `unsafe`.

use std::io;
use std::process::{Child, ExitStatus};
use std::time::Duration;

fn vm_hwm_kib(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// Waits for `child`, returning its status and peak RSS in KiB.
pub fn wait_peak_rss(mut child: Child) -> io::Result<(ExitStatus, u64)> {
    let pid = child.id();
    let mut peak = 0;
    loop {
        if let Some(v) = vm_hwm_kib(pid) {
            peak = peak.max(v);
        }
        if let Some(status) = child.try_wait()? {
            return Ok((status, peak));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}
