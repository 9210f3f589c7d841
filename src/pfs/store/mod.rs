//! The embedded PFS store: a directory holding one SQLite database in WAL
//! mode that behaves towards the tools like a HAMMER filesystem's B-Tree and
//! PFS ioctls (spec: kernel-semantics.md §7).
//!
//! Layout: `rec` holds every record version of every PFS keyed by the
//! 30-byte B-Tree key (`key.rs`), with the leaf as sent and small
//! payloads; larger payloads live in a per-PFS append-only file
//! (`blob.rs`), named in `rec` by their offset, so that key searches never
//! load them and their bytes are not written twice (WAL, checkpoint);
//! `mtid` is the last TID at which a record was created, deleted or
//! otherwise changed, indexed per PFS, which is what lets a read from
//! tid_beg find its changes without scanning (HAMMER's mirror_tid, kept
//! per record instead of per subtree). PFS data lives where HAMMER keeps
//! it, as PFS records in PFS#0 (kernel-semantics.md §2.5), a new version per
//! change; `meta` holds the TID allocator; `origin` remembers which host file
//! (device, inode) each object of a PFS was last imported from, so that a
//! renamed file keeps its object. Every ioctl is one SQLite transaction, and
//! one that changes anything allocates one TID, like a flush; MIRROR_WRITE's
//! held batch (`write.rs`) is kept aside (`stage.rs`) and applied in the
//! transaction of the SET or SYNCTID at its SYNC. A write transaction
//! that does not commit gives back the payload bytes it appended
//! (`writetx.rs`).
//!
//! Destroyed PFSes: a handle pins the PFS it first works on (`Pin`: the
//! id and its generation, the count of its destroys) and checks it inside
//! the transaction of every later operation; a destroy deletes the key
//! space in its own transaction. Write transactions are serialised by
//! SQLite's write lock, so a destroy and a write never interleave, and an
//! id reused later never shows a record of an earlier PFS.
//!
//! Modules: `schema` (the database file, its format, finding a store),
//! `tid` (the TID allocator, record times), `key` (the B-Tree key),
//! `records` (rows of `rec`, the change index, UPG's rollback), `batch`
//! (rows changed a range at a time), `payload`
//! and `blob` (where payloads live), `pfsdata` (PFS records, a master's
//! root, the pinned PFS), `read` and `write` (MIRROR_READ, MIRROR_WRITE),
//! `txn` (import's transactions), `writetx` (write transactions),
//! `waiting` (writers waiting for the lock, seen by prune and reblock),
//! `stage` (held batches), `history` (snapls), `check` (verify's store checks),
//! `reblock` (payload files compacted, free pages given back), `error`. This file keeps the handle and
//! its `Pfs` operations.

mod batch;
mod blob;
mod check;
mod error;
mod history;
mod key;
mod memo;
mod payload;
mod pfsdata;
mod prune;
mod read;
mod reblock;
mod records;
mod schema;
mod snapshots;
mod space;
mod stage;
mod tid;
mod txn;
mod view;
mod waiting;
mod write;
mod writetx;

#[cfg(test)]
mod tests;

use std::cell::{Cell, RefCell};
use std::path::{Path, PathBuf};
use std::thread;
use std::time::Duration;

use nix::errno::Errno;
use rusqlite::{params, Connection, Transaction, TransactionBehavior};

use blob::Blobs;
use payload::{load_payload, PAYLOAD};
use pfsdata::{create_root, has_root, load_live_pfs, save_pfs, sync_end, Pin};
use records::{leaf_from, relocalize, rollback};
use stage::Held;
use tid::{alloc_tid, next_tid};
use write::Applied;
use writetx::WriteTx;

pub use blob::{PayloadAt, PayloadFault};
pub use error::StoreError;
pub use history::Change;
pub use key::{decode as decode_key, encode as encode_key, RecKey, KEY_LEN};
pub use payload::DATA_OFFSET;
pub use prune::Freed;
pub use reblock::copies;
pub use schema::{find_root, DB_NAME, FORMAT_VERSION};
pub use space::{Space, Tally};
pub use tid::FIRST_TID;
pub use txn::{RecordId, Txn};
pub use view::View;

use super::{
    MirrorReadReq, MirrorWriteReq, Pfs, PfsError, PruneReq, ReblockReq, Result, SnapshotReq,
    SynctidOp,
};
use crate::ondisk::{
    ConfigData, HammerUuid, LeafElm, PseudofsData, LOCALIZE_MASK, PFSD_DELETED, PFSD_SLAVE,
};

