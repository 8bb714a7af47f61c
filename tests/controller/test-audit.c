/* SPDX-License-Identifier: MIT */
/*
 * test-audit: the controller's audit log (src/controller/audit.c, docs/audit.md) on an
 * in-process controller with a SQLite store in a temporary directory: records as written (every
 * field, the outcome from the status), every query filter, RFC 3339 and millisecond bounds,
 * newest first, cursor paging, bad queries named with the valid choices, request strings made
 * safe (bad UTF-8, control characters, over-long details), retention (old records dropped, or
 * kept when retention is off), and a write failure injected in the store (an SQLite trigger
 * that aborts the insert, from a connection of the test's own) counted, logged, evented, shown
 * on /metrics and returned, with the next write working again once it is gone.
 */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "controller/controller-internal.h"
#include "util/alloc.h"
#include "util/fileio.h"
#include "util/json.h"

struct fx {
        char dir[64];
        char *db;
        char *url;
        struct gv_controller *c;
};

static struct fx *fx_new(void)
{
        struct fx *f = xnew0(struct fx, 1);
        strcpy(f->dir, "/tmp/test-audit-XXXXXX");
        assert_non_null(mkdtemp(f->dir));
        f->db = xasprintf("%s/gpuvirt.db", f->dir);
        f->url = xasprintf("sqlite:%s", f->db);
        return f;
}

static void fx_start(struct fx *f, int retention_days)
{
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        struct gv_controller_config cfg = { .store_url = f->url,
                                             .audit_retention_days = retention_days };
        int r = gv_controller_new(&cfg, &f->c, &e);
        if (r < 0)
                fail_msg("controller: %s", gv_error_msg(e, r));
}

static int setup(void **state)
{
        struct fx *f = fx_new();
        fx_start(f, 0);
        *state = f;
        return 0;
}

static int teardown(void **state)
{
        struct fx *f = *state;
        gv_controller_free(f->c);
        if (!getenv("GPUVIRT_TEST_KEEP_ROOT"))
                (void)gv_rm_rf(f->dir);
        free(f->db);
        free(f->url);
        free(f);
        return 0;
}

static void raw_exec(const char *path, const char *sql)
{
        sqlite3 *db = NULL;
        assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
        sqlite3_busy_timeout(db, 5000);
        char *msg = NULL;
        int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
        if (rc != SQLITE_OK)
                fail_msg("%s: %s", sql, msg);
        sqlite3_close(db);
}

static void audit(struct gv_controller *c, const struct gv_audit_entry *a)
{
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        int r = gv_controller_audit(c, a, &e);
        if (r < 0)
                fail_msg("audit: %s", gv_error_msg(e, r));
}

/* The query's answer; fails the test on an error. */
static json_t *query(struct gv_controller *c, const char *json)
{
        json_auto_t *q = NULL;
        if (json)
                assert_int_equal(gv_json_loads(json, &q, NULL), 0);
        json_t *out = NULL;
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        int r = gv_controller_audit_query(c, q, &out, &e);
        if (r < 0)
                fail_msg("query %s: %s", json ? json : "(none)", gv_error_msg(e, r));
        return out;
}

/* The records' paths' last parts, newest first: "d c b". */
static char *names(const json_t *answer)
{
        char *out = xstrdup("");
        size_t i;
        json_t *rec;
        json_array_foreach(json_object_get(answer, "records"), i, rec) {
                const char *p = json_string_value(json_object_get(rec, "path"));
                const char *slash = p ? strrchr(p, '/') : NULL;
                char *next = xasprintf("%s%s%s", out, *out ? " " : "", slash ? slash + 1 : "?");
                free(out);
                out = next;
        }
        return out;
}

#define ASSERT_QUERY(c, q, want)                                   \
        do {                                                       \
                json_auto_t *a_ = query((c), (q));                 \
                _cleanup_free_ char *n_ = names(a_);               \
                assert_string_equal(n_, (want));                   \
        } while (0)

