#!/bin/bash
# SPDX-License-Identifier: MIT
# Licence seats on a simulated cluster (two dgx-h100 hosts, one l40s-4; real QEMU on TCG): pools
# are refused for bad input naming the member; VMs hold seats of the edition their vGPU type's
# series needs (Q → vWS, C → NVIDIA AI Enterprise) while they run and give them back when they
# stop, crash or are deleted; an enforcing pool refuses the start or create that would overflow
# it, naming the pool and who holds its seats, and nothing is reserved; a warning pool lets it
# start and says it is over; per-GPU counting shares one seat between the VMs on a GPU; a live
# move keeps the seat; an expired term gives no seats; a restarted controller counts the same;
# costs per month by tenant and VM; the CLI shows and changes pools.
. "$(dirname "$0")/../integration/lib.sh"
. "$(dirname "$0")/cluster-lib.sh"
cluster_init lic

cluster_start --hosts 3 --profiles dgx-h100,dgx-h100,l40s-4 --accel tcg --same-group

# the tenants costs are summed by (a VM's tenant must exist; docs/security.md "Tenants")
for t in team-a team-b default; do capi PUT "/api/v1/tenants/$t" '{}'; done

put_pool() { capi PUT "/api/v1/licenses/$1" "$2"; }
lic() { capi GET /api/v1/licenses; }
used_is() { # POOL N: the pool's used seats are N
        capi GET "/api/v1/licenses/$1"
        [ "$HTTP" = 200 ] && [ "$(jqo .used)" = "$2" ]
}
vm_q() { # NAME TYPE [TENANT]: a vGPU VM on node-c (the L40S host)
        capi POST '/api/v1/vms?wait=60' "$(jq -nc --arg n "$1" --arg t "$2" --arg te "${3:-default}" \
                '{name: $n, memory_mib: 128, tenant: $te, host: "node-c", gpus: [{kind: "vgpu", type: $t}]}')"
}

# ---- no pools: nothing is refused, a vGPU VM is listed as needing a licence
vm_q q1 L40S-4Q team-a
check "q1 (L40S-4Q) runs with no pool configured" 200 '.state == "succeeded"'
lic
check "no pools; q1 listed as unlicensed, needing vws" 200 \
        '.pools == [] and ([.unlicensed[] | select(.vm == "q1" and .needs == ["vws"] and .tenant == "team-a")] | length == 1)'

# ---- bad pools
put_pool vws '{"edition": "grid", "seats": 2}'
check "edition 'grid' refused, the editions named" 400 '(.detail | contains("edition")) and (.detail | contains("nvaie, vcs, vws, vpc, vapps"))'
put_pool vws '{"edition": "vws", "seats": -1}'
check "negative seats refused" 400 '.detail | contains("seats")'
put_pool vws '{"edition": "vws", "seats": 2, "sets": 3}'
check "an unknown member refused by name" 400 '.detail | contains("unknown member '"'"'sets'"'"'")'
put_pool vpc '{"edition": "vpc", "seats": 2, "passthrough": true}'
check "vPC for pass-through refused (the reference says it is not available)" 400 '.detail | contains("pass-through")'
put_pool vws '{"edition": "vws", "seats": 2, "term": {"start": "2026-12-31", "end": "2026-01-01"}}'
check "a term that ends before it starts refused" 400 '.detail | contains("ends")'
put_pool vws '{"edition": "vws", "seats": 2, "term": {"start": "2026-02-30", "end": "2027-01-01"}}'
check "a date that does not exist refused" 400 '.detail | contains("term")'
put_pool vws '{"edition": "vws", "seats": 2, "currency": "usd"}'
check "a currency that is not ISO 4217 refused" 400 '.detail | contains("currency")'
put_pool 'Bad_Name' '{"edition": "vws", "seats": 2}'
check "a pool name outside the grammar refused" 400 '.detail | contains("not a valid name")'
capi GET /api/v1/licenses/vws
check "nothing was stored by the refusals" 404 '.status == 404'

# ---- a vWS pool of 2 seats, enforced, priced
put_pool vws '{"edition": "vws", "seats": 2, "price_per_seat_year": 2400}'
check "pool vws: 2 seats, enforce by default, q1 holds one" 200 \
        '.policy == "enforce" and .counting == "vm" and .used == 1 and .free == 1 and .holders[0].vm == "q1" and .cost_per_month == 200'
