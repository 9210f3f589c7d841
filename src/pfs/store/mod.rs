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
//! it, as PFS records in PFS#0 (§2.5), a new version per change; `meta`
//! holds the TID allocator; `origin` remembers which host file (device,
//! inode) each object of a PFS was last imported from, so that a renamed
//! file keeps its object. Every ioctl is one SQLite transaction, and one
//! that changes anything allocates one TID, like a flush; the exception
//! is MIRROR_WRITE's held batch (`write.rs`), a transaction that stays
//! open across calls until the SET or SYNCTID at SYNC. A write
//! transaction that does not commit gives back the payload bytes it
//! appended (`writetx.rs`).
//!
//! Destroyed PFSes: a handle pins the PFS it first works on (`Pin`: the
//! id and its generation, the count of its destroys) and checks it inside
//! the transaction of every later operation; a destroy deletes the key
//! space in its own transaction. Write transactions are serialised by
//! SQLite's write lock, so a destroy and a write never interleave, and an
//! id reused later never shows a record of an earlier PFS.

mod blob;
mod check;
mod history;
mod key;
mod read;
mod txn;
mod write;
mod writetx;

#[cfg(test)]
mod tests;

use std::cell::{Cell, RefCell};
use std::fs;
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use nix::errno::Errno;
use rusqlite::{params, Connection, ErrorCode, OpenFlags, Transaction, TransactionBehavior};

use blob::Blobs;
pub use blob::{PayloadAt, PayloadFault};
pub use history::Change;
pub use key::{decode as decode_key, encode as encode_key, RecKey, KEY_LEN};
pub use txn::{RecordId, Txn};
use writetx::{Held, WriteTx};

use super::{MirrorReadReq, MirrorWriteReq, Pfs, PfsError, Result, SynctidOp};
use crate::ondisk::{
    rectype, BaseElm, HammerUuid, LeafElm, PseudofsData, BTREE_TYPE_RECORD, LOCALIZE_INODE,
    LOCALIZE_MASK, LOCALIZE_MISC, PFSD_DELETED, PFSD_SLAVE,
};
use crate::wire::crc::{crc32c, INODE_CRC_LEN, INODE_DATA_SIZE};

/// The database file whose presence makes a directory a store.
pub const DB_NAME: &str = ".hammer-store.db";
/// The on-disk format this code writes; newer stores are refused.
pub const FORMAT_VERSION: i64 = 2;
/// `PRAGMA application_id`: "HMST".
const APPLICATION_ID: i64 = 0x484d_5354;
/// The HAMMER version the store emulates (CRC-32C data, DIR_LOCAL_INO).
pub const HAMMER_VERSION: u32 = 7;
/// newfs_hammer's first TID.
pub const FIRST_TID: u64 = 0x0000_0001_0000_0000;
/// `data_offset` of every stored record with a payload: the store has no
/// media addresses, any non-zero value tells readers a payload exists.
pub const DATA_OFFSET: u64 = 0xa000_0000_0000_0000;
/// How long a writer waits for another process's transaction.
const BUSY_TIMEOUT: Duration = Duration::from_secs(600);
/// How often `wait` looks at the sync point.
const WAIT_POLL: Duration = Duration::from_millis(50);

/// Store failures other than the errnos of the emulated ioctls.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("store database: {0}")]
    Value(#[from] rusqlite::types::FromSqlError),
    #[error("{0}: not a hammer store")]
    NotAStore(String),
    #[error("store format version {0} is newer than this hammer supports ({FORMAT_VERSION})")]
    NewerFormat(i64),
    #[error(
        "store format version {0} predates this hammer's ({FORMAT_VERSION}): \
         create a new store and mirror into it"
    )]
    OlderFormat(i64),
    #[error("{0}: directory exists and is not empty")]
    NotEmpty(String),
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("store is corrupt: {0}")]
    Corrupt(&'static str),
}

