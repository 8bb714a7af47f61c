#!/bin/bash
# SPDX-License-Identifier: MIT
# Several controllers on one store serve one cluster (reliability.md F9; docs/reliability.md
# "Several controllers"): two controllers on one SQLite file, then three on a real PostgreSQL
# (tests/common/pg-server.sh; skipped with the reason when PostgreSQL is missing). Each round:
#   - exactly one holds the leader lease (health's "controller")
#   - a VM made through A is seen, stopped and deleted through the others
#   - an SSE stream on A shows what another controller did
#   - creates racing through every controller for a scarce GPU: never one slice twice (the
#     placements and the agent's own VMs), the losers answered 409
#   - a controller SIGKILLed inside a create (failpoint vm.create.defined=kill) is taken over by
#     one other controller (one operation.takeover event) once its lease expired, which ends it
#   - the leader SIGKILLed: another becomes leader and keeps the host up (its poller)
# The leases are short here (GPUVIRT_LEASE_MS=3000) and the same-machine shortcut (a dead pid
# ends a lease at once) is off, so the expiry path is what is tested.
. "$(dirname "$0")/../integration/lib.sh"
. "$(dirname "$0")/../controller/cluster-lib.sh"
cluster_init multi-controller

export GPUVIRT_LEASE_MS=3000 GPUVIRT_LEASE_PID_CHECK=0
ok() { # NAME CMD...: ok when CMD succeeds
        local name=$1
        shift
        if "$@" >/dev/null 2>&1; then _ok "$name"; else _not_ok "$name"; fi
}
is() { assert_eq "$1" "$2" "$3"; }
skip() { TAP_N=$((TAP_N + 1)); echo "ok $TAP_N # SKIP $1"; }
# all_events N: every event in the store's log, as controller N's SSE stream replays it
all_events() {
        curl -sN --max-time 3 --unix-socket "${SOCKS[$1]}" \
                'http://controller/api/v1/events?after=0' 2>/dev/null | sed -n 's/^data: //p'
}
PG_SERVER=$(cd "$(dirname "$0")/../common" && pwd)/pg-server.sh
EXTRA_PIDS=()
PG_DIR=
CLUSTER_EXIT_HOOK=stop_extra
stop_extra() {
        local p
        for p in "${EXTRA_PIDS[@]}"; do kill -9 "$p" 2>/dev/null; done
        [ -z "$PG_DIR" ] || { "$PG_SERVER" stop "$PG_DIR" immediate >/dev/null 2>&1; rm -rf "$PG_DIR"; }
}

