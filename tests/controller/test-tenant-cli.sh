#!/bin/bash
# SPDX-License-Identifier: MIT
# `gpuvirt tenant`, `host pool`, `token create --role member --tenant` and `vm create --tenant`
# against a simulated cluster (two l40s-4 hosts; real QEMU on TCG): every verb, the figures in
# list and show, set changing only what its options name, bad input refused with the exit code
# of its class and the words of whoever refused it (the CLI or the controller).
. "$(dirname "$0")/../integration/lib.sh"
. "$(dirname "$0")/cluster-lib.sh"
cluster_init tenant-cli

cluster_start --hosts 2 --profiles l40s-4 --accel tcg

G=$GPUVIRT
has_row() { # NAME ERE: some line of stdout matches
        if grep -Eq -- "$2" <<<"$OUT"; then _ok "$1"; else _not_ok "$1" "no line matches /$2/"; fi
}
acme() { capi GET /api/v1/tenants/acme; }

# ---- nothing yet
run "$G" tenant list
assert_rc 0 "tenant list with no tenants"
assert_out_contains "no tenants" "... says there are none and how to make one"

# ---- create
run "$G" tenant create acme --description "Acme research" --vms 2 --vcpus 4 --memory 1G \
        --slices 2 --seats vws=1 --pool gold
assert_rc 0 "tenant create acme with quotas and pool gold"
assert_out_contains "tenant acme created: 2 VMs, 4 vCPUs, 1 GiB memory, 2 GPU slices, vws seats 1; gpu pools: gold" \
        "... the quota and pools in words"
acme
check "... stored as asked: quota, pools, description, nothing else limited" 200 \
        '.quota == {"vms": 2, "vcpus": 4, "memory_mib": 1024, "slices": 2, "seats": {"vws": 1}} and .gpu_pools == ["gold"] and .description == "Acme research"'
run "$G" tenant create acme --vms 9
assert_rc 4 "tenant create of a tenant that exists is refused (exit 4)"
assert_err_contains "gpuvirt tenant set acme" "... pointing at tenant set"
acme
check "... and acme is unchanged" 200 '.quota.vms == 2'

# ---- bad input, refused before anything is stored
run "$G" tenant create beta --seats grid=1
assert_rc 2 "an unknown edition in --seats: exit 2"
assert_err_contains_all "... with the controller's words, the editions listed" \
        "'grid' is not a licence edition" "nvaie"
run "$G" tenant create beta --vcpus -1
assert_rc 2 "a negative --vcpus: exit 2"
assert_err_contains "--vcpus: a whole number" "... naming the option"
run "$G" tenant create beta --seats vws=-2
assert_rc 2 "negative seats: exit 2"
assert_err_contains "--seats 'vws=-2'" "... naming the option and value"
run "$G" tenant create beta --memory 1.5X
assert_rc 2 "a memory size that is not one: exit 2"
run "$G" tenant create beta --gpus 200000000
assert_rc 2 "a quota above the controller's maximum: exit 2"
assert_err_contains "quota.gpus: a whole number from 0 to 100000000" "... in the controller's words"
run "$G" tenant create beta --no-limit vcpus
assert_rc 2 "--no-limit is for set, not create"
run "$G" tenant create Beta
assert_rc 2 "a tenant name outside the grammar: exit 2"
capi GET /api/v1/tenants/beta
check "nothing was stored by the refusals" 404 '.status == 404'

# ---- unknown tenants: exit 3 with the controller's words
for verb in show delete; do
        run "$G" tenant $verb nobody
        assert_rc 3 "tenant $verb nobody: exit 3"
        assert_err_contains "No tenant 'nobody'" "... saying there is no such tenant"
done
run "$G" tenant set nobody --vms 1
assert_rc 3 "tenant set nobody: exit 3"

# ---- host pools
run "$G" host pool node-b gold
assert_rc 0 "host pool node-b gold"
assert_out_contains "node-b: in GPU pool gold" "... says so"
run "$G" host list
has_row "host list: node-b in pool gold" '^node-b +up +gold '
has_row "host list: node-a in pool default" '^node-a +up +default '
run "$G" host show node-b
assert_out_contains "pool:      gold" "host show node-b says pool gold"
run "$G" host pool node-z gold
assert_rc 3 "host pool of a host that does not exist: exit 3"
assert_err_contains "No host 'node-z'" "... in the controller's words"
run "$G" host pool node-b Gold!
assert_rc 2 "a pool name outside the grammar: exit 2"
run "$G" host pool node-b
assert_rc 2 "host pool without the pool: exit 2"

# ---- member tokens
run "$G" token create acme-ci --role member --tenant acme
assert_rc 0 "token create acme-ci --role member --tenant acme"
MEMBER=$OUT
assert_err_contains "role member of tenant acme" "... the note names the tenant"
[ -n "$MEMBER" ] && _ok "... the secret on stdout" || _not_ok "... the secret on stdout"
run "$G" token list
has_row "token list: acme-ci, member of acme" ' acme-ci +member +acme '
run "$G" token create ci2 --role member
assert_rc 2 "a member token without --tenant: exit 2"
run "$G" token create ci2 --role viewer --tenant acme
assert_rc 2 "--tenant on a viewer token: exit 2"
run "$G" token create ci2 --role member --tenant nobody
assert_rc 3 "a member of a tenant that does not exist: exit 3"
assert_err_contains "No tenant 'nobody'" "... in the controller's words"
run "$G" token create ci2 --role owner
assert_rc 2 "an unknown role: exit 2"
assert_err_contains "valid: member" "... the roles listed, member among them"

