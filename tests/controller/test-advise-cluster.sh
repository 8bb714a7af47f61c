#!/bin/bash
# SPDX-License-Identifier: MIT
# The mode advisor on a simulated cluster (one dgx-h100 host, one l40s-4; real QEMU on TCG):
# POST /api/v1/advise ranks MIG first for multi-tenant hardware isolation and names where it
# fits now, rules out time-sliced vGPU and the L40S's MIG saying why; the GPU an option names is
# the one a VM of that request then takes, and the next answer names another; an option that
# does not fit now stays listed, below those that do, with the engine's reason; bad traits are
# 400 naming the member; the yearly cost appears once a priced pool of the edition exists;
# `gpuvirt advise` prints the same, as UX.md sketches it, and --json the API's answer.
. "$(dirname "$0")/../integration/lib.sh"
. "$(dirname "$0")/cluster-lib.sh"
cluster_init adv
# out_has NEEDLE NAME: stdout holds NEEDLE once its lines are joined (the CLI wraps at 100).
out_has() {
        if _contains "$(tr '\n' ' ' <<<"$OUT" | tr -s ' ')" "$1"; then _ok "$2"; else _not_ok "$2" "stdout lacks '$1'"; fi
}

cluster_start --hosts 2 --profiles dgx-h100,l40s-4 --accel tcg --same-group
capi GET /api/v1/hosts
check "two hosts up" 200 'length == 2 and all(.[]; .state == "up")'
export GPUVIRT_ENDPOINT="unix:$SOCK"
H100=H100-SXM5-80GB

advise() { capi POST /api/v1/advise "$1"; }

# ---- multi-tenant hardware isolation: MIG first, on node-a, nothing reserved
advise '{"kind": "inference", "gpu_memory_mib": 20480, "isolation": "hardware", "users": 3}'
check "inference, 20 GiB, hardware isolation, 3 users: MIG 1g.20gb ×3 on the H100s first" 200 \
        ".options[0].mode == \"mig\" and .options[0].model == \"$H100\" and .options[0].profile == \"1g.20gb\" and .options[0].instances == 3 and .options[0].vgpu_type == \"H100XM-1-20C\""
check "... it fits now on node-a, named by host and GPU, nothing reserved" 200 \
        '.options[0].fit == "now" and .options[0].where.fits and .options[0].where.reserved == false and (.options[0].where.gpus | length) >= 1 and all(.options[0].where.gpus[]; .host == "node-a") and (.options[0].where.text | startswith("node-a GPU"))'
check "... time-sliced vGPU is ruled out by the isolation rule, the L40S's MIG by the catalog" 200 \
        'any(.excluded[]; .mode == "vgpu" and .rule == "isolation-hardware" and (.reason | contains("rules out time-sliced vGPU (software isolation)"))) and any(.excluded[]; .mode == "mig" and .model == "L40S" and .rule == "no-mig" and .reason == "L40S has no MIG.")'
check "... and no vGPU option is offered; the reasons speak the trade-off table's words" 200 \
        'all(.options[]; .mode != "vgpu") and any(.options[0].reasons[]; contains("multi-tenant isolation")) and any(.options[0].reasons[]; contains("guaranteed per slice"))'
capi GET /api/v1/vms
check "the advice created no VM" 200 'length == 0'
capi GET /api/v1/gpus
check "... and holds no GPU" 200 'all(.[]; (.use | length) == 0)'

# ---- the GPU an option names is the one a VM of its request takes; then another is named
advise "{\"kind\": \"training\", \"gpu_memory_mib\": 61440, \"models\": [\"$H100\"]}"
check "training, 60 GiB on H100: pass-through first, one GPU of node-a" 200 \
        '.options[0].mode == "passthrough" and .options[0].where.fits and (.options[0].where.gpus | length) == 1'
PCI1=$(jqo '.options[0].where.gpus[0].pci')
TEXT1=$(jqo '.options[0].where.text')
create t1 "$(jq -c '.options[0].request' <<<"$OUT")" node-a
check "a VM of the option's request runs" 200 '.state == "succeeded"'
capi GET /api/v1/vms/t1
check "... on the GPU the advice named ($TEXT1)" 200 ".placement.gpus[0].pci == \"$PCI1\""
advise "{\"kind\": \"training\", \"gpu_memory_mib\": 61440, \"models\": [\"$H100\"]}"
check "the same advice now names another GPU" 200 \
        ".options[0].mode == \"passthrough\" and .options[0].where.fits and .options[0].where.gpus[0].pci != \"$PCI1\" and .options[0].where.text != \"$TEXT1\""

# ---- an option that does not fit now: listed below the ones that fit, with the engine's reason
SIM='{"kind": "simulation", "gpu_memory_mib": 24576, "users": 4, "models": ["L40S"]}'
advise "$SIM"
check "simulation ×4 on the L40S host: pass-through ×4 first (one GPU each), vGPU L40S-24C ×4 next" 200 \
        '.options[0].mode == "passthrough" and .options[0].instances == 4 and .options[0].where.fits and (.options[0].where.gpus | length) == 4 and .options[1].profile == "L40S-24C" and .options[1].where.fits'
create s1 '{"kind": "passthrough", "count": 1}' node-b
check "a pass-through VM takes one of node-b's L40S" 200 '.state == "succeeded"'
advise "$SIM"
check "now vGPU (2 GPUs) ranks first; pass-through ×4 stays listed, last, not fitting, with the engine's reason" 200 \
        '.options[0].profile == "L40S-24C" and .options[0].fit == "now" and .options[-1].mode == "passthrough" and .options[-1].fit == "no-room" and (.options[-1].where.fits | not) and .options[-1].where.placed == 3 and (.options[-1].where.reason | length) > 0 and (.options[-1].where.text | startswith("only 3 of 4 fit now"))'

