#!/bin/bash
# SPDX-License-Identifier: MIT
# `gpuvirt top` on a simulated cluster of two dgx-h100 hosts (contrib/sim-cluster.sh, real QEMU on
# TCG, metrics-interval 250 ms): two vGPU VMs on node-a with their load pinned (gpuvirt-sim load:
# 73 % and 21 % SM, 5000 and 3000 MiB), a MIG-backed vGPU VM and a pass-through VM on node-b.
# `top --batch --iterations 1` must show the pinned figures on the right VM rows, sorted as asked
# (gpu, name, memory), the pass-through GPU and VM as "n/a: passthrough" and the MIG slice's
# utilization as "n/a: MIG" (never 0); frames repeat at the interval; bad options name the valid
# values. The interactive screen runs once on a pseudo-terminal (python3's pty module, through
# tests/cli/pty-screen.py, which keeps the screen with a small VT100 interpreter): it draws the
# three sections, re-sorts on a key, says when the terminal is too small, and quits on 'q'
# restoring the terminal; an unknown TERM and a standard output that is not a terminal fall back
# to a plain frame.
. "$(dirname "$0")/../integration/lib.sh"
. "$(dirname "$0")/../controller/cluster-lib.sh"
cluster_init tc
HERE=$(cd "$(dirname "$0")" && pwd)

printf 'metrics-interval = 250\n' >"$TEST_TMP/controller.conf"
cluster_start --hosts 2 --profiles dgx-h100,dgx-h100 --accel tcg \
        --same-group --controller-config "$TEST_TMP/controller.conf"
export GPUVIRT_ENDPOINT="unix:$SOCK"
unset GPUVIRT_TOKEN COLUMNS

# top ARGS...: gpuvirt top with stdout in $OUT, stderr in $ERR, the exit status in $RC
top() { run "$GPUVIRT" top "$@"; }
# section NAME: the lines of $OUT's first frame from the title "NAME ..." to the next blank line
section() { awk -v s="$1" 'index($0, s " ") == 1 {on = 1} on && /^$/ {exit} on' <<<"$OUT"; }
# vm_rows: the VM names of $OUT's VMS section, in order, one line
vm_rows() { section VMS | tail -n +3 | awk '{print $1}' | tr '\n' ' '; }
# row SECTION FIRST-WORD: that row of $OUT
row() { section "$1" | awk -v w="$2" '$1 == w'; }

create v1 '{"kind": "vgpu", "type": "H100XM-20C"}' node-a
check "v1 (vGPU) runs on node-a" 200 '.state == "succeeded"'
create v2 '{"kind": "vgpu", "type": "H100XM-20C"}' node-a
check "v2 (vGPU) runs on node-a" 200 '.state == "succeeded"'
create m1 '{"kind": "vgpu", "type": "H100XM-1-10C"}' node-b
check "m1 (MIG-backed vGPU) runs on node-b" 200 '.state == "succeeded"'
create p1 '{"kind": "passthrough", "count": 1}' node-b
check "p1 (pass-through) runs on node-b" 200 '.state == "succeeded"'
capi GET /api/v1/vms/p1
P1_PCI=$(jqo '.placement.gpus[0].pci')
aapi node-a /v1/vms/v1
VF1=$(jqo '.hw[] | select(.kind == "vgpu") | .id')
aapi node-a /v1/vms/v2
VF2=$(jqo '.hw[] | select(.kind == "vgpu") | .id')

run "$GPUVIRT_SIM" load --root "$(host_var node-a ROOT)" --vgpu "$VF1" --util 73 --memory-used 5000
assert_rc 0 "pin v1's vGPU: 73 % SM, 5000 MiB"
run "$GPUVIRT_SIM" load --root "$(host_var node-a ROOT)" --vgpu "$VF2" --util 21 --memory-used 3000
assert_rc 0 "pin v2's vGPU: 21 % SM, 3000 MiB"

# the controller has the pinned figures and p1's first sample
ready() {
        capi GET /api/v1/metrics
        jq -e '([.vms[] | select(.vm == "v1") | .gpus[0].util_pct] == [73]) and
                ([.vms[] | select(.vm == "v2") | .gpus[0].util_pct] == [21]) and
                ([.vms[] | select(.vm == "p1" or .vm == "m1")] | length == 2)' <<<"$OUT" >/dev/null 2>&1
}
wait_for 10 ready && _ok "the controller's metrics carry the pinned load" ||
        _not_ok "the controller's metrics carry the pinned load" "$(head -c 1500 <<<"$OUT")"

