#!/bin/bash
# SPDX-License-Identifier: MIT
# Partitions between the controller and its agents (docs/reliability.md "Partitions and
# fencing"; reliability.md F5, R11): the controller and each agent in network namespaces of
# their own (netns-lib.sh), two dgx-h100 hosts, VMs with a vGPU, a MIG slice and a GPU passed
# through on node-a and a vGPU on node-b, real QEMU on TCG.
#   (a) full cut of node-a (its veth down) past host_down_after: host down, its VMs unknown, a
#       move or an evacuation of them refused (not fenced); healed: the same QEMUs (pids) run,
#       each VM once cluster-wide, the states observed again
#   (b) one-way cuts (iptables in the agent's namespace): controller→agent on node-b, then
#       agent→controller on node-a: the same checks
#   (c) delay 200 ± 40 ms and (d) 10% loss (stalls: TCP's retransmissions; then resets: a flow
#       dropped) through faultproxy both ways while VMs are created, stopped, started and
#       deleted: every operation ends, done or failed with a reason; no VM runs twice; the
#       controller's states agree with the agents' once healed
#   (e) full cut of node-a, powered off (its agent and QEMUs killed), fenced, evacuated: its VMs
#       run on node-b; healed and powered on: its copies destroyed and its hardware released
#       before it is unfenced; no VM runs twice at any sampled moment after the heal
# PARTITION_SECONDS=60 holds each cut that long (R11's run; default 6).
. "$(dirname "$0")/../integration/lib.sh"
. "$(dirname "$0")/../controller/cluster-lib.sh"
. "$(dirname "$0")/netns-lib.sh"
HOLD=${PARTITION_SECONDS:-6}
[[ "$HOLD" =~ ^[1-9][0-9]{0,3}$ ]] || { echo "Bail out! PARTITION_SECONDS='$HOLD' is not 1..9999"; exit 1; }
T0=$SECONDS
ns_init part
ns_start 2 dgx-h100 --host-down-after 4 --agent-timeout 8
capi GET /api/v1/hosts
check "two hosts up, registered over TCP through their proxies" 200 \
        "length == 2 and all(.[]; .state == \"up\" and (.endpoint | startswith(\"http://$NS_SUB.1:91\")))"

create va-vgpu '{"kind": "vgpu", "type": "H100XM-20C"}' node-a
check "va-vgpu (vGPU) runs on node-a" 200 '.state == "succeeded"'
create va-mig '{"kind": "mig", "profile": "1g.10gb"}' node-a
check "va-mig (MIG) runs on node-a" 200 '.state == "succeeded"'
create va-pt '{"kind": "passthrough", "count": 1}' node-a
check "va-pt (pass-through) runs on node-a" 200 '.state == "succeeded"'
create vb-vgpu '{"kind": "vgpu", "type": "H100XM-20C"}' node-b
check "vb-vgpu (vGPU) runs on node-b" 200 '.state == "succeeded"'
A_VMS=(va-vgpu va-mig va-pt)
ALL_VMS=(va-vgpu va-mig va-pt vb-vgpu)

pids_of_host() { # HOST VM...: "VM PID" per VM, from the QEMUs
        local h=$1 v
        shift
        for v in "$@"; do echo "$v $(qemus_of "$v" | awk -v h="$h" '$1 == h {print $2}' | tr '\n' ' ')"; done
}
# once LABEL: every VM of ALL_VMS has exactly one QEMU cluster-wide, on the host the controller
# names, and exactly one agent lists it (its VM lists).
once() {
        local v q n h bad=
        capi GET /api/v1/vms
        local vms=$OUT
        for v in "${ALL_VMS[@]}"; do
                h=$(jq -r --arg v "$v" '.[] | select(.name == $v) | .host' <<<"$vms")
                q=$(qemus_of "$v")
                n=$(grep -c . <<<"$q")
                [ "$n" = 1 ] && [ "${q%% *}" = "$h" ] || bad+="$v: QEMUs [$(tr '\n' ',' <<<"$q")] controller says $h; "
        done
        for h in node-a node-b; do
                aapi "$h" /v1/vms
                [ "$HTTP" = 200 ] || { bad+="$h's agent does not answer ($HTTP); "; continue; }
                for v in $(jq -r '.[].name' <<<"$OUT"); do
                        [ "$(jq -r --arg v "$v" '.[] | select(.name == $v) | .host' <<<"$vms")" = "$h" ] ||
                                bad+="$h's agent lists $v, which the controller has elsewhere; "
                done
        done
        if [ -z "$bad" ]; then _ok "$1: each VM runs exactly once cluster-wide, where the controller says"; else _not_ok "$1: each VM runs exactly once cluster-wide" "$bad"; fi
}
states_are() { # STATE VM...
        local s=$1 v
        shift
        capi GET /api/v1/vms
        for v in "$@"; do
                [ "$(jq -r --arg v "$v" '.[] | select(.name == $v) | .state' <<<"$OUT")" = "$s" ] || return 1
        done
}
fenced_answered() { capi GET /api/v1/hosts/node-a; [ "$(jqo .fence.answered)" = true ]; }
once "start"

