/* SPDX-License-Identifier: MIT */
/*
 * The store's contract (src/store/store.h) on the SQLite backend, and its backend-neutral cases
 * again on PostgreSQL when GPUVIRT_TEST_PG_URL names a server (tests/store/run-pg.sh, the meson
 * test store-pg): opening and migrating,
 * compare-and-swap writes, all-or-nothing batches, the event log, concurrency (threads on one
 * connection and on two), corrupt rows, and the PRAGMAs the durability promise rests on.
 * Every test gets its own temporary directory.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <libpq-fe.h>
#include <sqlite3.h>

#include "store/store-priv.h"
#include "store/store.h"
#include "util/alloc.h"
#include "util/fileio.h"
#include "util/json.h"

struct fixture {
        char dir[64];
        char *path; /* dir/gpuvirt.db */
        char *url;  /* sqlite:PATH, or the PostgreSQL server's URL with a schema of the test's */
        struct gv_store *s;
};

/* GPUVIRT_TEST_PG_URL: a PostgreSQL server (tests/store/run-pg.sh starts one with
 * tests/common/pg-server.sh); the backend-neutral cases run on it too, each in a fresh schema
 * (search_path) of its own, as if on a fresh database. */
static const char *pg_url;

static void pg_raw_exec(const char *url, const char *sql)
{
        /* libpq takes "postgresql://..." itself. */
        PGconn *c = PQconnectdb(url);
        if (PQstatus(c) != CONNECTION_OK)
                fail_msg("connect to '%s': %s", url, PQerrorMessage(c));
        PGresult *res = PQexec(c, sql);
        if (PQresultStatus(res) != PGRES_COMMAND_OK && PQresultStatus(res) != PGRES_TUPLES_OK)
                fail_msg("%s: %s", sql, PQerrorMessage(c));
        PQclear(res);
        PQfinish(c);
}

static int setup(void **state)
{
        struct fixture *f = xnew0(struct fixture, 1);
        snprintf(f->dir, sizeof(f->dir), "/tmp/gv-store-XXXXXX");
        if (!mkdtemp(f->dir))
                return -1;
        f->path = gv_path_join(f->dir, "gpuvirt.db");
        f->url = xasprintf("sqlite:%s", f->path);
        *state = f;
        return 0;
}

