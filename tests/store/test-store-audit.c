/* SPDX-License-Identifier: MIT */
/*
 * The store's audit log (src/store/store.h, docs/audit.md) on the SQLite backend: records
 * appended and read back newest first with their seq and time, every filter alone and together,
 * inclusive time bounds, cursor paging that sees each record once, time kept non-decreasing,
 * retention trim in bounded batches with sequence numbers never reused, bad arguments, a
 * database at schema 1 migrated with its data kept, and the query plans at 100,000 records
 * (each filter walks an index, none scans the table or sorts, with and without ANALYZE).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "store/store-priv.h"
#include "store/store.h"
#include "util/alloc.h"
#include "util/fileio.h"
#include "util/json.h"

struct fixture {
        char dir[64];
        char *path;
        char *url;
        struct gv_store *s;
};

static int setup(void **state)
{
        struct fixture *f = xnew0(struct fixture, 1);
        snprintf(f->dir, sizeof(f->dir), "/tmp/gv-audit-XXXXXX");
        if (!mkdtemp(f->dir))
                return -1;
        f->path = gv_path_join(f->dir, "gpuvirt.db");
        f->url = xasprintf("sqlite:%s", f->path);
        *state = f;
        return 0;
}

static int teardown(void **state)
{
        struct fixture *f = *state;
        gv_store_free(f->s);
        if (!getenv("GPUVIRT_TEST_KEEP_ROOT"))
                (void)gv_rm_rf(f->dir);
        free(f->path);
        free(f->url);
        free(f);
        return 0;
}

static struct gv_store *open_store(struct fixture *f)
{
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        int r = gv_store_open(f->url, &f->s, &e);
        if (r < 0)
                fail_msg("open: %s", gv_error_msg(e, r));
        return f->s;
}

static void raw_exec(const char *path, const char *sql)
{
        sqlite3 *db = NULL;
        assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
                                         NULL), SQLITE_OK);
        sqlite3_busy_timeout(db, 5000);
        char *msg = NULL;
        int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
        if (rc != SQLITE_OK)
                fail_msg("%s: %s", sql, msg);
        sqlite3_close(db);
}

/* Twelve records, one per second from t=1000 s: principals alice/bob/carol in turn, tenant acme
 * on the even ones, objects vm/web-0..3, every third denied, every fourth a DELETE. */
#define T0 1000000LL
static void append_twelve(struct gv_store *s, int64_t *seqs)
{
        static const char *const who[] = { "token:alice", "token:bob", "local:uid=0" };
        for (int i = 0; i < 12; i++) {
                char object[16];
                snprintf(object, sizeof(object), "vm/web-%d", i % 4);
                json_auto_t *rec = json_pack(
                        "{ss ss* ss ss ss si ss}", "principal", who[i % 3], "tenant",
                        i % 2 == 0 ? "acme" : NULL, "object", object, "outcome",
                        i % 3 == 2 ? "denied" : "allowed", "method", i % 4 == 3 ? "DELETE" : "POST",
                        "status", i % 3 == 2 ? 403 : 202, "path", "/api/v1/vms");
                int64_t t = 0;
                _cleanup_(gv_error_freep) struct gv_error *e = NULL;
                int r = gv_store_audit_append(s, rec, T0 + i * 1000, &seqs[i], &t, &e);
                if (r < 0)
                        fail_msg("append %d: %s", i, gv_error_msg(e, r));
                assert_int_equal(t, T0 + i * 1000);
                if (i > 0)
                        assert_true(seqs[i] > seqs[i - 1]);
        }
}

/* The query's records' seqs as indexes into seqs[] ("11 8 5 2"), newest first. */
static char *run(struct gv_store *s, const struct gv_store_audit_query *q, const int64_t *seqs)
{
        json_t *a = NULL;
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        int r = gv_store_audit_query(s, q, &a, &e);
        if (r < 0)
                fail_msg("query: %s", gv_error_msg(e, r));
        char *out = xstrdup("");
        size_t i;
        json_t *rec;
        json_array_foreach(a, i, rec) {
                int64_t seq = json_integer_value(json_object_get(rec, "seq"));
                int idx = -1;
                for (int k = 0; k < 12; k++)
                        if (seqs[k] == seq)
                                idx = k;
                assert_true(idx >= 0);
                assert_int_equal(json_integer_value(json_object_get(rec, "time")),
                                 T0 + idx * 1000);
                char *next = xasprintf("%s%s%d", out, *out ? " " : "", idx);
                free(out);
                out = next;
        }
        json_decref(a);
        return out;
}

