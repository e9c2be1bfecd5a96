//! Packet views: parsing, in-place rewrites and checksums.
//!
//! # Contract
//!
//! Everything here works on borrowed byte slices; nothing allocates.
//!
//! - [`parse_frame`] (or [`parse_frame_into`], the same parse written
//!   into a caller's slot) is the only function the receive path calls on
//!   untrusted bytes. It never panics, whatever the input: every read goes
//!   through a bounds-checked helper ([`read_u16`] and friends) or through
//!   a view whose length was checked first. A frame it accepts is a frame
//!   whose headers all lie inside the slice, so the offsets it returns can
//!   be used to slice the frame without further checks (the writers below
//!   still use checked accessors, out of caution, and report
//!   [`WireError::Truncated`] rather than panic).
//! - Each header module (`ethernet`, `arp`, `ipv4`, `ipv6`, `tcp`, `udp`,
//!   `sctp`, `icmp`, `tunnel`) offers a view `Packet<T: AsRef<[u8]>>` with
//!   `new_unchecked` (wraps any buffer; accessors may then panic if the
//!   buffer is short — use it only on buffers you sized yourself, e.g. a
//!   header being emitted into headroom), `check_len` (proves that every
//!   accessor stays in bounds) and `new_checked` (both; the only way to
//!   wrap untrusted bytes). Setters never change the length fields that
//!   `check_len` relied on unless they say so.
//! - Rewrites of addresses, ports and TTL are done in place and keep the
//!   checksums valid by RFC 1624 incremental updates ([`checksum`]),
//!   including the pseudo-header part of TCP/UDP/ICMPv6 checksums and
//!   UDP's "0 = no checksum" rule (IPv4 only; an IPv6 UDP checksum is
//!   mandatory). SCTP's CRC32c has no incremental update: a rewritten
//!   SCTP port means a full recompute ([`sctp::fill_checksum`]), as the
//!   kernel's `sctp_nat_csum` does. Headers we emit whole (tunnel headers, ICMP errors) get
//!   full checksums.
//!
//! # Own views, not etherparse, on the hot path
//!
//! etherparse is a fine parser, but the data plane needs more than it
//! offers in one pass: offsets for in-place rewrites, the quoted header
//! inside ICMP errors, a bounded IPv6 extension-header walk, and a result
//! that is a small `Copy` value without lifetimes. Our views are a few
//! hundred lines and we control every bounds check. etherparse is used in
//! the tests as an independent oracle: output frames are re-parsed by it
//! and their checksums recomputed by it.

pub mod arp;
pub mod build;
pub mod checksum;
pub mod ethernet;
pub mod icmp;
pub mod ipv4;
pub mod ipv6;
mod parse;
pub mod sctp;
pub mod tcp;
pub mod tunnel;
pub mod udp;

pub use parse::{
    parse_frame, parse_frame_into, IcmpError, IcmpErrorKind, InnerPacket, Network, ParsedFrame,
};

/// Why a frame was dropped by the parser: one variant per drop counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WireError {
    /// A header extends past the end of the frame (or a length field
    /// claims more bytes than the frame holds).
    Truncated,
    /// The IP version nibble does not match the ethertype.
    BadVersion,
    /// A header-length field is smaller than its header's minimum.
    BadHeaderLength,
    /// A length field is inconsistent (e.g. IPv4 total length shorter than
    /// its header, UDP length shorter than 8).
    BadLength,
    /// The IPv4 header checksum does not verify.
    BadChecksum,
    /// Neither IPv4, IPv6 nor ARP (after at most one 802.1Q tag).
    UnsupportedEthertype,
    /// More IPv6 extension headers than we walk (see [`ipv6::MAX_EXT_HEADERS`]).
    TooManyExtHeaders,
}

