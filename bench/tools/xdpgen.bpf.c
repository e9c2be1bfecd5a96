// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
/*
 * bench/tools/xdpgen.bpf.c — the packet generator's XDP program, run by
 * BPF_PROG_RUN with BPF_F_TEST_XDP_LIVE_FRAMES (bench/tools/xdpgen.c):
 * each run writes one whole frame (Ethernet, IPv4, UDP or TCP header,
 * checksums) from the configuration in cfg_map and returns XDP_TX, which
 * sends it out of the interface the loader names.
 *
 * The whole header is rewritten every run: the kernel recycles live-frame
 * pages without re-initialising them, and forwarding edits MACs, TTL and
 * addresses in place (packet-io.md §3). The payload stays as the loader
 * wrote it (zeros); nothing on the path edits it, so the L4 checksum only
 * covers the pseudo-header and the L4 header.
 *
 * Pacing (a fixed rate): a run that comes before the next frame is due
 * returns XDP_DROP, which sends nothing and recycles the page, so frames
 * leave evenly spaced instead of in one burst per BPF_PROG_RUN call (the
 * calls are long: each costs two RCU grace periods). A sender that fell
 * behind (softirqs or another task ran on its CPU) catches up with a
 * burst of at most catchup_fp worth of frames.
 *
 * Per frame: client address saddr + seq % n_saddr, client port
 * sport + (seq / n_saddr) % n_sport, destination daddr[seq % n_daddr].
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/udp.h>
#include <linux/tcp.h>
#include <linux/in.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "common.bpf.h"

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct gen_cfg);
} cfg_map SEC(".maps");

struct pseudo {
	__be32 saddr;
	__be32 daddr;
	__u8 zero;
	__u8 proto;
	__be16 len;
};

static __always_inline __u16 fold(__s64 sum)
{
	__u64 s = (__u64)sum;
	s = (s & 0xffffffff) + (s >> 32);
	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	return (__u16)~s;
}

SEC("xdp")
int xdpgen(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	__u32 zero = 0;
	struct gen_cfg *c = bpf_map_lookup_elem(&cfg_map, &zero);
	if (!c)
		return XDP_ABORTED;
	struct ethhdr *eth = data;
	struct iphdr *ip = data + sizeof(*eth);
	void *l4 = (void *)(ip + 1);
	if (l4 + sizeof(struct tcphdr) > end)
		return XDP_ABORTED;
	if (c->interval_fp) {
		__u64 now = bpf_ktime_get_ns() << 10;
		if (now < c->next_fp)
			return XDP_DROP;
		__u64 slack = c->catchup_fp;
		c->next_fp = (c->next_fp + slack < now ? now - slack : c->next_fp) + c->interval_fp;
	}
	__u64 seq = c->seq++;
	__u32 ns = c->n_saddr ? c->n_saddr : 1;
	__u32 np = c->n_sport ? c->n_sport : 1;
	__u32 nd = c->n_daddr ? c->n_daddr : 1;
	__u32 di = (__u32)(seq % nd);
	if (di >= GEN_MAX_DST)
		di = 0;
	__u16 len = (__u16)((long)end - (long)data) - sizeof(*eth);

	__builtin_memcpy(eth->h_dest, c->dst_mac, ETH_ALEN);
	__builtin_memcpy(eth->h_source, c->src_mac, ETH_ALEN);
	eth->h_proto = bpf_htons(ETH_P_IP);

	ip->version = 4;
	ip->ihl = 5;
	ip->tos = 0;
	ip->tot_len = bpf_htons(len);
	ip->id = bpf_htons((__u16)seq);
	ip->frag_off = 0;
	ip->ttl = 64;
	ip->protocol = c->proto;
	ip->check = 0;
	ip->saddr = bpf_htonl(c->saddr + (__u32)(seq % ns));
	ip->daddr = bpf_htonl(c->daddr[di]);
	ip->check = fold(bpf_csum_diff(0, 0, (__be32 *)ip, sizeof(*ip), 0));

	__u16 sport = c->sport + (__u16)((seq / ns) % np);
	__u16 l4len = len - sizeof(*ip);
	struct pseudo ph = {
		.saddr = ip->saddr,
		.daddr = ip->daddr,
		.zero = 0,
		.proto = c->proto,
		.len = bpf_htons(l4len),
	};
	__s64 sum = bpf_csum_diff(0, 0, (__be32 *)&ph, sizeof(ph), 0);
	if (c->proto == IPPROTO_TCP) {
		struct tcphdr *t = l4;
		t->source = bpf_htons(sport);
		t->dest = bpf_htons(c->dport);
		t->seq = bpf_htonl((__u32)seq);
		t->ack_seq = c->tcp_flags & 0x10 ? bpf_htonl(1) : 0;
		/* doff 5, flags */
		((__u8 *)t)[12] = 5 << 4;
		((__u8 *)t)[13] = c->tcp_flags;
		t->window = bpf_htons(65535);
		t->check = 0;
		t->urg_ptr = 0;
		sum = bpf_csum_diff(0, 0, (__be32 *)t, sizeof(*t), sum);
		t->check = fold(sum);
	} else {
		struct udphdr *u = l4;
		u->source = bpf_htons(sport);
		u->dest = bpf_htons(c->dport);
		u->len = bpf_htons(l4len);
		u->check = 0;
		/* 8 bytes: csum_diff wants a multiple of 4 */
		sum = bpf_csum_diff(0, 0, (__be32 *)u, sizeof(*u), sum);
		__u16 ck = fold(sum);
		u->check = ck ? ck : 0xffff;
	}
	return XDP_TX;
}

char LICENSE[] SEC("license") = "GPL";
