/* SPDX-License-Identifier: MIT */
/*
 * store-sqlite.c — the SQLite backend of the store (store.h, docs/store.md).
 *
 * The plan: one connection per opened store, opened without SQLite's own mutex and serialised
 * by ours (the cached prepared statements and the transaction of a batch are connection
 * state, so a whole call must hold the connection anyway). The file is created 0600 by us
 * before SQLite opens it (SQLite would create it 0644, and its -wal and -shm files copy the
 * database's mode). Every open sets journal_mode=WAL (persistent: readers do not block the
 * writer), synchronous=FULL (per connection: a commit is on disk when COMMIT returns, WAL or
 * not) and a busy timeout (other controller processes may share the file), then migrates.
 *
 * Schema: a numbered list of SQL steps (migrations[]); PRAGMA user_version is the number of
 * steps applied and each step runs in its own BEGIN IMMEDIATE transaction that re-reads the
 * version first, so two processes opening a fresh file at once apply each step once. A file
 * whose version is newer than this code is refused (-EPROTO) before anything is written to it.
 * PRAGMA application_id marks the file as a gpuvirt store; any other non-empty database is
 * refused.
 *
 * A batch is BEGIN IMMEDIATE (the write lock up front: no deadlock between two readers that
 * both want to upgrade), one statement per item with its compare-and-swap in the WHERE clause
 * and changes() telling whether it matched, events appended, COMMIT; any failure is ROLLBACK.
 * Values are always bound, never formatted into SQL.
 *
 * Reads (get, list, events, audit queries, the version) go through a second connection, the
 * reader (query_only, its own mutex and statements): in WAL mode a reader never waits for a
 * writer, so while a write waits out the busy timeout for another process's write lock (holding
 * the writer's mutex) the API's reads are still answered at once (reliability.md R12). Each
 * read is its own transaction, so it sees every commit made before it started, ours included.
 *
 * gv_store_version: PRAGMA data_version changes (on a connection) exactly when another
 * connection, in this process or another, committed to the file; read on the reader, that is
 * every commit, the writer's too. The writer's commits also bump s->version themselves (the
 * store without a reader, and no wait for the next read). No table and no extra write.
 */
#include <fcntl.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "store-priv.h"
#include "store.h"
#include "util/alloc.h"
#include "util/json.h"

/* PRAGMA application_id of a gpuvirt store: 0x47505654, "GPVT" (decimal: PRAGMA's syntax). */
#define STORE_APPLICATION_ID 1196447316
/* How long a call waits for another connection's write lock before -EBUSY. */
#define STORE_BUSY_TIMEOUT_MS 10000

/* Schema steps; step i takes the schema from version i to i + 1. Append only: never edit a
 * step that has shipped. */
static const char *const migrations[] = {
        /* 1: objects by (kind, key) with a generation each; the event log. AUTOINCREMENT so
         * that a sequence number is never reused, even after every event was trimmed (an SSE
         * client resuming from an old Last-Event-ID must not skip new events). */
        "CREATE TABLE objects ("
        "  kind TEXT NOT NULL,"
        "  key TEXT NOT NULL,"
        "  doc TEXT NOT NULL,"
        "  generation INTEGER NOT NULL CHECK (generation >= 1),"
        "  created_at INTEGER NOT NULL,"
        "  updated_at INTEGER NOT NULL,"
        "  PRIMARY KEY (kind, key)"
        ") STRICT, WITHOUT ROWID;"
        "CREATE TABLE events ("
        "  seq INTEGER PRIMARY KEY AUTOINCREMENT,"
        "  time INTEGER NOT NULL,"
        "  type TEXT NOT NULL,"
        "  subject TEXT NOT NULL,"
        "  data TEXT"
        ") STRICT;"
        "PRAGMA application_id = " STRINGIFY(STORE_APPLICATION_ID) ";",
        /* 2: the audit log (docs/audit.md). The filtered members as columns, the whole record
         * as JSON text. Time never decreases along seq (the append takes care), so a time range
         * is a seq range found through audit_time; the other indexes hold the rowid too, so
         * "principal = ? AND seq < ? ORDER BY seq DESC" walks one index backwards. Tenant and
         * object are often absent: partial indexes. */
        "CREATE TABLE audit ("
        "  seq INTEGER PRIMARY KEY AUTOINCREMENT,"
        "  time INTEGER NOT NULL,"
        "  principal TEXT,"
        "  tenant TEXT,"
        "  object TEXT,"
        "  outcome TEXT,"
        "  method TEXT,"
        "  record TEXT NOT NULL"
        ") STRICT;"
        "CREATE INDEX audit_time ON audit (time);"
        "CREATE INDEX audit_principal ON audit (principal);"
        "CREATE INDEX audit_tenant ON audit (tenant) WHERE tenant IS NOT NULL;"
        "CREATE INDEX audit_object ON audit (object) WHERE object IS NOT NULL;"
        "CREATE INDEX audit_outcome ON audit (outcome);",
};
#define SCHEMA_NEWEST ((int)ELEMENTSOF(migrations))

enum stmt_id {
        STMT_BEGIN,
        STMT_COMMIT,
        STMT_ROLLBACK,
        STMT_GET,
        STMT_GENERATION,
        STMT_LIST,
        STMT_CREATE,
        STMT_UPDATE,
        STMT_DELETE,
        STMT_PUT,
        STMT_EVENT_APPEND,
        STMT_EVENTS,
        STMT_EVENTS_TRIM,
        STMT_USER_VERSION,
        STMT_AUDIT_APPEND,
        STMT_AUDIT_TRIM,
        _STMT_MAX,
};

