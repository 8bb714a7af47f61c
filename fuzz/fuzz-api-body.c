/* SPDX-License-Identifier: MIT */
/*
 * fuzz-api-body — the controller's REST API (src/controller/api.c) with the request bodies and
 * path parameters of every route, served by the real thing: a controller on a SQLite store in a
 * private directory (no hosts) and the real HTTP server (src/http/server.c, libmicrohttpd) on
 * a UNIX socket, in this process. One kept-alive connection carries the requests, so an input
 * costs one request's round trip, not a connect and a thread.
 *
 * Input, as lines ended by '\n' and then the body:
 *   1. the route: "METHOD PATTERN" as in the table ("POST /api/v1/vms"), or else any bytes,
 *      whose first (0 when the line is empty) picks a route by index (streams and WebSockets
 *      left out: their answer does not end), so that seeds stay readable and stable while the
 *      table grows, and mutations still reach every route;
 *   2. an Idempotency-Key (empty: none; control characters dropped), so replays, reuses and
 *      invalid keys happen;
 *   3. one line per path parameter of the route, percent-encoded into the path (any byte
 *      reaches the route matcher's decoder);
 *   4. the rest: the body (Content-Length, any bytes).
 *
 * The property: no crash, and no 5xx answer but 503 (the store is busy) — except 502 and 504
 * from POST /api/v1/hosts, the one route that calls out (to the agent at the endpoint given,
 * which is not there). Every 4,096 inputs the controller, its store and the server start afresh
 * so that tokens, pools and images made by earlier inputs do not pile up.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "controller/api.h"
#include "fuzz.h"
#include "util/alloc.h"
#include "util/fileio.h"
#include "util/parse.h"

#define RESTART_EVERY 4096u
#define REPLY_TIMEOUT_S 60
#define REPLY_MAX (64u * 1024u * 1024u)

static const char *dir;
static unsigned long generation;
static struct gv_controller *ctl;
static struct gv_controller_api api;
static struct gv_http_server *srv;
static char *sock_path;
static char *web_dir; /* outlives the server (api.web_dir points at it) */
static int conn = -1;
static unsigned long n_inputs;

static const struct gv_http_route *all_routes;
static const struct gv_http_route **routes; /* the ones fuzzed */
static size_t n_routes;

static void stop(void)
{
        if (conn >= 0)
                close(conn);
        conn = -1;
        srv = gv_http_server_free(srv);
        ctl = gv_controller_free(ctl);
}

static void start(void)
{
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        _cleanup_free_ char *sub = xasprintf("%s/%lu", dir, generation++);
        _cleanup_free_ char *images = xasprintf("%s/images", sub);
        _cleanup_free_ char *store = xasprintf("sqlite:%s/gpuvirt.db", sub);
        if (mkdir(sub, 0700) < 0 || mkdir(images, 0700) < 0)
                fuzz_fail("mkdir '%s': %s", sub, strerror(errno));
        /* Collect no metrics: there are no hosts, and a thread waking each second only adds
         * noise to the coverage. */
        struct gv_controller_config cfg = { .store_url = store, .image_dir = images,
                                            .metrics_interval_ms = 60000,
                                            .poll_interval_ms = 60000 };
        if (gv_controller_new(&cfg, &ctl, &e) < 0)
                fuzz_fail("the controller does not start: %s", gv_error_msg(e, -EIO));
        free(web_dir);
        web_dir = xstrdup(sub);
        api = (struct gv_controller_api){ .controller = ctl, .keepalive_ms = 1000,
                                          .web_dir = web_dir };
        free(sock_path);
        sock_path = xasprintf("%s/ctl.sock", sub);
        size_t n;
        const struct gv_http_route *r = gv_controller_api_routes(&n);
        struct gv_http_config hc = { .unix_path = sock_path, .upload_dir = images };
        if (gv_http_server_new(&hc, r, n, &api, &srv, &e) < 0)
                fuzz_fail("the server does not start: %s", gv_error_msg(e, -EIO));
}

static void restart(void)
{
        stop();
        _cleanup_free_ char *old = xasprintf("%s/%lu", dir, generation - 1);
        (void)gv_rm_rf(old);
        start();
}

