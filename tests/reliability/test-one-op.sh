#!/bin/bash
# SPDX-License-Identifier: MIT
# One operation at a time per VM (docs/api.md "One operation at a time"; the 1,000-kill run of
# issue 10 found a stop accepted while a start, its client cut off by a kill, still ran): with
# the controller's stop held at vm.stop.marked for a few seconds (a sleep failpoint), every other
# change to that VM is refused with 409 naming the operation; of many asked at once exactly one
# is taken; a drain waits for the operation under way and then moves the VM; a controller
# restarted in the middle keeps the VM held by the resumed operation.
. "$(dirname "$0")/../integration/lib.sh"
. "$(dirname "$0")/../controller/cluster-lib.sh"
. "$(dirname "$0")/crash-lib.sh"
cluster_init one-op

cluster_start --hosts 2 --profiles dgx-h100,dgx-h100 --accel tcg --host-down-after 3 \
        --same-group --stop-timeout 2
: >"$HISTORY"
VGPU='{"kind": "vgpu", "type": "H100XM-20C"}'
HOLD_MS=4000

create one1 "$VGPU" node-a
check "one1: created and running on node-a" 200 '.state == "succeeded"'
hist create one1
arm controller "vm.stop.marked=sleep:$HOLD_MS" ||
        echo "Bail out! the controller does not restart with a sleep failpoint: $(tail -3 "$TEST_TMP/launch.log")"

# ------------------------------------------------------------------ refused while one runs

capi POST /api/v1/vms/one1/stop '{}'
check "a stop is taken: 202, its operation pending or running" 202 '.state == "pending" or .state == "running"'
OP=$(jqo .id)
capi GET /api/v1/vms/one1
check "the VM names the operation under way" 200 ".operation == \"$OP\""
capi POST /api/v1/vms/one1/start
check "a start meanwhile: 409 naming the stop" 409 "(.detail | test(\"$OP\")) and (.detail | test(\"vm.stop\"))"
capi POST /api/v1/vms/one1/stop '{}'
check "a second stop: 409" 409 "(.detail | test(\"$OP\"))"
capi POST /api/v1/vms/one1/migrate '{"to": "node-b", "mode": "offline"}'
check "a move: 409, nothing reserved on node-b" 409 "(.detail | test(\"$OP\"))"
capi GET /api/v1/vms/one1
check "... the VM has no move recorded" 200 '.migration == null and .host == "node-a"'
capi DELETE /api/v1/vms/one1
check "a delete: 409" 409 "(.detail | test(\"$OP\"))"
if GPUVIRT_ENDPOINT="unix:$SOCK" "$GPUVIRT" vm start one1 >"$TEST_TMP/cli.out" 2>&1; then rc=0; else rc=$?; fi
if [ "$rc" = 4 ] && grep -q "$OP" "$TEST_TMP/cli.out"; then
        _ok "gpuvirt vm start meanwhile: exit 4 (conflict), naming the operation"
else
        _not_ok "gpuvirt vm start meanwhile: exit 4 (conflict), naming the operation" "rc $rc: $(cat "$TEST_TMP/cli.out")"
fi
capi GET "/api/v1/operations/$OP?wait=30"
check "the stop ends as it would have" 200 '.state == "succeeded"'
hist stop one1
capi GET /api/v1/vms/one1
check "one1 stopped" 200 '.state == "stopped"'
capi POST '/api/v1/vms/one1/start?wait=30'
check "once it ended, a start is taken and succeeds" 200 '.state == "succeeded"'
hist start one1

# ------------------------------------------------------------------ many at once: one taken

# Each of 12 requests (stops, starts, moves, deletes) races the others; every vm.* step held
# for 2 s keeps the winner, whichever it is, under way while the rest arrive.
arm controller "vm.*=sleep:2000" || _not_ok "the controller restarts" "$(tail -3 "$TEST_TMP/launch.log")"
: >"$TEST_TMP/race.codes"
for i in $(seq 1 12); do
        case $((i % 4)) in
        0) m=POST p=/api/v1/vms/one1/stop b='{}' ;;
        1) m=POST p=/api/v1/vms/one1/start b='' ;;
        2) m=POST p=/api/v1/vms/one1/migrate b='{"to": "node-b"}' ;;
        3) m=DELETE p=/api/v1/vms/one1 b='' ;;
        esac
        (
                args=(-s -o "$TEST_TMP/race.$i" -w '%{http_code}\n' --max-time 60 --unix-socket "$SOCK" -X "$m")
                [ -n "$b" ] && args+=(-H 'Content-Type: application/json' --data-binary "$b")
                curl "${args[@]}" "http://c$p" >>"$TEST_TMP/race.codes"
        ) &
