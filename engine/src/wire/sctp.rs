//! SCTP packets (RFC 4960 §3): the 12-byte common header, a bounded walk
//! over the chunks that follow it, the chunk the IPVS state machine reads
//! (`set_sctp_state`), and the CRC32c checksum (RFC 4960 appendix B,
//! RFC 3309).
//!
//! The CRC32c covers the SCTP packet only (no pseudo-header), so a NAT
//! that changes addresses but not ports leaves it valid; a changed port
//! needs a full recompute ([`fill_checksum`]): unlike the Internet
//! checksum, CRC32c has no cheap incremental update, and the kernel's
//! `sctp_nat_csum` recomputes it the same way. The CRC is computed by the
//! `crc32c` crate (SSE4.2 `crc32` instructions where the CPU has them, a
//! table otherwise). The checksum field holds the CRC in little-endian
//! byte order, as Linux (`cpu_to_le32`) and every SCTP stack write it.

use super::WireError;

/// Length of the SCTP common header.
pub const HEADER_LEN: usize = 12;
/// Offset of the checksum field in the common header.
pub const CHECKSUM_OFFSET: usize = 8;
/// Length of a chunk header (type, flags, length).
pub const CHUNK_HEADER_LEN: usize = 4;
/// The smallest SCTP packet the engine accepts: the common header and one
/// chunk header (RFC 4960 §3: a packet carries one or more chunks).
pub const MIN_PACKET_LEN: usize = HEADER_LEN + CHUNK_HEADER_LEN;

/// Chunk type numbers (RFC 4960 §3.2) that the IPVS state machine knows.
pub mod chunk {
    /// Payload data.
    pub const DATA: u8 = 0;
    /// Initiation.
    pub const INIT: u8 = 1;
    /// Initiation acknowledgement.
    pub const INIT_ACK: u8 = 2;
    /// Selective acknowledgement.
    pub const SACK: u8 = 3;
    /// Heartbeat request.
    pub const HEARTBEAT: u8 = 4;
    /// Heartbeat acknowledgement.
    pub const HEARTBEAT_ACK: u8 = 5;
    /// Abort.
    pub const ABORT: u8 = 6;
    /// Shutdown.
    pub const SHUTDOWN: u8 = 7;
    /// Shutdown acknowledgement.
    pub const SHUTDOWN_ACK: u8 = 8;
    /// Operation error.
    pub const ERROR: u8 = 9;
    /// State cookie.
    pub const COOKIE_ECHO: u8 = 10;
    /// Cookie acknowledgement.
    pub const COOKIE_ACK: u8 = 11;
    /// Explicit congestion notification echo.
    pub const ECNE: u8 = 12;
    /// Congestion window reduced.
    pub const CWR: u8 = 13;
    /// Shutdown complete.
    pub const SHUTDOWN_COMPLETE: u8 = 14;
}

