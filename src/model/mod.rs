//! The decoded file model of a PFS, beside the raw layouts of
//! `ondisk.rs`: what HAMMER's record payloads mean for files (`format`:
//! inode data, directory entries and their name keys, data blocks) and
//! the file tree as of one TID built from a record scan (`tree`). Import
//! and export (`bridge`), `verify` and `mount` are its users.

pub mod format;
pub(crate) mod tree;
