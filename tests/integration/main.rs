//! The integration tests, one binary (one link of the crate instead of one
//! per file): each module drives the built `hammer` (or the library) on
//! one subject; `common` holds what they share.

#[path = "../common/mod.rs"]
mod common;

mod abort_cleanup;
mod bytes_args;
mod cleanup;
mod cleanup_dry_run;
mod cli;
mod codec_props;
mod compress;
mod config;
mod cut_batches;
mod dates;
mod deploy;
mod dir_sync;
mod disk_full;
mod docs;
mod dump_errors;
mod events;
mod fanout;
mod fault_injection;
mod golden;
mod import_export;
mod import_options;
mod kernel_backend;
mod mirror_copy;
mod mirror_e2e;
mod mirror_faults;
mod mirror_verify;
mod mistakes;
mod mount;
mod mount_rootless;
mod partial_export;
mod pfs_cli;
mod pfs_create_race;
mod pfs_destroy;
mod power_loss;
mod privacy;
mod progress;
mod prune;
mod prune_dry_run;
mod quiet_runs;
mod reblock;
mod retain_mirror;
#[cfg(feature = "s3")]
mod s3_chain;
mod snapls;
mod snapshots;
mod space;
mod ssh_e2e;
mod ssh_remote;
mod store_concurrency;
mod store_crash;
mod store_model;
mod store_prune;
mod verify;
mod wire_format;
