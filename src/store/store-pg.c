/* SPDX-License-Identifier: MIT */
/*
 * store-pg.c — the PostgreSQL backend of the store (store.h, docs/store.md), through libpq.
 *
 * The URL ("postgresql://..." or "postgres://...") goes whole to libpq, after our defaults
 * (connect_timeout 5 s, TCP keepalives, application_name), so that the URL's own settings win.
 *
 * Connections: a small pool (PG_POOL_MAX) guarded by a mutex and a condition variable; a call
 * takes one connection for its whole length (a transaction is connection state) and gives it
 * back. A connection found broken is reset (PQreset) when next taken; while the server cannot
 * be reached every call fails at once (or within connect_timeout) with -ENOTCONN saying that
 * nothing was applied.
 *
 * Writes: every batch, event append, audit append and trim is one SERIALIZABLE transaction.
 * On a serialization failure or a deadlock (SQLSTATE 40001, 40P01) the server rolled it back,
 * so it is run again from BEGIN, up to PG_ATTEMPTS times with a jittered exponential backoff,
 * then -EBUSY. A connection lost before COMMIT was sent means nothing was applied: the
 * transaction is run again once on a fresh connection. A connection lost once COMMIT was sent
 * leaves the outcome unknown: -EIO saying so, never a retry (a write the caller was not told
 * succeeded must not be applied a second time, reliability.md R12).
 *
 * Event and audit sequence numbers come from identity columns (sequences: never reused, even
 * after a rollback, a trim or a crash). Sequences hand out numbers in the order transactions
 * ask, not in the order they commit, so a reader could see seq 6 before seq 5 commits and skip
 * 5 for good; transactions that append events or audit records therefore hold a session
 * advisory lock (PG_LOCK_LOG) from before BEGIN until after COMMIT, which makes commit order
 * equal seq order (and keeps the audit's time non-decreasing along seq without a conflict).
 *
 * gv_store_version: the sequence store_version, advanced inside every write transaction and
 * again once its COMMIT returned. Sequences are not transactional, so readers see the value at
 * once; the second advance comes after the commit is visible, so a reader that read the
 * version before a commit became visible always sees it move afterwards.
 *
 * Schema: the same numbered steps as SQLite (migrations[], append only) in PostgreSQL's SQL;
 * the table gpuvirt_schema holds the number applied. Migrations run under a session advisory
 * lock (PG_LOCK_MIGRATE), so several controllers opening a fresh database at once apply each
 * step once. Values are always parameters (PQexecParams), never formatted into SQL.
 */
#include <fcntl.h>
#include <libpq-fe.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "store-priv.h"
#include "store.h"
#include "util/alloc.h"
#include "util/json.h"
#include "util/parse.h"

#define PG_POOL_MAX 4
#define PG_ATTEMPTS 12
#define PG_CONNECT_TIMEOUT_S "5"
#define PG_LOCK_TIMEOUT "10s"
/* Advisory lock keys: "GPVT" then a number. */
#define PG_LOCK_MIGRATE "5138546358149513217" /* 0x4750565400000001 */
#define PG_LOCK_LOG "5138546358149513218"     /* 0x4750565400000002 */

/* Schema steps; step i takes the schema from version i to i + 1, numbered as SQLite's. */
static const char *const migrations[] = {
        /* 1: objects, the event log, the change counter. */
        "CREATE TABLE objects ("
        "  kind text NOT NULL,"
        "  key text COLLATE \"C\" NOT NULL,"
        "  doc text NOT NULL,"
        "  generation bigint NOT NULL CHECK (generation >= 1),"
        "  created_at bigint NOT NULL,"
        "  updated_at bigint NOT NULL,"
        "  PRIMARY KEY (kind, key));"
        "CREATE TABLE events ("
        "  seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
        "  time bigint NOT NULL,"
        "  type text NOT NULL,"
        "  subject text NOT NULL,"
        "  data text);"
        "CREATE SEQUENCE store_version;",
        /* 2: the audit log (docs/audit.md), indexed as in SQLite. */
        "CREATE TABLE audit ("
        "  seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
        "  time bigint NOT NULL,"
        "  principal text,"
        "  tenant text,"
        "  object text,"
        "  outcome text,"
        "  method text,"
        "  record text NOT NULL);"
        "CREATE INDEX audit_time ON audit (time, seq);"
        "CREATE INDEX audit_principal ON audit (principal, seq);"
        "CREATE INDEX audit_tenant ON audit (tenant, seq) WHERE tenant IS NOT NULL;"
        "CREATE INDEX audit_object ON audit (object, seq) WHERE object IS NOT NULL;"
        "CREATE INDEX audit_outcome ON audit (outcome, seq);",
};
#define SCHEMA_NEWEST ((int)ELEMENTSOF(migrations))


struct pg_store {
        pthread_mutex_t lock;
        pthread_cond_t free_conn;
        char *url;   /* whole, for libpq */
        char *shown; /* for messages: any password masked */
        PGconn *conn[PG_POOL_MAX];
        bool busy[PG_POOL_MAX];
        atomic_int cut_after_commit; /* test hook: store-priv.h */
};

/* Internal results of one statement or transaction, beside ordinary -errno. */
#define PG_RETRY (-EAGAIN) /* serialization failure or deadlock: rolled back, run again */
#define PG_LOST (-ENOTCONN) /* the connection broke before COMMIT: nothing applied */

static int64_t now_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The URL with a password (user:PASS@ or password=PASS) masked, for messages. */
static char *mask_password(const char *url)
{
        char *m = xstrdup(url);
        char *p = strstr(m, "://");
        if (p) {
                char *auth = p + 3;
                char *end = auth + strcspn(auth, "/?");
                char *at = memchr(auth, '@', (size_t)(end - auth));
                char *colon = at ? memchr(auth, ':', (size_t)(at - auth)) : NULL;
                if (colon) {
                        char *n = xasprintf("%.*s:***%s", (int)(colon - m), m, at);
                        free(m);
                        m = n;
                }
        }
        char *pw = strstr(m, "password=");
        if (pw) {
                char *v = pw + strlen("password=");
                size_t len = strcspn(v, "& ");
                char *n = xasprintf("%.*s***%s", (int)(v - m), m, v + len);
                free(m);
                m = n;
        }
        return m;
}

