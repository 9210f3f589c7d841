//! Streams: piped from one hammer into another, read from a store call
//! by call, built from records, read back record by record.

use std::path::Path;
use std::process::{Output, Stdio};

use hammer_mirror::ondisk::{rectype, BaseElm, LeafElm, BTREE_TYPE_RECORD, LOCALIZE_MISC};
use hammer_mirror::pfs::store::Store;
use hammer_mirror::pfs::{MirrorReadReq, Pfs};
use hammer_mirror::wire::crc::crc32c;
use hammer_mirror::wire::reader::MrecordReader;
use hammer_mirror::wire::{doalign, Mrecord};

use super::setup::open;
use super::{hammer, text};

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

/// `pipe`, asserting that both sides succeed.
#[track_caller]
pub fn pipe_ok(read_args: &[&str], write_args: &[&str]) -> (Output, Output) {
    let (r, w) = pipe(read_args, write_args);
    assert!(
        r.status.success() && w.status.success(),
        "{}{}",
        text(&r.stderr),
        text(&w.stderr)
    );
    (r, w)
}

/// MIRROR_READ of the PFS `store` addresses, called as the tool calls it
/// (each call from where the last one stopped) until it returns nothing;
/// the output of each call.
pub fn read_calls(store: &mut Store, req: &mut MirrorReadReq, bufsize: usize) -> Vec<Vec<u8>> {
    let mut buf = vec![0u8; bufsize];
    let mut calls = Vec::new();
    loop {
        let n = store.mirror_read(req, &mut buf).unwrap();
        if n == 0 {
            return calls;
        }
        calls.push(buf[..n].to_vec());
        req.key_beg = req.key_cur;
    }
}

/// The leaf of a regular file's DATA record at `key` of object `obj_id`,
/// created at `create_tid`, for the payload `data`.
pub fn data_leaf(obj_id: i64, key: i64, create_tid: u64, data: &[u8]) -> LeafElm {
    LeafElm {
        base: BaseElm {
            obj_id,
            key,
            create_tid,
            rec_type: rectype::DATA,
            obj_type: 2,
            btype: BTREE_TYPE_RECORD,
            localization: LOCALIZE_MISC,
            ..Default::default()
        },
        data_offset: 1,
        data_len: data.len() as i32,
        data_crc: crc32c(data),
        ..Default::default()
    }
}

/// The bytes of `recs`, one after the other.
pub fn stream(recs: &[Mrecord<'_>]) -> Vec<u8> {
    let mut s = Vec::new();
    for r in recs {
        r.encode_into(&mut s);
    }
    s
}

/// Every record of `stream`, as its bytes, read the way the tool drives
/// its readers: batches of bulk records, and the single reader for
/// anything else; the first error ends it.
pub fn read_records(stream: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    let mut r = MrecordReader::new(stream);
    let mut out = Vec::new();
    loop {
        let batch = r.read_mrecords(&mut |_| ()).map_err(|e| e.to_string())?;
        if batch.is_empty() {
            match r.read_mrecord().map_err(|e| e.to_string())? {
                Some(rec) => out.push(rec.bytes().to_vec()),
                None => return Ok(out),
            }
        } else {
            out.extend(batch.records().map(|rec| rec.bytes().to_vec()));
        }
    }
}

/// (type, end offset) of every record of `stream`, as far as it reads.
pub fn record_ends(stream: &[u8]) -> Vec<(u32, usize)> {
    let mut r = MrecordReader::new(stream);
    let mut v = Vec::new();
    let mut end = 0;
    while let Ok(Some(rec)) = r.read_mrecord() {
        end += doalign(rec.rec_size());
        v.push((rec.rec_type(), end));
    }
    v
}

/// What client A would need to wipe B's slave (PFS#3 of `store`): a
/// stream carrying B's shared uuid whose one batch is a SKIP at the end of
/// the key space (the sweep up to it marks every record deleted) and which
/// moves the sync point on.
pub fn wipe_stream(store: &Path) -> Vec<u8> {
    let mut pfsd = open(store, 3).get_pseudofs().unwrap();
    let end = pfsd.sync_end_tid + 0x100;
    pfsd.sync_end_tid = end;
    let head = Mrecord::Pfsd { version: 1, pfsd };
    stream(&[
        head,
        head,
        Mrecord::Skip {
            beg: BaseElm::KEY_END_INIT,
            end: BaseElm::KEY_END_INIT,
        },
        Mrecord::Sync { tid: end },
        Mrecord::Term { tid: end },
    ])
}
