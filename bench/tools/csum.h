/* SPDX-License-Identifier: GPL-2.0 OR Apache-2.0 */
/* bench/tools/csum.h — rewriting an IPv4 address in place with the IPv4
 * and TCP/UDP checksums patched incrementally (RFC 1624): what the bare
 * NAT loops (tunloop, xskfwd --nat) do to each packet. Header-only. */
#ifndef UVS_BENCH_CSUM_H
#define UVS_BENCH_CSUM_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* RFC 1624: checksum HC' = ~(~HC + ~m + m') over a 32-bit field. */
static inline uint16_t csum_replace4(uint16_t check, uint32_t from, uint32_t to)
{
	uint32_t sum = (uint16_t)~ntohs(check);
	sum += (uint16_t)~(ntohl(from) >> 16) + (uint16_t)~(ntohl(from) & 0xffff);
	sum += (ntohl(to) >> 16) + (ntohl(to) & 0xffff);
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return htons((uint16_t)~sum);
}

/* Rewrite the IPv4 address at buf+at (16 = destination, 12 = source) to
 * `to`, patching the IPv4 checksum and, unfragmented, the TCP/UDP one. */
static inline void rewrite_addr(uint8_t *buf, size_t n, size_t ihl, size_t at, uint32_t to)
{
	uint32_t from;
	uint16_t check;
	memcpy(&from, buf + at, 4);
	memcpy(&check, buf + 10, 2);
	check = csum_replace4(check, from, to);
	memcpy(buf + 10, &check, 2);
	memcpy(buf + at, &to, 4);
	int frag = (buf[6] & 0x1f) | buf[7];
	size_t off = buf[9] == IPPROTO_UDP ? 6 : buf[9] == IPPROTO_TCP ? 16 : 0;
	if (off && !frag && n >= ihl + off + 2) {
		memcpy(&check, buf + ihl + off, 2);
		if (buf[9] == IPPROTO_TCP || check != 0) {
			check = csum_replace4(check, from, to);
			if (buf[9] == IPPROTO_UDP && check == 0)
				check = 0xffff;
			memcpy(buf + ihl + off, &check, 2);
		}
	}
}

#endif
