//! The messages of mirror-verify between the comparing process and the
//! side of each PFS (`hammer mirror-verify-serve <pfs>`, in a thread for a
//! local PFS, through ssh for a remote one). Little-endian; each message
//! is a `MsgHeadLe` and `count` entries of its kind's struct (bytes of
//! text for `ERROR` and `PROBLEM`).
//!
//! The side speaks first (`HELLO`: magic and the PFS's pfsd), then answers
//! each request: `SCAN` (as of `arg`, a TID) with a `PROBLEM` for each
//! problem `hammer verify` would report of the PFS as of that TID (none
//! for a sound PFS), then the top level's nodes; `NODES_OF` (level `arg`,
//! key ranges) with that level's nodes in them. Nodes come in `NODES`
//! messages of `NODES_CHUNK` nodes, the last one shorter (possibly empty).
//! `DIGESTS_OF` (key ranges) is answered with `DIGESTS` messages of at most
//! `DIGESTS_MAX` records, the last one empty. A request holds at most
//! `RANGES_MAX` ranges, in key order and apart. `ERROR` replaces any
//! answer and ends the side. The comparing process ends by closing its end.

use std::io::{self, Read, Write};

use zerocopy::little_endian::{U32, U64};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

use super::digest::{KeyRange, Node, RecordDigest, CONTENT_LEN, HASH_LEN};
use crate::ondisk::{PseudofsData, PseudofsDataLe};
use crate::pfs::store::{RecKey, KEY_LEN};

/// `HELLO`'s magic: "HMVERIFY"; `HELLO`'s `arg` is the format version.
pub const MAGIC: [u8; 8] = *b"HMVERIFY";
pub const VERSION: u64 = 2;

/// Kinds sent by a PFS's side.
pub const HELLO: u32 = 1;
pub const NODES: u32 = 2;
pub const DIGESTS: u32 = 3;
pub const ERROR: u32 = 4;
pub const PROBLEM: u32 = 5;
/// Kinds sent by the comparing process.
pub const SCAN: u32 = 0x10;
pub const NODES_OF: u32 = 0x11;
pub const DIGESTS_OF: u32 = 0x12;

/// Most records in one `DIGESTS` message.
pub const DIGESTS_MAX: usize = 4096;
/// Nodes in each `NODES` message of an answer but its last.
pub const NODES_CHUNK: usize = 4096;
/// Most key ranges in one request: a side holds a request's ranges (4 MiB
/// at most) while it answers; a longer list is asked in pieces.
pub const RANGES_MAX: usize = 1 << 16;
/// Most bytes of an error's or a problem's text.
pub(super) const TEXT_MAX: u32 = 4096;

#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct MsgHeadLe {
    pub kind: U32,
    pub count: U32,
    pub arg: U64,
}

#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct HelloLe {
    pub magic: [u8; 8],
    pub pfsd: PseudofsDataLe,
}

#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct NodeLe {
    pub last: [u8; KEY_LEN],
    pub has_last: u8,
    pub pad: u8,
    pub hash: [u8; HASH_LEN],
}

#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct RangeLe {
    pub after: [u8; KEY_LEN],
    pub last: [u8; KEY_LEN],
    pub has_after: u8,
    pub has_last: u8,
    pub pad: [u8; 2],
}

#[derive(Clone, Copy, Debug, FromBytes, IntoBytes, Immutable, KnownLayout)]
#[repr(C)]
pub struct DigestLe {
    pub key: [u8; KEY_LEN],
    pub pad: [u8; 2],
    pub delete_tid: U64,
    pub content: [u8; CONTENT_LEN],
}

/// One message, either way.
#[derive(Clone, Debug, PartialEq)]
pub enum Msg {
    Hello(Box<PseudofsData>),
    Nodes {
        level: u32,
        nodes: Vec<Node>,
    },
    /// An empty one ends an answer.
    Digests(Vec<RecordDigest>),
    Error(String),
    /// One line of what `hammer verify` reports.
    Problem(String),
    Scan {
        tid: u64,
    },
    NodesOf {
        level: u32,
        ranges: Vec<KeyRange>,
    },
    DigestsOf(Vec<KeyRange>),
}

/// A message that cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum ProtoError {
    #[error("{0}")]
    Io(#[from] io::Error),
    /// The peer closed its end between messages.
    #[error("end of input")]
    Eof,
    #[error("not a mirror-verify peer (magic {0:02x?})")]
    Magic([u8; 8]),
    #[error("mirror-verify format version {0}, this hammer speaks {VERSION}")]
    Version(u64),
    #[error("unknown message kind {0:#x}")]
    Kind(u32),
    #[error("message kind {kind:#x} with {count} entries, over its limit")]
    TooMany { kind: u32, count: u32 },
    #[error("key ranges not in key order and apart")]
    RangeOrder,
}

