/* SPDX-License-Identifier: MIT */
/*
 * The HTTP server layer over real sockets: a server on a UNIX socket in a mkdtemp directory and
 * on TCP 127.0.0.1:0, driven by the client (and by raw sockets where the client is too polite).
 * Assertions run in the main thread only; helper threads report through plain variables.
 */
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "http/client.h"
#include "http/server.h"
#include "util/alloc.h"
#include "util/fileio.h"
#include "util/json.h"

#define MAX_BODY 4096u
#define TIMEOUT_MS 10000

struct ctx {
        pthread_mutex_t lock;
        pthread_cond_t cond;
        bool fast_done;
        atomic_uint completed;
        atomic_uint last_status;
};

/* ---- handlers ---- */

static int h_echo(struct gv_http_request *req, void *u)
{
        (void)u;
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        json_t *body = NULL;
        int r = gv_http_body_json(req, &body, &e);
        if (r < 0)
                return gv_http_reply_error(req, r, e);
        json_t *out = json_pack("{s:o, s:s, s:s}", "got", body, "method", gv_http_method(req),
                                "request_id", gv_http_request_id(req));
        return gv_http_reply_json(req, 200, out);
}

static int h_vm_get(struct gv_http_request *req, void *u)
{
        (void)u;
        return gv_http_reply_json(req, 200, json_pack("{s:s}", "name", gv_http_param(req, "name")));
}

static int h_vm_start(struct gv_http_request *req, void *u)
{
        (void)u;
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        int r = gv_error_set(&e, EBUSY, "VM '%s' is being stopped; try again when it is.",
                             gv_http_param(req, "name"));
        return gv_http_reply_error(req, r, e);
}

static int h_slow(struct gv_http_request *req, void *u)
{
        struct ctx *c = u;
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += 5;
        pthread_mutex_lock(&c->lock);
        while (!c->fast_done)
                if (pthread_cond_timedwait(&c->cond, &c->lock, &until) != 0)
                        break;
        bool released = c->fast_done;
        pthread_mutex_unlock(&c->lock);
        return gv_http_reply_json(req, 200, json_pack("{s:b}", "released", released));
}

static int h_fast(struct gv_http_request *req, void *u)
{
        struct ctx *c = u;
        pthread_mutex_lock(&c->lock);
        c->fast_done = true;
        pthread_cond_broadcast(&c->cond);
        pthread_mutex_unlock(&c->lock);
        return gv_http_reply_json(req, 200, json_pack("{s:b}", "fast", true));
}

static int h_fail(struct gv_http_request *req, void *u)
{
        (void)req;
        (void)u;
        return -ENOENT;
}

static int h_noreply(struct gv_http_request *req, void *u)
{
        (void)req;
        (void)u;
        return 0;
}

static int h_twice(struct gv_http_request *req, void *u)
{
        (void)u;
        int r = gv_http_reply_json(req, 201, json_pack("{s:i}", "first", 1));
        int r2 = gv_http_reply_problem(req, 500, "internal", NULL, "second");
        /* The first reply stays; the second says it was refused. */
        if (r != 0 || r2 != -EALREADY)
                return -EIO;
        return 0;
}

static int h_whoami(struct gv_http_request *req, void *u)
{
        (void)u;
        uid_t uid;
        gid_t gid;
        pid_t pid;
        int r = gv_http_peer_cred(req, &uid, &gid, &pid);
        if (r < 0)
                return gv_http_reply_json(req, 200, json_pack("{s:s}", "cred",
                                                              gv_errno_name(r)));
        return gv_http_reply_json(req, 200, json_pack("{s:I, s:I, s:I}", "uid", (json_int_t)uid,
                                                      "gid", (json_int_t)gid, "pid",
                                                      (json_int_t)pid));
}

static int h_query(struct gv_http_request *req, void *u)
{
        (void)u;
        static const char *const allowed[] = { "follow", "lines", NULL };
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        int r = gv_http_query_check(req, allowed, &e);
        if (r < 0)
                return gv_http_reply_error(req, r, e);
        const char *follow = NULL, *lines = NULL;
        r = gv_http_query(req, "follow", &follow, &e);
        if (r >= 0)
                r = gv_http_query(req, "lines", &lines, &e);
        if (r < 0)
                return gv_http_reply_error(req, r, e);
        json_t *o = json_object();
        json_object_set_new(o, "follow", follow ? json_string(follow) : json_null());
        json_object_set_new(o, "lines", lines ? json_string(lines) : json_null());
        json_object_set_new(o, "x-test", gv_http_header(req, "x-test")
                                                 ? json_string(gv_http_header(req, "X-Test"))
                                                 : json_null());
        return gv_http_reply_json(req, 200, o);
}

struct counter {
        int i, n;
        atomic_bool *freed; /* set by the connection thread, polled by the test */
};

static ssize_t count_cb(void *cls, char *buf, size_t max, int stop_fd)
{
        struct counter *c = cls;
        (void)stop_fd;
        if (c->i == c->n)
                return 0;
        int k = snprintf(buf, max, "line %d\n", c->i);
        if (k < 0 || (size_t)k >= max)
                return -ENOBUFS;
        c->i++;
        return k;
}

