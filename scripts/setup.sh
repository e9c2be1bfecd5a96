#!/usr/bin/env bash
# Install what building and testing uvs needs on a fresh Debian machine
# (iproute2: the daemon tests make a network namespace with `ip netns`).
# Idempotent; does nothing that is already done. Needs root for apt-get.
set -euo pipefail

need_apt=()
for pkg in valgrind iproute2; do
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
