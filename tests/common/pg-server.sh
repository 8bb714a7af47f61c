#!/bin/bash
# SPDX-License-Identifier: MIT
# pg-server.sh — a throw-away PostgreSQL 15 server for tests (the store's PostgreSQL backend,
# several controllers on one store, allocation races, benchmarks). Stable interface:
#
#   pg-server.sh start DIR [OPTION=VALUE...]
#         Creates DIR (and the cluster in DIR/data with initdb) unless it exists, starts the
#         server and waits until it accepts connections, creates the database `gpuvirt`, and
#         prints the store URL on stdout (one line):
#             postgresql:///gpuvirt?host=DIR&user=gpuvirt
#         Starting a DIR whose server was stopped starts it again with its data kept.
#         OPTION=VALUE pairs go to postgres as -c settings for this start (e.g.
#         max_connections=200). Exit 0 when the server runs.
#   pg-server.sh stop DIR [fast|immediate]
#         Stops the server (default fast: sessions are ended, the data is kept; immediate: as
#         if it crashed, recovery on the next start). Exit 0 also when it was not running.
#   pg-server.sh url DIR        prints the store URL (as start does), starts nothing.
#   pg-server.sh status DIR     exit 0 when the server in DIR is running, 3 when not.
#
# The server listens on a UNIX socket in DIR only (listen_addresses = ''), trusts every local
# connection, and has the superuser role `gpuvirt` (initdb's bootstrap user) and the database
# `gpuvirt`. Its log is DIR/postgres.log. The socket path DIR/.s.PGSQL.5432 must fit in 107
# bytes: give a short DIR (mktemp -d /tmp/pg-XXXXXX). PostgreSQL refuses to run as root: as
# root the server runs as the `postgres` system user, DIR is handed to it and DIR's parents are
# made traversable (o+x). Remove DIR with rm -rf once stopped.
#
# GPUVIRT_PG_BIN names the directory of initdb, pg_ctl and postgres (default
# /usr/lib/postgresql/15/bin). When they are missing the script exits 77 with the reason on
# stderr (a caller's cue to skip).
set -euo pipefail

PG_BIN=${GPUVIRT_PG_BIN:-/usr/lib/postgresql/15/bin}

die() { echo "pg-server.sh: $*" >&2; exit "${2:-1}"; }
usage() { die "usage: pg-server.sh start|stop|url|status DIR [...]" 2; }

[ $# -ge 2 ] || usage
cmd=$1
dir=$2
shift 2
case $dir in /*) ;; *) dir=$PWD/$dir ;; esac
dir=${dir%/}

url() { echo "postgresql:///gpuvirt?host=$dir&user=gpuvirt"; }

# Run a PostgreSQL program as the server's user.
as_pg() {
        if [ "$(id -u)" = 0 ]; then
                runuser -u postgres -- "$@"
        else
                "$@"
        fi
}

running() {
        [ -f "$dir/data/PG_VERSION" ] && as_pg "$PG_BIN/pg_ctl" -D "$dir/data" status >/dev/null 2>&1
}

start() {
        for p in initdb pg_ctl postgres; do
                [ -x "$PG_BIN/$p" ] || die "$PG_BIN/$p is missing: install PostgreSQL 15 or set GPUVIRT_PG_BIN" 77
        done
        [ ${#dir} -le 90 ] || die "'$dir' is too long for a UNIX socket path: give a shorter DIR" 2
        mkdir -p "$dir"
        if [ "$(id -u)" = 0 ]; then
                id postgres >/dev/null 2>&1 || die "running as root needs the 'postgres' system user" 77
                chown postgres: "$dir"
                chmod 0700 "$dir"
                local p=$dir
                while p=$(dirname "$p") && [ "$p" != / ]; do
                        chmod o+x "$p"
                done
        fi
        if [ ! -f "$dir/data/PG_VERSION" ]; then
                as_pg "$PG_BIN/initdb" -D "$dir/data" -U gpuvirt --auth=trust -E UTF8 \
                        --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 ||
                        die "initdb failed; see $dir/initdb.log: $(tail -3 "$dir/initdb.log")"
                cat >>"$dir/data/postgresql.conf" <<EOF
# pg-server.sh (tests): a UNIX socket in the test's directory only, small memory.
listen_addresses = ''
unix_socket_directories = '$dir'
shared_buffers = 16MB
max_connections = 100
logging_collector = off
log_min_messages = warning
EOF
        fi
        if ! running; then
                local opts="" kv
                for kv in "$@"; do
                        opts+=" -c $kv"
                done
                as_pg "$PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w -t 120 \
                        ${opts:+-o "$opts"} start >/dev/null ||
                        die "the server did not start; see $dir/postgres.log: $(tail -3 "$dir/postgres.log")"
        fi
        if ! as_pg "$PG_BIN/psql" -h "$dir" -U gpuvirt -d postgres -XAtqc \
                "SELECT 1 FROM pg_database WHERE datname = 'gpuvirt'" | grep -q 1; then
                as_pg "$PG_BIN/createdb" -h "$dir" -U gpuvirt gpuvirt 2>/dev/null ||
                        as_pg "$PG_BIN/psql" -h "$dir" -U gpuvirt -d gpuvirt -XAtqc 'SELECT 1' \
                                >/dev/null || die "cannot create the database 'gpuvirt'"
        fi
        url
}

stop() {
        local mode=${1:-fast}
        case $mode in fast|immediate) ;; *) die "stop mode '$mode': give fast or immediate" 2 ;; esac
        running || return 0
        as_pg "$PG_BIN/pg_ctl" -D "$dir/data" -m "$mode" -w -t 120 stop >/dev/null
}

case $cmd in
start) start "$@" ;;
stop) stop "$@" ;;
url) url ;;
status) running || exit 3 ;;
*) usage ;;
esac
