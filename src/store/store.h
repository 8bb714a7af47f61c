/* SPDX-License-Identifier: MIT */
/*
 * store.h — the controller's store: what should exist (hosts, VMs and what placement reserved
 * for them, images, API tokens) and what happened (operations, events). One ops struct per
 * backend: SQLite now (store-sqlite.c), PostgreSQL later; the controller names no backend.
 *
 * Model: a document store. Every object is a JSON document in a collection (enum
 * gv_store_kind) under a key unique in that collection, with a generation that starts at 1 and
 * grows by one on every write. Writes go in atomic batches (gv_store_write): each item creates
 * (the key must be free), updates or deletes (the item's generation must be the one given:
 * compare-and-swap), and a batch is all or nothing. "Reserve, then act" (DESIGN.md) is one batch:
 * the host's allocation document at the generation placement read, and the VM's document.
 *
 * Events: an append-only log with a sequence number per event (strictly increasing), read from
 * a point (Server-Sent Events resume with Last-Event-ID).
 *
 * Thread safety: a store may be used from several threads at once (the backend serialises).
 * Errors: -errno with a gv_error: -ENOENT (no such key), -EEXIST (create of a taken key),
 * -ESTALE (a generation did not match: someone else wrote first; re-read and retry), -EINVAL
 * (bad location, key or document; a file that is not a gpuvirt store), -EPROTO (the store was
 * migrated by a newer gpuvirt: its schema is newer than this code knows), -EBUSY (another
 * process held the store's write lock past the backend's busy timeout; retry), -EIO (the
 * backend failed, or a stored row is corrupt; the message names the row).
 */
#pragma once

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "util/error.h"

enum gv_store_kind {
        GV_STORE_HOST,        /* key: host name; the host's registration and inventory */
        GV_STORE_ALLOC,       /* key: host name; what placement reserved on it (CAS target) */
        GV_STORE_VM,          /* key: VM name */
        GV_STORE_OPERATION,   /* key: operation id */
        GV_STORE_IMAGE,       /* key: image name */
        GV_STORE_TOKEN,       /* key: token id (the secret is stored hashed inside) */
        GV_STORE_IDEMPOTENCY, /* key: Idempotency-Key; the request's hash and first answer */
        GV_STORE_LICENSE,     /* key: licence pool name (docs/licensing.md) */
        GV_STORE_TENANT,      /* key: tenant name; quotas and allowed GPU pools (docs/security.md) */
        GV_STORE_LEASE,       /* key: lease name; who holds a cluster-wide duty (several controllers) */
        _GV_STORE_KIND_MAX,
        _GV_STORE_KIND_INVALID = -EINVAL,
};
const char *gv_store_kind_to_string(enum gv_store_kind k);
enum gv_store_kind gv_store_kind_from_string(const char *s);

/* Keys: 1..255 bytes of printable ASCII without '/' (names and ids are narrower already). */
#define GV_STORE_KEY_MAX 255

struct gv_store_obj {
        char *key;
        json_t *doc;          /* owned; always a JSON object */
        int64_t generation;   /* >= 1 */
        int64_t created_at;   /* CLOCK_REALTIME milliseconds of the create */
        int64_t updated_at;   /* ... of the last write */
};
void gv_store_obj_done(struct gv_store_obj *o);
void gv_store_objs_free(struct gv_store_obj *o, size_t n);

enum gv_store_op {
        GV_STORE_CREATE, /* key must not exist; generation becomes 1 */
        GV_STORE_UPDATE, /* key must exist at `generation`; it becomes generation + 1 */
        GV_STORE_DELETE, /* key must exist at `generation` */
        GV_STORE_PUT,    /* create or replace whatever is there (no CAS): for caches only */
};

struct gv_store_write {
        enum gv_store_op op;
        enum gv_store_kind kind;
        const char *key;
        const json_t *doc;     /* CREATE, UPDATE, PUT (borrowed): a JSON object */
        int64_t generation;    /* UPDATE, DELETE: the one read */
        int64_t new_generation; /* out: after a successful batch (DELETE: 0); untouched when
                                 * the batch fails */
};

