//! Persistence-engine templates: templates keyed, as IPVS's `--pe sip`
//! keys them, by <protocol, client & netmask, virtual address, virtual
//! port> **and** the engine's data (the SIP Call-ID), matched exactly
//! (`ip_vs_sip_ct_match`).
//!
//! Storage stays bounded and allocation-free per packet. A Call-ID lives in
//! a side arena of fixed 256-byte slots (a length byte and up to
//! [`MAX_CALL_ID`] bytes, IPVS's `IP_VS_PEDATA_MAXLEN`), at most
//! [`MAX_PE_SLOTS`] of them, mapped once with the table and touched only
//! by SIP traffic; the entry itself keeps its 112-byte layout:
//!
//! - meta gains [`META_PE`] (part of the in-index key, so address
//!   templates and Call-ID templates never match each other);
//! - the in-index client address is the masked client XOR a keyed 128-bit
//!   hash of the Call-ID (so templates of one client spread over the
//!   buckets and distinct Call-IDs have distinct keys);
//! - the far "local address" words, unused by templates, hold the masked
//!   client itself (for listings and the exact match);
//! - the fourth port (unused by templates) holds the arena slot.
//!
//! A lookup finds the entry by its key with the table's lock-free lookup,
//! then compares the stored client and Call-ID bytes with the packet's
//! and re-reads the entry's sequence counter: a slot reused meanwhile is a
//! miss, never a wrong match. A slot returns to the arena only after its
//! entry's sequence counter moved (expiry or a failed insert). When every
//! slot is taken a new Call-ID template is refused like a full table
//! (counted in [`PeStats::arena_full`]); longer Call-IDs never reach this
//! file (the engine falls back to address persistence and counts them).

use std::net::IpAddr;
use std::sync::atomic::{fence, AtomicU32, AtomicU64, Ordering};

use ahash::RandomState;
use uvs_conf::{ForwardMethod, PersistenceEngine};

use super::{ConnRef, ConnTable, InsertError, TemplateKey};
use crate::conn::slot::{addr_bits, Fields, IndexKey, META_C_V6, META_PE};
use crate::conn::storage::ZeroedArray;
use crate::dest::DestId;
use crate::pe::sip::MAX_CALL_ID;
use crate::time::Millis;

/// Most Call-ID slots an arena has (the slot number is kept in 16 bits).
pub const MAX_PE_SLOTS: usize = 1 << 16;
/// Words of one slot: 256 bytes.
const SLOT_WORDS: usize = 32;
/// Link value meaning "end of list".
const NIL: u32 = 0;

/// Counters of the persistence-engine arena.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PeStats {
    /// Call-ID slots in use.
    pub in_use: u64,
    /// Slots in the arena.
    pub slots: u64,
    /// Call-ID templates refused because every slot was taken.
    pub arena_full: u64,
    /// Datagrams whose Call-ID was longer than [`MAX_CALL_ID`] (they fall
    /// back to address persistence, as in IPVS).
    pub call_id_too_long: u64,
}

/// One template's engine data as a listing copies it out (no allocation).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct PeListing {
    /// The engine (`sip`).
    pub engine: PersistenceEngine,
    len: u8,
    bytes: [u8; MAX_CALL_ID],
}

impl PeListing {
    /// The engine's key (the Call-ID bytes).
    pub fn data(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }
}

impl std::fmt::Debug for PeListing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeListing")
            .field("engine", &self.engine)
            .field("data", &String::from_utf8_lossy(self.data()))
            .finish()
    }
}

/// Fixed Call-ID slots with a lock-free free list.
pub(crate) struct PeArena {
    words: ZeroedArray<AtomicU64>,
    /// Free-list links (slot + 1).
    links: ZeroedArray<AtomicU64>,
    /// Free list head: tag << 32 | (slot + 1).
    free_head: AtomicU64,
    /// Slots never handed out start here.
    fresh: AtomicU32,
    in_use: AtomicU64,
    full: AtomicU64,
    too_long: AtomicU64,
    hash_a: RandomState,
    hash_b: RandomState,
}

impl PeArena {
    /// An arena of `min(capacity, MAX_PE_SLOTS)` slots.
    pub fn new(capacity: usize) -> PeArena {
        let slots = capacity.clamp(1, MAX_PE_SLOTS);
        PeArena {
            words: ZeroedArray::new(slots * SLOT_WORDS),
            links: ZeroedArray::new(slots),
            free_head: AtomicU64::new(u64::from(NIL)),
            fresh: AtomicU32::new(0),
            in_use: AtomicU64::new(0),
            full: AtomicU64::new(0),
            too_long: AtomicU64::new(0),
            hash_a: RandomState::new(),
            hash_b: RandomState::new(),
        }
    }

