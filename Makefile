# gpuvirt — the two set-up commands (README.md):
#   make demo    install Debian packages, build, start a simulated two-host cluster (controller and
#                an agent per host, contrib/sim-cluster.sh), create VMs in every GPU mode, list them
#   make check   install Debian packages, build (plain and ASan+UBSan), run every test
# Other targets: demo-stop, deps, web, build, build-asan, test, test-asan, bench, clean.

BUILD      ?= build
BUILD_ASAN ?= build-asan
DEMO_DIR   ?= $(CURDIR)/$(BUILD)/demo-cluster
MESON_TEST_FLAGS ?= --print-errorlogs --num-processes 2

.PHONY: all deps web build build-asan demo demo-stop check test test-asan bench clean

all: build

deps:
	@./deps/install-debian.sh

$(BUILD)/build.ninja:
	meson setup $(BUILD) --buildtype=debugoptimized

$(BUILD_ASAN)/build.ninja:
	meson setup $(BUILD_ASAN) --buildtype=debug -Db_sanitize=address,undefined -Db_lundef=false

# The dashboard (web/, docs/dashboard.md): npm ci from the lock file, esbuild into web/dist.
web: deps
	cd web && npm ci --no-audit --no-fund && npm run build

build: deps web $(BUILD)/build.ninja
	ninja -C $(BUILD)

build-asan: deps $(BUILD_ASAN)/build.ninja
	ninja -C $(BUILD_ASAN)

# A fresh cluster each time (a running demo is stopped first); it keeps running after make exits.
demo: build
	@GPUVIRT_BUILD="$(CURDIR)/$(BUILD)" ./contrib/sim-cluster.sh demo "$(DEMO_DIR)"
	@echo "(or: make demo-stop)"

demo-stop:
	@GPUVIRT_BUILD="$(CURDIR)/$(BUILD)" ./contrib/sim-cluster.sh stop "$(DEMO_DIR)"

test: build
	meson test -C $(BUILD) $(MESON_TEST_FLAGS)

test-asan: build-asan
	meson test -C $(BUILD_ASAN) $(MESON_TEST_FLAGS)

check: web test test-asan
	@./deps/test-summary.sh $(BUILD) $(BUILD_ASAN)

bench: build
	$(BUILD)/bench/bench-inventory

clean:
	-@[ ! -f "$(DEMO_DIR)/cluster.env" ] || ./contrib/sim-cluster.sh stop "$(DEMO_DIR)"
	rm -rf $(BUILD) $(BUILD_ASAN) web/dist