fn opt_key(present: u8, key: [u8; KEY_LEN]) -> Option<RecKey> {
    (present != 0).then_some(key)
}

fn key_or_zero(k: &Option<RecKey>) -> (u8, RecKey) {
    match k {
        Some(k) => (1, *k),
        None => (0, [0; KEY_LEN]),
    }
}

impl From<&Node> for NodeLe {
    fn from(n: &Node) -> Self {
        let (has_last, last) = key_or_zero(&n.last);
        NodeLe {
            last,
            has_last,
            pad: 0,
            hash: n.hash,
        }
    }
}

impl From<&KeyRange> for RangeLe {
    fn from(r: &KeyRange) -> Self {
        let (has_after, after) = key_or_zero(&r.after);
        let (has_last, last) = key_or_zero(&r.last);
        RangeLe {
            after,
            last,
            has_after,
            has_last,
            pad: [0; 2],
        }
    }
}

impl From<&RecordDigest> for DigestLe {
    fn from(d: &RecordDigest) -> Self {
        DigestLe {
            key: d.key,
            pad: [0; 2],
            delete_tid: d.delete_tid.into(),
            content: d.content,
        }
    }
}

/// Writes `msg` (the caller flushes).
pub fn write_msg(w: &mut dyn Write, msg: &Msg) -> io::Result<()> {
    match msg {
        Msg::Hello(pfsd) => {
            let mut raw = [0; PseudofsData::SIZE];
            pfsd.encode(&mut raw);
            let hello = HelloLe {
                magic: MAGIC,
                pfsd: zerocopy::transmute!(raw),
            };
            w.write_all(msg_head(HELLO, 1, VERSION).as_bytes())?;
            w.write_all(hello.as_bytes())
        }
        Msg::Nodes { level, nodes } => write_nodes(w, *level, nodes),
        Msg::Digests(ds) => {
            w.write_all(msg_head(DIGESTS, ds.len(), 0).as_bytes())?;
            ds.iter()
                .try_for_each(|d| w.write_all(DigestLe::from(d).as_bytes()))
        }
        Msg::Error(text) => write_text(w, ERROR, text),
        Msg::Problem(text) => write_text(w, PROBLEM, text),
        Msg::Scan { tid } => w.write_all(msg_head(SCAN, 0, *tid).as_bytes()),
        Msg::NodesOf { level, ranges } => {
            w.write_all(msg_head(NODES_OF, ranges.len(), (*level).into()).as_bytes())?;
            write_ranges(w, ranges)
        }
        Msg::DigestsOf(ranges) => {
            w.write_all(msg_head(DIGESTS_OF, ranges.len(), 0).as_bytes())?;
            write_ranges(w, ranges)
        }
    }
}

/// Writes one `NODES` message of `nodes`.
pub fn write_nodes(w: &mut dyn Write, level: u32, nodes: &[Node]) -> io::Result<()> {
    w.write_all(msg_head(NODES, nodes.len(), level.into()).as_bytes())?;
    nodes
        .iter()
        .try_for_each(|n| w.write_all(NodeLe::from(n).as_bytes()))
}

/// A text cut to `TEXT_MAX` bytes.
fn write_text(w: &mut dyn Write, kind: u32, text: &str) -> io::Result<()> {
    let text = &text.as_bytes()[..text.len().min(TEXT_MAX as usize)];
    w.write_all(msg_head(kind, text.len(), 0).as_bytes())?;
    w.write_all(text)
}

fn msg_head(kind: u32, count: usize, arg: u64) -> MsgHeadLe {
    MsgHeadLe {
        kind: kind.into(),
        count: u32::try_from(count).unwrap_or(u32::MAX).into(),
        arg: arg.into(),
    }
}

fn write_ranges(w: &mut dyn Write, ranges: &[KeyRange]) -> io::Result<()> {
    ranges
        .iter()
        .try_for_each(|r| w.write_all(RangeLe::from(r).as_bytes()))
}

/// Reads one struct; `None` at an end of input before its first byte.
fn read_struct<T: FromBytes + IntoBytes>(r: &mut dyn Read) -> Result<Option<T>, ProtoError> {
    let mut v = T::new_zeroed();
    let buf = v.as_mut_bytes();
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) if got == 0 => return Ok(None),
            Ok(0) => return Err(io::Error::from(io::ErrorKind::UnexpectedEof).into()),
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(Some(v))
}

