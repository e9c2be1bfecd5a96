// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
/*
 * bench/tools/xdpsink.c — attach xdpsink.bpf.o (count and drop IPv4
 * UDP/TCP/IPIP, pass the rest) to IFACE with a bpf_link and, every 10 ms
 * until SIGTERM/SIGINT, write "packets bytes monotonic_ns" (sums over
 * CPUs) to FILE by rename, so a reader never sees a torn line. Rates come
 * from two readings and their own timestamps.
 *
 *   xdpsink IFACE FILE
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include "util.h"

static volatile sig_atomic_t stop;
static void on_signal(int sig) { (void)sig; stop = 1; }

struct counts {
	__u64 packets;
	__u64 bytes;
};

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: xdpsink IFACE FILE\n");
		return 2;
	}
	const char *ifname = argv[1], *file = argv[2];
	struct bpf_object *obj = load_beside("xdpsink.bpf.o");
	int map = map_fd_of(obj, "counts_map");
	int link = xdp_link(prog_fd_of(obj, "xdpsink"), ifname);
	int ncpu = libbpf_num_possible_cpus();
	if (ncpu <= 0)
		die("cannot count CPUs");
	struct counts *per = calloc((size_t)ncpu, sizeof(*per));
	char tmp[PATH_MAX + 8];
	snprintf(tmp, sizeof(tmp), "%s.tmp", file);
	struct sigaction sa = {.sa_handler = on_signal};
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	while (!stop) {
		__u32 zero = 0;
		if (bpf_map_lookup_elem(map, &zero, per))
			die("read counts: %s", strerror(errno));
		struct counts sum = {0};
		for (int i = 0; i < ncpu; i++) {
			sum.packets += per[i].packets;
			sum.bytes += per[i].bytes;
		}
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		FILE *f = fopen(tmp, "w");
		if (!f)
			die("write %s: %s", tmp, strerror(errno));
		fprintf(f, "%llu %llu %llu\n", (unsigned long long)sum.packets,
			(unsigned long long)sum.bytes,
			(unsigned long long)ts.tv_sec * 1000000000ull + (unsigned long long)ts.tv_nsec);
		fclose(f);
		if (rename(tmp, file))
			die("rename %s: %s", tmp, strerror(errno));
		struct timespec d = {0, 10 * 1000 * 1000};
		nanosleep(&d, NULL);
	}
	close(link);
	bpf_object__close(obj);
	return 0;
}
