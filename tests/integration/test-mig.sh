#!/bin/bash
# SPDX-License-Identifier: MIT
# `gpuvirt mig apply|list|destroy|profiles` on the Hopper (dgx-h100) and Ampere (mixed: A30)
# profiles, and MIG refused on L40S. Every placement is checked against the catalog's allowed
# placements and against the simulator's record of the GPU instances.
. "$(dirname "$0")/lib.sh"

# gis_sim GPU: the simulator's GPU instances as "start-size:profile_id ..." sorted.
gis_sim() {
        sim_json "[.gpus[$1].gpu_instances[] | \"\(.start)+\(.size):\(.profile_id)\"] | sort | join(\" \")"
}
# gis_inspect GPU: the same from `host inspect --json`.
gis_inspect() {
        inspect_json "[.gpus[$1].mig.gpu_instances[] | \"\(.start)+\(.size):\(.profile_id)\"] | sort | join(\" \")"
}

# check_layout PREFIX GPU MODEL: every GI sits at a placement the catalog allows for its profile,
# no two overlap, and inspect and the simulator agree.
check_layout() {
        local p=$1 gpu=$2 model=$3 bad= used=() line start size pid name allowed
        while IFS=$'\t' read -r start size pid name; do
                allowed=$(catalog "$model" ".mig.gi_profiles[] | select(.id == $pid) | .placements | map(tostring) | join(\" \")")
                grep -qw -- "$start" <<<"$allowed" ||
                        bad="$bad $name at $start is not one of the catalog's placements ($allowed);"
                local msz
                msz=$(catalog "$model" ".mig.gi_profiles[] | select(.id == $pid) | .memory_slices")
                [ "$size" = "$msz" ] || bad="$bad $name spans $size slices, the catalog says $msz;"
                for ((s = start; s < start + size; s++)); do
                        [ -n "${used[$s]:-}" ] && bad="$bad slice $s used twice;"
                        used[$s]=$name
                done
        done < <(inspect_json ".gpus[$gpu].mig.gpu_instances[] | [.start, .size, .profile_id, .profile] | @tsv")
        if [ -z "$bad" ]; then _ok "$p: placements are the catalog's and do not overlap"
        else _not_ok "$p: placements are the catalog's and do not overlap" "$bad"; fi
        assert_eq "$(gis_inspect "$gpu")" "$(gis_sim "$gpu")" "$p: inspect and the simulator hold the same GPU instances"
}

# ================================================================== dgx-h100
new_host dgx-h100
P=dgx-h100
M=H100-SXM5-80GB
b0=$(sim_json '.gpus[0].bdf')

gv mig apply 0 3g.40gb
assert_fails_with 4 "$P: mig apply on a GPU not in mode mig: exit 4"
assert_err_contains_all "$P: ... with the hint to switch the mode" "not 'mig'" "gpuvirt gpu set-mode $b0 mig"
assert_eq "$(sim_json '.gpus[0].mig_current')" 0 "$P: ... and MIG stays off"

gv gpu set-mode 0 mig

# profiles: the catalog's, with their ids and placements
gv mig profiles 0 --json
assert_rc 0 "$P: mig profiles exits 0"
want=$(catalog $M '[.mig.gi_profiles[] | "\(.name)/\(.id)/\(.placements | map(tostring) | join(","))"] | sort | join(" ")')
assert_jq '[.[] | "\(.name)/\(.id)/\([.placements[].start] | map(tostring) | join(","))"] | sort | join(" ")' \
        "$want" "$P: mig profiles lists the catalog's profiles, ids and placements"
gv mig profiles 0
assert_out_contains "PLACEMENTS" "$P: mig profiles prints a table"

# unknown profile: exit 2, lists the valid ones
gv mig apply 0 3g.40gb,5g.50gb
assert_fails_with 2 "$P: unknown MIG profile: exit 2"
# shellcheck disable=SC2046
assert_err_contains_all "$P: the message names the bad profile and lists every valid one" "'5g.50gb'" \
        $(catalog $M '.mig.gi_profiles[].name')
assert_eq "$(gis_sim 0)" "" "$P: nothing created for a layout with an unknown profile"