# ---- bad traits: 400 naming the member and the valid values
advise '{"kind": "gaming", "gpu_memory_mib": 1024}'
check "an unknown kind: 400 listing the kinds" 400 \
        '.detail | contains("kind") and contains("training, inference, vdi, development, simulation")'
advise '{"kind": "training"}'
check "no gpu_memory_mib: 400 naming it" 400 '.detail | contains("gpu_memory_mib: required")'
advise '{"kind": "training", "gpu_memory_mib": "20G"}'
check "gpu_memory_mib as a string: 400" 400 '.detail | contains("gpu_memory_mib")'
advise '{"kind": "training", "gpu_memory_mib": 1024, "isolation": "strong"}'
check "an unknown isolation: 400 listing none, software, hardware" 400 \
        '.detail | contains("isolation") and contains("none, software, hardware")'
advise '{"kind": "training", "gpu_memory_mib": 1024, "users": 0}'
check "users 0: 400" 400 '.detail | contains("users")'
advise '{"kind": "training", "gpu_memory_mib": 1024, "latency_sla": true}'
check "latency_sla as a boolean: 400 naming its strings" 400 '.detail | contains("strict")'
advise '{"kind": "training", "gpu_memory_mib": 1024, "models": ["H100"]}'
check "an unknown model: 400 listing the catalog's" 400 '.detail | contains("H100-SXM5-80GB")'
advise '{"kind": "training", "gpu_memory_mib": 1024, "gpus": 1}'
check "an unknown member: 400 naming it" 400 ".detail | contains(\"'gpus'\")"
advise 'not json'
check "a body that is not JSON: 400" 400 '.status == 400'
advise '{"kind": "training", "gpu_memory_mib": 204800}'
check "more memory than any GPU: 200, no option, and why" 200 \
        '(.options | length) == 0 and (.none | contains("more than any GPU"))'

# ---- the CLI
run "$GPUVIRT" advise --kind inference --gpu-memory 20G --isolation hardware --users 3
if [ "$RC" = 0 ] && grep -qE '^1\. MIG 1g\.20gb \(H100-SXM5-80GB\) ×3 on node-a GPU' <<<"$OUT"; then
        _ok "gpuvirt advise: 1. MIG 1g.20gb ×3 on node-a"
else
        _not_ok "gpuvirt advise: 1. MIG 1g.20gb ×3 on node-a"
fi
out_has "live-migratable as MIG-backed vGPU (H100XM-1-20C, 3 seats NVAIE (no price configured))" \
        "... the MIG-backed vGPU and its seats, no price invented"
out_has "rules out time-sliced vGPU (software isolation)" \
        "... the rule that ruled out vGPU"
run "$GPUVIRT" --json advise --kind vdi --gpu-memory 2G --users 8
assert_jq '.options[0].mode + " " + .options[0].profile' "vgpu L40S-2Q" \
        "gpuvirt --json advise: VDI gets a Q-series vGPU first"
run "$GPUVIRT" advise --kind inference --gpu-memory 20X
assert_fails_with 2 "a size the CLI cannot read: usage error"
run "$GPUVIRT" advise --kind gaming --gpu-memory 1G
assert_fails_with 2 "an unknown kind: the API's 400 is exit 2"
assert_err_contains "training, inference, vdi, development, simulation" "... listing the kinds"

# ---- cost: none until a priced pool of the edition exists
advise '{"kind": "inference", "gpu_memory_mib": 20480, "users": 3, "models": ["H100-SXM5-80GB"]}'
check "vGPU H100XM-20C ×3: 3 seats of nvaie, no price, saying so" 200 \
        '[.options[] | select(.mode == "vgpu")][0] | .profile == "H100XM-20C" and .license.edition == "nvaie" and .license.seats == 3 and .license.cost_per_year == null and (.license.note | contains("invents no price"))'
capi PUT /api/v1/licenses/aie '{"edition": "nvaie", "seats": 10, "price_per_seat_year": 4500}'
if [ "$HTTP" = 200 ] || [ "$HTTP" = 201 ]; then
        _ok "a priced nvaie pool (4,500 a seat-year)"
        advise '{"kind": "inference", "gpu_memory_mib": 20480, "users": 3, "models": ["H100-SXM5-80GB"]}'
        check "... the vGPU option costs 3 × 4,500 = 13,500 a year" 200 \
                '[.options[] | select(.mode == "vgpu")][0] | .license.cost_per_year == 13500 and .license.price_per_seat_year == 4500 and .license.seats_free == 10'
        check "... MIG holds no seat; its MIG-backed vGPU would cost the same" 200 \
                '[.options[] | select(.mode == "mig")][0] | .license.seats == 0 and .as_vgpu.cost_per_year == 13500'
        run "$GPUVIRT" advise --kind inference --gpu-memory 20G --users 3 --model H100-SXM5-80GB
        out_has '3 seats NVAIE ($13,500/yr at the configured price)' "gpuvirt advise shows the yearly cost"
        capi PUT /api/v1/licenses/aie '{"edition": "nvaie", "seats": 10, "price_per_seat_year": 4500, "counting": "gpu"}'
        advise '{"kind": "inference", "gpu_memory_mib": 20480, "users": 3, "models": ["H100-SXM5-80GB"]}'
        check "counting per GPU: the 3 vGPUs share one GPU, one seat, 4,500 a year" 200 \
                '[.options[] | select(.mode == "vgpu")][0] | .license.counting == "gpu" and .license.seats == 1 and .license.cost_per_year == 4500'
else
        _not_ok "a priced nvaie pool (4,500 a seat-year)" "PUT /api/v1/licenses/aie answered $HTTP"
fi

done_testing
