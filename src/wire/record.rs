//! One mrecord: the 16-byte head, typed bodies, encoding with CRC and
//! padding, and decoding of a record the readers have framed.

use std::mem::{offset_of, size_of};

use super::crc::crc32;
use super::{
    doalign, mrec_type, CRC_OFF, HEAD_SIZE, PASS_REC_SIZE, PFSD_REC_SIZE, REC_HEAD_SIZE, SIGNATURE,
    SKIP_REC_SIZE, UPDATE_REC_SIZE,
};
use crate::ondisk::{BaseElm, LeafElm, PseudofsData};
use zerocopy::little_endian::U32;
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

/// `struct hammer_ioc_mrecord_head` (wire-format.md §2).
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned,
)]
#[repr(C)]
pub struct Head {
    pub(crate) signature: U32,
    pub(crate) rec_crc: U32,
    pub(crate) rec_size: U32,
    pub(crate) rec_type: U32,
}

impl Head {
    /// The head at the start of `b`, if `b` holds one.
    pub fn from_slice(b: &[u8]) -> Option<Head> {
        Head::read_from_prefix(b).ok().map(|(h, _)| h)
    }
    pub fn signature(&self) -> u32 {
        self.signature.get()
    }
    pub fn rec_crc(&self) -> u32 {
        self.rec_crc.get()
    }
    pub fn rec_size(&self) -> u32 {
        self.rec_size.get()
    }
    /// The full `type` word, flags included.
    pub fn rec_type(&self) -> u32 {
        self.rec_type.get()
    }
}

/// The fixed part of a PFSD record after its head: the `hammer_ioc_mrecord_pfs`
/// body (wire-format.md §6.2).
#[derive(Clone, Copy, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
struct PfsdBody {
    version: U32,
    reserved01: U32,
    pfsd: [u8; PseudofsData::SIZE],
}

/// A framed record: exactly `rec_size` bytes (no padding), head CRC already
/// verified by the reader that produced it.
#[derive(Clone, Copy, Debug)]
pub struct RawRecord<'a>(&'a [u8]);

impl<'a> RawRecord<'a> {
    /// Wraps bytes that begin with a head; `None` if shorter than a head.
    pub fn new(bytes: &'a [u8]) -> Option<Self> {
        (bytes.len() >= HEAD_SIZE).then_some(RawRecord(bytes))
    }
    pub fn bytes(&self) -> &'a [u8] {
        self.0
    }
    pub fn head(&self) -> Head {
        // `new` checked that a whole head is there.
        Head::from_slice(self.0).unwrap_or_else(|| unreachable!("RawRecord shorter than a head"))
    }
    pub fn rec_type(&self) -> u32 {
        self.head().rec_type()
    }
    pub fn rec_size(&self) -> u32 {
        self.0.len() as u32
    }
    /// Body bytes at `off..off+N` (record offsets), if the record holds them.
    pub fn array<const N: usize>(&self, off: usize) -> Option<&'a [u8; N]> {
        self.0.get(off..off.checked_add(N)?)?.try_into().ok()
    }
    /// The leaf element of a REC or PASS.
    pub fn leaf(&self) -> Option<LeafElm> {
        self.array::<{ LeafElm::SIZE }>(HEAD_SIZE)
            .map(LeafElm::decode)
    }
    /// The 8-byte tid slot of UPDATE/SYNC/TERM/IDLE.
    pub fn tid(&self) -> Option<u64> {
        self.array::<8>(HEAD_SIZE).map(|b| u64::from_le_bytes(*b))
    }

    /// Decodes the record by `type & TYPE_MASK` (the dispatch of the
    /// kernel and of mirror-write). `None` when the type is unknown or the
    /// record is too short for its type.
    pub fn decode(&self) -> Option<Mrecord<'a>> {
        let rtype = self.rec_type();
        let rec = match rtype & mrec_type::MASK {
            mrec_type::REC | mrec_type::REC_BADCRC => {
                let leaf = self.leaf()?;
                Mrecord::Rec {
                    rtype,
                    leaf,
                    data: &self.0[REC_HEAD_SIZE as usize..],
                }
            }
            mrec_type::PASS => Mrecord::Pass { leaf: self.leaf()? },
            mrec_type::SKIP => Mrecord::Skip {
                beg: BaseElm::decode(self.array(HEAD_SIZE)?),
                end: BaseElm::decode(self.array(HEAD_SIZE + BaseElm::SIZE)?),
            },
            mrec_type::PFSD => Mrecord::Pfsd {
                version: u32::from_le_bytes(*self.array(HEAD_SIZE)?),
                pfsd: PseudofsData::decode(self.array(PFSD_OFF_DATA)?),
            },
            mrec_type::UPDATE => Mrecord::Update { tid: self.tid()? },
            mrec_type::SYNC => Mrecord::Sync { tid: self.tid()? },
            mrec_type::TERM => Mrecord::Term { tid: self.tid()? },
            mrec_type::IDLE => Mrecord::Idle { tid: self.tid()? },
            _ => return None,
        };
        Some(rec)
    }
}

/// Record offset of the `hammer_pseudofs_data` inside a PFSD record.
pub const PFSD_OFF_DATA: usize = HEAD_SIZE + offset_of!(PfsdBody, pfsd);