static int setup_pg(void **state)
{
        static int n;
        int r = setup(state);
        if (r < 0)
                return r;
        struct fixture *f = *state;
        _cleanup_free_ char *schema = xasprintf("t%d_%d", (int)getpid(), ++n);
        _cleanup_free_ char *sql = xasprintf("CREATE SCHEMA %s", schema);
        pg_raw_exec(pg_url, sql);
        free(f->url);
        f->url = xasprintf("%s%coptions=-csearch_path%%3D%s", pg_url,
                           strchr(pg_url, '?') ? '&' : '?', schema);
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

/* Opens f->url into f->s or fails the test with the store's message. */
static struct gv_store *open_store(struct fixture *f)
{
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        int r = gv_store_open(f->url, &f->s, &e);
        if (r < 0)
                fail_msg("open: %s", gv_error_msg(e, r));
        return f->s;
}

static json_t *doc_n(int64_t n)
{
        return json_pack("{sI}", "n", (json_int_t)n);
}

static int64_t doc_get_n(const json_t *doc)
{
        return json_integer_value(json_object_get(doc, "n"));
}

/* Run SQL on the file through a connection of the test's own. */
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

static int64_t raw_int(const char *path, const char *sql)
{
        sqlite3 *db = NULL;
        sqlite3_stmt *st = NULL;
        assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
        assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
        assert_int_equal(sqlite3_step(st), SQLITE_ROW);
        int64_t v = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
        sqlite3_close(db);
        return v;
}

static void test_open_creates_and_migrates(void **state)
{
        struct fixture *f = *state;
        struct gv_store *s = open_store(f);
        assert_string_equal(gv_store_scheme(s), "sqlite");

        struct stat st;
        assert_int_equal(stat(f->path, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0600);
        int v = 0;
        assert_int_equal(gv_store_schema_version(s, &v, NULL), 0);
        assert_true(gv_store_sqlite_schema_newest >= 1);
        assert_int_equal(v, gv_store_sqlite_schema_newest);

        /* The write-ahead log copies the database's mode: token hashes never 0644. */
        json_auto_t *d = doc_n(1);
        assert_int_equal(gv_store_create(s, GV_STORE_TOKEN, "t1", d, NULL, NULL), 0);
        _cleanup_free_ char *wal = xasprintf("%s-wal", f->path);
        assert_int_equal(stat(wal, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0600);

        /* The file says whose it is and which schema it holds. */
        assert_int_equal(raw_int(f->path, "PRAGMA application_id"), 0x47505654);
        assert_int_equal(raw_int(f->path, "PRAGMA user_version"), gv_store_sqlite_schema_newest);
}

static void test_reopen_keeps_data(void **state)
{
        struct fixture *f = *state;
        struct gv_store *s = open_store(f);
        json_auto_t *d = json_pack("{ss si}", "name", "infer-1", "vcpus", 8);
        int64_t g = 0;
        assert_int_equal(gv_store_create(s, GV_STORE_VM, "infer-1", d, &g, NULL), 0);
        assert_int_equal(g, 1);
        assert_int_equal(gv_store_update(s, GV_STORE_VM, "infer-1", d, 1, &g, NULL), 0);
        f->s = gv_store_free(s);

        /* A bare path is SQLite too. */
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        assert_int_equal(gv_store_open(f->path, &f->s, &e), 0);
        struct gv_store_obj o = { 0 };
        assert_int_equal(gv_store_get(f->s, GV_STORE_VM, "infer-1", &o, NULL), 0);
        assert_string_equal(o.key, "infer-1");
        assert_int_equal(o.generation, 2);
        assert_true(json_equal(o.doc, d));
        int v = 0;
        assert_int_equal(gv_store_schema_version(f->s, &v, NULL), 0);
        assert_int_equal(v, gv_store_sqlite_schema_newest);
        gv_store_obj_done(&o);
        assert_null(o.doc);
}

static void test_newer_schema_refused(void **state)
{
        struct fixture *f = *state;
        open_store(f);
        f->s = gv_store_free(f->s);
        raw_exec(f->path, "PRAGMA user_version = 99");

        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        struct gv_store *s = NULL;
        assert_int_equal(gv_store_open(f->url, &s, &e), -EPROTO);
        assert_null(s);
        _cleanup_free_ char *want = xasprintf("The store '%s' was written by a newer gpuvirt "
                                              "(schema 99; this one knows %d): upgrade gpuvirt.",
                                              f->path, gv_store_sqlite_schema_newest);
        assert_string_equal(e->msg, want);
        /* Refused before anything was written. */
        assert_int_equal(raw_int(f->path, "PRAGMA user_version"), 99);
}

static void test_foreign_files_refused(void **state)
{
        struct fixture *f = *state;
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        struct gv_store *s = NULL;

        /* Another application's database is left alone. */
        _cleanup_free_ char *other = gv_path_join(f->dir, "other.db");
        sqlite3 *db = NULL;
        assert_int_equal(sqlite3_open(other, &db), SQLITE_OK);
        assert_int_equal(sqlite3_exec(db, "CREATE TABLE t (x)", NULL, NULL, NULL), SQLITE_OK);
        sqlite3_close(db);
        assert_int_equal(gv_store_open(other, &s, &e), -EINVAL);
        assert_non_null(strstr(e->msg, "of another application"));
        assert_int_equal(raw_int(other, "PRAGMA user_version"), 0);
        e = gv_error_free(e);

        /* Not SQLite at all. */
        _cleanup_free_ char *junk = gv_path_join(f->dir, "junk.db");
        char garbage[4096];
        memset(garbage, 'x', sizeof(garbage) - 1);
        garbage[sizeof(garbage) - 1] = 0;
        assert_int_equal(gv_write_file(junk, garbage, GV_WRITE_CREATE), 0);
        assert_int_equal(gv_store_open(junk, &s, &e), -EINVAL);
        assert_non_null(strstr(e->msg, "is not an SQLite database"));
        assert_null(s);
}

static void test_bad_urls(void **state)
{
        struct fixture *f = *state;
        struct gv_store *s = NULL;
        struct {
                const char *url;
                int r;
                const char *msg;
        } cases[] = {
                { "", -EINVAL, "is empty" },
                { "mysql://db.example/gpuvirt", -EINVAL,
                  "names the scheme 'mysql', which this gpuvirt does not know; known: "
                  "sqlite, postgresql" },
                { "postgresql:gpuvirt", -EINVAL, "is not a PostgreSQL URL" },
                /* No server there: at once, and saying so. */
                { "postgresql:///gpuvirt?host=/nonexistent-gpuvirt-dir", -ENOTCONN,
                  "PostgreSQL server of the store 'postgresql:///gpuvirt?host=/nonexistent-"
                  "gpuvirt-dir' cannot be reached" },
                { "postgres://u:secret@/gpuvirt?host=/nonexistent-gpuvirt-dir", -ENOTCONN,
                  "'postgresql://u:***@/gpuvirt?host=/nonexistent-gpuvirt-dir' cannot be "
                  "reached" },
                { "sqlite:", -EINVAL, "names no location after 'sqlite:'" },
                { "sqlite:/nonexistent-gpuvirt-dir/x.db", -ENOENT, "does not exist" },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_(gv_error_freep) struct gv_error *e = NULL;
                assert_int_equal(gv_store_open(cases[i].url, &s, &e), cases[i].r);
                assert_null(strstr(e->msg, "secret"));
                assert_null(s);
                if (!strstr(e->msg, cases[i].msg))
                        fail_msg("'%s': '%s' lacks '%s'", cases[i].url, e->msg, cases[i].msg);
        }
        assert_int_equal(gv_store_open(NULL, &s, NULL), -EINVAL);

        /* A symbolic link is refused, not followed. */
        _cleanup_free_ char *link = gv_path_join(f->dir, "link.db");
        assert_int_equal(symlink(f->path, link), 0);
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        assert_int_equal(gv_store_open(link, &s, &e), -ELOOP);
        assert_int_equal(access(f->path, F_OK), -1);

        assert_int_equal(gv_store_kind_from_string("vm"), GV_STORE_VM);
        assert_int_equal(gv_store_kind_from_string("idempotency"), GV_STORE_IDEMPOTENCY);
        assert_int_equal(gv_store_kind_from_string("vms"), -EINVAL);
        assert_string_equal(gv_store_kind_to_string(GV_STORE_ALLOC), "alloc");
}

static void test_crud(void **state)
{
        struct fixture *f = *state;
        struct gv_store *s = open_store(f);
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        json_auto_t *d1 = doc_n(1), *d2 = doc_n(2), *d3 = doc_n(3);

        assert_int_equal(gv_store_create(s, GV_STORE_VM, "b", d1, NULL, NULL), 0);
        assert_int_equal(gv_store_create(s, GV_STORE_VM, "a", d2, NULL, NULL), 0);
        assert_int_equal(gv_store_create(s, GV_STORE_VM, "c", d3, NULL, NULL), 0);
        /* The same key in another kind is another object. */
        assert_int_equal(gv_store_create(s, GV_STORE_HOST, "a", d3, NULL, NULL), 0);

        struct gv_store_obj *objs = NULL;
        size_t n = 0;
        assert_int_equal(gv_store_list(s, GV_STORE_VM, &objs, &n, NULL), 0);
        assert_int_equal(n, 3);
        assert_string_equal(objs[0].key, "a");
        assert_string_equal(objs[1].key, "b");
        assert_string_equal(objs[2].key, "c");
        assert_int_equal(doc_get_n(objs[0].doc), 2);
        assert_int_equal(objs[0].generation, 1);
        assert_true(objs[0].created_at > 1700000000000LL);
        assert_int_equal(objs[0].created_at, objs[0].updated_at);
        int64_t created = objs[0].created_at;
        gv_store_objs_free(objs, n);
        assert_int_equal(gv_store_list(s, GV_STORE_IMAGE, &objs, &n, NULL), 0);
        assert_int_equal(n, 0);
        gv_store_objs_free(objs, n);

        /* Update at the generation read: the next one comes back. */
        int64_t g = 0;
        usleep(2000);
        assert_int_equal(gv_store_update(s, GV_STORE_VM, "a", d1, 1, &g, NULL), 0);
        assert_int_equal(g, 2);
        struct gv_store_obj o = { 0 };
        assert_int_equal(gv_store_get(s, GV_STORE_VM, "a", &o, NULL), 0);
        assert_int_equal(o.generation, 2);
        assert_int_equal(doc_get_n(o.doc), 1);
        assert_int_equal(o.created_at, created);
        assert_true(o.updated_at > o.created_at);
        gv_store_obj_done(&o);

        /* A stale generation changes nothing. */
        g = -7;
        assert_int_equal(gv_store_update(s, GV_STORE_VM, "a", d3, 1, &g, &e), -ESTALE);
        assert_int_equal(g, -7);
        assert_string_equal(e->msg, "VM 'a' changed since it was read (generation 1, now 2): "
                                    "re-read and retry.");
        e = gv_error_free(e);
        assert_int_equal(gv_store_get(s, GV_STORE_VM, "a", &o, NULL), 0);
        assert_int_equal(o.generation, 2);
        assert_int_equal(doc_get_n(o.doc), 1);
        gv_store_obj_done(&o);

        /* Create of a taken key. */
        assert_int_equal(gv_store_create(s, GV_STORE_VM, "b", d3, NULL, &e), -EEXIST);
        assert_non_null(strstr(e->msg, "VM 'b' exists already"));
        e = gv_error_free(e);

        /* Delete is a compare-and-swap too. */
        assert_int_equal(gv_store_delete(s, GV_STORE_VM, "a", 1, &e), -ESTALE);
        e = gv_error_free(e);
        assert_int_equal(gv_store_delete(s, GV_STORE_VM, "a", 2, NULL), 0);
        assert_int_equal(gv_store_get(s, GV_STORE_VM, "a", &o, &e), -ENOENT);
        assert_string_equal(e->msg, "VM 'a' does not exist.");
        e = gv_error_free(e);
        assert_null(o.key);
        assert_int_equal(gv_store_update(s, GV_STORE_VM, "a", d1, 2, NULL, &e), -ENOENT);
        assert_non_null(strstr(e->msg, "VM 'a' does not exist"));
        e = gv_error_free(e);
        assert_int_equal(gv_store_delete(s, GV_STORE_VM, "a", 2, NULL), -ENOENT);
        /* The host 'a' was not touched. */
        assert_int_equal(gv_store_get(s, GV_STORE_HOST, "a", &o, NULL), 0);
        gv_store_obj_done(&o);
        /* Deleted and created again: generation starts over. */
        assert_int_equal(gv_store_create(s, GV_STORE_VM, "a", d1, &g, NULL), 0);
        assert_int_equal(g, 1);

        /* PUT: create or replace, no CAS. */
        struct gv_store_write put = { .op = GV_STORE_PUT, .kind = GV_STORE_IDEMPOTENCY,
                                      .key = "k1", .doc = d1 };
        assert_int_equal(gv_store_write(s, &put, 1, NULL), 0);
        assert_int_equal(put.new_generation, 1);
        put.doc = d2;
        assert_int_equal(gv_store_write(s, &put, 1, NULL), 0);
        assert_int_equal(put.new_generation, 2);
        assert_int_equal(gv_store_get(s, GV_STORE_IDEMPOTENCY, "k1", &o, NULL), 0);
        assert_int_equal(doc_get_n(o.doc), 2);
        gv_store_obj_done(&o);
}

static void test_bad_arguments(void **state)
{
        struct fixture *f = *state;
        struct gv_store *s = open_store(f);
        json_auto_t *d = doc_n(1);
        json_auto_t *arr = json_array();
        char long_key[GV_STORE_KEY_MAX + 2];
        memset(long_key, 'k', sizeof(long_key) - 1);
        long_key[sizeof(long_key) - 1] = 0;
        const char *bad[] = { "", "a/b", "tab\there", "caf\xc3\xa9", long_key };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                _cleanup_(gv_error_freep) struct gv_error *e = NULL;
                assert_int_equal(gv_store_create(s, GV_STORE_VM, bad[i], d, NULL, &e), -EINVAL);
                assert_non_null(e);
        }
        long_key[GV_STORE_KEY_MAX] = 0; /* exactly the limit */
        assert_int_equal(gv_store_create(s, GV_STORE_VM, long_key, d, NULL, NULL), 0);
        assert_int_equal(gv_store_create(s, GV_STORE_VM, "x ~!@#$%^&*()", d, NULL, NULL), 0);

        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        assert_int_equal(gv_store_create(s, (enum gv_store_kind)42, "x", d, NULL, &e), -EINVAL);
        assert_non_null(strstr(e->msg, "host, alloc, vm, operation, image, token, idempotency"));
        e = gv_error_free(e);
        assert_int_equal(gv_store_create(s, GV_STORE_VM, "y", NULL, NULL, &e), -EINVAL);
        e = gv_error_free(e);
        assert_int_equal(gv_store_create(s, GV_STORE_VM, "y", arr, NULL, &e), -EINVAL);
        e = gv_error_free(e);
        assert_int_equal(gv_store_update(s, GV_STORE_VM, "x ~!@#$%^&*()", d, 0, NULL, &e),
                         -EINVAL);
        e = gv_error_free(e);
        struct gv_store_write w = { .op = (enum gv_store_op)9, .kind = GV_STORE_VM, .key = "y",
                                    .doc = d };
        assert_int_equal(gv_store_write(s, &w, 1, &e), -EINVAL);
        assert_non_null(strstr(e->msg, "valid are create, update, delete, put"));
        struct gv_store_obj o = { 0 };
        assert_int_equal(gv_store_get(s, GV_STORE_VM, "y", &o, NULL), -ENOENT);
}

static void test_batch_all_or_nothing(void **state)
{
        struct fixture *f = *state;
        struct gv_store *s = open_store(f);
        json_auto_t *d = doc_n(1), *d2 = doc_n(2);
        assert_int_equal(gv_store_create(s, GV_STORE_ALLOC, "node-a", d, NULL, NULL), 0);
        int64_t gb = 0;
        assert_int_equal(gv_store_create(s, GV_STORE_ALLOC, "node-b", d, NULL, NULL), 0);
        assert_int_equal(gv_store_update(s, GV_STORE_ALLOC, "node-b", d, 1, &gb, NULL), 0);

        /* Reserve on node-a, create the VM, and a stale write third: nothing happens. */
        struct gv_store_write w[] = {
                { .op = GV_STORE_UPDATE, .kind = GV_STORE_ALLOC, .key = "node-a", .doc = d2,
                  .generation = 1 },
                { .op = GV_STORE_CREATE, .kind = GV_STORE_VM, .key = "vm-1", .doc = d2 },
                { .op = GV_STORE_UPDATE, .kind = GV_STORE_ALLOC, .key = "node-b", .doc = d2,
                  .generation = 1 },
        };
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        assert_int_equal(gv_store_write(s, w, ELEMENTSOF(w), &e), -ESTALE);
        assert_string_equal(e->msg, "The allocation of host 'node-b' changed since it was read "
                                    "(generation 1, now 2): re-read and retry.");
        for (size_t i = 0; i < ELEMENTSOF(w); i++)
                assert_int_equal(w[i].new_generation, 0);
        struct gv_store_obj o = { 0 };
        assert_int_equal(gv_store_get(s, GV_STORE_ALLOC, "node-a", &o, NULL), 0);
        assert_int_equal(o.generation, 1);
        assert_int_equal(doc_get_n(o.doc), 1);
        gv_store_obj_done(&o);
        assert_int_equal(gv_store_get(s, GV_STORE_VM, "vm-1", &o, NULL), -ENOENT);

        /* The same batch at the right generation commits every item. */
        w[2].generation = gb;
        assert_int_equal(gv_store_write(s, w, ELEMENTSOF(w), NULL), 0);
        assert_int_equal(w[0].new_generation, 2);
        assert_int_equal(w[1].new_generation, 1);
        assert_int_equal(w[2].new_generation, 3);
        assert_int_equal(gv_store_get(s, GV_STORE_VM, "vm-1", &o, NULL), 0);
        gv_store_obj_done(&o);

        /* A taken key in the middle undoes the first item (-EEXIST), a missing one -ENOENT. */
        struct gv_store_write w2[] = {
                { .op = GV_STORE_DELETE, .kind = GV_STORE_VM, .key = "vm-1", .generation = 1 },
                { .op = GV_STORE_CREATE, .kind = GV_STORE_ALLOC, .key = "node-a", .doc = d },
        };
        assert_int_equal(gv_store_write(s, w2, ELEMENTSOF(w2), NULL), -EEXIST);
        assert_int_equal(gv_store_get(s, GV_STORE_VM, "vm-1", &o, NULL), 0);
        gv_store_obj_done(&o);
        w2[1] = (struct gv_store_write){ .op = GV_STORE_DELETE, .kind = GV_STORE_VM,
                                         .key = "vm-2", .generation = 1 };
        assert_int_equal(gv_store_write(s, w2, ELEMENTSOF(w2), NULL), -ENOENT);
        assert_int_equal(gv_store_get(s, GV_STORE_VM, "vm-1", &o, NULL), 0);
        gv_store_obj_done(&o);
}

static void test_events(void **state)
{
        struct fixture *f = *state;
        struct gv_store *s = open_store(f);
        json_auto_t *d = doc_n(1);
        json_auto_t *data = json_pack("{ss}", "host", "node-a");
        struct gv_store_event ev[2] = {
                { .type = "vm.created", .subject = "vm/x", .data = data },
                { .type = "host.reserved", .subject = "host/node-a", .time = 1234 },
        };

        /* A failed batch tells no event. */
        struct gv_store_write w = { .op = GV_STORE_UPDATE, .kind = GV_STORE_VM, .key = "x",
                                    .doc = d, .generation = 1 };
        assert_int_equal(gv_store_write_events(s, &w, 1, ev, 2, NULL), -ENOENT);
        struct gv_store_event *got = NULL;
        size_t n = 99;
        assert_int_equal(gv_store_events(s, 0, 100, &got, &n, NULL), 0);
        assert_int_equal(n, 0);
        gv_store_events_free(got, n);

        w.op = GV_STORE_CREATE;
        assert_int_equal(gv_store_write_events(s, &w, 1, ev, 2, NULL), 0);
        assert_int_equal(w.new_generation, 1);
        assert_int_equal(gv_store_events(s, 0, 100, &got, &n, NULL), 0);
        assert_int_equal(n, 2);
        assert_string_equal(got[0].type, "vm.created");
        assert_string_equal(got[0].subject, "vm/x");
        assert_true(json_equal(got[0].data, data));
        assert_true(got[0].time > 1700000000000LL); /* 0: stamped now */
        assert_string_equal(got[1].type, "host.reserved");
        assert_int_equal(got[1].time, 1234);
        assert_true(json_is_null(got[1].data));
        assert_true(got[1].seq > got[0].seq);
        gv_store_events_free(got, n);

        /* Events alone; then page through all ten, three at a time. */
        for (int i = 0; i < 8; i++) {
                char subject[32];
                snprintf(subject, sizeof(subject), "operation/%d", i);
                struct gv_store_event one = { .type = "operation.progress", .subject = subject };
                assert_int_equal(gv_store_write_events(s, NULL, 0, &one, 1, NULL), 0);
        }
        int64_t after = 0, last = 0;
        size_t total = 0, pages = 0;
        for (;;) {
                assert_int_equal(gv_store_events(s, after, 3, &got, &n, NULL), 0);
                if (n == 0)
                        break;
                assert_true(n <= 3);
                for (size_t i = 0; i < n; i++) {
                        assert_true(got[i].seq > last);
                        last = got[i].seq;
                }
                after = got[n - 1].seq;
                total += n;
                pages++;
                gv_store_events_free(got, n);
        }
        assert_int_equal(total, 10);
        assert_int_equal(pages, 4);

        /* Trim keeps the newest three. */
        assert_int_equal(gv_store_events_trim(s, 3, NULL), 0);
        assert_int_equal(gv_store_events(s, 0, 100, &got, &n, NULL), 0);
        assert_int_equal(n, 3);
        assert_int_equal(got[2].seq, last);
        assert_string_equal(got[0].subject, "operation/5");
        assert_string_equal(got[2].subject, "operation/7");
        gv_store_events_free(got, n);
        assert_int_equal(gv_store_events_trim(s, 3, NULL), 0); /* idempotent */
        assert_int_equal(gv_store_events(s, 0, 100, &got, &n, NULL), 0);
        assert_int_equal(n, 3);
        gv_store_events_free(got, n);

        /* Trimmed to nothing, numbers still never go back (a resuming reader skips nothing). */
        assert_int_equal(gv_store_events_trim(s, 0, NULL), 0);
        assert_int_equal(gv_store_events(s, 0, 100, &got, &n, NULL), 0);
        assert_int_equal(n, 0);
        gv_store_events_free(got, n);
        f->s = gv_store_free(s);
        s = open_store(f);
        struct gv_store_event one = { .type = "vm.deleted", .subject = "vm/x" };
        assert_int_equal(gv_store_write_events(s, NULL, 0, &one, 1, NULL), 0);
        assert_int_equal(gv_store_events(s, last, 100, &got, &n, NULL), 0);
        assert_int_equal(n, 1);
        assert_true(got[0].seq > last);
        gv_store_events_free(got, n);

        /* Bad events are refused before the batch runs. */
        struct gv_store_event bad = { .type = "", .subject = "vm/x" };
        w = (struct gv_store_write){ .op = GV_STORE_CREATE, .kind = GV_STORE_VM, .key = "z",
                                     .doc = d };
        assert_int_equal(gv_store_write_events(s, &w, 1, &bad, 1, NULL), -EINVAL);
        struct gv_store_obj o = { 0 };
        assert_int_equal(gv_store_get(s, GV_STORE_VM, "z", &o, NULL), -ENOENT);
        assert_int_equal(gv_store_events(s, -1, 10, &got, &n, NULL), -EINVAL);
}

/* Concurrency: threads on two connections to one file. */
struct counter_arg {
        struct gv_store *s;
        int rounds;
        int stale;  /* out: -ESTALE retries seen */
        int failed; /* out: other errors */
};

static void *counter_thread(void *p)
{
        struct counter_arg *a = p;
        for (int i = 0; i < a->rounds; i++) {
                for (;;) {
                        struct gv_store_obj o = { 0 };
                        if (gv_store_get(a->s, GV_STORE_ALLOC, "counter", &o, NULL) < 0) {
                                a->failed++;
                                break;
                        }
                        json_t *d = doc_n(doc_get_n(o.doc) + 1);
                        int r = gv_store_update(a->s, GV_STORE_ALLOC, "counter", d, o.generation,
                                                NULL, NULL);
                        json_decref(d);
                        gv_store_obj_done(&o);
                        if (r == -ESTALE) {
                                a->stale++;
                                continue;
                        }
                        if (r < 0)
                                a->failed++;
                        break;
                }
        }
        return NULL;
}

static void test_concurrent_cas(void **state)
{
        struct fixture *f = *state;
        struct gv_store *s1 = open_store(f);
        struct gv_store *s2 = NULL;
        assert_int_equal(gv_store_open(f->url, &s2, NULL), 0);
        json_auto_t *d = doc_n(0);
        assert_int_equal(gv_store_create(s1, GV_STORE_ALLOC, "counter", d, NULL, NULL), 0);

        struct counter_arg args[4];
        pthread_t th[4];
        for (int i = 0; i < 4; i++) {
                args[i] = (struct counter_arg){ .s = i % 2 ? s2 : s1, .rounds = 200 };
                assert_int_equal(pthread_create(&th[i], NULL, counter_thread, &args[i]), 0);
        }
        int stale = 0;
        for (int i = 0; i < 4; i++) {
                pthread_join(th[i], NULL);
                assert_int_equal(args[i].failed, 0);
                stale += args[i].stale;
        }
        struct gv_store_obj o = { 0 };
        assert_int_equal(gv_store_get(s2, GV_STORE_ALLOC, "counter", &o, NULL), 0);
        assert_int_equal(doc_get_n(o.doc), 800); /* no lost update */
        assert_int_equal(o.generation, 801);
        gv_store_obj_done(&o);
        print_message("# 800 increments, %d stale reads retried\n", stale);
        gv_store_free(s2);
}

struct race_arg {
        struct gv_store *s;
        pthread_barrier_t *barrier;
        const char *key;
        int r;
};

static void *race_thread(void *p)
{
        struct race_arg *a = p;
        json_t *d = doc_n((int64_t)(uintptr_t)a);
        pthread_barrier_wait(a->barrier);
        a->r = gv_store_create(a->s, GV_STORE_VM, a->key, d, NULL, NULL);
        json_decref(d);
        return NULL;
}

static void test_create_race(void **state)
{
        struct fixture *f = *state;
        struct gv_store *s1 = open_store(f);
        struct gv_store *s2 = NULL;
        assert_int_equal(gv_store_open(f->url, &s2, NULL), 0);
        for (int round = 0; round < 20; round++) {
                char key[32];
                snprintf(key, sizeof(key), "race-%d", round);
                pthread_barrier_t barrier;
                pthread_barrier_init(&barrier, NULL, 2);
                struct race_arg a[2] = { { .s = s1, .barrier = &barrier, .key = key },
                                         { .s = round % 2 ? s1 : s2, .barrier = &barrier,
                                           .key = key } };
                pthread_t th[2];
                for (int i = 0; i < 2; i++)
                        assert_int_equal(pthread_create(&th[i], NULL, race_thread, &a[i]), 0);
                for (int i = 0; i < 2; i++)
                        pthread_join(th[i], NULL);
                pthread_barrier_destroy(&barrier);
                /* Exactly one wins; the other is told the key is taken. */
                assert_true((a[0].r == 0 && a[1].r == -EEXIST) ||
                            (a[0].r == -EEXIST && a[1].r == 0));
                struct gv_store_obj o = { 0 };
                assert_int_equal(gv_store_get(s2, GV_STORE_VM, key, &o, NULL), 0);
                assert_int_equal(o.generation, 1);
                assert_int_equal(doc_get_n(o.doc),
                                 (int64_t)(uintptr_t)(a[0].r == 0 ? &a[0] : &a[1]));
                gv_store_obj_done(&o);
        }
        gv_store_free(s2);
}

struct open_arg {
        const char *url;
        int r;
        int version;
};

static void *open_thread(void *p)
{
        struct open_arg *a = p;
        struct gv_store *s = NULL;
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        a->r = gv_store_open(a->url, &s, &e);
        if (a->r == 0)
                a->r = gv_store_schema_version(s, &a->version, &e);
        if (e)
                fprintf(stderr, "# open: %s\n", e->msg);
        gv_store_free(s);
        return NULL;
}

/* Processes starting at once on a fresh file: all open, each step applied once. Twenty fresh
 * files, eight openers each, so the race on the first write (the WAL switch, the header read
 * against another's first migration step) is met, not hoped for. */
#define OPEN_ROUNDS 20
#define OPENERS 8
static void test_concurrent_open(void **state)
{
        struct fixture *f = *state;
        for (int round = 0; round < OPEN_ROUNDS; round++) {
                _cleanup_free_ char *path = xasprintf("%s/race-%d.db", f->dir, round);
                _cleanup_free_ char *url = xasprintf("sqlite:%s", path);
                struct open_arg a[OPENERS];
                pthread_t th[OPENERS];
                for (int i = 0; i < OPENERS; i++) {
                        a[i] = (struct open_arg){ .url = url };
                        assert_int_equal(pthread_create(&th[i], NULL, open_thread, &a[i]), 0);
                }
                for (int i = 0; i < OPENERS; i++) /* all joined before an assert leaves */
                        pthread_join(th[i], NULL);
                for (int i = 0; i < OPENERS; i++) {
                        assert_int_equal(a[i].r, 0);
                        assert_int_equal(a[i].version, gv_store_sqlite_schema_newest);
                }
        }
}

static void test_corrupt_row(void **state)
{
        struct fixture *f = *state;
        struct gv_store *s = open_store(f);
        json_auto_t *d = doc_n(1);
        assert_int_equal(gv_store_create(s, GV_STORE_VM, "good", d, NULL, NULL), 0);
        assert_int_equal(gv_store_create(s, GV_STORE_VM, "broken", d, NULL, NULL), 0);
        raw_exec(f->path, "UPDATE objects SET doc = '{\"n\": 1' WHERE key = 'broken'");

        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        struct gv_store_obj o = { 0 };
        assert_int_equal(gv_store_get(s, GV_STORE_VM, "broken", &o, &e), -EIO);
        assert_non_null(strstr(e->msg, "corrupt document for vm 'broken'"));
        assert_non_null(strstr(e->msg, f->path));
        assert_null(o.doc);
        e = gv_error_free(e);
        struct gv_store_obj *objs = NULL;
        size_t n = 0;
        assert_int_equal(gv_store_list(s, GV_STORE_VM, &objs, &n, &e), -EIO);
        assert_non_null(strstr(e->msg, "vm 'broken'"));
        assert_null(objs);
        e = gv_error_free(e);
        /* The other rows still read. */
        assert_int_equal(gv_store_get(s, GV_STORE_VM, "good", &o, NULL), 0);
        gv_store_obj_done(&o);

        /* Valid JSON that is not an object is corrupt too. */
        raw_exec(f->path, "UPDATE objects SET doc = '[1,2]' WHERE key = 'broken'");
        assert_int_equal(gv_store_get(s, GV_STORE_VM, "broken", &o, &e), -EIO);
        assert_non_null(strstr(e->msg, "not a JSON object"));
        e = gv_error_free(e);

        /* A corrupt event. */
        raw_exec(f->path, "INSERT INTO events (time, type, subject, data) "
                          "VALUES (1, 'vm.created', 'vm/x', '{oops')");
        struct gv_store_event *ev = NULL;
        assert_int_equal(gv_store_events(s, 0, 10, &ev, &n, &e), -EIO);
        assert_non_null(strstr(e->msg, "corrupt data in event 1"));
}

static void test_pragmas(void **state)
{
        struct fixture *f = *state;
        struct gv_store *s = open_store(f);
        struct {
                const char *name, *want;
        } cases[] = {
                { "journal_mode", "wal" },
                { "synchronous", "2" }, /* FULL */
                { "foreign_keys", "1" },
                { "busy_timeout", "10000" },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_free_ char *v = NULL;
                assert_int_equal(gv_store_sqlite_pragma(s, cases[i].name, &v, NULL), 0);
                if (strcmp(v, cases[i].want) != 0)
                        fail_msg("PRAGMA %s is '%s', want '%s'", cases[i].name, v,
                                 cases[i].want);
        }
        char *v = NULL;
        assert_int_equal(gv_store_sqlite_pragma(s, "user_version; DROP TABLE objects", &v, NULL),
                         -EINVAL);
        assert_null(v);
        /* WAL is a property of the file: another connection sees it too. */
        sqlite3 *db = NULL;
        sqlite3_stmt *st = NULL;
        assert_int_equal(sqlite3_open_v2(f->path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
        assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, NULL), SQLITE_OK);
        assert_int_equal(sqlite3_step(st), SQLITE_ROW);
        assert_string_equal((const char *)sqlite3_column_text(st, 0), "wal");
        sqlite3_finalize(st);
        sqlite3_close(db);
}

/* The change counter: our own commits and another process's move it, reads do not. */
static void test_version(void **state)
{
        struct fixture *f = *state;
        struct gv_store *s = open_store(f);
        int64_t v0 = 0, v = 0;
        assert_int_equal(gv_store_version(s, &v0, NULL), 0);
        assert_true(v0 >= 1);

        json_auto_t *d = doc_n(1);
        struct gv_store_obj o = { 0 };
        assert_int_equal(gv_store_get(s, GV_STORE_VM, "nope", &o, NULL), -ENOENT);
        assert_int_equal(gv_store_version(s, &v, NULL), 0);
        assert_int_equal(v, v0);

        assert_int_equal(gv_store_create(s, GV_STORE_VM, "a", d, NULL, NULL), 0);
        assert_int_equal(gv_store_version(s, &v, NULL), 0);
        assert_true(v > v0);
        v0 = v;
        /* A failed write (stale) changes nothing. */
        assert_int_equal(gv_store_update(s, GV_STORE_VM, "a", d, 7, NULL, NULL), -ESTALE);
        assert_int_equal(gv_store_version(s, &v, NULL), 0);
        assert_int_equal(v, v0);
        json_auto_t *rec = json_pack("{ss}", "principal", "alice");
        assert_int_equal(gv_store_audit_append(s, rec, 0, NULL, NULL, NULL), 0);
        assert_int_equal(gv_store_version(s, &v, NULL), 0);
        assert_true(v > v0);
        v0 = v;

        /* Another process commits: an event, then a document. */
        for (int round = 0; round < 2; round++) {
                pid_t pid = fork();
                assert_true(pid >= 0);
                if (pid == 0) {
                        struct gv_store *c = NULL;
                        if (gv_store_open(f->url, &c, NULL) < 0)
                                _exit(2);
                        struct gv_store_event ev = { .type = "vm.created", .subject = "vm/b" };
                        int r = round == 0 ? gv_store_write_events(c, NULL, 0, &ev, 1, NULL)
                                           : gv_store_create(c, GV_STORE_VM, "b", d, NULL, NULL);
                        gv_store_free(c);
                        _exit(r < 0 ? 1 : 0);
                }
                int status = 0;
                assert_int_equal(waitpid(pid, &status, 0), pid);
                assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
                assert_int_equal(gv_store_version(s, &v, NULL), 0);
                assert_true(v > v0);
                v0 = v;
                /* Read again with nothing new: unchanged. */
                assert_int_equal(gv_store_version(s, &v, NULL), 0);
                assert_int_equal(v, v0);
        }

        /* A second connection in this process sees the first one's commits. */
        struct gv_store *s2 = NULL;
        assert_int_equal(gv_store_open(f->url, &s2, NULL), 0);
        int64_t w0 = 0, w = 0;
        assert_int_equal(gv_store_version(s2, &w0, NULL), 0);
        assert_int_equal(gv_store_delete(s, GV_STORE_VM, "b", 1, NULL), 0);
        assert_int_equal(gv_store_version(s2, &w, NULL), 0);
        assert_true(w > w0);
        gv_store_free(s2);
}

struct locked_write_arg {
        struct gv_store *s;
        int r;
        int done; /* atomic */
};

static void *locked_write_thread(void *p)
{
        struct locked_write_arg *a = p;
        json_t *d = doc_n(2);
        a->r = gv_store_create(a->s, GV_STORE_VM, "b", d, NULL, NULL);
        json_decref(d);
        __atomic_store_n(&a->done, 1, __ATOMIC_SEQ_CST);
        return NULL;
}

/* Another process holds the write lock: our write waits out the busy timeout (holding the
 * writer's connection), and reads go on meanwhile through the reader connection (reliability.md
 * R12: "reads still work"). With one connection the read would wait until the write gave up
 * or got the lock, so `done` would be set when it returns. */
static void test_reads_while_locked(void **state)
{
        struct fixture *f = *state;
        struct gv_store *s = open_store(f);
        json_auto_t *d = doc_n(1);
        assert_int_equal(gv_store_create(s, GV_STORE_VM, "a", d, NULL, NULL), 0);

        sqlite3 *db = NULL;
        assert_int_equal(sqlite3_open_v2(f->path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
        assert_int_equal(sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);

        struct locked_write_arg a = { .s = s };
        pthread_t th;
        assert_int_equal(pthread_create(&th, NULL, locked_write_thread, &a), 0);
        /* Let the write reach the lock (it then waits up to the 10 s busy timeout). */
        nanosleep(&(struct timespec){ .tv_nsec = 300 * 1000000L }, NULL);

        struct gv_store_obj o = { 0 };
        assert_int_equal(gv_store_get(s, GV_STORE_VM, "a", &o, NULL), 0);
        assert_int_equal(doc_get_n(o.doc), 1);
        gv_store_obj_done(&o);
        struct gv_store_obj *v = NULL;
        size_t n = 0;
        assert_int_equal(gv_store_list(s, GV_STORE_VM, &v, &n, NULL), 0);
        assert_int_equal(n, 1);
        gv_store_objs_free(v, n);
        struct gv_store_event *ev = NULL;
        assert_int_equal(gv_store_events(s, 0, 10, &ev, &n, NULL), 0);
        gv_store_events_free(ev, n);
        int64_t ver = 0;
        assert_int_equal(gv_store_version(s, &ver, NULL), 0);
        /* Every read answered while the write still waits. */
        assert_int_equal(__atomic_load_n(&a.done, __ATOMIC_SEQ_CST), 0);

        /* The lock let go: the write that waited goes through, and is read back. */
        assert_int_equal(sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
        sqlite3_close(db);
        pthread_join(th, NULL);
        assert_int_equal(a.r, 0);
        assert_int_equal(gv_store_get(s, GV_STORE_VM, "b", &o, NULL), 0);
        gv_store_obj_done(&o);
        int64_t ver2 = 0;
        assert_int_equal(gv_store_version(s, &ver2, NULL), 0);
        assert_true(ver2 > ver);
}

/* The cases that hold on every backend, run again on PostgreSQL. */
static const struct CMUnitTest pg_tests[] = {
        cmocka_unit_test_setup_teardown(test_crud, setup_pg, teardown),
        cmocka_unit_test_setup_teardown(test_bad_arguments, setup_pg, teardown),
        cmocka_unit_test_setup_teardown(test_batch_all_or_nothing, setup_pg, teardown),
        cmocka_unit_test_setup_teardown(test_events, setup_pg, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_cas, setup_pg, teardown),
        cmocka_unit_test_setup_teardown(test_create_race, setup_pg, teardown),
        cmocka_unit_test_setup_teardown(test_version, setup_pg, teardown),
};

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_open_creates_and_migrates, setup, teardown),
                cmocka_unit_test_setup_teardown(test_reopen_keeps_data, setup, teardown),
                cmocka_unit_test_setup_teardown(test_newer_schema_refused, setup, teardown),
                cmocka_unit_test_setup_teardown(test_foreign_files_refused, setup, teardown),
                cmocka_unit_test_setup_teardown(test_bad_urls, setup, teardown),
                cmocka_unit_test_setup_teardown(test_crud, setup, teardown),
                cmocka_unit_test_setup_teardown(test_bad_arguments, setup, teardown),
                cmocka_unit_test_setup_teardown(test_batch_all_or_nothing, setup, teardown),
                cmocka_unit_test_setup_teardown(test_events, setup, teardown),
                cmocka_unit_test_setup_teardown(test_concurrent_cas, setup, teardown),
                cmocka_unit_test_setup_teardown(test_create_race, setup, teardown),
                cmocka_unit_test_setup_teardown(test_concurrent_open, setup, teardown),
                cmocka_unit_test_setup_teardown(test_corrupt_row, setup, teardown),
                cmocka_unit_test_setup_teardown(test_pragmas, setup, teardown),
                cmocka_unit_test_setup_teardown(test_version, setup, teardown),
                cmocka_unit_test_setup_teardown(test_reads_while_locked, setup, teardown),
        };
        pg_url = getenv("GPUVIRT_TEST_PG_URL");
        if (pg_url && *pg_url)
                return cmocka_run_group_tests_name("postgresql", pg_tests, NULL, NULL);
        return cmocka_run_group_tests_name("sqlite", tests, NULL, NULL);
}
