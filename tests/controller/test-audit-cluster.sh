#!/bin/bash
# SPDX-License-Identifier: MIT
# The audit log on a simulated cluster (one l40s-4 host; real QEMU on TCG), R21 in
# ../shared/reference/reliability.md: changes asked for over TCP with tokens — allowed, denied
# (no token, a wrong token, a viewer, a tenant's member) and failed — and on the UNIX socket each
# leave one record with the right principal, role, tenant, source, object, status and outcome;
# reads leave none. `gpuvirt audit` shows them as a table and filters them (principal, outcome,
# object, tenant, method, --since as a duration), pages with the command it prints, refuses a
# bad filter in the controller's words, and is refused to an operator. The records survive a
# restarted controller; /metrics counts them and no failure.
. "$(dirname "$0")/../integration/lib.sh"
. "$(dirname "$0")/cluster-lib.sh"
cluster_init audit

cluster_start --hosts 1 --profiles l40s-4 --accel tcg --same-group
CURL_TLS=()
[ -n "${GPUVIRT_CA:-}" ] && CURL_TLS=(--cacert "$GPUVIRT_CA")

token() { # NAME ROLE [TENANT] -> the secret on stdout
        local body
        body=$(jq -nc --arg n "$1" --arg r "$2" --arg t "${3:-}" \
                '{name: $n, role: $r} + (if $t == "" then {} else {tenant: $t} end)')
        capi POST /api/v1/tokens "$body"
        [ "$HTTP" = 201 ] || { echo "Bail out! token $1: $HTTP $OUT"; exit 1; }
        jqo .token
}
# tapi TOKEN METHOD PATH [BODY]: the API over TCP with a token ("" sends none); $HTTP, $OUT.
tapi() {
        local args=(-s -o "$TEST_TMP/body" -w '%{http_code}' --max-time 120 "${CURL_TLS[@]}" -X "$2")
        [ -n "$1" ] && args+=(-H "Authorization: Bearer $1")
        [ -n "${4:-}" ] && args+=(-H 'Content-Type: application/json' --data-binary "$4")
        HTTP=$(curl "${args[@]}" "$CONTROLLER_URL$3")
        OUT=$(cat "$TEST_TMP/body" 2>/dev/null)
        LAST_CMD="$2 $3 ${4:-} (token ${1:0:6}…)"; RC=$HTTP; ERR=
}
# audit_cli ARGS...: gpuvirt audit over TCP with the admin token.
audit_cli() {
        run env GPUVIRT_ENDPOINT="$CONTROLLER_URL" GPUVIRT_TOKEN="$TOKEN_ADMIN" "$GPUVIRT" audit "$@"
}

# ---- the changes (sim-cluster.sh made some already: the dashboard's token)
capi GET '/api/v1/audit?limit=1000'
TOKENS_BEFORE=$(jq '[.records[] | select(.path == "/api/v1/tokens" and .method == "POST")] | length' <<<"$OUT")
capi PUT /api/v1/tenants/alpha '{"description": "audited"}'
check "tenant alpha made on the UNIX socket" 200 '.name == "alpha"'
TOKEN_ADMIN=$(token t-admin admin)
TOKEN_OPS=$(token t-ops operator)
TOKEN_VIEW=$(token t-view viewer)
TOKEN_ALPHA=$(token t-alpha member alpha)
capi GET /api/v1/tokens
VIEW_ID=$(jqo '.[] | select(.name == "t-view") | .id')

tapi "$TOKEN_OPS" POST '/api/v1/vms?wait=60' '{"name": "audit-vm", "memory_mib": 128, "tenant": "alpha"}'
check "operator creates audit-vm (allowed)" 200 '.state == "succeeded"'
OP_CREATE=$(jqo .id)
tapi "$TOKEN_VIEW" POST /api/v1/vms/audit-vm/stop
check "viewer stopping audit-vm is 403" 403 '.status == 403'
tapi "" DELETE /api/v1/vms/audit-vm
check "no token deleting audit-vm is 401" 401 '.status == 401'
tapi "not-a-token" POST /api/v1/vms/audit-vm/start
check "a wrong token is 401" 401 '.status == 401'
tapi "$TOKEN_ALPHA" PUT /api/v1/tenants/alpha '{"description": "mine now"}'
check "alpha's member changing tenant alpha is 403" 403 '.status == 403'
tapi "$TOKEN_OPS" POST /api/v1/vms/nope/start
check "operator starting a VM that does not exist is 404" 404 '.status == 404'
tapi "$TOKEN_ADMIN" PUT /api/v1/licenses/vws '{"edition": "vws", "seats": 2}'
check "admin makes licence pool vws" 200 '.name == "vws"'
tapi "$TOKEN_VIEW" GET /api/v1/vms
check "a read (viewer lists VMs)" 200 'type == "array"'

