#!/bin/bash
# SPDX-License-Identifier: MIT
# GET /v1/metrics end to end on a simulated 8xH100 host with real QEMU (TCG): a vGPU VM, a
# MIG-backed vGPU VM and a pass-through VM run; the simulator's load is pinned
# (gpuvirt-sim load) so the sample must show exactly those figures, each for the right VM: the
# vGPU's utilization and framebuffer, the GPU instance's memory with its utilization "not
# reported by this GPU", the pass-through GPU "not visible to the host driver" (never zeros), a
# GPU's utilization, power and temperature; each QEMU's CPU and RSS.
. "$(dirname "$0")/../integration/lib.sh"
new_host dgx-h100 h
. "$(dirname "$0")/agent-lib.sh"
kill_vms() {
        local p
        for v in ma mm mp; do
                p=$(qemu_pid "$v" 2>/dev/null)
                [ -n "$p" ] && [ "$p" != 0 ] && kill -9 "$p" 2>/dev/null
        done
}
trap 'kill_vms; stop_agent; _cleanup' EXIT

# metrics_until JQ SECS: poll GET /v1/metrics until JQ holds on the sample (0) or SECS pass (1).
metrics_until() {
        local deadline=$((SECONDS + $2))
        while [ $SECONDS -lt $deadline ]; do
                api GET /v1/metrics
                [ "$HTTP" = 200 ] && jq -e "$1" <<<"$OUT" >/dev/null 2>&1 && return 0
                sleep 0.1
        done
        return 1
}
# check_metrics NAME JQ: ok when a sample within 5 s satisfies JQ (the sampler runs every 200 ms).
check_metrics() {
        if metrics_until "$2" 5; then _ok "$1"; else _not_ok "$1" "no sample had $2; last: $(head -c 2000 <<<"$OUT")"; fi
}

start_agent --sample-interval 200
api GET /v1/metrics
check "a sample at once: time, the interval asked for, host CPU and memory, 8 GPUs" 200 \
        '.timestamp_ms > 1600000000000 and .interval_ms == 200 and .host.cpu.cpus > 0 and .host.memory.total_mib > 0 and .host.memory.used_mib <= .host.memory.total_mib and (.gpus|length) == 8 and .vms == []'
check "every GPU: utilization 0-100, memory used within total, power within the board's 700 W, 30-85 C" 200 \
        'all(.gpus[]; .visible and .util_pct >= 0 and .util_pct <= 100 and .memory_used_mib <= .memory_total_mib and .power_mw > 0 and .power_mw <= 700000 and .temperature_c >= 30 and .temperature_c <= 85)'
SEQ=$(jq .seq <<<"$OUT")
check_metrics "the sampler keeps sampling (seq moves on)" ".seq > $SEQ"
check_metrics "host CPU % from two samples" '.host.cpu.util_pct >= 0 and .host.cpu.util_pct <= 100'

# ---- three VMs, one per GPU mode
api POST /v1/gpus/3/mode '{"mode":"mig"}' mode-mig
check "GPU 3 to MIG mode" 200 '.mode == "mig"'
define_start() { # NAME GPU-JSON
        api POST /v1/vms "{\"name\":\"$1\",\"memory_mib\":64,\"gpus\":[$2]}" "def-$1"
        api POST "/v1/vms/$1/start" '' "start-$1"
        check "VM $1 runs" 200 '.phase == "running"'
}
define_start ma '{"mode":"vgpu","type":"H100XM-20C","gpu":"0"}'
define_start mm '{"mode":"mig-vgpu","type":"H100XM-1-10C","gpu":"3"}'
define_start mp '{"mode":"passthrough","gpu":"1"}'
VF=$(jq -r '.hw[] | select(.kind=="vgpu") | .id' "$STATE/vms/ma/state.json")
GI=$(jq -r '.hw[] | select(.kind=="mig-gi") | .gi' "$STATE/vms/mm/state.json")
[ -n "$VF" ] && [ -n "$GI" ] && _ok "the vGPU's VF ($VF) and the GPU instance ($GI) are recorded" ||
        _not_ok "the vGPU's VF and the GPU instance are recorded" "VF '$VF', GI '$GI'"

# ---- pin the load
run "$GPUVIRT_SIM" load --root "$ROOT" --vgpu "$VF" --util 73 --memory-used 5000
assert_rc 0 "pin vGPU $VF: 73 % SM, 5000 MiB framebuffer"
run "$GPUVIRT_SIM" load --root "$ROOT" --gpu 0000:5d:00.0 --gi "$GI" --memory-used 1234
assert_rc 0 "pin GPU instance $GI of GPU 3: 1234 MiB"
run "$GPUVIRT_SIM" load --root "$ROOT" --gpu 0 --util 55 --power 321 --temperature 61
assert_rc 0 "pin GPU 0: 55 %, 321 W, 61 C"
run "$GPUVIRT_SIM" load --root "$ROOT" --gpu 3 --gi "$GI" --util 10
assert_rc 2 "a GPU instance's utilization cannot be pinned (it is not reported)"
run "$GPUVIRT_SIM" load --root "$ROOT" --gpu 0 --power 9999
assert_rc 2 "power beyond the board's limit is refused"

