#!/bin/bash
# SPDX-License-Identifier: MIT
# `gpuvirt gpu set-mode` on every profile: each transition that makes sense for the GPU type and
# back, with the effect checked in `host inspect --json` AND in the simulated host (driver links,
# sriov_numvfs, the simulator's MIG state); pass-through of a GPU with its audio function; the
# refusals (foreign device in the IOMMU group, MIG on a GPU without it, GPU in use); bad input.
. "$(dirname "$0")/lib.sh"

# mode_is GPU MODE NAME: host inspect --json reports MODE for GPU (an index).
mode_is() {
        local got
        got=$(inspect_json ".gpus[$1].mode")
        assert_eq "$got" "$2" "$3"
}

# set_mode_ok GPU MODE PREFIX: set-mode succeeds and inspect agrees.
set_mode_ok() {
        gv gpu set-mode "$1" "$2"
        assert_rc 0 "$3: set-mode $1 $2 exits 0"
        mode_is "$1" "$2" "$3: host inspect reports GPU $1 in mode $2"
}

# ================================================================== dgx-h100 (Hopper, vendor-VFIO)
new_host dgx-h100
P=dgx-h100
b0=$(sim_json '.gpus[0].bdf')
total=$(catalog H100-SXM5-80GB .sriov_total_vfs)

set_mode_ok 0 none $P
assert_eq "$(numvfs_of "$b0")" 0 "$P: none: sriov_numvfs is 0 in sysfs"
assert_eq "$(driver_of "$b0")" nvidia "$P: none: the GPU stays on the nvidia driver"

gv gpu set-mode 0 none
assert_rc 0 "$P: set-mode to the current mode exits 0"
assert_out_contains "already in mode none" "$P: set-mode to the current mode says so"

set_mode_ok 0 mig $P
assert_eq "$(sim_json '.gpus[0] | "\(.mig_current) \(.mig_pending)"')" "1 1" \
        "$P: mig: MIG is on at once in the simulator (Hopper needs no reset)"
assert_eq "$(numvfs_of "$b0")" "$total" "$P: mig: VFs on for MIG-backed vGPU (vGPU manager present)"
assert_eq "$(inspect_json '.gpus[0].mig | "\(.enabled) \(.pending_enabled)"')" "true true" \
        "$P: mig: inspect reports MIG enabled"

set_mode_ok 0 vgpu $P
assert_eq "$(sim_json '.gpus[0].mig_current')" 0 "$P: vgpu: MIG is off again in the simulator"
assert_eq "$(numvfs_of "$b0")" "$total" "$P: vgpu: all $total VFs enabled"

set_mode_ok 0 passthrough $P
assert_eq "$(driver_of "$b0")" vfio-pci "$P: passthrough: the GPU is bound to vfio-pci in sysfs"
assert_eq "$(numvfs_of "$b0")" 0 "$P: passthrough: VFs are off"
assert_eq "$(inspect_json '.gpus[0] | "\(.uuid) \(.utilization_gpu_pct) \(.metrics_unavailable_reason != null)"')" \
        "null null true" "$P: passthrough: no NVML values, and the JSON says why"
assert_eq "$(inspect_json '.gpus[1].mode')" vgpu "$P: passthrough of GPU 0 leaves GPU 1 alone"

set_mode_ok 0 mig "$P (from passthrough)"
assert_eq "$(driver_of "$b0")" nvidia "$P: passthrough -> mig: back on the nvidia driver"
assert_eq "$(sim_json '.gpus[0].mig_current')" 1 "$P: passthrough -> mig: MIG on in the simulator"

set_mode_ok 0 none "$P (from mig)"
assert_eq "$(sim_json '.gpus[0].mig_current') $(numvfs_of "$b0")" "0 0" \
        "$P: mig -> none: MIG off and VFs off in the simulator"

# In use: a GPU instance blocks leaving MIG, and pass-through.
gv gpu set-mode 1 mig
gv mig apply 1 3g.40gb
gv gpu set-mode 1 none
assert_fails_with 4 "$P: set-mode none refused while a GPU instance exists (exit 4)"
assert_err_contains "GPU instance 1 (3g.40gb" "$P: the refusal names the GPU instance"
gv gpu set-mode 1 passthrough
assert_fails_with 4 "$P: pass-through refused while a GPU instance exists (exit 4)"
assert_eq "$(sim_json '.gpus[1] | "\(.mig_current) \(.gpu_instances | length)"') $(driver_of "$(sim_json '.gpus[1].bdf')")" \
        "1 1 nvidia" "$P: the refused changes left MIG, the instance and the driver alone"

