#!/bin/bash
# SPDX-License-Identifier: MIT
# VM migration through the controller on a simulated cluster of two dgx-h100 hosts and one
# dgx-a100 (contrib/sim-cluster.sh, real QEMU on TCG): a vGPU VM and a MIG-backed vGPU VM
# live-migrate (the hardware moves, the same VM runs on the target, nothing is left on the
# source); a pass-through VM's live move is refused with the offline hint and its offline move
# works; a move to another GPU family is refused naming it; a move whose target agent is down
# fails and leaves the VM running on its source with nothing held on the target; a VM's overlay
# disk (data written into it) moves with its live migration.
. "$(dirname "$0")/../integration/lib.sh"
. "$(dirname "$0")/cluster-lib.sh"
cluster_init m

cluster_start --hosts 3 --profiles dgx-h100,dgx-h100,dgx-a100 --accel tcg \
        --host-down-after 3 --same-group --stop-timeout 2
capi GET /api/v1/hosts
check "three hosts up" 200 'length == 3 and all(.[]; .state == "up")'

# migrate NAME [BODY]: POST .../migrate?wait=60
migrate() {
        capi POST "/api/v1/vms/$1/migrate?wait=60" "${2:-{\}}"
}
vf_count() { grep -lvx 0 "$(host_var "$1" ROOT)"/sys/bus/pci/devices/*/nvidia/current_vgpu_type 2>/dev/null | wc -l; }

# ---- a vGPU VM, live
create v1 '{"kind": "vgpu", "type": "H100XM-20C"}' node-a
check "v1 (vGPU) runs on node-a" 200 '.state == "succeeded" and .result.host == "node-a"'
V1_UUID=$(capi GET /api/v1/vms/v1; jqo .uuid)
A_BEFORE=$(vf_count node-a)
migrate v1 '{"to": "node-b"}'
check "v1 live-migrates to node-b" 200 '.state == "succeeded" and .result.to == "node-b" and .result.mode == "live"'
capi GET /api/v1/vms/v1
check "... the controller has it running on node-b, no move left over" 200 \
        '.state == "running" and .host == "node-b" and .placement.host == "node-b" and .migration == null'
aapi node-b /v1/vms/v1
check "... node-b's agent runs the same VM (UUID)" 200 ".phase == \"running\" and .uuid == \"$V1_UUID\""
aapi node-a /v1/vms/v1
check "... node-a's agent forgot it" 404 '.status == 404'
assert_eq "$(vf_count node-a)" $((A_BEFORE - 1)) "... node-a's vGPU is released"
verify_vm v1 vgpu
leak_check "after a live move"

# ---- a MIG-backed vGPU VM, live (the target GPU switched to MIG for it)
create mv1 '{"kind": "vgpu", "type": "H100XM-1-10C"}' node-a
check "mv1 (MIG-backed vGPU) runs on node-a" 200 '.state == "succeeded"'
migrate mv1 '{"to": "node-b"}'
check "mv1 live-migrates to node-b" 200 '.state == "succeeded" and .result.to == "node-b"'
verify_vm mv1 mig-vgpu
leak_check "after a MIG-backed move"

# ---- pass-through: refused live, moved offline
create p1 '{"kind": "passthrough", "count": 1}' node-a
check "p1 (pass-through) runs on node-a" 200 '.state == "succeeded"'
migrate p1 '{"to": "node-b"}'
check "p1's live move is refused with the offline hint" 409 \
        '.detail | test("passed through") and test("offline")'
capi GET /api/v1/vms/p1
check "... and nothing changed" 200 '.state == "running" and .host == "node-a" and .migration == null'
migrate p1 '{"to": "node-b", "mode": "offline"}'
check "p1 moves offline to node-b" 200 '.state == "succeeded" and .result.mode == "offline"'
capi GET /api/v1/vms/p1
check "... and runs there" 200 '.state == "running" and .host == "node-b"'
verify_vm p1 whole
leak_check "after an offline move"

# ---- refusals that change nothing
migrate v1 '{"to": "node-c"}'
check "a move to a host whose GPUs do not offer the vGPU type (an A100) is refused saying so" 409 \
        '.detail | test("nowhere to go") and test("H100XM-20C")'
# A bare MIG profile exists on both families: the family check itself speaks.
create mg1 '{"kind": "mig", "profile": "3g.40gb"}' node-a
check "mg1 (MIG 3g.40gb) runs on node-a" 200 '.state == "succeeded"'
migrate mg1 '{"to": "node-c"}'
check "its move to node-c's A100s is refused: another GPU family" 409 \
        '.detail | test("family") and test("A100")'
capi DELETE '/api/v1/vms/mg1?wait=30'
check "delete mg1" 200 '.state == "succeeded"'
migrate v1 '{"to": "node-z"}'
check "a move to an unknown host: 404" 404 '.detail | test("node-z")'
migrate v1 '{"speed": 1}'
check "an unknown member: 400" 400 '.detail | test("speed")'
migrate nope '{}'
check "an unknown VM: 404" 404 '.status == 404'

# ---- the target's agent is down: the move fails, the VM stays where it was
kill -9 "$(host_var node-a PID)"
wait_for 15 host_state_is node-a down
capi GET /api/v1/hosts
migrate v1 '{"to": "node-a"}'
check "a move to a host that is down is refused" 409 '.detail | test("node-a is down")'
"$LAUNCH" restart "$CL" node-a >"$TEST_TMP/restart.log" 2>&1 || diag "$(cat "$TEST_TMP/restart.log")"
env_reload
wait_for 15 host_state_is node-a up
# Up in the controller's view, but its agent killed again right after the move is accepted:
# the preparation fails and the VM stays on node-b.
migrate_bg() { capi POST "/api/v1/vms/v1/migrate" '{"to": "node-a"}'; }
kill -STOP "$(host_var node-a PID)"
migrate_bg
check "a move to node-a is accepted (202)" 202 '.kind == "vm.migrate"'
OP=$(jqo .id)
sleep 1
kill -9 "$(host_var node-a PID)"
capi GET "/api/v1/operations/$OP?wait=120"
check "... and fails while node-a's agent is gone" 200 '.state == "failed"'
capi GET /api/v1/vms/v1
check "... v1 still runs on node-b, no move left" 200 '.state == "running" and .host == "node-b" and .migration == null'
aapi node-b /v1/vms/v1
check "... node-b's agent still runs it" 200 '.phase == "running"'
"$LAUNCH" restart "$CL" node-a >"$TEST_TMP/restart.log" 2>&1 || diag "$(cat "$TEST_TMP/restart.log")"
env_reload
wait_for 15 host_state_is node-a up
leak_check "after a failed move"

# ---- a VM with a disk: an overlay over a registered image, data written into it, moves live
qemu-img create -q -f qcow2 "$TEST_TMP/base.qcow2" 64M && qemu-io -c 'write -P 0x11 0 4M' "$TEST_TMP/base.qcow2" >/dev/null
capi POST /api/v1/images "{\"name\": \"base\", \"path\": \"$TEST_TMP/base.qcow2\"}"
check "an image registered" 201 '.name == "base"'
capi POST '/api/v1/vms?wait=60' '{"name": "d1", "memory_mib": 128, "image": "base", "disk_size": "128M", "host": "node-a", "gpus": [{"kind": "vgpu", "type": "H100XM-20C"}]}'
check "d1 (vGPU, an overlay disk) runs on node-a" 200 '.state == "succeeded"'
D1_A=$(host_var node-a STATE)/vms/d1/disks/root.qcow2
capi POST '/api/v1/vms/d1/stop?wait=60' '{}'
check "d1 stopped to write into its overlay" 200 '.state == "succeeded"'
qemu-io -c 'write -P 0x22 1M 1M' "$D1_A" >/dev/null && _ok "0x22 written at 1 MiB of d1's overlay on node-a" || _not_ok "0x22 written into $D1_A"
capi POST '/api/v1/vms/d1/start?wait=60'
check "d1 started again" 200 '.state == "succeeded"'
migrate d1 '{"to": "node-b"}'
check "d1 live-migrates with its disk" 200 '.state == "succeeded" and .result.to == "node-b"'
aapi node-b /v1/vms/d1
check "... node-b runs it" 200 '.phase == "running" and .config.disks[0].base == "'"$TEST_TMP/base.qcow2"'"'
[ ! -e "$D1_A" ] && _ok "... node-a's overlay is removed" || _not_ok "... node-a's overlay is removed"
capi POST '/api/v1/vms/d1/stop?wait=60' '{}'
D1_B=$(host_var node-b STATE)/vms/d1/disks/root.qcow2
if qemu-io -r -c 'read -P 0x22 1M 1M' -c 'read -P 0x11 0 1M' "$D1_B" 2>&1 | grep -q 'Pattern verification failed'; then
        _not_ok "... node-b's overlay holds the data written on node-a, over the same base" "$(qemu-io -r -c 'read -v 1M 64' "$D1_B" 2>&1 | head -3)"
else
        qemu-img info -U --output=json "$D1_B" | jq -e --arg b "$TEST_TMP/base.qcow2" '.["backing-filename"] == $b' >/dev/null &&
                _ok "... node-b's overlay holds the data written on node-a, over the same base" ||
                _not_ok "... node-b's overlay holds the data written on node-a, over the same base" "$(qemu-img info -U "$D1_B" 2>&1 | head -5)"
fi
capi DELETE '/api/v1/vms/d1?wait=60'
check "d1 deleted" 200 '.state == "succeeded"'

# ---- maintenance: drain node-b (v1 vGPU and mv1 MIG-backed live, p1 pass-through offline,
# p2 pass-through with its own policy: stop)
capi POST '/api/v1/vms' '{"name": "p3", "memory_mib": 128, "maintenance": "later", "gpus": [{"kind": "passthrough", "count": 1}]}'
check "a VM's maintenance policy must be offline, stop or keep" 400 '.detail | test("maintenance") and test("keep")'
capi POST '/api/v1/vms?wait=60' '{"name": "p2", "memory_mib": 128, "host": "node-b", "maintenance": "stop", "gpus": [{"kind": "passthrough", "count": 1}]}'
check "p2 (pass-through, its maintenance policy: stop) runs on node-b" 200 '.state == "succeeded"'
capi POST /api/v1/hosts/node-b/drain '{"dry_run": true}'
check "drain dry run: the plan, nothing changed" 200 \
        '([.plan[] | {(.vm): .action}] | add) == {"v1": "live", "mv1": "live", "p1": "offline", "p2": "stop"}'
capi GET /api/v1/hosts/node-b
check "... node-b still up" 200 '.state == "up"'
run "$GPUVIRT" host drain node-b --wait
assert_rc 0 "gpuvirt host drain node-b --wait"
capi GET /api/v1/hosts/node-b
check "node-b is in maintenance" 200 '.state == "maintenance"'
capi GET /api/v1/vms
check "its VMs run elsewhere, p2 stopped there by its own policy" 200 \
        '([.[] | select(.name != "p2")] | all(.host != "node-b" and .state == "running")) and length == 4 and (.[] | select(.name == "p2") | .state == "stopped" and .host == "node-b")'
capi DELETE '/api/v1/vms/p2?wait=30'
check "delete p2" 200 '.state == "succeeded"'
aapi node-b /v1/vms
check "node-b's agent holds no VM" 200 'length == 0'
create m1 '{"kind": "vgpu", "type": "H100XM-20C"}' node-b
check "a VM pinned to the drained host is refused" 409 '.detail | test("maintenance")'
run "$GPUVIRT" host undrain node-b
assert_rc 0 "gpuvirt host undrain node-b"
capi GET /api/v1/hosts/node-b
check "node-b takes placements again" 200 '.state == "up"'
leak_check "after the drain"

for vm in v1 mv1 p1; do
        capi DELETE "/api/v1/vms/$vm?wait=30"
        check "delete $vm" 200 '.state == "succeeded"'
done
leak_check "at the end"
done_testing
