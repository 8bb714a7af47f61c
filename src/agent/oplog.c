/* SPDX-License-Identifier: MIT */
/*
 * oplog.c — the operation journal (oplog.h): an in-memory index of DIR/ID.json files.
 *
 * Ownership of an entry decides who may touch its file: `claim` is EXEC from begin() NEW until
 * finish() or forget() (the caller executing the request owns it), IO while forget() or
 * recover() works on it, NONE otherwise. Only the claimant writes or removes the file, and it
 * does so without the mutex; everyone else only reads the entry's immutable fields (id, method,
 * path, hash, started) and its state under the mutex. prune() touches only unclaimed finished
 * entries and does its unlinks under the mutex.
 *
 * Durability follows reliability.md's notes on crash consistency (SQLite, LazyFS [S65][S87]):
 * a write is only durable once the file is fsync'd and the rename is made durable by an fsync
 * of the directory; unsynced data may be dropped or torn by a crash.
 */
#include "agent/oplog.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "util/alloc.h"
#include "util/failpoint.h"
#include "util/fileio.h"
#include "util/json.h"
#include "util/sha256.h"
#include "util/strv.h"

void gv_oplog_sha256_hex(const void *data, size_t len, char ret[static 65])
{
        gv_sha256_hex(data, len, ret);
}

/* ---- the journal ---- */

enum op_state { OP_RUNNING, OP_DONE };
enum op_claim { CLAIM_NONE, CLAIM_EXEC, CLAIM_IO };

struct op {
        char id[GV_OPLOG_ID_MAX + 1];
        char *method;
        char *path;
        char hash[65];
        int64_t started_ms;
        /* below: guarded by the mutex */
        enum op_state state;
        enum op_claim claim;
        int64_t finished_ms;
        unsigned status;
        json_t *response; /* NULL: no body */
};

struct gv_oplog {
        pthread_mutex_t lock;
        char *dir;
        int dir_fd; /* holds the flock */
        struct op **ops;
        size_t n_ops;
        size_t n_alloc;
        char **warnings;
        int64_t (*clock)(void *userdata);
        void *clock_userdata;
};

static struct op *op_free(struct op *o)
{
        if (!o)
                return NULL;
        free(o->method);
        free(o->path);
        json_decref(o->response);
        free(o);
        return NULL;
}
DEFINE_TRIVIAL_CLEANUP_FUNC(struct op *, op_free);

static int64_t realtime_ms(void *userdata _unused_)
{
        struct timespec ts;
        (void)clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t now_ms(const struct gv_oplog *l)
{
        return l->clock(l->clock_userdata);
}

void gv_oplog_set_clock(struct gv_oplog *l, int64_t (*fn)(void *userdata), void *userdata)
{
        l->clock = fn ? fn : realtime_ms;
        l->clock_userdata = fn ? userdata : NULL;
}

bool gv_oplog_id_is_valid(const char *id)
{
        if (!id)
                return false;
        size_t n = strlen(id);
        if (n < 1 || n > GV_OPLOG_ID_MAX)
                return false;
        if (strcmp(id, ".") == 0 || strcmp(id, "..") == 0)
                return false;
        for (const char *p = id; *p; p++) {
                char c = *p;
                if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                      c == '.' || c == '_' || c == '-'))
                        return false;
        }
        return true;
}

static bool method_is_valid(const char *m)
{
        size_t n = m ? strlen(m) : 0;
        if (n < 1 || n > 16)
                return false;
        for (; *m; m++)
                if (*m < 'A' || *m > 'Z')
                        return false;
        return true;
}

static bool path_is_valid(const char *p)
{
        if (!p || p[0] != '/' || strlen(p) > GV_OPLOG_PATH_MAX)
                return false;
        for (; *p; p++)
                if (*p <= ' ' || *p > '~')
                        return false;
        return true;
}

static bool hash_is_valid(const char *h)
{
        if (strlen(h) != 64)
                return false;
        for (; *h; h++)
                if (!((*h >= '0' && *h <= '9') || (*h >= 'a' && *h <= 'f')))
                        return false;
        return true;
}