# ---- the records, through the CLI's --json
audit_cli --json --limit 1000
assert_rc 0 "gpuvirt audit --json (admin token over TCP)"
ALL=$OUT
rec() { # JQ-SELECT: the records matching, as a JSON array
        jq -c "[.records[] | select($1)]" <<<"$ALL"
}
holds() { # NAME JQ-SELECT JQ-TEST: exactly one record matches the select and the test holds on it
        local got
        got=$(rec "$2")
        if jq -e "length == 1 and (.[0] | $3)" <<<"$got" >/dev/null 2>&1; then
                _ok "$1"
        else
                _not_ok "$1" "records matching: $got"
        fi
}
TCP='(.source | startswith("tcp:127.0.0.1:"))'
holds "create: t-ops, operator, from TCP, allowed 200 with its operation" \
        '.path == "/api/v1/vms" and .method == "POST"' \
        ".principal == \"token:t-ops\" and .role == \"operator\" and .token_id != null and $TCP and .status == 200 and .outcome == \"allowed\" and .operation_id == \"$OP_CREATE\" and .tenant == null"
holds "stop by the viewer: denied 403 on vm/audit-vm with the refusal's words" \
        '.path == "/api/v1/vms/audit-vm/stop"' \
        ".principal == \"token:t-view\" and .token_id == \"$VIEW_ID\" and .role == \"viewer\" and $TCP and .object == \"vm/audit-vm\" and .status == 403 and .outcome == \"denied\" and (.detail | length > 0)"
holds "delete without a token: anonymous, denied 401" \
        '.path == "/api/v1/vms/audit-vm" and .method == "DELETE"' \
        ".principal == \"anonymous\" and .role == null and .token_id == null and $TCP and .status == 401 and .outcome == \"denied\""
holds "start with a wrong token: anonymous, denied 401" \
        '.path == "/api/v1/vms/audit-vm/start"' \
        ".principal == \"anonymous\" and .status == 401 and .outcome == \"denied\" and $TCP"
holds "tenant change by alpha's member: tenant alpha, denied 403 on tenant/alpha" \
        '.principal == "token:t-alpha"' \
        ".role == \"member\" and .tenant == \"alpha\" and .object == \"tenant/alpha\" and .method == \"PUT\" and .status == 403 and .outcome == \"denied\""
holds "start of a missing VM: failed 404 on vm/nope" \
        '.path == "/api/v1/vms/nope/start"' \
        '.principal == "token:t-ops" and .object == "vm/nope" and .status == 404 and .outcome == "failed"'
holds "licence pool by the admin token: allowed 200 on license/vws" \
        '.path == "/api/v1/licenses/vws"' \
        ".principal == \"token:t-admin\" and .role == \"admin\" and .object == \"license/vws\" and .status == 200 and .outcome == \"allowed\" and $TCP"
holds "tenant alpha on the UNIX socket: local admin, source unix" \
        '.path == "/api/v1/tenants/alpha" and .status == 200' \
        '(.principal | startswith("local:uid=")) and .role == "admin" and (.source | startswith("unix:uid=")) and .outcome == "allowed"'
n=$(rec '.path == "/api/v1/tokens" and .method == "POST"' | jq length)
assert_eq "$n" $((TOKENS_BEFORE + 4)) "each of the 4 token creations is recorded"
n=$(rec '.method == "GET" or .path == "/api/v1/audit"' | jq length)
assert_eq "$n" 0 "reads (GET /api/v1/vms, the audit queries) leave no record"
jq -e '[.records[].seq] | . == (sort | reverse)' <<<"$ALL" >/dev/null &&
        _ok "newest first" || _not_ok "newest first" "$(jq -c '[.records[].seq]' <<<"$ALL")"
diag "$(jq -r '.records | length' <<<"$ALL") records, of which heartbeats: $(rec '.path | endswith("/heartbeat")' | jq length)"

# ---- the table and the filters
audit_cli --principal token:t-view
assert_rc 0 "gpuvirt audit --principal token:t-view"
grep -Eq '^[0-9T:-]+Z +token:t-view +tcp:127\.0\.0\.1:[0-9]+ +POST /api/v1/vms/audit-vm/stop +vm/audit-vm +403 +denied *$' <<<"$OUT" &&
        [ "$(grep -c 'token:t-view' <<<"$OUT")" = 1 ] &&
        _ok "... one row: time, who, from, request, object, status, outcome" || _not_ok "... the viewer's row" "$OUT"
