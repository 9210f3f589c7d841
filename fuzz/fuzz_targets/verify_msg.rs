//! Fuzz target for mirror-verify's messages (src/verify/proto.rs) and the
//! side that answers them (src/verify/serve.rs). The bytes are read message
//! after message until the first refusal; each message read must write back
//! to bytes that read as the same message. Then the same bytes, as a
//! hostile comparing process sends them (each request's entries spelled by
//! a short pattern, so that a small input asks as much as a side takes),
//! are served from a small store: the side may refuse, never panic, hang,
//! or hold more than 64 MiB of heap.
//!
//! Run from the crate root: `cargo +nightly fuzz run verify_msg --
//! -max_total_time=600`.
#![no_main]

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::OnceLock;

use hammer_mirror::ondisk::{rectype, LOCALIZE_MISC};
use hammer_mirror::pfs::store::{RecordId, Store};
use hammer_mirror::verify::proto::{read_msg, write_msg, DIGESTS_OF, NODES_OF};
use hammer_mirror::verify::serve;
use libfuzzer_sys::fuzz_target;

/// The heap the Rust code holds, and its high-water mark.
static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

struct Counting;

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract, passed on.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            let live = LIVE.fetch_add(layout.size(), Relaxed) + layout.size();
            PEAK.fetch_max(live, Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, p: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract, passed on.
        unsafe { System.dealloc(p, layout) };
        LIVE.fetch_sub(layout.size(), Relaxed);
    }
}

#[global_allocator]
static HEAP: Counting = Counting;

/// What a side may hold, whatever it is sent.
const HEAP_MAX: usize = 64 << 20;
/// Most bytes one request's entries expand to (2^20 ranges, the most an
/// older side took), and all requests of one input.
const MESSAGE_MAX: u64 = 64 << 20;
const INPUT_MAX: u64 = 2 * MESSAGE_MAX;
/// Most ranges of a `DIGESTS_OF` expanded: each is a read of the PFS, and
/// an input must run in seconds (reading them is `NODES_OF`'s code).
const DIGEST_RANGES_MAX: u64 = 1024;

/// A store whose PFS#0 holds records enough for several nodes of the
/// lowest level, made once per process (in `$TMPDIR/verify_msg-<pid>`,
/// left behind: libFuzzer ends the process without dropping statics).
fn store() -> &'static Path {
    static ROOT: OnceLock<PathBuf> = OnceLock::new();
    ROOT.get_or_init(|| {
        let root = std::env::temp_dir().join(format!("verify_msg-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let mut store = Store::create(&root).expect("a store");
        let mut tx = store.begin().expect("a transaction");
        for i in 0..2000 {
            let id = RecordId {
                localization: LOCALIZE_MISC,
                obj_id: 0x100 + i / 16,
                rec_type: rectype::DATA,
                key: (i % 16 + 1) * 0x4000,
            };
            tx.put(&id, 1, &[i as u8; 64]).expect("a record");
        }
        tx.commit().expect("a commit");
        root
    })
}

/// The fuzz input as a comparing process's requests: each 16-byte head is
/// followed by a byte `n`, then the message's entries (count times 64
/// bytes for a request of ranges, count bytes otherwise): the next `n`
/// bytes repeated, or with `n` 0 ranges in key order and apart.
struct Requests<'a> {
    rest: &'a [u8],
    /// The head being handed out, and how much of it is.
    head: Vec<u8>,
    /// The entries of the message being handed out: their pattern (empty:
    /// ordered ranges), how many bytes were handed out and are left.
    pattern: &'a [u8],
    done: u64,
    left: u64,
    total: u64,
}

impl Requests<'_> {
    /// Byte `at` of the ordered ranges: range i is `(4i, 4i + 2]`, each key
    /// the number big-endian in its first 8 bytes.
    fn ranges_byte(at: u64) -> u8 {
        let (i, off) = (at / 64, (at % 64) as usize);
        let key = |n: u64, b: usize| n.to_be_bytes().get(b).copied().unwrap_or(0);
        match off {
            0..30 => key(4 * i, off),
            30..60 => key(4 * i + 2, off - 30),
            60 | 61 => 1,
            _ => 0,
        }
    }
}

impl Read for Requests<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if !self.head.is_empty() {
            let n = self.head.len().min(buf.len());
            buf[..n].copy_from_slice(&self.head[..n]);
            self.head.drain(..n);
            return Ok(n);
        }
        if self.left > 0 {
            let n = (self.left.min(buf.len() as u64)) as usize;
            for (j, b) in buf[..n].iter_mut().enumerate() {
                let at = self.done + j as u64;
                *b = match self.pattern.len() {
                    0 => Self::ranges_byte(at),
                    len => self.pattern[(at % len as u64) as usize],
                };
            }
            self.done += n as u64;
            self.left -= n as u64;
            return Ok(n);
        }
        if self.rest.len() < 16 || self.total >= INPUT_MAX {
            // A short head, then the end.
            let rest = std::mem::take(&mut self.rest);
            self.head = rest[..rest.len().min(16)].to_vec();
            return if self.head.is_empty() {
                Ok(0)
            } else {
                self.read(buf)
            };
        }
        let (head, rest) = self.rest.split_at(16);
        let kind = u32::from_le_bytes(head[..4].try_into().expect("4 bytes"));
        let count = u64::from(u32::from_le_bytes(head[4..8].try_into().expect("4 bytes")));
        let n = rest
            .first()
            .map_or(0, |&n| usize::from(n))
            .min(rest.len().saturating_sub(1));
        self.pattern = rest.get(1..1 + n).unwrap_or(&[]);
        self.rest = rest.get(1 + n..).unwrap_or(&[]);
        self.left = match kind {
            NODES_OF => count * 64,
            DIGESTS_OF => count.min(DIGEST_RANGES_MAX) * 64,
            _ => count,
        }
        .min(MESSAGE_MAX);
        self.done = 0;
        self.total += self.left;
        self.head = head.to_vec();
        self.read(buf)
    }
}

fuzz_target!(|data: &[u8]| {
    let mut input = data;
    while let Ok(msg) = read_msg(&mut input) {
        let mut again = Vec::new();
        write_msg(&mut again, &msg).expect("write to a Vec");
        let back = read_msg(&mut &again[..]).expect("a message written reads back");
        assert_eq!(back, msg);
    }

    let root = store();
    let mut requests = Requests {
        rest: data,
        head: Vec::new(),
        pattern: &[],
        done: 0,
        left: 0,
        total: 0,
    };
    let before = LIVE.load(Relaxed);
    PEAK.store(before, Relaxed);
    let _ = serve(root, &mut requests, &mut io::sink());
    let held = PEAK.load(Relaxed) - before;
    assert!(held <= HEAP_MAX, "the side held {held} bytes");
});
