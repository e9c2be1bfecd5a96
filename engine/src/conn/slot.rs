//! The layout of one table entry (112 bytes: a 64-byte hot part on its
//! own cache line and a 48-byte cold part) and of the hash buckets.
//!
//! Every field is an atomic so that lock-free readers may race writers
//! without undefined behaviour; consistency comes from the sequence
//! counter `seq` (odd while an entry is written or free; readers check it
//! before and after reading) and from the compare-and-swap of the state
//! word.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::atomic::{fence, AtomicU32, AtomicU64, Ordering};

use uvs_conf::{ForwardMethod, TunnelCsum, TunnelType};

use super::storage::{ZeroInit, ZeroedArray};

// ---- state word -------------------------------------------------------

/// Lifecycle: free.
pub(crate) const LIFE_FREE: u32 = 0;
/// Lifecycle: visible and alive.
pub(crate) const LIFE_LIVE: u32 = 1;
/// Lifecycle: claimed by the thread that expires it.
pub(crate) const LIFE_DYING: u32 = 2;
/// Lifecycle: being inserted, not yet visible as alive.
pub(crate) const LIFE_PENDING: u32 = 3;
const LIFE_MASK: u32 = 0b11;
const TCP_SHIFT: u32 = 2;
const TCP_MASK: u32 = 0b1111 << TCP_SHIFT;
/// Counted in InActConn rather than ActiveConn.
pub(crate) const ST_INACTIVE: u32 = 1 << 6;
/// No output packet seen yet (DR, TUN).
pub(crate) const ST_NOOUTPUT: u32 = 1 << 7;
/// Template invalidated (its real server went away): skipped by lookups.
pub(crate) const ST_INVALID: u32 = 1 << 8;
/// Template assured.
pub(crate) const ST_ASSURED: u32 = 1 << 9;
const TOUCH_SHIFT: u32 = 10;
const TOUCH_MASK: u32 = 0xff << TOUCH_SHIFT;
const GEN_SHIFT: u32 = 18;

/// The lifecycle bits.
pub(crate) fn life(state: u32) -> u32 {
    state & LIFE_MASK
}

/// Replace the lifecycle bits.
pub(crate) fn with_life(state: u32, life: u32) -> u32 {
    (state & !LIFE_MASK) | life
}

/// The TCP state number.
pub(crate) fn tcp_index(state: u32) -> u32 {
    (state & TCP_MASK) >> TCP_SHIFT
}

/// Replace the TCP state number.
pub(crate) fn with_tcp_index(state: u32, index: u32) -> u32 {
    (state & !TCP_MASK) | ((index << TCP_SHIFT) & TCP_MASK)
}

/// Bump the touch counter, so that a concurrent compare-and-swap based on
/// the old word fails even when nothing else changed.
pub(crate) fn touched(state: u32) -> u32 {
    let touch = ((state & TOUCH_MASK) >> TOUCH_SHIFT).wrapping_add(1);
    (state & !TOUCH_MASK) | ((touch << TOUCH_SHIFT) & TOUCH_MASK)
}

/// The generation bits stored in the state word for sequence `seq`.
pub(crate) fn gen_bits(seq: u32) -> u32 {
    (seq >> 1) << GEN_SHIFT
}

/// Whether the state word belongs to the generation of `seq`.
pub(crate) fn same_gen(state: u32, seq: u32) -> bool {
    state >> GEN_SHIFT == gen_bits(seq) >> GEN_SHIFT
}

// ---- meta word (immutable while the entry lives) ---------------------

const META_PROTOCOL_MASK: u32 = 0xff;
/// Entry is a persistence template.
pub(crate) const META_TEMPLATE: u32 = 1 << 8;
/// Client address is IPv6.
pub(crate) const META_C_V6: u32 = 1 << 9;
const META_V_V6: u32 = 1 << 10;
const META_D_V6: u32 = 1 << 11;
const META_L_V6: u32 = 1 << 12;
/// Entry has a full-NAT local address.
pub(crate) const META_LOCAL: u32 = 1 << 13;
const METHOD_SHIFT: u32 = 14;
const METHOD_MASK: u32 = 0b11 << METHOD_SHIFT;
const TUN_SHIFT: u32 = 16;
const TUN_MASK: u32 = 0b11 << TUN_SHIFT;
const CSUM_SHIFT: u32 = 18;
const CSUM_MASK: u32 = 0b11 << CSUM_SHIFT;
/// Template keyed by a persistence engine's data (SIP Call-ID); see
/// `table/pe.rs` for how such an entry uses its fields.
pub(crate) const META_PE: u32 = 1 << 21;
/// Bits of the meta word that belong to the in-index key.
const IN_KEY_META: u32 = META_PROTOCOL_MASK | META_TEMPLATE | META_C_V6 | META_V_V6 | META_PE;
/// Stored form only (never in [`Fields`]): every address of the entry is
/// IPv4, and the hot part's key words 2 and 3 hold the real server and
/// local addresses, the destination id and `aux` (copies of the cold
/// part's), so that a lookup hit reads the entry's one hot cache line.
const META_COMPACT: u32 = 1 << 20;
/// Family bits: all clear = an all-IPv4 entry.
const META_ANY_V6: u32 = META_C_V6 | META_V_V6 | META_D_V6 | META_L_V6;

