#!/bin/bash
# SPDX-License-Identifier: MIT
# Live migration between two agents: two simulated 8xH100 hosts (A and B), each agent under its
# own `gpuvirt-sim exec` with its own state directory, real QEMU (TCG) on both, the state over
# loopback TCP. Checked through the agents' APIs, as the controller drives them:
#   - a VM with a vGPU moves from A to B: incoming on B (the vGPU made there, QEMU waiting with
#     -incoming defer), migrate on A, progress polled to completed; B runs it (same UUID), A
#     holds it paused as `migrated` (not crashed, hardware kept) until release, which lets go of
#     A's QEMU and vGPU and forgets the VM;
#   - a pass-through VM is refused (409, naming the GPU, saying to move it offline);
#   - cancel mid-transfer (a 1 MiB/s cap on a 2 GiB VM): A keeps running, B's copy ends and
#     abort-incoming releases its vGPU;
#   - B's QEMU killed mid-transfer: A keeps running (the transfer `failed`), nothing is left on
#     B after abort-incoming;
#   - a cancel after the transfer completed resumes A, and abort-incoming takes B's copy away;
#   - B's agent killed during an incoming migration: restarted, it kills that QEMU and releases
#     the hardware;
#   - bad input on every endpoint;
#   - disks move too: a VM with an overlay on an image, an empty data disk (both with data
#     written before the start) and a disk on shared storage (--shared-storage on A, the
#     configuration file's key on B) moves: B exports the two it must receive over NBD, A
#     mirrors them and reports the copy's progress, and after the move B's files hold A's data
#     (qemu-img compare) while the shared disk is the same file on both; missing images,
#     writable disks outside shared storage and a migrate without the destination's export
#     are refused; a cancel during the disk copy, and B's QEMU killed during it, leave A running
#     with its disk intact and nothing on B after abort-incoming;
#   - with GUESTDIR (tests/guest/make-guest.sh builds it there; skipped, saying why, where it
#     cannot be built): a busybox guest booted on A, its counter running, answers on B's
#     console after the move and its counter goes on from where it was on A,
#     without having booted again there.
# Usage: test-migrate-agent.sh [GUESTDIR]
. "$(dirname "$0")/../integration/lib.sh"
GUEST=${1:-}
new_host dgx-h100 a
ROOT_A=$ROOT
new_host dgx-h100 b
ROOT_B=$ROOT
. "$(dirname "$0")/agent-lib.sh"
STATE_A=$TEST_TMP/state-a
STATE_B=$TEST_TMP/state-b
PID_A=
PID_B=
stop_both() {
        for p in $PID_A $PID_B; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
        PID_A=''
        PID_B=''
}
trap 'stop_both; pkill -9 -f "guest=m[vptckrg]," 2>/dev/null; _cleanup' EXIT

# on a|b: the agent the next calls (api, wait_vm, vf_types_set, qemu_pid) talk to.
# shellcheck disable=SC2034 # SOCK is agent-lib.sh's
on() {
        case $1 in
        a) ROOT=$ROOT_A STATE=$STATE_A ;;
        b) ROOT=$ROOT_B STATE=$STATE_B ;;
        esac
        SOCK=$STATE/agent.sock
}
# Both agents see $SHARED (A by the option, B by its configuration file, one directory a line).
SHARED=$TEST_TMP/shared
mkdir -p "$SHARED" "$TEST_TMP/shared2" "$TEST_TMP/images"
printf 'shared-storage = %s\nshared-storage = %s\n' "$TEST_TMP/shared2" "$SHARED" >"$TEST_TMP/b.conf"
start_on() {
        on "$1"
        AGENT_PID=
        case $1 in
        a) start_agent --shared-storage "$SHARED" ;;
        b) start_agent --config "$TEST_TMP/b.conf" ;;
        esac
        case $1 in a) PID_A=$AGENT_PID ;; b) PID_B=$AGENT_PID ;; esac
}
# wait_migration STATUS_REGEX SECS: polls GET .../migration on the current agent.
wait_migration() {
        local deadline=$((SECONDS + $3))
        while [ $SECONDS -lt $deadline ]; do
                api GET "/v1/vms/$1/migration"
                jq -e ".status | test(\"$2\")" <<<"$OUT" >/dev/null 2>&1 && return 0
                sleep 0.1
        done
        return 1
}
gone() { ! running "$1"; }
wait_gone() {
        for _ in $(seq 50); do gone "$1" && return 0; sleep 0.1; done
        return 1
}
definition() { on a; api GET "/v1/vms/$1"; jq -c .config <<<"$OUT"; }

start_on a
start_on b
VF_A0=$(on a; vf_types_set)
VF_B0=$(on b; vf_types_set)

