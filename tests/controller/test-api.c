/* SPDX-License-Identifier: MIT */
/*
 * test-api: the controller's REST API against a real controller (SQLite store in a temporary
 * directory, no hosts) served on a UNIX socket and on TCP: roles (UNIX admin, tokens on TCP,
 * 401 with WWW-Authenticate, 403), strict bodies and queries, Idempotency-Key (replay, 422,
 * bad key, the token secret not replayed), images (register, duplicate, bad file, delete),
 * 404/405, operations, and the event stream (history, resume, keep-alive).
 */
#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "controller/api.h"
#include "http/client.h"
#include "util/alloc.h"
#include "util/fileio.h"
#include "util/json.h"
#include "util/strv.h"

struct fx {
        char dir[64];
        char *store_url;
        char *images;
        char *sock;
        char *unix_ep;
        char *tcp_ep;
        struct gv_controller *c;
        struct gv_controller_api api;
        struct gv_http_server *srv;
};

static struct fx F;
static const char *skip_reason;

static int setup(void **state _unused_)
{
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        strcpy(F.dir, "/tmp/test-api-XXXXXX");
        assert_non_null(mkdtemp(F.dir));
        F.store_url = xasprintf("sqlite:%s/gpuvirt.db", F.dir);
        F.images = xasprintf("%s/images", F.dir);
        assert_int_equal(mkdir(F.images, 0700), 0);
        struct gv_controller_config cfg = { .store_url = F.store_url, .image_dir = F.images };
        if (gv_controller_new(&cfg, &F.c, &e) < 0) {
                static char why[512];
                snprintf(why, sizeof(why), "the controller core cannot start here: %s",
                         gv_error_msg(e, -EIO));
                skip_reason = why;
                return 0;
        }
        F.api = (struct gv_controller_api){ .controller = F.c, .keepalive_ms = 300 };
        F.sock = xasprintf("%s/ctl.sock", F.dir);
        size_t n;
        const struct gv_http_route *routes = gv_controller_api_routes(&n);
        struct gv_http_config hc = { .unix_path = F.sock, .tcp_address = "127.0.0.1:0",
                                     .upload_dir = F.images };
        if (gv_http_server_new(&hc, routes, n, &F.api, &F.srv, &e) < 0)
                fail_msg("server: %s", gv_error_msg(e, -EIO));
        F.unix_ep = xasprintf("unix:%s", F.sock);
        F.tcp_ep = xasprintf("http://127.0.0.1:%u", gv_http_server_tcp_port(F.srv));
        return 0;
}

static int teardown(void **state _unused_)
{
        gv_http_server_free(F.srv);
        gv_controller_free(F.c);
        (void)gv_rm_rf(F.dir);
        free(F.store_url);
        free(F.images);
        free(F.sock);
        free(F.unix_ep);
        free(F.tcp_ep);
        return 0;
}

#define SKIP_IF_NO_CORE()                                                       \
        do {                                                                    \
                if (skip_reason) {                                              \
                        print_message("skip: %s\n", skip_reason);               \
                        skip();                                                 \
                }                                                               \
        } while (0)

struct reply {
        struct gv_http_client_reply r;
        json_t *j;
};

static void reply_done(struct reply *r)
{
        gv_http_client_reply_done(&r->r);
        json_decref(r->j);
        *r = (struct reply){ 0 };
}

/* One request; token NULL: none; key NULL: no Idempotency-Key. */
static int call(const char *ep, const char *method, const char *path, const char *body,
                const char *token, const char *key, struct reply *ret)
{
        _cleanup_free_ char *auth = token ? xasprintf("Authorization: %s", token) : NULL;
        _cleanup_free_ char *idem = key ? xasprintf("Idempotency-Key: %s", key) : NULL;
        const char *headers[3] = { 0 };
        size_t n = 0;
        if (auth)
                headers[n++] = auth;
        if (idem)
                headers[n++] = idem;
        struct gv_http_client_req rq = { .endpoint = ep, .method = method, .path = path,
                                         .body = body, .body_len = body ? strlen(body) : 0,
                                         .headers = headers, .timeout_ms = 20000 };
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        *ret = (struct reply){ 0 };
        if (gv_http_client_send(&rq, &ret->r, &e) < 0)
                fail_msg("%s %s: %s", method, path, gv_error_msg(e, -EIO));
        if (ret->r.body_len) {
                json_error_t je;
                ret->j = json_loadb(ret->r.body, ret->r.body_len, 0, &je);
        }
        return ret->r.status;
}

