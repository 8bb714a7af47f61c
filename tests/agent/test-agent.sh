#!/bin/bash
# SPDX-License-Identifier: MIT
# gpuvirtd end to end on a simulated 8xH100 host with real QEMU (TCG): every GPU mode (hardware
# prepared, QEMU started with a stand-in per GPU, released after), operation ids, bad input,
# kill -9 of the agent (running VMs untouched and re-adopted), QEMU killed behind the agent's
# back (reported, GPUs released), graceful stop, delete.
. "$(dirname "$0")/../integration/lib.sh"
new_host dgx-h100 h
. "$(dirname "$0")/agent-lib.sh"
trap 'stop_agent; pkill -9 -f "guest=t[vs]," 2>/dev/null; _cleanup' EXIT

start_agent
api GET /v1/host
check "host: 8 GPUs, simulated, QEMU on TCG as configured" 200 '(.gpus|length) == 8 and .simulated and .qemu.accel == "tcg"'

# ---- bad input
api POST /v1/vms '{"name":"tv"}'
check "a change without Operation-Id is refused" 400 '.type | endswith("operation-id-required")'
api POST /v1/vms '{"name":' bad1
check "malformed JSON: 400 naming the position" 400 '.detail | test("line|column")'
api POST /v1/vms '{"name":"tv","colour":1}' bad2
check "unknown member named" 400 '.detail | test("colour")'
{ printf '{"name":"tv","pad":"'; head -c 1100000 /dev/zero | tr '\0' a; printf '"}'; } >"$TEST_TMP/big.json"
api POST /v1/vms "@$TEST_TMP/big.json" bad3
check "body over 1 MiB: 413" 413 '.status == 413'
api GET /v1/vms/nope
check "unknown VM: 404" 404 '.detail | test("nope")'
api POST /v1/vms/nope/start '' bad4
check "start of an unknown VM: 404" 404 '.status == 404'
api POST /v1/vms '{"name":"Bad_Name"}' bad5
check "name outside the grammar" 400 '.detail | test("not a valid VM name")'
# every other endpoint: a clear 4xx naming what is wrong, nothing changed
api POST /v1/gpus/0000:99:00.0/mode '{"mode":"passthrough"}' bad6
check "mode of a GPU this host lacks: 404" 404 '.detail | test("0000:99:00.0")'
api POST /v1/gpus/0/mode '{"mode":"turbo"}' bad7
check "unknown GPU mode: 400 listing the modes" 400 '.detail | test("turbo") and test("passthrough")'
api POST /v1/gpus/0/mode '{"mode":1}' bad8
check "GPU mode of the wrong type: 400" 400 '.detail | test("mode")'
api POST /v1/gpus/0/mig '{"profiles":"3g.40gb"}' bad9
check "MIG profiles not a list: 400" 400 '.detail | test("profiles")'
api POST /v1/gpus/0/mig '{"profiles":["9g.999gb"]}' bad10
check "MIG layout on a GPU not in MIG mode, or an unknown profile: 4xx naming it" 4"$(cut -c2- <<<"$HTTP")" '.status >= 400 and .status < 500 and (.detail | length > 0)'
api POST /v1/vms/nope/stop '{"timeout_s":99999}' bad11
check "stop timeout out of range: 400" 400 '.detail | test("3600")'
api POST /v1/vms/nope/stop '{"wait":1}' bad12
check "stop with an unknown member: 400" 400 '.detail | test("timeout_s")'
api POST /v1/vms/nope/kill '' bad13
check "kill of an unknown VM: 404" 404 '.detail | test("nope")'
api DELETE /v1/vms/nope '' bad14
check "delete of an unknown VM: 404" 404 '.detail | test("nope")'
api GET '/v1/vms/nope/console?bytes=lots'
check "console bytes not a count: 400" 400 '.detail | test("bytes")'
api GET '/v1/vms/nope/console?colour=1'
check "console with an unknown query parameter: 400" 400 '.detail | test("colour")'
api POST /v1/vms/nope/console 'x' bad15
check "console write to an unknown VM: 404" 404 '.detail | test("nope")'
api POST /v1/reconcile '{"now":true}' bad16
check "reconcile takes no parameters: 400" 400 '.detail | test("no parameters")'
api POST /v1/vms '{"name":"tv"}' 'bad id!'
check "an Operation-Id outside its grammar: 400" 400 '.detail | test("Operation-Id")'
api GET /v1/nothing
check "unknown path: 404" 404 '.status == 404'
api PUT /v1/vms '{}'
check "wrong method: 405" 405 '.status == 405'
api GET /v1/vms
check "none of it defined a VM" 200 'length == 0'

