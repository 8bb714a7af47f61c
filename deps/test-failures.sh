#!/bin/sh
# After a failed `meson test`: each failed test's name and its failing TAP lines ("not ok" and
# the "#" diagnostics under them), printed last, so the tail of a CI log says what failed and
# why without the whole testlog.txt (which meson writes to BUILD/meson-logs/).
set -eu
log="${1:?usage: test-failures.sh BUILD}/meson-logs/testlog.json"
[ -f "$log" ] || { echo "test-failures: no test log in '$1'" >&2; exit 0; }
jq -r 'select(.result == "FAIL" or .result == "TIMEOUT" or .result == "ERROR" or
              .result == "UNEXPECTEDPASS") |
       "=== failed: \(.name) (\(.result), \(.duration | floor) s)",
       ((.stdout // "") | split("\n") |
        [foreach .[] as $l ({keep: false, out: null};
                 if ($l | startswith("not ok")) then {keep: true, out: $l}
                 elif ($l | startswith("ok ")) then {keep: false, out: null}
                 elif .keep then {keep: true, out: $l}
                 else {keep: false, out: null} end;
                 .out) | select(. != null)] |
        if length == 0 then "(no failing TAP line: the end of its output follows)"
        else .[:60][] end),
       ((.stdout // "") | split("\n") | if any(startswith("not ok")) then empty
        else .[-25:][] end)' "$log"
