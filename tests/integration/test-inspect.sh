#!/bin/bash
# SPDX-License-Identifier: MIT
# `gpuvirt host inspect` (table and --json) on every simulated host profile, each value checked
# against the catalog (data/gpus/*.json) and the simulator's own view (gpuvirt-sim status, the
# sysfs tree), never against numbers written here.
. "$(dirname "$0")/lib.sh"

# The catalog facts per model, one TSV line each: name, pci id, subsystem id, NVML name, memory,
# MIG capable, MIG memory slices, SR-IOV VFs, number of vGPU types.
CATALOG_TSV=$(cat "$GPUVIRT_DATA_DIR"/gpus/*.json | "$JQ" -r '[.name,
        "\(.pci_vendor[2:]):\(.pci_device[2:])",
        "\(.pci_subsystem_vendor[2:]):\(.pci_subsystem_device[2:])",
        .nvml_name, .memory_mib, (.mig != null), (.mig.memory_slices // 0), .sriov_total_vfs,
        (.vgpu.types // [] | length)] | @tsv')

# What host inspect --json must say about every GPU, field by field (names as in the JSON).
FIELDS=(pci_address index model pci_id pci_subsystem_id product_name memory_total_mib uuid driver
        numa_node mig.capable mig.memory_slices mig.enabled vgpu.sriov_total_vfs
        vgpu.sriov_num_vfs mode vgpu.interface iommu_group)
FIELD_NAMES=("PCI addresses in PCI order" "indexes 0..N-1" "models named from the catalog"
        "PCI vendor:device ids match the catalog" "PCI subsystem ids match the catalog"
        "NVML product names match the catalog" "total memory matches the catalog"
        "UUIDs are the simulated GPUs' UUIDs" "drivers as bound in sysfs" "NUMA nodes as in sysfs"
        "MIG capability matches the catalog" "MIG memory slices match the catalog"
        "MIG is off on a fresh host" "SR-IOV total VFs match the catalog"
        "enabled VFs as in sysfs" "modes follow the VFs (vgpu) or their absence (none)"
        "vGPU interface as the host's driver offers it (none without vGPU types)"
        "IOMMU groups as in sysfs")

# expected_rows: one TSV line per GPU of the current host, in FIELDS order.
expected_rows() {
        local iface i=0 bdf model uuid cat_line pci sub nvname mem migcap slices vfs ntypes
        iface=$(sim_json .vgpu_interface)
        while IFS=$'\t' read -r bdf model uuid; do
                cat_line=$(grep -P "^\Q$model\E\t" <<<"$CATALOG_TSV")
                IFS=$'\t' read -r _ pci sub nvname mem migcap slices vfs ntypes <<<"$cat_line"
                local d nv numa grp drv mode vi
                d=$(dev_dir "$bdf")
                nv=0; [ -f "$d/sriov_numvfs" ] && nv=$(<"$d/sriov_numvfs")
                numa=$(<"$d/numa_node")
                grp=$(readlink "$d/iommu_group"); grp=${grp##*/}
                drv=$(driver_of "$bdf")
                mode=none; [ "$nv" -gt 0 ] && mode=vgpu
                vi=none; [ "$ntypes" -gt 0 ] && vi=$iface
                printf '%s\n' "$bdf"$'\t'"$i"$'\t'"$model"$'\t'"$pci"$'\t'"$sub"$'\t'"$nvname"$'\t'"$mem"$'\t'"$uuid"$'\t'"$drv"$'\t'"$numa"$'\t'"$migcap"$'\t'"$slices"$'\t'false$'\t'"$vfs"$'\t'"$nv"$'\t'"$mode"$'\t'"$vi"$'\t'"$grp"
                i=$((i + 1))
        done < <(sim_json '.gpus[] | [.bdf, .model, .uuid] | @tsv')
}

