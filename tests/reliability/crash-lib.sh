# SPDX-License-Identifier: MIT
# shellcheck shell=bash
# crash-lib.sh — helpers of the crash harnesses (test-crash-steps.sh, test-crash-random.sh;
# docs/reliability.md "Crash consistency"), sourced after tests/controller/cluster-lib.sh.
#
#   crash_points              every failpoint name in src/ (GV_FAILPOINT("...")), one a line
#   daemon_of POINT           controller or node-a (agent.* points are the agents')
#   daemon_pid NAME           the pid cluster.env records for the controller or a host's agent
#   arm NAME SPEC             restart NAME with GPUVIRT_FAILPOINTS=SPEC (empty: none)
#   died NAME SECONDS         0 once NAME's recorded pid is gone (waits up to SECONDS)
#   ops_settled SECONDS       0 once every operation of the controller is done
#   hist OP VM                append the last capi call's outcome to $HISTORY (JSON lines)
#   invariants [ARGS]         invariants.py on $CL with $HISTORY; $INV_OUT its output

RELIABILITY_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SRC_DIR=$(cd "$RELIABILITY_DIR/../../src" && pwd)
HISTORY=${HISTORY:-$TEST_TMP/history.jsonl}

crash_points() {
        grep -rhoE 'GV_FAILPOINT\(.*' "$SRC_DIR" | grep -oE '"[a-z_]+(\.[a-z_]+)+"' | tr -d '"' |
                sort -u
}
daemon_of() { case $1 in agent.*) echo node-a ;; *) echo controller ;; esac; }
daemon_pid() {
        env_reload
        if [ "$1" = controller ]; then echo "${CONTROLLER_PID:-}"; else host_var "$1" PID; fi
}
arm() {
        GPUVIRT_FAILPOINTS=$2 "$LAUNCH" restart "$CL" "$1" >>"$TEST_TMP/launch.log" 2>&1
        local rc=$?
        env_reload
        return $rc
}
pid_alive() { [ -n "$1" ] && [ -r "/proc/$1/stat" ] && [ "$(awk '{print $3}' "/proc/$1/stat")" != Z ]; }
died() {
        local pid deadline=$((SECONDS + $2))
        pid=$(daemon_pid "$1")
        while pid_alive "$pid"; do
                [ $SECONDS -lt $deadline ] || return 1
                sleep 0.1
        done
}
ops_settled_now() {
        capi GET /api/v1/operations
        [ "$HTTP" = 200 ] && jq -e 'all(.[]; .state == "succeeded" or .state == "failed")' <<<"$OUT" >/dev/null
}
ops_settled() { wait_for "$1" ops_settled_now; }
# hist OP VM [TO]: the last capi call (an operation waited for) as a history line
hist() {
        local state
        state=$(jq -r '.state // empty' <<<"$OUT" 2>/dev/null)
        jq -nc --arg op "$1" --arg vm "$2" --arg to "${3:-}" --argjson st "${HTTP:-0}" \
                --arg state "$state" --argjson t "$(date +%s.%N)" \
                '{t: $t, op: $op, vm: $vm, status: $st, state: (if $state == "" then null else $state end)} + (if $to != "" then {to: $to} else {} end)' \
                >>"$HISTORY"
}
invariants() {
        INV_OUT=$(python3 "$RELIABILITY_DIR/invariants.py" --cluster "$CL" --history "$HISTORY" "$@" 2>&1)
}