/* Appending: seq is ignored (the store numbers events), time 0 means now, data may be NULL
 * (read back as JSON null). Reading: every field set. */
struct gv_store_event {
        int64_t seq;           /* never reused, even after events_trim */
        int64_t time;          /* CLOCK_REALTIME milliseconds */
        char *type;            /* "vm.created", "host.down", "operation.progress", ... */
        char *subject;         /* "vm/infer-1", "host/node-a", "operation/ID" */
        json_t *data;          /* owned */
};
void gv_store_events_free(struct gv_store_event *e, size_t n);

/* The audit log (docs/audit.md): an append-only table of JSON records, one per mutating API
 * request. The store reads the indexed members of a record ("principal", "tenant", "object",
 * "outcome", "method": strings or absent/null) and numbers it; "seq" and "time" are the
 * store's. A query filters on those members (exact matches) and on a time range, newest (the
 * highest seq) first. */
struct gv_store_audit_query {
        int64_t since_ms;       /* time >= since_ms; 0: no lower bound */
        int64_t until_ms;       /* time <= until_ms; 0: no upper bound */
        int64_t before_seq;     /* seq < before_seq (the cursor); 0: from the newest */
        const char *principal;  /* NULL: any */
        const char *tenant;
        const char *object;
        const char *outcome;
        const char *method;
        size_t limit;           /* 1..GV_STORE_AUDIT_LIMIT_MAX */
};
#define GV_STORE_AUDIT_LIMIT_MAX 10000

struct gv_store;

struct gv_store_ops {
        const char *scheme;    /* "sqlite", "postgresql" */
        /* location: what follows "SCHEME:" in the URL (sqlite: a file path). Creates and
         * migrates the schema to the newest version. */
        int (*open)(const char *location, void **ret, struct gv_error **err);
        void (*close)(void *b);
        int (*get)(void *b, enum gv_store_kind kind, const char *key, struct gv_store_obj *ret,
                   struct gv_error **err);
        /* Every object of a kind, in key order. */
        int (*list)(void *b, enum gv_store_kind kind, struct gv_store_obj **ret, size_t *ret_n,
                    struct gv_error **err);
        /* All or nothing. On -ESTALE / -EEXIST / -ENOENT the error names the item (kind/key). */
        int (*write)(void *b, struct gv_store_write *w, size_t n, struct gv_error **err);
        /* Append events atomically with a batch (n_w may be 0): the write and its events are
         * one transaction, so an event never tells of a write that did not happen. */
        int (*write_with_events)(void *b, struct gv_store_write *w, size_t n_w,
                                 const struct gv_store_event *ev, size_t n_ev,
                                 struct gv_error **err);
        /* Events with seq > after, oldest first, at most max. */
        int (*events)(void *b, int64_t after, size_t max, struct gv_store_event **ret,
                      size_t *ret_n, struct gv_error **err);
        /* Drop events older than the newest `keep`. */
        int (*events_trim)(void *b, size_t keep, struct gv_error **err);
        /* The schema version the backend is at (migrations are numbered from 1). */
        int (*schema_version)(void *b, int *ret, struct gv_error **err);
        /* Append one audit record (a JSON object; its "seq" and "time" members are ignored).
         * time_ms is when it happened; the store keeps time non-decreasing along seq (a
         * record older than the newest one gets the newest one's time), so a time range is a
         * range of seq. *ret_seq and *ret_time: what the record got (never reused). */
        int (*audit_append)(void *b, const json_t *record, int64_t time_ms, int64_t *ret_seq,
                            int64_t *ret_time, struct gv_error **err);
        /* Records matching q, newest first, at most q->limit: *ret a JSON array of the
         * records with "seq" and "time" set. */
        int (*audit_query)(void *b, const struct gv_store_audit_query *q, json_t **ret,
                           struct gv_error **err);
        /* Drop at most max records whose time is < before_ms, oldest first, in one
         * transaction; *ret_deleted says how many went. */
        int (*audit_trim)(void *b, int64_t before_ms, size_t max, size_t *ret_deleted,
                          struct gv_error **err);
        /* A number that grows whenever any process commits a write, event or audit record to
         * the store (see gv_store_version). */
        int (*version)(void *b, int64_t *ret, struct gv_error **err);
};

