//! The PFS block that mirror-dump, pfs-status and pfs-update print
//! (spec: cli.md §4.2).

use crate::ondisk::PseudofsData;

/// Which "snapshots directory" line follows the block (needs a descriptor
/// and the filesystem's HAMMER version; mirror-dump has neither).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SnapshotsHint {
    None,
    Version(u32),
    /// A PFS of a store: the directory `cleanup` uses when the PFS names
    /// none (cli.md §23).
    Store(std::path::PathBuf),
}

/// `prune-min=` text: C truncating division, so negative values print
/// negative parts as the original does.
pub fn prune_min_text(p: i32) -> String {
    if p < 86400 {
        format!("{:02}:{:02}:{:02}", p / 3600 % 24, p / 60 % 60, p % 60)
    } else if p % 86400 != 0 {
        format!(
            "{}d/{:02}:{:02}:{:02}",
            p / 86400,
            p / 3600 % 24,
            p / 60 % 60,
            p % 60
        )
    } else {
        format!("{}d", p / 86400)
    }
}

/// Appends the PFS block, each line indented by four spaces.
pub fn write_pfs_block(out: &mut Vec<u8>, pfsd: &PseudofsData, hint: SnapshotsHint) {
    let line = |out: &mut Vec<u8>, s: &str| {
        out.extend_from_slice(b"    ");
        out.extend_from_slice(s.as_bytes());
        out.push(b'\n');
    };
    line(out, &format!("sync-beg-tid=0x{:016x}", pfsd.sync_beg_tid));
    line(out, &format!("sync-end-tid=0x{:016x}", pfsd.sync_end_tid));
    line(out, &format!("shared-uuid={}", pfsd.shared_uuid));
    line(out, &format!("unique-uuid={}", pfsd.unique_uuid));
    out.extend_from_slice(b"    label=\"");
    out.extend_from_slice(pfsd.label_bytes());
    out.extend_from_slice(b"\"\n");
    let snapshots = pfsd.snapshots_bytes();
    if !snapshots.is_empty() {
        out.extend_from_slice(b"    snapshots=\"");
        out.extend_from_slice(snapshots);
        out.extend_from_slice(b"\"\n");
    }
    line(
        out,
        &format!("prune-min={}", prune_min_text(pfsd.prune_min)),
    );
    if pfsd.is_slave() {
        line(out, "operating as a SLAVE");
    } else {
        line(out, "operating as a MASTER");
    }
    if !snapshots.is_empty() {
        return;
    }
    match hint {
        SnapshotsHint::None => {}
        SnapshotsHint::Version(v) => {
            let s = match (v < 3, pfsd.is_slave()) {
                (true, true) => "snapshots directory not set for slave",
                (true, false) => "snapshots directory for master defaults to <pfs>/snapshots",
                (false, _) => "snapshots directory defaults to /var/hammer/<pfs>",
            };
            line(out, s);
        }
        SnapshotsHint::Store(dir) => {
            out.extend_from_slice(b"    snapshots directory defaults to ");
            out.extend_from_slice(std::os::unix::ffi::OsStrExt::as_bytes(dir.as_os_str()));
            out.push(b'\n');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prune_min_forms() {
        assert_eq!(prune_min_text(0), "00:00:00");
        assert_eq!(prune_min_text(5400), "01:30:00");
        assert_eq!(prune_min_text(86400), "1d");
        assert_eq!(prune_min_text(93784), "1d/02:03:04");
        assert_eq!(prune_min_text(2592000), "30d");
        assert_eq!(prune_min_text(-5), "00:00:-5");
    }

    #[test]
    fn block_with_hint() {
        let mut p = PseudofsData {
            sync_beg_tid: 1,
            sync_end_tid: 0x00000001061a8ba0,
            mirror_flags: crate::ondisk::PFSD_SLAVE,
            ..Default::default()
        };
        p.set_label(b"");
        let mut out = Vec::new();
        write_pfs_block(&mut out, &p, SnapshotsHint::Version(7));
        let s = String::from_utf8(out).unwrap();
        assert_eq!(
            s,
            "    sync-beg-tid=0x0000000000000001\n    sync-end-tid=0x00000001061a8ba0\n    \
             shared-uuid=00000000-0000-0000-0000-000000000000\n    \
             unique-uuid=00000000-0000-0000-0000-000000000000\n    label=\"\"\n    \
             prune-min=00:00:00\n    operating as a SLAVE\n    \
             snapshots directory defaults to /var/hammer/<pfs>\n"
        );
    }
}
