#!/bin/bash
# SPDX-License-Identifier: MIT
# Live migration with a failure injected at each step of the protocol, on a simulated cluster of
# two dgx-h100 hosts (contrib/sim-cluster.sh, real QEMU on TCG). After each one the invariant
# holds: the VM runs on exactly one host, the controller says which, no slice is held twice and
# nothing is left on the other host (docs/api.md, "Migration failures"):
#   - the target cannot prepare (its vGPU cannot be made)
#   - the target's QEMU killed during the transfer
#   - the source's agent killed during the transfer: restarted at once (the move goes on), or
#     left down (the target is aborted; the source resumes its VM when its agent is back)
#   - the controller killed during the transfer, and again while it releases the source
#   - the target frozen (agent and QEMU stopped: a cut network): the stalled transfer ends and
#     the VM stays; the target's leftover copy is aborted when it answers again
#   - the target's agent frozen while its QEMU takes the VM over: the move is unresolved until
#     the agent answers, then settled on the target
#   - a copy no move accounts for (an incoming made by hand): aborted by the controller's poll
# A slow transfer: a 3 GiB guest-less VM at 1 MiB/s (its zero pages are ~8 MB on the wire).
. "$(dirname "$0")/../integration/lib.sh"
. "$(dirname "$0")/cluster-lib.sh"
FROZEN=()
thaw_all() { local p; for p in "${FROZEN[@]}"; do kill -CONT "$p" 2>/dev/null; done; FROZEN=(); }
CLUSTER_EXIT_HOOK=thaw_all
cluster_init f

cat >"$TEST_TMP/controller.conf" <<'EOF'
# short bounds for a test: an agent call, a transfer that moves nothing
agent-timeout = 4
migration-stall-timeout = 3
EOF
cluster_start --hosts 2 --profiles dgx-h100 --accel tcg --host-down-after 3 \
        --same-group --stop-timeout 2 --controller-config "$TEST_TMP/controller.conf"
capi GET /api/v1/hosts
check "two hosts up" 200 'length == 2 and all(.[]; .state == "up")'

other() { [ "$1" = node-a ] && echo node-b || echo node-a; }
qemu_of() { aapi "$1" "/v1/vms/$2"; jqo '.pid // empty'; }
restart() {
        "$LAUNCH" restart "$CL" "$1" >"$TEST_TMP/restart.log" 2>&1 || diag "$(cat "$TEST_TMP/restart.log")"
        env_reload
}
phase_is() { aapi "$1" "/v1/vms/$2"; [ "$(jqo .phase)" = "$3" ]; } # HOST NAME PHASE
gone_on() { aapi "$1" "/v1/vms/$2"; [ "$HTTP" = 404 ]; } # HOST NAME
active() { aapi "$1" "/v1/vms/$2/migration"; [ "$(jqo .status)" = active ]; } # HOST NAME
# one_copy LABEL NAME HOST: the controller has NAME running on HOST with no move left over,
# HOST's agent runs it, the other host's agent has no copy, and no hardware leaked.
one_copy() {
        local o
        o=$(other "$3")
        wait_for 20 vm_state_is "$2" running
        capi GET "/api/v1/vms/$2"
        check "$1: the controller has $2 running on $3, no move left" 200 \
                ".state == \"running\" and .host == \"$3\" and .placement.host == \"$3\" and .migration == null"
        wait_for 10 phase_is "$3" "$2" running # an adopted VM's phase follows QEMU within a tick
        check "$1: $3's agent runs it" 200 '.phase == "running"'
        if wait_for 20 gone_on "$o" "$2"; then _ok "$1: $o has no copy"; else _not_ok "$1: $o has no copy" "$OUT"; fi
        leak_check "$1"
}
# slow_move NAME TO: start a move at 1 MiB/s and wait until its transfer is under way ($OP).
slow_move() {
        capi POST "/api/v1/vms/$1/migrate" "{\"to\": \"$2\", \"max_bandwidth_mib\": 1}"
        check "a slow move of $1 to $2 is accepted" 202 '.kind == "vm.migrate"'
        OP=$(jqo .id)
        wait_for 20 active "$(other "$2")" "$1" || diag "the transfer of $1 never became active: $OUT"
}
op_end() { capi GET "/api/v1/operations/$OP?wait=120"; }
big() { # NAME HOST: a 3 GiB vGPU VM
        capi POST '/api/v1/vms?wait=60' "{\"name\": \"$1\", \"memory_mib\": 3072, \"host\": \"$2\", \"gpus\": [{\"kind\": \"vgpu\", \"type\": \"H100XM-20C\"}]}"
        check "$1 (3 GiB, vGPU) runs on $2" 200 '.state == "succeeded"'
}

