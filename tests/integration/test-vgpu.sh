#!/bin/bash
# SPDX-License-Identifier: MIT
# `gpuvirt vgpu types|create|destroy`: vendor-VFIO (dgx-h100, l40s-4) and mdev on SR-IOV VFs
# (dgx-a100); time-sliced types filled to the catalog's limit, the same-size rule, MIG-backed
# vGPU on GPU instances, destroy by UUID and by VF, and the refusals. Limits, names and
# framebuffers come from the catalog.
. "$(dirname "$0")/lib.sh"

# check_types PREFIX GPU MODEL: vgpu types --json lists the catalog's types with their ids,
# framebuffer, limit and backing profile.
check_types() {
        local p=$1 gpu=$2 model=$3 want
        gv vgpu types "$gpu" --json
        assert_rc 0 "$p: vgpu types exits 0"
        want=$(catalog "$model" '[.vgpu.types[] | "\(.name)/\(.type_id)/\(.framebuffer_mib)/\(.max_instances)/\(.gi_profile // "-")"] | sort | join(" ")')
        assert_jq '[.[] | "\(.name)/\(.type_id)/\(.framebuffer_mib)/\(.max_instances)/\(.gi_profile // "-")"] | sort | join(" ")' \
                "$want" "$p: vgpu types lists the catalog's types (name, id, framebuffer, max, MIG profile)"
}

# creatable GPU TYPE: the creatable count `vgpu types --json` gives for TYPE.
creatable() {
        gv vgpu types "$1" --json
        "$JQ" -r ".[] | select(.name == \"$2\") | .creatable" <<<"$OUT"
}

# fill PREFIX GPU TYPE MAX: create MAX vGPUs of TYPE (each must succeed), then one more (must be
# refused with exit 4 and a reason). Leaves the created ids in FILLED.
fill() {
        local p=$1 gpu=$2 type=$3 max=$4 k bad=
        FILLED=()
        for ((k = 0; k < max; k++)); do
                gv vgpu create "$gpu" "$type" --json
                if [ "$RC" -ne 0 ]; then
                        bad="create #$((k + 1)) failed with $RC: $ERR"
                        break
                fi
                FILLED+=("$("$JQ" -r .id <<<"$OUT")")
        done
        if [ -z "$bad" ]; then _ok "$p: $max x $type created (the catalog's max_instances)"
        else _not_ok "$p: $max x $type created (the catalog's max_instances)" "$bad"; fi
        gv vgpu create "$gpu" "$type"
        assert_fails_with 4 "$p: vGPU $((max + 1)) of $type is refused: the GPU is full (exit 4)"
        assert_err_contains_all "$p: the refusal names the type and says why" "$type" \
                "all $max instances"
        assert_eq "$(creatable "$gpu" "$type")" 0 "$p: vgpu types shows 0 more $type creatable"
}

# ================================================================== dgx-h100: vendor-VFIO
new_host dgx-h100
P=dgx-h100
M=H100-SXM5-80GB
check_types "$P" 0 $M
vfs=$(catalog $M .sriov_total_vfs)
bad=
while IFS=$'\t' read -r name max gi; do
        want=$max; [ "$want" -gt "$vfs" ] && want=$vfs
        [ "$gi" != "-" ] && want=0   # MIG-backed: needs mode mig and a GPU instance
        [ "$(creatable 0 "$name")" = "$want" ] || bad="$bad $name: $(creatable 0 "$name") (want $want);"
done < <(catalog $M '.vgpu.types[] | [.name, .max_instances, (.gi_profile // "-")] | @tsv')
assert_eq "$bad" "" "$P: creatable counts on an empty GPU in mode vgpu: min(max, VFs) time-sliced, 0 MIG-backed"

t20=H100XM-20C
max20=$(catalog $M ".vgpu.types[] | select(.name == \"$t20\") | .max_instances")
id20=$(catalog $M ".vgpu.types[] | select(.name == \"$t20\") | .type_id")
fill "$P" 0 $t20 "$max20"
assert_eq "$(sim_json "[.vgpus[] | select(.gpu == 0 and .type_id == $id20)] | length")" "$max20" \
        "$P: the simulator holds $max20 vGPUs of type $id20 on GPU 0"
bad=
for vf in "${FILLED[@]}"; do
        [ "$(<"$(dev_dir "$vf")/nvidia/current_vgpu_type")" = "$id20" ] || bad="$bad $vf"
done
assert_eq "$bad" "" "$P: each created id is a VF whose nvidia/current_vgpu_type holds the type id"
assert_eq "$(inspect_json '[.gpus[0].vgpu.instances[] | "\(.type)/\(.framebuffer_mib)"] | unique | join(" ")')" \
        "$t20/$(catalog $M ".vgpu.types[] | select(.name == \"$t20\") | .framebuffer_mib")" \
        "$P: inspect lists the vGPUs with the type's framebuffer"