/// Whether client and virtual addresses are both IPv4: the in-key's
/// addresses are then key words 0 and 1 (each address's 32 bits), and
/// key words 2 and 3 are not part of the key. A persistence-engine
/// template's key (the client XOR a 128-bit Call-ID hash) always takes
/// the four-word layout.
#[inline(always)]
fn v4_key(meta: u32) -> bool {
    meta & (META_C_V6 | META_V_V6 | META_PE) == 0
}

const METHOD_DR: u32 = 0;
const METHOD_TUNNEL: u32 = 1;
const METHOD_NAT: u32 = 2;
const METHOD_FULLNAT: u32 = 3;

/// Link value meaning "end of chain".
pub(crate) const NIL: u32 = 0;

/// The part of an entry that a lookup in the in-index reads: its
/// sequence counter, state, key, chain link and deadline. 64 bytes on a
/// cache line of its own, so that walking past a non-matching entry
/// costs one cache line.
#[derive(Debug, Default)]
#[repr(C, align(64))]
pub(crate) struct SlotHot {
    /// Sequence counter: odd = free or being written.
    pub seq: AtomicU32,
    /// Lifecycle, TCP state, flags, touch counter, generation.
    pub state: AtomicU32,
    /// Protocol, template bit, address families, method.
    pub meta: AtomicU32,
    /// Link to the next entry in the in-index chain (index + 1 and a tag
    /// of its key hash, see `ConnTable::link_to`), or in the free list
    /// (index + 1 alone).
    pub next_in: AtomicU32,
    /// cport | vport << 16 | dport << 32 | lport (or GUE port) << 48.
    pub ports: AtomicU64,
    /// Client and virtual addresses, 128 bits each, high word first;
    /// both IPv4: client, virtual, then the compact words (see
    /// `META_COMPACT`) or zeros.
    pub key_addrs: [AtomicU64; 4],
    /// Deadline in [`crate::time::Millis`].
    pub expires: AtomicU64,
}

/// The rest of an entry (48 bytes), read once a lookup matched, by
/// out-index lookups and by the slow paths.
#[derive(Debug, Default)]
#[repr(C)]
pub(crate) struct SlotCold {
    /// Link to the next entry in the out-index chain (index + 1 and tag).
    pub next_out: AtomicU32,
    /// Destination id.
    pub dest: AtomicU32,
    /// Connection: controlling template index + 1. Template: number of
    /// controlled connections.
    pub control: AtomicU32,
    /// Connection: fwmark. Template: timeout in seconds.
    pub aux: AtomicU32,
    /// Real server and local addresses, 128 bits each, high word first.
    pub far_addrs: [AtomicU64; 4],
}

// SAFETY: `SlotHot` is made only of atomics; all-zero is a valid (free)
// entry part and there is no drop glue.
unsafe impl ZeroInit for SlotHot {}
// SAFETY: as above, for the cold part.
unsafe impl ZeroInit for SlotCold {}

/// Bytes of one entry, both parts.
pub(crate) const SLOT_BYTES: usize =
    std::mem::size_of::<SlotHot>() + std::mem::size_of::<SlotCold>();

/// Every entry, stored as two arrays of parts indexed alike.
#[derive(Debug)]
pub(crate) struct Slots {
    hot: ZeroedArray<SlotHot>,
    cold: ZeroedArray<SlotCold>,
}

impl Slots {
    /// `len` free (zeroed) entries.
    pub fn new(len: usize) -> Slots {
        Slots {
            hot: ZeroedArray::new(len),
            cold: ZeroedArray::new(len),
        }
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.hot.len()
    }

    /// Entry `index`, if in range.
    #[inline(always)]
    pub fn get(&self, index: usize) -> Option<Slot<'_>> {
        Some(Slot {
            hot: self.hot.get(index)?,
            cold: self.cold.get(index)?,
        })
    }

    /// The hot parts of entries `range` (`None` if out of bounds).
    #[inline]
    pub fn hot(&self, range: std::ops::Range<usize>) -> Option<&[SlotHot]> {
        self.hot.get(range)
    }

    /// Every entry in index order.
    pub fn iter(&self) -> impl Iterator<Item = Slot<'_>> {
        self.hot
            .iter()
            .zip(self.cold.iter())
            .map(|(hot, cold)| Slot { hot, cold })
    }
}

/// One entry: a connection or a template, seen through its two parts.
/// Dereferences to the hot part; the cold part is `cold`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Slot<'a> {
    /// What lookups compare.
    pub hot: &'a SlotHot,
    /// The rest.
    pub cold: &'a SlotCold,
}

impl std::ops::Deref for Slot<'_> {
    type Target = SlotHot;

    fn deref(&self) -> &SlotHot {
        self.hot
    }
}

/// A plain copy of an entry's immutable fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Fields {
    pub meta: u32,
    pub ports: u64,
    pub addrs: [u64; 8],
    pub dest: u32,
    pub aux: u32,
}

/// What a hash index compares: 40 bytes taken from an entry or a key.
// `PartialEq` by hand is the derived one's field-wise equality, which
// `Hash` agrees with. The derived `Hash` stays: packed as three `u128`
// words for ahash (fewer dependent multiplies), keys spread worse over
// the buckets and a full-NAT table near capacity inserted 1.6x slower.
#[allow(clippy::derived_hash_with_manual_eq)]
#[derive(Debug, Clone, Copy, Eq, Hash, Default)]
pub(crate) struct IndexKey {
    pub meta: u32,
    pub ports: u32,
    pub addrs: [u64; 4],
}