# ---- bad input, on every endpoint (nothing is made by any of it)
on b
api POST /v1/vms/mv/incoming '[1]' bi1
check "incoming: a body that is not an object" 400 '.detail | test("JSON object")'
api POST /v1/vms/mv/incoming '{"listen":"127.0.0.1:0"}' bi2
check "incoming: no definition" 400 '.detail | test("definition")'
api POST /v1/vms/mv/incoming '{"definition":{"name":"mv","uuid":"3f2504e0-4f89-11d3-9a0c-0305e82c3301"},"listen":"127.0.0.1"}' bi3
check "incoming: a listen address without a port" 400 '.detail | test("no port")'
api POST /v1/vms/mv/incoming '{"definition":{"name":"mv","uuid":"3f2504e0-4f89-11d3-9a0c-0305e82c3301"},"listen":"127.0.0.1:99999"}' bi4
check "incoming: a port out of range" 400 '.detail | test("0 to 65535")'
api POST /v1/vms/mv/incoming '{"definition":{"name":"other","uuid":"3f2504e0-4f89-11d3-9a0c-0305e82c3301"},"listen":"127.0.0.1:0"}' bi5
check "incoming: a definition of another VM" 400 '.detail | test("names VM .other., not .mv.")'
api POST /v1/vms/mv/incoming '{"definition":{"name":"mv"},"listen":"127.0.0.1:0"}' bi6
check "incoming: the UUID is required" 400 '.detail | test("uuid is required")'
api POST /v1/vms/mv/incoming '{"definition":{"name":"mv","uuid":"3f2504e0-4f89-11d3-9a0c-0305e82c3301"},"listen":"127.0.0.1:0","live":true}' bi7
check "incoming: an unknown member, the valid ones listed" 400 '.detail | test("live") and test("definition, listen")'
api POST /v1/vms/mp/incoming '{"definition":{"name":"mp","uuid":"3f2504e0-4f89-11d3-9a0c-0305e82c3302","gpus":[{"mode":"passthrough","gpu":"1"}]},"listen":"127.0.0.1:0"}' bi8
check "incoming: a pass-through VM is refused, saying to move it offline" 409 '.detail | test("pass-through") and test("offline")'
api POST /v1/vms/mp/incoming "{\"definition\":{\"name\":\"mp\",\"uuid\":\"3f2504e0-4f89-11d3-9a0c-0305e82c3302\",\"disks\":[{\"name\":\"root\",\"base\":\"$TEST_TMP/images/nowhere.qcow2\"}]},\"listen\":\"127.0.0.1:0\"}" bi9
check "incoming: an overlay on an image this host lacks: 409 naming image and host" 409 ".detail | test(\"nowhere.qcow2\") and test(\"not on host .$(hostname).\")"
api POST /v1/vms/mp/incoming "{\"definition\":{\"name\":\"mp\",\"uuid\":\"3f2504e0-4f89-11d3-9a0c-0305e82c3302\",\"disks\":[{\"name\":\"vol\",\"path\":\"$TEST_TMP/images/private.qcow2\"}]},\"listen\":\"127.0.0.1:0\"}" bi10
check "incoming: a writable disk outside shared storage: 409 naming the directories" 409 '.detail | test("disk .vol.") and test("shared-storage") and test("shared2")'
api GET /v1/vms
check "... none of it defined a VM on B" 200 'length == 0'
on a
api POST /v1/vms/nope/migrate '{"uri":"tcp:127.0.0.1:4444"}' ba1
check "migrate: an unknown VM" 404 '.detail | test("nope")'
api POST /v1/vms/nope/migrate '{"uri":"exec:cat >/tmp/x"}' ba2
check "migrate: only tcp: URIs" 400 '.detail | test("only .tcp:HOST:PORT.")'
api POST /v1/vms/nope/migrate '{}' ba3
check "migrate: the URI is required" 400 '.detail | test("uri")'
api POST /v1/vms/nope/migrate '{"uri":"tcp:127.0.0.1:4444","downtime_ms":0}' ba4
check "migrate: downtime out of range" 400 '.detail | test("downtime_ms") and test("2000000")'
api POST /v1/vms/nope/migrate '{"uri":"tcp:127.0.0.1:4444","max_bandwidth_mib":0}' ba5
check "migrate: bandwidth out of range" 400 '.detail | test("max_bandwidth_mib")'
api POST /v1/vms/nope/migrate '{"uri":"tcp:127.0.0.1:4444","postcopy":true}' ba6
check "migrate: post-copy refused, saying why" 422 '.detail | test("Post-copy") and test("VFIO")'
api POST /v1/vms/nope/migrate '{"uri":"tcp:127.0.0.1:4444","speed":5}' ba7
check "migrate: an unknown member" 400 '.detail | test("speed")'
api GET /v1/vms/nope/migration
check "migration: an unknown VM" 404 '.detail | test("nope")'
api POST /v1/vms/nope/migrate-cancel '{"now":1}' ba8
check "migrate-cancel: an unknown member is named, with the valid one" 400 '.detail | test("now") and test("resume")'
api POST /v1/vms/nope/release '{"force":"yes"}' ba9
check "release: force must be a boolean" 400 '.detail | test("force")'
api POST /v1/vms/nope/abort-incoming '' ba10
check "abort-incoming: an unknown VM" 404 '.detail | test("nope")'
api POST /v1/vms/mv/migrate '{"uri":"tcp:127.0.0.1:4444"}'
check "migrate needs an Operation-Id like every change" 400 '.type | endswith("operation-id-required")'