/// A view of an SCTP packet (common header and chunks).
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

    /// Prove the common header lies in the buffer. (Chunks are walked
    /// with their own bounds checks.)
    pub fn check_len(&self) -> Result<(), WireError> {
        if self.buffer.as_ref().len() < HEADER_LEN {
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

    /// Verification tag.
    pub fn verification_tag(&self) -> u32 {
        let b = self.buffer.as_ref();
        u32::from_be_bytes([b[4], b[5], b[6], b[7]])
    }

    /// The checksum field, as the CRC32c value it carries (stored
    /// little-endian on the wire).
    pub fn checksum(&self) -> u32 {
        let b = self.buffer.as_ref();
        u32::from_le_bytes([b[8], b[9], b[10], b[11]])
    }

    /// Does the checksum field hold the CRC32c of the packet?
    pub fn verify_checksum(&self) -> bool {
        compute_checksum(self.buffer.as_ref()) == Some(self.checksum())
    }

    /// The chunks after the common header.
    pub fn chunks(&self) -> Chunks<'_> {
        Chunks {
            buf: self.buffer.as_ref(),
            offset: HEADER_LEN,
        }
    }

    /// The whole packet.
    pub fn as_bytes(&self) -> &[u8] {
        self.buffer.as_ref()
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Set the source port (the checksum is not updated).
    pub fn set_src_port(&mut self, port: u16) {
        self.buffer.as_mut()[0..2].copy_from_slice(&port.to_be_bytes());
    }

    /// Set the destination port (the checksum is not updated).
    pub fn set_dst_port(&mut self, port: u16) {
        self.buffer.as_mut()[2..4].copy_from_slice(&port.to_be_bytes());
    }

    /// Recompute the CRC32c over the whole packet and store it.
    pub fn fill_checksum(&mut self) {
        // check_len proved the header is there, so this cannot fail.
        let _ = fill_checksum(self.buffer.as_mut());
    }
}

/// A chunk header found by [`Chunks`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ChunkHeader {
    /// Offset of the chunk from the start of the SCTP packet.
    pub offset: usize,
    /// Chunk type.
    pub chunk_type: u8,
    /// Chunk flags.
    pub flags: u8,
    /// Chunk length (header included, padding excluded).
    pub length: u16,
}

/// Iterator over the chunk headers of an SCTP packet. It stops at the
/// first chunk whose header does not fit, whose length is below 4, or
/// that runs past the end of the packet (that last chunk is still
/// yielded: its header is there). Every step advances at least 4 bytes,
/// so the walk is bounded by the packet's length.
#[derive(Debug, Clone)]
pub struct Chunks<'a> {
    buf: &'a [u8],
    offset: usize,
}

impl Iterator for Chunks<'_> {
    type Item = ChunkHeader;

    fn next(&mut self) -> Option<ChunkHeader> {
        let header = chunk_at(self.buf, self.offset)?;
        let length = usize::from(header.length);
        if length < CHUNK_HEADER_LEN {
            self.offset = self.buf.len();
        } else {
            self.offset = self.offset.saturating_add(align4(length));
        }
        Some(header)
    }
}

fn align4(n: usize) -> usize {
    n.saturating_add(3) & !3
}

/// The chunk header at `offset` of `packet`, if its 4 bytes are there.
pub fn chunk_at(packet: &[u8], offset: usize) -> Option<ChunkHeader> {
    let end = offset.checked_add(CHUNK_HEADER_LEN)?;
    let bytes = packet.get(offset..end)?;
    Some(ChunkHeader {
        offset,
        chunk_type: bytes[0],
        flags: bytes[1],
        length: u16::from_be_bytes([bytes[2], bytes[3]]),
    })
}

/// The chunk type that drives the IPVS state machine for this packet,
/// as the kernel's `set_sctp_state` picks it: the first chunk's type,
/// except that a COOKIE ECHO or COOKIE ACK followed by an ABORT counts
/// as the ABORT (RFC 4960 §3.3.7 lets control chunks precede an ABORT).
/// `None` when the packet has no chunk header.
pub fn state_chunk(packet: &[u8]) -> Option<u8> {
    let first = chunk_at(packet, HEADER_LEN)?;
    if matches!(first.chunk_type, chunk::COOKIE_ECHO | chunk::COOKIE_ACK)
        && usize::from(first.length) >= CHUNK_HEADER_LEN
    {
        let next = HEADER_LEN + align4(usize::from(first.length));
        if chunk_at(packet, next).is_some_and(|c| c.chunk_type == chunk::ABORT) {
            return Some(chunk::ABORT);
        }
    }
    Some(first.chunk_type)
}

/// The CRC32c of an SCTP packet with its checksum field taken as zero;
/// `None` if the packet is shorter than the common header.
pub fn compute_checksum(packet: &[u8]) -> Option<u32> {
    let head = packet.get(..CHECKSUM_OFFSET)?;
    let rest = packet.get(HEADER_LEN..)?;
    let crc = crc32c::crc32c(head);
    let crc = crc32c::crc32c_append(crc, &[0; 4]);
    Some(crc32c::crc32c_append(crc, rest))
}