static void expect_problem(struct reply *r, int status, const char *words)
{
        if (r->r.status != status)
                fail_msg("status %d, want %d: %s", r->r.status, status,
                         r->r.body ? r->r.body : "");
        const char *ct = gv_http_client_reply_header(&r->r, "Content-Type");
        assert_non_null(ct);
        assert_string_equal(ct, "application/problem+json");
        assert_int_equal(json_integer_value(json_object_get(r->j, "status")), status);
        const char *detail = json_string_value(json_object_get(r->j, "detail"));
        if (words && (!detail || !strstr(detail, words)))
                fail_msg("detail '%s' lacks '%s'", detail ? detail : "(none)", words);
}

static char *make_token(const char *name, const char *role)
{
        struct reply r;
        _cleanup_free_ char *body = xasprintf("{\"name\": \"%s\", \"role\": \"%s\"}", name, role);
        assert_int_equal(call(F.unix_ep, "POST", "/api/v1/tokens", body, NULL, NULL, &r), 201);
        char *t = xasprintf("Bearer %s", json_string_value(json_object_get(r.j, "token")));
        reply_done(&r);
        return t;
}

/* A token that sends more than its rate (50 a second, a burst of 100) is answered 429 with
 * Retry-After and words that say so; another token and the UNIX socket are not slowed; the
 * bucket refills. */
static void test_rate_limit(void **state _unused_)
{
        SKIP_IF_NO_CORE();
        _cleanup_free_ char *greedy = make_token("greedy", "viewer");
        _cleanup_free_ char *calm = make_token("calm", "viewer");
        struct reply r;
        int sent = 0, status = 0;
        while (sent < 400) {
                status = call(F.tcp_ep, "GET", "/api/v1/images", NULL, greedy, NULL, &r);
                sent++;
                if (status == 429)
                        break;
                assert_int_equal(status, 200);
                reply_done(&r);
        }
        if (status != 429)
                fail_msg("no 429 after %d requests", sent);
        if (sent < 100)
                fail_msg("429 after %d requests, before the burst of 100 was spent", sent);
        expect_problem(&r, 429, "sent more than its 50 requests a second");
        const char *after = gv_http_client_reply_header(&r.r, "Retry-After");
        assert_non_null(after);
        assert_string_equal(after, "1");
        reply_done(&r);
        assert_int_equal(call(F.tcp_ep, "GET", "/api/v1/images", NULL, calm, NULL, &r), 200);
        reply_done(&r);
        for (int i = 0; i < 20; i++) {
                assert_int_equal(call(F.unix_ep, "GET", "/api/v1/images", NULL, NULL, NULL, &r),
                                 200);
                reply_done(&r);
        }
        struct timespec ts = { .tv_sec = 1, .tv_nsec = 100 * 1000000L };
        nanosleep(&ts, NULL);
        assert_int_equal(call(F.tcp_ep, "GET", "/api/v1/images", NULL, greedy, NULL, &r), 200);
        reply_done(&r);
}

static void test_open_routes(void **state _unused_)
{
        SKIP_IF_NO_CORE();
        struct reply r;
        assert_int_equal(call(F.tcp_ep, "GET", "/api/v1/health", NULL, NULL, NULL, &r), 200);
        assert_string_equal(json_string_value(json_object_get(r.j, "status")), "ok");
        assert_string_equal(json_string_value(json_object_get(r.j, "store")), "sqlite");
        reply_done(&r);
        assert_int_equal(call(F.tcp_ep, "GET", "/api/v1/openapi.json", NULL, NULL, NULL, &r),
                         200);
        assert_string_equal(json_string_value(json_object_get(r.j, "openapi")), "3.1.0");
        assert_non_null(json_object_get(json_object_get(r.j, "paths"), "/api/v1/vms"));
        reply_done(&r);
}