# ---- a vGPU VM moves from A to B
api POST /v1/vms '{"name":"mv","memory_mib":128,"gpus":[{"mode":"vgpu","type":"H100XM-20C"}]}' mv-def
check "define mv on A" 201 '.phase == "defined"'
api GET /v1/vms/mv/migration
check "migration of a VM without QEMU: 404" 404 '.detail | test("no migration")'
api POST /v1/vms/mv/start '' mv-start
check "start mv on A" 200 '.phase == "running"'
UUID=$(jq -r .uuid <<<"$OUT")
MV_A=$(qemu_pid mv)
assert_eq "$(vf_types_set)" $((VF_A0 + 1)) "A made mv's vGPU"
api GET /v1/vms/mv/migration
check "a VM that never migrated: 404" 404 '.detail | test("not migrated")'
api POST /v1/vms/mv/release '' mv-rel0
check "release of a VM that did not migrate: refused" 409 '.detail | test("running") and test("completed migration")'
api POST /v1/vms/mv/abort-incoming '' mv-ab0
check "abort-incoming of a VM that did not come by migration: refused" 409 '.detail | test("did not come here")'
api POST /v1/vms/mv/migrate-cancel '' mv-c0
check "cancel with no migration: nothing to cancel, still running" 404 '.status == 404'

DEF=$(definition mv)
on b
api POST /v1/vms/mv/incoming "{\"definition\":$DEF,\"listen\":\"127.0.0.1:0\"}" mv-in
check "incoming on B: a URI with the port QEMU bound" 200 '.phase == "incoming" and (.uri | test("^tcp:127\\.0\\.0\\.1:[1-9][0-9]*$"))'
URI=$(jq -r .uri <<<"$OUT")
api POST /v1/vms/mv/incoming "{\"definition\":$DEF,\"listen\":\"127.0.0.1:0\"}" mv-in2
check "incoming asked again (a new operation): the same URI, nothing made twice" 200 ".uri == \"$URI\""
assert_eq "$(vf_types_set)" $((VF_B0 + 1)) "B made the vGPU for the incoming VM"
MV_B=$(qemu_pid mv)
grep -qx -- '-incoming' <(tr '\0' '\n' <"/proc/$MV_B/cmdline") && grep -qx defer <(tr '\0' '\n' <"/proc/$MV_B/cmdline") &&
        _ok "B's QEMU waits with -incoming defer" || _not_ok "B's QEMU waits with -incoming defer"
api GET /v1/vms/mv
check "B's VM: incoming, the source's UUID" 200 ".phase == \"incoming\" and .uuid == \"$UUID\" and .incoming"
api POST /v1/vms/mv/migrate-cancel '' mv-cb
check "cancel on the destination: refused, saying where" 409 '.detail | test("on the source")'

on a
api POST /v1/vms/mv/migrate "{\"uri\":\"$URI\",\"downtime_ms\":500,\"max_bandwidth_mib\":512}" mv-mig
check "migrate on A: started, with the limits set" 200 '(.phase == "migrating" or .phase == "migrated") and .downtime_limit_ms == 500 and .max_bandwidth_mib == 512 and .role == "source"'
api POST /v1/vms/mv/migrate "{\"uri\":\"$URI\"}" mv-mig2
check "a second migrate while one runs or ran: refused" 409 '.detail | test("already")'
wait_migration mv '^completed$' 60 && _ok "progress polled to completed" || _not_ok "progress polled to completed" "$OUT"
check "the progress reports RAM moved, times, no error" 200 '.ram_total > 0 and .ram_transferred > 0 and .ram_remaining == 0 and .downtime_ms != null and .total_time_ms != null and .error == null'
wait_vm mv '.phase == "migrated"' 10
check "A's VM is migrated (not crashed), QEMU paused, hardware still held" 200 ".phase == \"migrated\" and .pid == $MV_A and (.hw|length) == 1"
assert_eq "$(vf_types_set)" $((VF_A0 + 1)) "A still holds the vGPU until release"
api POST /v1/reconcile '' rc-a1
check "a reconcile pass on A neither crashes nor releases the migrated VM" 200 '(.crashed | index("mv")) == null and (.released | index("mv")) == null'
api GET /v1/vms/mv
check "... it is still migrated" 200 '.phase == "migrated" and (.hw|length) == 1'
api POST /v1/vms/mv/start '' mv-start2
check "start of a migrated VM: refused, saying what to do" 409 '.detail | test("release")'

on b
wait_vm mv '.phase == "running"' 20
check "B runs the VM: same UUID, its QEMU alive" 200 ".phase == \"running\" and .uuid == \"$UUID\" and .pid == $MV_B and (.hw|length) == 1"
running "$MV_B" && _ok "B's QEMU is alive" || _not_ok "B's QEMU is alive"
api GET /v1/vms/mv/migration
check "B's side of the migration: destination, completed" 200 '.role == "destination" and .status == "completed"'

