//! The mirror commands, one file per concern.

pub mod bwlimit;
pub mod cycle;
pub mod dump;
pub mod prescan;
pub mod remote;
pub mod scoreboard;
pub mod autoslave;
pub mod error;
pub mod header;
pub mod read;
pub mod write;
