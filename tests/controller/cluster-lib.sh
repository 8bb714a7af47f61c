# SPDX-License-Identifier: MIT
# shellcheck shell=bash
# cluster-lib.sh — helpers for the TAP scripts that drive a simulated cluster
# (contrib/sim-cluster.sh): sourced after tests/integration/lib.sh; cluster_init sets LAUNCH
# (the launcher), CL (the cluster's directory) and SOCK (the controller's UNIX socket).
#
#   cluster_init NAME         prerequisites, LAUNCH/CL/SOCK, the traps
#   cluster_start OPTIONS...  start the cluster (bail out when it does not come up)
#   capi METHOD PATH [BODY]   the controller's REST API; $HTTP, $OUT
#   aapi HOST PATH            GET on HOST's agent (with its secret; agent_auth HOST: the header)
#   check NAME HTTP JQ        ok when the status is HTTP and JQ holds on $OUT
#   create NAME GPU-JSON [HOST]   POST /api/v1/vms?wait=60 (128 MiB, one GPU request)
#   verify_vm NAME ALLOC      the VM runs where its placement says, with its hardware there
#   leak_check LABEL          per host: hardware == the agent's VMs' records == controller VMs

# cluster_init NAME: the prerequisites (a skip saying which is missing), LAUNCH, CL
# ($TEST_TMP/NAME) and SOCK, and the traps that stop the cluster however the test ends
# (CLUSTER_EXIT_HOOK, if set, runs first).
cluster_init() {
        : "${GPUVIRTD:?GPUVIRTD must name the gpuvirtd binary}"
        command -v qemu-system-x86_64 >/dev/null || { echo "1..0 # SKIP qemu-system-x86_64 is not installed"; exit 0; }
        command -v curl >/dev/null || { echo "1..0 # SKIP curl is not installed"; exit 0; }
        export GPUVIRTD GPUVIRT GPUVIRT_SIM
        LAUNCH=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/contrib/sim-cluster.sh
        CL=$TEST_TMP/$1
        SOCK=$CL/gpuvirt.sock
        trap '${CLUSTER_EXIT_HOOK:-:}; "$LAUNCH" stop "$CL" >/dev/null 2>&1; _cleanup' EXIT
        trap 'exit 1' TERM INT
}
# cluster_start START-OPTIONS...: sim-cluster.sh start in $CL, then its environment loaded; a
# failed start bails out with the launcher's and the daemons' last words.
cluster_start() {
        if ! "$LAUNCH" start "$CL" "$@" >"$TEST_TMP/launch.log" 2>&1; then
                echo "Bail out! sim-cluster.sh start failed: $(tail -5 "$TEST_TMP/launch.log")"
                local f
                for f in "$CL"/logs/*.log; do [ -f "$f" ] && diag "$f: $(tail -5 "$f")"; done
                exit 1
        fi
        env_reload
}
# capi METHOD PATH [BODY]: the controller's API on its UNIX socket; $HTTP the status, $OUT the
# body.
capi() {
        local args=(-s -o "$TEST_TMP/body" -w '%{http_code}' --max-time 120 --unix-socket "$SOCK" -X "$1")
        [ -n "${3:-}" ] && args+=(-H 'Content-Type: application/json' --data-binary "$3")
        HTTP=$(curl "${args[@]}" "http://controller$2")
        OUT=$(cat "$TEST_TMP/body" 2>/dev/null)
        LAST_CMD="$1 $2 ${3:-}"; RC=$HTTP; ERR=
}
# aapi HOST PATH: GET on HOST's agent (its TCP address from cluster.env) with the agent's
# secret (docs/agent.md "Authentication"), and the cluster's CA under --tls (GPUVIRT_CA).
aapi() {
        local url args=(-s -o "$TEST_TMP/body" -w '%{http_code}' --max-time 30)
        url=$(host_var "$1" URL)
        args+=(-H "$(agent_auth "$1")")
        [ -n "${GPUVIRT_CA:-}" ] && args+=(--cacert "$GPUVIRT_CA")
        HTTP=$(curl "${args[@]}" "$url$2")
        OUT=$(cat "$TEST_TMP/body" 2>/dev/null)
        LAST_CMD="GET $1 agent $2"; RC=$HTTP; ERR=
}
# agent_auth HOST: the "Authorization: Bearer SECRET" header line for HOST's agent.
agent_auth() {
        echo "Authorization: Bearer $(cat "$(host_var "$1" STATE)/agent.secret" 2>/dev/null)"
}
check() { # NAME HTTP JQ: ok when the status is HTTP and the jq expression holds on $OUT
        if [ "$HTTP" = "$2" ] && jq -e "$3" <<<"$OUT" >/dev/null 2>&1; then
                _ok "$1"
        else
                _not_ok "$1" "want HTTP $2 and $3"
        fi
}
jqo() { jq -r "$1" <<<"$OUT"; }
env_reload() { . "$CL/cluster.env"; }
host_var() { # NAME VAR: NODE_A_VAR from cluster.env
        local k=${1^^}
        k=${k//-/_}_$2
        echo "${!k}"
}
# wait_for SECONDS CMD...: polls CMD until it succeeds (0) or the time passes (1).
wait_for() {
        local deadline=$((SECONDS + $1))
        shift
        while [ $SECONDS -lt "$deadline" ]; do
                "$@" && return 0
                sleep 0.2
        done
        "$@"
}
vm_state_is() { # VM STATE
        capi GET "/api/v1/vms/$1"
        [ "$HTTP" = 200 ] && [ "$(jqo .state)" = "$2" ]
}
host_state_is() { # HOST STATE
        capi GET /api/v1/hosts
        [ "$(jq -r --arg h "$1" '.[] | select(.name == $h) | .state' <<<"$OUT")" = "$2" ]
}
# create NAME GPU-JSON [HOST]: POST /api/v1/vms and wait for the operation (60 s).
create() {
        local body
        body=$(jq -nc --arg n "$1" --argjson g "$2" --arg h "${3:-}" \
                '{name: $n, memory_mib: 128, gpus: [$g]} + (if $h != "" then {host: $h} else {} end)')
        capi POST '/api/v1/vms?wait=60' "$body"
}
catalog_model() { # MODEL FILTER (data/gpus/MODEL.json)
        jq -r "$2" "$GPUVIRT_DATA_DIR/gpus/$1.json"
}
# inspect HOST: `gpuvirt --json host inspect` on the host's simulated machine.
inspect() {
        "$GPUVIRT_SIM" exec --root "$(host_var "$1" ROOT)" -- "$GPUVIRT" --json host inspect
}
# hw_on_host HOST: the GPU hardware that exists on the simulated host, one line each:
# "pt PCI" (bound to vfio-pci), "vgpu ID" (the VF for vendor-VFIO, the mdev UUID otherwise),
# "gi PCI/ID" (a MIG GPU instance).
hw_on_host() {
        inspect "$1" | jq -r '.gpus[] | (select(.driver == "vfio-pci") | "pt \(.pci_address)"),
                (.vgpu.interface as $i | .vgpu.instances[]? |
                        "vgpu \(if $i == "mdev" then .uuid else .parent end)"),
                (.pci_address as $p | .mig.gpu_instances[]? | "gi \($p)/\(.id)")' | sort
}
# hw_of_agent HOST: the same lines from what the agent's VMs record.
hw_of_agent() {
        aapi "$1" /v1/vms
        jq -r '.[] | .hw[]? | if .kind == "passthrough" then "pt \(.gpu)"
                elif .kind == "vgpu" then "vgpu \(.id)" elif .kind == "mig-gi" then "gi \(.gpu)/\(.gi)"
                else "\(.kind) \(.id // .gpu)" end' <<<"$OUT" | sort
}
# leak_check LABEL: per host, the hardware is exactly the agent's VMs' and every agent VM is a
# controller VM placed on that host.
leak_check() {
        local h have want avms cvms extra
        for h in node-a node-b; do
                have=$(hw_on_host "$h")
                want=$(hw_of_agent "$h")
                if [ "$have" = "$want" ]; then
                        _ok "$1: $h's hardware is exactly its agent's VMs' ($(wc -l <<<"$have" | tr -d ' ') items)"
                else
                        _not_ok "$1: $h's hardware is exactly its agent's VMs'" \
                                "on the host, not the agent's: $(comm -23 <(echo "$have") <(echo "$want") | tr '\n' ' ')" \
                                "the agent's, not on the host: $(comm -13 <(echo "$have") <(echo "$want") | tr '\n' ' ')"
                fi
                aapi "$h" /v1/vms
                avms=$(jq -r '.[].name' <<<"$OUT" | sort)
                capi GET /api/v1/vms
                cvms=$(jq -r --arg h "$h" '.[] | select(.host == $h) | .name' <<<"$OUT" | sort)
                extra=$(comm -23 <(echo "$avms") <(echo "$cvms") | grep . | tr '\n' ' ')
                if [ -z "$extra" ]; then
                        _ok "$1: every VM on $h's agent is a controller VM on $h"
                else
                        _not_ok "$1: every VM on $h's agent is a controller VM on $h" "agent VMs unknown to the controller: $extra"
                fi
        done
}
# verify_vm NAME ALLOC: the VM runs, its placement is ALLOC on one GPU, the agent of the
# placement's host runs it with hardware on that GPU only, and the hardware exists there.
verify_vm() {
        local name=$1 alloc=$2 host pci pname start vtype a vgpu gi model
        capi GET "/api/v1/vms/$name"
        host=$(jqo .host)
        pci=$(jqo '.placement.gpus[0].pci')
        pname=$(jqo '.placement.gpus[0].name')
        start=$(jqo '.placement.gpus[0].start')
        vtype=$(jqo '.placement.gpus[0].vgpu_type')
        check "$name: running, placed as $alloc on one GPU of its host" 200 \
                ".state == \"running\" and .placement.host == .host and (.placement.gpus | length) == 1 and .placement.gpus[0].alloc == \"$alloc\""
        aapi "$host" "/v1/vms/$name"
        check "$name: $host's agent runs it, its hardware on the placement's GPU $pci" 200 \
                ".phase == \"running\" and (.hw | length) > 0 and all(.hw[]; .gpu == \"$pci\") and (.devices | length) == 1 and .devices[0].kind == \"standin\""
        a=$OUT
        inspect "$host" >"$TEST_TMP/inspect.json"
        model=$(jq -r --arg p "$pci" '.gpus[] | select(.pci_address == $p) | .model' "$TEST_TMP/inspect.json")
        case $alloc in
        whole)
                ROOT=$(host_var "$host" ROOT)
                assert_eq "$(driver_of "$pci")" vfio-pci "$name: $pci is bound to vfio-pci on $host"
                ;;
        vgpu | mig | mig-vgpu)
                vgpu=$(jq -r '.hw[] | select(.kind == "vgpu") | .id' <<<"$a")
                local type=$pname
                [ "$alloc" = mig ] && type=$vtype
                if jq -e --arg p "$pci" --arg v "$vgpu" --arg t "$type" \
                        '.gpus[] | select(.pci_address == $p) | .vgpu.instances | any(.[]; (.parent == $v or .uuid == $v) and .type == $t)' \
                        "$TEST_TMP/inspect.json" >/dev/null; then
                        _ok "$name: vGPU $vgpu of type $type exists on $host's $pci"
                else
                        _not_ok "$name: vGPU $vgpu of type $type exists on $host's $pci" "$(jq -c --arg p "$pci" '.gpus[] | select(.pci_address == $p) | .vgpu' "$TEST_TMP/inspect.json")"
                fi
                if [ "$alloc" != vgpu ]; then
                        gi=$(jq -r '.hw[] | select(.kind == "mig-gi") | .gi' <<<"$a")
                        local profile=$pname
                        [ "$alloc" = mig-vgpu ] && profile=$(catalog_model "$model" ".vgpu.types[] | select(.name == \"$pname\") | .gi_profile")
                        if jq -e --arg p "$pci" --argjson gi "${gi:-0}" --arg pr "$profile" --argjson s "$start" \
                                '.gpus[] | select(.pci_address == $p) | .mig.gpu_instances | any(.[]; .id == $gi and .profile == $pr and .start == $s)' \
                                "$TEST_TMP/inspect.json" >/dev/null; then
                                _ok "$name: MIG instance $gi ($profile) on $host's $pci at slice $start, where the engine put it"
                        else
                                _not_ok "$name: MIG instance $gi ($profile) on $host's $pci at slice $start, where the engine put it" \
                                        "$(jq -c --arg p "$pci" '.gpus[] | select(.pci_address == $p) | .mig.gpu_instances' "$TEST_TMP/inspect.json")"
                        fi
                fi
                ;;
        esac
}

# no_sanitizer_reports: ok when no daemon's log holds an ASan/LSan/UBSan report (the ASan build
# runs the same scripts; a report in a daemon does not fail the script by itself).
no_sanitizer_reports() {
        if grep -lE "ERROR: (Address|Leak)Sanitizer|runtime error:" "$CL"/logs/*.log >/dev/null 2>&1; then
                _not_ok "no sanitizer report from the daemons" \
                        "$(grep -hE -A20 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$CL"/logs/*.log | head -60)"
        else
                _ok "no sanitizer report from the daemons"
        fi
}