# a partition of HOST by CUT/HEAL commands: down, unknown, moves refused, healed, same pids
partition_case() { # LABEL HOST CUT HEAL VM...
        local label=$1 host=$2 cut=$3 heal=$4 before after t
        shift 4
        before=$(pids_of_host "$host" "$@")
        t=$SECONDS
        eval "$cut"
        if ns_wait 30 host_state_is "$host" down; then
                _ok "$label: $host is down after $((SECONDS - t)) s of silence"
        else
                _not_ok "$label: $host is down" "$OUT"
        fi
        if ns_wait 10 states_are unknown "$@"; then _ok "$label: its VMs are unknown ($*)"; else _not_ok "$label: its VMs are unknown" "$OUT"; fi
        capi POST "/api/v1/vms/$1/migrate" '{"mode": "offline"}'
        check "$label: a move of $1 off $host is refused: not fenced" 409 \
                "(.detail | test(\"host '$host' cannot be reached and is not fenced: it may still be running VM '$1'; power it off, then .gpuvirt host fence $host.\"))"
        capi POST "/api/v1/hosts/$host/evacuate" ''
        check "$label: an evacuation of $host is refused: not fenced" 409 '(.detail | test("not fenced"))'
        [ $((SECONDS - t)) -lt "$HOLD" ] && sleep $((HOLD - (SECONDS - t)))
        eval "$heal"
        if ns_wait 40 host_state_is "$host" up; then _ok "$label: healed, $host is up again"; else _not_ok "$label: healed, $host is up again" "$OUT"; fi
        if ns_wait 20 states_are running "$@"; then _ok "$label: its VMs are observed running again"; else _not_ok "$label: its VMs are observed running again" "$OUT"; fi
        after=$(pids_of_host "$host" "$@")
        assert_eq "$after" "$before" "$label: the same QEMU processes run ($(tr '\n' ' ' <<<"$after"))"
        once "$label"
}
other_fence_refused() {
        capi POST "/api/v1/hosts/$1/fence" ''
        check "a host that answers ($1) cannot be fenced: it is not off" 409 '(.detail | test("is up: its agent answers, so it is not off"))'
}
other_fence_refused node-b

partition_case "(a) full cut" node-a "cut_full node-a" "heal_full node-a" "${A_VMS[@]}"
partition_case "(b) one-way, controller→agent dropped" node-b "cut_oneway node-b to-agent" \
        "heal_oneway node-b" vb-vgpu
partition_case "(b) one-way, agent→controller dropped" node-a "cut_oneway node-a to-controller" \
        "heal_oneway node-a" va-vgpu va-mig