static const char *const stmt_sql[_STMT_MAX] = {
        [STMT_BEGIN] = "BEGIN IMMEDIATE",
        [STMT_COMMIT] = "COMMIT",
        [STMT_ROLLBACK] = "ROLLBACK",
        [STMT_GET] = "SELECT doc, generation, created_at, updated_at FROM objects "
                     "WHERE kind = ?1 AND key = ?2",
        [STMT_GENERATION] = "SELECT generation FROM objects WHERE kind = ?1 AND key = ?2",
        [STMT_LIST] = "SELECT key, doc, generation, created_at, updated_at FROM objects "
                      "WHERE kind = ?1 ORDER BY key",
        [STMT_CREATE] = "INSERT INTO objects (kind, key, doc, generation, created_at, updated_at) "
                        "VALUES (?1, ?2, ?3, 1, ?4, ?4) ON CONFLICT (kind, key) DO NOTHING",
        [STMT_UPDATE] = "UPDATE objects SET doc = ?3, generation = generation + 1, "
                        "updated_at = ?5 WHERE kind = ?1 AND key = ?2 AND generation = ?4",
        [STMT_DELETE] = "DELETE FROM objects WHERE kind = ?1 AND key = ?2 AND generation = ?3",
        [STMT_PUT] = "INSERT INTO objects (kind, key, doc, generation, created_at, updated_at) "
                     "VALUES (?1, ?2, ?3, 1, ?4, ?4) ON CONFLICT (kind, key) DO UPDATE SET "
                     "doc = excluded.doc, generation = generation + 1, "
                     "updated_at = excluded.updated_at RETURNING generation",
        [STMT_EVENT_APPEND] = "INSERT INTO events (time, type, subject, data) "
                              "VALUES (?1, ?2, ?3, ?4)",
        [STMT_EVENTS] = "SELECT seq, time, type, subject, data FROM events WHERE seq > ?1 "
                        "ORDER BY seq LIMIT ?2",
        /* Everything at or below the (keep+1)-th newest; nothing when there are <= keep. */
        [STMT_EVENTS_TRIM] = "DELETE FROM events WHERE seq <= "
                             "(SELECT seq FROM events ORDER BY seq DESC LIMIT 1 OFFSET ?1)",
        [STMT_USER_VERSION] = "PRAGMA user_version",
        /* Time never goes below the newest record's (in the transaction of the append). */
        [STMT_AUDIT_APPEND] = "INSERT INTO audit (time, principal, tenant, object, outcome, "
                              "method, record) VALUES (max(?1, coalesce((SELECT time FROM "
                              "audit ORDER BY seq DESC LIMIT 1), 0)), ?2, ?3, ?4, ?5, ?6, ?7) "
                              "RETURNING seq, time",
        /* Among the oldest ?2 records, those older than ?1 (time grows with seq: a prefix). */
        [STMT_AUDIT_TRIM] = "DELETE FROM audit WHERE time < ?1 AND seq IN "
                            "(SELECT seq FROM audit ORDER BY seq LIMIT ?2)",
};


struct sqlite_store {
        pthread_mutex_t lock;
        sqlite3 *db;
        char *path;
        sqlite3_stmt *stmt[_STMT_MAX];
        /* The reads' connection (NULL in the reader itself). */
        struct sqlite_store *reader;
        /* gv_store_version: our own commits counted here (atomically: the version is read
         * under the reader's mutex), other connections' seen through PRAGMA data_version
         * (which moves only for commits by other connections). */
        int64_t version;
        int64_t data_version;
};

/* The connection a read uses: the reader when there is one. */
static struct sqlite_store *reading(struct sqlite_store *s)
{
        return s->reader ? s->reader : s;
}

static void version_bump(struct sqlite_store *s)
{
        __atomic_add_fetch(&s->version, 1, __ATOMIC_SEQ_CST);
}

static int64_t now_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int sql_errno(int rc)
{
        switch (rc & 0xff) {
        case SQLITE_BUSY:
        case SQLITE_LOCKED:
                return -EBUSY;
        case SQLITE_NOMEM:
                return -ENOMEM;
        case SQLITE_READONLY:
                return -EROFS;
        case SQLITE_PERM:
        case SQLITE_AUTH:
                return -EACCES;
        case SQLITE_FULL:
                return -ENOSPC;
        default:
                return -EIO;
        }
}

/* An SQLite failure while doing `what` ("read VM 'x'") as an error. */
static int sql_fail(struct sqlite_store *s, int rc, const char *what, struct gv_error **err)
{
        int r = sql_errno(rc);
        if ((rc & 0xff) == SQLITE_NOTADB)
                return gv_error_set(err, EINVAL, "Cannot %s: '%s' is not an SQLite database; "
                                    "give the path of a gpuvirt store, or of a file to create.",
                                    what, s->path);
        if (r == -EBUSY)
                return gv_error_set(err, EBUSY, "Cannot %s: the store '%s' stayed locked by "
                                    "another connection for %d ms; retry, and if it persists "
                                    "find the process holding a transaction open.", what,
                                    s->path, STORE_BUSY_TIMEOUT_MS);
        return gv_error_set(err, -r, "Cannot %s in the store '%s': %s.", what, s->path,
                            sqlite3_errmsg(s->db));
}

static void stmt_resetp(sqlite3_stmt **st)
{
        if (*st) {
                (void)sqlite3_reset(*st);
                (void)sqlite3_clear_bindings(*st);
        }
}
#define _cleanup_stmt_ _cleanup_(stmt_resetp)

/* The cached statement `id`, prepared on first use. The caller resets it (_cleanup_stmt_). */
static int stmt_get(struct sqlite_store *s, enum stmt_id id, sqlite3_stmt **ret,
                    struct gv_error **err)
{
        if (!s->stmt[id]) {
                int rc = sqlite3_prepare_v3(s->db, stmt_sql[id], -1, SQLITE_PREPARE_PERSISTENT,
                                            &s->stmt[id], NULL);
                if (rc != SQLITE_OK) {
                        s->stmt[id] = NULL;
                        return sql_fail(s, rc, "prepare a statement", err);
                }
        }
        *ret = s->stmt[id];
        return 0;
}

/* Run a cached statement that returns no rows. */
static int stmt_exec(struct sqlite_store *s, enum stmt_id id, const char *what,
                     struct gv_error **err)
{
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        int r = stmt_get(s, id, &st, err);
        if (r < 0)
                return r;
        int rc = sqlite3_step(st);
        if (rc != SQLITE_DONE && rc != SQLITE_ROW)
                return sql_fail(s, rc, what, err);
        return 0;
}

static void tx_rollback(struct sqlite_store *s)
{
        if (!sqlite3_get_autocommit(s->db))
                (void)stmt_exec(s, STMT_ROLLBACK, "roll back", NULL);
}

static int bind_kind_key(sqlite3_stmt *st, enum gv_store_kind kind, const char *key)
{
        int rc = sqlite3_bind_text(st, 1, gv_store_kind_to_string(kind), -1, SQLITE_STATIC);
        if (rc == SQLITE_OK)
                rc = sqlite3_bind_text(st, 2, key, -1, SQLITE_STATIC);
        return rc;
}

static int pragma_int(struct sqlite_store *s, const char *sql, int64_t *ret,
                      struct gv_error **err)
{
        sqlite3_stmt *st = NULL;
        int rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
        if (rc == SQLITE_OK)
                rc = sqlite3_step(st);
        if (rc != SQLITE_ROW) {
                int r = sql_fail(s, rc, "read the database header", err);
                sqlite3_finalize(st);
                return r;
        }
        *ret = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
        return 0;
}

static int user_version(struct sqlite_store *s, int64_t *ret, struct gv_error **err)
{
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        int r = stmt_get(s, STMT_USER_VERSION, &st, err);
        if (r < 0)
                return r;
        int rc = sqlite3_step(st);
        if (rc != SQLITE_ROW)
                return sql_fail(s, rc, "read the schema version", err);
        *ret = sqlite3_column_int64(st, 0);
        return 0;
}

static int refuse_newer(struct sqlite_store *s, int64_t version, struct gv_error **err)
{
        return gv_error_set(err, EPROTO, "The store '%s' was written by a newer gpuvirt (schema "
                            "%lld; this one knows %d): upgrade gpuvirt.", s->path,
                            (long long)version, SCHEMA_NEWEST);
}