# ---- define, idempotently
DEF='{"name":"tv","memory_mib":128,"disks":[{"name":"root","size":"64M"}],"nics":[{"forwards":[{"host_port":46022,"guest_port":22}]}],"gpus":[{"mode":"vgpu","type":"H100XM-20C","gpu":"0"},{"mode":"passthrough","gpu":"1"},{"mode":"mig-vgpu","type":"H100XM-1-10C","gpu":"3"}]}'
api POST /v1/gpus/3/mode '{"mode":"mig"}' mode1
check "GPU 3 to MIG mode through the agent" 200 '.mode == "mig"'
api POST /v1/vms "$DEF" def1
check "define: 201" 201 '.phase == "defined"'
api POST /v1/vms "$DEF" def1
check "the same operation id answers the same, once" 201 '.name == "tv"'
api POST /v1/vms '{"name":"tv2"}' def1
check "an operation id reused for another request: 422" 422 '.detail | test("different request")'
api POST /v1/vms '{"name":"tv","memory_mib":256}' def2
check "another VM under a taken name: 409" 409 '.detail | test("different definition")'

# ---- start: every GPU mode
api POST /v1/vms/tv/start '' start1
check "start: running with three stand-ins" 200 '.phase == "running" and (.devices|length) == 3 and all(.devices[]; .kind == "standin")'
check "hardware recorded: vGPU, pass-through, MIG instance + vGPU" 200 '[.hw[].kind] | sort == ["mig-gi","passthrough","vgpu","vgpu"]'
PID=$(qemu_pid tv)
tr '\0' '\n' <"/proc/$PID/cmdline" >"$TEST_TMP/cmdline"
assert_eq "$(stat -c %a "$STATE/vms/tv/run/qmp.sock")" 600 "the QMP socket is mode 0600"
assert_eq "$(grep -c '^edu,id=gpu' "$TEST_TMP/cmdline")" 3 "QEMU got one edu stand-in per GPU"
VF=$(jq -r '.hw[] | select(.kind=="vgpu" and .gpu=="0000:18:00.0") | .id' "$STATE/vms/tv/state.json")
assert_eq "$(cat "$(dev_dir "$VF")/nvidia/current_vgpu_type")" \
        "$(catalog H100-SXM5-80GB '.vgpu.types[] | select(.name=="H100XM-20C") | .type_id')" \
        "the VF carries the vGPU type"
assert_eq "$(driver_of 0000:2a:00.0)" vfio-pci "the pass-through GPU is bound to vfio-pci"
api POST /v1/vms/tv/start '' start2
check "start of a running VM: no-op" 200 '.phase == "running"'
assert_eq "$(qemu_pid tv)" "$PID" "... the same QEMU"
# The sampler's latest sample (every second): wait for one taken since the start.
for _ in $(seq 30); do api GET /v1/metrics; jq -e '.vms[0].memory.rss_mib > 0' <<<"$OUT" >/dev/null 2>&1 && break; sleep 0.1; done
check "metrics: the VM's CPU and memory beside the GPUs" 200 '(.gpus|length) == 8 and (.vms[0].memory.rss_mib > 0)'

