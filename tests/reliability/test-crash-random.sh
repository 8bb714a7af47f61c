#!/bin/bash
# SPDX-License-Identifier: MIT
# Random kills (reliability.md R1; docs/reliability.md "Crash consistency"): a client loop
# creates, starts, stops, migrates and deletes vGPU, MIG and pass-through VMs on a simulated
# cluster of two hosts, recording every call and its outcome (history.jsonl), while this harness
# SIGKILLs the controller or one of the agents at random moments and restarts it. After every
# batch of kills the client pauses, the operations settle and invariants.py checks I1–I3 against
# the history; then one more kill of a random daemon with the client paused checks I4 / R13 (the
# VMs running before it keep their QEMU pids).
#
#   CRASH_KILLS=N   kills in all (default 20; the long run: CRASH_KILLS=1000)
#   CRASH_BATCH=N   kills between two checks (default 5)
#   CRASH_SEED=N    the random seed (default 7, so that a red make check can be run again as
#                   it was; CRASH_SEED=time draws one from the clock, for exploring; printed)
#   CRASH_SLEEP=MS  arm every failpoint with sleep:MS in the restarted daemons (wider windows)
. "$(dirname "$0")/../integration/lib.sh"
. "$(dirname "$0")/../controller/cluster-lib.sh"
. "$(dirname "$0")/crash-lib.sh"
cluster_init crash-random

KILLS=${CRASH_KILLS:-20}
BATCH=${CRASH_BATCH:-5}
SEED=${CRASH_SEED:-7}
[ "$SEED" = time ] && SEED=$(date +%s)
RANDOM=$SEED
FP=${CRASH_SLEEP:+*=sleep:$CRASH_SLEEP}
diag "seed $SEED (CRASH_SEED=$SEED repeats this run), $KILLS kills, a check every $BATCH"

cluster_start --hosts 2 --profiles dgx-h100,dgx-h100 --accel tcg --host-down-after 3 \
        --same-group --stop-timeout 2 --orphan-grace 1
: >"$HISTORY"
PAUSE=$TEST_TMP/pause PAUSED=$TEST_TMP/paused STOP=$TEST_TMP/stop

# ---- the client: one call at a time, each recorded (hist); pauses while $PAUSE exists
gpu_of() {
        case $1 in
        r1 | r2 | r3) echo '{"kind": "vgpu", "type": "H100XM-20C"}' ;;
        r4 | r5) echo '{"kind": "mig", "profile": "1g.10gb"}' ;;
        *) echo '{"kind": "passthrough", "count": 1}' ;;
        esac
}
client() {
        local vm st host to mode n=0
        RANDOM=$((SEED + 1))
        while [ ! -e "$STOP" ]; do
                if [ -e "$PAUSE" ]; then
                        touch "$PAUSED"
                        sleep 0.1
                        continue
                fi
                rm -f "$PAUSED"
                vm=r$((RANDOM % 6 + 1))
                capi GET "/api/v1/vms/$vm"
                [ "$HTTP" = 000 ] && { sleep 0.2; continue; }
                st=$(jqo '.state // empty' 2>/dev/null)
                host=$(jqo '.host // empty' 2>/dev/null)
                if [ "$HTTP" = 404 ]; then
                        create "$vm" "$(gpu_of "$vm")"
                        hist create "$vm"
                else
                        case $((RANDOM % 5)) in
                        0) capi POST "/api/v1/vms/$vm/start?wait=30"; hist start "$vm" ;;
                        1) capi POST "/api/v1/vms/$vm/stop?wait=30" '{}'; hist stop "$vm" ;;
                        2 | 3)
                                to=node-a; [ "$host" = node-a ] && to=node-b
                                mode=live; [ "$vm" = r6 ] && mode=offline
                                capi POST "/api/v1/vms/$vm/migrate?wait=60" "{\"to\": \"$to\", \"mode\": \"$mode\"}"
                                hist migrate "$vm" "$to" ;;
                        *) capi DELETE "/api/v1/vms/$vm?wait=30"; hist delete "$vm" ;;
                        esac
                fi
                n=$((n + 1))
                : "$st"
        done
        echo "$n" >"$TEST_TMP/client.calls"
}
pause_client() {
        touch "$PAUSE"
        wait_for 120 test -e "$PAUSED" || diag "the client did not pause within 120 s"
}

NAMES=(controller node-a node-b)
kill_one() { # NAME: SIGKILL it, then restart it
        local pid
        pid=$(daemon_pid "$1")
        [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null
        died "$1" 10 || diag "$1 (pid $pid) did not die"
        arm "$1" "$FP" || { arm "$1" "$FP" || _not_ok "$1 restarts after its kill" "$(tail -3 "$TEST_TMP/launch.log")"; }
}

client &
CLIENT=$!
stop_client() { touch "$STOP"; kill "$CLIENT" 2>/dev/null; }
CLUSTER_EXIT_HOOK=stop_client
T0=$SECONDS
kills=0 checks=0 violations=0
while [ $kills -lt "$KILLS" ]; do
        # a random moment: 0 to 1.5 s after the previous restart
        sleep "$((RANDOM % 16 / 10)).$((RANDOM % 10))"
        kill_one "${NAMES[$((RANDOM % 3))]}"
        kills=$((kills + 1))
        if [ $((kills % BATCH)) = 0 ] || [ $kills = "$KILLS" ]; then
                pause_client
                checks=$((checks + 1))
                ops_settled 90 || diag "operations still running after 90 s: $(jq -c '[.[] | select(.state != "succeeded" and .state != "failed") | {kind, target, state, message}]' <<<"$OUT")"
                if invariants --settle 30; then
                        _ok "after $kills kills: I1-I3 hold"
                else
                        violations=$((violations + $(grep -c '^VIOLATION' <<<"$INV_OUT")))
                        _not_ok "after $kills kills: I1-I3 hold" "$INV_OUT"
                fi
                # R13 / I4: a kill while nothing is under way restarts no VM
                python3 "$RELIABILITY_DIR/invariants.py" --cluster "$CL" --no-reconcile --settle 0 \
                        --quiet --save-pids "$TEST_TMP/pids.json" >/dev/null 2>&1
                victim=${NAMES[$((RANDOM % 3))]}
                kill_one "$victim"
                if invariants --pids-before "$TEST_TMP/pids.json" --settle 30; then
                        _ok "after $kills kills: $victim killed with $(jq length "$TEST_TMP/pids.json") VMs running: none restarted (I4)"
                else
                        violations=$((violations + $(grep -c '^VIOLATION' <<<"$INV_OUT")))
                        _not_ok "after $kills kills: $victim killed, no VM restarted (I4)" "$INV_OUT"
                fi
                rm -f "$PAUSE"
        fi
done
touch "$STOP"
wait "$CLIENT"
calls=$(cat "$TEST_TMP/client.calls" 2>/dev/null || echo 0)
acked=$(jq -s '[.[] | select(.state == "succeeded")] | length' "$HISTORY")
assert_eq "$([ "$acked" -gt 0 ] && echo yes)" yes "the client's calls went through ($calls calls, $acked acknowledged)"
diag "crash-random: $kills kills + $checks I4 kills, $checks checks, $violations violations, $calls client calls ($acked acknowledged), $((SECONDS - T0)) s, seed $SEED"
no_sanitizer_reports
done_testing
