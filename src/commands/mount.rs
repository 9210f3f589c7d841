//! mount and umount as the command line runs them.

use std::path::Path;

use super::{Context, Failure};
use crate::mount;
use crate::patharg::PathArg;

pub(crate) fn mount(cx: &Context<'_>, source: &PathArg, mountpoint: &Path) -> Result<(), Failure> {
    mount::mount(source, mountpoint, &cx.mount_options()).map_err(Failure::errx)
}

pub(crate) fn umount(mountpoint: &Path) -> Result<(), Failure> {
    mount::umount(mountpoint).map_err(Failure::errx)
}
