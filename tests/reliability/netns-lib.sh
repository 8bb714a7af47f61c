# SPDX-License-Identifier: MIT
# shellcheck shell=bash
# netns-lib.sh — a simulated cluster whose controller and agents sit in network namespaces of
# their own (docs/reliability.md "Partitions and fencing"), for cutting the network between them.
# Sourced after tests/integration/lib.sh and tests/controller/cluster-lib.sh (whose helpers it
# reuses: capi on the controller's UNIX socket, which no namespace cuts, host_var, inspect,
# hw_on_host, leak_check); the layout under $CL is sim-cluster.sh's, so `sim-cluster.sh stop`
# finds every QEMU and daemon.
#
#   ns_init NAME          root, ip, iptables and qemu or a skip; CL, SOCK, the names of this
#                         run (unique: the script's pid), the traps (teardown however it ends)
#   ns_start HOSTS PROFILE [CONTROLLER-ARGS...]
#                         the namespaces, a bridge in the controller's with a veth to each
#                         agent's, addresses on a private /24; the controller (its TCP API on
#                         .1:8080), and each agent (node-a .11, node-b .12, ...: TCP API :9090)
#                         registering over TCP with an admin token. Between each agent and the
#                         controller two faultproxy instances, both ways, passing everything
#                         until told otherwise: the controller reaches agent K at .1:910K, the
#                         agent reaches the controller at .1:920K.
#   cut_full HOST / heal_full HOST        the agent's veth down / up (a pulled cable)
#   cut_oneway HOST to-agent|to-controller / heal_oneway HOST
#                                         iptables in the agent's namespace drops the packets of
#                                         one direction between it and the controller
#   proxy HOST CMD...     a command to HOST's two proxies (delay MS JITTER, loss PCT, blackhole,
#                         stats; faultproxy.c)
#   aapi HOST PATH        GET on HOST's agent, from inside its namespace (not through a proxy)
#   qemus_of VM           "HOST PID" of every QEMU of VM on any simulated host of this cluster
#   power_off HOST        SIGKILL of the agent and its QEMUs (a host losing power)
#   power_on HOST         its agent started again (it adopts nothing: its QEMUs are gone)

ns_init() {
        [ "$(id -u)" = 0 ] || { echo "1..0 # SKIP network namespaces need root"; exit 0; }
        command -v ip >/dev/null || { echo "1..0 # SKIP ip (iproute2) is not installed"; exit 0; }
        command -v iptables >/dev/null || { echo "1..0 # SKIP iptables is not installed"; exit 0; }
        : "${GPUVIRT_FAULTPROXY:?GPUVIRT_FAULTPROXY must name the faultproxy binary}"
        cluster_init "$1"
        NS_ID=$(($$ % 60000))
        NS_P=gvp$NS_ID
        NS_SUB=10.$((100 + NS_ID / 250 % 150)).$((NS_ID % 250))
        NS_CTL=$NS_P-c
        NS_PIDS=()
        if ! ip netns add "$NS_CTL" 2>"$TEST_TMP/netns.err"; then
                echo "1..0 # SKIP cannot make a network namespace: $(cat "$TEST_TMP/netns.err")"
                exit 0
        fi
        trap '${CLUSTER_EXIT_HOOK:-:}; ns_teardown; _cleanup' EXIT
}

ns_teardown() {
        local p k
        "$LAUNCH" stop "$CL" >/dev/null 2>&1
        for p in "${NS_PIDS[@]}"; do kill "$p" 2>/dev/null; done
        for ((k = 1; k <= ${NS_HOSTS:-0}; k++)); do ip netns del "$NS_P-a$k" 2>/dev/null; done
        ip netns del "$NS_CTL" 2>/dev/null
}

ns_name() { echo "node-$(printf "\\x$(printf %x $((96 + $1)))")"; } # K → node-a, node-b, ...
ns_k() { echo $(($(printf %d "'${1#node-}") - 96)); } # node-b → 2
ns_var() { echo "$1=\"$2\"" >>"$CL/cluster.env"; }

# ns_wait SECONDS CMD...: like wait_for, quietly.
ns_wait() { wait_for "$@" 2>/dev/null; }

