# uvs — top-level tasks. `make demo` and `make test` work on a fresh machine
# (they install what they need through scripts/setup.sh when run as root).

CARGO ?= cargo

.PHONY: all build test lint unit demo setup

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

test: setup lint unit

demo: setup
	$(CARGO) run --release -p uvs-engine --example demo

