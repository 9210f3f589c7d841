//! HAMMERIOC_REBLOCK on the store (store-format.md §5.1): a PFS's payloads
//! that rows still name copied, in key order, into a new payload file that
//! replaces the old one, and the database's free pages given back.
//!
//! The copy is made outside any transaction, a bounded amount per call,
//! from the file as a read snapshot found it; writers go on appending to
//! the old file meanwhile. The switch is one write transaction: it copies
//! what changed since the snapshot, points every row at its new offset,
//! names the new file in `blob` (a new `gen`, the PFS generation kept),
//! and commits; the old file is removed after it. A reader whose snapshot
//! is older keeps the old file open (or, not yet having opened it, takes
//! a newer snapshot: `Store::read_blobs`).
//!
//! Crashes: the new file is durable before the commit that names it, so
//! no row ever names missing bytes. A file no `blob` row names — a killed
//! reblock's copy, an old file a crash kept from being removed — is
//! removed by the next reblock (`sweep`). One reblock runs per store at a
//! time: it holds the lock file `.hammer-store.reblock`, and a dead
//! process's lock goes with it. The copy lives only as long as the handle
//! making it: a reblock cut short (`-t`, a kill, an error such as ENOSPC)
//! loses its copy, changes nothing, and the next one starts over.

use std::fs::{self, File, OpenOptions, Permissions};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::time::Instant;

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};
use rusqlite::{params, Connection};

use super::blob::{self, Blobs};
use super::error::StoreError;
use super::key::{self, RecKey};
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

/// A payload a row names: where it is, and where the copy put it.
struct Row {
    k: RecKey,
    boff: u64,
    len: usize,
    new: Option<u64>,
}

/// A copy under way of one PFS's payload file.
pub(super) struct Compaction {
    pfs: u32,
    /// The `gen` copied from, and the old file as the snapshot found it.
    gen: i64,
    old: Blobs,
    out: Blobs,
    /// The rows of the snapshot, in key order; those before `next` are
    /// copied.
    rows: Vec<Row>,
    next: usize,
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
        let r = self.rows.get(self.next)?;
        let mut b = key::decode(&r.k);
        b.localization &= LOCALIZE_MASK;
        Some(b)
    }

    /// Copies up to `budget` bytes; whether every row is copied.
    fn copy_some(&mut self, budget: u64, stats: &mut ReblockStats) -> Result<bool> {
        let mut buf = Vec::new();
        let mut spent = 0u64;
        while let Some(r) = self.rows.get_mut(self.next) {
            if spent >= budget {
                return Ok(false);
            }
            self.old.read_into(r.boff, r.len, &mut buf)?;
            r.new = Some(self.out.append(&buf)?);
            stats.data_moves += 1;
            stats.data_byte_moves += r.len as i64;
            spent += r.len as u64;
            self.next += 1;
        }
        Ok(true)
    }
}

/// The payload rows of PFS `id` as `conn` sees them, in key order: key,
/// offset, length.
fn payload_rows(conn: &Connection, id: u32) -> Result<Vec<Row>> {
    let (first, end) = key::localization_range(relocalize(0, id)..=relocalize(LOCALIZE_MASK, id));
    let mut stmt = conn.prepare_cached(
        "SELECT k, leaf, boff FROM rec WHERE k >= ?1 AND k < ?2 AND boff IS NOT NULL",
    )?;
    let mut rows = stmt.query(params![&first[..], &end[..]])?;
    let mut out = Vec::new();
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
            new: None,
        });
    }
    Ok(out)
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

