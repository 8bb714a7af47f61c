# gpuvirt — the two set-up commands (README.md):
#   make demo    install Debian packages, build, start a simulated two-host cluster (controller and
#                an agent per host, contrib/sim-cluster.sh), create VMs in every GPU mode, list them
#   make check   install Debian packages, build (plain and ASan+UBSan), run every test; then the
#                threaded parts under TSan (test-tsan) and the fuzz harnesses (fuzz-ci)
# Other targets: demo-stop, deps, web, build, build-asan, test, test-asan, bench, clean,
#              fuzz-ci (the libFuzzer harnesses for their CI time) and test-tsan (the threaded
#              parts under ThreadSanitizer), both part of check; docs/fuzzing.md.

BUILD      ?= build
BUILD_ASAN ?= build-asan
BUILD_FUZZ ?= build-fuzz
BUILD_TSAN ?= build-tsan
DEMO_DIR   ?= $(CURDIR)/$(BUILD)/demo-cluster
MESON_TEST_FLAGS ?= --print-errorlogs --num-processes 2

.PHONY: all deps web build build-asan demo demo-stop check test test-asan bench clean \
        fuzz-ci test-tsan

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

# On a failure deps/test-failures.sh prints each failed test's "not ok" lines last (a CI log's tail).
test: build
	meson test -C $(BUILD) $(MESON_TEST_FLAGS) || { ./deps/test-failures.sh $(BUILD); exit 1; }

# The leak cycles (tests/reliability/test-leaks.sh, R16) run 100 in test and 30 here; the
# crash harnesses (suite crash: SIGKILLed daemons, the longest tests) run in test only.
test-asan: build-asan
	LEAK_CYCLES=30 meson test -C $(BUILD_ASAN) $(MESON_TEST_FLAGS) --no-suite crash || \
		{ ./deps/test-failures.sh $(BUILD_ASAN); exit 1; }

# test-tsan and fuzz-ci add about 5 and 3.5 minutes on 2 cores (docs/fuzzing.md, "In CI").
check: web test test-asan test-tsan fuzz-ci
	@./deps/test-summary.sh $(BUILD) $(BUILD_ASAN) $(BUILD_TSAN)

# Every libFuzzer harness of fuzz/ for its CI time (api-body and qmp 60 s, the others 15 s;
# reliability.md R14) in $(BUILD_FUZZ) (clang, ASan+UBSan); fails on a finding. The release
# hour: fuzz/run.sh TARGET --time 3600.
fuzz-ci: deps
	BUILD_FUZZ=$(BUILD_FUZZ) ./fuzz/run.sh ci

# The threaded parts under ThreadSanitizer (R15; docs/fuzzing.md "TSan"): the suites http
# (server, client, TLS, WebSockets), store, controller (the API, auth, metrics, audit, and every
# cluster test, whose daemons run the poller, collector, heartbeats and migrations), agent
# (sampler, oplog, reconciler, the agent end to end) and fuzz (the API harness's inputs against
# a real controller and server). Reports go to files (log_path), so a daemon's race is caught
# too, not only a test program's; any report fails the target.
TSAN_SUITES ?= http store controller agent fuzz

$(BUILD_TSAN)/build.ninja:
	meson setup $(BUILD_TSAN) --buildtype=debugoptimized -Db_sanitize=thread -Db_lundef=false \
		-Dwerror=false

# fuzz/tsan-run.sh: a finding fails at once; a test that failed beside the TSan runtime's own
# mapping failure (a machine resource, not a race) runs once more, and that run decides.
test-tsan: deps $(BUILD_TSAN)/build.ninja
	ninja -C $(BUILD_TSAN)
	./fuzz/tsan-run.sh $(BUILD_TSAN) $(TSAN_SUITES)

bench: build
	$(BUILD)/bench/bench-inventory

clean:
	-@[ ! -f "$(DEMO_DIR)/cluster.env" ] || ./contrib/sim-cluster.sh stop "$(DEMO_DIR)"
	rm -rf $(BUILD) $(BUILD_ASAN) $(BUILD_FUZZ) $(BUILD_TSAN) web/dist