#define ASSERT_RUN(q, want)                                             \
        do {                                                            \
                _cleanup_free_ char *got_ = run(s, (q), seqs);          \
                assert_string_equal(got_, (want));                      \
        } while (0)

static void test_append_and_filters(void **state)
{
        struct fixture *f = *state;
        struct gv_store *s = open_store(f);
        int64_t seqs[12];
        append_twelve(s, seqs);

        ASSERT_RUN(&((struct gv_store_audit_query){ .limit = 100 }),
                   "11 10 9 8 7 6 5 4 3 2 1 0");
        ASSERT_RUN(&((struct gv_store_audit_query){ .limit = 3 }), "11 10 9");
        ASSERT_RUN(&((struct gv_store_audit_query){ .limit = 100, .principal = "token:bob" }),
                   "10 7 4 1");
        ASSERT_RUN(&((struct gv_store_audit_query){ .limit = 100, .tenant = "acme" }),
                   "10 8 6 4 2 0");
        ASSERT_RUN(&((struct gv_store_audit_query){ .limit = 100, .object = "vm/web-1" }),
                   "9 5 1");
        ASSERT_RUN(&((struct gv_store_audit_query){ .limit = 100, .outcome = "denied" }),
                   "11 8 5 2");
        ASSERT_RUN(&((struct gv_store_audit_query){ .limit = 100, .method = "DELETE" }),
                   "11 7 3");
        /* Together: all must hold. */
        ASSERT_RUN(&((struct gv_store_audit_query){ .limit = 100, .outcome = "denied",
                                                    .tenant = "acme" }),
                   "8 2");
        ASSERT_RUN(&((struct gv_store_audit_query){ .limit = 100, .principal = "token:alice",
                                                    .object = "vm/web-3" }),
                   "3");
        ASSERT_RUN(&((struct gv_store_audit_query){ .limit = 100, .principal = "nobody" }), "");
        /* Time bounds are inclusive, in ms. */
        ASSERT_RUN(&((struct gv_store_audit_query){ .limit = 100, .since_ms = T0 + 9000 }),
                   "11 10 9");
        ASSERT_RUN(&((struct gv_store_audit_query){ .limit = 100, .since_ms = T0 + 8500 }),
                   "11 10 9");
        ASSERT_RUN(&((struct gv_store_audit_query){ .limit = 100, .until_ms = T0 + 2000 }),
                   "2 1 0");
        ASSERT_RUN(&((struct gv_store_audit_query){ .limit = 100, .since_ms = T0 + 3000,
                                                    .until_ms = T0 + 6999 }),
                   "6 5 4 3");
        ASSERT_RUN(&((struct gv_store_audit_query){ .limit = 100, .since_ms = T0 + 3000,
                                                    .until_ms = T0 + 6999,
                                                    .principal = "local:uid=0" }),
                   "5");
        /* Bounds no record meets. */
        ASSERT_RUN(&((struct gv_store_audit_query){ .limit = 100, .since_ms = T0 + 99000 }), "");
        ASSERT_RUN(&((struct gv_store_audit_query){ .limit = 100, .until_ms = T0 - 1 }), "");
        ASSERT_RUN(&((struct gv_store_audit_query){ .limit = 100, .since_ms = T0 + 5000,
                                                    .until_ms = T0 + 4000 }),
                   "");

        /* The record comes back whole, with the store's seq and time. */
        json_t *a = NULL;
        assert_int_equal(gv_store_audit_query(s, &(struct gv_store_audit_query){ .limit = 1 },
                                              &a, NULL),
                         0);
        json_auto_t *want = json_pack("{ss ss ss ss si ss sI sI}", "principal",
                                      "local:uid=0", "object", "vm/web-3", "outcome",
                                      "denied", "method", "DELETE", "status", 403, "path",
                                      "/api/v1/vms", "seq", (json_int_t)seqs[11], "time",
                                      (json_int_t)(T0 + 11000));
        assert_true(json_equal(json_array_get(a, 0), want));
        json_decref(a);
}

