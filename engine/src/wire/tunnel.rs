//! Tunnel headers: GUE (variant 0) and GRE (RFC 2784/2890), as the
//! kernel's IPVS tunnel mode emits them. IP-in-IP has no header of its
//! own (protocol 4 or 41 in the outer IP header).

use super::WireError;

/// Length of the GUE base header.
pub const GUE_HEADER_LEN: usize = 4;
/// Length of a GRE header without options.
pub const GRE_HEADER_LEN: usize = 4;
/// Length of a GRE header with the checksum option.
pub const GRE_CSUM_HEADER_LEN: usize = 8;
/// GRE flag: checksum present.
pub const GRE_FLAG_CSUM: u16 = 0x8000;
/// GRE flag: key present.
pub const GRE_FLAG_KEY: u16 = 0x2000;
/// GRE flag: sequence number present.
pub const GRE_FLAG_SEQ: u16 = 0x1000;

/// A parsed GUE header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GueHeader {
    /// Control message (C bit).
    pub control: bool,
    /// Length of the optional fields in bytes (hlen × 4).
    pub options_len: usize,
    /// Inner IP protocol (or control type).
    pub proto_ctype: u8,
    /// Flags (16 bits).
    pub flags: u16,
}

impl GueHeader {
    /// Parse the GUE header at the start of `buf` (a UDP payload);
    /// the optional fields must lie in `buf` too.
    pub fn parse(buf: &[u8]) -> Result<GueHeader, WireError> {
        let b = buf.get(..GUE_HEADER_LEN).ok_or(WireError::Truncated)?;
        if b[0] >> 6 != 0 {
            return Err(WireError::BadVersion);
        }
        let header = GueHeader {
            control: b[0] & 0x20 != 0,
            options_len: usize::from(b[0] & 0x1f) * 4,
            proto_ctype: b[1],
            flags: u16::from_be_bytes([b[2], b[3]]),
        };
        if buf.len() < header.header_len() {
            return Err(WireError::Truncated);
        }
        Ok(header)
    }

    /// Total header length (base + options).
    pub fn header_len(&self) -> usize {
        GUE_HEADER_LEN + self.options_len
    }

    /// Write the base header (no options) into `buf`.
    pub fn emit(&self, buf: &mut [u8]) -> Result<(), WireError> {
        let b = buf.get_mut(..GUE_HEADER_LEN).ok_or(WireError::Truncated)?;
        b[0] = (u8::from(self.control) << 5) | ((self.options_len / 4) as u8 & 0x1f);
        b[1] = self.proto_ctype;
        b[2..4].copy_from_slice(&self.flags.to_be_bytes());
        Ok(())
    }
}

/// A parsed GRE header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GreHeader {
    /// Flags and version word.
    pub flags_version: u16,
    /// Protocol type (an ethertype).
    pub protocol: u16,
}

impl GreHeader {
    /// Parse the GRE header at the start of `buf` (version 0 only).
    pub fn parse(buf: &[u8]) -> Result<GreHeader, WireError> {
        let b = buf.get(..GRE_HEADER_LEN).ok_or(WireError::Truncated)?;
        let header = GreHeader {
            flags_version: u16::from_be_bytes([b[0], b[1]]),
            protocol: u16::from_be_bytes([b[2], b[3]]),
        };
        if header.flags_version & 0x0007 != 0 {
            return Err(WireError::BadVersion);
        }
        if buf.len() < header.header_len() {
            return Err(WireError::Truncated);
        }
        Ok(header)
    }

    /// Header length implied by the flags (checksum, key, sequence).
    pub fn header_len(&self) -> usize {
        let mut len = GRE_HEADER_LEN;
        if self.flags_version & GRE_FLAG_CSUM != 0 {
            len += 4;
        }
        if self.flags_version & GRE_FLAG_KEY != 0 {
            len += 4;
        }
        if self.flags_version & GRE_FLAG_SEQ != 0 {
            len += 4;
        }
        len
    }
}
