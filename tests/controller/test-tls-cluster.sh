#!/bin/bash
# SPDX-License-Identifier: MIT
# Transport security on a simulated two-host cluster started with sim-cluster.sh --tls
# (docs/tls.md; every TCP listener on TLS 1.3 with certificates from contrib/gpuvirt-certs.sh):
#   - the CLI over https (the CA from GPUVIRT_CA, --ca or 'ca =' in its config) lists the hosts
#     and creates, stops, starts and deletes a VM; without the CA it fails naming the store used;
#   - TLS 1.2 is refused by the controller and by an agent; a client without the CA is refused;
#     plain http on the TLS port gets no answer;
#   - an agent's TCP API without its secret, or with a wrong one, answers 401 with
#     WWW-Authenticate, also for unknown paths; with the secret, 200; its UNIX socket needs none;
#   - the controller still drives the agents (it holds their secrets), yet GET /api/v1/hosts,
#     the events and every log hold no secret;
#   - the serial console and the display through the controller over TLS (browser → controller
#     → agent, both legs TLS).
. "$(dirname "$0")/../integration/lib.sh"
. "$(dirname "$0")/cluster-lib.sh"
command -v certtool >/dev/null || command -v openssl >/dev/null ||
        { echo "1..0 # SKIP neither certtool nor openssl is installed (certificates)"; exit 0; }
cluster_init tls
cluster_start --hosts 2 --profiles dgx-h100 --accel tcg --tls
ADMIN=$(cat "$CL/dashboard.token")
CA=$CL/tls/ca.pem
EP=$CONTROLLER_URL
SECRET_A=$(cat "$NODE_A_STATE/agent.secret")

[[ "$EP" == https://* ]] && [[ "$NODE_A_URL" == https://* ]] && [ "$GPUVIRT_CA" = "$CA" ] &&
        _ok "every TCP URL is https, and cluster.env exports the CA" ||
        _not_ok "every TCP URL is https, and cluster.env exports the CA" "$EP $NODE_A_URL ${GPUVIRT_CA:-}"
capi GET /api/v1/hosts
check "the agents registered with https endpoints, both up" 200 \
        'length == 2 and all(.[]; .state == "up" and (.endpoint | startswith("https://")))'

# ---- the CLI over https
gvt() { GPUVIRT_ENDPOINT=$EP GPUVIRT_TOKEN=$ADMIN run "$GPUVIRT" "$@"; }
gvt host list
assert_rc 0 "gpuvirt host list over https (CA from GPUVIRT_CA)"
_contains "$OUT" node-b && _ok "... lists both hosts" || _not_ok "... lists both hosts" "$OUT"
gvt vm create t1 --memory 128M --gpu vgpu:H100XM-20C --wait
assert_rc 0 "gpuvirt vm create t1 over https"
gvt vm stop t1 --timeout 1 --wait
assert_rc 0 "gpuvirt vm stop t1 over https"
gvt vm start t1 --wait
assert_rc 0 "gpuvirt vm start t1 over https"
capi GET /api/v1/vms/t1
check "... t1 runs" 200 '.state == "running"'
T1_HOST=$(jqo .host)
aapi "$T1_HOST" /v1/vms/t1
check "... on its agent, reached over TLS with the agent's secret" 200 '.phase == "running"'

GPUVIRT_CA='' GPUVIRT_ENDPOINT=$EP GPUVIRT_TOKEN=$ADMIN run "$GPUVIRT" --ca "$CA" vm list
assert_rc 0 "gpuvirt --ca FILE vm list"
mkdir -p "$TEST_TMP/xdg/gpuvirt"
printf 'endpoint = %s\ntoken = %s\nca = %s\n' "$EP" "$ADMIN" "$CA" >"$TEST_TMP/xdg/gpuvirt/config"
chmod 600 "$TEST_TMP/xdg/gpuvirt/config"
GPUVIRT_CA='' GPUVIRT_ENDPOINT='' XDG_CONFIG_HOME=$TEST_TMP/xdg run "$GPUVIRT" host list
assert_rc 0 "gpuvirt with endpoint, token and ca from its config file"
GPUVIRT_CA='' GPUVIRT_ENDPOINT=$EP GPUVIRT_TOKEN=$ADMIN XDG_CONFIG_HOME=$TEST_TMP/none run "$GPUVIRT" host list
[ "$RC" != 0 ] && _contains "$ERR" "does not verify against the system's trust store" && _contains "$ERR" "--ca" &&
        _ok "without the CA the CLI fails, naming the store it used and --ca" ||
        _not_ok "without the CA the CLI fails, naming the store it used and --ca" "rc $RC: $ERR"
"$(dirname "$LAUNCH")/gpuvirt-certs.sh" ca "$TEST_TMP/other" >/dev/null
GPUVIRT_CA=$TEST_TMP/other/ca.pem GPUVIRT_ENDPOINT=$EP GPUVIRT_TOKEN=$ADMIN run "$GPUVIRT" host list
[ "$RC" != 0 ] && _contains "$ERR" "$TEST_TMP/other/ca.pem" &&
        _ok "with the wrong CA the CLI fails, naming the CA file" ||
        _not_ok "with the wrong CA the CLI fails, naming the CA file" "rc $RC: $ERR"

# ---- what TLS refuses
for target in "$EP/api/v1/health" "$NODE_A_URL/v1/host"; do
        curl -s -o /dev/null --max-time 10 --cacert "$CA" --tlsv1.2 --tls-max 1.2 \
                -H "Authorization: Bearer $SECRET_A" "$target"
        rc=$?
        [ $rc -ne 0 ] && _ok "TLS 1.2 refused by ${target%%/v1*} (curl $rc)" ||
                _not_ok "TLS 1.2 refused by ${target%%/v1*}"
done
curl -s -o /dev/null --max-time 10 "$EP/api/v1/health"
rc=$?
[ $rc = 60 ] && _ok "curl without the CA: the certificate is not trusted (curl 60)" ||
        _not_ok "curl without the CA: the certificate is not trusted (curl 60)" "curl $rc"
HTTP=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 "http://${EP#https://}/api/v1/health")
[ "$HTTP" = 000 ] && _ok "plain http on the TLS port gets no HTTP answer" ||
        _not_ok "plain http on the TLS port gets no HTTP answer" "HTTP $HTTP"
HTTP=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 --cacert "$CA" "$EP/api/v1/health")
[ "$HTTP" = 200 ] && _ok "with the CA: 200" || _not_ok "with the CA: 200" "HTTP $HTTP"

