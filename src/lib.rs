//! hammer-mirror: DragonFly BSD's `hammer mirror-*` replication, byte for
//! byte, on HAMMER ioctls or on an embedded PFS store.

// Every `unsafe` lives in the kernel backend and its test double, which
// opt out of this one by one (src/pfs/mod.rs), but for one block in
// events.rs: taking ownership of `-j fd:N`'s descriptor.
#![deny(unsafe_code)]

pub mod bridge;
pub mod chain;
pub mod cli;
pub mod cparse;
pub mod errno;
pub mod events;
pub mod fsio;
pub mod idhash;
pub mod mirror;
pub mod model;
pub mod mount;
pub mod ondisk;
pub mod patharg;
pub mod pfs;
pub mod pfs_cmd;
pub mod pfsd_fmt;
pub mod progress;
pub mod restrict;
pub mod retention;
pub mod verify;
pub mod wire;

/// The seeded generator of the unit tests, the integration tests and the
/// benches alike (each uses the part it needs).
#[cfg(test)]
#[allow(dead_code)]
#[path = "../tests/common/rng.rs"]
mod rng;
