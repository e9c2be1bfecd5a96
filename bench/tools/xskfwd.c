// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
/*
 * bench/tools/xskfwd.c — the bare AF_XDP forwarder: the userspace ceiling
 * the pps scenario compares uvsd with (bench code, not product). It does
 * what uvsd's AF_XDP worker does minus the engine: one UMEM shared
 * (XDP_SHARED_UMEM) by an RX socket on IN and a TX socket on each OUT,
 * frames received on IN get their MACs rewritten (destination = that
 * OUT's real server, source = OUT's own) and leave by the OUTs in turn,
 * without a copy. An OUT may name several real servers (OUT=MAC,MAC…):
 * each flow then keeps to one, chosen by a hash of its IPv4 source
 * address and port (DR in the conns scenario, where the servers share
 * one switch and a TCP connection must stay on its server). The same tricks as uvsd (engine/src/io/afxdp.rs):
 * 4096 frames of 2048 bytes, rings of 1024, batches of 64, need-wakeup,
 * XDP_MAX_TX_SKB_BUDGET 512, a TX kick per round while frames are
 * outstanding (copy mode sends only inside sendto), busy loop while
 * there is work and poll() when idle. Runs until SIGTERM/SIGINT; prints
 * "ready" once its socket is registered and "rx N tx N" at exit.
 *
 *   xskfwd IN OUT=DSTMAC[,DSTMAC...] [OUT=DSTMAC...]
 */
#define _GNU_SOURCE
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <xdp/xsk.h>
#include "util.h"

#define FRAMES 4096
#define FRAME_SIZE 2048
#define RING 1024
#ifndef BATCH
#define BATCH 64
#endif
#define MAX_OUT 8
#define MAX_DST 8
#ifndef SOL_XDP
#define SOL_XDP 283
#endif
#define XDP_MAX_TX_SKB_BUDGET 9

static volatile sig_atomic_t stop;
static void on_signal(int sig) { (void)sig; stop = 1; }

struct out {
	struct xsk_socket *xsk;
	struct xsk_ring_prod tx, fill;
	struct xsk_ring_cons comp;
	uint8_t dst[MAX_DST][6], src[6];
	uint32_t n_dst;
	uint32_t pending;
	int fd;
};

static uint64_t free_stack[FRAMES];
static uint32_t n_free;

static void read_mac(const char *ifname, uint8_t mac[6])
{
	char path[128], buf[64];
	snprintf(path, sizeof(path), "/sys/class/net/%s/address", ifname);
	FILE *f = fopen(path, "r");
	if (!f || !fgets(buf, sizeof(buf), f))
		die("read %s", path);
	fclose(f);
	parse_mac(buf, mac);
}

/* Which of n real servers a frame's flow goes to: a hash of its IPv4
 * source address and (TCP/UDP) source port; 0 when n is 1 or the frame
 * is too short to tell. */
static uint32_t flow_pick(const uint8_t *p, uint32_t len, uint32_t n)
{
	if (n == 1 || len < 14 + 20 + 4)
		return 0;
	uint32_t ihl = (p[14] & 0x0f) * 4u;
	if (ihl < 20 || len < 14 + ihl + 4)
		return 0;
	uint32_t saddr, sport = (uint32_t)p[14 + ihl] << 8 | p[14 + ihl + 1];
	memcpy(&saddr, p + 26, 4);
	uint32_t h = (saddr ^ sport * 0x9e3779b1u) * 0x85ebca6bu;
	return (h >> 16) % n;
}

