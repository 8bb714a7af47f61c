# SPDX-License-Identifier: MIT
# shellcheck shell=bash
#
# lib.sh — shared helpers for the gpuvirt CLI integration tests (sourced by each test-*.sh).
#
# Environment (set by tests/integration/meson.build, or by hand):
#   GPUVIRT            the built gpuvirt CLI
#   GPUVIRT_SIM        the built gpuvirt-sim tool
#   GPUVIRT_DATA_DIR   the GPU catalog (data/), read with jq for the expected facts
#   JQ                 jq (default: jq on PATH)
#   GPUVIRT_TEST_KEEP_ROOT=1  keep the simulated hosts (their paths are printed as TAP comments)
#
# TAP: each check is one `ok N - name` / `not ok N - name` line, diagnostics as `# ...`. The plan
# "1..N" is printed at the end (allowed by TAP 12), so scripts do not have to count.
#
# A command is run with `run CMD...` (or `gv ARGS...` for gpuvirt on the current host): its exit
# status lands in $RC, its stdout in $OUT, its stderr in $ERR. The assertions look at those.

set -u

: "${GPUVIRT:?GPUVIRT must name the gpuvirt binary}"
: "${GPUVIRT_SIM:?GPUVIRT_SIM must name the gpuvirt-sim binary}"
: "${GPUVIRT_DATA_DIR:?GPUVIRT_DATA_DIR must name the data/ directory}"
JQ=${JQ:-jq}
command -v "$JQ" >/dev/null 2>&1 || { echo "1..0 # SKIP jq not found (apt-get install jq)"; exit 0; }

TAP_N=0
TAP_FAILED=0
RC=0
OUT=
ERR=
ROOT=
LAST_CMD=

# All simulated hosts of this script live under one temporary directory. A simulated host is
# thousands of small files (dgx-a100: ~33000, mdev types on every VF): on a disk file system
# creating one takes seconds, on tmpfs a fraction of one, so /dev/shm is preferred when it is
# writable. GPUVIRT_TEST_TMPDIR overrides.
if [ -n "${GPUVIRT_TEST_TMPDIR:-}" ]; then
        _tmp_base=$GPUVIRT_TEST_TMPDIR
elif [ -d /dev/shm ] && [ -w /dev/shm ]; then
        _tmp_base=/dev/shm
else
        _tmp_base=${TMPDIR:-/tmp}
fi
TEST_TMP=$(mktemp -d "$_tmp_base/gpuvirt-integ.XXXXXX")
_cleanup() {
        if [ "${GPUVIRT_TEST_KEEP_ROOT:-0}" = 1 ]; then
                echo "# kept simulated hosts under $TEST_TMP"
        else
                rm -rf "$TEST_TMP"
        fi
}
trap _cleanup EXIT

# ------------------------------------------------------------------ TAP

diag() {
        local line
        while IFS= read -r line; do
                printf '#   %s\n' "$line"
        done <<<"$*"
}

_ok() {
        TAP_N=$((TAP_N + 1))
        echo "ok $TAP_N - $1"
}

