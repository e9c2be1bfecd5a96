// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
/*
 * bench/tools/xdpgen.c — userspace packet generator for machines without
 * the kernel's pktgen: runs xdpgen.bpf.o with BPF_PROG_RUN in live-frames
 * mode (BPF_F_TEST_XDP_LIVE_FRAMES), so every run's XDP_TX sends a real
 * frame out of --dev. One core reaches several Mpps (packet-io.md §3);
 * sendmmsg gets ~130 kpps and trafgen stops at the first back-pressure.
 *
 *   xdpgen --dev eth0 --src-mac M --dst-mac M --src IP [--src-count N]
 *          [--sport P] [--sport-count N] --dst IP[,IP...] [--dport P]
 *          [--proto udp|syn|tcp] [--size 60..1514] [--rate PPS] --duration S
 *
 * --size is the frame without FCS (60 = 64 on the wire). --rate 0 (the
 * default) is flat out. Either way the loader makes one call of 2^32 - 1
 * repeats, cut short by the duration's alarm (each call costs two RCU
 * grace periods, so calls of fewer repeats lose much of the time); a fixed rate is
 * kept by the program itself, which skips (XDP_DROP) runs that come
 * before the next frame is due. Prints one line:
 *   "sent N frames in T s: R pps", N read back from the program's own
 *   frame counter (so an interrupted call's frames count too).
 */
#define _GNU_SOURCE
#include <getopt.h>
#include <signal.h>
#include <sys/time.h>
#include <linux/bpf.h>
#include "util.h"
#include "common.bpf.h"

#ifndef BPF_F_TEST_XDP_LIVE_FRAMES
#define BPF_F_TEST_XDP_LIVE_FRAMES (1U << 1)
#endif

static volatile sig_atomic_t stop;
static void on_alarm(int sig) { (void)sig; stop = 1; }

static void usage(void)
{
	fprintf(stderr,
		"usage: xdpgen --dev IF --src-mac MAC --dst-mac MAC --src IP [--src-count N]\n"
		"              [--sport P] [--sport-count N] --dst IP[,IP...] [--dport P]\n"
		"              [--proto udp|syn|tcp] [--size 60..1514] [--rate PPS] --duration S\n");
	exit(2);
}

