//! Creating a missing slave for mirror-write (protocol.md §7): the same
//! steps and output as `hammer pfs-slave <fs> shared-uuid=<uuid>`, done in
//! this process instead of through `system()` (D10).

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;

use nix::errno::Errno;

use crate::ondisk::{HammerUuid, PseudofsData, PFSD_SLAVE};
use crate::pfs::{getpfs::dirname, open_fs, Pfs, PfsError};
use crate::pfsd_fmt::{write_pfs_block, SnapshotsHint};

/// The text of pfs-master/pfs-slave when the link's directory is itself
/// inside a PFS other than #0 (cli.md §6 step 3).
pub const NOT_FROM_PFS0: &str = "You are attempting to access a PFS softlink from a PFS.  It may not represent the PFS
on the main filesystem mount that you expect!  You may only access PFS softlinks
via the main filesystem mount!";

/// Asks whether to create the slave (`-y` answers yes). The question goes
/// to stderr and the answer comes from /dev/tty, since stdin and stdout
/// carry the stream.
pub fn confirm(fs: &str, yes: bool, diag: &mut dyn Write) -> bool {
    if yes {
        let _ = writeln!(diag, "PFS slave {fs} does not exist. Auto create new slave PFS!");
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
    if BufReader::new(tty).take(255).read_line(&mut line).unwrap_or(0) == 0 {
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

/// Creates slave PFS `fs` sharing `shared_uuid`, printing what pfs-slave
/// prints (to `out`, which is stderr here). Errors carry the original's
/// message without the `hammer: ` prefix.
pub fn create_slave(fs: &str, shared_uuid: HammerUuid, out: &mut dyn Write) -> Result<u32, String> {
    if fs::symlink_metadata(fs).is_ok() {
        return Err(format!("Cannot create {fs}, file exists!"));
    }
    if fs.ends_with('/') {
        return Err(format!("Invalid PFS path {fs} with trailing /"));
    }
    let dir = dirname(fs);
    let mut pfs = open_fs(&dir).map_err(|e| format!("Cannot open directory {dir}: {e}"))?;
    let _ = pfs.get_pseudofs();
    if pfs.pfs_id() != 0 {
        return Err(NOT_FROM_PFS0.to_string());
    }
    let id = free_pfs_id(pfs.as_mut()).map_err(|e| match e {
        FreeIdError::AllInUse => format!("Cannot create {fs}, all PFSs in use"),
        FreeIdError::NoPfs0 => "Fatal error: PFS#0 must exist".to_string(),
        FreeIdError::Pfs(e) => format!("Cannot create {fs}: {e}"),
    })?;
    let _ = write!(out, "Creating PFS#{id}\t");
    let pfsd = PseudofsData {
        sync_beg_tid: 1,
        sync_end_tid: 1,
        shared_uuid,
        unique_uuid: HammerUuid::new_random(),
        mirror_flags: PFSD_SLAVE,
        ..Default::default()
    };
    pfs.set_pfs_id(id);
    if let Err(e) = pfs.set_pseudofs(&pfsd) {
        let _ = writeln!(out, "failed: {e}");
        return Err(format!("Cannot create {fs}: {e}"));
    }
    if let Err(e) = std::os::unix::fs::symlink(format!("@@PFS{id:05}"), Path::new(fs)) {
        let e = crate::errno::strerror(&e);
        let _ = writeln!(out, "failed: cannot create symlink: {e}");
        return Err(format!("Cannot create {fs}: cannot create symlink: {e}"));
    }
    let _ = writeln!(out, "succeeded!");
    let mut text = format!("{fs}\n").into_bytes();
    let now = pfs.get_pseudofs().map_err(|e| format!("Unable to retrieve PFS configuration after successful update: {e}"))?;
    let hint = pfs.version().map_or(SnapshotsHint::None, SnapshotsHint::Version);
    write_pfs_block(&mut text, &now, hint);
    let _ = out.write_all(&text);
    Ok(id)
}

enum FreeIdError {
    AllInUse,
    NoPfs0,
    Pfs(PfsError),
}

/// The lowest PFS id whose GET_PSEUDOFS fails with ENOENT.
fn free_pfs_id(pfs: &mut dyn Pfs) -> Result<u32, FreeIdError> {
    for id in 0..=0xFFFF {
        pfs.set_pfs_id(id);
        match pfs.get_pseudofs() {
            Ok(_) => continue,
            Err(e) if e.errno() == Errno::ENOENT => {
                return if id == 0 {
                    Err(FreeIdError::NoPfs0)
                } else {
                    Ok(id)
                }
            }
            Err(e) => return Err(FreeIdError::Pfs(e)),
        }
    }
    Err(FreeIdError::AllInUse)
}