_not_ok() {
        TAP_N=$((TAP_N + 1))
        TAP_FAILED=$((TAP_FAILED + 1))
        echo "not ok $TAP_N - $1"
        shift
        [ $# -gt 0 ] && diag "$*"
        diag "command: $LAST_CMD"
        diag "exit code: $RC"
        [ -n "$OUT" ] && diag "stdout: $(printf '%s' "$OUT" | head -c 3000)"
        [ -n "$ERR" ] && diag "stderr: $(printf '%s' "$ERR" | head -c 3000)"
        return 0
}

done_testing() {
        echo "1..$TAP_N"
        [ "$TAP_FAILED" -eq 0 ]
        exit $?
}

# ------------------------------------------------------------------ running commands

# run CMD...: run a command, capture stdout/stderr/exit code.
run() {
        LAST_CMD="$*"
        local o e
        o=$(mktemp "$TEST_TMP/out.XXXXXX")
        e=$(mktemp "$TEST_TMP/err.XXXXXX")
        "$@" >"$o" 2>"$e"
        RC=$?
        OUT=$(cat "$o")
        ERR=$(cat "$e")
        rm -f "$o" "$e"
        return 0
}

# gv ARGS...: gpuvirt against the current simulated host $ROOT (through gpuvirt-sim exec, so
# the sysfs root, the NVML simulator and the kernel-behaviour mock are all in place).
gv() {
        run "$GPUVIRT_SIM" exec --root "$ROOT" -- "$GPUVIRT" "$@"
        LAST_CMD="gpuvirt $*"
        # A sanitizer report (ASan/UBSan builds) fails the script even where the exit code is
        # not checked.
        if grep -qE "ERROR: (Address|Leak)Sanitizer|runtime error:" <<<"$ERR"; then
                _not_ok "no sanitizer report from: gpuvirt $*" "the sanitizer reported an error"
        fi
}

# sim ARGS...: gpuvirt-sim (status, inject, ...) on the current host; the output is captured too.
sim() {
        local cmd=$1
        shift
        run "$GPUVIRT_SIM" "$cmd" --root "$ROOT" "$@"
}

# inject [--gpu N] [--target T] [--always] CALL CODE: options go before CALL (the tool's getopt
# stops at the first non-option). Fails the script loudly if the tool refuses.
inject() {
        if ! "$GPUVIRT_SIM" inject --root "$ROOT" "$@" >/dev/null; then
                _not_ok "gpuvirt-sim inject $*" "the simulator refused the injection"
        fi
}

inject_clear() {
        "$GPUVIRT_SIM" inject --root "$ROOT" --clear >/dev/null
}

# new_host PROFILE [NAME]: create a simulated host and make it current ($ROOT).
new_host() {
        ROOT="$TEST_TMP/${2:-$1}"
        if ! "$GPUVIRT_SIM" create --profile "$1" --root "$ROOT" >"$TEST_TMP/create.log" 2>&1; then
                echo "Bail out! gpuvirt-sim create --profile $1 failed: $(cat "$TEST_TMP/create.log")"
                exit 1
        fi
        [ "${GPUVIRT_TEST_KEEP_ROOT:-0}" = 1 ] && echo "# host $1 at $ROOT"
        return 0
}

# sim_sh SCRIPT: a shell command inside the simulated host (kernel mock preloaded, so writes to
# sysfs files behave as the kernel's would). $GPUVIRT_SYSFS_ROOT is the root. Used only to play
# the administrator or the kernel where gpuvirt has no command (a GPU reset).
sim_sh() {
        run "$GPUVIRT_SIM" exec --root "$ROOT" -- sh -c "$1"
}

# gpu_reset BDF: reset a GPU the way the simulator models it (unbind from and bind to nvidia);
# a pending MIG mode becomes current.
gpu_reset() {
        sim_sh "echo $1 > \"\$GPUVIRT_SYSFS_ROOT/sys/bus/pci/drivers/nvidia/unbind\" &&
                echo $1 > \"\$GPUVIRT_SYSFS_ROOT/sys/bus/pci/drivers/nvidia/bind\""
}

# ------------------------------------------------------------------ reading the simulated host

dev_dir() { echo "$ROOT/sys/bus/pci/devices/$1"; }

# driver_of BDF: the driver the function is bound to in the simulated sysfs tree, or "none".
driver_of() {
        local l
        l=$(readlink "$(dev_dir "$1")/driver" 2>/dev/null) || { echo none; return; }
        basename "$l"
}

numvfs_of() { cat "$(dev_dir "$1")/sriov_numvfs" 2>/dev/null || echo "?"; }

# sim_json FILTER: jq over `gpuvirt-sim status --json`.
sim_json() {
        "$GPUVIRT_SIM" status --root "$ROOT" --json | "$JQ" -r "$1"
}

# ------------------------------------------------------------------ the catalog

catalog_file() {
        local f="$GPUVIRT_DATA_DIR/gpus/$1.json"
        [ -f "$f" ] || { echo "Bail out! no catalog file '$f'"; exit 1; }
        echo "$f"
}

# catalog MODEL FILTER: jq over data/gpus/MODEL.json.
catalog() {
        "$JQ" -r "$2" "$(catalog_file "$1")"
}

# ------------------------------------------------------------------ assertions (on $RC/$OUT/$ERR)

assert_rc() { # EXPECTED NAME
        if [ "$RC" -eq "$1" ]; then _ok "$2"; else _not_ok "$2" "expected exit code $1, got $RC"; fi
}

# assert_fails NAME: any non-zero exit code.
assert_fails() {
        if [ "$RC" -ne 0 ]; then _ok "$1"; else _not_ok "$1" "expected a failure, got exit code 0"; fi
}

# assert_fails_with CODE NAME: exit code and a message on stderr ("error: ...").
assert_fails_with() {
        if [ "$RC" -eq "$1" ] && grep -q '^error: ' <<<"$ERR"; then
                _ok "$2"
        else
                _not_ok "$2" "expected exit code $1 and an 'error:' line on stderr"
        fi
}

_contains() { # HAYSTACK NEEDLE (fixed string)
        grep -qF -- "$2" <<<"$1"
}

assert_out_contains() { # NEEDLE NAME
        if _contains "$OUT" "$1"; then _ok "$2"; else _not_ok "$2" "stdout lacks '$1'"; fi
}

assert_err_contains() { # NEEDLE NAME
        if _contains "$ERR" "$1"; then _ok "$2"; else _not_ok "$2" "stderr lacks '$1'"; fi
}

# assert_err_contains_all NAME NEEDLE...: every needle is in stderr.
assert_err_contains_all() {
        local name=$1 n missing=
        shift
        for n in "$@"; do
                _contains "$ERR" "$n" || missing="$missing '$n'"
        done
        if [ -z "$missing" ]; then _ok "$name"; else _not_ok "$name" "stderr lacks:$missing"; fi
}

assert_out_lacks() { # NEEDLE NAME
        if _contains "$OUT" "$1"; then _not_ok "$2" "stdout has '$1'"; else _ok "$2"; fi
}

assert_json() { # NAME: stdout parses as one JSON document
        if [ -n "$OUT" ] && "$JQ" -e . >/dev/null 2>&1 <<<"$OUT"; then
                _ok "$1"
        else
                _not_ok "$1" "stdout is not JSON"
        fi
}

# assert_jq FILTER EXPECTED NAME: jq -r FILTER on stdout prints EXPECTED.
assert_jq() {
        local got
        got=$("$JQ" -r "$1" 2>&1 <<<"$OUT")
        if [ "$got" = "$2" ]; then
                _ok "$3"
        else
                _not_ok "$3" "jq '$1' gave '$got', expected '$2'"
        fi
}

# assert_eq GOT EXPECTED NAME: for values read from the simulator or files.
assert_eq() {
        if [ "$1" = "$2" ]; then _ok "$3"; else _not_ok "$3" "got '$1', expected '$2'"; fi
}

# inspect_json FILTER: jq -r over a fresh `gpuvirt --json host inspect` (no assertion).
inspect_json() {
        "$GPUVIRT_SIM" exec --root "$ROOT" -- "$GPUVIRT" --json host inspect | "$JQ" -r "$1"
}
