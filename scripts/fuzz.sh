#!/usr/bin/env bash
# Fuzz the whole packet path (fuzz/fuzz_targets/packet_path.rs).
#
#   scripts/fuzz.sh smoke   build, then ~45 s of fuzzing; fails on any crash (CI)
#   scripts/fuzz.sh long    runs of FUZZ_CHUNK_SECONDS (default 120 s) until at
#                           least 10,000,000 frames went through the engine, then
#                           records frames, time and result in bench/RESULTS.md
#                           (the "Fuzzing" section is replaced)
#
# Needs the nightly toolchain and cargo-fuzz; installs them if missing.
# The seed corpus (fuzz/corpus/packet_path, gitignored) is regenerated from
# fuzz/src/lib.rs on every run; what the fuzzer adds to it is kept.
set -euo pipefail
cd "$(dirname "$0")/.."

mode="${1:-smoke}"
smoke_seconds="${FUZZ_SMOKE_SECONDS:-45}"
chunk_seconds="${FUZZ_CHUNK_SECONDS:-120}"
min_frames=10000000

export PATH="$HOME/.cargo/bin:$PATH"
if ! rustup toolchain list | grep -q '^nightly'; then
  echo "fuzz: installing the nightly toolchain"
  rustup toolchain install nightly --profile minimal
fi
if ! command -v cargo-fuzz >/dev/null 2>&1; then
  echo "fuzz: installing cargo-fuzz"
  cargo install cargo-fuzz --locked
fi

corpus=fuzz/corpus/packet_path
(cd fuzz && cargo +nightly run --release --quiet --bin seed_corpus -- corpus/packet_path)
cargo +nightly fuzz build -O packet_path

case "$mode" in
  smoke)
    cargo +nightly fuzz run -O packet_path "$corpus" -- \
      -max_total_time="$smoke_seconds" -timeout=10 -print_final_stats=1
    ;;
  long)
    # Runs of FUZZ_CHUNK_SECONDS each, resuming from the corpus, until the
    # frames counted by the target reach min_frames (or a run fails).
    log=$(mktemp)
    start=$(date +%s)
    status=0
    frames=0
    inputs=0
    runs=0
    while [ "$status" -eq 0 ] && [ "$frames" -lt "$min_frames" ]; do
      cargo +nightly fuzz run -O packet_path "$corpus" -- \
        -max_total_time="$chunk_seconds" -timeout=10 -print_final_stats=1 >"$log" 2>&1 || status=$?
      grep -v '^"' "$log" | tail -n 3
      run_frames=$(sed -n 's/^uvs-fuzz: frames processed: \([0-9]*\)$/\1/p' "$log" | tail -n 1)
      run_inputs=$(sed -n 's/^stat::number_of_executed_units: *\([0-9]*\)$/\1/p' "$log" | tail -n 1)
      frames=$((frames + ${run_frames:-0}))
      inputs=$((inputs + ${run_inputs:-0}))
      runs=$((runs + 1))
      echo "fuzz: run $runs: ${run_frames:-0} frames; total $frames"
    done
    end=$(date +%s)
    if [ "$status" -ne 0 ]; then
      result="FAILED (exit $status; see the crash artifact under fuzz/artifacts/packet_path)"
    else
      result="passed: no crash, no failed check"
    fi
    secs=$((end - start))
    ratio=$(awk -v f="$frames" -v t="$min_frames" 'BEGIN { printf "%.2f", f / t }')
    section=$(mktemp)
    cat >"$section" <<MD
<!-- fuzz:begin (written by scripts/fuzz.sh long; replaced on each run) -->
## Fuzzing

Run of $(date -u '+%Y-%m-%d %H:%M UTC'): \`scripts/fuzz.sh long\` (cargo-fuzz, libFuzzer + ASan,
\`-O\`, one process at a time, $runs run(s) of \`-max_total_time=$chunk_seconds\` resuming from
the corpus, on a machine shared with other builds).

| measure | figure | target | ratio |
|---|---|---|---|
| frames through \`Engine::process\` | $frames | ≥ $min_frames | $ratio× |
| fuzz inputs (each a sequence of frames) | $inputs | | |
| wall time (build excluded) | $secs s | | |
| result | $result | no crash | |

Frames are counted by the target itself (a static counter of \`Engine::process\`
calls, one frame each, printed at exit), not derived from the number of inputs.
<!-- fuzz:end -->
MD
    results=bench/RESULTS.md
    mkdir -p bench
    if [ -f "$results" ] && grep -q '<!-- fuzz:begin' "$results"; then
      awk -v file="$section" '
        /<!-- fuzz:begin/ { while ((getline line < file) > 0) print line; skip = 1; next }
        /<!-- fuzz:end -->/ { skip = 0; next }
        !skip { print }' "$results" >"$results.tmp"
      mv "$results.tmp" "$results"
    else
      { echo; cat "$section"; } >>"$results"
    fi
    rm -f "$log" "$section"
    echo "fuzz: $frames frames in ${secs}s: $result"
    exit "$status"
    ;;
  *)
    echo "usage: $0 smoke|long" >&2
    exit 2
    ;;
esac