# ================================================================== dgx-a100 (Ampere, mdev)
new_host dgx-a100
P=dgx-a100
b1=$(sim_json '.gpus[1].bdf')
set_mode_ok 1 none $P
assert_eq "$(numvfs_of "$b1")" 0 "$P: none: VFs off"
set_mode_ok 1 vgpu $P
assert_eq "$(numvfs_of "$b1")" "$(catalog A100-SXM4-80GB .sriov_total_vfs)" "$P: vgpu: VFs on"
set_mode_ok 1 passthrough $P
assert_eq "$(driver_of "$b1")" vfio-pci "$P: passthrough: bound to vfio-pci"
set_mode_ok 1 vgpu "$P (from passthrough)"
assert_eq "$(driver_of "$b1") $(numvfs_of "$b1")" "nvidia 32" "$P: passthrough -> vgpu: nvidia driver, VFs on"

# Ampere: the driver tries a GPU reset when the MIG mode changes (mig.md §8); when that reset
# cannot be done (a client holds the GPU; injected here) the change stays pending until the next
# reset: the command must say so and the pending change must be visible in inspect.
inject --gpu 1 --once nvmlDeviceSetMigMode:activation NVML_ERROR_RESET_REQUIRED
gv gpu set-mode 1 mig
assert_rc 1 "$P: set-mode mig with a failed GPU reset fails (exit 1)"
assert_err_contains_all "$P: set-mode mig on Ampere says the change is pending a GPU reset" \
        "pending" "reset"
assert_eq "$(sim_json '.gpus[1] | "\(.mig_current) \(.mig_pending)"')" "0 1" \
        "$P: the simulator holds MIG enable pending"
assert_eq "$(inspect_json '.gpus[1].mig | "\(.enabled) \(.pending_enabled)"')" "false true" \
        "$P: inspect reports MIG enable pending"
gv host inspect
assert_out_contains "GPU 1: MIG enable is pending (needs a GPU reset)" "$P: the table notes the pending MIG enable"
gpu_reset "$b1"
mode_is 1 mig "$P: after a GPU reset the GPU is in mode mig"

# ================================================================== l40s-4 (Ada, no MIG)
new_host l40s-4
P=l40s-4
b2=$(sim_json '.gpus[2].bdf')
set_mode_ok 2 none $P
set_mode_ok 2 vgpu $P
assert_eq "$(numvfs_of "$b2")" "$(catalog L40S .sriov_total_vfs)" "$P: vgpu: VFs on"
gv gpu set-mode 2 mig
assert_fails_with 5 "$P: set-mode mig refused on a GPU without MIG (exit 5)"
assert_err_contains_all "$P: the refusal names the GPU and says it has no MIG" "$b2" "L40S" \
        "does not support MIG"
mode_is 2 vgpu "$P: the refused MIG change left the GPU in mode vgpu"
assert_eq "$(numvfs_of "$b2")" "$(catalog L40S .sriov_total_vfs)" "$P: ... with its VFs"
set_mode_ok 2 passthrough $P
assert_eq "$(driver_of "$b2")" vfio-pci "$P: passthrough: bound to vfio-pci"
set_mode_ok 2 none "$P (from passthrough)"
assert_eq "$(driver_of "$b2")" nvidia "$P: passthrough -> none: back on nvidia"

# ================================================================== mixed
new_host mixed
P=mixed
gv --json host inspect
gf=$("$JQ" -r '[.gpus[] | select(.model == "GeForce-RTX-3090")][0].index' <<<"$OUT")
gf_bdf=$("$JQ" -r ".gpus[$gf].pci_address" <<<"$OUT")
audio=$("$JQ" -r ".gpus[$gf].passthrough.iommu_group_members[0].pci_address" <<<"$OUT")
audio_drv=$(driver_of "$audio")
bl=$("$JQ" -r '[.gpus[] | select(.passthrough.possible == false)][0].index' <<<"$OUT")
bl_bdf=$("$JQ" -r ".gpus[$bl].pci_address" <<<"$OUT")
nic=$("$JQ" -r ".gpus[$bl].passthrough.iommu_group_members[0].pci_address" <<<"$OUT")
nic_drv=$(driver_of "$nic")
bl_mode=$("$JQ" -r ".gpus[$bl].mode" <<<"$OUT")

# GeForce pass-through takes its audio function along, and gives it back.
set_mode_ok "$gf" passthrough "$P GeForce"
assert_eq "$(driver_of "$gf_bdf") $(driver_of "$audio")" "vfio-pci vfio-pci" \
        "$P: pass-through binds the GeForce AND its audio function to vfio-pci"
set_mode_ok "$gf" none "$P GeForce (from passthrough)"
assert_eq "$(driver_of "$gf_bdf") $(driver_of "$audio")" "nvidia $audio_drv" \
        "$P: back from pass-through: GPU on nvidia, audio function on $audio_drv again"
