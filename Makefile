# uvs — top-level tasks. `make demo` and `make test` work on a fresh machine
# (they install what they need through scripts/setup.sh when run as root).

CARGO ?= cargo

.PHONY: all build test lint unit demo demo-mem e2e setup

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
e2e: setup build
	bash tests/run.sh $(SCENARIOS)

test: setup lint unit e2e

# The seed's DR example live in a namespace lab (root): uvsd, uvsadm running
# the seed's director script, nginx real servers, curl.
demo: setup build
	bash tests/demo.sh

# The in-memory demo (no root, no namespaces).
demo-mem:
	$(CARGO) run --release -p uvs-engine --example demo