static void request_hash(const char *method, const char *path, const void *body, size_t body_len,
                         char ret[static 65])
{
        struct gv_sha256 s;
        gv_sha256_init(&s);
        gv_sha256_update(&s, method, strlen(method) + 1); /* with its NUL: the frame */
        gv_sha256_update(&s, path, strlen(path) + 1);
        if (body_len > 0)
                gv_sha256_update(&s, body, body_len);
        gv_sha256_final_hex(&s, ret);
}

static ssize_t find_locked(const struct gv_oplog *l, const char *id)
{
        for (size_t i = 0; i < l->n_ops; i++)
                if (strcmp(l->ops[i]->id, id) == 0)
                        return (ssize_t)i;
        return -1;
}

static void add_locked(struct gv_oplog *l, struct op *o)
{
        if (l->n_ops == l->n_alloc) {
                l->n_alloc = l->n_alloc ? l->n_alloc * 2 : 16;
                l->ops = xreallocarray(l->ops, l->n_alloc, sizeof(*l->ops));
        }
        l->ops[l->n_ops++] = o;
}

/* Removes o from the index (not freed). */
static void remove_locked(struct gv_oplog *l, const struct op *o)
{
        for (size_t i = 0; i < l->n_ops; i++)
                if (l->ops[i] == o) {
                        l->ops[i] = l->ops[--l->n_ops];
                        return;
                }
}

/* The file's contents for o, with the outcome given (state done) or none (running). */
static json_t *op_to_json(const struct op *o, bool done, int64_t finished_ms, unsigned status,
                          const json_t *response)
{
        json_t *j = json_pack("{s:s, s:s, s:s, s:s, s:s, s:I}", "id", o->id, "method", o->method,
                              "path", o->path, "request_sha256", o->hash, "state",
                              done ? "done" : "running", "started_ms", (json_int_t)o->started_ms);
        if (!j)
                abort(); /* only on OOM: every argument is valid */
        if (done) {
                json_object_set_new(j, "finished_ms", json_integer((json_int_t)finished_ms));
                json_object_set_new(j, "status", json_integer((json_int_t)status));
                /* json_deep_copy: a borrowed const body cannot be referenced by a new object. */
                json_object_set_new(j, "response",
                                    response ? json_deep_copy(response) : json_null());
        }
        return j;
}

/* Describe the original request of o for IN_PROGRESS and MISMATCH answers. */
static json_t *op_describe(const struct op *o)
{
        json_t *j = json_pack("{s:s, s:s, s:s, s:I}", "id", o->id, "method", o->method, "path",
                              o->path, "started_ms", (json_int_t)o->started_ms);
        if (!j)
                abort();
        return j;
}

static int fsync_dir(struct gv_oplog *l, struct gv_error **err)
{
        if (fsync(l->dir_fd) < 0)
                return gv_error_set(err, errno, "cannot fsync the operation journal '%s': %s",
                                    l->dir, strerror(errno));
        return 0;
}

static int write_all(int fd, const char *s, size_t n)
{
        while (n > 0) {
                ssize_t w = write(fd, s, n);
                if (w < 0 && errno == EINTR)
                        continue;
                if (w < 0)
                        return -errno;
                if (w == 0)
                        return -EIO;
                s += w;
                n -= (size_t)w;
        }
        return 0;
}

