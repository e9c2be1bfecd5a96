//! IPv4 headers (options allowed, fragments recognised).

use std::net::Ipv4Addr;

use super::{checksum, WireError};

/// Length of an IPv4 header without options.
pub const MIN_HEADER_LEN: usize = 20;

/// Decrement the TTL of the fixed part of an IPv4 header by one and
/// update its checksum incrementally (RFC 1624), in place: what a
/// forwarder does to every packet. The caller checked that the TTL is
/// above 1.
#[inline(always)]
pub fn decrement_ttl_in(header: &mut [u8; MIN_HEADER_LEN]) {
    let old = u16::from_be_bytes([header[field::TTL], header[field::PROTOCOL]]);
    header[field::TTL] = header[field::TTL].wrapping_sub(1);
    let check = checksum::update_u16(
        u16::from_be_bytes([header[field::CHECKSUM], header[field::CHECKSUM + 1]]),
        old,
        old.wrapping_sub(0x0100),
    );
    header[field::CHECKSUM..field::CHECKSUM + 2].copy_from_slice(&check.to_be_bytes());
}
/// "Don't fragment" flag in the flags/offset word.
pub const FLAG_DF: u16 = 0x4000;
/// "More fragments" flag in the flags/offset word.
pub const FLAG_MF: u16 = 0x2000;
/// Fragment offset mask (in 8-byte units).
pub const OFFSET_MASK: u16 = 0x1fff;

mod field {
    pub const VER_IHL: usize = 0;
    pub const TOS: usize = 1;
    pub const TOTAL_LEN: usize = 2;
    pub const IDENT: usize = 4;
    pub const FLAGS_OFFSET: usize = 6;
    pub const TTL: usize = 8;
    pub const PROTOCOL: usize = 9;
    pub const CHECKSUM: usize = 10;
    pub const SRC: usize = 12;
    pub const DST: usize = 16;
}

