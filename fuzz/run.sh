#!/bin/bash
# SPDX-License-Identifier: MIT
# fuzz/run.sh — run a libFuzzer harness of fuzz/ (docs/fuzzing.md) for a bounded time.
#
#   fuzz/run.sh TARGET [--time SECONDS] [--jobs N] [--build DIR]
#   fuzz/run.sh ci      every target for its CI time (make fuzz-ci): api-body and qmp 60 s each
#                       (reliability.md R14), the others 15 s
#   fuzz/run.sh list    the targets
#
# TARGET: api-body, json, qmp, sysfs, trace-csv, config. The release hour (R14: >= 1 CPU-hour
# each for api-body and qmp): fuzz/run.sh api-body --time 3600 (or --time 900 --jobs 4).
#
# It configures DIR (default build-fuzz: clang, -Dfuzz=true, ASan+UBSan) when it is not yet,
# builds the harness, and fuzzes with the corpus kept in DIR/fuzz-corpus/TARGET (new inputs
# found accumulate there from run to run), the seeds fuzz/corpus/TARGET and the regression
# inputs fuzz/regress/TARGET. A crash, a sanitizer report, a property the harness checks, a
# timeout of one input (> 25 s) or a leak is a finding: the input is written to
# DIR/fuzz-findings/TARGET/, the script prints how to reproduce it and exits 1. Keep the input
# in fuzz/regress/TARGET/ with the fix (fuzz/regress/README.md).
#
# Printed at the end, one line per target: "fuzz-TARGET: RUNS runs in T s, E exec/s, N new
# inputs, findings: K" — the figures docs/fuzzing.md quotes.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
TARGETS=(api-body json qmp sysfs trace-csv config)
BUILD_DIR=${BUILD_FUZZ:-build-fuzz}
TIME=
JOBS=1

usage() {
        sed -n '3,22p' "$0" | sed 's/^# \{0,1\}//' >&2
        exit 2
}

# Longest input per target (bytes): the API's bodies and QMP streams are small in practice;
# the openb CSVs and sysfs fields need room for a few lines each.
max_len() {
        case $1 in
        api-body) echo 8192 ;;
        qmp) echo 65536 ;;
        trace-csv) echo 16384 ;;
        *) echo 4096 ;;
        esac
}

# LeakSanitizer after each input that allocated more than it freed: for api-body that is most
# inputs (the controller's caches, a thread per new connection), and the scans cost 40 % of its
# time (perf), which took it under 1,000 exec/s. Its leaks are caught at exit instead: by its
# regression runner (meson test fuzz-api-body, ASan build) and by test-api.
leaks() {
        case $1 in
        api-body) echo 0 ;;
        *) echo 1 ;;
        esac
}

ci_time() {
        case $1 in
        api-body|qmp) echo 60 ;;
        *) echo 15 ;;
        esac
}

configure() {
        if [ ! -f "$BUILD_DIR/build.ninja" ]; then
                # werror off: clang warns where gcc does not (the project's -Werror is gcc's);
                # a warning there is no finding of this run.
                CC=clang meson setup "$BUILD_DIR" -Dfuzz=true -Dtests=false -Dwerror=false \
                        -Db_sanitize=address,undefined -Db_lundef=false \
                        --buildtype=debugoptimized >/dev/null
        fi
}

