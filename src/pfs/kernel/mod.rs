//! The kernel backend: `trait Pfs` on HAMMER's ioctls, the request
//! structures filled exactly as the original tool fills them, every call
//! going through one narrow seam that a test double can take over (spec:
//! ioctl-abi.md, kernel-semantics.md §3-5).

use std::cell::Cell;
use std::ffi::c_void;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use nix::errno::Errno;

pub mod ioctl;

use super::{
    MirrorReadReq, MirrorWriteReq, Pfs, PruneReq, PruneStats, ReblockReq, ReblockStats, Result,
    SnapshotReq, SynctidOp,
};
use crate::ondisk::{BaseElm, ConfigData, HammerUuid, PseudofsData, SnapshotData};
use ioctl::{
    synctid_op, IocConfig, IocHead, IocMirrorRw, IocPrune, IocPruneElm, IocPseudofsRw, IocReblock,
    IocSnapshot, IocSynctid, IocVersion, HAMMERIOC_ADD_SNAPSHOT, HAMMERIOC_DEL_SNAPSHOT,
    HAMMERIOC_DGD_PSEUDOFS, HAMMERIOC_GET_CONFIG, HAMMERIOC_GET_PSEUDOFS, HAMMERIOC_GET_SNAPSHOT,
    HAMMERIOC_GET_VERSION, HAMMERIOC_MIRROR_READ, HAMMERIOC_MIRROR_WRITE, HAMMERIOC_PRUNE,
    HAMMERIOC_REBLOCK, HAMMERIOC_RMR_PSEUDOFS, HAMMERIOC_SET_CONFIG, HAMMERIOC_SET_PSEUDOFS,
    HAMMERIOC_SYNCTID, HAMMERIOC_UPG_PSEUDOFS, HAMMERIOC_WAI_PSEUDOFS, IOC_HEAD_ERROR,
    IOC_HEAD_INTR, IOC_MIRROR_NODATA, IOC_PRUNE_ALL, IOC_SNAPSHOT_EOF, SNAPS_PER_IOCTL,
};

/// `HAMMER_IOC_PSEUDOFS_VERSION`: the only version SET_PSEUDOFS accepts.
pub const PSEUDOFS_VERSION: u32 = 1;
/// `pfs_id` −1: the PFS of the inode the descriptor refers to.
pub const PFS_ID_AUTO: i32 = -1;

/// The one place where a request reaches the kernel (or its stand-in).
pub trait IoctlSeam {
    /// ioctl(2): `request` on `fd` with `arg`. As on DragonFly, the
    /// structure is copied in before the handler runs and copied back out
    /// only when it succeeds.
    ///
    /// # Safety
    /// `arg` must point to a live, writable value of the `#[repr(C)]`
    /// structure that `request` names (`ioctl`), and every buffer it
    /// points to must be valid for the length it states: `ondisk` for 292
    /// bytes, `ubuf` for `size` bytes, writable where the request writes
    /// (GET_PSEUDOFS's `ondisk`, MIRROR_READ's `ubuf`).
    unsafe fn ioctl(
        &self,
        fd: BorrowedFd<'_>,
        request: u32,
        arg: *mut c_void,
    ) -> std::result::Result<(), Errno>;
}

/// The real system call.
#[derive(Clone, Copy, Debug, Default)]
pub struct SysIoctl;

impl IoctlSeam for SysIoctl {
    unsafe fn ioctl(
        &self,
        fd: BorrowedFd<'_>,
        request: u32,
        arg: *mut c_void,
    ) -> std::result::Result<(), Errno> {
        // SAFETY: the caller guarantees that `arg` and the buffers it points
        // to match `request` (this function's contract); `fd` is borrowed,
        // so it stays open for the call. The request type is c_ulong on the
        // BSDs and glibc, c_int on musl: `as _` keeps the 32-bit pattern.
        let rc = unsafe { libc::ioctl(fd.as_raw_fd(), request as _, arg) };
        Errno::result(rc).map(drop)
    }
}

/// A HAMMER descriptor: `open(path, O_RDONLY)` of a file or directory on
/// the mount (ioctl-abi.md §7) and the PFS the next request addresses.
pub struct KernelPfs<S: IoctlSeam> {
    fd: OwnedFd,
    /// Always 0..=65535 after `open`, or out of range (the kernel says
    /// EINVAL) when a caller addressed an impossible id.
    pfs_id: i32,
    /// The PFS of the descriptor's own inode (the probe's resolved id),
    /// on which the snapshot, config and prune requests act.
    home_pfs: i32,
    seam: S,
    /// The shared uuid of the PFS last read by GET_PSEUDOFS, which the tool
    /// copies into every mirror request (the kernel ignores it).
    shared_uuid: Cell<Option<(i32, HammerUuid)>>,
}