# ---- (c) delay and (d) loss while VMs change
# ops LABEL: create, stop, start, delete of a VM through the faulty proxies; each operation
# ends (succeeded, or failed with a message) and no VM has two QEMUs at any sample.
ops() {
        local label=$1 v=op-$2 step body twice= failed=
        local steps=("POST /api/v1/vms?wait=120 {\"name\":\"$v\",\"memory_mib\":128,\"gpus\":[{\"kind\":\"vgpu\",\"type\":\"H100XM-10C\"}]}"
                "POST /api/v1/vms/$v/stop?wait=120 "
                "POST /api/v1/vms/$v/start?wait=120 "
                "DELETE /api/v1/vms/$v?wait=120 ")
        for step in "${steps[@]}"; do
                read -r m p body <<<"$step"
                ( while :; do [ "$(qemus_of "$v" | grep -c .)" -gt 1 ] && echo twice; sleep 0.2; done ) \
                        >"$TEST_TMP/twice" 2>/dev/null &
                local sampler=$!
                capi "$m" "$p" "$body"
                kill "$sampler" 2>/dev/null
                wait "$sampler" 2>/dev/null
                [ -s "$TEST_TMP/twice" ] && twice+="$m $p; "
                if [ "$HTTP" = 200 ] && jq -e '.state == "succeeded" or (.state == "failed" and (.message | length) > 0)' <<<"$OUT" >/dev/null; then
                        _ok "$label: $m ${p%%\?*} ended: $(jqo .state)$( [ "$(jqo .state)" = failed ] && echo " ($(jqo .message))")"
                        [ "$(jqo .state)" = failed ] && failed=1
                elif [ -n "$failed" ] && [ "$HTTP" = 409 ] && [ -n "$(jqo '.detail // empty')" ]; then
                        # after a failed step the next is refused, saying why (a failed create
                        # holds no placement: "delete it and create it again")
                        _ok "$label: $m ${p%%\?*} refused after a failed step: $(jqo .detail)"
                elif [ "$HTTP" = 409 ] && jqo '.detail // ""' | grep -q "which is down"; then
                        # the loss made the host miss its polls for host-down-after: a change is
                        # refused, saying so, until it answers (api.c) — an end, not a hang
                        _ok "$label: $m ${p%%\?*} refused while the loss had the host down: $(jqo .detail)"
                else
                        _not_ok "$label: $m ${p%%\?*} ended, done or failed with a reason" "HTTP $HTTP $OUT"
                fi
        done
        if [ -z "$twice" ]; then _ok "$label: no VM had two QEMUs at any sample"; else _not_ok "$label: no VM had two QEMUs" "$twice"; fi
}
for h in node-a node-b; do proxy "$h" delay 200 40 >/dev/null; done
ops "(c) delay 200±40 ms" c
for h in node-a node-b; do proxy "$h" delay 0 0 >/dev/null; proxy "$h" loss 10 >/dev/null; done
ops "(d) 10% loss (stalls)" d
for h in node-a node-b; do proxy "$h" loss-mode reset >/dev/null; done
ops "(d) 10% loss (resets)" r
diag "proxies: $(for h in node-a node-b; do proxy "$h" stats; done | tr '\n' ';')"
for h in node-a node-b; do proxy "$h" loss 0 >/dev/null; proxy "$h" loss-mode stall >/dev/null; done
# healed: whatever ended failed, the controller and the agents agree
settled() {
        local v h s p
        capi GET /api/v1/vms
        local vms=$OUT
        for v in $(jq -r '.[] | select(.name | startswith("op-")) | .name' <<<"$vms"); do
                h=$(jq -r --arg v "$v" '.[] | select(.name == $v) | .host' <<<"$vms")
                s=$(jq -r --arg v "$v" '.[] | select(.name == $v) | .state' <<<"$vms")
                [ "$s" = failed ] && continue
                aapi "$h" "/v1/vms/$v"
                p=$(jqo .phase)
                [ "$HTTP" = 404 ] && p=gone
                [ "$s" = "$p" ] || [ "$s" = defined -a "$p" = stopped ] || { SETTLE_WHY="$v: controller $s, agent $p"; return 1; }
        done
}
SETTLE_WHY=
if ns_wait 30 settled; then _ok "(c, d) healed: the controller's states agree with the agents'"; else _not_ok "(c, d) healed: the controller's states agree with the agents'" "$SETTLE_WHY"; fi
once "(c, d) healed"

# ---- (e) full cut, powered off, fenced, evacuated; healed and powered on
cut_full node-a
power_off node-a
ns_wait 30 host_state_is node-a down || diag "node-a not down: $OUT"
# The CLI's verbs (gpuvirt host fence/unfence; exit codes: 400 → 2, 409 → 4, docs/cli.md).
run "$GPUVIRT" host unfence node-a --endpoint "unix:$SOCK"
assert_rc 2 "(e) gpuvirt host unfence of a host that is not fenced: refused, exit 2"
grep -q "not fenced" <<<"$ERR" && _ok "(e) ... saying it is not fenced" || _not_ok "(e) ... saying it is not fenced" "$ERR"
run "$GPUVIRT" host fence node-a --reason "powered off (test)" --endpoint "unix:$SOCK" --json
assert_rc 0 "(e) gpuvirt host fence node-a --reason"
HTTP=200
check "(e) node-a fenced: recorded with who and why" 200 \
        '.state == "fenced" and .fence.by == "local" and .fence.reason == "powered off (test)" and .fence.answered == false'
