#!/bin/bash
# SPDX-License-Identifier: MIT
# dashboard-load.sh — bench-dashboard (issue 7, BENCHMARKS.md "Dashboard first load"): the
# dashboard's first load over loopback from a simulated cluster, beside a minimal static page
# of the same server, in one run (dashboard-load.mjs does the loads).
#
#   dashboard-load.sh [--hosts N] [--runs N] [--keep-dir]
#
# Builds the dashboard as the sources are now into a directory of its own (as the browser test
# does), adds the baseline page `empty.html` (a title and one paragraph, 100-odd bytes) next to
# its index.html, starts `contrib/sim-cluster.sh start DIR --hosts N` (default 2 dgx-h100: 16
# GPUs) with that directory as the controller's --web-dir, and runs dashboard-load.mjs against
# the controller's TCP listener with the cluster's dashboard token. The cluster is stopped and
# the directory removed on every exit, SIGINT, SIGTERM and SIGHUP included.
#
# Exit status: dashboard-load.mjs's (0 measured, 1 a check failed, 2 usage); 77 (skipped, with
# the reason) without node, chromium, web/node_modules or the built binaries.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
WEB=$REPO/web
CHROMIUM=${CHROMIUM:-/usr/bin/chromium}

HOSTS=2
KEEP=
ARGS=()
while [ $# -gt 0 ]; do
        case $1 in
        --hosts)
                [[ ${2:-} =~ ^[1-8]$ ]] || { echo "bench-dashboard: --hosts needs 1 to 8, not '${2:-}'." >&2; exit 2; }
                HOSTS=$2
                shift 2
                ;;
        --keep-dir) KEEP=1; shift ;;
        -h | --help)
                sed -n '/^#   dashboard-load.sh/p' "$0" | sed 's/^#   /Usage: /'
                node "$HERE/dashboard-load.mjs" --help 2>/dev/null | sed -n '/^  --/p'
                exit 0
                ;;
        *) ARGS+=("$1"); shift ;;
        esac
done

skip() {
        echo "skipped: $*"
        exit 77
}
command -v node >/dev/null 2>&1 || skip "node is not installed (make deps)"
[ -x "$CHROMIUM" ] || skip "no chromium at $CHROMIUM (make deps installs Debian's; CHROMIUM names another)"
[ -d "$WEB/node_modules/playwright-core" ] && [ -d "$WEB/node_modules/esbuild" ] ||
        skip "web/node_modules is not installed (make web, or cd web && npm ci)"
for b in "${GPUVIRTD:-}" "${GPUVIRT:-}" "${GPUVIRT_SIM:-}"; do
        [ -x "$b" ] || skip "GPUVIRTD, GPUVIRT and GPUVIRT_SIM must name the built binaries (meson sets them)"
done
for p in curl jq; do
        command -v $p >/dev/null 2>&1 || skip "$p is not installed (contrib/sim-cluster.sh needs it)"
done
# A usage error before anything starts.
node "$HERE/dashboard-load.mjs" --check-args "${ARGS[@]}" || exit $?

TMP=$(mktemp -d "${TMPDIR:-/tmp}/bench-dashboard.XXXXXX")
CL=$TMP/cluster
cleanup() {
        "$REPO/contrib/sim-cluster.sh" stop "$CL" >/dev/null 2>&1
        if [ -n "$KEEP" ]; then
                echo "bench-dashboard: kept '$TMP' (cluster/, dist/, logs)." >&2
        else
                rm -rf "$TMP"
        fi
}
NODE_PID=
trap cleanup EXIT
# node runs in the background and is waited for, so that a signal is handled at once (bash
# defers traps while a foreground child runs).
trap 'echo "bench-dashboard: interrupted; stopping the cluster." >&2; [ -n "$NODE_PID" ] && kill "$NODE_PID" 2>/dev/null; exit 130' INT TERM HUP

if ! (cd "$WEB" && GPUVIRT_WEB_OUT="$TMP/dist" node build.mjs >"$TMP/build.log" 2>&1); then
        echo "bench-dashboard: the web build failed:" >&2
        cat "$TMP/build.log" >&2
        exit 1
fi
# The baseline: a minimal page the same server serves the same way (src/controller/web.c, no
# token, no-cache with an ETag), the marker the loads wait for in it.
printf '<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>baseline</title></head>\n<body><p id="ready">ok</p></body></html>\n' \
        >"$TMP/dist/empty.html"

if ! GPUVIRT_WEB_DIR="$TMP/dist" "$REPO/contrib/sim-cluster.sh" start "$CL" --hosts "$HOSTS" \
        --profiles dgx-h100 --same-group >"$TMP/start.log" 2>&1; then
        echo "bench-dashboard: the simulated cluster did not start:" >&2
        tail -n 40 "$TMP/start.log" "$CL"/logs/*.log >&2 2>/dev/null
        exit 1
fi
. "$CL/cluster.env"
[ -s "$CL/dashboard.token" ] || { echo "bench-dashboard: the cluster made no dashboard token." >&2; exit 1; }
node "$HERE/dashboard-load.mjs" --url "$CONTROLLER_URL" --token "$(cat "$CL/dashboard.token")" \
        --hosts "$HOSTS" --dist "$TMP/dist" --playwright "$WEB/node_modules/playwright-core/index.mjs" \
        --chromium "$CHROMIUM" "${ARGS[@]}" &
NODE_PID=$!
wait "$NODE_PID"
rc=$?
NODE_PID=
if [ $rc -ne 0 ] && [ $rc -ne 2 ]; then
        for f in "$CL"/logs/*.log; do
                echo "--- $f" >&2
                tail -n 15 "$f" >&2
        done
fi
exit $rc
