//! The chain's manifest: which objects make it, in order, each with its
//! TID range, size and checksum. One JSON object, rewritten whole (a PUT is
//! atomic), and only after the objects it names are complete.

use serde::{Deserialize, Serialize};

use crate::bridge::point::Candidate;

/// The manifest's object name under the chain's prefix.
pub const MANIFEST: &str = "manifest.json";
/// Its `format` field: a reader refuses any other.
pub const FORMAT: &str = "hammer-mirror chain 1";
/// A manifest bigger than this is not one of ours.
pub const MANIFEST_LIMIT: u64 = 16 << 20;
/// S3's largest object (5 TiB): a bigger size is not an object's. With at
/// most 16 MiB of manifest, the sizes' sum stays far below 2^63.
pub const OBJECT_LIMIT: u64 = 5 << 40;
/// 9999-12-31T23:59:59Z: no object's time is later.
const TIME_LIMIT: u64 = 253_402_300_799;
/// An upload id longer than this is not a server's.
const UPLOAD_ID_LIMIT: usize = 1024;

/// One stream object: what `hammer mirror-read <pfs> <beg_tid>` wrote,
/// capped at `end_tid`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainObject {
    /// Object name under the prefix: `<shared uuid>/<beg>-<end>.hammer`
    /// (`.hammer.zst` compressed).
    pub name: String,
    /// First TID the stream covers (`0x` and 16 hex digits).
    pub beg_tid: String,
    /// Last TID it covers: the restore point it reaches.
    pub end_tid: String,
    pub size: u64,
    /// XXH3-128 of the object's bytes, 32 hex digits.
    pub xxh3: String,
    /// The stream is in `-z`'s compressed format (`.hammer.zst`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub zstd: bool,
    /// When the object was stored, in seconds since the epoch: what
    /// `@@<date>` chooses by. Absent in chains made before it was kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<u64>,
}

/// A multipart upload that a run started and may not have finished: the
/// next run aborts it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pending {
    pub name: String,
    pub upload_id: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: String,
    /// The PFS's shared uuid: every object's stream carries it.
    pub shared_uuid: String,
    pub objects: Vec<ChainObject>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pending: Vec<Pending>,
}

/// Why a manifest cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ManifestError {
    #[error("manifest is not valid JSON of a chain: {0}")]
    Json(String),
    #[error("manifest format {0:?} is not {FORMAT:?}")]
    Format(String),
    #[error("manifest shared uuid {0:?} is not a uuid")]
    Uuid(String),
    #[error("manifest object {0}: {1}")]
    Object(usize, &'static str),
}

/// An object with its TIDs parsed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Span {
    pub beg: u64,
    pub end: u64,
}

pub fn tid_text(tid: u64) -> String {
    format!("{tid:#018x}")
}

fn parse_tid(t: &str) -> Option<u64> {
    let hex = t.strip_prefix("0x")?;
    (hex.len() == 16).then(|| u64::from_str_radix(hex, 16).ok())?
}

/// The name an object of `uuid` covering `span` gets.
pub fn object_name(uuid: &str, span: Span, zstd: bool) -> String {
    let z = if zstd { ".zst" } else { "" };
    format!("{uuid}/{:016x}-{:016x}.hammer{z}", span.beg, span.end)
}

impl Manifest {
    pub fn new(shared_uuid: &str) -> Self {
        Manifest {
            format: FORMAT.to_string(),
            shared_uuid: shared_uuid.to_string(),
            objects: Vec::new(),
            pending: Vec::new(),
        }
    }

    /// Parses and checks a manifest: the format, the uuid, and objects
    /// that follow each other without gap or overlap, named by what they
    /// hold (a manifest cannot send a reader to another object).
    pub fn parse(bytes: &[u8]) -> Result<Self, ManifestError> {
        let m: Manifest =
            serde_json::from_slice(bytes).map_err(|e| ManifestError::Json(e.to_string()))?;
        if m.format != FORMAT {
            return Err(ManifestError::Format(m.format));
        }
        if uuid::Uuid::parse_str(&m.shared_uuid).is_err() || m.shared_uuid.len() != 36 {
            return Err(ManifestError::Uuid(m.shared_uuid));
        }
        let mut prev: Option<Span> = None;
        for (i, o) in m.objects.iter().enumerate() {
            let bad = |why| ManifestError::Object(i, why);
            let span = Span {
                beg: parse_tid(&o.beg_tid).ok_or(bad("bad beg_tid"))?,
                end: parse_tid(&o.end_tid).ok_or(bad("bad end_tid"))?,
            };
            if span.end < span.beg {
                return Err(bad("ends before it begins"));
            }
            match prev {
                None if span.beg != 0 => return Err(bad("the chain does not start at TID 0")),
                Some(p) if p.end.checked_add(1) != Some(span.beg) => {
                    return Err(bad("does not begin right after the previous object"))
                }
                _ => {}
            }
            if o.name != object_name(&m.shared_uuid, span, o.zstd) {
                return Err(bad("name does not match its uuid and TIDs"));
            }
            if o.xxh3.len() != 32 || !o.xxh3.bytes().all(|c| c.is_ascii_hexdigit()) {
                return Err(bad("bad xxh3"));
            }
            if o.size > OBJECT_LIMIT {
                return Err(bad("size larger than S3's 5 TiB"));
            }
            if o.time.is_some_and(|t| t > TIME_LIMIT) {
                return Err(bad("time after the year 9999"));
            }
            prev = Some(span);
        }
        for p in &m.pending {
            let id_ok = !p.upload_id.is_empty()
                && p.upload_id.len() <= UPLOAD_ID_LIMIT
                && p.upload_id.bytes().all(|c| c.is_ascii_graphic());
            if !p.name.starts_with(&format!("{}/", m.shared_uuid))
                || p.name.contains("..")
                || !id_ok
            {
                return Err(ManifestError::Object(
                    m.objects.len(),
                    "bad pending name or upload id",
                ));
            }
        }
        Ok(m)
    }

