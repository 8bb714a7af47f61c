#!/bin/bash
# SPDX-License-Identifier: MIT
# run-pg.sh PG_SERVER TEST... — the store's tests on a real PostgreSQL: starts a throw-away
# server with PG_SERVER (tests/common/pg-server.sh) in a fresh directory, runs each TEST with
# GPUVIRT_TEST_PG_URL, GPUVIRT_TEST_PG_DIR and GPUVIRT_TEST_PG_SERVER set, stops the server and
# removes the directory. Exit 77 (skip) when PostgreSQL is not installed; otherwise the first
# failing test's status.
set -uo pipefail
server=$1
shift
dir=$(mktemp -d /tmp/gv-pg-XXXXXX)
cleanup() {
        "$server" stop "$dir" immediate >/dev/null 2>&1
        [ -n "${GPUVIRT_TEST_KEEP_ROOT:-}" ] || rm -rf "$dir"
}
trap cleanup EXIT
url=$("$server" start "$dir")
rc=$?
if [ $rc = 77 ]; then
        echo "# SKIP PostgreSQL is not installed here"
        exit 77
fi
[ $rc = 0 ] || { echo "pg-server.sh start failed ($rc)"; exit 1; }
export GPUVIRT_TEST_PG_URL=$url GPUVIRT_TEST_PG_DIR=$dir GPUVIRT_TEST_PG_SERVER=$server
status=0
for t in "$@"; do
        echo "# $t on $url"
        "$t" || { [ $status != 0 ] || status=$?; }
done
exit $status