static atomic_bool stream_freed;

static void counter_free(void *cls)
{
        struct counter *c = cls;
        *c->freed = true;
        free(c);
}

static int h_stream(struct gv_http_request *req, void *u)
{
        (void)u;
        struct counter *c = xnew0(struct counter, 1);
        c->n = 500;
        c->freed = &stream_freed;
        return gv_http_reply_stream(req, 200, "text/plain", count_cb, c, counter_free);
}

/* Sends one line, then waits for the server to stop. */
static ssize_t forever_cb(void *cls, char *buf, size_t max, int stop_fd)
{
        int *sent = cls;
        (void)max;
        if (!*sent) {
                *sent = 1;
                memcpy(buf, "hello\n", 6);
                return 6;
        }
        struct pollfd p = { .fd = stop_fd, .events = POLLIN };
        (void)poll(&p, 1, 20000);
        return 0;
}

static int h_forever(struct gv_http_request *req, void *u)
{
        (void)u;
        int *sent = xnew0(int, 1);
        return gv_http_reply_stream(req, 200, "text/plain", forever_cb, sent, free);
}

static const struct gv_http_route routes[] = {
        { "POST", "/v1/echo", h_echo },
        { "GET", "/v1/vms/{name}", h_vm_get },
        { "POST", "/v1/vms/{name}/start", h_vm_start },
        { "GET", "/v1/slow", h_slow },
        { "GET", "/v1/fast", h_fast },
        { "GET", "/v1/fail", h_fail },
        { "GET", "/v1/noreply", h_noreply },
        { "GET", "/v1/twice", h_twice },
        { "GET", "/v1/whoami", h_whoami },
        { "GET", "/v1/query", h_query },
        { "GET", "/v1/stream", h_stream },
        { "GET", "/v1/forever", h_forever },
};

/* ---- fixture ---- */

struct fx {
        char dir[64];
        char *sock;
        char *unix_ep;
        char *tcp_ep;
        struct ctx ctx;
        struct gv_http_server *srv;
};

static void on_complete(void *userdata, const struct gv_http_request *req)
{
        struct ctx *c = userdata;
        atomic_store(&c->last_status, gv_http_status(req));
        atomic_fetch_add(&c->completed, 1);
}

static int fx_setup(void **state)
{
        struct fx *f = xnew0(struct fx, 1);
        strcpy(f->dir, "/tmp/gv-http-XXXXXX");
        assert_non_null(mkdtemp(f->dir));
        f->sock = xasprintf("%s/agent.sock", f->dir);
        f->unix_ep = xasprintf("unix:%s", f->sock);
        pthread_mutex_init(&f->ctx.lock, NULL);
        pthread_cond_init(&f->ctx.cond, NULL);

        struct gv_http_config cfg = {
                .unix_path = f->sock, .tcp_address = "127.0.0.1:0", .max_body = MAX_BODY,
                .on_complete = on_complete,
        };
        struct gv_error *e = NULL;
        int r = gv_http_server_new(&cfg, routes, ELEMENTSOF(routes), &f->ctx, &f->srv, &e);
        if (r < 0)
                fail_msg("server: %s", e->msg);
        assert_int_not_equal(gv_http_server_tcp_port(f->srv), 0);
        f->tcp_ep = xasprintf("http://127.0.0.1:%u", gv_http_server_tcp_port(f->srv));
        *state = f;
        return 0;
}

static int fx_teardown(void **state)
{
        struct fx *f = *state;
        gv_http_server_free(f->srv);
        /* The socket file goes with the server. */
        assert_int_equal(gv_file_exists(f->sock), 0);
        assert_int_equal(gv_rm_rf(f->dir), 0);
        pthread_mutex_destroy(&f->ctx.lock);
        pthread_cond_destroy(&f->ctx.cond);
        free(f->sock);
        free(f->unix_ep);
        free(f->tcp_ep);
        free(f);
        return 0;
}

/* A request with a raw body; returns the status, the reply in *rep. */
static int send_raw(const char *ep, const char *method, const char *path, const char *body,
                    size_t len, struct gv_http_client_reply *rep)
{
        struct gv_http_client_req rq = {
                .endpoint = ep, .method = method, .path = path, .body = body, .body_len = len,
                .timeout_ms = TIMEOUT_MS,
        };
        struct gv_error *e = NULL;
        int r = gv_http_client_send(&rq, rep, &e);
        if (r < 0)
                fail_msg("%s %s: %s", method, path, e->msg);
        return rep->status;
}

static json_t *reply_json(const struct gv_http_client_reply *rep)
{
        json_error_t je;
        json_t *j = json_loadb(rep->body, rep->body_len, 0, &je);
        if (!j)
                fail_msg("reply is not JSON (%s): %s", je.text, rep->body);
        return j;
}