static void test_cursor_paging(void **state)
{
        struct fixture *f = *state;
        struct gv_store *s = open_store(f);
        int64_t seqs[12];
        append_twelve(s, seqs);

        /* Pages of 5 of the allowed records (8 of them): 5 then 3, each once. */
        struct gv_store_audit_query q = { .limit = 5, .outcome = "allowed" };
        ASSERT_RUN(&q, "10 9 7 6 4");
        q.before_seq = seqs[4];
        ASSERT_RUN(&q, "3 1 0");
        q.before_seq = seqs[0];
        ASSERT_RUN(&q, "");
        /* A record appended meanwhile does not shift a page already being read. */
        q.before_seq = seqs[4];
        json_auto_t *rec = json_pack("{ss ss}", "principal", "token:alice", "outcome",
                                     "allowed");
        assert_int_equal(gv_store_audit_append(s, rec, 0, NULL, NULL, NULL), 0);
        ASSERT_RUN(&q, "3 1 0");
}

static void test_time_never_decreases(void **state)
{
        struct fixture *f = *state;
        struct gv_store *s = open_store(f);
        /* A record's own seq and time members are the store's business. */
        json_auto_t *rec = json_pack("{ss sI sI}", "principal", "a", "seq", (json_int_t)77,
                                     "time", (json_int_t)5);
        int64_t seq1 = 0, t1 = 0, seq2 = 0, t2 = 0, seq3 = 0, t3 = 0;
        assert_int_equal(gv_store_audit_append(s, rec, 5000, &seq1, &t1, NULL), 0);
        assert_int_equal(t1, 5000);
        assert_true(seq1 != 77);
        /* The clock stepped back: the record keeps the newest time. */
        assert_int_equal(gv_store_audit_append(s, rec, 3000, &seq2, &t2, NULL), 0);
        assert_int_equal(t2, 5000);
        assert_int_equal(seq2, seq1 + 1);
        /* 0: now. */
        assert_int_equal(gv_store_audit_append(s, rec, 0, &seq3, &t3, NULL), 0);
        assert_true(t3 > 1700000000000LL);

        json_t *a = NULL;
        assert_int_equal(gv_store_audit_query(s, &(struct gv_store_audit_query){
                                                         .limit = 10, .until_ms = 5000 },
                                              &a, NULL),
                         0);
        assert_int_equal(json_array_size(a), 2);
        assert_int_equal(json_integer_value(json_object_get(json_array_get(a, 1), "seq")), seq1);
        assert_int_equal(json_integer_value(json_object_get(json_array_get(a, 1), "time")), 5000);
        json_decref(a);
}

static void test_trim(void **state)
{
        struct fixture *f = *state;
        struct gv_store *s = open_store(f);
        int64_t seqs[12];
        append_twelve(s, seqs);

        /* Older than T0+4500: records 0..4, in batches of 2 (2, 2, 1). */
        size_t n = 99;
        assert_int_equal(gv_store_audit_trim(s, T0 + 4500, 2, 0, &n, NULL), 0);
        assert_int_equal(n, 5);
        ASSERT_RUN(&((struct gv_store_audit_query){ .limit = 100 }), "11 10 9 8 7 6 5");
        /* Nothing older is left: a no-op. */
        assert_int_equal(gv_store_audit_trim(s, T0 + 4500, 0, 0, &n, NULL), 0);
        assert_int_equal(n, 0);
        /* At most 1 batch of 2. */
        assert_int_equal(gv_store_audit_trim(s, T0 + 100000, 2, 1, &n, NULL), 0);
        assert_int_equal(n, 2);
        ASSERT_RUN(&((struct gv_store_audit_query){ .limit = 100 }), "11 10 9 8 7");
        /* Everything; numbers are never reused, also across a reopen. */
        assert_int_equal(gv_store_audit_trim(s, T0 + 100000, 0, 0, &n, NULL), 0);
        assert_int_equal(n, 5);
        ASSERT_RUN(&((struct gv_store_audit_query){ .limit = 100 }), "");
        f->s = gv_store_free(s);
        s = open_store(f);
        json_auto_t *rec = json_pack("{ss}", "principal", "a");
        int64_t seq = 0;
        assert_int_equal(gv_store_audit_append(s, rec, 0, &seq, NULL, NULL), 0);
        assert_true(seq > seqs[11]);
}

