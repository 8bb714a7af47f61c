#!/bin/bash
# SPDX-License-Identifier: MIT
# reliability.md F1/F5-style faults of the host side, on a simulated cluster of two dgx-h100:
#   QEMU killed (kill -9): the VM is reported crashed, its GPU slice stays reserved to it (the
#     hardware on the host, the placement in the controller, no other VM gets it) until it is
#     restarted or deleted; a restart runs it again on the same slice.
#   the agent unreachable (SIGSTOP): after host-down-after the host is down and its VMs
#     `unknown`, no VM is re-placed, mutations on those VMs are refused with the reason; the
#     agent back (SIGCONT): states observed again, nothing duplicated; the agent killed and
#     restarted: its QEMU adopted (same pid).
. "$(dirname "$0")/../integration/lib.sh"
. "$(dirname "$0")/../controller/cluster-lib.sh"
FROZEN=
thaw() { [ -z "$FROZEN" ] || kill -CONT "$FROZEN" 2>/dev/null; }
CLUSTER_EXIT_HOOK=thaw
cluster_init fq
T0=$SECONDS
DOWN_AFTER=4
cluster_start --hosts 2 --profiles dgx-h100 --accel tcg --host-down-after "$DOWN_AFTER" --stop-timeout 2
pid_of() { aapi "$1" "/v1/vms/$2"; jqo '.pid // empty'; }
phase_is() { aapi "$1" "/v1/vms/$2"; [ "$(jqo .phase)" = "$3" ]; }

# ---- QEMU killed
create v1 '{"kind": "vgpu", "type": "H100XM-20C"}' node-a
check "v1 runs on node-a" 200 '.state == "succeeded"'
GPU=$(jqo '.result.placement.gpus[0].gpu')
PID=$(pid_of node-a v1)
hw_before=$(hw_on_host node-a)
kill -9 "$PID"
if wait_for 20 vm_state_is v1 crashed; then
        _ok "QEMU killed: the controller reports v1 crashed"
else
        _not_ok "QEMU killed: the controller reports v1 crashed"
fi
aapi node-a /v1/vms/v1
check "QEMU killed: the agent says crashed" 200 '.phase == "crashed"'
sleep 3 # poll and reconcile ticks: the reservation must not be released
capi GET "/api/v1/hosts/${GPU%/*}/gpus/${GPU#*/}"
check "QEMU killed: the controller still holds v1's slice on $GPU" 200 'any(.use[]; .vm == "v1")'
capi GET /api/v1/vms/v1
check "QEMU killed: v1 keeps its placement" 200 ".placement.gpus[0].gpu == \"$GPU\""
# the vGPU device itself is released like a stopped VM's and made again at start
capi POST '/api/v1/vms/v1/start?wait=60'
check "QEMU killed: a restart works" 200 '.state == "succeeded"'
NEWPID=$(pid_of node-a v1)
if [ -n "$NEWPID" ] && [ "$NEWPID" != "$PID" ] && kill -0 "$NEWPID" 2>/dev/null; then
        _ok "QEMU killed: v1 runs again in a new QEMU ($NEWPID)"
else
        _not_ok "QEMU killed: v1 runs again in a new QEMU" "pid '$NEWPID'"
fi
capi GET /api/v1/vms/v1
check "QEMU killed: ... on the same GPU" 200 ".state == \"running\" and .placement.gpus[0].gpu == \"$GPU\""
assert_eq "$(hw_on_host node-a)" "$hw_before" "QEMU killed: after the restart its vGPU is on the host again, the same device"
PID=$NEWPID

# ---- the agent unreachable
create v2 '{"kind": "vgpu", "type": "H100XM-20C"}' node-b
check "v2 runs on node-b" 200 '.state == "succeeded"'
env_reload
APID=$(host_var node-a PID)
kill -STOP "$APID"
FROZEN=$APID
T_STOP=$SECONDS
if wait_for 40 host_state_is node-a down; then
        _ok "agent frozen: node-a down after $((SECONDS - T_STOP)) s (host-down-after $DOWN_AFTER s)"
else
        _not_ok "agent frozen: node-a down"
fi
if wait_for 10 vm_state_is v1 unknown; then _ok "agent frozen: v1 is unknown"; else _not_ok "agent frozen: v1 is unknown"; fi
capi GET /api/v1/vms/v2
check "agent frozen: v2 on node-b still running" 200 '.state == "running"'
sleep 3
capi GET /api/v1/vms/v1
check "agent frozen: v1 not re-placed (still on node-a)" 200 '.placement.host == "node-a" and .host == "node-a"'
aapi node-b /v1/vms
check "agent frozen: node-b's agent has no copy of v1" 200 'all(.[]; .name != "v1")'
capi POST /api/v1/vms/v1/stop
if [ "$HTTP" = 409 ] && jqo .detail | grep -q "node-a.*down"; then
        _ok "agent frozen: a stop of v1 is refused ($HTTP) with the reason: $(jqo .detail | head -c 150)"
else
        _not_ok "agent frozen: a stop of v1 is refused with the reason"
fi
capi DELETE /api/v1/vms/v1
if [ "$HTTP" = 409 ] && jqo .detail | grep -q "node-a.*down"; then
        _ok "agent frozen: a delete of v1 is refused ($HTTP) with the reason"
else
        _not_ok "agent frozen: a delete of v1 is refused with the reason"
fi
capi POST /api/v1/vms/v1/migrate '{"to": "node-b"}'
check "agent frozen: a move of v1 is refused too (the host is not fenced)" 409 '.detail | test("not fenced")'
if kill -0 "$PID"; then _ok "agent frozen: v1's QEMU runs"; else _not_ok "agent frozen: v1's QEMU runs"; fi
kill -CONT "$APID"
FROZEN=
if wait_for 30 host_state_is node-a up && wait_for 20 vm_state_is v1 running; then
        _ok "agent back: node-a up and v1 observed running again"
else
        _not_ok "agent back: node-a up and v1 observed running again"
fi
assert_eq "$(pid_of node-a v1)" "$PID" "agent back: the same QEMU"
capi GET /api/v1/vms
check "agent back: nothing duplicated (v1 and v2 once each)" 200 '([.[].name] | sort) == ["v1", "v2"]'
leak_check "agent back"

# ---- the agent killed and restarted
kill -9 "$APID"
wait_for 40 host_state_is node-a down
capi GET /api/v1/vms/v1
check "agent killed: v1 unknown" 200 '.state == "unknown"'
if kill -0 "$PID"; then _ok "agent killed: v1's QEMU runs on"; else _not_ok "agent killed: v1's QEMU runs on"; fi
"$LAUNCH" restart "$CL" node-a >"$TEST_TMP/restart.log" 2>&1 || diag "$(cat "$TEST_TMP/restart.log")"
env_reload
if wait_for 30 host_state_is node-a up && wait_for 20 vm_state_is v1 running; then
        _ok "agent restarted: v1 observed running"
else
        _not_ok "agent restarted: v1 observed running"
fi
assert_eq "$(pid_of node-a v1)" "$PID" "agent restarted: the QEMU adopted (same pid)"
capi GET /api/v1/vms
check "agent restarted: nothing duplicated" 200 '([.[].name] | sort) == ["v1", "v2"]'
for v in v1 v2; do capi DELETE "/api/v1/vms/$v?wait=60"; done
leak_check "end"
"$LAUNCH" stop "$CL" >/dev/null 2>&1 # the daemons exit: LeakSanitizer reports then
no_sanitizer_reports
echo "# total: $((SECONDS - T0)) s"
done_testing
