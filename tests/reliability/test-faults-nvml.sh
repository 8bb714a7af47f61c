#!/bin/bash
# SPDX-License-Identifier: MIT
# reliability.md R6/F8: NVML faults. First the library-level matrix (faults-nvml-host.c: every
# NVML return code at every symbol each host operation calls — inventory, MIG layout create and
# destroy, mode changes, vGPU create and remove, sampling — with no leaked GI/CI/vGPU, rollback,
# and the GPU unhealthy on GPU_IS_LOST/RESET_REQUIRED until it answers; GPUVIRT_FAULTS_FULL=1
# for every code at every site). Then a few cases end to end through agents and the controller
# on a simulated cluster of two dgx-h100:
#   - a GPU that answers GPU_IS_LOST: unhealthy in the agent's inventory and the controller's
#     host view, a gpu.unhealthy event, placement passes it over; healthy again (and an event)
#     once it answers
#   - a MIG layout through the API whose GPU-instance create fails: the operation fails with
#     the NVML call and code named, nothing is left on the GPU
#   - a VM create whose vGPU cannot be made (NVML fails on the agent): a clear error, no
#     hardware leaked, and the same create succeeds once the fault is gone
. "$(dirname "$0")/../integration/lib.sh"
. "$(dirname "$0")/../controller/cluster-lib.sh"

T0=$SECONDS
# ---- the library-level matrix
if [ -x "${GPUVIRT_FAULTS_NVML_HOST:-}" ]; then
        out=$("$GPUVIRT_FAULTS_NVML_HOST" 2>&1)
        rc=$?
        while IFS= read -r line; do
                case $line in
                ok\ *) _ok "matrix: ${line#ok * - }" ;;
                not\ ok\ *) _not_ok "matrix: ${line#not ok * - }" ;;
                \#*) echo "$line" ;;
                esac
        done <<<"$out"
        if [ "$rc" = 0 ]; then _ok "matrix: the program exits 0"; else
                _not_ok "matrix: the program exits 0" "exit $rc: $(tail -5 <<<"$out")"; fi
else
        _not_ok "matrix: GPUVIRT_FAULTS_NVML_HOST names the faults-nvml-host program" "'${GPUVIRT_FAULTS_NVML_HOST:-}'"
fi
echo "# matrix: $((SECONDS - T0)) s"

# ---- end to end
cluster_init fn
cluster_start --hosts 2 --profiles dgx-h100 --accel tcg --host-down-after 5
capi GET /api/v1/hosts
check "two hosts up" 200 'length == 2 and all(.[]; .state == "up")'
ROOT_A=$(host_var node-a ROOT)
sim() { "$GPUVIRT_SIM" "$@"; }
gpu_health() { # HOST GPU HEALTH: the controller's view of the GPU says HEALTH
        capi GET "/api/v1/hosts/$1/gpus/$2"
        [ "$HTTP" = 200 ] && [ "$(jqo .health)" = "$3" ]
}
events() { # every event so far, one JSON per line
        curl -s --max-time 2 --unix-socket "$SOCK" "http://controller/api/v1/events?after=0" |
                sed -n 's/^data: //p'
}

# GPU 0 of node-a is lost: every memory read answers GPU_IS_LOST
PCI0=$(inspect node-a | jq -r '.gpus[0].pci_address')
for c in nvmlDeviceGetMemoryInfo nvmlDeviceGetMemoryInfo_v2; do
        sim inject --root "$ROOT_A" "$c" NVML_ERROR_GPU_IS_LOST --gpu 0 --always >/dev/null
done
aapi node-a /v1/host
check "lost GPU: the agent's inventory says GPU 0 is unhealthy, naming GPU_IS_LOST" 200 \
        '.gpus[0].health == "unhealthy" and (.gpus[0].health_reason | contains("GPU_IS_LOST")) and
         ([.gpus[1:][] | .health] | all(. == "ok"))'
if wait_for 20 gpu_health node-a 0 unhealthy; then
        _ok "lost GPU: the controller's host view says unhealthy with the reason"
else
        _not_ok "lost GPU: the controller's host view says unhealthy with the reason"
fi
check "lost GPU: ... the reason says it takes no new VMs" 200 '.health_reason | contains("takes no new VMs")'
if events | jq -e --arg s "gpu/node-a/$PCI0" 'select(.type == "gpu.unhealthy" and .subject == $s)' >/dev/null; then
        _ok "lost GPU: a gpu.unhealthy event names it"
else
        _not_ok "lost GPU: a gpu.unhealthy event names it" "$(events | tail -5)"
fi
# every GPU of node-a but the lost one takes a pass-through VM; the next one finds no GPU
n_gpus=$(inspect node-a | jq '.gpus | length')
for i in $(seq 1 $((n_gpus - 1))); do
        create "pt$i" '{"kind": "passthrough", "count": 1}' node-a