impl Store {
    /// HAMMERIOC_REBLOCK: with DO_DATA a part of the payload file's copy
    /// (all of it and the switch, unless the call's budget ends first),
    /// then with the other bits the database's free pages.
    pub(super) fn reblock_pfs(&mut self, req: &mut ReblockReq) -> Result<()> {
        req.check()?;
        let id = self.check_id()?;
        self.writable()?;
        req.interrupted = false;
        if req.what & DO_DATA != 0 && !self.compact(id, req)? {
            return Ok(());
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
        if !self
            .copy
            .as_ref()
            .is_some_and(|c| c.resumed_by(id, &req.key_beg))
        {
            self.copy = None;
            self.copy = self.begin_copy(id, req)?;
        }
        let Some(c) = self.copy.as_mut() else {
            return Ok(true);
        };
        match c.copy_some(self.reblock_budget, &mut req.stats) {
            Ok(true) => {}
            Ok(false) => {
                req.interrupted = true;
                req.key_cur = c.next_key().unwrap_or(req.key_end);
                return Ok(false);
            }
            Err(e) => {
                self.copy = None;
                return Err(e);
            }
        }
        match self.copy.take() {
            Some(c) => self.switch(c, &mut req.stats).map(|()| true),
            None => Ok(true),
        }
    }

    /// Starts a copy of PFS `id`'s payload file, unless it has none or
    /// less free space than `req.free_level` asks for.
    fn begin_copy(&mut self, id: u32, req: &mut ReblockReq) -> Result<Option<Compaction>> {
        let lock = lock(&self.root)?;
        {
            let tx = self.write_tx()?;
            self.live(&tx, id)?;
            sweep(&tx, &self.root)?;
        }
        let tx = self.read_tx()?;
        self.live(&tx, id)?;
        let (gen, committed) = blob::state(&tx, id)?;
        let rows = payload_rows(&tx, id)?;
        let live: u64 = rows.iter().map(|r| r.len as u64).sum();
        let s = &mut req.stats;
        s.data_count += rows.len() as i64;
        s.data_byte_count += live as i64;
        // As a big-block is reblocked when at least free_level of its
        // bytes are free: the whole file taken for one.
        let free = committed.saturating_sub(live);
        let wanted = i128::from(req.free_level.max(0)) * i128::from(committed);
        if committed == 0 || i128::from(free) * i128::from(BIGBLOCK_SIZE) < wanted {
            return Ok(None);
        }
        let old = Blobs::open(&tx, &self.root, id)?;
        drop(tx);
        let out = Blobs::create(&self.root, id, gen + blob::REBLOCK_STEP)?;
        Ok(Some(Compaction {
            pfs: id,
            gen,
            old,
            out,
            rows,
            next: 0,
            kept: false,
            _lock: lock,
        }))
    }

    /// Makes the copy the PFS's payload file, in one write transaction
    /// that first copies the payloads written since the copy's snapshot.
    fn switch(&mut self, mut c: Compaction, stats: &mut ReblockStats) -> Result<()> {
        let id = c.pfs;
        let tx = self.write_tx()?;
        self.live(&tx, id)?;
        if blob::state(&tx, id)?.0 != c.gen {
            // Destroyed and made anew under the id meanwhile.
            return Err(Errno::ENOENT.into());
        }
        let now = Blobs::open(&tx, &self.root, id)?;
        let mut buf = Vec::new();
        let mut moves = Vec::new();
        for r in payload_rows(&tx, id)? {
            let copied = c
                .rows
                .binary_search_by(|o| o.k.cmp(&r.k))
                .ok()
                .and_then(|i| c.rows.get(i))
                .filter(|o| o.boff == r.boff && o.len == r.len)
                .and_then(|o| o.new);
            let new = match copied {
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
            moves.push((r.k, new));
        }
        for (k, new) in &moves {
            let new =
                i64::try_from(*new).map_err(|_| StoreError::Corrupt("blob file beyond 2^63"))?;
            tx.prepare_cached("UPDATE rec SET boff = ?2 WHERE k = ?1")?
                .execute(params![&k[..], new])?;
        }
        let size = c.out.seal()?;
        let old = blob::switch(&tx, &self.root, id, c.gen + blob::REBLOCK_STEP, size)?;
        tx.commit()?;
        c.kept = true;
        blob::remove(&old)
    }

    /// Gives the database's free pages back to the filesystem, a few per
    /// write transaction; a database made before stores kept
    /// `auto_vacuum = INCREMENTAL` is converted by one VACUUM first.
    fn give_back_pages(&mut self, stats: &mut ReblockStats) -> Result<()> {
        let pragma = |conn: &Connection, name: &str| -> Result<i64> {
            Ok(conn.query_row(&format!("PRAGMA {name}"), [], |r| r.get(0))?)
        };
        stats.btree_count += pragma(&self.conn, "page_count")?;
        self.discard_held();
        if pragma(&self.conn, "auto_vacuum")? != 2 {
            let before = pragma(&self.conn, "page_count")?;
            self.conn
                .execute_batch("PRAGMA auto_vacuum=INCREMENTAL; VACUUM")?;
            stats.btree_moves += (before - pragma(&self.conn, "page_count")?).max(0);
        }
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
        // The file shrinks at a checkpoint that reaches the WAL's end;
        // readers still on older pages may keep it from doing so now.
        self.conn
            .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))?;
        Ok(())
    }

    /// Sets how many payload bytes one REBLOCK call copies at most
    /// (at least 1); the default keeps a call to about a second.
    pub fn set_reblock_budget(&mut self, bytes: u64) {
        self.reblock_budget = bytes.max(1);
    }
}