static void assert_problem(const struct gv_http_client_reply *rep, int status, const char *slug,
                           const char *instance, const char *detail_part)
{
        assert_int_equal(rep->status, status);
        assert_string_equal(gv_http_client_reply_header(rep, "Content-Type"),
                            "application/problem+json");
        assert_non_null(gv_http_client_reply_header(rep, "X-Request-Id"));
        json_t *p = reply_json(rep);
        _cleanup_free_ char *type = xasprintf("https://gpuvirt.dev/problems/%s", slug);
        assert_string_equal(json_string_value(json_object_get(p, "type")), type);
        assert_int_equal(json_integer_value(json_object_get(p, "status")), status);
        assert_string_equal(json_string_value(json_object_get(p, "title")),
                            gv_http_status_title((unsigned)status));
        assert_string_equal(json_string_value(json_object_get(p, "instance")), instance);
        const char *detail = json_string_value(json_object_get(p, "detail"));
        assert_non_null(detail);
        if (detail_part && !strstr(detail, detail_part))
                fail_msg("detail '%s' lacks '%s'", detail, detail_part);
        json_decref(p);
}

/* ---- tests ---- */

static void test_echo_both_listeners(void **state)
{
        struct fx *f = *state;
        const char *eps[] = { f->unix_ep, f->tcp_ep };
        unsigned long prev_id = 0;

        for (size_t i = 0; i < ELEMENTSOF(eps); i++) {
                json_t *body = json_pack("{s:s, s:[i,i]}", "name", "web1", "gpus", 1, 2);
                json_t *out = NULL;
                int status = 0;
                struct gv_error *e = NULL;
                int r = gv_http_client_request(eps[i], "POST", "/v1/echo", body, TIMEOUT_MS,
                                               &status, &out, &e);
                if (r < 0)
                        fail_msg("%s: %s", eps[i], e->msg);
                assert_int_equal(status, 200);
                assert_true(json_equal(json_object_get(out, "got"), body));
                assert_string_equal(json_string_value(json_object_get(out, "method")), "POST");
                json_decref(out);
                json_decref(body);

                /* Headers: Content-Type and an incrementing X-Request-Id. */
                struct gv_http_client_reply rep = {};
                assert_int_equal(send_raw(eps[i], "POST", "/v1/echo", "{}", 2, &rep), 200);
                assert_string_equal(gv_http_client_reply_header(&rep, "content-type"),
                                    "application/json");
                const char *id = gv_http_client_reply_header(&rep, "X-Request-Id");
                assert_non_null(id);
                unsigned long v = strtoul(id, NULL, 10);
                assert_true(v > prev_id);
                prev_id = v;
                gv_http_client_reply_done(&rep);
        }
        /* on_complete runs after the reply went out: give it a moment. */
        for (int w = 0; w < 200 && atomic_load(&f->ctx.completed) < 4; w++)
                usleep(10 * 1000);
        assert_int_equal(atomic_load(&f->ctx.completed), 4);
        assert_int_equal(atomic_load(&f->ctx.last_status), 200);
}

static void test_path_params(void **state)
{
        struct fx *f = *state;
        struct gv_http_client_reply rep = {};

        assert_int_equal(send_raw(f->unix_ep, "GET", "/v1/vms/web%2D1", NULL, 0, &rep), 200);
        json_t *j = reply_json(&rep);
        assert_string_equal(json_string_value(json_object_get(j, "name")), "web-1");
        json_decref(j);
        gv_http_client_reply_done(&rep);

        /* "%2F" is not a separator: it decodes inside the segment and fails the name grammar. */
        send_raw(f->unix_ep, "GET", "/v1/vms/a%2Fb", NULL, 0, &rep);
        assert_problem(&rep, 400, "invalid-request", "/v1/vms/a%2Fb", "not a valid name");
        gv_http_client_reply_done(&rep);
        send_raw(f->tcp_ep, "GET", "/v1/vms/Web1", NULL, 0, &rep);
        assert_problem(&rep, 400, "invalid-request", "/v1/vms/Web1", "path parameter 'name'");
        gv_http_client_reply_done(&rep);

        /* HEAD goes to the GET route and has no body. */
        assert_int_equal(send_raw(f->unix_ep, "HEAD", "/v1/vms/a", NULL, 0, &rep), 200);
        assert_int_equal(rep.body_len, 0);
        assert_string_equal(gv_http_client_reply_header(&rep, "content-type"),
                            "application/json");
        gv_http_client_reply_done(&rep);
}

static void test_not_found_and_method(void **state)
{
        struct fx *f = *state;
        struct gv_http_client_reply rep = {};

        send_raw(f->unix_ep, "GET", "/v1/nothing/here?x=1", NULL, 0, &rep);
        assert_problem(&rep, 404, "not-found", "/v1/nothing/here", "no resource");
        /* Nothing about other routes leaks into a 404. */
        assert_null(strstr(rep.body, "/v1/echo"));
        assert_null(gv_http_client_reply_header(&rep, "Allow"));
        gv_http_client_reply_done(&rep);

        send_raw(f->tcp_ep, "DELETE", "/v1/echo", NULL, 0, &rep);
        assert_problem(&rep, 405, "method-not-allowed", "/v1/echo", "allowed: POST");
        assert_string_equal(gv_http_client_reply_header(&rep, "Allow"), "POST");
        gv_http_client_reply_done(&rep);

        send_raw(f->unix_ep, "PUT", "/v1/vms/a", "{}", 2, &rep);
        assert_problem(&rep, 405, "method-not-allowed", "/v1/vms/a", NULL);
        assert_string_equal(gv_http_client_reply_header(&rep, "Allow"), "GET, HEAD");
        gv_http_client_reply_done(&rep);
}

