#!/bin/bash
# SPDX-License-Identifier: MIT
# load-held.sh — R17 (reliability.md §5): the controller under a sustained mixed read/write load,
# its p99 latency and error rate recorded, and under overload, where every answer must be a
# success, 429 or 503 (never a 500, a dropped connection or a crash). Kubernetes caps requests
# in flight and rejects the rest rather than falling over [S43]; api-max-inflight is ours.
#
#   bench/load-held.sh [--duration S] [--connections C] [--overload-seconds S] [--build DIR]
#
#   held      wrk, C connections (default 16) for S seconds (default 30; R17's run: 600): 90% reads
#             (GET /api/v1/vms, /hosts, /tenants, /operations?limit=20 in turn), 10% writes (PUT
#             /api/v1/tenants/t-K: a store write and an audit record each); rate, p50/p99, every
#             status counted, socket errors
#   baseline  the same wrk on GET /api/v1/health in the same run (the HTTP layer alone, no token,
#             no store), so the ratio holds on a noisy machine
#   overload  the controller restarted with --api-max-inflight 4 (changes: 2), wrk with 14
#             connections (under the 16 it accepts) of writes only: answers must be 200 or 503
#             (with Retry-After), no socket error; the controller alive and its health 200 after,
#             and every tenant document readable
# Exit status: 0 measured and every check held; 1 a check failed; 77 wrk or gpuvirtd missing.
set -euo pipefail

DURATION=30
CONNS=16
OVERLOAD=15
BUILD=$(cd "$(dirname "$0")/.." && pwd)/build
while [ $# -gt 0 ]; do
        case $1 in
        --duration) DURATION=$2; shift 2 ;;
        --connections) CONNS=$2; shift 2 ;;
        --overload-seconds) OVERLOAD=$2; shift 2 ;;
        --build) BUILD=$2; shift 2 ;;
        *) echo "usage: $0 [--duration S] [--connections C] [--overload-seconds S] [--build DIR]" >&2; exit 2 ;;
        esac
done
GPUVIRTD=${GPUVIRTD:-$BUILD/src/daemon/gpuvirtd}
command -v wrk >/dev/null || { echo "load-held: wrk is not installed (deps/debian-packages.txt)"; exit 77; }
[ -x "$GPUVIRTD" ] || { echo "load-held: no gpuvirtd at '$GPUVIRTD' (make build)"; exit 77; }

