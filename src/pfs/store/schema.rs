//! The store's database file: its name, schema and format version, the
//! connection settings every handle uses, and finding the store a path
//! lies in.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Once;
use std::time::Duration;

use nix::unistd::{access, AccessFlags};
use rusqlite::config::DbConfig;
use rusqlite::{params, Connection, OpenFlags};

use super::error::StoreError;
use super::tid::FIRST_TID;
use crate::ondisk::HammerUuid;
use crate::pfs::{PfsError, Result};

/// The database file whose presence makes a directory a store.
pub const DB_NAME: &str = ".hammer-store.db";
/// The on-disk format this code writes; newer stores are refused, older
/// ones (from 2) upgraded by their first writer (`upgrade`).
pub const FORMAT_VERSION: i64 = 3;
/// `PRAGMA application_id`: "HMST".
const APPLICATION_ID: i64 = 0x484d_5354;
/// How long a writer waits for another process's transaction.
pub(super) const BUSY_TIMEOUT: Duration = Duration::from_secs(600);

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

/// The table format 3 added (store-format.md §3, §8).
const RAISED: &str = "
CREATE TABLE raised(
    pfs INTEGER NOT NULL,
    dtid BLOB NOT NULL,
    k BLOB NOT NULL,
    PRIMARY KEY(pfs, dtid, k)
) WITHOUT ROWID;
";

/// The store directory containing `dir` (itself or an ancestor), if any.
pub fn find_root(dir: &Path) -> Option<PathBuf> {
    dir.ancestors()
        .find(|d| d.join(DB_NAME).is_file())
        .map(Path::to_path_buf)
}

/// The modes of a new store: its contents are its owner's alone, whatever
/// the umask (a group may be given read access on purpose, `chmod -R
/// g+rX`; files made later copy the database file's mode).
const DIR_MODE: u32 = 0o700;
const FILE_MODE: u32 = 0o600;

/// A new database in `dir`, which must be empty or missing (then it is
/// made), in WAL mode and not yet holding the schema (`init`); the
/// directory private to its owner, the database file too.
pub(super) fn create(dir: &Path) -> Result<Connection> {
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
    fs::set_permissions(dir, fs::Permissions::from_mode(DIR_MODE)).map_err(io)?;
    // Made here, not by SQLite, so that its mode (which SQLite gives the
    // WAL files too) is the store's and not the umask's.
    let db = dir.join(DB_NAME);
    fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(FILE_MODE)
        .open(&db)
        .and_then(|f| f.set_permissions(fs::Permissions::from_mode(FILE_MODE)))
        .map_err(io)?;
    let conn = Connection::open(&db)?;
    // Before the first table: free pages can then be given back a few at
    // a time (reblock), without rewriting the whole file (VACUUM).
    conn.execute_batch("PRAGMA auto_vacuum=INCREMENTAL")?;
    conn.query_row("PRAGMA journal_mode=WAL", [], |_| Ok(()))?;
    configure(&conn)?;
    Ok(conn)
}

/// Lays out a new database inside the transaction `tx`: the tables, the
/// format marks, and the `meta` rows (the TID allocator at newfs_hammer's
/// first TID, the filesystem's uuid `fsid`).
pub(super) fn init(tx: &Connection, fsid: &HammerUuid) -> Result<()> {
    tx.execute_batch(SCHEMA)?;
    tx.execute_batch(RAISED)?;
    tx.execute_batch(&format!(
        "PRAGMA application_id={APPLICATION_ID}; PRAGMA user_version={FORMAT_VERSION};"
    ))?;
    tx.execute(
        "INSERT INTO meta(name, value) VALUES ('next_tid', ?1), ('fsid', ?2)",
        params![FIRST_TID as i64, &fsid.0[..]],
    )?;
    Ok(())
}

/// Opens the database of the store whose root directory is `root`,
/// refusing a file that is no store or of another format version. Without
/// write access to the database file or the directory (another user's
/// store shared for reading, a read-only filesystem) it is opened
/// read-only; the second value then names what a write would need.
pub(super) fn open(root: &Path) -> std::result::Result<(Connection, Option<PathBuf>), StoreError> {
    let db = root.join(DB_NAME);
    if !db.is_file() {
        return Err(StoreError::NotAStore(root.display().to_string()));
    }
    let writable = |p: &Path| access(p, AccessFlags::W_OK).is_ok();
    let needs = [&db, root]
        .into_iter()
        .find(|p| !writable(p))
        .map(|p| p.to_path_buf());
    let mode = match needs {
        None => OpenFlags::SQLITE_OPEN_READ_WRITE,
        Some(_) => OpenFlags::SQLITE_OPEN_READ_ONLY,
    };
    let conn =
        Connection::open_with_flags(&db, mode | OpenFlags::SQLITE_OPEN_NO_MUTEX).map_err(|e| {
            match &needs {
                // Read-only WAL access needs the -shm file a writer leaves.
                Some(_) if !root.join(format!("{DB_NAME}-shm")).exists() => {
                    StoreError::NoShm(root.display().to_string())
                }
                _ => e.into(),
            }
        })?;
    configure(&conn)?;
    let app: i64 = conn.query_row("PRAGMA application_id", [], |r| r.get(0))?;
    if app != APPLICATION_ID {
        return Err(StoreError::NotAStore(root.display().to_string()));
    }
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if version > FORMAT_VERSION {
        return Err(StoreError::NewerFormat(version));
    }
    if version < UPGRADABLE {
        return Err(StoreError::OlderFormat(version));
    }
    if version < FORMAT_VERSION && needs.is_none() {
        upgrade(&conn)?;
    }
    warn_if_exposed(root, &db);
    Ok((conn, needs))
}

