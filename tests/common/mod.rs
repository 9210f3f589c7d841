//! Helpers shared by the mirror end-to-end tests: stores with history,
//! running the binary, comparing PFSes record by record as of a TID, and
//! `FailAfter`, the fault-injection seam for streams.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use hammer_mirror::ondisk::{rectype, LOCALIZE_INODE, LOCALIZE_MISC};
use hammer_mirror::pfs::store::{RecordId, Store};
use hammer_mirror::pfs::Pfs;

pub fn hammer() -> Command {
    Command::new(env!("CARGO_BIN_EXE_hammer"))
}

pub fn run(args: &[&str]) -> Output {
    hammer().args(args).stdin(Stdio::null()).output().unwrap()
}

pub fn ok(args: &[&str]) -> Output {
    let out = run(args);
    assert!(
        out.status.success(),
        "hammer {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A new store in `dir/name` with a master PFS `master` in it.
pub fn store_with_master(dir: &Path, name: &str) -> PathBuf {
    let root = dir.join(name);
    ok(&["store-create", root.to_str().unwrap()]);
    ok(&["pfs-master", root.join("master").to_str().unwrap()]);
    root
}

pub fn open(root: &Path, pfs_id: u32) -> Store {
    let mut s = Store::open(root).unwrap();
    s.set_pfs_id(pfs_id);
    s
}

pub fn inode(obj: i64) -> RecordId {
    RecordId {
        localization: LOCALIZE_INODE,
        obj_id: obj,
        rec_type: rectype::INODE,
        key: 0,
    }
}

pub fn data(obj: i64, off: i64) -> RecordId {
    RecordId {
        localization: LOCALIZE_MISC,
        obj_id: obj,
        rec_type: rectype::DATA,
        key: off,
    }
}

/// Writes `n` generations of history into PFS#1 of `root`: files created,
/// rewritten and deleted across transactions. Returns the last TID.
pub fn make_history(root: &Path, files: i64, generations: u32, size: usize) -> u64 {
    make_history_in(root, 1, files, generations, size)
}

/// `make_history` into PFS `pfs_id`.
pub fn make_history_in(root: &Path, pfs_id: u32, files: i64, generations: u32, size: usize) -> u64 {
    let mut s = open(root, pfs_id);
    let mut last = 0;
    for g in 0..generations {
        let mut t = s.begin().unwrap();
        // The TID salts the content, so every call writes new versions.
        let salt = t.tid() as u8;
        for f in 0..files {
            let obj = 0x1_0000_0100 + f;
            if g > 0 && (f + g as i64) % 5 == 0 {
                t.delete(&data(obj, 0x4000)).unwrap();
                continue;
            }
            if g == 0 || (f + g as i64) % 3 == 0 {
                let mut ino = vec![0u8; 128];
                ino[0] = g as u8;
                ino[1] = salt;
                ino[8..16].copy_from_slice(&f.to_le_bytes());
                t.put(&inode(obj), 1, &ino).unwrap();
                let body: Vec<u8> = (0..size)
                    .map(|i| (i as u8) ^ (g as u8) ^ (f as u8))
                    .collect();
                t.put(&data(obj, 0x4000), 2, &body).unwrap();
            }
        }
        last = t.commit().unwrap();
    }
    last
}

/// A record's key without the PFS bits: (localization type, obj_id, key,
/// rec_type, create_tid).
pub type RecKey = (u32, i64, i64, u16, u64);

/// A PFS as of `tid`: every visible record by its key, with its data CRC
/// and payload.
pub fn as_of(root: &Path, pfs_id: u32, tid: u64) -> BTreeMap<RecKey, (u64, Vec<u8>)> {
    let s = open(root, pfs_id);
    let mut m = BTreeMap::new();
    s.for_each_record(|leaf, d| {
        let b = &leaf.base;
        let visible = b.create_tid <= tid && (b.delete_tid == 0 || b.delete_tid > tid);
        if visible {
            m.insert(
                (
                    b.localization & 0xFFFF,
                    b.obj_id,
                    b.key,
                    b.rec_type,
                    b.create_tid,
                ),
                (leaf.data_crc as u64, d.to_vec()),
            );
        }
    })
    .unwrap();
    m
}

/// The sync_end_tid of PFS `pfs_id`.
pub fn sync_end(root: &Path, pfs_id: u32) -> u64 {
    open(root, pfs_id).get_pseudofs().unwrap().sync_end_tid
}

/// Asserts that PFS `pfs_id`'s payload file holds no bytes past its
/// committed size (what a failed writer must give back).
pub fn assert_no_payload_tail(root: &Path, pfs_id: u32) {
    let db = rusqlite::Connection::open(root.join(hammer_mirror::pfs::store::DB_NAME)).unwrap();
    let (generation, size): (i64, i64) = db
        .query_row("SELECT gen, size FROM blob WHERE pfs = ?1", [pfs_id], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap_or((0, 0));
    let file = root.join(format!(".hammer-store.pfs{pfs_id:05}.{generation}"));
    let len = std::fs::metadata(&file).map_or(0, |m| m.len());
    assert_eq!(
        len,
        size as u64,
        "{} past its committed size",
        file.display()
    );
}

/// Asserts the slave equals the master as of the slave's sync point.
pub fn assert_mirrored(master: (&Path, u32), slave: (&Path, u32)) -> u64 {
    let tid = sync_end(slave.0, slave.1);
    let want = as_of(master.0, master.1, tid);
    let got = as_of(slave.0, slave.1, tid);
    assert!(!want.is_empty(), "master empty as of {tid:#x}");
    assert_eq!(got.len(), want.len(), "record count as of {tid:#x}");
    assert!(got == want, "slave differs from master as of {tid:#x}");
    tid
}

/// `hammer <a...> mirror-read SRC | hammer <b...> mirror-write DST`.
pub fn pipe(read_args: &[&str], write_args: &[&str]) -> (Output, Output) {
    let mut r = hammer()
        .args(read_args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let w = hammer()
        .args(write_args)
        .stdin(r.stdout.take().unwrap())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let wo = w.wait_with_output().unwrap();
    let ro = r.wait_with_output().unwrap();
    (ro, wo)
}

/// One store serving several clients, a directory each, as an
/// authorized_keys line `ssh-remote mirror-read,mirror-write <store>/clientA`
/// confines client A: A's master `clientA/pfs` (PFS#1), B's master
/// `clientB/pfs` (PFS#2) and B's slave `clientB/slave` (PFS#3, mirrored
/// from B's master), each with history. Returns the store's root.
pub fn two_clients(dir: &Path) -> PathBuf {
    let store = dir.join("backup");
    ok(&["store-create", store.to_str().unwrap()]);
    for c in ["clientA", "clientB"] {
        std::fs::create_dir(store.join(c)).unwrap();
    }
    let path = |p: &str| store.join(p).display().to_string();
    ok(&["pfs-master", &path("clientA/pfs")]);
    ok(&["pfs-master", &path("clientB/pfs")]);
    make_history_in(&store, 1, 5, 2, 1000);
    make_history_in(&store, 2, 5, 2, 1000);
    let (r, w) = pipe(
        &["-i", "0", "mirror-read", &path("clientB/pfs")],
        &["-y", "mirror-write", &path("clientB/slave")],
    );
    assert!(
        r.status.success() && w.status.success(),
        "{}",
        text(&w.stderr)
    );
    assert_mirrored((&store, 2), (&store, 3));
    store
}

/// What client A would need to wipe B's slave (PFS#3 of `store`): a
/// stream carrying B's shared uuid whose one batch is a SKIP at the end of
/// the key space (the sweep up to it marks every record deleted) and which
/// moves the sync point on.
pub fn wipe_stream(store: &Path) -> Vec<u8> {
    use hammer_mirror::ondisk::BaseElm;
    use hammer_mirror::wire::Mrecord;
    let mut pfsd = open(store, 3).get_pseudofs().unwrap();
    let end = pfsd.sync_end_tid + 0x100;
    pfsd.sync_end_tid = end;
    let mut s = Vec::new();
    let head = Mrecord::Pfsd { version: 1, pfsd };
    head.encode_into(&mut s);
    head.encode_into(&mut s);
    Mrecord::Skip {
        beg: BaseElm::KEY_END_INIT,
        end: BaseElm::KEY_END_INIT,
    }
    .encode_into(&mut s);
    Mrecord::Sync { tid: end }.encode_into(&mut s);
    Mrecord::Term { tid: end }.encode_into(&mut s);
    s
}

/// PFS `pfs_id` of `store` as a client could change it: its configuration
/// and every record (leaf and payload), deleted ones included. A master's
/// sync point is left out: it is the store's, moved by any change.
pub fn pfs_state(store: &Path, pfs_id: u32) -> Vec<Vec<u8>> {
    let s = open(store, pfs_id);
    let mut pfsd = s.get_pseudofs().unwrap();
    if !pfsd.is_slave() {
        pfsd.sync_end_tid = 0;
    }
    let mut b = [0u8; hammer_mirror::ondisk::PseudofsData::SIZE];
    pfsd.encode(&mut b);
    let mut state = vec![b.to_vec()];
    s.for_each_record(|leaf, d| {
        let mut l = [0u8; hammer_mirror::ondisk::LeafElm::SIZE];
        leaf.encode(&mut l);
        state.push([&l[..], d].concat());
    })
    .unwrap();
    state
}

/// What a `FailAfter` does once its bytes are used up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// The end of the stream: reads return 0, writes write nothing.
    Eof,
    /// Every call fails with this errno.
    Errno(i32),
}

/// A reader or writer that passes `limit` bytes through, at most `chunk`
/// per call (short reads and writes), and then fails as `fault` says
/// (STYLE.md 8: fault injection at the stream seam).
pub struct FailAfter<T> {
    inner: T,
    left: usize,
    chunk: usize,
    fault: Fault,
    /// A call asked for more than the limit let through.
    tripped: bool,
}

impl<T> FailAfter<T> {
    pub fn new(inner: T, limit: usize, fault: Fault) -> Self {
        FailAfter {
            inner,
            left: limit,
            chunk: usize::MAX,
            fault,
            tripped: false,
        }
    }

    /// Never fails; every call moves at most `chunk` bytes.
    pub fn short(inner: T, chunk: usize) -> Self {
        FailAfter::new(inner, usize::MAX, Fault::Eof).chunked(chunk)
    }

    pub fn chunked(mut self, chunk: usize) -> Self {
        self.chunk = chunk.max(1);
        self
    }

    pub fn into_inner(self) -> T {
        self.inner
    }

    /// Whether the fault was delivered: a call came after the limit.
    pub fn tripped(&self) -> bool {
        self.tripped
    }

    /// How many bytes may pass in a call of `len`, or the fault.
    fn allow(&mut self, len: usize) -> io::Result<usize> {
        if self.left > 0 || len == 0 {
            return Ok(len.min(self.left).min(self.chunk));
        }
        self.tripped = true;
        match self.fault {
            Fault::Errno(e) => Err(io::Error::from_raw_os_error(e)),
            Fault::Eof => Ok(0),
        }
    }
}

impl<R: Read> Read for FailAfter<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.allow(buf.len())?;
        let got = self.inner.read(&mut buf[..n])?;
        self.left -= got;
        Ok(got)
    }
}

impl<W: Write> Write for FailAfter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.allow(buf.len())?;
        let put = self.inner.write(&buf[..n])?;
        self.left -= put;
        Ok(put)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}