static void test_bad_arguments(void **state)
{
        struct fixture *f = *state;
        struct gv_store *s = open_store(f);
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        json_auto_t *arr = json_array();
        assert_int_equal(gv_store_audit_append(s, arr, 0, NULL, NULL, &e), -EINVAL);
        assert_string_equal(e->msg, "An audit record must be a JSON object.");
        gv_error_free(e);
        e = NULL;
        json_auto_t *bad = json_pack("{si}", "principal", 7);
        assert_int_equal(gv_store_audit_append(s, bad, 0, NULL, NULL, &e), -EINVAL);
        assert_string_equal(e->msg, "The audit record's 'principal' must be a string or null.");
        gv_error_free(e);
        e = NULL;
        json_auto_t *ok = json_pack("{ss}", "principal", "a");
        assert_int_equal(gv_store_audit_append(s, ok, -1, NULL, NULL, &e), -EINVAL);
        gv_error_free(e);
        e = NULL;
        json_t *a = NULL;
        assert_int_equal(gv_store_audit_query(s, &(struct gv_store_audit_query){ .limit = 0 }, &a,
                                              &e),
                         -EINVAL);
        assert_string_equal(e->msg, "An audit query's limit is 0: give 1 to 10000.");
        gv_error_free(e);
        e = NULL;
        assert_int_equal(gv_store_audit_query(s, &(struct gv_store_audit_query){
                                                         .limit = 10001 },
                                              &a, NULL),
                         -EINVAL);
        assert_int_equal(gv_store_audit_query(s, &(struct gv_store_audit_query){
                                                         .limit = 1, .since_ms = -5 },
                                              &a, NULL),
                         -EINVAL);
        assert_null(a);
        /* Nothing was appended by the refusals. */
        assert_int_equal(gv_store_audit_query(s, &(struct gv_store_audit_query){ .limit = 10 },
                                              &a, NULL),
                         0);
        assert_int_equal(json_array_size(a), 0);
        json_decref(a);
}

/* A database as schema 1 left it (objects and events), with data in both. */
static void test_migrates_schema_1(void **state)
{
        struct fixture *f = *state;
        raw_exec(f->path,
                 "CREATE TABLE objects (kind TEXT NOT NULL, key TEXT NOT NULL, doc TEXT NOT NULL,"
                 " generation INTEGER NOT NULL CHECK (generation >= 1), created_at INTEGER NOT "
                 "NULL, updated_at INTEGER NOT NULL, PRIMARY KEY (kind, key)) STRICT, WITHOUT "
                 "ROWID;"
                 "CREATE TABLE events (seq INTEGER PRIMARY KEY AUTOINCREMENT, time INTEGER NOT "
                 "NULL, type TEXT NOT NULL, subject TEXT NOT NULL, data TEXT) STRICT;"
                 "PRAGMA application_id = 1196447316; PRAGMA user_version = 1;"
                 "INSERT INTO objects VALUES ('vm', 'web-1', '{\"name\":\"web-1\"}', 3, 1, 2);"
                 "INSERT INTO events (time, type, subject, data) VALUES (5, 'vm.created', "
                 "'vm/web-1', NULL);");
        struct gv_store *s = open_store(f);
        int v = 0;
        assert_int_equal(gv_store_schema_version(s, &v, NULL), 0);
        assert_int_equal(v, gv_store_sqlite_schema_newest);
        assert_true(v >= 2);
        struct gv_store_obj o = { 0 };
        assert_int_equal(gv_store_get(s, GV_STORE_VM, "web-1", &o, NULL), 0);
        assert_int_equal(o.generation, 3);
        assert_string_equal(json_string_value(json_object_get(o.doc, "name")), "web-1");
        gv_store_obj_done(&o);
        struct gv_store_event *ev = NULL;
        size_t n = 0;
        assert_int_equal(gv_store_events(s, 0, 10, &ev, &n, NULL), 0);
        assert_int_equal(n, 1);
        assert_string_equal(ev[0].type, "vm.created");
        gv_store_events_free(ev, n);

        json_auto_t *rec = json_pack("{ss ss}", "principal", "token:ops", "outcome", "allowed");
        int64_t seq = 0;
        assert_int_equal(gv_store_audit_append(s, rec, 0, &seq, NULL, NULL), 0);
        assert_int_equal(seq, 1);
        json_t *a = NULL;
        assert_int_equal(gv_store_audit_query(s, &(struct gv_store_audit_query){
                                                         .limit = 10, .principal = "token:ops" },
                                              &a, NULL),
                         0);
        assert_int_equal(json_array_size(a), 1);
        json_decref(a);
        /* Reopening finds it migrated: nothing runs twice. */
        f->s = gv_store_free(s);
        s = open_store(f);
        assert_int_equal(gv_store_schema_version(s, &v, NULL), 0);
        assert_int_equal(v, gv_store_sqlite_schema_newest);
}

