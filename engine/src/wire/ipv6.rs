//! IPv6 headers and the walk over extension headers.

use std::net::Ipv6Addr;

use super::{proto, read_u16, read_u8, WireError};

/// Length of the fixed IPv6 header.
pub const HEADER_LEN: usize = 40;
/// At most this many extension headers are walked before giving up.
pub const MAX_EXT_HEADERS: usize = 8;

/// A view of an IPv6 header and what follows it.
#[derive(Debug, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wrap a buffer without checking it.
    pub fn new_unchecked(buffer: T) -> Self {
        Packet { buffer }
    }

    /// Wrap a buffer after [`Packet::check_len`].
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        let packet = Packet { buffer };
        packet.check_len()?;
        Ok(packet)
    }

    /// Prove that the fixed header lies in the buffer and says version 6.
    pub fn check_len(&self) -> Result<(), WireError> {
        if self.buffer.as_ref().len() < HEADER_LEN {
            return Err(WireError::Truncated);
        }
        if self.version() != 6 {
            return Err(WireError::BadVersion);
        }
        Ok(())
    }

    /// Version nibble.
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[0] >> 4
    }

    /// Traffic class (DSCP and ECN).
    pub fn traffic_class(&self) -> u8 {
        let b = self.buffer.as_ref();
        (b[0] << 4) | (b[1] >> 4)
    }

    /// Flow label (20 bits).
    pub fn flow_label(&self) -> u32 {
        let b = self.buffer.as_ref();
        (u32::from(b[1] & 0x0f) << 16) | (u32::from(b[2]) << 8) | u32::from(b[3])
    }

    /// Payload length field.
    pub fn payload_len(&self) -> u16 {
        let b = self.buffer.as_ref();
        u16::from_be_bytes([b[4], b[5]])
    }

    /// Next header of the fixed header.
    pub fn next_header(&self) -> u8 {
        self.buffer.as_ref()[6]
    }

    /// Hop limit.
    pub fn hop_limit(&self) -> u8 {
        self.buffer.as_ref()[7]
    }

    /// Source address.
    pub fn src(&self) -> Ipv6Addr {
        let mut a = [0u8; 16];
        a.copy_from_slice(&self.buffer.as_ref()[8..24]);
        Ipv6Addr::from(a)
    }

    /// Destination address.
    pub fn dst(&self) -> Ipv6Addr {
        let mut a = [0u8; 16];
        a.copy_from_slice(&self.buffer.as_ref()[24..40]);
        Ipv6Addr::from(a)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Set version 6, traffic class and flow label.
    pub fn set_version_class_flow(&mut self, traffic_class: u8, flow_label: u32) {
        let word = (6u32 << 28) | (u32::from(traffic_class) << 20) | (flow_label & 0x000f_ffff);
        self.buffer.as_mut()[0..4].copy_from_slice(&word.to_be_bytes());
    }

    /// Set the payload length.
    pub fn set_payload_len(&mut self, len: u16) {
        self.buffer.as_mut()[4..6].copy_from_slice(&len.to_be_bytes());
    }

    /// Set the next header.
    pub fn set_next_header(&mut self, value: u8) {
        self.buffer.as_mut()[6] = value;
    }

    /// Set the hop limit (IPv6 has no header checksum).
    pub fn set_hop_limit(&mut self, value: u8) {
        self.buffer.as_mut()[7] = value;
    }

    /// Set the source address.
    pub fn set_src(&mut self, addr: Ipv6Addr) {
        self.buffer.as_mut()[8..24].copy_from_slice(&addr.octets());
    }

    /// Set the destination address.
    pub fn set_dst(&mut self, addr: Ipv6Addr) {
        self.buffer.as_mut()[24..40].copy_from_slice(&addr.octets());
    }
}

/// The end of an extension-header walk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExtWalk {
    /// The upper-layer protocol (or the first header we do not walk).
    pub protocol: u8,
    /// Offset of that header from the start of the IPv6 header.
    pub offset: usize,
    /// A fragment header was seen.
    pub is_fragment: bool,
    /// Its offset was zero (the upper-layer header is in this packet).
    pub is_first_fragment: bool,
}

/// Is `next` one of the extension headers the walk steps over?
pub fn is_ext_header(next: u8) -> bool {
    matches!(
        next,
        proto::HOPOPT | proto::IPV6_ROUTE | proto::IPV6_FRAG | proto::IPV6_OPTS | proto::AH
    )
}

/// Walk the extension headers of the IPv6 packet `ip` (fixed header at
/// offset 0), within `ip`'s bounds and at most [`MAX_EXT_HEADERS`] of
/// them. A non-first fragment stops the walk at the fragment header's
/// successor, whose header is not in this packet.
pub fn walk_ext_headers(ip: &[u8]) -> Result<ExtWalk, WireError> {
    let mut next = read_u8(ip, 6)?;
    let mut offset = HEADER_LEN;
    let mut walk = ExtWalk {
        protocol: next,
        offset,
        is_fragment: false,
        is_first_fragment: false,
    };
    for _ in 0..MAX_EXT_HEADERS {
        if !is_ext_header(next) {
            walk.protocol = next;
            walk.offset = offset;
            return Ok(walk);
        }
        let following = read_u8(ip, offset)?;
        let len = match next {
            proto::IPV6_FRAG => {
                let frag = read_u16(ip, offset + 2)?;
                walk.is_fragment = true;
                walk.is_first_fragment = frag & 0xfff8 == 0;
                8
            }
            proto::AH => (usize::from(read_u8(ip, offset + 1)?) + 2) * 4,
            _ => (usize::from(read_u8(ip, offset + 1)?) + 1) * 8,
        };
        if ip.len() < offset + len {
            return Err(WireError::Truncated);
        }
        offset += len;
        next = following;
        if walk.is_fragment && !walk.is_first_fragment {
            walk.protocol = next;
            walk.offset = offset;
            return Ok(walk);
        }
    }
    if is_ext_header(next) {
        return Err(WireError::TooManyExtHeaders);
    }
    walk.protocol = next;
    walk.offset = offset;
    Ok(walk)
}
