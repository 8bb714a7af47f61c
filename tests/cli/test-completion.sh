#!/bin/bash
# contrib/bash-completion/gpuvirt: commands, verbs, options and values, and names from a fake
# `gpuvirt` on PATH that prints what `gpuvirt ... list --json` prints (sorted keys, 2 spaces a
# level), with jq and with the sed fallback. TAP output.
set -u
src=${1:?usage: test-completion.sh contrib/bash-completion/gpuvirt}
n=0
fails=0
ok() { n=$((n + 1)); echo "ok $n - $1"; }
not_ok() { n=$((n + 1)); fails=$((fails + 1)); echo "not ok $n - $1"; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cat >"$tmp/gpuvirt" <<'FAKE'
#!/bin/bash
echo "$*" >>"${FAKE_LOG:-/dev/null}"
case "$*" in
*"slow"*) sleep 5 ;;
*"vm list --json")
        printf '[\n  {\n    "host": "node-a",\n    "name": "infer-1",\n    "spec": {\n      "name": "infer-1"\n    },\n    "state": "running"\n  },\n  {\n    "name": "train-2"\n  }\n]\n' ;;
*"host list --json") printf '[\n  {\n    "name": "node-a"\n  },\n  {\n    "name": "node-b"\n  }\n]\n' ;;
*"tenant list --json") printf '[\n  {\n    "name": "acme",\n    "quota": {\n      "name": "not-a-tenant"\n    }\n  }\n]\n' ;;
*"gpu list --json") printf '[\n  {\n    "index": 0,\n    "name": "node-a/0"\n  }\n]\n' ;;
*) exit 5 ;;
esac
FAKE
chmod +x "$tmp/gpuvirt"
export PATH="$tmp:$PATH" FAKE_LOG="$tmp/log"

# shellcheck source=/dev/null
source "$src" || { echo "Bail out! cannot source $src"; exit 1; }

complete_line() {
        # complete_line WORD... : COMPREPLY for the last word
        COMP_WORDS=("$@")
        COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
        COMPREPLY=()
        _gpuvirt
        echo "${COMPREPLY[*]}"
}

check() {
        local want=$1 got=$2 what=$3
        if [[ " $got " == *" $want "* ]]; then
                ok "$what"
        else
                not_ok "$what: '$want' not in '$got'"
        fi
}
check_not() {
        local bad=$1 got=$2 what=$3
        if [[ " $got " != *" $bad "* ]]; then ok "$what"; else not_ok "$what: '$bad' in '$got'"; fi
}

check vm "$(complete_line gpuvirt v)" "groups"
check vgpu "$(complete_line gpuvirt v)" "groups (vgpu)"
check events "$(complete_line gpuvirt e)" "events"
check --endpoint "$(complete_line gpuvirt --e)" "global options"
check create "$(complete_line gpuvirt vm c)" "vm verbs"
check set-mode "$(complete_line gpuvirt --json gpu s)" "verbs after a global option"
check inspect "$(complete_line gpuvirt host "")" "host verbs keep inspect"
check --gpu "$(complete_line gpuvirt vm create x --g)" "vm create options"
check --wait "$(complete_line gpuvirt vm create x --w)" "--wait"
check mig: "$(complete_line gpuvirt vm create x --gpu m)" "--gpu kinds"
check need:20G,isolation=hardware "$(complete_line gpuvirt vm create x --gpu need:20G)" \
        "need options"
check operator "$(complete_line gpuvirt token create ci --role o)" "roles"
check qcow2 "$(complete_line gpuvirt image add d /x --format q)" "image formats"
check --after "$(complete_line gpuvirt events --a)" "events options"
check passthrough "$(complete_line gpuvirt gpu set-mode node-a/0 p)" "modes"
check top "$(complete_line gpuvirt t)" "top"
check --batch "$(complete_line gpuvirt top --b)" "top options"
check --interval "$(complete_line gpuvirt top --batch --i)" "top options after an option"
check memory "$(complete_line gpuvirt top --sort m)" "top sort keys"
check --sort "$(complete_line gpuvirt top --interval 2 --s)" "top options after --interval's value"