gv gpu set-mode 0 none
assert_fails_with 4 "$P: leaving mode vgpu is refused while vGPUs exist (exit 4)"
u0=$(inspect_json ".gpus[0].vgpu.instances[] | select(.parent == \"${FILLED[0]}\") | .uuid")
assert_err_contains "vGPU $t20 $u0" "$P: ... naming a vGPU"

# destroy by VF, then by UUID
gv vgpu destroy "${FILLED[0]}"
assert_rc 0 "$P: vgpu destroy by VF address exits 0"
assert_eq "$(<"$(dev_dir "${FILLED[0]}")/nvidia/current_vgpu_type")" 0 "$P: the VF's current_vgpu_type is 0 again"
uuid=$(inspect_json ".gpus[0].vgpu.instances[] | select(.parent == \"${FILLED[1]}\") | .uuid")
gv vgpu destroy "$uuid"
assert_rc 0 "$P: vgpu destroy by UUID exits 0"
assert_eq "$(<"$(dev_dir "${FILLED[1]}")/nvidia/current_vgpu_type")" 0 "$P: destroy by UUID cleared the right VF"
assert_eq "$(sim_json '[.vgpus[] | select(.gpu == 0)] | length')" $((max20 - 2)) "$P: two vGPUs fewer in the simulator"
assert_eq "$(creatable 0 $t20)" 2 "$P: two $t20 creatable again"

u2=$(inspect_json ".gpus[0].vgpu.instances[] | select(.parent == \"${FILLED[2]}\") | .uuid")
gv vgpu destroy 7a6c0c1e-0000-4000-8000-000000000000
assert_fails_with 3 "$P: destroying an unknown vGPU: exit 3"
assert_err_contains_all "$P: ... the message lists the vGPUs there are" "'7a6c0c1e-0000-4000-8000-000000000000'" \
        "$u2"

# the same-size rule (equal-size mode) on GPU 1
gv vgpu create 1 $t20
gv vgpu create 1 H100XM-10C
assert_fails_with 4 "$P: a second, different-size type is refused (exit 4)"
assert_err_contains_all "$P: ... naming the type already there and the rule" "H100XM-10C" "$t20" "equal-size"
assert_eq "$(sim_json '[.vgpus[] | select(.gpu == 1)] | length')" 1 "$P: the refusal created nothing"
gv vgpu create 1 "NVIDIA $t20"
assert_rc 0 "$P: a type named with the NVML prefix ('NVIDIA $t20') is the same type"

gv vgpu create 1 H100XM-99Q
assert_fails_with 2 "$P: unknown vGPU type: exit 2"
# shellcheck disable=SC2046
assert_err_contains_all "$P: ... the message lists every valid type" "'H100XM-99Q'" \
        $(catalog $M '.vgpu.types[].name')
gv vgpu create 1 H100XM-3-40C
assert_fails_with 4 "$P: a MIG-backed type in mode vgpu: exit 4"
assert_err_contains "gpuvirt gpu set-mode $(sim_json '.gpus[1].bdf') mig" "$P: ... with the hint to switch to mode mig"

# MIG-backed vGPU on GPU instances (GPU 2)
b2=$(sim_json '.gpus[2].bdf')
gv gpu set-mode 2 mig
gv mig apply 2 3g.40gb,3g.40gb
gv vgpu create 2 $t20
assert_fails_with 4 "$P: a time-sliced type in mode mig: exit 4"
assert_eq "$(creatable 2 H100XM-3-40C)" 2 "$P: one H100XM-3-40C creatable per free 3g.40gb instance"
assert_eq "$(creatable 2 H100XM-1-10C)" 0 "$P: no H100XM-1-10C creatable without a 1g.10gb instance"
gv vgpu create 2 H100XM-3-40C --json
assert_rc 0 "$P: MIG-backed vGPU H100XM-3-40C created"
m1=$("$JQ" -r .id <<<"$OUT")
gv vgpu create 2 H100XM-3-40C --json
m2=$("$JQ" -r .id <<<"$OUT")
gv vgpu create 2 H100XM-3-40C
assert_fails_with 4 "$P: a third H100XM-3-40C is refused: no free 3g.40gb instance (exit 4)"
assert_err_contains "needs a free GPU instance of profile 3g.40gb" "$P: ... and the message says so"
assert_eq "$(inspect_json '[.gpus[2].mig.gpu_instances[] | .vgpu != null] | unique | join(" ")')" true \
        "$P: inspect shows each GPU instance backing a vGPU"
assert_eq "$(inspect_json '[.gpus[2].vgpu.instances[].gpu_instance] | sort | map(tostring) | join(" ")')" \
        "$(inspect_json '[.gpus[2].mig.gpu_instances[].id] | sort | map(tostring) | join(" ")')" \
        "$P: each vGPU names the GPU instance it runs on"
assert_eq "$(sim_json '[.vgpus[] | select(.gpu == 2) | .type] | join(" ")')" "H100XM-3-40C H100XM-3-40C" \
        "$P: the simulator holds the two MIG-backed vGPUs"
