//! A stand-in for the DragonFly kernel behind the ioctl seam: it decodes the
//! raw `#[repr(C)]` request structures as `hammer_ioctl()` does, rejects
//! what the kernel rejects, serves the request from a store and writes the
//! results back, so the kernel backend's marshalling is proven on any Unix
//! (spec: ioctl-abi.md §1-6, §9-11, kernel-semantics.md §3.1, §4.1, §5).
//!
//! Every descriptor the double serves lies in one PFS, the one its store
//! addresses when the double is made: the snapshot, config and prune
//! requests act on it, as the kernel acts on the descriptor's inode's.

use std::cell::{Cell, RefCell};
use std::ffi::c_void;
use std::mem::size_of;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::ptr;
use std::slice;

use nix::errno::Errno;
use nix::sys::stat;
use zerocopy::FromBytes;

use super::kernel::ioctl::{
    synctid_op, IocConfig, IocMirrorRw, IocPrune, IocPruneElm, IocPseudofsRw, IocReblock,
    IocSnapshot, IocSynctid, IocVersion, HAMMERIOC_ADD_SNAPSHOT, HAMMERIOC_DEL_SNAPSHOT,
    HAMMERIOC_DGD_PSEUDOFS, HAMMERIOC_GET_CONFIG, HAMMERIOC_GET_PSEUDOFS, HAMMERIOC_GET_SNAPSHOT,
    HAMMERIOC_GET_VERSION, HAMMERIOC_MIRROR_READ, HAMMERIOC_MIRROR_WRITE, HAMMERIOC_PRUNE,
    HAMMERIOC_REBLOCK, HAMMERIOC_RMR_PSEUDOFS, HAMMERIOC_SET_CONFIG, HAMMERIOC_SET_PSEUDOFS,
    HAMMERIOC_SYNCTID, HAMMERIOC_UPG_PSEUDOFS, HAMMERIOC_WAI_PSEUDOFS, IOC_HEAD_ERROR,
    IOC_HEAD_INTR, IOC_MIRROR_NODATA, IOC_PRUNE_ALL, IOC_SNAPSHOT_EOF, MAX_PRUNE_ELMS,
};
use super::kernel::{IoctlSeam, PFS_ID_AUTO, PSEUDOFS_VERSION};
use super::store::{encode_key, Store};
use super::{
    MirrorReadReq, MirrorWriteReq, Pfs, PfsError, PruneElm, PruneReq, PruneStats, ReblockReq,
    ReblockStats, SnapshotReq, SynctidOp,
};
use crate::ondisk::{BaseElm, PseudofsData, SnapshotData, LOCALIZE_PSEUDOFS_MASK};

type SysResult<T> = std::result::Result<T, Errno>;

/// The largest `size` MIRROR_WRITE accepts (kernel-semantics.md §4.1).
const MAX_WRITE_SIZE: i32 = 0x7000_0000;
/// `HAMMER_MIN_VERSION`, `HAMMER_MAX_VERSION`, `HAMMER_WIP_VERSION`.
const MIN_VERSION: u32 = 1;
const MAX_VERSION: u32 = 7;
const WIP_VERSION: u32 = 8;

/// The kernel of a HAMMER filesystem whose B-Tree is a store.
pub struct KernelDouble {
    store: RefCell<Store>,
    /// The device the store lives on: a descriptor on another filesystem
    /// reaches a filesystem that does not know HAMMER's ioctls.
    dev: libc::dev_t,
    /// The PFS every store path lies in, which `pfs_id` −1 resolves to.
    home_pfs: u32,
    /// A request whose next call is interrupted by a signal before it did
    /// anything (for UPG and RMR: success with HEAD_INTR).
    interrupt: Cell<Option<u32>>,
    /// MIRROR_READ calls left before the one a signal interrupts (from
    /// `HAMMER_DOUBLE_INTERRUPT_MIRROR_READ`, for tests that drive the
    /// binary).
    read_signal_in: Cell<Option<u32>>,
}

impl KernelDouble {
    /// The kernel of `store`, whose paths all lie in the PFS it addresses
    /// when opened (PFS#0, the store root).
    pub fn new(store: Store) -> std::result::Result<Self, Errno> {
        let dev = stat::stat(store.root())?.st_dev;
        Ok(KernelDouble {
            home_pfs: store.pfs_id(),
            store: RefCell::new(store),
            dev,
            interrupt: Cell::new(None),
            read_signal_in: Cell::new(
                std::env::var("HAMMER_DOUBLE_INTERRUPT_MIRROR_READ")
                    .ok()
                    .and_then(|v| v.parse().ok()),
            ),
        })
    }

    /// Makes the next UPG_PSEUDOFS or RMR_PSEUDOFS (`request`) return as
    /// the kernel does when a signal arrives before any progress.
    pub fn interrupt_next(&self, request: u32) {
        self.interrupt.set(Some(request));
    }

    fn interrupted(&self, request: u32) -> bool {
        let hit = self.interrupt.get() == Some(request);
        if hit {
            self.interrupt.set(None);
        }
        hit
    }

    /// Whether a signal interrupts this MIRROR_READ call.
    fn read_signalled(&self) -> bool {
        match self.read_signal_in.get() {
            Some(n) if n <= 1 => {
                self.read_signal_in.set(None);
                true
            }
            Some(n) => {
                self.read_signal_in.set(Some(n - 1));
                false
            }
            None => false,
        }
    }