/* Write j to DIR/ID.json atomically and durably: ID.json.tmp, fsync, rename, fsync(DIR). */
static int write_entry(struct gv_oplog *l, const char *id, const json_t *j, struct gv_error **err)
{
        _cleanup_free_ char *s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
        if (!s)
                return gv_error_set(err, EINVAL, "cannot serialize operation '%s' to JSON", id);
        size_t n = strlen(s);
        if (n + 1 >= GV_OPLOG_FILE_MAX)
                return gv_error_set(err, EFBIG,
                                    "operation '%s' would take %zu bytes in the journal, more than "
                                    "the %u allowed: record a smaller response",
                                    id, n + 1, GV_OPLOG_FILE_MAX);
        s[n] = '\n'; /* json_dumps leaves room only for the NUL: write it as the newline */

        char name[GV_OPLOG_ID_MAX + sizeof(".json")];
        char tmp[GV_OPLOG_ID_MAX + sizeof(".json.tmp")];
        (void)snprintf(name, sizeof(name), "%s.json", id);
        (void)snprintf(tmp, sizeof(tmp), "%s.json.tmp", id);

        _cleanup_close_ int fd = openat(l->dir_fd, tmp,
                                        O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW |
                                                O_NOCTTY,
                                        0600);
        if (fd < 0)
                return gv_error_set(err, errno, "cannot create '%s/%s': %s", l->dir, tmp,
                                    strerror(errno));
        int r = write_all(fd, s, n + 1);
        if (r >= 0 && fsync(fd) < 0)
                r = -errno;
        if (r >= 0 && close(TAKE_FD(fd)) < 0 && errno != EINTR)
                r = -errno;
        if (r >= 0 && renameat(l->dir_fd, tmp, l->dir_fd, name) < 0)
                r = -errno;
        if (r < 0) {
                (void)unlinkat(l->dir_fd, tmp, 0);
                return gv_error_set(err, -r, "cannot write '%s/%s': %s", l->dir, name,
                                    strerror(-r));
        }
        return fsync_dir(l, err);
}

static int remove_entry_file(struct gv_oplog *l, const char *id, struct gv_error **err)
{
        char name[GV_OPLOG_ID_MAX + sizeof(".json")];
        (void)snprintf(name, sizeof(name), "%s.json", id);
        if (unlinkat(l->dir_fd, name, 0) < 0 && errno != ENOENT)
                return gv_error_set(err, errno, "cannot remove '%s/%s': %s", l->dir, name,
                                    strerror(errno));
        return 0;
}

/* ---- loading ---- */

static int parse_ms(const json_t *j, const char *key, int64_t *ret, struct gv_error **err)
{
        uint64_t v;
        int r = gv_json_get_u64(j, key, &v, err);
        if (r < 0)
                return r;
        if (v > (uint64_t)INT64_MAX)
                return gv_error_set(err, ERANGE, "'%s' is out of range", key);
        *ret = (int64_t)v;
        return 0;
}

/* Strict: every key known, every type right, "id" equal to the file's id. */
static int op_from_json(const json_t *j, const char *file_id, struct op **ret,
                        struct gv_error **err)
{
        static const char *const keys[] = { "id", "method", "path", "request_sha256", "state",
                                             "started_ms", "finished_ms", "status", "response" };
        if (!json_is_object(j))
                return gv_error_set(err, EINVAL, "expected a JSON object");
        const char *key;
        json_t *v;
        json_object_foreach((json_t *)j, key, v) {
                bool known = false;
                for (size_t i = 0; i < ELEMENTSOF(keys); i++)
                        known = known || strcmp(key, keys[i]) == 0;
                if (!known)
                        return gv_error_set(err, EINVAL,
                                            "unknown key '%s' (valid: id, method, path, "
                                            "request_sha256, state, started_ms, finished_ms, "
                                            "status, response)",
                                            key);
        }

        const char *id, *method, *path, *hash, *state;
        int r;
        if ((r = gv_json_get_string(j, "id", &id, err)) < 0 ||
            (r = gv_json_get_string(j, "method", &method, err)) < 0 ||
            (r = gv_json_get_string(j, "path", &path, err)) < 0 ||
            (r = gv_json_get_string(j, "request_sha256", &hash, err)) < 0 ||
            (r = gv_json_get_string(j, "state", &state, err)) < 0)
                return r;
        if (strcmp(id, file_id) != 0)
                return gv_error_set(err, EINVAL, "'id' is '%s' but the file is named for '%s'",
                                    id, file_id);
        if (!method_is_valid(method))
                return gv_error_set(err, EINVAL, "'method' '%s' is not an HTTP method", method);
        if (!path_is_valid(path))
                return gv_error_set(err, EINVAL, "'path' '%s' is not a request path", path);
        if (!hash_is_valid(hash))
                return gv_error_set(err, EINVAL,
                                    "'request_sha256' '%s' is not 64 lower-case hex digits", hash);

