//! The header views and emitters against etherparse as an oracle.

use std::net::Ipv4Addr;

use etherparse::{IpNumber, Ipv4Header};
use uvs_engine::wire::{checksum, ipv4, ipv6, tcp, tunnel, udp, WireError};

#[test]
fn ipv4_repr_emits_what_etherparse_builds() {
    let repr = ipv4::Repr {
        src: Ipv4Addr::new(10, 1, 2, 3),
        dst: Ipv4Addr::new(192, 0, 2, 9),
        protocol: 17,
        payload_len: 100,
        ttl: 33,
        tos: 0xb8,
        ident: 0xbeef,
        dont_frag: true,
    };
    let mut ours = [0xa5u8; 20];
    repr.emit(&mut ours).unwrap();
    let mut theirs = Ipv4Header::new(100, 33, IpNumber(17), [10, 1, 2, 3], [192, 0, 2, 9]).unwrap();
    theirs.dscp = etherparse::IpDscp::try_new(0xb8 >> 2).unwrap();
    theirs.identification = 0xbeef;
    theirs.dont_fragment = true;
    theirs.header_checksum = theirs.calc_header_checksum();
    assert_eq!(ours.to_vec(), theirs.to_bytes().to_vec());
    let view = ipv4::Packet::new_checked(&ours[..]).unwrap();
    assert!(view.verify_checksum());
    assert_eq!(
        (view.ttl(), view.protocol(), view.total_len(), view.ident()),
        (33, 17, 120, 0xbeef)
    );
    assert!(view.dont_frag() && !view.is_fragment());
}

#[test]
fn ipv4_rewrites_keep_the_header_checksum_valid() {
    let mut hdr = [0u8; 24];
    ipv4::Repr {
        src: Ipv4Addr::new(1, 2, 3, 4),
        dst: Ipv4Addr::new(5, 6, 7, 8),
        protocol: 6,
        payload_len: 0,
        ttl: 2,
        tos: 0,
        ident: 1,
        dont_frag: false,
    }
    .emit(&mut hdr)
    .unwrap();
    let mut view = ipv4::Packet::new_checked(&mut hdr[..]).unwrap();
    view.decrement_ttl();
    view.rewrite_src(Ipv4Addr::new(9, 9, 9, 9));
    view.rewrite_dst(Ipv4Addr::new(255, 0, 128, 1));
    view.rewrite_total_len(1400);
    let check = view.checksum();
    view.fill_checksum();
    assert_eq!(check, view.checksum());
    assert_eq!(view.ttl(), 1);
}

#[test]
fn short_or_wrong_buffers_are_refused_by_views() {
    assert_eq!(
        ipv4::Packet::new_checked(&[0x45u8; 19][..]).err(),
        Some(WireError::Truncated)
    );
    assert_eq!(
        ipv4::Packet::new_checked(&[0x46u8; 20][..]).err(),
        Some(WireError::Truncated)
    );
    assert_eq!(
        ipv4::Packet::new_checked(&[0x65u8; 20][..]).err(),
        Some(WireError::BadVersion)
    );
    assert_eq!(
        ipv6::Packet::new_checked(&[0x60u8; 39][..]).err(),
        Some(WireError::Truncated)
    );
    assert_eq!(
        tcp::Packet::new_checked(&[0u8; 19][..]).err(),
        Some(WireError::Truncated)
    );
    let mut seg = [0u8; 20];
    seg[12] = 0x60; // 24-byte header in 20 bytes
    assert_eq!(
        tcp::Packet::new_checked(&seg[..]).err(),
        Some(WireError::Truncated)
    );
    let mut dgram = [0u8; 8];
    dgram[5] = 9;
    assert_eq!(
        udp::Packet::new_checked(&dgram[..]).err(),
        Some(WireError::Truncated)
    );
}

#[test]
fn gue_header_round_trips() {
    let header = tunnel::GueHeader {
        control: false,
        options_len: 0,
        proto_ctype: 41,
        flags: 0,
    };
    let mut buf = [0xffu8; 4];
    header.emit(&mut buf).unwrap();
    assert_eq!(buf, [0, 41, 0, 0]);
    assert_eq!(tunnel::GueHeader::parse(&buf), Ok(header));
}

#[test]
fn udp_checksum_update_matches_recompute_over_pseudo_header() {
    use std::net::IpAddr;
    let src: IpAddr = "2001:db8::1".parse().unwrap();
    let dst: IpAddr = "2001:db8::2".parse().unwrap();
    let new_dst: IpAddr = "fd00::99".parse().unwrap();
    let seg = [0x13u8, 0x88, 0x00, 0x35, 0, 11, 0, 0, b'a', b'b', b'c'];
    let sum = |d: IpAddr, s: &[u8]| {
        checksum::finish(checksum::add(checksum::pseudo_header(src, d, 17, 11), s))
    };
    let before = sum(dst, &seg);
    let mut moved = seg;
    moved[2..4].copy_from_slice(&53u16.to_be_bytes());
    let after = checksum::update_u16(checksum::update_addr(before, dst, new_dst), 0x0035, 53);
    assert_eq!(after, sum(new_dst, &moved));
}
