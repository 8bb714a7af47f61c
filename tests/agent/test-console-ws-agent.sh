#!/bin/bash
# SPDX-License-Identifier: MIT
# The consoles over WebSocket through gpuvirtd (docs/agent.md "Consoles over WebSocket"), with a
# WebSocket client in Python (tests/common/ws-client.py, standard library only):
#   - the graphical console: a guest-less VM's QEMU answers through the VNC bridge with the RFB
#     version string "RFB 003.008\n", the subprotocol "binary" is chosen when offered;
#   - refusals before any upgrade: no such VM (404), a stopped VM's display (409), a plain GET
#     (426), an unknown query parameter (400);
#   - the serial console with the busybox test guest (tests/guest; skipped, saying why, where it
#     cannot be built): the log is replayed first (the guest's READY line), a line typed into
#     the WebSocket comes back as GPUVIRT-ECHO, and a console open while the VM stops is closed
#     with 1000.
# Usage: test-console-ws-agent.sh GUESTDIR
. "$(dirname "$0")/../integration/lib.sh"
GUEST=${1:?usage: test-console-ws-agent.sh GUESTDIR}
command -v python3 >/dev/null || { echo "1..0 # SKIP python3 is not installed (the WebSocket client)"; exit 0; }
WS="python3 $(dirname "$0")/../common/ws-client.py"
new_host dgx-h100 h
. "$(dirname "$0")/agent-lib.sh"
WS_PID=
trap 'stop_agent; [ -n "$WS_PID" ] && kill "$WS_PID" 2>/dev/null; pkill -9 -f "guest=wsvm[12]" 2>/dev/null; _cleanup' EXIT
BOOT_S=120

start_agent
# ---- the graphical console on a guest-less VM (SeaBIOS only)
api POST /v1/vms '{"name":"wsvm1","memory_mib":64}' ws-def1
check "define a guest-less VM" 201 '.phase == "defined"'
run $WS "unix:$SOCK" /v1/vms/wsvm1/vnc/ws --expect-status 409
[ $RC = 0 ] && _contains "$OUT" "not-running" && _ok "a stopped VM's display: 409 before any upgrade" || _not_ok "a stopped VM's display: 409 before any upgrade"
api POST /v1/vms/wsvm1/start '' ws-start1
check "start it" 200 '.phase == "running"'
[ -S "$STATE/vms/wsvm1/run/vnc.sock" ] && [ "$(stat -c %a "$STATE/vms/wsvm1/run/vnc.sock")" = 600 ] \
        && _ok "QEMU's VNC socket is in the run directory, mode 0600" \
        || _not_ok "QEMU's VNC socket is in the run directory, mode 0600" "$(ls -la "$STATE/vms/wsvm1/run/" 2>&1)"
run $WS "unix:$SOCK" /v1/vms/wsvm1/vnc/ws --protocol binary --expect-protocol binary --expect-prefix 'RFB 003.008\n'
[ $RC = 0 ] && _ok "the VNC bridge answers with RFB 003.008 (subprotocol binary)" || _not_ok "the VNC bridge answers with RFB 003.008 (subprotocol binary)"
# Two displays at once: each WebSocket is its own VNC client.
$WS "unix:$SOCK" /v1/vms/wsvm1/vnc/ws --expect-prefix 'RFB 003.008\n' >"$TEST_TMP/vnc2.out" 2>&1 &
p2=$!
run $WS "unix:$SOCK" /v1/vms/wsvm1/vnc/ws --expect-prefix 'RFB 003.008\n'
wait $p2; rc2=$?
[ $RC = 0 ] && [ $rc2 = 0 ] && _ok "two displays of one VM at once" || _not_ok "two displays of one VM at once" "$(cat "$TEST_TMP/vnc2.out")"
run $WS "unix:$SOCK" /v1/vms/nosuchvm/vnc/ws --expect-status 404
[ $RC = 0 ] && _ok "the display of a VM that does not exist: 404" || _not_ok "the display of a VM that does not exist: 404"
run $WS "unix:$SOCK" /v1/vms/nosuchvm/console/ws --expect-status 404
[ $RC = 0 ] && _ok "the serial console of a VM that does not exist: 404" || _not_ok "the serial console of a VM that does not exist: 404"
run $WS "unix:$SOCK" '/v1/vms/wsvm1/console/ws?bytes=lots' --expect-status 400
[ $RC = 0 ] && _contains "$OUT" "bytes" && _ok "a bad bytes parameter: 400 naming it" || _not_ok "a bad bytes parameter: 400 naming it"
api GET /v1/vms/wsvm1/console/ws
check "a plain GET of a WebSocket route: 426 with the headers to send" 426 '.type | test("upgrade-required")'
api POST /v1/vms/wsvm1/kill '' ws-kill1
check "kill it" 200 '.phase != "running"'
api DELETE /v1/vms/wsvm1 '' ws-del1
check "delete it" 200 '.deleted'

