#!/bin/bash
# SPDX-License-Identifier: MIT
# Named-step kills (reliability.md R2; docs/reliability.md "Crash consistency"): for EVERY
# failpoint in src/ (GV_FAILPOINT("..."), found by grep, so a new step is covered without
# editing this test) the daemon that owns it (agent.* points: node-a's agent; the others: the
# controller) is restarted with GPUVIRT_FAILPOINTS=NAME=kill, the operation that reaches the
# step is run, the daemon must die there (a point never reached fails: coverage is 100%), it is
# restarted without the failpoint, the operations must settle, and invariants.py must find I1–I4
# whole (the VMs running before the kill keep their QEMU pids: I4, R13).
. "$(dirname "$0")/../integration/lib.sh"
. "$(dirname "$0")/../controller/cluster-lib.sh"
. "$(dirname "$0")/crash-lib.sh"
cluster_init crash-steps

cluster_start --hosts 2 --profiles dgx-h100,dgx-h100 --accel tcg --host-down-after 3 \
        --same-group --stop-timeout 2 --orphan-grace 1
: >"$HISTORY"

VGPU='{"kind": "vgpu", "type": "H100XM-20C"}'
MIG='{"kind": "mig", "profile": "1g.10gb"}'
PT='{"kind": "passthrough", "count": 1}'
N=0

# mk NAME GPU HOST: a VM made (and recorded) before the kill is armed
mk() { create "$1" "$2" "$3"; hist create "$1"; }
# act OP NAME [ARGS]: the operation under test (its outcome recorded, whatever it was)
act() {
        case $1 in
        create) create "$2" "$3" "$4"; hist create "$2" ;;
        start | stop | delete)
                if [ "$1" = delete ]; then capi DELETE "/api/v1/vms/$2?wait=30"
                elif [ "$1" = start ]; then capi POST "/api/v1/vms/$2/start?wait=30"
                else capi POST "/api/v1/vms/$2/$1?wait=30" '{}'; fi
                hist "$1" "$2" ;;
        migrate) capi POST "/api/v1/vms/$2/migrate?wait=60" "$3"; hist migrate "$2" "$(jq -r '.to // empty' <<<"$3")" ;;
        drain) capi POST "/api/v1/hosts/$2/drain?wait=60" '{}' ;;
        mode) capi POST "/api/v1/hosts/node-b/gpus/7/mode?wait=30" "{\"mode\": \"$2\"}" ;;
        mig) capi POST "/api/v1/hosts/node-b/gpus/6/mig?wait=30" '{"profiles": ["1g.10gb"]}' ;;
        esac
}

# The scenario of a point: what to prepare (unarmed), then the operation that reaches it.
scenario() { # POINT VM
        local p=$1 v=$2
        case $p in
        agent.attach.passthrough) act create "$v" "$PT" node-a ;;
        agent.attach.gi_created | agent.attach.mig_vgpu_created) act create "$v" "$MIG" node-a ;;
        vm.start.*) act start "$v" ;;
        vm.stop.*) act stop "$v" ;;
        vm.delete.* | agent.delete.*) act delete "$v" ;;
        vm.migrate.offline_* ) act migrate "$v" '{"to": "node-b", "mode": "offline"}' ;;
        agent.migrate.incoming) act migrate "$v" '{"to": "node-a"}' ;;
        vm.migrate.* | agent.migrate.*) act migrate "$v" '{"to": "node-b"}' ;;
        host.drain.*) act drain node-a ;;
        gpu.mode.*) act mode "$( [ $((N % 2)) = 0 ] && echo vgpu || echo mig)" ;;
        gpu.mig.*) act mig ;;
        *) act create "$v" "$VGPU" node-a ;;
        esac
}
prepare() { # POINT VM: the VM the operation needs, made before the kill is armed
        local p=$1 v=$2
        case $p in
        vm.start.*) mk "$v" "$VGPU" node-a; act stop "$v" ;;
        vm.stop.* | vm.delete.* | agent.delete.*) mk "$v" "$VGPU" node-a ;;
        vm.migrate.offline_*) mk "$v" "$PT" node-a ;;
        agent.migrate.incoming) mk "$v" "$VGPU" node-b ;;
        vm.migrate.* | agent.migrate.*) mk "$v" "$VGPU" node-a ;;
        host.drain.*) mk "$v" "$VGPU" node-a ;;
        gpu.mig.*) capi POST "/api/v1/hosts/node-b/gpus/6/mode?wait=30" '{"mode": "mig"}' ;;
        esac
}
# Every VM deleted, the drained host back (a clean cluster for the next point).
tidy() {
        local v
        capi POST /api/v1/hosts/node-a/undrain
        capi GET /api/v1/vms
        for v in $(jq -r '.[].name' <<<"$OUT"); do
                capi DELETE "/api/v1/vms/$v?wait=30"
                hist delete "$v"
        done
}