run_one() {
        local t=$1 secs=$2 jobs=$3
        local bin="$BUILD_DIR/fuzz/fuzz-$t"
        local corpus="$BUILD_DIR/fuzz-corpus/$t" findings="$BUILD_DIR/fuzz-findings/$t"
        local log="$BUILD_DIR/fuzz-logs/$t.log"
        mkdir -p "$corpus" "$findings" "$(dirname "$log")"
        local before
        before=$(find "$corpus" -type f | wc -l)
        local args=(-max_total_time="$secs" -max_len="$(max_len "$t")" -rss_limit_mb=0
                    -timeout=25 -print_final_stats=1 -artifact_prefix="$findings/")
        [ -f "fuzz/dict/$t.dict" ] && args+=(-dict="fuzz/dict/$t.dict")
        [ "$jobs" -gt 1 ] && args+=(-fork="$jobs" -ignore_crashes=0)
        local rc=0
        # UBSan stops at the first report (a finding), as ASan does; leaks are findings too.
        UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
        ASAN_OPTIONS=detect_leaks=$(leaks "$t"):abort_on_error=1:symbolize=1 \
                "$bin" "${args[@]}" "$corpus" "fuzz/corpus/$t" "fuzz/regress/$t" \
                >"$log" 2>&1 || rc=$?
        local runs eps after found
        runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
        eps=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
        if [ -z "$runs" ]; then # fork mode prints no final stats: its last status line
                runs=$(grep -o '#[0-9]*' "$log" | tail -1 | tr -d '#')
                eps=$(( ${runs:-0} / (secs > 0 ? secs : 1) ))
        fi
        after=$(find "$corpus" -type f | wc -l)
        found=$(find "$findings" -type f -newer "$log.start" 2>/dev/null | wc -l)
        echo "fuzz-$t: ${runs:-0} runs in $secs s, ${eps:-0} exec/s, $((after - before))" \
             "new inputs, findings: $found"
        if [ "$rc" -ne 0 ] || [ "$found" -gt 0 ]; then
                echo "fuzz-$t: FINDING (exit $rc); the log: $log" >&2
                grep -E 'ERROR|SUMMARY|^fuzz:|runtime error|Test unit written' "$log" | head -20 >&2
                echo "reproduce: $bin $findings/<file>; then keep the input in" \
                     "fuzz/regress/$t/ with the fix" >&2
                return 1
        fi
}

[ $# -ge 1 ] || usage
CMD=$1
shift
while [ $# -gt 0 ]; do
        case $1 in
        --time) TIME=$2; shift 2 ;;
        --time=*) TIME=${1#*=}; shift ;;
        --jobs) JOBS=$2; shift 2 ;;
        --jobs=*) JOBS=${1#*=}; shift ;;
        --build) BUILD_DIR=$2; shift 2 ;;
        --build=*) BUILD_DIR=${1#*=}; shift ;;
        -h|--help) usage ;;
        *) echo "run.sh: unknown option '$1'; valid: --time SECONDS, --jobs N, --build DIR" >&2
           exit 2 ;;
        esac
done
case $TIME in ''|*[!0-9]*) [ -z "$TIME" ] || { echo "run.sh: --time takes seconds" >&2; exit 2; } ;; esac
case $JOBS in ''|*[!0-9]*|0) echo "run.sh: --jobs takes a count from 1" >&2; exit 2 ;; esac

case $CMD in
list) printf '%s\n' "${TARGETS[@]}"; exit 0 ;;
ci) selected=("${TARGETS[@]}") ;;
*)
        ok=
        for t in "${TARGETS[@]}"; do [ "$t" = "$CMD" ] && ok=1; done
        if [ -z "$ok" ]; then
                echo "run.sh: unknown target '$CMD'; valid: ${TARGETS[*]}, ci, list" >&2
                exit 2
        fi
        selected=("$CMD")
        ;;
esac

if ! command -v clang >/dev/null; then
        echo "run.sh: clang is not installed (libFuzzer comes with it: apt-get install clang)" >&2
        exit 2
fi
configure
ninja -C "$BUILD_DIR" $(printf 'fuzz/fuzz-%s ' "${selected[@]}") >/dev/null

status=0
for t in "${selected[@]}"; do
        secs=${TIME:-$(ci_time "$t")}
        mkdir -p "$BUILD_DIR/fuzz-logs"
        touch "$BUILD_DIR/fuzz-logs/$t.log.start"
        run_one "$t" "$secs" "$JOBS" || status=1
done
exit $status
