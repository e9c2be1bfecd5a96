#!/usr/bin/env bash
# Instructions per packet of each benchmark scenario, counted by callgrind.
#
#   bench/callgrind.sh            every scenario; prints a Markdown table
#   bench/callgrind.sh nat-new    one scenario (names: packet_loop list)
#
# engine/examples/packet_loop.rs runs N packets of a scenario; callgrind
# counts only its measured loop (--toggle-collect=*run_loop*), once with
# LONG and once with SHORT packets; (Ir_long - Ir_short) / (LONG - SHORT)
# is the cost of one more packet, with set-up and per-run constants
# cancelled. Instruction counts do not depend on machine load.
# Set CALLGRIND_WRITE=1 to replace the "Instructions per packet" section
# of bench/RESULTS.md with the table.
set -euo pipefail
cd "$(dirname "$0")/.."

short="${CALLGRIND_SHORT:-3200}"
long="${CALLGRIND_LONG:-12800}"

command -v valgrind >/dev/null 2>&1 || bash scripts/setup.sh
cargo build --release --quiet -p uvs-engine --example packet_loop
bin=target/release/examples/packet_loop

if [ $# -gt 0 ]; then scenarios=("$@"); else mapfile -t scenarios < <("$bin" list); fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

instructions() { # scenario packets -> Ir of run_loop and what it calls
  valgrind --tool=callgrind --toggle-collect='*run_loop*' \
    --callgrind-out-file="$tmp/out" "$bin" "$1" "$2" >/dev/null 2>"$tmp/err" || {
    cat "$tmp/err" >&2
    return 1
  }
  sed -n 's/^totals: *\([0-9]*\).*/\1/p' "$tmp/out"
}


table=$(mktemp)
{
  echo "| scenario | Ir/packet | Ir ($short pkts) | Ir ($long pkts) |"
  echo "|---|---|---|---|"
  for s in "${scenarios[@]}"; do
    a=$(instructions "$s" "$short")
    b=$(instructions "$s" "$long")
    per=$(awk -v a="$a" -v b="$b" -v n="$((long - short))" 'BEGIN { printf "%.0f", (b - a) / n }')
    echo "| $s | $per | $a | $b |"
  done
} | tee "$table"

if [ "${CALLGRIND_WRITE:-0}" = 1 ]; then
  section=$(mktemp)
  {
    echo "<!-- callgrind:begin (written by bench/callgrind.sh with CALLGRIND_WRITE=1) -->"
    echo "## Instructions per packet (callgrind)"
    echo
    echo "Run of $(date -u '+%Y-%m-%d %H:%M UTC'): \`CALLGRIND_WRITE=1 bench/callgrind.sh\`; release build,"
    echo "batches of 32, the measured loop only, (Ir($long) − Ir($short)) / $((long - short))."
    echo
    cat "$table"
    echo "<!-- callgrind:end -->"
  } >"$section"
  results=bench/RESULTS.md
  if [ -f "$results" ] && grep -q '<!-- callgrind:begin' "$results"; then
    awk -v file="$section" '
      /<!-- callgrind:begin/ { while ((getline line < file) > 0) print line; skip = 1; next }
      /<!-- callgrind:end -->/ { skip = 0; next }
      !skip { print }' "$results" >"$results.tmp"
    mv "$results.tmp" "$results"
  else
    { echo; cat "$section"; } >>"$results"
  fi
  rm -f "$section"
fi
rm -f "$table"