mapfile -t POINTS < <(crash_points)
if [ -n "${CRASH_POINTS:-}" ]; then
        # CRASH_POINTS='GLOB...': only the points matching one of the globs (a bisecting aid)
        sel=()
        for p in "${POINTS[@]}"; do
                for g in $CRASH_POINTS; do
                        # shellcheck disable=SC2053
                        [[ $p == $g ]] && { sel+=("$p"); break; }
                done
        done
        POINTS=("${sel[@]}")
        diag "CRASH_POINTS=$CRASH_POINTS: ${#POINTS[@]} point(s)"
fi
[ -n "${CRASH_POINTS:-}" ] || [ ${#POINTS[@]} -ge 40 ] && _ok "${#POINTS[@]} failpoints found in src/" ||
        _not_ok "at least 40 failpoints found in src/" "found: ${POINTS[*]}"
T0=$SECONDS
for p in "${POINTS[@]}"; do
        N=$((N + 1))
        vm=s$N
        d=$(daemon_of "$p")
        prepare "$p" "$vm"
        python3 "$RELIABILITY_DIR/invariants.py" --cluster "$CL" --no-reconcile --settle 0 --quiet \
                --save-pids "$TEST_TMP/pids.json" >/dev/null 2>&1
        if ! arm "$d" "$p=kill"; then
                _not_ok "$p: $d restarts with the failpoint armed" "$(tail -3 "$TEST_TMP/launch.log")"
                arm "$d" ""
                continue
        fi
        scenario "$p" "$vm"
        if died "$d" 30 && grep -q "failpoint '$p' fired" "$CL/logs/$d.log"; then
                _ok "$p: reached, $d killed there"
        else
                _not_ok "$p: reached, $d killed there" "last call: $LAST_CMD -> $HTTP $OUT"
        fi
        arm "$d" "" || _not_ok "$p: $d restarts" "$(tail -3 "$TEST_TMP/launch.log")"
        ops_settled 60 || _not_ok "$p: every operation settles after the restart" "$OUT"
        if invariants --pids-before "$TEST_TMP/pids.json" --settle 20; then
                _ok "$p: I1-I4 hold after recovery"
        else
                _not_ok "$p: I1-I4 hold after recovery" "$INV_OUT"
        fi
        tidy
done
diag "${#POINTS[@]} named-step kills in $((SECONDS - T0)) s"

# A move whose target dies at its incoming step, and the VM deleted on its source while the
# target is still down (crash-random found it): when the target's agent is back, its copy
# belongs to no move and no VM, and must still go (migrate-settle.c, leftover_of_gone).
mk gone1 "$VGPU" node-b
if arm node-a "agent.migrate.incoming=kill"; then
        act migrate gone1 '{"to": "node-a"}'
        died node-a 30 || _not_ok "gone1: node-a died at agent.migrate.incoming" "$LAST_CMD -> $HTTP $OUT"
        ops_settled 60
        capi DELETE '/api/v1/vms/gone1?wait=30'
        check "gone1: deleted on node-b while node-a, the move's target, is down" 200 '.state == "succeeded"'
        hist delete gone1
        arm node-a "" || _not_ok "node-a restarts" "$(tail -3 "$TEST_TMP/launch.log")"
        gone_copy() { aapi node-a /v1/vms; [ "$HTTP" = 200 ] && jq -e 'all(.[]; .name != "gone1")' <<<"$OUT" >/dev/null; }
        if wait_for 30 gone_copy; then
                _ok "gone1: node-a's copy from the cut move is gone once it answers"
        else
                _not_ok "gone1: node-a's copy from the cut move is gone once it answers" "$OUT"
        fi
else
        _not_ok "node-a restarts with agent.migrate.incoming armed" "$(tail -3 "$TEST_TMP/launch.log")"
fi
# An operation resumed after a controller kill whose VM was deleted and created again under the
# same name meanwhile (crash-random found a resumed stop stopping a VM started since): the
# controller dies at vm.stop.marked; while it is down the store is made to hold what a delete
# and a new create would leave (the same name, a new uuid, running); the resumed stop must not
# act on the new VM (operations.c, vm_replaced).
mk again1 "$VGPU" node-a
if arm controller "vm.stop.marked=kill"; then
        capi POST '/api/v1/vms/again1/stop?wait=30' '{}'
        died controller 30 || _not_ok "again1: the controller died at vm.stop.marked" "$HTTP $OUT"
        sqlite3 "$CL/controller/gpuvirt.db" "UPDATE objects SET doc = json_set(doc, '\$.uuid',
                '00000000-0000-4000-8000-00000000a9a1', '\$.state', 'running')
                WHERE kind = 'vm' AND key = 'again1'" ||
                _not_ok "again1: the store edited while the controller is down" "sqlite3 failed"
        arm controller "" || _not_ok "the controller restarts" "$(tail -3 "$TEST_TMP/launch.log")"
        ops_settled 60
        capi GET /api/v1/operations
        check "again1: the resumed stop failed, saying the VM was created again" 200 \
                '[.[] | select(.target == "vm/again1" and .kind == "vm.stop")][0] | .state == "failed" and (.message | test("deleted and created again"))'
        aapi node-a /v1/vms/again1
        check "again1: the VM of that name still runs" 200 '.phase == "running"'
        capi DELETE '/api/v1/vms/again1?wait=30'
        hist delete again1
else
        _not_ok "the controller restarts with vm.stop.marked armed" "$(tail -3 "$TEST_TMP/launch.log")"
fi
# A move under way owns its VM (the 1,000-kill run found a stop accepted mid-move; vms.c,
# moving): with the move held at vm.migrate.started for 4 s, a stop, a start and a delete are
# each refused with 409 naming the move, and the move then ends as it would have.
mk busy1 "$VGPU" node-a
if arm controller "vm.migrate.started=sleep:4000"; then
        curl -s -o /dev/null --max-time 60 --unix-socket "$SOCK" -X POST -H 'Content-Type: application/json' \
                --data-binary '{"to": "node-b"}' 'http://c/api/v1/vms/busy1/migrate?wait=60' &
        MV=$!
        in_move() { capi GET /api/v1/vms/busy1; jq -e '.migration | type == "object"' <<<"$OUT" >/dev/null; }
        wait_for 10 in_move || diag "busy1: no move under way seen: $OUT"
        capi POST '/api/v1/vms/busy1/stop?wait=30' '{}'
        check "busy1: a stop during its move is refused, naming the move" 409 '(.detail | test("being moved to node-b"))'
        capi POST '/api/v1/vms/busy1/start?wait=30'
        check "busy1: a start during its move is refused" 409 '(.detail | test("being moved"))'
        capi DELETE '/api/v1/vms/busy1?wait=30'
        check "busy1: a delete during its move is refused" 409 '(.detail | test("being moved"))'
        wait "$MV"
        capi GET /api/v1/vms/busy1
        check "busy1: the move ended as it would have: running on node-b" 200 '.host == "node-b" and .state == "running" and (.migration == null)'
        arm controller "" || _not_ok "the controller restarts" "$(tail -3 "$TEST_TMP/launch.log")"
        capi DELETE '/api/v1/vms/busy1?wait=30'
        hist delete busy1
else
        _not_ok "the controller restarts with vm.migrate.started armed" "$(tail -3 "$TEST_TMP/launch.log")"
fi
invariants --settle 20 && _ok "all clean at the end" || _not_ok "all clean at the end" "$INV_OUT"
no_sanitizer_reports
done_testing
