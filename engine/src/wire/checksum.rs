//! The Internet checksum (RFC 1071) and its incremental update (RFC 1624).
//!
//! Sums are carried as `u32` accumulators of 16-bit big-endian words and
//! folded at the end; [`finish`] turns an accumulator into the value
//! written on the wire. [`update`] applies RFC 1624's equation 3,
//! `HC' = ~(~HC + ~m + m')`, for any even-length field that changed
//! (addresses, ports, a TTL word), so a rewrite costs a few additions
//! instead of a pass over the payload.

use std::net::IpAddr;

/// Add `data` (big-endian 16-bit words; an odd last byte is padded with
/// zero) to the accumulator `acc`. The result is folded to at most
/// 16 bits (the same one's-complement value), so callers may go on
/// adding to it.
pub fn add(acc: u32, data: &[u8]) -> u32 {
    // Four bytes at a time into 64 bits: a big-endian 32-bit word is
    // congruent to the sum of its two 16-bit halves modulo 0xffff, and
    // 2^32 words cannot overflow the sum.
    let mut sum = u64::from(acc);
    let mut quads = data.chunks_exact(4);
    for quad in &mut quads {
        if let &[a, b, c, d] = quad {
            sum += u64::from(u32::from_be_bytes([a, b, c, d]));
        }
    }
    sum += match *quads.remainder() {
        [a, b, c] => u64::from(u16::from_be_bytes([a, b])) + (u64::from(c) << 8),
        [a, b] => u64::from(u16::from_be_bytes([a, b])),
        [a] => u64::from(a) << 8,
        _ => 0,
    };
    u32::from(fold64(sum))
}

/// Fold a 64-bit sum of words into 16 bits (one's-complement sum).
#[inline]
fn fold64(mut sum: u64) -> u16 {
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u16
}

