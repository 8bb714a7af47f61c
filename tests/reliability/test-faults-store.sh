#!/bin/bash
# SPDX-License-Identifier: MIT
# reliability.md R12/F7 on SQLite: the store unavailable for 30 s. Another process holds the
# store's write lock (sqlite3: BEGIN EXCLUSIVE, kept open 30 s) while the cluster runs a VM:
#   - the running VM is untouched (same QEMU pid, still running);
#   - API mutations answer 503 with Retry-After and a message saying the store cannot take
#     writes, within the store's busy timeout (10 s) plus slack, never hanging;
#   - reads keep working (WAL: readers do not wait for the writer);
#   - after the lock goes, the refused writes never appear (the refused create has no record,
#     the refused delete did not delete) and new writes succeed.
# (The PostgreSQL server stopped is the other half of R12: test-multi-controller/partition.)
. "$(dirname "$0")/../integration/lib.sh"
. "$(dirname "$0")/../controller/cluster-lib.sh"
command -v sqlite3 >/dev/null || { echo "1..0 # SKIP sqlite3 (the CLI that holds the lock) is not installed"; exit 0; }
LOCKER=
stop_locker() { [ -z "$LOCKER" ] || kill "$LOCKER" 2>/dev/null; }
CLUSTER_EXIT_HOOK=stop_locker
cluster_init fs
T0=$SECONDS
cluster_start --hosts 2 --profiles dgx-h100 --accel tcg
DB=$CL/controller/gpuvirt.db
[ -f "$DB" ] || { echo "Bail out! no SQLite store at $DB"; exit 1; }

create v1 '{"kind": "vgpu", "type": "H100XM-20C"}'
check "a running VM before the fault" 200 '.state == "succeeded"'
HOST=$(jqo .result.placement.host)
aapi "$HOST" /v1/vms/v1
PID=$(jqo .pid)
[ -n "$PID" ] && [ "$PID" != null ] || _not_ok "v1 has a QEMU pid" "$OUT"

# the lock: BEGIN EXCLUSIVE and a write, kept open for 30 s, then rolled back
HOLD=30
( echo "BEGIN EXCLUSIVE;"; echo "SELECT 'locked';"; sleep "$HOLD"; echo "ROLLBACK;" ) |
        sqlite3 "$DB" >"$TEST_TMP/locker.out" 2>&1 &
LOCKER=$!
LOCK_T0=$SECONDS
wait_for 10 grep -q locked "$TEST_TMP/locker.out"
if sqlite3 -cmd ".timeout 200" "$DB" "BEGIN IMMEDIATE; ROLLBACK;" >/dev/null 2>&1; then
        _not_ok "the store's write lock is held by another process"
else
        _ok "the store's write lock is held by another process"
fi

# capi_h METHOD PATH [BODY]: capi, with the answer's headers in $HDRS and its time in $TOOK
capi_h() {
        local t=$SECONDS args=(-s -D "$TEST_TMP/hdrs" -o "$TEST_TMP/body" -w '%{http_code}' --max-time 60 --unix-socket "$SOCK" -X "$1")
        [ -n "${3:-}" ] && args+=(-H 'Content-Type: application/json' --data-binary "$3")
        HTTP=$(curl "${args[@]}" "http://controller$2")
        OUT=$(cat "$TEST_TMP/body" 2>/dev/null)
        HDRS=$(cat "$TEST_TMP/hdrs" 2>/dev/null)
        TOOK=$((SECONDS - t))
        LAST_CMD="$1 $2 ${3:-}"; RC=$HTTP; ERR=
}
# The bound: the store's busy timeout (10 s) for each writer queued on its one connection
# before this request (the poller, the operation runner): 35 s; later ones are refused at once
# (the controller's breaker).
refused() { # LABEL: 503, Retry-After, a message about the store, within 35 s
        if [ "$HTTP" = 503 ] && grep -qi '^retry-after:' <<<"$HDRS" &&
                jq -e '.detail | test("store") and test("retry|Retry")' <<<"$OUT" >/dev/null 2>&1 &&
                [ "$TOOK" -le 35 ]; then
                _ok "$1: 503 with Retry-After in ${TOOK}s: $(jqo .detail | head -c 160)"
        else
                _not_ok "$1: 503 with Retry-After and a message about the store, within 35 s" "HTTP $HTTP in ${TOOK}s; headers: $HDRS"
        fi
}
capi_h POST /api/v1/vms '{"name": "v2", "memory_mib": 128, "gpus": [{"kind": "vgpu", "type": "H100XM-20C"}]}'
refused "store locked: a VM create"
capi_h DELETE /api/v1/vms/v1
refused "store locked: a VM delete"
capi_h POST /api/v1/vms/v1/stop
refused "store locked: a VM stop"
if [ $((SECONDS - LOCK_T0)) -lt "$HOLD" ]; then
        _ok "the refusals came while the lock was still held ($((SECONDS - LOCK_T0)) s of $HOLD)"
else
        _not_ok "the refusals came while the lock was still held ($((SECONDS - LOCK_T0)) s of $HOLD)"
fi
capi_h GET /api/v1/vms
check "store locked: reads are answered: the VM list shows v1 running" 200 'any(.[]; .name == "v1" and .state == "running")'
# The SQLite backend reads through a connection of its own (store-sqlite.c): a read never waits
# behind a write that waits out the busy timeout (10 s), so it comes back well within 5 s.
if [ "$TOOK" -le 5 ]; then
        _ok "store locked: ... within 5 s (${TOOK}s), not behind the waiting writes"
else
        _not_ok "store locked: ... within 5 s, not behind the waiting writes" "took ${TOOK}s, HTTP $HTTP"
fi
if kill -0 "$PID" 2>/dev/null; then _ok "store locked: v1's QEMU ($PID) runs"; else _not_ok "store locked: v1's QEMU ($PID) runs"; fi

wait "$LOCKER"
LOCKER=
echo "# lock released after $((SECONDS - LOCK_T0)) s"
sleep 3 # a poll or two: anything queued would apply now
aapi "$HOST" /v1/vms/v1
check "after: v1 runs on its agent with the same QEMU" 200 ".phase == \"running\" and .pid == $PID"
capi GET /api/v1/vms/v1
check "after: the refused delete and stop never happened (v1 running)" 200 '.state == "running"'
capi GET /api/v1/vms/v2
check "after: the refused create never appears (no v2)" 404 '.status == 404'
aapi node-a /v1/vms
a=$OUT
aapi node-b /v1/vms
if jq -s -e 'add | all(.[]; .name != "v2")' <<<"$a$OUT" >/dev/null; then
        _ok "after: no agent has a v2"
else
        _not_ok "after: no agent has a v2" "$a $OUT"
fi
create v3 '{"kind": "vgpu", "type": "H100XM-20C"}'
check "after: a new create succeeds" 200 '.state == "succeeded"'
capi DELETE '/api/v1/vms/v3?wait=60'
check "after: ... and its delete" 200 '.state == "succeeded"'
leak_check "after"
"$LAUNCH" stop "$CL" >/dev/null 2>&1 # the daemons exit: LeakSanitizer reports then
no_sanitizer_reports
echo "# total: $((SECONDS - T0)) s"
done_testing
