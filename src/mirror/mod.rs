//! The mirror commands, one file per concern.

pub mod autoslave;
pub mod bwlimit;
pub mod chan;
pub mod copy;
pub mod cycle;
pub mod dump;
pub mod error;
pub mod fanout;
pub mod header;
pub mod plan;
pub mod prescan;
pub mod read;
pub mod remote;
pub mod report;
pub mod scoreboard;
pub mod write;