        _cleanup_(op_freep) struct op *o = xnew0(struct op, 1);
        memcpy(o->id, id, strlen(id) + 1);
        o->method = xstrdup(method);
        o->path = xstrdup(path);
        memcpy(o->hash, hash, 65);
        if ((r = parse_ms(j, "started_ms", &o->started_ms, err)) < 0)
                return r;

        bool has_outcome = json_object_get(j, "finished_ms") || json_object_get(j, "status") ||
                           json_object_get(j, "response");
        if (strcmp(state, "running") == 0) {
                if (has_outcome)
                        return gv_error_set(err, EINVAL,
                                            "a 'running' operation has 'finished_ms', 'status' "
                                            "or 'response'");
                o->state = OP_RUNNING;
        } else if (strcmp(state, "done") == 0) {
                uint32_t status;
                if ((r = parse_ms(j, "finished_ms", &o->finished_ms, err)) < 0 ||
                    (r = gv_json_get_u32(j, "status", &status, err)) < 0)
                        return r;
                if (status < 100 || status > 599)
                        return gv_error_set(err, EINVAL, "'status' %u is not an HTTP status",
                                            status);
                json_t *resp = json_object_get(j, "response");
                if (!resp)
                        return gv_error_set(err, EINVAL, "a 'done' operation has no 'response'");
                o->status = status;
                o->response = json_is_null(resp) ? NULL : json_incref(resp);
                o->state = OP_DONE;
        } else
                return gv_error_set(err, EINVAL, "'state' '%s' is unknown (valid: running, done)",
                                    state);
        *ret = TAKE_PTR(o);
        return 0;
}

/* Read DIR/name, at most GV_OPLOG_FILE_MAX bytes. -EFBIG when larger, -EISDIR (or another
 * errno) when not a regular file. */
static int read_entry(struct gv_oplog *l, const char *name, char **ret)
{
        _cleanup_close_ int fd = openat(l->dir_fd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW |
                                                         O_NOCTTY | O_NONBLOCK);
        if (fd < 0)
                return errno == ELOOP ? -EINVAL : -errno;
        struct stat st;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode))
                return -EINVAL;
        if (st.st_size >= (off_t)GV_OPLOG_FILE_MAX)
                return -EFBIG;
        size_t cap = (size_t)st.st_size + 1;
        _cleanup_free_ char *buf = xmalloc(cap + 1);
        size_t n = 0;
        for (;;) {
                ssize_t k = read(fd, buf + n, cap - n);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0)
                        return -errno;
                if (k == 0)
                        break;
                n += (size_t)k;
                if (n == cap)
                        return -EFBIG; /* grew while read */
        }
        buf[n] = 0;
        if (memchr(buf, 0, n))
                return -EBADMSG;
        *ret = TAKE_PTR(buf);
        return 0;
}

static void add_warning(struct gv_oplog *l, const char *fmt, ...) _printf_(2, 3);
static void add_warning(struct gv_oplog *l, const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        strv_consume(&l->warnings, xvasprintf(fmt, ap));
        va_end(ap);
}

/* name ends with suffix and what precedes it is a valid id: copy the id to id_buf. */
static bool entry_name(const char *name, const char *suffix, char id_buf[GV_OPLOG_ID_MAX + 1])
{
        size_t n = strlen(name), s = strlen(suffix);
        if (n <= s || n - s > GV_OPLOG_ID_MAX || strcmp(name + n - s, suffix) != 0)
                return false;
        memcpy(id_buf, name, n - s);
        id_buf[n - s] = 0;
        return gv_oplog_id_is_valid(id_buf);
}

static int load_one(struct gv_oplog *l, const char *name, const char *id, bool *changed,
                    struct gv_error **err)
{
        _cleanup_free_ char *buf = NULL;
        _cleanup_(gv_error_freep) struct gv_error *perr = NULL;
        _cleanup_(json_decrefp) json_t *j = NULL;
        struct op *o = NULL;
        int r = read_entry(l, name, &buf);
        if (r == -EFBIG)
                r = gv_error_set(&perr, EFBIG, "larger than %u bytes", GV_OPLOG_FILE_MAX);
        else if (r == -EINVAL)
                r = gv_error_set(&perr, EINVAL, "not a regular file");
        else if (r == -EBADMSG)
                r = gv_error_set(&perr, EBADMSG, "contains a NUL byte");
        else if (r < 0)
                return gv_error_set(err, -r, "cannot read '%s/%s': %s", l->dir, name,
                                    strerror(-r));
        if (r >= 0)
                r = gv_json_loads(buf, &j, &perr);
        if (r >= 0)
                r = op_from_json(j, id, &o, &perr);
        if (r >= 0) {
                add_locked(l, o);
                return 0;
        }

