/* SPDX-License-Identifier: MIT */
/*
 * test-openapi: the route table (api.h's GV_CONTROLLER_API_ROUTES, the list api.c serves) and
 * the OpenAPI document embedded in the binary (src/controller/openapi.json) must agree: every
 * route is a path and method of the document and the reverse (templates compared by shape,
 * "{x}"), each operation's role (x-gpuvirt-role, security) is the table's, its path and query
 * parameters are the ones the route takes, changes declare Idempotency-Key, and every $ref
 * resolves.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "controller/api.h"
#include "util/alloc.h"
#include "util/json.h"
#include "util/strv.h"

enum { NONE = -1, VIEWER, OPERATOR, ADMIN };
enum { Q_NONE, Q_WAIT, Q_LIMIT, Q_AFTER, Q_UPLOAD, Q_METRICS, Q_INSIGHTS, Q_AUDIT };
enum { M_NO, M_OWN, M_ALL };

struct route {
        const char *method, *pattern;
        int role, query;
};
#define ROUTE(m, p, name, role, query, members) { m, p, role, query },
static const struct route routes[] = { GV_CONTROLLER_API_ROUTES(ROUTE) };
#undef ROUTE

static json_t *doc;

static int setup(void **state _unused_)
{
        json_error_t je;
        doc = json_loads(gv_controller_openapi_json, 0, &je);
        if (!doc)
                fail_msg("openapi.json: line %d: %s", je.line, je.text);
        return 0;
}

static int teardown(void **state _unused_)
{
        json_decref(doc);
        return 0;
}

/* "/a/{b:text}/c" -> "/a/{x}/c" */
static char *shape(const char *p)
{
        char *s = xmalloc(strlen(p) + 1), *o = s;
        while (*p) {
                if (*p == '{') {
                        const char *e = strchr(p, '}');
                        assert_non_null(e);
                        o = stpcpy(o, "{x}");
                        p = e + 1;
                } else
                        *o++ = *p++;
        }
        *o = 0;
        return s;
}

/* The names of "{name}" / "{name:text}" in a template, in order. */
static char **template_params(const char *p)
{
        char **l = NULL;
        for (const char *b = strchr(p, '{'); b; b = strchr(b + 1, '{')) {
                size_t n = strcspn(b + 1, ":}");
                strv_consume(&l, xstrndup(b + 1, n));
        }
        return l;
}

static const char *lower_method(const char *m)
{
        static const char *const map[][2] = { { "GET", "get" }, { "POST", "post" },
                                               { "PUT", "put" }, { "DELETE", "delete" },
                                               { "PATCH", "patch" } };
        for (size_t i = 0; i < ELEMENTSOF(map); i++)
                if (strcmp(map[i][0], m) == 0)
                        return map[i][1];
        fail_msg("method '%s'", m);
        return NULL;
}

static json_t *resolve(json_t *j)
{
        const char *ref = json_string_value(json_object_get(j, "$ref"));
        if (!ref)
                return j;
        assert_true(strncmp(ref, "#/", 2) == 0);
        _cleanup_strv_free_ char **parts = strv_split(ref + 2, "/");
        json_t *cur = doc;
        for (char **p = parts; p && *p; p++) {
                cur = json_object_get(cur, *p);
                if (!cur)
                        fail_msg("$ref '%s' does not resolve", ref);
        }
        return cur;
}

/* The document's path whose shape is that of pattern, or NULL. */
static json_t *doc_path(const char *pattern, const char **ret_key)
{
        _cleanup_free_ char *want = shape(pattern);
        const char *k;
        json_t *v;
        json_object_foreach(json_object_get(doc, "paths"), k, v) {
                _cleanup_free_ char *have = shape(k);
                if (strcmp(have, want) == 0) {
                        *ret_key = k;
                        return v;
                }
        }
        return NULL;
}