/* Apply every step above the file's version, each in its own transaction. */
static int migrate(struct sqlite_store *s, struct gv_error **err)
{
        int64_t have;
        int r = user_version(s, &have, err);
        if (r < 0)
                return r;
        if (have == SCHEMA_NEWEST) /* the common case: no write lock taken */
                return 0;
        for (int v = 1; v <= SCHEMA_NEWEST; v++) {
                r = stmt_exec(s, STMT_BEGIN, "start the schema migration", err);
                if (r < 0)
                        return r;
                int64_t cur;
                r = user_version(s, &cur, err);
                if (r < 0) {
                        tx_rollback(s);
                        return r;
                }
                if (cur > SCHEMA_NEWEST) {
                        tx_rollback(s);
                        return refuse_newer(s, cur, err);
                }
                if (cur >= v) { /* applied before, or by another process meanwhile */
                        tx_rollback(s);
                        continue;
                }
                char *msg = NULL;
                int rc = sqlite3_exec(s->db, migrations[v - 1], NULL, NULL, &msg);
                if (rc == SQLITE_OK) {
                        /* PRAGMA takes no bound parameters; v is a constant of this file. */
                        char sql[64];
                        snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", v);
                        rc = sqlite3_exec(s->db, sql, NULL, NULL, &msg);
                }
                if (rc == SQLITE_OK) {
                        r = stmt_exec(s, STMT_COMMIT, "commit the schema migration", err);
                        if (r < 0) {
                                tx_rollback(s);
                                return r;
                        }
                        continue;
                }
                r = gv_error_set(err, -sql_errno(rc), "Cannot migrate the store '%s' to schema "
                                 "%d: %s.", s->path, v, msg ? msg : sqlite3_errstr(rc));
                sqlite3_free(msg);
                tx_rollback(s);
                return r;
        }
        return 0;
}

static void sqlite_close(void *b)
{
        struct sqlite_store *s = b;
        if (!s)
                return;
        sqlite_close(s->reader);
        for (size_t i = 0; i < _STMT_MAX; i++)
                sqlite3_finalize(s->stmt[i]);
        sqlite3_close(s->db);
        pthread_mutex_destroy(&s->lock);
        free(s->path);
        free(s);
}

static void sqlite_closep(struct sqlite_store **s)
{
        sqlite_close(*s);
}

/* Create the file 0600 unless it exists (SQLite would make it 0644 & ~umask). */
static int create_file(const char *path, struct gv_error **err)
{
        int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY, 0600);
        if (fd < 0) {
                int e = errno;
                if (e == ENOENT)
                        return gv_error_set(err, ENOENT, "Cannot create the store '%s': its "
                                            "directory does not exist; create it first.", path);
                if (e == ELOOP)
                        return gv_error_set(err, ELOOP, "The store '%s' is a symbolic link: give "
                                            "the path of the file itself.", path);
                return gv_error_set(err, e, "Cannot open the store '%s': %s.", path,
                                    strerror(e));
        }
        struct stat st;
        int r = fstat(fd, &st) < 0 ? -errno : 0;
        close(fd);
        if (r < 0)
                return gv_error_set(err, -r, "Cannot stat the store '%s': %s.", path,
                                    strerror(-r));
        if (!S_ISREG(st.st_mode))
                return gv_error_set(err, EINVAL, "The store '%s' is not a regular file.", path);
        return 0;
}

/* The three header values from one snapshot: read apart, another process's first migration
 * step (tables and application_id in one transaction) could land between two reads and make
 * our own fresh file look like another application's. */
static int read_header(struct sqlite_store *s, int64_t *ret_app, int64_t *ret_version,
                       int64_t *ret_tables, struct gv_error **err)
{
        char *msg = NULL;
        int rc = sqlite3_exec(s->db, "BEGIN", NULL, NULL, &msg);
        if (rc != SQLITE_OK) {
                int r = gv_error_set(err, -sql_errno(rc), "Cannot read the header of the store "
                                     "'%s': %s.", s->path, msg ? msg : sqlite3_errstr(rc));
                sqlite3_free(msg);
                return r;
        }
        int64_t app = 0, version = 0, tables = 0;
        int r = pragma_int(s, "SELECT count(*) FROM sqlite_schema", &tables, err);
        if (r >= 0)
                r = pragma_int(s, "PRAGMA application_id", &app, err);
        if (r >= 0)
                r = user_version(s, &version, err);
        tx_rollback(s); /* read only: nothing to keep */
        if (r < 0)
                return r;
        *ret_app = app;
        *ret_version = version;
        *ret_tables = tables;
        return 0;
}

/* A non-empty database must be ours. */
static int check_ownership(struct sqlite_store *s, struct gv_error **err)
{
        int64_t app = 0, version = 0, tables = 0;
        int r = read_header(s, &app, &version, &tables, err);
        if (r < 0)
                return r;
        if ((version > 0 || tables > 0) && app != STORE_APPLICATION_ID)
                return gv_error_set(err, EINVAL, "'%s' is an SQLite database of another "
                                    "application (application_id %lld, user_version %lld), not "
                                    "a gpuvirt store: give another path.", s->path,
                                    (long long)app, (long long)version);
        if (version > SCHEMA_NEWEST)
                return refuse_newer(s, version, err);
        return 0;
}

static int64_t monotonic_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* One attempt at `sql` (a journal_mode PRAGMA); *ret_busy set when another connection held
 * the lock it needs. The mode the file is in afterwards goes to ret_wal. */
static int journal_mode(struct sqlite_store *s, const char *sql, bool *ret_wal, bool *ret_busy,
                        struct gv_error **err)
{
        sqlite3_stmt *st = NULL;
        int rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
        if (rc == SQLITE_OK)
                rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
                const char *mode = (const char *)sqlite3_column_text(st, 0);
                *ret_wal = mode && strcmp(mode, "wal") == 0;
                *ret_busy = false;
                sqlite3_finalize(st);
                return 0;
        }
        sqlite3_finalize(st);
        if ((rc & 0xff) == SQLITE_BUSY) {
                *ret_busy = true;
                return 0;
        }
        return sql_fail(s, rc, "switch to write-ahead logging", err);
}

/* Switching to WAL needs the file to itself, and SQLite answers BUSY at once (no busy
 * handler: waiting could deadlock) while another process opening the same fresh file reads
 * it. Once one of them switched, the mode is stored in the file and the others find it. */