/* libpq's message without its trailing newline. */
static char *conn_msg(const PGconn *c)
{
        char *m = xstrdup(c ? PQerrorMessage(c) : "out of memory");
        size_t n = strlen(m);
        while (n > 0 && (m[n - 1] == '\n' || m[n - 1] == ' '))
                m[--n] = 0;
        for (char *q = m; *q; q++)
                if (*q == '\n')
                        *q = ' ';
        return m;
}

static void notice_ignore(void *arg, const char *message)
{
        (void)arg;
        (void)message; /* a library never prints */
}

static int unreachable(struct pg_store *s, const PGconn *c, struct gv_error **err)
{
        _cleanup_free_ char *m = conn_msg(c);
        return gv_error_set(err, ENOTCONN, "The PostgreSQL server of the store '%s' cannot be "
                            "reached (%s): nothing was applied; retry once it is back.",
                            s->shown, m);
}

static void conn_setup(PGconn *c)
{
        PQsetNoticeProcessor(c, notice_ignore, NULL);
        PGresult *res = PQexec(c, "SET lock_timeout = '" PG_LOCK_TIMEOUT "'; "
                                  "SET client_min_messages = warning");
        PQclear(res);
}

static int conn_open(struct pg_store *s, PGconn **ret, struct gv_error **err)
{
        /* Ours first: the URL (dbname, expanded) overrides them. */
        const char *const keys[] = { "connect_timeout", "keepalives", "keepalives_idle",
                                     "keepalives_interval", "keepalives_count",
                                     "tcp_user_timeout", "application_name", "dbname", NULL };
        const char *const vals[] = { PG_CONNECT_TIMEOUT_S, "1", "10", "3", "3", "15000",
                                     "gpuvirt", s->url, NULL };
        PGconn *c = PQconnectdbParams(keys, vals, 1);
        if (!c || PQstatus(c) != CONNECTION_OK) {
                int r = unreachable(s, c, err);
                PQfinish(c);
                return r;
        }
        conn_setup(c);
        *ret = c;
        return 0;
}

/* Take a pooled connection, connected (reset if found broken). */
static int conn_get(struct pg_store *s, int *ret_slot, struct gv_error **err)
{
        pthread_mutex_lock(&s->lock);
        int slot = -1;
        for (;;) {
                for (int i = 0; i < PG_POOL_MAX; i++)
                        if (!s->busy[i] && (slot < 0 || (s->conn[i] && !s->conn[slot])))
                                slot = i;
                if (slot >= 0)
                        break;
                pthread_cond_wait(&s->free_conn, &s->lock);
        }
        s->busy[slot] = true;
        pthread_mutex_unlock(&s->lock);

        PGconn *c = s->conn[slot];
        if (c && PQstatus(c) != CONNECTION_OK) {
                PQreset(c);
                if (PQstatus(c) == CONNECTION_OK) {
                        conn_setup(c);
                } else {
                        int r = unreachable(s, c, err);
                        PQfinish(c);
                        s->conn[slot] = NULL;
                        pthread_mutex_lock(&s->lock);
                        s->busy[slot] = false;
                        pthread_cond_signal(&s->free_conn);
                        pthread_mutex_unlock(&s->lock);
                        return r;
                }
        } else if (!c) {
                int r = conn_open(s, &s->conn[slot], err);
                if (r < 0) {
                        pthread_mutex_lock(&s->lock);
                        s->busy[slot] = false;
                        pthread_cond_signal(&s->free_conn);
                        pthread_mutex_unlock(&s->lock);
                        return r;
                }
        }
        *ret_slot = slot;
        return 0;
}

static void conn_put(struct pg_store *s, int slot, bool drop)
{
        pthread_mutex_lock(&s->lock);
        if (drop) {
                PQfinish(s->conn[slot]);
                s->conn[slot] = NULL;
        }
        s->busy[slot] = false;
        pthread_cond_signal(&s->free_conn);
        pthread_mutex_unlock(&s->lock);
}

static bool sqlstate_is(const PGresult *res, const char *state)
{
        const char *st = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
        return st && strcmp(st, state) == 0;
}

/* Whether a failed statement means the session is gone: the socket broke, or the server ended
 * it (class 08 connection exceptions, 57P01..57P03 shutdown and crash). */
static bool conn_lost(const PGconn *c, const PGresult *res)
{
        if (PQstatus(c) != CONNECTION_OK)
                return true;
        /* No SQLSTATE: libpq's own failure ("server closed the connection unexpectedly" while
         * sending, before it marks the connection bad). */
        const char *st = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
        if (!st)
                return true;
        return (strncmp(st, "08", 2) == 0 || strcmp(st, "57P01") == 0 ||
                      strcmp(st, "57P02") == 0 || strcmp(st, "57P03") == 0);
}

/* Run one statement with text parameters (NULL for SQL NULL). 0 with *ret (may be NULL: the
 * result is dropped); PG_RETRY; PG_LOST; or -errno with a message naming `what`. */
static int pg_exec(struct pg_store *s, PGconn *c, const char *sql, int n,
                   const char *const *params, PGresult **ret, const char *what,
                   struct gv_error **err)
{
        PGresult *res = n > 0 ? PQexecParams(c, sql, n, NULL, params, NULL, NULL, 0)
                              : PQexec(c, sql);
        ExecStatusType st = PQresultStatus(res);
        if (res && (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)) {
                if (ret)
                        *ret = res;
                else
                        PQclear(res);
                return 0;
        }
        int r;
        _cleanup_free_ char *m = res && PQresultErrorMessage(res)[0]
                                         ? xstrdup(PQresultErrorMessage(res)) : conn_msg(c);
        m[strcspn(m, "\n")] = 0;
        if (sqlstate_is(res, "40001") || sqlstate_is(res, "40P01")) {
                r = gv_error_set(err, EAGAIN, "Cannot %s: %s.", what, m);
                r = PG_RETRY;
        } else if (conn_lost(c, res)) {
                r = gv_error_set(err, ENOTCONN, "The connection to the PostgreSQL server of the "
                                 "store '%s' broke while trying to %s (%s): nothing was "
                                 "applied; retry once it is back.", s->shown, what, m);
        } else if (sqlstate_is(res, "55P03")) {
                r = gv_error_set(err, EBUSY, "Cannot %s: other connections to the store '%s' "
                                 "held the locks it needs for %s; retry, and if it persists "
                                 "find the session holding a transaction open "
                                 "(pg_stat_activity).", what, s->shown, PG_LOCK_TIMEOUT);
        } else {
                const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
                int code = EIO;
                if (state && strncmp(state, "53", 2) == 0)
                        code = ENOSPC;
                else if (state && strncmp(state, "42501", 5) == 0)
                        code = EACCES;
                r = gv_error_set(err, code, "Cannot %s in the store '%s': %s (SQLSTATE %s).",
                                 what, s->shown, m, state ? state : "none");
        }
        PQclear(res);
        return r;
}