static void test_routes_in_document(void **state _unused_)
{
        static const char *const role_names[] = { "viewer", "operator", "admin" };
        for (size_t i = 0; i < ELEMENTSOF(routes); i++) {
                const struct route *rt = &routes[i];
                const char *key = NULL;
                json_t *item = doc_path(rt->pattern, &key);
                if (!item)
                        fail_msg("route '%s %s' is not a path of openapi.json", rt->method,
                                 rt->pattern);
                json_t *op = json_object_get(item, lower_method(rt->method));
                if (!op)
                        fail_msg("openapi.json '%s' has no '%s' (route '%s %s')", key,
                                 lower_method(rt->method), rt->method, rt->pattern);

                /* The role. */
                const char *role = json_string_value(json_object_get(op, "x-gpuvirt-role"));
                const char *want = rt->role == NONE ? "none" : role_names[rt->role];
                if (!role || strcmp(role, want) != 0)
                        fail_msg("'%s %s': x-gpuvirt-role '%s', the table says '%s'", rt->method,
                                 rt->pattern, role ? role : "(none)", want);
                json_t *sec = json_object_get(op, "security");
                assert_true(json_is_array(sec));
                if (rt->role == NONE)
                        assert_int_equal(json_array_size(sec), 0);
                else if (!json_object_get(json_array_get(sec, 0), "bearer"))
                        fail_msg("'%s %s' needs a token but lists no bearer security",
                                 rt->method, rt->pattern);

                /* Parameters: path ones exactly the template's, query ones the route's. */
                _cleanup_strv_free_ char **tpl = template_params(key);
                _cleanup_strv_free_ char **route_tpl = template_params(rt->pattern);
                assert_int_equal(strv_length(tpl), strv_length(route_tpl));
                _cleanup_strv_free_ char **in_path = NULL, **in_query = NULL, **in_header = NULL;
                size_t j;
                json_t *p;
                json_array_foreach(json_object_get(op, "parameters"), j, p) {
                        p = resolve(p);
                        const char *in = json_string_value(json_object_get(p, "in"));
                        const char *name = json_string_value(json_object_get(p, "name"));
                        assert_non_null(in);
                        assert_non_null(name);
                        strv_extend(strcmp(in, "path") == 0    ? &in_path
                                    : strcmp(in, "query") == 0 ? &in_query
                                                               : &in_header, name);
                }
                for (char **t = tpl; t && *t; t++)
                        if (!strv_contains(in_path, *t))
                                fail_msg("'%s': path parameter '%s' is not declared", key, *t);
                assert_int_equal(strv_length(in_path), strv_length(tpl));
                const char *q = rt->query == Q_WAIT ? "wait" : rt->query == Q_LIMIT ? "limit"
                              : rt->query == Q_AFTER ? "after" : rt->query == Q_METRICS ? "series"
                              : rt->query == Q_INSIGHTS ? "window"
                              : rt->query == Q_AUDIT ? "since" : NULL;
                const char *q2 = rt->query == Q_METRICS ? "range"
                               : rt->query == Q_INSIGHTS ? "threshold"
                               : rt->query == Q_AUDIT ? "outcome" : NULL;
                if (rt->query == Q_AUDIT) /* every filter of the audit log (audit.c) */
                        assert_int_equal(strv_length(in_query), 9);
                else
                        assert_int_equal(strv_length(in_query), (q ? 1 : 0) + (q2 ? 1 : 0));
                if (q && !strv_contains(in_query, q))
                        fail_msg("'%s %s' takes ?%s; the document does not say so", rt->method,
                                 rt->pattern, q);
                if (q2 && !strv_contains(in_query, q2))
                        fail_msg("'%s %s' takes ?%s; the document does not say so", rt->method,
                                 rt->pattern, q2);

                /* Changes take an Idempotency-Key. */
                bool change = strcmp(rt->method, "GET") != 0;
                if (change != strv_contains(in_header, "Idempotency-Key"))
                        fail_msg("'%s %s': Idempotency-Key %s", rt->method, rt->pattern,
                                 change ? "missing" : "on a read");

                /* Responses: a 2xx, and problems for errors. */
                json_t *resp = json_object_get(op, "responses");
                assert_true(json_is_object(resp));
                bool ok = false;
                const char *code;
                json_t *r;
                json_object_foreach(resp, code, r) {
                        r = resolve(r);
                        if (code[0] == '2' || strcmp(code, "101") == 0) /* 101: WebSockets */
                                ok = true;
                        if (code[0] == '4' || code[0] == '5')
                                if (!json_object_get(json_object_get(r, "content"),
                                                     "application/problem+json"))
                                        fail_msg("'%s %s' %s is not a problem", rt->method,
                                                 rt->pattern, code);
                        if (rt->role != NONE && strcmp(code, "202") == 0)
                                assert_non_null(json_object_get(json_object_get(r, "headers"),
                                                                "Location"));
                }
                if (!ok)
                        fail_msg("'%s %s' has no 2xx response", rt->method, rt->pattern);
                if (rt->role != NONE && (!json_object_get(resp, "401") ||
                                         !json_object_get(resp, "403")))
                        fail_msg("'%s %s' needs a role but documents no 401/403", rt->method,
                                 rt->pattern);
        }
}