/* Six requests: a..f. */
static void six(struct gv_controller *c)
{
        static const struct gv_audit_entry e[] = {
                { .principal = "token:ops", .token_id = "t-1", .role = "operator",
                  .source = "tcp:192.0.2.1:41234", .method = "POST", .path = "/api/v1/vms/a",
                  .object = "vm/a", .request_id = "r-1", .operation_id = "op-1",
                  .status = 202 },
                { .principal = "token:alice", .token_id = "t-2", .role = "member",
                  .tenant = "acme", .source = "tcp:192.0.2.2:5000", .method = "DELETE",
                  .path = "/api/v1/vms/b", .object = "vm/b", .status = 403,
                  .detail = "VM 'b' belongs to another tenant." },
                { .principal = "anonymous", .source = "tcp:198.51.100.7:1", .method = "POST",
                  .path = "/api/v1/tokens/c", .status = 401, .detail = "No token." },
                { .principal = "token:alice", .token_id = "t-2", .role = "member",
                  .tenant = "acme", .source = "tcp:192.0.2.2:5001", .method = "POST",
                  .path = "/api/v1/vms/d", .object = "vm/d", .status = 429 },
                { .principal = "local:uid=0", .role = "admin", .source = "unix:uid=0,pid=9",
                  .method = "PUT", .path = "/api/v1/tenants/e", .object = "tenant/e",
                  .status = 409, .detail = "Tenant 'e' is busy." },
                { .principal = "token:ops", .token_id = "t-1", .role = "operator",
                  .source = "tcp:192.0.2.1:41235", .method = "POST", .path = "/api/v1/vms/f",
                  .object = "vm/a", .status = 500 },
        };
        for (size_t i = 0; i < ELEMENTSOF(e); i++)
                audit(c, &e[i]);
}

static void test_record_fields(void **state)
{
        struct fx *f = *state;
        int64_t before = gv_ctl_now_ms();
        six(f->c);
        json_auto_t *a = query(f->c, NULL);
        json_t *recs = json_object_get(a, "records");
        assert_int_equal(json_array_size(recs), 6);
        assert_true(json_is_null(json_object_get(a, "next")));

        /* The oldest (last): every field, nulls for what was not given. */
        json_t *r = json_array_get(recs, 5);
        int64_t t = json_integer_value(json_object_get(r, "time"));
        assert_true(t >= before && t <= gv_ctl_now_ms());
        json_auto_t *want = json_pack(
                "{ss ss ss sn ss ss ss ss ss ss si ss sn sI sI}", "principal", "token:ops",
                "token_id", "t-1", "role", "operator", "tenant", "source",
                "tcp:192.0.2.1:41234", "method", "POST", "path", "/api/v1/vms/a", "object",
                "vm/a", "request_id", "r-1", "operation_id", "op-1", "status", 202, "outcome",
                "allowed", "detail", "seq", json_integer_value(json_object_get(r, "seq")), "time",
                (json_int_t)t);
        if (!json_equal(r, want)) {
                _cleanup_free_ char *got = json_dumps(r, JSON_SORT_KEYS);
                fail_msg("record: %s", got);
        }
        /* Outcomes from the status: 401, 403, 429 denied; 409 and 500 failed. */
        static const char *const outcomes[] = { "failed", "failed", "denied", "denied", "denied",
                                                "allowed" };
        for (size_t i = 0; i < 6; i++)
                assert_string_equal(json_string_value(json_object_get(json_array_get(recs, i),
                                                                       "outcome")),
                                    outcomes[i]);
        assert_string_equal(json_string_value(json_object_get(json_array_get(recs, 4), "detail")),
                            "VM 'b' belongs to another tenant.");
        /* Newest first, seq strictly falling. */
        for (size_t i = 1; i < 6; i++)
                assert_true(json_integer_value(json_object_get(json_array_get(recs, i - 1),
                                                               "seq")) >
                            json_integer_value(json_object_get(json_array_get(recs, i), "seq")));
}