/// Fold the accumulator's carries into 16 bits (one's-complement sum).
pub fn fold(mut acc: u32) -> u16 {
    while acc > 0xffff {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    acc as u16
}

/// The checksum to write on the wire for accumulator `acc`.
pub fn finish(acc: u32) -> u16 {
    !fold(acc)
}

/// The full checksum of `data` (e.g. an IPv4 header with its checksum
/// field zeroed).
pub fn of(data: &[u8]) -> u16 {
    finish(add(0, data))
}

/// The pseudo-header accumulator for TCP/UDP/ICMPv6 over IPv4 or IPv6.
/// Mixed address families give the IPv4 rule with the IPv6 addresses'
/// bytes, which callers never ask for.
pub fn pseudo_header(src: IpAddr, dst: IpAddr, protocol: u8, l4_len: u32) -> u32 {
    let mut acc = match src {
        IpAddr::V4(a) => add(0, &a.octets()),
        IpAddr::V6(a) => add(0, &a.octets()),
    };
    acc = match dst {
        IpAddr::V4(a) => add(acc, &a.octets()),
        IpAddr::V6(a) => add(acc, &a.octets()),
    };
    acc = acc.wrapping_add(u32::from(protocol));
    acc.wrapping_add(l4_len >> 16).wrapping_add(l4_len & 0xffff)
}

/// RFC 1624 eqn. 3: the checksum `check` after the bytes `old` of the
/// covered data became `new`. Both must have the same even length and
/// start at an even offset of the covered data.
pub fn update(check: u16, old: &[u8], new: &[u8]) -> u16 {
    // ~m summed as (0xffff - m) per word; no fold until the end.
    let mut sum = u64::from(!check);
    for pair in old.chunks_exact(2) {
        if let &[a, b] = pair {
            sum += u64::from(!u16::from_be_bytes([a, b]));
        }
    }
    !fold64(u64::from(add(fold64(sum).into(), new)))
}

/// [`update`] for one 16-bit word.
#[inline]
pub fn update_u16(check: u16, old: u16, new: u16) -> u16 {
    // The same sum as `update`, without the slice walk: at most
    // 3 × 0xffff, so two folds reach 16 bits.
    let acc = u32::from(!check) + u32::from(!old) + u32::from(new);
    let acc = (acc & 0xffff) + (acc >> 16);
    let acc = (acc & 0xffff) + (acc >> 16);
    !(acc as u16)
}

/// [`update`] for one 32-bit field (an IPv4 address).
#[inline]
pub fn update_u32(check: u16, old: u32, new: u32) -> u16 {
    // At most 5 × 0xffff: two folds reach 16 bits.
    let acc = u32::from(!check) + (!old >> 16) + (!old & 0xffff) + (new >> 16) + (new & 0xffff);
    let acc = (acc & 0xffff) + (acc >> 16);
    let acc = (acc & 0xffff) + (acc >> 16);
    !(acc as u16)
}

/// [`update`] for an address change (both of the same family; a family
/// change is not an in-place rewrite and leaves `check` as it is).
pub fn update_addr(check: u16, old: IpAddr, new: IpAddr) -> u16 {
    match (old, new) {
        (IpAddr::V4(o), IpAddr::V4(n)) => update_u32(check, u32::from(o), u32::from(n)),
        (IpAddr::V6(o), IpAddr::V6(n)) => update(check, &o.octets(), &n.octets()),
        _ => check,
    }
}

/// Does `data` (checksum field included) sum to all ones, i.e. verify?
pub fn verifies(acc_with_data: u32) -> bool {
    fold(acc_with_data) == 0xffff
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn update_u32_matches_the_slice_update() {
        let words = [
            0u32,
            1,
            0xffff,
            0x1_0000,
            0x7fff_ffff,
            0xffff_fffe,
            0xffff_ffff,
            0xc000_0201,
            0x0a00_0001,
        ];
        for check in [0u16, 1, 0x7fff, 0xfffe, 0xffff, 0x1234] {
            for old in words {
                for new in words {
                    assert_eq!(
                        update_u32(check, old, new),
                        update(check, &old.to_be_bytes(), &new.to_be_bytes()),
                        "check {check:#x} old {old:#x} new {new:#x}"
                    );
                }
            }
        }
    }

    #[test]
    fn update_u16_matches_the_slice_update() {
        let words = [
            0u16, 1, 0x00ff, 0x0100, 0x7fff, 0x8000, 0xfffe, 0xffff, 0x1234, 0xabcd,
        ];
        for check in words {
            for old in words {
                for new in words {
                    assert_eq!(
                        update_u16(check, old, new),
                        update(check, &old.to_be_bytes(), &new.to_be_bytes()),
                        "check {check:#x} old {old:#x} new {new:#x}"
                    );
                }
            }
        }
    }

    #[test]
    fn rfc1071_example_sum() {
        // RFC 1071 §3 example: 00 01 f2 03 f4 f5 f6 f7 sums to ddf2.
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(fold(add(0, &data)), 0xddf2);
        assert_eq!(of(&data), !0xddf2);
    }

    #[test]
    fn incremental_update_matches_full_recompute() {
        let mut data = [
            0x45u8, 0, 0, 60, 0x12, 0x34, 0x40, 0, 64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
        ];
        let check = of(&data);
        let old = [10u8, 0, 0, 2];
        let new = [192u8, 168, 200, 77];
        data[16..20].copy_from_slice(&new);
        assert_eq!(update(check, &old, &new), of(&data));
    }

    /// The textbook sum: 16-bit words, carries folded at the end.
    fn reference_sum(acc: u32, data: &[u8]) -> u16 {
        let mut sum = u64::from(acc);
        for (i, byte) in data.iter().enumerate() {
            sum += u64::from(*byte) << if i % 2 == 0 { 8 } else { 0 };
        }
        fold64(sum)
    }

    #[test]
    fn add_by_quads_equals_the_word_sum_for_every_length_and_start() {
        let mut x = 0x2545_f491_4f6c_dd1d_u64;
        let data: Vec<u8> = (0..1600)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 24) as u8
            })
            .collect();
        for len in (0..80).chain([1499, 1500, 1599]) {
            for acc in [0u32, 1, 0xffff, 0x3_fffd] {
                let got = add(acc, &data[..len]);
                assert!(got <= 0xffff, "folded");
                assert_eq!(
                    fold(got),
                    reference_sum(acc, &data[..len]),
                    "len {len} acc {acc:#x}"
                );
            }
        }
        // All ones stay all ones (no fold to zero), zero stays zero.
        assert_eq!(fold(add(0, &[0xff; 64])), 0xffff);
        assert_eq!(add(0, &[0; 64]), 0);
    }

    #[test]
    fn odd_length_pads_last_byte() {
        assert_eq!(fold(add(0, &[0x12, 0x34, 0x56])), 0x1234 + 0x5600);
    }
}
