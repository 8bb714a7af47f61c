/* SPDX-License-Identifier: MIT */
/*
 * What only the PostgreSQL backend (src/store/store-pg.c) has to get right, on a real server
 * started by tests/store/run-pg.sh (GPUVIRT_TEST_PG_URL, GPUVIRT_TEST_PG_DIR and
 * GPUVIRT_TEST_PG_SERVER: tests/common/pg-server.sh): schema and migrations taken once by
 * several processes opening a fresh database at once; two connections racing the same
 * compare-and-swap under SERIALIZABLE (exactly one wins, the other -ESTALE, never both); the
 * server stopped (-ENOTCONN quickly, nothing applied), started again (the next call works),
 * and event sequence numbers never reused across a crash of the server; a connection cut right
 * after COMMIT was sent (-EIO, outcome unknown, applied once and never twice).
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <libpq-fe.h>

#include "store/store-priv.h"
#include "store/store.h"
#include "util/alloc.h"
#include "util/json.h"

static const char *pg_url, *pg_dir, *pg_server;

struct fixture {
        char *url; /* pg_url with a fresh schema of the test's own */
        char *schema;
        struct gv_store *s;
};

static PGconn *raw_connect(void)
{
        PGconn *c = PQconnectdb(pg_url);
        if (PQstatus(c) != CONNECTION_OK)
                fail_msg("connect to '%s': %s", pg_url, PQerrorMessage(c));
        return c;
}

/* The first column of the first row of sql in schema, as a number. */
static int64_t raw_int(const char *schema, const char *sql)
{
        PGconn *c = raw_connect();
        _cleanup_free_ char *set = xasprintf("SET search_path = %s", schema);
        PQclear(PQexec(c, set));
        PGresult *res = PQexec(c, sql);
        if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) < 1)
                fail_msg("%s: %s", sql, PQerrorMessage(c));
        int64_t v = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
        PQclear(res);
        PQfinish(c);
        return v;
}

static void raw_exec(const char *sql)
{
        PGconn *c = raw_connect();
        PGresult *res = PQexec(c, sql);
        if (PQresultStatus(res) != PGRES_COMMAND_OK && PQresultStatus(res) != PGRES_TUPLES_OK)
                fail_msg("%s: %s", sql, PQerrorMessage(c));
        PQclear(res);
        PQfinish(c);
}

static int setup(void **state)
{
        static int n;
        struct fixture *f = xnew0(struct fixture, 1);
        f->schema = xasprintf("p%d_%d", (int)getpid(), ++n);
        _cleanup_free_ char *sql = xasprintf("CREATE SCHEMA %s", f->schema);
        raw_exec(sql);
        f->url = xasprintf("%s%coptions=-csearch_path%%3D%s", pg_url,
                           strchr(pg_url, '?') ? '&' : '?', f->schema);
        *state = f;
        return 0;
}

