# uvs — top-level tasks. `make demo` and `make test` work on a fresh machine
# (they install what they need through scripts/setup.sh when run as root).

CARGO ?= cargo

.PHONY: all build test lint unit demo setup fuzz fuzz-smoke bench-engine callgrind

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

test: setup lint unit fuzz-smoke

demo: setup
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