    fn slots(&self) -> usize {
        self.links.len()
    }

    fn alloc(&self) -> Option<u32> {
        let mut head = self.free_head.load(Ordering::Acquire);
        loop {
            let first = (head & 0xffff_ffff) as u32;
            if first == NIL {
                break;
            }
            let next = self.links.get(first as usize - 1)?.load(Ordering::Relaxed);
            let tag = (head >> 32).wrapping_add(1);
            match self.free_head.compare_exchange_weak(
                head,
                (tag << 32) | (next & 0xffff_ffff),
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => {
                    self.in_use.fetch_add(1, Ordering::Relaxed);
                    return Some(first - 1);
                }
                Err(current) => head = current,
            }
        }
        let slot = self
            .fresh
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                ((n as usize) < self.slots()).then_some(n + 1)
            })
            .ok()?;
        self.in_use.fetch_add(1, Ordering::Relaxed);
        Some(slot)
    }

    fn release(&self, slot: u32) {
        let Some(link) = self.links.get(slot as usize) else {
            return;
        };
        let mut head = self.free_head.load(Ordering::Acquire);
        loop {
            link.store(head & 0xffff_ffff, Ordering::Relaxed);
            let tag = (head >> 32).wrapping_add(1);
            match self.free_head.compare_exchange_weak(
                head,
                (tag << 32) | u64::from(slot + 1),
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => {
                    self.in_use.fetch_sub(1, Ordering::Relaxed);
                    return;
                }
                Err(current) => head = current,
            }
        }
    }

    fn slot_words(&self, slot: u32) -> Option<&[AtomicU64]> {
        let start = (slot as usize).checked_mul(SLOT_WORDS)?;
        self.words.get(start..start + SLOT_WORDS)
    }

    /// Write `data` (≤ [`MAX_CALL_ID`] bytes) into `slot`.
    fn write(&self, slot: u32, packed: &[u64; SLOT_WORDS]) {
        let Some(words) = self.slot_words(slot) else {
            return;
        };
        // Readers that see these words must also see the sequence change
        // of the entry that held the slot before (see the module doc).
        fence(Ordering::Release);
        for (word, value) in words.iter().zip(packed) {
            word.store(*value, Ordering::Relaxed);
        }
    }

    /// Whether `slot` holds `packed` (inside a sequence-checked read).
    fn holds(&self, slot: u32, packed: &[u64; SLOT_WORDS]) -> bool {
        let Some(words) = self.slot_words(slot) else {
            return false;
        };
        let used = (usize::from(packed_len(packed)) + 1).div_ceil(8);
        words
            .iter()
            .zip(packed)
            .take(used)
            .all(|(word, value)| word.load(Ordering::Relaxed) == *value)
    }

    fn read(&self, slot: u32) -> Option<[u64; SLOT_WORDS]> {
        let words = self.slot_words(slot)?;
        let mut out = [0u64; SLOT_WORDS];
        for (value, word) in out.iter_mut().zip(words) {
            *value = word.load(Ordering::Relaxed);
        }
        Some(out)
    }

    /// The keyed 128-bit hash of a Call-ID.
    fn hash(&self, data: &[u8]) -> u128 {
        (u128::from(self.hash_a.hash_one(data)) << 64) | u128::from(self.hash_b.hash_one(data))
    }
}