# ---- --batch, sorted by GPU
top --batch --iterations 1 --sort gpu
assert_rc 0 "top --batch --iterations 1 --sort gpu"
[ "$(grep -c '^gpuvirt top ' <<<"$OUT")" = 1 ] && _ok "one frame" || _not_ok "one frame"
grep -q '^gpuvirt top [0-9:]* - hosts 2/2 up, GPUs 16, VMs 4/4 running' <<<"$OUT" &&
        _ok "the header counts the cluster: 2 hosts up, 16 GPUs, 4 VMs running" ||
        _not_ok "the header counts the cluster" "$(head -1 <<<"$OUT")"
[ "$(section VMS | head -1)" = "VMS 4 (4 running), sorted by gpu" ] && _ok "the VMs' title names the sort" ||
        _not_ok "the VMs' title names the sort" "$(section VMS | head -1)"
[ "$(vm_rows)" = "v1 v2 m1 p1 " ] &&
        _ok "sorted by GPU: v1 (73 %), v2 (21 %), then m1 (memory only), p1 (nothing known)" ||
        _not_ok "sorted by GPU: v1 v2 m1 p1" "got: $(vm_rows)" "$(section VMS)"
V1=$(row VMS v1)
grep -qE '^v1 +node-a +running +vgpu H100XM-20C .*\[\|+ +73%\] 4\.9G/20\.0G$' <<<"$V1" &&
        _ok "v1's row: node-a, running, its vGPU type, the GPU bar at 73 %, 4.9G of 20.0G" ||
        _not_ok "v1's row carries its pinned 73 % and 5000 MiB" "$V1"
grep -qE '^v2 .*\[\|+ +21%\] 2\.9G/20\.0G$' <<<"$(row VMS v2)" &&
        _ok "v2's row: 21 %, 2.9G of 20.0G" || _not_ok "v2's row: 21 %, 2.9G" "$(row VMS v2)"
grep -qE '^m1 +node-b +running +mig-vgpu H100XM-1-10C .*\[n/a: MIG +\] [0-9.]+[MG]/9\.8G$' <<<"$(row VMS m1)" &&
        _ok "m1's row: utilization 'n/a: MIG' (not reported), its instance's memory of 9.8G" ||
        _not_ok "m1's row" "$(row VMS m1)"
grep -qE '^p1 +node-b +running +passthrough .*\[n/a: passthrough +\] n/a: passthrough$' <<<"$(row VMS p1)" &&
        _ok "p1's row: 'n/a: passthrough' for its GPU's utilization and memory" ||
        _not_ok "p1's row" "$(row VMS p1)"
# the GPU columns: what follows the CPU and memory bars
GPU_COLS=$( (row VMS m1; row VMS p1) | sed 's/^[^[]*\[[^]]*\] \[[^]]*\] //')
[ "$(wc -l <<<"$GPU_COLS")" = 2 ] && ! grep -qE '(^|[^0-9.])0(\.0)?(%|M|G)' <<<"$GPU_COLS" &&
        _ok "no unknown GPU value of m1 or p1 shown as 0" || _not_ok "no unknown GPU value shown as 0" "$GPU_COLS"
PT=$(section GPUS | awk -v h=node-b '$1 == h && $4 == "passthrough"')
grep -qE '\[n/a: passthrough +\] \[n/a: passthrough +\] +- +- p1$' <<<"$PT" &&
        _ok "node-b's pass-through GPU: no values ('n/a: passthrough', '-'), used by p1" ||
        _not_ok "the pass-through GPU's row" "$PT"
GPU_V=$(section GPUS | tail -n +3 | head -1)
grep -qE '^node-a .* v1 v2$' <<<"$GPU_V" &&
        _ok "the busiest GPU first, on node-a, used by v1 and v2" || _not_ok "the busiest GPU first" "$GPU_V"
grep -qE '^node-a +up +[0-9]+ \[.*\] +8 \[.*\] +2$' <<<"$(row HOSTS node-a)" &&
        _ok "node-a's row: up, 8 GPUs, 2 VMs" || _not_ok "node-a's row" "$(row HOSTS node-a)"
awk 'length > 132 {exit 1}' <<<"$OUT" && _ok "no line wider than 132 columns" ||
        _not_ok "no line wider than 132 columns" "$(awk 'length > 132' <<<"$OUT" | head -3)"

