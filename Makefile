# rs: a Rust OCI container runtime. `make demo` and `make test` work on a
# fresh Debian (bookworm) machine with the Rust toolchain, as root.

SHELL := /bin/bash
export PATH := $(HOME)/.cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
CARGO ?= cargo
DEBIAN_PKGS := pkg-config containerd runc crun busybox-static hyperfine iproute2 jq procps libseccomp-dev strace python3
DEMO_DIR := /tmp/rsrun-demo

.PHONY: all build release install uninstall deps lint unit integration vm-setup test demo bench clean

all: build

build:
	$(CARGO) build --workspace

# rsrun's release binary is static (glibc and libseccomp linked in): no
# dynamic loader work at every container start, nothing to swap under a
# running rsrun. The shim is long-lived and one per container, so it is
# built for memory (profile `shim`, opt-level z): non-PIE, so its
# read-only data needs no relocation (no private copy per shim), glibc
# dynamic (its pages are shared with every other process), libseccomp
# static (nothing else maps it). See bench/README.md for the PSS figures.
TARGET := x86_64-unknown-linux-gnu
MULTIARCH := $(shell gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)
RSRUN_RELEASE := target/$(TARGET)/release/rsrun
SHIM_RELEASE := target/$(TARGET)/shim/containerd-shim-rs-v2
release:
	RUSTFLAGS="-C target-feature=+crt-static" LIBSECCOMP_LINK_TYPE=static \
	LIBSECCOMP_LIB_PATH=/usr/lib/$(MULTIARCH) \
	$(CARGO) build --release -p rsrun --target $(TARGET)
	RUSTFLAGS="-C relocation-model=static" LIBSECCOMP_LINK_TYPE=static \
	LIBSECCOMP_LIB_PATH=/usr/lib/$(MULTIARCH) \
	$(CARGO) build --profile shim -p containerd-shim-rs-v2 --target $(TARGET)

# containerd finds the shim for runtime io.containerd.rs.v2 as
# containerd-shim-rs-v2 on its PATH; /usr/local/bin is on the PATH systemd
# gives services (containerd.service).
PREFIX ?= /usr/local
BINDIR = $(DESTDIR)$(PREFIX)/bin
install: release
	install -d $(BINDIR)
	install -m 0755 $(RSRUN_RELEASE) $(SHIM_RELEASE) $(BINDIR)/

uninstall:
	rm -f $(BINDIR)/rsrun $(BINDIR)/containerd-shim-rs-v2

# Debian packages the build, the tests and the benchmarks use.
deps:
	@missing=$$(for p in $(DEBIAN_PKGS); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing:" $$missing; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi
	@command -v $(CARGO) >/dev/null || { echo "cargo not found: install the Rust toolchain (rustup)"; exit 1; }

vm-setup:
	integration/vm/setup.sh

lint:
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

unit:
	$(CARGO) test -p runtime-core -p rsrun -p rs-proto -p containerd-shim-rs-v2

integration: build
	$(CARGO) test -p integration -- --test-threads=2
	integration/leakcheck.sh

# Unit and integration output goes to target/test.log too; the last line
# sums every cargo test result ("total: N passed, M failed, K skipped").
test: deps vm-setup lint
	@mkdir -p target
	@set -o pipefail; $(MAKE) --no-print-directory unit integration 2>&1 | tee target/test.log
	@integration/summary.sh target/test.log

# Build, make a busybox bundle and run one container that prints from inside,
# first with rsrun, then through containerd and our shim
# (deploy/demo-containerd.sh: a private containerd unless one is running).
demo: deps release
	@rm -rf $(DEMO_DIR) && mkdir -p $(DEMO_DIR)
	@integration/rootfs.sh $(DEMO_DIR)/rootfs
	@cd $(DEMO_DIR) && $(CURDIR)/$(RSRUN_RELEASE) spec
	@jq '.process.terminal=false | .process.args=["sh","-c","echo \"hello from $$(hostname): pid $$$$, uid $$(id -u), $$(grep -c . /proc/self/mountinfo) mounts, caps $$(grep CapEff /proc/self/status | cut -f2)\""]' \
		$(DEMO_DIR)/config.json > $(DEMO_DIR)/config.tmp && mv $(DEMO_DIR)/config.tmp $(DEMO_DIR)/config.json
	@echo '$$ rsrun run --bundle $(DEMO_DIR) demo'
	@$(RSRUN_RELEASE) --root /run/rsrun-demo run --bundle $(DEMO_DIR) demo-$$$$ && \
		deploy/demo-containerd.sh $(SHIM_RELEASE) $(DEMO_DIR)/rootfs; rc=$$?; \
		rm -rf $(DEMO_DIR) /run/rsrun-demo; exit $$rc

bench: deps release
	bench/run.sh
	SHIM=$(SHIM_RELEASE) bench/shim.sh

clean:
	$(CARGO) clean
