#!/bin/bash
# SPDX-License-Identifier: MIT
# Regression tests: product bugs the integration tests found (each comment says what was wrong
# and what is expected); they failed before the fix and must keep passing.
. "$(dirname "$0")/lib.sh"

NO_NVML=/nonexistent/libnvidia-ml.so.1

# ---------------------------------------------------------------- BUG 1: Ampere never reaches MIG
# On Ampere (A100, A30) `gpu set-mode GPU mig` leaves MIG enable pending and exits 1 ("failed")
# with "reset the GPU"; no gpuvirt command performs that reset, and `set-mode none` or
# `passthrough` first cancel the pending enable, so an operator cannot get an Ampere GPU into
# MIG mode with gpuvirt at all. Expected: on an idle GPU gpuvirt resets it itself (the simulator
# applies the pending mode when the PF is unbound from and bound to nvidia, as a reset does),
# ending in mode mig with exit 0; or, if a reset is impossible, a state refusal (exit 4) that
# names the command that resets it.
new_host dgx-a100
gv gpu set-mode 1 mig
assert_rc 0 "BUG 1: set-mode mig on an idle Ampere GPU completes (exit 0)"
assert_eq "$(inspect_json '.gpus[1].mode')" mig "BUG 1: ... and the GPU is in mode mig"

# ---------------------------------------------------------------- BUG 2: VFs stay off in mode mig
# After the reset that activates MIG (it takes the VFs down, as a PF unbind does), `set-mode mig`
# answers "already in mode mig" (gv_gpu_set_mode returns early when g->mode == mode) and never
# enables the SR-IOV VFs that MIG-backed vGPU needs on a host with the vGPU manager; `vgpu
# create` then refuses with "the GPU has no free capacity for it", which does not say that the
# VFs are off. Expected: set-mode mig (re)enables the VFs; the refusal names the missing VFs.
b1=$(sim_json '.gpus[1].bdf')
gpu_reset "$b1"
gv gpu set-mode 1 mig
assert_eq "$(numvfs_of "$b1")" "$(catalog A100-SXM4-80GB .sriov_total_vfs)" \
        "BUG 2: set-mode mig on a GPU already in MIG enables the VFs for MIG-backed vGPU"
sim_sh "echo 0 > \"\$GPUVIRT_SYSFS_ROOT/sys/bus/pci/devices/$b1/sriov_numvfs\""
gv mig apply 1 3g.40gb
gv vgpu create 1 A100DX-3-40C
assert_err_contains "VF" "BUG 2: with the VFs off, the vgpu create refusal says the VFs are off"

# ---------------------------------------------------------------- BUG 3: creatable ignores free GIs
# `vgpu types` reports the MIG-backed types' creatable count as min(free VFs or mdev parents,
# max_instances) without counting the free GPU instances of the type's profile: with ONE free
# 3g.40gb instance it says 2 H100XM-3-40C / A100DX-3-40C can be created; the second create then
# fails. Expected: creatable = free GPU instances of that profile (capped as now).
sim_sh "echo 32 > \"\$GPUVIRT_SYSFS_ROOT/sys/bus/pci/devices/$b1/sriov_numvfs\""
gv vgpu types 1 --json
assert_jq '.[] | select(.name == "A100DX-3-40C") | .creatable' 1 \
        "BUG 3 (mdev): one free 3g.40gb instance: 1 A100DX-3-40C creatable"
new_host dgx-h100
gv gpu set-mode 4 mig
gv mig apply 4 3g.40gb
gv vgpu types 4 --json
assert_jq '.[] | select(.name == "H100XM-3-40C") | .creatable' 1 \
        "BUG 3 (vendor-VFIO): one free 3g.40gb instance: 1 H100XM-3-40C creatable"

# ---------------------------------------------------------------- BUG 4: GPU lost reads as success
# With nvmlDeviceGetMigMode failing (GPU_IS_LOST), `gpu set-mode 1 mig` enables MIG in the
# simulator but exits 0 printing "mode vgpu -> vgpu"; inspect keeps calling the GPU "vgpu" while
# MIG is on; `mig list` says "MIG disabled, no GPU instances" with exit 0. Expected: the commands
# fail naming nvmlDeviceGetMigMode and GPU_IS_LOST (the MIG state cannot be read).
inject --gpu 1 --always nvmlDeviceGetMigMode NVML_ERROR_GPU_IS_LOST
gv gpu set-mode 1 mig
assert_fails "BUG 4: set-mode mig does not report success when the MIG mode cannot be read back"
assert_err_contains nvmlDeviceGetMigMode "BUG 4: ... and names the failing call"
gv mig list 1
assert_fails "BUG 4: mig list with GetMigMode failing does not claim 'MIG disabled, no GPU instances'"
inject_clear

# ---------------------------------------------------------------- BUG 5: NVML missing, MIG state guessed
# Without NVML the MIG state is unknown, yet `mig list` prints "MIG disabled, no GPU instances"
# with exit 0, inspect reports a GPU whose MIG is ON as mode "vgpu" (guessed from its VFs), and
# `mig apply` on it answers exit 4 "not in mode 'mig': run set-mode mig" instead of exit 5 "NVML
# is not available". Expected: MIG commands exit 5 with the NVML message; inspect does not
# present a guessed mode as fact.
gv gpu set-mode 5 mig
gv --nvml-library $NO_NVML mig list 5
assert_rc 5 "BUG 5: mig list without NVML exits 5"
assert_err_contains "NVML is not available" "BUG 5: ... saying NVML is not available"
gv --nvml-library $NO_NVML mig apply 5 1g.10gb
assert_rc 5 "BUG 5: mig apply without NVML on a GPU in MIG mode exits 5 (not 4 'not in mode mig')"
gv --nvml-library $NO_NVML --json host inspect
assert_jq '.gpus[5].mode != "vgpu"' true "BUG 5: without NVML inspect does not call a MIG GPU 'vgpu'"

# ---------------------------------------------------------------- BUG 6: MIG on L40S, wrong hint
# `mig apply` on an L40S exits 4 with "run 'gpuvirt gpu set-mode … mig' first" — advice that
# itself fails with exit 5 "does not support MIG". Expected: exit 5 and "does not support MIG"
# (as `mig profiles` says). `mig list` likewise says "MIG disabled" where "does not support MIG"
# is the truth.
new_host l40s-4
gv mig apply 0 1g.10gb
assert_rc 5 "BUG 6: mig apply on L40S exits 5 (unavailable)"
assert_err_contains "does not support MIG" "BUG 6: ... saying the GPU does not support MIG"
gv mig list 0
assert_out_lacks "MIG disabled" "BUG 6: mig list on L40S does not say 'MIG disabled' as if it could be enabled"

# ---------------------------------------------------------------- BUG 7: refused change undoes pass-through
# `gpu set-mode GPU vgpu` on a passed-through GeForce is refused (exit 5: it cannot host vGPUs),
# but from_passthrough() already ran: the GPU and its audio function are back on nvidia and
# snd_hda_intel. A refused command changed the state. Expected: check the target mode is
# possible before leaving pass-through; afterwards the GPU is still on vfio-pci.
new_host mixed
gf=$(inspect_json '[.gpus[] | select(.model == "GeForce-RTX-3090")][0].index')
gf_bdf=$(inspect_json ".gpus[$gf].pci_address")
gv gpu set-mode "$gf" passthrough
gv gpu set-mode "$gf" vgpu
assert_rc 5 "BUG 7: (vgpu on the GeForce is refused, exit 5)"
assert_eq "$(driver_of "$gf_bdf")" vfio-pci "BUG 7: the refused change left the GeForce passed through"

done_testing