on a
api POST /v1/vms/mv/migrate-cancel '{"resume": false}' mv-keep
check "cancel without resuming a completed transfer: A's VM stays migrated" 200 '.phase == "migrated" and .status == "completed"'
api POST /v1/vms/mv/migrate-cancel '{"resume": "no"}' mv-keep2
check "... resume must be a boolean" 400 '.detail | test("resume")'
api POST /v1/vms/mv/release '' mv-rel
check "release on A" 200 '.released'
api POST /v1/vms/mv/release '' mv-rel
check "... the same operation id answers the same" 200 '.released'
api GET /v1/vms/mv
check "A forgot the VM" 404 '.status == 404'
wait_gone "$MV_A" && _ok "A's QEMU is gone" || _not_ok "A's QEMU is gone"
assert_eq "$(vf_types_set)" "$VF_A0" "A's vGPU is released"
[ ! -e "$STATE_A/vms/mv" ] && _ok "A's state directory for mv is gone" || _not_ok "A's state directory for mv is gone"
api POST /v1/reconcile '' rc-a2
check "the release is not reported as a crash" 200 '(.crashed | index("mv")) == null'
on b
api GET /v1/vms/mv
check "B's VM runs on after A let go" 200 ".phase == \"running\" and .pid == $MV_B"

# ---- an incoming migration that cannot listen leaves nothing behind
on b
VF_B1=$(vf_types_set)
api POST /v1/vms/mt/incoming '{"definition":{"name":"mt","uuid":"3f2504e0-4f89-11d3-9a0c-0305e82c3303","memory_mib":128,"gpus":[{"mode":"vgpu","type":"H100XM-20C"}]},"listen":"192.0.2.1:0"}' mt-in
check "incoming on an address this host lacks: 400 naming it" 400 '.detail | test("no address .192.0.2.1.")'
api GET /v1/vms/mt
check "... the VM it defined is forgotten" 404 '.status == 404'
assert_eq "$(vf_types_set)" "$VF_B1" "... and the vGPU it made released"

# ---- pass-through: refused with the reason
on a
api POST /v1/vms '{"name":"mp","memory_mib":128,"gpus":[{"mode":"passthrough","gpu":"1"}]}' mp-def
api POST /v1/vms/mp/start '' mp-start
check "a pass-through VM runs on A" 200 '.phase == "running"'
api POST /v1/vms/mp/migrate '{"uri":"tcp:127.0.0.1:4444"}' mp-mig
check "its live migration is refused: 409 naming the GPU, saying to move it offline" 409 '.detail | test("0000:2a:00.0") and test("pass-through") and test("offline")'
api GET /v1/vms/mp
check "... and it runs on, untouched" 200 '.phase == "running"'
api POST /v1/vms/mp/kill '' mp-kill

# ---- cancel mid-transfer: 2 GiB of (zero) RAM at 1 MiB/s takes seconds
api POST /v1/vms '{"name":"mc","memory_mib":2048,"gpus":[{"mode":"vgpu","type":"H100XM-20C"}]}' mc-def
api POST /v1/vms/mc/start '' mc-start
check "start mc on A" 200 '.phase == "running"'
MC_A=$(qemu_pid mc)
DEF=$(definition mc)
on b
api POST /v1/vms/mc/incoming "{\"definition\":$DEF,\"listen\":\"127.0.0.1:0\"}" mc-in
check "incoming for mc on B" 200 '.phase == "incoming"'
URI=$(jq -r .uri <<<"$OUT")
MC_B=$(qemu_pid mc)
on a
api POST /v1/vms/mc/migrate "{\"uri\":\"$URI\",\"max_bandwidth_mib\":1}" mc-mig
check "migrate mc at 1 MiB/s" 200 '.max_bandwidth_mib == 1'
wait_migration mc '^active$' 20
check "the transfer is under way" 200 '.status == "active" and .ram_remaining > 0 and .phase == "migrating"'
api POST /v1/vms/mc/migrate-cancel '' mc-cancel
check "cancel: the transfer is cancelled, A runs the VM" 200 '.status == "cancelled" and .phase == "running"'
api GET /v1/vms/mc
check "A's VM: running, the same QEMU, the reason kept" 200 ".phase == \"running\" and .pid == $MC_A and (.last_error | test(\"cancelled\"))"
running "$MC_A" && _ok "A's QEMU still runs" || _not_ok "A's QEMU still runs"
api POST /v1/vms/mc/migrate-cancel '' mc-cancel2
check "a second cancel (a new operation): nothing to do, still running" 200 '.phase == "running"'
on b
wait_gone "$MC_B" && _ok "B's QEMU ended with the cancelled transfer" || _not_ok "B's QEMU ended with the cancelled transfer"
api POST /v1/vms/mc/abort-incoming '' mc-abort
check "abort-incoming on B" 200 '.aborted'
api GET /v1/vms/mc
check "B forgot mc" 404 '.status == 404'
assert_eq "$(vf_types_set)" $((VF_B0 + 1)) "B released mc's vGPU (only mv's is left)"