static void test_roles(void **state _unused_)
{
        SKIP_IF_NO_CORE();
        struct reply r;

        /* TCP without a token: 401 with the challenge. */
        call(F.tcp_ep, "GET", "/api/v1/vms", NULL, NULL, NULL, &r);
        expect_problem(&r, 401, "no 'Authorization' header");
        const char *www = gv_http_client_reply_header(&r.r, "WWW-Authenticate");
        assert_non_null(www);
        assert_true(strncmp(www, "Bearer", 6) == 0);
        assert_null(strstr(www, "invalid_token"));
        reply_done(&r);
        /* A bad token: 401, invalid_token. */
        call(F.tcp_ep, "GET", "/api/v1/vms", NULL, "Bearer gvt_nope", NULL, &r);
        expect_problem(&r, 401, "malformed");
        assert_non_null(strstr(gv_http_client_reply_header(&r.r, "WWW-Authenticate"),
                               "error=\"invalid_token\""));
        reply_done(&r);
        /* UNIX: admin without a token. */
        assert_int_equal(call(F.unix_ep, "GET", "/api/v1/tokens", NULL, NULL, NULL, &r), 200);
        reply_done(&r);

        _cleanup_free_ char *viewer = make_token("v1", "viewer");
        _cleanup_free_ char *oper = make_token("o1", "operator");
        assert_int_equal(call(F.tcp_ep, "GET", "/api/v1/vms", NULL, viewer, NULL, &r), 200);
        assert_true(json_is_array(r.j));
        reply_done(&r);
        call(F.tcp_ep, "POST", "/api/v1/images", "{\"name\": \"a\", \"path\": \"/x\"}", viewer,
             NULL, &r);
        expect_problem(&r, 403, "needs the role 'operator' or higher; this token has 'viewer'");
        reply_done(&r);
        call(F.tcp_ep, "GET", "/api/v1/tokens", NULL, oper, NULL, &r);
        expect_problem(&r, 403, "'admin'");
        reply_done(&r);
        /* A role check comes before the body is looked at. */
        call(F.tcp_ep, "POST", "/api/v1/hosts", "not json", oper, NULL, &r);
        expect_problem(&r, 403, NULL);
        reply_done(&r);
        /* The operator may do what it needs (this one is refused by the core, not by role). */
        call(F.tcp_ep, "DELETE", "/api/v1/images/none", NULL, oper, NULL, &r);
        expect_problem(&r, 404, "no image 'none'");
        reply_done(&r);
}

static int count_files(const char *dir)
{
        DIR *d = opendir(dir);
        struct dirent *de;
        int n = 0;
        assert_non_null(d);
        while ((de = readdir(d)))
                if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, ".."))
                        n++;
        closedir(d);
        return n;
}