static void test_bad_bodies(void **state)
{
        struct fx *f = *state;
        struct gv_http_client_reply rep = {};

        const char *bad = "{\n  \"name\": \"a\",,\n}";
        send_raw(f->unix_ep, "POST", "/v1/echo", bad, strlen(bad), &rep);
        assert_problem(&rep, 400, "invalid-request", "/v1/echo", "line 2, column");
        json_t *p = reply_json(&rep);
        assert_string_equal(json_string_value(json_object_get(p, "errno")), "EINVAL");
        json_decref(p);
        gv_http_client_reply_done(&rep);

        send_raw(f->unix_ep, "POST", "/v1/echo", "[1, 2]", 6, &rep);
        assert_problem(&rep, 400, "invalid-request", "/v1/echo", "must be a JSON object, not an "
                                                                 "array");
        gv_http_client_reply_done(&rep);

        send_raw(f->tcp_ep, "POST", "/v1/echo", "\"x\"", 3, &rep);
        assert_problem(&rep, 400, "invalid-request", "/v1/echo", "not a string");
        gv_http_client_reply_done(&rep);

        send_raw(f->unix_ep, "POST", "/v1/echo", NULL, 0, &rep);
        assert_problem(&rep, 400, "invalid-request", "/v1/echo", "body is empty");
        gv_http_client_reply_done(&rep);

        const char *dup = "{\"a\": 1, \"a\": 2}";
        send_raw(f->unix_ep, "POST", "/v1/echo", dup, strlen(dup), &rep);
        assert_problem(&rep, 400, "invalid-request", "/v1/echo", "duplicate");
        gv_http_client_reply_done(&rep);

        /* A NUL inside the body is not silently cut off. */
        send_raw(f->unix_ep, "POST", "/v1/echo", "{}\0{}", 5, &rep);
        assert_problem(&rep, 400, "invalid-request", "/v1/echo", NULL);
        gv_http_client_reply_done(&rep);

        /* Exactly at the cap passes the size check (and is JSON). */
        char *big = xmalloc(MAX_BODY + 1);
        memset(big, ' ', MAX_BODY);
        big[0] = '{';
        big[MAX_BODY - 1] = '}';
        assert_int_equal(send_raw(f->unix_ep, "POST", "/v1/echo", big, MAX_BODY, &rep), 200);
        gv_http_client_reply_done(&rep);
        /* One byte more is 413. */
        big[MAX_BODY - 1] = ' ';
        big[MAX_BODY] = '}';
        send_raw(f->tcp_ep, "POST", "/v1/echo", big, MAX_BODY + 1, &rep);
        assert_problem(&rep, 413, "too-large", "/v1/echo", "larger than 4096 bytes");
        gv_http_client_reply_done(&rep);
        free(big);
}

static int raw_connect(const char *path)
{
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        assert_true(fd >= 0);
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        strcpy(sa.sun_path, path);
        assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
        struct timeval tv = { .tv_sec = 10 };
        assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)), 0);
        return fd;
}

/* Read until the status line and headers are in; returns them. */
static char *raw_read_head(int fd)
{
        char *buf = xmalloc(65536);
        size_t len = 0;
        while (len < 65535) {
                ssize_t n = recv(fd, buf + len, 65535 - len, 0);
                if (n <= 0)
                        break;
                len += (size_t)n;
                buf[len] = '\0';
                if (strstr(buf, "\r\n\r\n"))
                        break;
        }
        buf[len] = '\0';
        return buf;
}

