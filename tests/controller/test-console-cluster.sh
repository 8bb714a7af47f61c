#!/bin/bash
# SPDX-License-Identifier: MIT
# A VM's consoles through the controller (docs/api.md "Consoles") on a simulated one-host
# cluster with real QEMU (TCG) and a guest-less VM, with a WebSocket client in Python
# (tests/common/ws-client.py) over the controller's TCP listener, as a browser reaches it:
#   - the display relayed from the agent answers "RFB 003.008\n"; the token travels as the
#     subprotocol "gpuvirt.bearer.<token>" and the controller chooses "binary", never the token;
#   - the serial console opens with "gpuvirt" chosen and closes cleanly (1000 both ways);
#   - an Authorization header works as well;
#   - refusals before any upgrade: no token (401), a bad token (401), a viewer's token (403), a
#     VM that does not exist (404), a stopped VM (409, the agent's words passed on), a plain GET
#     (426); the token is not in the controller's log.
. "$(dirname "$0")/../integration/lib.sh"
. "$(dirname "$0")/cluster-lib.sh"
command -v python3 >/dev/null || { echo "1..0 # SKIP python3 is not installed (the WebSocket client)"; exit 0; }
WS="python3 $(dirname "$0")/../common/ws-client.py"
cluster_init cc
cluster_start --hosts 1 --profiles dgx-h100 --accel tcg
EP=$CONTROLLER_URL
ADMIN=$(cat "$CL/dashboard.token")
capi POST /api/v1/tokens '{"name":"viewer1","role":"viewer"}'
VIEWER=$(jqo .token)
capi POST /api/v1/tokens '{"name":"op1","role":"operator"}'
OPER=$(jqo .token)
[ -n "$ADMIN" ] && [ -n "$VIEWER" ] && [ -n "$OPER" ] && _ok "tokens: admin, operator, viewer" || _not_ok "tokens: admin, operator, viewer"

create c1 '{"kind": "vgpu", "type": "H100XM-20C"}'
check "a guest-less VM runs" 200 '.state == "succeeded"'

run $WS "$EP" /api/v1/vms/c1/vnc/ws --protocol binary --protocol "gpuvirt.bearer.$OPER" \
        --expect-protocol binary --expect-prefix 'RFB 003.008\n'
[ $RC = 0 ] && _ok "the display through the controller: RFB 003.008, subprotocol binary, token as a subprotocol" || _not_ok "the display through the controller: RFB 003.008, subprotocol binary, token as a subprotocol"
run $WS "$EP" /api/v1/vms/c1/console/ws --protocol gpuvirt --protocol "gpuvirt.bearer.$ADMIN" \
        --expect-protocol gpuvirt
[ $RC = 0 ] && _contains "$OUT" "close 1000" && _ok "the serial console through the controller opens (gpuvirt) and closes with 1000" || _not_ok "the serial console through the controller opens (gpuvirt) and closes with 1000"
run $WS "$EP" /api/v1/vms/c1/vnc/ws --header "Authorization: Bearer $OPER" --expect-prefix 'RFB 003.008\n'
[ $RC = 0 ] && _ok "an Authorization header works too" || _not_ok "an Authorization header works too"

run $WS "$EP" /api/v1/vms/c1/vnc/ws --protocol binary --expect-status 401
[ $RC = 0 ] && _ok "no token: 401" || _not_ok "no token: 401"
run $WS "$EP" /api/v1/vms/c1/vnc/ws --protocol binary --protocol "gpuvirt.bearer.gvt_0000" --expect-status 401
[ $RC = 0 ] && _ok "a bad token: 401" || _not_ok "a bad token: 401"
run $WS "$EP" /api/v1/vms/c1/console/ws --protocol gpuvirt --protocol "gpuvirt.bearer.$VIEWER" --expect-status 403
[ $RC = 0 ] && _contains "$OUT" operator && _ok "a viewer's token: 403 naming the role needed" || _not_ok "a viewer's token: 403 naming the role needed"
run $WS "$EP" /api/v1/vms/nosuch/console/ws --protocol gpuvirt --protocol "gpuvirt.bearer.$OPER" --expect-status 404
[ $RC = 0 ] && _ok "a VM that does not exist: 404" || _not_ok "a VM that does not exist: 404"
HTTP=$(curl -s -o "$TEST_TMP/body" -w '%{http_code}' -H "Authorization: Bearer $OPER" "$EP/api/v1/vms/c1/console/ws")
OUT=$(cat "$TEST_TMP/body")
check "a plain GET: 426 with what to send" 426 '.type | test("upgrade-required")'

capi POST '/api/v1/vms/c1/stop?wait=60' '{"timeout_s": 1}'
check "stop the VM" 200 '.state == "succeeded"'
run $WS "$EP" /api/v1/vms/c1/vnc/ws --protocol binary --protocol "gpuvirt.bearer.$OPER" --expect-status 409
[ $RC = 0 ] && _contains "$OUT" "Start it first" && _ok "a stopped VM's display: 409 in the agent's words" || _not_ok "a stopped VM's display: 409 in the agent's words"

if grep -rqF -- "$OPER" "$CL"/logs/ 2>/dev/null; then
        _not_ok "the operator's token is in no log" "$(grep -rlF -- "$OPER" "$CL"/logs/)"
else
        _ok "the operator's token is in no log"
fi
done_testing
