/* SPDX-License-Identifier: GPL-2.0 OR Apache-2.0 */
/* bench/tools/util.h — small helpers the bench tools share: errors,
 * clocks, MAC/IPv4 parsing, loading a BPF object that sits beside the
 * binary, and attaching an XDP program with a bpf_link (detached when the
 * process exits, even on kill -9). Header-only; each tool is one file. */
#ifndef UVS_BENCH_UTIL_H
#define UVS_BENCH_UTIL_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <net/if.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/if_link.h>

static inline void die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "%s: ", program_invocation_short_name);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

static inline double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static inline void parse_mac(const char *s, uint8_t mac[6])
{
	unsigned v[6];
	if (sscanf(s, "%x:%x:%x:%x:%x:%x", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5]) != 6)
		die("bad MAC address '%s'", s);
	for (int i = 0; i < 6; i++)
		mac[i] = (uint8_t)v[i];
}

/* An IPv4 address in host order. */
static inline uint32_t parse_ip4(const char *s)
{
	struct in_addr a;
	if (inet_pton(AF_INET, s, &a) != 1)
		die("bad IPv4 address '%s'", s);
	return ntohl(a.s_addr);
}

static inline unsigned ifindex_of(const char *ifname)
{
	unsigned i = if_nametoindex(ifname);
	if (!i)
		die("no interface %s: %s", ifname, strerror(errno));
	return i;
}

/* Open and load NAME (e.g. "xdpgen.bpf.o") from the directory of this
 * binary. */
static inline struct bpf_object *load_beside(const char *name)
{
	char exe[PATH_MAX], path[PATH_MAX + 64];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n <= 0)
		die("readlink /proc/self/exe: %s", strerror(errno));
	exe[n] = 0;
	char *slash = strrchr(exe, '/');
	if (slash)
		*slash = 0;
	snprintf(path, sizeof(path), "%s/%s", exe, name);
	struct bpf_object *obj = bpf_object__open_file(path, NULL);
	if (!obj)
		die("open %s: %s", path, strerror(errno));
	if (bpf_object__load(obj))
		die("load %s: %s", path, strerror(errno));
	return obj;
}

static inline int prog_fd_of(struct bpf_object *obj, const char *prog)
{
	struct bpf_program *p = bpf_object__find_program_by_name(obj, prog);
	if (!p)
		die("program %s not in object", prog);
	return bpf_program__fd(p);
}

static inline int map_fd_of(struct bpf_object *obj, const char *map)
{
	int fd = bpf_object__find_map_fd_by_name(obj, map);
	if (fd < 0)
		die("map %s not in object", map);
	return fd;
}

/* Attach prog_fd to ifname in native (driver) mode with a bpf_link;
 * returns the link fd (hold it: closing detaches). */
static inline int xdp_link(int prog_fd, const char *ifname)
{
	LIBBPF_OPTS(bpf_link_create_opts, opts, .flags = XDP_FLAGS_DRV_MODE);
	int fd = bpf_link_create(prog_fd, ifindex_of(ifname), BPF_XDP, &opts);
	if (fd < 0)
		die("attach XDP to %s: %s (another XDP program there?)", ifname, strerror(errno));
	return fd;
}

#endif
