#!/bin/bash
# SPDX-License-Identifier: MIT
# Utilization insights (GET /api/v1/insights, docs/insights.md) on a simulated cluster of two
# dgx-h100 hosts (real QEMU on TCG, metrics-interval 250 ms): a stopped pass-through VM is idle
# with evidence vm-stopped (never a GPU figure), with what converting its GPU would give and
# cost (MIG 7 x 1g.10gb with no licence; vGPU H100XM-10C x 8 seats of NVIDIA AI Enterprise at
# the pool's price); with the simulator's vGPU load pinned, an idle vGPU VM's seat is listed
# with evidence gpu-util and a busy one's is not; three MIG 2g.20gb VMs on one GPU, the one at
# slices 2-3 deleted, leave no room for a 3g.40gb and the plan names the VM to move (4-5 →
# 2-3, a live migration) to make room; bad window or threshold are 400 naming the parameter;
# the CLI prints the same.
. "$(dirname "$0")/../integration/lib.sh"
. "$(dirname "$0")/cluster-lib.sh"
cluster_init ins

printf 'metrics-interval = 250\n' >"$TEST_TMP/controller.conf"
cluster_start --hosts 2 --profiles dgx-h100,dgx-h100 --accel tcg \
        --same-group --controller-config "$TEST_TMP/controller.conf"

# insights_until NAME QUERY JQ: poll GET /api/v1/insights?QUERY until JQ holds (30 s).
insights_until() {
        local deadline=$((SECONDS + 30))
        while [ $SECONDS -lt $deadline ]; do
                capi GET "/api/v1/insights?$2"
                [ "$HTTP" = 200 ] && jq -e "$3" <<<"$OUT" >/dev/null 2>&1 && { _ok "$1"; return 0; }
                sleep 0.5
        done
        _not_ok "$1" "never held: $3" "last: $(head -c 3000 <<<"$OUT")"
}

# ---- bad parameters
capi GET '/api/v1/insights?window=2h'
check "window 2h is refused naming the parameter and the valid windows" 400 \
        '.detail | test("window") and test("5m, 15m, 1h, 6h, 24h")'
capi GET '/api/v1/insights?threshold=101'
check "threshold 101 is refused naming the parameter and the range" 400 \
        '.detail | test("threshold") and test("0 to 100")'
capi GET '/api/v1/insights?threshold=-1'
check "threshold -1 is refused" 400 '.detail | test("threshold")'
capi GET '/api/v1/insights?threshold=5%25'
check "threshold '5%' is refused (a number only)" 400 '.detail | test("threshold")'
capi GET '/api/v1/insights?windows=1h'
check "an unknown parameter is refused, the valid ones named" 400 '.detail | test("window") and test("threshold")'
capi GET '/api/v1/insights'
check "no parameters: window 1h, threshold 5, empty lists on an empty cluster" 200 \
        '.window == "1h" and .threshold == 5 and .idle_passthrough == [] and .fragmentation == [] and .idle_seats == [] and (.evidence | has("vm-cpu"))'

# ---- a licence pool for the vGPU VMs (NVIDIA AI Enterprise, priced)
capi PUT /api/v1/licenses/aie '{"edition": "nvaie", "seats": 20, "price_per_seat_year": 4500, "currency": "USD"}'
check "pool aie: 20 NVIDIA AI Enterprise seats at 4500 USD a year" 200 '.edition == "nvaie" and .seats == 20'

# ---- the VMs
create p1 '{"kind": "passthrough", "count": 1}' node-a
check "p1 (pass-through) runs on node-a" 200 '.state == "succeeded"'
create vbusy '{"kind": "vgpu", "type": "H100XM-20C"}' node-a
check "vbusy (vGPU) runs on node-a" 200 '.state == "succeeded"'
create vidle '{"kind": "vgpu", "type": "H100XM-20C"}' node-a
check "vidle (vGPU) runs on node-a" 200 '.state == "succeeded"'
for m in m1 m2 m3; do
        create "$m" '{"kind": "mig", "profile": "2g.20gb"}' node-b
        check "$m (MIG 2g.20gb) runs on node-b" 200 '.state == "succeeded"'
done
capi GET /api/v1/vms/p1
P1_PCI=$(jqo '.placement.gpus[0].pci')
VF_OF() { aapi node-a "/v1/vms/$1"; jqo '.hw[] | select(.kind == "vgpu") | .id'; }
VBUSY_VF=$(VF_OF vbusy)
VIDLE_VF=$(VF_OF vidle)
declare -A START PCI
for m in m1 m2 m3; do
        capi GET "/api/v1/vms/$m"
        START[$m]=$(jqo '.placement.gpus[0].start')
        PCI[$m]=$(jqo '.placement.gpus[0].pci')