impl StoreError {
    /// The errno a kernel would report for this failure: the I/O error's
    /// own (ENOSPC, ...), ENOSPC for a full database, else EIO.
    pub fn errno(&self) -> Errno {
        match self {
            StoreError::Io { source, .. } => {
                source.raw_os_error().map_or(Errno::EIO, Errno::from_raw)
            }
            StoreError::Sqlite(e) if e.sqlite_error_code() == Some(ErrorCode::DiskFull) => {
                Errno::ENOSPC
            }
            _ => Errno::EIO,
        }
    }
}

impl From<rusqlite::Error> for PfsError {
    fn from(e: rusqlite::Error) -> Self {
        PfsError::Store(StoreError::Sqlite(e))
    }
}

impl From<rusqlite::types::FromSqlError> for PfsError {
    fn from(e: rusqlite::types::FromSqlError) -> Self {
        PfsError::Store(StoreError::Value(e))
    }
}

/// The two columns of `rec` that locate a record's payload (see
/// `load_payload`).
pub(super) const PAYLOAD: &str = "data, boff";

/// Payloads up to this size stay in the record's row; a row that small
/// never overflows its B-Tree page.
const INLINE_MAX: usize = 512;

/// The store directory containing `dir` (itself or an ancestor), if any.
pub fn find_root(dir: &Path) -> Option<PathBuf> {
    dir.ancestors()
        .find(|d| d.join(DB_NAME).is_file())
        .map(Path::to_path_buf)
}

/// An open store; like a descriptor, it addresses one PFS at a time.
pub struct Store {
    conn: Connection,
    root: PathBuf,
    pfs_id: u32,
    /// The PFS this handle works on, as its first successful operation
    /// found it.
    pin: Cell<Option<Pin>>,
    busy: Option<read::Busy>,
    /// A MIRROR_WRITE batch whose transaction is still open (`write.rs`).
    held: RefCell<Option<Held>>,
}

/// The identity of a PFS: its id and generation (how many times that id
/// was destroyed). A handle that pinned one fails every later operation
/// on a PFS that is gone or is a later one under the same id with ENOENT,
/// HAMMER's errno for a PFS that does not exist, instead of working on
/// whatever the id now names: a mirror-write never writes into a
/// destroyed PFS (nor into its successor), a mirror-read never reads one
/// and takes the missing records for the end of the PFS.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Pin {
    pfs_id: u32,
    generation: i64,
}

/// A live PFS as a transaction sees it.
struct Live {
    pfsd: PseudofsData,
    /// The PFS record's leaf: its create_tid is the data's version.
    record: LeafElm,
    generation: i64,
}

const SCHEMA: &str = "
CREATE TABLE meta(name TEXT PRIMARY KEY, value) WITHOUT ROWID;
CREATE TABLE rec(
    k BLOB PRIMARY KEY,
    pfs INTEGER NOT NULL,
    mtid BLOB NOT NULL,
    leaf BLOB NOT NULL,
    data BLOB,
    boff INTEGER
) WITHOUT ROWID;
CREATE INDEX rec_mtid ON rec(pfs, mtid);
CREATE TABLE blob(pfs INTEGER PRIMARY KEY, gen INTEGER NOT NULL, size INTEGER NOT NULL);
CREATE TABLE origin(
    pfs INTEGER NOT NULL,
    dev INTEGER NOT NULL,
    ino INTEGER NOT NULL,
    obj_id INTEGER NOT NULL,
    PRIMARY KEY(pfs, dev, ino)
) WITHOUT ROWID;
";