impl<S: IoctlSeam> KernelPfs<S> {
    /// The backend probe: GET_PSEUDOFS with `pfs_id` −1 on `fd`. Success
    /// means a HAMMER filesystem and resolves the descriptor's own PFS;
    /// on failure the errno and the descriptor come back.
    pub fn open(fd: OwnedFd, seam: S) -> std::result::Result<Self, (Errno, OwnedFd)> {
        let mut k = KernelPfs {
            fd,
            pfs_id: PFS_ID_AUTO,
            home_pfs: PFS_ID_AUTO,
            seam,
            shared_uuid: Cell::new(None),
        };
        match k.get(PFS_ID_AUTO) {
            Ok((id, _)) => {
                k.pfs_id = id;
                k.home_pfs = id;
                Ok(k)
            }
            Err(e) => Err((e, k.fd)),
        }
    }

    /// The stand-in behind the seam (tests reach the double through it).
    pub fn seam(&self) -> &S {
        &self.seam
    }

    /// Issues `request` with `arg`.
    ///
    /// # Safety
    /// `T` must be the structure `request` names, and its buffer pointers
    /// valid as `IoctlSeam::ioctl` requires.
    unsafe fn call<T>(&self, request: u32, arg: &mut T) -> std::result::Result<(), Errno> {
        // SAFETY: `arg` is a live exclusive reference, so writable for the
        // call; the caller vouches for its type and buffers.
        unsafe {
            self.seam
                .ioctl(self.fd.as_fd(), request, (arg as *mut T).cast())
        }
    }

    /// A pseudofs_rw request prepared as the tool's `clrpfs` does (zeroed,
    /// `bytes` 292, `version` 1) around `ondisk`, which the kernel reads
    /// (SET, WAI) or fills (GET). Returns the structure as copied back.
    fn pseudofs(
        &self,
        request: u32,
        pfs_id: i32,
        ondisk: &mut [u8; PseudofsData::SIZE],
    ) -> std::result::Result<IocPseudofsRw, Errno> {
        let mut rw = IocPseudofsRw {
            head: IocHead::default(),
            pfs_id,
            bytes: PseudofsData::SIZE as u32,
            version: PSEUDOFS_VERSION,
            reserved01: 0,
            ondisk,
        };
        // SAFETY: every request passed here is a pseudofs_rw one (GET, SET,
        // UPG, DGD, RMR, WAI), and `ondisk` is an exclusively borrowed
        // 292-byte buffer that outlives the call.
        unsafe { self.call(request, &mut rw) }?;
        Ok(rw)
    }

    /// GET_PSEUDOFS: the resolved PFS id and its data.
    fn get(&self, pfs_id: i32) -> std::result::Result<(i32, PseudofsData), Errno> {
        let mut buf = [0u8; PseudofsData::SIZE];
        let rw = self.pseudofs(HAMMERIOC_GET_PSEUDOFS, pfs_id, &mut buf)?;
        let pfsd = PseudofsData::decode(&buf);
        self.shared_uuid.set(Some((rw.pfs_id, pfsd.shared_uuid)));
        Ok((rw.pfs_id, pfsd))
    }

    /// UPG, DGD, RMR: a zeroed buffer, as the tool passes. HEAD_INTR means
    /// the kernel stopped half way on a signal and still said success: the
    /// original reports success then (D8); here it is EINTR.
    fn transition(&mut self, request: u32) -> Result<()> {
        let mut buf = [0u8; PseudofsData::SIZE];
        let rw = self.pseudofs(request, self.pfs_id, &mut buf)?;
        if rw.head.flags & IOC_HEAD_INTR != 0 {
            return Err(Errno::EINTR.into());
        }
        Ok(())
    }

    /// A mirror_rw request as the tool fills it for each call (ioctl-abi.md
    /// §4.3); `head.flags` is rebuilt each time because the only bit the
    /// kernel reads is NODATA, and a call with HEAD_ERROR set is the last.
    fn mirror_rw(
        &self,
        flags: i32,
        keys: [BaseElm; 3],
        tids: (u64, u64),
        ubuf: *mut u8,
        len: usize,
    ) -> Result<IocMirrorRw> {
        let size = i32::try_from(len).map_err(|_| Errno::EINVAL)?;
        let shared_uuid = match self.shared_uuid.get() {
            Some((id, uuid)) if id == self.pfs_id => uuid.0,
            _ => [0; HammerUuid::SIZE],
        };
        Ok(IocMirrorRw {
            head: IocHead {
                flags,
                ..IocHead::default()
            },
            key_beg: keys[0].into(),
            key_end: keys[1].into(),
            key_cur: keys[2].into(),
            tid_beg: tids.0,
            tid_end: tids.1,
            ubuf,
            count: 0,
            size,
            pfs_id: self.pfs_id,
            reserved01: 0,
            shared_uuid,
        })
    }
}