impl std::fmt::Debug for PeArena {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeArena")
            .field("slots", &self.slots())
            .field("in_use", &self.in_use.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

/// `data` (at most [`MAX_CALL_ID`] bytes, longer is cut) as slot words:
/// the length in byte 0, the bytes after it.
fn pack(data: &[u8]) -> [u64; SLOT_WORDS] {
    let data = &data[..data.len().min(MAX_CALL_ID)];
    let mut bytes = [0u8; SLOT_WORDS * 8];
    bytes[0] = data.len() as u8;
    bytes[1..=data.len()].copy_from_slice(data);
    let mut out = [0u64; SLOT_WORDS];
    for (word, chunk) in out.iter_mut().zip(bytes.chunks_exact(8)) {
        let mut le = [0u8; 8];
        le.copy_from_slice(chunk);
        *word = u64::from_le_bytes(le);
    }
    out
}

fn packed_len(packed: &[u64; SLOT_WORDS]) -> u8 {
    (packed[0] & 0xff) as u8
}

fn unpack(packed: &[u64; SLOT_WORDS]) -> (u8, [u8; MAX_CALL_ID]) {
    let mut bytes = [0u8; SLOT_WORDS * 8];
    for (chunk, word) in bytes.chunks_exact_mut(8).zip(packed) {
        chunk.copy_from_slice(&word.to_le_bytes());
    }
    let mut out = [0u8; MAX_CALL_ID];
    out.copy_from_slice(&bytes[1..=MAX_CALL_ID]);
    (bytes[0].min(MAX_CALL_ID as u8), out)
}

fn split(bits: u128) -> [u64; 2] {
    [(bits >> 64) as u64, bits as u64]
}

/// The slot a Call-ID template's fields point to.
fn slot_of(fields: &Fields) -> u32 {
    (fields.ports >> 48) as u32
}

/// The masked client of a persistence-engine template (its key holds
/// the client mixed with the Call-ID hash), or `None` for other entries.
pub(crate) fn engine_client(fields: &Fields) -> Option<IpAddr> {
    (fields.meta & META_PE != 0).then(|| {
        let bits = (u128::from(fields.addrs[6]) << 64) | u128::from(fields.addrs[7]);
        if fields.meta & META_C_V6 != 0 {
            IpAddr::V6(bits.into())
        } else {
            // The low 32 bits hold the IPv4 address; truncation is the point.
            IpAddr::V4((bits as u32).into())
        }
    })
}

impl ConnTable {
    /// The in-index key of `key`'s template for Call-ID hash `hash`.
    fn engine_index_key(key: &TemplateKey, hash: u128) -> IndexKey {
        let mut index_key = super::in_index_key(
            key.protocol,
            true,
            (key.caddr_masked, 0),
            (key.vaddr, key.vport),
        );
        // With META_PE the key always has the four-word layout (client
        // high, low, virtual high, low), also for IPv4, whose in-key
        // otherwise keeps only the low words.
        let [c0, c1] = split(addr_bits(key.caddr_masked).0);
        let [v0, v1] = split(addr_bits(key.vaddr).0);
        let [h0, h1] = split(hash);
        index_key.meta |= META_PE;
        index_key.addrs = [c0 ^ h0, c1 ^ h1, v0, v1];
        index_key
    }

    /// A valid persistence template of `key` made for SIP Call-ID
    /// `call_id` (`ip_vs_sip_ct_match`: protocol, masked client, virtual
    /// address and port, and the Call-ID bytes, exactly). Lock-free; the
    /// same validity and expiry rules as
    /// [`lookup_template`](ConnTable::lookup_template).
    pub fn lookup_template_sip(
        &self,
        key: &TemplateKey,
        call_id: &[u8],
        now: Millis,
    ) -> Option<ConnRef<'_>> {
        if call_id.len() > MAX_CALL_ID {
            return None;
        }
        let index_key = Self::engine_index_key(key, self.pe.hash(call_id));
        let found = self.find(super::Link::In, &index_key, now)?;
        let packed = pack(call_id);
        let (client, _) = addr_bits(key.caddr_masked);
        let [c0, c1] = split(client);
        let same = found.fields.addrs[6] == c0
            && found.fields.addrs[7] == c1
            && self.pe.holds(slot_of(&found.fields), &packed);
        fence(Ordering::Acquire);
        let slot = self.slot(found.index)?;
        (same && slot.seq.load(Ordering::Relaxed) == found.seq).then_some(found)
    }

    /// Record a persistence template for `key` and SIP Call-ID `call_id`
    /// pointing at `dest`, as [`insert_template`](ConnTable::insert_template)
    /// does for address templates. A Call-ID longer than [`MAX_CALL_ID`]
    /// or a full arena is refused with [`InsertError::TableFull`] (the
    /// latter counted in [`PeStats::arena_full`]).
    #[allow(clippy::too_many_arguments)]
    pub fn insert_template_sip(
        &self,
        key: &TemplateKey,
        call_id: &[u8],
        dest: DestId,
        daddr: IpAddr,
        dport: u16,
        timeout_secs: u32,
        now: Millis,
    ) -> Result<ConnRef<'_>, InsertError> {
        if call_id.len() > MAX_CALL_ID {
            return Err(InsertError::TableFull);
        }
        let counters = self.dests.counters(dest).ok_or(InsertError::UnknownDest)?;
        let Some(arena_slot) = self.pe.alloc() else {
            self.pe.full.fetch_add(1, Ordering::Relaxed);
            return Err(InsertError::TableFull);
        };
        if !self.dests.try_acquire(dest) {
            self.pe.release(arena_slot);
            return Err(InsertError::UnknownDest);
        }
        self.pe.write(arena_slot, &pack(call_id));
        let hash = self.pe.hash(call_id);
        let (client, _) = addr_bits(key.caddr_masked);
        let build = |_local: Option<(IpAddr, u16)>| {
            let mut fields = Fields::new(
                key.protocol,
                true,
                (key.caddr_masked, 0),
                (key.vaddr, key.vport),
                (daddr, dport),
                None,
                ForwardMethod::Dr,
                dest.0,
                timeout_secs,
            );
            let [h0, h1] = split(hash);
            let [c0, c1] = split(client);
            fields.meta |= META_PE;
            fields.addrs[0] ^= h0;
            fields.addrs[1] ^= h1;
            fields.addrs[6] = c0;
            fields.addrs[7] = c1;
            fields.ports = (fields.ports & 0x0000_ffff_ffff_ffff) | (u64::from(arena_slot) << 48);
            fields
        };
        let inserted = self.insert_entry(
            now,
            build,
            false,
            false,
            0,
            now.plus_secs(timeout_secs),
            |slot| {
                slot.cold.control.store(0, Ordering::Relaxed);
                self.bind_dest(counters, true);
            },
        );
        if inserted.is_err() {
            self.dests.release(dest);
            self.pe.release(arena_slot);
        }
        inserted
    }