static void test_bad_input(void **state _unused_)
{
        SKIP_IF_NO_CORE();
        struct reply r;
        call(F.unix_ep, "POST", "/api/v1/tokens",
             "{\"name\": \"x\", \"role\": \"viewer\", \"zz\": 1, \"aa\": 2}", NULL, NULL, &r);
        expect_problem(&r, 400, "unknown members 'aa', 'zz'; valid: name, role");
        reply_done(&r);
        call(F.unix_ep, "POST", "/api/v1/tokens", "{\"name\": ", NULL, NULL, &r);
        expect_problem(&r, 400, "not valid JSON");
        reply_done(&r);
        call(F.unix_ep, "POST", "/api/v1/tokens", "{\"name\": \"x\", \"role\": \"root\"}", NULL,
             NULL, &r);
        expect_problem(&r, 400, "valid: member (with a tenant), viewer, operator, admin");
        reply_done(&r);
        call(F.unix_ep, "POST", "/api/v1/tokens", "{\"name\": 5, \"role\": \"viewer\"}", NULL,
             NULL, &r);
        expect_problem(&r, 400, "name");
        reply_done(&r);
        call(F.unix_ep, "POST", "/api/v1/placements", "{\"gpus\": [], \"colour\": 1}", NULL,
             NULL, &r);
        expect_problem(&r, 400, "unknown member 'colour'");
        reply_done(&r);
        call(F.unix_ep, "POST", "/api/v1/placements", "{\"name\": \"Bad_Name\"}", NULL, NULL,
             &r);
        expect_problem(&r, 400, "not a valid VM name");
        reply_done(&r);
        /* No host registered here: nowhere to go, said by the engine, nothing reserved. */
        call(F.unix_ep, "POST", "/api/v1/placements", "{\"memory_mib\": 256}", NULL, NULL, &r);
        expect_problem(&r, 409, "no host");
        reply_done(&r);
        call(F.unix_ep, "GET", "/api/v1/vms?color=red", NULL, NULL, NULL, &r);
        expect_problem(&r, 400, "unknown query parameter 'color'");
        reply_done(&r);
        call(F.unix_ep, "GET", "/api/v1/operations?limit=0", NULL, NULL, NULL, &r);
        expect_problem(&r, 400, "limit");
        reply_done(&r);
        call(F.unix_ep, "POST", "/api/v1/vms/web1/start?wait=601", NULL, NULL, NULL, &r);
        expect_problem(&r, 400, "wait: '601'");
        reply_done(&r);
        call(F.unix_ep, "POST", "/api/v1/vms/web1/start", "{}", NULL, NULL, &r);
        expect_problem(&r, 400, "takes no request body");
        reply_done(&r);
        call(F.unix_ep, "POST", "/api/v1/vms/web1/stop", "{\"timeout\": 3}", NULL, NULL, &r);
        expect_problem(&r, 400, "unknown member 'timeout'; valid: timeout_s");
        reply_done(&r);
        call(F.unix_ep, "POST", "/api/v1/vms", "{\"name\": \"a\", \"cpus\": 2}", NULL, NULL, &r);
        expect_problem(&r, 400, "unknown member 'cpus'");
        reply_done(&r);
        call(F.unix_ep, "GET", "/api/v1/vms/nope", NULL, NULL, NULL, &r);
        expect_problem(&r, 404, NULL);
        reply_done(&r);
        call(F.unix_ep, "GET", "/api/v1/operations/op-0000", NULL, NULL, NULL, &r);
        expect_problem(&r, 404, NULL);
        reply_done(&r);
        call(F.unix_ep, "GET", "/api/v1/nothing", NULL, NULL, NULL, &r);
        expect_problem(&r, 404, NULL);
        reply_done(&r);
        call(F.unix_ep, "DELETE", "/api/v1/hosts", NULL, NULL, NULL, &r);
        expect_problem(&r, 405, NULL);
        assert_non_null(strstr(gv_http_client_reply_header(&r.r, "Allow"), "POST"));
        reply_done(&r);
        call(F.unix_ep, "PUT", "/api/v1/images/x", "bytes", NULL, NULL, &r);
        expect_problem(&r, 400, "not a disk image");
        reply_done(&r);
        call(F.unix_ep, "PUT", "/api/v1/images/Bad_Name", "bytes", NULL, NULL, &r);
        expect_problem(&r, 400, "not a valid name");
        reply_done(&r);
        /* Nothing of the refused uploads is left. */
        _cleanup_free_ char *x = xasprintf("%s/x", F.images);
        assert_int_equal(access(x, F_OK), -1);
        assert_int_equal(count_files(F.images), 0);
        assert_int_equal(call(F.unix_ep, "GET", "/api/v1/operations", NULL, NULL, NULL, &r),
                         200);
        assert_true(json_is_array(r.j));
        reply_done(&r);
}

