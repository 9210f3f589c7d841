//! Reading and validating the PFSD records that open every batch
//! (protocol.md §3 steps 2-4 and §4), shared by both sides.

use std::io::Read;

use super::error::{pfs_err, MirrorError, ProtocolError};
use crate::ondisk::PseudofsData;
use crate::pfs::Pfs;
use crate::wire::record::PFSD_OFF_DATA;
use crate::wire::{mrec_type, MrecordReader, PFSD_REC_SIZE, PSEUDOFS_VERSION};

/// Reads a record that must be PFSD (or TERM, giving `None`: the peer ended
/// the session); checks its type and size,
/// and the version field unless `check_version` is off (mirror-write's
/// PFSD#1 check does not look at it).
fn read_header<R: Read>(
    reader: &mut MrecordReader<R>,
    check_version: bool,
) -> Result<Option<PseudofsData>, MirrorError> {
    let rec = reader.read_mrecord()?.ok_or(ProtocolError::ShortRead)?;
    let rt = rec.rec_type();
    if rt == mrec_type::TERM {
        return Ok(None);
    }
    if rt != mrec_type::PFSD {
        return Err(ProtocolError::NotPfsd.into());
    }
    if rec.rec_size() != PFSD_REC_SIZE {
        return Err(ProtocolError::PayloadSize.into());
    }
    let version = rec
        .array::<4>(crate::wire::HEAD_SIZE)
        .map(|b| u32::from_le_bytes(*b))
        .ok_or(ProtocolError::PayloadSize)?;
    if check_version && version != PSEUDOFS_VERSION {
        return Err(ProtocolError::Version.into());
    }
    let pfsd = rec
        .array(PFSD_OFF_DATA)
        .map(PseudofsData::decode)
        .ok_or(ProtocolError::PayloadSize)?;
    Ok(Some(pfsd))
}

/// mirror-write's PFSD#1 (protocol.md §3 steps 2-4).
pub fn read_pfsd<R: Read>(
    reader: &mut MrecordReader<R>,
) -> Result<Option<PseudofsData>, MirrorError> {
    read_header(reader, false)
}

/// "validate" (protocol.md §4): the peer's PFSD must match our PFS's shared
/// uuid; a target must be a slave.
pub fn validate_header<R: Read>(
    own_pfs: &dyn Pfs,
    reader: &mut MrecordReader<R>,
    is_target: bool,
) -> Result<Option<PseudofsData>, MirrorError> {
    let own = own_pfs
        .get_pseudofs()
        .map_err(pfs_err("mirror-write: not a HAMMER fs/pseudofs!"))?;
    let h = read_header(reader, true)?;
    if let Some(peer) = &h {
        if peer.shared_uuid != own.shared_uuid {
            return Err(ProtocolError::SharedUuid.into());
        }
        if is_target && !own.is_slave() {
            return Err(ProtocolError::TargetMaster.into());
        }
    }
    Ok(h)
}