    /// Give a retired entry's Call-ID slot back (its sequence counter has
    /// moved, so no lookup can match the slot's old bytes any more).
    pub(super) fn release_engine_data(&self, fields: &Fields) {
        if fields.meta & META_PE != 0 {
            self.pe.release(slot_of(fields));
        }
    }

    /// A persistence-engine template's data for a listing (inside the
    /// caller's sequence-checked read of the entry).
    pub(super) fn engine_listing(&self, fields: &Fields) -> Option<PeListing> {
        if fields.meta & META_PE == 0 {
            return None;
        }
        let packed = self.pe.read(slot_of(fields))?;
        let (len, bytes) = unpack(&packed);
        Some(PeListing {
            engine: PersistenceEngine::Sip,
            len,
            bytes,
        })
    }

    /// Counters of the Call-ID arena.
    pub fn pe_stats(&self) -> PeStats {
        PeStats {
            in_use: self.pe.in_use.load(Ordering::Relaxed),
            slots: self.pe.slots() as u64,
            arena_full: self.pe.full.load(Ordering::Relaxed),
            call_id_too_long: self.pe.too_long.load(Ordering::Relaxed),
        }
    }

    /// Count a datagram whose Call-ID was too long to key a template.
    pub fn note_call_id_too_long(&self) {
        self.pe.too_long.fetch_add(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pack_and_unpack_keep_every_length() {
        for len in [0usize, 1, 7, 8, 9, 63, 254, 255] {
            let data: Vec<u8> = (0..len).map(|i| (i % 251) as u8 + 1).collect();
            let packed = pack(&data);
            assert_eq!(usize::from(packed_len(&packed)), len);
            let (n, bytes) = unpack(&packed);
            assert_eq!(&bytes[..usize::from(n)], &data[..]);
        }
    }

    #[test]
    fn arena_hands_out_every_slot_once_then_refuses_and_reuses_released_ones() {
        let arena = PeArena::new(3);
        let taken: Vec<u32> = (0..3).map(|_| arena.alloc().unwrap()).collect();
        assert_eq!(taken, vec![0, 1, 2]);
        assert_eq!(arena.alloc(), None);
        arena.release(1);
        assert_eq!(arena.alloc(), Some(1));
        assert_eq!(arena.alloc(), None);
        arena.release(2);
        arena.release(0);
        let mut again = vec![arena.alloc().unwrap(), arena.alloc().unwrap()];
        again.sort_unstable();
        assert_eq!(again, vec![0, 2]);
        assert_eq!(arena.in_use.load(Ordering::Relaxed), 3);
    }

    #[test]
    fn holds_compares_length_and_bytes() {
        let arena = PeArena::new(2);
        let slot = arena.alloc().unwrap();
        arena.write(slot, &pack(b"abc@host"));
        assert!(arena.holds(slot, &pack(b"abc@host")));
        assert!(!arena.holds(slot, &pack(b"abc@hosu")));
        assert!(!arena.holds(slot, &pack(b"abc@hos")));
        assert!(!arena.holds(slot, &pack(b"abc@host2")));
    }
}