static void test_idempotency(void **state _unused_)
{
        SKIP_IF_NO_CORE();
        struct reply a, b;
        const char *body = "{\"name\": \"idem1\", \"role\": \"viewer\"}";
        assert_int_equal(call(F.unix_ep, "POST", "/api/v1/tokens", body, NULL, "key-1", &a),
                         201);
        assert_non_null(json_object_get(a.j, "token"));
        /* The same again: the first answer, without the secret; no second token. */
        assert_int_equal(call(F.unix_ep, "POST", "/api/v1/tokens", body, NULL, "key-1", &b),
                         201);
        assert_string_equal(json_string_value(json_object_get(b.j, "id")),
                            json_string_value(json_object_get(a.j, "id")));
        assert_null(json_object_get(b.j, "token"));
        reply_done(&b);
        assert_int_equal(call(F.unix_ep, "GET", "/api/v1/tokens", NULL, NULL, NULL, &b), 200);
        size_t i, n = 0;
        json_t *t;
        json_array_foreach(b.j, i, t)
                if (strcmp(json_string_value(json_object_get(t, "name")), "idem1") == 0)
                        n++;
        assert_int_equal(n, 1);
        reply_done(&b);
        /* Without a key the same request is a second create (refused: the name is taken). */
        call(F.unix_ep, "POST", "/api/v1/tokens", body, NULL, NULL, &b);
        expect_problem(&b, 409, "'idem1'");
        reply_done(&b);
        /* Another request with the key: 422. */
        call(F.unix_ep, "POST", "/api/v1/tokens", "{\"name\": \"idem2\", \"role\": \"viewer\"}",
             NULL, "key-1", &b);
        expect_problem(&b, 422, "'key-1'");
        reply_done(&b);
        call(F.unix_ep, "POST", "/api/v1/tokens", body, NULL, "bad key!", &b);
        expect_problem(&b, 400, "Idempotency-Key");
        reply_done(&b);
        /* A refusal is remembered too (4xx), and replayed. */
        call(F.unix_ep, "DELETE", "/api/v1/tokens/000000000000", NULL, NULL, "key-2", &b);
        expect_problem(&b, 404, "000000000000");
        reply_done(&b);
        call(F.unix_ep, "DELETE", "/api/v1/tokens/000000000000", NULL, NULL, "key-2", &b);
        expect_problem(&b, 404, "000000000000");
        reply_done(&b);
        reply_done(&a);
}


static bool have_qemu_img(void)
{
        return gv_program_in_path("qemu-img");
}

/* PUT /api/v1/images/{name}: the bytes streamed to a file, kept under the image directory. */
static void test_upload(void **state _unused_)
{
        SKIP_IF_NO_CORE();
        if (!have_qemu_img()) {
                print_message("skip: qemu-img is not installed\n");
                skip();
        }
        struct reply r;
        size_t len = 3u << 20; /* over the 1 MiB cap of ordinary bodies */
        char *raw = xmalloc(len + 1);
        memset(raw, 0, len);
        raw[len] = '\0';
        struct gv_http_client_req rq = { .endpoint = F.unix_ep, .method = "PUT",
                                         .path = "/api/v1/images/up1", .body = raw,
                                         .body_len = len, .content_type =
                                                 "application/octet-stream",
                                         .timeout_ms = 20000 };
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        r = (struct reply){ 0 };
        assert_int_equal(gv_http_client_send(&rq, &r.r, &e), 0);
        assert_int_equal(r.r.status, 201);
        r.j = json_loadb(r.r.body, r.r.body_len, 0, NULL);
        _cleanup_free_ char *kept = xasprintf("%s/up1", F.images);
        assert_string_equal(json_string_value(json_object_get(r.j, "path")), kept);
        assert_string_equal(json_string_value(json_object_get(r.j, "format")), "raw");
        assert_int_equal(json_integer_value(json_object_get(r.j, "virtual_size")), (int)len);
        reply_done(&r);
        struct stat st;
        assert_int_equal(stat(kept, &st), 0);
        assert_int_equal((size_t)st.st_size, len);
        assert_int_equal(st.st_mode & 0777, 0600);
        /* The same name again: refused, the first kept as it was. */
        r = (struct reply){ 0 };
        assert_int_equal(gv_http_client_send(&rq, &r.r, &e), 0);
        r.j = json_loadb(r.r.body, r.r.body_len, 0, NULL);
        expect_problem(&r, 409, "image 'up1' exists");
        reply_done(&r);
        assert_int_equal(count_files(F.images), 1);
        /* Delete: the uploaded file goes with it. */
        assert_int_equal(call(F.unix_ep, "DELETE", "/api/v1/images/up1", NULL, NULL, NULL, &r),
                         200);
        reply_done(&r);
        assert_int_equal(access(kept, F_OK), -1);
        free(raw);
}