static int use_wal(struct sqlite_store *s, struct gv_error **err)
{
        int64_t deadline = monotonic_ms() + STORE_BUSY_TIMEOUT_MS;
        for (unsigned attempt = 0;; attempt++) {
                bool wal = false, busy = false;
                int r = journal_mode(s, "PRAGMA journal_mode", &wal, &busy, err);
                if (r < 0)
                        return r;
                if (!wal && !busy)
                        r = journal_mode(s, "PRAGMA journal_mode = WAL", &wal, &busy, err);
                if (r < 0)
                        return r;
                if (wal)
                        return 0;
                if (!busy)
                        return gv_error_set(err, EIO, "The store '%s' cannot use write-ahead "
                                            "logging (its journal mode stays as it was): put "
                                            "it on a local file system.", s->path);
                if (monotonic_ms() >= deadline)
                        return gv_error_set(err, EBUSY, "Cannot switch the store '%s' to "
                                            "write-ahead logging: another connection kept it "
                                            "locked for %d ms; find the process holding a "
                                            "transaction open.", s->path,
                                            STORE_BUSY_TIMEOUT_MS);
                /* 1, 2, 4 .. 32 ms, offset by the attempt so two waiters drift apart. */
                unsigned ms = (1u << (attempt < 5 ? attempt : 5)) + (attempt & 3);
                nanosleep(&(struct timespec){ .tv_nsec = (long)ms * 1000000 }, NULL);
        }
}

static int set_pragmas(struct sqlite_store *s, struct gv_error **err)
{
        int r = use_wal(s, err);
        if (r < 0)
                return r;

        char *msg = NULL;
        int rc = sqlite3_exec(s->db, "PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;",
                              NULL, NULL, &msg);
        if (rc != SQLITE_OK) {
                r = gv_error_set(err, -sql_errno(rc), "Cannot configure the store '%s': %s.",
                                     s->path, msg ? msg : sqlite3_errstr(rc));
                sqlite3_free(msg);
                return r;
        }
        return 0;
}

/* The second connection, for reads only (after the writer made the file WAL and migrated it):
 * query_only, so a bug that wrote through it fails instead of racing the writer. */
static int reader_open(struct sqlite_store *s, struct gv_error **err)
{
        _cleanup_(sqlite_closep) struct sqlite_store *rd = xnew0(struct sqlite_store, 1);
        pthread_mutex_init(&rd->lock, NULL);
        rd->path = xstrdup(s->path);
        int rc = sqlite3_open_v2(rd->path, &rd->db,
                                 SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX |
                                         SQLITE_OPEN_NOFOLLOW | SQLITE_OPEN_EXRESCODE,
                                 NULL);
        if (rc != SQLITE_OK)
                return gv_error_set(err, -sql_errno(rc), "Cannot open the store '%s' for "
                                    "reading: %s.", rd->path,
                                    rd->db ? sqlite3_errmsg(rd->db) : sqlite3_errstr(rc));
        sqlite3_busy_timeout(rd->db, STORE_BUSY_TIMEOUT_MS);
        char *msg = NULL;
        rc = sqlite3_exec(rd->db, "PRAGMA query_only = ON;", NULL, NULL, &msg);
        if (rc != SQLITE_OK) {
                int r = gv_error_set(err, -sql_errno(rc), "Cannot configure the store '%s' "
                                     "for reading: %s.", rd->path,
                                     msg ? msg : sqlite3_errstr(rc));
                sqlite3_free(msg);
                return r;
        }
        s->reader = TAKE_PTR(rd);
        return 0;
}