static int teardown(void **state)
{
        struct fixture *f = *state;
        gv_store_free(f->s);
        free(f->url);
        free(f->schema);
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

static int64_t mono_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void server(const char *verb, const char *mode)
{
        _cleanup_free_ char *cmd = xasprintf("'%s' %s '%s' %s >/dev/null", pg_server, verb,
                                             pg_dir, mode ? mode : "");
        if (system(cmd) != 0)
                fail_msg("%s failed", cmd);
}

/* Eight processes open the fresh schema at once: every one succeeds (a step applied twice
 * would fail on CREATE TABLE) and the schema ends at the newest version, one row. */
static void test_concurrent_first_open(void **state)
{
        struct fixture *f = *state;
        enum { N = 8 };
        pid_t pid[N];
        int go[2];
        assert_int_equal(pipe(go), 0);
        for (int i = 0; i < N; i++) {
                pid[i] = fork();
                assert_true(pid[i] >= 0);
                if (pid[i] == 0) {
                        close(go[1]);
                        char c;
                        if (read(go[0], &c, 1) < 0)
                                _exit(3);
                        struct gv_store *s = NULL;
                        int r = gv_store_open(f->url, &s, NULL);
                        int v = 0;
                        if (r >= 0)
                                r = gv_store_schema_version(s, &v, NULL);
                        gv_store_free(s);
                        _exit(r < 0 ? 1 : v == gv_store_pg_schema_newest ? 0 : 2);
                }
        }
        close(go[0]);
        close(go[1]); /* everyone starts */
        for (int i = 0; i < N; i++) {
                int st = 0;
                assert_int_equal(waitpid(pid[i], &st, 0), pid[i]);
                assert_true(WIFEXITED(st));
                assert_int_equal(WEXITSTATUS(st), 0);
        }
        assert_int_equal(raw_int(f->schema, "SELECT count(*) FROM gpuvirt_schema"), 1);
        assert_int_equal(raw_int(f->schema, "SELECT version FROM gpuvirt_schema"),
                         gv_store_pg_schema_newest);

        /* A newer schema is refused, naming it. */
        _cleanup_free_ char *sql = xasprintf("UPDATE %s.gpuvirt_schema SET version = 99",
                                             f->schema);
        raw_exec(sql);
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        assert_int_equal(gv_store_open(f->url, &f->s, &e), -EPROTO);
        assert_non_null(strstr(e->msg, "schema 99"));
}

struct racer {
        struct gv_store *s;
        pthread_barrier_t *barrier;
        int64_t generation;
        int r;
};

static void *racer_thread(void *p)
{
        struct racer *a = p;
        json_t *d = json_pack("{sI}", "by", (json_int_t)(uintptr_t)a);
        pthread_barrier_wait(a->barrier);
        /* A batch of two, both at the generation read: the second item makes the
         * transactions overlap on more than one row. */
        struct gv_store_write w[] = {
                { .op = GV_STORE_UPDATE, .kind = GV_STORE_ALLOC, .key = "node-a", .doc = d,
                  .generation = a->generation },
                { .op = GV_STORE_UPDATE, .kind = GV_STORE_VM, .key = "vm", .doc = d,
                  .generation = a->generation },
        };
        a->r = gv_store_write(a->s, w, 2, NULL);
        json_decref(d);
        return NULL;
}

/* Two connections race the same compare-and-swap, round after round: exactly one wins, the
 * other is -ESTALE (its serialization failure retried and then refused by the CAS). */
static void test_cas_race(void **state)
{
        struct fixture *f = *state;
        struct gv_store *s1 = open_store(f), *s2 = NULL;
        assert_int_equal(gv_store_open(f->url, &s2, NULL), 0);
        json_auto_t *d = json_object();
        assert_int_equal(gv_store_create(s1, GV_STORE_ALLOC, "node-a", d, NULL, NULL), 0);
        assert_int_equal(gv_store_create(s1, GV_STORE_VM, "vm", d, NULL, NULL), 0);
        int64_t gen = 1;
        for (int round = 0; round < 30; round++) {
                pthread_barrier_t b;
                pthread_barrier_init(&b, NULL, 2);
                struct racer r[2] = { { .s = s1, .barrier = &b, .generation = gen },
                                      { .s = s2, .barrier = &b, .generation = gen } };
                pthread_t th[2];
                for (int i = 0; i < 2; i++)
                        assert_int_equal(pthread_create(&th[i], NULL, racer_thread, &r[i]), 0);
                for (int i = 0; i < 2; i++)
                        pthread_join(th[i], NULL);
                pthread_barrier_destroy(&b);
                int wins = (r[0].r == 0) + (r[1].r == 0);
                if (wins != 1 || (r[0].r != 0 && r[0].r != -ESTALE) ||
                    (r[1].r != 0 && r[1].r != -ESTALE))
                        fail_msg("round %d: results %d and %d", round, r[0].r, r[1].r);
                gen++;
                struct gv_store_obj o = { 0 };
                assert_int_equal(gv_store_get(s2, GV_STORE_ALLOC, "node-a", &o, NULL), 0);
                assert_int_equal(o.generation, gen); /* one write, not two */
                gv_store_obj_done(&o);
        }
        gv_store_free(s2);
}

/* The server stops: calls fail fast with -ENOTCONN and nothing is applied; it starts again
 * (after a crash, immediate mode): the same store works, and event numbers go on upwards. */
static void test_server_down_and_back(void **state)
{
        struct fixture *f = *state;
        struct gv_store *s = open_store(f);
        json_auto_t *d = json_object();
        struct gv_store_event ev = { .type = "vm.created", .subject = "vm/a" };
        assert_int_equal(gv_store_write_events(s, NULL, 0, &ev, 1, NULL), 0);
        assert_int_equal(gv_store_write_events(s, NULL, 0, &ev, 1, NULL), 0);
        struct gv_store_event *e = NULL;
        size_t n = 0;
        assert_int_equal(gv_store_events(s, 0, 10, &e, &n, NULL), 0);
        assert_int_equal(n, 2);
        int64_t last = e[1].seq;
        gv_store_events_free(e, n);

        server("stop", "immediate");
        int64_t t0 = mono_ms();
        _cleanup_(gv_error_freep) struct gv_error *err = NULL;
        int r = gv_store_create(s, GV_STORE_VM, "lost", d, NULL, &err);
        if (r != -ENOTCONN)
                fail_msg("create with the server down: %s", gv_error_msg(err, r));
        assert_non_null(strstr(err->msg, "cannot be reached"));
        assert_non_null(strstr(err->msg, "nothing was applied"));
        err = gv_error_free(err);
        struct gv_store_obj o = { 0 };
        assert_int_equal(gv_store_get(s, GV_STORE_VM, "x", &o, &err), -ENOTCONN);
        int64_t took = mono_ms() - t0;
        print_message("# two calls with the server down: %lld ms\n", (long long)took);
        assert_true(took < 6000);

        server("start", NULL);
        /* Reconnected on the next call. */
        assert_int_equal(gv_store_get(s, GV_STORE_VM, "lost", &o, NULL), -ENOENT);
        assert_int_equal(gv_store_write_events(s, NULL, 0, &ev, 1, NULL), 0);
        assert_int_equal(gv_store_events(s, last, 10, &e, &n, NULL), 0);
        assert_int_equal(n, 1);
        assert_true(e[0].seq > last); /* never reused, even after a crash */
        gv_store_events_free(e, n);
}

/* The connection breaks right after COMMIT was sent: -EIO saying the outcome is unknown, no
 * retry; the server applied it exactly once; the next call reconnects. */
static void test_cut_after_commit(void **state)
{
        struct fixture *f = *state;
        struct gv_store *s = open_store(f);
        json_auto_t *d = json_object();
        assert_int_equal(gv_store_create(s, GV_STORE_VM, "a", d, NULL, NULL), 0);
        gv_store_pg_test_cut_after_commit(s);
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        assert_int_equal(gv_store_update(s, GV_STORE_VM, "a", d, 1, NULL, &e), -EIO);
        assert_non_null(strstr(e->msg, "after COMMIT was sent"));
        assert_non_null(strstr(e->msg, "may or may not have been applied"));
        struct gv_store_obj o = { 0 };
        assert_int_equal(gv_store_get(s, GV_STORE_VM, "a", &o, NULL), 0);
        assert_int_equal(o.generation, 2); /* applied once, never twice */
        gv_store_obj_done(&o);
}

/* An administrator ends the store's sessions (pg_terminate_backend): the next calls reconnect
 * by themselves, reads and writes alike. */
static void test_sessions_terminated(void **state)
{
        struct fixture *f = *state;
        struct gv_store *s = open_store(f);
        json_auto_t *d = json_object();
        assert_int_equal(gv_store_create(s, GV_STORE_VM, "a", d, NULL, NULL), 0);
        raw_exec("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                 "WHERE application_name = 'gpuvirt' AND pid <> pg_backend_pid()");
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        int r = gv_store_update(s, GV_STORE_VM, "a", d, 1, NULL, &e);
        if (r < 0)
                fail_msg("update after the session ended: %s", gv_error_msg(e, r));
        raw_exec("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                 "WHERE application_name = 'gpuvirt' AND pid <> pg_backend_pid()");
        struct gv_store_obj o = { 0 };
        assert_int_equal(gv_store_get(s, GV_STORE_VM, "a", &o, NULL), 0);
        assert_int_equal(o.generation, 2);
        gv_store_obj_done(&o);
}

int main(void)
{
        pg_url = getenv("GPUVIRT_TEST_PG_URL");
        pg_dir = getenv("GPUVIRT_TEST_PG_DIR");
        pg_server = getenv("GPUVIRT_TEST_PG_SERVER");
        if (!pg_url || !pg_dir || !pg_server) {
                printf("# SKIP GPUVIRT_TEST_PG_URL, _DIR and _SERVER are not set: run through "
                       "tests/store/run-pg.sh (meson test store-pg)\n");
                return 77;
        }
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_concurrent_first_open, setup, teardown),
                cmocka_unit_test_setup_teardown(test_cas_race, setup, teardown),
                cmocka_unit_test_setup_teardown(test_cut_after_commit, setup, teardown),
                cmocka_unit_test_setup_teardown(test_sessions_terminated, setup, teardown),
                cmocka_unit_test_setup_teardown(test_server_down_and_back, setup, teardown),
        };
        return cmocka_run_group_tests_name("postgresql-only", tests, NULL, NULL);
}