/// The HAMMER version the store emulates (CRC-32C data, DIR_LOCAL_INO).
pub const HAMMER_VERSION: u32 = 7;
/// How many newer snapshots a reader takes when its payload file was
/// replaced under it (each a reblock or destroy that committed meanwhile).
const READ_RETRIES: u32 = 8;
/// How often `wait` looks at the sync point.
const WAIT_POLL: Duration = Duration::from_millis(50);

/// An open store; like a descriptor, it addresses one PFS at a time.
pub struct Store {
    conn: Connection,
    root: PathBuf,
    pfs_id: u32,
    /// The PFS this handle works on, as its first successful operation
    /// found it.
    pin: Cell<Option<Pin>>,
    busy: Option<read::Busy>,
    /// A MIRROR_WRITE batch kept for its SYNC (`write.rs`).
    held: RefCell<Option<Held>>,
    /// Records per prune transaction, and per PRUNE call (`prune.rs`).
    prune_bounds: (usize, usize),
    /// A whole prune going on call by call (`prune.rs`).
    prune_pass: Option<prune::Pass>,
    /// Opened read-only: what a change would need write access to.
    read_only: Option<PathBuf>,
    /// A reblock's copy of a payload file under way, and the bytes one
    /// call copies (`reblock.rs`).
    copy: Option<reblock::Compaction>,
    reblock_budget: u64,
    /// This handle took the write lock: when it goes, it truncates a WAL
    /// that a large transaction grew (`schema::trim_wal`).
    wrote: Cell<bool>,
}

impl Drop for Store {
    fn drop(&mut self) {
        if self.wrote.get() {
            schema::trim_wal(&self.conn, &self.root);
        }
    }
}

/// Where `hammer cleanup` keeps the period and cycle files of the store's
/// PFS `id` (its snapshots directory; cli.md §23).
pub fn cleanup_dir(root: &Path, id: u32) -> PathBuf {
    root.join(format!(".hammer-store.cleanup/pfs{id:05}"))
}

impl Store {
    /// `hammer store-create`: a new store in `dir` holding PFS#0, a master
    /// with its root directory, as newfs_hammer leaves a filesystem.
    pub fn create(dir: &Path) -> Result<Store> {
        let mut conn = schema::create(dir)?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let fsid = HammerUuid::new_random();
        schema::init(&tx, &fsid)?;
        let pfsd = PseudofsData {
            sync_low_tid: 1,
            shared_uuid: fsid,
            unique_uuid: fsid,
            ..Default::default()
        };
        let tid = alloc_tid(&tx)?;
        save_pfs(&tx, 0, &pfsd, tid)?;
        create_root(&tx, 0, tid)?;
        tx.commit()?;
        Ok(Store::on(conn, dir, None))
    }

    /// Opens the store whose root directory is `root`, addressing PFS#0.
    pub fn open(root: &Path) -> std::result::Result<Store, StoreError> {
        let (conn, read_only) = schema::open(root)?;
        Ok(Store::on(conn, root, read_only))
    }

    /// A handle on the database `conn` of the store at `root`, addressing
    /// PFS#0.
    fn on(conn: Connection, root: &Path, read_only: Option<PathBuf>) -> Store {
        Store {
            conn,
            root: root.to_path_buf(),
            pfs_id: 0,
            pin: Cell::new(None),
            busy: None,
            held: RefCell::new(None),
            prune_bounds: (prune::ROWS_PER_TXN, prune::ROWS_PER_CALL),
            prune_pass: None,
            read_only,
            copy: None,
            reblock_budget: reblock::BYTES_PER_CALL,
            wrote: Cell::new(false),
        }
    }

    /// The ids of the store's PFSes, lowest first.
    pub fn pfs_ids(&self) -> Result<Vec<u32>> {
        pfsdata::live_ids(&self.conn)
    }

    /// The store's root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The master's sync point: every change with a TID up to it is
    /// committed, every later change gets a larger TID.
    pub fn flush_tid(&self) -> Result<u64> {
        Ok(next_tid(&self.conn)? - 1)
    }