impl std::fmt::Display for WireError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let text = match self {
            WireError::Truncated => "truncated header",
            WireError::BadVersion => "bad IP version",
            WireError::BadHeaderLength => "bad header length",
            WireError::BadLength => "inconsistent length field",
            WireError::BadChecksum => "bad IPv4 header checksum",
            WireError::UnsupportedEthertype => "unsupported ethertype",
            WireError::TooManyExtHeaders => "too many IPv6 extension headers",
        };
        f.write_str(text)
    }
}

impl std::error::Error for WireError {}

/// IP protocol numbers used by the engine.
pub mod proto {
    /// IPv6 hop-by-hop options.
    pub const HOPOPT: u8 = 0;
    /// ICMP.
    pub const ICMP: u8 = 1;
    /// IPv4-in-IP (IPIP).
    pub const IPIP: u8 = 4;
    /// TCP.
    pub const TCP: u8 = 6;
    /// UDP.
    pub const UDP: u8 = 17;
    /// IPv6-in-IP.
    pub const IPV6: u8 = 41;
    /// IPv6 routing header.
    pub const IPV6_ROUTE: u8 = 43;
    /// IPv6 fragment header.
    pub const IPV6_FRAG: u8 = 44;
    /// GRE.
    pub const GRE: u8 = 47;
    /// Authentication header.
    pub const AH: u8 = 51;
    /// ICMPv6.
    pub const ICMPV6: u8 = 58;
    /// IPv6 "no next header".
    pub const IPV6_NONXT: u8 = 59;
    /// IPv6 destination options.
    pub const IPV6_OPTS: u8 = 60;
    /// SCTP.
    pub const SCTP: u8 = 132;
}

/// Ethertypes used by the engine.
pub mod ethertype {
    /// IPv4.
    pub const IPV4: u16 = 0x0800;
    /// ARP.
    pub const ARP: u16 = 0x0806;
    /// 802.1Q VLAN tag.
    pub const VLAN: u16 = 0x8100;
    /// IPv6.
    pub const IPV6: u16 = 0x86dd;
}

/// Read one byte at `off`, or `Truncated`.
#[inline]
pub fn read_u8(buf: &[u8], off: usize) -> Result<u8, WireError> {
    buf.get(off).copied().ok_or(WireError::Truncated)
}

/// Read a big-endian `u16` at `off`, or `Truncated`.
#[inline]
pub fn read_u16(buf: &[u8], off: usize) -> Result<u16, WireError> {
    match buf.get(off..off.wrapping_add(2)) {
        Some(&[a, b]) => Ok(u16::from_be_bytes([a, b])),
        _ => Err(WireError::Truncated),
    }
}

/// Read a big-endian `u32` at `off`, or `Truncated`.
#[inline]
pub fn read_u32(buf: &[u8], off: usize) -> Result<u32, WireError> {
    match buf.get(off..off.wrapping_add(4)) {
        Some(&[a, b, c, d]) => Ok(u32::from_be_bytes([a, b, c, d])),
        _ => Err(WireError::Truncated),
    }
}

/// Read `N` bytes at `off`, or `Truncated`.
#[inline]
pub fn read_array<const N: usize>(buf: &[u8], off: usize) -> Result<[u8; N], WireError> {
    buf.get(off..off.wrapping_add(N))
        .and_then(|s| <[u8; N]>::try_from(s).ok())
        .ok_or(WireError::Truncated)
}

/// Write a big-endian `u16` at `off`, or `Truncated`.
#[inline]
pub fn write_u16(buf: &mut [u8], off: usize, value: u16) -> Result<(), WireError> {
    write_bytes(buf, off, &value.to_be_bytes())
}

/// Copy `bytes` into `buf` at `off`, or `Truncated`.
#[inline]
pub fn write_bytes(buf: &mut [u8], off: usize, bytes: &[u8]) -> Result<(), WireError> {
    match buf.get_mut(off..off.wrapping_add(bytes.len())) {
        Some(dst) => {
            dst.copy_from_slice(bytes);
            Ok(())
        }
        None => Err(WireError::Truncated),
    }
}
