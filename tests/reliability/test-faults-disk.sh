#!/bin/bash
# SPDX-License-Identifier: MIT
# reliability.md R5/F10: the disk full. libvirt killed running guests when it could not write
# its status files on a full runtime file system [S3]; SQLite reports SQLITE_FULL [S64]. Here
# the controller's store directory and node-a's agent state directory are small tmpfs mounts,
# filled up while a VM runs on node-a:
#   - no running VM is killed (same QEMU pids, before, during and after);
#   - mutations are refused with a clear error: 507 from the controller naming the full
#     directory and saying to free space; an agent that cannot write its state fails the
#     operation with a message naming its directory;
#   - reads are still answered (controller and agent);
#   - once the space returns everything works again and nothing acknowledged was lost.
# Root only (mount -t tmpfs); otherwise a skip saying so.
. "$(dirname "$0")/../integration/lib.sh"
. "$(dirname "$0")/../controller/cluster-lib.sh"
if [ "$(id -u)" != 0 ]; then
        echo "1..0 # SKIP needs root to mount the small tmpfs file systems it fills (mount -t tmpfs)"
        exit 0
fi
MOUNTS=()
unmount_all() { local m; for m in "${MOUNTS[@]}"; do umount -l "$m" 2>/dev/null; done; MOUNTS=(); }
CLUSTER_EXIT_HOOK=unmount_all
cluster_init fd
T0=$SECONDS
CTL_DIR=$CL/controller
AGENT_DIR=$CL/host1-state # node-a
mkdir -p "$CTL_DIR" "$AGENT_DIR"
for m in "$CTL_DIR" "$AGENT_DIR"; do
        if ! mount -t tmpfs -o size=64m,mode=0755 gv-faults-disk "$m"; then
                echo "1..0 # SKIP mount -t tmpfs failed here (a container without the right to mount?)"
                exit 0
        fi
        MOUNTS+=("$m")
done
cluster_start --hosts 2 --profiles dgx-h100 --accel tcg

create v1 '{"kind": "vgpu", "type": "H100XM-20C"}' node-a
check "before: v1 runs on node-a" 200 '.state == "succeeded"'
create v2 '{"kind": "vgpu", "type": "H100XM-20C"}' node-b
check "before: v2 runs on node-b" 200 '.state == "succeeded"'
pid_of() { aapi "$1" "/v1/vms/$2"; jqo '.pid // empty'; }
PID1=$(pid_of node-a v1)
PID2=$(pid_of node-b v2)

fill() { # DIR: fill the file system until writes fail
        dd if=/dev/zero of="$1/fill" bs=1M status=none 2>/dev/null
        dd if=/dev/zero of="$1/fill-tail" bs=4k status=none 2>/dev/null
        sync
}
fill "$CTL_DIR"
fill "$AGENT_DIR"
if ! ( : >"$CTL_DIR/probe" ) 2>/dev/null || ! head -c 4096 /dev/zero >"$CTL_DIR/probe" 2>/dev/null; then
        _ok "the store's directory is full ($(df -h --output=avail "$CTL_DIR" | tail -1 | tr -d ' ') left)"
else
        _not_ok "the store's directory is full"
fi
rm -f "$CTL_DIR/probe"

# controller: a create needs the store
capi POST /api/v1/vms '{"name": "v3", "memory_mib": 128, "gpus": [{"kind": "vgpu", "type": "H100XM-20C"}]}'
check "store full: a create is refused with 507 naming the directory and saying to free space" 507 \
        ".detail | contains(\"$CTL_DIR\") and contains(\"free space\")"
diag "refusal: $(jqo .detail | head -c 300)"
capi GET /api/v1/vms
check "store full: reads are answered (v1 and v2 running)" 200 \
        '([.[] | select(.state == "running") | .name] | sort) == ["v1", "v2"]'