assert_eq "$(<"$(dev_dir "$gf_bdf")/driver_override")$(<"$(dev_dir "$audio")/driver_override")" \
        "(null)(null)" "$P: back from pass-through: no driver_override left behind"
# GPU selected by PCI address, short form.
gv gpu set-mode "${gf_bdf#0000:}" passthrough
assert_rc 0 "$P: a GPU can be named by its short PCI address"
assert_eq "$(driver_of "$audio")" vfio-pci "$P: ... and its audio function moved too"
gv gpu set-mode "$gf_bdf" none

gv gpu set-mode "$gf" mig
assert_fails_with 5 "$P: MIG refused on the GeForce (exit 5)"
gv gpu set-mode "$gf" vgpu
assert_fails_with 5 "$P: vGPU refused on the GeForce (exit 5)"
assert_err_contains "does not support vGPU" "$P: the vGPU refusal says why"

# The foreign device in the IOMMU group blocks pass-through; nothing moves.
gv gpu set-mode "$bl" passthrough
assert_fails_with 4 "$P: pass-through refused when the IOMMU group holds a foreign device (exit 4)"
assert_err_contains_all "$P: the refusal names the foreign device, its driver and the GPU" \
        "$nic" "driver $nic_drv" "$bl_bdf" "IOMMU group"
assert_eq "$(driver_of "$bl_bdf") $(driver_of "$nic")" "nvidia $nic_drv" \
        "$P: after the refusal the GPU and the foreign device keep their drivers"
mode_is "$bl" "$bl_mode" "$P: after the refusal the GPU keeps its mode"

# A100 PCIe pass-through and back (GPU selected by UUID).
a100=$(inspect_json '[.gpus[] | select(.model == "A100-PCIe-40GB")][0].index')
a100_uuid=$(inspect_json ".gpus[$a100].uuid")
a100_bdf=$(inspect_json ".gpus[$a100].pci_address")
gv gpu set-mode "$a100_uuid" passthrough
assert_rc 0 "$P: a GPU can be named by its UUID"
assert_eq "$(driver_of "$a100_bdf") $(numvfs_of "$a100_bdf")" "vfio-pci 0" "$P: A100 passed through, VFs off"
set_mode_ok "$a100" vgpu "$P A100 (from passthrough)"

# A30 (Ampere): MIG pending when the driver's reset fails, then active after a reset.
a30=$(inspect_json '[.gpus[] | select(.model == "A30")][0].index')
a30_bdf=$(inspect_json ".gpus[$a30].pci_address")
inject --gpu "$a30" --once nvmlDeviceSetMigMode:activation NVML_ERROR_IN_USE
gv gpu set-mode "$a30" mig
assert_eq "$(inspect_json ".gpus[$a30].mig.pending_enabled")" true "$P: A30 MIG enable pending"
gpu_reset "$a30_bdf"
mode_is "$a30" mig "$P: A30 in mode mig after a reset"
inject --gpu "$a30" --once nvmlDeviceSetMigMode:activation NVML_ERROR_RESET_REQUIRED
gv gpu set-mode "$a30" none
assert_err_contains "pending disable" "$P: leaving MIG on Ampere is pending a reset too, and says so"
assert_eq "$(sim_json ".gpus[$a30] | \"\(.mig_current) \(.mig_pending)\"")" "1 0" \
        "$P: the simulator holds MIG disable pending"
gpu_reset "$a30_bdf"
mode_is "$a30" none "$P: A30 in mode none after a reset"

# ================================================================== bad input
gv gpu set-mode 42 none
assert_fails_with 3 "unknown GPU index: exit 3"
assert_err_contains_all "unknown GPU: the message lists the GPUs" "'42'" "0 (0000:17:00.0)" "$gf_bdf"
gv gpu set-mode GPU-00000000-0000-0000-0000-000000000000 none
assert_fails_with 3 "unknown GPU UUID: exit 3"
gv gpu set-mode 0 turbo
assert_fails_with 2 "unknown mode: exit 2"
assert_err_contains_all "unknown mode: the message lists the valid modes" "'turbo'" none \
        passthrough vgpu mig
gv gpu set-mode 0
assert_fails_with 2 "set-mode without a mode: exit 2 with the usage"
assert_err_contains "usage: gpuvirt gpu set-mode" "set-mode without a mode: the usage is shown"
gv gpu set-mode 0 none --frobnicate
assert_rc 2 "unknown option: exit 2"
gv gpu teleport 0
assert_fails_with 2 "unknown subcommand: exit 2"
assert_err_contains "set-mode" "unknown subcommand: the message lists the valid ones"
gv frobnicate
assert_fails_with 2 "unknown command group: exit 2"
assert_err_contains_all "unknown command group: the message lists the groups" host gpu mig vgpu

done_testing