/// Reads `count` entries, growing as they arrive (a lying count ends in
/// an early end of input, not a huge allocation).
fn read_entries<T: FromBytes + IntoBytes, U>(
    r: &mut dyn Read,
    count: u32,
    f: impl Fn(T) -> Result<U, ProtoError>,
) -> Result<Vec<U>, ProtoError> {
    let mut out = Vec::with_capacity((count as usize).min(DIGESTS_MAX));
    for _ in 0..count {
        let v =
            read_struct::<T>(r)?.ok_or_else(|| io::Error::from(io::ErrorKind::UnexpectedEof))?;
        out.push(f(v)?);
    }
    Ok(out)
}

fn range_of(r: RangeLe) -> Result<KeyRange, ProtoError> {
    Ok(KeyRange {
        after: opt_key(r.has_after, r.after),
        last: opt_key(r.has_last, r.last),
    })
}

/// Reads the next message; `ProtoError::Eof` when the peer closed its end
/// between messages.
pub fn read_msg(r: &mut dyn Read) -> Result<Msg, ProtoError> {
    let head: MsgHeadLe = read_struct(r)?.ok_or(ProtoError::Eof)?;
    let (kind, count, arg) = (head.kind.get(), head.count.get(), head.arg.get());
    let limit = match kind {
        HELLO => 1,
        NODES => NODES_CHUNK as u32,
        DIGESTS => DIGESTS_MAX as u32,
        ERROR | PROBLEM => TEXT_MAX,
        SCAN => 0,
        NODES_OF | DIGESTS_OF => RANGES_MAX as u32,
        _ => return Err(ProtoError::Kind(kind)),
    };
    if count > limit {
        return Err(ProtoError::TooMany { kind, count });
    }
    let eof = || ProtoError::from(io::Error::from(io::ErrorKind::UnexpectedEof));
    Ok(match kind {
        HELLO => {
            let hello: HelloLe = read_struct(r)?.ok_or_else(eof)?;
            if hello.magic != MAGIC {
                return Err(ProtoError::Magic(hello.magic));
            }
            if arg != VERSION {
                return Err(ProtoError::Version(arg));
            }
            Msg::Hello(Box::new(PseudofsData::decode(&zerocopy::transmute!(
                hello.pfsd
            ))))
        }
        NODES => Msg::Nodes {
            level: arg as u32,
            nodes: read_entries(r, count, |n: NodeLe| {
                Ok(Node {
                    last: opt_key(n.has_last, n.last),
                    hash: n.hash,
                })
            })?,
        },
        DIGESTS => Msg::Digests(read_entries(r, count, |d: DigestLe| {
            Ok(RecordDigest {
                key: d.key,
                delete_tid: d.delete_tid.get(),
                content: d.content,
            })
        })?),
        ERROR => Msg::Error(read_text(r, count)?),
        PROBLEM => Msg::Problem(read_text(r, count)?),
        SCAN => Msg::Scan { tid: arg },
        NODES_OF => Msg::NodesOf {
            level: arg as u32,
            ranges: read_ranges(r, count)?,
        },
        _ => Msg::DigestsOf(read_ranges(r, count)?),
    })
}