# ---- the agents' secret
agent_try() { # HOST PATH [AUTH-HEADER]: $HTTP, $OUT, $HDRS
        local args=(-s -o "$TEST_TMP/body" -D "$TEST_TMP/hdrs" -w '%{http_code}' --max-time 10
                    --cacert "$CA")
        [ -n "${3:-}" ] && args+=(-H "$3")
        HTTP=$(curl "${args[@]}" "$(host_var "$1" URL)$2")
        OUT=$(cat "$TEST_TMP/body")
        HDRS=$(cat "$TEST_TMP/hdrs")
}
agent_try node-a /v1/host
check "an agent's TCP API without the secret: 401" 401 '.type | test("unauthorized")'
_contains "$HDRS" "WWW-Authenticate: Bearer" && _ok "... with WWW-Authenticate: Bearer" ||
        _not_ok "... with WWW-Authenticate: Bearer" "$HDRS"
agent_try node-a /v1/vms "Authorization: Bearer $(printf '%064d' 0)"
check "... with a wrong secret: 401" 401 '.status == 401'
agent_try node-a /v1/host "Authorization: Bearer $(cat "$NODE_B_STATE/agent.secret")"
check "... with another agent's secret: 401" 401 '.status == 401'
agent_try node-a /v1/nowhere
check "... an unknown path without the secret: 401, not 404" 401 '.status == 401'
agent_try node-a /v1/host "Authorization: Bearer $SECRET_A"
check "... with its secret: 200" 200 '.gpus | length == 8'
HTTP=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 --unix-socket "$NODE_A_STATE/agent.sock" http://agent/v1/host)
[ "$HTTP" = 200 ] && _ok "its UNIX socket (local admin) needs no secret" || _not_ok "its UNIX socket (local admin) needs no secret" "HTTP $HTTP"
mode=$(stat -c %a "$NODE_A_STATE/agent.secret")
[ "$mode" = 600 ] && [[ "$SECRET_A" =~ ^[0-9a-f]{64}$ ]] &&
        _ok "the secret: 64 hex digits in a 0600 file" || _not_ok "the secret: 64 hex digits in a 0600 file" "mode $mode"

