//! Persistence engines (`--pe`): what keys a persistence template instead
//! of the client address. IPVS has one, `sip` ([`sip`]): UDP datagrams of
//! a `--pe sip` persistent service are pinned by their SIP Call-ID.
//!
//! This module owns the packet side (finding the key in a datagram); the
//! templates that carry a Call-ID live in [`crate::conn`].

pub mod sip;

use uvs_conf::PersistenceEngine;

use crate::conn::ConnTable;
use crate::snapshot::Service;
use crate::wire::ParsedFrame;

/// IP protocol number of UDP.
const UDP: u8 = 17;

/// The persistence-engine key of a new connection's first packet: for a
/// service with `--pe sip`, the Call-ID of a UDP datagram (the whole
/// datagram, or its first fragment). `None` means address persistence:
/// no engine, not UDP, or no usable Call-ID (one longer than
/// [`sip::MAX_CALL_ID`] is counted in the table's
/// [`PeStats::call_id_too_long`](crate::conn::PeStats::call_id_too_long)).
pub fn sip_key<'p>(
    service: &Service,
    frame: &'p [u8],
    parsed: &ParsedFrame,
    conns: &ConnTable,
) -> Option<&'p [u8]> {
    if service.persistence_engine != Some(PersistenceEngine::Sip)
        || parsed.protocol != UDP
        || (parsed.is_fragment && !parsed.is_first_fragment)
    {
        return None;
    }
    let end = usize::from(parsed.l3).saturating_add(usize::from(parsed.ip_len));
    let payload = frame.get(usize::from(parsed.payload)..end.min(frame.len()))?;
    match sip::call_id(payload) {
        Ok(id) => Some(id),
        Err(sip::CallIdError::TooLong) => {
            conns.note_call_id_too_long();
            None
        }
        Err(_) => None,
    }
}