vm_q q2 L40S-2Q team-b
check "q2 takes the second seat" 200 '.state == "succeeded"'
wait_for 5 used_is vws 2 && _ok "vws: 2 of 2 used" || _not_ok "vws: 2 of 2 used" "$OUT"
capi GET /api/v1/gpus
FREE_BEFORE=$(jq -c '[.[] | select(.host == "node-c") | {name, use}]' <<<"$OUT")
vm_q q3 L40S-2Q
check "q3 refused: 409 naming the pool, its seats and the holders" 409 \
        '.type | endswith("license-seats-exhausted")'
jq -e '(.detail | contains("licence pool '"'"'vws'"'"'")) and (.detail | contains("2 of 2 seats")) and (.detail | contains("q1, q2"))' <<<"$OUT" >/dev/null &&
        _ok "... the message: pool vws, 2 of 2 seats, held by q1, q2" || _not_ok "... the message names pool, seats, holders" "$OUT"
capi GET /api/v1/vms/q3
check "... q3 was not created" 404 '.status == 404'
capi GET /api/v1/gpus
[ "$(jq -c '[.[] | select(.host == "node-c") | {name, use}]' <<<"$OUT")" = "$FREE_BEFORE" ] &&
        _ok "... nothing reserved on node-c (its GPUs' use as before)" || _not_ok "... nothing reserved on node-c" "before $FREE_BEFORE after $OUT"

# ---- stop gives the seat back; start takes one (or is refused)
capi POST '/api/v1/vms/q1/stop?wait=60'
check "q1 stopped" 200 '.state == "succeeded"'
wait_for 5 used_is vws 1 && _ok "vws: 1 used after q1 stopped" || _not_ok "vws: 1 used after q1 stopped" "$OUT"
vm_q q3 L40S-2Q team-b
check "q3 now takes the free seat" 200 '.state == "succeeded"'
capi POST '/api/v1/vms/q1/start?wait=60'
check "starting q1 again refused (the pool is full)" 409 '(.detail | contains("vws")) and (.detail | contains("q2, q3"))'
capi GET /api/v1/vms/q1
check "... q1 stays stopped" 200 '.state == "stopped"'

# ---- policy warn: it starts, and the pool says it is over
put_pool vws '{"edition": "vws", "seats": 2, "policy": "warn", "price_per_seat_year": 2400}'
check "vws set to warn" 200 '.policy == "warn"'
capi POST '/api/v1/vms/q1/start?wait=60'
check "q1 starts over a warning pool" 200 '.state == "succeeded"'
capi GET /api/v1/licenses/vws
check "vws: 3 used, over by 1, q1 (the newest) is the one over" 200 \
        '.used == 3 and .over == 1 and .free == 0 and ([.holders[] | select(.over)] | map(.vm)) == ["q1"]'
curl -s -N --max-time 2 --unix-socket "$SOCK" 'http://controller/api/v1/events?after=0' >"$TEST_TMP/events" 2>/dev/null
grep '^data:' "$TEST_TMP/events" | sed 's/^data: *//' |
        jq -se 'any(.[]; .type == "license.over" and .subject == "q1" and .data.pool == "vws")' >/dev/null &&
        _ok "an event license.over for q1" || _not_ok "an event license.over for q1" "$(grep license "$TEST_TMP/events")"

# ---- costs: 3 seats × 2400 / 12
lic
check "cost per month: 600 USD; team-a 200 (q1), team-b 400 (q2, q3)" 200 \
        '.cost.per_month.USD == 600 and .cost.by_tenant["team-a"].USD == 200 and .cost.by_tenant["team-b"].USD == 400 and .cost.by_vm.q2.USD == 200'

# ---- a crash gives the seat back (the poller sees QEMU gone)
aapi node-c /v1/vms/q2
Q2_PID=$(jqo '.pid // empty')
[ -n "$Q2_PID" ] && kill -9 "$Q2_PID" && _ok "q2's QEMU ($Q2_PID) killed" || _not_ok "q2's QEMU killed" "$OUT"
wait_for 20 vm_state_is q2 crashed && _ok "q2 seen crashed" || _not_ok "q2 seen crashed" "$(capi GET /api/v1/vms/q2; echo "$OUT")"
capi GET /api/v1/licenses/vws
check "vws: 2 used after the crash, nobody over" 200 '.used == 2 and .over == 0 and ([.holders[].vm] | sort) == ["q1", "q3"]'

