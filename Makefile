# uvs — top-level tasks. `make demo` and `make test` work on a fresh machine
# (they install what they need through scripts/setup.sh when run as root).

CARGO ?= cargo

.PHONY: all build test lint unit demo demo-mem e2e setup fuzz fuzz-smoke bench-engine callgrind \
	bench-first bench bench-smoke

all: build

setup:
	bash scripts/setup.sh

build:
	$(CARGO) build --workspace --release

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

unit:
	$(CARGO) test --workspace

# The end-to-end suite (root): scenarios in network namespaces against the
# release binaries; `make e2e SCENARIOS="dr nat" BACKENDS=tun` runs a part.
# A failing scenario fails the target and its whole log is printed.
e2e: setup build
	bash tests/run.sh $(SCENARIOS)

# Everything CI runs (.ci/run, as root): format and lints, unit and
# namespace tests, the end-to-end suite (about 6 minutes), fuzz smoke, a
# 2-second smoke of the benchmark harness.
test: setup lint unit e2e fuzz-smoke bench-smoke

# The seed's DR example live in a namespace lab (root): uvsd, uvsadm running
# the seed's director script, nginx real servers, curl.
demo: setup build
	bash tests/demo.sh

# The in-memory demo (no root, no namespaces).
demo-mem:
	$(CARGO) run --release -p uvs-engine --example demo


# --- fuzzing and benchmarks (see bench/README.md) ---

# ~45 s of fuzzing the whole packet path; fails on any crash.
fuzz-smoke:
	bash scripts/fuzz.sh smoke

# At least 10 M frames of fuzzing; records the figures in bench/RESULTS.md.
fuzz:
	bash scripts/fuzz.sh long

# Criterion: ns per packet, established and new-connection paths.
bench-engine:
	$(CARGO) bench -p uvs-engine --bench engine

# Instructions per packet under callgrind; records them in bench/RESULTS.md.
callgrind: setup
	CALLGRIND_WRITE=1 bash bench/callgrind.sh

# First throughput figure: small-packet UDP through the director, uvsd
# AF_XDP vs TUN vs kernel forwarding (root); writes bench/RESULTS.md's
# section "First throughput figure" when RESULTS_WRITE=1.
bench-first: setup build
	bash bench/first-throughput.sh

# The benchmark suite (issue 6, root, < 30 min): every scenario of
# bench/scenarios, or one with `make bench SCENARIO=pps`; refreshes
# bench/data, bench/plots and bench/RESULTS.md (see bench/README.md).
bench: setup build
	bash bench/run.sh $(SCENARIO)

# CI's check of the harness (root, < 1 min): the bench tools and the debug
# binaries build, one 2-second repetition of the pps scenario's kernel,
# AF_XDP and TUN cases runs (nothing committed changes), and its CSV must
# hold non-zero delivered pps for every case.
BENCH_SMOKE_CASES ?= kernel xsk-bare uvsd-xdp-nat tun-bare uvsd-tun
bench-smoke: setup
	$(CARGO) build --workspace --bins
	BENCH_SMOKE=1 BENCH_OUT=$(CURDIR)/target/bench-smoke BENCH_CASES="$(BENCH_SMOKE_CASES)" \
		UVSD=$(CURDIR)/target/debug/uvsd UVSADM=$(CURDIR)/target/debug/uvsadm bash bench/run.sh pps
	python3 bench/lib/check.py target/bench-smoke/pps.csv delivered
