//! A fluent frame builder for tests, fixtures and benchmarks (Katran's
//! `PacketBuilder` habit): `PacketBuilder::new().eth(..).ipv4(..).tcp(..)
//! .payload(..).build()` gives the frame's bytes with every length and
//! checksum filled in from scratch, by code independent of the rewrite
//! paths in [`crate::xmit`]. It allocates (it returns `Vec<u8>`) and is
//! not for the packet path.
//!
//! Unusual frames are built by overriding a field after the fact
//! (`build()` then poke bytes) or with [`PacketBuilder::raw_l4`].

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::{checksum, ethernet::Mac, ethertype, proto};

#[derive(Debug, Clone)]
enum Ip {
    None,
    V4 {
        src: Ipv4Addr,
        dst: Ipv4Addr,
        options: Vec<u8>,
    },
    V6 {
        src: Ipv6Addr,
        dst: Ipv6Addr,
        flow_label: u32,
        /// (header kind, bytes after the next-header byte).
        ext: Vec<(u8, Vec<u8>)>,
    },
}

#[derive(Debug, Clone)]
enum L4 {
    None,
    Tcp {
        sport: u16,
        dport: u16,
        options: Vec<u8>,
    },
    Udp {
        sport: u16,
        dport: u16,
    },
    Icmp {
        msg_type: u8,
        code: u8,
        rest: u32,
    },
    Gre {
        protocol: u16,
        csum: bool,
    },
    Raw {
        protocol: u8,
    },
    Sctp {
        sport: u16,
        dport: u16,
        vtag: u32,
    },
}

/// Builds a frame (or a bare IP packet) layer by layer.
#[derive(Debug, Clone)]
pub struct PacketBuilder {
    eth: Option<(Mac, Mac)>,
    vlan: Option<u16>,
    ip: Ip,
    ttl: u8,
    tos: u8,
    ident: u16,
    dont_frag: bool,
    frag_offset: u16,
    more_frags: bool,
    l4: L4,
    seq: u32,
    ack: u32,
    tcp_flags: u8,
    window: u16,
    udp_checksum: bool,
    gue_proto: Option<u8>,
    payload: Vec<u8>,
}

impl Default for PacketBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl PacketBuilder {
    /// An empty builder: TTL 64, DF clear, TCP window 65535, UDP checksums on.
    pub fn new() -> Self {
        PacketBuilder {
            eth: None,
            vlan: None,
            ip: Ip::None,
            ttl: 64,
            tos: 0,
            ident: 0,
            dont_frag: false,
            frag_offset: 0,
            more_frags: false,
            l4: L4::None,
            seq: 0,
            ack: 0,
            tcp_flags: 0,
            window: 65535,
            udp_checksum: true,
            gue_proto: None,
            payload: Vec::new(),
        }
    }

    /// Ethernet header from `src` to `dst`.
    pub fn eth(mut self, src: Mac, dst: Mac) -> Self {
        self.eth = Some((src, dst));
        self
    }

    /// One 802.1Q tag with this VLAN id (priority 0).
    pub fn vlan(mut self, id: u16) -> Self {
        self.vlan = Some(id);
        self
    }

    /// IPv4 header.
    pub fn ipv4(mut self, src: Ipv4Addr, dst: Ipv4Addr) -> Self {
        self.ip = Ip::V4 {
            src,
            dst,
            options: Vec::new(),
        };
        self
    }

    /// IPv6 header.
    pub fn ipv6(mut self, src: Ipv6Addr, dst: Ipv6Addr) -> Self {
        self.ip = Ip::V6 {
            src,
            dst,
            flow_label: 0,
            ext: Vec::new(),
        };
        self
    }

    /// IPv4 or IPv6 header, by the family of `src`.
    ///
    /// # Panics
    ///
    /// If `src` and `dst` are of different families (a test's mistake).
    pub fn ip(self, src: IpAddr, dst: IpAddr) -> Self {
        match (src, dst) {
            (IpAddr::V4(s), IpAddr::V4(d)) => self.ipv4(s, d),
            (IpAddr::V6(s), IpAddr::V6(d)) => self.ipv6(s, d),
            _ => panic!("PacketBuilder::ip: mixed address families"),
        }
    }