static int sqlite_open(const char *location, void **ret, struct gv_error **err)
{
        _cleanup_(sqlite_closep) struct sqlite_store *s = xnew0(struct sqlite_store, 1);
        pthread_mutex_init(&s->lock, NULL);
        /* SQLite may treat "file:..." as a URI and ":memory:" as no file: always a path. */
        if (strncmp(location, "file:", 5) == 0 || location[0] == ':')
                s->path = xasprintf("./%s", location);
        else
                s->path = xstrdup(location);

        int r = create_file(s->path, err);
        if (r < 0)
                return r;
        int rc = sqlite3_open_v2(s->path, &s->db,
                                 SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX |
                                         SQLITE_OPEN_NOFOLLOW | SQLITE_OPEN_EXRESCODE,
                                 NULL);
        if (rc != SQLITE_OK)
                return gv_error_set(err, -sql_errno(rc), "Cannot open the store '%s': %s.",
                                    s->path, s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
        sqlite3_busy_timeout(s->db, STORE_BUSY_TIMEOUT_MS);

        r = check_ownership(s, err);
        if (r < 0)
                return r;
        r = set_pragmas(s, err);
        if (r < 0)
                return r;
        r = migrate(s, err);
        if (r < 0)
                return r;
        r = reader_open(s, err);
        if (r < 0)
                return r;
        r = pragma_int(s->reader, "PRAGMA data_version", &s->data_version, err);
        if (r < 0)
                return r;
        s->version = 1;
        *ret = TAKE_PTR(s);
        return 0;
}

/* Parse a stored document; a row that does not hold a JSON object is corrupt (-EIO). */
static int parse_doc(struct sqlite_store *s, sqlite3_stmt *st, int col, enum gv_store_kind kind,
                     const char *key, json_t **ret, struct gv_error **err)
{
        const char *text = (const char *)sqlite3_column_text(st, col);
        int len = sqlite3_column_bytes(st, col);
        json_error_t je = { 0 };
        json_t *j = text ? json_loadb(text, (size_t)len, JSON_REJECT_DUPLICATES, &je) : NULL;
        if (!json_is_object(j)) {
                json_decref(j);
                return gv_error_set(err, EIO, "The store '%s' holds a corrupt document for %s "
                                    "'%s' (%s): restore the store from a backup, or delete the "
                                    "row with sqlite3 (kind '%s', key '%s').", s->path,
                                    gv_store_kind_to_string(kind), key,
                                    text ? (j ? "not a JSON object" : je.text) : "no text",
                                    gv_store_kind_to_string(kind), key);
        }
        *ret = j;
        return 0;
}

/* Columns doc, generation, created_at, updated_at from `col` on into o (key set by caller). */
static int read_obj(struct sqlite_store *s, sqlite3_stmt *st, int col, enum gv_store_kind kind,
                    const char *key, struct gv_store_obj *o, struct gv_error **err)
{
        json_t *doc = NULL;
        int r = parse_doc(s, st, col, kind, key, &doc, err);
        if (r < 0)
                return r;
        int64_t gen = sqlite3_column_int64(st, col + 1);
        if (gen < 1) {
                json_decref(doc);
                return gv_error_set(err, EIO, "The store '%s' holds generation %lld for %s '%s': "
                                    "generations start at 1; restore the store from a backup.",
                                    s->path, (long long)gen, gv_store_kind_to_string(kind), key);
        }
        o->doc = doc;
        o->generation = gen;
        o->created_at = sqlite3_column_int64(st, col + 2);
        o->updated_at = sqlite3_column_int64(st, col + 3);
        return 0;
}

static int sqlite_get_locked(struct sqlite_store *s, enum gv_store_kind kind, const char *key,
                             struct gv_store_obj *ret, struct gv_error **err)
{
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        int r = stmt_get(s, STMT_GET, &st, err);
        if (r < 0)
                return r;
        int rc = bind_kind_key(st, kind, key);
        if (rc == SQLITE_OK)
                rc = sqlite3_step(st);
        if (rc == SQLITE_DONE)
                return gv_error_set(err, ENOENT, "%s '%s' does not exist.", gv_store_kind_human(kind),
                                    key);
        if (rc != SQLITE_ROW) {
                _cleanup_free_ char *what = xasprintf("read %s '%s'",
                                                      gv_store_kind_to_string(kind), key);
                return sql_fail(s, rc, what, err);
        }
        struct gv_store_obj o = { 0 };
        r = read_obj(s, st, 0, kind, key, &o, err);
        if (r < 0)
                return r;
        o.key = xstrdup(key);
        *ret = o;
        return 0;
}

static int sqlite_get(void *b, enum gv_store_kind kind, const char *key, struct gv_store_obj *ret,
                      struct gv_error **err)
{
        struct sqlite_store *s = reading(b);
        pthread_mutex_lock(&s->lock);
        int r = sqlite_get_locked(s, kind, key, ret, err);
        pthread_mutex_unlock(&s->lock);
        return r;
}

static int sqlite_list_locked(struct sqlite_store *s, enum gv_store_kind kind,
                              struct gv_store_obj **ret, size_t *ret_n, struct gv_error **err)
{
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        int r = stmt_get(s, STMT_LIST, &st, err);
        if (r < 0)
                return r;
        int rc = sqlite3_bind_text(st, 1, gv_store_kind_to_string(kind), -1, SQLITE_STATIC);
        struct gv_store_obj *v = NULL;
        size_t n = 0, cap = 0;
        while (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
                const char *key = (const char *)sqlite3_column_text(st, 0);
                if (n == cap) {
                        cap = cap ? cap * 2 : 16;
                        v = xreallocarray(v, cap, sizeof(*v));
                }
                v[n] = (struct gv_store_obj){ 0 };
                r = read_obj(s, st, 1, kind, key ? key : "", &v[n], err);
                if (r < 0) {
                        gv_store_objs_free(v, n);
                        return r;
                }
                v[n].key = xstrdup(key ? key : "");
                n++;
                rc = SQLITE_OK;
        }
        if (rc != SQLITE_DONE) {
                gv_store_objs_free(v, n);
                _cleanup_free_ char *what = xasprintf("list the %s objects",
                                                      gv_store_kind_to_string(kind));
                return sql_fail(s, rc, what, err);
        }
        *ret = v;
        *ret_n = n;
        return 0;
}

static int sqlite_list(void *b, enum gv_store_kind kind, struct gv_store_obj **ret, size_t *ret_n,
                       struct gv_error **err)
{
        struct sqlite_store *s = reading(b);
        pthread_mutex_lock(&s->lock);
        int r = sqlite_list_locked(s, kind, ret, ret_n, err);
        pthread_mutex_unlock(&s->lock);
        return r;
}

/* -ESTALE or -ENOENT for an UPDATE or DELETE whose compare-and-swap did not match. */
static int cas_failed(struct sqlite_store *s, const struct gv_store_write *w,
                      struct gv_error **err)
{
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        int r = stmt_get(s, STMT_GENERATION, &st, err);
        if (r < 0)
                return r;
        int rc = bind_kind_key(st, w->kind, w->key);
        if (rc == SQLITE_OK)
                rc = sqlite3_step(st);
        if (rc == SQLITE_ROW)
                return gv_error_set(err, ESTALE, "%s '%s' changed since it was read (generation "
                                    "%lld, now %lld): re-read and retry.", gv_store_kind_human(w->kind),
                                    w->key, (long long)w->generation,
                                    (long long)sqlite3_column_int64(st, 0));
        if (rc == SQLITE_DONE)
                return gv_error_set(err, ENOENT, "%s '%s' does not exist (any more): re-read "
                                    "and retry.", gv_store_kind_human(w->kind), w->key);
        return sql_fail(s, rc, "check a generation", err);
}

static int apply_write(struct sqlite_store *s, const struct gv_store_write *w, int64_t now,
                       int64_t *ret_generation, struct gv_error **err)
{
        static const enum stmt_id op_stmt[] = {
                [GV_STORE_CREATE] = STMT_CREATE,
                [GV_STORE_UPDATE] = STMT_UPDATE,
                [GV_STORE_DELETE] = STMT_DELETE,
                [GV_STORE_PUT] = STMT_PUT,
        };
        static const char *const op_verb[] = {
                [GV_STORE_CREATE] = "create",
                [GV_STORE_UPDATE] = "update",
                [GV_STORE_DELETE] = "delete",
                [GV_STORE_PUT] = "write",
        };
        _cleanup_free_ char *doc = NULL;
        if (w->op != GV_STORE_DELETE) {
                doc = json_dumps(w->doc, JSON_COMPACT | JSON_SORT_KEYS);
                if (!doc)
                        return gv_error_set(err, EINVAL, "The document of %s '%s' cannot be "
                                            "serialised as JSON.", gv_store_kind_to_string(w->kind),
                                            w->key);
        }

        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        int r = stmt_get(s, op_stmt[w->op], &st, err);
        if (r < 0)
                return r;
        int rc = bind_kind_key(st, w->kind, w->key);
        switch (w->op) {
        case GV_STORE_CREATE:
        case GV_STORE_PUT:
                if (rc == SQLITE_OK)
                        rc = sqlite3_bind_text(st, 3, doc, -1, SQLITE_STATIC);
                if (rc == SQLITE_OK)
                        rc = sqlite3_bind_int64(st, 4, now);
                break;
        case GV_STORE_UPDATE:
                if (rc == SQLITE_OK)
                        rc = sqlite3_bind_text(st, 3, doc, -1, SQLITE_STATIC);
                if (rc == SQLITE_OK)
                        rc = sqlite3_bind_int64(st, 4, w->generation);
                if (rc == SQLITE_OK)
                        rc = sqlite3_bind_int64(st, 5, now);
                break;
        case GV_STORE_DELETE:
                if (rc == SQLITE_OK)
                        rc = sqlite3_bind_int64(st, 3, w->generation);
                break;
        }
        if (rc == SQLITE_OK)
                rc = sqlite3_step(st);

        if (w->op == GV_STORE_PUT && rc == SQLITE_ROW) {
                *ret_generation = sqlite3_column_int64(st, 0);
                return 0;
        }
        if (rc != SQLITE_DONE) {
                _cleanup_free_ char *what = xasprintf("%s %s '%s'", op_verb[w->op],
                                                      gv_store_kind_to_string(w->kind), w->key);
                return sql_fail(s, rc, what, err);
        }
        bool matched = sqlite3_changes(s->db) == 1;
        switch (w->op) {
        case GV_STORE_CREATE:
                if (!matched)
                        return gv_error_set(err, EEXIST, "%s '%s' exists already: choose another "
                                            "name, or read it and update it.",
                                            gv_store_kind_human(w->kind), w->key);
                *ret_generation = 1;
                return 0;
        case GV_STORE_UPDATE:
        case GV_STORE_DELETE:
                if (!matched)
                        return cas_failed(s, w, err);
                *ret_generation = w->op == GV_STORE_UPDATE ? w->generation + 1 : 0;
                return 0;
        case GV_STORE_PUT:
                break;
        }
        /* PUT returned no row: cannot happen with RETURNING. */
        return gv_error_set(err, EIO, "The store '%s' did not say the generation of %s '%s'.",
                            s->path, gv_store_kind_to_string(w->kind), w->key);
}

static int append_event(struct sqlite_store *s, const struct gv_store_event *ev, int64_t now,
                        struct gv_error **err)
{
        _cleanup_free_ char *data = NULL;
        if (ev->data) {
                data = json_dumps(ev->data, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
                if (!data)
                        return gv_error_set(err, EINVAL, "The data of event '%s' (%s) cannot be "
                                            "serialised as JSON.", ev->type, ev->subject);
        }
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        int r = stmt_get(s, STMT_EVENT_APPEND, &st, err);
        if (r < 0)
                return r;
        int rc = sqlite3_bind_int64(st, 1, ev->time > 0 ? ev->time : now);
        if (rc == SQLITE_OK)
                rc = sqlite3_bind_text(st, 2, ev->type, -1, SQLITE_STATIC);
        if (rc == SQLITE_OK)
                rc = sqlite3_bind_text(st, 3, ev->subject, -1, SQLITE_STATIC);
        if (rc == SQLITE_OK)
                rc = data ? sqlite3_bind_text(st, 4, data, -1, SQLITE_STATIC)
                          : sqlite3_bind_null(st, 4);
        if (rc == SQLITE_OK)
                rc = sqlite3_step(st);
        if (rc != SQLITE_DONE)
                return sql_fail(s, rc, "append an event", err);
        return 0;
}

static int batch_locked(struct sqlite_store *s, struct gv_store_write *w, size_t n_w,
                        const struct gv_store_event *ev, size_t n_ev, struct gv_error **err)
{
        int r = stmt_exec(s, STMT_BEGIN, "start a transaction", err);
        if (r < 0)
                return r;
        int64_t now = now_ms();
        _cleanup_free_ int64_t *gens = xnew0(int64_t, n_w ? n_w : 1);
        for (size_t i = 0; i < n_w && r >= 0; i++)
                r = apply_write(s, &w[i], now, &gens[i], err);
        for (size_t i = 0; i < n_ev && r >= 0; i++)
                r = append_event(s, &ev[i], now, err);
        if (r >= 0)
                r = stmt_exec(s, STMT_COMMIT, "commit", err);
        if (r < 0) {
                tx_rollback(s);
                return r;
        }
        for (size_t i = 0; i < n_w; i++)
                w[i].new_generation = gens[i];
        version_bump(s);
        return 0;
}

static int sqlite_write_with_events(void *b, struct gv_store_write *w, size_t n_w,
                                    const struct gv_store_event *ev, size_t n_ev,
                                    struct gv_error **err)
{
        struct sqlite_store *s = b;
        pthread_mutex_lock(&s->lock);
        int r = batch_locked(s, w, n_w, ev, n_ev, err);
        pthread_mutex_unlock(&s->lock);
        return r;
}

static int sqlite_write(void *b, struct gv_store_write *w, size_t n, struct gv_error **err)
{
        return sqlite_write_with_events(b, w, n, NULL, 0, err);
}

static int sqlite_events_locked(struct sqlite_store *s, int64_t after, size_t max,
                                struct gv_store_event **ret, size_t *ret_n,
                                struct gv_error **err)
{
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        int r = stmt_get(s, STMT_EVENTS, &st, err);
        if (r < 0)
                return r;
        int rc = sqlite3_bind_int64(st, 1, after);
        if (rc == SQLITE_OK)
                rc = sqlite3_bind_int64(st, 2, max > INT64_MAX ? INT64_MAX : (int64_t)max);
        struct gv_store_event *v = NULL;
        size_t n = 0, cap = 0;
        while (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
                if (n == cap) {
                        cap = cap ? cap * 2 : 16;
                        v = xreallocarray(v, cap, sizeof(*v));
                }
                struct gv_store_event *e = &v[n];
                *e = (struct gv_store_event){ 0 };
                e->seq = sqlite3_column_int64(st, 0);
                e->time = sqlite3_column_int64(st, 1);
                const char *type = (const char *)sqlite3_column_text(st, 2);
                const char *subject = (const char *)sqlite3_column_text(st, 3);
                e->type = xstrdup(type ? type : "");
                e->subject = xstrdup(subject ? subject : "");
                n++;
                if (sqlite3_column_type(st, 4) == SQLITE_NULL) {
                        e->data = json_null();
                } else {
                        const char *text = (const char *)sqlite3_column_text(st, 4);
                        int len = sqlite3_column_bytes(st, 4);
                        json_error_t je = { 0 };
                        e->data = text ? json_loadb(text, (size_t)len,
                                                    JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &je)
                                       : NULL;
                        if (!e->data) {
                                r = gv_error_set(err, EIO, "The store '%s' holds corrupt data in "
                                                 "event %lld (%s): restore the store from a "
                                                 "backup, or trim the events.", s->path,
                                                 (long long)e->seq, je.text);
                                gv_store_events_free(v, n);
                                return r;
                        }
                }
                rc = SQLITE_OK;
        }
        if (rc != SQLITE_DONE) {
                gv_store_events_free(v, n);
                return sql_fail(s, rc, "read the events", err);
        }
        *ret = v;
        *ret_n = n;
        return 0;
}

static int sqlite_events(void *b, int64_t after, size_t max, struct gv_store_event **ret,
                         size_t *ret_n, struct gv_error **err)
{
        struct sqlite_store *s = reading(b);
        pthread_mutex_lock(&s->lock);
        int r = sqlite_events_locked(s, after, max, ret, ret_n, err);
        pthread_mutex_unlock(&s->lock);
        return r;
}

static int sqlite_events_trim_locked(struct sqlite_store *s, size_t keep, struct gv_error **err)
{
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        int r = stmt_get(s, STMT_EVENTS_TRIM, &st, err);
        if (r < 0)
                return r;
        int rc = sqlite3_bind_int64(st, 1, keep > INT64_MAX ? INT64_MAX : (int64_t)keep);
        if (rc == SQLITE_OK)
                rc = sqlite3_step(st);
        if (rc != SQLITE_DONE)
                return sql_fail(s, rc, "trim the events", err);
        if (sqlite3_changes(s->db) > 0)
                version_bump(s);
        return 0;
}

static int sqlite_events_trim(void *b, size_t keep, struct gv_error **err)
{
        struct sqlite_store *s = b;
        pthread_mutex_lock(&s->lock);
        int r = sqlite_events_trim_locked(s, keep, err);
        pthread_mutex_unlock(&s->lock);
        return r;
}

static int sqlite_schema_version(void *b, int *ret, struct gv_error **err)
{
        struct sqlite_store *s = b;
        int64_t v = 0;
        pthread_mutex_lock(&s->lock);
        int r = user_version(s, &v, err);
        pthread_mutex_unlock(&s->lock);
        if (r < 0)
                return r;
        *ret = (int)v;
        return 0;
}

static int sqlite_version(void *b, int64_t *ret, struct gv_error **err)
{
        struct sqlite_store *s = b, *rd = reading(s);
        int64_t dv = 0;
        pthread_mutex_lock(&rd->lock);
        int r = pragma_int(rd, "PRAGMA data_version", &dv, err);
        if (r >= 0) {
                if (dv != s->data_version) { /* s->data_version: under the reader's mutex */
                        s->data_version = dv;
                        version_bump(s);
                }
                *ret = __atomic_load_n(&s->version, __ATOMIC_SEQ_CST);
        }
        pthread_mutex_unlock(&rd->lock);
        return r;
}

int gv_store_sqlite_pragma(struct gv_store *store, const char *name, char **ret,
                           struct gv_error **err)
{
        if (strcmp(gv_store_scheme(store), gv_store_sqlite_ops.scheme) != 0)
                return gv_error_set(err, EOPNOTSUPP, "The store is '%s', not SQLite.",
                                    gv_store_scheme(store));
        if (!name || !*name || strspn(name, "abcdefghijklmnopqrstuvwxyz_") != strlen(name))
                return gv_error_set(err, EINVAL, "'%s' is not a PRAGMA name (a-z and '_').",
                                    name ? name : "");
        struct sqlite_store *s = gv_store_backend(store);
        _cleanup_free_ char *sql = xasprintf("PRAGMA %s", name);
        pthread_mutex_lock(&s->lock);
        sqlite3_stmt *st = NULL;
        int r = 0;
        int rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
        if (rc == SQLITE_OK)
                rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
                const char *v = (const char *)sqlite3_column_text(st, 0);
                *ret = xstrdup(v ? v : "");
        } else
                r = sql_fail(s, rc, "read a PRAGMA", err);
        sqlite3_finalize(st);
        pthread_mutex_unlock(&s->lock);
        return r;
}

/* ---- the audit log ---- */

static const char *record_str(const json_t *record, const char *key)
{
        return json_string_value(json_object_get(record, key));
}

static int bind_opt_text(sqlite3_stmt *st, int i, const char *v)
{
        return v ? sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC) : sqlite3_bind_null(st, i);
}

