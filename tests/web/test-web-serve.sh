#!/bin/bash
# SPDX-License-Identifier: MIT
# test-web-serve.sh — the controller's static files for the dashboard (src/controller/web.c),
# TAP, no browser: a controller serves a made-up web directory over TCP; redirects, content
# types, caching headers and ETags, and nothing outside the directory (links, dot files, '..',
# encoded or not), no token needed for the files while the API still wants one.
set -u
TMP=$(mktemp -d /tmp/gpuvirt-web-serve.XXXXXX)
PID=
cleanup() {
        [ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
        rm -rf "$TMP"
}
trap cleanup EXIT
[ -x "${GPUVIRTD:-}" ] || { echo "1..0 # SKIP GPUVIRTD must name the built gpuvirtd (meson test sets it)"; exit 0; }

W=$TMP/web
mkdir -p "$W/assets" "$W/.git" "$TMP/outside"
echo '<!doctype html><title>t</title>' >"$W/index.html"
echo 'body{}' >"$W/assets/app-ABC.css"
echo 'console.log(1)' >"$W/assets/app-ABC.js"
printf '\x89PNG\r\n\x1a\n\x00\x00binary' >"$W/assets/logo.png"
echo 'TOPSECRET' >"$TMP/outside/secret.txt"
echo 'hidden' >"$W/.git/config"
echo 'hidden' >"$W/.env"
ln -s "$TMP/outside/secret.txt" "$W/link.txt"
ln -s "$TMP/outside" "$W/linkdir"
echo 'data' >"$W/blob.xyz"

PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$GPUVIRTD" --role controller --state-dir "$TMP/state" --api-listen "127.0.0.1:$PORT" \
        --web-dir "$W" >"$TMP/log1" 2>&1 &
PID=$!
U=http://127.0.0.1:$PORT
for _ in $(seq 100); do
        curl -sf "$U/api/v1/health" >/dev/null 2>&1 && break
        sleep 0.1
done

N=0
FAILED=0
echo "1..18"
# get PATH [CURL ARGS...]: $CODE, $HDR (lower-case names), $BODY
get() {
        local p=$1
        shift
        rm -f "$TMP/b"
        CODE=$(curl -s --path-as-is -D "$TMP/h" -o "$TMP/b" -w '%{http_code}' "$@" "$U$p")
        HDR=$(tr -d '\r' <"$TMP/h" | tr 'A-Z' 'a-z')
        BODY=$(cat "$TMP/b" 2>/dev/null)
}
t() { # NAME COND...
        local name=$1
        shift
        N=$((N + 1))
        if "$@"; then
                echo "ok $N - $name"
        else
                FAILED=1
                echo "not ok $N - $name"
                echo "# HTTP $CODE"
                sed 's/^/# /' <<<"$HDR$BODY" | head -20
        fi
}
has() { grep -qF -- "$1" <<<"$HDR"; }

get /
t "/ redirects to /ui/" eval '[ "$CODE" = 302 ] && has "location: /ui/"'
get /ui
t "/ui redirects to /ui/" eval '[ "$CODE" = 302 ] && has "location: /ui/"'
get /ui/
t "/ui/ is index.html, HTML with a CSP, revalidated" eval '[ "$CODE" = 200 ] &&
        has "content-type: text/html; charset=utf-8" && has "content-security-policy: default-src '"'self'"'" &&
        has "cache-control: no-cache" && has "x-content-type-options: nosniff" && [[ "$BODY" == *"<title>t</title>"* ]]'
get /ui/index.html -H "If-None-Match: $(tr -d '\r' <"$TMP/h" | sed -n 's/^[Ee][Tt][Aa][Gg]: //p')"
t "If-None-Match with its ETag answers 304 without a body" eval '[ "$CODE" = 304 ] && [ -z "$BODY" ]'
get /ui/index.html -H 'If-None-Match: "other"'
t "another ETag gets the file" eval '[ "$CODE" = 200 ]'
get /ui/assets/app-ABC.css
t "hashed assets are CSS and immutable" eval '[ "$CODE" = 200 ] && has "content-type: text/css; charset=utf-8" &&
        has "cache-control: public, max-age=31536000, immutable" && [ "$BODY" = "body{}" ]'
get /ui/assets/app-ABC.js
t "JavaScript" eval '[ "$CODE" = 200 ] && has "content-type: text/javascript; charset=utf-8"'
get /ui/assets/logo.png
t "a binary file comes whole" eval '[ "$CODE" = 200 ] && has "content-type: image/png" && cmp -s "$TMP/b" "$W/assets/logo.png"'
get /ui/blob.xyz
t "an unknown extension is application/octet-stream" eval '[ "$CODE" = 200 ] && has "content-type: application/octet-stream"'
get /ui/link.txt
t "a symbolic link to a file outside is not followed (404)" eval '[ "$CODE" = 404 ] && [[ "$BODY" != *TOPSECRET* ]]'
get /ui/linkdir/secret.txt
t "a symbolic link to a directory outside is not followed (404)" eval '[ "$CODE" = 404 ] && [[ "$BODY" != *TOPSECRET* ]]'
get /ui/.git/config
t "dot directories are not served" eval '[ "$CODE" = 404 ]'
get /ui/.env
t "dot files are not served" eval '[ "$CODE" = 404 ]'
ok_trav=1
for p in /ui/../outside/secret.txt /ui/%2e%2e/outside/secret.txt /ui/assets/..%2f..%2foutside/secret.txt \
        /ui/assets%2f..%2f..%2foutside%2fsecret.txt /ui/..%5coutside/secret.txt; do
        get "$p"
        { [ "$CODE" = 400 ] || [ "$CODE" = 404 ]; } && [[ "$BODY" != *TOPSECRET* ]] || ok_trav=0
done
t "'..' in any spelling is refused" eval '[ $ok_trav = 1 ]'
get /ui/assets/ ; c1=$CODE
get /ui/nope.js ; c2=$CODE
t "a directory and a missing file are 404 problems" eval '[ "$c1" = 404 ] && [ "$c2" = 404 ] &&
        has "content-type: application/problem+json"'
get /api/v1/vms
t "the API itself still wants a token over TCP" eval '[ "$CODE" = 401 ]'
kill "$PID" && wait "$PID" 2>/dev/null
"$GPUVIRTD" --role controller --state-dir "$TMP/state" --api-listen "127.0.0.1:$PORT" \
        --web-dir "$TMP/none" >"$TMP/log2" 2>&1 &
PID=$!
for _ in $(seq 100); do
        curl -sf "$U/api/v1/health" >/dev/null 2>&1 && break
        sleep 0.1
done
get /ui/
t "no web directory: 404 saying how to build it" eval '[ "$CODE" = 404 ] && [[ "$BODY" == *"make web"* ]]'
kill "$PID" && wait "$PID" 2>/dev/null
PID=
# A sanitizer build reports leaks and errors when the daemon exits.
HDR=$(cat "$TMP/log1" "$TMP/log2")
BODY=
t "the controller exits clean (no sanitizer report)" eval '! grep -qE "AddressSanitizer|LeakSanitizer|runtime error" <<<"$HDR"'
exit $FAILED