impl PartialEq for IndexKey {
    /// Field by field, word by word, without a branch: the derived
    /// comparison read a key just built on the stack (by a lookup, from
    /// an entry's atomics) back as 16-byte vectors, a store-forwarding
    /// stall on every lookup; compared as words, the key stays in
    /// registers.
    #[inline(always)]
    fn eq(&self, other: &IndexKey) -> bool {
        (self.meta == other.meta)
            & (self.ports == other.ports)
            & (self.addrs[0] == other.addrs[0])
            & (self.addrs[1] == other.addrs[1])
            & (self.addrs[2] == other.addrs[2])
            & (self.addrs[3] == other.addrs[3])
    }
}

impl Slot<'_> {
    /// Read the immutable fields (inside a sequence-checked section): an
    /// all-IPv4 entry from its hot part alone, others from both parts.
    #[inline]
    pub fn read_fields(&self) -> Fields {
        let meta = self.meta.load(Ordering::Relaxed);
        let ports = self.ports.load(Ordering::Relaxed);
        let w = [0, 1, 2, 3].map(|i| self.key_addrs[i].load(Ordering::Relaxed));
        if meta & META_COMPACT != 0 {
            return Fields {
                meta: meta & !META_COMPACT,
                ports,
                addrs: [0, w[0], 0, w[1], 0, w[2] & 0xffff_ffff, 0, w[2] >> 32],
                dest: w[3] as u32,
                aux: (w[3] >> 32) as u32,
            };
        }
        let [f0, f1, f2, f3] = [0, 1, 2, 3].map(|i| self.cold.far_addrs[i].load(Ordering::Relaxed));
        let [k0, k1, k2, k3] = if v4_key(meta) { [0, w[0], 0, w[1]] } else { w };
        Fields {
            meta,
            ports,
            addrs: [k0, k1, k2, k3, f0, f1, f2, f3],
            dest: self.cold.dest.load(Ordering::Relaxed),
            aux: self.cold.aux.load(Ordering::Relaxed),
        }
    }

    /// The in-index key, reading only the entry's hot part (one cache line) (inside
    /// a sequence-checked section).
    #[inline(always)]
    pub fn read_in_key(&self) -> IndexKey {
        let meta = self.meta.load(Ordering::Relaxed);
        let w = [0, 1, 2, 3].map(|i| self.key_addrs[i].load(Ordering::Relaxed));
        IndexKey {
            meta: meta & IN_KEY_META,
            ports: self.ports.load(Ordering::Relaxed) as u32,
            addrs: if v4_key(meta) { [w[0], w[1], 0, 0] } else { w },
        }
    }

    /// Write the fields; the caller holds the entry with an odd `seq`.
    /// The cold part always gets the real server and local addresses,
    /// destination and `aux`; an all-IPv4 entry gets copies in its hot
    /// part too.
    pub fn write_fields(&self, fields: &Fields) {
        fence(Ordering::Release);
        let a = &fields.addrs;
        let (meta, hot) = if v4_key(fields.meta) {
            let (w2, w3) = if fields.meta & META_ANY_V6 == 0 {
                (
                    a[5] | (a[7] << 32),
                    u64::from(fields.dest) | (u64::from(fields.aux) << 32),
                )
            } else {
                (0, 0)
            };
            let compact = if fields.meta & META_ANY_V6 == 0 {
                META_COMPACT
            } else {
                0
            };
            (fields.meta | compact, [a[1], a[3], w2, w3])
        } else {
            (fields.meta, [a[0], a[1], a[2], a[3]])
        };
        self.meta.store(meta, Ordering::Relaxed);
        self.ports.store(fields.ports, Ordering::Relaxed);
        for (word, value) in self.key_addrs.iter().zip(hot) {
            word.store(value, Ordering::Relaxed);
        }
        for (word, value) in self.cold.far_addrs.iter().zip(&a[4..]) {
            word.store(*value, Ordering::Relaxed);
        }
        self.cold.dest.store(fields.dest, Ordering::Relaxed);
        self.cold.aux.store(fields.aux, Ordering::Relaxed);
    }
}

impl IndexKey {
    /// For an in-index key: whether its client and virtual addresses are
    /// IPv4, so that a matching entry is (unless its real server or local
    /// address is IPv6) read from its hot part alone.
    #[inline(always)]
    pub fn in_key_v4(&self) -> bool {
        v4_key(self.meta)
    }
}

/// An address as 128 bits and a family flag.
pub(crate) fn addr_bits(addr: IpAddr) -> (u128, bool) {
    match addr {
        IpAddr::V4(v4) => (u128::from(u32::from(v4)), false),
        IpAddr::V6(v6) => (u128::from(v6), true),
    }
}

fn bits_addr(bits: u128, v6: bool) -> IpAddr {
    if v6 {
        IpAddr::V6(Ipv6Addr::from(bits))
    } else {
        // The low 32 bits hold the IPv4 address; truncation is the point.
        IpAddr::V4(Ipv4Addr::from(bits as u32))
    }
}

fn split(bits: u128) -> [u64; 2] {
    [(bits >> 64) as u64, bits as u64]
}

fn join(high: u64, low: u64) -> u128 {
    (u128::from(high) << 64) | u128::from(low)
}

