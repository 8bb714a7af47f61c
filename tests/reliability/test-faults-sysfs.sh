#!/bin/bash
# SPDX-License-Identifier: MIT
# reliability.md R7 (F2, F4): the kernel's writes failing (the simulator's kernel mock, like
# libvirt's virpcimock [S12]) during VM create, VM delete and a GPU mode change, on a simulated
# cluster (node-a dgx-h100: pass-through; node-b dgx-a100: mdev vGPUs):
#   - bind, unbind, driver_override, drivers_probe failing during a pass-through VM's create and
#     delete, and a mode change to pass-through with drivers_probe failing (the GPU then sits on
#     no driver at all, half-way): each operation ends with a
#     clear error or succeeds, and after one reconcile pass (past the orphan grace) no device
#     is left on vfio-pci without an owner — the host's hardware is exactly its VMs';
#   - mdev create failing: the create fails, no mdev is left;
#   - mdev remove failing because the device is busy (EBUSY) [S20]: retried, the mdev goes.
. "$(dirname "$0")/../integration/lib.sh"
. "$(dirname "$0")/../controller/cluster-lib.sh"
cluster_init fy
T0=$SECONDS
GRACE=1
cluster_start --hosts 2 --profiles dgx-h100,dgx-a100 --accel tcg --orphan-grace "$GRACE" --stop-timeout 2
ROOT_A=$(host_var node-a ROOT)
ROOT_B=$(host_var node-b ROOT)
inject() { "$GPUVIRT_SIM" inject --root "$1" "${@:2}" >/dev/null; } # ROOT CALL CODE [opts]
clear_inj() { "$GPUVIRT_SIM" inject --root "$1" --clear >/dev/null; }
# reconcile HOST: one pass now (past the grace: orphans seen before are removed)
reconcile() {
        local url args=(-s -o "$TEST_TMP/rbody" -w '%{http_code}' --max-time 60 -X POST)
        url=$(host_var "$1" URL)
        args+=(-H "$(agent_auth "$1")" -H "Operation-Id: rec-$RANDOM-$RANDOM")
        curl "${args[@]}" "$url/v1/reconcile" >/dev/null
}
settle() { # HOST: two passes, the grace between them
        reconcile "$1"
        sleep $((GRACE + 1))
        reconcile "$1"
}
owned_check() { # LABEL HOST: the host's hardware is exactly its agent's VMs'
        local have want
        have=$(hw_on_host "$2")
        want=$(hw_of_agent "$2")
        if [ "$have" = "$want" ]; then
                _ok "$1: after a reconcile pass $2 holds exactly its VMs' hardware ($(grep -c . <<<"$have") items)"
        else
                _not_ok "$1: after a reconcile pass $2 holds exactly its VMs' hardware" \
                        "on the host, no owner: $(comm -23 <(echo "$have") <(echo "$want") | tr '\n' ' ')" \
                        "owned, not on the host: $(comm -13 <(echo "$have") <(echo "$want") | tr '\n' ' ')"
        fi
}
outcome() { # what an operation's answer says, short
        jq -r 'if .state then "\(.state)\(if .error then ": " + (.error.detail // (.error | tostring)) else "" end)" else "HTTP: \(.detail // .)" end' <<<"$OUT" | head -c 200
}
named() { # OP: the failure names the sysfs write or its errno
        jq -r '(.error.detail // .detail // (.error | tostring)) // ""' <<<"$OUT" | grep -qiE "$1|busy|EBUSY|ENODEV|no such device|resource"
}

