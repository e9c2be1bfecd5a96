/* flowgen — many distinct UDP flows for the connection-table scenario
 * (bench/scenarios/table.sh). Sends 60-byte Ethernet frames (64 on the
 * wire) from an AF_PACKET socket on IFNAME, each flow i its own source
 * address and port:
 *     source = SRC_BASE + i / 16384, port 20000 + i % 16384
 * to DST_IP:DST_PORT, Ethernet destination DST_MAC (the director).
 *
 *   flowgen IFNAME DST_MAC SRC_BASE DST_IP DST_PORT FIRST COUNT RATE SECONDS
 *
 * SECONDS = 0: "fill" — flows FIRST .. FIRST+COUNT-1 once each, in order.
 * SECONDS > 0: "cycle" — the same flows in a scattered order (a stride
 *   coprime with COUNT), round after round, for SECONDS.
 * RATE: frames per second (0 = as fast as the socket takes them). Prints
 * "SENT BACKOFF". Bounded: ends after COUNT frames or SECONDS; ENOBUFS /
 * EAGAIN back-pressure is counted and retried (at most 1 s without
 * progress), never fatal. IPv4 only; UDP checksum 0, so no offload matters.
 * Build: cc -O2 -o flowgen flowgen.c
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BATCH 64
#define FRAME 60
#define PORTS 16384u

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

static uint16_t ip_csum(const uint8_t *h) {
  uint32_t s = 0;
  for (int i = 0; i < 20; i += 2) s += (uint32_t)(h[i] << 8 | h[i + 1]);
  while (s >> 16) s = (s & 0xffff) + (s >> 16);
  return (uint16_t)~s;
}

static int parse_mac(const char *s, uint8_t *mac) {
  unsigned v[6];
  if (sscanf(s, "%x:%x:%x:%x:%x:%x", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5]) != 6) return -1;
  for (int i = 0; i < 6; i++) mac[i] = (uint8_t)v[i];
  return 0;
}

/* Writes flow `i`'s frame into f (a template already holding the rest). */
static void set_flow(uint8_t *f, uint32_t src_base, uint64_t i) {
  uint32_t src = src_base + (uint32_t)(i / PORTS);
  uint16_t sport = (uint16_t)(20000u + i % PORTS);
  uint8_t *ip = f + 14;
  ip[12] = src >> 24;
  ip[13] = src >> 16;
  ip[14] = src >> 8;
  ip[15] = src;
  ip[10] = ip[11] = 0;
  uint16_t c = ip_csum(ip);
  ip[10] = c >> 8;
  ip[11] = c;
  ip[20] = sport >> 8;
  ip[21] = sport;
}

static uint64_t gcd(uint64_t a, uint64_t b) {
  while (b) {
    uint64_t t = a % b;
    a = b;
    b = t;
  }
  return a;
}