# dry run: the plan, nothing changed
gv mig apply 0 3g.40gb,2g.20gb,1g.10gb,1g.10gb --dry-run
assert_rc 0 "$P: mig apply --dry-run exits 0"
dry_layout=$(sed -n 's/.*would apply //p' <<<"$OUT")
assert_eq "$dry_layout" "0:1g.10gb 1:1g.10gb 2-3:2g.20gb 4-7:3g.40gb" \
        "$P: dry run prints the planner's layout (the docs/cli.md example)"
assert_eq "$(gis_sim 0)" "" "$P: dry run created nothing in the simulator"

# the layout itself (one 1g.10gb short of the dry run's)
gv mig apply 0 3g.40gb,2g.20gb,1g.10gb --dry-run
dry3=$(sed -n 's/.*would apply //p' <<<"$OUT")
gv mig apply 0 3g.40gb,2g.20gb,1g.10gb
assert_rc 0 "$P: mig apply exits 0"
assert_out_contains "applied $dry3" "$P: the applied layout is the dry run's"
assert_eq "$(inspect_json '.gpus[0].mig.gpu_instances | length')" 3 "$P: 3 GPU instances exist"
check_layout "$P" 0 $M
assert_eq "$(inspect_json '[.gpus[0].mig.gpu_instances[] | "\(.profile)@\(.start)"] | sort | join(" ")')" \
        "1g.10gb@0 2g.20gb@2 3g.40gb@4" "$P: GPU instances sit where the plan said"
before_ids=$(inspect_json '[.gpus[0].mig.gpu_instances[] | "\(.id):\(.profile)@\(.start)"] | sort | join(" ")')

gv mig list 0
assert_rc 0 "$P: mig list exits 0"
assert_out_contains "3g.40gb  4-7" "$P: mig list shows the 3g.40gb at slices 4-7"

# re-apply: existing instances kept (same ids), the missing one added
gv mig apply 0 3g.40gb,2g.20gb,1g.10gb,1g.10gb
assert_rc 0 "$P: re-apply with one more instance exits 0"
after_ids=$(inspect_json '[.gpus[0].mig.gpu_instances[] | "\(.id):\(.profile)@\(.start)"] | sort | join(" ")')
missing=
for k in $before_ids; do grep -qw -- "$k" <<<"$after_ids" || missing="$missing $k"; done
assert_eq "$missing" "" "$P: re-apply kept every existing instance with its id and placement"
assert_eq "$(inspect_json '.gpus[0].mig.gpu_instances | length')" 4 "$P: re-apply added exactly one instance"
check_layout "$P (re-apply)" 0 $M

# the same layout again: no change at all
snap=$(gis_sim 0)
gv mig apply 0 3g.40gb,2g.20gb,1g.10gb,1g.10gb
assert_rc 0 "$P: applying the current layout exits 0"
assert_eq "$(gis_sim 0)" "$snap" "$P: applying the current layout changes nothing"

# impossible layouts: exit 4, the conflict named, nothing changed
gv mig apply 0 3g.40gb,3g.40gb,2g.20gb
assert_fails_with 4 "$P: impossible layout (too many compute slices): exit 4"
assert_err_contains_all "$P: the message says compute slices run out and that nothing changed" \
        "nothing changed" "compute slices"
assert_eq "$(gis_sim 0)" "$snap" "$P: the impossible layout changed nothing"
gv mig apply 0 3g.40gb,3g.40gb,1g.10gb
assert_fails_with 4 "$P: impossible layout (memory slices): exit 4"
assert_err_contains_all "$P: the message names the blocking instances and that nothing changed" \
        "nothing changed" "cannot place 3g.40gb" "are blocked by" "(existing)"
assert_eq "$(gis_sim 0)" "$snap" "$P: the impossible layout changed nothing"
gv mig apply 0 4g.40gb,4g.40gb
assert_fails_with 4 "$P: more instances of a profile than it allows: exit 4"
assert_err_contains "allows 1 instance" "$P: the message gives the profile's limit"
gv mig apply 0 1g.10gb,1g.10gb,1g.10gb,1g.10gb,1g.10gb,1g.10gb,1g.10gb,1g.10gb
assert_fails_with 4 "$P: more instances than the GPU allows: exit 4"
assert_err_contains "at most $(catalog $M .mig.max_instances)" "$P: the message gives the GPU's limit (catalog max_instances)"
assert_eq "$(gis_sim 0)" "$snap" "$P: the refused layouts changed nothing"