# ---- B's QEMU killed mid-transfer
on b
api POST /v1/vms/mc/incoming "{\"definition\":$DEF,\"listen\":\"127.0.0.1:0\"}" mk-in
check "incoming for mc on B again" 200 '.phase == "incoming"'
URI=$(jq -r .uri <<<"$OUT")
MC_B=$(qemu_pid mc)
on a
api POST /v1/vms/mc/migrate "{\"uri\":\"$URI\",\"max_bandwidth_mib\":1}" mk-mig
check "migrate mc again" 200 '.role == "source"'
wait_migration mc '^active$' 20
kill -9 "$MC_B"
wait_migration mc '^failed$' 30 && _ok "the transfer fails when the destination's QEMU dies" || _not_ok "the transfer fails when the destination's QEMU dies" "$OUT"
check "... with QEMU's reason" 200 '.error != null'
wait_vm mc '.phase == "running"' 10
check "A runs the VM on, the same QEMU" 200 ".phase == \"running\" and .pid == $MC_A and (.last_error | test(\"failed\"))"
on b
wait_vm mc '.phase == "crashed"' 10
check "B reports its QEMU's end, the hardware released" 200 '(.hw|length) == 0 and (.last_error | test("incoming migration did not complete"))'
api POST /v1/vms/mc/abort-incoming '' mk-abort
check "abort-incoming on B" 200 '.aborted'
api GET /v1/vms
check "nothing of mc is left on B" 200 '[.[].name] == ["mv"]'
assert_eq "$(vf_types_set)" $((VF_B0 + 1)) "no vGPU of mc left on B"

# ---- a cancel after the transfer completed: A resumes, B's copy is aborted
on b
api POST /v1/vms/mc/incoming "{\"definition\":$DEF,\"listen\":\"127.0.0.1:0\"}" mr-in
URI=$(jq -r .uri <<<"$OUT")
MC_B=$(qemu_pid mc)
on a
api POST /v1/vms/mc/migrate "{\"uri\":\"$URI\"}" mr-mig
wait_migration mc '^completed$' 60 && _ok "mc moved to B" || _not_ok "mc moved to B" "$OUT"
wait_vm mc '.phase == "migrated"' 10
api POST /v1/vms/mc/migrate-cancel '' mr-cancel
check "cancel after completion: A resumes the VM" 200 '.phase == "running"'
api GET /v1/vms/mc
check "... running, the same QEMU, saying the destination must be aborted" 200 ".phase == \"running\" and .pid == $MC_A and (.last_error | test(\"aborted\"))"
on b
api POST /v1/vms/mc/abort-incoming '' mr-abort
check "abort-incoming takes B's completed copy away" 200 '.aborted'
wait_gone "$MC_B" && _ok "B's QEMU for mc is gone" || _not_ok "B's QEMU for mc is gone"
assert_eq "$(vf_types_set)" $((VF_B0 + 1)) "B released the vGPU"

# ---- B's agent killed during an incoming migration
api POST /v1/vms/mc/incoming "{\"definition\":$DEF,\"listen\":\"127.0.0.1:0\"}" mr2-in
check "incoming for mc on B" 200 '.phase == "incoming"'
MC_B=$(qemu_pid mc)
kill -9 "$PID_B"; wait "$PID_B" 2>/dev/null; PID_B=
running "$MC_B" && _ok "its QEMU outlives the agent" || _not_ok "its QEMU outlives the agent"
start_on b
api GET /v1/vms/mc
check "restarted, the agent rolled the incoming migration back" 200 '.phase == "stopped" and (.hw|length) == 0 and (.last_error | test("restarted during this incoming migration"))'
wait_gone "$MC_B" && _ok "... its QEMU killed" || _not_ok "... its QEMU killed"
assert_eq "$(vf_types_set)" $((VF_B0 + 1)) "... its vGPU released"
api GET /v1/vms/mv
check "B's migrated-in VM was re-adopted as running" 200 ".phase == \"running\" and .pid == $MV_B"
api POST /v1/vms/mc/abort-incoming '' mr2-abort
check "abort-incoming forgets it" 200 '.aborted'
on a
api GET /v1/vms/mc
check "A ran mc throughout" 200 ".phase == \"running\" and .pid == $MC_A"