    /// Opens a transaction on the addressed PFS; everything put or deleted
    /// in it carries one new TID (import's "flush").
    pub fn begin(&mut self) -> Result<Txn<'_>> {
        Txn::begin(self)
    }

    /// Calls `f` for every record of the addressed PFS in key order (all
    /// versions, deleted ones included), with its payload.
    pub fn for_each_record(&self, mut f: impl FnMut(&LeafElm, &[u8])) -> Result<()> {
        let id = self.check_id()?;
        let (tx, blobs, ()) = self.read_blobs(id, |tx| self.check_pinned(tx, id))?;
        let mut stmt = tx.prepare_cached(&format!(
            "SELECT leaf, {PAYLOAD} FROM rec WHERE k >= ?1 AND k < ?2"
        ))?;
        let (first, end) =
            key::localization_range(relocalize(0, id)..=relocalize(LOCALIZE_MASK, id));
        let mut rows = stmt.query(params![&first[..], &end[..]])?;
        let mut data = Vec::new();
        while let Some(row) = rows.next()? {
            let leaf = leaf_from(row.get_ref(0)?.as_blob()?)?;
            load_payload(row, 1, &leaf, &blobs, &mut data)?;
            f(&leaf, &data);
        }
        Ok(())
    }

    /// Calls `f` for every record (all versions) of the addressed PFS whose
    /// localization type is in `types`, in key order, inside one read
    /// transaction; `f` gets the leaf and a loader for its payload.
    pub fn scan<E: From<PfsError>>(
        &self,
        types: std::ops::RangeInclusive<u32>,
        f: impl FnMut(&LeafElm, &dyn Fn() -> Result<Vec<u8>>) -> std::result::Result<(), E>,
    ) -> std::result::Result<(), E> {
        let id = self.check_id()?;
        let (tx, blobs, ()) = self.read_blobs(id, |tx| self.check_pinned(tx, id))?;
        txn::scan(&tx, &blobs, id, types, f)
    }

    /// SET_PSEUDOFS, or with `exclusive` the creation of a PFS that must
    /// not exist yet (EEXIST), decided in the same write transaction.
    fn save_pseudofs(&mut self, pfsd: &PseudofsData, exclusive: bool) -> Result<()> {
        let id = self.check_id()?;
        // A batch held on this PFS commits with the move of its sync point.
        let mut tx = self.begin_write()?;
        self.apply_held(&mut tx, id)?;
        if exclusive && load_live_pfs(&tx, id).is_ok() {
            return Err(Errno::EEXIST.into());
        }
        // A pinned PFS must still be there; an unpinned handle may create
        // one (or revive a destroyed one, kernel-semantics.md §5.3) and pins
        // it.
        let generation = if self.pinned(id) {
            self.live(&tx, id)?.generation
        } else {
            blob::generation(&tx, id)?
        };
        // The sync point may move over payloads mirror-write left unsynced.
        blob::sync(&tx, &self.root, id)?;
        let tid = alloc_tid(&tx)?;
        save_pfs(&tx, id, pfsd, tid)?;
        if !pfsd.is_slave() && !has_root(&tx, id)? {
            create_root(&tx, id, tid)?;
        }
        tx.commit()?;
        self.pin.set(Some(Pin {
            pfs_id: id,
            generation,
        }));
        Ok(())
    }

    fn check_id(&self) -> Result<u32> {
        if self.pfs_id > 0xFFFF {
            return Err(Errno::EINVAL.into());
        }
        Ok(self.pfs_id)
    }

    /// The current sync point C of WAI_PSEUDOFS and the TID of the PFS
    /// data's last change.
    fn sync_point(&self) -> Result<(u64, u64)> {
        let id = self.check_id()?;
        let tx = self.read_tx()?;
        let live = self.live(&tx, id)?;
        Ok((sync_end(&tx, &live.pfsd)?, live.record.base.create_tid))
    }

    /// A consistent view for a read.
    fn read_tx(&self) -> Result<Transaction<'_>> {
        Ok(self.conn.unchecked_transaction()?)
    }

    /// A read transaction with PFS `id`'s payload file open, after
    /// `check`: the file of that snapshot, kept open for as long as the
    /// reader lasts. One that a reblock or destroy replaced and removed
    /// after the snapshot began is gone: a newer snapshot names its
    /// successor.
    fn read_blobs<T>(
        &self,
        id: u32,
        check: impl Fn(&Transaction<'_>) -> Result<T>,
    ) -> Result<(Transaction<'_>, Blobs, T)> {
        let mut tries = 0;
        loop {
            let tx = self.read_tx()?;
            let t = check(&tx)?;
            match Blobs::open(&tx, &self.root, id) {
                Err(e) if blob::is_gone(&e) && tries < READ_RETRIES => tries += 1,
                blobs => return Ok((tx, blobs?, t)),
            }
        }
    }

    /// A write transaction of its own, after discarding a held batch.
    fn write_tx(&self) -> Result<WriteTx<'_>> {
        self.discard_held();
        self.begin_write()
    }

    /// Takes the store's write lock; on a store opened read-only, says
    /// what needs write access instead.
    fn begin_write(&self) -> Result<WriteTx<'_>> {
        self.writable()?;
        self.wrote.set(true);
        WriteTx::begin(&self.conn, &self.root)
    }

    fn writable(&self) -> Result<()> {
        match &self.read_only {
            Some(needs) => Err(StoreError::ReadOnly(needs.display().to_string()).into()),
            None => Ok(()),
        }
    }

    /// Discards the batch this handle holds, if any.
    fn discard_held(&self) {
        self.held.take();
    }

    /// Whether this handle holds a batch on PFS `id`.
    fn holds(&self, id: u32) -> bool {
        self.held.borrow().as_ref().is_some_and(|h| h.pfs_id == id)
    }

    /// Applies in `tx` the batch this handle holds on PFS `id` (one held
    /// on another PFS is discarded). A record refused now, though it
    /// passed `validate`, fails the whole batch.
    fn apply_held(&self, tx: &mut WriteTx<'_>, id: u32) -> Result<()> {
        let Some(held) = self.held.take() else {
            return Ok(());
        };
        if held.pfs_id != id {
            return Ok(());
        }
        held.replay(
            |mut req, records| match write::apply(self, tx, id, &mut req, records, true)? {
                Applied::Done(_) => Ok(()),
                Applied::Refused(_) | Applied::BelowSync => Err(Errno::EINVAL.into()),
            },
        )
    }

    /// A call of a held batch on PFS `id`: checked, kept for its SYNC; a
    /// refused record discards the batch.
    fn stage(&self, id: u32, req: &mut MirrorWriteReq, records: &[u8]) -> Result<usize> {
        let sent = *req;
        let count = write::validate(id, req, records)?;
        let mut held = self.held.borrow_mut();
        match held.as_mut() {
            Some(h) if req.head_error.is_none() => h.push(&sent, records)?,
            _ => *held = None,
        }
        Ok(count)
    }
}

