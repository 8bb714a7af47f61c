/* SPDX-License-Identifier: MIT */
/* Route tables and matching (src/http/route.c), no server: the matcher is a pure function. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "http/problem.h"
#include "http/route.h"
#include "util/alloc.h"
#include "util/json.h"

static int h_a(struct gv_http_request *req, void *u)
{
        (void)req;
        (void)u;
        return 0;
}

static int h_b(struct gv_http_request *req, void *u)
{
        (void)req;
        (void)u;
        return 1;
}

static const struct gv_http_route table[] = {
        { "GET", "/", h_a },
        { "GET", "/v1/vms", h_a },
        { "POST", "/v1/vms", h_b },
        { "GET", "/v1/vms/{name}", h_a },
        { "DELETE", "/v1/vms/{name}", h_b },
        { "POST", "/v1/vms/{name}/start", h_a },
        { "GET", "/v1/hosts/{host}/gpus/{gpu}", h_a },
        { "GET", "/v1/images/{label:text}", h_a },
        /* A literal that a parameter would also take: table order decides. */
        { "PUT", "/v1/things/all", h_a },
        { "PUT", "/v1/things/{name}", h_b },
};

/* Match and return the errno; on success check the route's pattern. */
static int find(const char *method, const char *path, const char *want_pattern,
                struct gv_http_route_match *m, char **ret_msg)
{
        struct gv_error *e = NULL;
        int r = gv_http_route_find(table, ELEMENTSOF(table), method, path, m, &e);
        if (r == 0) {
                assert_null(e);
                assert_non_null(m->route);
                if (want_pattern)
                        assert_string_equal(m->route->pattern, want_pattern);
        } else {
                assert_non_null(e);
                assert_int_equal(e->code, -r);
                if (ret_msg)
                        *ret_msg = xstrdup(e->msg);
        }
        gv_error_free(e);
        return r;
}

static void test_check_table(void **state)
{
        (void)state;
        struct gv_error *e = NULL;
        assert_int_equal(gv_http_routes_check(table, ELEMENTSOF(table), &e), 0);
        assert_null(e);

        static const struct {
                struct gv_http_route rt;
                const char *msg_part;
        } bad[] = {
                { { "FETCH", "/v1/x", h_a }, "valid methods: GET, HEAD, POST, PUT, PATCH, DELETE" },
                { { "get", "/v1/x", h_a }, "unknown method 'get'" },
                { { "GET", "v1/x", h_a }, "must start with '/'" },
                { { "GET", "/v1//x", h_a }, "empty segment" },
                { { "GET", "/v1/x/", h_a }, "empty segment" },
                { { "GET", "/v1/{Name}", h_a }, "malformed parameter '{Name}'" },
                { { "GET", "/v1/{name", h_a }, "malformed parameter" },
                { { "GET", "/v1/x{name}", h_a }, "malformed parameter" },
                { { "GET", "/v1/{name:free}", h_a }, "malformed parameter" },
                { { "GET", "/v1/{}", h_a }, "malformed parameter" },
                { { "GET", "/v1/{9a}", h_a }, "malformed parameter" },
                { { "GET", "/v1/{a}/{a}", h_a }, "names parameter 'a' twice" },
                { { "GET", "/{a}/{b}/{c}/{d}/{e}/{f}/{g}/{h}/{i}", h_a }, "more than 8" },
                { { "GET", "/v1/x", NULL }, "has no handler" },
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                e = NULL;
                assert_int_equal(gv_http_routes_check(&bad[i].rt, 1, &e), -EINVAL);
                assert_non_null(e);
                if (!strstr(e->msg, bad[i].msg_part))
                        fail_msg("route %zu: '%s' lacks '%s'", i, e->msg, bad[i].msg_part);
                gv_error_free(e);
        }

        const struct gv_http_route twice[] = { { "GET", "/a", h_a }, { "GET", "/a", h_b } };
        e = NULL;
        assert_int_equal(gv_http_routes_check(twice, 2, &e), -EINVAL);
        assert_non_null(strstr(e->msg, "routes 0 and 1 are both 'GET /a'"));
        gv_error_free(e);

        /* A parameter name of 31 bytes fits, 32 does not. */
        const struct gv_http_route longname[] = {
                { "GET", "/{abcdefghijklmnopqrstuvwxyz_abcd}", h_a },
                { "GET", "/{abcdefghijklmnopqrstuvwxyz_abcde}", h_a },
        };
        assert_int_equal(gv_http_routes_check(&longname[0], 1, NULL), 0);
        assert_int_equal(gv_http_routes_check(&longname[1], 1, NULL), -EINVAL);
}