int main(int argc, char **argv)
{
	struct gen_cfg cfg = {0};
	const char *dev = NULL;
	double duration = 0, rate = 0;
	int have_src = 0, have_smac = 0, have_dmac = 0;
	cfg.n_saddr = 1;
	cfg.sport = 1024;
	cfg.n_sport = 1;
	cfg.dport = 9;
	cfg.frame_len = 60;
	cfg.proto = 17;
	static const struct option opts[] = {
		{"dev", 1, 0, 'i'},       {"src-mac", 1, 0, 'm'}, {"dst-mac", 1, 0, 'M'},
		{"src", 1, 0, 's'},       {"src-count", 1, 0, 'n'}, {"sport", 1, 0, 'p'},
		{"sport-count", 1, 0, 'N'}, {"dst", 1, 0, 'd'},   {"dport", 1, 0, 'P'},
		{"proto", 1, 0, 'x'},     {"size", 1, 0, 'z'},    {"rate", 1, 0, 'r'},
		{"duration", 1, 0, 't'},  {0, 0, 0, 0},
	};
	int o;
	while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (o) {
		case 'i': dev = optarg; break;
		case 'm': parse_mac(optarg, cfg.src_mac); have_smac = 1; break;
		case 'M': parse_mac(optarg, cfg.dst_mac); have_dmac = 1; break;
		case 's': cfg.saddr = parse_ip4(optarg); have_src = 1; break;
		case 'n': cfg.n_saddr = (uint32_t)strtoul(optarg, NULL, 0); break;
		case 'p': cfg.sport = (uint16_t)strtoul(optarg, NULL, 0); break;
		case 'N': cfg.n_sport = (uint16_t)strtoul(optarg, NULL, 0); break;
		case 'd': {
			char *list = strdup(optarg), *save = NULL;
			for (char *t = strtok_r(list, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
				if (cfg.n_daddr >= GEN_MAX_DST)
					die("at most %d destinations", GEN_MAX_DST);
				cfg.daddr[cfg.n_daddr++] = parse_ip4(t);
			}
			free(list);
			break;
		}
		case 'P': cfg.dport = (uint16_t)strtoul(optarg, NULL, 0); break;
		case 'x':
			if (!strcmp(optarg, "udp")) {
				cfg.proto = 17;
			} else if (!strcmp(optarg, "syn")) {
				cfg.proto = 6;
				cfg.tcp_flags = 0x02;
			} else if (!strcmp(optarg, "tcp")) {
				cfg.proto = 6;
				cfg.tcp_flags = 0x18;
			} else {
				die("--proto is udp, syn or tcp, not '%s'", optarg);
			}
			break;
		case 'z': cfg.frame_len = (uint16_t)strtoul(optarg, NULL, 0); break;
		case 'r': rate = strtod(optarg, NULL); break;
		case 't': duration = strtod(optarg, NULL); break;
		default: usage();
		}
	}
	if (!dev || !have_src || !have_smac || !have_dmac || !cfg.n_daddr || duration <= 0)
		usage();
	if (cfg.frame_len < 60 || cfg.frame_len > 1514)
		die("--size %u is outside 60..1514", cfg.frame_len);
	if (rate > 0) {
		cfg.interval_fp = (__u64)(1e9 * 1024 / rate);
		/* Make up at most 10 ms (and at least 64 frames) of lateness: on a
		 * shared CPU the generator loses timeslices of several ms. */
		cfg.catchup_fp = 10000000ull << 10;
		if (cfg.catchup_fp < cfg.interval_fp * 64)
			cfg.catchup_fp = cfg.interval_fp * 64;
	}
	if (!cfg.n_saddr || !cfg.n_sport)
		die("--src-count and --sport-count must be at least 1");

	struct bpf_object *obj = load_beside("xdpgen.bpf.o");
	int prog = prog_fd_of(obj, "xdpgen");
	int cfg_fd = map_fd_of(obj, "cfg_map");
	__u32 zero = 0;
	/* The first frame is due now (bpf_ktime_get_ns is CLOCK_MONOTONIC):
	 * no catch-up burst at the start. */
	cfg.next_fp = (__u64)(now_s() * 1e9) << 10;
	if (bpf_map_update_elem(cfg_fd, &zero, &cfg, 0))
		die("write cfg_map: %s", strerror(errno));

	/* The initial frame: zeros; the program writes every header field. */
	static uint8_t frame[1514];
	struct xdp_md ctx_in = {
		.data_end = cfg.frame_len,
		.ingress_ifindex = ifindex_of(dev),
	};

	struct sigaction sa = {.sa_handler = on_alarm}; /* no SA_RESTART: EINTR ends a call */
	sigaction(SIGALRM, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	struct itimerval it = {0};
	it.it_value.tv_sec = (time_t)duration;
	it.it_value.tv_usec = (suseconds_t)((duration - (double)(time_t)duration) * 1e6);
	setitimer(ITIMER_REAL, &it, NULL);

	uint64_t sent = 0;
	double t0 = now_s();
	while (!stop) {
		LIBBPF_OPTS(bpf_test_run_opts, run, .data_in = frame,
			    .data_size_in = cfg.frame_len, .ctx_in = &ctx_in,
			    .ctx_size_in = sizeof(ctx_in), .repeat = UINT32_MAX,
			    .flags = BPF_F_TEST_XDP_LIVE_FRAMES, .batch_size = 64);
		if (bpf_prog_test_run_opts(prog, &run)) {
			if (errno == EINTR || stop)
				break;
			die("BPF_PROG_RUN: %s", strerror(errno));
		}
	}
	double el = now_s() - t0;
	struct gen_cfg done;
	if (bpf_map_lookup_elem(cfg_fd, &zero, &done))
		die("read cfg_map: %s", strerror(errno));
	sent = done.seq;
	printf("sent %llu frames in %.3f s: %.0f pps\n", (unsigned long long)sent, el,
	       el > 0 ? sent / el : 0.0);
	bpf_object__close(obj);
	return 0;
}