impl Store {
    /// `hammer store-create`: a new store in `dir` holding PFS#0, a master
    /// with its root directory, as newfs_hammer leaves a filesystem.
    pub fn create(dir: &Path) -> Result<Store> {
        let io = |source| {
            PfsError::Store(StoreError::Io {
                path: dir.display().to_string(),
                source,
            })
        };
        match fs::read_dir(dir) {
            Ok(mut entries) => {
                if entries.next().is_some() {
                    return Err(StoreError::NotEmpty(dir.display().to_string()).into());
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                fs::create_dir_all(dir).map_err(io)?
            }
            Err(e) => return Err(io(e)),
        }
        let mut conn = Connection::open(dir.join(DB_NAME))?;
        conn.query_row("PRAGMA journal_mode=WAL", [], |_| Ok(()))?;
        configure(&conn)?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute_batch(SCHEMA)?;
        tx.execute_batch(&format!(
            "PRAGMA application_id={APPLICATION_ID}; PRAGMA user_version={FORMAT_VERSION};"
        ))?;
        let fsid = HammerUuid::new_random();
        tx.execute(
            "INSERT INTO meta(name, value) VALUES ('next_tid', ?1), ('fsid', ?2)",
            params![FIRST_TID as i64, &fsid.0[..]],
        )?;
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
        Ok(Store {
            conn,
            root: dir.to_path_buf(),
            pfs_id: 0,
            pin: Cell::new(None),
            busy: None,
            held: RefCell::new(None),
        })
    }

    /// Opens the store whose root directory is `root`, addressing PFS#0.
    pub fn open(root: &Path) -> std::result::Result<Store, StoreError> {
        let db = root.join(DB_NAME);
        if !db.is_file() {
            return Err(StoreError::NotAStore(root.display().to_string()));
        }
        let conn = Connection::open_with_flags(
            &db,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        configure(&conn)?;
        let app: i64 = conn.query_row("PRAGMA application_id", [], |r| r.get(0))?;
        if app != APPLICATION_ID {
            return Err(StoreError::NotAStore(root.display().to_string()));
        }
        let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if version > FORMAT_VERSION {
            return Err(StoreError::NewerFormat(version));
        }
        if version < FORMAT_VERSION {
            return Err(StoreError::OlderFormat(version));
        }
        Ok(Store {
            conn,
            root: root.to_path_buf(),
            pfs_id: 0,
            pin: Cell::new(None),
            busy: None,
            held: RefCell::new(None),
        })
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
        let tx = self.read_tx()?;
        self.check_pinned(&tx, id)?;
        let blobs = Blobs::open(&tx, &self.root, id)?;
        let mut stmt = tx.prepare_cached(&format!(
            "SELECT leaf, {PAYLOAD} FROM rec WHERE k >= ?1 AND k < ?2"
        ))?;
        let lo = |id: u32| (id << 16).to_be_bytes();
        // Keys of PFS n start with n's localization; PFS#65535 ends the table.
        let hi: &[u8] = if id == 0xFFFF {
            &[0xFF; KEY_LEN + 1]
        } else {
            &lo(id + 1)
        };
        let mut rows = stmt.query(params![&lo(id)[..], hi])?;
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
        let tx = self.read_tx()?;
        self.check_pinned(&tx, id)?;
        let blobs = Blobs::open(&tx, &self.root, id)?;
        txn::scan(&tx, &blobs, id, types, f)
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
        let c = if live.pfsd.is_slave() {
            live.pfsd.sync_end_tid
        } else {
            next_tid(&tx)? - 1
        };
        Ok((c, live.record.base.create_tid))
    }

    /// PFS `id` as `conn`'s transaction sees it, if it is live and, when
    /// this handle pinned it, still the same PFS; pins it otherwise.
    fn live(&self, conn: &Connection, id: u32) -> Result<Live> {
        let (pfsd, record) = load_live_pfs(conn, id)?;
        let generation = blob::generation(conn, id)?;
        match self.pin.get() {
            Some(p) if p.pfs_id == id => {
                if p.generation != generation {
                    return Err(Errno::ENOENT.into());
                }
            }
            _ => self.pin.set(Some(Pin {
                pfs_id: id,
                generation,
            })),
        }
        Ok(Live {
            pfsd,
            record,
            generation,
        })
    }

    /// A consistent view for a read: while this handle holds a batch, the
    /// held transaction (whose changes it then sees), else a transaction
    /// of its own.
    fn read_tx(&self) -> Result<ReadTx<'_>> {
        ReadTx::on(&self.conn, &self.held)
    }

    /// A write transaction on PFS `id` that continues the batch this
    /// handle holds on it, if any (its changes then commit or roll back
    /// with this one's); a batch held on another PFS is rolled back.
    /// Also returns whether a batch was continued.
    fn write_tx_on(&self, id: u32) -> Result<(WriteTx<'_>, bool)> {
        match self.held.take() {
            Some(h) if h.pfs_id == id => Ok((WriteTx::resume(&self.conn, h), true)),
            other => {
                drop(other.map(|h| WriteTx::resume(&self.conn, h)));
                Ok((WriteTx::begin(&self.conn)?, false))
            }
        }
    }

    /// A write transaction of its own, after rolling back a held batch.
    fn write_tx(&self) -> Result<WriteTx<'_>> {
        self.roll_back_held();
        WriteTx::begin(&self.conn)
    }

