// SPDX-License-Identifier: GPL-2.0 OR Apache-2.0
/*
 * bench/tools/xskfwd.c — the bare AF_XDP forwarder: the userspace ceiling
 * the pps and conns scenarios compare uvsd with (bench code, not
 * product). It does what uvsd's AF_XDP worker does minus the engine: one
 * UMEM shared (XDP_SHARED_UMEM) by a socket per interface, frames
 * received get their MACs rewritten and leave by another interface,
 * without a copy. The same tricks as uvsd (engine/src/io/afxdp.rs): 4096
 * frames of 2048 bytes, rings of 1024, batches of 64, need-wakeup,
 * XDP_MAX_TX_SKB_BUDGET 512, a TX kick per round while frames are
 * outstanding (copy mode sends only inside sendto), busy loop while
 * there is work and poll() when idle. Runs until SIGTERM/SIGINT; prints
 * "ready" once its sockets are registered and "rx N tx N" at exit.
 *
 *   xskfwd IN OUT=DSTMAC[,DSTMAC...] [OUT=DSTMAC...]
 *   xskfwd --nat VIP PORT CIF=CLIENTMAC SIF=RSIP@RSMAC[,RSIP@RSMAC...]
 *
 * Forward mode (pps, and DR in conns): frames received on IN (IPv4 TCP
 * and UDP; the rest stays with the kernel) get destination = a real
 * server's MAC, source = the OUT's own, and leave by the OUTs in turn.
 * An OUT may name several real servers: each flow then keeps to one,
 * chosen by a hash of its IPv4 source address and port.
 *
 * NAT mode (the conns scenario's AF_XDP NAT ceiling): a stateless NAT, as
 * bench/tools/tunloop's. A TCP/UDP frame on CIF to VIP:PORT goes to the
 * real server the hash of its source address and port picks (destination
 * address rewritten, IPv4 and TCP/UDP checksums patched, RFC 1624) out of
 * SIF; a frame on SIF from a real server's PORT gets VIP as its source and
 * leaves by CIF toward CLIENTMAC. Anything else received is dropped.
 */
#define _GNU_SOURCE
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <xdp/xsk.h>
#include "util.h"
#include "csum.h"

#define FRAMES 4096
#define FRAME_SIZE 2048
#define RING 1024
#ifndef BATCH
#define BATCH 64
#endif
#define MAX_PORTS 8
#define MAX_DST 8
#ifndef SOL_XDP
#define SOL_XDP 283
#endif
#define XDP_MAX_TX_SKB_BUDGET 9

static volatile sig_atomic_t stop;
static void on_signal(int sig) { (void)sig; stop = 1; }

/* One interface: a socket on its queue 0, with the rings it uses. */
struct port {
	const char *ifname;
	struct xsk_socket *xsk;
	struct xsk_ring_cons rx, comp;
	struct xsk_ring_prod tx, fill;
	int receives; /* has an RX ring and the XDP program */
	uint8_t src[6];
	uint8_t dst[MAX_DST][6]; /* forward: real servers; NAT CIF: the client */
	uint32_t dst_ip[MAX_DST]; /* NAT SIF: the real servers' addresses */
	uint32_t n_dst;
	uint32_t pending;
	int fd;
};

static struct port ports[MAX_PORTS];
static int n_ports;
static uint64_t free_stack[FRAMES];
static uint32_t n_free;
static void *area;

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

/* Which of n real servers a flow goes to: a hash of its IPv4 source
 * address and (TCP/UDP) source port; 0 when n is 1 or the frame is too
 * short to tell. */
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

/* NAT mode's addresses (network order) and port (host order). */
static uint32_t nat_vip;
static int nat_port = -1;

/* NAT: where frame p (len bytes, received on port `from`) goes: the port
 * index, with its addresses and MACs rewritten; -1 to drop it. Port 0 is
 * CIF, port 1 SIF. */
static int nat_route(int from, uint8_t *p, uint32_t len)
{
	if (len < 14 + 20 || p[12] != 0x08 || p[13] != 0x00)
		return -1;
	uint8_t *ip = p + 14;
	uint32_t ihl = (ip[0] & 0x0f) * 4u;
	int frag = (ip[6] & 0x3f) | ip[7];
	if ((ip[0] >> 4) != 4 || ihl < 20 || frag || len < 14 + ihl + 20 ||
	    (ip[9] != IPPROTO_TCP && ip[9] != IPPROTO_UDP))
		return -1;
	uint32_t saddr, daddr;
	memcpy(&saddr, ip + 12, 4);
	memcpy(&daddr, ip + 16, 4);
	int sport = ip[ihl] << 8 | ip[ihl + 1], dport = ip[ihl + 2] << 8 | ip[ihl + 3];
	struct port *sif = &ports[1], *cif = &ports[0];
	if (from == 0 && daddr == nat_vip && dport == nat_port) {
		uint32_t k = flow_pick(p, len, sif->n_dst);
		rewrite_addr(ip, len - 14, ihl, 16, sif->dst_ip[k]);
		memcpy(p, sif->dst[k], 6);
		memcpy(p + 6, sif->src, 6);
		return 1;
	}
	if (from == 1 && sport == nat_port) {
		for (uint32_t k = 0; k < sif->n_dst; k++) {
			if (saddr == sif->dst_ip[k]) {
				rewrite_addr(ip, len - 14, ihl, 12, nat_vip);
				memcpy(p, cif->dst[0], 6);
				memcpy(p + 6, cif->src, 6);
				return 0;
			}
		}
	}
	return -1;
}

