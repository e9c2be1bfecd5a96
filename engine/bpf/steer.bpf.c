// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
/*
 * uvs steering program: redirect to the engine's AF_XDP sockets only the
 * traffic the engine owns, pass everything else (ARP, SSH, the kernel's
 * own traffic) to the kernel.
 *
 * Owned traffic (io::Steering):
 *   - vip_map   {daddr, dport, proto}: virtual services; dport 0 is the
 *               wildcard (fwmark/persistent port-0 services, and non-first
 *               fragments, which carry no ports).
 *   - nat_map   {saddr, sport, proto}: NAT replies from real servers.
 *   - local_map {daddr}: full-NAT local addresses, with the destination
 *               port inside the range in cfg_map[0].
 *   - ICMP/ICMPv6 errors to a virtual or local address (addr_map).
 * A match returns bpf_redirect_map(xsks_map, rx_queue, XDP_PASS): a queue
 * with no socket yet hands the packet to the kernel rather than dropping it.
 *
 * The key layout must match `Key` in engine/src/io/afxdp.rs.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/in.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

struct key {
	__u8 addr[16]; /* IPv4: first 4 bytes, rest zero */
	__u16 port;    /* network order; 0 = any */
	__u8 proto;
	__u8 family;   /* 4 or 6 */
};

struct addr_key {
	__u8 addr[16];
	__u8 family;
	__u8 pad[3];
};

struct cfg {
	__u16 fnat_lo; /* host order */
	__u16 fnat_hi;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, struct key);
	__type(value, __u8);
} vip_map SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, struct key);
	__type(value, __u8);
} nat_map SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, struct addr_key);
	__type(value, __u8);
} local_map SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, struct addr_key);
	__type(value, __u8);
} addr_map SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct cfg);
} cfg_map SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_XSKMAP);
	__uint(max_entries, 256);
	__type(key, __u32);
	__type(value, __u32);
} xsks_map SEC(".maps");

/* [0] redirected, [1] passed */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u64);
} stats_map SEC(".maps");

static __always_inline int count(int idx, int action)
{
	__u32 k = idx;
	__u64 *v = bpf_map_lookup_elem(&stats_map, &k);
	if (v)
		*v += 1;
	return action;
}

static __always_inline int is_l4(__u8 proto)
{
	return proto == IPPROTO_TCP || proto == IPPROTO_UDP || proto == IPPROTO_SCTP;
}

static __always_inline int owned(struct key *k_dst, struct key *k_src, int have_ports,
				 int icmp_error)
{
	struct addr_key ak = {};
	__builtin_memcpy(ak.addr, k_dst->addr, 16);
	ak.family = k_dst->family;

	if (icmp_error)
		return bpf_map_lookup_elem(&addr_map, &ak) != 0;

	if (have_ports) {
		if (bpf_map_lookup_elem(&vip_map, k_dst))
			return 1;
		if (bpf_map_lookup_elem(&nat_map, k_src))
			return 1;
		if (bpf_map_lookup_elem(&local_map, &ak)) {
			__u32 zero = 0;
			struct cfg *c = bpf_map_lookup_elem(&cfg_map, &zero);
			__u16 p = bpf_ntohs(k_dst->port);
			if (c && p >= c->fnat_lo && p <= c->fnat_hi)
				return 1;
		}
	}
	/* Wildcard port: port-0 services, and fragments without ports. */
	k_dst->port = 0;
	if (bpf_map_lookup_elem(&vip_map, k_dst))
		return 1;
	k_src->port = 0;
	if (bpf_map_lookup_elem(&nat_map, k_src))
		return 1;
	return 0;
}

SEC("xdp")
int uvs_steer(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct key kd = {}, ks = {};
	int have_ports = 0, icmp_error = 0;
	void *l4;
	__u16 proto;

	if ((void *)(eth + 1) > end)
		return count(1, XDP_PASS);
	proto = eth->h_proto;
	l4 = eth + 1;
	if (proto == bpf_htons(ETH_P_8021Q)) {
		__u16 *inner = l4;
		if ((void *)(inner + 2) > end)
			return count(1, XDP_PASS);
		proto = inner[1];
		l4 = inner + 2;
	}

	if (proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = l4;
		if ((void *)(ip + 1) > end || ip->ihl < 5)
			return count(1, XDP_PASS);
		kd.family = ks.family = 4;
		kd.proto = ks.proto = ip->protocol;
		__builtin_memcpy(kd.addr, &ip->daddr, 4);
		__builtin_memcpy(ks.addr, &ip->saddr, 4);
		l4 = (void *)ip + ip->ihl * 4;
		/* non-first fragments carry no ports */
		if (!(ip->frag_off & bpf_htons(0x1fff)))
			have_ports = 1;
		if (ip->protocol == IPPROTO_ICMP) {
			__u8 *t = l4;
			have_ports = 0;
			if ((void *)(t + 1) <= end && (*t == 3 || *t == 11 || *t == 12))
				icmp_error = 1;
		}
	} else if (proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = l4;
		if ((void *)(ip6 + 1) > end)
			return count(1, XDP_PASS);
		kd.family = ks.family = 6;
		kd.proto = ks.proto = ip6->nexthdr;
		__builtin_memcpy(kd.addr, &ip6->daddr, 16);
		__builtin_memcpy(ks.addr, &ip6->saddr, 16);
		l4 = ip6 + 1;
		/* extension headers: match on the wildcard port only; the
		 * engine walks them. */
		have_ports = is_l4(ip6->nexthdr);
		if (ip6->nexthdr == IPPROTO_ICMPV6) {
			__u8 *t = l4;
			if ((void *)(t + 1) <= end && *t >= 1 && *t <= 4)
				icmp_error = 1;
		}
	} else {
		return count(1, XDP_PASS);
	}

	if (have_ports) {
		__u16 *ports = l4;
		if ((void *)(ports + 2) > end)
			return count(1, XDP_PASS);
		ks.port = ports[0];
		kd.port = ports[1];
		if (!is_l4(kd.proto))
			have_ports = 0;
	}
	if (!owned(&kd, &ks, have_ports, icmp_error))
		return count(1, XDP_PASS);
	count(0, 0);
	return bpf_redirect_map(&xsks_map, ctx->rx_queue_index, XDP_PASS);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