/* A read: one statement in autocommit, on a connection taken for it; a connection that broke
 * (the server restarted since it was last used) is reset and the statement asked once more. */
static int pg_read(struct pg_store *s, const char *sql, int n, const char *const *params,
                   PGresult **ret, const char *what, struct gv_error **err)
{
        for (int attempt = 0;; attempt++) {
                int slot;
                int r = conn_get(s, &slot, err);
                if (r < 0)
                        return r;
                _cleanup_(gv_error_freep) struct gv_error *e = NULL;
                r = pg_exec(s, s->conn[slot], sql, n, params, ret, what, &e);
                conn_put(s, slot, r == PG_LOST); /* a fresh one next time */
                if (r == PG_LOST && attempt == 0)
                        continue;
                if (r < 0 && err && !*err)
                        *err = TAKE_PTR(e);
                return r;
        }
}

/* The body of a write transaction: statements on c; may be run several times (retries), so it
 * writes its results only where the caller reads them after success. */
typedef int (*tx_body_t)(struct pg_store *s, PGconn *c, void *ctx, struct gv_error **err);

/* The test hook: wait until the server answered COMMIT (it committed), then put a socket at
 * its end of file in the connection's place, as if the answer was lost on the way. */
static void cut_after_reply(PGconn *c)
{
        (void)PQflush(c);
        struct pollfd p = { .fd = PQsocket(c), .events = POLLIN };
        (void)poll(&p, 1, 10000);
        int sv[2];
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
                return;
        close(sv[1]);
        (void)dup3(sv[0], PQsocket(c), O_CLOEXEC);
        close(sv[0]);
}

/* One attempt: [log lock,] BEGIN SERIALIZABLE, the counter, body, COMMIT, the counter again,
 * [unlock]. *ret_drop: the connection must not be reused (an unlock failed). */
static int tx_once(struct pg_store *s, PGconn *c, bool log_lock, tx_body_t body, void *ctx,
                   bool *ret_drop, struct gv_error **err)
{
        static const char *const lock_key[] = { PG_LOCK_LOG };
        int r = 0;
        if (log_lock) {
                r = pg_exec(s, c, "SELECT pg_advisory_lock($1::bigint)", 1, lock_key, NULL,
                            "wait for the event and audit log", err);
                if (r < 0)
                        return r;
        }
        r = pg_exec(s, c, "BEGIN ISOLATION LEVEL SERIALIZABLE", 0, NULL, NULL,
                    "start a transaction", err);
        if (r >= 0)
                r = body(s, c, ctx, err);
        /* Counted once the body succeeded (a refused compare-and-swap changes nothing). */
        if (r >= 0)
                r = pg_exec(s, c, "SELECT nextval('store_version')", 0, NULL, NULL,
                            "count a change", err);
        if (r < 0) {
                if (PQstatus(c) == CONNECTION_OK) {
                        PGresult *res = PQexec(c, "ROLLBACK");
                        PQclear(res);
                }
        } else {
                /* COMMIT: once sent, a broken connection leaves the outcome unknown. */
                bool sent = PQsendQuery(c, "COMMIT") == 1;
                if (sent && atomic_exchange(&s->cut_after_commit, 0))
                        cut_after_reply(c);
                PGresult *res = NULL, *last = NULL;
                while (sent && (res = PQgetResult(c))) {
                        PQclear(last);
                        last = res;
                }
                if (sent && PQresultStatus(last) == PGRES_COMMAND_OK) {
                        r = 0;
                } else if (sent && (sqlstate_is(last, "40001") || sqlstate_is(last, "40P01"))) {
                        r = PG_RETRY; /* refused at commit: rolled back */
                } else if (!sent || conn_lost(c, last)) {
                        _cleanup_free_ char *m = conn_msg(c);
                        r = gv_error_set(err, EIO, "The connection to the PostgreSQL server of "
                                         "the store '%s' broke after COMMIT was sent (%s): the "
                                         "write may or may not have been applied; re-read "
                                         "before deciding anything (it is not retried).",
                                         s->shown, m);
                } else {
                        _cleanup_free_ char *m = xstrdup(PQresultErrorMessage(last));
                        m[strcspn(m, "\n")] = 0;
                        r = gv_error_set(err, EIO, "Cannot commit to the store '%s': %s.",
                                         s->shown, m);
                }
                PQclear(last);
                if (r == 0) {
                        /* After the commit is visible: see the file's comment. */
                        PGresult *v = PQexec(c, "SELECT nextval('store_version')");
                        PQclear(v);
                }
        }
        if (log_lock && PQstatus(c) == CONNECTION_OK) {
                PGresult *res = PQexecParams(c, "SELECT pg_advisory_unlock($1::bigint)", 1,
                                             NULL, lock_key, NULL, NULL, 0);
                if (PQresultStatus(res) != PGRES_TUPLES_OK)
                        *ret_drop = true; /* the server frees a session's locks when it ends */
                PQclear(res);
        }
        return r;
}