# ---- pass-through VM create and delete with each write failing
for op in bind unbind driver_override drivers_probe; do
        P="create, sysfs:$op failing"
        inject "$ROOT_A" "sysfs:$op" EBUSY --always
        create "pt-$op" '{"kind": "passthrough", "count": 1}' node-a
        st=$(jqo .state)
        clear_inj "$ROOT_A"
        if [ "$st" = succeeded ]; then
                _ok "$P: the create succeeded (the write is not on its path)"
        elif [ "$st" = failed ] && named "$op"; then
                _ok "$P: the create fails with a clear error: $(outcome)"
        else
                _not_ok "$P: the create fails with a clear error, or succeeds" "$(outcome)"
        fi
        settle node-a
        owned_check "$P" node-a
        [ "$st" = succeeded ] || capi DELETE "/api/v1/vms/pt-$op?wait=60"

        P="delete, sysfs:$op failing"
        create "pd-$op" '{"kind": "passthrough", "count": 1}' node-a
        inject "$ROOT_A" "sysfs:$op" EBUSY --always
        capi DELETE "/api/v1/vms/pd-$op?wait=60"
        st=$(jqo .state)
        clear_inj "$ROOT_A"
        if [ "$st" = succeeded ] || { [ "$st" = failed ] && named "$op"; }; then
                _ok "$P: the delete $st$([ "$st" = failed ] && echo " with a clear error: $(outcome)")"
        else
                _not_ok "$P: the delete fails with a clear error, or succeeds" "$(outcome)"
        fi
        settle node-a
        if [ "$st" != succeeded ]; then
                capi DELETE "/api/v1/vms/pd-$op?wait=60"
                check "$P: the delete asked again succeeds" 200 '.state == "succeeded"'
                settle node-a
        fi
        owned_check "$P" node-a
done

# ---- a mode change to pass-through with bind failing
P="mode change to passthrough, sysfs:drivers_probe failing"
inject "$ROOT_A" sysfs:drivers_probe EBUSY --always
capi POST /api/v1/hosts/node-a/gpus/3/mode '{"mode": "passthrough"}'
op=$(jqo .id)
capi GET "/api/v1/operations/$op?wait=60"
st=$(jqo .state)
clear_inj "$ROOT_A"
if [ "$st" = failed ] && named drivers_probe; then
        _ok "$P: the change fails with a clear error: $(outcome)"
else
        _not_ok "$P: the change fails with a clear error" "$(outcome)"
fi
settle node-a
drv=$(inspect node-a | jq -r '.gpus[3].driver')
assert_eq "$drv" nvidia "$P: GPU 3 is back on its host driver (not left on vfio-pci)"
owned_check "$P" node-a

# ---- mdev create and remove (node-b, dgx-a100: mdev vGPUs)
A100_TYPE=$(inspect node-b | jq -r '[.gpus[0].vgpu.types[]? | select(.gi_profile == null) | .name][0] // "A100DX-10C"')
P="vGPU create, sysfs:mdev_create failing"
inject "$ROOT_B" sysfs:mdev_create ENOSPC --always
create mc1 "{\"kind\": \"vgpu\", \"type\": \"$A100_TYPE\"}" node-b
st=$(jqo .state)
clear_inj "$ROOT_B"
if [ "$st" = failed ]; then _ok "$P: the create fails: $(outcome)"; else _not_ok "$P: the create fails" "$(outcome)"; fi
capi DELETE "/api/v1/vms/mc1?wait=60"
settle node-b
owned_check "$P" node-b

P="vGPU delete, sysfs:mdev_remove busy once"
create mr1 "{\"kind\": \"vgpu\", \"type\": \"$A100_TYPE\"}" node-b
check "$P: a vGPU VM runs on node-b" 200 '.state == "succeeded"'
mdev=$(aapi node-b /v1/vms/mr1; jqo '.hw[] | select(.kind == "vgpu") | .id')
inject "$ROOT_B" sysfs:mdev_remove EBUSY --once
capi DELETE '/api/v1/vms/mr1?wait=60'
diag "delete with the remove busy once: $(outcome)"
wait_for 20 bash -c "! \"$GPUVIRT_SIM\" status --root \"$ROOT_B\" --json | jq -e --arg u \"$mdev\" '.vgpus[]? | select(.uuid == \$u)' >/dev/null"
if "$GPUVIRT_SIM" status --root "$ROOT_B" --json | jq -e --arg u "$mdev" '.vgpus[]? | select(.uuid == $u)' >/dev/null; then
        _not_ok "$P: the mdev $mdev is removed (the busy remove retried)"
else
        _ok "$P: the mdev $mdev is removed (the busy remove retried)"
fi
capi GET /api/v1/vms/mr1
if [ "$HTTP" = 404 ]; then _ok "$P: mr1 is deleted"; else
        capi DELETE '/api/v1/vms/mr1?wait=60'
        check "$P: mr1 is deleted (asked again)" 200 '.state == "succeeded"'
fi
settle node-b
owned_check "$P" node-b
leak_check "end"
"$LAUNCH" stop "$CL" >/dev/null 2>&1 # the daemons exit: LeakSanitizer reports then
no_sanitizer_reports
echo "# total: $((SECONDS - T0)) s"
done_testing