impl Fields {
    /// Build the fields of a new entry.
    #[allow(clippy::too_many_arguments)]
    #[inline]
    pub fn new(
        protocol: u8,
        template: bool,
        client: (IpAddr, u16),
        virt: (IpAddr, u16),
        real: (IpAddr, u16),
        local: Option<(IpAddr, u16)>,
        method: ForwardMethod,
        dest: u32,
        aux: u32,
    ) -> Fields {
        let (c, c6) = addr_bits(client.0);
        let (v, v6) = addr_bits(virt.0);
        let (d, d6) = addr_bits(real.0);
        let (l, l6, lport) = match local {
            Some((addr, port)) => {
                let (bits, is_v6) = addr_bits(addr);
                (bits, is_v6, port)
            }
            None => (0, false, 0),
        };
        let (method_code, tun_code, csum_code, extra_port) = encode_method(method);
        let mut meta = u32::from(protocol)
            | (method_code << METHOD_SHIFT)
            | (tun_code << TUN_SHIFT)
            | (csum_code << CSUM_SHIFT);
        // Each flag set without a branch (a bool is 0 or 1).
        for (flag, on) in [
            (META_TEMPLATE, template),
            (META_C_V6, c6),
            (META_V_V6, v6),
            (META_D_V6, d6),
            (META_L_V6, l6),
            (META_LOCAL, local.is_some()),
        ] {
            meta |= flag * u32::from(on);
        }
        let fourth_port = if local.is_some() { lport } else { extra_port };
        let ports = u64::from(client.1)
            | (u64::from(virt.1) << 16)
            | (u64::from(real.1) << 32)
            | (u64::from(fourth_port) << 48);
        let [c0, c1] = split(c);
        let [v0, v1] = split(v);
        let [d0, d1] = split(d);
        let [l0, l1] = split(l);
        Fields {
            meta,
            ports,
            addrs: [c0, c1, v0, v1, d0, d1, l0, l1],
            dest,
            aux,
        }
    }

    /// These fields with the full-NAT local address and port set (what
    /// [`Fields::new`] would build with `local`), without encoding the
    /// rest again: the full-NAT insert probes several local ports.
    #[inline]
    pub fn with_local(&self, addr: IpAddr, port: u16) -> Fields {
        let (bits, is_v6) = addr_bits(addr);
        let [l0, l1] = split(bits);
        let mut meta = (self.meta & !META_L_V6) | META_LOCAL;
        if is_v6 {
            meta |= META_L_V6;
        }
        let mut addrs = self.addrs;
        addrs[6] = l0;
        addrs[7] = l1;
        Fields {
            meta,
            ports: (self.ports & 0x0000_ffff_ffff_ffff) | (u64::from(port) << 48),
            addrs,
            dest: self.dest,
            aux: self.aux,
        }
    }

    /// Client, virtual, real server and local address and port, if the
    /// entry has a local address and every address is IPv4 (one test of
    /// the meta word, then the low words as they are stored).
    #[inline(always)]
    pub fn fullnat_v4(&self) -> Option<[(Ipv4Addr, u16); 4]> {
        if self.meta & (META_ANY_V6 | META_LOCAL) != META_LOCAL {
            return None;
        }
        let (a, p) = (&self.addrs, self.ports);
        // The low 32 bits of an IPv4 entry's address word hold the
        // address; truncation is the point.
        let v4 = |word: u64| Ipv4Addr::from(word as u32);
        Some([
            (v4(a[1]), p as u16),
            (v4(a[3]), (p >> 16) as u16),
            (v4(a[5]), (p >> 32) as u16),
            (v4(a[7]), (p >> 48) as u16),
        ])
    }

    pub fn protocol(&self) -> u8 {
        (self.meta & META_PROTOCOL_MASK) as u8
    }

    pub fn is_template(&self) -> bool {
        self.meta & META_TEMPLATE != 0
    }

    pub fn client(&self) -> (IpAddr, u16) {
        (
            bits_addr(
                join(self.addrs[0], self.addrs[1]),
                self.meta & META_C_V6 != 0,
            ),
            self.ports as u16,
        )
    }

    pub fn virt(&self) -> (IpAddr, u16) {
        (
            bits_addr(
                join(self.addrs[2], self.addrs[3]),
                self.meta & META_V_V6 != 0,
            ),
            (self.ports >> 16) as u16,
        )
    }

    pub fn real(&self) -> (IpAddr, u16) {
        (
            bits_addr(
                join(self.addrs[4], self.addrs[5]),
                self.meta & META_D_V6 != 0,
            ),
            (self.ports >> 32) as u16,
        )
    }

    pub fn local(&self) -> Option<(IpAddr, u16)> {
        (self.meta & META_LOCAL != 0).then(|| {
            (
                bits_addr(
                    join(self.addrs[6], self.addrs[7]),
                    self.meta & META_L_V6 != 0,
                ),
                (self.ports >> 48) as u16,
            )
        })
    }

    /// The forwarding method; the tunnel kind and checksum option are
    /// decoded for tunnel entries only (the packet path asks per packet).
    #[inline(always)]
    pub fn method(&self) -> ForwardMethod {
        match (self.meta & METHOD_MASK) >> METHOD_SHIFT {
            METHOD_TUNNEL => ForwardMethod::Tunnel {
                kind: match (self.meta & TUN_MASK) >> TUN_SHIFT {
                    1 => TunnelType::Gue {
                        port: (self.ports >> 48) as u16,
                    },
                    2 => TunnelType::Gre,
                    _ => TunnelType::Ipip,
                },
                csum: match (self.meta & CSUM_MASK) >> CSUM_SHIFT {
                    1 => TunnelCsum::Csum,
                    2 => TunnelCsum::RemCsum,
                    _ => TunnelCsum::NoCsum,
                },
            },
            METHOD_NAT => ForwardMethod::Nat,
            METHOD_FULLNAT => ForwardMethod::FullNat,
            _ => ForwardMethod::Dr,
        }
    }