head -1 <<<"$OUT" | grep -Eq '^TIME +WHO +FROM +REQUEST +OBJECT +STATUS +OUTCOME' &&
        _ok "... under the headers" || _not_ok "... headers" "$OUT"
audit_cli --tenant alpha
grep -q 'token:t-alpha (alpha)' <<<"$OUT" && _ok "gpuvirt audit --tenant alpha: who with the tenant" ||
        _not_ok "gpuvirt audit --tenant alpha" "$OUT"
audit_cli --outcome denied --since 1h --json
assert_jq '[.records[] | .status] | sort | join(",")' "401,401,403,403" \
        "gpuvirt audit --outcome denied --since 1h: the 401s and 403s"
audit_cli --object vm/audit-vm --method delete --json
assert_jq '[.records[] | .principal + " " + .outcome] | join(",")' "anonymous denied" \
        "gpuvirt audit --object vm/audit-vm --method delete"
audit_cli --until 2000-01-01T00:00:00Z
assert_rc 0 "gpuvirt audit --until 2000-01-01T00:00:00Z"
assert_eq "$OUT" "no audit records match" "... says none match"

# ---- paging: the printed command shows the rest
audit_cli --principal token:t-ops --limit 1
more=$(grep '^more: ' <<<"$OUT" | sed 's/^more: //')
grep -q 'nope/start' <<<"$OUT" && [[ $more == "gpuvirt audit --principal token:t-ops --limit 1 --after "* ]] &&
        _ok "gpuvirt audit --limit 1: the newest, and the command for the next page" ||
        _not_ok "gpuvirt audit --limit 1" "$OUT"
read -ra next <<<"${more#gpuvirt audit }"
audit_cli "${next[@]}"
grep -q 'POST /api/v1/vms ' <<<"$OUT" && ! grep -q '^more: ' <<<"$OUT" &&
        _ok "... which gives the older one and no further page" || _not_ok "... the next page" "$OUT"

# ---- refusals
audit_cli --outcome ok
assert_rc 2 "gpuvirt audit --outcome ok: exit 2"
grep -q "allowed, denied, failed" <<<"$ERR" && _ok "... naming the outcomes" || _not_ok "... naming the outcomes" "$ERR"
run env GPUVIRT_ENDPOINT="$CONTROLLER_URL" GPUVIRT_TOKEN="$TOKEN_OPS" "$GPUVIRT" audit
assert_rc 6 "gpuvirt audit with an operator token: not allowed (403, exit 6)"
audit_cli --json --principal token:t-ops
assert_jq '.records | length' 2 "... and that refused read left no record"

# ---- /metrics and a restart
curl -s "${CURL_TLS[@]}" -H "Authorization: Bearer $TOKEN_VIEW" "$CONTROLLER_URL/metrics" >"$TEST_TMP/metrics.txt"
records=$(awk '$1 == "gpuvirt_audit_records_total" { print $2 }' "$TEST_TMP/metrics.txt")
failures=$(awk '$1 == "gpuvirt_audit_write_failures_total" { print $2 }' "$TEST_TMP/metrics.txt")
[ -n "$records" ] && [ "$records" -ge 13 ] && _ok "/metrics: gpuvirt_audit_records_total $records" ||
        _not_ok "/metrics: gpuvirt_audit_records_total" "$(grep audit "$TEST_TMP/metrics.txt")"
assert_eq "$failures" 0 "/metrics: gpuvirt_audit_write_failures_total 0"

if "$LAUNCH" restart "$CL" controller >"$TEST_TMP/restart.log" 2>&1; then
        _ok "controller restarted"
else
        _not_ok "controller restarted" "$(tail -5 "$TEST_TMP/restart.log")"
fi
env_reload
audit_cli --json --limit 1000 --since 1h
jq -e --argjson before "$ALL" '[.records[] | select(.principal | startswith("token:"))] as $now |
        [$before.records[] | select(.principal | startswith("token:"))] as $was |
        ($was - $now) == []' <<<"$OUT" >/dev/null &&
        _ok "after the restart every token's record is still there" ||
        _not_ok "after the restart every token's record is still there" "$(head -c 2000 <<<"$OUT")"
no_sanitizer_reports

done_testing
