//! The mirror commands, one file per concern.

pub(crate) mod autoslave;
pub(crate) mod bwlimit;
pub(crate) mod chan;
pub(crate) mod copy;
pub(crate) mod cycle;
pub mod dump;
pub mod error;
pub(crate) mod fanout;
pub(crate) mod header;
pub(crate) mod plan;
pub(crate) mod prescan;
pub mod read;
pub(crate) mod remote;
pub(crate) mod report;
pub(crate) mod scoreboard;
pub mod write;