big v1 node-a

# ---- the target cannot prepare: its vGPU cannot be made
"$GPUVIRT_SIM" inject --root "$(host_var node-b ROOT)" --always sysfs:current_vgpu_type EIO >/dev/null
capi POST '/api/v1/vms/v1/migrate?wait=60' '{"to": "node-b"}'
check "target prepare fails: the move fails, saying why" 200 \
        '.state == "failed" and (.message | test("v1 stays on node-a"))'
"$GPUVIRT_SIM" inject --root "$(host_var node-b ROOT)" --clear >/dev/null
one_copy "target prepare failed" v1 node-a

# ---- the target's QEMU killed during the transfer
PID_A=$(qemu_of node-a v1)
slow_move v1 node-b
kill -9 "$(qemu_of node-b v1)"
op_end
check "target QEMU killed: the move fails" 200 '.state == "failed" and (.message | test("stays on node-a"))'
one_copy "target QEMU killed" v1 node-a
assert_eq "$(qemu_of node-a v1)" "$PID_A" "... the same QEMU runs v1 on node-a"

# ---- the source's agent killed during the transfer and restarted at once
slow_move v1 node-b
kill -9 "$(host_var node-a PID)"
restart node-a
op_end
check "source agent killed and restarted: the move goes on and succeeds" 200 \
        '.state == "succeeded" and .result.to == "node-b"'
one_copy "source agent killed, restarted" v1 node-b

# ---- the source's agent killed during the transfer and left down
PID_B=$(qemu_of node-b v1)
slow_move v1 node-a
kill -9 "$(host_var node-b PID)"
op_end
check "source agent down: the move fails after host-down-after" 200 \
        '.state == "failed" and (.message | test("node-b has not answered"))'
aapi node-a /v1/vms/v1
check "... the target's copy is aborted" 404 '.status == 404'
kill -0 "$PID_B" 2>/dev/null && _ok "... v1's QEMU still runs on node-b" || _not_ok "... v1's QEMU still runs on node-b"
restart node-b
one_copy "source agent down, back" v1 node-b
assert_eq "$(qemu_of node-b v1)" "$PID_B" "... the same QEMU runs v1 on node-b"

# ---- the controller killed during the transfer
slow_move v1 node-a
kill -9 "$CONTROLLER_PID"
restart controller
op_end
check "controller killed mid-transfer: the resumed move succeeds" 200 \
        '.state == "succeeded" and .result.to == "node-a"'
one_copy "controller killed mid-transfer" v1 node-a

# ---- the controller killed while it switches and releases the source
capi POST /api/v1/vms/v1/migrate '{"to": "node-b"}'
OP=$(jqo .id)
releasing() { capi GET "/api/v1/operations/$OP"; jq -e 'type == "object" and (((.message // "") | test("releasing")) or .state != "running")' <<<"$OUT" >/dev/null; }
wait_for 60 releasing
diag "controller killed at: $(jqo '.message // .state')"
kill -9 "$CONTROLLER_PID"
restart controller
op_end
check "controller killed while releasing: the move ends succeeded" 200 \
        '.state == "succeeded" and .result.to == "node-b"'
one_copy "controller killed while releasing" v1 node-b