    /// Whether replies come back through the director (NAT, full NAT).
    pub fn has_output(&self) -> bool {
        matches!(
            (self.meta & METHOD_MASK) >> METHOD_SHIFT,
            METHOD_NAT | METHOD_FULLNAT
        )
    }

    /// The in-index key of this entry.
    pub fn in_key(&self) -> IndexKey {
        let a = &self.addrs;
        IndexKey {
            meta: self.meta & IN_KEY_META,
            ports: self.ports as u32,
            addrs: if v4_key(self.meta) {
                [a[1], a[3], 0, 0]
            } else {
                [a[0], a[1], a[2], a[3]]
            },
        }
    }

    /// The out-index key: <protocol, real server, client or local>.
    pub fn out_key(&self) -> IndexKey {
        let real_port = (self.ports >> 32) as u16;
        let (peer_v6, peer_port, peer) = if self.meta & META_LOCAL != 0 {
            (
                self.meta & META_L_V6 != 0,
                (self.ports >> 48) as u16,
                [self.addrs[6], self.addrs[7]],
            )
        } else {
            (
                self.meta & META_C_V6 != 0,
                self.ports as u16,
                [self.addrs[0], self.addrs[1]],
            )
        };
        out_index_key(
            self.protocol(),
            (
                join(self.addrs[4], self.addrs[5]),
                self.meta & META_D_V6 != 0,
            ),
            real_port,
            (join(peer[0], peer[1]), peer_v6),
            peer_port,
        )
    }
}

/// The in-index key of a connection or template tuple.
pub(crate) fn in_index_key(
    protocol: u8,
    template: bool,
    client: (IpAddr, u16),
    virt: (IpAddr, u16),
) -> IndexKey {
    let (c, c6) = addr_bits(client.0);
    let (v, v6) = addr_bits(virt.0);
    let mut meta = u32::from(protocol);
    if template {
        meta |= META_TEMPLATE;
    }
    if c6 {
        meta |= META_C_V6;
    }
    if v6 {
        meta |= META_V_V6;
    }
    let [c0, c1] = split(c);
    let [v0, v1] = split(v);
    IndexKey {
        meta,
        ports: u32::from(client.1) | (u32::from(virt.1) << 16),
        addrs: if v4_key(meta) {
            [c1, v1, 0, 0]
        } else {
            [c0, c1, v0, v1]
        },
    }
}

/// [`in_index_key`] of a connection (not a template) whose client and
/// virtual addresses are IPv4, given as numbers: the same key, without
/// the detour through `IpAddr`.
#[inline(always)]
pub(crate) fn in_index_key_v4(protocol: u8, client: (u32, u16), virt: (u32, u16)) -> IndexKey {
    IndexKey {
        meta: u32::from(protocol),
        ports: u32::from(client.1) | (u32::from(virt.1) << 16),
        addrs: [u64::from(client.0), u64::from(virt.0), 0, 0],
    }
}

/// [`out_index_key`] of a reply whose addresses are IPv4, given as
/// numbers: the same key, without the detour through `IpAddr`.
#[inline(always)]
pub(crate) fn out_index_key_v4(protocol: u8, real: (u32, u16), peer: (u32, u16)) -> IndexKey {
    IndexKey {
        meta: u32::from(protocol),
        ports: u32::from(real.1) | (u32::from(peer.1) << 16),
        addrs: [0, u64::from(real.0), 0, u64::from(peer.0)],
    }
}

/// The out-index key of a reply tuple.
pub(crate) fn out_index_key(
    protocol: u8,
    real: (u128, bool),
    real_port: u16,
    peer: (u128, bool),
    peer_port: u16,
) -> IndexKey {
    let mut meta = u32::from(protocol);
    if real.1 {
        meta |= META_D_V6;
    }
    if peer.1 {
        meta |= META_L_V6;
    }
    let [r0, r1] = split(real.0);
    let [p0, p1] = split(peer.0);
    IndexKey {
        meta,
        ports: u32::from(real_port) | (u32::from(peer_port) << 16),
        addrs: [r0, r1, p0, p1],
    }
}

fn encode_method(method: ForwardMethod) -> (u32, u32, u32, u16) {
    match method {
        ForwardMethod::Dr => (METHOD_DR, 0, 0, 0),
        ForwardMethod::Nat => (METHOD_NAT, 0, 0, 0),
        ForwardMethod::FullNat => (METHOD_FULLNAT, 0, 0, 0),
        ForwardMethod::Tunnel { kind, csum } => {
            let (tun, port) = match kind {
                TunnelType::Ipip => (0, 0),
                TunnelType::Gue { port } => (1, port),
                TunnelType::Gre => (2, 0),
            };
            let csum_code = match csum {
                TunnelCsum::NoCsum => 0,
                TunnelCsum::Csum => 1,
                TunnelCsum::RemCsum => 2,
            };
            (METHOD_TUNNEL, tun, csum_code, port)
        }
    }
}

// ---- hash buckets -------------------------------------------------------

const BUCKET_FIRST_MASK: u64 = 0xffff_ffff;
const BUCKET_LOCK: u64 = 1 << 32;
const BUCKET_VERSION_SHIFT: u32 = 33;
const BUCKET_VERSION_MASK: u64 = (1 << 31) - 1;