extern const struct gv_store_ops gv_store_sqlite_ops;
extern const struct gv_store_ops gv_store_pg_ops;

/* "sqlite:/var/lib/gpuvirt/gpuvirt.db" (also a bare path: SQLite), or a PostgreSQL URL
 * ("postgresql://user@host/db", "postgresql:///gpuvirt?host=/run/postgresql", "postgres://..."),
 * handed whole to libpq. -EINVAL listing the schemes known for anything else.
 *
 * PostgreSQL adds two errors to those above: -ENOTCONN (the server cannot be reached, or the
 * connection broke before the write was committed: nothing was applied; retry later) and -EIO
 * saying that the outcome is unknown (the connection broke after COMMIT was sent: re-read before
 * deciding anything). -EBUSY there means the write lost to other writers (serialization
 * failures) on every one of its attempts, or waited for a lock past 10 s. */
int gv_store_open(const char *url, struct gv_store **ret, struct gv_error **err);
struct gv_store *gv_store_free(struct gv_store *s);
const char *gv_store_scheme(const struct gv_store *s);

int gv_store_get(struct gv_store *s, enum gv_store_kind kind, const char *key,
                 struct gv_store_obj *ret, struct gv_error **err);
int gv_store_list(struct gv_store *s, enum gv_store_kind kind, struct gv_store_obj **ret,
                  size_t *ret_n, struct gv_error **err);
int gv_store_write(struct gv_store *s, struct gv_store_write *w, size_t n, struct gv_error **err);
int gv_store_write_events(struct gv_store *s, struct gv_store_write *w, size_t n_w,
                          const struct gv_store_event *ev, size_t n_ev, struct gv_error **err);
int gv_store_events(struct gv_store *s, int64_t after, size_t max, struct gv_store_event **ret,
                    size_t *ret_n, struct gv_error **err);
int gv_store_events_trim(struct gv_store *s, size_t keep, struct gv_error **err);
int gv_store_schema_version(struct gv_store *s, int *ret, struct gv_error **err);

/* The audit log (see struct gv_store_audit_query). time_ms 0: now. ret_seq and ret_time may be
 * NULL. */
int gv_store_audit_append(struct gv_store *s, const json_t *record, int64_t time_ms,
                          int64_t *ret_seq, int64_t *ret_time, struct gv_error **err);
int gv_store_audit_query(struct gv_store *s, const struct gv_store_audit_query *q, json_t **ret,
                         struct gv_error **err);
/* Drop every record older than before_ms, in transactions of at most batch records each (0:
 * 5000) so that other writers get the store between them, stopping after max_batches (0: no
 * limit). *ret_deleted (may be NULL): how many went. */
int gv_store_audit_trim(struct gv_store *s, int64_t before_ms, size_t batch, size_t max_batches,
                        size_t *ret_deleted, struct gv_error **err);

/* The store's change counter, for caches: a number (>= 1) that has grown whenever any process
 * (this one or another controller sharing the store) committed a write batch, an event, an audit
 * record or a trim since it was last read; reads never change it. Read it BEFORE reading what a
 * cache holds, keep it beside the cache, and drop the cache when a later read of it differs.
 * It only says "something changed", not what; numbers are comparable only on one opened store
 * (another process sees other numbers). SQLite: PRAGMA data_version (moves when another
 * connection commits) folded into a per-store counter that also counts this connection's own
 * commits. PostgreSQL: a sequence advanced inside every write transaction and again once its
 * COMMIT returned (docs/store.md). */
int gv_store_version(struct gv_store *s, int64_t *ret, struct gv_error **err);

/* Convenience: one create / update / delete (a batch of one). ret_generation may be NULL. */
int gv_store_create(struct gv_store *s, enum gv_store_kind kind, const char *key,
                    const json_t *doc, int64_t *ret_generation, struct gv_error **err);
int gv_store_update(struct gv_store *s, enum gv_store_kind kind, const char *key,
                    const json_t *doc, int64_t generation, int64_t *ret_generation,
                    struct gv_error **err);
int gv_store_delete(struct gv_store *s, enum gv_store_kind kind, const char *key,
                    int64_t generation, struct gv_error **err);
