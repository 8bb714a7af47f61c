# SPDX-License-Identifier: MIT
# shellcheck shell=bash
# agent-lib.sh — helpers for the gpuvirtd TAP scripts (sourced after tests/integration/lib.sh
# and `new_host`): start/stop the agent on the simulated host $ROOT with its state in $STATE,
# call its API, check answers with jq.
#
#   start_agent [ARGS...]   gpuvirtd under `gpuvirt-sim exec`, waits until it answers;
#                           GV_AGENT_ACCEL (default tcg) and GV_AGENT_QEMU pick QEMU's side;
#                           GV_AGENT_QEMU_USER its user (default root: test-confine.sh runs
#                           QEMU as nobody, docs/qemu-confinement.md)
#   stop_agent              SIGTERM and wait
#   api METHOD PATH [BODY] [OPID]   $HTTP the status, $OUT the body
#   check NAME HTTP JQ      ok when the status is HTTP and the jq expression is true on $OUT
#   wait_vm NAME JQ SECS    polls GET /v1/vms/NAME until JQ holds (0) or SECS pass (1)
#   vf_types_set            VFs with a vGPU type set on the simulated host
#   running PID             the process exists and is not a zombie

: "${GPUVIRTD:?GPUVIRTD must name the gpuvirtd binary}"
command -v qemu-system-x86_64 >/dev/null || { echo "1..0 # SKIP qemu-system-x86_64 is not installed"; exit 0; }
command -v curl >/dev/null || { echo "1..0 # SKIP curl is not installed"; exit 0; }

STATE=$TEST_TMP/state
SOCK=$STATE/agent.sock
AGENT_PID=

start_agent() {
        local q=()
        # A confined QEMU must pass through the test's directory to its VM's (the agent checks).
        [ "${GV_AGENT_QEMU_USER:-root}" = root ] || chmod o+x "$TEST_TMP"
        [ -n "${GV_AGENT_QEMU:-}" ] && q=(--qemu "$GV_AGENT_QEMU")
        "$GPUVIRT_SIM" exec --root "$ROOT" -- "$GPUVIRTD" --role agent --state-dir "$STATE" \
                --accel "${GV_AGENT_ACCEL:-tcg}" --stop-timeout 2 "${q[@]}" \
                --qemu-user "${GV_AGENT_QEMU_USER:-root}" "$@" \
                >>"$TEST_TMP/agent.log" 2>&1 &
        AGENT_PID=$!
        for _ in $(seq 100); do
                curl -sf --unix-socket "$SOCK" http://agent/v1/host >/dev/null 2>&1 && return 0
                sleep 0.1
        done
        echo "Bail out! gpuvirtd did not come up: $(tail -5 "$TEST_TMP/agent.log")"
        exit 1
}
stop_agent() {
        [ -n "$AGENT_PID" ] && kill "$AGENT_PID" 2>/dev/null
        wait "$AGENT_PID" 2>/dev/null
        AGENT_PID=
}

api() {
        local args=(-s -o "$TEST_TMP/body" -w '%{http_code}' --unix-socket "$SOCK" -X "$1")
        [ -n "${3:-}" ] && args+=(--data-binary "$3")
        [ -n "${4:-}" ] && args+=(-H "Operation-Id: $4")
        HTTP=$(curl "${args[@]}" "http://agent$2")
        OUT=$(cat "$TEST_TMP/body")
        LAST_CMD="$1 $2"; RC=$HTTP; ERR=
}
check() {
        if [ "$HTTP" = "$2" ] && jq -e "$3" <<<"$OUT" >/dev/null 2>&1; then
                _ok "$1"
        else
                _not_ok "$1" "want HTTP $2 and $3"
        fi
}
wait_vm() {
        local deadline=$((SECONDS + $3))
        while [ $SECONDS -lt $deadline ]; do
                api GET "/v1/vms/$1"
                jq -e "$2" <<<"$OUT" >/dev/null 2>&1 && return 0
                sleep 0.1
        done
        return 1
}
# running PID: the process exists and is not a zombie (a QEMU whose agent died is reparented,
# and a sandbox's init may never reap it).
running() { [ -r "/proc/$1/stat" ] && [ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" != Z ]; }
qemu_pid() { jq -r '.pid // empty' "$STATE/vms/$1/state.json"; }
# vf_types_set: how many VFs of the simulated host carry a vGPU type (vendor-VFIO vGPUs alive).
vf_types_set() { grep -lvx 0 "$ROOT"/sys/bus/pci/devices/*/nvidia/current_vgpu_type 2>/dev/null | wc -l; }