static int audit_append_locked(struct sqlite_store *s, const char *text, const json_t *record,
                               int64_t time_ms, int64_t *ret_seq, int64_t *ret_time,
                               struct gv_error **err)
{
        int r = stmt_exec(s, STMT_BEGIN, "start a transaction", err);
        if (r < 0)
                return r;
        {
                _cleanup_stmt_ sqlite3_stmt *st = NULL;
                r = stmt_get(s, STMT_AUDIT_APPEND, &st, err);
                if (r >= 0) {
                        int rc = sqlite3_bind_int64(st, 1, time_ms);
                        static const char *const cols[] = { "principal", "tenant", "object",
                                                            "outcome", "method" };
                        for (size_t i = 0; i < ELEMENTSOF(cols) && rc == SQLITE_OK; i++)
                                rc = bind_opt_text(st, (int)i + 2, record_str(record, cols[i]));
                        if (rc == SQLITE_OK)
                                rc = sqlite3_bind_text(st, 7, text, -1, SQLITE_STATIC);
                        if (rc == SQLITE_OK)
                                rc = sqlite3_step(st);
                        if (rc == SQLITE_ROW) {
                                *ret_seq = sqlite3_column_int64(st, 0);
                                *ret_time = sqlite3_column_int64(st, 1);
                                rc = sqlite3_step(st);
                        }
                        if (rc != SQLITE_DONE)
                                r = sql_fail(s, rc, "append an audit record", err);
                }
        }
        if (r >= 0)
                r = stmt_exec(s, STMT_COMMIT, "commit an audit record", err);
        if (r < 0)
                tx_rollback(s);
        else
                version_bump(s);
        return r;
}