static void test_find_literals_and_params(void **state)
{
        (void)state;
        struct gv_http_route_match m = {};

        assert_int_equal(find("GET", "/", "/", &m, NULL), 0);
        assert_int_equal(m.n_params, 0);
        gv_http_route_match_done(&m);

        assert_int_equal(find("GET", "/v1/vms", "/v1/vms", &m, NULL), 0);
        assert_ptr_equal(m.route->handler, h_a);
        gv_http_route_match_done(&m);
        assert_int_equal(find("POST", "/v1/vms", "/v1/vms", &m, NULL), 0);
        assert_ptr_equal(m.route->handler, h_b);
        gv_http_route_match_done(&m);

        assert_int_equal(find("POST", "/v1/vms/web1/start", "/v1/vms/{name}/start", &m, NULL), 0);
        assert_int_equal(m.n_params, 1);
        assert_string_equal(gv_http_route_match_param(&m, "name"), "web1");
        assert_null(gv_http_route_match_param(&m, "other"));
        gv_http_route_match_done(&m);
        assert_int_equal(m.n_params, 0);

        /* Percent-decoding: "%2D" is '-', "%2e" is '.'. */
        assert_int_equal(find("GET", "/v1/vms/web%2D1%2ex", "/v1/vms/{name}", &m, NULL), 0);
        assert_string_equal(gv_http_route_match_param(&m, "name"), "web-1.x");
        gv_http_route_match_done(&m);

        assert_int_equal(find("GET", "/v1/hosts/h1/gpus/0000-3b-00.0", NULL, &m, NULL), 0);
        assert_int_equal(m.n_params, 2);
        assert_string_equal(gv_http_route_match_param(&m, "host"), "h1");
        assert_string_equal(gv_http_route_match_param(&m, "gpu"), "0000-3b-00.0");
        gv_http_route_match_done(&m);

        /* HEAD is served by GET routes. */
        assert_int_equal(find("HEAD", "/v1/vms/a", "/v1/vms/{name}", &m, NULL), 0);
        assert_string_equal(m.route->method, "GET");
        gv_http_route_match_done(&m);

        /* Table order: the literal comes first and wins; other names go to the parameter. */
        assert_int_equal(find("PUT", "/v1/things/all", "/v1/things/all", &m, NULL), 0);
        gv_http_route_match_done(&m);
        assert_int_equal(find("PUT", "/v1/things/one", "/v1/things/{name}", &m, NULL), 0);
        gv_http_route_match_done(&m);
}