path0=$PATH
for jq_mode in jq sed; do
        if [[ $jq_mode == sed ]]; then
                # hide jq: a PATH with only the fake and the basics
                mkdir -p "$tmp/bin"
                for t in bash sed timeout cat sleep mkdir; do
                        p=$(command -v $t) && ln -sf "$p" "$tmp/bin/$t"
                done
                PATH="$tmp:$tmp/bin"
        elif ! command -v jq >/dev/null; then
                ok "# SKIP jq not installed"; ok "# SKIP jq"; ok "# SKIP jq"; ok "# SKIP jq"
                continue
        fi
        got=$(complete_line gpuvirt vm start "")
        check infer-1 "$got" "VM names ($jq_mode)"
        check train-2 "$got" "every VM ($jq_mode)"
        check_not running "$got" "only names ($jq_mode)"
        check node-a/0 "$(complete_line gpuvirt gpu show n)" "HOST/GPU names ($jq_mode)"
done
PATH=$path0

# issue 8's commands: license verbs and options with values, advise and insights (no verb)
check license "$(complete_line gpuvirt l)" "license among the groups"
check cost "$(complete_line gpuvirt license "")" "license verbs"
check --edition "$(complete_line gpuvirt license set vws --)" "license set options"
check nvaie "$(complete_line gpuvirt license set vws --edition "")" "--edition values"
check gpu "$(complete_line gpuvirt license set vws --counting "")" "--counting values"
check --kind "$(complete_line gpuvirt advise --)" "advise options (a command without a verb)"
check hardware "$(complete_line gpuvirt advise --isolation "")" "--isolation values"
check 24h "$(complete_line gpuvirt insights --window "")" "--window values"

# issue 9's tenants: the verbs and options, member tokens, host pools, names from the controller
check tenant "$(complete_line gpuvirt te)" "tenant among the groups"
check set "$(complete_line gpuvirt tenant "")" "tenant verbs"
check --seats "$(complete_line gpuvirt tenant create acme --s)" "tenant create options"
check_not --no-limit "$(complete_line gpuvirt tenant create acme --)" "no --no-limit on create"
check --no-limit "$(complete_line gpuvirt tenant set acme --)" "tenant set options"
check --pools-any "$(complete_line gpuvirt tenant set acme --vcpus 4 --p)" \
        "tenant set options after an option's value"
check seats:vws "$(complete_line gpuvirt tenant set acme --no-limit s)" "--no-limit values"
check vws= "$(complete_line gpuvirt tenant create acme --seats v)" "--seats EDITION= for tenants"
check_not vws= "$(complete_line gpuvirt license set p --seats v)" "--seats is a number for pools"
check member "$(complete_line gpuvirt token create ci --role m)" "the member role"
check --tenant "$(complete_line gpuvirt token create ci --role member --t)" "token create --tenant"
check --tenant "$(complete_line gpuvirt vm create x --t)" "vm create --tenant"
check pool "$(complete_line gpuvirt host p)" "host pool"
check node-b "$(complete_line gpuvirt host pool "")" "host pool: host names"
got=$(complete_line gpuvirt tenant show "")
check acme "$got" "tenant names"
check_not not-a-tenant "$got" "only the tenants' own names"
check acme "$(complete_line gpuvirt token create ci --role member --tenant "")" "--tenant: tenant names"

# the flags on the line go to the name lookup
: >"$FAKE_LOG"
complete_line gpuvirt --endpoint http://h:1 vm show "" >/dev/null
if grep -q -- "--endpoint http://h:1 vm list --json" "$FAKE_LOG"; then
        ok "--endpoint passed on"
else
        not_ok "--endpoint passed on: $(cat "$FAKE_LOG")"
fi

# a controller that does not answer within a second gives no names, quickly
start=$SECONDS
got=$(complete_line gpuvirt --endpoint slow vm show "")
if ((SECONDS - start < 4)) && [[ -z $got ]]; then
        ok "slow controller: no names"
else
        not_ok "slow controller: '$got' after $((SECONDS - start)) s"
fi

echo "1..$n"
exit $((fails > 0))
