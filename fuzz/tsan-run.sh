#!/bin/bash
# make test-tsan: the threaded suites under ThreadSanitizer (docs/fuzzing.md, "TSan").
#
#   fuzz/tsan-run.sh BUILD_DIR SUITE...
#
# Every TSan process writes its reports to files (log_path), so a daemon's race fails the run as
# well as a test program's. Two kinds of report are told apart:
#   - a finding (WARNING: ThreadSanitizer: data race, lock-order-inversion, ...): printed, the run
#     fails; never retried;
#   - the runtime failing to map its own shadow memory (ERROR: ThreadSanitizer failed to allocate,
#     unexpected memory mapping): a resource of the machine, not a property of our code. The tests
#     that failed alongside such a report run once more and decide the run; the report and
#     the machine's mapping limits are printed so the cause can be followed.
# A test that fails with no report at all fails the run at once.
set -u

build=$1
shift
reports=$(realpath -m "$build")/tsan-reports
supp=$(cd "$(dirname "$0")" && pwd)/tsan.supp
suites=()
for s in "$@"; do suites+=(--suite "$s"); done

run() { # run REPORT_DIR [meson test args...]
        local dir=$1
        shift
        rm -rf "$dir" && mkdir -p "$dir"
        TSAN_OPTIONS="suppressions=$supp log_path=$dir/report second_deadlock_stack=1" \
                meson test -C "$build" --print-errorlogs --num-processes 2 \
                --timeout-multiplier 4 "$@"
}

# Findings in DIR: 0 none, 1 only runtime mapping failures, 2 at least one finding.
classify() {
        local dir=$1 f kind=0
        for f in "$dir"/report.*; do
                [ -e "$f" ] || continue
                if grep -q "WARNING: ThreadSanitizer:" "$f" ||
                   ! grep -Eq "ThreadSanitizer failed to allocate|ThreadSanitizer: unexpected memory mapping" "$f"; then
                        kind=2
                elif [ $kind -eq 0 ]; then
                        kind=1
                fi
        done
        echo $kind
}

failed_tests() {
        jq -r 'select(.result != "OK" and .result != "SKIP" and .result != "EXPECTEDFAIL")
               | .name | sub("^[^/]*/ "; "")' "$build/meson-logs/testlog.json"
}

rc=0
run "$reports" "${suites[@]}" || rc=$?
kind=$(classify "$reports")
if [ "$kind" -eq 2 ]; then
        cat "$reports"/report.*
        echo "test-tsan: ThreadSanitizer reports above ($reports)"
        exit 1
fi
if [ "$kind" -eq 1 ]; then
        cat "$reports"/report.*
        echo "test-tsan: the TSan runtime could not map memory (above); no race was reported."
        echo "test-tsan: vm.max_map_count=$(cat /proc/sys/vm/max_map_count)" \
             "vm.overcommit_memory=$(cat /proc/sys/vm/overcommit_memory)" \
             "MemAvailable=$(awk '/MemAvailable/ {print $2 " kB"}' /proc/meminfo)" \
             "ulimit -v=$(ulimit -v)"
        mapfile -t again < <(failed_tests)
        if [ "${#again[@]}" -gt 0 ]; then
                echo "test-tsan: running once more: ${again[*]}"
                rc=0
                run "$reports.again" "${again[@]}" || rc=$?
                if [ "$(classify "$reports.again")" -ne 0 ]; then
                        cat "$reports.again"/report.*
                        echo "test-tsan: ThreadSanitizer reports above ($reports.again)"
                        exit 1
                fi
        fi
fi
[ $rc -eq 0 ] && echo "test-tsan: no ThreadSanitizer report"
exit $rc