    /// Rolls back the batch this handle holds, if any.
    fn roll_back_held(&self) {
        drop(self.held.take().map(|h| WriteTx::resume(&self.conn, h)));
    }

    /// Whether this handle holds a batch on PFS `id`.
    fn holds(&self, id: u32) -> bool {
        self.held.borrow().as_ref().is_some_and(|h| h.pfs_id == id)
    }

    /// Whether this handle pinned PFS `id`.
    fn pinned(&self, id: u32) -> bool {
        self.pin.get().is_some_and(|p| p.pfs_id == id)
    }

    /// For reads that also work on a PFS that is gone (the records of a
    /// destroyed PFS are simply none): ENOENT only when the handle pinned
    /// a PFS that is gone.
    fn check_pinned(&self, conn: &Connection, id: u32) -> Result<()> {
        if self.pinned(id) {
            self.live(conn, id)?;
        }
        Ok(())
    }
}

/// A read's view of the store (`Store::read_tx`).
enum ReadTx<'c> {
    Own(Transaction<'c>),
    Held(&'c Connection),
}

impl<'c> ReadTx<'c> {
    fn on(conn: &'c Connection, held: &RefCell<Option<Held>>) -> Result<Self> {
        Ok(if held.borrow().is_some() {
            ReadTx::Held(conn)
        } else {
            ReadTx::Own(conn.unchecked_transaction()?)
        })
    }
}

impl Deref for ReadTx<'_> {
    type Target = Connection;

    fn deref(&self) -> &Connection {
        match self {
            ReadTx::Own(tx) => tx,
            ReadTx::Held(conn) => conn,
        }
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        // A batch still held never reached its SYNC.
        self.roll_back_held();
    }
}

fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    // FULL: a TID reported as committed must survive power loss, or it
    // could be handed out again.
    // A 32 MiB page cache keeps the upper B-Tree levels of a large PFS in
    // memory while a mirror-write stays under 64 MB resident whatever the
    // stream size. With payloads outside the database the WAL carries
    // only B-Tree pages: SQLite's default checkpoint at 4 MiB keeps it
    // small, its pages rewritten in place instead of ever new ones.
    conn.execute_batch("PRAGMA synchronous=FULL; PRAGMA cache_size=-32768;")
}

pub(crate) fn now_secs() -> u32 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u32::try_from(d.as_secs()).unwrap_or(u32::MAX))
}

fn now_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

/// The next TID the allocator hands out.
fn next_tid(conn: &Connection) -> Result<u64> {
    let v: i64 = conn.query_row("SELECT value FROM meta WHERE name = 'next_tid'", [], |r| {
        r.get(0)
    })?;
    Ok(v as u64)
}