impl<S: IoctlSeam> KernelPfs<S> {
    /// The snapshot, config and prune requests name no PFS: the kernel
    /// acts on the descriptor's own (ioctl-abi.md §9-11). A handle
    /// addressing another PFS gets EXDEV rather than acting on the wrong
    /// one; the caller opens a path inside the PFS instead.
    fn own_pfs(&self) -> Result<()> {
        if self.pfs_id != self.home_pfs {
            return Err(Errno::EXDEV.into());
        }
        Ok(())
    }

    /// ADD, DEL or GET_SNAPSHOT with `req`'s fields; `flags` as the tool
    /// leaves them in its reused structure (GET's EOF).
    fn snapshot_rw(&self, request: u32, req: &mut SnapshotReq) -> Result<()> {
        self.own_pfs()?;
        let mut s = IocSnapshot {
            head: IocHead {
                flags: if req.eof { IOC_SNAPSHOT_EOF } else { 0 },
                ..IocHead::default()
            },
            reserved01: 0,
            index: req.index,
            count: req.count,
            pad: 0,
            snaps: req.snaps.map(Into::into),
        };
        // SAFETY: the snapshot requests take a hammer_ioc_snapshot, which
        // holds no pointers.
        unsafe { self.call(request, &mut s) }?;
        if s.count as usize > SNAPS_PER_IOCTL || s.index > s.count.max(req.count) {
            return Err(Errno::EIO.into());
        }
        req.index = s.index;
        req.count = s.count;
        req.snaps = s.snaps.map(SnapshotData::from);
        req.error = (s.head.error != 0).then(|| Errno::from_raw(s.head.error));
        req.eof = s.head.flags & IOC_SNAPSHOT_EOF != 0;
        Ok(())
    }

    /// GET or SET_CONFIG around `config`; returns the structure back.
    fn config_rw(&self, request: u32, config: ConfigData) -> Result<IocConfig> {
        self.own_pfs()?;
        let mut c = IocConfig {
            head: IocHead::default(),
            reserved01: 0,
            reserved02: 0,
            reserved03: [0; 4],
            config,
        };
        // SAFETY: the config requests take a hammer_ioc_config, which
        // holds no pointers.
        unsafe { self.call(request, &mut c) }?;
        Ok(c)
    }
}

/// The bytes the kernel says it produced or consumed, which can never
/// exceed the buffer it was given.
fn checked_count(count: i32, len: usize) -> Result<usize> {
    usize::try_from(count)
        .ok()
        .filter(|&c| c <= len)
        .ok_or_else(|| Errno::EIO.into())
}

impl<S: IoctlSeam> Pfs for KernelPfs<S> {
    fn pfs_id(&self) -> u32 {
        u32::try_from(self.pfs_id).unwrap_or(u32::MAX)
    }

    fn set_pfs_id(&mut self, pfs_id: u32) {
        // An id beyond i32 must stay out of range, never wrap to −1.
        self.pfs_id = i32::try_from(pfs_id).unwrap_or(i32::MAX);
    }

    fn version(&self) -> Result<u32> {
        let mut v = IocVersion {
            head: IocHead::default(),
            cur_version: 0,
            min_version: 0,
            wip_version: 0,
            max_version: 0,
            description: [0; 64],
        };
        // SAFETY: GET_VERSION takes a hammer_ioc_version, which holds no
        // pointers.
        unsafe { self.call(HAMMERIOC_GET_VERSION, &mut v) }?;
        Ok(v.cur_version)
    }

    fn get_pseudofs(&self) -> Result<PseudofsData> {
        Ok(self.get(self.pfs_id)?.1)
    }

    fn set_pseudofs(&mut self, pfsd: &PseudofsData) -> Result<()> {
        let mut buf = pfsd.to_bytes();
        self.pseudofs(HAMMERIOC_SET_PSEUDOFS, self.pfs_id, &mut buf)?;
        Ok(())
    }

    fn upgrade(&mut self) -> Result<()> {
        self.transition(HAMMERIOC_UPG_PSEUDOFS)
    }

    fn downgrade(&mut self) -> Result<()> {
        self.transition(HAMMERIOC_DGD_PSEUDOFS)
    }

    fn destroy(&mut self) -> Result<()> {
        self.transition(HAMMERIOC_RMR_PSEUDOFS)
    }

    fn wait(&self, tid: u64) -> Result<()> {
        // Only ondisk->sync_end_tid is read by the kernel.
        let mut buf = PseudofsData {
            sync_end_tid: tid,
            ..PseudofsData::default()
        }
        .to_bytes();
        self.pseudofs(HAMMERIOC_WAI_PSEUDOFS, self.pfs_id, &mut buf)?;
        Ok(())
    }

