/* SPDX-License-Identifier: GPL-2.0 OR Apache-2.0 */
/* bench/tools/common.bpf.h — what the bench's XDP programs share with
 * their loaders: the generator's configuration layout. Kept in one place
 * so the program and the loader cannot disagree. */
#ifndef UVS_BENCH_COMMON_H
#define UVS_BENCH_COMMON_H

#define GEN_MAX_DST 8

/* The generator's configuration (one entry of an ARRAY map, written by
 * xdpgen before the first run). Addresses and ports in host order; the
 * program converts. `seq` is the program's running frame counter. */
struct gen_cfg {
	__u8 dst_mac[6];
	__u8 src_mac[6];
	__u32 saddr;       /* first client address */
	__u32 n_saddr;     /* client addresses: saddr .. saddr + n - 1 */
	__u32 daddr[GEN_MAX_DST];
	__u32 n_daddr;     /* destinations, cycled per frame */
	__u16 sport;       /* first client port */
	__u16 n_sport;     /* client ports: sport .. sport + n - 1 */
	__u16 dport;
	__u16 frame_len;   /* whole frame, without FCS */
	__u8 proto;        /* 17 UDP, 6 TCP */
	__u8 tcp_flags;    /* TCP: 0x02 SYN, 0x18 PSH|ACK */
	__u8 pad[2];
	__u64 seq;         /* frames sent so far */
	/* Pacing (rate > 0): one frame per interval; in ns << 10 (fixed
	 * point, so 1e9 / rate keeps its fraction). 0 = flat out. */
	__u64 interval_fp;
	__u64 next_fp;     /* when the next frame is due (ktime ns << 10) */
	__u64 catchup_fp;  /* most lateness made up by a burst (ns << 10) */
};

#endif