static int sqlite_audit_append(void *b, const json_t *record, int64_t time_ms, int64_t *ret_seq,
                               int64_t *ret_time, struct gv_error **err)
{
        struct sqlite_store *s = b;
        /* Stored without the store's own members: seq and time come from their columns. */
        _cleanup_json_ json_t *copy = json_copy((json_t *)record);
        json_object_del(copy, "seq");
        json_object_del(copy, "time");
        _cleanup_free_ char *text = json_dumps(copy, JSON_COMPACT | JSON_SORT_KEYS);
        if (!text)
                return gv_error_set(err, EINVAL, "The audit record cannot be serialised as "
                                    "JSON.");
        int64_t seq = 0, t = 0;
        pthread_mutex_lock(&s->lock);
        int r = audit_append_locked(s, text, record, time_ms > 0 ? time_ms : now_ms(), &seq, &t,
                                    err);
        pthread_mutex_unlock(&s->lock);
        if (r < 0)
                return r;
        *ret_seq = seq;
        *ret_time = t;
        return 0;
}

/* The query's SQL: only the filters given, every value bound by name. Time bounds become seq
 * bounds (time does not decrease along seq): the first record at or after `since`, the last at
 * or before `until`, each one step down the time index; a bound that no record meets is NULL,
 * and the comparison with NULL matches nothing, as it should. */
static char *audit_query_sql(const struct gv_store_audit_query *q)
{
        static const struct {
                size_t off;
                const char *sql;
        } eq[] = {
                { offsetof(struct gv_store_audit_query, principal), " AND principal = :principal" },
                { offsetof(struct gv_store_audit_query, tenant), " AND tenant = :tenant" },
                { offsetof(struct gv_store_audit_query, object), " AND object = :object" },
                { offsetof(struct gv_store_audit_query, outcome), " AND outcome = :outcome" },
                { offsetof(struct gv_store_audit_query, method), " AND method = :method" },
        };
        char *sql = xstrdup("SELECT seq, time, record FROM audit WHERE 1");
        char *next;
#define APPEND(frag)                                            do {                                                            next = xasprintf("%s%s", sql, (frag));                  free(sql);                                              sql = next;                                     } while (0)
        if (q->before_seq > 0)
                APPEND(" AND seq < :before");
        if (q->since_ms > 0)
                APPEND(" AND seq >= (SELECT seq FROM audit WHERE time >= :since "
                       "ORDER BY time, seq LIMIT 1)");
        if (q->until_ms > 0)
                APPEND(" AND seq <= (SELECT seq FROM audit WHERE time <= :until "
                       "ORDER BY time DESC, seq DESC LIMIT 1)");
        for (size_t i = 0; i < ELEMENTSOF(eq); i++)
                if (*(const char *const *)((const char *)q + eq[i].off))
                        APPEND(eq[i].sql);
        APPEND(" ORDER BY seq DESC LIMIT :limit");
#undef APPEND
        return sql;
}

