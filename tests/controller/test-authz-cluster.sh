#!/bin/bash
# SPDX-License-Identifier: MIT
# The authorisation matrix (R19 in ../shared/reference/reliability.md; OWASP API1 and API5):
# every route of the controller's table — printed by route-policy from api.h, so a new route is
# in it without anyone adding it here — as no token, admin, operator, viewer and a member of
# tenant alpha, against tenant bravo's objects (authz-matrix.py says what each cell must
# answer). Then nothing may have changed: bravo's VM runs, no VM, token, tenant, host or pool
# was added, removed or drained, and bravo's events never reached alpha's member.
. "$(dirname "$0")/../integration/lib.sh"
. "$(dirname "$0")/cluster-lib.sh"
cluster_init authz
command -v python3 >/dev/null || { echo "1..0 # SKIP python3 is not installed"; exit 0; }
: "${ROUTE_POLICY:?ROUTE_POLICY must name the route-policy binary}"

cluster_start --hosts 1 --profiles l40s-4 --accel tcg

token() { # NAME ROLE [TENANT] -> the secret on stdout
        local body
        body=$(jq -nc --arg n "$1" --arg r "$2" --arg t "${3:-}" \
                '{name: $n, role: $r} + (if $t == "" then {} else {tenant: $t} end)')
        capi POST /api/v1/tokens "$body"
        [ "$HTTP" = 201 ] || { echo "Bail out! token $1: $HTTP $OUT"; exit 1; }
        jqo .token
}

capi PUT /api/v1/tenants/alpha '{"description": "the tenant asking"}'
check "tenant alpha made" 200 '.name == "alpha" and .usage.vms == 0'
capi PUT /api/v1/tenants/bravo '{"description": "the tenant asked about", "quota": {"vms": 4}}'
check "tenant bravo made" 200 '.name == "bravo" and .quota.vms == 4'
TOKEN_ADMIN=$(token t-admin admin)
TOKEN_OPERATOR=$(token t-operator operator)
TOKEN_VIEWER=$(token t-viewer viewer)
TOKEN_MEMBER=$(token t-alpha member alpha)
TOKEN_BRAVO=$(token t-bravo member bravo)
capi GET /api/v1/tokens
TOKEN_ID=$(jqo '.[] | select(.name == "t-viewer") | .id')
TOKENS_BEFORE=$(jq -c '[.[].name] | sort' <<<"$OUT")
capi PUT /api/v1/licenses/vws '{"edition": "vws", "seats": 4}'
check "licence pool vws made" 200 '.name == "vws"'

capi POST '/api/v1/vms?wait=60' '{"name": "alpha-vm", "memory_mib": 128, "tenant": "alpha"}'
check "alpha-vm runs (tenant alpha)" 200 '.state == "succeeded"'
capi POST '/api/v1/vms?wait=60' '{"name": "bravo-vm", "memory_mib": 128, "tenant": "bravo"}'
check "bravo-vm runs (tenant bravo)" 200 '.state == "succeeded"'
OP_BRAVO=$(jqo .id)
capi GET /api/v1/operations/"$OP_BRAVO"
check "bravo-vm's create operation names its tenant" 200 '.tenant == "bravo"'
capi GET /api/v1/gpus
GPU=$(jqo '.[0].pci')
capi GET /api/v1/hosts
HOSTS_BEFORE=$(jq -c '[.[] | {name, state, pool}]' <<<"$OUT")
HOST=$(jq -r '.[0].name' <<<"$OUT")

# ---- the matrix
export URL=$CONTROLLER_URL TOKEN_ADMIN TOKEN_OPERATOR TOKEN_VIEWER TOKEN_MEMBER HOST GPU \
        OP_BRAVO TOKEN_ID POOL=vws CA=${GPUVIRT_CA:-}
n_routes=$("$ROUTE_POLICY" | wc -l)
[ "$n_routes" -gt 40 ] && _ok "route-policy prints the table ($n_routes routes)" ||
        _not_ok "route-policy prints the table" "only $n_routes lines"
while IFS= read -r line; do
        name=$(jq -r .name <<<"$line")
        if [ "$(jq -r .ok <<<"$line")" = true ]; then
                _ok "$name"
        else
                _not_ok "$name" "$(jq -r .why <<<"$line")"
        fi
