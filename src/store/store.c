/* SPDX-License-Identifier: MIT */
/*
 * store.c — the backend-neutral half of the store (store.h): the kind table, opening a store by
 * URL, argument checks every backend would repeat (keys, kinds, operations, generations), and
 * dispatch to the backend's ops struct. docs/store.md.
 */
#include "store.h"
#include "store-priv.h"

#include <stdbool.h>
#include <string.h>

#include "util/alloc.h"
#include "util/enum-table.h"

static const char *const store_kind_table[_GV_STORE_KIND_MAX] = {
        [GV_STORE_HOST] = "host",
        [GV_STORE_ALLOC] = "alloc",
        [GV_STORE_VM] = "vm",
        [GV_STORE_OPERATION] = "operation",
        [GV_STORE_IMAGE] = "image",
        [GV_STORE_TOKEN] = "token",
        [GV_STORE_IDEMPOTENCY] = "idempotency",
        [GV_STORE_LICENSE] = "license",
        [GV_STORE_TENANT] = "tenant",
        [GV_STORE_LEASE] = "lease",
};

/* How the backends' messages name an object of each kind (store-priv.h). */
static const char *const kind_human[_GV_STORE_KIND_MAX] = {
        [GV_STORE_HOST] = "Host",
        [GV_STORE_ALLOC] = "The allocation of host",
        [GV_STORE_VM] = "VM",
        [GV_STORE_OPERATION] = "Operation",
        [GV_STORE_IMAGE] = "Image",
        [GV_STORE_TOKEN] = "Token",
        [GV_STORE_IDEMPOTENCY] = "Idempotency key",
        [GV_STORE_LICENSE] = "Licence pool",
        [GV_STORE_TENANT] = "Tenant",
        [GV_STORE_LEASE] = "Lease",
};

const char *gv_store_kind_human(enum gv_store_kind k)
{
        return k >= 0 && k < _GV_STORE_KIND_MAX && kind_human[k] ? kind_human[k] : "Object";
}
DEFINE_STRING_TABLE_LOOKUP(gv_store_kind, enum gv_store_kind, store_kind_table);

/* The backends this build knows, in the order error messages list them. */
static const struct gv_store_ops *const store_backends[] = {
        &gv_store_sqlite_ops,
        &gv_store_pg_ops,
};

struct gv_store {
        const struct gv_store_ops *ops;
        void *backend;
};

void gv_store_obj_done(struct gv_store_obj *o)
{
        if (!o)
                return;
        free(o->key);
        json_decref(o->doc);
        *o = (struct gv_store_obj){ 0 };
}

void gv_store_objs_free(struct gv_store_obj *o, size_t n)
{
        if (!o)
                return;
        for (size_t i = 0; i < n; i++)
                gv_store_obj_done(&o[i]);
        free(o);
}

void gv_store_events_free(struct gv_store_event *e, size_t n)
{
        if (!e)
                return;
        for (size_t i = 0; i < n; i++) {
                free(e[i].type);
                free(e[i].subject);
                json_decref(e[i].data);
        }
        free(e);
}

static char *store_schemes(void)
{
        const char *names[ELEMENTSOF(store_backends)];
        for (size_t i = 0; i < ELEMENTSOF(store_backends); i++)
                names[i] = store_backends[i]->scheme;
        return gv_string_table_join(names, ELEMENTSOF(names), ", ");
}

/* RFC 3986: scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ). Returns the length of the
 * scheme before ':' or 0 when url does not start with one (a bare path). */
static size_t url_scheme_len(const char *url)
{
        size_t i = 0;
        if (!((url[0] >= 'a' && url[0] <= 'z') || (url[0] >= 'A' && url[0] <= 'Z')))
                return 0;
        for (i = 1; url[i] && url[i] != ':'; i++) {
                char c = url[i];
                if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                      c == '+' || c == '-' || c == '.'))
                        return 0;
        }
        return url[i] == ':' ? i : 0;
}