/// A view of an IPv4 header and what follows it.
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

    /// Prove that the fixed header and the options lie in the buffer.
    /// (The total length may still claim more than the buffer holds: the
    /// quoted header in an ICMP error is cut short on purpose. Callers
    /// that need the whole packet compare [`Packet::total_len`].)
    pub fn check_len(&self) -> Result<(), WireError> {
        let len = self.buffer.as_ref().len();
        if len < MIN_HEADER_LEN {
            return Err(WireError::Truncated);
        }
        if self.version() != 4 {
            return Err(WireError::BadVersion);
        }
        if self.header_len() < MIN_HEADER_LEN {
            return Err(WireError::BadHeaderLength);
        }
        if len < self.header_len() {
            return Err(WireError::Truncated);
        }
        Ok(())
    }

    /// Into the inner buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Version nibble.
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VER_IHL] >> 4
    }

    /// Header length in bytes (IHL × 4).
    pub fn header_len(&self) -> usize {
        usize::from(self.buffer.as_ref()[field::VER_IHL] & 0x0f) * 4
    }

    /// Type of service (DSCP and ECN).
    pub fn tos(&self) -> u8 {
        self.buffer.as_ref()[field::TOS]
    }

    /// Total length field.
    pub fn total_len(&self) -> u16 {
        let b = self.buffer.as_ref();
        u16::from_be_bytes([b[field::TOTAL_LEN], b[field::TOTAL_LEN + 1]])
    }

    /// Identification.
    pub fn ident(&self) -> u16 {
        let b = self.buffer.as_ref();
        u16::from_be_bytes([b[field::IDENT], b[field::IDENT + 1]])
    }

    /// Flags and fragment offset word.
    pub fn flags_offset(&self) -> u16 {
        let b = self.buffer.as_ref();
        u16::from_be_bytes([b[field::FLAGS_OFFSET], b[field::FLAGS_OFFSET + 1]])
    }

    /// Don't-fragment flag.
    pub fn dont_frag(&self) -> bool {
        self.flags_offset() & FLAG_DF != 0
    }

    /// Is this a fragment (MF set or offset non-zero)?
    pub fn is_fragment(&self) -> bool {
        self.flags_offset() & (FLAG_MF | OFFSET_MASK) != 0
    }

    /// Fragment offset in bytes.
    pub fn frag_offset(&self) -> u16 {
        (self.flags_offset() & OFFSET_MASK) * 8
    }

    /// Time to live.
    pub fn ttl(&self) -> u8 {
        self.buffer.as_ref()[field::TTL]
    }

    /// Protocol of the payload.
    pub fn protocol(&self) -> u8 {
        self.buffer.as_ref()[field::PROTOCOL]
    }

    /// Header checksum field.
    pub fn checksum(&self) -> u16 {
        let b = self.buffer.as_ref();
        u16::from_be_bytes([b[field::CHECKSUM], b[field::CHECKSUM + 1]])
    }

    /// Source address.
    pub fn src(&self) -> Ipv4Addr {
        let b = self.buffer.as_ref();
        Ipv4Addr::new(b[12], b[13], b[14], b[15])
    }

    /// Destination address.
    pub fn dst(&self) -> Ipv4Addr {
        let b = self.buffer.as_ref();
        Ipv4Addr::new(b[16], b[17], b[18], b[19])
    }

    /// Does the header checksum verify?
    pub fn verify_checksum(&self) -> bool {
        let hdr = &self.buffer.as_ref()[..self.header_len()];
        checksum::verifies(checksum::add(0, hdr))
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    fn put16(&mut self, off: usize, value: u16) {
        self.buffer.as_mut()[off..off + 2].copy_from_slice(&value.to_be_bytes());
    }

    /// Set version 4 and the header length in bytes (a multiple of 4).
    pub fn set_version_and_header_len(&mut self, header_len: usize) {
        self.buffer.as_mut()[field::VER_IHL] = 0x40 | ((header_len / 4) as u8 & 0x0f);
    }

    /// Set the TOS byte (no checksum update).
    pub fn set_tos(&mut self, tos: u8) {
        self.buffer.as_mut()[field::TOS] = tos;
    }

    /// Set the total length (no checksum update).
    pub fn set_total_len(&mut self, len: u16) {
        self.put16(field::TOTAL_LEN, len);
    }

    /// Set the identification (no checksum update).
    pub fn set_ident(&mut self, ident: u16) {
        self.put16(field::IDENT, ident);
    }

    /// Set the flags/offset word (no checksum update).
    pub fn set_flags_offset(&mut self, value: u16) {
        self.put16(field::FLAGS_OFFSET, value);
    }

    /// Set the TTL (no checksum update).
    pub fn set_ttl(&mut self, ttl: u8) {
        self.buffer.as_mut()[field::TTL] = ttl;
    }

    /// Set the protocol (no checksum update).
    pub fn set_protocol(&mut self, protocol: u8) {
        self.buffer.as_mut()[field::PROTOCOL] = protocol;
    }

    /// Set the source address (no checksum update).
    pub fn set_src(&mut self, addr: Ipv4Addr) {
        self.buffer.as_mut()[field::SRC..field::SRC + 4].copy_from_slice(&addr.octets());
    }

    /// Set the destination address (no checksum update).
    pub fn set_dst(&mut self, addr: Ipv4Addr) {
        self.buffer.as_mut()[field::DST..field::DST + 4].copy_from_slice(&addr.octets());
    }

    /// Decrement the TTL by one, updating the header checksum
    /// incrementally. The caller checked that the TTL is above 1.
    pub fn decrement_ttl(&mut self) {
        if let Some(header) = self
            .buffer
            .as_mut()
            .get_mut(..MIN_HEADER_LEN)
            .and_then(|h| <&mut [u8; MIN_HEADER_LEN]>::try_from(h).ok())
        {
            decrement_ttl_in(header);
        }
    }

    /// Rewrite the source address, updating the header checksum.
    pub fn rewrite_src(&mut self, addr: Ipv4Addr) {
        let old = u32::from(self.src());
        self.set_src(addr);
        let check = checksum::update_u32(self.checksum(), old, u32::from(addr));
        self.put16(field::CHECKSUM, check);
    }

    /// Rewrite the destination address, updating the header checksum.
    pub fn rewrite_dst(&mut self, addr: Ipv4Addr) {
        let old = u32::from(self.dst());
        self.set_dst(addr);
        let check = checksum::update_u32(self.checksum(), old, u32::from(addr));
        self.put16(field::CHECKSUM, check);
    }

    /// Rewrite the total length, updating the header checksum.
    pub fn rewrite_total_len(&mut self, len: u16) {
        let old = self.total_len();
        self.set_total_len(len);
        let check = checksum::update_u16(self.checksum(), old, len);
        self.put16(field::CHECKSUM, check);
    }

    /// Compute the header checksum from scratch.
    pub fn fill_checksum(&mut self) {
        self.put16(field::CHECKSUM, 0);
        let len = self.header_len();
        let check = checksum::of(&self.buffer.as_ref()[..len]);
        self.put16(field::CHECKSUM, check);
    }
}

/// An option-less IPv4 header to emit whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repr {
    /// Source address.
    pub src: Ipv4Addr,
    /// Destination address.
    pub dst: Ipv4Addr,
    /// Payload protocol.
    pub protocol: u8,
    /// Payload length in bytes.
    pub payload_len: u16,
    /// TTL.
    pub ttl: u8,
    /// TOS byte.
    pub tos: u8,
    /// Identification.
    pub ident: u16,
    /// Don't-fragment flag.
    pub dont_frag: bool,
}

impl Repr {
    /// Write the 20-byte header, checksum included, into `buf`.
    pub fn emit(&self, buf: &mut [u8]) -> Result<(), WireError> {
        let hdr = buf.get_mut(..MIN_HEADER_LEN).ok_or(WireError::Truncated)?;
        let total = self
            .payload_len
            .checked_add(MIN_HEADER_LEN as u16)
            .ok_or(WireError::BadLength)?;
        let mut p = Packet::new_unchecked(hdr);
        p.set_version_and_header_len(MIN_HEADER_LEN);
        p.set_tos(self.tos);
        p.set_total_len(total);
        p.set_ident(self.ident);
        p.set_flags_offset(if self.dont_frag { FLAG_DF } else { 0 });
        p.set_ttl(self.ttl);
        p.set_protocol(self.protocol);
        p.set_src(self.src);
        p.set_dst(self.dst);
        p.fill_checksum();
        Ok(())
    }
}
