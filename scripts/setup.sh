#!/usr/bin/env bash
# Install what building and testing uvs needs on a fresh Debian machine.
# Idempotent; does nothing that is already done. Needs root for apt-get.
#
# - valgrind: instruction counts in the benchmarks.
# - clang llvm libelf-dev zlib1g-dev m4 pkg-config libpcap-dev: building the
#   XDP program (clang -target bpf) and libbpf/libxdp under xsk-rs.
# - iproute2 ethtool iputils-ping python3: the namespace/veth labs of the
#   I/O tests (ip netns, ethtool -K tx off, ping, a tiny TCP server).
# - procps: sysctl, which the TUN backend and decap role run (and the labs).
# - nginx-light curl wrk util-linux: the end-to-end suite (tests/): nginx
#   on the real servers, curl and wrk on the clients, setpriv for the
#   non-root peer check. tcpdump for looking at a failing lab.
# - libbpf-dev libxdp-dev: the benchmark's C packet tools (bench/tools:
#   live-frames generator, XDP sink, bare AF_XDP forwarder).
# - nftables: the kernel DNAT case of the benchmarks. python3-matplotlib:
#   bench/plot.py. sysstat (mpstat) and linux-perf: profiles in the
#   benchmark write-up.
# - haproxy libnginx-mod-stream nftables sockperf sysstat: the benchmark
#   scenarios conns/table/latency (bench/scenarios/): the proxies and the
#   kernel DNAT compared with uvsd, sockperf for latency, mpstat, perf
#   (the profile of uvsd in the conns scenario).
# - netbase: /etc/protocols, by which `ip rule ... ipproto sctp` (the TUN
#   backend's steering of SCTP NAT replies) names protocol 132. The SCTP
#   scenario's client and responder are plain python3 over raw sockets.
set -euo pipefail

need_apt=()
for pkg in valgrind clang llvm libelf-dev zlib1g-dev m4 pkg-config libpcap-dev \
  iproute2 ethtool iputils-ping python3 procps nginx-light curl wrk util-linux tcpdump \
  libbpf-dev libxdp-dev nftables python3-matplotlib sysstat linux-perf \
  haproxy libnginx-mod-stream sockperf netbase; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need_apt+=("$pkg")
done
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup: missing packages ${need_apt[*]} and not root; install them and rerun" >&2
    exit 1
  fi
  echo "setup: apt-get install ${need_apt[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