static void test_filters(void **state)
{
        struct fx *f = *state;
        six(f->c);
        ASSERT_QUERY(f->c, NULL, "f e d c b a");
        ASSERT_QUERY(f->c, "{\"principal\": \"token:alice\"}", "d b");
        ASSERT_QUERY(f->c, "{\"tenant\": \"acme\"}", "d b");
        ASSERT_QUERY(f->c, "{\"object\": \"vm/a\"}", "f a");
        ASSERT_QUERY(f->c, "{\"outcome\": \"denied\"}", "d c b");
        ASSERT_QUERY(f->c, "{\"outcome\": \"failed\"}", "f e");
        ASSERT_QUERY(f->c, "{\"outcome\": \"allowed\"}", "a");
        ASSERT_QUERY(f->c, "{\"method\": \"delete\"}", "b");
        ASSERT_QUERY(f->c, "{\"method\": \"PUT\"}", "e");
        ASSERT_QUERY(f->c, "{\"principal\": \"token:ops\", \"outcome\": \"failed\"}", "f");
        ASSERT_QUERY(f->c, "{\"limit\": \"2\"}", "f e");
        ASSERT_QUERY(f->c, "{\"object\": \"tenant/none\"}", "");

        /* Time bounds: RFC 3339 (UTC, an offset, fractions) and milliseconds, inclusive. */
        json_auto_t *all = query(f->c, NULL);
        json_t *recs = json_object_get(all, "records");
        int64_t t_new = json_integer_value(json_object_get(json_array_get(recs, 0), "time"));
        int64_t t_old = json_integer_value(json_object_get(json_array_get(recs, 5), "time"));
        _cleanup_free_ char *q1 = xasprintf("{\"since\": \"%lld\", \"until\": \"%lld\"}",
                                            (long long)t_old, (long long)t_new);
        ASSERT_QUERY(f->c, q1, "f e d c b a");
        _cleanup_free_ char *q2 = xasprintf("{\"since\": \"%lld\"}", (long long)t_new + 1);
        ASSERT_QUERY(f->c, q2, "");
        _cleanup_free_ char *q3 = xasprintf("{\"until\": \"%lld\"}", (long long)t_old - 1);
        ASSERT_QUERY(f->c, q3, "");
        ASSERT_QUERY(f->c, "{\"since\": \"2000-01-01T00:00:00Z\", "
                           "\"until\": \"2999-12-31T23:59:59.999+02:00\"}",
                     "f e d c b a");
        ASSERT_QUERY(f->c, "{\"until\": \"2001-02-03T04:05:06.5z\"}", "");
        ASSERT_QUERY(f->c, "{\"since\": \"2999-01-01t00:00:00-05:30\"}", "");
        /* A C caller may give numbers. */
        json_auto_t *q = json_pack("{sI si}", "since", (json_int_t)t_old, "limit", 1);
        json_t *out = NULL;
        assert_int_equal(gv_controller_audit_query(f->c, q, &out, NULL), 0);
        assert_int_equal(json_array_size(json_object_get(out, "records")), 1);
        json_decref(out);
}

static void test_paging(void **state)
{
        struct fx *f = *state;
        for (int i = 0; i < 25; i++) {
                char path[32];
                snprintf(path, sizeof(path), "/api/v1/vms/%02d", i);
                audit(f->c, &(struct gv_audit_entry){ .principal = "token:ops", .method = "POST",
                                                      .path = path, .status = 202 });
        }
        /* 10, 10, 5: each record once, in order, the last page without a next. */
        _cleanup_free_ char *seen = xstrdup("");
        _cleanup_free_ char *after = NULL;
        int pages = 0;
        for (;;) {
                _cleanup_free_ char *qs =
                        after ? xasprintf("{\"limit\": \"10\", \"after\": \"%s\"}", after)
                              : xstrdup("{\"limit\": \"10\"}");
                json_auto_t *a = query(f->c, qs);
                _cleanup_free_ char *n = names(a);
                char *next = xasprintf("%s%s%s", seen, *seen && *n ? " " : "", n);
                free(seen);
                seen = next;
                pages++;
                json_t *cur = json_object_get(a, "next");
                size_t got = json_array_size(json_object_get(a, "records"));
                if (json_is_null(cur)) {
                        assert_int_equal(got, 5);
                        break;
                }
                assert_int_equal(got, 10);
                assert_true(json_is_string(cur));
                free(after);
                after = xstrdup(json_string_value(cur));
                assert_true(pages < 5);
        }
        assert_int_equal(pages, 3);
        assert_string_equal(seen, "24 23 22 21 20 19 18 17 16 15 14 13 12 11 10 09 08 07 06 05 "
                                  "04 03 02 01 00");
        /* Exactly 10 left: no next page announced that would be empty. */
        json_auto_t *a = query(f->c, "{\"limit\": \"25\"}");
        assert_true(json_is_null(json_object_get(a, "next")));
}