/* "IF=MAC[,MAC...]" (or, with ips, "IF=IP@MAC[,IP@MAC...]") into a port. */
static void parse_port(char *spec, struct port *o, int with_ips)
{
	char *eq = strchr(spec, '=');
	if (!eq)
		die("'%s' is not IF=%s", spec, with_ips ? "IP@MAC[,...]" : "MAC[,...]");
	*eq = 0;
	o->ifname = spec;
	for (char *save = NULL, *t = strtok_r(eq + 1, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		if (o->n_dst == MAX_DST)
			die("more than %d real servers on %s", MAX_DST, spec);
		if (with_ips) {
			char *at = strchr(t, '@');
			if (!at)
				die("'%s' is not IP@MAC", t);
			*at = 0;
			o->dst_ip[o->n_dst] = htonl(parse_ip4(t));
			t = at + 1;
		}
		parse_mac(t, o->dst[o->n_dst++]);
	}
	if (!o->n_dst)
		die("no destination for %s", spec);
}

/* The socket of port i on the UMEM (the first one takes the UMEM's own
 * fill and completion rings); receiving ports get the XDP program. */
static void open_port(int i, struct xsk_umem *umem, struct xsk_ring_prod *ufill,
		      struct xsk_ring_cons *ucomp)
{
	struct port *o = &ports[i];
	struct xsk_socket_config scfg = {
		.rx_size = RING, .tx_size = RING,
		.libxdp_flags = XSK_LIBXDP_FLAGS__INHIBIT_PROG_LOAD,
		.bind_flags = XDP_USE_NEED_WAKEUP,
	};
	read_mac(o->ifname, o->src);
	/* The first socket uses the UMEM's own fill and completion rings;
	 * libxdp makes a pair for each further one. */
	int err = xsk_socket__create_shared(&o->xsk, o->ifname, 0, umem, o->receives ? &o->rx : NULL,
					    &o->tx, i == 0 ? ufill : &o->fill,
					    i == 0 ? ucomp : &o->comp, &scfg);
	if (err)
		die("AF_XDP socket on %s: %s", o->ifname, strerror(-err));
	if (i == 0) {
		o->fill = *ufill;
		o->comp = *ucomp;
	}
	o->fd = xsk_socket__fd(o->xsk);
	int budget = 512;
	/* Older kernels refuse it; 32 frames per sendto then. */
	setsockopt(o->fd, SOL_XDP, XDP_MAX_TX_SKB_BUDGET, &budget, sizeof(budget));
}

/* Attach the steering program to a receiving port and register its
 * socket (packet-io.md §1 order). Returns the link fd. Each port loads
 * its own copy of the object: its own XSKMAP, keyed by queue 0. */
static int steer_port(struct port *o)
{
	struct bpf_object *obj = load_beside("xskfwd.bpf.o");
	int xsks = map_fd_of(obj, "xsks_map");
	int link = xdp_link(prog_fd_of(obj, "xskfwd"), o->ifname);
	__u32 q = 0;
	if (bpf_map_update_elem(xsks, &q, &o->fd, 0))
		die("register the socket on %s: %s", o->ifname, strerror(errno));
	return link;
}

int main(int argc, char **argv)
{
	int nat = argc > 1 && !strcmp(argv[1], "--nat");
	if (nat) {
		if (argc != 6) {
			fprintf(stderr, "usage: xskfwd --nat VIP PORT CIF=CLIENTMAC SIF=RSIP@RSMAC[,...]\n");
			return 2;
		}
		nat_vip = htonl(parse_ip4(argv[2]));
		nat_port = atoi(argv[3]);
		if (nat_port <= 0 || nat_port > 65535)
			die("bad port %s", argv[3]);
		parse_port(argv[4], &ports[0], 0);
		parse_port(argv[5], &ports[1], 1);
		ports[0].receives = ports[1].receives = 1;
		n_ports = 2;
	} else {
		if (argc < 3 || argc - 1 > MAX_PORTS) {
			fprintf(stderr,
				"usage: xskfwd IN OUT=DSTMAC[,DSTMAC...] [OUT=DSTMAC...] (at most %d)\n",
				MAX_PORTS - 1);
			return 2;
		}
		ports[0].ifname = argv[1];
		ports[0].receives = 1;
		for (int i = 2; i < argc; i++)
			parse_port(argv[i], &ports[i - 1], 0);
		n_ports = argc - 1;
	}

	area = mmap(NULL, (size_t)FRAMES * FRAME_SIZE, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (area == MAP_FAILED)
		die("mmap UMEM: %s", strerror(errno));
	struct xsk_ring_prod ufill;
	struct xsk_ring_cons ucomp;
	struct xsk_umem *umem;
	struct xsk_umem_config ucfg = {
		.fill_size = RING, .comp_size = RING, .frame_size = FRAME_SIZE,
	};
	int err = xsk_umem__create(&umem, area, (uint64_t)FRAMES * FRAME_SIZE, &ufill, &ucomp, &ucfg);
	if (err)
		die("create UMEM: %s", strerror(-err));
	for (int i = 0; i < n_ports; i++)
		open_port(i, umem, &ufill, &ucomp);
	int links[MAX_PORTS];
	for (int i = 0; i < n_ports; i++)
		links[i] = ports[i].receives ? steer_port(&ports[i]) : -1;
	printf("ready\n");
	fflush(stdout);

	for (uint32_t i = 0; i < FRAMES; i++)
		free_stack[n_free++] = (uint64_t)i * FRAME_SIZE;
	struct sigaction sa = {.sa_handler = on_signal};
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	uint64_t rx_total = 0, tx_total = 0;
	struct pollfd pfds[MAX_PORTS];
	int n_pfds = 0;
	for (int i = 0; i < n_ports; i++)
		if (ports[i].receives)
			pfds[n_pfds++] = (struct pollfd){.fd = ports[i].fd, .events = POLLIN};
	int next_out = 1; /* forward mode: the OUTs in turn */
	while (!stop) {
		/* Completed TX frames back to the free stack. */
		for (int i = 0; i < n_ports; i++) {
			uint32_t idx;
			uint32_t n = xsk_ring_cons__peek(&ports[i].comp, BATCH * 4, &idx);
			for (uint32_t k = 0; k < n; k++)
				free_stack[n_free++] = *xsk_ring_cons__comp_addr(&ports[i].comp, idx + k);
			xsk_ring_cons__release(&ports[i].comp, n);
		}
		uint32_t got = 0;
		for (int r = 0; r < n_ports; r++) {
			struct port *in = &ports[r];
			if (!in->receives)
				continue;
			/* Top up the fill ring (reserve is all or nothing: ask for
			 * what is free there; with two receiving ports, half the
			 * free frames each). */
			uint32_t room = xsk_prod_nb_free(&in->fill, RING), idx;
			uint32_t avail = nat ? n_free / 2 + (r == 1 ? n_free % 2 : 0) : n_free;
			uint32_t want = room < avail ? room : avail;
			uint32_t n = xsk_ring_prod__reserve(&in->fill, want, &idx);
			for (uint32_t k = 0; k < n; k++)
				*xsk_ring_prod__fill_addr(&in->fill, idx + k) = free_stack[--n_free];
			xsk_ring_prod__submit(&in->fill, n);
			if (n && xsk_ring_prod__needs_wakeup(&in->fill))
				recvfrom(in->fd, NULL, 0, MSG_DONTWAIT, NULL, NULL);
			/* One batch: rewrite, out by the port it is routed to. */
			uint32_t batch = xsk_ring_cons__peek(&in->rx, BATCH, &idx);
			for (uint32_t k = 0; k < batch; k++) {
				const struct xdp_desc *d = xsk_ring_cons__rx_desc(&in->rx, idx + k);
				uint64_t addr = d->addr;
				uint32_t len = d->len;
				uint8_t *p = xsk_umem__get_data(area, addr);
				int to;
				if (nat) {
					to = nat_route(r, p, len);
				} else {
					to = next_out;
					next_out = next_out + 1 == n_ports ? 1 : next_out + 1;
					memcpy(p, ports[to].dst[flow_pick(p, len, ports[to].n_dst)], 6);
					memcpy(p + 6, ports[to].src, 6);
				}
				uint32_t t;
				if (to >= 0 && xsk_ring_prod__reserve(&ports[to].tx, 1, &t) == 1) {
					struct xdp_desc *td = xsk_ring_prod__tx_desc(&ports[to].tx, t);
					td->addr = addr;
					td->len = len;
					td->options = 0;
					ports[to].pending++;
				} else {
					free_stack[n_free++] = xsk_umem__extract_addr(addr);
				}
			}
			xsk_ring_cons__release(&in->rx, batch);
			got += batch;
		}
		rx_total += got;
		/* Publish and kick: copy mode transmits only inside sendto(). */
		for (int i = 0; i < n_ports; i++) {
			struct port *o = &ports[i];
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
			poll(pfds, n_pfds, timeout);
		}
	}
	printf("rx %llu tx %llu\n", (unsigned long long)rx_total, (unsigned long long)tx_total);
	for (int i = 0; i < n_ports; i++) {
		if (links[i] >= 0)
			close(links[i]);
		xsk_socket__delete(ports[i].xsk);
	}
	xsk_umem__delete(umem);
	return 0;
}
