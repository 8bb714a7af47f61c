#!/bin/sh
# Print one closing line for every meson test run in the given build directories:
#   "tests: N passed, N failed, N skipped"
# (expected failures count as passed, as meson counts them; timeouts as failed).
set -eu
passed=0 failed=0 skipped=0
for dir in "$@"; do
        log="$dir/meson-logs/testlog.json"
        [ -f "$log" ] || { echo "test-summary: no test log in '$dir'" >&2; exit 1; }
        p=$(jq -s '[.[] | select(.result == "OK" or .result == "EXPECTEDFAIL")] | length' "$log")
        f=$(jq -s '[.[] | select(.result == "FAIL" or .result == "TIMEOUT" or .result == "ERROR" or .result == "UNEXPECTEDPASS")] | length' "$log")
        s=$(jq -s '[.[] | select(.result == "SKIP")] | length' "$log")
        passed=$((passed + p)) failed=$((failed + f)) skipped=$((skipped + s))
done
echo "tests: $passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