/// A hash index: a power-of-two array of buckets, the bucket of a hash
/// chosen by its low bits.
#[derive(Debug)]
pub(crate) struct Buckets<T: ZeroInit> {
    buckets: ZeroedArray<T>,
    mask: u64,
}

impl<T: ZeroInit> Buckets<T> {
    /// An index of `buckets` buckets (a power of two, at least 1), all
    /// zero: empty.
    pub fn new(buckets: usize) -> Buckets<T> {
        let buckets = buckets.max(1).next_power_of_two();
        Buckets {
            buckets: ZeroedArray::new(buckets),
            mask: (buckets - 1) as u64,
        }
    }

    /// Number of buckets.
    pub fn len(&self) -> usize {
        self.buckets.len()
    }

    /// The bucket of `hash`.
    #[inline(always)]
    pub fn bucket(&self, hash: u64) -> &T {
        // `mask` is len - 1 of a power-of-two array: always in bounds.
        &self.buckets[(hash & self.mask) as usize]
    }
}

/// The out-index: chained buckets of one word each. A bucket word is
/// link to the first entry (index + 1 and tag) | lock bit << 32 |
/// version << 33; the version grows at every unlink so that a lock-free
/// reader can tell that the chain changed under it.
pub(crate) type Index = Buckets<AtomicU64>;

/// The in-index: cache-line buckets of lanes, see [`InBucket`].
pub(crate) type InIndex = Buckets<InBucket>;

/// Links an in-index bucket holds in its own cache line, beside its head
/// word and its summary word.
pub(crate) const IN_BUCKET_LINKS: usize = 12;

/// The nibbles of a summary word that belong to lanes.
const SUMMARY_LANES: u64 = (1 << (4 * IN_BUCKET_LINKS)) - 1;
/// 1 in every lane's nibble.
const SUMMARY_ONES: u64 = 0x1111_1111_1111_1111 & SUMMARY_LANES;
/// The top bit of every lane's nibble.
const SUMMARY_HIGHS: u64 = 0x8888_8888_8888_8888 & SUMMARY_LANES;

/// One bucket of the in-index: a cache line with a head word (as an
/// [`Index`] bucket word: the first link of an overflow chain, lock bit,
/// version), a summary word and up to [`IN_BUCKET_LINKS`] lanes, each a
/// link (index + 1 and tag; `NIL`: an empty lane). The summary holds a
/// 4-bit mini-tag of each lane's key hash (0: empty lane), so that one
/// word tells which lanes may hold a key: a lookup reads the summary,
/// then only those lanes' links, whose full tags it compares. An entry
/// goes into an empty lane; only when all lanes are taken is it chained
/// from the head word through its `next_in`. A hit thus reads the
/// bucket's line and the entry's hot line, whatever the load, with no
/// chain walk. Lanes and summary are written under the bucket's lock
/// only (a lane's link before its nibble is set, after it is cleared),
/// and the version grows at every change of the bucket.
#[derive(Debug, Default)]
#[repr(C, align(64))]
pub(crate) struct InBucket {
    /// Overflow chain's first link | lock bit << 32 | version << 33.
    pub head: AtomicU64,
    /// Lane i's mini-tag in bits 4i..4i + 4.
    summary: AtomicU64,
    /// The lanes.
    lanes: [AtomicU32; IN_BUCKET_LINKS],
}

// SAFETY: made only of atomics; all-zero is an empty, unlocked bucket;
// no drop glue.
unsafe impl ZeroInit for InBucket {}

/// Lanes of an [`InBucket`], as the top bit of each one's summary
/// nibble; iterates lane numbers in increasing order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Lanes(u64);

impl Iterator for Lanes {
    type Item = u32;

    #[inline(always)]
    fn next(&mut self) -> Option<u32> {
        if self.0 == 0 {
            return None;
        }
        let lane = self.0.trailing_zeros() / 4;
        self.0 &= self.0 - 1;
        Some(lane)
    }
}

impl InBucket {
    /// The mini-tag of a key hashed `hash` (1 to 15): hash bits that
    /// neither the bucket number (the lowest) nor the link's tag (the
    /// highest) take, for tables up to 2^27 buckets.
    #[inline(always)]
    pub fn mini_tag(hash: u64) -> u64 {
        match (hash >> 28) & 0xf {
            0 => 0xf,
            mini => mini,
        }
    }

    /// The lanes whose summary nibble is `mini` (a [`InBucket::mini_tag`]),
    /// and maybe a few others (the lane just above a yielded one, when
    /// its nibble XOR `mini` is 1: the subtraction's borrow), which may
    /// be empty: the caller compares each lane's full tag (no tag equals
    /// `NIL`). Never misses a lane. One load and five operations, no
    /// branch.
    #[inline(always)]
    pub fn matching(&self, mini: u64) -> Lanes {
        let differ = self.summary.load(Ordering::Acquire) ^ (mini * SUMMARY_ONES);
        // A nibble of `differ` is 0 where the lane's mini-tag is `mini`:
        // its top bit survives; a borrow can flag the nibble above too.
        Lanes(differ.wrapping_sub(SUMMARY_ONES) & !differ & SUMMARY_HIGHS)
    }

    /// The lanes holding no link: bit i set for empty lane i.
    pub fn empty_lanes(&self) -> u32 {
        let mut empty = 0u32;
        for lane in 0..IN_BUCKET_LINKS as u32 {
            empty |= u32::from(self.link(lane) == NIL) << lane;
        }
        empty
    }