static void expect_bad(struct gv_controller *c, const char *json, const char *msg)
{
        json_auto_t *q = NULL;
        assert_int_equal(gv_json_loads(json, &q, NULL), 0);
        json_t *out = NULL;
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        assert_int_equal(gv_controller_audit_query(c, q, &out, &e), -EINVAL);
        assert_null(out);
        assert_non_null(e);
        if (strcmp(e->msg, msg) != 0)
                fail_msg("query %s:\n  got  '%s'\n  want '%s'", json, e->msg, msg);
}

static void test_bad_queries(void **state)
{
        struct fx *f = *state;
        static const char time_fix[] = "give an RFC 3339 time such as '2026-01-02T15:04:05Z' "
                                       "(or with an offset, '+01:00'), or milliseconds since "
                                       "the epoch.";
        expect_bad(f->c, "{\"who\": \"x\"}",
                   "The audit query has an unknown parameter 'who': valid are since, until, "
                   "principal, tenant, object, outcome, method, limit, after.");
        _cleanup_free_ char *m1 = xasprintf("The audit query's 'since' is 'yesterday': %s",
                                            time_fix);
        expect_bad(f->c, "{\"since\": \"yesterday\"}", m1);
        static const char *const bad_times[] = {
                "2026-02-30T00:00:00Z", "2026-01-02T24:00:00Z", "2026-01-02 10:00:00Z",
                "2026-01-02T10:00:00", "2026-01-02T10:00:00.Z", "2026-01-02T10:00:00+0100",
                "-5", "1e9", "",
        };
        for (size_t i = 0; i < ELEMENTSOF(bad_times); i++) {
                _cleanup_free_ char *q = xasprintf("{\"until\": \"%s\"}", bad_times[i]);
                _cleanup_free_ char *m = xasprintf("The audit query's 'until' is '%s': %s",
                                                   bad_times[i], time_fix);
                expect_bad(f->c, q, m);
        }
        expect_bad(f->c, "{\"since\": \"2026-01-02T00:00:00Z\", \"until\": \"2026-01-01T00:00:00Z\"}",
                   "The audit query's since is after its until: give since <= until.");
        expect_bad(f->c, "{\"outcome\": \"ok\"}",
                   "The audit query's outcome 'ok' is not one of: allowed, denied, failed.");
        expect_bad(f->c, "{\"method\": \"GET\"}",
                   "The audit query's method 'GET' is not one of: POST, PUT, DELETE, PATCH "
                   "(only changes are audited).");
        expect_bad(f->c, "{\"limit\": \"0\"}", "The audit query's limit '0' is not 1 to 1000.");
        expect_bad(f->c, "{\"limit\": \"1001\"}",
                   "The audit query's limit '1001' is not 1 to 1000.");
        expect_bad(f->c, "{\"limit\": \"ten\"}", "The audit query's limit 'ten' is not 1 to 1000.");
        expect_bad(f->c, "{\"after\": \"0\"}",
                   "The audit query's after '0' is not a cursor: give the 'next' of the previous "
                   "page.");
        expect_bad(f->c, "{\"after\": \"+5\"}",
                   "The audit query's after '+5' is not a cursor: give the 'next' of the "
                   "previous page.");
        expect_bad(f->c, "{\"principal\": \"\"}",
                   "The audit query's 'principal' must be 1 to 256 bytes (an exact match, e.g. "
                   "'token:ops').");
        expect_bad(f->c, "{\"object\": [1]}", "The audit query's 'object' must be a string.");
        expect_bad(f->c, "[]", "The audit query must be an object of parameters (since, until, "
                               "principal, tenant, object, outcome, method, limit, after).");
}