ns_start() {
        local hosts=$1 profile=$2 k name key port
        shift 2
        NS_HOSTS=$hosts
        mkdir -p "$CL/logs" "$CL/controller"
        : >"$CL/cluster.env"
        ip -n "$NS_CTL" link set lo up
        ip -n "$NS_CTL" link add "$NS_P-br" type bridge
        ip -n "$NS_CTL" addr add "$NS_SUB.1/24" dev "$NS_P-br"
        ip -n "$NS_CTL" link set "$NS_P-br" up
        for ((k = 1; k <= hosts; k++)); do
                ip netns add "$NS_P-a$k"
                ip -n "$NS_P-a$k" link set lo up
                ip link add "$NS_P-h$k" netns "$NS_CTL" type veth peer name "$NS_P-v$k" \
                        netns "$NS_P-a$k"
                ip -n "$NS_CTL" link set "$NS_P-h$k" master "$NS_P-br" up
                ip -n "$NS_P-a$k" addr add "$NS_SUB.$((10 + k))/24" dev "$NS_P-v$k"
                ip -n "$NS_P-a$k" link set "$NS_P-v$k" up
        done
        # the controller
        ip netns exec "$NS_CTL" "$GPUVIRTD" --role controller --state-dir "$CL/controller" \
                --api-socket "$SOCK" --api-listen "$NS_SUB.1:8080" "$@" \
                </dev/null >>"$CL/logs/controller.log" 2>&1 &
        ns_var CONTROLLER_PID $!
        ns_wait 20 curl -sf --max-time 2 --unix-socket "$SOCK" http://c/api/v1/health >/dev/null ||
                { echo "Bail out! the controller did not start: $(tail -3 "$CL/logs/controller.log")"; exit 1; }
        capi POST /api/v1/tokens '{"name": "agents", "role": "admin"}'
        NS_TOKEN=$(jqo .token)
        [ -n "$NS_TOKEN" ] && [ "$NS_TOKEN" != null ] ||
                { echo "Bail out! no admin token for the agents: $OUT"; exit 1; }
        local names=()
        for ((k = 1; k <= hosts; k++)); do
                name=$(ns_name "$k")
                names+=("$name")
                key=${name^^}
                key=${key//-/_}
                "$GPUVIRT_SIM" create --profile "$profile" --root "$CL/host$k" \
                        >"$CL/logs/create-host$k.log" 2>&1 ||
                        { echo "Bail out! gpuvirt-sim create failed: $(tail -3 "$CL/logs/create-host$k.log")"; exit 1; }
                # the two proxies: controller → agent K (.1:910K), agent K → controller (.1:920K)
                ip netns exec "$NS_CTL" "$GPUVIRT_FAULTPROXY" --listen "$NS_SUB.1:$((9100 + k))" \
                        --to "$NS_SUB.$((10 + k)):9090" --control "$CL/proxy-$name-down.sock" \
                        --seed "$k" >>"$CL/logs/proxy-$name.log" 2>&1 &
                NS_PIDS+=($!)
                ip netns exec "$NS_CTL" "$GPUVIRT_FAULTPROXY" --listen "$NS_SUB.1:$((9200 + k))" \
                        --to "$NS_SUB.1:8080" --control "$CL/proxy-$name-up.sock" \
                        --seed "$((100 + k))" >>"$CL/logs/proxy-$name.log" 2>&1 &
                NS_PIDS+=($!)
                ns_var "${key}_ROOT" "$CL/host$k"
                ns_var "${key}_STATE" "$CL/host$k-state"
                ns_var "${key}_URL" "http://$NS_SUB.$((10 + k)):9090"
                ns_var "${key}_NS" "$NS_P-a$k"
                ns_agent "$k"
        done
        ns_var GPUVIRT_CLUSTER_HOSTS "${names[*]}"
        ns_var SIM_HOSTS "$hosts"
        env_reload
        local h
        for h in "${names[@]}"; do
                ns_wait 40 host_state_is "$h" up ||
                        { echo "Bail out! $h did not come up: $OUT $(tail -3 "$CL/logs/$h.log")"; exit 1; }
        done
}

# ns_agent K: host K's agent in its namespace, under gpuvirt-sim exec.
ns_agent() {
        local k=$1 name
        name=$(ns_name "$k")
        echo "== $(date '+%F %T') agent" >>"$CL/logs/$name.log"
        # a simulated host's CPUs and memory for VMs, as sim-cluster.sh gives them
        GPUVIRT_SIM_CPUS=64 GPUVIRT_SIM_MEMORY_MIB=524288 \
        GPUVIRT_TOKEN=$NS_TOKEN ip netns exec "$NS_P-a$k" "$GPUVIRT_SIM" exec --root "$CL/host$k" -- \
                "$GPUVIRTD" --role agent --state-dir "$CL/host$k-state" \
                --listen "$NS_SUB.$((10 + k)):9090" --advertise "http://$NS_SUB.1:$((9100 + k))" \
                --controller "http://$NS_SUB.1:$((9200 + k))" --host-name "$name" --accel tcg \
                --qemu-user root --stop-timeout 2 </dev/null >>"$CL/logs/$name.log" 2>&1 &
        local key=${name^^}
        key=${key//-/_}
        ns_var "${key}_PID" $!
        env_reload
}

# aapi HOST PATH: GET on HOST's agent from inside its namespace, with its secret.
aapi() {
        local k
        k=$(ns_k "$1")
        HTTP=$(ip netns exec "$NS_P-a$k" curl -s -o "$TEST_TMP/body" -w '%{http_code}' --max-time 10 \
                -H "$(agent_auth "$1")" "http://$NS_SUB.$((10 + k)):9090$2")
        OUT=$(cat "$TEST_TMP/body" 2>/dev/null)
        LAST_CMD="GET $1 agent $2"; RC=$HTTP; ERR=
}

cut_full() { ip -n "$NS_CTL" link set "$NS_P-h$(ns_k "$1")" down; }
heal_full() { ip -n "$NS_CTL" link set "$NS_P-h$(ns_k "$1")" up; }
cut_oneway() { # HOST to-agent|to-controller
        local k chain=INPUT dir=-s
        k=$(ns_k "$1")
        [ "$2" = to-controller ] && chain=OUTPUT dir=-d
        ip netns exec "$NS_P-a$k" iptables -A "$chain" "$dir" "$NS_SUB.1" -j DROP
}
heal_oneway() { ip netns exec "$NS_P-a$(ns_k "$1")" iptables -F; }

# proxy HOST CMD...: the command to both of HOST's proxies; the answers on stdout.
proxy() {
        local h=$1 s
        shift
        for s in "$CL/proxy-$h-down.sock" "$CL/proxy-$h-up.sock"; do
                python3 -c 'import socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
s.sendall((" ".join(sys.argv[2:]) + "\n").encode())
s.shutdown(socket.SHUT_WR)
print(s.makefile().read().strip())' "$s" "$@"
        done
}

# qemus_of VM: "HOST PID" for every live QEMU of VM among this cluster's hosts.
qemus_of() {
        local p cmd k
        for p in /proc/[0-9]*; do
                cmd=$({ tr '\0' ' ' <"$p/cmdline"; } 2>/dev/null) || continue
                [[ "$cmd" == *qemu-system* && "$cmd" == *"guest=$1,"* && "$cmd" == *"$CL/host"* ]] ||
                        continue
                [ "$(awk '{print $3}' "$p/stat" 2>/dev/null)" = Z ] && continue
                k=${cmd#*"$CL/host"}
                k=${k%%-state*}
                echo "$(ns_name "$k") ${p#/proc/}"
        done
}

power_off() {
        local k pid q
        k=$(ns_k "$1")
        pid=$(host_var "$1" PID)
        kill -9 "$pid" 2>/dev/null
        for q in $(pgrep -f "qemu-system.*$CL/host$k-state/"); do kill -9 "$q" 2>/dev/null; done
        # gpuvirt-sim exec's child, the agent itself
        for q in $(pgrep -f "gpuvirtd --role agent --state-dir $CL/host$k-state"); do
                kill -9 "$q" 2>/dev/null
        done
}
power_on() { ns_agent "$(ns_k "$1")"; }
