//! HAMMERIOC_REBLOCK on the store (store-format.md §5.1): a PFS's payloads
//! that rows still name copied, in key order, into a new payload file that
//! replaces the old one, and the database's free pages given back.
//!
//! The copy is made outside any write transaction, a bounded amount per
//! call, the rows listed a few thousand at a time in key order, each
//! listing a read transaction of its own; writers go on appending to the
//! old file meanwhile. The bytes a committed row names never change, so a
//! payload copied from one snapshot is good for any later row naming the
//! same offset and length. Where each payload went is written, in key
//! order, to an unlinked file beside the database (`Moves`), so memory
//! stays bounded whatever the size of the PFS. The switch is one write
//! transaction: it walks the rows again in key order, a few thousand at a
//! time, beside that file, copies what changed since, points every row at
//! its new offset, names the new file in `blob` (a new `gen`, the PFS
//! generation kept), and commits; the old file is removed after it. A
//! reader whose snapshot is older keeps the old file open (or, not yet
//! having opened it, takes a newer snapshot: `Store::read_blobs`).
//!
//! Crashes: the new file is durable before the commit that names it, so
//! no row ever names missing bytes. A file no `blob` row names — a killed
//! reblock's copy, an old file a crash kept from being removed — is
//! removed by the next reblock (`sweep`). One reblock runs per store at a
//! time: it holds the lock file `.hammer-store.reblock`, and a dead
//! process's lock goes with it. The copy lives only as long as the handle
//! making it: a reblock cut short (`-t`, a kill, an error such as ENOSPC)
//! loses its copy, changes nothing, and the next one starts over.

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions, Permissions};
use std::io::{self, BufReader, BufWriter, Read, Seek, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::time::Instant;

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};
use rusqlite::{params, Connection};

use super::batch;
use super::blob::{self, Blobs};
use super::error::StoreError;
use super::key::{self, RecKey, KEY_LEN};
use super::memo::{self, Idle};
use super::records::{key_from, leaf_from, relocalize};
use super::waiting::Job;
use super::Store;
use crate::ondisk::{BaseElm, LOCALIZE_MASK};
use crate::pfs::reblock::{BIGBLOCK_SIZE, DO_BTREE, DO_DATA, DO_DIRS, DO_INODES};
use crate::pfs::{ReblockReq, ReblockStats, Result};

/// Payload bytes one call copies at most before it returns interrupted.
pub(super) const BYTES_PER_CALL: u64 = 64 << 20;
/// Database pages one transaction gives back.
const PAGES_PER_TXN: i64 = 1024;
/// The lock file one reblock of the store holds.
const LOCK_NAME: &str = ".hammer-store.reblock";

/// Rows one listing reads at most, in the copy and in the switch; a few
/// in unit tests, so that their small PFSes are listed in many pieces.
const ROWS_PER_LIST: usize = if cfg!(test) { 7 } else { 4096 };

/// A payload a row names: its row's key, where it is, how long it is.
struct Row {
    k: RecKey,
    boff: u64,
    len: usize,
}

/// A copy under way of one PFS's payload file.
pub(super) struct Compaction {
    pfs: u32,
    /// The `gen` copied from, and the old file as the last listing's
    /// snapshot found it (it only grows while that `gen` lasts).
    gen: i64,
    old: Blobs,
    out: Blobs,
    /// Rows listed and not yet copied, in key order.
    pending: VecDeque<Row>,
    /// The key of the last row listed, once one was.
    listed: Option<RecKey>,
    /// Every row is listed.
    listed_all: bool,
    moves: Moves,
    /// Set once the switch committed: the new file is the PFS's.
    kept: bool,
    _lock: Flock<File>,
}

impl Drop for Compaction {
    fn drop(&mut self) {
        // A copy that never became the PFS's file goes.
        if !self.kept {
            let _ = fs::remove_file(self.out.path());
        }
    }
}

