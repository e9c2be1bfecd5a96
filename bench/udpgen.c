/* udpgen — a small-packet UDP generator for the first throughput figure
 * (bench/first-throughput.sh). Sends fixed-size UDP datagrams from SRC to
 * DST:PORT with sendmmsg(2), batches of 64, over NSOCK sockets (each its
 * own source port, so a director sees NSOCK flows), flat out for SECONDS,
 * then prints the number sent. Bounded: stops at the deadline; ENOBUFS /
 * EAGAIN back-pressure is counted and retried, never fatal.
 *
 *   udpgen SRC DST PORT PAYLOAD_BYTES SECONDS [NSOCK]
 *
 * IPv4 only. Build: cc -O2 -o udpgen udpgen.c
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BATCH 64
#define MAXSOCK 256

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
  if (argc < 6) {
    fprintf(stderr, "usage: %s SRC DST PORT PAYLOAD_BYTES SECONDS [NSOCK]\n", argv[0]);
    return 2;
  }
  struct sockaddr_in src = {.sin_family = AF_INET}, dst = {.sin_family = AF_INET};
  if (inet_pton(AF_INET, argv[1], &src.sin_addr) != 1 || inet_pton(AF_INET, argv[2], &dst.sin_addr) != 1) {
    fprintf(stderr, "udpgen: bad address\n");
    return 2;
  }
  dst.sin_port = htons((unsigned short)atoi(argv[3]));
  int size = atoi(argv[4]);
  double secs = atof(argv[5]);
  int nsock = argc > 6 ? atoi(argv[6]) : 16;
  if (size < 1 || size > 1472 || secs <= 0 || nsock < 1 || nsock > MAXSOCK) {
    fprintf(stderr, "udpgen: payload 1..1472, seconds > 0, sockets 1..%d\n", MAXSOCK);
    return 2;
  }
  int fds[MAXSOCK];
  for (int i = 0; i < nsock; i++) {
    fds[i] = socket(AF_INET, SOCK_DGRAM, 0);
    if (fds[i] < 0 || bind(fds[i], (struct sockaddr *)&src, sizeof src) < 0 ||
        connect(fds[i], (struct sockaddr *)&dst, sizeof dst) < 0) {
      perror("udpgen: socket");
      return 1;
    }
  }
  static char payload[1472];
  memset(payload, 'u', sizeof payload);
  struct iovec iov = {.iov_base = payload, .iov_len = (size_t)size};
  struct mmsghdr msgs[BATCH];
  memset(msgs, 0, sizeof msgs);
  for (int i = 0; i < BATCH; i++) {
    msgs[i].msg_hdr.msg_iov = &iov;
    msgs[i].msg_hdr.msg_iovlen = 1;
  }
  unsigned long long sent = 0, backoff = 0;
  double end = now() + secs;
  for (unsigned long round = 0;; round++) {
    if ((round & 63) == 0 && now() >= end) break;
    int n = sendmmsg(fds[round % nsock], msgs, BATCH, 0);
    if (n > 0)
      sent += (unsigned long long)n;
    else if (errno == ENOBUFS || errno == EAGAIN || errno == ECONNREFUSED)
      backoff++;
    else {
      perror("udpgen: sendmmsg");
      return 1;
    }
  }
  printf("%llu %llu\n", sent, backoff);
  return 0;
}