static void dial(void)
{
        struct sockaddr_un a = { .sun_family = AF_UNIX };
        if (strlen(sock_path) >= sizeof(a.sun_path))
                fuzz_fail("socket path '%s' is too long", sock_path);
        strcpy(a.sun_path, sock_path);
        conn = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (conn < 0 || connect(conn, (struct sockaddr *)&a, sizeof(a)) < 0)
                fuzz_fail("cannot connect to '%s': %s", sock_path, strerror(errno));
        struct timeval tv = { .tv_sec = REPLY_TIMEOUT_S };
        (void)setsockopt(conn, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        (void)setsockopt(conn, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

static bool fuzzed(const struct gv_http_route *r)
{
        /* Streams and upgrades: the event stream and the consoles' WebSockets. */
        size_t n = strlen(r->pattern);
        if (strcmp(r->pattern, "/api/v1/events") == 0)
                return false;
        return !(n >= 3 && strcmp(r->pattern + n - 3, "/ws") == 0);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
        (void)argc;
        (void)argv;
        size_t n;
        dir = fuzz_tmpdir("api");
        all_routes = gv_controller_api_routes(&n);
        routes = xnew0(const struct gv_http_route *, n);
        for (size_t i = 0; i < n; i++)
                if (fuzzed(&all_routes[i]))
                        routes[n_routes++] = &all_routes[i];
        start();
        atexit(stop);
        return 0;
}

static bool unreserved(uint8_t c)
{
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               c == '-' || c == '.' || c == '_' || c == '~';
}

/* The route's pattern with each {param} replaced by the next '\n'-ended field, percent-encoded.
 * *data and *size move past the fields used. */
static char *make_path(const char *pattern, const uint8_t **data, size_t *size)
{
        size_t cap = strlen(pattern) + 3 * *size + 1, len = 0;
        char *out = xmalloc(cap);
        for (const char *p = pattern; *p;) {
                if (*p != '{') {
                        out[len++] = *p++;
                        continue;
                }
                p = strchr(p, '}');
                if (!p)
                        fuzz_fail("pattern '%s' has an unclosed parameter", pattern);
                p++;
                const uint8_t *nl = memchr(*data, '\n', *size);
                size_t n = nl ? (size_t)(nl - *data) : *size;
                for (size_t i = 0; i < n; i++) {
                        uint8_t c = (*data)[i];
                        if (unreserved(c))
                                out[len++] = (char)c;
                        else
                                len += (size_t)snprintf(out + len, cap - len, "%%%02X", c);
                }
                *data += n + (nl ? 1 : 0);
                *size -= n + (nl ? 1 : 0);
        }
        out[len] = '\0';
        return out;
}

/* 0, or -errno when the connection is gone (the server may close a kept-alive connection
 * after any reply, e.g. one it made before reading the whole body). */
static int send_all(const char *buf, size_t n)
{
        while (n > 0) {
                ssize_t s = send(conn, buf, n, MSG_NOSIGNAL);
                if (s < 0 && errno == EINTR)
                        continue;
                if (s < 0 && (errno == EPIPE || errno == ECONNRESET))
                        return -errno;
                if (s <= 0)
                        fuzz_fail("cannot send the request: %s", strerror(errno));
                buf += s;
                n -= (size_t)s;
        }
        return 0;
}

/* A header's value in the head (case-insensitive name), or NULL; not NUL-terminated: up to
 * "\r\n". */
static const char *header(const char *head, const char *name)
{
        size_t n = strlen(name);
        for (const char *l = strstr(head, "\r\n"); l && l[2] && l[2] != '\r';
             l = strstr(l + 2, "\r\n")) {
                const char *s = l + 2;
                if (strncasecmp(s, name, n) == 0 && s[n] == ':') {
                        s += n + 1;
                        while (*s == ' ')
                                s++;
                        return s;
                }
        }
        return NULL;
}

/* Read one reply; returns its status, or 0 when the connection was closed before its first
 * byte. *ret_close: the server closes the connection after it. */
static unsigned read_reply(const char *what, bool *ret_close, char **ret_body)
{
        size_t cap = 4096, len = 0;
        _cleanup_free_ char *buf = xmalloc(cap + 1);
        char *end = NULL;
        for (;;) {
                if (len == cap) {
                        if (cap >= REPLY_MAX)
                                fuzz_fail("%s: a reply head over %u bytes", what, REPLY_MAX);
                        cap *= 2;
                        buf = xreallocarray(buf, cap + 1, 1);
                }
                ssize_t n = recv(conn, buf + len, cap - len, 0);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
                        fuzz_fail("%s: no reply within %d s", what, REPLY_TIMEOUT_S);
                if (n <= 0 && len == 0)
                        return 0; /* closed before answering: the caller tries again */
                if (n <= 0)
                        fuzz_fail("%s: the server closed the connection in a reply's head (%s)",
                                  what, n < 0 ? strerror(errno) : "end of stream");
                len += (size_t)n;
                buf[len] = '\0';
                end = strstr(buf, "\r\n\r\n");
                if (end)
                        break;
        }
        *end = '\0';
        unsigned status = 0;
        char code[4] = { 0 };
        if (strncmp(buf, "HTTP/1.1 ", 9) != 0 || len < 12)
                fuzz_fail("%s: not an HTTP reply: '%.40s'", what, buf);
        memcpy(code, buf + 9, 3);
        uint32_t st;
        if (gv_parse_u32(code, 10, &st) < 0)
                fuzz_fail("%s: bad status '%s'", what, code);
        status = st;

        const char *cl = header(buf, "Content-Length");
        const char *cn = header(buf, "Connection");
        *ret_close = cn && strncasecmp(cn, "close", 5) == 0;
        uint64_t body_len = 0;
        if (cl) {
                _cleanup_free_ char *v = xstrndup(cl, strcspn(cl, "\r"));
                if (gv_parse_u64(v, 10, &body_len) < 0 || body_len > REPLY_MAX)
                        fuzz_fail("%s: bad Content-Length '%s'", what, v);
        } else if (header(buf, "Transfer-Encoding")) {
                fuzz_fail("%s: a chunked reply (a stream) from a route that is not one", what);
        }
        size_t have = len - (size_t)(end + 4 - buf);
        _cleanup_free_ char *body = xmalloc(body_len + 1);
        memcpy(body, end + 4, MIN(have, body_len));
        if (have > body_len)
                fuzz_fail("%s: %zu bytes after the reply", what, have - (size_t)body_len);
        while (have < body_len) {
                ssize_t n = recv(conn, body + have, body_len - have, 0);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        fuzz_fail("%s: the reply's body ended after %zu of %llu bytes", what,
                                  have, (unsigned long long)body_len);
                have += (size_t)n;
        }
        body[body_len] = '\0';
        *ret_body = TAKE_PTR(body);
        return status;
}

/* The next '\n'-ended line (or the rest), as a new string; *data and *size move past it. */
static char *next_line(const uint8_t **data, size_t *size)
{
        const uint8_t *nl = memchr(*data, '\n', *size);
        size_t n = nl ? (size_t)(nl - *data) : *size;
        char *s = fuzz_strndup(*data, n);
        *data += n + (nl ? 1 : 0);
        *size -= n + (nl ? 1 : 0);
        return s;
}

static const struct gv_http_route *pick_route(const char *line)
{
        for (size_t i = 0; i < n_routes; i++) {
                size_t m = strlen(routes[i]->method);
                if (strncmp(line, routes[i]->method, m) == 0 && line[m] == ' ' &&
                    strcmp(line + m + 1, routes[i]->pattern) == 0)
                        return routes[i];
        }
        return routes[(uint8_t)line[0] % n_routes];
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        if (++n_inputs % RESTART_EVERY == 0)
                restart();
        _cleanup_free_ char *sel = next_line(&data, &size);
        const struct gv_http_route *r = pick_route(sel);
        _cleanup_free_ char *key_raw = next_line(&data, &size);
        size_t kn = 0;
        for (size_t i = 0; key_raw[i]; i++)
                if ((unsigned char)key_raw[i] >= 0x20 && key_raw[i] != 0x7f)
                        key_raw[kn++] = key_raw[i];
        key_raw[kn] = '\0';

        _cleanup_free_ char *path = make_path(r->pattern, &data, &size);
        _cleanup_free_ char *key = kn ? xasprintf("Idempotency-Key: %s\r\n", key_raw)
                                      : xstrdup("");
        _cleanup_free_ char *head = xasprintf("%s %s HTTP/1.1\r\nHost: fuzz\r\n"
                                              "Content-Length: %zu\r\n%s\r\n",
                                              r->method, path, size, key);
        _cleanup_free_ char *what = xasprintf("%s %s", r->method, path);
        /* The server may close a kept-alive connection after any reply, and may answer (and
         * close) before it has read the whole body: a failed send is not the end, the reply may
         * be waiting. A connection closed before any reply is tried once more, anew. */
        bool close_after = false;
        _cleanup_free_ char *body = NULL;
        unsigned status = 0;
        for (int attempt = 0; attempt < 2 && status == 0; attempt++) {
                if (conn < 0)
                        dial();
                if (send_all(head, strlen(head)) >= 0)
                        (void)send_all((const char *)data, size);
                status = read_reply(what, &close_after, &body);
                if (status == 0 || close_after) {
                        close(conn);
                        conn = -1;
                }
        }
        if (status == 0)
                fuzz_fail("%s: the server closed two connections without a reply", what);

        bool calls_out = strcmp(r->method, "POST") == 0 &&
                         strcmp(r->pattern, "/api/v1/hosts") == 0;
        if (getenv("GV_FUZZ_VERBOSE")) /* what each input got, for writing seeds */
                fprintf(stderr, "%s -> %u %.200s\n", what, status, body);
        if (status < 100 || status > 599)
                fuzz_fail("%s: status %u", what, status);
        if (status >= 500 && status != 503 && !(calls_out && (status == 502 || status == 504)))
                fuzz_fail("%s answered %u: %s", what, status, body);
        return 0;
}