static void backoff(unsigned attempt, unsigned *seed)
{
        unsigned base = 1u << (attempt < 6 ? attempt : 6); /* 1 .. 64 ms */
        unsigned us = base * 500 + (unsigned)rand_r(seed) % (base * 1000);
        nanosleep(&(struct timespec){ .tv_sec = us / 1000000, .tv_nsec = (long)(us % 1000000) * 1000 },
                  NULL);
}

static int pg_tx(struct pg_store *s, bool log_lock, tx_body_t body, void *ctx, const char *what,
                 struct gv_error **err)
{
        unsigned seed = (unsigned)now_ms() ^ (unsigned)(uintptr_t)pthread_self() ^
                        (unsigned)(uintptr_t)ctx;
        bool reconnected = false;
        for (unsigned attempt = 1;; attempt++) {
                int slot;
                int r = conn_get(s, &slot, err);
                if (r < 0)
                        return r;
                _cleanup_(gv_error_freep) struct gv_error *e = NULL;
                bool drop = false;
                r = tx_once(s, s->conn[slot], log_lock, body, ctx, &drop, &e);
                conn_put(s, slot, drop || PQstatus(s->conn[slot]) != CONNECTION_OK ||
                                          r == PG_LOST);
                if (r == PG_RETRY) {
                        if (attempt < PG_ATTEMPTS) {
                                backoff(attempt, &seed);
                                continue;
                        }
                        return gv_error_set(err, EBUSY, "Cannot %s: the store '%s' refused it "
                                            "%d times as it raced other writers (serialization "
                                            "failures); nothing was applied; retry.", what,
                                            s->shown, PG_ATTEMPTS);
                }
                if (r == PG_LOST && !reconnected) {
                        reconnected = true; /* nothing applied: once more on a fresh one */
                        continue;
                }
                if (r < 0 && err && !*err)
                        *err = TAKE_PTR(e);
                return r;
        }
}

/* ---- open, migrate, close ---- */

static void pg_close(void *b)
{
        struct pg_store *s = b;
        if (!s)
                return;
        for (int i = 0; i < PG_POOL_MAX; i++)
                PQfinish(s->conn[i]);
        pthread_cond_destroy(&s->free_conn);
        pthread_mutex_destroy(&s->lock);
        free(s->url);
        free(s->shown);
        free(s);
}

static void pg_closep(struct pg_store **s)
{
        pg_close(*s);
}

static int read_int(const PGresult *res, int row, int col, int64_t *ret)
{
        if (PQgetisnull(res, row, col))
                return -EINVAL;
        return gv_parse_i64(PQgetvalue(res, row, col), ret);
}

static int refuse_newer(struct pg_store *s, int64_t version, struct gv_error **err)
{
        return gv_error_set(err, EPROTO, "The store '%s' was written by a newer gpuvirt (schema "
                            "%lld; this one knows %d): upgrade gpuvirt.", s->shown,
                            (long long)version, SCHEMA_NEWEST);
}

/* The schema version, or -ENOENT when the table is not there yet. */
static int schema_read(struct pg_store *s, PGconn *c, int64_t *ret, struct gv_error **err)
{
        PGresult *res = PQexec(c, "SELECT version FROM gpuvirt_schema");
        if (sqlstate_is(res, "42P01")) {
                PQclear(res);
                return -ENOENT;
        }
        PQclear(res);
        PGresult *r2 = NULL;
        int r = pg_exec(s, c, "SELECT version FROM gpuvirt_schema", 0, NULL, &r2,
                        "read the schema version", err);
        if (r < 0)
                return r;
        int64_t v = 0;
        if (PQntuples(r2) != 1 || read_int(r2, 0, 0, &v) < 0) {
                PQclear(r2);
                return gv_error_set(err, EIO, "The store '%s' has a damaged gpuvirt_schema "
                                    "table (not one row with a version).", s->shown);
        }
        PQclear(r2);
        *ret = v;
        return 0;
}

static int migrate_locked(struct pg_store *s, PGconn *c, struct gv_error **err)
{
        int r = pg_exec(s, c, "CREATE TABLE IF NOT EXISTS gpuvirt_schema ("
                        "id int PRIMARY KEY CHECK (id = 1), version int NOT NULL);"
                        "INSERT INTO gpuvirt_schema VALUES (1, 0) ON CONFLICT DO NOTHING",
                        0, NULL, NULL, "create the schema table", err);
        if (r < 0)
                return r;
        int64_t cur = 0;
        r = schema_read(s, c, &cur, err);
        if (r < 0)
                return r;
        if (cur > SCHEMA_NEWEST)
                return refuse_newer(s, cur, err);
        for (int v = (int)cur + 1; v <= SCHEMA_NEWEST; v++) {
                char vs[16];
                snprintf(vs, sizeof(vs), "%d", v);
                const char *const p[] = { vs };
                _cleanup_free_ char *what = xasprintf("migrate to schema %d", v);
                r = pg_exec(s, c, "BEGIN", 0, NULL, NULL, what, err);
                if (r >= 0)
                        r = pg_exec(s, c, migrations[v - 1], 0, NULL, NULL, what, err);
                if (r >= 0)
                        r = pg_exec(s, c, "UPDATE gpuvirt_schema SET version = $1::int", 1, p,
                                    NULL, what, err);
                if (r >= 0)
                        r = pg_exec(s, c, "COMMIT", 0, NULL, NULL, what, err);
                if (r < 0) {
                        PGresult *res = PQexec(c, "ROLLBACK");
                        PQclear(res);
                        return r;
                }
        }
        return 0;
}

static int migrate(struct pg_store *s, PGconn *c, struct gv_error **err)
{
        int64_t have = 0;
        int r = schema_read(s, c, &have, err);
        if (r == 0 && have == SCHEMA_NEWEST)
                return 0; /* the common case: no lock */
        if (r == 0 && have > SCHEMA_NEWEST)
                return refuse_newer(s, have, err);
        if (r < 0 && r != -ENOENT)
                return r;
        static const char *const key[] = { PG_LOCK_MIGRATE };
        r = pg_exec(s, c, "SELECT pg_advisory_lock($1::bigint)", 1, key, NULL,
                    "wait for another controller's schema migration", err);
        if (r < 0)
                return r;
        r = migrate_locked(s, c, err);
        PGresult *res = PQexecParams(c, "SELECT pg_advisory_unlock($1::bigint)", 1, NULL, key,
                                     NULL, NULL, 0);
        PQclear(res);
        return r;
}