# ---- the network to the target cut: its agent and its QEMU frozen
slow_move v1 node-a
DST_QEMU=$(qemu_of node-a v1)
FROZEN=("$(host_var node-a PID)" "$DST_QEMU")
kill -STOP "${FROZEN[@]}"
op_end
check "target frozen: the stalled transfer ends, the move fails" 200 \
        '.state == "failed" and (.message | test("moved nothing|not answered"))'
capi GET /api/v1/vms/v1
check "... the controller has v1 running on node-b" 200 '.state == "running" and .host == "node-b" and .migration == null'
aapi node-b /v1/vms/v1
check "... node-b's agent runs it" 200 '.phase == "running"'
thaw_all
one_copy "target frozen, thawed" v1 node-b

# ---- the target's agent frozen while its QEMU takes the VM over: unresolved, then settled
slow_move v1 node-a
FROZEN=("$(host_var node-a PID)")
kill -STOP "${FROZEN[@]}"
op_end
check "target agent frozen after the transfer: the move fails unresolved" 200 \
        '.state == "failed" and (.message | test("settles it as soon as node-a answers"))'
capi GET /api/v1/vms/v1
check "... the VM: state unknown, the move kept as unresolved" 200 \
        '.state == "unknown" and .migration.state == "unresolved" and .migration.host == "node-a"'
thaw_all
settled() { capi GET /api/v1/vms/v1; jq -e '.migration == null and .state == "running"' <<<"$OUT" >/dev/null; }
wait_for 30 settled
one_copy "unresolved, settled" v1 node-a

# stray KIND OPID PATH BODY STATUS PHASE ACTION VERB: a copy of v1 made by hand on node-b's
# agent (POST PATH), which the controller's poll must remove (vm.leftover, ACTION)
stray() {
        local url
        url=$(host_var node-b URL)
        HTTP=$(curl -s -o "$TEST_TMP/body" -w '%{http_code}' --max-time 30 -X POST -H 'Content-Type: application/json' -H "Operation-Id: $2" -H "$(agent_auth node-b)" \
                --data-binary "$4" "$url$3")
        OUT=$(cat "$TEST_TMP/body")
        check "a stray $1 copy of v1 made on node-b by hand" "$5" ".phase == \"$6\""
        if wait_for 20 gone_on node-b v1; then _ok "... the controller's poll ${8}s it"; else _not_ok "... the controller's poll ${8}s it" "$OUT"; fi
        one_copy "stray $1 copy removed" v1 node-a
        curl -s -N --max-time 2 --unix-socket "$SOCK" 'http://controller/api/v1/events?after=0' >"$TEST_TMP/events" 2>/dev/null
        if grep '^data:' "$TEST_TMP/events" | sed 's/^data: *//' |
                jq -se --arg a "$7" --arg p "$6" 'any(.[]; .type == "vm.leftover" and .data.host == "node-b" and .data.action == $a and .data.phase == $p)' >/dev/null; then
                _ok "... said in an event (vm.leftover, action $7)"
        else
                _not_ok "... said in an event (vm.leftover, action $7)" "$(grep leftover "$TEST_TMP/events")"
        fi
}

# ---- a copy no move accounts for (an incoming made by hand on node-b): aborted by the poller
aapi node-a /v1/vms/v1
DEF=$(jq -c .config <<<"$OUT")
stray incoming stray-1 /v1/vms/v1/incoming "{\"definition\": $DEF, \"listen\": \"127.0.0.1:0\"}" \
        200 incoming abort-incoming abort

# ---- a copy in which nothing runs on a host the VM does not live on (a move's source whose
# release a kill cut after its QEMU ended: the 1,000-kill run found one left "stopped"): the
# poller deletes it (migrate-settle.c, leftover)
aapi node-a /v1/vms/v1
stray defined stray-2 /v1/vms "$(jq -c '.config | .gpus = []' <<<"$OUT")" 201 defined delete delete

done_testing