gv mig apply 2 7g.80gb
assert_fails_with 4 "$P: a layout removing a GPU instance that backs a vGPU is refused (exit 4)"
assert_err_contains "destroy the vGPU first" "$P: ... naming what to do"
gv mig destroy 2 1
assert_fails_with 4 "$P: mig destroy of a GPU instance that backs a vGPU is refused (exit 4)"
gv vgpu destroy "$m1"
assert_rc 0 "$P: MIG-backed vGPU destroyed by its VF"
gv vgpu destroy "$m2"
gv mig apply 2 7g.80gb
assert_rc 0 "$P: with the vGPUs gone the layout can change"
gv vgpu create 2 H100XM-7-80C
assert_rc 0 "$P: H100XM-7-80C on the 7g.80gb instance"
assert_eq "$(creatable 2 H100XM-7-80C)" 0 "$P: ... and no second one is creatable"

# ================================================================== l40s-4: vendor-VFIO, no MIG
new_host l40s-4
P=l40s-4
M=L40S
check_types "$P" 1 $M
t=L40S-24C
fill "$P" 1 $t "$(catalog $M ".vgpu.types[] | select(.name == \"$t\") | .max_instances")"
gv vgpu destroy "${FILLED[0]}"
gv vgpu create 1 L40S-12C
assert_fails_with 4 "$P: L40S-12C next to L40S-24C is refused (equal-size mode)"
assert_err_contains "already runs $t vGPUs" "$P: ... naming the type already there"

# ================================================================== dgx-a100: mdev on VFs
new_host dgx-a100
P=dgx-a100
M=A100-SXM4-80GB
check_types "$P" 0 $M
t=A100DX-40C
fill "$P" 0 $t "$(catalog $M ".vgpu.types[] | select(.name == \"$t\") | .max_instances")"
bad=
for u in "${FILLED[@]}"; do
        [ -e "$ROOT/sys/bus/mdev/devices/$u" ] || bad="$bad $u"
done
assert_eq "$bad" "" "$P: each created id is an mdev device in sysfs"
parent=$(sim_json ".vgpus[] | select(.uuid == \"${FILLED[0]}\") | .parent")
pf=$(readlink "$(dev_dir "$parent")/physfn")
assert_eq "${pf##*/}" "$(sim_json '.gpus[0].bdf')" "$P: the mdev's parent is a VF of GPU 0 (its physfn)"
gv vgpu destroy "${FILLED[0]}"
assert_rc 0 "$P: vgpu destroy by mdev UUID exits 0"
assert_eq "$([ -e "$ROOT/sys/bus/mdev/devices/${FILLED[0]}" ] && echo present || echo gone)" gone \
        "$P: the mdev device is gone from sysfs"
assert_eq "$(sim_json "[.vgpus[] | select(.uuid == \"${FILLED[0]}\")] | length")" 0 "$P: ... and from the simulator"
gv vgpu create 0 A100DX-20C
assert_fails_with 4 "$P: a different size next to $t is refused (equal-size mode)"

# MIG-backed mdev types on GPU 1: set-mode mig enables MIG (the driver's reset succeeds on an
# idle Ampere GPU) and keeps the VFs on, which MIG-backed vGPU needs on this host.
b1=$(sim_json '.gpus[1].bdf')
gv gpu set-mode 1 mig
assert_rc 0 "$P: GPU 1 to mode mig"
assert_eq "$(numvfs_of "$b1")" "$(catalog $M .sriov_total_vfs)" "$P: ... with its VFs on for MIG-backed vGPU"
gv mig apply 1 3g.40gb,2g.20gb
assert_rc 0 "$P: MIG layout 3g.40gb,2g.20gb applied"
gv vgpu create 1 A100DX-3-40C --json
assert_rc 0 "$P: MIG-backed mdev vGPU A100DX-3-40C created"
mu=$("$JQ" -r .id <<<"$OUT")
assert_eq "$([ -e "$ROOT/sys/bus/mdev/devices/$mu" ] && echo present)" present "$P: ... as an mdev device"
gv vgpu create 1 A100DX-2-20C
assert_rc 0 "$P: MIG-backed A100DX-2-20C on the 2g.20gb instance next to it (MIG-backed types mix)"
gv vgpu create 1 A100DX-3-40C
assert_fails_with 4 "$P: no second A100DX-3-40C without a free 3g.40gb instance"
assert_eq "$(inspect_json '[.gpus[1].mig.gpu_instances[] | "\(.profile):\(.vgpu != null)"] | sort | join(" ")')" \
        "2g.20gb:true 3g.40gb:true" "$P: inspect shows both GPU instances backing vGPUs"
gv vgpu destroy "$mu"
assert_rc 0 "$P: MIG-backed mdev vGPU destroyed by UUID"
gv vgpu create 1 A100DX-3-40C
assert_rc 0 "$P: the 3g.40gb instance is free again: a new A100DX-3-40C can be made"
# (the creatable count of MIG-backed types follows the free GPU instances: test-regressions.sh)

done_testing