static int pg_open(const char *location, void **ret, struct gv_error **err)
{
        _cleanup_(pg_closep) struct pg_store *s = xnew0(struct pg_store, 1);
        pthread_mutex_init(&s->lock, NULL);
        pthread_cond_init(&s->free_conn, NULL);
        /* store.c hands over what follows "postgresql:" (or "postgres:"): "//...". */
        s->url = xasprintf("postgresql:%s", location);
        s->shown = mask_password(s->url);
        if (strncmp(location, "//", 2) != 0)
                return gv_error_set(err, EINVAL, "The store '%s' is not a PostgreSQL URL: give "
                                    "'postgresql://[user@]host[:port]/database' or "
                                    "'postgresql:///database?host=/socket/dir'.", s->shown);
        int r = conn_open(s, &s->conn[0], err);
        if (r < 0)
                return r;
        r = migrate(s, s->conn[0], err);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(s);
        return 0;
}

/* ---- documents ---- */

static const char *kind_str(enum gv_store_kind k)
{
        return gv_store_kind_to_string(k);
}

/* Row `row`, columns doc, generation, created_at, updated_at from `col` on, into o. */
static int read_obj(struct pg_store *s, const PGresult *res, int row, int col,
                    enum gv_store_kind kind, const char *key, struct gv_store_obj *o,
                    struct gv_error **err)
{
        const char *text = PQgetisnull(res, row, col) ? NULL : PQgetvalue(res, row, col);
        json_error_t je = { 0 };
        json_t *j = text ? json_loads(text, JSON_REJECT_DUPLICATES, &je) : NULL;
        int64_t gen = 0, c = 0, u = 0;
        if (!json_is_object(j) || read_int(res, row, col + 1, &gen) < 0 || gen < 1 ||
            read_int(res, row, col + 2, &c) < 0 || read_int(res, row, col + 3, &u) < 0) {
                json_decref(j);
                return gv_error_set(err, EIO, "The store '%s' holds a corrupt row for %s '%s' "
                                    "(%s): restore it from a backup, or delete the row (table "
                                    "objects, kind '%s', key '%s').", s->shown, kind_str(kind),
                                    key, !text ? "no text" : !j ? je.text
                                         : !json_is_object(j) ? "not a JSON object"
                                                              : "bad generation or times",
                                    kind_str(kind), key);
        }
        o->doc = j;
        o->generation = gen;
        o->created_at = c;
        o->updated_at = u;
        return 0;
}

static int pg_get(void *b, enum gv_store_kind kind, const char *key, struct gv_store_obj *ret,
                  struct gv_error **err)
{
        struct pg_store *s = b;
        const char *const p[] = { kind_str(kind), key };
        PGresult *res = NULL;
        _cleanup_free_ char *what = xasprintf("read %s '%s'", kind_str(kind), key);
        int r = pg_read(s, "SELECT doc, generation, created_at, updated_at FROM objects "
                        "WHERE kind = $1 AND key = $2", 2, p, &res, what, err);
        if (r < 0)
                return r;
        if (PQntuples(res) == 0) {
                PQclear(res);
                return gv_error_set(err, ENOENT, "%s '%s' does not exist.", gv_store_kind_human(kind),
                                    key);
        }
        struct gv_store_obj o = { 0 };
        r = read_obj(s, res, 0, 0, kind, key, &o, err);
        PQclear(res);
        if (r < 0)
                return r;
        o.key = xstrdup(key);
        *ret = o;
        return 0;
}

static int pg_list(void *b, enum gv_store_kind kind, struct gv_store_obj **ret, size_t *ret_n,
                   struct gv_error **err)
{
        struct pg_store *s = b;
        const char *const p[] = { kind_str(kind) };
        PGresult *res = NULL;
        _cleanup_free_ char *what = xasprintf("list the %s objects", kind_str(kind));
        int r = pg_read(s, "SELECT key, doc, generation, created_at, updated_at FROM objects "
                        "WHERE kind = $1 ORDER BY key", 1, p, &res, what, err);
        if (r < 0)
                return r;
        int n = PQntuples(res);
        struct gv_store_obj *v = xnew0(struct gv_store_obj, n > 0 ? (size_t)n : 1);
        for (int i = 0; i < n; i++) {
                const char *key = PQgetvalue(res, i, 0);
                r = read_obj(s, res, i, 1, kind, key, &v[i], err);
                if (r < 0) {
                        gv_store_objs_free(v, (size_t)i);
                        PQclear(res);
                        return r;
                }
                v[i].key = xstrdup(key);
        }
        PQclear(res);
        if (n == 0) {
                free(v);
                v = NULL;
        }
        *ret = v;
        *ret_n = (size_t)n;
        return 0;
}

struct batch {
        struct gv_store_write *w;
        size_t n_w;
        const struct gv_store_event *ev;
        size_t n_ev;
        char **docs;     /* serialised once */
        char **ev_data;
        int64_t *gens;   /* results of the attempt that committed */
};

static int cas_failed(struct pg_store *s, PGconn *c, const struct gv_store_write *w,
                      struct gv_error **err)
{
        const char *const p[] = { kind_str(w->kind), w->key };
        PGresult *res = NULL;
        int r = pg_exec(s, c, "SELECT generation FROM objects WHERE kind = $1 AND key = $2", 2,
                        p, &res, "check a generation", err);
        if (r < 0)
                return r;
        int64_t now = 0;
        if (PQntuples(res) == 1 && read_int(res, 0, 0, &now) >= 0) {
                PQclear(res);
                return gv_error_set(err, ESTALE, "%s '%s' changed since it was read (generation "
                                    "%lld, now %lld): re-read and retry.", gv_store_kind_human(w->kind),
                                    w->key, (long long)w->generation, (long long)now);
        }
        PQclear(res);
        return gv_error_set(err, ENOENT, "%s '%s' does not exist (any more): re-read and retry.",
                            gv_store_kind_human(w->kind), w->key);
}