top --batch --iterations 1 --sort name
[ "$(vm_rows)" = "m1 p1 v1 v2 " ] && _ok "--sort name: m1 p1 v1 v2" || _not_ok "--sort name" "got: $(vm_rows)"
top -b -n 1 -o memory
assert_rc 0 "top -b -n 1 -o memory (top's short options)"
grep -q "sorted by memory" <<<"$(section VMS | head -1)" && _ok "the short options sort by memory" ||
        _not_ok "-o memory" "$(section VMS | head -1)"
COLUMNS=80 top --batch --iterations 1
awk 'length > 80 {exit 1}' <<<"$OUT" && grep -q '73%\]' <<<"$(row VMS v1)" &&
        _ok "COLUMNS=80: every line fits, v1's 73 % still there" || _not_ok "COLUMNS=80" "$OUT"

# ---- frames repeat at the interval
t0=$(date +%s%N)
top --batch --iterations 3 --interval 0.3
t1=$(date +%s%N)
[ "$RC" = 0 ] && [ "$(grep -c '^gpuvirt top ' <<<"$OUT")" = 3 ] && [ $(((t1 - t0) / 1000000)) -ge 600 ] &&
        _ok "--iterations 3 --interval 0.3: three frames, 0.6 s apart at least" ||
        _not_ok "three frames at 0.3 s" "rc $RC, $(grep -c '^gpuvirt top ' <<<"$OUT") frames in $(((t1 - t0) / 1000000)) ms"

# ---- usage and failures
top --batch --sort util
assert_rc 2 "--sort util is a usage error"
grep -q "valid: cpu, memory, gpu, name" <<<"$ERR" && _ok "... naming the valid keys" || _not_ok "the valid sort keys" "$ERR"
top --batch --interval 0
assert_rc 2 "--interval 0 is a usage error"
grep -q "0.1 to 3600" <<<"$ERR" && _ok "... naming the range" || _not_ok "the interval's range" "$ERR"
top --batch --iterations 0
assert_rc 2 "--iterations 0 is a usage error"
top --json
assert_rc 2 "--json is refused"
grep -q "GET /api/v1/metrics" <<<"$ERR" && _ok "... pointing at GET /api/v1/metrics" || _not_ok "--json's hint" "$ERR"
run "$GPUVIRT" --endpoint "unix:$TEST_TMP/nothing.sock" top --batch --iterations 1
assert_rc 5 "a controller that cannot be reached: exit 5"

# ---- not a terminal: one plain frame
run bash -c '"$GPUVIRT" top </dev/null | cat'
[ "$RC" = 0 ] && [ "$(grep -c '^gpuvirt top ' <<<"$OUT")" = 1 ] && grep -q "is not a terminal" <<<"$ERR" &&
        _ok "standard output not a terminal: one frame as with --batch, and a note why" ||
        _not_ok "not a terminal" "$ERR"

# ---- the screen, on a pseudo-terminal
if ! command -v python3 >/dev/null; then
        _ok "the interactive screen # SKIP python3 (its pty module drives the terminal) is not installed"
