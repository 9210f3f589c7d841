//! The `-c` cycle file: a 48-byte resume point (a base_elm key and a TID,
//! protocol.md §8), replaced atomically so a crash never leaves a short
//! file (D21). An interrupted run appends the batch's end TID (56 bytes)
//! so a resume covers exactly the interrupted range (D3); the original reads
//! only the first 48 bytes of such a file.

use std::fs::{self, File};
use std::io::{self, Read};
use std::path::Path;

use crate::ondisk::BaseElm;

/// Size of the original's file: key then TID.
pub const CYCLE_FILE_SIZE: usize = BaseElm::SIZE + 8;
/// Size with the interrupted batch's end TID appended.
pub const CYCLE_FILE_SIZE_EXT: usize = CYCLE_FILE_SIZE + 8;

/// Where a mirror-read resumes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CyclePoint {
    pub key: BaseElm,
    /// The TID the scan starts from (`tid_beg`).
    pub tid: u64,
    /// For an interrupted batch: its `tid_end`, so the resumed scan covers
    /// the same TID range.
    pub tid_end: Option<u64>,
}

impl CyclePoint {
    pub fn to_bytes(self) -> Vec<u8> {
        let mut b = vec![0u8; BaseElm::SIZE];
        let mut key = [0u8; BaseElm::SIZE];
        self.key.encode(&mut key);
        b.copy_from_slice(&key);
        b.extend_from_slice(&self.tid.to_le_bytes());
        if let Some(t) = self.tid_end {
            b.extend_from_slice(&t.to_le_bytes());
        }
        b
    }
}

/// What reading a cycle file found; the original's messages are the
/// `Display` of the non-loaded outcomes.
#[derive(Debug, PartialEq, Eq)]
pub enum CycleRead {
    /// No file (or it cannot be opened): start from the defaults.
    Absent,
    /// Shorter than a key: removed, defaults kept.
    Cleared,
    /// A key but no whole TID: the key is used, the TID kept as it was.
    Malformed(BaseElm),
    Loaded(CyclePoint),
}

/// Reads the cycle file; `say` receives the original's diagnostics. A
/// file shorter than a key is removed.
pub fn read_cycle_file(path: &Path, say: &mut dyn FnMut(String)) -> CycleRead {
    let read = peek_cycle_file(path, say);
    if read == CycleRead::Cleared {
        say(format!(
            "cycle-file {}: clearing old version",
            path.display()
        ));
        let _ = fs::remove_file(path);
    }
    read
}

/// `read_cycle_file` without removing a file shorter than a key (it is
/// `Cleared` all the same): for a dry run, which changes nothing.
pub fn peek_cycle_file(path: &Path, say: &mut dyn FnMut(String)) -> CycleRead {
    let Ok(mut f) = File::open(path) else {
        return CycleRead::Absent;
    };
    let mut b = Vec::with_capacity(CYCLE_FILE_SIZE_EXT);
    if let Err(e) = (&mut f)
        .take(CYCLE_FILE_SIZE_EXT as u64)
        .read_to_end(&mut b)
    {
        say(format!(
            "cycle-file {}: read failed {}",
            path.display(),
            crate::errno::strerror(&e)
        ));
        return CycleRead::Absent;
    }
    if b.len() < BaseElm::SIZE {
        return CycleRead::Cleared;
    }
    let mut key = [0u8; BaseElm::SIZE];
    key.copy_from_slice(&b[..BaseElm::SIZE]);
    let key = BaseElm::decode(&key);
    let u64_at = |off: usize| {
        b.get(off..off + 8).map(|t| {
            let mut v = [0u8; 8];
            v.copy_from_slice(t);
            u64::from_le_bytes(v)
        })
    };
    match u64_at(BaseElm::SIZE) {
        Some(tid) => CycleRead::Loaded(CyclePoint {
            key,
            tid,
            tid_end: u64_at(CYCLE_FILE_SIZE),
        }),
        None => {
            say(format!("cycle-file {}: Warning, malformed", path.display()));
            CycleRead::Malformed(key)
        }
    }
}

/// The key a cycle file at `path` gave, unless the ioctl would refuse it
/// (`refused`; a damaged file), which would fail that run and every one
/// after it: then `fresh`, the request's own, with a line saying so for
/// `say`, as a file too short to hold a key is passed over.
pub fn usable_key(
    path: &Path,
    key: BaseElm,
    fresh: BaseElm,
    refused: impl FnOnce(BaseElm) -> bool,
    say: &mut dyn FnMut(String),
) -> BaseElm {
    if !refused(key) {
        return key;
    }
    say(format!(
        "cycle-file {}: clearing invalid key",
        path.display()
    ));
    fresh
}

/// Replaces the cycle file atomically (D21). Mode 0666 less the umask,
/// as the original.
pub fn write_cycle_file(path: &Path, point: &CyclePoint) -> io::Result<()> {
    crate::fsio::replace_file(path, &point.to_bytes(), 0o666)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// spec: protocol.md §8, the example after a complete 2-way run.
    #[test]
    fn spec_example_bytes() {
        let p = CyclePoint {
            key: BaseElm::KEY_BEG_INIT,
            tid: 0x00000001061a8ba0,
            tid_end: None,
        };
        let want: Vec<u8> = "00 00 00 00 00 00 00 80 00 00 00 00 00 00 00 80
            01 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00
            00 00 00 00 00 00 00 00 a0 8b 1a 06 01 00 00 00"
            .split_whitespace()
            .map(|b| u8::from_str_radix(b, 16).unwrap())
            .collect();
        assert_eq!(p.to_bytes(), want);
    }

    #[test]
    fn write_then_read_and_no_temp_left() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cycle");
        let p = CyclePoint {
            key: BaseElm {
                obj_id: 0x100000005,
                ..BaseElm::KEY_BEG_INIT
            },
            tid: 42,
            tid_end: Some(77),
        };
        write_cycle_file(&path, &p).unwrap();
        assert_eq!(
            fs::metadata(&path).unwrap().len(),
            CYCLE_FILE_SIZE_EXT as u64
        );
        let mut said = vec![];
        assert_eq!(
            read_cycle_file(&path, &mut |s| said.push(s)),
            CycleRead::Loaded(p)
        );
        assert!(said.is_empty());
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn short_files_are_cleared_or_malformed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c");
        let mut said = vec![];
        assert_eq!(
            read_cycle_file(&path, &mut |s| said.push(s)),
            CycleRead::Absent
        );
        fs::write(&path, [0u8; 10]).unwrap();
        assert_eq!(
            read_cycle_file(&path, &mut |s| said.push(s)),
            CycleRead::Cleared
        );
        assert!(!path.exists());
        fs::write(&path, [0u8; 44]).unwrap();
        assert_eq!(
            read_cycle_file(&path, &mut |s| said.push(s)),
            CycleRead::Malformed(BaseElm::default())
        );
        let p = path.display();
        assert_eq!(
            said,
            [
                format!("cycle-file {p}: clearing old version"),
                format!("cycle-file {p}: Warning, malformed")
            ]
        );
    }
}