    /// The store addressing PFS `id`.
    fn pfs(&self, id: u32) -> std::cell::RefMut<'_, Store> {
        let mut s = self.store.borrow_mut();
        s.set_pfs_id(id);
        s
    }

    /// `hammer_pfs_autodetect` and the `bytes` check (kernel-semantics.md
    /// §5.1).
    fn pfs_prologue(&self, rw: &mut IocPseudofsRw) -> SysResult<u32> {
        if rw.pfs_id == PFS_ID_AUTO {
            rw.pfs_id = i32::try_from(self.home_pfs).map_err(|_| Errno::EINVAL)?;
        }
        let id = u32::try_from(rw.pfs_id)
            .ok()
            .filter(|&id| id <= 0xFFFF)
            .ok_or(Errno::EINVAL)?;
        if (rw.bytes as usize) < PseudofsData::SIZE {
            return Err(Errno::EINVAL);
        }
        Ok(id)
    }

    fn pseudofs(&self, request: u32, rw: &mut IocPseudofsRw) -> SysResult<()> {
        let id = self.pfs_prologue(rw)?;
        match request {
            HAMMERIOC_GET_PSEUDOFS => {
                rw.bytes = PseudofsData::SIZE as u32;
                rw.version = PSEUDOFS_VERSION;
                let pfsd = self.pfs(id).get_pseudofs().map_err(errno)?;
                if !rw.ondisk.is_null() {
                    // SAFETY: a non-NULL `ondisk` points to the caller's
                    // 292-byte buffer (the seam's contract), writable for
                    // GET; nothing else borrows it during the call.
                    unsafe { ptr::write(rw.ondisk, pfsd.to_bytes()) };
                }
                Ok(())
            }
            HAMMERIOC_SET_PSEUDOFS => {
                if rw.version != PSEUDOFS_VERSION {
                    return Err(Errno::EINVAL);
                }
                if rw.ondisk.is_null() {
                    return Ok(());
                }
                // SAFETY: as above, the buffer is valid for 292 bytes.
                let pfsd = PseudofsData::decode(&unsafe { ptr::read(rw.ondisk) });
                self.pfs(id).set_pseudofs(&pfsd).map_err(errno)
            }
            HAMMERIOC_WAI_PSEUDOFS => {
                if rw.ondisk.is_null() {
                    return Err(Errno::EFAULT);
                }
                // SAFETY: as above, the buffer is valid for 292 bytes.
                let pfsd = PseudofsData::decode(&unsafe { ptr::read(rw.ondisk) });
                self.pfs(id).wait(pfsd.sync_end_tid).map_err(errno)
            }
            HAMMERIOC_UPG_PSEUDOFS | HAMMERIOC_RMR_PSEUDOFS if self.interrupted(request) => {
                rw.head.flags |= IOC_HEAD_INTR;
                Ok(())
            }
            HAMMERIOC_UPG_PSEUDOFS => self.pfs(id).upgrade().map_err(errno),
            HAMMERIOC_DGD_PSEUDOFS => self.pfs(id).downgrade().map_err(errno),
            HAMMERIOC_RMR_PSEUDOFS => self.pfs(id).destroy().map_err(errno),
            _ => Err(Errno::EOPNOTSUPP),
        }
    }

    /// MIRROR_READ (kernel-semantics.md §3.1, §3.4): the keys are checked
    /// before the buffer is touched; output starts at `ubuf + count`.
    fn mirror_read(&self, m: &mut IocMirrorRw) -> SysResult<()> {
        let (beg, end) = (BaseElm::from(m.key_beg), BaseElm::from(m.key_end));
        if (beg.localization | end.localization) & LOCALIZE_PSEUDOFS_MASK != 0
            || encode_key(&beg) > encode_key(&end)
        {
            return Err(Errno::EINVAL);
        }
        let (start, end) = window(m)?;
        if self.read_signalled() {
            // A signal before the first element: success, nothing added,
            // key_cur where the scan stands (kernel-semantics.md §3.1).
            m.count = i32::try_from(start).map_err(|_| Errno::EFAULT)?;
            m.head.flags |= IOC_HEAD_INTR;
            return Ok(());
        }
        let mut req = MirrorReadReq {
            key_beg: beg,
            key_end: BaseElm::from(m.key_end),
            key_cur: m.key_cur.into(),
            tid_beg: m.tid_beg,
            tid_end: m.tid_end,
            nodata: m.head.flags & IOC_MIRROR_NODATA != 0,
            interrupted: false,
        };
        let buf: &mut [u8] = if start < end {
            // SAFETY: `ubuf` is valid and writable for `size` bytes (the
            // seam's contract) and `window` keeps `start..end` inside that.
            unsafe { slice::from_raw_parts_mut(m.ubuf.add(start), end - start) }
        } else {
            &mut []
        };
        // The PFS number is shifted as a 32-bit value: it wraps, unchecked.
        let id = (m.pfs_id as u32) & 0xFFFF;
        let n = self.pfs(id).mirror_read(&mut req, buf).map_err(errno)?;
        m.count = i32::try_from(start + n).map_err(|_| Errno::EFAULT)?;
        m.key_cur = req.key_cur.into();
        if req.interrupted {
            m.head.flags |= IOC_HEAD_INTR;
        }
        Ok(())
    }

    /// MIRROR_WRITE (kernel-semantics.md §4.1): consumes `ubuf[count..size)`;
    /// record errors go into the head, the ioctl itself fails only on a bad
    /// `size`.
    fn mirror_write(&self, m: &mut IocMirrorRw) -> SysResult<()> {
        if !(0..=MAX_WRITE_SIZE).contains(&m.size) {
            return Err(Errno::EINVAL);
        }
        let (start, end) = window(m)?;
        let records: &[u8] = if start < end {
            // SAFETY: `ubuf` is valid for `size` bytes (the seam's
            // contract); `window` keeps `start..end` inside that.
            unsafe { slice::from_raw_parts(m.ubuf.add(start), end - start) }
        } else {
            &[]
        };
        let mut req = MirrorWriteReq {
            key_beg: m.key_beg.into(),
            key_end: m.key_end.into(),
            key_cur: m.key_cur.into(),
            tid_beg: m.tid_beg,
            tid_end: m.tid_end,
            head_error: None,
        };
        let id = (m.pfs_id as u32) & 0xFFFF;
        let result = self.pfs(id).mirror_write(&mut req, records);
        m.key_beg = req.key_beg.into();
        m.key_end = req.key_end.into();
        m.key_cur = req.key_cur.into();
        let failure = match result {
            Ok(n) => {
                m.count = i32::try_from(start + n).map_err(|_| Errno::EFAULT)?;
                req.head_error
            }
            Err(e) => Some(errno(e)),
        };
        if let Some(e) = failure {
            m.head.flags |= IOC_HEAD_ERROR;
            m.head.error = e as i32;
        }
        Ok(())
    }

    /// ADD, DEL and GET_SNAPSHOT on the descriptor's PFS (ioctl-abi.md
    /// §9): the structure's checks fail the call, the rest goes to
    /// `head.error`.
    fn snapshot(&self, request: u32, s: &mut IocSnapshot) -> SysResult<()> {
        let mut req = SnapshotReq {
            index: s.index,
            count: s.count,
            snaps: s.snaps.map(SnapshotData::from),
            error: None,
            eof: false,
        };
        let mut pfs = self.pfs(self.home_pfs);
        let done = match request {
            HAMMERIOC_ADD_SNAPSHOT => pfs.add_snapshots(&mut req),
            HAMMERIOC_DEL_SNAPSHOT => pfs.del_snapshots(&mut req),
            _ => pfs.get_snapshots(&mut req),
        };
        match done {
            Err(e) if e.errno() == Errno::EINVAL => return Err(Errno::EINVAL),
            Err(e) => req.error = Some(errno(e)),
            Ok(()) => {}
        }
        s.index = req.index;
        s.count = req.count;
        s.snaps = req.snaps.map(Into::into);
        s.head.error = req.error.map_or(0, |e| e as i32);
        if req.eof {
            s.head.flags |= IOC_SNAPSHOT_EOF;
        }
        Ok(())
    }

    /// GET and SET_CONFIG on the descriptor's PFS (ioctl-abi.md §10):
    /// every failure, ENOENT for no config, goes to `head.error`.
    fn config(&self, request: u32, c: &mut IocConfig) -> SysResult<()> {
        let mut pfs = self.pfs(self.home_pfs);
        let failed = if request == HAMMERIOC_GET_CONFIG {
            match pfs.get_config() {
                Ok(Some(config)) => {
                    c.config = config;
                    None
                }
                Ok(None) => Some(Errno::ENOENT),
                Err(e) => Some(errno(e)),
            }
        } else {
            pfs.set_config(&c.config).err().map(errno)
        };
        c.head.error = failed.map_or(0, |e| e as i32);
        Ok(())
    }

    /// PRUNE on the descriptor's PFS (ioctl-abi.md §11): the kernel's
    /// checks before the elements are copied in, then the store's prune
    /// with the statistics carried in and out.
    fn prune(&self, p: &mut IocPrune) -> SysResult<()> {
        let nelms = usize::try_from(p.nelms)
            .ok()
            .filter(|&n| n <= MAX_PRUNE_ELMS)
            .ok_or(Errno::EINVAL)?;
        let mut req = PruneReq {
            all: p.head.flags & IOC_PRUNE_ALL != 0,
            elms: Vec::new(),
            key_beg: p.key_beg.into(),
            key_end: p.key_end.into(),
            key_cur: p.key_cur.into(),
            stats: PruneStats {
                scan_records: p.stat_scanrecords,
                raw_records: p.stat_rawrecords,
                dir_records: p.stat_dirrecords,
                bytes: p.stat_bytes,
                realignments: p.stat_realignments,
                oldest_tid: p.stat_oldest_tid,
            },
            interrupted: false,
        };
        req.check()?;
        if req.all && nelms > 0 {
            return Err(Errno::EINVAL);
        }
        if nelms > 0 && p.elms.is_null() {
            return Err(Errno::EFAULT);
        }
        let bytes: &[u8] = if nelms == 0 {
            &[]
        } else {
            // SAFETY: a non-NULL `elms` points at `nelms` elements in the
            // caller's memory (the seam's contract), read here as bytes
            // (copyin needs no alignment).
            unsafe { slice::from_raw_parts(p.elms.cast::<u8>(), nelms * size_of::<IocPruneElm>()) }
        };
        req.elms = bytes
            .chunks_exact(size_of::<IocPruneElm>())
            .map(|b| {
                let e = IocPruneElm::read_from_bytes(b).map_err(|_| Errno::EFAULT)?;
                Ok(PruneElm {
                    beg_tid: e.beg_tid,
                    end_tid: e.end_tid,
                    mod_tid: e.mod_tid,
                })
            })
            .collect::<SysResult<_>>()?;
        self.pfs(self.home_pfs).prune(&mut req).map_err(errno)?;
        p.key_cur = req.key_cur.into();
        let s = req.stats;
        p.stat_scanrecords = s.scan_records;
        p.stat_rawrecords = s.raw_records;
        p.stat_dirrecords = s.dir_records;
        p.stat_bytes = s.bytes;
        p.stat_realignments = s.realignments;
        p.stat_oldest_tid = s.oldest_tid;
        if req.interrupted {
            p.head.flags |= IOC_HEAD_INTR;
        }
        Ok(())
    }

    /// REBLOCK on the descriptor's PFS (ioctl-abi.md §12): the kernel's
    /// checks, then the store's reblock with the counts carried in and
    /// out.
    fn reblock(&self, r: &mut IocReblock) -> SysResult<()> {
        let mut req = ReblockReq {
            what: r.head.flags as u32 & crate::pfs::reblock::DO_FLAGS,
            free_level: r.free_level,
            key_beg: r.key_beg.into(),
            key_end: r.key_end.into(),
            key_cur: r.key_cur.into(),
            stats: ReblockStats {
                btree_count: r.btree_count,
                data_count: r.data_count,
                data_byte_count: r.data_byte_count,
                btree_moves: r.btree_moves,
                data_moves: r.data_moves,
                data_byte_moves: r.data_byte_moves,
            },
            interrupted: false,
        };
        req.check()?;
        self.pfs(self.home_pfs).reblock(&mut req).map_err(errno)?;
        r.key_cur = req.key_cur.into();
        let s = req.stats;
        r.btree_count = s.btree_count;
        r.data_count = s.data_count;
        r.data_byte_count = s.data_byte_count;
        r.btree_moves = s.btree_moves;
        r.data_moves = s.data_moves;
        r.data_byte_moves = s.data_byte_moves;
        if req.interrupted {
            r.head.flags |= IOC_HEAD_INTR;
        }
        Ok(())
    }

    fn synctid(&self, s: &mut IocSynctid) -> SysResult<()> {
        let op = match s.op {
            synctid_op::NONE => SynctidOp::None,
            synctid_op::ASYNC => SynctidOp::Async,
            synctid_op::SYNC1 => SynctidOp::Sync1,
            synctid_op::SYNC2 => SynctidOp::Sync2,
            _ => return Err(Errno::EOPNOTSUPP),
        };
        s.tid = self.store.borrow_mut().synctid(op).map_err(errno)?;
        Ok(())
    }

    fn version(&self, v: &mut IocVersion) -> SysResult<()> {
        if v.cur_version == 0 {
            v.cur_version = self.store.borrow().version().map_err(errno)?;
        }
        if !(MIN_VERSION..=MAX_VERSION).contains(&v.cur_version) {
            return Err(Errno::EINVAL);
        }
        v.min_version = MIN_VERSION;
        v.wip_version = WIP_VERSION;
        v.max_version = MAX_VERSION;
        Ok(())
    }

    /// Runs the handler on a copy of the caller's structure and copies it
    /// back only on success, as the ioctl layer does for `_IOWR`.
    ///
    /// # Safety
    /// `arg` must point to a live, writable `T`.
    unsafe fn copy_in_out<T>(
        &self,
        arg: *mut c_void,
        handler: impl FnOnce(&mut T) -> SysResult<()>,
    ) -> SysResult<()> {
        let arg = arg.cast::<T>();
        if arg.is_null() || !arg.is_aligned() {
            return Err(Errno::EFAULT);
        }
        // SAFETY: the caller guarantees a live `T` behind `arg`; the copy
        // leaves the caller's value untouched until the handler succeeds.
        let mut local = unsafe { ptr::read(arg) };
        handler(&mut local)?;
        // SAFETY: as above, and writable.
        unsafe { ptr::write(arg, local) };
        Ok(())
    }
}