# ---- delete gives it back; a pool with holders cannot be deleted
capi DELETE '/api/v1/vms/q3?wait=60'
check "q3 deleted" 200 '.state == "succeeded"'
wait_for 5 used_is vws 1 && _ok "vws: 1 used after q3 deleted" || _not_ok "vws: 1 used after q3 deleted" "$OUT"
capi DELETE /api/v1/licenses/vws
check "deleting vws refused while q1 holds a seat, naming it" 409 '.detail | contains("q1")'

# ---- NVIDIA AI Enterprise counted per GPU: two C-series VMs on one GPU share a seat
put_pool vws '{"edition": "vws", "seats": 1, "price_per_seat_year": 2400}'
check "vws back to enforce with 1 seat (q1's): no room for a C-series VM there either" 200 '.used == 1 and .free == 0'
put_pool aie '{"edition": "nvaie", "seats": 1, "counting": "gpu", "price_per_seat_year": 4500}'
check "pool aie: 1 seat per GPU" 200 '.counting == "gpu" and .used == 0'
capi POST '/api/v1/vms?wait=60' '{"name": "c1", "memory_mib": 128, "host": "node-a", "policy": "first-fit", "gpus": [{"kind": "vgpu", "type": "H100XM-20C"}]}'
check "c1 (H100XM-20C) runs" 200 '.state == "succeeded"'
capi POST '/api/v1/vms?wait=60' '{"name": "c2", "memory_mib": 128, "host": "node-a", "policy": "first-fit", "gpus": [{"kind": "vgpu", "type": "H100XM-20C"}]}'
check "c2 runs on the same GPU (first-fit)" 200 '.state == "succeeded"'
capi GET /api/v1/vms/c1
C1_GPU=$(jqo '.placement.gpus[0].pci')
capi GET /api/v1/vms/c2
[ "$(jqo '.placement.gpus[0].pci')" = "$C1_GPU" ] && _ok "... c1 and c2 share GPU $C1_GPU" || _not_ok "c1 and c2 share a GPU" "$OUT"
capi GET /api/v1/licenses/aie
check "aie: 1 seat for the one GPU, held by c1 and c2, its cost split" 200 \
        '.used == 1 and ([.holders[].vm] | sort) == ["c1", "c2"] and ([.holders[].cost_per_month] | sort) == [187.5, 187.5] and .cost_per_month == 375'
# a third on another GPU needs a second seat
capi POST '/api/v1/vms?wait=60' '{"name": "c3", "memory_mib": 128, "host": "node-a", "policy": "spread", "gpus": [{"kind": "vgpu", "type": "H100XM-80C"}]}'
check "c3 on another GPU refused: aie has 1 seat per GPU and it is taken" 409 '.detail | contains("aie")'

# ---- a live move keeps the seat
capi POST '/api/v1/vms/c1/migrate?wait=120' '{"to": "node-b"}'
check "c1 moved live to node-b" 200 '.state == "succeeded"'
capi GET /api/v1/licenses/aie
check "aie after the move: c1 (the earlier) keeps the seat, for its GPU on node-b; c2, alone on node-a's GPU now, is over (a move is never refused for seats)" 200 \
        '.used == 2 and .over == 1 and ([.holders[] | {vm, over, gpu: .gpus[0]}]) == [{"vm": "c1", "over": false, "gpu": "node-b/'"$C1_GPU"'"}, {"vm": "c2", "over": true, "gpu": "node-a/'"$C1_GPU"'"}]'
capi GET /api/v1/licenses/vws
check "vws unchanged by the move: q1" 200 '.used == 1 and ([.holders[].vm] == ["q1"])'