/// The tid slot that the newest mirror-read leaves in SYNC/IDLE/TERM: the
/// PFSD version of the scratch buffer (wire-format.md §6.5).
pub const SCRATCH_TID: u64 = 1;

/// A typed mrecord. Values are transient (built to encode, decoded to
/// apply), so the large PFSD variant stays inline rather than boxed.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mrecord<'a> {
    /// `rtype` is the full type word (REC plus flag bits); `data` is the
    /// appended payload (may be shorter than `leaf.data_len` for NODATA).
    Rec {
        rtype: u32,
        leaf: LeafElm,
        data: &'a [u8],
    },
    Pass {
        leaf: LeafElm,
    },
    Skip {
        beg: BaseElm,
        end: BaseElm,
    },
    Pfsd {
        version: u32,
        pfsd: PseudofsData,
    },
    Update {
        tid: u64,
    },
    Sync {
        tid: u64,
    },
    Term {
        tid: u64,
    },
    Idle {
        tid: u64,
    },
}

impl Mrecord<'_> {
    /// The full type word written in the head.
    pub fn type_word(&self) -> u32 {
        match self {
            Mrecord::Rec { rtype, .. } => *rtype,
            Mrecord::Pass { .. } => mrec_type::PASS,
            Mrecord::Skip { .. } => mrec_type::SKIP,
            Mrecord::Pfsd { .. } => mrec_type::PFSD,
            Mrecord::Update { .. } => mrec_type::UPDATE,
            Mrecord::Sync { .. } => mrec_type::SYNC,
            Mrecord::Term { .. } => mrec_type::TERM,
            Mrecord::Idle { .. } => mrec_type::IDLE,
        }
    }

    /// `rec_size`: head plus body, without padding.
    pub fn rec_size(&self) -> u32 {
        match self {
            Mrecord::Rec { data, .. } => REC_HEAD_SIZE + data.len() as u32,
            Mrecord::Pass { .. } => PASS_REC_SIZE,
            Mrecord::Skip { .. } => SKIP_REC_SIZE,
            Mrecord::Pfsd { .. } => PFSD_REC_SIZE,
            Mrecord::Update { .. }
            | Mrecord::Sync { .. }
            | Mrecord::Term { .. }
            | Mrecord::Idle { .. } => UPDATE_REC_SIZE,
        }
    }

    /// Bytes on the wire, padding included.
    pub fn wire_size(&self) -> usize {
        doalign(self.rec_size())
    }

    /// Appends the record, head CRC and zero padding included.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        let start = out.len();
        let rec_size = self.rec_size();
        out.resize(start + self.wire_size(), 0);
        let rec = &mut out[start..start + rec_size as usize];
        let body = &mut rec[HEAD_SIZE..];
        match self {
            Mrecord::Rec { leaf, data, .. } => {
                let (l, d) = body.split_at_mut(LeafElm::SIZE);
                leaf.encode(l.try_into().expect("leaf slot is 64 bytes"));
                d.copy_from_slice(data);
            }
            Mrecord::Pass { leaf } => {
                leaf.encode(body.try_into().expect("PASS body is 64 bytes"));
            }
            Mrecord::Skip { beg, end } => {
                let (b, e) = body.split_at_mut(BaseElm::SIZE);
                beg.encode(b.try_into().expect("skip_beg is 40 bytes"));
                end.encode(e.try_into().expect("skip_end is 40 bytes"));
            }
            Mrecord::Pfsd { version, pfsd } => {
                let b = PfsdBody {
                    version: U32::new(*version),
                    reserved01: U32::ZERO,
                    pfsd: pfsd.to_bytes(),
                };
                body.copy_from_slice(b.as_bytes());
            }
            Mrecord::Update { tid }
            | Mrecord::Sync { tid }
            | Mrecord::Term { tid }
            | Mrecord::Idle { tid } => body.copy_from_slice(&tid.to_le_bytes()),
        }
        let mut head = Head {
            signature: U32::new(SIGNATURE),
            rec_crc: U32::ZERO,
            rec_size: U32::new(rec_size),
            rec_type: U32::new(self.type_word()),
        };
        rec[..HEAD_SIZE].copy_from_slice(head.as_bytes());
        head.rec_crc = U32::new(crc32(&rec[CRC_OFF..]));
        rec[..HEAD_SIZE].copy_from_slice(head.as_bytes());
    }

    pub fn to_vec(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(self.wire_size());
        self.encode_into(&mut v);
        v
    }
}

// Layout proofs against wire-format.md §2 and §6.
const _: () = {
    assert!(size_of::<Head>() == HEAD_SIZE);
    assert!(offset_of!(Head, rec_crc) == 4 && offset_of!(Head, rec_size) == 8);
    assert!(offset_of!(Head, rec_type) == 12 && CRC_OFF == offset_of!(Head, rec_size));
    assert!(PFSD_OFF_DATA == 24);
    assert!(REC_HEAD_SIZE as usize == HEAD_SIZE + LeafElm::SIZE);
    assert!(SKIP_REC_SIZE as usize == HEAD_SIZE + 2 * BaseElm::SIZE);
    assert!(PFSD_REC_SIZE as usize == PFSD_OFF_DATA + PseudofsData::SIZE);
    assert!(UPDATE_REC_SIZE as usize == HEAD_SIZE + 8);
};