static void test_too_large_without_reading(void **state)
{
        struct fx *f = *state;

        /* 100 MB announced, nothing sent: the 413 comes without the body, and no
         * "100 Continue" invites it. */
        int fd = raw_connect(f->sock);
        const char *req = "POST /v1/echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                          "Content-Length: 100000000\r\nExpect: 100-continue\r\n\r\n";
        assert_int_equal(send(fd, req, strlen(req), MSG_NOSIGNAL), (ssize_t)strlen(req));
        char *head = raw_read_head(fd);
        if (strncmp(head, "HTTP/1.1 413 ", 13) != 0)
                fail_msg("expected 413, got '%s'", head);
        assert_non_null(strstr(head, "application/problem+json"));
        free(head);
        close(fd);

        /* Chunked upload, no length: cut off once it passes the cap. */
        fd = raw_connect(f->sock);
        req = "POST /v1/echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
        assert_int_equal(send(fd, req, strlen(req), MSG_NOSIGNAL), (ssize_t)strlen(req));
        char chunk[1100];
        int k = snprintf(chunk, sizeof(chunk), "400\r\n");
        memset(chunk + k, 'a', 1024);
        memcpy(chunk + k + 1024, "\r\n", 2);
        size_t clen = (size_t)k + 1026;
        for (int i = 0; i < 5; i++)
                assert_int_equal(send(fd, chunk, clen, MSG_NOSIGNAL), (ssize_t)clen);
        assert_int_equal(send(fd, "0\r\n\r\n", 5, MSG_NOSIGNAL), 5);
        head = raw_read_head(fd);
        if (strncmp(head, "HTTP/1.1 413 ", 13) != 0)
                fail_msg("expected 413 for the chunked upload, got '%s'", head);
        free(head);
        close(fd);

        /* A chunked body that goes on past twice the cap: cut off, no reply. */
        fd = raw_connect(f->sock);
        assert_int_equal(send(fd, req, strlen(req), MSG_NOSIGNAL), (ssize_t)strlen(req));
        for (int i = 0; i < 12; i++)
                (void)send(fd, chunk, clen, MSG_NOSIGNAL);
        head = raw_read_head(fd);
        assert_string_equal(head, "");
        free(head);
        close(fd);

        /* A Content-Length that is not a number. */
        fd = raw_connect(f->sock);
        req = "POST /v1/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 12abc\r\n\r\n";
        assert_int_equal(send(fd, req, strlen(req), MSG_NOSIGNAL), (ssize_t)strlen(req));
        head = raw_read_head(fd);
        assert_true(strncmp(head, "HTTP/1.1 400 ", 13) == 0);
        free(head);
        close(fd);

        /* A client that sends a large body anyway still reads the 413 (the server answers
         * before reading and closes; the client's write fails and it reads the answer). */
        size_t huge_len = 8u * 1024u * 1024u;
        char *huge = xmalloc(huge_len);
        memset(huge, ' ', huge_len);
        struct gv_http_client_reply rep = {};
        send_raw(f->unix_ep, "POST", "/v1/echo", huge, huge_len, &rep);
        assert_problem(&rep, 413, "too-large", "/v1/echo", "larger than 4096 bytes");
        gv_http_client_reply_done(&rep);
        free(huge);

        /* The server is still fine. */
        int status = 0;
        assert_int_equal(gv_http_client_request(f->unix_ep, "GET", "/v1/vms/a", NULL, TIMEOUT_MS,
                                                &status, NULL, NULL), 0);
        assert_int_equal(status, 200);
}

static void test_errors_from_handlers(void **state)
{
        struct fx *f = *state;
        struct gv_http_client_reply rep = {};

        send_raw(f->unix_ep, "POST", "/v1/vms/web1/start", NULL, 0, &rep);
        assert_problem(&rep, 409, "busy", "/v1/vms/web1/start",
                       "VM 'web1' is being stopped; try again when it is.");
        json_t *p = reply_json(&rep);
        assert_string_equal(json_string_value(json_object_get(p, "errno")), "EBUSY");
        json_decref(p);
        gv_http_client_reply_done(&rep);

        /* A handler that only returns -ENOENT. */
        send_raw(f->unix_ep, "GET", "/v1/fail", NULL, 0, &rep);
        assert_problem(&rep, 404, "not-found", "/v1/fail", "No such file or directory");
        gv_http_client_reply_done(&rep);

        /* A handler that forgets to reply is a 500, not a hang. */
        send_raw(f->tcp_ep, "GET", "/v1/noreply", NULL, 0, &rep);
        assert_problem(&rep, 500, "internal", "/v1/noreply", "sent no reply");
        gv_http_client_reply_done(&rep);

        /* The first reply wins. */
        assert_int_equal(send_raw(f->unix_ep, "GET", "/v1/twice", NULL, 0, &rep), 201);
        p = reply_json(&rep);
        assert_int_equal(json_integer_value(json_object_get(p, "first")), 1);
        json_decref(p);
        gv_http_client_reply_done(&rep);
}

static void test_query_and_headers(void **state)
{
        struct fx *f = *state;
        struct gv_http_client_reply rep = {};
        const char *const hdrs[] = { "X-Test: hello", NULL };
        struct gv_http_client_req rq = {
                .endpoint = f->unix_ep, .method = "GET",
                .path = "/v1/query?follow=yes+please&lines=%31%30", .headers = hdrs,
                .timeout_ms = TIMEOUT_MS,
        };
        assert_int_equal(gv_http_client_send(&rq, &rep, NULL), 0);
        assert_int_equal(rep.status, 200);
        json_t *j = reply_json(&rep);
        assert_string_equal(json_string_value(json_object_get(j, "follow")), "yes please");
        assert_string_equal(json_string_value(json_object_get(j, "lines")), "10");
        assert_string_equal(json_string_value(json_object_get(j, "x-test")), "hello");
        json_decref(j);
        gv_http_client_reply_done(&rep);

        send_raw(f->unix_ep, "GET", "/v1/query?lines=1&bogus=2", NULL, 0, &rep);
        assert_problem(&rep, 400, "invalid-request", "/v1/query",
                       "unknown query parameter 'bogus'; valid: follow, lines.");
        gv_http_client_reply_done(&rep);

        send_raw(f->unix_ep, "GET", "/v1/query?lines=1&lines=2", NULL, 0, &rep);
        assert_problem(&rep, 400, "invalid-request", "/v1/query", "given 2 times");
        gv_http_client_reply_done(&rep);

        send_raw(f->unix_ep, "GET", "/v1/query?lines=%ff", NULL, 0, &rep);
        assert_problem(&rep, 400, "invalid-request", "/v1/query", "UTF-8");
        gv_http_client_reply_done(&rep);
}

