#!/bin/bash
# SPDX-License-Identifier: MIT
# Faults: NVML missing, NVML calls failing (gpuvirt-sim inject), kernel writes failing (the
# kernel-behaviour mock), corrupt or truncated sysfs files. Each must give a clear error naming
# the call or file, and leave nothing half-done (checked in the simulated host).
. "$(dirname "$0")/lib.sh"

NO_NVML=/nonexistent/libnvidia-ml.so.1

# ================================================================== NVML library absent (mixed)
new_host mixed
P="no NVML"
n_sim=$(sim_json '.gpus | length')
gv --nvml-library $NO_NVML host inspect
assert_rc 0 "$P: host inspect still works"
assert_out_contains "$n_sim GPUs" "$P: host inspect lists every GPU from sysfs"
assert_out_contains "NVML unavailable: " "$P: host inspect says NVML is unavailable"
assert_out_contains "$NO_NVML" "$P: ... naming the library it tried"
gv --nvml-library $NO_NVML --json host inspect
assert_json "$P: host inspect --json parses"
assert_jq '.nvml_error | contains("'$NO_NVML'")' true "$P: JSON nvml_error names the library"
assert_jq '[.gpus[].model] | join(" ")' "$(sim_json '[.gpus[].model] | join(" ")')" \
        "$P: models still named (catalog by PCI id)"
assert_jq '[.gpus[] | .uuid, .memory_total_mib] | unique | map(tostring) | join(" ")' null \
        "$P: NVML-only values are null, not made up"
a100=$("$JQ" -r '[.gpus[] | select(.model == "A100-PCIe-40GB")][0].index' <<<"$OUT")
gf=$("$JQ" -r '[.gpus[] | select(.model == "GeForce-RTX-3090")][0].index' <<<"$OUT")
for cmd in "mig profiles $a100" "gpu set-mode $a100 mig" "vgpu types $a100" "vgpu create $a100 A100-20C"; do
        # shellcheck disable=SC2086
        gv --nvml-library $NO_NVML $cmd
        assert_fails_with 5 "$P: '$cmd' exits 5 (unavailable)"
        assert_err_contains "NVML is not available" "$P: '$cmd' says NVML is not available"
done
assert_eq "$(sim_json ".gpus[$a100] | \"\(.mig_pending) \(.sriov_numvfs)\"")" "0 32" \
        "$P: the refused commands changed nothing"
gv --nvml-library $NO_NVML gpu set-mode "$gf" passthrough
assert_rc 0 "$P: pass-through needs no NVML"
assert_eq "$(driver_of "$(sim_json ".gpus[$gf].bdf")")" vfio-pci "$P: ... and the GPU is on vfio-pci"
gv --nvml-library $NO_NVML gpu set-mode "$gf" none
assert_rc 0 "$P: back from pass-through without NVML"

# ================================================================== NVML errors (dgx-h100)
new_host dgx-h100
P="NVML fault"
gv gpu set-mode 0 mig
gv mig apply 0 3g.40gb
snap=$(sim_json '[.gpus[0].gpu_instances[] | "\(.id):\(.start)+\(.size)"] | join(" ")')

# GPU-instance creation fails: nothing created, the existing instance kept
inject --gpu 0 nvmlDeviceCreateGpuInstanceWithPlacement NVML_ERROR_INSUFFICIENT_RESOURCES
gv mig apply 0 3g.40gb,2g.20gb,1g.10gb
assert_fails_with 4 "$P: GI creation INSUFFICIENT_RESOURCES: mig apply exits 4"
assert_err_contains_all "$P: ... the message names the NVML call, the error and what was created" \
        nvmlDeviceCreateGpuInstanceWithPlacement NVML_ERROR_INSUFFICIENT_RESOURCES "removed"
assert_eq "$(sim_json '[.gpus[0].gpu_instances[] | "\(.id):\(.start)+\(.size)"] | join(" ")')" "$snap" \
        "$P: after the failed apply the GPU holds exactly what it held before"
assert_eq "$(sim_json '.inject | length')" 0 "$P: the injected failure was consumed"
gv mig apply 0 3g.40gb,2g.20gb,1g.10gb
assert_rc 0 "$P: the same layout succeeds once the fault is gone"