static int apply_write(struct pg_store *s, PGconn *c, const struct gv_store_write *w,
                       const char *doc, const char *now, int64_t *ret_generation,
                       struct gv_error **err)
{
        static const char *const op_verb[] = {
                [GV_STORE_CREATE] = "create",
                [GV_STORE_UPDATE] = "update",
                [GV_STORE_DELETE] = "delete",
                [GV_STORE_PUT] = "write",
        };
        char gen[24];
        snprintf(gen, sizeof(gen), "%lld", (long long)w->generation);
        _cleanup_free_ char *what = xasprintf("%s %s '%s'", op_verb[w->op], kind_str(w->kind),
                                              w->key);
        PGresult *res = NULL;
        int r;
        switch (w->op) {
        case GV_STORE_CREATE: {
                const char *const p[] = { kind_str(w->kind), w->key, doc, now };
                r = pg_exec(s, c, "INSERT INTO objects (kind, key, doc, generation, created_at, "
                            "updated_at) VALUES ($1, $2, $3, 1, $4, $4) "
                            "ON CONFLICT (kind, key) DO NOTHING", 4, p, &res, what, err);
                break;
        }
        case GV_STORE_UPDATE: {
                const char *const p[] = { kind_str(w->kind), w->key, doc, gen, now };
                r = pg_exec(s, c, "UPDATE objects SET doc = $3, generation = generation + 1, "
                            "updated_at = $5 WHERE kind = $1 AND key = $2 AND generation = $4",
                            5, p, &res, what, err);
                break;
        }
        case GV_STORE_DELETE: {
                const char *const p[] = { kind_str(w->kind), w->key, gen };
                r = pg_exec(s, c, "DELETE FROM objects WHERE kind = $1 AND key = $2 AND "
                            "generation = $3", 3, p, &res, what, err);
                break;
        }
        case GV_STORE_PUT: {
                const char *const p[] = { kind_str(w->kind), w->key, doc, now };
                r = pg_exec(s, c, "INSERT INTO objects (kind, key, doc, generation, created_at, "
                            "updated_at) VALUES ($1, $2, $3, 1, $4, $4) ON CONFLICT (kind, key) "
                            "DO UPDATE SET doc = excluded.doc, "
                            "generation = objects.generation + 1, "
                            "updated_at = excluded.updated_at RETURNING generation", 4, p, &res,
                            what, err);
                if (r < 0)
                        return r;
                int64_t g = 0;
                if (PQntuples(res) != 1 || read_int(res, 0, 0, &g) < 0) {
                        PQclear(res);
                        return gv_error_set(err, EIO, "The store '%s' did not say the "
                                            "generation of %s '%s'.", s->shown,
                                            kind_str(w->kind), w->key);
                }
                PQclear(res);
                *ret_generation = g;
                return 0;
        }
        default:
                return gv_error_set(err, EINVAL, "Unknown store operation %d.", (int)w->op);
        }
        if (r < 0)
                return r;
        bool matched = strcmp(PQcmdTuples(res), "1") == 0;
        PQclear(res);
        if (w->op == GV_STORE_CREATE) {
                if (!matched)
                        return gv_error_set(err, EEXIST, "%s '%s' exists already: choose another "
                                            "name, or read it and update it.",
                                            gv_store_kind_human(w->kind), w->key);
                *ret_generation = 1;
                return 0;
        }
        if (!matched)
                return cas_failed(s, c, w, err);
        *ret_generation = w->op == GV_STORE_UPDATE ? w->generation + 1 : 0;
        return 0;
}

static int batch_body(struct pg_store *s, PGconn *c, void *ctx, struct gv_error **err)
{
        struct batch *bt = ctx;
        char now[24];
        int64_t t = now_ms();
        snprintf(now, sizeof(now), "%lld", (long long)t);
        for (size_t i = 0; i < bt->n_w; i++) {
                int r = apply_write(s, c, &bt->w[i], bt->docs[i], now, &bt->gens[i], err);
                if (r < 0)
                        return r;
        }
        for (size_t i = 0; i < bt->n_ev; i++) {
                char et[24];
                snprintf(et, sizeof(et), "%lld",
                         (long long)(bt->ev[i].time > 0 ? bt->ev[i].time : t));
                const char *const p[] = { et, bt->ev[i].type, bt->ev[i].subject,
                                          bt->ev_data[i] };
                int r = pg_exec(s, c, "INSERT INTO events (time, type, subject, data) "
                                "VALUES ($1, $2, $3, $4)", 4, p, NULL, "append an event", err);
                if (r < 0)
                        return r;
        }
        return 0;
}

static void strs_free(char **v, size_t n)
{
        for (size_t i = 0; v && i < n; i++)
                free(v[i]);
        free(v);
}

static int pg_write_with_events(void *b, struct gv_store_write *w, size_t n_w,
                                const struct gv_store_event *ev, size_t n_ev,
                                struct gv_error **err)
{
        struct pg_store *s = b;
        struct batch bt = { .w = w, .n_w = n_w, .ev = ev, .n_ev = n_ev };
        bt.docs = xnew0(char *, n_w + 1);
        bt.ev_data = xnew0(char *, n_ev + 1);
        bt.gens = xnew0(int64_t, n_w + 1);
        int r = 0;
        for (size_t i = 0; i < n_w && r >= 0; i++) {
                if (w[i].op == GV_STORE_DELETE)
                        continue;
                bt.docs[i] = json_dumps(w[i].doc, JSON_COMPACT | JSON_SORT_KEYS);
                if (!bt.docs[i])
                        r = gv_error_set(err, EINVAL, "The document of %s '%s' cannot be "
                                         "serialised as JSON.", kind_str(w[i].kind), w[i].key);
        }
        for (size_t i = 0; i < n_ev && r >= 0; i++) {
                if (!ev[i].data)
                        continue;
                bt.ev_data[i] = json_dumps(ev[i].data, JSON_COMPACT | JSON_SORT_KEYS |
                                                               JSON_ENCODE_ANY);
                if (!bt.ev_data[i])
                        r = gv_error_set(err, EINVAL, "The data of event '%s' (%s) cannot be "
                                         "serialised as JSON.", ev[i].type, ev[i].subject);
        }
        if (r >= 0)
                r = pg_tx(s, n_ev > 0, batch_body, &bt, n_ev > 0 ? "write a batch with events"
                                                                 : "write a batch", err);
        if (r >= 0)
                for (size_t i = 0; i < n_w; i++)
                        w[i].new_generation = bt.gens[i];
        strs_free(bt.docs, n_w);
        strs_free(bt.ev_data, n_ev);
        free(bt.gens);
        return r;
}