# ---- the sample shows the pins, each for the right VM
VMA='.vms[] | select(.vm == "ma")'
VMM='.vms[] | select(.vm == "mm")'
VMP='.vms[] | select(.vm == "mp")'
check_metrics "vGPU VM: its vGPU at the pinned 73 % and 5000 of 20480 MiB" \
        "[$VMA | .gpus[]] == [$VMA | .gpus[] | select(.mode == \"vgpu\" and .id == \"$VF\" and .util_pct == 73 and .memory_util_pct == 44 and .memory_used_mib == 5000 and .memory_total_mib == 20480)] and ([$VMA | .gpus[]] | length) == 1"
check_metrics "MIG VM: its GPU instance's pinned 1234 MiB, utilization not reported (null, said so)" \
        "[$VMM | .gpus[] | select(.mode == \"mig-vgpu\" and .gi == $GI and .gpu == \"0000:5d:00.0\" and .memory_used_mib == 1234 and .memory_total_mib > 1234 and .util_pct == null and .util == \"not reported by this GPU\")] | length == 1"
check_metrics "pass-through VM: the GPU is not visible to the host driver (no zeros)" \
        "[$VMP | .gpus[] | select(.mode == \"passthrough\" and .gpu == \"0000:2a:00.0\" and (.visibility | test(\"not visible to the host driver\")) and .util_pct == null and .memory_used_mib == null)] | length == 1"
check_metrics "GPU list: GPU 0 at its pinned 55 %, 321 W, 61 C, its vGPU attributed to ma" \
        ".gpus[0] | .util_pct == 55 and .power_mw == 321000 and .temperature_c == 61 and .memory_util_pct == 33 and ([.vgpus[] | select(.vm == \"ma\" and .parent == \"$VF\" and .util_pct == 73)] | length) == 1"
check_metrics "GPU list: the pass-through GPU is invisible, every value null" \
        '.gpus[1] | (.visible | not) and .visibility == "passthrough: not visible to the host driver" and .util_pct == null and .power_mw == null and .temperature_c == null and .memory_used_mib == null'
check_metrics "GPU list: GPU 3's instance attributed to mm, its memory from the MIG-backed vGPU" \
        "[.gpus[3].mig[] | select(.gi == $GI and .vm == \"mm\" and .memory_used_mib == 1234 and .memory_source == \"vgpu-framebuffer\" and .util == \"not reported by this GPU\")] | length == 1"
check_metrics "other GPUs keep the load model (not pinned, not zero)" \
        '.gpus[2].util_pct > 0 and .gpus[2].power_mw > 0'
check_metrics "every running VM: QEMU's CPU (seconds > 0, a % of one core), its vCPU thread found, RSS > 0" \
        '[.vms[] | select(.phase == "running" and .pid > 0 and .cpu.seconds > 0 and (.cpu.util_pct | type) == "number" and (.cpu.vcpu_util_pct | type) == "number" and .cpu.vcpu_threads == 1 and .cpu.threads > 1 and .cpu.vcpus == 1 and .memory.rss_mib > 0 and .memory.configured_mib == 64 and (.memory | has("balloon_mib") | not))] | length == 3'

# ---- unpinned, the model's own figures come back
run "$GPUVIRT_SIM" load --root "$ROOT" --vgpu "$VF" --clear
assert_rc 0 "unpin the vGPU"
check_metrics "the vGPU follows the load model again (10-95 % SM)" \
        "[$VMA | .gpus[] | select(.util_pct >= 10 and .util_pct <= 95 and .util_pct != 73)] | length == 1"

# ---- a stopped VM has no QEMU figures, and no GPU left
api POST /v1/vms/mp/stop '{"timeout_s":1}' stop-mp
check "pass-through VM stopped" 200 '.phase == "stopped"'
check_metrics "stopped VM: pid and CPU null, no GPU; its GPU visible again to the host driver" \
        "([$VMP | select(.pid == null and .cpu.util_pct == null and .memory.rss_mib == null and .gpus == [])] | length) == 1 and .gpus[1].visible"

kill_vms
stop_agent
# After the agent's exit, where a leak report (ASan builds) would be written.
grep -qE "ERROR: (Address|Leak)Sanitizer|runtime error:" "$TEST_TMP/agent.log" &&
        _not_ok "no sanitizer report from the agent" "$(grep -m3 -E 'Sanitizer|runtime error' "$TEST_TMP/agent.log")" ||
        _ok "no sanitizer report from the agent"
done_testing
