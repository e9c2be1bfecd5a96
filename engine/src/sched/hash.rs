//! The hashes IPVS's schedulers use.
//!
//! - [`hsiphash`]: the kernel's `hsiphash()` as built on 64-bit hosts
//!   (`lib/siphash.c`): there "HalfSipHash-1-3" is really SipHash-1-3 on
//!   64-bit words with a 2×64-bit key, and the 64-bit result
//!   `(v0 ^ v1) ^ (v2 ^ v3)` is truncated to 32 bits. mh hashes with it.
//! - [`hash_index`]: the multiplicative hash of dh, sh and lblc
//!   (`(x · 2654435761) & mask`, Knuth's golden-ratio constant).
//! - [`hash_32`]: the kernel's `hash_32(x, bits)` (lblc/lblcr buckets).

/// A 2×64-bit hsiphash key (`hsiphash_key_t` on a 64-bit kernel).
pub type HsiphashKey = [u64; 2];

fn sip_round(v: &mut [u64; 4]) {
    v[0] = v[0].wrapping_add(v[1]);
    v[1] = v[1].rotate_left(13);
    v[1] ^= v[0];
    v[0] = v[0].rotate_left(32);
    v[2] = v[2].wrapping_add(v[3]);
    v[3] = v[3].rotate_left(16);
    v[3] ^= v[2];
    v[0] = v[0].wrapping_add(v[3]);
    v[3] = v[3].rotate_left(21);
    v[3] ^= v[0];
    v[2] = v[2].wrapping_add(v[1]);
    v[1] = v[1].rotate_left(17);
    v[1] ^= v[2];
    v[2] = v[2].rotate_left(32);
}

/// `hsiphash(data, len, key)` of a 64-bit Linux kernel.
pub fn hsiphash(data: &[u8], key: &HsiphashKey) -> u32 {
    let mut v = [
        0x736f_6d65_7073_6575u64 ^ key[0],
        0x646f_7261_6e64_6f6du64 ^ key[1],
        0x6c79_6765_6e65_7261u64 ^ key[0],
        0x7465_6462_7974_6573u64 ^ key[1],
    ];
    let mut b = (data.len() as u64) << 56;
    let mut words = data.chunks_exact(8);
    for word in &mut words {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(word);
        let m = u64::from_le_bytes(bytes);
        v[3] ^= m;
        sip_round(&mut v);
        v[0] ^= m;
    }
    for (i, byte) in words.remainder().iter().enumerate() {
        b |= u64::from(*byte) << (8 * i);
    }
    v[3] ^= b;
    sip_round(&mut v);
    v[0] ^= b;
    v[2] ^= 0xff;
    sip_round(&mut v);
    sip_round(&mut v);
    sip_round(&mut v);
    ((v[0] ^ v[1]) ^ (v[2] ^ v[3])) as u32
}

/// `hsiphash(&v, sizeof(u32), key)` of a host-order `u32` as a
/// little-endian kernel stores it (x86-64, arm64).
pub fn hsiphash_u32(value: u32, key: &HsiphashKey) -> u32 {
    hsiphash(&value.to_le_bytes(), key)
}

/// The golden-ratio multiplier of dh, sh and lblc.
pub const GOLDEN_MULTIPLIER: u32 = 2_654_435_761;

/// `(x · 2654435761) & mask`: the low bits of the kernel's 64-bit product
/// equal those of the wrapping 32-bit one.
pub fn hash_index(x: u32, mask: u32) -> u32 {
    x.wrapping_mul(GOLDEN_MULTIPLIER) & mask
}

/// The kernel's `hash_32(x, bits)`: `(x · 0x61C88647) >> (32 − bits)`.
pub fn hash_32(x: u32, bits: u32) -> u32 {
    if bits == 0 {
        return 0;
    }
    x.wrapping_mul(0x61C8_8647) >> (32 - bits.min(32))
}