/// `ubuf[count..size)` as offsets, checked as copyin/copyout would fault on
/// a NULL buffer or a negative offset.
fn window(m: &IocMirrorRw) -> SysResult<(usize, usize)> {
    let start = usize::try_from(m.count).map_err(|_| Errno::EFAULT)?;
    let end = usize::try_from(m.size).unwrap_or(0);
    if m.ubuf.is_null() && start < end {
        return Err(Errno::EFAULT);
    }
    Ok((start, end.max(start)))
}

/// The errno the kernel would fail with.
fn errno(e: PfsError) -> Errno {
    e.errno()
}

impl IoctlSeam for KernelDouble {
    unsafe fn ioctl(&self, fd: BorrowedFd<'_>, request: u32, arg: *mut c_void) -> SysResult<()> {
        // The descriptor must be open and on the store's filesystem; any
        // other filesystem has no HAMMER ioctls.
        if stat::fstat(fd.as_raw_fd())?.st_dev != self.dev {
            return Err(Errno::ENOTTY);
        }
        // SAFETY (all arms): the seam's contract is that `arg` points to the
        // structure `request` names, which is the type each arm decodes.
        unsafe {
            match request {
                HAMMERIOC_GET_PSEUDOFS
                | HAMMERIOC_SET_PSEUDOFS
                | HAMMERIOC_UPG_PSEUDOFS
                | HAMMERIOC_DGD_PSEUDOFS
                | HAMMERIOC_RMR_PSEUDOFS
                | HAMMERIOC_WAI_PSEUDOFS => {
                    self.copy_in_out(arg, |rw: &mut IocPseudofsRw| self.pseudofs(request, rw))
                }
                HAMMERIOC_MIRROR_READ => self.copy_in_out(arg, |m| self.mirror_read(m)),
                HAMMERIOC_MIRROR_WRITE => self.copy_in_out(arg, |m| self.mirror_write(m)),
                HAMMERIOC_SYNCTID => self.copy_in_out(arg, |s| self.synctid(s)),
                HAMMERIOC_GET_VERSION => self.copy_in_out(arg, |v| self.version(v)),
                HAMMERIOC_ADD_SNAPSHOT | HAMMERIOC_DEL_SNAPSHOT | HAMMERIOC_GET_SNAPSHOT => {
                    self.copy_in_out(arg, |s| self.snapshot(request, s))
                }
                HAMMERIOC_GET_CONFIG | HAMMERIOC_SET_CONFIG => {
                    self.copy_in_out(arg, |c| self.config(request, c))
                }
                HAMMERIOC_PRUNE => self.copy_in_out(arg, |p| self.prune(p)),
                HAMMERIOC_REBLOCK => self.copy_in_out(arg, |r| self.reblock(r)),
                _ => Err(Errno::EOPNOTSUPP),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::fs::File;
    use std::os::fd::{AsFd, OwnedFd};
    use std::path::Path;

    use super::*;
    use crate::ondisk::BaseElmLe;
    use crate::ondisk::{rectype, BaseElm, LOCALIZE_INODE, LOCALIZE_MISC, PFSD_SLAVE};
    use crate::pfs::kernel::ioctl::IocHead;
    use crate::pfs::kernel::KernelPfs;
    use crate::pfs::store::RecordId;
    use crate::wire::Mrecord;

    /// A store whose PFS#1 is a master with several generations of
    /// history: creations, rewrites and deletions.
    fn store_with_history() -> (tempfile::TempDir, std::path::PathBuf, Vec<u64>) {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("s");
        let mut s = Store::create(&root).unwrap();
        s.set_pfs_id(1);
        s.set_pseudofs(&PseudofsData {
            sync_beg_tid: 1,
            sync_end_tid: 1,
            ..PseudofsData::default()
        })
        .unwrap();
        let mut tids = Vec::new();
        for g in 0..6i64 {
            let mut t = s.begin().unwrap();
            for f in 0..40i64 {
                let obj = 0x1_0000_0100 + f;
                let data = RecordId {
                    localization: LOCALIZE_MISC,
                    obj_id: obj,
                    rec_type: rectype::DATA,
                    key: 0x4000,
                };
                if g > 0 && (f + g) % 5 == 0 {
                    t.delete(&data).unwrap();
                } else if g == 0 || (f + g) % 3 == 0 {
                    let inode = RecordId {
                        localization: LOCALIZE_INODE,
                        obj_id: obj,
                        rec_type: rectype::INODE,
                        key: 0,
                    };
                    t.put(&inode, 1, &[g as u8; 128]).unwrap();
                    let body: Vec<u8> = (0..700 + f * 13).map(|i| (i ^ f ^ g) as u8).collect();
                    t.put(&data, 2, &body).unwrap();
                }
            }
            tids.push(t.commit().unwrap());
        }
        (dir, root, tids)
    }

    fn kernel(root: &Path) -> KernelPfs<KernelDouble> {
        let fd = OwnedFd::from(File::open(root).unwrap());
        let double = KernelDouble::new(Store::open(root).unwrap()).unwrap();
        KernelPfs::open(fd, double).map_err(|e| e.0).unwrap()
    }

    /// Every call's (count, key_cur, bytes) of a whole scan.
    fn read_calls(
        pfs: &mut dyn Pfs,
        mut req: MirrorReadReq,
        bufsize: usize,
    ) -> Vec<(usize, BaseElm, Vec<u8>)> {
        let mut buf = vec![0u8; bufsize];
        let mut calls = Vec::new();
        loop {
            let n = pfs.mirror_read(&mut req, &mut buf).unwrap();
            calls.push((n, req.key_cur, buf[..n].to_vec()));
            req.key_beg = req.key_cur;
            if n == 0 {
                return calls;
            }
        }
    }

    /// The heart of the proof: the same requests on the same store, once
    /// on the store directly and once marshalled through the raw repr(C)
    /// structures and the double, give byte-identical results.
    #[test]
    fn store_and_kernel_backend_agree_byte_for_byte() {
        let (_d, root, tids) = store_with_history();
        let mut store = Store::open(&root).unwrap();
        let mut k = kernel(&root);
        store.set_pfs_id(1);
        k.set_pfs_id(1);
        assert_eq!(store.get_pseudofs().unwrap(), k.get_pseudofs().unwrap());
        let last = *tids.last().unwrap();
        let mut full = Vec::new();
        for (beg, nodata, bufsize) in [
            (1, false, 524_288),
            (1, false, 3000),
            (tids[3], false, 2048),
            (tids[5], false, 524_288),
            (1, true, 1024),
        ] {
            let mut req = MirrorReadReq::new(beg, last);
            req.nodata = nodata;
            let a = read_calls(&mut store, req, bufsize);
            let b = read_calls(&mut k, req, bufsize);
            assert!(
                a.len() > 1 && a == b,
                "scan {beg:#x} nodata={nodata} buf={bufsize}"
            );
            if beg == 1 && !nodata && bufsize == 3000 {
                full = a;
            }
        }

        // Both write the same batches into two new slaves.
        for (pfs, id) in [(&mut store as &mut dyn Pfs, 2), (&mut k as &mut dyn Pfs, 3)] {
            pfs.set_pfs_id(id);
            pfs.set_pseudofs(&PseudofsData {
                sync_beg_tid: 1,
                sync_end_tid: 1,
                mirror_flags: PFSD_SLAVE,
                ..PseudofsData::default()
            })
            .unwrap();
        }
        let (mut sreq, mut kreq) = (MirrorWriteReq::new(1, last), MirrorWriteReq::new(1, last));
        for (_, _, batch) in &full {
            let n1 = store.mirror_write(&mut sreq, batch).unwrap();
            let n2 = k.mirror_write(&mut kreq, batch).unwrap();
            assert_eq!((n1, sreq.head_error), (batch.len(), None));
            assert_eq!(n2, n1);
            // Same cursors apart from the PFS bits each target put in.
            for (a, b) in [
                (sreq.key_beg, kreq.key_beg),
                (sreq.key_end, kreq.key_end),
                (sreq.key_cur, kreq.key_cur),
            ] {
                assert_eq!((a.localization >> 16, b.localization >> 16), (2, 3));
                assert_eq!(
                    BaseElm {
                        localization: a.localization & 0xFFFF,
                        ..a
                    },
                    BaseElm {
                        localization: b.localization & 0xFFFF,
                        ..b
                    }
                );
            }
        }
        let records = |s: &Store| {
            let mut v = Vec::new();
            s.for_each_record(|l, d| {
                let mut l = *l;
                l.base.localization &= 0xFFFF;
                v.push((l, d.to_vec()));
            })
            .unwrap();
            v
        };
        let mut check = Store::open(&root).unwrap();
        check.set_pfs_id(2);
        let slave2 = records(&check);
        check.set_pfs_id(3);
        assert!(!slave2.is_empty() && slave2 == records(&check));
        // Each slave reads back the same through both backends (records
        // carry their PFS in the localization, so slaves differ).
        for id in [2, 3] {
            store.set_pfs_id(id);
            k.set_pfs_id(id);
            let a = read_calls(&mut store, MirrorReadReq::new(1, last), 524_288);
            assert!(a == read_calls(&mut k, MirrorReadReq::new(1, last), 524_288));
        }
    }

    fn raw<T>(
        k: &KernelPfs<KernelDouble>,
        fd: BorrowedFd<'_>,
        code: u32,
        arg: &mut T,
    ) -> SysResult<()> {
        // SAFETY: each test passes the structure `code` names, with valid
        // buffers.
        unsafe { k.seam().ioctl(fd, code, (arg as *mut T).cast()) }
    }

    fn pseudofs_rw(pfs_id: i32, ondisk: &mut [u8; PseudofsData::SIZE]) -> IocPseudofsRw {
        IocPseudofsRw {
            head: IocHead::default(),
            pfs_id,
            bytes: 292,
            version: 1,
            reserved01: 0,
            ondisk,
        }
    }

    fn mirror_rw(ubuf: *mut u8, size: i32) -> IocMirrorRw {
        IocMirrorRw {
            head: IocHead::default(),
            key_beg: BaseElm::KEY_BEG_INIT.into(),
            key_end: BaseElm::KEY_END_INIT.into(),
            key_cur: BaseElmLe::default(),
            tid_beg: 1,
            tid_end: u64::MAX,
            ubuf,
            count: 0,
            size,
            pfs_id: 1,
            reserved01: 0,
            shared_uuid: [0; 16],
        }
    }

    /// ioctl-abi.md §1, §3, §5, §6; kernel-semantics.md §3.1, §4.1, §5.
    #[test]
    fn double_rejects_what_the_kernel_rejects() {
        let (_d, root, _) = store_with_history();
        let k = kernel(&root);
        let file = File::open(&root).unwrap();
        let fd = file.as_fd();
        let mut ondisk = [0u8; 292];

        let mut rw = pseudofs_rw(1, &mut ondisk);
        rw.bytes = 291;
        assert_eq!(
            raw(&k, fd, HAMMERIOC_GET_PSEUDOFS, &mut rw),
            Err(Errno::EINVAL)
        );
        for id in [65536, -2] {
            let mut rw = pseudofs_rw(id, &mut ondisk);
            assert_eq!(
                raw(&k, fd, HAMMERIOC_GET_PSEUDOFS, &mut rw),
                Err(Errno::EINVAL)
            );
        }
        for version in [0, 2] {
            let mut rw = pseudofs_rw(1, &mut ondisk);
            rw.version = version;
            assert_eq!(
                raw(&k, fd, HAMMERIOC_SET_PSEUDOFS, &mut rw),
                Err(Errno::EINVAL)
            );
        }
        // A failed GET copies nothing back; a successful one sets bytes.
        let mut rw = pseudofs_rw(9, &mut ondisk);
        rw.bytes = 300;
        assert_eq!(
            raw(&k, fd, HAMMERIOC_GET_PSEUDOFS, &mut rw),
            Err(Errno::ENOENT)
        );
        assert_eq!((rw.pfs_id, rw.bytes), (9, 300));
        let mut rw = pseudofs_rw(-1, &mut ondisk);
        rw.bytes = 300;
        raw(&k, fd, HAMMERIOC_GET_PSEUDOFS, &mut rw).unwrap();
        assert_eq!((rw.pfs_id, rw.bytes), (0, 292));
        let mut rw = pseudofs_rw(1, &mut ondisk);
        rw.ondisk = ptr::null_mut();
        assert_eq!(
            raw(&k, fd, HAMMERIOC_WAI_PSEUDOFS, &mut rw),
            Err(Errno::EFAULT)
        );

        // Codes of other ioctls or of Linux's encoding are unknown.
        for code in [
            0xC030_681C,
            0x8128_6810,
            0x4128_6810,
            0xC030_6806 & !0x8000_0000,
        ] {
            let mut rw = pseudofs_rw(1, &mut ondisk);
            assert_eq!(
                raw(&k, fd, code, &mut rw),
                Err(Errno::EOPNOTSUPP),
                "{code:#x}"
            );
        }

        let mut buf = vec![0u8; 4096];
        for size in [-1, 0x7000_0001] {
            let mut m = mirror_rw(buf.as_mut_ptr(), size);
            assert_eq!(
                raw(&k, fd, HAMMERIOC_MIRROR_WRITE, &mut m),
                Err(Errno::EINVAL)
            );
        }
        let mut m = mirror_rw(buf.as_mut_ptr(), 4096);
        m.key_beg.localization |= 0x1_0000;
        assert_eq!(
            raw(&k, fd, HAMMERIOC_MIRROR_READ, &mut m),
            Err(Errno::EINVAL)
        );
        let mut m = mirror_rw(buf.as_mut_ptr(), 4096);
        std::mem::swap(&mut m.key_beg, &mut m.key_end);
        assert_eq!(
            raw(&k, fd, HAMMERIOC_MIRROR_READ, &mut m),
            Err(Errno::EINVAL)
        );
        let mut m = mirror_rw(ptr::null_mut(), 4096);
        assert_eq!(
            raw(&k, fd, HAMMERIOC_MIRROR_READ, &mut m),
            Err(Errno::EFAULT)
        );

        // A record cut short (a size that ends inside it) is a record
        // error: the ioctl succeeds, the head says EINVAL, nothing is used.
        let mut skip = Mrecord::Skip {
            beg: BaseElm::KEY_BEG_INIT,
            end: BaseElm::KEY_END_INIT,
        }
        .to_vec();
        let mut m = mirror_rw(skip.as_mut_ptr(), 17);
        raw(&k, fd, HAMMERIOC_MIRROR_WRITE, &mut m).unwrap();
        assert_eq!(
            (m.head.flags, m.head.error, m.count),
            (IOC_HEAD_ERROR, Errno::EINVAL as i32, 0)
        );

        let mut s = IocSynctid {
            op: 4,
            ..IocSynctid::default()
        };
        assert_eq!(
            raw(&k, fd, HAMMERIOC_SYNCTID, &mut s),
            Err(Errno::EOPNOTSUPP)
        );
        let mut v = IocVersion {
            head: IocHead::default(),
            cur_version: 9,
            min_version: 0,
            wip_version: 0,
            max_version: 0,
            description: [0; 64],
        };
        assert_eq!(
            raw(&k, fd, HAMMERIOC_GET_VERSION, &mut v),
            Err(Errno::EINVAL)
        );
        v.cur_version = 0;
        raw(&k, fd, HAMMERIOC_GET_VERSION, &mut v).unwrap();
        assert_eq!(
            (v.cur_version, v.min_version, v.wip_version, v.max_version),
            (7, 1, 8, 7)
        );

        // A structure at an address its type cannot have.
        let mut bytes = [0u64; 30];
        let odd = bytes
            .as_mut_ptr()
            .cast::<u8>()
            .wrapping_add(1)
            .cast::<c_void>();
        // SAFETY: the double checks the alignment before reading.
        let r = unsafe { k.seam().ioctl(fd, HAMMERIOC_MIRROR_READ, odd) };
        assert_eq!(r, Err(Errno::EFAULT));
    }

    /// A descriptor on a filesystem other than the store's has no HAMMER
    /// ioctls.
    #[cfg(target_os = "linux")]
    #[test]
    fn descriptor_off_the_store_is_enotty() {
        let (_d, root, _) = store_with_history();
        let k = kernel(&root);
        let proc = File::open("/proc/self").unwrap();
        let mut ondisk = [0u8; 292];
        let mut rw = pseudofs_rw(1, &mut ondisk);
        assert_eq!(
            raw(&k, proc.as_fd(), HAMMERIOC_GET_PSEUDOFS, &mut rw),
            Err(Errno::ENOTTY)
        );
    }

    /// What the double rejects reaches the commands as the original's
    /// strerror texts; D8's interrupted transitions are failures.
    #[test]
    fn rejections_become_the_originals_messages() {
        let (_d, root, _) = store_with_history();
        let mut k = kernel(&root);
        k.set_pfs_id(70000);
        assert_eq!(
            k.get_pseudofs().unwrap_err().to_string(),
            "Invalid argument"
        );
        k.set_pfs_id(9);
        assert_eq!(
            k.get_pseudofs().unwrap_err().to_string(),
            "No such file or directory"
        );
        k.set_pfs_id(1);
        let mut req = MirrorWriteReq::new(1, 2);
        assert_eq!(k.mirror_write(&mut req, &[0x72; 40]).unwrap(), 0);
        assert_eq!(req.head_error, Some(Errno::EINVAL));

        // spec: protocol.md D8.
        k.downgrade().unwrap();
        k.seam().interrupt_next(HAMMERIOC_UPG_PSEUDOFS);
        let e = k.upgrade().unwrap_err();
        assert_eq!(e.to_string(), "Interrupted system call");
        assert!(k.get_pseudofs().unwrap().is_slave());
        k.seam().interrupt_next(HAMMERIOC_RMR_PSEUDOFS);
        assert_eq!(
            k.destroy().unwrap_err().to_string(),
            "Interrupted system call"
        );
        k.get_pseudofs().unwrap();
        k.destroy().unwrap();
        assert_eq!(k.get_pseudofs().unwrap_err().errno(), Errno::ENOENT);
    }
}

/// The snapshot, config and prune ioctls through the raw structures and
/// the double, against the store answering the same requests directly.
#[cfg(test)]
mod retain_tests {
    use std::fs::File;
    use std::os::fd::{AsFd, OwnedFd};
    use std::path::Path;

    use super::*;
    use crate::ondisk::{BaseElmLe, ConfigData};
    use crate::pfs::kernel::ioctl::IocHead;
    use crate::pfs::kernel::KernelPfs;
    use crate::pfs::retain::MAX_TID;

    fn kernel_in(root: &Path, pfs: u32, bounds: (usize, usize)) -> KernelPfs<KernelDouble> {
        let fd = OwnedFd::from(File::open(root).unwrap());
        let mut store = Store::open(root).unwrap();
        store.set_pfs_id(pfs);
        store.set_prune_bounds(bounds.0, bounds.1);
        KernelPfs::open(fd, KernelDouble::new(store).unwrap())
            .map_err(|e| e.0)
            .unwrap()
    }

    /// The same history in two stores (same TIDs, same records).
    fn twin_stores() -> (
        tempfile::TempDir,
        std::path::PathBuf,
        std::path::PathBuf,
        Vec<u64>,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let mut points = Vec::new();
        for name in ["a", "b"] {
            let mut s = Store::create(&dir.path().join(name)).unwrap();
            s.set_pfs_id(1);
            s.set_pseudofs(&PseudofsData::default()).unwrap();
            let mut p = Vec::new();
            for g in 0..5u8 {
                let mut t = s.begin().unwrap();
                for f in 0..30i64 {
                    let id = crate::pfs::store::RecordId {
                        localization: crate::ondisk::LOCALIZE_MISC,
                        obj_id: 0x100 + f,
                        rec_type: crate::ondisk::rectype::DATA,
                        key: 0x4000,
                    };
                    if (f + i64::from(g)) % 3 == 0 {
                        t.delete(&id).unwrap();
                    } else {
                        t.put(&id, 2, &vec![g ^ f as u8; 300 + 40 * f as usize])
                            .unwrap();
                    }
                }
                t.commit().unwrap();
                p.push(s.synctid(SynctidOp::None).unwrap());
            }
            points = p;
        }
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        (dir, a, b, points)
    }

    fn snapshots(pfs: &dyn Pfs) -> Vec<SnapshotData> {
        let mut req = SnapshotReq::default();
        let mut all = Vec::new();
        loop {
            pfs.get_snapshots(&mut req).unwrap();
            all.extend_from_slice(req.held());
            if req.eof {
                return all;
            }
        }
    }

    fn records(root: &Path) -> Vec<(BaseElm, Vec<u8>)> {
        let mut s = Store::open(root).unwrap();
        s.set_pfs_id(1);
        let mut v = Vec::new();
        s.for_each_record(|l, d| {
            if l.base.rec_type != crate::ondisk::rectype::INODE {
                v.push((l.base, d.to_vec()));
            }
        })
        .unwrap();
        v
    }

    #[test]
    fn store_and_kernel_backend_keep_and_forget_alike() {
        let (_d, a, b, points) = twin_stores();
        let mut store = Store::open(&a).unwrap();
        store.set_pfs_id(1);
        store.set_prune_bounds(4, 9);
        let mut k = kernel_in(&b, 1, (4, 9));
        let snaps: Vec<_> = points
            .iter()
            .map(|&t| SnapshotData::new(t, t * 3, b"daily"))
            .collect();
        for pfs in [&mut store as &mut dyn Pfs, &mut k] {
            let mut req = SnapshotReq::of(&snaps[..3]).unwrap();
            pfs.add_snapshots(&mut req).unwrap();
            assert_eq!((req.index, req.error), (3, None));
            let mut req = SnapshotReq::of(&snaps[2..]).unwrap();
            pfs.add_snapshots(&mut req).unwrap();
            assert_eq!((req.index, req.error), (0, Some(Errno::EEXIST)));
            req.index = 1;
            pfs.add_snapshots(&mut req).unwrap();
            assert_eq!((req.index, req.error), (3, None));
            let mut del = SnapshotReq::of(&[snaps[1], snaps[1]]).unwrap();
            pfs.del_snapshots(&mut del).unwrap();
            assert_eq!((del.index, del.error), (1, Some(Errno::ENOENT)));
            assert_eq!(pfs.get_config().unwrap(), None);
            pfs.set_config(&ConfigData::from_text(b"snapshots 1d 60d\n").unwrap())
                .unwrap();
        }
        assert_eq!(snapshots(&store), snapshots(&k));
        assert_eq!(snapshots(&k).len(), 4);
        assert_eq!(store.get_config().unwrap(), k.get_config().unwrap());
        // Prune both a call at a time with the same requests.
        let elms = vec![
            PruneElm {
                beg_tid: points[1],
                end_tid: points[3],
                mod_tid: points[3] - points[1],
            },
            PruneElm {
                beg_tid: 1,
                end_tid: points[1],
                mod_tid: points[1] - 1,
            },
        ];
        let (mut ra, mut rb) = (
            PruneReq::new(false, elms.clone()),
            PruneReq::new(false, elms),
        );
        let mut calls = 0;
        loop {
            store.prune(&mut ra).unwrap();
            k.prune(&mut rb).unwrap();
            calls += 1;
            assert_eq!(
                (ra.key_cur, ra.stats, ra.interrupted),
                (rb.key_cur, rb.stats, rb.interrupted)
            );
            if !ra.interrupted {
                break;
            }
            ra.key_end = ra.key_cur;
            rb.key_end = rb.key_cur;
        }
        assert!(calls > 2 && ra.stats.raw_records > 0);
        assert!(records(&a) == records(&b));
        // Not the descriptor's PFS: refused.
        k.set_pfs_id(0);
        assert_eq!(k.prune(&mut rb).unwrap_err().errno(), Errno::EXDEV);
    }

    fn raw<T>(k: &KernelPfs<KernelDouble>, code: u32, arg: &mut T) -> SysResult<()> {
        let f = File::open(k.seam().store.borrow().root()).unwrap();
        // SAFETY: each test passes the structure `code` names, with valid
        // buffers.
        unsafe { k.seam().ioctl(f.as_fd(), code, (arg as *mut T).cast()) }
    }

    fn prune_rw(elms: &mut [IocPruneElm]) -> IocPrune {
        IocPrune {
            head: IocHead::default(),
            nelms: elms.len() as i32,
            reserved01: 0,
            key_beg: BaseElm {
                obj_id: i64::MIN,
                ..BaseElm::default()
            }
            .into(),
            key_end: BaseElm {
                obj_id: i64::MAX,
                localization: 0xFFFF,
                ..BaseElm::default()
            }
            .into(),
            key_cur: BaseElmLe::default(),
            stat_scanrecords: 0,
            stat_rawrecords: 0,
            stat_dirrecords: 0,
            stat_bytes: 0,
            stat_realignments: 0,
            stat_oldest_tid: MAX_TID,
            reserved02: [0; 6],
            elms: elms.as_mut_ptr(),
        }
    }

    /// ioctl-abi.md §9-11: what fails the call, with nothing copied back.
    #[test]
    fn double_rejects_what_the_kernel_rejects_in_the_new_structures() {
        let (_d, a, _b, _) = twin_stores();
        let k = kernel_in(&a, 1, (2048, 1 << 16));
        let snap = |index, count| IocSnapshot {
            head: IocHead::default(),
            reserved01: 0,
            index,
            count,
            pad: 0,
            snaps: [SnapshotData::new(5, 6, b"x").into(); 16],
        };
        for (code, index, count) in [
            (HAMMERIOC_ADD_SNAPSHOT, 0, 17),
            (HAMMERIOC_ADD_SNAPSHOT, 3, 2),
            (HAMMERIOC_DEL_SNAPSHOT, 0, 17),
            (HAMMERIOC_GET_SNAPSHOT, 1, 1),
            (HAMMERIOC_GET_SNAPSHOT, 0, 17),
        ] {
            let mut s = snap(index, count);
            assert_eq!(raw(&k, code, &mut s), Err(Errno::EINVAL), "{code:#x}");
            assert_eq!((s.index, s.count), (index, count), "nothing copied back");
        }
        let mut s = snap(0, 1);
        raw(&k, HAMMERIOC_DEL_SNAPSHOT, &mut s).unwrap();
        assert_eq!((s.index, s.head.error), (0, Errno::ENOENT as i32));
        let mut s = snap(0, 0);
        raw(&k, HAMMERIOC_GET_SNAPSHOT, &mut s).unwrap();
        assert_eq!((s.count, s.head.flags), (0, IOC_SNAPSHOT_EOF));
        let mut c = IocConfig {
            head: IocHead::default(),
            reserved01: 0,
            reserved02: 0,
            reserved03: [0; 4],
            config: ConfigData::default(),
        };
        raw(&k, HAMMERIOC_GET_CONFIG, &mut c).unwrap();
        assert_eq!(c.head.error, Errno::ENOENT as i32);

        let mut elms = [IocPruneElm {
            beg_tid: 1,
            end_tid: 10,
            mod_tid: 9,
        }];
        let mut bad = Vec::new();
        let mut p = prune_rw(&mut elms);
        p.nelms = -1;
        bad.push(p);
        let mut p = prune_rw(&mut elms);
        p.nelms = MAX_PRUNE_ELMS as i32 + 1;
        bad.push(p);
        let mut p = prune_rw(&mut elms);
        p.head.flags = IOC_PRUNE_ALL;
        bad.push(p);
        let mut p = prune_rw(&mut elms);
        p.key_beg.localization = 0x1_0000.into();
        bad.push(p);
        let mut zero = [IocPruneElm {
            beg_tid: 1,
            end_tid: 10,
            mod_tid: 0,
        }];
        bad.push(prune_rw(&mut zero));
        for mut p in bad {
            assert_eq!(raw(&k, HAMMERIOC_PRUNE, &mut p), Err(Errno::EINVAL));
            assert_eq!(p.stat_scanrecords, 0);
        }
        let mut p = prune_rw(&mut elms);
        p.elms = ptr::null_mut();
        assert_eq!(raw(&k, HAMMERIOC_PRUNE, &mut p), Err(Errno::EFAULT));
        // A good one: statistics added to, key_cur without PFS bits.
        let mut p = prune_rw(&mut []);
        p.head.flags = IOC_PRUNE_ALL;
        p.stat_scanrecords = 1000;
        raw(&k, HAMMERIOC_PRUNE, &mut p).unwrap();
        assert!(p.stat_scanrecords > 1000 && p.stat_rawrecords > 0);
        assert_eq!(p.head.flags, IOC_PRUNE_ALL);
        assert_eq!(BaseElm::from(p.key_cur).localization & !0xFFFF, 0);
    }

    /// ioctl-abi.md §12: REBLOCK through the seam, its bad structures
    /// refused with nothing copied back, a good one compacting the PFS's
    /// payload file while every record reads the same.
    #[test]
    fn double_reblocks_the_descriptors_pfs() {
        let (_d, a, _b, _) = twin_stores();
        let mut k = kernel_in(&a, 1, (2048, 1 << 16));
        let mut all = PruneReq::new(true, Vec::new());
        k.prune(&mut all).unwrap();
        while all.interrupted {
            all.key_end = all.key_cur;
            k.prune(&mut all).unwrap();
        }
        let records = |k: &KernelPfs<KernelDouble>| {
            let mut v = Vec::new();
            let store = k.seam().store.borrow();
            store
                .for_each_record(|l, d| v.push((l.base, d.to_vec())))
                .unwrap();
            v
        };
        let before = records(&k);
        let good = crate::pfs::ReblockReq::new(crate::pfs::reblock::DO_FLAGS, 100);
        let rw = |req: &crate::pfs::ReblockReq| IocReblock {
            head: IocHead {
                flags: req.what as i32,
                ..IocHead::default()
            },
            free_level: req.free_level,
            reserved01: 0,
            key_beg: req.key_beg.into(),
            key_end: req.key_end.into(),
            key_cur: BaseElmLe::default(),
            btree_count: 0,
            reserved02: 0,
            data_count: 0,
            data_byte_count: 0,
            btree_moves: 0,
            reserved03: 0,
            data_moves: 0,
            data_byte_moves: 0,
            allpfs: 0,
            vol_no: -1,
            reserved04: 0,
        };
        for bad in [
            |r: &mut IocReblock| r.free_level = -1,
            |r: &mut IocReblock| r.key_end.localization = 0x1_FFFF.into(),
            |r: &mut IocReblock| r.key_beg.obj_id = i64::MAX.into(),
        ] {
            let mut r = rw(&good);
            bad(&mut r);
            assert_eq!(raw(&k, HAMMERIOC_REBLOCK, &mut r), Err(Errno::EINVAL));
            assert_eq!(r.data_count, 0);
        }
        let mut req = good;
        k.reblock(&mut req).unwrap();
        assert!(!req.interrupted);
        let s = req.stats;
        assert!(s.data_moves > 0 && s.data_moves == s.data_count, "{s:?}");
        assert_eq!(s.data_byte_moves, s.data_byte_count);
        assert!(s.btree_count > 0);
        assert_eq!(records(&k), before);
        // Another PFS than the descriptor's: refused.
        k.set_pfs_id(4);
        let mut req = crate::pfs::ReblockReq::new(crate::pfs::reblock::DO_DATA, 100);
        assert_eq!(k.reblock(&mut req).unwrap_err().errno(), Errno::EXDEV);
    }
}