else
        PTY="$HERE/pty-screen.py"
        run env TERM=xterm python3 "$PTY" 40x140 'wait:VMS 4 (4 running), sorted by cpu' snap \
                key:u 'wait:VMS 4 (4 running), sorted by gpu' snap key:g sleep:0.3 snap key:q -- "$GPUVIRT" top
        SCREENS=$OUT
        # screen N: the Nth snapshot
        # screen_of N [TEXT]: the Nth snapshot in TEXT (default $OUT)
        screen_of() { awk -v n="$1" '/^--- screen$/ {k++; next} /^--- end$/ {if (k == n) exit; next} k == n' <<<"${2-$OUT}"; }
        screen() { screen_of "$1" "$SCREENS"; }
        [ "$RC" = 0 ] && _ok "the screen came up (pty-screen.py: python3 pty)" || _not_ok "the screen came up" "$(tail -40 <<<"$SCREENS")"
        S1=$(screen 1)
        grep -q '^gpuvirt top .* - hosts 2/2 up' <<<"$S1" && grep -q '^HOSTS 2 (2 up), sorted by cpu' <<<"$S1" &&
                grep -q '^GPUS 16 ' <<<"$S1" && grep -q '^VMS 4 (4 running), sorted by cpu' <<<"$S1" &&
                _ok "it draws the header and the hosts, GPUs and VMs sections" || _not_ok "the sections" "$S1"
        grep -q '^q quit  s/S sort: cpu' <<<"$S1" && _ok "the keys on the last line" || _not_ok "the keys line" "$(tail -2 <<<"$S1")"
        S2=$(screen 2)
        [ "$(awk '/^VMS 4/ {on = 1; getline; next} on && NF {print $1}' <<<"$S2" | head -4 | tr '\n' ' ')" = "v1 v2 m1 p1 " ] &&
                grep -qE '^v1 .*\[\|+ +73%\]' <<<"$S2" &&
                _ok "'u' sorts by GPU: v1 (73 %) first on the screen, then v2, m1, p1" ||
                _not_ok "'u' sorts by GPU" "$S2"
        grep -q 'sort: gpu' <<<"$S2" && _ok "the keys line says the sort" || _not_ok "the keys line after 'u'" "$(tail -1 <<<"$S2")"
        grep -q '^p1 .*n/a: passthrough' <<<"$S2" && _ok "p1's GPU 'n/a: passthrough' on the screen" || _not_ok "p1 on the screen" "$S2"
        grep -q -- '--- exit 0' <<<"$SCREENS" && _ok "'q' quits with exit 0" || _not_ok "'q' quits" "$(tail -3 <<<"$SCREENS")"
        grep -q -- '--- tail .*\\x1b\[?1049l' <<<"$SCREENS" && _ok "the terminal is given back (alternate screen left)" ||
                _not_ok "the terminal is given back" "$(tail -1 <<<"$SCREENS")"

        run env TERM=xterm python3 "$PTY" 12x60 'wait:needs at least' snap key:q -- "$GPUVIRT" top
        grep -q 'The terminal is 60x12; gpuvirt top needs at least 80x14' <<<"$OUT" && grep -q -- '--- exit 0' <<<"$OUT" &&
                _ok "a 60x12 terminal: it says what it needs, and 'q' still quits" || _not_ok "a small terminal" "$OUT"

        run env TERM=xterm python3 "$PTY" 40x140 'wait:VMS 4 (4 running)' resize:12x60 'wait:needs at least' snap \
                resize:30x100 'wait:VMS 4 (4 running)' snap key:q -- "$GPUVIRT" top
        S1=$(screen_of 1)
        S2=$(screen_of 2)
        grep -q 'The terminal is 60x12' <<<"$S1" && grep -q '^VMS 4 (4 running)' <<<"$S2" &&
                grep -q '^HOSTS 2 ' <<<"$S2" && awk 'length > 100 {exit 1}' <<<"$S2" && grep -q -- '--- exit 0' <<<"$OUT" &&
                _ok "resized to 60x12 it says what it needs; back at 100x30 it draws all sections within 100 columns" ||
                _not_ok "resizing" "$OUT"

        run env TERM=no-such-terminal-xyz python3 "$PTY" 40x140 'wait:VMS 4 (4 running)' snap -- "$GPUVIRT" top
        grep -q "cannot drive the terminal type 'no-such-terminal-xyz'" <<<"$OUT" && grep -q 'VMS 4 (4 running)' <<<"$OUT" &&
                grep -q -- '--- exit 0' <<<"$OUT" &&
                _ok "an unknown TERM: a note and one plain frame" || _not_ok "an unknown TERM" "$OUT"

        # the controller goes away under the screen (its socket reached through a link that is
        # removed): the last values stay, the error shows where the keys were, 'q' quits
        ln -s "$SOCK" "$TEST_TMP/link.sock"
        run env TERM=xterm python3 "$PTY" 40x140 'wait:VMS 4' "sh:rm $TEST_TMP/link.sock" key:r \
                'wait:refresh failed' snap key:q -- "$GPUVIRT" --endpoint "unix:$TEST_TMP/link.sock" top
        grep -q "^refresh failed, the last values stay (q quits): cannot connect to 'unix:$TEST_TMP/link.sock'" <<<"$OUT" && grep -qE '^v1 .*73%\]' <<<"$OUT" &&
                grep -q -- '--- exit 0' <<<"$OUT" &&
                _ok "the controller gone: its error on the last line, the last values kept, 'q' quits" ||
                _not_ok "the controller gone" "$OUT"
        run env TERM=xterm python3 "$PTY" 40x140 'wait:VMS 4' -- "$GPUVIRT" top --interval 0.25 --iterations 3
        grep -q -- '--- exit 0' <<<"$OUT" && _ok "--iterations 3 ends the screen by itself" || _not_ok "--iterations on the screen" "$(tail -3 <<<"$OUT")"
fi

"$LAUNCH" stop "$CL" >/dev/null 2>&1
done_testing