int main(int argc, char **argv)
{
	if (argc < 3 || argc - 2 > MAX_OUT) {
		fprintf(stderr, "usage: xskfwd IN OUT=DSTMAC[,DSTMAC...] [OUT=DSTMAC...] (at most %d)\n",
			MAX_OUT);
		return 2;
	}
	const char *in = argv[1];
	int n_out = argc - 2;
	struct bpf_object *obj = load_beside("xskfwd.bpf.o");
	int xsks = map_fd_of(obj, "xsks_map");

	void *area = mmap(NULL, (size_t)FRAMES * FRAME_SIZE, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (area == MAP_FAILED)
		die("mmap UMEM: %s", strerror(errno));
	struct xsk_ring_prod fill;
	struct xsk_ring_cons comp, rx;
	struct xsk_umem *umem;
	struct xsk_umem_config ucfg = {
		.fill_size = RING, .comp_size = RING, .frame_size = FRAME_SIZE,
	};
	int err = xsk_umem__create(&umem, area, (uint64_t)FRAMES * FRAME_SIZE, &fill, &comp, &ucfg);
	if (err)
		die("create UMEM: %s", strerror(-err));
	struct xsk_socket_config scfg = {
		.rx_size = RING, .tx_size = RING,
		.libxdp_flags = XSK_LIBXDP_FLAGS__INHIBIT_PROG_LOAD,
		.bind_flags = XDP_USE_NEED_WAKEUP,
	};
	struct xsk_socket *xin;
	err = xsk_socket__create_shared(&xin, in, 0, umem, &rx, NULL, &fill, &comp, &scfg);
	if (err)
		die("AF_XDP socket on %s: %s", in, strerror(-err));
	static struct out outs[MAX_OUT];
	for (int i = 0; i < n_out; i++) {
		char *spec = argv[2 + i], *eq = strchr(spec, '=');
		if (!eq)
			die("'%s' is not OUT=DSTMAC", spec);
		*eq = 0;
		for (char *mac = strtok(eq + 1, ","); mac; mac = strtok(NULL, ",")) {
			if (outs[i].n_dst == MAX_DST)
				die("more than %d real servers on %s", MAX_DST, spec);
			parse_mac(mac, outs[i].dst[outs[i].n_dst++]);
		}
		if (!outs[i].n_dst)
			die("no DSTMAC for %s", spec);
		read_mac(spec, outs[i].src);
		err = xsk_socket__create_shared(&outs[i].xsk, spec, 0, umem, NULL, &outs[i].tx,
						&outs[i].fill, &outs[i].comp, &scfg);
		if (err)
			die("AF_XDP socket on %s: %s", spec, strerror(-err));
		outs[i].fd = xsk_socket__fd(outs[i].xsk);
		int budget = 512;
		/* Older kernels refuse it; 32 frames per sendto then. */
		setsockopt(outs[i].fd, SOL_XDP, XDP_MAX_TX_SKB_BUDGET, &budget, sizeof(budget));
	}
	int in_fd = xsk_socket__fd(xin);
	__u32 q = 0;
	/* Attach, then register the socket (packet-io.md §1 order). */
	int link = xdp_link(prog_fd_of(obj, "xskfwd"), in);
	if (bpf_map_update_elem(xsks, &q, &in_fd, 0))
		die("register the socket: %s", strerror(errno));
	printf("ready\n");
	fflush(stdout);

	for (uint32_t i = 0; i < FRAMES; i++)
		free_stack[n_free++] = (uint64_t)i * FRAME_SIZE;
	struct sigaction sa = {.sa_handler = on_signal};
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	uint64_t rx_total = 0, tx_total = 0;
	struct pollfd pfd = {.fd = in_fd, .events = POLLIN};
	int next_out = 0;
	while (!stop) {
		/* Completed TX frames back to the free stack. */
		for (int i = 0; i < n_out; i++) {
			uint32_t idx;
			uint32_t n = xsk_ring_cons__peek(&outs[i].comp, BATCH * 4, &idx);
			for (uint32_t k = 0; k < n; k++)
				free_stack[n_free++] = *xsk_ring_cons__comp_addr(&outs[i].comp, idx + k);
			xsk_ring_cons__release(&outs[i].comp, n);
		}
		/* Top up the fill ring (reserve is all or nothing: ask for what
		 * is free there). */
		uint32_t room = xsk_prod_nb_free(&fill, RING), idx;
		uint32_t want = room < n_free ? room : n_free;
		uint32_t n = xsk_ring_prod__reserve(&fill, want, &idx);
		for (uint32_t k = 0; k < n; k++)
			*xsk_ring_prod__fill_addr(&fill, idx + k) = free_stack[--n_free];
		xsk_ring_prod__submit(&fill, n);
		if (n && xsk_ring_prod__needs_wakeup(&fill))
			recvfrom(in_fd, NULL, 0, MSG_DONTWAIT, NULL, NULL);
		/* One batch: rewrite MACs, out by the OUTs in turn. */
		uint32_t got = xsk_ring_cons__peek(&rx, BATCH, &idx);
		for (uint32_t k = 0; k < got; k++) {
			const struct xdp_desc *d = xsk_ring_cons__rx_desc(&rx, idx + k);
			uint64_t addr = d->addr;
			uint32_t len = d->len;
			struct out *o = &outs[next_out];
			next_out = next_out + 1 == n_out ? 0 : next_out + 1;
			uint8_t *p = xsk_umem__get_data(area, addr);
			memcpy(p, o->dst[flow_pick(p, len, o->n_dst)], 6);
			memcpy(p + 6, o->src, 6);
			uint32_t t;
			if (xsk_ring_prod__reserve(&o->tx, 1, &t) == 1) {
				struct xdp_desc *td = xsk_ring_prod__tx_desc(&o->tx, t);
				td->addr = addr;
				td->len = len;
				td->options = 0;
				o->pending++;
			} else {
				free_stack[n_free++] = xsk_umem__extract_addr(addr);
			}
		}
		xsk_ring_cons__release(&rx, got);
		rx_total += got;
		/* Publish and kick: copy mode transmits only inside sendto(). */
		for (int i = 0; i < n_out; i++) {
			struct out *o = &outs[i];
			if (o->pending) {
				xsk_ring_prod__submit(&o->tx, o->pending);
				tx_total += o->pending;
				o->pending = 0;
			}
			if (xsk_prod_nb_free(&o->tx, RING) < RING)
				sendto(o->fd, NULL, 0, MSG_DONTWAIT, NULL, 0);
		}
		if (got == 0) {
			int timeout = n_free < FRAMES / 4 ? 1 : 100;
			poll(&pfd, 1, timeout);
		}
	}
	printf("rx %llu tx %llu\n", (unsigned long long)rx_total, (unsigned long long)tx_total);
	close(link);
	for (int i = 0; i < n_out; i++)
		xsk_socket__delete(outs[i].xsk);
	xsk_socket__delete(xin);
	xsk_umem__delete(umem);
	bpf_object__close(obj);
	return 0;
}