fn read_text(r: &mut dyn Read, count: u32) -> Result<String, ProtoError> {
    let bytes = read_entries(r, count, |b: u8| Ok(b))?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// A request's ranges, which must come in key order, each non-empty and
/// after the one before: so no request makes a side answer for a node or
/// a record twice.
fn read_ranges(r: &mut dyn Read, count: u32) -> Result<Vec<KeyRange>, ProtoError> {
    let ranges = read_entries(r, count, range_of)?;
    let mut end = None;
    for (i, r) in ranges.iter().enumerate() {
        let after_the_last = i == 0 || matches!((end, r.after), (Some(e), Some(a)) if a >= e);
        let non_empty = !matches!((r.after, r.last), (Some(a), Some(l)) if a >= l);
        if !after_the_last || !non_empty {
            return Err(ProtoError::RangeOrder);
        }
        end = r.last;
    }
    Ok(ranges)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::{offset_of, size_of};

    /// The layout the module's head comment documents.
    #[test]
    fn struct_sizes_and_offsets() {
        assert_eq!(size_of::<MsgHeadLe>(), 16);
        assert_eq!(offset_of!(MsgHeadLe, count), 4);
        assert_eq!(offset_of!(MsgHeadLe, arg), 8);
        assert_eq!(size_of::<HelloLe>(), 8 + 292);
        assert_eq!(offset_of!(HelloLe, pfsd), 8);
        assert_eq!(size_of::<NodeLe>(), 48);
        assert_eq!(offset_of!(NodeLe, has_last), 30);
        assert_eq!(offset_of!(NodeLe, hash), 32);
        assert_eq!(size_of::<RangeLe>(), 64);
        assert_eq!(offset_of!(RangeLe, last), 30);
        assert_eq!(offset_of!(RangeLe, has_after), 60);
        assert_eq!(offset_of!(RangeLe, has_last), 61);
        assert_eq!(size_of::<DigestLe>(), 56);
        assert_eq!(offset_of!(DigestLe, pad), 30);
        assert_eq!(offset_of!(DigestLe, delete_tid), 32);
        assert_eq!(offset_of!(DigestLe, content), 40);
    }

    fn round_trip(m: Msg) {
        let mut b = Vec::new();
        write_msg(&mut b, &m).unwrap();
        let mut r = &b[..];
        assert_eq!(read_msg(&mut r).unwrap(), m);
        assert!(r.is_empty());
        assert!(matches!(read_msg(&mut r), Err(ProtoError::Eof)));
    }

    #[test]
    fn every_kind_round_trips() {
        let pfsd = PseudofsData {
            sync_end_tid: 0x1_0000_0807,
            mirror_flags: 1,
            ..PseudofsData::default()
        };
        let range = KeyRange {
            after: Some([3; KEY_LEN]),
            last: None,
        };
        round_trip(Msg::Hello(Box::new(pfsd)));
        round_trip(Msg::Nodes {
            level: 2,
            nodes: vec![
                Node {
                    last: Some([7; KEY_LEN]),
                    hash: [9; HASH_LEN],
                },
                Node {
                    last: None,
                    hash: [1; HASH_LEN],
                },
            ],
        });
        round_trip(Msg::Digests(vec![RecordDigest {
            key: [5; KEY_LEN],
            delete_tid: 0x1234,
            content: [6; CONTENT_LEN],
        }]));
        round_trip(Msg::Digests(Vec::new()));
        round_trip(Msg::Error("no such PFS".into()));
        round_trip(Msg::Problem("store database: row 3 missing".into()));
        round_trip(Msg::Scan { tid: 42 });
        round_trip(Msg::NodesOf {
            level: 1,
            ranges: vec![
                KeyRange {
                    after: None,
                    last: Some([1; KEY_LEN]),
                },
                range,
            ],
        });
        round_trip(Msg::DigestsOf(vec![range]));
    }

    #[test]
    fn hostile_heads_are_refused_before_allocating() {
        let head = |kind: u32, count: u32| {
            MsgHeadLe {
                kind: kind.into(),
                count: count.into(),
                arg: 0u64.into(),
            }
            .as_bytes()
            .to_vec()
        };
        let read = |b: Vec<u8>| read_msg(&mut &b[..]).unwrap_err().to_string();
        assert_eq!(read(head(99, 0)), "unknown message kind 0x63");
        assert_eq!(
            read(head(DIGESTS, u32::MAX)),
            "message kind 0x3 with 4294967295 entries, over its limit"
        );
        // A count within the limit but more than is sent.
        assert_eq!(read(head(NODES, 1000)), "unexpected end of file");
        let mut b = Vec::new();
        write_msg(&mut b, &Msg::Hello(Box::default())).unwrap();
        b[16] = b'X';
        assert!(read(b).starts_with("not a mirror-verify peer"));
        assert!(read(head(HELLO, 1)[..10].to_vec()).contains("end of file"));
        assert_eq!(
            read(head(NODES_OF, RANGES_MAX as u32 + 1)),
            "message kind 0x11 with 65537 entries, over its limit"
        );
    }

    /// A side answers each range of a request in turn: ranges that
    /// overlap, come out of order or are empty would make it answer for
    /// the same nodes or records again and again.
    #[test]
    fn ranges_out_of_order_or_overlapping_are_refused() {
        let key = |k: u8| Some([k; KEY_LEN]);
        let range = |after, last| KeyRange { after, last };
        let read = |ranges: Vec<KeyRange>| {
            let mut b = Vec::new();
            write_msg(&mut b, &Msg::DigestsOf(ranges.clone())).unwrap();
            let got = read_msg(&mut &b[..]);
            b.clear();
            write_msg(&mut b, &Msg::NodesOf { level: 0, ranges }).unwrap();
            let again = read_msg(&mut &b[..]);
            assert_eq!(got.is_ok(), again.is_ok());
            got.map(|_| ()).map_err(|e| e.to_string())
        };
        let refused = Err("key ranges not in key order and apart".to_string());
        assert_eq!(read(vec![KeyRange::ALL]), Ok(()));
        assert_eq!(
            read(vec![
                range(None, key(2)),
                range(key(2), key(4)),
                range(key(7), None)
            ]),
            Ok(())
        );
        assert_eq!(read(vec![KeyRange::ALL, KeyRange::ALL]), refused);
        assert_eq!(
            read(vec![range(None, key(4)), range(key(3), None)]),
            refused
        );
        assert_eq!(
            read(vec![range(key(4), None), range(None, key(2))]),
            refused
        );
        assert_eq!(read(vec![range(key(4), key(4))]), refused);
        assert_eq!(read(vec![range(key(5), key(4))]), refused);
    }
}
