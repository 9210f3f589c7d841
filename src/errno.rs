//! `strerror(3)` texts for the original's `err()` messages.

use std::io;

/// The bare strerror text of an I/O error ("Broken pipe"), without Rust's
/// "(os error N)" suffix.
pub fn strerror(e: &io::Error) -> String {
    match e.raw_os_error() {
        Some(n) => nix::errno::Errno::from_raw(n).desc().to_string(),
        None => e.to_string(),
    }
}