# GetMigMode says the GPU is lost: inspect reports it on that GPU and goes on
inject --gpu 1 nvmlDeviceGetMigMode NVML_ERROR_GPU_IS_LOST
gv --json host inspect
assert_rc 0 "$P: GetMigMode GPU_IS_LOST: host inspect still exits 0"
assert_jq '.gpus[1].problems | join(" ") | (contains("nvmlDeviceGetMigMode") and contains("GPU_IS_LOST"))' \
        true "$P: ... the GPU's problems name the call and the error"
assert_jq '[.gpus[0,2,3,4,5,6,7].problems[]] | length' 0 "$P: ... the other GPUs are unaffected"
assert_jq '.gpus[0].mig.gpu_instances | length' 3 "$P: ... GPU 0's instances are still listed"

# SetMigMode IN_USE: refused with the call named, nothing changed
inject --gpu 2 nvmlDeviceSetMigMode NVML_ERROR_IN_USE
gv gpu set-mode 2 mig
assert_fails_with 4 "$P: SetMigMode IN_USE: set-mode mig exits 4"
assert_err_contains_all "$P: ... the message names the call and the error" nvmlDeviceSetMigMode \
        NVML_ERROR_IN_USE
assert_eq "$(sim_json '.gpus[2] | "\(.mig_current) \(.mig_pending) \(.sriov_numvfs)"')" "0 0 32" \
        "$P: ... MIG still off and the VFs untouched"
assert_eq "$(inspect_json '.gpus[2].mode')" vgpu "$P: ... the GPU is still in mode vgpu"

# GI destroy fails: the instance stays, the call is named
inject --gpu 0 nvmlGpuInstanceDestroy NVML_ERROR_IN_USE
gi=$(inspect_json '.gpus[0].mig.gpu_instances[0].id')
gv mig destroy 0 "$gi"
assert_fails_with 4 "$P: GpuInstanceDestroy IN_USE: mig destroy exits 4"
assert_err_contains nvmlGpuInstanceDestroy "$P: ... naming the call"
assert_eq "$(sim_json "[.gpus[0].gpu_instances[] | select(.id == $gi)] | length")" 1 "$P: ... the instance is still there"
inject_clear

# ================================================================== kernel faults, vendor-VFIO
P="kernel fault"
b3=$(sim_json '.gpus[3].bdf')
vfs=$(numvfs_of "$b3")
inject --gpu 3 sysfs:sriov_numvfs EBUSY
gv gpu set-mode 3 none
assert_fails_with 4 "$P: sriov_numvfs EBUSY: set-mode none exits 4"
assert_err_contains_all "$P: ... the message names the file and the error, and the VF count left" \
        "$b3/sriov_numvfs" "busy" "back at $vfs VFs"
assert_eq "$(numvfs_of "$b3")" "$vfs" "$P: ... the VFs are as they were"
assert_eq "$(inspect_json '.gpus[3].mode')" vgpu "$P: ... the GPU is still in mode vgpu"