# ---- disks move too
# A's files are made before the start with known data: the agent uses a disk file it finds.
IMG=$TEST_TMP/images/base.qcow2
qemu-img create -q -f qcow2 "$IMG" 64M && qemu-io -c 'write -P 0x11 0 4M' "$IMG" >/dev/null
qemu-img create -q -f qcow2 "$SHARED/vol.qcow2" 16M && qemu-io -c 'write -P 0x55 0 1M' "$SHARED/vol.qcow2" >/dev/null
qemu-img create -q -f qcow2 "$TEST_TMP/images/private.qcow2" 16M
on a
api POST /v1/vms "{\"name\":\"md\",\"memory_mib\":128,\"disks\":[{\"name\":\"root\",\"base\":\"$IMG\"},{\"name\":\"data\",\"size\":\"32M\"},{\"name\":\"vol\",\"path\":\"$SHARED/vol.qcow2\"}]}" md-def
check "define md on A: an overlay, an empty disk, a disk on shared storage" 201 '.phase == "defined"'
D_A=$STATE_A/vms/md/disks
qemu-img create -q -f qcow2 -F qcow2 -b "$IMG" "$D_A/root.qcow2" && qemu-io -c 'write -P 0x22 1M 1M' "$D_A/root.qcow2" >/dev/null
qemu-img create -q -f qcow2 "$D_A/data.qcow2" 32M && qemu-io -c 'write -P 0x33 8M 2M' "$D_A/data.qcow2" >/dev/null
api POST /v1/vms/md/start '' md-start
check "start md on A" 200 '.phase == "running"'
MD_A=$(qemu_pid md)
DEF=$(definition md)
api POST /v1/vms/md/migrate '{"uri":"tcp:127.0.0.1:4444"}' md-mig0
check "migrate without the destination's export: 409 saying it exported nothing" 409 '.detail | test("exported nothing") and test("root") and test("data")'
api POST /v1/vms/md/migrate '{"uri":"tcp:127.0.0.1:4444","nbd":"127.0.0.1"}' md-mig1
check "nbd must be HOST:PORT" 400 '.detail | test("nbd") and test("no port")'
on b
api POST /v1/vms/md/incoming "{\"definition\":$DEF,\"listen\":\"127.0.0.1:0\"}" md-in
check "incoming on B: it exports the two disks to copy, not the shared one" 200 '(.nbd | test("^127\\.0\\.0\\.1:[1-9][0-9]*$")) and .disks == ["root", "data"]'
URI=$(jq -r .uri <<<"$OUT")
NBD=$(jq -r .nbd <<<"$OUT")
MD_B=$(qemu_pid md)
D_B=$STATE_B/vms/md/disks
[ "$(qemu-img info -U --output=json "$D_B/root.qcow2" | jq -r '."backing-filename"')" = "$IMG" ] &&
        _ok "B made root anew, an overlay on the same image" || _not_ok "B made root anew, an overlay on the same image"
[ ! -e "$D_B/vol.qcow2" ] && tr '\0' '\n' <"/proc/$MD_B/cmdline" | grep -q "filename=$SHARED/vol.qcow2," &&
        _ok "B's QEMU opens the shared disk itself, no copy made" || _not_ok "B's QEMU opens the shared disk itself, no copy made"
api POST /v1/vms/md/incoming "{\"definition\":$DEF,\"listen\":\"127.0.0.1:0\"}" md-in2
check "incoming asked again: the same export" 200 ".nbd == \"$NBD\" and .uri == \"$URI\""
on a
api POST /v1/vms/md/migrate "{\"uri\":\"$URI\",\"nbd\":\"$NBD\"}" md-mig
check "migrate with the export: the disks copy first" 200 '.phase == "migrating" or .phase == "migrated"'
wait_migration md '^completed$' 60 && _ok "the move completed" || _not_ok "the move completed" "$OUT"
check "the progress counts the disks' bytes, all copied" 200 '.disk_total >= 34603008 and .disk_transferred == .disk_total and .ram_transferred > 0'
wait_vm md '.phase == "migrated"' 10
# A's QEMU is paused with its images closed for writing: a consistent copy to compare with.
cp "$D_A/root.qcow2" "$TEST_TMP/a-root.qcow2"
cp "$D_A/data.qcow2" "$TEST_TMP/a-data.qcow2"
api POST /v1/vms/md/release '' md-rel
check "release on A" 200 '.released'
[ ! -e "$STATE_A/vms/md" ] && _ok "A's disk files went with the release" || _not_ok "A's disk files went with the release"
on b
wait_vm md '.phase == "running"' 20
check "B runs md, its QEMU the one that received" 200 ".phase == \"running\" and .pid == $MD_B"
api GET /v1/vms/md/migration
check "B's side: completed, the NBD server stopped" 200 '.status == "completed" and .nbd == null'
api POST /v1/vms/md/kill '' md-kill
qemu-img compare -q "$TEST_TMP/a-root.qcow2" "$D_B/root.qcow2" && qemu-io -r -c 'read -P 0x22 1M 1M' "$D_B/root.qcow2" >/dev/null &&
        _ok "B's root holds A's data (the overlay's own, on the same image)" || _not_ok "B's root holds A's data (the overlay's own, on the same image)"
qemu-img compare -q "$TEST_TMP/a-data.qcow2" "$D_B/data.qcow2" && qemu-io -r -c 'read -P 0x33 8M 2M' "$D_B/data.qcow2" >/dev/null &&
        _ok "B's data disk holds A's data" || _not_ok "B's data disk holds A's data"