        /* Corrupt: move it aside so the agent starts, and say so. */
        _cleanup_free_ char *aside = xasprintf("%s.corrupt", name);
        if (renameat(l->dir_fd, name, l->dir_fd, aside) < 0)
                return gv_error_set(err, errno,
                                    "operation journal file '%s/%s' is invalid (%s) and cannot be "
                                    "moved aside: %s",
                                    l->dir, name, gv_error_msg(perr, r), strerror(errno));
        *changed = true;
        add_warning(l,
                    "operation journal file '%s/%s' is invalid (%s); moved aside to '%s/%s': "
                    "operation '%s' is forgotten (a retry runs it again)",
                    l->dir, name, gv_error_msg(perr, r), l->dir, aside, id);
        return 0;
}

static int load_all(struct gv_oplog *l, struct gv_error **err)
{
        int fd = openat(l->dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return gv_error_set(err, errno, "cannot open '%s': %s", l->dir, strerror(errno));
        DIR *d = fdopendir(fd);
        if (!d) {
                int e = errno;
                close(fd);
                return gv_error_set(err, e, "cannot read '%s': %s", l->dir, strerror(e));
        }
        /* Names first, then the work: renames during readdir could be seen twice. */
        _cleanup_strv_free_ char **names = NULL;
        struct dirent *de;
        errno = 0;
        while ((de = readdir(d)))
                strv_extend(&names, de->d_name);
        int e = errno;
        closedir(d);
        if (e != 0)
                return gv_error_set(err, e, "cannot read '%s': %s", l->dir, strerror(e));
        strv_sort(names);

        bool changed = false;
        STRV_FOREACH(name, names) {
                char id[GV_OPLOG_ID_MAX + 1];
                if (entry_name(*name, ".json.tmp", id)) {
                        /* A write that a crash interrupted before its rename: never committed. */
                        if (unlinkat(l->dir_fd, *name, 0) < 0 && errno != ENOENT)
                                return gv_error_set(err, errno, "cannot remove '%s/%s': %s",
                                                    l->dir, *name, strerror(errno));
                        changed = true;
                } else if (entry_name(*name, ".json", id)) {
                        int r = load_one(l, *name, id, &changed, err);
                        if (r < 0)
                                return r;
                }
                /* Anything else (ID.json.corrupt, files of other tools) is left alone. */
        }
        return changed ? fsync_dir(l, err) : 0;
}

int gv_oplog_open(const char *dir, struct gv_oplog **ret, struct gv_error **err)
{
        if (!dir || !*dir)
                return gv_error_set(err, EINVAL, "the operation journal needs a directory");
        int r = gv_mkdir_p(dir, 0700);
        if (r < 0)
                return gv_error_set(err, -r, "cannot create the operation journal '%s': %s", dir,
                                    strerror(-r));

        _cleanup_(gv_oplog_freep) struct gv_oplog *l = xnew0(struct gv_oplog, 1);
        pthread_mutex_init(&l->lock, NULL);
        l->dir_fd = -1;
        l->dir = xstrdup(dir);
        l->clock = realtime_ms;
        l->dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (l->dir_fd < 0)
                return gv_error_set(err, errno, "cannot open the operation journal '%s': %s", dir,
                                    strerror(errno));
        if (flock(l->dir_fd, LOCK_EX | LOCK_NB) < 0) {
                if (errno == EWOULDBLOCK)
                        return gv_error_set(err, EBUSY,
                                            "the operation journal '%s' is in use by another "
                                            "process: stop the other agent using this state "
                                            "directory",
                                            dir);
                return gv_error_set(err, errno, "cannot lock the operation journal '%s': %s", dir,
                                    strerror(errno));
        }
        r = load_all(l, err);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(l);
        return 0;
}

struct gv_oplog *gv_oplog_free(struct gv_oplog *l)
{
        if (!l)
                return NULL;
        for (size_t i = 0; i < l->n_ops; i++)
                op_free(l->ops[i]);
        free(l->ops);
        strv_free(l->warnings);
        if (l->dir_fd >= 0)
                close(l->dir_fd); /* releases the flock */
        free(l->dir);
        pthread_mutex_destroy(&l->lock);
        free(l);
        return NULL;
}

const char *const *gv_oplog_warnings(const struct gv_oplog *l)
{
        static const char *const none[] = { NULL };
        return l->warnings ? (const char *const *)l->warnings : none;
}

/* ---- operations ---- */

int gv_oplog_begin(struct gv_oplog *l, const char *id, const char *method, const char *path,
                   const void *body, size_t body_len, unsigned *ret_status, json_t **ret_body,
                   enum gv_oplog_begin *ret_kind, struct gv_error **err)
{
        if (!gv_oplog_id_is_valid(id))
                return gv_error_set(err, EINVAL,
                                    "operation id '%s' is invalid: use 1 to %d characters of "
                                    "A-Z, a-z, 0-9, '.', '_' and '-', not '.' or '..'",
                                    id ? id : "", GV_OPLOG_ID_MAX);
        if (!method_is_valid(method))
                return gv_error_set(err, EINVAL,
                                    "method '%s' is invalid: expected 1 to 16 upper-case letters",
                                    method ? method : "");
        if (!path_is_valid(path))
                return gv_error_set(err, EINVAL,
                                    "request path '%s' is invalid: expected '/' then printable "
                                    "ASCII without spaces, at most %d bytes",
                                    path ? path : "", GV_OPLOG_PATH_MAX);
        if (!body && body_len > 0)
                return gv_error_set(err, EINVAL, "a request body of %zu bytes has no data",
                                    body_len);

        char hash[65];
        request_hash(method, path, body, body_len, hash);

        pthread_mutex_lock(&l->lock);
        ssize_t i = find_locked(l, id);
        if (i >= 0) {
                const struct op *o = l->ops[i];
                enum gv_oplog_begin kind;
                unsigned status;
                json_t *b;
                if (strcmp(o->hash, hash) != 0) {
                        kind = GV_OPLOG_MISMATCH;
                        status = 422;
                        b = op_describe(o);
                } else if (o->state == OP_DONE) {
                        kind = GV_OPLOG_REPLAY;
                        status = o->status;
                        b = o->response ? json_deep_copy(o->response) : NULL;
                } else {
                        kind = GV_OPLOG_IN_PROGRESS;
                        status = 409;
                        b = op_describe(o);
                }
                pthread_mutex_unlock(&l->lock);
                if (ret_status)
                        *ret_status = status;
                if (ret_body)
                        *ret_body = b;
                else
                        json_decref(b);
                *ret_kind = kind;
                return 0;
        }

        struct op *o = xnew0(struct op, 1);
        memcpy(o->id, id, strlen(id) + 1);
        o->method = xstrdup(method);
        o->path = xstrdup(path);
        memcpy(o->hash, hash, sizeof(hash));
        o->started_ms = now_ms(l);
        o->state = OP_RUNNING;
        o->claim = CLAIM_EXEC;
        add_locked(l, o);
        pthread_mutex_unlock(&l->lock);

        /* Outside the mutex: o is ours (EXEC), others only read its immutable fields. */
        _cleanup_(json_decrefp) json_t *j = op_to_json(o, false, 0, 0, NULL);
        int r = write_entry(l, id, j, err);
        if (r >= 0)
                GV_FAILPOINT("agent.oplog.begun");
        if (r < 0) {
                pthread_mutex_lock(&l->lock);
                remove_locked(l, o);
                pthread_mutex_unlock(&l->lock);
                op_free(o);
                return gv_error_wrap(err, r, "cannot record operation '%s'", id);
        }
        if (ret_status)
                *ret_status = 0;
        if (ret_body)
                *ret_body = NULL;
        *ret_kind = GV_OPLOG_NEW;
        return 0;
}

static int check_status(unsigned status, const char *id, struct gv_error **err)
{
        if (status < 100 || status > 599)
                return gv_error_set(err, EINVAL,
                                    "status %u for operation '%s' is not an HTTP status "
                                    "(100 to 599)",
                                    status, id);
        return 0;
}

/* Write the outcome of o (claimed by the caller) and then publish it. Takes over body. */
static int complete(struct gv_oplog *l, struct op *o, unsigned status, json_t *body,
                    struct gv_error **err)
{
        int64_t finished = now_ms(l);
        _cleanup_(json_decrefp) json_t *j = op_to_json(o, true, finished, status, body);
        int r = write_entry(l, o->id, j, err);
        if (r < 0) {
                json_decref(body);
                return r;
        }
        GV_FAILPOINT("agent.oplog.completed");
        pthread_mutex_lock(&l->lock);
        o->state = OP_DONE;
        o->finished_ms = finished;
        o->status = status;
        o->response = body;
        o->claim = CLAIM_NONE;
        pthread_mutex_unlock(&l->lock);
        return 0;
}

int gv_oplog_finish(struct gv_oplog *l, const char *id, unsigned status, const json_t *body,
                    struct gv_error **err)
{
        if (!gv_oplog_id_is_valid(id))
                return gv_error_set(err, EINVAL, "operation id '%s' is invalid", id ? id : "");
        int r = check_status(status, id, err);
        if (r < 0)
                return r;

        pthread_mutex_lock(&l->lock);
        ssize_t i = find_locked(l, id);
        struct op *o = i >= 0 ? l->ops[i] : NULL;
        bool ok = o && o->state == OP_RUNNING && o->claim == CLAIM_EXEC;
        pthread_mutex_unlock(&l->lock);
        if (!ok)
                return gv_error_set(err, ESRCH,
                                    "operation '%s' is not running in this journal: finish only "
                                    "an operation that gv_oplog_begin() returned NEW for, once",
                                    id);

        r = complete(l, o, status, body ? json_deep_copy(body) : NULL, err);
        if (r < 0)
                return gv_error_wrap(err, r, "cannot record the outcome of operation '%s'", id);
        return 0;
}

int gv_oplog_forget(struct gv_oplog *l, const char *id, struct gv_error **err)
{
        if (!gv_oplog_id_is_valid(id))
                return gv_error_set(err, EINVAL, "operation id '%s' is invalid", id ? id : "");

        pthread_mutex_lock(&l->lock);
        ssize_t i = find_locked(l, id);
        struct op *o = i >= 0 ? l->ops[i] : NULL;
        enum op_claim prev = o ? o->claim : CLAIM_NONE;
        if (o && prev != CLAIM_IO)
                o->claim = CLAIM_IO;
        pthread_mutex_unlock(&l->lock);
        if (!o)
                return gv_error_set(err, ENOENT, "operation '%s' is not in the journal", id);
        if (prev == CLAIM_IO)
                return gv_error_set(err, EBUSY,
                                    "operation '%s' is being forgotten or recovered now: try again",
                                    id);

        /* Remove the file before the entry: until the unlink is durable, a retry still sees
         * the operation (IN_PROGRESS or REPLAY), never a NEW whose file we would delete. */
        int r = remove_entry_file(l, id, err);
        if (r >= 0)
                r = fsync_dir(l, err);
        pthread_mutex_lock(&l->lock);
        if (r < 0)
                o->claim = prev;
        else
                remove_locked(l, o);
        pthread_mutex_unlock(&l->lock);
        if (r < 0)
                return gv_error_wrap(err, r, "cannot forget operation '%s'", id);
        op_free(o);
        return 0;
}

int gv_oplog_recover(struct gv_oplog *l, gv_oplog_recover_fn fn, void *userdata,
                     struct gv_error **err)
{
        int n = 0;
        for (;;) {
                /* Each decided entry leaves the "running, unclaimed" set: this terminates. */
                struct op *o = NULL;
                pthread_mutex_lock(&l->lock);
                for (size_t i = 0; i < l->n_ops && !o; i++)
                        if (l->ops[i]->state == OP_RUNNING && l->ops[i]->claim == CLAIM_NONE)
                                o = l->ops[i];
                if (o)
                        o->claim = CLAIM_IO;
                pthread_mutex_unlock(&l->lock);
                if (!o)
                        return n;

                unsigned status = 0;
                json_t *body = NULL;
                int r = fn(o->id, o->method, o->path, &status, &body, userdata);
                if (r < 0)
                        r = gv_error_set(err, -r, "cannot recover operation '%s' (%s '%s'): %s",
                                         o->id, o->method, o->path, strerror(-r));
                else if (r > 0) {
                        r = check_status(status, o->id, err);
                        if (r >= 0) {
                                r = complete(l, o, status, TAKE_PTR(body), err);
                                if (r < 0)
                                        r = gv_error_wrap(err, r,
                                                          "cannot record the recovered outcome "
                                                          "of operation '%s'",
                                                          o->id);
                        }
                } else {
                        r = remove_entry_file(l, o->id, err);
                        if (r >= 0)
                                r = fsync_dir(l, err);
                        if (r >= 0) {
                                pthread_mutex_lock(&l->lock);
                                remove_locked(l, o);
                                pthread_mutex_unlock(&l->lock);
                                op_free(TAKE_PTR(o));
                        } else
                                r = gv_error_wrap(err, r, "cannot forget operation '%s'",
                                                  o->id);
                }
                json_decref(body);
                if (r < 0) {
                        pthread_mutex_lock(&l->lock);
                        o->claim = CLAIM_NONE;
                        pthread_mutex_unlock(&l->lock);
                        return r;
                }
                n++;
        }
}

static int cmp_oldest(const void *a, const void *b)
{
        const struct op *x = *(const struct op *const *)a, *y = *(const struct op *const *)b;
        if (x->finished_ms != y->finished_ms)
                return x->finished_ms < y->finished_ms ? -1 : 1;
        return strcmp(x->id, y->id);
}

int gv_oplog_prune(struct gv_oplog *l, int64_t max_age_s, size_t max_entries,
                   struct gv_error **err)
{
        int64_t now = now_ms(l);
        /* Finished before cutoff: dropped. No age limit, or one reaching before the clock's
         * range, drops nothing by age. */
        int64_t cutoff = INT64_MIN, age_ms;
        if (max_age_s >= 0 && !__builtin_mul_overflow(max_age_s, 1000, &age_ms) &&
            __builtin_sub_overflow(now, age_ms, &cutoff))
                cutoff = INT64_MIN;

        pthread_mutex_lock(&l->lock);
        /* Candidates: finished and unclaimed; the victims sorted to the front, oldest first. */
        struct op **cand = xnew0(struct op *, l->n_ops + 1);
        size_t n_cand = 0, n_victims = 0;
        for (size_t i = 0; i < l->n_ops; i++)
                if (l->ops[i]->state == OP_DONE && l->ops[i]->claim == CLAIM_NONE)
                        cand[n_cand++] = l->ops[i];
        qsort(cand, n_cand, sizeof(*cand), cmp_oldest);
        while (n_victims < n_cand && cand[n_victims]->finished_ms < cutoff)
                n_victims++;
        if (max_entries != SIZE_MAX)
                while (n_victims < n_cand && l->n_ops - n_victims > max_entries)
                        n_victims++;

        int r = 0;
        size_t removed = 0;
        for (; removed < n_victims; removed++) {
                r = remove_entry_file(l, cand[removed]->id, err);
                if (r < 0)
                        break;
        }
        if (removed > 0) {
                int k = fsync_dir(l, r < 0 ? NULL : err);
                if (r >= 0)
                        r = k;
        }
        for (size_t i = 0; i < removed; i++) {
                remove_locked(l, cand[i]);
                op_free(cand[i]);
        }
        pthread_mutex_unlock(&l->lock);
        free(cand);
        if (r < 0)
                return gv_error_wrap(err, r, "cannot prune the operation journal '%s'", l->dir);
        return (int)MIN(removed, (size_t)INT32_MAX);
}