impl Compaction {
    /// Whether a call with `key_beg` goes on with this copy.
    fn resumed_by(&self, pfs: u32, key_beg: &BaseElm) -> bool {
        self.pfs == pfs && self.next_key().is_some_and(|k| k == *key_beg)
    }

    /// The key of the first row not yet copied, localization type only.
    fn next_key(&self) -> Option<BaseElm> {
        let r = self.pending.front()?;
        let mut b = key::decode(&r.k);
        b.localization &= LOCALIZE_MASK;
        Some(b)
    }
}

/// Where the copy put each payload, in key order: the row's key, the
/// payload's offset and length in the old file, its offset in the new
/// one. Kept in an unlinked file in the store's directory (gone with the
/// handle or a killed process), 54 bytes a payload of more than 512.
struct Moves {
    file: BufWriter<File>,
}

/// One entry of `Moves`.
struct Moved {
    k: RecKey,
    boff: u64,
    len: u64,
    new: u64,
}

impl Moves {
    const ENTRY: usize = KEY_LEN + 3 * 8;

    fn new(root: &Path) -> Result<Moves> {
        let file = tempfile::tempfile_in(root).map_err(|e| io_err(root, e))?;
        Ok(Moves {
            file: BufWriter::new(file),
        })
    }

    fn push(&mut self, r: &Row, new: u64) -> Result<()> {
        let mut e = [0u8; Self::ENTRY];
        e[..KEY_LEN].copy_from_slice(&r.k);
        e[KEY_LEN..][..8].copy_from_slice(&r.boff.to_le_bytes());
        e[KEY_LEN + 8..][..8].copy_from_slice(&(r.len as u64).to_le_bytes());
        e[KEY_LEN + 16..].copy_from_slice(&new.to_le_bytes());
        self.file
            .write_all(&e)
            .map_err(|e| io_err(Path::new("reblock's moves"), e).into())
    }

    /// The entries from the first, for the switch.
    fn read_back(&mut self) -> Result<MovesReader> {
        let mut back = || -> io::Result<File> {
            self.file.flush()?;
            let mut f = self.file.get_ref().try_clone()?;
            f.rewind()?;
            Ok(f)
        };
        let f = back().map_err(|e| io_err(Path::new("reblock's moves"), e))?;
        Ok(MovesReader {
            file: BufReader::new(f),
            next: None,
        })
    }
}

/// The entries of `Moves` read in order, beside the rows of the switch.
struct MovesReader {
    file: BufReader<File>,
    /// The entry read and not yet passed.
    next: Option<Moved>,
}

impl MovesReader {
    /// Reads the next entry into `next`; none at the end.
    fn advance(&mut self) -> Result<()> {
        let mut e = [0u8; Moves::ENTRY];
        self.next = match self.file.read_exact(&mut e) {
            Ok(()) => {
                let int = |at: usize| {
                    let mut b = [0u8; 8];
                    b.copy_from_slice(&e[at..at + 8]);
                    u64::from_le_bytes(b)
                };
                let mut k = [0u8; KEY_LEN];
                k.copy_from_slice(&e[..KEY_LEN]);
                Some(Moved {
                    k,
                    boff: int(KEY_LEN),
                    len: int(KEY_LEN + 8),
                    new: int(KEY_LEN + 16),
                })
            }
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => None,
            Err(e) => return Err(io_err(Path::new("reblock's moves"), e).into()),
        };
        Ok(())
    }

    /// Where the copy put the payload row `r` names, if it copied that
    /// payload; rows come in key order.
    fn copied(&mut self, r: &Row) -> Result<Option<u64>> {
        loop {
            if self.next.is_none() {
                self.advance()?;
            }
            match &self.next {
                // The rows the copy saw and that are gone since.
                Some(m) if m.k < r.k => self.next = None,
                Some(m) if m.k == r.k => {
                    let hit = m.boff == r.boff && m.len == r.len as u64;
                    return Ok(hit.then_some(m.new));
                }
                _ => return Ok(None),
            }
        }
    }
}