    fn synctid(&mut self, op: SynctidOp) -> Result<u64> {
        let mut s = IocSynctid {
            op: match op {
                SynctidOp::None => synctid_op::NONE,
                SynctidOp::Async => synctid_op::ASYNC,
                SynctidOp::Sync1 => synctid_op::SYNC1,
                SynctidOp::Sync2 => synctid_op::SYNC2,
            },
            ..IocSynctid::default()
        };
        // SAFETY: SYNCTID takes a hammer_ioc_synctid, which holds no
        // pointers.
        unsafe { self.call(HAMMERIOC_SYNCTID, &mut s) }?;
        Ok(s.tid)
    }

    fn mirror_read(&mut self, req: &mut MirrorReadReq, buf: &mut [u8]) -> Result<usize> {
        let flags = if req.nodata { IOC_MIRROR_NODATA } else { 0 };
        let len = buf.len();
        let mut rw = self.mirror_rw(
            flags,
            [req.key_beg, req.key_end, req.key_cur],
            (req.tid_beg, req.tid_end),
            buf.as_mut_ptr(),
            len,
        )?;
        // SAFETY: MIRROR_READ takes a hammer_ioc_mirror_rw; `ubuf` is the
        // exclusively borrowed `buf`, writable for `size` = its length.
        unsafe { self.call(HAMMERIOC_MIRROR_READ, &mut rw) }?;
        if rw.head.flags & IOC_HEAD_ERROR != 0 {
            return Err(Errno::from_raw(rw.head.error).into());
        }
        req.interrupted = rw.head.flags & IOC_HEAD_INTR != 0;
        req.key_cur = rw.key_cur.into();
        checked_count(rw.count, len)
    }

    fn mirror_write(&mut self, req: &mut MirrorWriteReq, records: &[u8]) -> Result<usize> {
        let len = records.len();
        let mut rw = self.mirror_rw(
            0,
            [req.key_beg, req.key_end, req.key_cur],
            (req.tid_beg, req.tid_end),
            // The kernel only copies in from a MIRROR_WRITE buffer.
            records.as_ptr().cast_mut(),
            len,
        )?;
        // SAFETY: MIRROR_WRITE takes a hammer_ioc_mirror_rw; `ubuf` is
        // `records`, valid for `size` = its length and only read.
        unsafe { self.call(HAMMERIOC_MIRROR_WRITE, &mut rw) }?;
        // The kernel re-localizes the keys in place; the tool passes them
        // back unchanged on the next call.
        req.key_beg = rw.key_beg.into();
        req.key_end = rw.key_end.into();
        req.key_cur = rw.key_cur.into();
        req.head_error =
            (rw.head.flags & IOC_HEAD_ERROR != 0).then(|| Errno::from_raw(rw.head.error));
        checked_count(rw.count, len)
    }

    fn add_snapshots(&mut self, req: &mut SnapshotReq) -> Result<()> {
        req.eof = false;
        self.snapshot_rw(HAMMERIOC_ADD_SNAPSHOT, req)
    }

    fn del_snapshots(&mut self, req: &mut SnapshotReq) -> Result<()> {
        req.eof = false;
        self.snapshot_rw(HAMMERIOC_DEL_SNAPSHOT, req)
    }

    fn get_snapshots(&self, req: &mut SnapshotReq) -> Result<()> {
        self.snapshot_rw(HAMMERIOC_GET_SNAPSHOT, req)
    }

    fn get_config(&self) -> Result<Option<ConfigData>> {
        let c = self.config_rw(HAMMERIOC_GET_CONFIG, ConfigData::default())?;
        match c.head.error {
            0 => Ok(Some(c.config)),
            e if e == Errno::ENOENT as i32 => Ok(None),
            e => Err(Errno::from_raw(e).into()),
        }
    }

    fn set_config(&mut self, config: &ConfigData) -> Result<()> {
        let c = self.config_rw(HAMMERIOC_SET_CONFIG, *config)?;
        match c.head.error {
            0 => Ok(()),
            e => Err(Errno::from_raw(e).into()),
        }
    }

    fn prune(&mut self, req: &mut PruneReq) -> Result<()> {
        self.own_pfs()?;
        let mut elms: Vec<IocPruneElm> = req
            .elms
            .iter()
            .map(|e| IocPruneElm {
                beg_tid: e.beg_tid,
                end_tid: e.end_tid,
                mod_tid: e.mod_tid,
            })
            .collect();
        let s = &req.stats;
        let mut p = IocPrune {
            head: IocHead {
                flags: if req.all { IOC_PRUNE_ALL } else { 0 },
                ..IocHead::default()
            },
            nelms: i32::try_from(elms.len()).map_err(|_| Errno::EINVAL)?,
            reserved01: 0,
            key_beg: req.key_beg.into(),
            key_end: req.key_end.into(),
            key_cur: req.key_cur.into(),
            stat_scanrecords: s.scan_records,
            stat_rawrecords: s.raw_records,
            stat_dirrecords: s.dir_records,
            stat_bytes: s.bytes,
            stat_realignments: s.realignments,
            stat_oldest_tid: s.oldest_tid,
            reserved02: [0; 6],
            elms: elms.as_mut_ptr(),
        };
        // SAFETY: PRUNE takes a hammer_ioc_prune; `elms` points at the
        // `nelms` elements of a vector that outlives the call (the kernel
        // only copies them in).
        unsafe { self.call(HAMMERIOC_PRUNE, &mut p) }?;
        req.key_cur = p.key_cur.into();
        req.stats = PruneStats {
            scan_records: p.stat_scanrecords,
            raw_records: p.stat_rawrecords,
            dir_records: p.stat_dirrecords,
            bytes: p.stat_bytes,
            realignments: p.stat_realignments,
            oldest_tid: p.stat_oldest_tid,
        };
        req.interrupted = p.head.flags & IOC_HEAD_INTR != 0;
        Ok(())
    }

