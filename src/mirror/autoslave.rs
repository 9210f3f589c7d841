//! Creating a missing slave for mirror-write (protocol.md §7): the
//! question, then pfs-slave's own code run in this process instead of
//! `pfs-slave <fs> shared-uuid=<uuid>` through `system()` (D10).

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;

use crate::commands::pfs::{pfs_create, PfsCmdError, PfsCreate};
use crate::ondisk::HammerUuid;
use crate::patharg::PathArg;
use crate::pfs::getpfs::scanpfsid;

/// Whether slave `fs` is missing, so that mirror-write creates it. A
/// store's PFS link given with a trailing `/` and an `@@-1:00001` name
/// fail lstat(2) although getpfs opens them, like HAMMER's lstat once the
/// kernel resolved them. A PFS reference is never created: pfs-slave
/// would make a link of that name to another, new PFS.
pub fn missing(fs: &Path) -> bool {
    fs::symlink_metadata(fs).is_err() && scanpfsid(fs).pfs_id.is_none()
}

/// Asks whether to create the slave (`-y` answers yes). The question goes
/// to stderr and the answer comes from /dev/tty, since stdin and stdout
/// carry the stream.
pub fn confirm(fs: &PathArg, yes: bool, diag: &mut dyn Write) -> bool {
    if yes {
        let _ = writeln!(
            diag,
            "PFS slave {fs} does not exist. Auto create new slave PFS!"
        );
        return true;
    }
    let _ = write!(
        diag,
        "PFS slave {fs} does not exist.\nDo you want to create a new slave PFS? [y/n] "
    );
    let _ = diag.flush();
    let tty = match fs::File::open("/dev/tty") {
        Ok(t) => t,
        Err(_) => {
            let _ = writeln!(diag, "No terminal for response");
            return false;
        }
    };
    let mut line = String::new();
    if BufReader::new(tty)
        .take(255)
        .read_line(&mut line)
        .unwrap_or(0)
        == 0
    {
        return false;
    }
    match line.chars().next() {
        Some('y' | 'Y') => true,
        Some('n' | 'N') => false,
        _ => {
            let _ = writeln!(diag, "Response not understood");
            false
        }
    }
}

/// Creates slave PFS `fs` sharing `shared_uuid`, as
/// `hammer pfs-slave <fs> shared-uuid=<uuid>` would, its output going to
/// `out` (stderr: stdout may be the stream).
pub fn create_slave(
    fs: &PathArg,
    shared_uuid: HammerUuid,
    out: &mut dyn Write,
) -> Result<(), PfsCmdError> {
    let new = PfsCreate {
        slave: true,
        shared_uuid: Some(shared_uuid),
        options: &[],
    };
    pfs_create(fs, &new, out)
}