/// The oldest format a writer upgrades; a reader reads it as it is.
const UPGRADABLE: i64 = 2;

/// Brings a store of format 2 to 3, in one write transaction (waiting for
/// the write lock like any writer): the `raised` table, empty, and the
/// prune memos dropped, which vouched for a store that listed no raised
/// row, so that the next whole prune scans every record and lists them
/// (store-format.md §8). Another process may have done it meanwhile.
fn upgrade(conn: &Connection) -> rusqlite::Result<()> {
    let tx = rusqlite::Transaction::new_unchecked(conn, rusqlite::TransactionBehavior::Immediate)?;
    let version: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if version == 2 {
        tx.execute_batch(RAISED)?;
        tx.execute("DELETE FROM meta WHERE name LIKE 'prune %'", [])?;
        tx.execute_batch(&format!("PRAGMA user_version={FORMAT_VERSION}"))?;
    }
    tx.commit()
}

/// Says once per process, on stderr, that other users may read the store
/// (one made before stores were private, or opened up by hand).
fn warn_if_exposed(root: &Path, db: &Path) {
    static WARNED: Once = Once::new();
    let others = |p: &Path| fs::metadata(p).map_or(0, |m| m.mode() & 0o007);
    if others(root) == 0 && others(db) == 0 {
        return;
    }
    WARNED.call_once(|| {
        let _ = writeln!(
            std::io::stderr(),
            "hammer: warning: store {} can be read by other users: `chmod -R o-rwx {}` keeps what it holds private",
            root.display(),
            root.display()
        );
    });
}

/// The mode of a file a store makes after its creation (a payload file):
/// the database file's, so that a store shared with a group stays so.
pub(super) fn file_mode(root: &Path) -> u32 {
    fs::metadata(root.join(DB_NAME)).map_or(FILE_MODE, |m| m.mode() & 0o666)
}

/// WAL pages (64 MiB) after which a commit of a long job checkpoints.
const BULK_CHECKPOINT_PAGES: u32 = 16384;

/// Sets up `conn` for a long job of write transactions none of which
/// needs to be durable by itself (prune; reblock's copy, whose switch
/// syncs itself, and its free pages: what a power cut takes back is done
/// again by the next run), until
/// `end_bulk`. Its commits sync nothing (`synchronous = NORMAL`), and
/// checkpoints, which sync twice and write again the pages the last one
/// wrote (the B-Tree's upper levels, the free list), come every 64 MiB of
/// WAL instead of 4. A statement that changes many rows (`batch.rs`)
/// keeps the pages it changes in a statement journal in memory (a few
/// hundred pages) rather than in a temporary file made for each.
pub(super) fn begin_bulk(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch(&format!(
        "PRAGMA synchronous=NORMAL; PRAGMA wal_autocheckpoint={BULK_CHECKPOINT_PAGES}; \
         PRAGMA temp_store=MEMORY"
    ))
}

/// Back to every connection's settings after `begin_bulk`.
pub(super) fn end_bulk(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch(
        "PRAGMA synchronous=FULL; PRAGMA wal_autocheckpoint=1000; PRAGMA temp_store=DEFAULT",
    )
}

/// A WAL file larger than this when a writer's handle goes is one a
/// large transaction grew: SQLite's automatic checkpoint (every 1000
/// pages, 4 MiB) keeps it below.
const WAL_TRIM_AT: u64 = 16 << 20;

/// When a writer's handle goes: a WAL file that a large transaction grew
/// (an import's, hundreds of MB) is checkpointed and truncated, if no
/// other connection uses it. Left as it is, every process that opens the
/// store first would read all of it again (SQLite rebuilds the WAL's
/// index from it) and, since that rebuild forgets what was already
/// checkpointed, the next commit would copy all of it into the database
/// again; no writer restarts it from its start before then. Best effort,
/// never waiting: a reader or writer present keeps it for a later one.
pub(super) fn trim_wal(conn: &Connection, root: &Path) {
    let wal = root.join(format!("{DB_NAME}-wal"));
    if fs::metadata(wal).map_or(true, |m| m.len() <= WAL_TRIM_AT) {
        return;
    }
    // Errors are ignored: the WAL stays as it was, which is sound.
    if conn.busy_timeout(Duration::ZERO).is_ok() {
        let _ = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
        let _ = conn.busy_timeout(BUSY_TIMEOUT);
    }
}

fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    // The WAL and its index stay when the last connection closes, so that
    // a user with read access only can still open the store: SQLite cannot
    // make them for such a user.
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, true)?;
    // FULL: a TID reported as committed must survive power loss, or it
    // could be handed out again.
    // A 32 MiB page cache keeps the upper B-Tree levels of a large PFS in
    // memory while a mirror-write stays under 64 MB resident whatever the
    // stream size. With payloads outside the database the WAL carries
    // only B-Tree pages: SQLite's default checkpoint at 4 MiB keeps it
    // small, its pages rewritten in place instead of ever new ones.
    conn.execute_batch("PRAGMA synchronous=FULL; PRAGMA cache_size=-32768;")?;
    super::batch::register(conn)
}