/// Allocates one TID inside a write transaction, so concurrent processes
/// never get the same one and the value is durable with the commit.
///
/// The TID after it is skipped: HAMMER's flusher keeps moving the master's
/// sync point past every committed record (kernel-semantics.md §5.10),
/// while here it moves only at commits. Reporting one past the last
/// record's TID keeps a source from seeing the one-TID range
/// `[T.sync_end + 1, S.sync_end]` as empty (the tool's "No work" rule) and
/// then waiting for a change that never comes.
fn alloc_tid(tx: &Connection) -> Result<u64> {
    let tid = next_tid(tx)?;
    set_next_tid(tx, tid.saturating_add(2))?;
    Ok(tid)
}

/// Keeps the allocator above a TID the store now holds (§1.8).
fn raise_next_tid(tx: &Connection, tid: u64) -> Result<()> {
    if tid >= next_tid(tx)? {
        set_next_tid(tx, tid.saturating_add(1))?;
    }
    Ok(())
}

fn set_next_tid(tx: &Connection, v: u64) -> Result<()> {
    tx.prepare_cached("UPDATE meta SET value = ?1 WHERE name = 'next_tid'")?
        .execute([v as i64])?;
    Ok(())
}

/// The key of PFS `id`'s PFS record (in PFS#0) at `create_tid`.
fn pfs_record_key(id: u32, create_tid: u64) -> BaseElm {
    BaseElm {
        obj_id: 1,
        key: i64::from(id << 16),
        create_tid,
        delete_tid: 0,
        rec_type: rectype::PFS,
        obj_type: OBJTYPE_DIRECTORY,
        btype: BTREE_TYPE_RECORD,
        localization: LOCALIZE_MISC,
    }
}

/// The live version of `id`'s PFS record, if the PFS was ever set.
fn load_pfs(conn: &Connection, id: u32) -> Result<Option<(PseudofsData, LeafElm)>> {
    let first = key::encode(&pfs_record_key(id, 1));
    let last = key::encode(&pfs_record_key(id, 0));
    // A PFS record's payload is always small enough to be inline.
    let mut stmt = conn
        .prepare_cached("SELECT leaf, data FROM rec WHERE k >= ?1 AND k <= ?2 ORDER BY k DESC")?;
    let mut rows = stmt.query(params![&first[..], &last[..]])?;
    while let Some(row) = rows.next()? {
        let leaf = leaf_from(row.get_ref(0)?.as_blob()?)?;
        if leaf.base.delete_tid != 0 {
            continue;
        }
        let data = row.get_ref(1)?.as_blob_or_null()?.unwrap_or_default();
        let bytes: &[u8; PseudofsData::SIZE] = data
            .try_into()
            .map_err(|_| StoreError::Corrupt("PFS record is not 292 bytes"))?;
        return Ok(Some((PseudofsData::decode(bytes), leaf)));
    }
    Ok(None)
}

/// The PFS data and its record, or ENOENT when the PFS does not exist or
/// is marked deleted.
fn load_live_pfs(conn: &Connection, id: u32) -> Result<(PseudofsData, LeafElm)> {
    match load_pfs(conn, id)? {
        Some((p, leaf)) if p.mirror_flags & PFSD_DELETED == 0 => Ok((p, leaf)),
        _ => Err(Errno::ENOENT.into()),
    }
}

/// Writes a new version of `id`'s PFS record at `tid`; the change of its
/// create_tid is what wakes waiters.
fn save_pfs(tx: &Connection, id: u32, pfsd: &PseudofsData, tid: u64) -> Result<()> {
    if let Some((_, mut old)) = load_pfs(tx, id)? {
        if old.base.create_tid == tid {
            tx.prepare_cached("DELETE FROM rec WHERE k = ?1")?
                .execute([&key::encode(&old.base)[..]])?;
        } else {
            old.base.delete_tid = tid;
            old.delete_ts = now_secs();
            update_leaf(tx, &old, tid)?;
        }
    }
    let data = pfsd.to_bytes();
    let leaf = LeafElm {
        base: pfs_record_key(id, tid),
        create_ts: now_secs(),
        delete_ts: 0,
        data_offset: DATA_OFFSET,
        data_len: PseudofsData::SIZE as i32,
        data_crc: crc32c(&data),
    };
    insert_rec(tx, &leaf, Stored::Inline(&data))
}

