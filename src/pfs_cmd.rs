//! The pfs-*, synctid and store-create commands with the original's texts
//! and exit codes (spec: cli.md §5-10), the defects of protocol.md §15
//! fixed: every failure exits non-zero.

use std::fs;
use std::io::{self, BufRead, Write};
use std::path::Path;
use std::thread;
use std::time::Duration;

use nix::errno::Errno;

use crate::cparse::{strtoull, time_to_secs};
use crate::errno::strerror;
use crate::ondisk::{HammerUuid, PseudofsData, PFSD_SLAVE};
use crate::pfs::getpfs::{dirname, scanpfsid, strip_trailing_slashes};
use crate::pfs::store::Store;
use crate::pfs::{getpfs, OpenError, Pfs, PfsError, SynctidOp};
use crate::pfsd_fmt::{write_pfs_block, SnapshotsHint};

/// How a command failed; `main` prints it and exits 1.
#[derive(Debug, thiserror::Error)]
pub enum CmdError {
    /// errx/err: printed as `hammer: <text>`.
    #[error("{0}")]
    Errx(String),
    /// Printed verbatim on stderr (a newline is added).
    #[error("{0}")]
    Say(String),
    /// The message is already on stdout; only the exit status is left.
    #[error("failed")]
    Failed,
    /// Writing stdout failed.
    #[error("{}", strerror(.0))]
    Output(#[from] io::Error),
}

type CmdResult = Result<(), CmdError>;

/// `err(3)`: the text, a colon and the error.
fn err(text: impl std::fmt::Display, e: impl std::fmt::Display) -> CmdError {
    CmdError::Errx(format!("{text}: {e}"))
}

/// The line of the PFS block that needs a descriptor (cli.md §4.2).
fn hint(pfs: &dyn Pfs) -> SnapshotsHint {
    pfs.version()
        .map_or(SnapshotsHint::None, SnapshotsHint::Version)
}

fn print_block(out: &mut dyn Write, pfsd: &PseudofsData, pfs: &dyn Pfs) -> io::Result<()> {
    let mut b = Vec::new();
    write_pfs_block(&mut b, pfsd, hint(pfs));
    out.write_all(&b)
}

fn label(pfsd: &PseudofsData) -> String {
    String::from_utf8_lossy(pfsd.label_bytes()).into_owned()
}

fn getpfs_or_exit(path: &str) -> Result<(Box<dyn Pfs>, PseudofsData), CmdError> {
    getpfs(path).map_err(|e| CmdError::Errx(e.to_string()))
}

/// `hammer pfs-status <dirpath> ...` (cli.md §5).
pub fn pfs_status(paths: &[String], out: &mut dyn Write) -> CmdResult {
    for path in paths {
        out.flush()?;
        let (pfs, _) = getpfs_or_exit(path)?;
        write!(out, "{path}\t")?;
        match pfs.get_pseudofs() {
            Err(_) => writeln!(out, "Invalid PFS path {path}")?,
            Ok(pfsd) => {
                writeln!(out, "PFS#{} {{", pfs.pfs_id())?;
                print_block(out, &pfsd, pfs.as_ref())?;
                writeln!(out, "}}")?;
            }
        }
    }
    out.flush()?;
    Ok(())
}

/// `hammer pfs-master|pfs-slave <dirpath> [options]` (cli.md §6).
pub fn pfs_create(path: &str, slave: bool, options: &[String], out: &mut dyn Write) -> CmdResult {
    if fs::symlink_metadata(path).is_ok() {
        return Err(CmdError::Errx(format!(
            "Cannot create {path}, file exists!"
        )));
    }
    if path.ends_with('/') {
        return Err(CmdError::Errx(format!(
            "Invalid PFS path {path} with trailing /"
        )));
    }
    let dir = dirname(path);
    // A PFS link or `@@` name opens that PFS, as on HAMMER, and is refused
    // below as not PFS#0.
    let mut pfs = match scanpfsid(&dir).open() {
        Ok(pfs) => pfs,
        Err(OpenError::Io(e)) => {
            return Err(err(format!("Cannot open directory {dir}"), strerror(&e)))
        }
        Err(OpenError::Store(e)) => return Err(err(format!("Cannot open directory {dir}"), e)),
        // GET_PSEUDOFS fails: pfs_id stays -1.
        Err(OpenError::NotHammer(_)) => return Err(CmdError::Say(NOT_MAIN_MOUNT.to_string())),
    };
    if pfs.get_pseudofs().is_err() || pfs.pfs_id() != 0 {
        return Err(CmdError::Say(NOT_MAIN_MOUNT.to_string()));
    }
    // The link is made in `dir` itself, which a store's `@@-1:00000` is
    // not: refused before a PFS is created for nothing.
    if let Err(e) = fs::metadata(&dir) {
        return Err(err(format!("Cannot open directory {dir}"), strerror(&e)));
    }
    let id = free_pfs_id(pfs.as_mut(), path)?;
    write!(out, "Creating PFS#{id}\t")?;
    out.flush()?;
    let pfsd = PseudofsData {
        sync_beg_tid: 1,
        sync_end_tid: 1,
        shared_uuid: HammerUuid::new_random(),
        unique_uuid: HammerUuid::new_random(),
        mirror_flags: if slave { PFSD_SLAVE } else { 0 },
        ..Default::default()
    };
    pfs.set_pfs_id(id);
    if let Err(e) = pfs.set_pseudofs(&pfsd) {
        // D20 fixed: the original exits 0 here.
        writeln!(out, "failed: {e}")?;
        out.flush()?;
        return Err(CmdError::Failed);
    }
    if let Err(e) = std::os::unix::fs::symlink(format!("@@PFS{id:05}"), path) {
        writeln!(out, "failed: cannot create symlink: {}", strerror(&e))?;
        out.flush()?;
        return Err(CmdError::Failed);
    }
    writeln!(out, "succeeded!")?;
    drop(pfs);
    pfs_update(path, options, out)
}

const NOT_MAIN_MOUNT: &str =
    "You are attempting to access a PFS softlink from a PFS.  It may not represent the PFS\n\
on the main filesystem mount that you expect!  You may only access PFS softlinks\n\
via the main filesystem mount!";

/// The lowest id whose GET fails with ENOENT.
fn free_pfs_id(pfs: &mut dyn Pfs, path: &str) -> Result<u32, CmdError> {
    for id in 0..=0xFFFF {
        pfs.set_pfs_id(id);
        match pfs.get_pseudofs() {
            Ok(_) => continue,
            Err(PfsError::Sys(Errno::ENOENT)) if id == 0 => {
                return Err(CmdError::Errx("Fatal error: PFS#0 must exist".into()))
            }
            Err(PfsError::Sys(Errno::ENOENT)) => return Ok(id),
            Err(e) => return Err(err(format!("Cannot create {path}"), e)),
        }
    }
    Err(CmdError::Errx(format!(
        "Cannot create {path}, all PFSs in use"
    )))
}

/// `hammer pfs-update <dirpath> [options]` (cli.md §7).
pub fn pfs_update(path: &str, options: &[String], out: &mut dyn Write) -> CmdResult {
    let (mut pfs, _) = getpfs_or_exit(path)?;
    writeln!(out, "{path}")?;
    out.flush()?;
    let Ok(mut pfsd) = pfs.get_pseudofs() else {
        return Ok(());
    };
    for opt in options {
        apply_option(&mut pfsd, opt)?;
    }
    if pfsd.is_slave() && pfs.pfs_id() == 0 {
        return Err(CmdError::Errx(
            "The real mount point cannot be made a PFS slave, only PFS sub-directories can be made slaves".into(),
        ));
    }
    pfs.set_pseudofs(&pfsd)
        .map_err(|e| err("Unable to adjust PFS configuration", e))?;
    let pfsd = pfs.get_pseudofs().map_err(|e| {
        err(
            "Unable to retrieve PFS configuration after successful update",
            e,
        )
    })?;
    print_block(out, &pfsd, pfs.as_ref())?;
    out.flush()?;
    Ok(())
}

/// One `name=value` option of pfs-update (cli.md §7.1).
pub fn apply_option(pfsd: &mut PseudofsData, opt: &str) -> CmdResult {
    let (name, value) = match opt.split_once('=') {
        Some(nv) => nv,
        // D17 fixed: the bare form the usage text shows is accepted.
        None if opt == "snapshots-clear" => (opt, ""),
        None => {
            return Err(CmdError::Errx(format!(
                "option {opt} requires an assignment"
            )))
        }
    };
    match name {
        "sync-beg-tid" => pfsd.sync_beg_tid = strtoull(value.as_bytes(), 16).0,
        "sync-end-tid" => pfsd.sync_end_tid = strtoull(value.as_bytes(), 16).0,
        "shared-uuid" | "unique-uuid" => {
            let u = HammerUuid::parse(value).ok_or_else(|| {
                CmdError::Errx(format!("option {name}: error parsing uuid {value}"))
            })?;
            if name == "shared-uuid" {
                pfsd.shared_uuid = u;
            } else {
                pfsd.unique_uuid = u;
            }
        }
        "label" => {
            let text = if !value.starts_with('"') {
                value
            } else if value.ends_with('"') {
                // A lone `"` is both quotes: the label is empty.
                &value[1..value.len().max(2) - 1]
            } else {
                return Err(CmdError::Errx(format!("option {name}: malformed string")));
            };
            pfsd.set_label(text.as_bytes());
        }
        "snapshots" => {
            if !value.starts_with('/') {
                let mut m = format!("option {name}: '{value}' must be an absolute path");
                if value.is_empty() {
                    m.push_str("\nuse 'snapshots-clear' to unset snapshots dir");
                }
                return Err(CmdError::Say(m));
            }
            if value.len() >= 64 {
                return Err(CmdError::Errx(format!(
                    "option {name}: path too long, {} character limit",
                    value.len()
                )));
            }
            pfsd.set_snapshots(value.as_bytes());
        }
        "snapshots-clear" => pfsd.set_snapshots(b""),
        "prune-min" => {
            pfsd.prune_min = time_to_secs(value.as_bytes()).ok_or_else(|| {
                // D17 fixed: the original names the value, not the option.
                CmdError::Errx(format!(
                    "option {name}: illegal time spec, use Nd or [Nd/]hh[:mm[:ss]]"
                ))
            })?;
        }
        _ => return Err(CmdError::Errx(format!("invalid option: {name}"))),
    }
    Ok(())
}

/// `hammer pfs-upgrade <dirpath>` (cli.md §8).
pub fn pfs_upgrade(path: &str, out: &mut dyn Write) -> CmdResult {
    let (mut pfs, pfsd) = getpfs_or_exit(path)?;
    let id = pfs.pfs_id();
    if id == 0 {
        return Err(CmdError::Errx(
            "You cannot upgrade PFS#0 (It should already be a master)".into(),
        ));
    }
    if !pfsd.is_slave() {
        return Err(CmdError::Errx("It is already a master".into()));
    }
    let what = format!("pfs-upgrade of PFS#{id} ({})", label(&pfsd));
    pfs.upgrade()
        .map_err(|e| err(format!("{what} failed"), e))?;
    writeln!(out, "{what} succeeded")?;
    Ok(())
}

/// `hammer pfs-downgrade <dirpath>` (cli.md §8).
pub fn pfs_downgrade(path: &str, out: &mut dyn Write) -> CmdResult {
    let (mut pfs, pfsd) = getpfs_or_exit(path)?;
    let id = pfs.pfs_id();
    if id == 0 {
        return Err(CmdError::Errx("You cannot downgrade PFS#0".into()));
    }
    if pfsd.is_slave() {
        return Err(CmdError::Errx("It is already a slave".into()));
    }
    let what = format!("pfs-downgrade of PFS#{id} ({})", label(&pfsd));
    pfs.downgrade()
        .map_err(|e| err(format!("{what} failed"), e))?;
    writeln!(out, "{what} succeeded")?;
    Ok(())
}

/// Reads one answer: only y, yes, Y and YES (trailing CR/LF removed) say
/// yes; EOF says no.
fn confirmed(input: &mut dyn BufRead) -> io::Result<bool> {
    let mut line = String::new();
    if input.read_line(&mut line)? == 0 {
        return Ok(false);
    }
    let answer = line.trim_end_matches(['\r', '\n']);
    Ok(matches!(answer, "y" | "yes" | "Y" | "YES"))
}

/// What pfs-destroy is asked to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DestroyOptions {
    /// Each of the countdown's five steps; `None` (`-d`) skips it.
    pub countdown_step: Option<Duration>,
}