static void test_unsafe_strings(void **state)
{
        struct fx *f = *state;
        /* Bad UTF-8, a control character, and a detail far over the cap. */
        char detail[5000];
        memset(detail, 'x', sizeof(detail) - 1);
        detail[sizeof(detail) - 1] = 0;
        memcpy(detail + 2044, "\xc3\xa9", 2); /* é across the cut at 2048 - 3 */
        audit(f->c, &(struct gv_audit_entry){ .principal = "token:\xff\xfe", .method = "POST",
                                              .path = "/api/v1/vms/x\ny\xc0\xaf",
                                              .status = 400, .detail = detail });
        json_auto_t *a = query(f->c, NULL);
        json_t *r = json_array_get(json_object_get(a, "records"), 0);
        assert_string_equal(json_string_value(json_object_get(r, "principal")),
                            "token:\xef\xbf\xbd\xef\xbf\xbd");
        /* "\n" and the overlong "\xc0\xaf" (a '/' in disguise) each become U+FFFD. */
        assert_string_equal(json_string_value(json_object_get(r, "path")),
                            "/api/v1/vms/x\xef\xbf\xbdy\xef\xbf\xbd\xef\xbf\xbd");
        const char *d = json_string_value(json_object_get(r, "detail"));
        size_t n = strlen(d);
        assert_int_equal(n, 2047);                         /* é was not cut in half: */
        assert_int_equal(d[2043], 'x');                    /* it went whole */
        assert_memory_equal(d + 2044, "\xe2\x80\xa6", 3); /* for … */
        /* And it is findable by its cleaned principal. */
        ASSERT_QUERY(f->c, "{\"principal\": \"token:\xef\xbf\xbd\xef\xbf\xbd\"}", "x\xef\xbf\xbdy\xef\xbf\xbd\xef\xbf\xbd");
}

static void test_retention(void **state _unused_)
{
        for (int keep_forever = 0; keep_forever < 2; keep_forever++) {
                struct fx *f = fx_new();
                /* Records 3 days old and 2 hours old, written beside the controller. */
                struct gv_store *s = NULL;
                assert_int_equal(gv_store_open(f->url, &s, NULL), 0);
                int64_t now = gv_ctl_now_ms();
                json_auto_t *rec = json_pack("{ss ss ss}", "principal", "token:old", "outcome",
                                             "allowed", "path", "/api/v1/vms/old");
                for (int i = 0; i < 3; i++)
                        assert_int_equal(gv_store_audit_append(s, rec, now - 3 * 86400000LL + i,
                                                               NULL, NULL, NULL),
                                         0);
                json_object_set_new(rec, "path", json_string("/api/v1/vms/recent"));
                assert_int_equal(gv_store_audit_append(s, rec, now - 2 * 3600000LL, NULL, NULL,
                                                       NULL),
                                 0);
                gv_store_free(s);

                /* One day's retention (or none): the first record written trims. */
                fx_start(f, keep_forever ? -1 : 1);
                audit(f->c, &(struct gv_audit_entry){ .principal = "token:ops",
                                                      .method = "POST",
                                                      .path = "/api/v1/vms/new",
                                                      .status = 202 });
                ASSERT_QUERY(f->c, NULL,
                             keep_forever ? "new recent old old old" : "new recent");
                void *st = f;
                teardown(&st);
        }
}

/* stderr into a file while fn runs; its text. */
static char *capture_stderr(void (*fn)(struct fx *), struct fx *f)
{
        _cleanup_free_ char *path = xasprintf("%s/stderr", f->dir);
        fflush(stderr);
        int saved = dup(STDERR_FILENO);
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        assert_true(saved >= 0 && fd >= 0);
        assert_true(dup2(fd, STDERR_FILENO) >= 0);
        close(fd);
        fn(f);
        fflush(stderr);
        assert_true(dup2(saved, STDERR_FILENO) >= 0);
        close(saved);
        char *text = NULL;
        assert_int_equal(gv_read_file(path, 1 << 20, &text, NULL), 0);
        return text;
}

static int failed_r;
static char *failed_msg;

static void write_while_broken(struct fx *f)
{
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        failed_r = gv_controller_audit(f->c,
                                       &(struct gv_audit_entry){
                                               .principal = "token:ops", .method = "DELETE",
                                               .source = "tcp:192.0.2.1:9",
                                               .path = "/api/v1/vms/web-1", .object = "vm/web-1",
                                               .status = 202 },
                                       &e);
        failed_msg = e ? xstrdup(e->msg) : NULL;
}