capi GET '/api/v1/audit?object=host/node-a'
check "(e) the fence is in the audit log" 200 '[.. | objects | select((.path? // "") | test("/fence$"))] | length >= 1'
capi POST /api/v1/vms/va-vgpu/migrate '{"mode": "offline"}'
check "(e) a plain move off the fenced, silent host is refused: evacuate" 409 '(.detail | test("evacuate"))'
run "$GPUVIRT" host unfence node-a --endpoint "unix:$SOCK"
assert_rc 4 "(e) gpuvirt host unfence before node-a answered: refused, exit 4 (409)"
grep -q "has not answered since it was fenced" <<<"$ERR" && _ok "(e) ... saying it has not answered since it was fenced" ||
        _not_ok "(e) ... saying it has not answered since it was fenced" "$ERR"
# Every VM on node-a that holds a placement goes (fence.c): the three of this case and any an
# earlier case left there (a create under loss can end on node-a as well).
capi GET /api/v1/vms
ON_A=$(jq '[.[] | select(.host == "node-a" and (.placement | type) == "object")] | length' <<<"$OUT")
capi POST '/api/v1/hosts/node-a/evacuate?wait=120' ''
check "(e) the evacuation of node-a succeeds: its $ON_A VMs re-placed" 200 \
        ".state == \"succeeded\" and .result.done == $ON_A and $ON_A >= 3 and all(.result.vms[]; .result == \"done\" and .to == \"node-b\")"
if ns_wait 20 states_are running "${A_VMS[@]}"; then _ok "(e) va-vgpu, va-mig, va-pt run again"; else _not_ok "(e) the evacuated VMs run" "$OUT"; fi
capi GET /api/v1/vms
check "(e) the controller has them on node-b" 200 '[.[] | select(.name | startswith("va-")) | .host] | unique == ["node-b"]'
capi POST /api/v1/placements '{"memory_mib": 128, "gpus": [{"kind": "vgpu", "type": "H100XM-20C"}]}'
check "(e) a fenced host takes no placements" 200 '.host == "node-b"'
heal_full node-a
power_on node-a
# sample "runs twice" from the heal on, every 0.2 s, until the fenced host has answered and settled
twice=
for _ in $(seq 150); do
        for v in "${ALL_VMS[@]}"; do
                n=$(qemus_of "$v" | grep -c .)
                [ "$n" -gt 1 ] && twice+="$v×$n "
        done
        fenced_answered && break
        sleep 0.2
done
if [ -z "$twice" ]; then _ok "(e) after the heal no VM ran twice at any sample"; else _not_ok "(e) after the heal no VM ran twice" "$twice"; fi
if fenced_answered; then _ok "(e) node-a answered and its stale copies were settled"; else _not_ok "(e) node-a answered and settled" "$OUT"; fi
check "(e) node-a stays fenced after it answered" 200 '.state == "fenced"'
aapi node-a /v1/vms
check "(e) node-a's agent holds no copy of the evacuated VMs" 200 '[.[] | select(.name | startswith("va-"))] | length == 0'
assert_eq "$(hw_on_host node-a | tr '\n' ' ')" "" "(e) node-a's GPU hardware is released (no vGPU, MIG instance or vfio-pci binding left)"
curl -s --max-time 3 --unix-socket "$SOCK" 'http://c/api/v1/events?after=0' >"$TEST_TMP/events" 2>/dev/null
if grep -q 'host.fence.settled' "$TEST_TMP/events"; then _ok "(e) the destruction is evented (host.fence.settled)"; else _not_ok "(e) host.fence.settled evented" "$(tail -c 400 "$TEST_TMP/events")"; fi
capi POST /api/v1/hosts/node-a/unfence ''
check "(e) unfence after the host answered" 200 '.state == "down" or .state == "up"'
if ns_wait 20 host_state_is node-a up; then _ok "(e) node-a is up and takes placements again"; else _not_ok "(e) node-a up after unfence" "$OUT"; fi
once "(e) end"
for v in "${ALL_VMS[@]}"; do
        n=$(qemus_of "$v" | grep -c .)
        [ "$n" = 1 ] || diag "$v has $n QEMUs"
done
leak_check "(e) end"
no_sanitizer_reports
diag "partition test: $((SECONDS - T0)) s (PARTITION_SECONDS=$HOLD)"
done_testing
