//! The mirror commands, one file per concern.

pub mod dump;