static int pg_write(void *b, struct gv_store_write *w, size_t n, struct gv_error **err)
{
        return pg_write_with_events(b, w, n, NULL, 0, err);
}

/* ---- events ---- */

static int pg_events(void *b, int64_t after, size_t max, struct gv_store_event **ret,
                     size_t *ret_n, struct gv_error **err)
{
        struct pg_store *s = b;
        char a[24], m[24];
        snprintf(a, sizeof(a), "%lld", (long long)after);
        snprintf(m, sizeof(m), "%llu", (unsigned long long)(max > INT64_MAX ? INT64_MAX : max));
        const char *const p[] = { a, m };
        PGresult *res = NULL;
        int r = pg_read(s, "SELECT seq, time, type, subject, data FROM events WHERE seq > $1 "
                        "ORDER BY seq LIMIT $2", 2, p, &res, "read the events", err);
        if (r < 0)
                return r;
        int n = PQntuples(res);
        struct gv_store_event *v = xnew0(struct gv_store_event, n > 0 ? (size_t)n : 1);
        for (int i = 0; i < n; i++) {
                struct gv_store_event *e = &v[i];
                (void)read_int(res, i, 0, &e->seq);
                (void)read_int(res, i, 1, &e->time);
                e->type = xstrdup(PQgetvalue(res, i, 2));
                e->subject = xstrdup(PQgetvalue(res, i, 3));
                if (PQgetisnull(res, i, 4)) {
                        e->data = json_null();
                        continue;
                }
                json_error_t je = { 0 };
                e->data = json_loads(PQgetvalue(res, i, 4),
                                     JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &je);
                if (!e->data) {
                        r = gv_error_set(err, EIO, "The store '%s' holds corrupt data in event "
                                         "%lld (%s): restore the store from a backup, or trim "
                                         "the events.", s->shown, (long long)e->seq, je.text);
                        gv_store_events_free(v, (size_t)i + 1);
                        PQclear(res);
                        return r;
                }
        }
        PQclear(res);
        if (n == 0) {
                free(v);
                v = NULL;
        }
        *ret = v;
        *ret_n = (size_t)n;
        return 0;
}

struct trim {
        const char *sql;
        int n;
        const char *p[2];
        const char *what;
        size_t deleted;
};

static int trim_body(struct pg_store *s, PGconn *c, void *ctx, struct gv_error **err)
{
        struct trim *t = ctx;
        PGresult *res = NULL;
        int r = pg_exec(s, c, t->sql, t->n, t->p, &res, t->what, err);
        if (r < 0)
                return r;
        uint64_t n = 0;
        (void)gv_parse_u64(PQcmdTuples(res), 10, &n);
        PQclear(res);
        t->deleted = (size_t)n;
        return 0;
}

static int pg_events_trim(void *b, size_t keep, struct gv_error **err)
{
        char k[24];
        snprintf(k, sizeof(k), "%llu", (unsigned long long)(keep > INT64_MAX ? INT64_MAX : keep));
        struct trim t = { .sql = "DELETE FROM events WHERE seq <= (SELECT seq FROM events "
                                 "ORDER BY seq DESC LIMIT 1 OFFSET $1)",
                          .n = 1, .p = { k }, .what = "trim the events" };
        return pg_tx(b, false, trim_body, &t, t.what, err);
}

static int pg_schema_version(void *b, int *ret, struct gv_error **err)
{
        PGresult *res = NULL;
        int r = pg_read(b, "SELECT version FROM gpuvirt_schema", 0, NULL, &res,
                        "read the schema version", err);
        if (r < 0)
                return r;
        int64_t v = 0;
        if (PQntuples(res) != 1 || read_int(res, 0, 0, &v) < 0) {
                PQclear(res);
                return gv_error_set(err, EIO, "The store '%s' has a damaged gpuvirt_schema "
                                    "table.", ((struct pg_store *)b)->shown);
        }
        PQclear(res);
        *ret = (int)v;
        return 0;
}

static int pg_version(void *b, int64_t *ret, struct gv_error **err)
{
        PGresult *res = NULL;
        int r = pg_read(b, "SELECT last_value FROM store_version", 0, NULL, &res,
                        "read the change counter", err);
        if (r < 0)
                return r;
        int64_t v = 0;
        r = PQntuples(res) == 1 ? read_int(res, 0, 0, &v) : -EIO;
        PQclear(res);
        if (r < 0)
                return gv_error_set(err, EIO, "The store '%s' did not say its change counter.",
                                    ((struct pg_store *)b)->shown);
        *ret = v;
        return 0;
}

/* ---- the audit log ---- */

struct audit_append {
        const char *p[7];
        int64_t seq, time;
};

static int audit_body(struct pg_store *s, PGconn *c, void *ctx, struct gv_error **err)
{
        struct audit_append *a = ctx;
        PGresult *res = NULL;
        int r = pg_exec(s, c, "INSERT INTO audit (time, principal, tenant, object, outcome, "
                        "method, record) VALUES (greatest($1::bigint, coalesce((SELECT time "
                        "FROM audit ORDER BY seq DESC LIMIT 1), 0)), $2, $3, $4, $5, $6, $7) "
                        "RETURNING seq, time", 7, a->p, &res, "append an audit record", err);
        if (r < 0)
                return r;
        if (PQntuples(res) != 1 || read_int(res, 0, 0, &a->seq) < 0 ||
            read_int(res, 0, 1, &a->time) < 0)
                r = gv_error_set(err, EIO, "The store '%s' did not number an audit record.",
                                 s->shown);
        PQclear(res);
        return r;
}