done
if [ "${PCI[m1]}" = "${PCI[m2]}" ] && [ "${PCI[m2]}" = "${PCI[m3]}" ] &&
        [ "$(printf '%s\n' "${START[@]}" | sort -n | tr '\n' ' ')" = "0 2 4 " ]; then
        _ok "m1, m2, m3 share node-b's ${PCI[m1]}, at slices ${START[m1]}, ${START[m2]}, ${START[m3]}"
else
        _not_ok "the three 2g.20gb VMs share one GPU at slices 0, 2, 4" \
                "GPUs ${PCI[m1]} ${PCI[m2]} ${PCI[m3]}, starts ${START[m1]} ${START[m2]} ${START[m3]}"
fi
MIG_PCI=${PCI[m1]}

# ---- a full MIG GPU: no plan (the 2g.20gb count is used up; slices 6-7 take a 1g.20gb)
insights_until "node-b's MIG GPU with three 2g.20gb: no plan, its verdict says why" 'window=5m' \
        "[.fragmentation[] | select(.host == \"node-b\" and .gpu == \"$MIG_PCI\") | select(.plan == null and .verdict == \"compact\" and .free_slices == 2 and .largest_free_profile == \"1g.20gb\" and (.instances | length) == 3)] | length == 1"

# ---- pin the vGPU load: vbusy at 90 % SM, vidle at 1 %
run "$GPUVIRT_SIM" load --root "$(host_var node-a ROOT)" --vgpu "$VBUSY_VF" --util 90
assert_rc 0 "pin vbusy's vGPU ($VBUSY_VF) at 90 %"
run "$GPUVIRT_SIM" load --root "$(host_var node-a ROOT)" --vgpu "$VIDLE_VF" --util 1
assert_rc 0 "pin vidle's vGPU ($VIDLE_VF) at 1 %"

# ---- stop p1: its GPU stays reserved and nothing runs on it
capi POST '/api/v1/vms/p1/stop?wait=60'
check "p1 stopped" 200 '.state == "succeeded"'

Q='window=5m&threshold=20'
P1='.idle_passthrough[] | select(.vm == "p1")'
insights_until "p1: idle pass-through, evidence vm-stopped (certain), no GPU figure, its whole GPU freed by a conversion" "$Q" \
        "[$P1 | select(.host == \"node-a\" and .gpu == \"$P1_PCI\" and .evidence == \"vm-stopped\" and .proxy == false and .value == null and .state == \"stopped\" and .frees.gpus == 1 and .frees.memory_mib > 80000 and (.gpu_util | test(\"not visible\")))] | length == 1"
check "... converting it: MIG 7 x 1g.10gb with no licence" 200 \
        "[$P1 | .convert[] | select(.mode == \"mig\" and .profile == \"1g.10gb\" and .instances == 7 and .licence == \"none\" and (.layout | test(\"1g.10gb\")))] | length == 1"
check "... or vGPU H100XM-10C x 8: 8 NVIDIA AI Enterprise seats from pool aie, 36000 USD a year" 200 \
        "[$P1 | .convert[] | select(.mode == \"vgpu\" and .type == \"H100XM-10C\" and .instances == 8 and .edition == \"nvaie\" and .seats == 8 and .cost_per_year == 36000 and .currency == \"USD\" and .cost_reason == null)] | length == 1"
check "no pass-through GPU shows a utilization: every entry's evidence is the VM's state or its CPU" 200 \
        '[.idle_passthrough[] | select(.evidence != "vm-stopped" and .evidence != "vm-cpu")] == [] and ([.idle_passthrough[] | select(.evidence == "vm-cpu" and .proxy != true)] == [])'
check "running vGPU VMs are not idle pass-through GPUs" 200 \
        '[.idle_passthrough[] | select(.vm == "vbusy" or .vm == "vidle")] == []'

insights_until "vidle's seat is idle: evidence gpu-util under 20 % (its vGPU pinned at 1 %), pool aie" "$Q" \
        '[.idle_seats[] | select(.vm == "vidle" and .pool == "aie" and .evidence == "gpu-util" and .proxy == false and .value < 20 and .samples > 0)] | length == 1'
