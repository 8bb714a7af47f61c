#!/bin/bash
# SPDX-License-Identifier: MIT
# gpuvirtd's configuration file (docs/configuration.md): bad files are refused before anything
# starts, with the file, line and what to fix; settings apply; the command line wins.
set -u
: "${GPUVIRTD:?GPUVIRTD must name the gpuvirtd binary}"
T=$(mktemp -d "${TMPDIR:-/tmp}/gv-config.XXXXXX")
PID=
trap '[ -n "$PID" ] && kill "$PID" 2>/dev/null; wait 2>/dev/null; rm -rf "$T"' EXIT
N=0; FAILED=0
ok() { N=$((N + 1)); echo "ok $N - $1"; }
not_ok() { N=$((N + 1)); FAILED=$((FAILED + 1)); echo "not ok $N - $1"; [ -n "${2:-}" ] && echo "# $2"; }

refused() { # NAME CONFIG-TEXT EXPECTED-MESSAGE-REGEX
        printf '%s' "$2" >"$T/c.conf"
        out=$("$GPUVIRTD" --config "$T/c.conf" --state-dir "$T/s" 2>&1)
        rc=$?
        if [ $rc -eq 2 ] && grep -qE -- "$3" <<<"$out" && [ ! -e "$T/s" ]; then ok "$1"
        else not_ok "$1" "rc $rc: $out"; fi
}
refused "unknown key: named with the file's line and the valid keys" \
        $'# a comment\n\nrole = agent\ncolour = blue\n' 'c.conf:4: unknown key .colour.; the keys are: .*state-dir'
refused "a line without '='" $'role agent\n' "c.conf:1: 'role agent' is not 'key = value'"
refused "an empty value" $'accel =\n' "c.conf:1: 'accel' has no value"
refused "a key set twice" $'role = agent\nrole = all\n' "c.conf:2: 'role' is set twice"
refused "a bad value is checked as the option's" $'role = boss\n' "--role: 'boss' is not all, agent or controller"
out=$("$GPUVIRTD" --config "$T/missing.conf" --state-dir "$T/s" 2>&1); rc=$?
[ $rc -eq 2 ] && grep -q "Cannot read the configuration file" <<<"$out" && ok "a missing file is refused" || not_ok "a missing file is refused" "$out"

# Settings apply, and the command line wins over the file.
printf 'role = controller\nstate-dir = %s/s\naccel = tcg\n' "$T" >"$T/c.conf"
"$GPUVIRTD" --config "$T/c.conf" --role agent >"$T/log" 2>&1 &
PID=$!
for _ in $(seq 50); do [ -S "$T/s/agent.sock" ] && break; sleep 0.1; done
[ -S "$T/s/agent.sock" ] && ok "state-dir from the file; --role agent from the command line wins" || not_ok "state-dir from the file; --role agent from the command line wins" "$(cat "$T/log")"
[ ! -e "$T/s/gpuvirt.sock" ] && ok "... so no controller runs" || not_ok "... so no controller runs"
# The socket is bound before the "ready" line is written: wait for the line (a loaded machine
# is slow to print it).
for _ in $(seq 50); do grep -q "accel tcg, chosen by configuration" "$T/log" && break; sleep 0.1; done
grep -q "accel tcg, chosen by configuration" "$T/log" && ok "accel from the file" || not_ok "accel from the file" "$(cat "$T/log")"
kill "$PID"; wait "$PID"; rc=$?; PID=
[ $rc -eq 0 ] && ok "SIGTERM stops it cleanly" || not_ok "SIGTERM stops it cleanly" "rc $rc"

# TLS and the agent's secret (docs/tls.md): refused at start, naming the option or the file.
out=$("$GPUVIRTD" --state-dir "$T/t" --role controller --api-tls-cert "$T/c.pem" 2>&1); rc=$?
[ $rc -eq 2 ] && grep -q -- "--api-tls-cert needs --api-tls-key" <<<"$out" && ok "a certificate without its key is refused" || not_ok "a certificate without its key is refused" "rc $rc: $out"
out=$("$GPUVIRTD" --state-dir "$T/t" --role controller --api-tls-cert "$T/c.pem" --api-tls-key "$T/k.pem" 2>&1); rc=$?
[ $rc -eq 2 ] && grep -q -- "give --api-listen" <<<"$out" && ok "a certificate without a TCP listener is refused" || not_ok "a certificate without a TCP listener is refused" "rc $rc: $out"
out=$("$GPUVIRTD" --state-dir "$T/t" --role controller --api-listen 127.0.0.1:0 --api-tls-cert "$T/missing.pem" --api-tls-key "$T/k.pem" 2>&1); rc=$?
[ $rc -eq 1 ] && grep -q "the TLS certificate file '$T/missing.pem' does not exist" <<<"$out" && ok "a missing certificate file stops the start, named" || not_ok "a missing certificate file stops the start, named" "rc $rc: $out"
printf 'not a certificate\n' >"$T/c.pem"
out=$("$GPUVIRTD" --state-dir "$T/t" --role controller --api-listen 127.0.0.1:0 --api-tls-cert "$T/c.pem" --api-tls-key "$T/c.pem" 2>&1); rc=$?
[ $rc -eq 1 ] && grep -q "'$T/c.pem' holds no PEM certificate" <<<"$out" && ok "a file that is no certificate stops the start, named" || not_ok "a file that is no certificate stops the start, named" "rc $rc: $out"
printf '%064d\n' 7 >"$T/secret" && chmod 644 "$T/secret"
out=$("$GPUVIRTD" --state-dir "$T/t" --role agent --listen 127.0.0.1:0 --accel tcg --agent-secret-file "$T/secret" 2>&1); rc=$?
[ $rc -eq 1 ] && grep -q "may be read by group or others" <<<"$out" && ok "an agent secret file others may read is refused" || not_ok "an agent secret file others may read is refused" "rc $rc: $out"
echo "1..$N"
[ $FAILED -eq 0 ]