qemu-io -r -c 'read -P 0x55 0 1M' "$SHARED/vol.qcow2" >/dev/null && _ok "the shared disk is intact" || _not_ok "the shared disk is intact"
api DELETE /v1/vms/md '' md-del

# ---- cancel, and B's QEMU killed, during the disk copy (a 1 MiB/s cap on 8 MiB of data)
on a
api POST /v1/vms "{\"name\":\"mf\",\"memory_mib\":128,\"disks\":[{\"name\":\"data\",\"size\":\"32M\"}]}" mf-def
D_A=$STATE_A/vms/mf/disks
qemu-img create -q -f qcow2 "$D_A/data.qcow2" 32M && qemu-io -c 'write -P 0x66 0 8M' "$D_A/data.qcow2" >/dev/null
api POST /v1/vms/mf/start '' mf-start
check "start mf on A" 200 '.phase == "running"'
MF_A=$(qemu_pid mf)
DEF=$(definition mf)
# A cancel during the disk copy first: the mirrors and their NBD nodes go (the move after it
# makes them again under the same names, which QEMU would refuse otherwise).
on b
api POST /v1/vms/mf/incoming "{\"definition\":$DEF,\"listen\":\"127.0.0.1:0\"}" mfc-in
URI=$(jq -r .uri <<<"$OUT")
NBD=$(jq -r .nbd <<<"$OUT")
on a
api POST /v1/vms/mf/migrate "{\"uri\":\"$URI\",\"nbd\":\"$NBD\",\"max_bandwidth_mib\":1}" mfc-mig
check "migrate mf at 1 MiB/s: mirroring" 200 '.status == "mirroring" and .disk_total >= 8388608 and .disk_transferred < .disk_total and .ram_total == null'
api POST /v1/vms/mf/migrate-cancel '' mfc-cancel
check "cancel during the disk copy: cancelled, A runs mf" 200 '.status == "cancelled" and .phase == "running"'
api GET /v1/vms/mf
check "... the same QEMU, the reason kept" 200 ".phase == \"running\" and .pid == $MF_A and (.last_error | test(\"cancelled\"))"
on b
api POST /v1/vms/mf/abort-incoming '' mfc-abort
check "abort-incoming on B" 200 '.aborted'
on b
api POST /v1/vms/mf/incoming "{\"definition\":$DEF,\"listen\":\"127.0.0.1:0\"}" mf-in
check "incoming for mf on B" 200 '.disks == ["data"]'
URI=$(jq -r .uri <<<"$OUT")
NBD=$(jq -r .nbd <<<"$OUT")
MF_B=$(qemu_pid mf)
on a
api POST /v1/vms/mf/migrate "{\"uri\":\"$URI\",\"nbd\":\"$NBD\",\"max_bandwidth_mib\":1}" mf-mig
check "migrate mf again, its disk copy under way" 200 '.status == "mirroring"'
kill -9 "$MF_B"
wait_vm mf '.phase == "running" and (.last_error // "" | test("disk"))' 20
check "A runs mf on, the same QEMU, saying the disk copy failed" 200 ".phase == \"running\" and .pid == $MF_A and (.last_error | test(\"copying disk .data. failed\"))"
api GET /v1/vms/mf/migration
check "its progress says the move failed, and why" 200 '.status == "failed" and (.error | test("copying disk .data. failed")) and .phase == "running"'
qemu-io -r -U -c 'read -P 0x66 0 8M' "$D_A/data.qcow2" >/dev/null && _ok "A's disk is intact" || _not_ok "A's disk is intact"
on b
wait_vm mf '.phase == "crashed"' 10
api POST /v1/vms/mf/abort-incoming '' mf-abort
check "abort-incoming on B" 200 '.aborted'
[ ! -e "$STATE_B/vms/mf" ] && gone "$MF_B" && _ok "nothing of mf is left on B: no files, no QEMU" || _not_ok "nothing of mf is left on B: no files, no QEMU"
on a
api POST /v1/vms/mf/migrate '{"uri":"tcp:127.0.0.1:4444"}' mf-mig2
check "after the failure A's VM migrates again only with an export" 409 '.detail | test("exported nothing")'
api POST /v1/vms/mf/kill '' mf-kill

# ---- a real guest keeps running across the move (its console answers on B)
guest_skip() {
        for what in "$@"; do
                TAP_N=$((TAP_N + 1))
                echo "ok $TAP_N # SKIP $what: $SKIP_WHY"
        done
}
# console_has NAME REGEX SECS: the current agent's console log of NAME has a matching line.
console_has() {
        local deadline=$((SECONDS + $3))
        while [ $SECONDS -lt $deadline ]; do
                api GET "/v1/vms/$1/console?bytes=65536"
                jq -r .text <<<"$OUT" | tr -d '\r' | grep -qE -- "$2" && return 0
                sleep 0.3
        done
        return 1
}
GUEST_CHECKS=("the guest boots on A" "it answers on A's console" "it moves to B"
              "it answers on B's console, its state moved" "it did not boot again on B"
              "its counter counts on A" "its counter goes on on B from where it was on A")