impl Pfs for Store {
    fn pfs_id(&self) -> u32 {
        self.pfs_id
    }

    fn set_pfs_id(&mut self, pfs_id: u32) {
        if pfs_id != self.pfs_id {
            self.pin.set(None);
        }
        self.pfs_id = pfs_id;
    }

    fn version(&self) -> Result<u32> {
        Ok(HAMMER_VERSION)
    }

    fn get_pseudofs(&self) -> Result<PseudofsData> {
        let id = self.check_id()?;
        let tx = self.read_tx()?;
        let mut pfsd = self.live(&tx, id)?.pfsd;
        pfsd.sync_end_tid = sync_end(&tx, &pfsd)?;
        Ok(pfsd)
    }

    fn set_pseudofs(&mut self, pfsd: &PseudofsData) -> Result<()> {
        self.save_pseudofs(pfsd, false)
    }

    fn create_pseudofs(&mut self, pfsd: &PseudofsData) -> Result<()> {
        self.save_pseudofs(pfsd, true)
    }

    fn upgrade(&mut self) -> Result<()> {
        let id = self.check_id()?;
        let tx = self.write_tx()?;
        let mut pfsd = self.live(&tx, id)?.pfsd;
        if !pfsd.is_slave() {
            return Ok(());
        }
        let tid = alloc_tid(&tx)?;
        if let Some(t) = pfsd.sync_end_tid.checked_add(1) {
            rollback(&tx, id, t, tid)?;
        }
        pfsd.mirror_flags &= !PFSD_SLAVE;
        save_pfs(&tx, id, &pfsd, tid)?;
        tx.commit()?;
        Ok(())
    }

    fn downgrade(&mut self) -> Result<()> {
        let id = self.check_id()?;
        let tx = self.write_tx()?;
        let mut pfsd = self.live(&tx, id)?.pfsd;
        if pfsd.is_slave() {
            return Ok(());
        }
        pfsd.mirror_flags |= PFSD_SLAVE;
        pfsd.sync_end_tid = pfsd.sync_end_tid.max(next_tid(&tx)? - 1);
        let tid = alloc_tid(&tx)?;
        save_pfs(&tx, id, &pfsd, tid)?;
        tx.commit()?;
        Ok(())
    }

