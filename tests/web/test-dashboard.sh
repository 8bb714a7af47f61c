#!/bin/bash
# SPDX-License-Identifier: MIT
# test-dashboard.sh — the web dashboard end to end (TAP): builds web/dist when needed, starts a
# simulated two-host cluster (contrib/sim-cluster.sh) and runs dashboard.test.mjs in chromium.
# Skips, saying why, when node, chromium or web/node_modules (npm ci) is missing.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
WEB=$REPO/web
CHROMIUM=${CHROMIUM:-/usr/bin/chromium}

skip() {
        echo "1..0 # SKIP $*"
        exit 0
}
command -v node >/dev/null 2>&1 || skip "node is not installed (make deps)"
[ -x "$CHROMIUM" ] || skip "no chromium at $CHROMIUM (make deps installs Debian's; CHROMIUM names another)"
[ -d "$WEB/node_modules/playwright-core" ] ||
        skip "web/node_modules is not installed (make web, or cd web && npm ci)"
for b in "${GPUVIRTD:-}" "${GPUVIRT:-}" "${GPUVIRT_SIM:-}"; do
        [ -x "$b" ] || skip "GPUVIRTD, GPUVIRT and GPUVIRT_SIM must name the built binaries (meson test sets them)"
done

TMP=$(mktemp -d /tmp/gpuvirt-web.XXXXXX)
CL=$TMP/cluster
SHOTS=${GPUVIRT_SCREENSHOT_DIR:-$TMP/screenshots}
cleanup() {
        "$REPO/contrib/sim-cluster.sh" stop "$CL" >/dev/null 2>&1
        [ -n "${GPUVIRT_TEST_KEEP_ROOT:-}" ] || rm -rf "$TMP"
}
trap cleanup EXIT

# The dashboard as the sources are now (esbuild takes a fraction of a second), in a directory
# of this test's own, so a developer's web/dist is left alone.
if ! (cd "$WEB" && GPUVIRT_WEB_OUT="$TMP/dist" node build.mjs >"$TMP/build.log" 2>&1); then
        echo "1..1"
        echo "not ok 1 - web build"
        sed 's/^/# /' "$TMP/build.log"
        exit 1
fi

# Two hosts of the same model, so a vGPU VM can move live between them.
if ! GPUVIRT_WEB_DIR="$TMP/dist" "$REPO/contrib/sim-cluster.sh" start "$CL" --hosts 2 \
        --profiles dgx-h100 --same-group >"$TMP/start.log" 2>&1; then
        echo "1..1"
        echo "not ok 1 - simulated cluster starts"
        sed 's/^/# /' "$TMP/start.log" "$CL"/logs/*.log 2>/dev/null | tail -n 40
        exit 1
fi
. "$CL/cluster.env"
mkdir -p "$SHOTS"
node "$HERE/dashboard.test.mjs" "$CONTROLLER_URL" "$(cat "$CL/dashboard.token")" "$SHOTS" \
        "$WEB/node_modules/playwright-core/index.mjs" "$CHROMIUM"
rc=$?
if [ $rc -ne 0 ]; then
        for f in "$CL"/logs/*.log; do
                echo "# --- $f"
                tail -n 15 "$f" | sed 's/^/# /'
        done
fi
exit $rc