fn io_err(path: &Path, source: io::Error) -> StoreError {
    StoreError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// The payload rows of PFS `id` as `conn` sees them, in key order, at
/// most `n`, after the key `after` (from the PFS's first without one).
fn payload_rows(conn: &Connection, id: u32, after: Option<&RecKey>, n: usize) -> Result<Vec<Row>> {
    let (first, end) = key::localization_range(relocalize(0, id)..=relocalize(LOCALIZE_MASK, id));
    let (sql, from) = match after {
        Some(k) => (
            "SELECT k, leaf, boff FROM rec WHERE k > ?1 AND k < ?2 AND boff IS NOT NULL \
             ORDER BY k LIMIT ?3",
            &k[..],
        ),
        None => (
            "SELECT k, leaf, boff FROM rec WHERE k >= ?1 AND k < ?2 AND boff IS NOT NULL \
             ORDER BY k LIMIT ?3",
            &first[..],
        ),
    };
    let mut stmt = conn.prepare_cached(sql)?;
    let mut rows = stmt.query(params![from, &end[..], n as i64])?;
    let mut out = Vec::with_capacity(n.min(ROWS_PER_LIST));
    while let Some(r) = rows.next()? {
        let leaf = leaf_from(r.get_ref(1)?.as_blob()?)?;
        let boff: i64 = r.get(2)?;
        let (Ok(boff), Ok(len)) = (u64::try_from(boff), usize::try_from(leaf.data_len)) else {
            return Err(StoreError::Corrupt("negative payload offset or length").into());
        };
        out.push(Row {
            k: key_from(r.get_ref(0)?.as_blob()?)?,
            boff,
            len,
        });
    }
    Ok(out)
}

/// How many payload rows PFS `id` has as `conn` sees them, and their
/// bytes: one pass over its rows, none kept.
pub(super) fn payload_totals(conn: &Connection, id: u32) -> Result<(u64, u64)> {
    let (mut count, mut bytes) = (0u64, 0u64);
    let mut after: Option<RecKey> = None;
    loop {
        let rows = payload_rows(conn, id, after.as_ref(), ROWS_PER_LIST)?;
        count += rows.len() as u64;
        bytes += rows.iter().map(|r| r.len as u64).sum::<u64>();
        match rows.last() {
            Some(r) if rows.len() == ROWS_PER_LIST => after = Some(r.k),
            _ => return Ok((count, bytes)),
        }
    }
}

/// The integer value of `PRAGMA <name>`.
fn pragma(conn: &Connection, name: &str) -> Result<i64> {
    Ok(conn.query_row(&format!("PRAGMA {name}"), [], |r| r.get(0))?)
}

/// Takes the store's reblock lock, or says another reblock holds it.
fn lock(root: &Path) -> Result<Flock<File>> {
    let path = root.join(LOCK_NAME);
    let io = |source| StoreError::Io {
        path: path.display().to_string(),
        source,
    };
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(&path)
        .map_err(io)?;
    f.set_permissions(Permissions::from_mode(super::schema::file_mode(root)))
        .map_err(io)?;
    Flock::lock(f, FlockArg::LockExclusiveNonblock).map_err(|(_, e)| match e {
        Errno::EWOULDBLOCK => Errno::EBUSY.into(),
        e => crate::pfs::PfsError::Store(io(e.into())),
    })
}

/// Removes every payload file no `blob` row names: a killed reblock's
/// copy, a file a crash kept from being removed. Called with the reblock
/// lock and the write lock held, so no other process is making one.
fn sweep(conn: &Connection, root: &Path) -> Result<()> {
    let io = |source| StoreError::Io {
        path: root.display().to_string(),
        source,
    };
    for entry in fs::read_dir(root).map_err(io)? {
        let entry = entry.map_err(io)?;
        let name = entry.file_name();
        let Some((pfs, gen)) = name.to_str().and_then(blob::parse_name) else {
            continue;
        };
        if blob::state(conn, pfs)?.0 != gen {
            blob::remove(&entry.path())?;
        }
    }
    Ok(())
}

/// Whether a reblock at `free_level` copies a payload file of
/// `committed` bytes, `free` of them named by no record: as a big-block is
/// reblocked when at least free_level of its bytes are free, the whole
/// file taken for one; at free level 0 always, unless it is empty. A
/// cleanup's dry run foresees its reblock by it (cli.md §23.5).
pub fn copies(free_level: i32, committed: u64, free: u64) -> bool {
    committed > 0
        && i128::from(free) * i128::from(BIGBLOCK_SIZE)
            >= i128::from(free_level) * i128::from(committed)
}

impl Store {
    /// HAMMERIOC_REBLOCK: with DO_DATA a part of the payload file's copy
    /// (all of it and the switch, unless the call's budget ends first),
    /// then with the other bits the database's free pages.
    pub(super) fn reblock_pfs(&mut self, req: &mut ReblockReq) -> Result<()> {
        req.check()?;
        let id = self.check_id()?;
        self.writable()?;
        req.interrupted = false;
        if req.what & DO_DATA != 0 {
            // Only the switch must be durable (it syncs itself), and its
            // pages are checkpointed with the free pages' below, not at
            // once.
            super::schema::begin_bulk(&self.conn)?;
            let done = self.compact(id, req);
            super::schema::end_bulk(&self.conn)?;
            if !done? {
                return Ok(());
            }
        }
        if req.what & (DO_BTREE | DO_INODES | DO_DIRS) != 0 {
            self.give_back_pages(&mut req.stats)?;
        }
        req.key_cur = req.key_end;
        req.key_cur.localization &= LOCALIZE_MASK;
        Ok(())
    }

    /// The payload file's part of a call; false when it stopped before
    /// the end (`req.key_cur` then says where to go on).
    fn compact(&mut self, id: u32, req: &mut ReblockReq) -> Result<bool> {
        let mut copy = match self.copy.take() {
            Some(c) if c.resumed_by(id, &req.key_beg) => c,
            other => {
                drop(other);
                match self.begin_copy(id, req)? {
                    Some(c) => c,
                    None => return Ok(true),
                }
            }
        };
        // An error drops the copy, and its file with it.
        if !self.copy_some(&mut copy, &mut req.stats)? {
            req.interrupted = true;
            req.key_cur = copy.next_key().unwrap_or(req.key_end);
            self.copy = Some(copy);
            return Ok(false);
        }
        self.switch(copy, &mut req.stats).map(|()| true)
    }

    /// Starts a copy of PFS `id`'s payload file, unless it has none or
    /// less free space than `req.free_level` asks for.
    fn begin_copy(&mut self, id: u32, req: &mut ReblockReq) -> Result<Option<Compaction>> {
        let lock = lock(&self.root)?;
        {
            let tx = self.write_tx()?;
            self.live(&tx, id)?;
            sweep(&tx, &self.root)?;
            let (gen, committed) = blob::state(&tx, id)?;
            if committed == 0 {
                return Ok(None);
            }
            if req.free_level > 0 {
                // The bytes no row names, as counted and added to since
                // (`memo::Idle`): when too few, no row need be listed.
                let idle = Idle::load(&tx, id)?
                    .filter(|i| i.gen == gen && !i.counting && i.uses < memo::RECOUNT);
                match idle {
                    Some(i) if !copies(req.free_level, committed, i.bytes) => {
                        Idle {
                            uses: i.uses + 1,
                            ..i
                        }
                        .save(&tx, id)?;
                        tx.commit()?;
                        return Ok(None);
                    }
                    _ => {
                        // Counted below from a snapshot after this commit;
                        // what rows stop naming meanwhile is added here.
                        Idle {
                            gen,
                            bytes: 0,
                            uses: 0,
                            counting: true,
                        }
                        .save(&tx, id)?;
                        tx.commit()?;
                    }
                }
            }
        }
        let tx = self.read_tx()?;
        self.live(&tx, id)?;
        let (gen, committed) = blob::state(&tx, id)?;
        if committed == 0 {
            return Ok(None);
        }
        // At free level 0 (fill 100%, `hammer reblock`'s default) the file
        // is always copied, and the rows are counted as the copy lists
        // them.
        if req.free_level > 0 {
            let (count, live) = payload_totals(&tx, id)?;
            let free = committed.saturating_sub(live);
            if !copies(req.free_level, committed, free) {
                let s = &mut req.stats;
                s.data_count += count as i64;
                s.data_byte_count += live as i64;
                drop(tx);
                let tx = self.write_tx()?;
                self.live(&tx, id)?;
                if let Some(i) = Idle::load(&tx, id)?.filter(|i| i.gen == gen && i.counting) {
                    Idle {
                        gen,
                        bytes: i.bytes.saturating_add(free),
                        uses: 0,
                        counting: false,
                    }
                    .save(&tx, id)?;
                }
                tx.commit()?;
                return Ok(None);
            }
        }
        let old = Blobs::open(&tx, &self.root, id)?;
        drop(tx);
        let moves = Moves::new(&self.root)?;
        let out = Blobs::create(&self.root, id, gen + blob::REBLOCK_STEP)?;
        Ok(Some(Compaction {
            pfs: id,
            gen,
            old,
            out,
            pending: VecDeque::new(),
            listed: None,
            listed_all: false,
            moves,
            kept: false,
            _lock: lock,
        }))
    }

    /// Lists the next rows of the copy, in a read transaction of its own.
    fn list_more(&self, c: &mut Compaction, stats: &mut ReblockStats) -> Result<()> {
        let tx = self.read_tx()?;
        self.live(&tx, c.pfs)?;
        if blob::state(&tx, c.pfs)?.0 != c.gen {
            // Destroyed and made anew under the id meanwhile.
            return Err(Errno::ENOENT.into());
        }
        let rows = payload_rows(&tx, c.pfs, c.listed.as_ref(), ROWS_PER_LIST)?;
        // The same file, grown since: as this snapshot sees it, for the
        // payloads committed since the last listing.
        c.old = Blobs::open(&tx, &self.root, c.pfs)?;
        c.listed_all = rows.len() < ROWS_PER_LIST;
        if let Some(r) = rows.last() {
            c.listed = Some(r.k);
        }
        stats.data_count += rows.len() as i64;
        stats.data_byte_count += rows.iter().map(|r| r.len as i64).sum::<i64>();
        c.pending.extend(rows);
        Ok(())
    }

    /// Copies up to the call's budget of bytes; whether every row is
    /// copied. Stopping short, it leaves the next row listed, so that
    /// `next_key` names it.
    fn copy_some(&self, c: &mut Compaction, stats: &mut ReblockStats) -> Result<bool> {
        let mut buf = Vec::new();
        let mut spent = 0u64;
        loop {
            if c.pending.is_empty() {
                if c.listed_all {
                    return Ok(true);
                }
                self.list_more(c, stats)?;
                continue;
            }
            if spent >= self.reblock_budget {
                return Ok(false);
            }
            let Some(r) = c.pending.pop_front() else {
                continue;
            };
            c.old.read_into(r.boff, r.len, &mut buf)?;
            let new = c.out.append(&buf)?;
            c.moves.push(&r, new)?;
            stats.data_moves += 1;
            stats.data_byte_moves += r.len as i64;
            spent += r.len as u64;
        }
    }

    /// Makes the copy the PFS's payload file, in one write transaction
    /// that walks the rows beside the copy's moves, copying the payloads
    /// written since the copy listed their rows.
    fn switch(&mut self, mut c: Compaction, stats: &mut ReblockStats) -> Result<()> {
        let id = c.pfs;
        let mut moved = c.moves.read_back()?;
        // Durable before the old file goes, whatever the job's settings
        // (the call's end sets them back).
        self.conn.execute_batch("PRAGMA synchronous=FULL")?;
        let tx = self.write_tx()?;
        self.live(&tx, id)?;
        if blob::state(&tx, id)?.0 != c.gen {
            // Destroyed and made anew under the id meanwhile.
            return Err(Errno::ENOENT.into());
        }
        let now = Blobs::open(&tx, &self.root, id)?;
        let mut buf = Vec::new();
        let mut after: Option<RecKey> = None;
        let mut named = 0u64;
        loop {
            let rows = payload_rows(&tx, id, after.as_ref(), ROWS_PER_LIST)?;
            let mut offsets = batch::Offsets::new();
            for r in &rows {
                named += r.len as u64;
                let new = match moved.copied(r)? {
                    Some(n) => n,
                    None => {
                        now.read_into(r.boff, r.len, &mut buf)?;
                        stats.data_count += 1;
                        stats.data_byte_count += r.len as i64;
                        stats.data_moves += 1;
                        stats.data_byte_moves += r.len as i64;
                        c.out.append(&buf)?
                    }
                };
                offsets.push(&r.k, new.to_be_bytes())?;
            }
            // One statement walks the listing's key range (rows without
            // a payload too) and sets the offsets of the rows it lists.
            batch::set_offsets(&tx, &offsets)?;
            // Only `boff` changed: the keys after the last one are still
            // the rows to come.
            match rows.last() {
                Some(r) if rows.len() == ROWS_PER_LIST => after = Some(r.k),
                _ => break,
            }
        }
        let size = c.out.seal()?;
        let old = blob::switch(&tx, &self.root, id, c.gen + blob::REBLOCK_STEP, size)?;
        // The new file holds the payloads rows name, and those copied
        // before their rows went.
        Idle {
            gen: c.gen + blob::REBLOCK_STEP,
            bytes: size.saturating_sub(named),
            uses: 0,
            counting: false,
        }
        .save(&tx, id)?;
        tx.commit()?;
        c.kept = true;
        blob::remove(&old)
    }

    /// Gives the database's free pages back to the filesystem, a few per
    /// write transaction; a database made before stores kept
    /// `auto_vacuum = INCREMENTAL` is converted by one VACUUM first.
    fn give_back_pages(&mut self, stats: &mut ReblockStats) -> Result<()> {
        stats.btree_count += pragma(&self.conn, "page_count")?;
        self.discard_held();
        if pragma(&self.conn, "auto_vacuum")? != 2 {
            let before = pragma(&self.conn, "page_count")?;
            self.conn
                .execute_batch("PRAGMA auto_vacuum=INCREMENTAL; VACUUM")?;
            stats.btree_moves += (before - pragma(&self.conn, "page_count")?).max(0);
        }
        // Pages given back need not be durable one transaction at a time:
        // a power cut leaves them free, for the next run.
        super::schema::begin_bulk(&self.conn)?;
        let done = self.vacuum_steps(stats);
        super::schema::end_bulk(&self.conn)?;
        done?;
        // The file shrinks at a checkpoint that reaches the WAL's end;
        // readers still on older pages may keep it from doing so now.
        self.conn
            .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))?;
        Ok(())
    }

    /// The write transactions that give back the free pages, a few each.
    fn vacuum_steps(&self, stats: &mut ReblockStats) -> Result<()> {
        let mut job = Job::new(&self.root);
        loop {
            let tx = self.write_tx()?;
            let began = Instant::now();
            let free = pragma(&tx, "freelist_count")?;
            if free == 0 {
                break;
            }
            // One page per step: every step is needed.
            let mut step = tx.prepare(&format!("PRAGMA incremental_vacuum({PAGES_PER_TXN})"))?;
            let mut pages = step.query([])?;
            while pages.next()?.is_some() {}
            drop(pages);
            drop(step);
            stats.btree_moves += free - pragma(&tx, "freelist_count")?;
            tx.commit()?;
            job.give_way(began.elapsed());
        }
        Ok(())
    }

    /// Sets how many payload bytes one REBLOCK call copies at most
    /// (at least 1); the default keeps a call to about a second.
    pub fn set_reblock_budget(&mut self, bytes: u64) {
        self.reblock_budget = bytes.max(1);
    }
}