    /// IPv4 options (padded with end-of-list to a multiple of 4).
    pub fn ipv4_options(mut self, bytes: &[u8]) -> Self {
        if let Ip::V4 { options, .. } = &mut self.ip {
            options.extend_from_slice(bytes);
            while options.len() % 4 != 0 {
                options.push(0);
            }
        }
        self
    }

    /// Append an IPv6 extension header of `kind` (hop-by-hop 0, routing
    /// 43, fragment 44, destination options 60, AH 51) whose bytes after
    /// the next-header byte are `body` (the length byte included).
    pub fn ipv6_ext(mut self, kind: u8, body: &[u8]) -> Self {
        if let Ip::V6 { ext, .. } = &mut self.ip {
            ext.push((kind, body.to_vec()));
        }
        self
    }

    /// IPv6 flow label.
    pub fn flow_label(mut self, label: u32) -> Self {
        if let Ip::V6 { flow_label, .. } = &mut self.ip {
            *flow_label = label;
        }
        self
    }

    /// TTL / hop limit.
    pub fn ttl(mut self, ttl: u8) -> Self {
        self.ttl = ttl;
        self
    }

    /// IPv4 TOS / IPv6 traffic class.
    pub fn tos(mut self, tos: u8) -> Self {
        self.tos = tos;
        self
    }

    /// IPv4 identification.
    pub fn ident(mut self, ident: u16) -> Self {
        self.ident = ident;
        self
    }

    /// IPv4 don't-fragment flag.
    pub fn df(mut self, df: bool) -> Self {
        self.dont_frag = df;
        self
    }

    /// IPv4 fragment: offset in bytes (a multiple of 8) and MF flag.
    pub fn fragment(mut self, offset: u16, more: bool) -> Self {
        self.frag_offset = offset;
        self.more_frags = more;
        self
    }

    /// TCP header.
    pub fn tcp(mut self, sport: u16, dport: u16) -> Self {
        self.l4 = L4::Tcp {
            sport,
            dport,
            options: Vec::new(),
        };
        self
    }

    /// TCP flags byte.
    pub fn flags(mut self, flags: u8) -> Self {
        self.tcp_flags = flags;
        self
    }

    /// TCP sequence number.
    pub fn seq(mut self, seq: u32) -> Self {
        self.seq = seq;
        self
    }

    /// TCP acknowledgement number.
    pub fn ack_num(mut self, ack: u32) -> Self {
        self.ack = ack;
        self
    }

    /// TCP window.
    pub fn window(mut self, window: u16) -> Self {
        self.window = window;
        self
    }

    /// TCP options (padded with end-of-list to a multiple of 4).
    pub fn tcp_options(mut self, bytes: &[u8]) -> Self {
        if let L4::Tcp { options, .. } = &mut self.l4 {
            options.extend_from_slice(bytes);
            while options.len() % 4 != 0 {
                options.push(0);
            }
        }
        self
    }

    /// UDP header.
    pub fn udp(mut self, sport: u16, dport: u16) -> Self {
        self.l4 = L4::Udp { sport, dport };
        self
    }

    /// SCTP common header with this verification tag; the payload is the
    /// chunks (see [`super::sctp::chunk_bytes`]). The CRC32c is filled in.
    pub fn sctp(mut self, sport: u16, dport: u16, vtag: u32) -> Self {
        self.l4 = L4::Sctp { sport, dport, vtag };
        self
    }

    /// Leave the UDP checksum 0 ("none", IPv4 only).
    pub fn udp_zero_checksum(mut self) -> Self {
        self.udp_checksum = false;
        self
    }

    /// UDP carrying a 4-byte GUE header (variant 0, no options) with
    /// this proto_ctype, before the payload.
    pub fn gue(mut self, sport: u16, dport: u16, proto_ctype: u8) -> Self {
        self.l4 = L4::Udp { sport, dport };
        self.gue_proto = Some(proto_ctype);
        self
    }

    /// ICMP (over IPv4) or ICMPv6 (over IPv6) header; `rest` is the
    /// 4 bytes after the checksum. The payload is the body.
    pub fn icmp(mut self, msg_type: u8, code: u8, rest: u32) -> Self {
        self.l4 = L4::Icmp {
            msg_type,
            code,
            rest,
        };
        self
    }