/// Recompute the CRC32c of an SCTP packet and write it into its checksum
/// field (little-endian).
pub fn fill_checksum(packet: &mut [u8]) -> Result<(), WireError> {
    let crc = compute_checksum(packet).ok_or(WireError::Truncated)?;
    let field = packet
        .get_mut(CHECKSUM_OFFSET..HEADER_LEN)
        .ok_or(WireError::Truncated)?;
    field.copy_from_slice(&crc.to_le_bytes());
    Ok(())
}

/// A chunk's bytes: type, flags, length and `value`, padded to 4 bytes
/// (for builders and tests; allocates).
pub fn chunk_bytes(chunk_type: u8, flags: u8, value: &[u8]) -> Vec<u8> {
    let length = (CHUNK_HEADER_LEN + value.len()) as u16;
    let mut out = vec![chunk_type, flags];
    out.extend_from_slice(&length.to_be_bytes());
    out.extend_from_slice(value);
    while out.len() % 4 != 0 {
        out.push(0);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32c_check_value() {
        // RFC 3720 B.4 / the CRC catalogue's check value for CRC-32C.
        assert_eq!(crc32c::crc32c(b"123456789"), 0xe306_9283);
    }

    #[test]
    fn fill_then_verify() {
        let mut packet = vec![0x13, 0x88, 0x0f, 0x1c, 1, 2, 3, 4, 0xaa, 0xbb, 0xcc, 0xdd];
        packet.extend(chunk_bytes(chunk::DATA, 3, b"hello"));
        fill_checksum(&mut packet).unwrap();
        let view = Packet::new_checked(&packet[..]).unwrap();
        assert!(view.verify_checksum());
        assert_eq!((view.src_port(), view.dst_port()), (5000, 3868));
        assert_eq!(view.verification_tag(), 0x0102_0304);
        packet[20] ^= 1;
        assert!(!Packet::new_checked(&packet[..]).unwrap().verify_checksum());
    }

    #[test]
    fn chunk_walk_is_bounded_and_stops_on_bad_lengths() {
        let mut packet = vec![0; HEADER_LEN];
        packet.extend(chunk_bytes(chunk::COOKIE_ACK, 0, &[]));
        packet.extend(chunk_bytes(chunk::DATA, 0, b"abcde"));
        packet.extend([chunk::SACK, 0, 0, 2]); // length 2 < 4: walk ends
        packet.extend(chunk_bytes(chunk::DATA, 0, b""));
        let types: Vec<u8> = Packet::new_checked(&packet[..])
            .unwrap()
            .chunks()
            .map(|c| c.chunk_type)
            .collect();
        assert_eq!(types, [chunk::COOKIE_ACK, chunk::DATA, chunk::SACK]);
        assert_eq!(
            Packet::new_checked(&packet[..4]).err(),
            Some(WireError::Truncated)
        );
    }

    #[test]
    fn state_chunk_prefers_an_abort_bundled_after_a_cookie() {
        let mut packet = vec![0; HEADER_LEN];
        packet.extend(chunk_bytes(chunk::COOKIE_ECHO, 0, b"cookie!"));
        packet.extend(chunk_bytes(chunk::ABORT, 0, &[]));
        assert_eq!(state_chunk(&packet), Some(chunk::ABORT));
        let mut data_then_abort = vec![0; HEADER_LEN];
        data_then_abort.extend(chunk_bytes(chunk::DATA, 0, b"x"));
        data_then_abort.extend(chunk_bytes(chunk::ABORT, 0, &[]));
        assert_eq!(state_chunk(&data_then_abort), Some(chunk::DATA));
        assert_eq!(state_chunk(&packet[..HEADER_LEN + 2]), None);
    }
}