int gv_store_open(const char *url, struct gv_store **ret, struct gv_error **err)
{
        if (!url || !*url)
                return gv_error_set(err, EINVAL, "The store location is empty: give "
                                    "'sqlite:PATH' or a file path.");

        const struct gv_store_ops *ops = NULL;
        const char *location = url;
        size_t n = url_scheme_len(url);
        if (n > 0) {
                for (size_t i = 0; i < ELEMENTSOF(store_backends); i++)
                        if (strlen(store_backends[i]->scheme) == n &&
                            strncmp(store_backends[i]->scheme, url, n) == 0)
                                ops = store_backends[i];
                if (!ops && n == strlen("postgres") && strncmp(url, "postgres", n) == 0)
                        ops = &gv_store_pg_ops; /* libpq's other spelling */
                if (!ops) {
                        _cleanup_free_ char *known = store_schemes();
                        return gv_error_set(err, EINVAL, "The store '%s' names the scheme '%.*s', "
                                            "which this gpuvirt does not know; known: %s (or a "
                                            "bare file path for sqlite).", url, (int)n, url,
                                            known);
                }
                location = url + n + 1;
        } else
                ops = store_backends[0]; /* a bare path: SQLite */

        if (!*location)
                return gv_error_set(err, EINVAL, "The store '%s' names no location after '%s:': "
                                    "give a file path, e.g. '%s:/var/lib/gpuvirt/gpuvirt.db'.",
                                    url, ops->scheme, ops->scheme);

        void *b = NULL;
        int r = ops->open(location, &b, err);
        if (r < 0)
                return r;
        struct gv_store *s = xnew0(struct gv_store, 1);
        s->ops = ops;
        s->backend = b;
        *ret = s;
        return 0;
}

struct gv_store *gv_store_free(struct gv_store *s)
{
        if (!s)
                return NULL;
        s->ops->close(s->backend);
        free(s);
        return NULL;
}

void *gv_store_backend(struct gv_store *s)
{
        return s->backend;
}

const char *gv_store_scheme(const struct gv_store *s)
{
        return s->ops->scheme;
}

static int check_kind(enum gv_store_kind kind, struct gv_error **err)
{
        if ((int)kind < 0 || kind >= _GV_STORE_KIND_MAX) {
                _cleanup_free_ char *known = STRING_TABLE_JOIN(store_kind_table, ", ");
                return gv_error_set(err, EINVAL, "Store kind %d is not one of: %s.", (int)kind,
                                    known);
        }
        return 0;
}

static int check_key(enum gv_store_kind kind, const char *key, struct gv_error **err)
{
        int r = check_kind(kind, err);
        if (r < 0)
                return r;
        if (!key || !*key)
                return gv_error_set(err, EINVAL, "A %s key is empty: give 1 to %d printable "
                                    "ASCII characters without '/'.",
                                    gv_store_kind_to_string(kind), GV_STORE_KEY_MAX);
        size_t len = strlen(key);
        if (len > GV_STORE_KEY_MAX)
                return gv_error_set(err, EINVAL, "The %s key '%.32s...' is %zu bytes long; the "
                                    "limit is %d.", gv_store_kind_to_string(kind), key, len,
                                    GV_STORE_KEY_MAX);
        for (size_t i = 0; i < len; i++) {
                unsigned char c = (unsigned char)key[i];
                if (c < 0x20 || c > 0x7e || c == '/')
                        return gv_error_set(err, EINVAL, "The %s key '%s' holds byte 0x%02x at "
                                            "offset %zu: keys are printable ASCII without '/'.",
                                            gv_store_kind_to_string(kind),
                                            c >= 0x20 && c <= 0x7e ? key : "(unprintable)", c, i);
        }
        return 0;
}

