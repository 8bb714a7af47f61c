#!/bin/bash
# SPDX-License-Identifier: MIT
#
# sim-cluster.sh — a simulated gpuvirt cluster on this machine: N simulated GPU hosts
# (gpuvirt-sim), one controller and one agent per host, all on loopback (docs/api.md,
# docs/agent.md). No GPU, no root and no KVM needed: QEMU runs on TCG unless told otherwise.
#
#   sim-cluster.sh start DIR [--hosts N] [--profiles P1,P2,...] [--accel tcg|kvm|auto]
#                            [--host-down-after S] [--cpus N] [--memory-gib N] [--qemu PATH]
#                            [--same-group] [--controller-config FILE] [--stop-timeout S]
#                            [--tls] [--orphan-grace S] [--store URL]
#   sim-cluster.sh stop DIR          QEMUs of the cluster first, then the daemons; files stay
#   sim-cluster.sh status DIR        the daemons and the controller's host list
#   sim-cluster.sh restart DIR NAME  (re)start the controller or one host's agent (node-a, ...)
#                                    with the options the cluster was started with
#   sim-cluster.sh demo DIR [START OPTIONS]  a fresh 2-host cluster with a VM in every GPU
#                                    mode, shown through the CLI (make demo)
#
# Layout under DIR (absolute or relative; made absolute):
#   gpuvirt.sock        the controller's API (admin, no token); also http://127.0.0.1:PORT
#   controller/         the controller's state (SQLite store)
#   hostK/, hostK-state the simulated host K (node-a, node-b, ...) and its agent's state
#   logs/NAME.log       each daemon's output
#   cluster.env         GPUVIRT_ENDPOINT and the daemons' pids and URLs (`. DIR/cluster.env`)
#   controller.conf     --controller-config FILE's copy: the controller's configuration file
#                       (docs/configuration.md), kept for restarts
#   dashboard.token     an admin token for the web dashboard (mode 0600); the summary prints
#                       the dashboard's URL with it in the fragment (docs/dashboard.md)
#   hostK-state/agent.secret  the agent's secret (docs/agent.md "Authentication"): every
#                       request to an agent's TCP listener needs "Authorization: Bearer" it
#   tls/                with --tls: ca.pem (cluster.env exports it as GPUVIRT_CA, so the CLI
#                       trusts it), controller.pem and node-X.pem with their keys, made by
#                       contrib/gpuvirt-certs.sh for localhost and 127.0.0.1 (docs/tls.md)
#
# --tls: every TCP listener (the controller's and each agent's) speaks TLS 1.3 only, with the
# certificates in DIR/tls; the URLs in cluster.env are https://, and the controller and agents
# verify each other against DIR/tls/ca.pem. A cluster started with --tls restarts with it.
#
# Hosts take the profiles in turn (default dgx-h100). A simulated host advertises --cpus
# (default 64) and --memory-gib (default 512) for VMs, as UX.md's sample host list shows,
# instead of what the machine running it has (GPUVIRT_SIM_CPUS, GPUVIRT_SIM_MEMORY_MIB). Agents
# register through the controller's UNIX socket, so no token is needed. A DIR that holds a
# stopped cluster starts again as it was left (hosts, VMs and store). Binaries come from
# $GPUVIRT_BUILD (default: build/ of the repository this script is in), or GPUVIRTD, GPUVIRT and
# GPUVIRT_SIM naming each. The daemons run in a session of their own, so they outlive the shell
# that started them; --same-group keeps them in the caller's process group instead (a test
# runner that kills its test's group on a timeout then kills them too).
set -u

SELF=$(readlink -f "$0")
REPO=$(dirname "$(dirname "$SELF")")
BUILD=${GPUVIRT_BUILD:-$REPO/build}
GPUVIRTD=${GPUVIRTD:-$BUILD/src/daemon/gpuvirtd}
GPUVIRT=${GPUVIRT:-$BUILD/src/cli/gpuvirt}
GPUVIRT_SIM=${GPUVIRT_SIM:-$BUILD/sim/tool/gpuvirt-sim}
# the dashboard's files (make web builds them), served by the controller at /ui/
WEB_DIR=${GPUVIRT_WEB_DIR:-$REPO/web/dist}
NAMES=(node-a node-b node-c node-d node-e node-f node-g node-h)