static void test_images(void **state _unused_)
{
        SKIP_IF_NO_CORE();
        if (!have_qemu_img()) {
                print_message("skip: qemu-img is not installed\n");
                skip();
        }
        struct reply r;
        _cleanup_free_ char *path = xasprintf("%s/base.raw", F.dir);
        int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
        assert_true(fd >= 0);
        assert_int_equal(ftruncate(fd, 1 << 20), 0);
        close(fd);

        _cleanup_free_ char *body = xasprintf("{\"name\": \"base\", \"path\": \"%s\"}", path);
        assert_int_equal(call(F.unix_ep, "POST", "/api/v1/images", body, NULL, "img-1", &r), 201);
        assert_string_equal(json_string_value(json_object_get(r.j, "format")), "raw");
        assert_int_equal(json_integer_value(json_object_get(r.j, "virtual_size")), 1 << 20);
        reply_done(&r);
        assert_int_equal(call(F.unix_ep, "POST", "/api/v1/images", body, NULL, "img-1", &r), 201);
        reply_done(&r);
        call(F.unix_ep, "POST", "/api/v1/images", body, NULL, NULL, &r);
        expect_problem(&r, 409, "image 'base' exists");
        reply_done(&r);
        _cleanup_free_ char *wrong = xasprintf("{\"name\": \"b2\", \"path\": \"%s\", \"format\": "
                                               "\"qcow2\"}", path);
        call(F.unix_ep, "POST", "/api/v1/images", wrong, NULL, NULL, &r);
        expect_problem(&r, 400, "is raw, not qcow2");
        reply_done(&r);
        _cleanup_free_ char *missing = xasprintf("{\"name\": \"b3\", \"path\": \"%s/nope\"}",
                                                 F.dir);
        call(F.unix_ep, "POST", "/api/v1/images", missing, NULL, NULL, &r);
        expect_problem(&r, 400, "image 'b3'");
        reply_done(&r);
        call(F.unix_ep, "POST", "/api/v1/images", "{\"name\": \"Bad\", \"path\": \"/x\"}", NULL,
             NULL, &r);
        expect_problem(&r, 400, "'Bad'");
        reply_done(&r);
        call(F.unix_ep, "POST", "/api/v1/images", "{\"name\": \"b4\", \"path\": \"rel\"}", NULL,
             NULL, &r);
        expect_problem(&r, 400, "not absolute");
        reply_done(&r);
        call(F.unix_ep, "POST", "/api/v1/images", "{\"name\": \"b5\", \"path\": \"/x\", "
             "\"size\": 1}", NULL, NULL, &r);
        expect_problem(&r, 400, "unknown member 'size'");
        reply_done(&r);

        assert_int_equal(call(F.unix_ep, "GET", "/api/v1/images", NULL, NULL, NULL, &r), 200);
        assert_int_equal(json_array_size(r.j), 1);
        reply_done(&r);
        assert_int_equal(call(F.unix_ep, "DELETE", "/api/v1/images/base", NULL, NULL, NULL, &r),
                         200);
        reply_done(&r);
        call(F.unix_ep, "DELETE", "/api/v1/images/base", NULL, NULL, NULL, &r);
        expect_problem(&r, 404, "no image 'base'");
        reply_done(&r);
}

/* ---- the event stream ---- */