static int pg_audit_append(void *b, const json_t *record, int64_t time_ms, int64_t *ret_seq,
                           int64_t *ret_time, struct gv_error **err)
{
        _cleanup_json_ json_t *copy = json_copy((json_t *)record);
        json_object_del(copy, "seq");
        json_object_del(copy, "time");
        _cleanup_free_ char *text = json_dumps(copy, JSON_COMPACT | JSON_SORT_KEYS);
        if (!text)
                return gv_error_set(err, EINVAL, "The audit record cannot be serialised as "
                                    "JSON.");
        char t[24];
        snprintf(t, sizeof(t), "%lld", (long long)(time_ms > 0 ? time_ms : now_ms()));
        struct audit_append a = { .p = {
                t,
                json_string_value(json_object_get(record, "principal")),
                json_string_value(json_object_get(record, "tenant")),
                json_string_value(json_object_get(record, "object")),
                json_string_value(json_object_get(record, "outcome")),
                json_string_value(json_object_get(record, "method")),
                text,
        } };
        int r = pg_tx(b, true, audit_body, &a, "append an audit record", err);
        if (r < 0)
                return r;
        *ret_seq = a.seq;
        *ret_time = a.time;
        return 0;
}

static int pg_audit_query(void *b, const struct gv_store_audit_query *q, json_t **ret,
                          struct gv_error **err)
{
        struct pg_store *s = b;
        char before[24], since[24], until[24], limit[24];
        const char *p[9];
        int n = 0;
        _cleanup_free_ char *sql = xstrdup("SELECT seq, time, record FROM audit WHERE true");
#define ADD(frag, value)                                                        \
        do {                                                                    \
                p[n++] = (value);                                               \
                char *next_ = xasprintf("%s" frag, sql, n);                     \
                free(sql);                                                      \
                sql = next_;                                                    \
        } while (0)
        if (q->before_seq > 0) {
                snprintf(before, sizeof(before), "%lld", (long long)q->before_seq);
                ADD(" AND seq < $%d::bigint", before);
        }
        /* Time bounds as seq bounds, as in SQLite (time does not decrease along seq). */
        if (q->since_ms > 0) {
                snprintf(since, sizeof(since), "%lld", (long long)q->since_ms);
                ADD(" AND seq >= (SELECT seq FROM audit WHERE time >= $%d::bigint "
                    "ORDER BY time, seq LIMIT 1)", since);
        }
        if (q->until_ms > 0) {
                snprintf(until, sizeof(until), "%lld", (long long)q->until_ms);
                ADD(" AND seq <= (SELECT seq FROM audit WHERE time <= $%d::bigint "
                    "ORDER BY time DESC, seq DESC LIMIT 1)", until);
        }
        if (q->principal)
                ADD(" AND principal = $%d", q->principal);
        if (q->tenant)
                ADD(" AND tenant = $%d", q->tenant);
        if (q->object)
                ADD(" AND object = $%d", q->object);
        if (q->outcome)
                ADD(" AND outcome = $%d", q->outcome);
        if (q->method)
                ADD(" AND method = $%d", q->method);
        snprintf(limit, sizeof(limit), "%zu", q->limit);
        ADD(" ORDER BY seq DESC LIMIT $%d::bigint", limit);
#undef ADD
        PGresult *res = NULL;
        int r = pg_read(s, sql, n, p, &res, "read the audit log", err);
        if (r < 0)
                return r;
        _cleanup_json_ json_t *a = json_array();
        for (int i = 0; i < PQntuples(res); i++) {
                int64_t seq = 0, t = 0;
                (void)read_int(res, i, 0, &seq);
                (void)read_int(res, i, 1, &t);
                json_error_t je = { 0 };
                json_t *rec = json_loads(PQgetvalue(res, i, 2), JSON_REJECT_DUPLICATES, &je);
                if (!json_is_object(rec)) {
                        json_decref(rec);
                        PQclear(res);
                        return gv_error_set(err, EIO, "The store '%s' holds a corrupt audit "
                                            "record %lld (%s): restore the store from a backup, "
                                            "or delete the row (table audit, seq %lld).",
                                            s->shown, (long long)seq,
                                            rec ? "not a JSON object" : je.text, (long long)seq);
                }
                json_object_set_new(rec, "seq", json_integer(seq));
                json_object_set_new(rec, "time", json_integer(t));
                json_array_append_new(a, rec);
        }
        PQclear(res);
        *ret = TAKE_PTR(a);
        return 0;
}

static int pg_audit_trim(void *b, int64_t before_ms, size_t max, size_t *ret_deleted,
                         struct gv_error **err)
{
        char t[24], m[24];
        snprintf(t, sizeof(t), "%lld", (long long)before_ms);
        snprintf(m, sizeof(m), "%llu", (unsigned long long)(max > INT64_MAX ? INT64_MAX : max));
        struct trim tr = { .sql = "DELETE FROM audit WHERE time < $1 AND seq IN "
                                  "(SELECT seq FROM audit ORDER BY seq LIMIT $2)",
                           .n = 2, .p = { t, m }, .what = "trim the audit log" };
        int r = pg_tx(b, false, trim_body, &tr, tr.what, err);
        if (r < 0)
                return r;
        *ret_deleted = tr.deleted;
        return 0;
}

void gv_store_pg_test_cut_after_commit(struct gv_store *store)
{
        if (strcmp(gv_store_scheme(store), gv_store_pg_ops.scheme) != 0)
                return;
        struct pg_store *s = gv_store_backend(store);
        atomic_store(&s->cut_after_commit, 1);
}

const struct gv_store_ops gv_store_pg_ops = {
        .scheme = "postgresql",
        .open = pg_open,
        .close = pg_close,
        .get = pg_get,
        .list = pg_list,
        .write = pg_write,
        .write_with_events = pg_write_with_events,
        .events = pg_events,
        .events_trim = pg_events_trim,
        .schema_version = pg_schema_version,
        .audit_append = pg_audit_append,
        .audit_query = pg_audit_query,
        .audit_trim = pg_audit_trim,
        .version = pg_version,
};

const int gv_store_pg_schema_newest = SCHEMA_NEWEST;