# ---- kill -9 of the agent: the VM is untouched and re-adopted
kill -9 "$AGENT_PID"; wait "$AGENT_PID" 2>/dev/null; AGENT_PID=
kill -0 "$PID" && _ok "QEMU survives kill -9 of the agent" || _not_ok "QEMU survives kill -9 of the agent"
start_agent
api GET /v1/vms/tv
check "restarted agent re-adopts the running VM" 200 ".phase == \"running\" and .pid == $PID"

# ---- QEMU killed behind the agent's back
kill -9 "$PID"
for _ in $(seq 50); do api GET /v1/vms/tv; jq -e '.phase == "crashed"' <<<"$OUT" >/dev/null && break; sleep 0.1; done
check "a killed QEMU is reported, its hardware released" 200 '.phase == "crashed" and (.hw|length) == 0 and (.last_error | test("unexpectedly"))'
assert_eq "$(cat "$(dev_dir "$VF")/nvidia/current_vgpu_type")" 0 "the VF's vGPU type is cleared"
assert_eq "$(driver_of 0000:2a:00.0)" nvidia "the pass-through GPU is back on nvidia"
gv mig list 3 --json
assert_jq '.gpu_instances | length' 0 "the MIG instance made for the VM is gone"

# ---- graceful stop (no guest answers the power button: quit after the timeout)
api POST /v1/vms/tv/start '' start3
check "start again" 200 '.phase == "running"'
PID=$(qemu_pid tv)