/// The localization of PFS `id` with the type bits of `lo`.
pub(crate) fn relocalize(lo: u32, id: u32) -> u32 {
    (id << 16) | (lo & LOCALIZE_MASK)
}

/// The index value of a record: the last TID at which it was created,
/// deleted or otherwise changed; a SKIP may only cover records whose
/// value is below the reader's tid_beg.
fn mtid_of(leaf: &LeafElm) -> u64 {
    leaf.base.create_tid.max(leaf.base.delete_tid)
}

/// Where a record's payload is kept.
#[derive(Clone, Copy)]
enum Stored<'a> {
    Nothing,
    Inline(&'a [u8]),
    /// At this offset of the PFS's blob file (as the `boff` column holds
    /// it).
    Blob(i64),
}

/// Puts a payload where its size says: in the row or the blob file.
fn stash<'a>(blobs: &mut Blobs, data: &'a [u8]) -> Result<Stored<'a>> {
    Ok(if data.is_empty() {
        Stored::Nothing
    } else if data.len() <= INLINE_MAX {
        Stored::Inline(data)
    } else {
        let off = blobs.append(data)?;
        Stored::Blob(i64::try_from(off).map_err(|_| StoreError::Corrupt("blob file beyond 2^63"))?)
    })
}

/// Reads the payload of `leaf` from the `PAYLOAD` columns starting at
/// `col` of `row` into `out`.
fn load_payload(
    row: &rusqlite::Row<'_>,
    col: usize,
    leaf: &LeafElm,
    blobs: &Blobs,
    out: &mut Vec<u8>,
) -> Result<()> {
    let inline = row.get_ref(col)?.as_blob_or_null()?;
    let boff = row.get_ref(col + 1)?.as_i64_or_null()?;
    payload_into(inline, boff, leaf, blobs, out)
}

/// Reads `leaf`'s payload, kept inline or at `boff` of the blob file,
/// into `out`.
fn payload_into(
    inline: Option<&[u8]>,
    boff: Option<i64>,
    leaf: &LeafElm,
    blobs: &Blobs,
    out: &mut Vec<u8>,
) -> Result<()> {
    out.clear();
    match (inline, boff) {
        (Some(d), _) => out.extend_from_slice(d),
        (None, Some(boff)) => {
            let off =
                u64::try_from(boff).map_err(|_| StoreError::Corrupt("negative payload offset"))?;
            let len = usize::try_from(leaf.data_len)
                .map_err(|_| StoreError::Corrupt("negative payload length"))?;
            blobs.read_into(off, len, out)?;
        }
        (None, None) => {}
    }
    Ok(())
}

/// Inserts a record; the caller keeps the allocator above its TIDs.
fn insert_rec(tx: &Connection, leaf: &LeafElm, data: Stored<'_>) -> Result<()> {
    let k = key::encode(&leaf.base);
    let mut l = [0u8; LeafElm::SIZE];
    leaf.encode(&mut l);
    let (inline, boff) = match data {
        Stored::Nothing => (None, None),
        Stored::Inline(d) => (Some(d), None),
        Stored::Blob(off) => (None, Some(off)),
    };
    tx.prepare_cached(
        "INSERT INTO rec(k, pfs, mtid, leaf, data, boff) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        &k[..],
        leaf.base.localization >> 16,
        &key::tid_bytes(mtid_of(leaf))[..],
        &l[..],
        inline,
        boff,
    ])?;
    Ok(())
}

/// Rewrites the leaf of an existing record (delete_tid changes) with the
/// change TID `mtid`; the caller keeps the allocator above it.
fn update_leaf(tx: &Connection, leaf: &LeafElm, mtid: u64) -> Result<()> {
    let k = key::encode(&leaf.base);
    let mut l = [0u8; LeafElm::SIZE];
    leaf.encode(&mut l);
    tx.prepare_cached("UPDATE rec SET leaf = ?2, mtid = ?3 WHERE k = ?1")?
        .execute(params![&k[..], &l[..], &key::tid_bytes(mtid)[..]])?;
    Ok(())
}