struct stream_seen {
        char *text;
        const char *const *want; /* stop once every one of these was seen */
};

static int on_data(void *userdata, const char *data, size_t len)
{
        struct stream_seen *s = userdata;
        char *n = xasprintf("%s%.*s", s->text ? s->text : "", (int)len, data);
        free(s->text);
        s->text = n;
        for (const char *const *w = s->want; *w; w++)
                if (!strstr(s->text, *w))
                        return 0;
        return -ECANCELED;
}

static char *stream(const char *path, const char *extra_header, const char *const *want)
{
        struct stream_seen s = { .want = want };
        const char *headers[] = { extra_header, NULL };
        struct gv_http_client_req rq = { .endpoint = F.unix_ep, .method = "GET", .path = path,
                                         .headers = extra_header ? headers : NULL,
                                         .timeout_ms = 10000, .on_data = on_data,
                                         .userdata = &s };
        struct gv_http_client_reply rep = { 0 };
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        int r = gv_http_client_send(&rq, &rep, &e);
        if (r != -ECANCELED)
                fail_msg("stream %s: %d %s; got '%s'", path, r, gv_error_msg(e, r),
                         s.text ? s.text : "");
        gv_http_client_reply_done(&rep);
        return s.text;
}

static void test_events(void **state _unused_)
{
        SKIP_IF_NO_CORE();
        if (!have_qemu_img()) {
                print_message("skip: qemu-img is not installed (images make the events)\n");
                skip();
        }
        struct reply r;
        _cleanup_free_ char *path = xasprintf("%s/ev.raw", F.dir);
        int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
        assert_true(fd >= 0);
        assert_int_equal(ftruncate(fd, 1 << 20), 0);
        close(fd);
        _cleanup_free_ char *body = xasprintf("{\"name\": \"ev\", \"path\": \"%s\"}", path);
        assert_int_equal(call(F.unix_ep, "POST", "/api/v1/images", body, NULL, NULL, &r), 201);
        reply_done(&r);

        /* From the start: the history, then keep-alive comments. */
        static const char *const want1[] = { "event: image.created\n", "\"subject\":\"image/ev\"",
                                             ": keep-alive\n\n", NULL };
        _cleanup_free_ char *all = stream("/api/v1/events?after=0", NULL, want1);
        const char *id = strstr(all, "id: ");
        assert_non_null(id);
        /* The image's event's sequence number, to resume just before and after it. */
        const char *ev = strstr(all, "event: image.created\n");
        const char *idl = ev;
        while (idl > all && strncmp(idl, "id: ", 4) != 0)
                idl--;
        long long seq = strtoll(idl + 4, NULL, 10);
        assert_true(seq > 0);

        _cleanup_free_ char *h = xasprintf("Last-Event-ID: %lld", seq - 1);
        static const char *const want2[] = { "event: image.created\n", NULL };
        _cleanup_free_ char *resumed = stream("/api/v1/events", h, want2);
        char first[64];
        snprintf(first, sizeof(first), "id: %lld\n", seq);
        assert_non_null(strstr(resumed, first));

        /* Without a start: only what comes; the opening comment says from where. */
        static const char *const want3[] = { ": keep-alive\n\n", NULL };
        _cleanup_free_ char *fresh = stream("/api/v1/events", NULL, want3);
        assert_null(strstr(fresh, "event: image.created"));
        assert_true(strncmp(fresh, ": events after ", 15) == 0);

        call(F.unix_ep, "GET", "/api/v1/events?after=-1", NULL, NULL, NULL, &r);
        expect_problem(&r, 400, "after");
        reply_done(&r);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_open_routes),
                cmocka_unit_test(test_roles),
                cmocka_unit_test(test_bad_input),
                cmocka_unit_test(test_idempotency),
                cmocka_unit_test(test_images),
                cmocka_unit_test(test_upload),
                cmocka_unit_test(test_events),
                cmocka_unit_test(test_rate_limit),
        };
        return cmocka_run_group_tests(tests, setup, teardown);
}