# ---- kill -9 of the agent in the middle of a start and of a stop; tv runs throughout.
# The agent runs QEMU through a wrapper that, for VM ts only, first sleeps (so the agent is
# caught between spawning QEMU and seeing it run), then execs QEMU or exits as QEMU would when
# it fails ($TEST_TMP/wrap.mode: exec or fail).
cat >"$TEST_TMP/qemu-wrap" <<'WRAP'
#!/bin/bash
case " $* " in
*" guest=ts,"*) sleep 2; [ "$(cat "${0%/*}/wrap.mode")" = exec ] || exit 1 ;;
esac
exec qemu-system-x86_64 "$@"
WRAP
chmod +x "$TEST_TMP/qemu-wrap"
stop_agent
GV_AGENT_QEMU=$TEST_TMP/qemu-wrap start_agent
TSDEF='{"name":"ts","memory_mib":128,"gpus":[{"mode":"vgpu","type":"H100XM-20C","gpu":"5"}]}'
api POST /v1/vms "$TSDEF" ts-def
check "define ts" 201 '.phase == "defined"'
VF0=$(vf_types_set)

# mid-start, QEMU comes up after the agent died: the restarted agent finishes the start
echo exec >"$TEST_TMP/wrap.mode"
curl -s --unix-socket "$SOCK" -X POST -H 'Operation-Id: ts-start1' http://agent/v1/vms/ts/start >/dev/null &
CURL=$!
wait_vm ts '.phase == "starting" and .pid != null' 10
sleep 0.5
assert_eq "$(jq -r .phase "$STATE/vms/ts/state.json")" starting "the agent is in the middle of the start"
assert_eq "$(vf_types_set)" $((VF0 + 1)) "... with the vGPU made and QEMU spawned"
TSPID=$(qemu_pid ts)
kill -9 "$AGENT_PID"; wait "$AGENT_PID" 2>/dev/null; AGENT_PID=; wait "$CURL" 2>/dev/null
GV_AGENT_QEMU=$TEST_TMP/qemu-wrap start_agent
api GET /v1/vms/ts
check "restart: the interrupted start is finished" 200 ".phase == \"running\" and .pid == $TSPID and (.hw|length) == 1"
assert_eq "$(vf_types_set)" $((VF0 + 1)) "... with its one vGPU, none leaked"
api POST /v1/vms/ts/start '' ts-start1
check "a retry of the interrupted start's operation id is a no-op" 200 ".phase == \"running\" and .pid == $TSPID"

# mid-stop: nothing in ts answers the power button, so the agent is caught waiting for it
curl -s --unix-socket "$SOCK" -X POST -H 'Operation-Id: ts-stop1' --data '{"timeout_s":30}' http://agent/v1/vms/ts/stop >/dev/null &
CURL=$!
wait_vm ts '.phase == "stopping"' 10
assert_eq "$(jq -r .phase "$STATE/vms/ts/state.json")" stopping "the agent is in the middle of the stop"
kill -9 "$AGENT_PID"; wait "$AGENT_PID" 2>/dev/null; AGENT_PID=; wait "$CURL" 2>/dev/null
running "$TSPID" && _ok "QEMU outlives the agent killed mid-stop" || _not_ok "QEMU outlives the agent killed mid-stop"
GV_AGENT_QEMU=$TEST_TMP/qemu-wrap start_agent
api GET /v1/vms/ts
check "restart: the interrupted stop is finished" 200 '.phase == "stopped" and (.hw|length) == 0 and .pid == null'
running "$TSPID" && _not_ok "its QEMU is gone" "pid $TSPID still runs" || _ok "its QEMU is gone"
assert_eq "$(vf_types_set)" "$VF0" "its vGPU is released"

# mid-start, QEMU never comes up: the restarted agent rolls the start back
echo fail >"$TEST_TMP/wrap.mode"
curl -s --unix-socket "$SOCK" -X POST -H 'Operation-Id: ts-start2' http://agent/v1/vms/ts/start >/dev/null &
CURL=$!
wait_vm ts '.phase == "starting" and .pid != null' 10
sleep 0.5
assert_eq "$(vf_types_set)" $((VF0 + 1)) "second start: the vGPU is made"
kill -9 "$AGENT_PID"; wait "$AGENT_PID" 2>/dev/null; AGENT_PID=; wait "$CURL" 2>/dev/null
GV_AGENT_QEMU=$TEST_TMP/qemu-wrap start_agent
api GET /v1/vms/ts
check "restart: the start whose QEMU never ran is rolled back, saying so" 200 '.phase == "stopped" and (.hw|length) == 0 and (.last_error | test("rolled back"))'
assert_eq "$(vf_types_set)" "$VF0" "... and its vGPU is released"
api GET /v1/vms/tv
check "tv ran untouched through three kills of the agent" 200 ".phase == \"running\" and .pid == $PID"
api DELETE /v1/vms/ts '' ts-del
check "delete ts" 200 '.deleted'
api POST /v1/gpus/3/mode '{"mode":"mig"}' mode2
check "GPU 3, used by running tv, set to the MIG mode it has: 200, nothing changes" 200 '.mode == "mig"'
api POST /v1/gpus/3/mode '{"mode":"vgpu"}' mode3
check "... to another mode: 409 naming tv" 409 '.detail | test("in use by VM .tv.")'
api DELETE /v1/vms/tv '' del1
check "delete of a running VM: 409" 409 '.detail | test("stop it first")'
api POST /v1/vms/tv/stop '{"timeout_s":1}' stop1
check "stop: stopped, hardware released" 200 '.phase == "stopped" and (.hw|length) == 0'
api DELETE /v1/vms/tv '' del2
check "delete" 200 '.deleted'
[ ! -e "$STATE/vms/tv" ] && _ok "its state directory is gone" || _not_ok "its state directory is gone"

# ---- bridge NICs: a tap per NIC on the host bridge, deleted with the VM's other hardware;
# leaked taps found by the reconcile loop. Needs CAP_NET_ADMIN and /dev/net/tun.
api POST /v1/vms '{"name":"tm","memory_mib":128,"nics":[{"mode":"bridge","bridge":"gvnobr0"}]}' tm-def
check "define a VM on a bridge this host lacks" 201 '.phase == "defined"'
api POST /v1/vms/tm/start '' tm-start
check "its start is refused, saying how to make the bridge" 409 '.detail | test("gvnobr0.*does not exist.*ip link add")'
api GET /v1/vms/tm
check "... and leaves nothing behind" 200 '.phase == "stopped" and (.hw|length) == 0'
BR=gvtbr$$
if ! ip link add "$BR" type bridge 2>"$TEST_TMP/br.err"; then
        echo "ok $((TAP_N + 1)) # SKIP bridge NICs: cannot create a bridge here ($(head -c 200 "$TEST_TMP/br.err"))"
        TAP_N=$((TAP_N + 1))
else
        trap 'stop_agent; pkill -9 -f "guest=t[vsb]," 2>/dev/null; ip link del "$BR" 2>/dev/null; ip link del "${TBTAP:-none}" 2>/dev/null; _cleanup' EXIT
        ip link set "$BR" up
        api POST /v1/vms "{\"name\":\"tb\",\"memory_mib\":128,\"nics\":[{\"mode\":\"user\"},{\"mode\":\"bridge\",\"bridge\":\"$BR\"}]}" tb-def
        check "define a VM with a NAT NIC and a bridge NIC" 201 '.phase == "defined"'
        api POST /v1/vms/tb/start '' tb-start1
        check "start: running, a tap recorded for NIC 1" 200 '.phase == "running" and ([.hw[] | select(.kind == "tap")] | length) == 1'
        TBTAP=$(jq -r '.hw[] | select(.kind == "tap") | .id' <<<"$OUT")
        TBPID=$(qemu_pid tb)
        assert_eq "$(basename "$(readlink "/sys/class/net/$TBTAP/master")")" "$BR" "the tap is a port of the bridge"
        grep -q "^tap,id=net1,ifname=$TBTAP," <(tr '\0' '\n' <"/proc/$TBPID/cmdline") &&
                _ok "QEMU opened the tap for NIC 1" || _not_ok "QEMU opened the tap for NIC 1"
        kill -9 "$TBPID"
        wait_vm tb '.phase == "crashed"' 10
        check "QEMU killed: crashed, the tap released" 200 '(.hw|length) == 0'
        [ ! -e "/sys/class/net/$TBTAP" ] && _ok "the tap is deleted" || _not_ok "the tap is deleted"
        # A tap of tb's name that tb does not record (an agent killed between making and
        # recording it), and a foreign one of the same shape.
        ip tuntap add dev "$TBTAP" mode tap
        ip tuntap add dev gv00000000n0 mode tap 2>/dev/null
        api POST /v1/reconcile '' rc1
        check "reconcile reports the leaked tap, waiting out the grace period" 200 "[.orphans[] | select(.kind == \"tap\")] == [.orphans[] | select(.kind == \"tap\" and .id == \"$TBTAP\" and .action == \"waiting\")] and ([.orphans[] | select(.kind == \"tap\")] | length) == 1"
        stop_agent
        start_agent --orphan-grace 0
        for _ in $(seq 50); do [ -e "/sys/class/net/$TBTAP" ] || break; sleep 0.1; done
        [ ! -e "/sys/class/net/$TBTAP" ] && _ok "with no grace the loop removes the leaked tap" || _not_ok "with no grace the loop removes the leaked tap"
        api POST /v1/reconcile '' rc2
        check "a pass asked for finds no tap orphan left" 200 '[.orphans[] | select(.kind == "tap")] == []'
        [ -e /sys/class/net/gv00000000n0 ] && _ok "a tap no VM here is named for is left alone" || _not_ok "a tap no VM here is named for is left alone"
        ip link del gv00000000n0 2>/dev/null
        api GET /v1/reconcile
        check "GET /v1/reconcile shows the last pass" 200 '.orphans | type == "array"'
        api POST /v1/vms/tb/start '' tb-start2
        check "start again: the tap is made again" 200 '.phase == "running"'
        api POST /v1/vms/tb/stop '{"timeout_s":1}' tb-stop
        check "stop: the tap is deleted" 200 '.phase == "stopped" and (.hw|length) == 0'
        [ ! -e "/sys/class/net/$TBTAP" ] && _ok "no tap after the stop" || _not_ok "no tap after the stop"
        ip link del "$BR"
fi
stop_agent
done_testing