static void test_write_failure(void **state)
{
        struct fx *f = *state;
        audit(f->c, &(struct gv_audit_entry){ .principal = "token:ops", .method = "POST",
                                              .path = "/api/v1/vms/before", .status = 202 });
        assert_int_equal(gv_controller_audit_failures(f->c), 0);

        /* The store refuses audit inserts, as a full disk would. */
        raw_exec(f->db, "CREATE TRIGGER audit_fault BEFORE INSERT ON audit BEGIN "
                        "SELECT RAISE(ABORT, 'injected: database or disk is full'); END;");
        _cleanup_free_ char *log = capture_stderr(write_while_broken, f);
        _cleanup_free_ char *msg = failed_msg;
        /* Returned, */
        assert_true(failed_r < 0);
        assert_non_null(msg);
        if (!strstr(msg, "The audit record of DELETE /api/v1/vms/web-1 (status 202) could not "
                         "be written: ") ||
            !strstr(msg, "injected: database or disk is full"))
                fail_msg("error: %s", msg);
        /* counted, */
        assert_int_equal(gv_controller_audit_failures(f->c), 1);
        /* logged, */
        if (!strstr(log, "error: audit: cannot record DELETE /api/v1/vms/web-1 by token:ops from "
                         "tcp:192.0.2.1:9 (status 202, allowed): ") ||
            !strstr(log, "injected"))
                fail_msg("log: %s", log);
        /* evented, with what was lost, */
        json_t *ev = NULL;
        assert_int_equal(gv_controller_events(f->c, 0, 1000, 0, &ev, NULL), 0);
        json_t *found = NULL, *x;
        size_t i;
        json_array_foreach(ev, i, x)
                if (!strcmp(json_string_value(json_object_get(x, "type")), "audit.write-failed"))
                        found = x;
        assert_non_null(found);
        json_t *data = json_object_get(found, "data");
        assert_string_equal(json_string_value(json_object_get(data, "path")),
                            "/api/v1/vms/web-1");
        assert_string_equal(json_string_value(json_object_get(data, "principal")), "token:ops");
        assert_string_equal(json_string_value(json_object_get(data, "object")), "vm/web-1");
        assert_non_null(strstr(json_string_value(json_object_get(data, "error")), "injected"));
        json_decref(ev);
        /* and on /metrics. */
        _cleanup_free_ char *prom = gv_controller_metrics_text(f->c, NULL);
        assert_non_null(strstr(prom, "# TYPE gpuvirt_audit_write_failures_total counter\n"
                                     "gpuvirt_audit_write_failures_total 1\n"));
        assert_non_null(strstr(prom, "# TYPE gpuvirt_audit_records_total counter\n"
                                     "gpuvirt_audit_records_total 1\n"));
        /* Nothing half-written. */
        ASSERT_QUERY(f->c, NULL, "before");

        /* Repaired: the next record is written; the failure stays counted. */
        raw_exec(f->db, "DROP TRIGGER audit_fault");
        audit(f->c, &(struct gv_audit_entry){ .principal = "token:ops", .method = "POST",
                                              .path = "/api/v1/vms/after", .status = 202 });
        assert_int_equal(gv_controller_audit_failures(f->c), 1);
        ASSERT_QUERY(f->c, NULL, "after before");
        _cleanup_free_ char *prom2 = gv_controller_metrics_text(f->c, NULL);
        assert_non_null(strstr(prom2, "gpuvirt_audit_records_total 2\n"));
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_record_fields, setup, teardown),
                cmocka_unit_test_setup_teardown(test_filters, setup, teardown),
                cmocka_unit_test_setup_teardown(test_paging, setup, teardown),
                cmocka_unit_test_setup_teardown(test_bad_queries, setup, teardown),
                cmocka_unit_test_setup_teardown(test_unsafe_strings, setup, teardown),
                cmocka_unit_test(test_retention),
                cmocka_unit_test_setup_teardown(test_write_failure, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