fn leaf_from(blob: &[u8]) -> Result<LeafElm> {
    let b: &[u8; LeafElm::SIZE] = blob
        .try_into()
        .map_err(|_| StoreError::Corrupt("leaf is not 64 bytes"))?;
    Ok(LeafElm::decode(b))
}

fn key_from(blob: &[u8]) -> Result<RecKey> {
    Ok(blob
        .try_into()
        .map_err(|_| StoreError::Corrupt("record key is not 30 bytes"))?)
}

/// Whether PFS `id` has a live root inode (obj_id 1).
fn has_root(conn: &Connection, id: u32) -> Result<bool> {
    let lo = (id << 16) | LOCALIZE_INODE;
    let first = BaseElm {
        localization: lo,
        obj_id: 1,
        rec_type: rectype::INODE,
        key: 0,
        create_tid: 1,
        ..Default::default()
    };
    let last = BaseElm {
        create_tid: 0,
        ..first
    };
    let mut stmt = conn.prepare_cached("SELECT leaf FROM rec WHERE k >= ?1 AND k <= ?2")?;
    let mut rows = stmt.query(params![&key::encode(&first)[..], &key::encode(&last)[..]])?;
    while let Some(row) = rows.next()? {
        if leaf_from(row.get_ref(0)?.as_blob()?)?.base.delete_tid == 0 {
            return Ok(true);
        }
    }
    Ok(false)
}

/// A new PFS root as SET_PSEUDOFS makes it for a master: a directory, mode
/// 0755, one link, uid/gid 0, DIR_LOCAL_INO and ALG1 hashing (§2.1).
fn create_root(tx: &Connection, id: u32, tid: u64) -> Result<()> {
    let micros = now_micros();
    let mut d = [0u8; INODE_DATA_SIZE];
    d[0..2].copy_from_slice(&1u16.to_le_bytes());
    d[2..4].copy_from_slice(&0o755u16.to_le_bytes());
    d[16..24].copy_from_slice(&micros.to_le_bytes());
    d[64] = OBJTYPE_DIRECTORY;
    d[65] = 0x05;
    d[72..80].copy_from_slice(&1u64.to_le_bytes());
    d[112..120].copy_from_slice(&micros.to_le_bytes());
    d[120..128].copy_from_slice(&micros.to_le_bytes());
    let leaf = LeafElm {
        base: BaseElm {
            obj_id: 1,
            key: 0,
            create_tid: tid,
            delete_tid: 0,
            rec_type: rectype::INODE,
            obj_type: OBJTYPE_DIRECTORY,
            btype: BTREE_TYPE_RECORD,
            localization: (id << 16) | LOCALIZE_INODE,
        },
        create_ts: now_secs(),
        delete_ts: 0,
        data_offset: DATA_OFFSET,
        data_len: INODE_DATA_SIZE as i32,
        data_crc: crc32c(&d[..INODE_CRC_LEN]),
    };
    insert_rec(tx, &leaf, Stored::Inline(&d))
}