die() {
        echo "sim-cluster: $*" >&2
        exit 1
}

usage() {
        sed -n '/^#   sim-cluster.sh/,/^#$/p' "$SELF" | sed 's/^#   //; /^#$/d'
}

need() {
        command -v "$1" >/dev/null 2>&1 || die "'$1' is not installed (make deps installs it)."
}

# ---------------------------------------------------------------- small helpers

# alive PID: the process exists and is not a zombie.
alive() {
        [ -n "$1" ] && [ -r "/proc/$1/stat" ] &&
                [ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" != Z ]
}

# ours PID: the process runs with this cluster's directory on its command line (a pid from an
# old cluster.env may belong to someone else by now).
ours() {
        alive "$1" && { tr '\0' ' ' <"/proc/$1/cmdline"; } 2>/dev/null | grep -qF -- "$DIR/"
}

# free_port: a TCP port on 127.0.0.1 nothing listens on and not handed out in this run. A
# daemon that still loses the race fails to bind and is started again on another port.
USED_PORTS=" "
free_port() {
        local p
        for _ in $(seq 50); do
                if command -v python3 >/dev/null 2>&1; then
                        p=$(python3 -c 'import socket; s = socket.socket()
s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' 2>/dev/null)
                else
                        p=$((20000 + RANDOM % 40000))
                        (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null && p=
                fi
                if [ -n "$p" ] && [[ "$USED_PORTS" != *" $p "* ]]; then
                        USED_PORTS="$USED_PORTS$p "
                        echo "$p"
                        return 0
                fi
        done
        die "cannot find a free TCP port on 127.0.0.1."
}

# agent_get K PORT PATH: GET on host K's agent over TCP with its secret (and the CA with
# --tls); false unless 2xx.
agent_get() {
        local secret scheme=http args=(-sf --max-time 2)
        secret=$(cat "$DIR/host$1-state/agent.secret" 2>/dev/null) || return 1
        if [ -n "${CFG[SIM_TLS]:-}" ]; then
                scheme=https
                args+=(--cacert "$DIR/tls/ca.pem")
        fi
        curl "${args[@]}" -H "Authorization: Bearer $secret" "$scheme://127.0.0.1:$2$3"
}

# make_certs: DIR/tls with a CA and certificates for the controller and every host (kept when
# they exist: a restarted cluster keeps its CA).
make_certs() {
        local name
        [ -f "$DIR/tls/ca.pem" ] ||
                "$REPO/contrib/gpuvirt-certs.sh" ca "$DIR/tls" >"$DIR/logs/certs.log" 2>&1 ||
                die "cannot make the cluster's CA: $(tail -n 2 "$DIR/logs/certs.log")"
        for name in controller "${NAMES[@]:0:$N}"; do
                [ -f "$DIR/tls/$name.pem" ] && continue
                "$REPO/contrib/gpuvirt-certs.sh" cert "$DIR/tls" "$name" localhost 127.0.0.1 \
                        >>"$DIR/logs/certs.log" 2>&1 ||
                        die "cannot make the certificate of $name: $(tail -n 2 "$DIR/logs/certs.log")"
        done
}

# api PATH: GET on the controller's UNIX socket; the body on stdout, false unless 2xx.
api() {
        curl -sf --max-time 5 --unix-socket "$DIR/gpuvirt.sock" "http://controller$1"
}

# wait_until SECONDS PID CMD...: polls CMD until it succeeds (0); 1 when PID dies first or the
# time runs out.
wait_until() {
        local deadline=$((SECONDS + $1)) pid=$2
        shift 2
        while [ $SECONDS -lt "$deadline" ]; do
                "$@" >/dev/null 2>&1 && return 0
                alive "$pid" || { "$@" >/dev/null 2>&1; return $?; }
                sleep 0.1
        done
        return 1
}

host_up() { # NAME
        api /api/v1/hosts | jq -e --arg n "$1" 'any(.[]; .name == $n and .state == "up")'
}

all_up() {
        api /api/v1/hosts | jq -e --argjson n "$N" '[.[] | select(.state == "up")] | length >= $n'
}

# ---------------------------------------------------------------- cluster.env

# The settings live in cluster.env as shell assignments; var NAME VALUE sets one in memory.
declare -A CFG=()
CFG_KEYS=()
var() {
        [ -n "${CFG[$1]+x}" ] || CFG_KEYS+=("$1")
        CFG[$1]=$2
}
key_of() { # node-a → NODE_A
        local k=${1^^}
        echo "${k//-/_}"
}

save_env() {
        local k tmp="$DIR/cluster.env.tmp"
        {
                echo "# A simulated gpuvirt cluster (contrib/sim-cluster.sh)."
                echo "# '. $DIR/cluster.env' points gpuvirt at it;"
                echo "# 'sim-cluster.sh stop $DIR' stops it."
                printf 'export GPUVIRT_ENDPOINT=%q\n' "unix:$DIR/gpuvirt.sock"
                [ -z "${CFG[SIM_TLS]:-}" ] || printf 'export GPUVIRT_CA=%q\n' "$DIR/tls/ca.pem"
                for k in "${CFG_KEYS[@]}"; do
                        printf '%s=%q\n' "$k" "${CFG[$k]}"
                done
        } >"$tmp" && mv "$tmp" "$DIR/cluster.env"
}

load_env() {
        [ -f "$DIR/cluster.env" ] ||
                die "no cluster in '$DIR' (no cluster.env; 'sim-cluster.sh start $DIR' makes one)."
        local line k v
        while IFS= read -r line; do
                [[ "$line" =~ ^([A-Z_][A-Z0-9_]*)=(.*)$ ]] || continue
                k=${BASH_REMATCH[1]}
                # values were written with printf %q: read them back without running anything
                v=${BASH_REMATCH[2]}
                [ "$v" = "''" ] && v=
                v=${v//\\/}
                var "$k" "$v"
        done <"$DIR/cluster.env"
        N=${CFG[SIM_HOSTS]:-0}
}

# ---------------------------------------------------------------- starting daemons

# start_controller: the controller on its recorded port (a new one when none or it is taken).
start_controller() {
        local port=${CFG[CONTROLLER_PORT]:-} pid args
        mkdir -p "$DIR/logs"
        for _ in 1 2 3; do
                [ -n "$port" ] || port=$(free_port)
                args=(--role controller --state-dir "$DIR/controller"
                      --api-socket "$DIR/gpuvirt.sock" --api-listen "127.0.0.1:$port"
                      --web-dir "$WEB_DIR")
                [ -n "${CFG[SIM_HOST_DOWN_AFTER]:-}" ] &&
                        args+=(--host-down-after "${CFG[SIM_HOST_DOWN_AFTER]}")
                [ -n "${CFG[SIM_STORE]:-}" ] && args+=(--store "${CFG[SIM_STORE]}")
                [ -f "$DIR/controller.conf" ] && args+=(--config "$DIR/controller.conf")
                [ -n "${CFG[SIM_TLS]:-}" ] &&
                        args+=(--api-tls-cert "$DIR/tls/controller.pem"
                               --api-tls-key "$DIR/tls/controller-key.pem"
                               --tls-ca "$DIR/tls/ca.pem")
                echo "== $(date '+%F %T') gpuvirtd ${args[*]}" >>"$DIR/logs/controller.log"
                "${SETSID[@]}" "$GPUVIRTD" "${args[@]}" </dev/null \
                        >>"$DIR/logs/controller.log" 2>&1 &
                pid=$!
                if wait_until 15 "$pid" api /api/v1/health; then
                        var CONTROLLER_PID "$pid"
                        var CONTROLLER_PORT "$port"
                        var CONTROLLER_URL "http${CFG[SIM_TLS]:+s}://127.0.0.1:$port"
                        return 0
                fi
                kill -9 "$pid" 2>/dev/null
                wait "$pid" 2>/dev/null
                tail -n 3 "$DIR/logs/controller.log" | grep -qi "in use" || break
                port=
        done
        die "the controller did not come up; $DIR/logs/controller.log says:" \
                "$(tail -n 3 "$DIR/logs/controller.log")"
}

# dashboard_token: an admin token for the dashboard (a browser reaches the API over TCP, where
# every request needs one), made once through the UNIX socket and kept in DIR/dashboard.token.
dashboard_token() {
        local f="$DIR/dashboard.token" name=dashboard ans= tok=
        [ -s "$f" ] && return 0
        for _ in 1 2; do
                ans=$(curl -s --max-time 5 --unix-socket "$DIR/gpuvirt.sock" \
                        -H 'Content-Type: application/json' \
                        -d "{\"name\": \"$name\", \"role\": \"admin\"}" \
                        http://controller/api/v1/tokens) || break
                tok=$(jq -r '.token // empty' <<<"$ans" 2>/dev/null)
                [ -n "$tok" ] && break
                # the name is taken by a token whose secret was lost: another name
                name=dashboard-$(date +%s)
        done
        [ -n "$tok" ] || { echo "sim-cluster: no dashboard token: $ans" >&2; return 0; }
        (umask 077 && echo "$tok" >"$f")
}

# start_agent K: host K's agent under gpuvirt-sim exec.
start_agent() {
        local k=$1 name=${NAMES[$(($1 - 1))]} key port pid args log
        key=$(key_of "$name")
        port=${CFG[${key}_PORT]:-}
        log="$DIR/logs/$name.log"
        mkdir -p "$DIR/logs"
        for _ in 1 2 3; do
                [ -n "$port" ] || port=$(free_port)
                args=(--role agent --state-dir "$DIR/host$k-state" --listen "127.0.0.1:$port"
                      --controller "unix:$DIR/gpuvirt.sock" --host-name "$name"
                      --accel "${CFG[SIM_ACCEL]}"
                      --qemu-user "${GPUVIRT_SIM_QEMU_USER:-root}")
                [ -n "${CFG[SIM_QEMU]:-}" ] && args+=(--qemu "${CFG[SIM_QEMU]}")
                [ -n "${CFG[SIM_STOP_TIMEOUT]:-}" ] &&
                        args+=(--stop-timeout "${CFG[SIM_STOP_TIMEOUT]}")
                [ -n "${CFG[SIM_ORPHAN_GRACE]:-}" ] &&
                        args+=(--orphan-grace "${CFG[SIM_ORPHAN_GRACE]}")
                [ -n "${CFG[SIM_TLS]:-}" ] &&
                        args+=(--tls-cert "$DIR/tls/$name.pem" --tls-key "$DIR/tls/$name-key.pem"
                               --tls-ca "$DIR/tls/ca.pem")
                echo "== $(date '+%F %T') gpuvirtd ${args[*]}" >>"$log"
                GPUVIRT_SIM_CPUS=${CFG[SIM_CPUS]} \
                GPUVIRT_SIM_MEMORY_MIB=$((CFG[SIM_MEMORY_GIB] * 1024)) \
                        "${SETSID[@]}" "$GPUVIRT_SIM" exec --root "$DIR/host$k" -- \
                        "$GPUVIRTD" "${args[@]}" </dev/null >>"$log" 2>&1 &
                pid=$!
                if wait_until 15 "$pid" agent_get "$k" "$port" /v1/host; then
                        var "${key}_PID" "$pid"
                        var "${key}_PORT" "$port"
                        var "${key}_URL" "http${CFG[SIM_TLS]:+s}://127.0.0.1:$port"
                        return 0
                fi
                kill -9 "$pid" 2>/dev/null
                wait "$pid" 2>/dev/null
                tail -n 3 "$log" | grep -qi "in use" || break
                port=
        done
        die "the agent of $name did not come up; $log says: $(tail -n 3 "$log")"
}

# ---------------------------------------------------------------- commands

cmd_start() {
        local hosts=2 profiles=dgx-h100 accel=tcg down_after='' cpus=64 mem_gib=512 qemu=
        local k name profile i same_group= ctl_config= stop_timeout= tls= orphan_grace=
        local store=
        while [ $# -gt 0 ]; do
                case $1 in
                --same-group) same_group=1; shift; continue ;;
                --tls) tls=1; shift; continue ;;
                --hosts) hosts=${2:-} ;;
                --profiles) profiles=${2:-} ;;
                --accel) accel=${2:-} ;;
                --host-down-after) down_after=${2:-} ;;
                --cpus) cpus=${2:-} ;;
                --memory-gib) mem_gib=${2:-} ;;
                --qemu) qemu=${2:-} ;;
                --controller-config) ctl_config=${2:-} ;;
                --stop-timeout) stop_timeout=${2:-} ;;
                --orphan-grace) orphan_grace=${2:-} ;;
                --store) store=${2:-} ;;
                *) die "start: unknown option '$1' (valid: --hosts, --profiles, --accel," \
                        "--host-down-after, --cpus, --memory-gib, --qemu, --same-group," \
                        "--controller-config, --stop-timeout, --tls, --orphan-grace, --store)." ;;
                esac
                [ $# -ge 2 ] || die "start: $1 needs a value."
                shift 2
        done
        [[ "$hosts" =~ ^[1-8]$ ]] || die "--hosts: '$hosts' is not 1..8."
        [[ "$cpus" =~ ^[1-9][0-9]{0,4}$ ]] || die "--cpus: '$cpus' is not 1..99999."
        [[ "$mem_gib" =~ ^[1-9][0-9]{0,5}$ ]] || die "--memory-gib: '$mem_gib' is not 1..999999."
        [ -z "$down_after" ] || [[ "$down_after" =~ ^[1-9][0-9]{0,4}$ ]] ||
                die "--host-down-after: '$down_after' is not a number of seconds (1 or more)."
        case $accel in
        tcg | kvm | auto) ;;
        *) die "--accel: '$accel' is not tcg, kvm or auto." ;;
        esac
        [ -z "$qemu" ] || [ -x "$qemu" ] || die "--qemu: '$qemu' is not an executable file."
        [ -z "$stop_timeout" ] || [[ "$stop_timeout" =~ ^[1-9][0-9]{0,3}$ ]] ||
                die "--stop-timeout: '$stop_timeout' is not 1..3600 seconds."
        [ -z "$orphan_grace" ] || [[ "$orphan_grace" =~ ^[0-9]{1,5}$ ]] ||
                die "--orphan-grace: '$orphan_grace' is not 0..86400 seconds."
        [ -z "$ctl_config" ] || [ -f "$ctl_config" ] ||
                die "--controller-config: '$ctl_config' is not a file."
        IFS=, read -r -a PROFILES <<<"$profiles"
        [ ${#PROFILES[@]} -gt 0 ] ||
                die "--profiles: give at least one ('gpuvirt-sim profiles' lists them)."
        local known
        known=$("$GPUVIRT_SIM" profiles 2>/dev/null | awk 'NR > 1 {printf "%s%s", s, $1; s=", "}')
        for profile in "${PROFILES[@]}"; do
                [[ ", $known, " == *", $profile, "* ]] ||
                        die "--profiles: unknown profile '$profile'; valid: $known."
        done
        if [ -f "$DIR/cluster.env" ]; then
                load_env
                for name in CONTROLLER "${NAMES[@]}"; do
                        ours "${CFG[$(key_of "$name")_PID]:-}" &&
                                die "a cluster runs in '$DIR' already" \
                                        "('sim-cluster.sh stop $DIR' first)."
                done
        fi
        mkdir -p "$DIR/logs" || die "cannot create '$DIR'."
        if [ -n "$ctl_config" ]; then
                cp "$ctl_config" "$DIR/controller.conf" || die "cannot copy '$ctl_config'."
        fi
        N=$hosts
        var SIM_HOSTS "$hosts"
        var SIM_ACCEL "$accel"
        var SIM_CPUS "$cpus"
        var SIM_MEMORY_GIB "$mem_gib"
        var SIM_HOST_DOWN_AFTER "$down_after"
        var SIM_QEMU "${qemu:+$(readlink -f "$qemu")}"
        var SIM_STOP_TIMEOUT "$stop_timeout"
        var SIM_ORPHAN_GRACE "$orphan_grace"
        # --store URL: the controller's store (postgresql:///..., or sqlite:PATH that other
        # controllers share); kept for restarts. Default: sqlite:DIR/controller/gpuvirt.db.
        [ -n "$store" ] || store=${CFG[SIM_STORE]:-}
        var SIM_STORE "$store"
        var SIM_SAME_GROUP "$same_group"
        # a cluster made with --tls keeps it when started again
        [ -n "$tls" ] || tls=${CFG[SIM_TLS]:-}
        var SIM_TLS "$tls"
        [ -z "$same_group" ] || SETSID=()
        var GPUVIRT_CLUSTER_DIR "$DIR"
        var GPUVIRT_CLUSTER_HOSTS "${NAMES[*]:0:$hosts}"
        for ((k = 1; k <= hosts; k++)); do
                name=${NAMES[$((k - 1))]}
                profile=${PROFILES[$(((k - 1) % ${#PROFILES[@]}))]}
                if [ -d "$DIR/host$k/sys" ]; then
                        profile=${CFG[$(key_of "$name")_PROFILE]:-$profile}
                else
                        "$GPUVIRT_SIM" create --profile "$profile" --root "$DIR/host$k" \
                                >"$DIR/logs/create-host$k.log" 2>&1 ||
                                die "gpuvirt-sim create --profile $profile failed:" \
                                        "$(tail -n 3 "$DIR/logs/create-host$k.log")"
                fi
                var "$(key_of "$name")_PROFILE" "$profile"
                var "$(key_of "$name")_ROOT" "$DIR/host$k"
                var "$(key_of "$name")_STATE" "$DIR/host$k-state"
        done
        if [ -n "$tls" ]; then
                command -v certtool >/dev/null 2>&1 || command -v openssl >/dev/null 2>&1 ||
                        die "--tls needs certtool (gnutls-bin) or openssl to make certificates."
                make_certs
        fi
        start_controller
        dashboard_token
        save_env
        for ((k = 1; k <= hosts; k++)); do
                start_agent "$k"
                save_env
        done
        wait_until 30 "${CFG[CONTROLLER_PID]}" all_up ||
                die "not every host is up after 30 s; 'sim-cluster.sh status $DIR' and" \
                        "$DIR/logs/ say more."
        save_env
        [ -n "${QUIET_START:-}" ] || print_summary
}

# print_summary: where the daemons are and how to reach and stop the cluster.
print_summary() {
        local k name i
        echo "sim-cluster: $N simulated host(s) and a controller run under $DIR"
        for ((k = 1; k <= N; k++)); do
                name=${NAMES[$((k - 1))]}
                i=$(key_of "$name")
                printf '  %-7s %-9s agent %s (pid %s)\n' "$name" "${CFG[${i}_PROFILE]}" \
                        "${CFG[${i}_URL]}" "${CFG[${i}_PID]}"
        done
        printf '  %-17s API unix:%s and %s (pid %s)\n' controller "$DIR/gpuvirt.sock" \
                "${CFG[CONTROLLER_URL]}" "${CFG[CONTROLLER_PID]}"
        cat <<EOF
Reach it:
  export GPUVIRT_ENDPOINT=unix:$DIR/gpuvirt.sock     # or: . $DIR/cluster.env
  $GPUVIRT host list
EOF
        if [ -s "$DIR/dashboard.token" ]; then
                echo "Dashboard (the token moves from the URL into the browser tab):"
                echo "  ${CFG[CONTROLLER_URL]}/ui/#token=$(cat "$DIR/dashboard.token")"
                [ -f "$WEB_DIR/index.html" ] ||
                        echo "  (not built yet: make web)"
        fi
        cat <<EOF
Stop it:
  $SELF stop $DIR
EOF
}

# demo_gv ARGS...: show the command, then run gpuvirt against the cluster.
demo_gv() {
        echo
        echo "\$ gpuvirt $*"
        GPUVIRT_ENDPOINT="unix:$DIR/gpuvirt.sock" "$GPUVIRT" "$@"
}

# cmd_demo: a fresh two-host cluster (node-a a dgx-h100, node-b a dgx-a100) with a VM in each
# way of giving it a GPU, shown through the CLI (README "A cluster to play with").
cmd_demo() {
        if [ -e "$DIR" ]; then
                [ -f "$DIR/cluster.env" ] ||
                        die "'$DIR' exists and holds no cluster; name another directory" \
                                "or remove it."
                cmd_stop >/dev/null
                rm -rf -- "$DIR"
        fi
        QUIET_START=1 cmd_start --hosts 2 --profiles dgx-h100,dgx-a100 "$@"
        echo "sim-cluster: node-a (8x H100-SXM5-80GB) and node-b (8x A100-SXM4-80GB) are up, each" \
                "with its agent, under one controller; now through the CLI:"
        # MIG needs the GPU in MIG mode; one GPU per host is switched, the rest stay in vGPU mode
        demo_gv gpu set-mode node-a/7 mig --wait || return 1
        demo_gv gpu set-mode node-b/7 mig --wait || return 1
        demo_gv vm create train-1 --cpus 4 --memory 1G --gpu passthrough:2 --wait || return 1
        demo_gv vm create vdi-1 --cpus 2 --memory 512M --gpu vgpu:H100XM-20C --wait || return 1
        demo_gv vm create infer-1 --cpus 2 --memory 512M --gpu mig:3g.40gb --host node-b --wait ||
                return 1
        demo_gv vm create infer-2 --cpus 2 --memory 512M --gpu vgpu:H100XM-1-10C --wait || return 1
        # The GPU views come from each agent's inventory, polled every 2 s: wait until both MIG
        # instances show.
        for _ in $(seq 50); do
                api /api/v1/gpus | jq -e '[.[] | .mig.gpu_instances[]?] | length >= 2' >/dev/null &&
                        break
                sleep 0.1
        done
        demo_gv host list
        demo_gv gpu list
        demo_gv vm list
        echo
        print_summary
}

# pids_of PATTERN: processes whose command line matches the extended regular expression.
pids_of() {
        local p
        for p in /proc/[0-9]*; do
                p=${p#/proc/}
                [ "$p" = $$ ] && continue
                { tr '\0' ' ' <"/proc/$p/cmdline"; } 2>/dev/null | grep -qE -- "$1" && echo "$p"
        done
}

# stop_pids SIGNAL-WAIT-SECONDS PID...: SIGTERM, then SIGKILL what is left after the wait.
stop_pids() {
        local secs=$1 p left
        shift
        [ $# -gt 0 ] || return 0
        kill "$@" 2>/dev/null
        for _ in $(seq $((secs * 10))); do
                left=
                for p in "$@"; do alive "$p" && left=1; done
                [ -z "$left" ] && return 0
                sleep 0.1
        done
        kill -9 "$@" 2>/dev/null
}

re_escape() { sed 's/[][\.*^$+?(){}|/]/\\&/g' <<<"$1"; }

cmd_stop() {
        [ -d "$DIR" ] || die "no directory '$DIR'."
        local d qemus daemons p
        d=$(re_escape "$DIR")
        # The VMs first: QEMU keeps running when its agent stops (docs/agent.md), so a stopped
        # cluster would leave them behind. Each QEMU's command line names its agent's state
        # directory.
        mapfile -t qemus < <(pids_of "^[^ ]*qemu-system[^ ]* .*$d/host[0-9]+-state/")
        stop_pids 3 "${qemus[@]}"
        mapfile -t daemons < <(pids_of \
                "^[^ ]*gpuvirtd .*--state-dir $d/(controller|host[0-9]+-state)( |$)")
        if [ -f "$DIR/cluster.env" ]; then
                load_env
                for n in CONTROLLER "${NAMES[@]}"; do
                        p=${CFG[$(key_of "$n")_PID]:-}
                        ours "$p" && [[ " ${daemons[*]} " != *" $p "* ]] && daemons+=("$p")
                done
        fi
        stop_pids 5 "${daemons[@]}"
        echo "sim-cluster: stopped ${#qemus[@]} VM(s) and ${#daemons[@]} daemon(s) of $DIR;" \
                "'sim-cluster.sh start $DIR' starts it again, 'rm -rf $DIR' removes it."
}

cmd_status() {
        load_env
        local name key rc=0
        printf '%-10s %-8s %-8s %s\n' DAEMON PID STATE URL
        for name in controller ${CFG[GPUVIRT_CLUSTER_HOSTS]}; do
                key=$(key_of "$name")
                if ours "${CFG[${key}_PID]:-}"; then
                        printf '%-10s %-8s %-8s %s\n' "$name" "${CFG[${key}_PID]}" running \
                                "${CFG[${key}_URL]:-}"
                else
                        printf '%-10s %-8s %-8s %s\n' "$name" "${CFG[${key}_PID]:-—}" stopped \
                                "${CFG[${key}_URL]:-}"
                        rc=1
                fi
        done
        if ours "${CFG[CONTROLLER_PID]:-}"; then
                echo
                GPUVIRT_ENDPOINT="unix:$DIR/gpuvirt.sock" "$GPUVIRT" host list || rc=1
        fi
        return $rc
}

cmd_restart() {
        local name=${1:-} key k p
        [ -n "$name" ] || die "restart: name the controller or a host (node-a, node-b, ...)."
        load_env
        [ -z "${CFG[SIM_SAME_GROUP]:-}" ] || SETSID=()
        key=$(key_of "$name")
        if [ "$name" = controller ]; then
                ours "${CFG[CONTROLLER_PID]:-}" && stop_pids 5 "${CFG[CONTROLLER_PID]}"
                start_controller
                dashboard_token
                save_env
                echo "sim-cluster: controller restarted (pid ${CFG[CONTROLLER_PID]})"
                return 0
        fi
        for ((k = 1; k <= N; k++)); do
                [ "${NAMES[$((k - 1))]}" = "$name" ] || continue
                p=${CFG[${key}_PID]:-}
                ours "$p" && stop_pids 5 "$p"
                start_agent "$k"
                save_env
                wait_until 30 "${CFG[${key}_PID]}" host_up "$name" ||
                        die "$name's agent runs but the controller does not see it up after 30 s."
                echo "sim-cluster: $name's agent restarted (pid ${CFG[${key}_PID]})"
                return 0
        done
        die "restart: no '$name' in this cluster; valid: controller ${CFG[GPUVIRT_CLUSTER_HOSTS]}."
}

# ---------------------------------------------------------------- main

[ $# -ge 1 ] || { usage >&2; exit 2; }
case $1 in -h | --help | help) usage; exit 0 ;; esac
[ $# -ge 2 ] || { usage >&2; exit 2; }
CMD=$1
DIR=$(readlink -m -- "$2")
shift 2
need curl
need jq
for b in "$GPUVIRTD" "$GPUVIRT" "$GPUVIRT_SIM"; do
        [ -x "$b" ] || die "'$b' is not built (run 'make build', or set GPUVIRT_BUILD to the" \
                "build directory)."
done
N=0
SETSID=(setsid)
case $CMD in
start) cmd_start "$@" ;;
stop) [ $# -eq 0 ] || die "stop takes no options."; cmd_stop ;;
status) [ $# -eq 0 ] || die "status takes no options."; cmd_status ;;
restart) [ $# -le 1 ] || die "restart takes one name."; cmd_restart "$@" ;;
demo) cmd_demo "$@" ;;
*) usage >&2; die "unknown command '$CMD'; valid: start, stop, status, restart, demo." ;;
esac
