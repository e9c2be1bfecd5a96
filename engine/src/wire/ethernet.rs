//! Ethernet II frames, with at most one 802.1Q tag.

use super::{ethertype, WireError};

/// Length of an untagged Ethernet header.
pub const HEADER_LEN: usize = 14;
/// Length of an 802.1Q tag.
pub const VLAN_TAG_LEN: usize = 4;

/// A MAC address.
pub type Mac = [u8; 6];

/// A view of an Ethernet frame.
#[derive(Debug, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wrap a buffer without checking its length.
    pub fn new_unchecked(buffer: T) -> Self {
        Packet { buffer }
    }

    /// Wrap a buffer after [`Packet::check_len`].
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        let packet = Packet { buffer };
        packet.check_len()?;
        Ok(packet)
    }

    /// Prove that every accessor stays in bounds (the tag, if the
    /// ethertype says there is one, included).
    pub fn check_len(&self) -> Result<(), WireError> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(WireError::Truncated);
        }
        if self.outer_ethertype() == ethertype::VLAN && len < HEADER_LEN + VLAN_TAG_LEN {
            return Err(WireError::Truncated);
        }
        Ok(())
    }

    /// Destination MAC.
    pub fn dst(&self) -> Mac {
        let b = self.buffer.as_ref();
        [b[0], b[1], b[2], b[3], b[4], b[5]]
    }

    /// Source MAC.
    pub fn src(&self) -> Mac {
        let b = self.buffer.as_ref();
        [b[6], b[7], b[8], b[9], b[10], b[11]]
    }

    /// The ethertype right after the MACs (0x8100 when tagged).
    pub fn outer_ethertype(&self) -> u16 {
        let b = self.buffer.as_ref();
        u16::from_be_bytes([b[12], b[13]])
    }

    /// The VLAN id (low 12 bits of the TCI), if tagged.
    pub fn vlan(&self) -> Option<u16> {
        let b = self.buffer.as_ref();
        (self.outer_ethertype() == ethertype::VLAN)
            .then(|| u16::from_be_bytes([b[14], b[15]]) & 0x0fff)
    }

    /// The payload's ethertype (after the tag, if any).
    pub fn ethertype(&self) -> u16 {
        let b = self.buffer.as_ref();
        if self.outer_ethertype() == ethertype::VLAN {
            u16::from_be_bytes([b[16], b[17]])
        } else {
            self.outer_ethertype()
        }
    }

    /// Length of the header, tag included.
    pub fn header_len(&self) -> usize {
        if self.outer_ethertype() == ethertype::VLAN {
            HEADER_LEN + VLAN_TAG_LEN
        } else {
            HEADER_LEN
        }
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Set the destination MAC.
    pub fn set_dst(&mut self, mac: Mac) {
        self.buffer.as_mut()[0..6].copy_from_slice(&mac);
    }

    /// Set the source MAC.
    pub fn set_src(&mut self, mac: Mac) {
        self.buffer.as_mut()[6..12].copy_from_slice(&mac);
    }

    /// Set the ethertype right after the MACs.
    pub fn set_outer_ethertype(&mut self, value: u16) {
        self.buffer.as_mut()[12..14].copy_from_slice(&value.to_be_bytes());
    }

    /// Set the payload's ethertype (after the tag, if any).
    pub fn set_ethertype(&mut self, value: u16) {
        let off = self.header_len() - 2;
        self.buffer.as_mut()[off..off + 2].copy_from_slice(&value.to_be_bytes());
    }
}