    /// GRE header (4 bytes, 8 with a checksum) for `protocol` (an ethertype).
    pub fn gre(mut self, protocol: u16, csum: bool) -> Self {
        self.l4 = L4::Gre { protocol, csum };
        self
    }

    /// No transport header: the payload follows the IP header with
    /// this protocol number (e.g. 4 for IPIP with an inner packet).
    pub fn raw_l4(mut self, protocol: u8) -> Self {
        self.l4 = L4::Raw { protocol };
        self
    }

    /// Transport payload.
    pub fn payload(mut self, bytes: &[u8]) -> Self {
        self.payload = bytes.to_vec();
        self
    }

    fn protocol(&self) -> u8 {
        match (&self.l4, &self.ip) {
            (L4::Tcp { .. }, _) => proto::TCP,
            (L4::Udp { .. }, _) => proto::UDP,
            (L4::Icmp { .. }, Ip::V6 { .. }) => proto::ICMPV6,
            (L4::Icmp { .. }, _) => proto::ICMP,
            (L4::Gre { .. }, _) => proto::GRE,
            (L4::Sctp { .. }, _) => proto::SCTP,
            (L4::Raw { protocol }, _) => *protocol,
            (L4::None, _) => proto::IPV6_NONXT,
        }
    }

    fn l4_bytes(&self, src: IpAddr, dst: IpAddr) -> Vec<u8> {
        let mut out = Vec::new();
        match &self.l4 {
            L4::Tcp {
                sport,
                dport,
                options,
            } => {
                out.extend_from_slice(&sport.to_be_bytes());
                out.extend_from_slice(&dport.to_be_bytes());
                out.extend_from_slice(&self.seq.to_be_bytes());
                out.extend_from_slice(&self.ack.to_be_bytes());
                out.push((((20 + options.len()) / 4) as u8) << 4);
                out.push(self.tcp_flags);
                out.extend_from_slice(&self.window.to_be_bytes());
                out.extend_from_slice(&[0, 0, 0, 0]);
                out.extend_from_slice(options);
                out.extend_from_slice(&self.payload);
                let acc = checksum::pseudo_header(src, dst, proto::TCP, out.len() as u32);
                let check = checksum::finish(checksum::add(acc, &out));
                out[16..18].copy_from_slice(&check.to_be_bytes());
            }
            L4::Udp { sport, dport } => {
                let gue_len = if self.gue_proto.is_some() { 4 } else { 0 };
                let len = (8 + gue_len + self.payload.len()) as u16;
                out.extend_from_slice(&sport.to_be_bytes());
                out.extend_from_slice(&dport.to_be_bytes());
                out.extend_from_slice(&len.to_be_bytes());
                out.extend_from_slice(&[0, 0]);
                if let Some(p) = self.gue_proto {
                    out.extend_from_slice(&[0, p, 0, 0]);
                }
                out.extend_from_slice(&self.payload);
                if self.udp_checksum {
                    let acc = checksum::pseudo_header(src, dst, proto::UDP, out.len() as u32);
                    let mut check = checksum::finish(checksum::add(acc, &out));
                    if check == 0 {
                        check = 0xffff;
                    }
                    out[6..8].copy_from_slice(&check.to_be_bytes());
                }
            }
            L4::Icmp {
                msg_type,
                code,
                rest,
            } => {
                out.extend_from_slice(&[*msg_type, *code, 0, 0]);
                out.extend_from_slice(&rest.to_be_bytes());
                out.extend_from_slice(&self.payload);
                let acc = match src {
                    IpAddr::V6(_) => {
                        checksum::pseudo_header(src, dst, proto::ICMPV6, out.len() as u32)
                    }
                    IpAddr::V4(_) => 0,
                };
                let check = checksum::finish(checksum::add(acc, &out));
                out[2..4].copy_from_slice(&check.to_be_bytes());
            }
            L4::Gre { protocol, csum } => {
                let flags: u16 = if *csum { 0x8000 } else { 0 };
                out.extend_from_slice(&flags.to_be_bytes());
                out.extend_from_slice(&protocol.to_be_bytes());
                if *csum {
                    out.extend_from_slice(&[0, 0, 0, 0]);
                }
                out.extend_from_slice(&self.payload);
                if *csum {
                    let check = checksum::of(&out);
                    out[4..6].copy_from_slice(&check.to_be_bytes());
                }
            }
            L4::Sctp { sport, dport, vtag } => {
                out.extend_from_slice(&sport.to_be_bytes());
                out.extend_from_slice(&dport.to_be_bytes());
                out.extend_from_slice(&vtag.to_be_bytes());
                out.extend_from_slice(&[0, 0, 0, 0]);
                out.extend_from_slice(&self.payload);
                let _ = super::sctp::fill_checksum(&mut out);
            }
            L4::Raw { .. } | L4::None => out.extend_from_slice(&self.payload),
        }
        out
    }