int main(int argc, char **argv) {
  if (argc != 10) {
    fprintf(stderr, "usage: %s IFNAME DST_MAC SRC_BASE DST_IP DST_PORT FIRST COUNT RATE SECONDS\n", argv[0]);
    return 2;
  }
  uint8_t dmac[6], smac[6];
  struct in_addr base, dst;
  if (parse_mac(argv[2], dmac) || inet_pton(AF_INET, argv[3], &base) != 1 ||
      inet_pton(AF_INET, argv[4], &dst) != 1) {
    fprintf(stderr, "flowgen: bad MAC or address\n");
    return 2;
  }
  unsigned dport = (unsigned)atoi(argv[5]);
  uint64_t first = strtoull(argv[6], NULL, 10), count = strtoull(argv[7], NULL, 10);
  double rate = atof(argv[8]), secs = atof(argv[9]);
  if (count == 0 || count > 100000000ull || rate < 0 || secs < 0 || dport == 0 || dport > 65535) {
    fprintf(stderr, "flowgen: COUNT 1..1e8, RATE >= 0, SECONDS >= 0, port 1..65535\n");
    return 2;
  }
  int fd = socket(AF_PACKET, SOCK_RAW, 0);
  if (fd < 0) {
    perror("flowgen: socket");
    return 1;
  }
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "%s", argv[1]);
  if (ioctl(fd, SIOCGIFHWADDR, &ifr) < 0) {
    perror("flowgen: SIOCGIFHWADDR");
    return 1;
  }
  memcpy(smac, ifr.ifr_hwaddr.sa_data, 6);
  int one = 1;
  setsockopt(fd, SOL_PACKET, PACKET_QDISC_BYPASS, &one, sizeof one); /* best effort */
  struct sockaddr_ll sll = {.sll_family = AF_PACKET, .sll_ifindex = (int)if_nametoindex(argv[1]), .sll_halen = 6};
  memcpy(sll.sll_addr, dmac, 6);
  if (sll.sll_ifindex == 0 || bind(fd, (struct sockaddr *)&sll, sizeof sll) < 0) {
    perror("flowgen: bind");
    return 1;
  }

  static uint8_t frames[BATCH][FRAME];
  struct iovec iov[BATCH];
  struct mmsghdr msgs[BATCH];
  memset(msgs, 0, sizeof msgs);
  for (int b = 0; b < BATCH; b++) {
    uint8_t *f = frames[b];
    memcpy(f, dmac, 6);
    memcpy(f + 6, smac, 6);
    f[12] = 0x08;
    f[13] = 0x00;
    uint8_t *ip = f + 14;
    ip[0] = 0x45;
    ip[2] = 0;
    ip[3] = 46; /* 20 + 8 + 18 */
    ip[8] = 64;
    ip[9] = 17;
    memcpy(ip + 16, &dst.s_addr, 4);
    ip[22] = dport >> 8;
    ip[23] = dport;
    ip[24] = 0;
    ip[25] = 26;
    memset(ip + 28, 'f', 18);
    iov[b].iov_base = f;
    iov[b].iov_len = FRAME;
    msgs[b].msg_hdr.msg_iov = &iov[b];
    msgs[b].msg_hdr.msg_iovlen = 1;
    msgs[b].msg_hdr.msg_name = &sll;
    msgs[b].msg_hdr.msg_namelen = sizeof sll;
  }
  uint32_t src_base = ntohl(base.s_addr);
  /* Cycle order: k * stride mod count, stride coprime with count. */
  uint64_t stride = 1;
  if (secs > 0 && count > 1) {
    stride = count / 2 + 7919;
    while (gcd(stride, count) != 1) stride++;
  }
  uint64_t sent = 0, backoff = 0, k = 0;
  double start = now(), end = start + secs, stall_since = 0;
  for (;;) {
    if (secs == 0 && sent >= count) break;
    double t = now();
    if (secs > 0 && t >= end) break;
    if (stall_since > 0 && t - stall_since > 1.0) {
      fprintf(stderr, "flowgen: no progress for 1 s, stopping\n");
      break;
    }
    if (rate > 0) {
      double due = start + (double)sent / rate;
      if (due > t) {
        double d = due - t;
        if (d > 0.0002) {
          struct timespec ts = {.tv_sec = (time_t)d, .tv_nsec = (long)((d - (time_t)d) * 1e9)};
          nanosleep(&ts, NULL);
        }
        continue;
      }
    }
    int n = BATCH;
    if (secs == 0 && count - sent < (uint64_t)n) n = (int)(count - sent);
    for (int b = 0; b < n; b++) {
      uint64_t idx = secs > 0 ? (k + (uint64_t)b) * stride % count : k + (uint64_t)b;
      set_flow(frames[b], src_base, first + idx);
    }
    int r = sendmmsg(fd, msgs, (unsigned)n, 0);
    if (r > 0) {
      sent += (uint64_t)r;
      k += (uint64_t)r;
      if (secs > 0 && k >= count) k -= count;
      stall_since = 0;
    } else if (r < 0 && (errno == ENOBUFS || errno == EAGAIN || errno == EINTR)) {
      backoff++;
      if (stall_since == 0) stall_since = now();
    } else {
      perror("flowgen: sendmmsg");
      return 1;
    }
  }
  printf("%llu %llu\n", (unsigned long long)sent, (unsigned long long)backoff);
  return 0;
}
