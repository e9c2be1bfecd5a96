//! TCP headers: ports, flags, checksum, and a walk over the options.

use super::WireError;

/// Length of a TCP header without options.
pub const MIN_HEADER_LEN: usize = 20;
/// Longest TCP header (data offset 15).
pub const MAX_HEADER_LEN: usize = 60;
/// Offset of the checksum field.
pub const CHECKSUM_OFFSET: usize = 16;

/// FIN flag.
pub const FIN: u8 = 0x01;
/// SYN flag.
pub const SYN: u8 = 0x02;
/// RST flag.
pub const RST: u8 = 0x04;
/// PSH flag.
pub const PSH: u8 = 0x08;
/// ACK flag.
pub const ACK: u8 = 0x10;
/// URG flag.
pub const URG: u8 = 0x20;

/// Option kind: end of list.
pub const OPT_END: u8 = 0;
/// Option kind: no-operation.
pub const OPT_NOP: u8 = 1;
/// Option kind: maximum segment size.
pub const OPT_MSS: u8 = 2;
/// Option kind used by TOA (DPVS/Alibaba "TCP option address").
pub const OPT_TOA: u8 = 254;

/// A view of a TCP segment.
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

    /// Prove the header, options included, lies in the buffer.
    pub fn check_len(&self) -> Result<(), WireError> {
        let len = self.buffer.as_ref().len();
        if len < MIN_HEADER_LEN {
            return Err(WireError::Truncated);
        }
        if self.header_len() < MIN_HEADER_LEN {
            return Err(WireError::BadHeaderLength);
        }
        if len < self.header_len() {
            return Err(WireError::Truncated);
        }
        Ok(())
    }

    fn get16(&self, off: usize) -> u16 {
        let b = self.buffer.as_ref();
        u16::from_be_bytes([b[off], b[off + 1]])
    }

    /// Source port.
    pub fn src_port(&self) -> u16 {
        self.get16(0)
    }

    /// Destination port.
    pub fn dst_port(&self) -> u16 {
        self.get16(2)
    }

    /// Sequence number.
    pub fn seq(&self) -> u32 {
        u32::from(self.get16(4)) << 16 | u32::from(self.get16(6))
    }

    /// Acknowledgement number.
    pub fn ack(&self) -> u32 {
        u32::from(self.get16(8)) << 16 | u32::from(self.get16(10))
    }

    /// Header length in bytes (data offset × 4).
    pub fn header_len(&self) -> usize {
        usize::from(self.buffer.as_ref()[12] >> 4) * 4
    }

    /// The flags byte (FIN … CWR).
    pub fn flags(&self) -> u8 {
        self.buffer.as_ref()[13]
    }

    /// Checksum field.
    pub fn checksum(&self) -> u16 {
        self.get16(CHECKSUM_OFFSET)
    }

    /// The options bytes.
    pub fn options(&self) -> &[u8] {
        &self.buffer.as_ref()[MIN_HEADER_LEN..self.header_len()]
    }

    /// Walk the options: `(kind, data)` for each, stopping at end-of-list
    /// or at a malformed option. Never panics.
    pub fn option_iter(&self) -> OptionIter<'_> {
        OptionIter {
            rest: self.options(),
        }
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Set the checksum field.
    pub fn set_checksum(&mut self, value: u16) {
        self.buffer.as_mut()[CHECKSUM_OFFSET..CHECKSUM_OFFSET + 2]
            .copy_from_slice(&value.to_be_bytes());
    }

    /// Set the header length in bytes (a multiple of 4, ≤ 60); voids
    /// `check_len` if the buffer is shorter.
    pub fn set_header_len(&mut self, len: usize) {
        let b = self.buffer.as_mut();
        b[12] = (((len / 4) as u8) << 4) | (b[12] & 0x0f);
    }
}

/// Iterator over TCP options, see [`Packet::option_iter`].
#[derive(Debug, Clone)]
pub struct OptionIter<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for OptionIter<'a> {
    type Item = (u8, &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        let (&kind, after) = self.rest.split_first()?;
        match kind {
            OPT_END => {
                self.rest = &[];
                None
            }
            OPT_NOP => {
                self.rest = after;
                Some((OPT_NOP, &[]))
            }
            _ => {
                let len = usize::from(*after.first()?);
                if len < 2 || len > self.rest.len() {
                    self.rest = &[];
                    return None;
                }
                let data = &self.rest[2..len];
                self.rest = &self.rest[len..];
                Some((kind, data))
            }
        }
    }
}