static void test_find_refusals(void **state)
{
        (void)state;
        struct gv_http_route_match m = {};
        char *msg = NULL;

        /* Shapes that do not exist: exact matching, no trailing-slash forgiveness, a parameter
         * never spans '/' and is never empty. */
        static const char *const missing[] = {
                "/v1/vm", "/v1/vms/", "/v1/VMS", "/v1/vms/a/b/start", "/v1/vms//start",
                "//v1/vms", "/v2/vms", "/v1/vms/a/start/", "/v1/v%6Ds", "",
        };
        for (size_t i = 0; i < ELEMENTSOF(missing); i++) {
                msg = NULL;
                if (find("GET", missing[i], NULL, &m, &msg) != -ENOENT)
                        fail_msg("'%s' should not match", missing[i]);
                assert_non_null(strstr(msg, "There is no resource at"));
                free(msg);
        }

        /* Not valid names (decoded): refused, and the value is not echoed. */
        static const char *const bad_names[] = {
                "/v1/vms/Web1",     "/v1/vms/web%201", "/v1/vms/a%2Fb", "/v1/vms/..",
                "/v1/vms/-x",       "/v1/vms/%00",     "/v1/vms/%zz",   "/v1/vms/%4",
                "/v1/vms/a%",
                "/v1/vms/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        };
        for (size_t i = 0; i < ELEMENTSOF(bad_names); i++) {
                msg = NULL;
                if (find("GET", bad_names[i], NULL, &m, &msg) != -EINVAL)
                        fail_msg("'%s' should be refused as a bad name", bad_names[i]);
                assert_non_null(strstr(msg, "path parameter 'name'"));
                free(msg);
        }

        /* The path exists for other methods: 405 material, with the list. */
        msg = NULL;
        assert_int_equal(find("PATCH", "/v1/vms/a", NULL, &m, &msg), -EOPNOTSUPP);
        assert_string_equal(msg, "Method 'PATCH' is not allowed on '/v1/vms/a'; allowed: GET, "
                                 "HEAD, DELETE.");
        free(msg);
        msg = NULL;
        assert_int_equal(find("DELETE", "/v1/vms", NULL, &m, &msg), -EOPNOTSUPP);
        assert_non_null(strstr(msg, "allowed: GET, HEAD, POST."));
        free(msg);
        /* A bad parameter only counts on a route of the request's method. */
        assert_int_equal(find("GET", "/v1/vms/Bad/start", NULL, &m, NULL), -EOPNOTSUPP);
        assert_int_equal(find("POST", "/v1/vms/Bad/start", NULL, &m, NULL), -EINVAL);
}

static void test_free_text(void **state)
{
        (void)state;
        struct gv_http_route_match m = {};

        assert_int_equal(find("GET", "/v1/images/Debian%2012%20%E2%9C%93", NULL, &m, NULL), 0);
        assert_string_equal(gv_http_route_match_param(&m, "label"), "Debian 12 \xe2\x9c\x93");
        gv_http_route_match_done(&m);
        /* Free text may hold an encoded '/': it is one raw segment. */
        assert_int_equal(find("GET", "/v1/images/a%2Fb", NULL, &m, NULL), 0);
        assert_string_equal(gv_http_route_match_param(&m, "label"), "a/b");
        gv_http_route_match_done(&m);
        /* '+' is not a space in a path. */
        assert_int_equal(find("GET", "/v1/images/a+b", NULL, &m, NULL), 0);
        assert_string_equal(gv_http_route_match_param(&m, "label"), "a+b");
        gv_http_route_match_done(&m);

        static const char *const bad[] = {
                "/v1/images/%00", "/v1/images/%01x", "/v1/images/%7F", "/v1/images/%ff",
                "/v1/images/%C0%AF", "/v1/images/%ED%A0%80", "/v1/images/..", "/v1/images/.",
                "/v1/images/%2E%2E",
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                if (find("GET", bad[i], NULL, &m, NULL) != -EINVAL)
                        fail_msg("'%s' should be refused as free text", bad[i]);
}

/* "{name:path}" takes the rest of the path (static files): empty, one or more segments. */
static void test_rest_of_path(void **state)
{
        (void)state;
        static const struct gv_http_route rest[] = {
                { "GET", "/ui", h_a },
                { "GET", "/ui/{file:path}", h_b },
        };
        struct gv_http_route_match m = {};
        struct gv_error *e = NULL;

        assert_int_equal(gv_http_routes_check(rest, ELEMENTSOF(rest), NULL), 0);
        static const struct {
                const char *path, *want;
        } good[] = {
                { "/ui/", "" },
                { "/ui/app.js", "app.js" },
                { "/ui/assets/a%20b.css", "assets/a b.css" },
                { "/ui/a//b", "a//b" },
                { "/ui/.well-known/x", ".well-known/x" },
        };
        for (size_t i = 0; i < ELEMENTSOF(good); i++) {
                assert_int_equal(gv_http_route_find(rest, ELEMENTSOF(rest), "GET", good[i].path,
                                                    &m, NULL), 0);
                assert_string_equal(m.route->pattern, "/ui/{file:path}");
                assert_string_equal(gv_http_route_match_param(&m, "file"), good[i].want);
                gv_http_route_match_done(&m);
        }
        /* "/ui" is its own route, not the rest pattern with nothing. */
        assert_int_equal(gv_http_route_find(rest, ELEMENTSOF(rest), "GET", "/ui", &m, NULL), 0);
        assert_string_equal(m.route->pattern, "/ui");
        gv_http_route_match_done(&m);
        assert_int_equal(gv_http_route_find(rest, ELEMENTSOF(rest), "GET", "/uix/a", &m, NULL),
                         -ENOENT);

        /* No way out of the directory, encoded or not. */
        static const char *const bad[] = {
                "/ui/..", "/ui/../etc/passwd", "/ui/a/../../b", "/ui/%2E%2E/x", "/ui/..%2Fx",
                "/ui/a%2F..%2Fb", "/ui/.", "/ui/./a", "/ui/a%5Cb", "/ui/a%00", "/ui/%0a",
                "/ui/%ff",
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                e = NULL;
                if (gv_http_route_find(rest, ELEMENTSOF(rest), "GET", bad[i], &m, &e) != -EINVAL)
                        fail_msg("'%s' should be refused", bad[i]);
                assert_non_null(strstr(e->msg, "path parameter 'file'"));
                gv_error_free(e);
        }

        /* Only last. */
        const struct gv_http_route mid[] = { { "GET", "/ui/{file:path}/x", h_a } };
        e = NULL;
        assert_int_equal(gv_http_routes_check(mid, 1, &e), -EINVAL);
        assert_non_null(strstr(e->msg, "must come last"));
        gv_error_free(e);
}

static void test_allowed(void **state)
{
        (void)state;
        char *a = gv_http_route_allowed(table, ELEMENTSOF(table), "/v1/vms/x");
        assert_string_equal(a, "GET, HEAD, DELETE");
        free(a);
        a = gv_http_route_allowed(table, ELEMENTSOF(table), "/v1/vms/x/start");
        assert_string_equal(a, "POST");
        free(a);
        /* Shape only: a bad name still has the route's methods. */
        a = gv_http_route_allowed(table, ELEMENTSOF(table), "/v1/vms/BAD");
        assert_string_equal(a, "GET, HEAD, DELETE");
        free(a);
        a = gv_http_route_allowed(table, ELEMENTSOF(table), "/v1/things/all");
        assert_string_equal(a, "PUT");
        free(a);
        assert_null(gv_http_route_allowed(table, ELEMENTSOF(table), "/nope"));
        assert_null(gv_http_route_allowed(table, ELEMENTSOF(table), "nope"));
}

static void test_decode_and_utf8(void **state)
{
        (void)state;
        char *s = NULL;
        assert_int_equal(gv_http_percent_decode("a%20b+c", 7, true, &s), 0);
        assert_string_equal(s, "a b c");
        free(s);
        assert_int_equal(gv_http_percent_decode("a%20b+c", 7, false, &s), 0);
        assert_string_equal(s, "a b+c");
        free(s);
        /* Only len bytes are read. */
        assert_int_equal(gv_http_percent_decode("ab%41", 2, false, &s), 0);
        assert_string_equal(s, "ab");
        free(s);
        s = NULL;
        assert_int_equal(gv_http_percent_decode("%4", 2, false, &s), -EINVAL);
        assert_int_equal(gv_http_percent_decode("%g0", 3, false, &s), -EINVAL);
        assert_int_equal(gv_http_percent_decode("x%00", 4, false, &s), -EINVAL);
        assert_null(s);

        assert_true(gv_http_utf8_is_valid("", 0));
        assert_true(gv_http_utf8_is_valid("plain", 5));
        assert_true(gv_http_utf8_is_valid("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", 9));
        assert_false(gv_http_utf8_is_valid("\xc3", 1));             /* truncated */
        assert_false(gv_http_utf8_is_valid("\xc0\x80", 2));         /* overlong NUL */
        assert_false(gv_http_utf8_is_valid("\xe0\x80\xaf", 3));     /* overlong '/' */
        assert_false(gv_http_utf8_is_valid("\xed\xa0\x80", 3));     /* surrogate */
        assert_false(gv_http_utf8_is_valid("\xf4\x90\x80\x80", 4)); /* > U+10FFFF */
        assert_false(gv_http_utf8_is_valid("\x80", 1));             /* lone continuation */
        assert_false(gv_http_utf8_is_valid("\xe2\x82x", 3));        /* bad continuation */
}

static void test_problem_table(void **state)
{
        (void)state;
        static const struct {
                int r;
                unsigned status;
                const char *slug;
        } rows[] = {
                { -ENOENT, 404, "not-found" },       { -EEXIST, 409, "already-exists" },
                { -EBUSY, 409, "busy" },             { -EINVAL, 400, "invalid-request" },
                { -ENOSPC, 409, "no-capacity" },     { -EOPNOTSUPP, 422, "not-supported" },
                { -ENOSYS, 501, "not-implemented" }, { -ETIMEDOUT, 504, "timeout" },
                { -EACCES, 403, "forbidden" },       { -EPERM, 403, "forbidden" },
                { -EFBIG, 413, "too-large" },        { -ECONNREFUSED, 502, "bad-gateway" },
                { -EIO, 500, "internal" },           { EBUSY, 409, "busy" },
                { -ESTALE, 409, "changed" },
        };
        for (size_t i = 0; i < ELEMENTSOF(rows); i++) {
                assert_int_equal(gv_http_status_from_errno(rows[i].r), rows[i].status);
                assert_string_equal(gv_http_problem_slug_from_errno(rows[i].r), rows[i].slug);
        }
        assert_string_equal(gv_http_status_title(404), "Not Found");
        assert_string_equal(gv_http_status_title(299), "Error");

        struct gv_error e = { .code = EBUSY, .msg = (char *)"GPU '0000:3b:00.0' is in use." };
        json_t *p = gv_http_problem_from_error(-EBUSY, &e, "/v1/vms/a/start");
        assert_string_equal(json_string_value(json_object_get(p, "type")),
                            "https://gpuvirt.dev/problems/busy");
        assert_string_equal(json_string_value(json_object_get(p, "title")), "Conflict");
        assert_int_equal(json_integer_value(json_object_get(p, "status")), 409);
        assert_string_equal(json_string_value(json_object_get(p, "detail")), e.msg);
        assert_string_equal(json_string_value(json_object_get(p, "instance")), "/v1/vms/a/start");
        assert_string_equal(json_string_value(json_object_get(p, "errno")), "EBUSY");
        json_decref(p);

        /* Invalid UTF-8 is repaired rather than lost; a bad slug becomes about:blank. */
        p = gv_http_problem_new(400, "Bad Slug", NULL, "bad \xff byte", "/x\xc3");
        assert_string_equal(json_string_value(json_object_get(p, "type")), "about:blank");
        assert_string_equal(json_string_value(json_object_get(p, "title")), "Bad Request");
        assert_string_equal(json_string_value(json_object_get(p, "detail")),
                            "bad \xef\xbf\xbd byte");
        assert_string_equal(json_string_value(json_object_get(p, "instance")), "/x\xef\xbf\xbd");
        json_decref(p);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_check_table),
                cmocka_unit_test(test_find_literals_and_params),
                cmocka_unit_test(test_find_refusals),
                cmocka_unit_test(test_free_text),
                cmocka_unit_test(test_rest_of_path),
                cmocka_unit_test(test_allowed),
                cmocka_unit_test(test_decode_and_utf8),
                cmocka_unit_test(test_problem_table),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