static int bind_named(sqlite3_stmt *st, const char *name, const char *text, int64_t v)
{
        int i = sqlite3_bind_parameter_index(st, name);
        if (i == 0)
                return SQLITE_OK; /* not in this query */
        return text ? sqlite3_bind_text(st, i, text, -1, SQLITE_STATIC)
                    : sqlite3_bind_int64(st, i, v);
}

/* Prepare a query's statement (prefix: "" or "EXPLAIN QUERY PLAN ") with its values bound. */
static int audit_prepare(struct sqlite_store *s, const char *prefix,
                         const struct gv_store_audit_query *q, sqlite3_stmt **ret)
{
        _cleanup_free_ char *body = audit_query_sql(q);
        _cleanup_free_ char *sql = xasprintf("%s%s", prefix, body);
        sqlite3_stmt *st = NULL;
        int rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
        if (rc == SQLITE_OK)
                rc = bind_named(st, ":before", NULL, q->before_seq);
        if (rc == SQLITE_OK)
                rc = bind_named(st, ":since", NULL, q->since_ms);
        if (rc == SQLITE_OK)
                rc = bind_named(st, ":until", NULL, q->until_ms);
        if (rc == SQLITE_OK)
                rc = bind_named(st, ":principal", q->principal, 0);
        if (rc == SQLITE_OK)
                rc = bind_named(st, ":tenant", q->tenant, 0);
        if (rc == SQLITE_OK)
                rc = bind_named(st, ":object", q->object, 0);
        if (rc == SQLITE_OK)
                rc = bind_named(st, ":outcome", q->outcome, 0);
        if (rc == SQLITE_OK)
                rc = bind_named(st, ":method", q->method, 0);
        if (rc == SQLITE_OK)
                rc = bind_named(st, ":limit", NULL, (int64_t)q->limit);
        *ret = st;
        return rc;
}

static int audit_query_locked(struct sqlite_store *s, const struct gv_store_audit_query *q,
                              json_t **ret, struct gv_error **err)
{
        sqlite3_stmt *st = NULL;
        int rc = audit_prepare(s, "", q, &st);
        _cleanup_json_ json_t *a = json_array();
        while (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
                int64_t seq = sqlite3_column_int64(st, 0);
                const char *text = (const char *)sqlite3_column_text(st, 2);
                int len = sqlite3_column_bytes(st, 2);
                json_error_t je = { 0 };
                json_t *rec = text ? json_loadb(text, (size_t)len, JSON_REJECT_DUPLICATES, &je)
                                   : NULL;
                if (!json_is_object(rec)) {
                        json_decref(rec);
                        sqlite3_finalize(st);
                        return gv_error_set(err, EIO, "The store '%s' holds a corrupt audit "
                                            "record %lld (%s): restore the store from a backup, "
                                            "or delete the row with sqlite3 (table audit, seq "
                                            "%lld).", s->path, (long long)seq,
                                            text ? (rec ? "not a JSON object" : je.text)
                                                 : "no text", (long long)seq);
                }
                json_object_set_new(rec, "seq", json_integer(seq));
                json_object_set_new(rec, "time", json_integer(sqlite3_column_int64(st, 1)));
                json_array_append_new(a, rec);
                rc = SQLITE_OK;
        }
        int r = 0;
        if (rc != SQLITE_DONE)
                r = sql_fail(s, rc, "read the audit log", err);
        sqlite3_finalize(st);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(a);
        return 0;
}

static int sqlite_audit_query(void *b, const struct gv_store_audit_query *q, json_t **ret,
                              struct gv_error **err)
{
        struct sqlite_store *s = reading(b);
        pthread_mutex_lock(&s->lock);
        int r = audit_query_locked(s, q, ret, err);
        pthread_mutex_unlock(&s->lock);
        return r;
}

static int sqlite_audit_trim(void *b, int64_t before_ms, size_t max, size_t *ret_deleted,
                             struct gv_error **err)
{
        struct sqlite_store *s = b;
        pthread_mutex_lock(&s->lock);
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        int r = stmt_get(s, STMT_AUDIT_TRIM, &st, err);
        if (r >= 0) {
                int rc = sqlite3_bind_int64(st, 1, before_ms);
                if (rc == SQLITE_OK)
                        rc = sqlite3_bind_int64(st, 2, max > INT64_MAX ? INT64_MAX
                                                                       : (int64_t)max);
                if (rc == SQLITE_OK)
                        rc = sqlite3_step(st);
                if (rc != SQLITE_DONE)
                        r = sql_fail(s, rc, "trim the audit log", err);
                else {
                        *ret_deleted = (size_t)sqlite3_changes(s->db);
                        if (*ret_deleted > 0)
                                version_bump(s);
                }
        }
        stmt_resetp(&st);
        st = NULL;
        pthread_mutex_unlock(&s->lock);
        return r;
}

int gv_store_sqlite_audit_plan(struct gv_store *store, const struct gv_store_audit_query *q,
                               char **ret, struct gv_error **err)
{
        if (strcmp(gv_store_scheme(store), gv_store_sqlite_ops.scheme) != 0)
                return gv_error_set(err, EOPNOTSUPP, "The store is '%s', not SQLite.",
                                    gv_store_scheme(store));
        struct sqlite_store *s = gv_store_backend(store);
        pthread_mutex_lock(&s->lock);
        sqlite3_stmt *st = NULL;
        int rc = audit_prepare(s, "EXPLAIN QUERY PLAN ", q, &st);
        char *plan = xstrdup("");
        while (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
                const char *detail = (const char *)sqlite3_column_text(st, 3);
                char *next = xasprintf("%s%s%s", plan, *plan ? "; " : "", detail ? detail : "");
                free(plan);
                plan = next;
                rc = SQLITE_OK;
        }
        int r = 0;
        if (rc != SQLITE_DONE) {
                r = sql_fail(s, rc, "explain an audit query", err);
                free(plan);
        } else
                *ret = plan;
        sqlite3_finalize(st);
        pthread_mutex_unlock(&s->lock);
        return r;
}

const struct gv_store_ops gv_store_sqlite_ops = {
        .scheme = "sqlite",
        .open = sqlite_open,
        .close = sqlite_close,
        .get = sqlite_get,
        .list = sqlite_list,
        .write = sqlite_write,
        .write_with_events = sqlite_write_with_events,
        .events = sqlite_events,
        .events_trim = sqlite_events_trim,
        .schema_version = sqlite_schema_version,
        .audit_append = sqlite_audit_append,
        .audit_query = sqlite_audit_query,
        .audit_trim = sqlite_audit_trim,
        .version = sqlite_version,
};

const int gv_store_sqlite_schema_newest = SCHEMA_NEWEST;
