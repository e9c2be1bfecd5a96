//! UDP headers.

use super::WireError;

/// Length of a UDP header.
pub const HEADER_LEN: usize = 8;
/// Offset of the checksum field.
pub const CHECKSUM_OFFSET: usize = 6;

/// A view of a UDP datagram.
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

    /// Prove the header lies in the buffer and the length field is sane
    /// (at least 8, at most the buffer).
    pub fn check_len(&self) -> Result<(), WireError> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(WireError::Truncated);
        }
        let claimed = usize::from(self.len());
        if claimed < HEADER_LEN {
            return Err(WireError::BadLength);
        }
        if claimed > len {
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

    /// Length field (header + payload).
    pub fn len(&self) -> u16 {
        self.get16(4)
    }

    /// Is the length field below the header length?
    pub fn is_empty(&self) -> bool {
        usize::from(self.len()) <= HEADER_LEN
    }

    /// Checksum field (0 = none, IPv4 only).
    pub fn checksum(&self) -> u16 {
        self.get16(CHECKSUM_OFFSET)
    }
}

/// A UDP header to emit whole (checksum filled by the caller).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repr {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Length of header and payload.
    pub len: u16,
}

impl Repr {
    /// Write the 8-byte header with a zero checksum.
    pub fn emit(&self, buf: &mut [u8]) -> Result<(), WireError> {
        let hdr = buf.get_mut(..HEADER_LEN).ok_or(WireError::Truncated)?;
        hdr[0..2].copy_from_slice(&self.src_port.to_be_bytes());
        hdr[2..4].copy_from_slice(&self.dst_port.to_be_bytes());
        hdr[4..6].copy_from_slice(&self.len.to_be_bytes());
        hdr[6..8].copy_from_slice(&[0, 0]);
        Ok(())
    }
}