# The controller drives both agents (it holds their secrets): a VM on each, gone again.
gvt vm create t2 --memory 128M --gpu vgpu:H100XM-20C --host "$([ "$T1_HOST" = node-a ] && echo node-b || echo node-a)" --wait
assert_rc 0 "the controller drives the other agent too (a VM there)"
metrics_ok() {
        capi GET /api/v1/metrics
        [ "$HTTP" = 200 ] && jq -e '([.hosts[] | select(.error == null) | .host] | sort) == ["node-a", "node-b"]' <<<"$OUT" >/dev/null 2>&1
}
if wait_for 20 metrics_ok; then
        _ok "the metrics collector reads both agents over TLS with their secrets"
else
        _not_ok "the metrics collector reads both agents over TLS with their secrets" "$(head -c 500 <<<"$OUT")"
fi

# ---- consoles through the controller, TLS on both legs
if command -v python3 >/dev/null; then
        WS="python3 $(dirname "$0")/../common/ws-client.py"
        run $WS "$EP" /api/v1/vms/t1/vnc/ws --protocol binary --protocol "gpuvirt.bearer.$ADMIN" \
                --expect-protocol binary --expect-prefix 'RFB 003.008\n'
        [ $RC = 0 ] && _ok "the display through the controller over TLS: RFB 003.008" ||
                _not_ok "the display through the controller over TLS: RFB 003.008" "$ERR"
        run $WS "$EP" /api/v1/vms/t1/console/ws --protocol gpuvirt --protocol "gpuvirt.bearer.$ADMIN" \
                --expect-protocol gpuvirt
        [ $RC = 0 ] && _contains "$OUT" "close 1000" &&
                _ok "the serial console through the controller over TLS opens and closes with 1000" ||
                _not_ok "the serial console through the controller over TLS opens and closes with 1000" "$OUT $ERR"
else
        diag "python3 is not installed: the console checks are left out"
fi

gvt vm delete t1 --wait
assert_rc 0 "gpuvirt vm delete t1 over https"
gvt vm delete t2 --wait
assert_rc 0 "gpuvirt vm delete t2 over https"
capi GET /api/v1/vms
check "... no VM is left" 200 'length == 0'

# ---- no secret where it does not belong
capi GET /api/v1/hosts
_not_contains() { [[ "$1" != *"$2"* ]]; }
leaks=
for h in node-a node-b; do
        s=$(cat "$(host_var "$h" STATE)/agent.secret")
        capi GET /api/v1/hosts
        _not_contains "$OUT" "$s" || leaks="$leaks GET-hosts:$h"
        capi GET "/api/v1/hosts/$h"
        _not_contains "$OUT" "$s" || leaks="$leaks GET-host:$h"
        curl -s -N --max-time 2 --unix-socket "$SOCK" 'http://controller/api/v1/events?after=0' >"$TEST_TMP/events" 2>/dev/null
        grep -qF -- "$s" "$TEST_TMP/events" && leaks="$leaks events:$h"
        grep -rqF -- "$s" "$CL"/logs/ && leaks="$leaks logs:$h($(grep -rlF -- "$s" "$CL"/logs/ | tr '\n' ' '))"
done
[ -z "$leaks" ] && _ok "no agent secret in GET /api/v1/hosts, a host's view, the events or any log" ||
        _not_ok "no agent secret in GET /api/v1/hosts, a host's view, the events or any log" "$leaks"

# The daemons stopped (SIGTERM): the relay and upgrade threads ended, nothing leaked (ASan).
run "$LAUNCH" stop "$CL"
assert_rc 0 "sim-cluster.sh stop"
if grep -lE "ERROR: (Address|Leak)Sanitizer|runtime error:|ThreadSanitizer" "$CL"/logs/*.log >"$TEST_TMP/san" 2>/dev/null; then
        _not_ok "no sanitizer report in the daemons' logs" "$(cat "$TEST_TMP/san")" \
                "$(grep -hE -A20 "ERROR: (Address|Leak)Sanitizer|runtime error:|ThreadSanitizer" "$CL"/logs/*.log | head -60)"
else
        _ok "no sanitizer report in the daemons' logs"
fi
done_testing
