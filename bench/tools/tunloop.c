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
 *   tunloop DEV VIP RS[,RS...]
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

#define MAX_RS 8

static volatile sig_atomic_t stop;
static void on_signal(int sig) { (void)sig; stop = 1; }

static void die(const char *what)
{
	fprintf(stderr, "tunloop: %s: %s\n", what, strerror(errno));
	exit(1);
}

/* RFC 1624: checksum HC' = ~(~HC + ~m + m') over a 32-bit field. */
static uint16_t csum_replace4(uint16_t check, uint32_t from, uint32_t to)
{
	uint32_t sum = (uint16_t)~ntohs(check);
	sum += (uint16_t)~(ntohl(from) >> 16) + (uint16_t)~(ntohl(from) & 0xffff);
	sum += (ntohl(to) >> 16) + (ntohl(to) & 0xffff);
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return htons((uint16_t)~sum);
}

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: tunloop DEV VIP RS[,RS...]\n");
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
		uint32_t daddr;
		memcpy(&daddr, buf + 16, 4);
		if (daddr != vip || ihl < 20 || (size_t)n < ihl)
			continue;
		uint32_t to = rs[next];
		next = next + 1 == n_rs ? 0 : next + 1;
		uint16_t check;
		memcpy(&check, buf + 10, 2);
		check = csum_replace4(check, daddr, to);
		memcpy(buf + 10, &check, 2);
		memcpy(buf + 16, &to, 4);
		int frag = (buf[6] & 0x1f) | buf[7];
		size_t off = buf[9] == IPPROTO_UDP ? 6 : buf[9] == IPPROTO_TCP ? 16 : 0;
		if (off && !frag && (size_t)n >= ihl + off + 2) {
			memcpy(&check, buf + ihl + off, 2);
			if (buf[9] == IPPROTO_TCP || check != 0) {
				check = csum_replace4(check, daddr, to);
				if (buf[9] == IPPROTO_UDP && check == 0)
					check = 0xffff;
				memcpy(buf + ihl + off, &check, 2);
			}
		}
		if (write(fd, buf, (size_t)n) == n)
			nwritten++;
	}
	printf("read %llu written %llu\n", nread, nwritten);
	return 0;
}