/// The original's countdown step.
pub const COUNTDOWN_STEP: Duration = Duration::from_secs(1);

/// `hammer pfs-destroy <dirpath>` (cli.md §9).
pub fn pfs_destroy(
    path: &str,
    opts: &DestroyOptions,
    input: &mut dyn BufRead,
    out: &mut dyn Write,
) -> CmdResult {
    let (mut pfs, pfsd) = getpfs_or_exit(path)?;
    let id = pfs.pfs_id();
    if id == 0 {
        return Err(CmdError::Errx("You cannot destroy PFS#0".into()));
    }
    let label = label(&pfsd);
    let refuse = || CmdError::Errx(format!("No action taken on PFS#{id}"));
    write!(
        out,
        "You have requested that PFS#{id} ({label}) be destroyed\n\
         This will irrevocably destroy all data on this PFS!!!!!\n\
         Do you really want to do this? [y/n] "
    )?;
    out.flush()?;
    if !confirmed(input)? {
        return Err(refuse());
    }
    if !pfsd.is_slave() {
        write!(
            out,
            "This PFS is currently setup as a MASTER!\n\
             Are you absolutely sure you want to destroy it? [y/n] "
        )?;
        out.flush()?;
        if !confirmed(input)? {
            return Err(refuse());
        }
    }
    write!(out, "Destroying PFS#{id} ({label})")?;
    match opts.countdown_step {
        None => writeln!(out)?,
        Some(step) => {
            write!(out, " in")?;
            for i in (1..=5).rev() {
                write!(out, " {i}")?;
                out.flush()?;
                thread::sleep(step);
            }
            writeln!(out, ".. starting destruction pass")?;
        }
    }
    out.flush()?;
    if let Err(e) = pfs.destroy() {
        writeln!(out, "pfs-destroy of PFS#{id} failed: {e}")?;
        out.flush()?;
        return Err(CmdError::Failed);
    }
    writeln!(out, "pfs-destroy of PFS#{id} succeeded!")?;
    out.flush()?;
    // The original strips the slashes only when the path resolves to a
    // directory; a store's links always dangle, so they are stripped
    // whenever the path itself is not a symlink.
    let link = match fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => path,
        _ => strip_trailing_slashes(path),
    };
    if fs::symlink_metadata(link).is_ok_and(|m| m.file_type().is_symlink()) {
        fs::remove_file(link)
            .map_err(|e| err(format!("Unable to remove softlink {link}"), strerror(&e)))?;
    }
    Ok(())
}

