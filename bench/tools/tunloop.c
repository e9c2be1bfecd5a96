// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
/*
 * bench/tools/tunloop.c — the bare TUN loop: the ceiling of uvsd's TUN
 * backend (bench code, not product; packet-io.md §4). It makes TUN device
 * DEV (IFF_TUN | IFF_NO_PI) and brings it up; the caller routes VIP into
 * it. Each packet read whose destination is VIP gets the next real
 * server's address as destination (round robin), its IPv4 and UDP/TCP
 * checksums patched incrementally (RFC 1624), and is written back for
 * the kernel to route: one read and one write per packet, no allocation.
 * Runs until SIGTERM/SIGINT; prints "read N written N" at exit.
 *
 *   tunloop DEV VIP RS[,RS...]        pps: round robin per packet
 *   tunloop DEV VIP RS[,RS...] PORT   connections: a stateless NAT
 *
 * With PORT (the conns scenario's TUN ceiling), a TCP/UDP packet to VIP
 * goes to the real server a hash of its source address and port picks
 * (so a flow stays on one server with no table), and a packet from a
 * real server's PORT gets VIP as its source (the reply direction; the
 * caller's policy rule routes those into DEV): the least a NAT through
 * a TUN device can do, one read and one write per packet either way.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <unistd.h>
#include <arpa/inet.h>
#include "csum.h"

#define MAX_RS 8

static volatile sig_atomic_t stop;
static void on_signal(int sig) { (void)sig; stop = 1; }

static void die(const char *what)
{
	fprintf(stderr, "tunloop: %s: %s\n", what, strerror(errno));
	exit(1);
}

int main(int argc, char **argv)
{
	if (argc != 4 && argc != 5) {
		fprintf(stderr, "usage: tunloop DEV VIP RS[,RS...] [PORT]\n");
		return 2;
	}
	int nat_port = argc == 5 ? atoi(argv[4]) : -1;
	if (argc == 5 && (nat_port <= 0 || nat_port > 65535)) {
		fprintf(stderr, "tunloop: bad port %s\n", argv[4]);
		return 2;
	}
	uint32_t vip, rs[MAX_RS];
	int n_rs = 0;
	if (inet_pton(AF_INET, argv[2], &vip) != 1) {
		fprintf(stderr, "tunloop: bad VIP %s\n", argv[2]);
		return 2;
	}
	for (char *save = NULL, *t = strtok_r(argv[3], ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		if (n_rs == MAX_RS || inet_pton(AF_INET, t, &rs[n_rs]) != 1) {
			fprintf(stderr, "tunloop: bad real server list\n");
			return 2;
		}
		n_rs++;
	}
	int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
	if (fd < 0)
		die("open /dev/net/tun");
	struct ifreq ifr = {0};
	ifr.ifr_flags = IFF_TUN | IFF_NO_PI;
	snprintf(ifr.ifr_name, IFNAMSIZ, "%s", argv[1]);
	if (ioctl(fd, TUNSETIFF, &ifr) < 0)
		die("TUNSETIFF");
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s < 0 || ioctl(s, SIOCGIFFLAGS, &ifr) < 0)
		die("SIOCGIFFLAGS");
	ifr.ifr_flags |= IFF_UP;
	if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0)
		die("SIOCSIFFLAGS");
	close(s);
	struct sigaction sa = {.sa_handler = on_signal}; /* no SA_RESTART: EINTR ends read() */
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	static uint8_t buf[65536];
	unsigned long long nread = 0, nwritten = 0;
	int next = 0;
	while (!stop) {
		ssize_t n = read(fd, buf, sizeof(buf));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			die("read");
		}
		nread++;
		if (n < 20 || (buf[0] >> 4) != 4)
			continue;
		size_t ihl = (size_t)(buf[0] & 15) * 4;
		if (ihl < 20 || (size_t)n < ihl)
			continue;
		uint32_t saddr, daddr;
		memcpy(&saddr, buf + 12, 4);
		memcpy(&daddr, buf + 16, 4);
		int ports = (buf[9] == IPPROTO_TCP || buf[9] == IPPROTO_UDP) && !((buf[6] & 0x1f) | buf[7]) &&
			    (size_t)n >= ihl + 4;
		if (nat_port < 0) {
			if (daddr != vip)
				continue;
			rewrite_addr(buf, (size_t)n, ihl, 16, rs[next]);
			next = next + 1 == n_rs ? 0 : next + 1;
		} else if (daddr == vip && ports) {
			/* The flow's server: a hash of the client's address and port. */
			uint32_t h = saddr * 0x9e3779b1u ^ ((uint32_t)buf[ihl] << 8 | buf[ihl + 1]) * 0x85ebca6bu;
			rewrite_addr(buf, (size_t)n, ihl, 16, rs[(uint64_t)h * (uint32_t)n_rs >> 32]);
		} else if (ports && ((int)buf[ihl] << 8 | buf[ihl + 1]) == nat_port) {
			int from_rs = 0;
			for (int i = 0; i < n_rs; i++)
				from_rs |= saddr == rs[i];
			if (!from_rs)
				continue;
			rewrite_addr(buf, (size_t)n, ihl, 12, vip);
		} else {
			continue;
		}
		if (write(fd, buf, (size_t)n) == n)
			nwritten++;
	}
	printf("read %llu written %llu\n", nread, nwritten);
	return 0;
}