static char *plan_of(struct gv_store *s, const struct gv_store_audit_query *q)
{
        char *plan = NULL;
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        int r = gv_store_sqlite_audit_plan(s, q, &plan, &e);
        if (r < 0)
                fail_msg("plan: %s", gv_error_msg(e, r));
        return plan;
}

/* At 100,000 records (written in bulk beside the store), every filter walks an index or the
 * rowid range: no query scans the table or sorts it. */
static void test_plans_at_scale(void **state)
{
        struct fixture *f = *state;
        struct gv_store *s = open_store(f);
        raw_exec(f->path,
                 "BEGIN;"
                 "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < "
                 "100000) INSERT INTO audit (time, principal, tenant, object, outcome, method, "
                 "record) SELECT 1700000000000 + i * 100, 'token:user-' || (i % 50), "
                 "CASE WHEN i % 3 = 0 THEN 'tenant-' || (i % 7) END, 'vm/vm-' || (i % 5000), "
                 "CASE WHEN i % 97 = 0 THEN 'denied' ELSE 'allowed' END, "
                 "CASE WHEN i % 4 = 0 THEN 'DELETE' ELSE 'POST' END, '{}' FROM n;"
                 "COMMIT;");
        static const struct {
                struct gv_store_audit_query q;
                const char *uses;
        } cases[] = {
                { { .limit = 100 }, "SCAN audit" /* backwards over rowids: LIMIT stops it */ },
                { { .limit = 100, .principal = "token:user-7" }, "INDEX audit_principal" },
                { { .limit = 100, .tenant = "tenant-3" }, "INDEX audit_tenant" },
                { { .limit = 100, .object = "vm/vm-42" }, "INDEX audit_object" },
                { { .limit = 100, .outcome = "denied" }, "INDEX audit_outcome" },
                { { .limit = 100, .object = "vm/vm-42", .before_seq = 50000 },
                  "INDEX audit_object (object=? AND rowid<?)" },
                { { .limit = 100, .since_ms = 1700000500000, .until_ms = 1700000600000 },
                  "SEARCH audit USING INTEGER PRIMARY KEY (rowid>? AND rowid<?)" },
        };
        /* As the controller leaves it (no statistics), then after an ANALYZE by hand. */
        for (size_t k = 0; k < 2 * ELEMENTSOF(cases); k++) {
                size_t i = k % ELEMENTSOF(cases);
                if (k == ELEMENTSOF(cases))
                        raw_exec(f->path, "ANALYZE");
                _cleanup_free_ char *plan = plan_of(s, &cases[i].q);
                if (getenv("GPUVIRT_TEST_VERBOSE"))
                        print_message("plan %zu: %s\n", i, plan);
                if (!strstr(plan, cases[i].uses))
                        fail_msg("query %zu: plan '%s' does not use '%s'", i, plan,
                                 cases[i].uses);
                if (strstr(plan, "TEMP B-TREE"))
                        fail_msg("query %zu sorts: '%s'", i, plan);
                if (i > 0 && strstr(plan, "SCAN audit"))
                        fail_msg("query %zu scans the table: '%s'", i, plan);
        }
        /* And the answers are right: the newest record of vm/vm-42 below seq 50000. */
        json_t *a = NULL;
        assert_int_equal(gv_store_audit_query(s, &cases[5].q, &a, NULL), 0);
        assert_int_equal(json_array_size(a), 10); /* 45042, 40042, ..., 42 */
        assert_int_equal(json_integer_value(json_object_get(json_array_get(a, 0), "seq")), 45042);
        json_decref(a);
        assert_int_equal(gv_store_audit_query(s, &cases[6].q, &a, NULL), 0);
        assert_int_equal(json_array_size(a), 100);
        assert_int_equal(json_integer_value(json_object_get(json_array_get(a, 0), "seq")), 6000);
        json_decref(a);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_append_and_filters, setup, teardown),
                cmocka_unit_test_setup_teardown(test_cursor_paging, setup, teardown),
                cmocka_unit_test_setup_teardown(test_time_never_decreases, setup, teardown),
                cmocka_unit_test_setup_teardown(test_trim, setup, teardown),
                cmocka_unit_test_setup_teardown(test_bad_arguments, setup, teardown),
                cmocka_unit_test_setup_teardown(test_migrates_schema_1, setup, teardown),
                cmocka_unit_test_setup_teardown(test_plans_at_scale, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