# shrink: the instances the list no longer wants are destroyed
gv mig apply 0 3g.40gb,2g.20gb
assert_rc 0 "$P: shrinking the layout exits 0"
assert_eq "$(inspect_json '[.gpus[0].mig.gpu_instances[] | "\(.profile)@\(.start)"] | sort | join(" ")')" \
        "2g.20gb@2 3g.40gb@4" "$P: shrinking kept the wanted instances where they were"
check_layout "$P (shrink)" 0 $M

# destroy
gi=$(inspect_json '[.gpus[0].mig.gpu_instances[] | select(.profile == "2g.20gb")][0].id')
gv mig destroy 0 "$gi"
assert_rc 0 "$P: mig destroy exits 0"
assert_out_contains "GPU instance $gi destroyed" "$P: mig destroy says what it destroyed"
assert_eq "$(sim_json '[.gpus[0].gpu_instances[].profile_id] | map(tostring) | join(" ")')" \
        "$(catalog $M '.mig.gi_profiles[] | select(.name == "3g.40gb") | .id')" \
        "$P: only the 3g.40gb instance is left in the simulator"
gv mig destroy 0 "$gi"
assert_fails_with 3 "$P: destroying a GPU instance that does not exist: exit 3"
assert_err_contains "it has: " "$P: ... and the message lists the instances there are"
gv mig destroy 0 first
assert_fails_with 2 "$P: a GPU instance id that is not a number: exit 2"
gv mig apply 0 ,
assert_fails_with 2 "$P: an empty profile list: exit 2"

# a full GPU in one instance, replacing the rest
gv mig apply 0 7g.80gb
assert_rc 0 "$P: 7g.80gb replaces the layout"
check_layout "$P (7g.80gb)" 0 $M
assert_eq "$(inspect_json '[.gpus[0].mig.gpu_instances[] | "\(.profile)@\(.start)+\(.size)"] | join(" ")')" \
        "7g.80gb@0+$(catalog $M .mig.memory_slices)" "$P: 7g.80gb spans every memory slice"

# ================================================================== mixed: A30 (Ampere)
new_host mixed
P="mixed A30"
M=A30
a30=$(inspect_json '[.gpus[] | select(.model == "A30")][0].index')
a30_bdf=$(inspect_json ".gpus[$a30].pci_address")
gv gpu set-mode "$a30" mig
gpu_reset "$a30_bdf"   # Ampere: the MIG mode change takes a GPU reset (test-modes.sh)
gv mig apply "$a30" 2g.12gb,1g.6gb,1g.6gb
assert_rc 0 "$P: mig apply 2g.12gb,1g.6gb,1g.6gb exits 0"
check_layout "$P" "$a30" $M
gv mig apply "$a30" 4g.24gb
assert_rc 0 "$P: 4g.24gb replaces the layout"
gv mig apply "$a30" 4g.24gb,1g.6gb
assert_fails_with 4 "$P: 4g.24gb plus anything does not fit: exit 4"
assert_eq "$(inspect_json "[.gpus[$a30].mig.gpu_instances[].profile] | join(\" \")")" 4g.24gb \
        "$P: the refused layout left the 4g.24gb alone"
gv mig apply "$a30" 2g.24gb
assert_fails_with 2 "$P: a profile of another GPU model is unknown here: exit 2"
# shellcheck disable=SC2046
assert_err_contains_all "$P: ... and the message lists the A30's profiles" \
        $(catalog $M '.mig.gi_profiles[].name')

# ================================================================== l40s-4: no MIG
new_host l40s-4
P=l40s-4
gv mig profiles 0
assert_fails_with 5 "$P: mig profiles on a GPU without MIG: exit 5"
assert_err_contains "does not support MIG" "$P: ... saying the GPU does not support MIG"
gv gpu set-mode 0 mig
assert_fails_with 5 "$P: set-mode mig on L40S: exit 5"
gv mig apply 0 1g.10gb
assert_rc 5 "$P: mig apply on L40S is refused as unavailable (exit 5)"
assert_err_contains "does not support MIG" "$P: ... saying the GPU does not support MIG"

done_testing