    /// The IP packet alone (no Ethernet header).
    pub fn build_ip(&self) -> Vec<u8> {
        let protocol = self.protocol();
        match &self.ip {
            Ip::V4 { src, dst, options } => {
                let l4 = self.l4_bytes(IpAddr::V4(*src), IpAddr::V4(*dst));
                let hlen = 20 + options.len();
                let total = (hlen + l4.len()) as u16;
                let mut flags = self.frag_offset / 8;
                if self.dont_frag {
                    flags |= 0x4000;
                }
                if self.more_frags {
                    flags |= 0x2000;
                }
                let mut out = vec![0x40 | (hlen / 4) as u8, self.tos];
                out.extend_from_slice(&total.to_be_bytes());
                out.extend_from_slice(&self.ident.to_be_bytes());
                out.extend_from_slice(&flags.to_be_bytes());
                out.extend_from_slice(&[self.ttl, protocol, 0, 0]);
                out.extend_from_slice(&src.octets());
                out.extend_from_slice(&dst.octets());
                out.extend_from_slice(options);
                let check = checksum::of(&out);
                out[10..12].copy_from_slice(&check.to_be_bytes());
                out.extend_from_slice(&l4);
                out
            }
            Ip::V6 {
                src,
                dst,
                flow_label,
                ext,
            } => {
                let l4 = self.l4_bytes(IpAddr::V6(*src), IpAddr::V6(*dst));
                let mut exts = Vec::new();
                for (i, (_, body)) in ext.iter().enumerate() {
                    let next = ext.get(i + 1).map_or(protocol, |(k, _)| *k);
                    exts.push(next);
                    exts.extend_from_slice(body);
                }
                let first = ext.first().map_or(protocol, |(k, _)| *k);
                let payload_len = (exts.len() + l4.len()) as u16;
                let word = (6u32 << 28) | (u32::from(self.tos) << 20) | (flow_label & 0xfffff);
                let mut out = word.to_be_bytes().to_vec();
                out.extend_from_slice(&payload_len.to_be_bytes());
                out.extend_from_slice(&[first, self.ttl]);
                out.extend_from_slice(&src.octets());
                out.extend_from_slice(&dst.octets());
                out.extend_from_slice(&exts);
                out.extend_from_slice(&l4);
                out
            }
            Ip::None => self.payload.clone(),
        }
    }

    /// The whole frame: Ethernet (with the tag, if any) and the IP packet.
    pub fn build(&self) -> Vec<u8> {
        let ip = self.build_ip();
        let (src, dst) = self.eth.unwrap_or(([0; 6], [0; 6]));
        let mut out = Vec::with_capacity(18 + ip.len());
        out.extend_from_slice(&dst);
        out.extend_from_slice(&src);
        if let Some(id) = self.vlan {
            out.extend_from_slice(&ethertype::VLAN.to_be_bytes());
            out.extend_from_slice(&(id & 0x0fff).to_be_bytes());
        }
        let ether = match self.ip {
            Ip::V4 { .. } => ethertype::IPV4,
            Ip::V6 { .. } => ethertype::IPV6,
            Ip::None => ethertype::ARP,
        };
        out.extend_from_slice(&ether.to_be_bytes());
        out.extend_from_slice(&ip);
        out
    }
}
