#!/bin/bash
# SPDX-License-Identifier: MIT
# Tenants on a simulated cluster (two l40s-4 hosts; real QEMU on TCG): a tenant's GPU pools
# steer placement and moves, its quotas (VMs, vCPUs, memory, slices, vWS seats) refuse the
# create or start that would pass them with words that say what to do and reserve nothing,
# usage follows the VMs, a tenant with VMs or member tokens is not deleted, bad tenants are
# refused by member; and the API's limits: the body cap (413), the name grammar (400).
. "$(dirname "$0")/../integration/lib.sh"
. "$(dirname "$0")/cluster-lib.sh"
cluster_init tenants

cluster_start --hosts 2 --profiles l40s-4 --accel tcg

vm() { # NAME TENANT [GPU-JSON] [VCPUS]
        local g=${3:-null}
        capi POST '/api/v1/vms?wait=60' "$(jq -nc --arg n "$1" --arg t "$2" --argjson g "$g" \
                --argjson c "${4:-1}" '{name: $n, tenant: $t, memory_mib: 128, vcpus: $c} +
                        (if $g == null then {} else {gpus: [$g]} end)')"
}
VGPU='{"kind": "vgpu", "type": "L40S-4Q"}'

# ---- bad tenants
capi PUT /api/v1/tenants/acme '{"quota": {"vcpu": 4}}'
check "an unknown quota member refused by name" 400 '.detail | contains("unknown member '"'"'vcpu'"'"'")'
capi PUT /api/v1/tenants/acme '{"quota": {"vcpus": -1}}'
check "a negative quota refused" 400 '.detail | contains("quota.vcpus")'
capi PUT /api/v1/tenants/acme '{"quota": {"seats": {"grid": 1}}}'
check "an unknown edition refused, the editions listed" 400 '.detail | contains("nvaie")'
capi PUT /api/v1/tenants/Acme '{}'
check "a tenant name outside the grammar refused" 400 '.detail | contains("not a valid name")'
capi POST '/api/v1/vms' '{"name": "x", "memory_mib": 128, "tenant": "nobody"}'
check "a VM of a tenant that does not exist refused" 404 '.detail | contains("No tenant '"'"'nobody'"'"'")'

# ---- pools
capi PUT /api/v1/tenants/acme \
        '{"quota": {"vms": 3, "vcpus": 3, "memory_mib": 1024, "slices": 2, "seats": {"vws": 1}}, "gpu_pools": ["gold"]}'
check "tenant acme: quotas and the gold pool" 200 '.quota.vms == 3 and .gpu_pools == ["gold"] and .usage.vms == 0'
vm a1 acme
check "no host in pool gold: refused, saying so" 409 '.detail | contains("GPU pools '"'"'gold'"'"'")'
capi POST /api/v1/hosts/node-b/pool '{"pool": "gold"}'
check "node-b put in pool gold" 200 '.pool == "gold"'
capi GET /api/v1/hosts/node-b
check "node-b's view says pool gold" 200 '.pool == "gold"'
capi POST /api/v1/hosts/node-b/pool '{"pool": "Gold!"}'
check "a pool name outside the grammar refused" 400 '.detail | contains("pool")'
vm a1 acme "$VGPU"
check "a1 (vGPU) placed" 200 '.state == "succeeded"'
capi GET /api/v1/vms/a1
check "a1 is on node-b, the gold pool's host" 200 '.host == "node-b"'
vm d1 ""
capi POST '/api/v1/vms?wait=60' '{"name": "free-1", "memory_mib": 128, "host": "node-a"}'
check "a VM of no tenant goes anywhere (pinned to node-a)" 200 '.state == "succeeded"'
capi POST '/api/v1/vms/a1/migrate?wait=60' '{"to": "node-a"}'
check "a1 is not moved out of its tenant's pools" 409 '.detail | contains("nowhere to go")'

# ---- quotas
vm a2 acme "$VGPU"
check "a2's vGPU would need a second vWS seat: refused, the quota named" 409 \
        '.type | endswith("quota-exceeded")'