/// `hammer synctid <filesystem> [quick]` (cli.md §10).
pub fn synctid(fs_path: &str, quick: bool, out: &mut dyn Write) -> CmdResult {
    let op = if quick {
        SynctidOp::Sync1
    } else {
        SynctidOp::Sync2
    };
    let failed = |e: &dyn std::fmt::Display| err(format!("Synctid {fs_path} failed"), e);
    let unable = |e: &dyn std::fmt::Display| err(format!("Unable to open {fs_path}"), e);
    // The TID is filesystem-wide: any path of the filesystem will do, a
    // PFS link or `@@` name included, as getpfs resolves it.
    let pp = scanpfsid(fs_path);
    let mut pfs = match pp.open() {
        Ok(pfs) => pfs,
        Err(OpenError::Io(e)) => return Err(unable(&strerror(&e))),
        Err(OpenError::NotHammer(errno)) => return Err(failed(&PfsError::Sys(errno))),
        Err(OpenError::Store(e)) => return Err(failed(&e)),
    };
    // HAMMER's open fails on a reference to a PFS that does not exist.
    if pp.pfs_id.is_some() {
        pfs.get_pseudofs().map_err(|e| unable(&e))?;
    }
    let tid = pfs.synctid(op).map_err(|e| failed(&e))?;
    writeln!(out, "0x{tid:016x}")?;
    Ok(())
}