    fn destroy(&mut self) -> Result<()> {
        let id = self.check_id()?;
        let tx = self.write_tx()?;
        // The key space goes in this transaction: an id reused later never
        // shows a record of this PFS, and the generation it bumps makes
        // every handle still pinned to this PFS fail.
        let mut pfsd = self.live(&tx, id)?.pfsd;
        tx.execute("DELETE FROM rec WHERE pfs = ?1", [id])?;
        tx.execute("DELETE FROM origin WHERE pfs = ?1", [id])?;
        memo::forget(&tx, id)?;
        memo::raised_forget(&tx, id)?;
        memo::forget_idle(&tx, id)?;
        let retired = blob::retire(&tx, &self.root, id)?;
        pfsd.mirror_flags |= PFSD_DELETED;
        let tid = alloc_tid(&tx)?;
        save_pfs(&tx, id, &pfsd, tid)?;
        tx.commit()?;
        // This handle knows its PFS is gone: like any other it gets ENOENT
        // from it, but may SET the id anew (kernel-semantics.md §5.3).
        self.pin.set(None);
        blob::remove(&retired)
    }

    fn wait(&self, tid: u64) -> Result<()> {
        self.discard_held();
        let (c, version) = self.sync_point()?;
        if c > tid {
            return Ok(());
        }
        // One change of the sync point (or a SET of the PFS) ends the wait.
        loop {
            thread::sleep(WAIT_POLL);
            if self.sync_point()? != (c, version) {
                return Ok(());
            }
        }
    }

    fn synctid(&mut self, op: SynctidOp) -> Result<u64> {
        let held_on = self.held.borrow().as_ref().map(|h| h.pfs_id);
        if let Some(id) = held_on {
            let mut tx = self.begin_write()?;
            self.apply_held(&mut tx, id)?;
            blob::sync(&tx, &self.root, id)?;
            tx.commit()?;
        }
        // A reader (mirror-read's SYNCTID) has nothing of its own to flush.
        if matches!(op, SynctidOp::Sync1 | SynctidOp::Sync2) && self.read_only.is_none() {
            // Makes batches committed without a sync (mirror_write) durable.
            self.conn
                .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))?;
        }
        self.flush_tid()
    }

    fn mirror_read(&mut self, req: &mut MirrorReadReq, buf: &mut [u8]) -> Result<usize> {
        let id = self.check_id()?;
        self.conn.execute_batch(read::SCAN_CACHE)?;
        let mut busy = self.busy.take();
        let read = self
            .read_blobs(id, |tx| self.live(tx, id))
            .and_then(|(tx, blobs, _)| read::mirror_read(&tx, &blobs, &mut busy, id, req, buf));
        self.busy = busy;
        read
    }

    fn mirror_write(&mut self, req: &mut MirrorWriteReq, records: &[u8]) -> Result<usize> {
        let id = self.check_id()?;
        if self.holds(id) {
            return self.stage(id, req, records);
        }
        self.discard_held();
        let sent = *req;
        // A batch need not be durable by itself: the SET that moves the
        // slave's sync point at SYNC is, and syncing the payload file and
        // the WAL then covers every batch before it.
        self.writable()?;
        self.conn.execute_batch("PRAGMA synchronous=NORMAL")?;
        let applied = self.begin_write().and_then(|mut tx| {
            let a = write::apply(self, &mut tx, id, req, records, false)?;
            if let Applied::Done(_) = a {
                tx.commit()?;
            }
            Ok(a)
        });
        self.conn.execute_batch("PRAGMA synchronous=FULL")?;
        match applied? {
            Applied::Done(count) | Applied::Refused(count) => Ok(count),
            // The call would change history at or below the sync point
            // and kept nothing: it starts a batch kept for its SYNC.
            Applied::BelowSync => {
                *req = sent;
                self.held.replace(Some(Held::new(&self.root, id)?));
                self.stage(id, req, records)
            }
        }
    }

    fn add_snapshots(&mut self, req: &mut SnapshotReq) -> Result<()> {
        self.snapshots_add(req)
    }

    fn del_snapshots(&mut self, req: &mut SnapshotReq) -> Result<()> {
        self.snapshots_del(req)
    }

    fn get_snapshots(&self, req: &mut SnapshotReq) -> Result<()> {
        self.snapshots_get(req)
    }

    fn get_config(&self) -> Result<Option<ConfigData>> {
        self.config_get()
    }

    fn set_config(&mut self, config: &ConfigData) -> Result<()> {
        self.config_set(config)
    }

    fn prune(&mut self, req: &mut PruneReq) -> Result<()> {
        self.prune_pfs(req)
    }

    fn reblock(&mut self, req: &mut ReblockReq) -> Result<()> {
        self.reblock_pfs(req)
    }

    fn store(&self) -> Option<&Store> {
        Some(self)
    }
}