# ---- an expired term gives no seats
put_pool vws '{"edition": "vws", "seats": 5, "term": {"start": "2020-01-01", "end": "2020-12-31"}}'
check "vws with a term that ended in 2020: inactive, no free seats" 200 '.active == false and .free == 0 and .inactive_reason == "expired"'
vm_q q4 L40S-1Q
check "q4 refused: the term has ended" 409 '(.detail | contains("term has ended")) and (.detail | contains("2020-12-31"))'

# ---- a restarted controller counts the same
lic
BEFORE=$(jq -c '[.pools[] | {name, used, holders: [.holders[].vm]}]' <<<"$OUT")
env_reload
kill -9 "$CONTROLLER_PID"
while kill -0 "$CONTROLLER_PID" 2>/dev/null; do sleep 0.1; done
if "$LAUNCH" restart "$CL" controller >"$TEST_TMP/restart.log" 2>&1; then
        _ok "controller killed with -9 and restarted"
else
        _not_ok "controller killed with -9 and restarted" "$(cat "$TEST_TMP/restart.log")"
fi
env_reload
lic
[ "$(jq -c '[.pools[] | {name, used, holders: [.holders[].vm]}]' <<<"$OUT")" = "$BEFORE" ] &&
        _ok "the same pools, seats and holders after the restart" || _not_ok "the same seats after the restart" "before $BEFORE after $OUT"

# ---- usage history (the most seats used per minute) and the Prometheus gauges
hist_has() { capi GET /api/v1/licenses/vws; [ "$HTTP" = 200 ] && jq -e '.history.step_ms == 60000 and (.history.timestamps_ms | length) >= 1 and (.history.used_max | max) >= 1 and (.history.used_max | length) == (.history.seats | length)' <<<"$OUT" >/dev/null; }
wait_for 15 hist_has && _ok "vws' history: per-minute maxima of seats used" || _not_ok "vws' history" "$OUT"
capi GET /metrics
grep -q '^gpuvirt_license_seats_used{pool="aie",edition="nvaie"} 2$' <<<"$OUT" &&
        grep -q '^gpuvirt_license_seats{pool="vws",edition="vws"} 0$' <<<"$OUT" &&
        _ok "/metrics: aie's 2 seats used, vws' 0 seats (its term ended)" || _not_ok "/metrics license gauges" "$(grep license <<<"$OUT")"

# ---- the CLI
export GPUVIRT_ENDPOINT="unix:$SOCK"
run "$GPUVIRT" license list
assert_rc 0 "gpuvirt license list"
grep -Eq '^aie +nvaie +1 +2 \(over\) +0 +enforce +gpu +— +4500.00 USD +750.00 USD' <<<"$OUT" && _ok "... aie's row: 1 seat, 2 used (over), per GPU, its price and cost" || _not_ok "... aie's row" "$OUT"
run "$GPUVIRT" license set vws --seats 3 --term none --price 2400
assert_rc 0 "gpuvirt license set vws --seats 3 --term none --price 2400 (edition kept)"
capi GET /api/v1/licenses/vws
check "... vws: vws edition kept, 3 seats, no term, active, priced" 200 '.edition == "vws" and .seats == 3 and .term == null and .active and .price_per_seat_year == 2400'
run "$GPUVIRT" license set new-pool --seats 3
assert_rc 2 "gpuvirt license set of a new pool without --edition fails (400: exit 2)"
grep -q "edition" <<<"$ERR$OUT" && _ok "... saying edition is missing" || _not_ok "... saying edition is missing" "$ERR $OUT"
run "$GPUVIRT" license show aie
assert_rc 0 "gpuvirt license show aie"
grep -Eq '^c1 +default +node-b +running +1 ' <<<"$OUT" && _ok "... c1 listed as the holder on node-b" || _not_ok "... c1 listed" "$OUT"
run "$GPUVIRT" license cost
assert_rc 0 "gpuvirt license cost"
grep -Eq '^team-a +200.00 USD' <<<"$OUT" && grep -Eq '^default +575.00 USD' <<<"$OUT" &&
        _ok "... team-a 200.00 USD (q1), default 575.00 USD (c1's GPU seat, c2's vWS seat)" || _not_ok "... the costs by tenant" "$OUT"
run "$GPUVIRT" license delete aie
assert_rc 4 "gpuvirt license delete aie refused (c1, c2 hold seats; exit 4)"

no_sanitizer_reports
done_testing