# on N METHOD PATH [BODY]: capi on controller N (0: the cluster's own, A)
on() {
        local n=$1
        shift
        SOCK=${SOCKS[$n]} capi "$@"
}
# start_ctl N STORE: controller N on its own socket and state directory, same store
start_ctl() {
        local n=$1 d=$CL/ctl-$1
        mkdir -p "$d"
        "$GPUVIRTD" --role controller --state-dir "$d" --store "$2" --api-socket "$d/api.sock" \
                --host-down-after 3 </dev/null >>"$CL/logs/ctl-$n.log" 2>&1 &
        PIDS[$n]=$!
        EXTRA_PIDS+=("$!")
        SOCKS[$n]=$d/api.sock
}
leaders() { # how many controllers (of those alive) say they lead
        local n c=0
        for n in "${!SOCKS[@]}"; do
                gone "${PIDS[$n]}" && continue
                on "$n" GET /api/v1/health
                [ "$(jq -r .controller.leader <<<"$OUT" 2>/dev/null)" = true ] && c=$((c + 1))
        done
        echo "$c"
}
leader_index() {
        local n
        for n in "${!SOCKS[@]}"; do
                gone "${PIDS[$n]}" && continue
                on "$n" GET /api/v1/health
                [ "$(jq -r .controller.leader <<<"$OUT")" = true ] && { echo "$n"; return 0; }
        done
        return 1
}
one_leader() { [ "$(leaders)" = 1 ]; }
ctl_up() { on "$1" GET /api/v1/health; [ "$HTTP" = 200 ]; }
# gone PID: the process ended (a zombie, not reaped yet, answers kill -0: its state says Z)
gone() {
        kill -0 "$1" 2>/dev/null || return 0
        [ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" = Z ]
}
vm_state_on() { on "$1" GET "/api/v1/vms/$2"; [ "$HTTP" = 200 ] && [ "$(jq -r .state <<<"$OUT")" = "$3" ]; }
host_up_on() { on "$1" GET /api/v1/hosts; jq -e 'all(.[]; .state == "up")' <<<"$OUT" >/dev/null; }

VGPU='{"kind": "vgpu", "type": "H100XM-10C"}'

# round LABEL K STORE-OPTION...: a cluster of one host whose store K controllers share
round() {
        local label=$1 k=$2 store n t0 t1
        shift 2
        "$LAUNCH" stop "$CL" >/dev/null 2>&1
        rm -rf "$CL"
        SOCKS=() PIDS=()
        t0=$(date +%s)
        cluster_start --hosts 1 --profiles dgx-h100 --accel tcg --host-down-after 3 \
                --same-group --stop-timeout 2 "$@"
        store=${1:+$2}
        [ -n "$store" ] || store=sqlite:$CL/controller/gpuvirt.db
        SOCKS[0]=$CL/gpuvirt.sock
        PIDS[0]=$CONTROLLER_PID
        for ((n = 1; n < k; n++)); do start_ctl "$n" "$store"; done
        for ((n = 1; n < k; n++)); do
                wait_for 20 ctl_up "$n"
                check "$label: controller $n is up on the same store" 200 '.status == "ok"'
        done

        wait_for 20 one_leader
        is "$(leaders)" 1 "$label: exactly one of $k controllers holds the leader lease"

        # ---- one cluster through any of them
        SOCK=${SOCKS[0]} create "$label-a" "$VGPU"
        check "$label: a VM made through A" 200 '.state == "succeeded"'
        for ((n = 1; n < k; n++)); do
                on "$n" GET "/api/v1/vms/$label-a"
                check "$label: controller $n sees it running" 200 '.state == "running"'
        done
        local sse=$TEST_TMP/$label-sse
        curl -sN --max-time 40 --unix-socket "${SOCKS[0]}" http://controller/api/v1/events \
                >"$sse" 2>/dev/null &
        local sse_pid=$!
        sleep 1
        on $((k - 1)) POST "/api/v1/vms/$label-a/stop?wait=60" '{}'
        check "$label: stopped through controller $((k - 1))" 200 '.state == "succeeded"'
        wait_for 10 vm_state_on 0 "$label-a" stopped
        ok "$label: A sees it stopped" vm_state_on 0 "$label-a" stopped
        on 1 DELETE "/api/v1/vms/$label-a?wait=60"
        check "$label: deleted through controller 1" 200 '.state == "succeeded"'
        on 0 GET "/api/v1/vms/$label-a"
        is "$HTTP" 404 "$label: A knows it is gone"
        wait_for 10 grep -q "\"vm/$label-a\".*vm.deleted\|vm.deleted.*\"vm/$label-a\"" "$sse"
        ok "$label: the SSE stream on A shows the stop and the delete made through the others" \
                bash -c "grep -q 'vm.deleted' '$sse' && grep -q '\"subject\":\"vm/$label-a\"' '$sse'"
        kill "$sse_pid" 2>/dev/null

        # ---- the race for a scarce GPU: 4 of 8 passthrough GPUs each, 3 requests a controller
        local codes=$TEST_TMP/$label-codes i
        : >"$codes"
        for ((i = 0; i < 3 * k; i++)); do
                (
                        body=$(jq -nc --arg n "$label-r$i" '{name: $n, memory_mib: 128,
                                gpus: [{kind: "passthrough", count: 4}]}')
                        code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 60 \
                                --unix-socket "${SOCKS[$((i % k))]}" -X POST \
                                -H 'Content-Type: application/json' --data-binary "$body" \
                                'http://controller/api/v1/vms?wait=0')
                        echo "$code" >>"$codes"
                ) &
        done
        wait_for 90 bash -c "[ \$(wc -l <'$codes') -ge $((3 * k)) ]"
        local won lost
        won=$(grep -c '^20[0-9]$' "$codes")
        lost=$(grep -c '^409$' "$codes")
        diag "$label: the racers' answers: $(sort "$codes" | uniq -c | tr '\n' ' ')"
        is "$won" 2 "$label: two of $((3 * k)) racing creates reserved (8 GPUs, 4 each)"
        is "$lost" $((3 * k - 2)) "$label: the others were answered 409"
        on 0 GET /api/v1/vms
        ok "$label: no GPU is in two placements" jq -e \
                '[.[] | select(.placement != null) | .placement.gpus[].pci] | length == (unique | length) and length == 8' \
                <<<"$OUT"
        racers_running() { on 0 GET /api/v1/vms; jq -e '[.[] | select(.name | startswith("'"$label"'-r")) | select(.state == "running")] | length == 2' <<<"$OUT" >/dev/null; }
        wait_for 90 racers_running
        ok "$label: both winners run" racers_running
        aapi node-a /v1/vms
        ok "$label: the agent's VMs hold every GPU at most once" jq -e \
                '[.[] | [.. | strings | select(test("^[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\\.[0-7]$"))] | unique] | add // [] | length == (unique | length)' \
                <<<"$OUT"
        on 0 GET /api/v1/vms
        for i in $(jq -r '.[] | select(.name | startswith("'"$label"'-r")) | .name' <<<"$OUT"); do
                on $((RANDOM % k)) DELETE "/api/v1/vms/$i?wait=90"
                check "$label: $i deleted through any controller" 200 '.state == "succeeded"'
        done

        # ---- a controller killed inside a create: another takes the operation over
        local victim=$((k - 1)) op vpid
        kill -9 "${PIDS[$victim]}" 2>/dev/null
        wait "${PIDS[$victim]}" 2>/dev/null
        mkdir -p "$CL/ctl-$victim"
        GPUVIRT_FAILPOINTS=vm.create.defined=kill \
                "$GPUVIRTD" --role controller --state-dir "$CL/ctl-$victim" --store "$store" \
                --api-socket "$CL/ctl-$victim/api.sock" --host-down-after 3 </dev/null \
                >>"$CL/logs/ctl-$victim.log" 2>&1 &
        vpid=$!
        PIDS[$victim]=$vpid
        EXTRA_PIDS+=("$vpid")
        wait_for 20 ctl_up "$victim"
        body=$(jq -nc --arg n "$label-t" --argjson g "$VGPU" '{name: $n, memory_mib: 128, gpus: [$g]}')
        on "$victim" POST '/api/v1/vms?wait=0' "$body"
        op=$(jq -r '.id // empty' <<<"$OUT")
        check "$label: a create through controller $victim answered with its operation" 202 \
                '.kind == "vm.create" and .id != null'
        t1=$(date +%s)
        # (a ceiling, not a pace: under ASan with the machine busy the create took over 20 s
        # to reach its defined step)
        wait_for 60 gone "$vpid"
        ok "$label: controller $victim died inside the create (failpoint)" gone "$vpid"
        on 0 GET "/api/v1/operations/$op?wait=60"
        check "$label: another controller finished the operation" 200 \
                '.state == "succeeded" and .owner != null and .takeovers == 1'
        diag "$label: taken over and finished $(($(date +%s) - t1)) s after the kill (lease 3 s)"
        ok "$label: the VM runs" vm_state_on 0 "$label-t" running
        is "$(all_events 0 | jq -s --arg s "operation/$op" '[.[] | select(.type == "operation.takeover" and .subject == $s)] | length')" 1 \
                "$label: exactly one controller claimed it (one operation.takeover event)"

        # ---- the killed controller comes back (without the failpoint); then the leader dies:
        # another leads, and the host stays up (its poller reaches the agent)
        start_ctl "$victim" "$store"
        wait_for 20 ctl_up "$victim"
        local lead
        lead=$(leader_index)
        if [ -n "$lead" ]; then
                kill -9 "${PIDS[$lead]}" 2>/dev/null
                wait_for 10 gone "${PIDS[$lead]}"
                local alive=""
                for n in "${!SOCKS[@]}"; do gone "${PIDS[$n]}" || alive=$n; done
                if [ -n "$alive" ]; then
                        wait_for 20 one_leader
                        is "$(leaders)" 1 "$label: a new leader after the leader's SIGKILL"
                        sleep 5 # past host-down-after (3 s): only a poller keeps it up
                        ok "$label: the host is up through the new leader's poller" host_up_on "$alive"
                        on "$alive" DELETE "/api/v1/vms/$label-t?wait=60"
                        check "$label: the survivor deletes the VM" 200 '.state == "succeeded"'
                else
                        skip "$label: no controller left to lead"
                fi
        else
                _not_ok "$label: no controller says it leads"
        fi
        diag "$label: round took $(($(date +%s) - t0)) s"
        # the survivors stop cleanly (their exit's leak check, the leader lease handed back)
        for n in "${!PIDS[@]}"; do [ "$n" = 0 ] || kill -TERM "${PIDS[$n]}" 2>/dev/null; done
        for n in "${!PIDS[@]}"; do [ "$n" = 0 ] || wait_for 30 gone "${PIDS[$n]}"; done
        "$LAUNCH" stop "$CL" >/dev/null 2>&1
        no_sanitizer_reports
}

round sqlite 2

if [ ! -x "$PG_SERVER" ]; then
        skip "postgresql: tests/common/pg-server.sh is missing"
else
        PG_DIR=$(mktemp -d /tmp/pg-mc-XXXXXX)
        if url=$("$PG_SERVER" start "$PG_DIR" 2>"$TEST_TMP/pg.err"); then
                round pg 3 --store "$url"
        else
                rc=$?
                skip "postgresql: pg-server.sh could not start a server (rc $rc): $(tail -1 "$TEST_TMP/pg.err")"
        fi
fi
done_testing