capi GET /api/v1/vms/a2
check "nothing was reserved for a2" 404 '.status == 404'
capi PUT /api/v1/tenants/acme \
        '{"quota": {"vms": 3, "vcpus": 3, "memory_mib": 1024, "slices": 2, "seats": {"vws": 2}}, "gpu_pools": ["gold"]}'
vm a2 acme "$VGPU"
check "with 2 vWS seats a2 fits" 200 '.state == "succeeded"'
vm a3 acme "$VGPU"
check "a third slice refused (slices 2)" 409 '.detail | contains("GPU slices") and contains("2 in use + 1 asked > 2")'
vm a3 acme null 2
check "2 more vCPUs refused (vcpus 3, 2 in use)" 409 '.detail | contains("vCPUs") and contains("gpuvirt tenant set acme")'
vm a3 acme
check "a3 with 1 vCPU fits" 200 '.state == "succeeded"'
vm a4 acme
check "a fourth VM refused (vms 3)" 409 '.detail | contains("over its quota of VMs")'
capi GET /api/v1/tenants/acme
check "acme's usage: 3 VMs, 3 vCPUs, 384 MiB, 2 slices, 2 vWS seats" 200 \
        '.usage == {"vms": 3, "vcpus": 3, "memory_mib": 384, "gpus": 0, "slices": 2, "seats": {"vws": 2}}'

# seats follow the VM's state: stopped, a1 frees its seat and a start takes it again
capi POST '/api/v1/vms/a1/stop?wait=60' '{}'
check "a1 stopped" 200 '.state == "succeeded"'
capi GET /api/v1/tenants/acme
check "stopped, a1 holds no vWS seat (the slice stays reserved)" 200 '.usage.seats == {"vws": 1} and .usage.slices == 2'
capi PUT /api/v1/tenants/acme \
        '{"quota": {"vms": 3, "vcpus": 3, "memory_mib": 1024, "slices": 2, "seats": {"vws": 1}}, "gpu_pools": ["gold"]}'
capi POST '/api/v1/vms/a1/start?wait=60'
check "a1's start refused: 1 vWS seat, a2 holds it" 409 '.detail | contains("vws licence seats")'
capi GET /api/v1/vms/a1
check "a1 stays stopped" 200 '.state == "stopped"'

# ---- deleting a tenant
capi DELETE /api/v1/tenants/acme
check "acme with VMs is not deleted, saying why" 409 '.detail | contains("still has 3 VMs")'
for v in a1 a2 a3; do capi DELETE "/api/v1/vms/$v?wait=60"; done
check "acme's VMs deleted" 200 '.state == "succeeded"'
capi POST /api/v1/tokens '{"name": "acme-bot", "role": "member", "tenant": "acme"}'
check "a member token of acme" 201 '.tenant == "acme" and .role == "member"'
TOKEN_ID=$(jqo .id)
capi DELETE /api/v1/tenants/acme
check "acme with a member token is not deleted, the token named" 409 '.detail | contains("acme-bot")'
capi DELETE "/api/v1/tokens/$TOKEN_ID"
capi DELETE /api/v1/tenants/acme
check "acme deleted once empty" 200 '.deleted == true'

# ---- the API's limits
head -c 70000 /dev/zero | tr '\0' 'a' | jq -Rc '{name: "big", memory_mib: 128, cloud_init: {user_data: .}}' \
        >"$TEST_TMP/big.json"
HTTP=$(curl -s -o "$TEST_TMP/body" -w '%{http_code}' --unix-socket "$SOCK" -X POST \
        -H 'Content-Type: application/json' --data-binary @"$TEST_TMP/big.json" http://c/api/v1/vms)
OUT=$(cat "$TEST_TMP/body")
check "a 70 KB body is refused (413), the cap named" 413 '.status == 413'
capi GET /api/v1/vms/Bad_Name
check "a VM name outside the grammar is 400, not a lookup" 400 '.detail | contains("not a valid name")'
capi GET '/api/v1/operations/op%2F..%2Fx'
check "an id outside the grammar is 400" 400 '.detail | contains("not a valid")'
no_sanitizer_reports
done_testing