DIR=$(mktemp -d /tmp/gpuvirt-load-held.XXXXXX)
PID=
cleanup() {
        [ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
        rm -rf "$DIR"
}
trap cleanup EXIT
FAILED=0
bad() { echo "load-held: FAIL: $*"; FAILED=1; }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
uapi() { curl -s --max-time 30 --unix-socket "$DIR/gpuvirt.sock" -H 'Content-Type: application/json' "$@"; }

start() { # MAX_INFLIGHT (0: the default)
        local extra=()
        [ "$1" -gt 0 ] && extra=(--api-max-inflight "$1")
        PORT=$(free_port)
        # The per-token rate lifted: this measures serving and the in-flight cap, not the
        # bucket of wrk's one token (docs/security.md "Limits").
        "$GPUVIRTD" --role controller --state-dir "$DIR/state" --api-socket "$DIR/gpuvirt.sock" \
                --api-listen "127.0.0.1:$PORT" --api-rate 1000000 --api-burst 1000000 \
                "${extra[@]}" >>"$DIR/controller.log" 2>&1 &
        PID=$!
        for _ in $(seq 100); do
                curl -sf --max-time 2 "http://127.0.0.1:$PORT/api/v1/health" >/dev/null && return 0
                sleep 0.1
        done
        tail -5 "$DIR/controller.log"
        echo "load-held: the controller did not answer on 127.0.0.1:$PORT"
        exit 1
}
stop() { kill "$PID"; wait "$PID" 2>/dev/null || true; PID=; }

# The wrk script: the mix, every status counted per thread and summed in done().
cat >"$DIR/mix.lua" <<'EOF'
local threads = {}
local reads = { "/api/v1/vms", "/api/v1/hosts", "/api/v1/tenants", "/api/v1/operations?limit=20" }
function setup(thread) table.insert(threads, thread) end
function init(args)
        writes_pct = tonumber(args[1]) or 10
        statuses = {}
        n = 0
        math.randomseed(os.time() + math.floor(os.clock() * 1e6))
end
function request()
        n = n + 1
        if math.random(100) <= writes_pct then
                local t = "t-" .. math.random(0, 15)
                local body = string.format('{"quota": {"vms": %d, "vcpus": 64}}', math.random(1, 100))
                local h = { ["Content-Type"] = "application/json" }
                for k, v in pairs(wrk.headers) do h[k] = v end
                return wrk.format("PUT", "/api/v1/tenants/" .. t, h, body)
        end
        return wrk.format("GET", reads[(n % #reads) + 1])
end
function response(status, headers, body)
        statuses[status] = (statuses[status] or 0) + 1
end
function done(summary, latency, requests)
        local total = {}
        for _, t in ipairs(threads) do
                for s, c in pairs(t:get("statuses")) do total[s] = (total[s] or 0) + c end
        end
        local parts = {}
        for s, c in pairs(total) do table.insert(parts, s .. "=" .. c) end
        table.sort(parts)
        local e = summary.errors
        io.write(string.format("RESULT requests=%d seconds=%.1f rps=%.0f p50_ms=%.2f p99_ms=%.2f max_ms=%.2f " ..
                               "sock_errors=%d statuses=%s\n",
                               summary.requests, summary.duration / 1e6,
                               summary.requests / (summary.duration / 1e6),
                               latency:percentile(50) / 1000, latency:percentile(99) / 1000,
                               latency.max / 1000,
                               e.connect + e.read + e.write + e.timeout, table.concat(parts, ",")))
end
EOF
cat >"$DIR/health.lua" <<'EOF'
function done(summary, latency, requests)
        local e = summary.errors
        io.write(string.format("RESULT requests=%d seconds=%.1f rps=%.0f p50_ms=%.2f p99_ms=%.2f max_ms=%.2f " ..
                               "sock_errors=%d statuses=2xx=%d\n",
                               summary.requests, summary.duration / 1e6,
                               summary.requests / (summary.duration / 1e6),
                               latency:percentile(50) / 1000, latency:percentile(99) / 1000,
                               latency.max / 1000, e.connect + e.read + e.write + e.timeout,
                               summary.requests - e.status))
end
EOF

field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$2"; }
status_count() { # STATUS RESULT-LINE
        local s
        s=$(field statuses "$2")
        tr ',' '\n' <<<"$s" | sed -n "s/^$1=//p" | head -1 | grep . || echo 0
}

echo "machine: $(nproc) CPUs, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -r)"
start 0
TOKEN=$(uapi -X POST -d '{"name": "load-held", "role": "admin"}' http://c/api/v1/tokens | jq -r .token)
[ "${TOKEN#gvt_}" != "$TOKEN" ] || { echo "load-held: no token: $TOKEN"; exit 1; }
for k in $(seq 0 15); do
        uapi -X PUT -d '{"quota": {"vms": 10}}' "http://c/api/v1/tenants/t-$k" >/dev/null
done
AUTH="Authorization: Bearer $TOKEN"

THREADS=2
[ "$CONNS" -lt 2 ] && THREADS=1
echo "held: $CONNS connections, $DURATION s, 90% reads / 10% writes"
HELD=$(wrk -t "$THREADS" -c "$CONNS" -d "${DURATION}s" --timeout 10s -H "$AUTH" -s "$DIR/mix.lua" \
        "http://127.0.0.1:$PORT" -- 10 | grep '^RESULT')
echo "  $HELD"
BASE=$(wrk -t "$THREADS" -c "$CONNS" -d "$(( DURATION < 10 ? DURATION : 10 ))s" --timeout 10s \
        -s "$DIR/health.lua" "http://127.0.0.1:$PORT/api/v1/health" | grep '^RESULT')
echo "baseline (GET /api/v1/health, same connections):"
echo "  $BASE"
REQ=$(field requests "$HELD")
OK=$(( $(status_count 200 "$HELD") ))
ERRS=$(( REQ - OK ))
echo "held: error rate $(awk -v e="$ERRS" -v n="$REQ" 'BEGIN {printf "%.4f%%", n ? 100 * e / n : 0}') ($ERRS of $REQ not 200), p99 $(field p99_ms "$HELD") ms; rate $(awk -v a="$(field rps "$HELD")" -v b="$(field rps "$BASE")" 'BEGIN {printf "%.2f", b ? a / b : 0}') of the baseline's"
[ "$(field sock_errors "$HELD")" = 0 ] || bad "socket errors under the held load"
[ "$ERRS" = 0 ] || bad "$ERRS answers under the held load were not 200 ($(field statuses "$HELD"))"
kill -0 "$PID" || bad "the controller died under the held load"
stop

echo "overload: --api-max-inflight 4 (changes 2), 14 connections of writes only, $OVERLOAD s"
start 4
OVER=$(wrk -t 2 -c 14 -d "${OVERLOAD}s" --timeout 10s -H "$AUTH" -s "$DIR/mix.lua" \
        "http://127.0.0.1:$PORT" -- 100 | grep '^RESULT')
echo "  $OVER"
REQ=$(field requests "$OVER")
N200=$(status_count 200 "$OVER")
N503=$(status_count 503 "$OVER")
N429=$(status_count 429 "$OVER")
OTHER=$(( REQ - N200 - N503 - N429 ))
echo "overload: 200 $N200, 503 $N503, 429 $N429, other $OTHER, socket errors $(field sock_errors "$OVER")"
[ "$OTHER" = 0 ] || bad "answers other than 200/429/503 under overload ($(field statuses "$OVER"))"
[ "$(field sock_errors "$OVER")" = 0 ] || bad "socket errors under overload"
[ "$N503" -gt 0 ] || bad "no 503 under overload: the cap was never reached (raise --overload-seconds?)"
kill -0 "$PID" || bad "the controller died under overload"
curl -sf --max-time 5 "http://127.0.0.1:$PORT/api/v1/health" >/dev/null || bad "health did not answer 200 after the overload"
T=$(curl -s --max-time 10 -H "$AUTH" "http://127.0.0.1:$PORT/api/v1/tenants" | jq 'length')
[ "$T" = 16 ] || bad "GET /api/v1/tenants after the overload answered $T tenants, not 16"
curl -s -D - -o /dev/null --max-time 10 -X PUT -H "$AUTH" -H 'Content-Type: application/json' \
        -d '{"quota": {"vms": 1}}' "http://127.0.0.1:$PORT/api/v1/tenants/t-0" | grep -q '^HTTP/1.1 200' ||
        bad "a write after the overload was not answered 200"
stop
[ "$FAILED" = 0 ] && echo "load-held: every check held"
exit "$FAILED"