    fn reblock(&mut self, req: &mut ReblockReq) -> Result<()> {
        self.own_pfs()?;
        let s = &req.stats;
        let mut r = IocReblock {
            head: IocHead {
                flags: i32::try_from(req.what).map_err(|_| Errno::EINVAL)?,
                ..IocHead::default()
            },
            free_level: req.free_level,
            reserved01: 0,
            key_beg: req.key_beg.into(),
            key_end: req.key_end.into(),
            key_cur: req.key_cur.into(),
            btree_count: s.btree_count,
            reserved02: 0,
            data_count: s.data_count,
            data_byte_count: s.data_byte_count,
            btree_moves: s.btree_moves,
            reserved03: 0,
            data_moves: s.data_moves,
            data_byte_moves: s.data_byte_moves,
            allpfs: 0,
            // hammer(8)'s "no volume selected".
            vol_no: -1,
            reserved04: 0,
        };
        // SAFETY: REBLOCK takes a hammer_ioc_reblock, which points at
        // nothing.
        unsafe { self.call(HAMMERIOC_REBLOCK, &mut r) }?;
        req.key_cur = r.key_cur.into();
        req.stats = ReblockStats {
            btree_count: r.btree_count,
            data_count: r.data_count,
            data_byte_count: r.data_byte_count,
            btree_moves: r.btree_moves,
            data_moves: r.data_moves,
            data_byte_moves: r.data_byte_moves,
        };
        req.interrupted = r.head.flags & IOC_HEAD_INTR != 0;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::fs::File;

    use zerocopy::IntoBytes;

    use super::*;
    use crate::ondisk::BaseElmLe;

    /// What the backend handed to the kernel, decoded by type.
    #[derive(Debug)]
    enum Seen {
        Pfs(IocPseudofsRw, [u8; PseudofsData::SIZE]),
        Mirror(IocMirrorRw),
        Synctid(IocSynctid),
        Version(IocVersion),
        Snapshot(Box<IocSnapshot>),
        Config(Box<IocConfig>),
        Prune(IocPrune, Vec<IocPruneElm>),
    }

    /// A scripted kernel: records every request and answers as told.
    #[derive(Default)]
    struct Fake {
        seen: RefCell<Vec<(u32, Seen)>>,
        fail: Cell<Option<Errno>>,
        /// OR-ed into `head.flags`, with `head.error`.
        flags: Cell<i32>,
        error: Cell<i32>,
        /// MIRROR_*'s `count` on return.
        count: Cell<i32>,
    }

    const SHARED: HammerUuid = HammerUuid([7; 16]);

    impl IoctlSeam for Fake {
        unsafe fn ioctl(
            &self,
            _fd: BorrowedFd<'_>,
            request: u32,
            arg: *mut c_void,
        ) -> std::result::Result<(), Errno> {
            // SAFETY (all blocks): the backend passes the structure the
            // request names, with its buffers valid (the seam's contract).
            let seen = unsafe {
                match request {
                    HAMMERIOC_MIRROR_READ | HAMMERIOC_MIRROR_WRITE => {
                        Seen::Mirror(*arg.cast::<IocMirrorRw>())
                    }
                    HAMMERIOC_SYNCTID => Seen::Synctid(*arg.cast::<IocSynctid>()),
                    HAMMERIOC_GET_VERSION => Seen::Version(*arg.cast::<IocVersion>()),
                    HAMMERIOC_ADD_SNAPSHOT | HAMMERIOC_DEL_SNAPSHOT | HAMMERIOC_GET_SNAPSHOT => {
                        Seen::Snapshot(Box::new(*arg.cast::<IocSnapshot>()))
                    }
                    HAMMERIOC_GET_CONFIG | HAMMERIOC_SET_CONFIG => {
                        Seen::Config(Box::new(*arg.cast::<IocConfig>()))
                    }
                    HAMMERIOC_PRUNE => {
                        let p = *arg.cast::<IocPrune>();
                        let n = usize::try_from(p.nelms).unwrap();
                        let elms = std::slice::from_raw_parts(p.elms, n).to_vec();
                        Seen::Prune(p, elms)
                    }
                    _ => {
                        let rw = *arg.cast::<IocPseudofsRw>();
                        Seen::Pfs(rw, *rw.ondisk)
                    }
                }
            };
            self.seen.borrow_mut().push((request, seen));
            if let Some(e) = self.fail.get() {
                return Err(e);
            }
            // SAFETY: as above.
            unsafe {
                match request {
                    HAMMERIOC_MIRROR_READ | HAMMERIOC_MIRROR_WRITE => {
                        let m = &mut *arg.cast::<IocMirrorRw>();
                        m.count = self.count.get();
                        m.head.flags |= self.flags.get();
                        m.head.error = self.error.get();
                    }
                    HAMMERIOC_SYNCTID => (*arg.cast::<IocSynctid>()).tid = 0x1234,
                    HAMMERIOC_GET_VERSION => (*arg.cast::<IocVersion>()).cur_version = 7,
                    HAMMERIOC_ADD_SNAPSHOT | HAMMERIOC_DEL_SNAPSHOT | HAMMERIOC_GET_SNAPSHOT => {
                        let s = &mut *arg.cast::<IocSnapshot>();
                        s.head.flags |= self.flags.get();
                        s.head.error = self.error.get();
                        s.index = s.count.min(1);
                    }
                    HAMMERIOC_GET_CONFIG | HAMMERIOC_SET_CONFIG => {
                        let c = &mut *arg.cast::<IocConfig>();
                        c.head.error = self.error.get();
                        c.config.text[0] = b'k';
                    }
                    HAMMERIOC_PRUNE => {
                        let p = &mut *arg.cast::<IocPrune>();
                        p.head.flags |= self.flags.get();
                        p.stat_scanrecords += 10;
                        p.key_cur.obj_id = 0x77.into();
                    }
                    _ => {
                        let rw = &mut *arg.cast::<IocPseudofsRw>();
                        if rw.pfs_id == PFS_ID_AUTO {
                            rw.pfs_id = 5;
                        }
                        rw.head.flags |= self.flags.get();
                        if request == HAMMERIOC_GET_PSEUDOFS {
                            let p = PseudofsData {
                                shared_uuid: SHARED,
                                ..PseudofsData::default()
                            };
                            *rw.ondisk = p.to_bytes();
                        }
                    }
                }
            }
            Ok(())
        }
    }

    fn fake() -> KernelPfs<Fake> {
        let fd = OwnedFd::from(File::open("/").unwrap());
        KernelPfs::open(fd, Fake::default())
            .map_err(|e| e.0)
            .unwrap()
    }

    fn last(k: &KernelPfs<Fake>) -> (u32, Seen) {
        k.seam().seen.borrow_mut().pop().unwrap()
    }

    /// ioctl-abi.md §3 "clrpfs" and §8 step 1: the probe is a GET of −1.
    #[test]
    fn probe_is_a_clrpfs_get_of_the_descriptors_pfs() {
        let k = fake();
        assert_eq!(k.pfs_id(), 5);
        let (code, Seen::Pfs(rw, ondisk)) = last(&k) else {
            panic!("not a pseudofs request")
        };
        assert_eq!(code, 0xC030_6806);
        assert_eq!(rw.head, IocHead::default());
        assert_eq!(
            (rw.pfs_id, rw.bytes, rw.version, rw.reserved01),
            (-1, 292, 1, 0)
        );
        assert!(!rw.ondisk.is_null());
        assert_eq!(ondisk, [0; 292]);
    }

    /// ioctl-abi.md §4.3: the fields of both mirror requests.
    #[test]
    fn mirror_requests_are_filled_as_the_tool_fills_them() {
        let mut k = fake();
        k.set_pfs_id(3);
        k.get_pseudofs().unwrap();
        let mut buf = vec![0u8; 4096];
        let mut rreq = MirrorReadReq::new(0x10, 0x20);
        rreq.nodata = true;
        k.mirror_read(&mut rreq, &mut buf).unwrap();
        let (code, Seen::Mirror(m)) = last(&k) else {
            panic!("not a mirror request")
        };
        assert_eq!(code, 0xC0C8_6807);
        assert_eq!(m.head.flags, IOC_MIRROR_NODATA);
        assert_eq!(m.key_beg, BaseElmLe::from(BaseElm::KEY_BEG_INIT));
        assert_eq!(m.key_end, BaseElmLe::from(BaseElm::KEY_END_INIT));
        assert_eq!((m.tid_beg, m.tid_end), (0x10, 0x20));
        assert_eq!(m.ubuf, buf.as_mut_ptr());
        assert_eq!((m.count, m.size, m.pfs_id, m.reserved01), (0, 4096, 3, 0));
        assert_eq!(m.shared_uuid, SHARED.0);

        let records = [0u8; 96];
        let mut wreq = MirrorWriteReq::new(0x10, 0x20);
        k.seam().count.set(96);
        assert_eq!(k.mirror_write(&mut wreq, &records).unwrap(), 96);
        let (code, Seen::Mirror(m)) = last(&k) else {
            panic!("not a mirror request")
        };
        assert_eq!(code, 0xC0C8_6808);
        assert_eq!(m.head, IocHead::default());
        assert_eq!(m.key_end, m.key_beg);
        assert_eq!(m.key_cur, BaseElmLe::default());
        assert_eq!((m.ubuf.cast_const(), m.size), (records.as_ptr(), 96));
    }

    /// kernel-semantics.md §4.1: record errors come back in the head.
    #[test]
    fn mirror_write_head_error_goes_to_the_request() {
        let mut k = fake();
        k.seam().flags.set(IOC_HEAD_ERROR);
        k.seam().error.set(Errno::ENOSPC as i32);
        k.seam().count.set(16);
        let mut req = MirrorWriteReq::new(1, 2);
        assert_eq!(k.mirror_write(&mut req, &[0; 32]).unwrap(), 16);
        assert_eq!(req.head_error, Some(Errno::ENOSPC));
    }

    /// A count the buffer cannot hold is never trusted.
    #[test]
    fn count_beyond_the_buffer_is_an_io_error() {
        let mut k = fake();
        k.seam().count.set(33);
        let mut req = MirrorReadReq::new(1, 2);
        let e = k.mirror_read(&mut req, &mut [0; 32]).unwrap_err();
        assert_eq!(e.errno(), Errno::EIO);
    }

    /// spec: protocol.md D8 — HEAD_INTR on UPG/RMR is a failure.
    #[test]
    fn d08_interrupted_upgrade_and_destroy_fail() {
        let mut k = fake();
        k.seam().flags.set(IOC_HEAD_INTR);
        assert_eq!(
            k.upgrade().unwrap_err().to_string(),
            "Interrupted system call"
        );
        assert_eq!(
            k.destroy().unwrap_err().to_string(),
            "Interrupted system call"
        );
        k.seam().flags.set(0);
        k.upgrade().unwrap();
    }

    #[test]
    fn ioctl_failure_is_the_errno_and_its_text() {
        let k = fake();
        k.seam().fail.set(Some(Errno::ENOENT));
        let e = k.get_pseudofs().unwrap_err();
        assert_eq!(e.to_string(), "No such file or directory");
    }

    #[test]
    fn other_requests() {
        let mut k = fake();
        assert_eq!(k.synctid(SynctidOp::Sync2).unwrap(), 0x1234);
        let (code, Seen::Synctid(s)) = last(&k) else {
            panic!("not synctid")
        };
        assert_eq!((code, s.op, s.head), (0xC028_6804, 3, IocHead::default()));
        assert_eq!(k.version().unwrap(), 7);
        let (code, Seen::Version(v)) = last(&k) else {
            panic!("not version")
        };
        assert_eq!((code, v.cur_version), (0xC068_680D, 0));
        k.wait(0xabc).unwrap();
        let (code, Seen::Pfs(_, ondisk)) = last(&k) else {
            panic!("not wait")
        };
        assert_eq!(code, 0xC030_680C);
        assert_eq!(PseudofsData::decode(&ondisk).sync_end_tid, 0xabc);
        let mut p = PseudofsData::default();
        p.set_label(b"x");
        k.set_pseudofs(&p).unwrap();
        let (code, Seen::Pfs(rw, ondisk)) = last(&k) else {
            panic!("not set")
        };
        assert_eq!((code, rw.version, rw.bytes), (0xC030_6805, 1, 292));
        assert_eq!(ondisk, p.to_bytes());
    }

    /// ioctl-abi.md §9-11: the snapshot, config and prune structures as
    /// the tool fills them, their results read back, and all three only
    /// on the descriptor's own PFS.
    #[test]
    fn snapshot_config_and_prune_requests_carry_the_fields_the_kernel_reads() {
        let mut k = fake();
        let snaps = [
            SnapshotData::new(0x1_0000_0010, 1_700_000_000_000_000, b"n"),
            SnapshotData::new(0x1_0000_0020, 1_700_000_001_000_000, b""),
        ];
        let mut req = SnapshotReq::of(&snaps).unwrap();
        k.seam().error.set(Errno::EEXIST as i32);
        k.add_snapshots(&mut req).unwrap();
        let (code, Seen::Snapshot(s)) = last(&k) else {
            panic!("not a snapshot request")
        };
        assert_eq!(code, 0xC828_6812);
        assert_eq!(
            (s.head, s.reserved01, s.index, s.count, s.pad),
            (IocHead::default(), 0, 0, 2, 0)
        );
        assert_eq!(s.snaps[1].as_bytes(), snaps[1].to_bytes());
        assert_eq!((req.index, req.error), (1, Some(Errno::EEXIST)));
        // GET passes its EOF back as the tool's reused structure does, and
        // reads it back.
        k.seam().error.set(0);
        k.seam().flags.set(IOC_SNAPSHOT_EOF);
        let mut get = SnapshotReq::default();
        k.get_snapshots(&mut get).unwrap();
        assert!(get.eof && get.error.is_none());
        k.get_snapshots(&mut get).unwrap();
        let (code, Seen::Snapshot(s)) = last(&k) else {
            panic!("not a snapshot request")
        };
        assert_eq!((code, s.head.flags), (0xC828_6814, IOC_SNAPSHOT_EOF));
        k.seam().flags.set(0);
        k.del_snapshots(&mut req).unwrap();
        assert_eq!(last(&k).0, 0xC828_6813);

        assert_eq!(k.get_config().unwrap().unwrap().text_bytes(), b"k");
        let (code, Seen::Config(c)) = last(&k) else {
            panic!("not a config request")
        };
        assert_eq!(
            (code, c.head, c.config.text[0]),
            (0xC440_6815, IocHead::default(), 0)
        );
        k.seam().error.set(Errno::ENOENT as i32);
        assert_eq!(k.get_config().unwrap(), None);
        let cfg = ConfigData::from_text(b"prune 1d 5m\n").unwrap();
        assert_eq!(k.set_config(&cfg).unwrap_err().errno(), Errno::ENOENT);
        let (code, Seen::Config(c)) = last(&k) else {
            panic!("not a config request")
        };
        assert_eq!((code, c.config), (0xC440_6816, cfg));
        k.seam().error.set(0);
        k.set_config(&cfg).unwrap();

        let elms = vec![
            crate::pfs::PruneElm {
                beg_tid: 20,
                end_tid: u64::MAX,
                mod_tid: u64::MAX - 20,
            },
            crate::pfs::PruneElm {
                beg_tid: 1,
                end_tid: 20,
                mod_tid: 19,
            },
        ];
        let mut p = PruneReq::new(false, elms.clone());
        p.stats.scan_records = 5;
        k.seam().flags.set(IOC_HEAD_INTR);
        k.prune(&mut p).unwrap();
        let (code, Seen::Prune(raw, got)) = last(&k) else {
            panic!("not a prune request")
        };
        assert_eq!(
            (code, raw.head.flags, raw.nelms, raw.reserved01),
            (0xC100_6801, 0, 2, 0)
        );
        assert_eq!(BaseElm::from(raw.key_beg), p.key_beg);
        assert_eq!(BaseElm::from(raw.key_end), p.key_end);
        assert_eq!((raw.stat_scanrecords, raw.stat_oldest_tid), (5, u64::MAX));
        assert_eq!(
            got[1],
            IocPruneElm {
                beg_tid: 1,
                end_tid: 20,
                mod_tid: 19
            }
        );
        assert_eq!(got.len(), elms.len());
        assert!(p.interrupted);
        assert_eq!((p.stats.scan_records, p.key_cur.obj_id), (15, 0x77));
        k.seam().flags.set(0);
        let mut all = PruneReq::new(true, Vec::new());
        k.prune(&mut all).unwrap();
        let (_, Seen::Prune(raw, _)) = last(&k) else {
            panic!("not a prune request")
        };
        assert_eq!((raw.head.flags, raw.nelms), (IOC_PRUNE_ALL, 0));
        assert!(!all.interrupted);

        // Another PFS than the descriptor's: refused before any request.
        let before = k.seam().seen.borrow().len();
        k.set_pfs_id(4);
        assert_eq!(k.add_snapshots(&mut req).unwrap_err().errno(), Errno::EXDEV);
        assert_eq!(k.get_config().unwrap_err().errno(), Errno::EXDEV);
        assert_eq!(k.prune(&mut all).unwrap_err().errno(), Errno::EXDEV);
        assert_eq!(k.seam().seen.borrow().len(), before);
    }

    /// An id beyond i32 stays out of range instead of becoming −1.
    #[test]
    fn set_pfs_id_never_wraps_to_autodetect() {
        let mut k = fake();
        k.set_pfs_id(u32::MAX);
        let _ = k.get_pseudofs();
        let (_, Seen::Pfs(rw, _)) = last(&k) else {
            panic!("not a pseudofs request")
        };
        assert_eq!(rw.pfs_id, i32::MAX);
    }

    /// On Linux the probe's BSD request code is unknown to every
    /// filesystem: the backend selection falls through to the store.
    #[cfg(target_os = "linux")]
    #[test]
    fn real_probe_off_hammer_is_enotty() {
        let fd = OwnedFd::from(File::open(std::env::temp_dir()).unwrap());
        let Err((e, _)) = KernelPfs::open(fd, SysIoctl) else {
            panic!("GET_PSEUDOFS succeeded on Linux")
        };
        assert_eq!(e, Errno::ENOTTY);
    }
}