static void test_peer_cred(void **state)
{
        struct fx *f = *state;
        json_t *j = NULL;
        int status = 0;

        assert_int_equal(gv_http_client_request(f->unix_ep, "GET", "/v1/whoami", NULL,
                                                TIMEOUT_MS, &status, &j, NULL), 0);
        assert_int_equal(status, 200);
        assert_int_equal(json_integer_value(json_object_get(j, "uid")), getuid());
        assert_int_equal(json_integer_value(json_object_get(j, "pid")), getpid());
        json_decref(j);

        assert_int_equal(gv_http_client_request(f->tcp_ep, "GET", "/v1/whoami", NULL, TIMEOUT_MS,
                                                &status, &j, NULL), 0);
        assert_string_equal(json_string_value(json_object_get(j, "cred")), "ENODATA");
        json_decref(j);
}

struct slow_call {
        const char *ep;
        int r, status;
        bool released;
};

static void *slow_thread(void *arg)
{
        struct slow_call *s = arg;
        json_t *j = NULL;
        s->r = gv_http_client_request(s->ep, "GET", "/v1/slow", NULL, TIMEOUT_MS, &s->status, &j,
                                      NULL);
        s->released = json_is_true(json_object_get(j, "released"));
        json_decref(j);
        return NULL;
}

static void test_concurrent(void **state)
{
        struct fx *f = *state;
        /* The slow handler waits until the fast one ran: if a slow handler blocked the server,
         * the fast request would not get in and the slow one would give up after 5 s. */
        for (int round = 0; round < 2; round++) {
                f->ctx.fast_done = false;
                struct slow_call s = { .ep = round ? f->tcp_ep : f->unix_ep };
                pthread_t t;
                assert_int_equal(pthread_create(&t, NULL, slow_thread, &s), 0);
                usleep(50 * 1000); /* let the slow request arrive first (not needed to pass) */
                int status = 0;
                assert_int_equal(gv_http_client_request(round ? f->unix_ep : f->tcp_ep, "GET",
                                                        "/v1/fast", NULL, 3000, &status, NULL,
                                                        NULL), 0);
                assert_int_equal(status, 200);
                pthread_join(t, NULL);
                assert_int_equal(s.r, 0);
                assert_int_equal(s.status, 200);
                assert_true(s.released);
        }
}

struct collect {
        char *buf;
        size_t len;
        unsigned calls;
};

static int collect_data(void *userdata, const char *data, size_t len)
{
        struct collect *c = userdata;
        c->buf = xreallocarray(c->buf, c->len + len + 1, 1);
        memcpy(c->buf + c->len, data, len);
        c->len += len;
        c->buf[c->len] = '\0';
        c->calls++;
        return 0;
}

static void test_stream(void **state)
{
        struct fx *f = *state;
        const char *eps[] = { f->unix_ep, f->tcp_ep };

        for (size_t i = 0; i < ELEMENTSOF(eps); i++) {
                struct collect c = {};
                struct gv_http_client_reply rep = {};
                stream_freed = false;
                struct gv_http_client_req rq = {
                        .endpoint = eps[i], .method = "GET", .path = "/v1/stream",
                        .timeout_ms = TIMEOUT_MS, .on_data = collect_data, .userdata = &c,
                };
                assert_int_equal(gv_http_client_send(&rq, &rep, NULL), 0);
                assert_int_equal(rep.status, 200);
                assert_string_equal(gv_http_client_reply_header(&rep, "transfer-encoding"),
                                    "chunked");
                assert_string_equal(gv_http_client_reply_header(&rep, "content-type"),
                                    "text/plain");
                assert_non_null(gv_http_client_reply_header(&rep, "x-request-id"));
                assert_null(rep.body);
                /* Every line, in order. */
                char *p = c.buf;
                for (int k = 0; k < 500; k++) {
                        char want[32];
                        int n = snprintf(want, sizeof(want), "line %d\n", k);
                        if (strncmp(p, want, (size_t)n) != 0)
                                fail_msg("line %d out of order at '%.20s'", k, p);
                        p += n;
                }
                assert_int_equal(*p, '\0');
                gv_http_client_reply_done(&rep);
                free(c.buf);
                /* free_cb ran (the completion callback comes right after the last chunk). */
                for (int w = 0; w < 200 && !stream_freed; w++)
                        usleep(10 * 1000);
                assert_true(stream_freed);
        }
}