/// `HAMMER_OBJTYPE_DIRECTORY`.
const OBJTYPE_DIRECTORY: u8 = 1;

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
        if !pfsd.is_slave() {
            pfsd.sync_end_tid = next_tid(&tx)? - 1;
        }
        Ok(pfsd)
    }

    fn set_pseudofs(&mut self, pfsd: &PseudofsData) -> Result<()> {
        let id = self.check_id()?;
        // A batch held on this PFS commits with the move of its sync point.
        let (tx, _) = self.write_tx_on(id)?;
        // A pinned PFS must still be there; an unpinned handle may create
        // one (or revive a destroyed one, §5.3) and pins it.
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
        let retired = blob::retire(&tx, &self.root, id)?;
        pfsd.mirror_flags |= PFSD_DELETED;
        let tid = alloc_tid(&tx)?;
        save_pfs(&tx, id, &pfsd, tid)?;
        tx.commit()?;
        // This handle knows its PFS is gone: like any other it gets ENOENT
        // from it, but may SET the id anew (§5.3).
        self.pin.set(None);
        blob::remove(&retired)
    }

    fn wait(&self, tid: u64) -> Result<()> {
        // Nothing changes while this handle holds the write lock.
        self.roll_back_held();
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
        if let Some(h) = self.held.take() {
            let id = h.pfs_id;
            let tx = WriteTx::resume(&self.conn, h);
            blob::sync(&tx, &self.root, id)?;
            tx.commit()?;
        }
        if matches!(op, SynctidOp::Sync1 | SynctidOp::Sync2) {
            // Makes batches committed without a sync (mirror_write) durable.
            self.conn
                .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))?;
        }
        self.flush_tid()
    }

    fn mirror_read(&mut self, req: &mut MirrorReadReq, buf: &mut [u8]) -> Result<usize> {
        let id = self.check_id()?;
        let tx = ReadTx::on(&self.conn, &self.held)?;
        self.live(&tx, id)?;
        let blobs = Blobs::open(&tx, &self.root, id)?;
        read::mirror_read(&tx, &blobs, &mut self.busy, id, req, buf)
    }

    fn mirror_write(&mut self, req: &mut MirrorWriteReq, records: &[u8]) -> Result<usize> {
        let id = self.check_id()?;
        let sent = *req;
        let mut may_hold = self.holds(id);
        loop {
            let applied = if may_hold {
                // A held transaction keeps the FULL level it began with
                // (SQLite cannot change it inside one): it ends in the
                // commit that moves the sync point.
                write::mirror_write(self, id, req, records, true)?
            } else {
                self.roll_back_held();
                // A batch need not be durable by itself: the SET that moves
                // the slave's sync point at SYNC is, and syncing the payload
                // file and the WAL then covers every batch before it.
                self.conn.execute_batch("PRAGMA synchronous=NORMAL")?;
                let r = write::mirror_write(self, id, req, records, false);
                self.conn.execute_batch("PRAGMA synchronous=FULL")?;
                r?
            };
            match applied {
                Some(count) => return Ok(count),
                // The call would change history at or below the sync
                // point and kept nothing: again, in a transaction that may
                // stay open until SYNC.
                None => {
                    *req = sent;
                    may_hold = true;
                }
            }
        }
    }
}

/// UPG's rollback to T − 1: records created at or after T are destroyed,
/// deletions at or after T undone (§5.4), as a change at `tid`. Only
/// records changed at or after T can qualify, which the change index finds
/// directly.
fn rollback(tx: &Connection, id: u32, t: u64, tid: u64) -> Result<()> {
    let mut doomed = Vec::new();
    let mut revived = Vec::new();
    {
        let mut stmt =
            tx.prepare_cached("SELECT k, leaf FROM rec WHERE pfs = ?1 AND mtid >= ?2")?;
        let mut rows = stmt.query(params![id, &key::tid_bytes(t)[..]])?;
        while let Some(row) = rows.next()? {
            let k = key_from(row.get_ref(0)?.as_blob()?)?;
            let mut leaf = leaf_from(row.get_ref(1)?.as_blob()?)?;
            if leaf.base.create_tid >= t {
                doomed.push(k);
            } else if leaf.base.delete_tid >= t {
                leaf.base.delete_tid = 0;
                leaf.delete_ts = 0;
                revived.push(leaf);
            }
        }
    }
    for k in doomed {
        tx.prepare_cached("DELETE FROM rec WHERE k = ?1")?
            .execute([&k[..]])?;
    }
    // Un-deleting is a change a downstream reader must not skip.
    for leaf in revived {
        update_leaf(tx, &leaf, tid)?;
    }
    Ok(())
}