done
wait
taken=$(grep -c '^20[02]$' "$TEST_TMP/race.codes")
refused=$(grep -c '^409$' "$TEST_TMP/race.codes")
if [ "$taken" = 1 ] && [ "$refused" = 11 ]; then
        _ok "12 changes asked at once: exactly one taken, 11 refused with 409"
else
        _not_ok "12 changes asked at once: exactly one taken, 11 refused with 409" \
                "codes: $(sort "$TEST_TMP/race.codes" | uniq -c | tr '\n' ' '); answers: $(cat "$TEST_TMP"/race.* | grep -v '"status":409' | head -c 2000)"
fi
ops_settled 60 || _not_ok "the race's operation ends" "$OUT"
arm controller "vm.stop.marked=sleep:$HOLD_MS" || _not_ok "the controller restarts" "$(tail -3 "$TEST_TMP/launch.log")"
capi GET /api/v1/vms
if jq -e '[.[] | select(.name == "one1")] | length == 1' <<<"$OUT" >/dev/null; then
        # whichever won, the VM is whole again: running for the next part
        capi GET /api/v1/vms/one1
        [ "$(jqo .state)" = running ] || capi POST '/api/v1/vms/one1/start?wait=30'
else
        create one1 "$VGPU" node-a # the delete won
fi
capi GET /api/v1/vms/one1
check "one1 running again after the race" 200 '.state == "running"'
invariants --settle 20 && _ok "I1-I4 hold after the race" || _not_ok "I1-I4 hold after the race" "$INV_OUT"

# ------------------------------------------------------------------ a drain waits its turn

capi GET /api/v1/vms/one1
if [ "$(jqo .host)" != node-a ]; then
        capi POST '/api/v1/vms/one1/migrate?wait=60' '{"to": "node-a"}'
fi
capi POST /api/v1/vms/one1/stop '{}'
check "a stop held again" 202 '.state == "pending" or .state == "running"'
OP=$(jqo .id)
capi POST '/api/v1/hosts/node-a/drain?wait=90' '{}'
check "a drain of node-a asked meanwhile succeeds" 200 '.state == "succeeded"'
capi GET "/api/v1/operations/$OP"
check "... after the stop under way ended" 200 '.state == "succeeded"'
capi GET /api/v1/vms/one1
check "... and moved the now stopped VM offline to node-b" 200 \
        '.host == "node-b" and (.state == "stopped" or .state == "defined")'
capi POST /api/v1/hosts/node-a/undrain

# ------------------------------------------------------------------ held across a restart

arm controller "vm.start.marked=sleep:$HOLD_MS" || _not_ok "the controller restarts" "$(tail -3 "$TEST_TMP/launch.log")"
capi POST /api/v1/vms/one1/start
check "a start on node-b taken" 202 '.state == "pending" or .state == "running"'
OP=$(jqo .id)
marked() { capi GET "/api/v1/operations/$OP"; [ "$(jqo .state)" = running ]; }
wait_for 10 marked
# Killed while the start sleeps at vm.start.marked (a graceful stop would let it end): the
# start is resumed and sleeps there again, and the VM stays its.
kill -9 "$(daemon_pid controller)"
died controller 10 || _not_ok "the controller dies by SIGKILL" ""
arm controller "vm.start.marked=sleep:$HOLD_MS" || _not_ok "the controller restarts" "$(tail -3 "$TEST_TMP/launch.log")"
capi DELETE /api/v1/vms/one1
check "after a controller restart the resumed start still holds the VM: a delete 409" 409 "(.detail | test(\"$OP\"))"
capi GET "/api/v1/operations/$OP?wait=30"
check "the resumed start ends" 200 '.state == "succeeded"'
arm controller "" || _not_ok "the controller restarts" "$(tail -3 "$TEST_TMP/launch.log")"
capi DELETE '/api/v1/vms/one1?wait=30'
check "one1 deleted once nothing runs on it" 200 '.state == "succeeded"'
hist delete one1
invariants --settle 20 && _ok "all clean at the end" || _not_ok "all clean at the end" "$INV_OUT"
no_sanitizer_reports
done_testing