struct forever_call {
        const char *ep;
        atomic_bool got_data;
        int r;
};

static int forever_data(void *userdata, const char *data, size_t len)
{
        struct forever_call *fc = userdata;
        (void)data;
        (void)len;
        atomic_store(&fc->got_data, true);
        return 0;
}

static void *forever_thread(void *arg)
{
        struct forever_call *fc = arg;
        struct gv_http_client_reply rep = {};
        struct gv_http_client_req rq = {
                .endpoint = fc->ep, .method = "GET", .path = "/v1/forever",
                .timeout_ms = 15000, .on_data = forever_data, .userdata = fc,
        };
        fc->r = gv_http_client_send(&rq, &rep, NULL);
        gv_http_client_reply_done(&rep);
        return NULL;
}

static int64_t mono_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void test_free_ends_streams(void **state)
{
        struct fx *f = *state;
        struct forever_call fc = { .ep = f->unix_ep };
        pthread_t t;
        assert_int_equal(pthread_create(&t, NULL, forever_thread, &fc), 0);
        for (int w = 0; w < 500 && !atomic_load(&fc.got_data); w++)
                usleep(10 * 1000);
        assert_true(atomic_load(&fc.got_data));

        /* Freeing the server signals stop_fd: the stream ends instead of holding it 20 s. */
        int64_t t0 = mono_ms();
        f->srv = gv_http_server_free(f->srv);
        int64_t took = mono_ms() - t0;
        pthread_join(t, NULL);
        if (took > 3000)
                fail_msg("gv_http_server_free took %lld ms with a stream open", (long long)took);
        assert_int_equal(gv_file_exists(f->sock), 0);
}