static int check_writes(const struct gv_store_write *w, size_t n, struct gv_error **err)
{
        if (n > 0 && !w)
                return gv_error_set(err, EINVAL, "A store batch of %zu writes has no array.", n);
        for (size_t i = 0; i < n; i++) {
                int r = check_key(w[i].kind, w[i].key, err);
                if (r < 0)
                        return gv_error_wrap(err, r, "Write %zu of the batch", i);
                const char *kind = gv_store_kind_to_string(w[i].kind);
                bool has_doc = false, has_generation = false;
                switch (w[i].op) {
                case GV_STORE_CREATE:
                case GV_STORE_PUT:
                        has_doc = true;
                        break;
                case GV_STORE_UPDATE:
                        has_doc = has_generation = true;
                        break;
                case GV_STORE_DELETE:
                        has_generation = true;
                        break;
                default:
                        return gv_error_set(err, EINVAL, "Write %zu of the batch (%s '%s') has "
                                            "operation %d: valid are create, update, delete, "
                                            "put.", i, kind, w[i].key, (int)w[i].op);
                }
                if (has_doc && !json_is_object(w[i].doc))
                        return gv_error_set(err, EINVAL, "Write %zu of the batch (%s '%s') has no "
                                            "document: documents are JSON objects.", i, kind,
                                            w[i].key);
                if (has_generation && w[i].generation < 1)
                        return gv_error_set(err, EINVAL, "Write %zu of the batch (%s '%s') gives "
                                            "generation %lld: give the one read (1 or more).", i,
                                            kind, w[i].key, (long long)w[i].generation);
        }
        return 0;
}

static int check_events(const struct gv_store_event *ev, size_t n, struct gv_error **err)
{
        if (n > 0 && !ev)
                return gv_error_set(err, EINVAL, "%zu events to append but no array.", n);
        for (size_t i = 0; i < n; i++) {
                if (!ev[i].type || !*ev[i].type || !ev[i].subject || !*ev[i].subject)
                        return gv_error_set(err, EINVAL, "Event %zu has no type or no subject: "
                                            "both are needed (e.g. 'vm.created', 'vm/x').", i);
                if (ev[i].time < 0)
                        return gv_error_set(err, EINVAL, "Event %zu ('%s') has time %lld: give "
                                            "milliseconds since the epoch, or 0 for now.", i,
                                            ev[i].type, (long long)ev[i].time);
        }
        return 0;
}

int gv_store_get(struct gv_store *s, enum gv_store_kind kind, const char *key,
                 struct gv_store_obj *ret, struct gv_error **err)
{
        int r = check_key(kind, key, err);
        if (r < 0)
                return r;
        return s->ops->get(s->backend, kind, key, ret, err);
}

int gv_store_list(struct gv_store *s, enum gv_store_kind kind, struct gv_store_obj **ret,
                  size_t *ret_n, struct gv_error **err)
{
        int r = check_kind(kind, err);
        if (r < 0)
                return r;
        return s->ops->list(s->backend, kind, ret, ret_n, err);
}

int gv_store_write(struct gv_store *s, struct gv_store_write *w, size_t n, struct gv_error **err)
{
        int r = check_writes(w, n, err);
        if (r < 0)
                return r;
        if (n == 0)
                return 0;
        return s->ops->write(s->backend, w, n, err);
}

int gv_store_write_events(struct gv_store *s, struct gv_store_write *w, size_t n_w,
                          const struct gv_store_event *ev, size_t n_ev, struct gv_error **err)
{
        int r = check_writes(w, n_w, err);
        if (r < 0)
                return r;
        r = check_events(ev, n_ev, err);
        if (r < 0)
                return r;
        if (n_w == 0 && n_ev == 0)
                return 0;
        return s->ops->write_with_events(s->backend, w, n_w, ev, n_ev, err);
}

int gv_store_events(struct gv_store *s, int64_t after, size_t max, struct gv_store_event **ret,
                    size_t *ret_n, struct gv_error **err)
{
        if (after < 0)
                return gv_error_set(err, EINVAL, "Events after %lld: give 0 (from the start) or "
                                    "a sequence number read before.", (long long)after);
        if (max == 0) {
                *ret = NULL;
                *ret_n = 0;
                return 0;
        }
        return s->ops->events(s->backend, after, max, ret, ret_n, err);
}

int gv_store_events_trim(struct gv_store *s, size_t keep, struct gv_error **err)
{
        return s->ops->events_trim(s->backend, keep, err);
}

int gv_store_schema_version(struct gv_store *s, int *ret, struct gv_error **err)
{
        return s->ops->schema_version(s->backend, ret, err);
}

int gv_store_version(struct gv_store *s, int64_t *ret, struct gv_error **err)
{
        return s->ops->version(s->backend, ret, err);
}