    /// Lane `lane`'s link (`NIL` when out of range).
    #[inline(always)]
    pub fn link(&self, lane: u32) -> u32 {
        self.lanes
            .get(lane as usize)
            .map_or(NIL, |link| link.load(Ordering::Acquire))
    }

    /// Put `link`, of a key whose mini-tag is `mini`, into lane `lane`.
    /// Under the bucket's lock only.
    pub fn fill(&self, lane: u32, link: u32, mini: u64) {
        if let Some(slot) = self.lanes.get(lane as usize) {
            slot.store(link, Ordering::Release);
            let shift = 4 * lane;
            let summary = self.summary.load(Ordering::Relaxed) & !(0xf << shift);
            self.summary
                .store(summary | (mini & 0xf) << shift, Ordering::Release);
        }
    }

    /// Empty lane `lane`. Under the bucket's lock only.
    pub fn clear(&self, lane: u32) {
        if let Some(slot) = self.lanes.get(lane as usize) {
            let summary = self.summary.load(Ordering::Relaxed) & !(0xf << (4 * lane));
            self.summary.store(summary, Ordering::Release);
            slot.store(NIL, Ordering::Release);
        }
    }
}

/// First entry of a bucket word.
pub(crate) fn bucket_first(word: u64) -> u32 {
    (word & BUCKET_FIRST_MASK) as u32
}

/// Version of a bucket word.
pub(crate) fn bucket_version(word: u64) -> u64 {
    (word >> BUCKET_VERSION_SHIFT) & BUCKET_VERSION_MASK
}

/// Spin until the bucket's lock bit is ours; returns the word before.
pub(crate) fn lock_bucket(bucket: &AtomicU64) -> u64 {
    loop {
        let word = bucket.load(Ordering::Relaxed);
        if word & BUCKET_LOCK == 0
            && bucket
                .compare_exchange_weak(
                    word,
                    word | BUCKET_LOCK,
                    Ordering::Acquire,
                    Ordering::Relaxed,
                )
                .is_ok()
        {
            return word;
        }
        std::hint::spin_loop();
    }
}