/// `hammer store-create <dir>`: a new store holding PFS#0.
pub fn store_create(dir: &str) -> CmdResult {
    Store::create(Path::new(dir))
        .map(drop)
        .map_err(|e| err("store-create", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options() {
        let mut p = PseudofsData::default();
        apply_option(&mut p, "sync-beg-tid=0x10").unwrap();
        apply_option(&mut p, "sync-end-tid=ff").unwrap();
        apply_option(&mut p, "label=\"my label\"").unwrap();
        apply_option(&mut p, "snapshots=/snaps").unwrap();
        apply_option(&mut p, "prune-min=1d").unwrap();
        assert_eq!((p.sync_beg_tid, p.sync_end_tid), (0x10, 0xff));
        assert_eq!(p.label_bytes(), b"my label");
        assert_eq!(p.snapshots_bytes(), b"/snaps");
        assert_eq!(p.prune_min, 86400);
        apply_option(&mut p, "snapshots-clear").unwrap();
        assert_eq!(p.snapshots_bytes(), b"");
        apply_option(&mut p, "label=\"").unwrap();
        assert_eq!(p.label_bytes(), b"");
        let e = apply_option(&mut p, "label=\"abc").unwrap_err();
        assert_eq!(e.to_string(), "option label: malformed string");
        let e = apply_option(&mut p, "bogus=1").unwrap_err();
        assert_eq!(e.to_string(), "invalid option: bogus");
        let e = apply_option(&mut p, "label").unwrap_err();
        assert_eq!(e.to_string(), "option label requires an assignment");
    }
}