int gv_store_create(struct gv_store *s, enum gv_store_kind kind, const char *key,
                    const json_t *doc, int64_t *ret_generation, struct gv_error **err)
{
        struct gv_store_write w = { .op = GV_STORE_CREATE, .kind = kind, .key = key, .doc = doc };
        int r = gv_store_write(s, &w, 1, err);
        if (r < 0)
                return r;
        if (ret_generation)
                *ret_generation = w.new_generation;
        return 0;
}

int gv_store_update(struct gv_store *s, enum gv_store_kind kind, const char *key,
                    const json_t *doc, int64_t generation, int64_t *ret_generation,
                    struct gv_error **err)
{
        struct gv_store_write w = { .op = GV_STORE_UPDATE, .kind = kind, .key = key, .doc = doc,
                                    .generation = generation };
        int r = gv_store_write(s, &w, 1, err);
        if (r < 0)
                return r;
        if (ret_generation)
                *ret_generation = w.new_generation;
        return 0;
}

int gv_store_delete(struct gv_store *s, enum gv_store_kind kind, const char *key,
                    int64_t generation, struct gv_error **err)
{
        struct gv_store_write w = { .op = GV_STORE_DELETE, .kind = kind, .key = key,
                                    .generation = generation };
        return gv_store_write(s, &w, 1, err);
}

/* ---- the audit log ---- */

/* The record members a query may filter on must be strings when present. */
static int check_audit_record(const json_t *record, struct gv_error **err)
{
        static const char *const indexed[] = { "principal", "tenant", "object", "outcome",
                                               "method" };
        if (!json_is_object(record))
                return gv_error_set(err, EINVAL, "An audit record must be a JSON object.");
        for (size_t i = 0; i < ELEMENTSOF(indexed); i++) {
                const json_t *v = json_object_get(record, indexed[i]);
                if (v && !json_is_null(v) && !json_is_string(v))
                        return gv_error_set(err, EINVAL, "The audit record's '%s' must be a "
                                            "string or null.", indexed[i]);
        }
        return 0;
}

int gv_store_audit_append(struct gv_store *s, const json_t *record, int64_t time_ms,
                          int64_t *ret_seq, int64_t *ret_time, struct gv_error **err)
{
        int r = check_audit_record(record, err);
        if (r < 0)
                return r;
        if (time_ms < 0)
                return gv_error_set(err, EINVAL, "An audit record at time %lld: give "
                                    "milliseconds since the epoch, or 0 for now.",
                                    (long long)time_ms);
        int64_t seq = 0, t = 0;
        r = s->ops->audit_append(s->backend, record, time_ms, &seq, &t, err);
        if (r < 0)
                return r;
        if (ret_seq)
                *ret_seq = seq;
        if (ret_time)
                *ret_time = t;
        return 0;
}

int gv_store_audit_query(struct gv_store *s, const struct gv_store_audit_query *q, json_t **ret,
                         struct gv_error **err)
{
        if (!q)
                return gv_error_set(err, EINVAL, "An audit query without a query.");
        if (q->limit < 1 || q->limit > GV_STORE_AUDIT_LIMIT_MAX)
                return gv_error_set(err, EINVAL, "An audit query's limit is %zu: give 1 to %d.",
                                    q->limit, GV_STORE_AUDIT_LIMIT_MAX);
        if (q->since_ms < 0 || q->until_ms < 0 || q->before_seq < 0)
                return gv_error_set(err, EINVAL, "An audit query's since, until and cursor are "
                                    "0 (none) or positive.");
        return s->ops->audit_query(s->backend, q, ret, err);
}

int gv_store_audit_trim(struct gv_store *s, int64_t before_ms, size_t batch, size_t max_batches,
                        size_t *ret_deleted, struct gv_error **err)
{
        size_t total = 0;
        if (batch == 0)
                batch = 5000;
        for (size_t i = 0; max_batches == 0 || i < max_batches; i++) {
                size_t n = 0;
                int r = s->ops->audit_trim(s->backend, before_ms, batch, &n, err);
                if (r < 0)
                        return r;
                total += n;
                if (n < batch)
                        break;
        }
        if (ret_deleted)
                *ret_deleted = total;
        return 0;
}