capi GET /api/v1/hosts
check "store full: the host list is answered" 200 'length == 2'
sleep 6 # a few poll and reconcile ticks on full disks
assert_eq "$(pid_of node-a v1) $(pid_of node-b v2)" "$PID1 $PID2" "store and agent state full: no QEMU restarted (same pids)"
if kill -0 "$PID1" 2>/dev/null && kill -0 "$PID2" 2>/dev/null; then
        _ok "store and agent state full: both QEMUs run"
else
        _not_ok "store and agent state full: both QEMUs run"
fi
aapi node-a /v1/vms
check "agent state full: the agent's reads are answered" 200 'any(.[]; .name == "v1" and .phase == "running")'

# the store gets its space back, node-a's agent not yet: an operation on node-a must say why
rm -f "$CTL_DIR/fill" "$CTL_DIR/fill-tail"
sleep 6 # the controller's breaker (5 s after a refused write)
create v3 '{"kind": "vgpu", "type": "H100XM-20C"}' node-a
if [ "$(jqo .state)" = failed ] && jqo '.error | tostring' | grep -q "$AGENT_DIR" &&
        jqo '.error | tostring' | grep -qi "free space"; then
        _ok "agent state full: a create on node-a fails naming the agent's directory and saying to free space"
else
        _not_ok "agent state full: a create on node-a fails naming the agent's directory and saying to free space" "$(jqo '.error // .detail' | head -c 400)"
fi
capi POST '/api/v1/vms/v1/stop?wait=60'
if [ "$(jqo .state)" = failed ] && jqo '.error | tostring' | grep -q "$AGENT_DIR"; then
        _ok "agent state full: a stop of v1 fails naming the agent's directory"
else
        _not_ok "agent state full: a stop of v1 fails naming the agent's directory" "$(jqo '.error // .detail' | head -c 400)"
fi
aapi node-a /v1/vms
check "agent state full: v1 still runs on node-a" 200 'any(.[]; .name == "v1" and .phase == "running")'
assert_eq "$(pid_of node-a v1)" "$PID1" "agent state full: ... with the same QEMU"

rm -f "$AGENT_DIR/fill" "$AGENT_DIR/fill-tail"
sleep 2
capi DELETE '/api/v1/vms/v3?wait=60' # the failed create's record
capi GET /api/v1/vms/v1
check "space back: v1 is recorded running (the refused stop never happened)" 200 '.state == "running"'
create v3 '{"kind": "vgpu", "type": "H100XM-20C"}' node-a
check "space back: a create on node-a succeeds" 200 '.state == "succeeded"'
capi POST '/api/v1/vms/v2/stop?wait=60'
check "space back: a stop succeeds" 200 '.state == "succeeded"'
capi POST '/api/v1/vms/v2/start?wait=60'
check "space back: a start succeeds" 200 '.state == "succeeded"'
capi GET /api/v1/vms
check "space back: every acknowledged VM is there (v1, v2, v3 running)" 200 \
        '([.[] | select(.state == "running") | .name] | sort) == ["v1", "v2", "v3"]'
assert_eq "$(pid_of node-a v1)" "$PID1" "space back: v1's QEMU is the one from before"
# the controller restarted reads everything back from its store
"$LAUNCH" restart "$CL" controller >"$TEST_TMP/restart.log" 2>&1 || diag "$(cat "$TEST_TMP/restart.log")"
env_reload
wait_for 30 host_state_is node-a up
capi GET /api/v1/vms
check "after a controller restart: v1, v2, v3 still recorded" 200 '([.[].name] | sort) == ["v1", "v2", "v3"]'
for v in v1 v2 v3; do capi DELETE "/api/v1/vms/$v?wait=60"; done
leak_check "end"
"$LAUNCH" stop "$CL" >/dev/null 2>&1 # the daemons exit: LeakSanitizer reports then
no_sanitizer_reports
echo "# total: $((SECONDS - T0)) s"
done_testing