done < <("$ROUTE_POLICY" | python3 "$(dirname "$0")/authz-matrix.py" 2>&1 |
        while IFS= read -r l; do
                jq -e . <<<"$l" >/dev/null 2>&1 && echo "$l" ||
                        jq -nc --arg l "$l" '{ok: false, name: "authz-matrix.py said", why: $l}'
        done)

# ---- nothing changed
capi GET /api/v1/vms
check "both VMs are still there and running; no VM was added" 200 \
        '([.[].name] | sort) == ["alpha-vm", "bravo-vm"] and all(.[]; .state == "running")'
capi GET /api/v1/tokens
check "the tokens are the ones made (none added, none deleted)" 200 \
        "([.[].name] | sort) == $TOKENS_BEFORE and ($TOKENS_BEFORE | length) >= 5"
capi GET /api/v1/tenants
check "the tenants are unchanged" 200 \
        '([.[].name] | sort) == ["alpha", "bravo"] and (.[] | select(.name == "bravo") | .quota == {"vms": 4})'
capi GET /api/v1/hosts
check "the host is up, in its pool, not drained" 200 "[.[] | {name, state, pool}] == $HOSTS_BEFORE"
capi GET /api/v1/licenses/vws
check "the licence pool is unchanged" 200 '.seats == 4'
capi GET /api/v1/images
check "no image was registered" 200 'length == 0'

# ---- the member's own view, positively: its VM, its operations, its tenant
member() { # METHOD PATH [BODY] as alpha's member over TCP
        local args=(-s -o "$TEST_TMP/body" -w '%{http_code}' --max-time 90 -X "$1"
                -H "Authorization: Bearer $TOKEN_MEMBER")
        [ -n "${GPUVIRT_CA:-}" ] && args+=(--cacert "$GPUVIRT_CA")
        [ -n "${3:-}" ] && args+=(-H 'Content-Type: application/json' --data-binary "$3")
        HTTP=$(curl "${args[@]}" "$CONTROLLER_URL$2")
        OUT=$(cat "$TEST_TMP/body" 2>/dev/null)
        LAST_CMD="member $1 $2 ${3:-}"; RC=$HTTP; ERR=
}
member GET /api/v1/vms
check "alpha's member lists exactly its VM" 200 '[.[].name] == ["alpha-vm"]'
member GET /api/v1/vms/alpha-vm
check "alpha's member reads its VM" 200 '.name == "alpha-vm"'
member GET /api/v1/tenants
check "alpha's member sees its tenant only, with its usage" 200 \
        '[.[].name] == ["alpha"] and .[0].usage.vms == 1'
member POST '/api/v1/vms/alpha-vm/stop?wait=60' '{"timeout_s": 1}'
check "alpha's member stops its own VM" 200 '.state == "succeeded"'
member GET /api/v1/operations
check "alpha's member sees its own operations only" 200 \
        'length >= 2 and all(.[]; .tenant == "alpha")'
member POST '/api/v1/vms?wait=60' '{"name": "alpha-2", "memory_mib": 128}'
check "alpha's member creates a VM, placed in tenant alpha" 200 '.state == "succeeded"'
capi GET /api/v1/vms/alpha-2
check "alpha-2 belongs to alpha" 200 '.spec.tenant == "alpha"'
member POST '/api/v1/vms' '{"name": "alpha-3", "memory_mib": 128, "host": "'"$HOST"'"}'
check "a member cannot pin a host" 403 '.detail | contains("cannot pin")'
curl -s -N --max-time 2 -H "Authorization: Bearer $TOKEN_MEMBER" \
        ${GPUVIRT_CA:+--cacert "$GPUVIRT_CA"} "$CONTROLLER_URL/api/v1/events?after=0" \
        >"$TEST_TMP/events" || true
if grep -q 'alpha-2' "$TEST_TMP/events" && ! grep -q bravo "$TEST_TMP/events"; then
        _ok "alpha's event stream tells of alpha-2 and nothing of bravo"
else
        _not_ok "alpha's event stream tells of alpha-2 and nothing of bravo" "$(head -c 600 "$TEST_TMP/events")"
fi
no_sanitizer_reports
done_testing
