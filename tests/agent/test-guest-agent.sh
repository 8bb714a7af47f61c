#!/bin/bash
# SPDX-License-Identifier: MIT
# A real Linux guest through gpuvirtd: Debian's kernel and the busybox initramfs of
# tests/guest/make-guest.sh, on a simulated 8xH100 host with a time-sliced vGPU (QEMU gets the
# edu stand-in). Checks, all through the agent's API:
#   - the guest boots to GPUVIRT-GUEST-READY, seen live on the console stream (follow=true),
#     and sees its GPU stand-in (1234:11e8) on its PCI bus;
#   - a line written to the console comes back (GPUVIRT-ECHO) and is kept in the console log;
#   - stop presses the ACPI power button and the guest powers off (last_stop acpi-powerdown,
#     not a quit or kill), the stream ends by itself, the vGPU is released;
#   - a guest that powers itself off ("poweroff" on its console) is stopped, not crashed.
# Usage: test-guest-agent.sh GUESTDIR (make-guest.sh builds it there, or reuses it).
. "$(dirname "$0")/../integration/lib.sh"
GUEST=${1:?usage: test-guest-agent.sh GUESTDIR}
"$(dirname "$0")/../guest/make-guest.sh" "$GUEST" 2>"$TEST_TMP/make-guest.err"
case $? in
0) ;;
77) echo "1..0 # SKIP cannot build the test guest here: $(tail -n 1 "$TEST_TMP/make-guest.err")"; exit 0 ;;
*) echo "Bail out! make-guest.sh failed: $(tail -n 3 "$TEST_TMP/make-guest.err")"; exit 1 ;;
esac
new_host dgx-h100 h
. "$(dirname "$0")/agent-lib.sh"
FOLLOW_PID=
trap 'stop_agent; [ -n "$FOLLOW_PID" ] && kill "$FOLLOW_PID" 2>/dev/null; pkill -9 -f "guest=guest1" 2>/dev/null; _cleanup' EXIT
# TCG boots this guest in 5-20 s on a loaded 2-core machine; KVM (GV_AGENT_ACCEL=kvm) in 1-2.
BOOT_S=120

# wait_console FILE REGEX SECS: 0 when a line of FILE (CR stripped) matches.
wait_console() {
        local deadline=$((SECONDS + $3))
        while [ $SECONDS -lt $deadline ]; do
                tr -d '\r' <"$1" 2>/dev/null | grep -qE -- "$2" && return 0
                sleep 0.2
        done
        return 1
}
console_ok() { # NAME FILE REGEX SECS
        if wait_console "$2" "$3" "$4"; then
                _ok "$1"
        else
                _not_ok "$1" "no console line matching '$3' within $4 s"
                tr -d '\r' <"$2" 2>/dev/null | tail -n 20 | diag
        fi
}

start_agent
DEF=$(jq -nc --arg k "$GUEST/vmlinuz" --arg i "$GUEST/initramfs.cpio.gz" \
        '{name: "guest1", memory_mib: 256, boot: {kernel: $k, initrd: $i,
          append: "console=ttyS0 quiet panic=-1"},
          nics: [{mode: "user"}], gpus: [{mode: "vgpu", type: "H100XM-20C"}]}')
api POST /v1/vms "$DEF" g-def
check "define a VM that boots the test kernel, with a vGPU" 201 '.phase == "defined"'

api POST /v1/vms/guest1/start '' g-start1
check "start: running, the vGPU behind an edu stand-in" 200 '.phase == "running" and .devices[0].kind == "standin" and (.hw|length) == 1'
HELD=$(vf_types_set)
[ "$HELD" -ge 1 ] && _ok "the vGPU exists on the host while the VM runs" || _not_ok "the vGPU exists on the host while the VM runs" "no VF carries a vGPU type"

# The stream from its first byte: everything the guest printed, then live.
curl -sN --unix-socket "$SOCK" "http://agent/v1/vms/guest1/console?follow=true&bytes=1048576" \
        >"$TEST_TMP/follow.out" 2>"$TEST_TMP/follow.err" &
FOLLOW_PID=$!
console_ok "the guest boots (seen on the console stream)" "$TEST_TMP/follow.out" '^GPUVIRT-GUEST-BOOTED$' $BOOT_S
console_ok "the guest is ready" "$TEST_TMP/follow.out" '^GPUVIRT-GUEST-READY$' $BOOT_S
console_ok "the GPU stand-in (edu 1234:11e8) is on the guest's PCI bus" "$TEST_TMP/follow.out" \
        '^GPUVIRT-PCI [0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7] 1234:11e8 00ff[0-9a-f]{2}$' 1

TOKEN="hello-agent-$$-$RANDOM"
api POST /v1/vms/guest1/console "$TOKEN
" g-con1
check "write a line to the console" 200 '.written > 0'
console_ok "the guest answers it on the stream" "$TEST_TMP/follow.out" "^GPUVIRT-ECHO $TOKEN\$" 20
api GET '/v1/vms/guest1/console?bytes=4096'
check "the console log keeps it" 200 ".text | test(\"GPUVIRT-ECHO $TOKEN\")"
api GET '/v1/vms/guest1/console?follow=maybe'
check "follow takes true or false only" 400 '.detail | test("follow")'

api POST /v1/vms/guest1/stop '{"timeout_s":60}' g-stop1
check "stop: the guest answers the ACPI power button" 200 '.phase == "stopped" and .last_stop == "acpi-powerdown"'
check "... and its vGPU is released" 200 '(.hw|length) == 0'
assert_eq "$(vf_types_set)" 0 "no VF carries a vGPU type after the stop"
console_ok "the guest saw the power button" "$TEST_TMP/follow.out" '^GPUVIRT-GUEST-POWERBUTTON$' 5
ended=no
for _ in $(seq 50); do
        kill -0 "$FOLLOW_PID" 2>/dev/null || { ended=yes; break; }
        sleep 0.1
done
[ $ended = yes ] && _ok "the console stream ends when QEMU exits" || _not_ok "the console stream ends when QEMU exits"
wait "$FOLLOW_PID" 2>/dev/null
assert_eq "$?" 0 "... as a complete HTTP reply (curl exit 0)"
FOLLOW_PID=

# ---- a guest that powers itself off
api POST /v1/vms/guest1/start '' g-start2
check "start again" 200 '.phase == "running"'
for _ in $(seq $((BOOT_S * 5))); do
        api GET '/v1/vms/guest1/console?bytes=1048576'
        jq -e '(.text | split("GPUVIRT-GUEST-READY") | length) >= 3' <<<"$OUT" >/dev/null 2>&1 && break
        sleep 0.2
done
check "the second boot reaches READY (the log keeps both boots)" 200 '(.text | split("GPUVIRT-GUEST-READY") | length) >= 3'
api POST /v1/vms/guest1/console 'poweroff
' g-con2
check "ask the guest to power off from inside" 200 '.written > 0'
wait_vm guest1 '.phase != "running"' 30
check "a guest that powers off is stopped, not crashed" 200 '.phase == "stopped" and .last_stop == "guest-poweroff" and (.hw|length) == 0 and .last_error == null'
assert_eq "$(vf_types_set)" 0 "its vGPU is released"

api DELETE /v1/vms/guest1 '' g-del
check "delete" 200 '.deleted'
stop_agent
done_testing