    pub fn to_json(&self) -> Vec<u8> {
        let mut v = serde_json::to_vec_pretty(self).unwrap_or_default();
        v.push(b'\n');
        v
    }

    /// Each object's span (the manifest was checked by `parse`, or built
    /// by this tool).
    pub fn spans(&self) -> Vec<Span> {
        self.objects
            .iter()
            .map(|o| Span {
                beg: parse_tid(&o.beg_tid).unwrap_or(0),
                end: parse_tid(&o.end_tid).unwrap_or(0),
            })
            .collect()
    }

    /// The restore points with the time their object was stored, for
    /// `@@<date>` (objects stored before times were kept have none).
    pub fn dated_points(&self) -> Vec<Candidate> {
        self.objects
            .iter()
            .zip(self.spans())
            .filter_map(|(o, s)| {
                Some(Candidate {
                    tid: s.end,
                    secs: i64::try_from(o.time?).ok()?,
                    snapshot: None,
                })
            })
            .collect()
    }

    /// The chain's end: the newest restore point.
    pub fn end_tid(&self) -> Option<u64> {
        self.spans().last().map(|s| s.end)
    }

    pub fn push(&mut self, span: Span, size: u64, xxh3: String, zstd: bool) {
        self.objects.push(ChainObject {
            name: object_name(&self.shared_uuid, span, zstd),
            beg_tid: tid_text(span.beg),
            end_tid: tid_text(span.end),
            size,
            xxh3,
            zstd,
            time: u64::try_from(crate::ctime::now_secs()).ok(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const UUID: &str = "0b5e1f2a-0000-11ef-8000-0123456789ab";

    fn chain() -> Manifest {
        let mut m = Manifest::new(UUID);
        m.push(Span { beg: 0, end: 0x10 }, 100, "0".repeat(32), false);
        m.push(
            Span {
                beg: 0x11,
                end: 0x20,
            },
            50,
            "f".repeat(32),
            true,
        );
        m
    }

    #[test]
    fn round_trip_and_end() {
        let m = chain();
        let back = Manifest::parse(&m.to_json()).unwrap();
        assert_eq!(back, m);
        assert_eq!(back.end_tid(), Some(0x20));
        assert_eq!(
            back.objects[1].name,
            format!("{UUID}/0000000000000011-0000000000000020.hammer.zst")
        );
        assert!(!String::from_utf8(m.to_json())
            .unwrap()
            .contains("\"zstd\": false"));
    }

    #[test]
    fn refuses_gaps_foreign_names_and_other_formats() {
        let json = |m: &Manifest| m.to_json();
        let mut m = chain();
        m.objects[1].beg_tid = tid_text(0x12);
        assert!(Manifest::parse(&json(&m)).is_err());
        let mut m = chain();
        m.objects[0].name = "../../etc/passwd".into();
        assert!(Manifest::parse(&json(&m)).is_err());
        let mut m = chain();
        m.objects[1].zstd = false;
        assert!(Manifest::parse(&json(&m)).is_err());
        let mut m = chain();
        m.format = "other".into();
        assert!(Manifest::parse(&json(&m)).is_err());
        let mut m = chain();
        m.objects.remove(0);
        assert!(Manifest::parse(&json(&m)).is_err());
        let mut m = chain();
        m.pending.push(Pending {
            name: "elsewhere/x".into(),
            upload_id: "1".into(),
        });
        assert!(Manifest::parse(&json(&m)).is_err());
        assert!(Manifest::parse(b"{").is_err());
    }

    /// Objects stored with a time are restore points by date; one of a
    /// manifest written before times were kept is none; a time past 9999
    /// is damage.
    #[test]
    fn restore_points_by_the_time_their_object_was_stored() {
        use crate::bridge::point::{choose, Moment};
        let mut m = chain();
        m.push(
            Span {
                beg: 0x21,
                end: 0x30,
            },
            10,
            "a".repeat(32),
            false,
        );
        for (o, t) in m.objects.iter_mut().zip([None, Some(200), Some(300)]) {
            o.time = t;
        }
        let m = Manifest::parse(&m.to_json()).unwrap();
        let ends: Vec<u64> = m.spans().iter().map(|s| s.end).collect();
        let at = |secs| {
            choose(
                &Moment {
                    secs,
                    text: "t".into(),
                },
                &m.dated_points(),
                "c",
            )
            .map(|c| c.tid)
        };
        assert_eq!(m.dated_points().len(), m.objects.len() - 1);
        assert_eq!(at(250), Ok(ends[1]));
        assert_eq!(at(i64::MAX), Ok(ends[2]));
        assert!(at(199).is_err());
        let mut late = m.clone();
        late.objects[2].time = Some(TIME_LIMIT + 1);
        assert_eq!(
            Manifest::parse(&late.to_json()),
            Err(ManifestError::Object(2, "time after the year 9999"))
        );
        // A pushed object gets the time it was stored.
        let mut pushed = m.clone();
        let span = Span {
            beg: ends[2] + 1,
            end: ends[2] + 10,
        };
        pushed.push(span, 1, "0".repeat(32), false);
        let t = pushed.objects.last().unwrap().time.unwrap();
        assert!(t.abs_diff(crate::ctime::now_secs() as u64) < 60);
    }
}
