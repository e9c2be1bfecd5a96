// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
/*
 * bench/tools/xdpsink.bpf.c — a real server's sink: counts (per CPU,
 * packets and bytes) and drops every IPv4 UDP, TCP and IPIP packet
 * arriving on the interface; passes everything else (ARP, ICMP, IPv6) to
 * the kernel so the director can still resolve the real server's MAC.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/in.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

struct counts {
	__u64 packets;
	__u64 bytes;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct counts);
} counts_map SEC(".maps");

SEC("xdp")
int xdpsink(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = data + sizeof(*eth);
	if ((void *)(ip + 1) > end || eth->h_proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;
	if (ip->protocol != IPPROTO_UDP && ip->protocol != IPPROTO_TCP &&
	    ip->protocol != IPPROTO_IPIP)
		return XDP_PASS;
	__u32 zero = 0;
	struct counts *c = bpf_map_lookup_elem(&counts_map, &zero);
	if (c) {
		c->packets++;
		c->bytes += (__u64)((long)end - (long)data);
	}
	return XDP_DROP;
}

char LICENSE[] SEC("license") = "GPL";
