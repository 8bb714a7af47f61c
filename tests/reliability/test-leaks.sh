#!/bin/bash
# SPDX-License-Identifier: MIT
# test-leaks.sh — R16 (reliability.md §5; Incus's fdleak suite tolerates 5 [S54], we tolerate
# none): VM life cycles through the controller (create, stop, start, delete of a vGPU VM, a MIG
# VM and a pass-through VM in turn, each with real QEMU), then every daemon's open file
# descriptors and resident memory compared with what they were after a warm-up.
#
#   fds:  the count of /proc/PID/fd (its floor over 2 s) must be back to the baseline or below (the cycles leave no
#         VM behind, so nothing they opened may stay open);
#   RSS:  reported at the baseline, half-way and the end; over the second half of the cycles
#         (after malloc's per-thread arenas and the caches have grown) it may grow by at most
#         LEAK_RSS_KIB_PER_CYCLE (default 256) KiB a cycle: what is kept by design (the agent's
#         journal keeps each answer a day) grows a little every cycle, a leaked VM's state more.
# Cycles: LEAK_CYCLES (default 100: R16's figure; each cycle is one VM's create, stop, start,
# delete). make test-asan runs 30 (LEAK_CYCLES in the Makefile) and judges only the fds: ASan's
# quarantine keeps freed memory, so RSS is judged in the plain build (a TAP SKIP says so).
. "$(dirname "$0")/../integration/lib.sh"
. "$(dirname "$0")/../controller/cluster-lib.sh"

CYCLES=${LEAK_CYCLES:-100}
SLACK_PER_CYCLE=${LEAK_RSS_KIB_PER_CYCLE:-256}
cluster_init leaks
cluster_start --hosts 2 --profiles dgx-h100,dgx-a100 --accel tcg

# fds PID: the fewest open descriptors in 10 looks 200 ms apart. A daemon holds short-lived ones
# (a poll's connection to an agent, a request being served); a leak raises the floor, which is
# what is compared.
fds() {
        local i n min=
        for i in 1 2 3 4 5 6 7 8 9 10; do
                n=$(find "/proc/$1/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)
                [ -z "$min" ] || [ "$n" -lt "$min" ] && min=$n
                sleep 0.2
        done
        echo "$min"
}
rss() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
daemons() { # NAME=PID lines: the controller and each agent
        echo "controller=$CONTROLLER_PID"
        echo "node-a=$(host_var node-a PID)"
        echo "node-b=$(host_var node-b PID)"
}

GPUS=('{"kind": "vgpu", "type": "H100XM-20C"}'
      '{"kind": "mig", "profile": "3g.40gb"}'
      '{"kind": "passthrough", "count": 1}')
FAILED=0
step_ok() { # WHAT: the last answer is a succeeded operation, else FAILED grows and it is told
        [ "$HTTP" = 200 ] && [ "$(jqo .state)" = succeeded ] && return 0
        FAILED=$((FAILED + 1))
        diag "$1: $HTTP $(head -c 300 <<<"$OUT")"
        return 1
}
# cycle TAG N (TAG: for the reader of the log only): VM leak-(N mod 3), with GPU kind N mod 3, through create, stop, start, delete.
# The three names come back every third cycle, as a CI job's VMs do: the metrics history keeps a
# deleted VM's series for 15 minutes by design (GV_METRICS_DROP_AFTER_MS, bounded by its series
# cap), which with a new name per cycle would read as growth here.
cycle() {
        local name="leak-$(($2 % 3))" g=${GPUS[$(($2 % 3))]}
        create "$name" "$g"
        step_ok "create $name" || return
        capi POST "/api/v1/vms/$name/stop?wait=60" '{"timeout_s": 1}'
        step_ok "stop $name"
        capi POST "/api/v1/vms/$name/start?wait=60"
        step_ok "start $name"
        capi DELETE "/api/v1/vms/$name?wait=60"
        step_ok "delete $name"
}

# Warm-up: every path once (each GPU kind, each answer), so that what is allocated once and
# kept (prepared statements, the TLS-less HTTP pools, caches) is in the baseline.
for i in 0 1 2 3 4 5; do cycle "w$i" "$i"; done
sleep 2
declare -A FD0 RSS0
while IFS== read -r name pid; do
        FD0[$name]=$(fds "$pid")
        RSS0[$name]=$(rss "$pid")
done < <(daemons)

T0=$SECONDS
declare -A RSS1
for ((i = 0; i < CYCLES; i++)); do
        cycle "$i" "$i"
        if [ $i -eq $((CYCLES / 2 - 1)) ]; then
                while IFS== read -r name pid; do RSS1[$name]=$(rss "$pid"); done < <(daemons)
        fi
done
ELAPSED=$((SECONDS - T0))
assert_eq "$FAILED" 0 "$CYCLES cycles of create, stop, start and delete: every step's operation succeeded ($ELAPSED s)"
capi GET /api/v1/vms
check "no VM left after the cycles" 200 'length == 0'
leak_check "after $CYCLES cycles"

# The daemons settle (a poll, a reconcile pass, the sampler) before they are measured again.
sleep 3
while IFS== read -r name pid; do
        f=$(fds "$pid")
        r=$(rss "$pid")
        if [ "$f" -le "${FD0[$name]}" ]; then
                _ok "$name: open fds back to the baseline ($f) after $CYCLES cycles"
        else
                _not_ok "$name: open fds back to the baseline after $CYCLES cycles" \
                        "baseline ${FD0[$name]}, now $f: $(ls -l "/proc/$pid/fd" | tail -n +2 | awk '{print $NF}' | sort | uniq -c | sort -rn | head -5 | tr '\n' ';')"
        fi
        # Growth over the second half of the cycles, per cycle. Measured here: about 70 KiB a
        # cycle on the agent that ran the VMs (its journal keeps each operation's answer for a
        # day, oplog.h) and about 75 KiB on the controller (not yet attributed, docs/reliability.md
        # "Resource leaks"); the bound catches a cycle that leaks a VM's worth of state.
        growth=$((r - RSS1[$name]))
        half=$((CYCLES - CYCLES / 2))
        if grep -q libasan "/proc/$pid/maps" 2>/dev/null; then
                # ASan keeps freed memory in its quarantine (256 MiB by default), so RSS says
                # nothing about leaks there; the plain build's make test measures it.
                _ok "$name: RSS not judged under ASan (its quarantine holds freed memory) # SKIP ASan build"
        elif [ "$growth" -le $((SLACK_PER_CYCLE * half)) ]; then
                _ok "$name: RSS ${RSS1[$name]} → $r KiB over the last $half cycles ($((growth / half)) KiB a cycle ≤ $SLACK_PER_CYCLE)"
        else
                _not_ok "$name: RSS growth ≤ $SLACK_PER_CYCLE KiB a cycle over the last $half cycles" \
                        "baseline ${RSS0[$name]} KiB, half-way ${RSS1[$name]} KiB, now $r KiB"
        fi
        diag "$name: fds ${FD0[$name]} → $f, RSS ${RSS0[$name]} → ${RSS1[$name]} (half-way) → $r KiB"
done < <(daemons)
no_sanitizer_reports
done_testing