# check_fields PROFILE: compare host inspect --json ($INSPECT) with expected_rows, one TAP line
# per field over all GPUs.
check_fields() {
        local profile=$1 filter got want f i
        filter='.gpus[] | ['
        for f in "${FIELDS[@]}"; do filter="$filter.$f,"; done
        filter="${filter%,}] | map(tostring) | @tsv"
        mapfile -t got < <("$JQ" -r "$filter" <<<"$INSPECT")
        mapfile -t want < <(expected_rows)
        assert_eq "${#got[@]}" "${#want[@]}" "$profile: JSON lists every GPU the simulator has"
        for ((f = 0; f < ${#FIELDS[@]}; f++)); do
                local bad=
                for ((i = 0; i < ${#want[@]}; i++)); do
                        local g w
                        g=$(cut -f$((f + 1)) <<<"${got[$i]:-}")
                        w=$(cut -f$((f + 1)) <<<"${want[$i]}")
                        [ "$g" = "$w" ] || bad="$bad GPU $i: '${FIELDS[$f]}' is '$g', expected '$w';"
                done
                if [ -z "$bad" ]; then _ok "$profile: ${FIELD_NAMES[$f]}"
                else _not_ok "$profile: ${FIELD_NAMES[$f]}" "$bad"; fi
        done
}

for profile in dgx-h100 dgx-a100 l40s-4 mixed; do
        new_host "$profile"
        [ "$profile" = dgx-h100 ] && H100_ROOT=$ROOT
        n_sim=$(sim_json '.gpus | length')

        # ---- table
        gv host inspect
        assert_rc 0 "$profile: host inspect exits 0"
        assert_out_contains "$n_sim GPUs" "$profile: header counts the $n_sim GPUs"
        assert_out_contains "driver $(sim_json .driver_version)" "$profile: header names the driver version"
        bad=
        i=0
        while IFS=$'\t' read -r bdf model; do
                numa=$(<"$(dev_dir "$bdf")/numa_node")
                grep -Eq "^$i +$bdf +$model +(none|vgpu) .* $numa\$" <<<"$OUT" ||
                        bad="$bad row $i ($bdf $model NUMA $numa);"
                i=$((i + 1))
        done < <(sim_json '.gpus[] | [.bdf, .model] | @tsv')
        if [ -z "$bad" ]; then _ok "$profile: one table row per GPU with PCI address, model, NUMA"
        else _not_ok "$profile: one table row per GPU with PCI address, model, NUMA" "missing:$bad"; fi

        # ---- JSON
        gv --json host inspect
        assert_rc 0 "$profile: host inspect --json exits 0"
        assert_json "$profile: host inspect --json is JSON"
        INSPECT=$OUT
        assert_jq '.nvml_error' null "$profile: NVML is available"
        assert_jq '.driver_version' "$(sim_json .driver_version)" "$profile: driver version from NVML"
        assert_jq '.problems | length' 0 "$profile: no host problems on a clean tree"
        check_fields "$profile"
done

# ---- the mixed host's IOMMU groups (the last host above): audio function and foreign device,
# both found in the sysfs tree (the other members of the GPU's iommu_groups/N/devices).
group_others() { # BDF: the other functions in its IOMMU group
        local grp
        grp=$(readlink "$(dev_dir "$1")/iommu_group"); grp=${grp##*/}
        ls "$ROOT/sys/kernel/iommu_groups/$grp/devices" | grep -vx "$1"
}
gv --json host inspect
INSPECT=$OUT
geforce=$("$JQ" -r '[.gpus[] | select(.model == "GeForce-RTX-3090")][0].index' <<<"$INSPECT")
geforce_bdf=$("$JQ" -r ".gpus[$geforce].pci_address" <<<"$INSPECT")
audio=$(group_others "$geforce_bdf")
audio_drv=$(driver_of "$audio")
blocked=$("$JQ" -r '[.gpus[] | select(.passthrough.possible == false)][0].pci_address' <<<"$INSPECT")
nic=$(group_others "$blocked")
nic_drv=$(driver_of "$nic")
assert_eq "${audio%.*}" "${geforce_bdf%.*}" "mixed: the GeForce shares its group with a function of its own slot"
assert_eq "$(<"$(dev_dir "$audio")/class")" 0x040300 "mixed: that function is an HDMI audio function"
foreign=$("$JQ" -r '[.gpus[] | select(.passthrough.possible == false)] | length' <<<"$INSPECT")
assert_eq "$foreign" 1 "mixed: exactly one GPU cannot be passed through"
assert_jq "[.gpus[$geforce].passthrough.iommu_group_members[] | select(.same_device)] | .[0] | \"\(.pci_address) \(.class) \(.driver)\"" \
        "$audio 0x040300 $audio_drv" "mixed: the GeForce's audio function is listed as moving with it"
assert_jq "[.gpus[] | select(.passthrough.possible == false)][0].passthrough.iommu_group_members[0] | \"\(.pci_address) \(.driver) \(.same_device)\"" \
        "$nic $nic_drv false" "mixed: the foreign device in the blocked GPU's group is named with its driver"
gv host inspect
assert_out_contains "pass-through not possible: IOMMU group" "mixed: the table notes why pass-through is impossible"
assert_out_contains "$nic (Ethernet controller, driver $nic_drv)" "mixed: the note names the foreign device and its driver"
assert_out_contains "($blocked)" "mixed: the note names the GPU"
assert_out_contains "function $audio (driver $audio_drv) moves with it on pass-through" \
        "mixed: the table notes the audio function moves with the GeForce"

# ---- every --json output parses (success and failure), on a host with something carved out
ROOT=$H100_ROOT
gv gpu set-mode 0 mig --json; assert_json "json: gpu set-mode --json"
assert_jq .mode mig "json: gpu set-mode --json reports the new mode"
gv mig apply 0 3g.40gb --json; assert_json "json: mig apply --json"
assert_jq '.gpu_instances | length' 1 "json: mig apply --json lists the GPU instances"
gv mig apply 0 1g.10gb --dry-run --json; assert_json "json: mig apply --dry-run --json"
assert_jq .dry_run true "json: mig apply --dry-run --json says dry_run"
gv mig list 0 --json; assert_json "json: mig list --json"
gv mig profiles 0 --json; assert_json "json: mig profiles --json"
gv vgpu types 0 --json; assert_json "json: vgpu types --json"
gv vgpu create 0 H100XM-3-40C --json; assert_json "json: vgpu create --json"
vid=$("$JQ" -r .id <<<"$OUT")
gv vgpu destroy "$vid" --json; assert_json "json: vgpu destroy --json"
assert_jq .destroyed true "json: vgpu destroy --json says destroyed"
gv mig destroy 0 1 --json; assert_json "json: mig destroy --json"
gv --json gpu set-mode 99 none
assert_json "json: a failure with --json is a JSON problem on stdout"
assert_jq '"\(.exit_code) \(.errno)"' "3 ENODEV" "json: the problem carries the exit code and errno"
assert_rc 3 "json: the exit code matches the problem's"
gv --json mig apply 1 3g.40gb
assert_jq .exit_code 4 "json: a refusal with --json carries exit code 4"

done_testing