# ---- the serial console with the test guest
if "$(dirname "$0")/../guest/make-guest.sh" "$GUEST" 2>"$TEST_TMP/make-guest.err"; then
        DEF=$(jq -nc --arg k "$GUEST/vmlinuz" --arg i "$GUEST/initramfs.cpio.gz" \
                '{name: "wsvm2", memory_mib: 256, boot: {kernel: $k, initrd: $i,
                  append: "console=ttyS0 quiet panic=-1"}}')
        api POST /v1/vms "$DEF" ws-def2
        check "define a VM that boots the test guest" 201 '.phase == "defined"'
        api POST /v1/vms/wsvm2/start '' ws-start2
        check "start it" 200 '.phase == "running"'
        # Live from the start (the replay covers what came before the connection).
        run $WS "unix:$SOCK" '/v1/vms/wsvm2/console/ws?bytes=1048576' --expect '^GPUVIRT-GUEST-READY$' --timeout $BOOT_S
        [ $RC = 0 ] && _ok "the serial console shows the guest booting to READY" || _not_ok "the serial console shows the guest booting to READY"
        # A new connection replays the log: READY is there at once.
        run $WS "unix:$SOCK" '/v1/vms/wsvm2/console/ws?bytes=1048576' --expect '^GPUVIRT-GUEST-READY$' --timeout 5
        [ $RC = 0 ] && _ok "a new connection gets the console log replayed first" || _not_ok "a new connection gets the console log replayed first"
        TOKEN="ws-$$-$RANDOM"
        run $WS "unix:$SOCK" '/v1/vms/wsvm2/console/ws?bytes=0' --send "$TOKEN\\n" --expect "^GPUVIRT-ECHO $TOKEN\$" --timeout 30
        [ $RC = 0 ] && _ok "a line typed into the WebSocket comes back as GPUVIRT-ECHO" || _not_ok "a line typed into the WebSocket comes back as GPUVIRT-ECHO"
        api GET '/v1/vms/wsvm2/console?bytes=65536'
        check "the console log keeps it" 200 ".text | test(\"GPUVIRT-ECHO $TOKEN\")"
        # Open while the VM stops: the stream ends with a normal close.
        $WS "unix:$SOCK" '/v1/vms/wsvm2/console/ws?bytes=0' --expect-close 1000 --timeout 90 >"$TEST_TMP/wsclose.out" 2>&1 &
        WS_PID=$!
        sleep 1
        api POST /v1/vms/wsvm2/stop '{"timeout_s":60}' ws-stop2
        check "stop the guest" 200 '.phase == "stopped"'
        wait "$WS_PID"; rc=$?; WS_PID=
        [ $rc = 0 ] && _ok "an open serial console is closed with 1000 when the VM stops" || _not_ok "an open serial console is closed with 1000 when the VM stops" "$(cat "$TEST_TMP/wsclose.out")"
        api DELETE /v1/vms/wsvm2 '' ws-del2
        check "delete it" 200 '.deleted'
else
        why=$(tail -n 1 "$TEST_TMP/make-guest.err")
        TAP_N=$((TAP_N + 1)); echo "ok $TAP_N - the serial console with the test guest # SKIP cannot build the test guest here: $why"
fi
stop_agent
done_testing