done
capi GET /api/v1/vms
on_lost=$(jq -r '[.[] | select(any(.placement.gpus[]?; .gpu == "node-a/0")) | .name] | join(" ")' <<<"$OUT")
n_pt=$(jq '[.[] | select(.state == "running" and .placement.host == "node-a")] | length' <<<"$OUT")
if [ -z "$on_lost" ] && [ "$n_pt" = $((n_gpus - 1)) ]; then
        _ok "lost GPU: placement passes it over ($n_pt pass-through VMs on node-a's other GPUs, none on node-a/0)"
else
        _not_ok "lost GPU: placement passes it over" "VMs on node-a/0: '$on_lost'; running on node-a: $n_pt of $((n_gpus - 1))"
fi
create pt-more '{"kind": "passthrough", "count": 1}' node-a
check "lost GPU: one more pass-through VM on node-a is refused (409, no GPU for it)" 409 '.detail | length > 0'
sim inject --root "$ROOT_A" --clear >/dev/null
if wait_for 20 gpu_health node-a 0 ok; then
        _ok "GPU answers again: healthy in the controller's view"
else
        _not_ok "GPU answers again: healthy in the controller's view"
fi
if events | jq -e --arg s "gpu/node-a/$PCI0" 'select(.type == "gpu.healthy" and .subject == $s)' >/dev/null; then
        _ok "GPU answers again: a gpu.healthy event names it"
else
        _not_ok "GPU answers again: a gpu.healthy event names it"
fi
create pt-more '{"kind": "passthrough", "count": 1}' node-a
check "GPU answers again: it takes a VM again, on node-a/0" 200 \
        '.state == "succeeded" and .result.placement.gpus[0].gpu == "node-a/0"'
for i in $(seq 1 $((n_gpus - 1))) more; do capi DELETE "/api/v1/vms/pt$i?wait=60"; done
leak_check "lost GPU"

# a MIG layout whose GPU-instance create fails (node-b, GPU 1)
ROOT_B=$(host_var node-b ROOT)
capi POST /api/v1/hosts/node-b/gpus/1/mode '{"mode": "mig"}'
op=$(jqo .id)
capi GET "/api/v1/operations/$op?wait=60"
check "MIG fault: GPU 1 of node-b to mode mig" 200 '.state == "succeeded"'
before=$(hw_on_host node-b)
sim inject --root "$ROOT_B" nvmlDeviceCreateGpuInstanceWithPlacement NVML_ERROR_INSUFFICIENT_RESOURCES --gpu 1 --always >/dev/null
capi POST /api/v1/hosts/node-b/gpus/1/mig '{"profiles": ["3g.40gb", "2g.20gb", "1g.10gb"]}'
op=$(jqo .id)
capi GET "/api/v1/operations/$op?wait=60"
check "MIG fault: the layout operation fails naming the NVML call and code" 200 \
        '.state == "failed" and ((.error | tostring) | contains("nvmlDeviceCreateGpuInstanceWithPlacement") and contains("INSUFFICIENT_RESOURCES"))'
assert_eq "$(hw_on_host node-b)" "$before" "MIG fault: the GPU holds what it held before"
sim inject --root "$ROOT_B" --clear >/dev/null

# a VM create whose vGPU cannot be made: the agent's NVML says the GPU is in use
capi POST /api/v1/hosts/node-b/gpus/2/mode '{"mode": "vgpu"}'
op=$(jqo .id)
capi GET "/api/v1/operations/$op?wait=60"
sim inject --root "$ROOT_B" sysfs:current_vgpu_type EBUSY --always >/dev/null
for c in nvmlDeviceGetCreatableVgpus nvmlVgpuTypeGetMaxInstances; do
        sim inject --root "$ROOT_B" "$c" NVML_ERROR_IN_USE --always >/dev/null
done
create vg-fault '{"kind": "vgpu", "type": "H100XM-20C"}' node-b
if [ "$HTTP" -ge 400 ] || [ "$(jqo .state)" = failed ]; then
        _ok "vGPU fault: the create fails (HTTP $HTTP, $(jqo '.detail // (.error | tostring)' | head -c 200))"
else
        _not_ok "vGPU fault: the create fails"
fi
capi GET /api/v1/vms/vg-fault
if [ "$HTTP" = 404 ] || [ "$(jqo .state)" != running ]; then
        _ok "vGPU fault: the VM is not running ($(jqo '.state // "no record"'))"
else
        _not_ok "vGPU fault: the VM is not running"
fi
sim inject --root "$ROOT_B" --clear >/dev/null
capi DELETE "/api/v1/vms/vg-fault?wait=60"
leak_check "vGPU fault"
create vg-fault '{"kind": "vgpu", "type": "H100XM-20C"}' node-b
capi GET /api/v1/vms/vg-fault
check "vGPU fault gone: the same create succeeds and runs" 200 '.state == "running"'
capi DELETE "/api/v1/vms/vg-fault?wait=60"
leak_check "end"
"$LAUNCH" stop "$CL" >/dev/null 2>&1 # the daemons exit: LeakSanitizer reports then
no_sanitizer_reports
echo "# total: $((SECONDS - T0)) s"
done_testing
