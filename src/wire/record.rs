//! One mrecord: the 16-byte head, typed bodies, encoding with CRC and
//! padding, and decoding of a record the readers have framed.

use super::crc::crc32;
use super::{
    doalign, mrec_type, CRC_OFF, HEAD_SIZE, PASS_REC_SIZE, PFSD_REC_SIZE, REC_HEAD_SIZE, SIGNATURE,
    SKIP_REC_SIZE, UPDATE_REC_SIZE,
};
use crate::ondisk::{le_get, le_put, BaseElm, LeafElm, PseudofsData};

/// `struct hammer_ioc_mrecord_head` as bytes with typed accessors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Head(pub [u8; HEAD_SIZE]);

impl Head {
    pub const OFF_SIGNATURE: usize = 0;
    pub const OFF_REC_CRC: usize = 4;
    pub const OFF_REC_SIZE: usize = 8;
    pub const OFF_TYPE: usize = 12;

    pub fn from_slice(b: &[u8]) -> Option<Head> {
        let mut h = [0u8; HEAD_SIZE];
        h.copy_from_slice(b.get(..HEAD_SIZE)?);
        Some(Head(h))
    }
    pub fn signature(&self) -> u32 {
        le_get!(u32, self.0, Self::OFF_SIGNATURE)
    }
    pub fn rec_crc(&self) -> u32 {
        le_get!(u32, self.0, Self::OFF_REC_CRC)
    }
    pub fn rec_size(&self) -> u32 {
        le_get!(u32, self.0, Self::OFF_REC_SIZE)
    }
    /// The full `type` word, flags included.
    pub fn rec_type(&self) -> u32 {
        le_get!(u32, self.0, Self::OFF_TYPE)
    }
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
        let mut h = [0u8; HEAD_SIZE];
        h.copy_from_slice(&self.0[..HEAD_SIZE]);
        Head(h)
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
pub const PFSD_OFF_DATA: usize = 24;

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
        le_put!(rec, Head::OFF_SIGNATURE, SIGNATURE);
        le_put!(rec, Head::OFF_REC_SIZE, rec_size);
        le_put!(rec, Head::OFF_TYPE, self.type_word());
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
                le_put!(body, 0, *version);
                pfsd.encode(
                    (&mut body[PFSD_OFF_DATA - HEAD_SIZE..])
                        .try_into()
                        .expect("pfsd slot is 292 bytes"),
                );
            }
            Mrecord::Update { tid }
            | Mrecord::Sync { tid }
            | Mrecord::Term { tid }
            | Mrecord::Idle { tid } => le_put!(body, 0, *tid),
        }
        let crc = crc32(&rec[CRC_OFF..]);
        le_put!(rec, Head::OFF_REC_CRC, crc);
    }

    pub fn to_vec(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(self.wire_size());
        self.encode_into(&mut v);
        v
    }
}

// Layout proofs against wire-format.md §2 and §6.
const _: () = {
    assert!(Head::OFF_TYPE + 4 == HEAD_SIZE);
    assert!(REC_HEAD_SIZE as usize == HEAD_SIZE + LeafElm::SIZE);
    assert!(SKIP_REC_SIZE as usize == HEAD_SIZE + 2 * BaseElm::SIZE);
    assert!(PFSD_REC_SIZE as usize == PFSD_OFF_DATA + PseudofsData::SIZE);
    assert!(UPDATE_REC_SIZE as usize == HEAD_SIZE + 8);
};
