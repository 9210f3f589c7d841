//! A stand-in for the DragonFly kernel behind the ioctl seam: it decodes the
//! raw `#[repr(C)]` request structures as `hammer_ioctl()` does, rejects
//! what the kernel rejects, serves the request from a store and writes the
//! results back, so the kernel backend's marshalling is proven on any Unix
//! (spec: ioctl-abi.md §1-6, kernel-semantics.md §3.1, §4.1, §5).

use std::cell::{Cell, RefCell};
use std::ffi::c_void;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::ptr;
use std::slice;

use nix::errno::Errno;
use nix::sys::stat;

use super::kernel::ioctl::{
    synctid_op, IocMirrorRw, IocPseudofsRw, IocSynctid, IocVersion, HAMMERIOC_DGD_PSEUDOFS,
    HAMMERIOC_GET_PSEUDOFS, HAMMERIOC_GET_VERSION, HAMMERIOC_MIRROR_READ, HAMMERIOC_MIRROR_WRITE,
    HAMMERIOC_RMR_PSEUDOFS, HAMMERIOC_SET_PSEUDOFS, HAMMERIOC_SYNCTID, HAMMERIOC_UPG_PSEUDOFS,
    HAMMERIOC_WAI_PSEUDOFS, IOC_HEAD_ERROR, IOC_HEAD_INTR, IOC_MIRROR_NODATA,
};
use super::kernel::{IoctlSeam, PFS_ID_AUTO, PSEUDOFS_VERSION};
use super::store::{encode_key, Store};
use super::{MirrorReadReq, MirrorWriteReq, Pfs, PfsError, SynctidOp};
use crate::ondisk::{BaseElm, PseudofsData, LOCALIZE_PSEUDOFS_MASK};

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
