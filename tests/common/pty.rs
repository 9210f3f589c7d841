//! Running the binary with its stderr on a terminal (a pseudo-terminal)
//! and reading what the terminal was sent.

use std::fs::File;
use std::io::Read;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread::{self, JoinHandle};

use nix::pty::{openpty, Winsize};

/// Runs `cmd` with stderr on a new 120-column terminal; returns its exit
/// status and every byte written to the terminal.
pub fn on_tty(cmd: Command) -> (ExitStatus, String) {
    let (mut child, seen) = spawn_on_tty(cmd);
    let status = child.wait().expect("wait");
    (status, seen.join().expect("pty reader"))
}

/// Starts `cmd` with stderr on a new 120-column terminal; the thread
/// returns what the terminal was sent once the child is gone.
pub fn spawn_on_tty(mut cmd: Command) -> (Child, JoinHandle<String>) {
    let size = Winsize {
        ws_row: 24,
        ws_col: 120,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    let pty = openpty(Some(&size), None).expect("openpty");
    cmd.stderr(Stdio::from(pty.slave));
    let child = cmd.spawn().expect("spawn");
    // The terminal ends (EIO) when its last slave end closes: the child's.
    drop(cmd);
    let mut master = File::from(pty.master);
    let reader = thread::spawn(move || {
        let mut seen = Vec::new();
        let mut buf = [0u8; 4096];
        while let Ok(n) = master.read(&mut buf) {
            if n == 0 {
                break;
            }
            seen.extend_from_slice(&buf[..n]);
        }
        String::from_utf8_lossy(&seen).into_owned()
    });
    (child, reader)
}