check "vbusy's seat is not idle (its vGPU pinned at 90 %)" 200 '[.idle_seats[] | select(.vm == "vbusy")] == []'
check "p1 holds no seat (no pool counts pass-through), so it is not an idle seat" 200 '[.idle_seats[] | select(.vm == "p1")] == []'
capi GET "/api/v1/insights?window=5m&threshold=0"
check "threshold 0: nothing is under it, so no VM is idle by a measure (only by its state)" 200 \
        '[.idle_seats[] | select(.evidence == "gpu-util" or .evidence == "vm-cpu")] == [] and ([.idle_passthrough[] | select(.vm == "p1" and .evidence == "vm-stopped")] | length == 1)'

# ---- fragment the MIG GPU: delete the VM at slices 2-3
MID=; MOVER=; STAYER=
for m in m1 m2 m3; do
        case ${START[$m]} in 2) MID=$m ;; 4) MOVER=$m ;; 0) STAYER=$m ;; esac
done
capi DELETE "/api/v1/vms/$MID?wait=60"
check "$MID (slices 2-3) deleted" 200 '.state == "succeeded"'
F=".fragmentation[] | select(.host == \"node-b\" and .gpu == \"$MIG_PCI\")"
insights_until "node-b's MIG GPU: 2g.20gb at 0 and 4 leave no 3g.40gb; the plan moves $MOVER (4-5 → 2-3), a live migration, freeing 3g.40gb" 'window=5m' \
        "[$F | select(.verdict == \"plan\" and .free_slices == 4 and .largest_free_profile == \"2g.20gb\" and .measure == 0.25 and .measure_demand == 0 and .plan.frees_profile == \"3g.40gb\" and .plan.live_migrations == 1 and (.plan.moves | length) == 1 and .plan.moves[0].vm == \"$MOVER\" and .plan.moves[0].from == 4 and .plan.moves[0].to == 2 and .plan.moves[0].needs_live_migration == true and .plan.moves[0].direct == true and .plan.moves[0].profile == \"2g.20gb\")] | length == 1"
check "... $STAYER stays; the layout afterwards has 4-7 free" 200 \
        "[$F | select((.plan.moves | map(.vm) | index(\"$STAYER\")) == null and (.plan.layout | test(\"4-7:free\")))] | length == 1"

# ---- the CLI
run "$GPUVIRT" insights --window 5m --threshold 20
assert_rc 0 "gpuvirt insights --window 5m --threshold 20"
grep -q "p1" <<<"$OUT" && grep -q "VM stopped (certain)" <<<"$OUT" && _ok "... p1 with its evidence, stopped (certain)" ||
        _not_ok "... p1 with its evidence" "$OUT"
grep -q "$MOVER 2g.20gb: slices 4-5 → 2-3 (live migration)" <<<"$OUT" && _ok "... the move of $MOVER, 4-5 → 2-3, a live migration" ||
        _not_ok "... the move of $MOVER" "$OUT"
grep -q "vidle" <<<"$OUT" && ! grep -q "vbusy" <<<"$OUT" && _ok "... vidle's idle seat, not vbusy" || _not_ok "... vidle's idle seat, not vbusy" "$OUT"
run "$GPUVIRT" insights --json --window 5m
assert_rc 0 "gpuvirt insights --json"
jq -e '.window == "5m" and (.fragmentation | length) >= 1' <<<"$OUT" >/dev/null && _ok "... --json is the API's answer" || _not_ok "... --json" "$OUT"
run "$GPUVIRT" insights --window 2h
assert_rc 2 "gpuvirt insights --window 2h is a usage error"
grep -q "5m, 15m, 1h, 6h, 24h" <<<"$ERR$OUT" && _ok "... naming the valid windows" || _not_ok "... naming the valid windows" "$ERR $OUT"
run "$GPUVIRT" insights --threshold 250
assert_rc 2 "gpuvirt insights --threshold 250: the controller's 400, exit 2"
grep -q "threshold" <<<"$ERR$OUT" && _ok "... naming the threshold" || _not_ok "... naming the threshold" "$ERR $OUT"

"$LAUNCH" stop "$CL" >/dev/null 2>&1
grep -lE "ERROR: (Address|Leak)Sanitizer|runtime error:" "$CL"/logs/*.log >/dev/null 2>&1 &&
        _not_ok "no sanitizer report from the daemons" "$(grep -hm3 -E 'Sanitizer|runtime error' "$CL"/logs/*.log)" ||
        _ok "no sanitizer report from the daemons"
done_testing