vf=$(readlink "$(dev_dir "$b3")/virtfn0"); vf=${vf##*/}
inject --gpu 3 --target "$vf" sysfs:current_vgpu_type EBUSY
gv vgpu create 3 H100XM-20C
assert_fails_with 4 "$P: current_vgpu_type EBUSY: vgpu create exits 4"
assert_err_contains_all "$P: ... the message names the VF's file" "$vf/nvidia/current_vgpu_type" "busy"
assert_eq "$(<"$(dev_dir "$vf")/nvidia/current_vgpu_type") $(sim_json '.vgpus | length')" "0 0" \
        "$P: ... no vGPU was left behind"
gv vgpu create 3 H100XM-20C --json
vid=$("$JQ" -r .id <<<"$OUT")
inject --gpu 3 sysfs:current_vgpu_type EBUSY
gv vgpu destroy "$vid"
assert_fails_with 4 "$P: current_vgpu_type EBUSY on release: vgpu destroy exits 4"
assert_err_contains "$vid/nvidia/current_vgpu_type" "$P: ... naming the file"
assert_eq "$(sim_json '.vgpus | length')" 1 "$P: ... the vGPU still exists"
gv vgpu destroy "$vid"
assert_rc 0 "$P: destroy succeeds once the fault is gone"

# ================================================================== kernel faults, pass-through (mixed)
ROOT=$TEST_TMP/mixed
P="pass-through fault"
gv --json host inspect
gf_bdf=$("$JQ" -r ".gpus[$gf].pci_address" <<<"$OUT")
audio=$("$JQ" -r ".gpus[$gf].passthrough.iommu_group_members[0].pci_address" <<<"$OUT")
audio_drv=$(driver_of "$audio")
# The CLI binds through driver_override + unbind + drivers_probe (passthrough.md §2); each
# step fails in turn on the audio function, after the GPU itself has moved.
for op in driver_override unbind drivers_probe; do
        inject --target "$audio" "sysfs:$op" EBUSY
        gv gpu set-mode "$gf" passthrough
        assert_fails_with 4 "$P: sysfs:$op EBUSY on the audio function: exit 4"
        assert_err_contains_all "$P: $op: the message names the function, the step and the error" \
                "$audio" "$op" "busy"
        assert_eq "$(driver_of "$gf_bdf") $(driver_of "$audio")" "nvidia $audio_drv" \
                "$P: $op: the GPU and its audio function are back on their drivers"
        assert_eq "$(<"$(dev_dir "$gf_bdf")/driver_override")$(<"$(dev_dir "$audio")/driver_override")" \
                "(null)(null)" "$P: $op: no driver_override left behind"
        inject_clear
done
inject --target "$gf_bdf" sysfs:drivers_probe EBUSY
gv gpu set-mode "$gf" passthrough
assert_fails_with 4 "$P: drivers_probe EBUSY on the GPU itself: exit 4"
assert_eq "$(driver_of "$gf_bdf") $(driver_of "$audio")" "nvidia $audio_drv" "$P: ... nothing moved"
inject_clear
gv gpu set-mode "$gf" passthrough
assert_rc 0 "$P: pass-through succeeds once the fault is gone"

# ================================================================== mdev faults (dgx-a100)
new_host dgx-a100
P="mdev fault"
inject --gpu 0 sysfs:mdev_create ENOSPC
gv vgpu create 0 A100DX-20C
assert_fails_with 4 "$P: mdev_create ENOSPC: vgpu create exits 4"
assert_err_contains_all "$P: ... the message names the mdev create file and the error" \
        "mdev_supported_types/nvidia-" "/create" "No space left"
assert_eq "$(ls "$ROOT/sys/bus/mdev/devices" 2>/dev/null | wc -l) $(sim_json '.vgpus | length')" "0 0" \
        "$P: ... no mdev device was left behind"
gv vgpu create 0 A100DX-20C --json
uuid=$("$JQ" -r .id <<<"$OUT")
inject --gpu 0 sysfs:mdev_remove EBUSY
gv vgpu destroy "$uuid"
assert_fails_with 4 "$P: mdev_remove EBUSY: vgpu destroy exits 4"
assert_err_contains "$uuid" "$P: ... naming the mdev"
assert_eq "$([ -e "$ROOT/sys/bus/mdev/devices/$uuid" ] && echo present)" present "$P: ... the mdev is still there"
gv vgpu destroy "$uuid"
assert_rc 0 "$P: destroy succeeds once the fault is gone"

# ================================================================== corrupt sysfs (l40s-4)
new_host l40s-4
P="corrupt sysfs"
b0=$(sim_json '.gpus[0].bdf'); b1=$(sim_json '.gpus[1].bdf'); b2=$(sim_json '.gpus[2].bdf')
b3=$(sim_json '.gpus[3].bdf')
echo garbage >"$(dev_dir "$b0")/vendor"
echo 0xzz >"$(dev_dir "$b1")/class"
: >"$(dev_dir "$b2")/sriov_totalvfs"
gv host inspect
assert_rc 0 "$P: host inspect still exits 0"
for f in "$b0/vendor" "$b1/class" "$b2/sriov_totalvfs"; do
        assert_out_contains "$f' holds" "$P: the report names '$f' and what it holds"
done
assert_out_contains "corrupt or truncated" "$P: ... and says the file is corrupt or truncated"
gv --json host inspect
assert_json "$P: host inspect --json parses"
assert_jq '.problems | length' 3 "$P: three problems reported"
assert_jq "[.gpus[].pci_address] | index(\"$b3\") != null" true "$P: the intact GPU is still listed"
assert_jq "[.gpus[] | select(.pci_address == \"$b3\") | .model][0]" L40S "$P: ... and still named"
gv gpu set-mode "$b3" none
assert_rc 0 "$P: the intact GPU can still be managed"

done_testing