static void test_socket_file(void **state)
{
        struct fx *f = *state;
        struct stat st;

        /* Mode 0600 by default. */
        assert_int_equal(lstat(f->sock, &st), 0);
        assert_true(S_ISSOCK(st.st_mode));
        assert_int_equal(st.st_mode & 07777, 0600);

        /* A second server on the same path is refused while the first runs. */
        struct gv_http_config cfg = { .unix_path = f->sock };
        struct gv_http_server *s2 = NULL;
        struct gv_error *e = NULL;
        assert_int_equal(gv_http_server_new(&cfg, routes, ELEMENTSOF(routes), NULL, &s2, &e),
                         -EADDRINUSE);
        assert_non_null(strstr(e->msg, "another server is listening on"));
        gv_error_free(e);
        assert_null(s2);

        /* A live foreign listener (no lock file) is found by connecting. */
        _cleanup_free_ char *other = xasprintf("%s/other.sock", f->dir);
        int lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        strcpy(sa.sun_path, other);
        assert_int_equal(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
        assert_int_equal(listen(lfd, 4), 0);
        cfg.unix_path = other;
        e = NULL;
        assert_int_equal(gv_http_server_new(&cfg, routes, ELEMENTSOF(routes), NULL, &s2, &e),
                         -EADDRINUSE);
        assert_non_null(strstr(e->msg, "another server is listening on"));
        gv_error_free(e);

        /* Once that listener is gone its socket file is stale and replaced, with the mode
         * asked for. */
        close(lfd);
        assert_int_equal(lstat(other, &st), 0);
        cfg.unix_mode = 0660;
        e = NULL;
        if (gv_http_server_new(&cfg, routes, ELEMENTSOF(routes), NULL, &s2, &e) < 0)
                fail_msg("stale socket not replaced: %s", e->msg);
        assert_int_equal(lstat(other, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0660);
        _cleanup_free_ char *ep = xasprintf("unix:%s", other);
        int status = 0;
        assert_int_equal(gv_http_client_request(ep, "GET", "/v1/vms/x", NULL, TIMEOUT_MS, &status,
                                                NULL, NULL), 0);
        assert_int_equal(status, 200);
        s2 = gv_http_server_free(s2);
        assert_int_equal(gv_file_exists(other), 0);

        /* Not a socket: refused, left alone. */
        assert_int_equal(gv_write_file(other, "precious", GV_WRITE_CREATE), 0);
        e = NULL;
        assert_int_equal(gv_http_server_new(&cfg, routes, ELEMENTSOF(routes), NULL, &s2, &e),
                         -EEXIST);
        assert_non_null(strstr(e->msg, "is not a socket"));
        gv_error_free(e);
        _cleanup_free_ char *content = NULL;
        assert_int_equal(gv_read_file(other, 64, &content, NULL), 0);
        assert_string_equal(content, "precious");
}

static void test_bad_config(void **state)
{
        (void)state;
        struct gv_http_server *s = NULL;
        struct gv_error *e = NULL;
        struct gv_http_config cfg = {};

        assert_int_equal(gv_http_server_new(&cfg, routes, ELEMENTSOF(routes), NULL, &s, &e),
                         -EINVAL);
        assert_non_null(strstr(e->msg, "needs a UNIX socket path, a TCP address"));
        gv_error_free(e);

        static const char *const bad_addrs[] = { "127.0.0.1", "127.0.0.1:", "127.0.0.1:99999",
                                                 ":80", "::1:80", "[::1]80", "127.0.0.1:+1" };
        for (size_t i = 0; i < ELEMENTSOF(bad_addrs); i++) {
                cfg.tcp_address = bad_addrs[i];
                e = NULL;
                if (gv_http_server_new(&cfg, routes, ELEMENTSOF(routes), NULL, &s, &e) != -EINVAL)
                        fail_msg("'%s' was accepted", bad_addrs[i]);
                assert_non_null(strstr(e->msg, "is not HOST:PORT"));
                gv_error_free(e);
        }

        const struct gv_http_route bad_routes[] = { { "GET", "/v1/{Bad}", h_fail } };
        cfg.tcp_address = "127.0.0.1:0";
        e = NULL;
        assert_int_equal(gv_http_server_new(&cfg, bad_routes, 1, NULL, &s, &e), -EINVAL);
        assert_non_null(strstr(e->msg, "malformed parameter"));
        gv_error_free(e);

        cfg = (struct gv_http_config){ .unix_path = "relative.sock" };
        e = NULL;
        assert_int_equal(gv_http_server_new(&cfg, routes, ELEMENTSOF(routes), NULL, &s, &e),
                         -EINVAL);
        gv_error_free(e);
        assert_null(s);

        /* IPv6 loopback, where the host has it. */
        cfg = (struct gv_http_config){ .tcp_address = "[::1]:0" };
        e = NULL;
        if (gv_http_server_new(&cfg, routes, ELEMENTSOF(routes), NULL, &s, &e) == 0) {
                _cleanup_free_ char *ep = xasprintf("http://[::1]:%u",
                                                    gv_http_server_tcp_port(s));
                int status = 0;
                assert_int_equal(gv_http_client_request(ep, "GET", "/v1/vms/x", NULL, TIMEOUT_MS,
                                                        &status, NULL, NULL), 0);
                assert_int_equal(status, 200);
                s = gv_http_server_free(s);
        } else {
                gv_error_free(e);
        }
}

static int count_fds(void)
{
        int n = 0;
        DIR *d = opendir("/proc/self/fd");
        assert_non_null(d);
        while (readdir(d))
                n++;
        closedir(d);
        return n;
}

static void test_no_fd_leak(void **state)
{
        (void)state;
        char dir[] = "/tmp/gv-http-fd-XXXXXX";
        assert_non_null(mkdtemp(dir));
        _cleanup_free_ char *sock = xasprintf("%s/a.sock", dir);
        _cleanup_free_ char *ep = xasprintf("unix:%s", sock);
        int before = count_fds();

        for (int i = 0; i < 3; i++) {
                struct gv_http_config cfg = { .unix_path = sock, .tcp_address = "127.0.0.1:0" };
                struct gv_http_server *s = NULL, *s2 = NULL;
                assert_int_equal(gv_http_server_new(&cfg, routes, ELEMENTSOF(routes), NULL, &s,
                                                    NULL), 0);
                /* A refused second server cleans up after itself too. */
                assert_int_equal(gv_http_server_new(&cfg, routes, ELEMENTSOF(routes), NULL, &s2,
                                                    NULL), -EADDRINUSE);
                int status = 0;
                assert_int_equal(gv_http_client_request(ep, "GET", "/v1/vms/a", NULL, TIMEOUT_MS,
                                                        &status, NULL, NULL), 0);
                assert_int_equal(status, 200);
                gv_http_server_free(s);
        }
        assert_int_equal(count_fds(), before);
        assert_int_equal(gv_rm_rf(dir), 0);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_echo_both_listeners, fx_setup, fx_teardown),
                cmocka_unit_test_setup_teardown(test_path_params, fx_setup, fx_teardown),
                cmocka_unit_test_setup_teardown(test_not_found_and_method, fx_setup, fx_teardown),
                cmocka_unit_test_setup_teardown(test_bad_bodies, fx_setup, fx_teardown),
                cmocka_unit_test_setup_teardown(test_too_large_without_reading, fx_setup,
                                                fx_teardown),
                cmocka_unit_test_setup_teardown(test_errors_from_handlers, fx_setup, fx_teardown),
                cmocka_unit_test_setup_teardown(test_query_and_headers, fx_setup, fx_teardown),
                cmocka_unit_test_setup_teardown(test_peer_cred, fx_setup, fx_teardown),
                cmocka_unit_test_setup_teardown(test_concurrent, fx_setup, fx_teardown),
                cmocka_unit_test_setup_teardown(test_stream, fx_setup, fx_teardown),
                cmocka_unit_test_setup_teardown(test_free_ends_streams, fx_setup, fx_teardown),
                cmocka_unit_test_setup_teardown(test_socket_file, fx_setup, fx_teardown),
                cmocka_unit_test(test_bad_config),
                cmocka_unit_test(test_no_fd_leak),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
