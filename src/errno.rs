//! `strerror(3)` texts for the original's `err()` messages.

use std::io;

/// The bare strerror text of an I/O error ("Broken pipe"), without Rust's
/// "(os error N)" suffix.
pub fn strerror(e: &io::Error) -> String {
    match e.raw_os_error() {
        Some(n) => errno_desc(n),
        None => e.to_string(),
    }
}

/// The C library's strerror text of an errno value (nix's own table says
/// "Not a typewriter" for ENOTTY where libc says "Inappropriate ioctl for
/// device").
pub fn errno_desc(errno: i32) -> String {
    let text = io::Error::from_raw_os_error(errno).to_string();
    match text.rfind(" (os error ") {
        Some(i) => text[..i].to_string(),
        None => text,
    }
}
