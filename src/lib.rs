//! hammer-mirror: DragonFly BSD's `hammer mirror-*` replication, byte for
//! byte, on HAMMER ioctls or on an embedded PFS store.
//!
//! The public surface is what the `hammer` binary, the integration tests,
//! the benches, the examples and the fuzz targets use:
//!
//! * the binary: [`cli`] (the command line and its command table),
//!   [`commands`] (running a parsed command line, its `Failure`s) and
//!   [`events`] (`-j`'s sink);
//! * the formats and the PFS they move between: [`wire`] (mrecords, the
//!   readers and writer, `-z` frames), [`ondisk`] (HAMMER's structures),
//!   [`pfs`] (`trait Pfs`, the kernel backend and the store);
//! * the commands' library calls the tests drive directly: [`mirror`]
//!   (mirror-read, mirror-write, mirror-dump and their errors), [`model`]
//!   (HAMMER's file payloads), [`bridge`] (import), [`verify`] (mirror-verify's
//!   messages and one side of it), `chain` (with the `s3` feature: the
//!   bucket client, its settings, the manifest, the lease probe),
//!   [`patharg`] (path arguments), [`fsio`] (streaming I/O) and
//!   [`retention`] (the userland half of hammer prune).
//!
//! Everything else is the crate's own.

// Every `unsafe` lives in the kernel backend and its test double, which
// opt out of this one by one (src/pfs/mod.rs), but for one block in
// events.rs (taking ownership of `-j fd:N`'s descriptor) and ctime.rs
// (the C library's localtime and strftime).
#![deny(unsafe_code)]

pub mod bridge;
#[cfg(feature = "s3")]
pub mod chain;
pub mod cli;
pub mod commands;
pub(crate) mod cparse;
pub(crate) mod ctime;
pub(crate) mod errno;
pub mod events;
pub mod fsio;
pub(crate) mod idhash;
pub mod mirror;
pub mod model;
pub(crate) mod mount;
pub mod ondisk;
pub mod patharg;
pub mod pfs;
pub(crate) mod progress;
pub mod retention;
pub mod verify;
pub mod wire;

/// The seeded generator of the unit tests, the integration tests and the
/// benches alike (each uses the part it needs).
#[cfg(test)]
#[allow(dead_code)]
#[path = "../tests/common/rng.rs"]
mod rng;