/// Release the bucket with a new first entry and version.
pub(crate) fn unlock_bucket(bucket: &AtomicU64, first: u32, version: u64) {
    bucket.store(
        u64::from(first) | ((version & BUCKET_VERSION_MASK) << BUCKET_VERSION_SHIFT),
        Ordering::Release,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_bucket_fills_exactly_one_cache_line() {
        assert_eq!(std::mem::size_of::<InBucket>(), 64);
        assert_eq!(std::mem::align_of::<InBucket>(), 64);
    }

    #[test]
    fn in_bucket_summary_yields_every_lane_of_a_mini_tag_and_never_an_empty_one() {
        // Every mini-tag in every lane, among neighbours of every value.
        for mini in 1..=15u64 {
            for lane in 0..IN_BUCKET_LINKS as u32 {
                for neighbour in 1..=15u64 {
                    let bucket = InBucket::default();
                    for other in 0..IN_BUCKET_LINKS as u32 {
                        if other != lane && neighbour != mini {
                            bucket.fill(other, 100 + other, neighbour);
                        }
                    }
                    bucket.fill(lane, 7, mini);
                    let found: Vec<u32> = bucket.matching(mini).collect();
                    assert!(found.contains(&lane), "{mini} {lane} {neighbour}");
                    // Others only just above a yielded lane, where the
                    // borrow flags a nibble differing from `mini` by 1.
                    for &extra in found.iter().filter(|&&l| l != lane) {
                        let nibble = if bucket.link(extra) == NIL {
                            0
                        } else {
                            neighbour
                        };
                        assert!(found.contains(&(extra - 1)), "{mini} {lane} {extra}");
                        assert_eq!(nibble ^ mini, 1, "{mini} {lane} {extra}");
                    }
                }
            }
        }
        let bucket = InBucket::default();
        assert_eq!(bucket.matching(3).count(), 0);
        assert_eq!(bucket.empty_lanes(), (1 << IN_BUCKET_LINKS) - 1);
        bucket.fill(0, 5, 3);
        bucket.fill(11, 6, 3);
        bucket.fill(4, 8, 9);
        assert_eq!(bucket.matching(3).collect::<Vec<_>>(), [0, 11]);
        assert_eq!(bucket.matching(9).collect::<Vec<_>>(), [4]);
        assert_eq!(bucket.link(11), 6);
        assert_eq!(bucket.link(12), NIL);
        bucket.clear(0);
        assert_eq!(bucket.link(0), NIL);
        assert_eq!(bucket.matching(3).collect::<Vec<_>>(), [11]);
        assert_eq!(
            bucket.empty_lanes(),
            ((1 << IN_BUCKET_LINKS) - 1) & !(1 << 11 | 1 << 4)
        );
        for hash in [0u64, u64::MAX, 0x1234_5678_9abc_def0] {
            assert!((1..=15).contains(&InBucket::mini_tag(hash)));
        }
    }

    #[test]
    fn hot_part_fills_exactly_one_cache_line_and_entry_stays_112_bytes() {
        assert_eq!(std::mem::size_of::<SlotHot>(), 64);
        assert_eq!(std::mem::align_of::<SlotHot>(), 64);
        assert_eq!(std::mem::size_of::<SlotCold>(), 48);
        assert_eq!(SLOT_BYTES, 112);
    }

    #[test]
    fn every_hot_part_starts_a_cache_line_in_small_and_huge_page_arrays() {
        // 10 entries come from the heap, 40 000 (2.5 MiB) from a mapping.
        for len in [10, 40_000] {
            let slots = Slots::new(len);
            assert_eq!(slots.len(), len);
            for slot in slots.iter() {
                assert_eq!(std::ptr::from_ref(slot.hot) as usize % 64, 0);
            }
            let last = slots.get(len - 1).expect("last entry");
            assert!(slots.get(len).is_none());
            last.cold.dest.store(7, Ordering::Relaxed);
            assert_eq!(last.read_fields().dest, 7);
        }
    }

    #[test]
    fn with_local_equals_fields_built_with_the_local_address() {
        let v4 = |a: [u8; 4]| IpAddr::from(a);
        let v6 = |last: u16| IpAddr::from([0x2001, 0xdb8, 0, 0, 0, 0, 0, last]);
        for (client, virt, real) in [
            (v4([203, 0, 113, 7]), v4([192, 0, 2, 10]), v4([10, 0, 0, 2])),
            (v6(7), v6(10), v6(2)),
            (v4([203, 0, 113, 7]), v4([192, 0, 2, 10]), v6(2)),
        ] {
            let build = |local| {
                Fields::new(
                    IPPROTO_TCP_FOR_TEST,
                    false,
                    (client, 40000),
                    (virt, 80),
                    (real, 8080),
                    local,
                    ForwardMethod::FullNat,
                    3,
                    0,
                )
            };
            let probe = build(None);
            for local in [(v4([10, 0, 0, 1]), 1024), (v6(1), 65535), (v4([0; 4]), 0)] {
                let expected = build(Some(local));
                assert_eq!(probe.with_local(local.0, local.1), expected);
                // Probing again from a probe that already has a local
                // address replaces it whole.
                let other = probe.with_local(v6(9), 7);
                assert_eq!(other.with_local(local.0, local.1), expected);
                assert_eq!(expected.local(), Some(local));
            }
        }
    }

    #[test]
    fn fields_read_back_as_written_in_every_family_mix_and_only_all_ipv4_is_compact() {
        let v4 = |a: [u8; 4]| IpAddr::from(a);
        let v6 = |last: u16| IpAddr::from([0x2001, 0xdb8, 0, 0, 0, 0, 0, last]);
        let slots = Slots::new(1);
        let slot = slots.get(0).expect("entry");
        let addrs = [v4([203, 0, 113, 7]), v6(7)];
        for client in addrs {
            for virt in addrs {
                for real in addrs {
                    for local in [None, Some((v4([10, 0, 0, 1]), 1024)), Some((v6(1), 2048))] {
                        let fields = Fields::new(
                            IPPROTO_TCP_FOR_TEST,
                            false,
                            (client, 40000),
                            (virt, 80),
                            (real, 8080),
                            local,
                            ForwardMethod::FullNat,
                            0xdead_beef,
                            0x1234_5678,
                        );
                        slot.write_fields(&fields);
                        let case = format!("{client} {virt} {real} {local:?}");
                        assert_eq!(slot.read_fields(), fields, "{case}");
                        assert_eq!(slot.read_in_key(), fields.in_key(), "{case}");
                        // `IndexKey` equality tells apart keys differing
                        // in any one word.
                        let out = fields.out_key();
                        let mut outs = [out; 6];
                        outs[0].meta ^= META_L_V6;
                        outs[1].ports ^= 1 << 16;
                        for (word, other) in outs[2..].iter_mut().enumerate() {
                            other.addrs[word] ^= 1;
                        }
                        for other in outs {
                            assert!(fields.out_key() != other, "{case} {other:?}");
                        }
                        let key = fields.in_key();
                        let mut others = [key; 6];
                        others[0].meta ^= 1;
                        others[1].ports ^= 1;
                        for (word, other) in others[2..].iter_mut().enumerate() {
                            other.addrs[word] ^= 1;
                        }
                        for other in others {
                            assert!(slot.read_in_key() != other, "{case} {other:?}");
                        }
                        // Its `Hash` covers every word too: equal keys
                        // hash alike, a one-word change hashes apart
                        // (a 64-bit collision is a 2^-64 chance).
                        let hasher = ahash::RandomState::new();
                        assert_eq!(hasher.hash_one(slot.read_in_key()), hasher.hash_one(key));
                        for other in others.iter().chain(outs.iter()) {
                            assert_ne!(hasher.hash_one(other), hasher.hash_one(key), "{case}");
                        }
                        assert_eq!(
                            fields.in_key(),
                            in_index_key(IPPROTO_TCP_FOR_TEST, false, (client, 40000), (virt, 80)),
                            "{case}"
                        );
                        let all_v4 = client.is_ipv4()
                            && virt.is_ipv4()
                            && real.is_ipv4()
                            && local.is_none_or(|(l, _)| l.is_ipv4());
                        let compact = slot.meta.load(Ordering::Relaxed) & META_COMPACT != 0;
                        assert_eq!(compact, all_v4, "{case}");
                        if compact {
                            // The hot part alone holds it: a cold part
                            // changed behind it is not read.
                            slot.cold.dest.store(1, Ordering::Relaxed);
                            slot.cold.far_addrs[1].store(1, Ordering::Relaxed);
                            assert_eq!(slot.read_fields(), fields, "{case}");
                        }
                    }
                }
            }
        }
    }

    const IPPROTO_TCP_FOR_TEST: u8 = 6;
}