static void test_document_in_routes(void **state _unused_)
{
        static const char *const methods[] = { "get", "put", "post", "delete", "patch", "head",
                                               "options", "trace" };
        const char *k;
        json_t *item;
        size_t n_ops = 0;
        json_object_foreach(json_object_get(doc, "paths"), k, item) {
                _cleanup_free_ char *have = shape(k);
                for (size_t m = 0; m < ELEMENTSOF(methods); m++) {
                        if (!json_object_get(item, methods[m]))
                                continue;
                        n_ops++;
                        bool found = false;
                        for (size_t i = 0; i < ELEMENTSOF(routes); i++) {
                                _cleanup_free_ char *want = shape(routes[i].pattern);
                                if (strcmp(want, have) == 0 &&
                                    strcmp(lower_method(routes[i].method), methods[m]) == 0)
                                        found = true;
                        }
                        if (!found)
                                fail_msg("openapi.json documents '%s %s', which no route serves",
                                         methods[m], k);
                }
        }
        assert_int_equal(n_ops, ELEMENTSOF(routes));
}

static void check_refs(json_t *j)
{
        if (json_is_object(j)) {
                const char *k;
                json_t *v;
                if (json_object_get(j, "$ref"))
                        (void)resolve(j);
                json_object_foreach(j, k, v)
                        check_refs(v);
        } else if (json_is_array(j)) {
                size_t i;
                json_t *v;
                json_array_foreach(j, i, v)
                        check_refs(v);
        }
}

static void test_document_shape(void **state _unused_)
{
        assert_string_equal(json_string_value(json_object_get(doc, "openapi")), "3.1.0");
        json_t *comp = json_object_get(doc, "components");
        json_t *bearer = json_object_get(json_object_get(comp, "securitySchemes"), "bearer");
        assert_string_equal(json_string_value(json_object_get(bearer, "type")), "http");
        assert_string_equal(json_string_value(json_object_get(bearer, "scheme")), "bearer");
        static const char *const need[] = { "host", "gpu", "vm", "vm-create", "operation",
                                            "image", "token", "problem" };
        for (size_t i = 0; i < ELEMENTSOF(need); i++)
                if (!json_object_get(json_object_get(comp, "schemas"), need[i]))
                        fail_msg("schema '%s' is missing", need[i]);
        check_refs(doc);
        /* The embedded copy is the whole file. */
        assert_int_equal(strlen(gv_controller_openapi_json), gv_controller_openapi_json_len);
}

/* The shape and resolve helpers themselves, so a broken helper cannot pass everything. */
static void test_helpers(void **state _unused_)
{
        _cleanup_free_ char *a = shape("/x/{gpu:text}/y/{id}");
        assert_string_equal(a, "/x/{x}/y/{x}");
        _cleanup_strv_free_ char **p = template_params("/x/{gpu:text}/y/{id}");
        assert_int_equal(strv_length(p), 2);
        assert_string_equal(p[0], "gpu");
        assert_string_equal(p[1], "id");
        const char *key = NULL;
        assert_null(doc_path("/api/v1/nothing/{x}", &key));
        assert_non_null(doc_path("/api/v1/vms/{name}", &key));
        assert_string_equal(key, "/api/v1/vms/{vm}");
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_helpers),
                cmocka_unit_test(test_routes_in_document),
                cmocka_unit_test(test_document_in_routes),
                cmocka_unit_test(test_document_shape),
        };
        return cmocka_run_group_tests(tests, setup, teardown);
}