# ---- a VM of the tenant
run "$G" vm create a1 --memory 128M --cpus 1 --gpu vgpu:L40S-4Q --tenant acme --wait
assert_rc 0 "vm create a1 --tenant acme --wait"
run "$G" vm show a1
assert_out_contains "tenant:    acme" "vm show a1: tenant acme"
assert_out_contains "host:      node-b" "... placed on node-b, the gold pool's host"
run "$G" vm create a0 --memory 128M --tenant Acme
assert_rc 2 "vm create --tenant outside the grammar: exit 2"
run "$G" vm create a0 --memory 128M --tenant nobody
assert_rc 3 "vm create --tenant nobody: exit 3"
run "$G" tenant list
assert_rc 0 "tenant list"
has_row "... acme's row: 1/2 VMs, 1/4 vCPUs, 128 MiB of 1 GiB, 0 GPUs of no limit, 1/2 slices, vws 1/1, gold" \
        '^acme +1/2 +1/4 +128 MiB/1 GiB +0/∞ +1/2 +vws 1/1 +gold *$'
run "$G" tenant show acme
assert_rc 0 "tenant show acme"
has_row "... vcpus: 1 used of 4, 3 free" '^vcpus +1 +4 +3 *$'
has_row "... memory: 128 MiB of 1 GiB" '^memory +128 MiB +1 GiB +896 MiB *$'
has_row "... gpus: no limit" '^gpus +0 +no limit +— *$'
has_row "... seats vws: 1 of 1, none free" '^seats vws +1 +1 +0 *$'
assert_out_contains "gpu pools:   gold" "... the pools"
assert_out_contains "description: Acme research" "... the description"
run "$G" tenant show acme --json
assert_jq '.usage.slices' 1 "tenant show --json: the API's document"
run "$G" --token "$MEMBER" tenant list --json
assert_jq '[.[].name] | join(",")' acme "the member token sees its own tenant"

# the quota refuses through the CLI: exit 4 with the controller's words
run "$G" vm create a2 --memory 128M --gpu vgpu:L40S-4Q --tenant acme --wait
assert_rc 4 "a second vWS seat over the quota: exit 4"
assert_err_contains "over its quota of vws licence seats" "... the controller says which quota"

# ---- set changes only what it names
run "$G" tenant set acme --seats vws=2
assert_rc 0 "tenant set acme --seats vws=2"
acme
check "... only the vws seats changed" 200 \
        '.quota == {"vms": 2, "vcpus": 4, "memory_mib": 1024, "slices": 2, "seats": {"vws": 2}} and .gpu_pools == ["gold"] and .description == "Acme research"'
run "$G" vm create a2 --memory 128M --gpu vgpu:L40S-4Q --tenant acme --wait
assert_rc 0 "... and a2 now fits"
run "$G" tenant set acme --no-limit vcpus --memory 2G
assert_rc 0 "tenant set acme --no-limit vcpus --memory 2G"
acme
check "... vcpus unlimited, memory 2 GiB, the rest kept" 200 \
        '.quota == {"vms": 2, "memory_mib": 2048, "slices": 2, "seats": {"vws": 2}} and .gpu_pools == ["gold"]'
run "$G" tenant set acme --no-limit gpus
assert_rc 2 "--no-limit of a limit acme does not have: exit 2"
assert_err_contains "no limit on gpus" "... saying so"
run "$G" tenant set acme --vms 3 --no-limit vms
assert_rc 2 "--vms and --no-limit vms on one line: exit 2"
run "$G" tenant set acme --pool a --pools-any
assert_rc 2 "--pool with --pools-any: exit 2"
run "$G" tenant set acme --pools-any --no-limit seats:vws --description ""
assert_rc 0 "tenant set acme --pools-any --no-limit seats:vws --description ''"
assert_out_contains "gpu pools: any" "... says every pool"
acme
check "... every pool, no seat limit, no description, the rest kept" 200 \
        '.quota == {"vms": 2, "memory_mib": 2048, "slices": 2} and .gpu_pools == null and (has("description") | not)'
run "$G" tenant set acme --pool gold --pool silver
acme
check "tenant set --pool gold --pool silver: the list replaced" 200 '.gpu_pools == ["gold", "silver"]'

# ---- delete: refused while a VM or a member token is there
run "$G" tenant delete acme
assert_rc 4 "tenant delete acme refused while it has VMs (exit 4)"
assert_err_contains "still has 2 VMs" "... in the controller's words"
for v in a1 a2; do
        run "$G" vm delete $v --wait
        assert_rc 0 "vm delete $v"
done
run "$G" tenant delete acme
assert_rc 4 "... then refused for its member token"
assert_err_contains "Token 'acme-ci'" "... naming the token"
ID=$(capi GET /api/v1/tokens; jq -r '.[] | select(.name == "acme-ci") | .id' <<<"$OUT")
run "$G" token delete "$ID"
assert_rc 0 "token delete acme-ci"
run "$G" tenant delete acme
assert_rc 0 "tenant delete acme"
assert_out_contains "tenant acme deleted" "... says so"
capi GET /api/v1/tenants/acme
check "... and it is gone" 404 '.status == 404'

no_sanitizer_reports
done_testing