# counts: the GPUVIRT-COUNT values on the current agent's console of mg, one per line.
counts() { api GET "/v1/vms/mg/console?bytes=65536"; jq -r .text <<<"$OUT" | tr -d '\r' | sed -n 's/^GPUVIRT-COUNT \([0-9][0-9]*\)$/\1/p'; }
if [ -z "$GUEST" ]; then
        SKIP_WHY="no GUESTDIR given"
        guest_skip "${GUEST_CHECKS[@]}"
else
        "$(dirname "$0")/../guest/make-guest.sh" "$GUEST" 2>"$TEST_TMP/make-guest.err"
        case $? in
        0) SKIP_WHY= ;;
        *) SKIP_WHY="cannot build the test guest here: $(tail -n 1 "$TEST_TMP/make-guest.err")" ;;
        esac
        if [ -n "$SKIP_WHY" ]; then
                guest_skip "${GUEST_CHECKS[@]}"
        else
                on a
                GDEF=$(jq -nc --arg k "$GUEST/vmlinuz" --arg i "$GUEST/initramfs.cpio.gz" \
                        '{name: "mg", memory_mib: 256, boot: {kernel: $k, initrd: $i,
                          append: "console=ttyS0 quiet panic=-1"},
                          gpus: [{mode: "vgpu", type: "H100XM-20C"}]}')
                api POST /v1/vms "$GDEF" mg-def
                api POST /v1/vms/mg/start '' mg-start
                # TCG boots it in 5-20 s on a loaded 2-core machine.
                console_has mg '^GPUVIRT-GUEST-READY$' 120 && _ok "${GUEST_CHECKS[0]}" ||
                        _not_ok "${GUEST_CHECKS[0]}" "$(jq -r .text <<<"$OUT" | tail -n 5)"
                T1="before-$$-$RANDOM"
                api POST /v1/vms/mg/console "$T1
" mg-c1
                console_has mg "^GPUVIRT-ECHO $T1\$" 20 && _ok "${GUEST_CHECKS[1]}" ||
                        _not_ok "${GUEST_CHECKS[1]}"
                api POST /v1/vms/mg/console "count
" mg-count
                console_has mg '^GPUVIRT-COUNT [5-9]$' 30 && _ok "${GUEST_CHECKS[5]}" ||
                        _not_ok "${GUEST_CHECKS[5]}" "$(jq -r .text <<<"$OUT" | tail -n 5)"
                N_A=$(counts | tail -n 1)
                DEF=$(definition mg)
                on b
                api POST /v1/vms/mg/incoming "{\"definition\":$DEF,\"listen\":\"127.0.0.1:0\"}" mg-in
                URI=$(jq -r .uri <<<"$OUT")
                on a
                api POST /v1/vms/mg/migrate "{\"uri\":\"$URI\",\"downtime_ms\":2000}" mg-mig
                wait_migration mg '^(completed|failed|cancelled)$' 120
                on b
                if [ "$(jq -r .status <<<"$OUT")" = completed ] && wait_vm mg '.phase == "running"' 20; then
                        _ok "${GUEST_CHECKS[2]}"
                else
                        _not_ok "${GUEST_CHECKS[2]}"
                fi
                T2="after-$$-$RANDOM"
                api POST /v1/vms/mg/console "$T2
" mg-c2
                console_has mg "^GPUVIRT-ECHO $T2\$" 30 && _ok "${GUEST_CHECKS[3]}" ||
                        _not_ok "${GUEST_CHECKS[3]}" "$(jq -r .text <<<"$OUT" | tail -n 5)"
                api GET "/v1/vms/mg/console?bytes=65536"
                jq -r .text <<<"$OUT" | grep -q GPUVIRT-GUEST-BOOTED && _not_ok "${GUEST_CHECKS[4]}" ||
                        _ok "${GUEST_CHECKS[4]}"
                sleep 1
                B_COUNTS=$(counts)
                B_FIRST=$(head -n 1 <<<"$B_COUNTS")
                B_LAST=$(tail -n 1 <<<"$B_COUNTS")
                if [ -n "$B_FIRST" ] && [ "${N_A:-0}" -gt 0 ] && [ "$B_FIRST" -gt "$N_A" ] &&
                        [ "$B_LAST" -gt "$B_FIRST" ]; then
                        _ok "${GUEST_CHECKS[6]} (A: ..$N_A, B: $B_FIRST..$B_LAST)"
                else
                        _not_ok "${GUEST_CHECKS[6]}" "A's last: '${N_A:-}', B's: $(tr '\n' ' ' <<<"$B_COUNTS" | head -c 200)"
                fi
                api POST /v1/vms/mg/kill '' mg-kill-b
                on a
                api POST /v1/vms/mg/release '' mg-rel
        fi
fi

stop_both
if grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$TEST_TMP/agent.log"; then
        _not_ok "no sanitizer report from either agent" "$(grep -m3 -E 'Sanitizer|runtime error' "$TEST_TMP/agent.log")"
else
        _ok "no sanitizer report from either agent"
fi
done_testing
