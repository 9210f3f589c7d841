//! Where a record's payload lives: in its row when small, else in the
//! PFS's append-only blob file (`blob.rs`), named by its offset; storing
//! one and loading it back.

use super::blob::Blobs;
use super::error::StoreError;
use crate::ondisk::LeafElm;
use crate::pfs::Result;

/// `data_offset` of every stored record with a payload: the store has no
/// media addresses, any non-zero value tells readers a payload exists.
pub const DATA_OFFSET: u64 = 0xa000_0000_0000_0000;

/// The two columns of `rec` that locate a record's payload (see
/// `load_payload`).
pub(super) const PAYLOAD: &str = "data, boff";

/// Payloads up to this size stay in the record's row; a row that small
/// never overflows its B-Tree page.
pub(super) const INLINE_MAX: usize = 512;

/// Where a record's payload is kept.
#[derive(Clone, Copy)]
pub(super) enum Stored<'a> {
    Nothing,
    Inline(&'a [u8]),
    /// At this offset of the PFS's blob file (as the `boff` column holds
    /// it).
    Blob(i64),
}

/// Puts a payload where its size says: in the row or the blob file.
pub(super) fn stash<'a>(blobs: &mut Blobs, data: &'a [u8]) -> Result<Stored<'a>> {
    Ok(if data.is_empty() {
        Stored::Nothing
    } else if data.len() <= INLINE_MAX {
        Stored::Inline(data)
    } else {
        let off = blobs.append(data)?;
        Stored::Blob(i64::try_from(off).map_err(|_| StoreError::Corrupt("blob file beyond 2^63"))?)
    })
}

/// Reads the payload of `leaf` from the `PAYLOAD` columns starting at
/// `col` of `row` into `out`.
pub(super) fn load_payload(
    row: &rusqlite::Row<'_>,
    col: usize,
    leaf: &LeafElm,
    blobs: &Blobs,
    out: &mut Vec<u8>,
) -> Result<()> {
    let inline = row.get_ref(col)?.as_blob_or_null()?;
    let boff = row.get_ref(col + 1)?.as_i64_or_null()?;
    payload_into(inline, boff, leaf, blobs, out)
}

/// Reads `leaf`'s payload, kept inline or at `boff` of the blob file,
/// into `out`.
pub(super) fn payload_into(
    inline: Option<&[u8]>,
    boff: Option<i64>,
    leaf: &LeafElm,
    blobs: &Blobs,
    out: &mut Vec<u8>,
) -> Result<()> {
    out.clear();
    match (inline, boff) {
        (Some(d), _) => out.extend_from_slice(d),
        (None, Some(boff)) => {
            let off =
                u64::try_from(boff).map_err(|_| StoreError::Corrupt("negative payload offset"))?;
            let len = usize::try_from(leaf.data_len)
                .map_err(|_| StoreError::Corrupt("negative payload length"))?;
            blobs.read_into(off, len, out)?;
        }
        (None, None) => {}
    }
    Ok(())
}
