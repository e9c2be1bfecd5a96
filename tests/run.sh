#!/usr/bin/env bash
# tests/run.sh — the end-to-end suite runner (root; see README "End-to-end tests").
#
#   tests/run.sh                  every scenario on every backend
#   tests/run.sh dr nat           only these scenarios
#   BACKENDS=tun tests/run.sh     only this backend
#
# Scenarios: lab (plumbing, no uvsd), then dr nat fullnat tun reload robust sctp
# on each backend (afxdp, tun). Each runs in its own namespaces with its
# own teardown; the runner prints one line per run and a summary, and
# exits non-zero when any failed. A run's output is kept in
# $E2E_LOGS (default target/e2e-logs) and printed whole when it fails
# (`make test` runs this suite: a failure must explain itself in CI).
set -o nounset -o pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
BACKENDS=${BACKENDS:-afxdp tun}
E2E_LOGS=${E2E_LOGS:-$root/target/e2e-logs}
mkdir -p "$E2E_LOGS"

if [ "$(id -u)" -ne 0 ]; then
  echo "tests/run.sh: the end-to-end suite needs root (network namespaces, XDP, TUN)" >&2
  exit 1
fi

scenarios=("$@")
[ ${#scenarios[@]} -gt 0 ] || scenarios=(lab dr nat fullnat tun reload robust sctp)

runs=()
for s in "${scenarios[@]}"; do
  [ -x "$here/scenarios/$s.sh" ] || { echo "no scenario '$s' in tests/scenarios" >&2; exit 1; }
  if [ "$s" = lab ]; then
    runs+=("lab")
  else
    for b in $BACKENDS; do runs+=("$s $b"); done
  fi
done

failed=()
start=$SECONDS
for r in "${runs[@]}"; do
  read -r s b <<<"$r"
  log="$E2E_LOGS/$s${b:+-$b}.log"
  t0=$SECONDS
  if bash "$here/scenarios/$s.sh" ${b:+"$b"} >"$log" 2>&1; then
    printf 'PASS  %-20s %4ds  (%d checks)\n' "$r" $((SECONDS - t0)) "$(grep -c '] ok: ' "$log")"
  else
    printf 'FAIL  %-20s %4ds\n' "$r" $((SECONDS - t0))
    sed 's/^/      /' "$log"
    failed+=("$r")
  fi
done
echo "e2e: $((${#runs[@]} - ${#failed[@]}))/${#runs[@]} passed in $((SECONDS - start))s${failed:+; failed: ${failed[*]}}"
[ ${#failed[@]} -eq 0 ]
