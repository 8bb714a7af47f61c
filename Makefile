# gpuvirt — the two set-up commands (README.md):
#   make demo    install Debian packages, build, create a simulated 8x H100 host, show its inventory
#   make check   install Debian packages, build (plain and ASan+UBSan), run every test
# Other targets: deps, build, build-asan, test, test-asan, bench, clean.

BUILD      ?= build
BUILD_ASAN ?= build-asan
DEMO_ROOT  ?= $(CURDIR)/$(BUILD)/demo-host
MESON_TEST_FLAGS ?= --print-errorlogs --num-processes 2

.PHONY: all deps build build-asan demo check test test-asan bench clean

all: build

deps:
	@./deps/install-debian.sh

$(BUILD)/build.ninja:
	meson setup $(BUILD) --buildtype=debugoptimized

$(BUILD_ASAN)/build.ninja:
	meson setup $(BUILD_ASAN) --buildtype=debug -Db_sanitize=address,undefined -Db_lundef=false

build: deps $(BUILD)/build.ninja
	ninja -C $(BUILD)

build-asan: deps $(BUILD_ASAN)/build.ninja
	ninja -C $(BUILD_ASAN)

demo: build
	@rm -rf "$(DEMO_ROOT)"
	$(BUILD)/sim/tool/gpuvirt-sim create --profile dgx-h100 --root "$(DEMO_ROOT)"
	$(BUILD)/sim/tool/gpuvirt-sim exec --root "$(DEMO_ROOT)" -- $(BUILD)/src/cli/gpuvirt host inspect

test: build
	meson test -C $(BUILD) $(MESON_TEST_FLAGS)

test-asan: build-asan
	meson test -C $(BUILD_ASAN) $(MESON_TEST_FLAGS)

check: test test-asan
	@./deps/test-summary.sh $(BUILD) $(BUILD_ASAN)

bench: build
	$(BUILD)/bench/bench-inventory

clean:
	rm -rf $(BUILD) $(BUILD_ASAN)
