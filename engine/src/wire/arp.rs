//! ARP for IPv4 over Ethernet (the only kind the engine answers).

use std::net::Ipv4Addr;

use super::ethernet::Mac;
use super::WireError;

/// Length of an Ethernet/IPv4 ARP packet.
pub const PACKET_LEN: usize = 28;
/// Operation: request.
pub const OP_REQUEST: u16 = 1;
/// Operation: reply.
pub const OP_REPLY: u16 = 2;

/// A view of an ARP packet (Ethernet hardware, IPv4 protocol).
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

    /// Prove the buffer holds a whole Ethernet/IPv4 ARP packet, and that
    /// it is one (hardware type 1, protocol 0x0800, lengths 6 and 4).
    pub fn check_len(&self) -> Result<(), WireError> {
        let b = self.buffer.as_ref();
        if b.len() < PACKET_LEN {
            return Err(WireError::Truncated);
        }
        if b[0..6] != [0, 1, 0x08, 0x00, 6, 4] {
            return Err(WireError::BadHeaderLength);
        }
        Ok(())
    }

    /// Operation (1 request, 2 reply).
    pub fn operation(&self) -> u16 {
        let b = self.buffer.as_ref();
        u16::from_be_bytes([b[6], b[7]])
    }

    /// Sender hardware address.
    pub fn sender_mac(&self) -> Mac {
        let b = self.buffer.as_ref();
        [b[8], b[9], b[10], b[11], b[12], b[13]]
    }

    /// Sender protocol address.
    pub fn sender_ip(&self) -> Ipv4Addr {
        let b = self.buffer.as_ref();
        Ipv4Addr::new(b[14], b[15], b[16], b[17])
    }

    /// Target hardware address.
    pub fn target_mac(&self) -> Mac {
        let b = self.buffer.as_ref();
        [b[18], b[19], b[20], b[21], b[22], b[23]]
    }

    /// Target protocol address.
    pub fn target_ip(&self) -> Ipv4Addr {
        let b = self.buffer.as_ref();
        Ipv4Addr::new(b[24], b[25], b[26], b[27])
    }
}

/// An ARP packet to emit whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repr {
    /// Operation (1 request, 2 reply).
    pub operation: u16,
    /// Sender hardware address.
    pub sender_mac: Mac,
    /// Sender protocol address.
    pub sender_ip: Ipv4Addr,
    /// Target hardware address.
    pub target_mac: Mac,
    /// Target protocol address.
    pub target_ip: Ipv4Addr,
}

impl Repr {
    /// Parse a checked packet.
    pub fn parse<T: AsRef<[u8]>>(packet: &Packet<T>) -> Repr {
        Repr {
            operation: packet.operation(),
            sender_mac: packet.sender_mac(),
            sender_ip: packet.sender_ip(),
            target_mac: packet.target_mac(),
            target_ip: packet.target_ip(),
        }
    }

    /// Write the packet into `buf` (at least [`PACKET_LEN`] bytes).
    pub fn emit(&self, buf: &mut [u8]) -> Result<(), WireError> {
        let out = buf.get_mut(..PACKET_LEN).ok_or(WireError::Truncated)?;
        out[0..6].copy_from_slice(&[0, 1, 0x08, 0x00, 6, 4]);
        out[6..8].copy_from_slice(&self.operation.to_be_bytes());
        out[8..14].copy_from_slice(&self.sender_mac);
        out[14..18].copy_from_slice(&self.sender_ip.octets());
        out[18..24].copy_from_slice(&self.target_mac);
        out[24..28].copy_from_slice(&self.target_ip.octets());
        Ok(())
    }
}
