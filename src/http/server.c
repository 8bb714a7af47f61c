/* SPDX-License-Identifier: MIT */
/*
 * server.c — listeners, request lifecycle and replies over libmicrohttpd (see server.h).
 *
 * The plan: libmicrohttpd calls the access handler several times per request. The first call
 * (headers read) makes our struct gv_http_request, routes it and checks Content-Length against
 * the cap; a 404/405/400/413 is queued right there, before any body is read. Later calls feed
 * the body into a buffer, checked against the cap as it grows (chunked uploads). The last call
 * (no more data) runs the route's handler, which leaves exactly one MHD_Response in the request;
 * that response gets the common headers and is queued. The completion callback frees the
 * request.
 *
 * Paths are not unescaped by libmicrohttpd (the unescape callback keeps them raw): "%2F" must
 * not turn into a segment separator before routing. route.c decodes each parameter on its own;
 * gv_http_query() decodes query values.
 */
#include "server.h"

#include <fcntl.h>
#include <inttypes.h>
#include <microhttpd.h>
#include <netdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "http/tls.h"
#include "util/alloc.h"
#include "util/json.h"
#include "util/parse.h"
#include "util/strv.h"

/* sun_path holds 108 bytes; ".tmp" is appended while binding. */
#define UNIX_PATH_MAX_LEN 100
#define LISTEN_BACKLOG 64

struct listener {
        struct gv_http_server *srv;
        struct MHD_Daemon *daemon;
        bool is_unix;
        bool tls;
};

struct gv_http_server {
        const struct gv_http_route *routes;
        size_t n_routes;
        void *userdata;
        size_t max_body;
        char *upload_dir;
        uint64_t max_upload;
        void (*on_complete)(void *userdata, const struct gv_http_request *req);
        int (*tcp_authorize)(void *userdata, struct gv_http_request *req);
        char *tls_cert, *tls_key; /* PEM texts; libmicrohttpd reads them while it runs */

        struct listener unix_l, tcp_l;
        char *unix_path;
        char *lock_path;
        int lock_fd;
        dev_t sock_dev;
        ino_t sock_ino;
        uint16_t tcp_port;

        atomic_uint_fast64_t next_id;
        int stop_fd; /* eventfd: readable once the server is being freed */
        /* Upgraded TLS connections being worked on in threads of their own (upgrade_run) */
        pthread_mutex_t up_mu;
        pthread_cond_t up_cond;
        unsigned up_running;
};

struct gv_http_request {
        struct gv_http_server *srv;
        struct MHD_Connection *conn;
        bool is_unix;
        bool is_tls;
        char id[DECIMAL_STR_MAX(uint64_t)];
        char *method;
        char *path;

        struct gv_http_route_match match;
        bool routed;

        char *body;
        size_t body_len;
        size_t body_cap;
        size_t discarded; /* bytes dropped after the body passed the cap (chunked uploads) */
        /* body_to_file routes */
        char *upload_path;
        int upload_fd;
        uint64_t upload_len;
        int upload_error; /* positive errno of a failed write: answered after the body */

        struct MHD_Response *response; /* made by a reply, not yet queued */
        unsigned status;               /* of the reply made */
        bool queued;

        char **query_values; /* decoded query values handed out, freed with the request */
        struct upgrade *upgrade; /* gv_http_reply_upgrade(): freed with the request */
};

/* ---------------------------------------------------------------------------------------- */
/* Replies                                                                                     */

static int set_response(struct gv_http_request *req, unsigned status, struct MHD_Response *resp,
                        const char *content_type)
{
        if (!resp)
                abort(); /* MHD fails only on OOM or bad arguments */
        if (content_type)
                (void)MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
        (void)MHD_add_response_header(resp, "X-Request-Id", req->id);
        req->response = resp;
        req->status = status;
        return 0;
}

static int reply_buffer(struct gv_http_request *req, unsigned status, const char *content_type,
                        char *buf /* stolen */);

int gv_http_reply_text(struct gv_http_request *req, unsigned status, const char *content_type,
                       char *text)
{
        if (req->response || req->queued) {
                free(text);
                return -EALREADY;
        }
        return reply_buffer(req, status, content_type, text);
}

static int reply_buffer(struct gv_http_request *req, unsigned status, const char *content_type,
                        char *buf /* stolen */)
{
        size_t n = buf ? strlen(buf) : 0;
        struct MHD_Response *resp =
                MHD_create_response_from_buffer(n, buf ? buf : (char *)"",
                                                buf ? MHD_RESPMEM_MUST_FREE
                                                    : MHD_RESPMEM_PERSISTENT);
        return set_response(req, status, resp, content_type);
}

/* Compact (sorted keys, so answers compare byte for byte): indentation made a 1,000-VM list
 * 1.66 times larger and cost 30 % of its serving time (BENCHMARKS.md, bench-api); `jq .`
 * pretty-prints for people. */
static char *dump_json(const json_t *j)
{
        char *s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
        if (!s)
                abort();
        char *out = xasprintf("%s\n", s);
        free(s);
        return out;
}

int gv_http_reply_json(struct gv_http_request *req, unsigned status, json_t *body)
{
        _cleanup_json_ json_t *b = body;
        if (req->response || req->queued)
                return -EALREADY;
        if (!b)
                return reply_buffer(req, status, "application/json", NULL);
        return reply_buffer(req, status, "application/json", dump_json(b));
}

int gv_http_reply_problem_json(struct gv_http_request *req, unsigned status, json_t *problem)
{
        _cleanup_json_ json_t *p = problem;
        if (req->response || req->queued)
                return -EALREADY;
        if (!json_is_object(p)) {
                json_decref(p);
                p = gv_http_problem_new(status, NULL, NULL, NULL, req->path);
        }
        if (!json_object_get(p, "instance"))
                json_object_set_new(p, "instance", gv_http_json_string_lossy(req->path));
        if (!json_object_get(p, "status"))
                json_object_set_new(p, "status", json_integer(status));
        int r = reply_buffer(req, status, "application/problem+json", dump_json(p));
        /* 503: a dependency (the store's server) is away for now; RFC 9110 15.6.4. */
        if (r >= 0 && status == 503)
                (void)gv_http_reply_header(req, "Retry-After", "1");
        return r;
}

int gv_http_reply_problem(struct gv_http_request *req, unsigned status, const char *type_slug,
                          const char *title, const char *detail_fmt, ...)
{
        if (req->response || req->queued)
                return -EALREADY;
        _cleanup_free_ char *detail = NULL;
        if (detail_fmt) {
                va_list ap;
                va_start(ap, detail_fmt);
                detail = xvasprintf(detail_fmt, ap);
                va_end(ap);
        }
        return gv_http_reply_problem_json(req, status, gv_http_problem_new(status, type_slug, title,
                                                                           detail, req->path));
}

int gv_http_reply_error(struct gv_http_request *req, int r, const struct gv_error *e)
{
        if (req->response || req->queued)
                return -EALREADY;
        json_t *p = gv_http_problem_from_error(r, e, req->path);
        unsigned status = (unsigned)json_integer_value(json_object_get(p, "status"));
        return gv_http_reply_problem_json(req, status, p);
}

int gv_http_reply_header(struct gv_http_request *req, const char *name, const char *value)
{
        if (!req->response || !name || !value || !*name)
                return -EINVAL;
        for (const char *p = name; *p; p++)
                if ((unsigned char)*p <= ' ' || *p == ':' || *p == 0x7f)
                        return -EINVAL;
        for (const char *p = value; *p; p++)
                if (((unsigned char)*p < ' ' && *p != '\t') || *p == 0x7f)
                        return -EINVAL;
        return MHD_add_response_header(req->response, name, value) == MHD_YES ? 0 : -EINVAL;
}

struct stream {
        gv_http_stream_cb cb;
        void *cls;
        void (*free_cb)(void *cls);
        int stop_fd;
};

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
        struct stream *st = cls;
        (void)pos;
        ssize_t n = st->cb(st->cls, buf, max, st->stop_fd);
        if (n > 0)
                return MIN(n, (ssize_t)max);
        /* Never 0 to MHD: in internal polling mode that would spin. */
        return n == 0 ? MHD_CONTENT_READER_END_OF_STREAM : MHD_CONTENT_READER_END_WITH_ERROR;
}

static void stream_free(void *cls)
{
        struct stream *st = cls;
        if (st->free_cb)
                st->free_cb(st->cls);
        free(st);
}

int gv_http_reply_stream(struct gv_http_request *req, unsigned status, const char *content_type,
                         gv_http_stream_cb callback, void *cls, void (*free_cb)(void *cls))
{
        if (req->response || req->queued || !callback) {
                if (free_cb)
                        free_cb(cls);
                return req->response || req->queued ? -EALREADY : -EINVAL;
        }
        struct stream *st = xnew0(struct stream, 1);
        *st = (struct stream){
                .cb = callback, .cls = cls, .free_cb = free_cb, .stop_fd = req->srv->stop_fd };
        struct MHD_Response *resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096,
                                                                      stream_read, st, stream_free);
        if (!resp) {
                stream_free(st);
                abort();
        }
        return set_response(req, status, resp,
                            content_type ? content_type : "application/octet-stream");
}

/* An upgrade (gv_http_reply_upgrade). libmicrohttpd calls upgrade_run() on the connection's
 * thread after sending the 101; the server closes the socket when it returns
 * (MHD_UPGRADE_ACTION_CLOSE), and only after that completes the request (on_completed, from
 * the daemon's thread, which frees the request and this). A 101 that was never sent leaves
 * `ran` false: request_free() then calls free_cb. */
struct upgrade {
        gv_http_upgrade_cb cb;
        void *cls;
        void (*free_cb)(void *cls);
        struct gv_http_server *srv;
        atomic_bool ran;
        bool tls;
};

/* TLS: the work of one upgraded connection, owned by its thread (the request, and the struct
 * upgrade with it, is freed as soon as upgrade_run returns). */
struct upgrade_job {
        gv_http_upgrade_cb cb;
        void *cls;
        void (*free_cb)(void *cls);
        struct gv_http_server *srv;
        char *extra;
        size_t n_extra;
        MHD_socket sock;
        struct MHD_UpgradeResponseHandle *urh;
};

static void *upgrade_thread(void *arg)
{
        struct upgrade_job *j = arg;
        struct gv_http_server *s = j->srv;
        j->cb(j->cls, j->sock, j->extra, j->n_extra, s->stop_fd);
        if (j->free_cb)
                j->free_cb(j->cls);
        (void)MHD_upgrade_action(j->urh, MHD_UPGRADE_ACTION_CLOSE);
        free(j->extra);
        free(j);
        pthread_mutex_lock(&s->up_mu);
        s->up_running--;
        pthread_cond_broadcast(&s->up_cond);
        pthread_mutex_unlock(&s->up_mu);
        return NULL;
}

/* Plain TCP and UNIX: libmicrohttpd lets the handler keep the connection's thread for as long
 * as the upgraded connection lasts, and completes the request after it returns. TLS:
 * libmicrohttpd forwards between the TLS session and the socketpair it gives us on that same
 * thread, starting only once the handler has returned, and completes the request (frees up)
 * right then. So the work moves to a thread of its own that owns what it needs; the connection
 * stays until that thread's MHD_UPGRADE_ACTION_CLOSE, and gv_http_server_free() waits for
 * these threads (they watch stop_fd) before it stops libmicrohttpd. */
static void upgrade_run(void *cls, struct MHD_Connection *conn, void *con_cls, const char *extra,
                        size_t n_extra, MHD_socket sock, struct MHD_UpgradeResponseHandle *urh)
{
        struct upgrade *up = cls;
        struct gv_http_server *s = up->srv;
        (void)conn;
        (void)con_cls;
        atomic_store(&up->ran, true);
        if (!up->tls) {
                up->cb(up->cls, sock, extra, n_extra, s->stop_fd);
                if (up->free_cb)
                        up->free_cb(up->cls);
                up->free_cb = NULL;
                (void)MHD_upgrade_action(urh, MHD_UPGRADE_ACTION_CLOSE);
                return;
        }
        struct upgrade_job *j = xnew0(struct upgrade_job, 1);
        *j = (struct upgrade_job){
                .cb = up->cb, .cls = up->cls, .free_cb = up->free_cb, .srv = s,
                .extra = n_extra ? memcpy(xmalloc(n_extra), extra, n_extra) : NULL,
                .n_extra = n_extra, .sock = sock, .urh = urh,
        };
        up->free_cb = NULL; /* the job's now */
        pthread_mutex_lock(&s->up_mu);
        s->up_running++;
        pthread_mutex_unlock(&s->up_mu);
        pthread_attr_t attr;
        pthread_t t;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        int r = pthread_create(&t, &attr, upgrade_thread, j);
        pthread_attr_destroy(&attr);
        if (r != 0) {
                j->cb = NULL;
                if (j->free_cb)
                        j->free_cb(j->cls);
                (void)MHD_upgrade_action(urh, MHD_UPGRADE_ACTION_CLOSE);
                free(j->extra);
                free(j);
                pthread_mutex_lock(&s->up_mu);
                s->up_running--;
                pthread_mutex_unlock(&s->up_mu);
        }
}

static void upgrade_free(struct upgrade *up)
{
        if (!up)
                return;
        if (!atomic_load(&up->ran) && up->free_cb)
                up->free_cb(up->cls);
        free(up);
}

int gv_http_reply_upgrade(struct gv_http_request *req, const char *protocol,
                          gv_http_upgrade_cb callback, void *cls, void (*free_cb)(void *cls))
{
        if (req->response || req->queued || !callback || !protocol || req->upgrade) {
                if (free_cb)
                        free_cb(cls);
                return req->response || req->queued ? -EALREADY : -EINVAL;
        }
        struct upgrade *up = xnew0(struct upgrade, 1);
        *up = (struct upgrade){ .cb = callback, .cls = cls, .free_cb = free_cb,
                                .srv = req->srv, .tls = req->is_tls };
        atomic_init(&up->ran, false);
        struct MHD_Response *resp = MHD_create_response_for_upgrade(upgrade_run, up);
        if (!resp) {
                upgrade_free(up);
                abort();
        }
        req->upgrade = up;
        (void)MHD_add_response_header(resp, MHD_HTTP_HEADER_UPGRADE, protocol);
        return set_response(req, MHD_HTTP_SWITCHING_PROTOCOLS, resp, NULL);
}

/* ---------------------------------------------------------------------------------------- */
/* Request accessors                                                                           */

const char *gv_http_method(const struct gv_http_request *req)
{
        return req->method;
}

const char *gv_http_path(const struct gv_http_request *req)
{
        return req->path;
}

const char *gv_http_request_id(const struct gv_http_request *req)
{
        return req->id;
}

unsigned gv_http_status(const struct gv_http_request *req)
{
        /* A reply made by a handler counts before it is queued (the audit record is written
         * between the two). */
        return req->response || req->queued ? req->status : 0;
}

const char *gv_http_param(const struct gv_http_request *req, const char *name)
{
        return gv_http_route_match_param(&req->match, name);
}

const char *gv_http_header(const struct gv_http_request *req, const char *name)
{
        return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

const char *gv_http_body(const struct gv_http_request *req, size_t *ret_len)
{
        if (ret_len)
                *ret_len = req->body_len;
        return req->body ? req->body : "";
}

struct query_scan {
        const char *name;
        unsigned count;
        const char *raw;
        const char *const *allowed;
        const char *unknown;
};

static enum MHD_Result query_count(void *cls, enum MHD_ValueKind kind, const char *key,
                                   const char *value)
{
        struct query_scan *q = cls;
        (void)kind;
        if (q->name && strcmp(key, q->name) == 0) {
                if (q->count++ == 0)
                        q->raw = value ? value : "";
        }
        if (q->allowed && !q->unknown) {
                bool ok = false;
                for (const char *const *a = q->allowed; *a; a++)
                        if (strcmp(*a, key) == 0)
                                ok = true;
                if (!ok)
                        q->unknown = key;
        }
        return MHD_YES;
}

int gv_http_query(struct gv_http_request *req, const char *name, const char **ret,
                  struct gv_error **err)
{
        struct query_scan q = { .name = name };
        (void)MHD_get_connection_values(req->conn, MHD_GET_ARGUMENT_KIND, query_count, &q);
        if (q.count == 0)
                return 0;
        if (q.count > 1)
                return gv_error_set(err, EINVAL, "query parameter '%s' is given %u times; give it "
                                    "once.", name, q.count);
        char *v = NULL;
        if (gv_http_percent_decode(q.raw, strlen(q.raw), true, &v) < 0 ||
            !gv_http_utf8_is_valid(v, strlen(v))) {
                free(v);
                return gv_error_set(err, EINVAL, "query parameter '%s' is not well "
                                    "percent-encoded UTF-8.", name);
        }
        strv_consume(&req->query_values, v);
        *ret = v;
        return 1;
}

int gv_http_query_check(const struct gv_http_request *req, const char *const *allowed,
                        struct gv_error **err)
{
        static const char *const none[] = { NULL };
        struct query_scan q = { .allowed = allowed ? allowed : none };
        (void)MHD_get_connection_values(req->conn, MHD_GET_ARGUMENT_KIND, query_count, &q);
        if (!q.unknown)
                return 0;
        _cleanup_free_ char *valid = strv_join((char *const *)q.allowed, ", ");
        /* The unknown key is not quoted back raw: it may hold anything. */
        _cleanup_free_ char *key = NULL;
        if (gv_http_percent_decode(q.unknown, strlen(q.unknown), true, &key) < 0 ||
            !gv_http_utf8_is_valid(key, strlen(key))) {
                free(key);
                key = xstrdup("?");
        }
        return gv_error_set(err, EINVAL, "unknown query parameter '%s'; valid: %s.", key,
                            *valid ? valid : "none");
}

int gv_http_body_json(const struct gv_http_request *req, json_t **ret, struct gv_error **err)
{
        if (req->body_len == 0)
                return gv_error_set(err, EINVAL, "the request body is empty; send a JSON object.");

        json_error_t je;
        json_t *j = json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY,
                              &je);
        if (!j)
                return gv_error_set(err, EINVAL,
                                    "the request body is not valid JSON: line %d, column %d: %s.",
                                    je.line, je.column, je.text);
        if (!json_is_object(j)) {
                static const char *const kinds[] = {
                        [JSON_ARRAY] = "an array", [JSON_STRING] = "a string",
                        [JSON_INTEGER] = "a number", [JSON_REAL] = "a number",
                        [JSON_TRUE] = "true", [JSON_FALSE] = "false", [JSON_NULL] = "null",
                };
                int t = json_typeof(j);
                json_decref(j);
                return gv_error_set(err, EINVAL,
                                    "the request body must be a JSON object, not %s.",
                                    t >= 0 && (size_t)t < ELEMENTSOF(kinds) && kinds[t]
                                            ? kinds[t] : "this");
        }
        *ret = j;
        return 0;
}

bool gv_http_request_is_local(const struct gv_http_request *req)
{
        return req->is_unix;
}

bool gv_http_request_is_tls(const struct gv_http_request *req)
{
        return req->is_tls;
}

int gv_http_peer_cred(const struct gv_http_request *req, uid_t *ret_uid, gid_t *ret_gid,
                      pid_t *ret_pid)
{
        if (!req->is_unix)
                return -ENODATA;
        const union MHD_ConnectionInfo *ci =
                MHD_get_connection_info(req->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        if (!ci)
                return -ENODATA;
        struct ucred uc;
        socklen_t len = sizeof(uc);
        if (getsockopt(ci->connect_fd, SOL_SOCKET, SO_PEERCRED, &uc, &len) < 0)
                return -errno;
        if (ret_uid)
                *ret_uid = uc.uid;
        if (ret_gid)
                *ret_gid = uc.gid;
        if (ret_pid)
                *ret_pid = uc.pid;
        return 0;
}

int gv_http_peer_address(const struct gv_http_request *req, char *buf, size_t size)
{
        if (req->is_unix || size == 0)
                return -ENODATA;
        const union MHD_ConnectionInfo *ci =
                MHD_get_connection_info(req->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
        if (!ci || !ci->client_addr)
                return -ENODATA;
        char host[INET6_ADDRSTRLEN] = "";
        unsigned port = 0;
        if (ci->client_addr->sa_family == AF_INET) {
                const struct sockaddr_in *a = (const struct sockaddr_in *)ci->client_addr;
                inet_ntop(AF_INET, &a->sin_addr, host, sizeof(host));
                port = ntohs(a->sin_port);
                snprintf(buf, size, "tcp:%s:%u", host, port);
        } else if (ci->client_addr->sa_family == AF_INET6) {
                const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ci->client_addr;
                inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof(host));
                port = ntohs(a->sin6_port);
                snprintf(buf, size, "tcp:[%s]:%u", host, port);
        } else {
                return -ENODATA;
        }
        return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* Request lifecycle                                                                           */

/* What the handler did not take is removed before the reply goes out, so a client that reads
 * the reply never finds it. */
static void upload_drop(struct gv_http_request *req)
{
        if (req->upload_fd >= 0) {
                close(req->upload_fd);
                req->upload_fd = -1;
        }
        if (req->upload_path) {
                (void)unlink(req->upload_path);
                free(req->upload_path);
                req->upload_path = NULL;
        }
}

static struct gv_http_request *request_free(struct gv_http_request *req)
{
        if (!req)
                return NULL;
        if (req->response)
                MHD_destroy_response(req->response);
        gv_http_route_match_done(&req->match);
        strv_free(req->query_values);
        upload_drop(req); /* a request that ended before its body did */
        upgrade_free(req->upgrade);
        free(req->body);
        free(req->method);
        free(req->path);
        free(req);
        return NULL;
}

static enum MHD_Result queue_reply(struct gv_http_request *req)
{
        if (!req->response)
                (void)gv_http_reply_problem(req, 500, "internal", NULL,
                                            "The handler for '%s %s' sent no reply.", req->method,
                                            req->path);
        if (req->status == 405 && req->srv) {
                _cleanup_free_ char *allow =
                        gv_http_route_allowed(req->srv->routes, req->srv->n_routes, req->path);
                if (allow)
                        (void)MHD_add_response_header(req->response, MHD_HTTP_HEADER_ALLOW, allow);
        }
        enum MHD_Result r = MHD_queue_response(req->conn, req->status, req->response);
        MHD_destroy_response(req->response);
        req->response = NULL;
        req->queued = true;
        return r;
}

static void reply_too_big(struct gv_http_request *req)
{
        (void)gv_http_reply_problem(req, 413, "too-large", NULL,
                                    "The request body is larger than %zu bytes; send less.",
                                    req->srv->max_body);
}

const char *gv_http_body_path(const struct gv_http_request *req)
{
        return req->upload_path;
}

uint64_t gv_http_body_file_size(const struct gv_http_request *req)
{
        return req->upload_len;
}

/* A body_to_file route: the body goes to a new file in upload_dir. */
static int upload_begin(struct gv_http_request *req)
{
        struct gv_http_server *s = req->srv;
        const char *cl = gv_http_header(req, MHD_HTTP_HEADER_CONTENT_LENGTH);
        uint64_t n = 0;

        if (!s->upload_dir) {
                (void)gv_http_reply_problem(req, 501, "not-implemented", NULL,
                                            "This server takes no uploads (no upload "
                                            "directory is configured).");
                return 1;
        }
        if (!cl) {
                (void)gv_http_reply_problem(req, 411, "length-required", NULL,
                                            "An upload needs Content-Length (its size in "
                                            "bytes).");
                return 1;
        }
        if (gv_parse_u64(cl, 10, &n) < 0 || n > s->max_upload) {
                (void)gv_http_reply_problem(req, 413, "too-large", NULL,
                                            "Content-Length '%s' is not a size up to %" PRIu64
                                            " bytes.", cl, s->max_upload);
                return 1;
        }
        req->upload_path = xasprintf("%s/.upload-%s", s->upload_dir, req->id);
        req->upload_fd = open(req->upload_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC |
                                                        O_NOFOLLOW, 0600);
        if (req->upload_fd < 0) {
                int e = errno;
                (void)gv_http_reply_problem(req, 507, "insufficient-storage", NULL,
                                            "Cannot create '%s' for the upload: %s.",
                                            req->upload_path, strerror(e));
                free(req->upload_path);
                req->upload_path = NULL;
                return 1;
        }
        return 0;
}


static void upload_append(struct gv_http_request *req, const char *data, size_t n)
{
        if (req->upload_error)
                return;
        if (n > req->srv->max_upload - MIN(req->upload_len, req->srv->max_upload)) {
                req->upload_error = EFBIG;
                return;
        }
        while (n) {
                ssize_t w = write(req->upload_fd, data, n);
                if (w < 0 && errno == EINTR)
                        continue;
                if (w <= 0) {
                        req->upload_error = w < 0 ? errno : EIO;
                        return;
                }
                data += w;
                n -= (size_t)w;
                req->upload_len += (uint64_t)w;
        }
}

/* The first call: headers are in. 1 when a reply is ready now (no body will be read). */
static int request_begin(struct gv_http_request *req)
{
        struct gv_http_server *s = req->srv;
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;

        if (!req->is_unix && s->tcp_authorize && s->tcp_authorize(s->userdata, req) != 0) {
                if (!req->response)
                        (void)gv_http_reply_problem(req, 401, "unauthorized", NULL,
                                                    "This request needs credentials.");
                return 1;
        }
        int r = gv_http_route_find(s->routes, s->n_routes, req->method, req->path, &req->match,
                                   &e);
        if (r == -ENOENT) {
                (void)gv_http_reply_problem(req, 404, "not-found", NULL, "%s",
                                            gv_error_msg(e, r));
                return 1;
        }
        if (r == -EOPNOTSUPP) {
                (void)gv_http_reply_problem(req, 405, "method-not-allowed", NULL, "%s",
                                            gv_error_msg(e, r));
                return 1;
        }
        if (r < 0) {
                (void)gv_http_reply_problem(req, 400, "invalid-request", NULL, "%s",
                                            gv_error_msg(e, r));
                return 1;
        }
        req->routed = true;

        if (req->match.route->body_to_file)
                return upload_begin(req);
        const char *cl = gv_http_header(req, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl) {
                uint64_t n;
                if (gv_parse_u64(cl, 10, &n) < 0) {
                        (void)gv_http_reply_problem(req, 400, "invalid-request", NULL,
                                                    "Content-Length is not a number.");
                        return 1;
                }
                if (n > s->max_body) {
                        reply_too_big(req);
                        return 1;
                }
        }
        return 0;
}

static int body_append(struct gv_http_request *req, const char *data, size_t n)
{
        if (n > req->srv->max_body - req->body_len)
                return -EFBIG;
        if (req->body_len + n + 1 > req->body_cap) {
                size_t cap = MAX(req->body_cap * 2, req->body_len + n + 1);
                cap = MIN(cap, req->srv->max_body + 1);
                req->body = xreallocarray(req->body, cap, 1);
                req->body_cap = cap;
        }
        memcpy(req->body + req->body_len, data, n);
        req->body_len += n;
        req->body[req->body_len] = '\0';
        return 0;
}

static void request_dispatch(struct gv_http_request *req)
{
        struct gv_http_server *s = req->srv;
        int r = req->match.route->handler(req, s->userdata);
        if (r < 0 && !req->response)
                (void)gv_http_reply_error(req, r, NULL);
}

static enum MHD_Result on_access(void *cls, struct MHD_Connection *conn, const char *url,
                                 const char *method, const char *version,
                                 const char *upload_data, size_t *upload_data_size,
                                 void **con_cls)
{
        struct listener *l = cls;
        struct gv_http_request *req = *con_cls;
        (void)version;

        if (!req) {
                req = xnew0(struct gv_http_request, 1);
                req->upload_fd = -1;
                req->srv = l->srv;
                req->conn = conn;
                req->is_unix = l->is_unix;
                req->is_tls = l->tls;
                snprintf(req->id, sizeof(req->id), "%" PRIuFAST64,
                         atomic_fetch_add(&l->srv->next_id, 1));
                req->method = xstrdup(method);
                req->path = xstrdup(url);
                *con_cls = req;
                if (request_begin(req) > 0)
                        return queue_reply(req);
                return MHD_YES;
        }

        if (req->queued) {
                /* Answered early: whatever body still comes is dropped. */
                *upload_data_size = 0;
                return MHD_YES;
        }
        if (*upload_data_size > 0 && req->upload_path) {
                upload_append(req, upload_data, *upload_data_size);
                *upload_data_size = 0;
                return MHD_YES;
        }
        if (req->upload_path) {
                int e = req->upload_error;
                if (!e && close(req->upload_fd) < 0 && errno != EINTR)
                        e = errno;
                req->upload_fd = -1;
                if (e) {
                        (void)gv_http_reply_problem(req, e == EFBIG ? 413 : 507,
                                                    e == EFBIG ? "too-large"
                                                               : "insufficient-storage",
                                                    NULL, "The upload could not be kept: %s.",
                                                    strerror(e));
                        upload_drop(req);
                        return queue_reply(req);
                }
        }
        if (*upload_data_size > 0) {
                size_t n = *upload_data_size;
                *upload_data_size = 0;
                if (req->discarded > 0 || body_append(req, upload_data, n) < 0) {
                        /* A chunked body passed the cap. libmicrohttpd can queue a reply only
                         * before the body or after all of it, so the rest is read and dropped
                         * for the 413, up to another max_body bytes; past that the connection
                         * is closed without a reply. */
                        if (n > req->srv->max_body - MIN(req->discarded, req->srv->max_body))
                                return MHD_NO;
                        req->discarded += n;
                }
                return MHD_YES;
        }
        if (req->discarded > 0) {
                reply_too_big(req);
                return queue_reply(req);
        }

        request_dispatch(req);
        upload_drop(req);
        return queue_reply(req);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
        struct listener *l = cls;
        struct gv_http_request *req = *con_cls;
        (void)conn;
        (void)toe;
        if (!req)
                return;
        if (l->srv->on_complete)
                l->srv->on_complete(l->srv->userdata, req);
        request_free(req);
        *con_cls = NULL;
}

/* Keep paths raw: route.c decodes each parameter itself. */
static size_t unescape_none(void *cls, struct MHD_Connection *c, char *s)
{
        (void)cls;
        (void)c;
        return strlen(s);
}

/* ---------------------------------------------------------------------------------------- */
/* Listeners                                                                                   */

static int unix_path_in_use(const char *path, struct gv_error **err)
{
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        strcpy(sa.sun_path, path);
        _cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return gv_error_set(err, errno, "cannot create a UNIX socket: %s.",
                                    strerror(errno));
        if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
                return gv_error_set(err, EADDRINUSE,
                                    "another server is listening on '%s'; stop it or choose "
                                    "another socket path.", path);
        if (errno == ECONNREFUSED || errno == ENOENT)
                return 0; /* stale: its server is gone */
        return gv_error_set(err, errno, "cannot check whether a server listens on '%s': %s.",
                            path, strerror(errno));
}

static int listen_unix(struct gv_http_server *s, const char *path, mode_t mode, int *ret_fd,
                       struct gv_error **err)
{
        if (strlen(path) > UNIX_PATH_MAX_LEN)
                return gv_error_set(err, ENAMETOOLONG,
                                    "UNIX socket path '%s' is longer than %d bytes; choose a "
                                    "shorter one.", path, UNIX_PATH_MAX_LEN);
        if (path[0] != '/')
                return gv_error_set(err, EINVAL,
                                    "UNIX socket path '%s' must be absolute.", path);

        /* One server per path: the lock outlives nothing but the process holding it. */
        s->lock_path = xasprintf("%s.lock", path);
        s->lock_fd = open(s->lock_path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOCTTY, 0600);
        if (s->lock_fd < 0)
                return gv_error_set(err, errno, "cannot open lock file '%s': %s.", s->lock_path,
                                    strerror(errno));
        if (flock(s->lock_fd, LOCK_EX | LOCK_NB) < 0) {
                if (errno == EWOULDBLOCK)
                        return gv_error_set(err, EADDRINUSE,
                                            "another server is listening on '%s' (it holds "
                                            "'%s'); stop it or choose another socket path.",
                                            path, s->lock_path);
                return gv_error_set(err, errno, "cannot lock '%s': %s.", s->lock_path,
                                    strerror(errno));
        }

        struct stat st;
        if (lstat(path, &st) == 0) {
                if (!S_ISSOCK(st.st_mode))
                        return gv_error_set(err, EEXIST,
                                            "'%s' exists and is not a socket; remove it or "
                                            "choose another socket path.", path);
                int r = unix_path_in_use(path, err);
                if (r < 0)
                        return r;
        } else if (errno != ENOENT) {
                return gv_error_set(err, errno, "cannot inspect '%s': %s.", path,
                                    strerror(errno));
        }

        /* Bind under a temporary name, set the mode, listen, then rename over the path: the
         * socket never appears under its name with the umask's mode, and a stale socket file is
         * replaced in one step. */
        _cleanup_free_ char *tmp = xasprintf("%s.tmp", path);
        (void)unlink(tmp);
        _cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return gv_error_set(err, errno, "cannot create a UNIX socket: %s.",
                                    strerror(errno));
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        strcpy(sa.sun_path, tmp);
        if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
                return gv_error_set(err, errno, "cannot bind UNIX socket '%s': %s.", tmp,
                                    strerror(errno));
        int r = 0;
        if (chmod(tmp, mode) < 0)
                r = gv_error_set(err, errno, "cannot set mode %04o on '%s': %s.", (unsigned)mode,
                                 tmp, strerror(errno));
        else if (listen(fd, LISTEN_BACKLOG) < 0)
                r = gv_error_set(err, errno, "cannot listen on '%s': %s.", tmp, strerror(errno));
        else if (rename(tmp, path) < 0)
                r = gv_error_set(err, errno, "cannot move socket '%s' to '%s': %s.", tmp, path,
                                 strerror(errno));
        else if (lstat(path, &st) < 0)
                r = gv_error_set(err, errno, "cannot inspect '%s': %s.", path, strerror(errno));
        if (r < 0) {
                (void)unlink(tmp);
                return r;
        }
        s->unix_path = xstrdup(path);
        s->sock_dev = st.st_dev;
        s->sock_ino = st.st_ino;
        *ret_fd = TAKE_FD(fd);
        return 0;
}

static int parse_host_port(const char *addr, char **ret_host, uint16_t *ret_port,
                           struct gv_error **err)
{
        const char *colon;
        _cleanup_free_ char *host = NULL;

        if (addr[0] == '[') {
                const char *close = strchr(addr, ']');
                if (!close || close[1] != ':')
                        goto bad;
                host = xstrndup(addr + 1, (size_t)(close - addr - 1));
                colon = close + 1;
        } else {
                colon = strrchr(addr, ':');
                if (!colon || memchr(addr, ':', (size_t)(colon - addr)))
                        goto bad;
                host = xstrndup(addr, (size_t)(colon - addr));
        }
        if (!*host)
                goto bad;
        uint16_t port;
        if (gv_parse_u16(colon + 1, 10, &port) < 0 || colon[1] == '+' || colon[1] == '\0')
                goto bad;
        *ret_host = TAKE_PTR(host);
        *ret_port = port;
        return 0;
bad:
        return gv_error_set(err, EINVAL,
                            "TCP address '%s' is not HOST:PORT; write e.g. '127.0.0.1:8470', "
                            "'[::1]:8470' or '0.0.0.0:0' (0: any free port).", addr);
}

static int listen_tcp(struct gv_http_server *s, const char *addr, int *ret_fd,
                      struct gv_error **err)
{
        _cleanup_free_ char *host = NULL;
        uint16_t port = 0;
        int r = parse_host_port(addr, &host, &port, err);
        if (r < 0)
                return r;

        struct addrinfo hints = {
                .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                .ai_flags = AI_PASSIVE | AI_NUMERICSERV,
        };
        struct addrinfo *ai = NULL;
        char portstr[8];
        snprintf(portstr, sizeof(portstr), "%u", port);
        r = getaddrinfo(host, portstr, &hints, &ai);
        if (r != 0)
                return gv_error_set(err, EADDRNOTAVAIL, "cannot resolve '%s' in TCP address "
                                    "'%s': %s.", host, addr, gai_strerror(r));

        _cleanup_close_ int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0) {
                r = gv_error_set(err, errno, "cannot create a TCP socket: %s.", strerror(errno));
                freeaddrinfo(ai);
                return r;
        }
        int one = 1;
        (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0)
                r = gv_error_set(err, errno, "cannot bind TCP address '%s': %s.", addr,
                                 strerror(errno));
        else if (listen(fd, LISTEN_BACKLOG) < 0)
                r = gv_error_set(err, errno, "cannot listen on '%s': %s.", addr,
                                 strerror(errno));
        freeaddrinfo(ai);
        if (r < 0)
                return r;

        struct sockaddr_storage ss;
        socklen_t len = sizeof(ss);
        if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
                return gv_error_set(err, errno, "cannot read the bound address of '%s': %s.",
                                    addr, strerror(errno));
        if (ss.ss_family == AF_INET)
                s->tcp_port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
        else if (ss.ss_family == AF_INET6)
                s->tcp_port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
        *ret_fd = TAKE_FD(fd);
        return 0;
}

static int start_daemon(struct gv_http_server *s, struct listener *l, int fd,
                        const struct gv_http_config *cfg, struct gv_error **err)
{
        unsigned limit = cfg->max_connections ? cfg->max_connections
                                              : GV_HTTP_MAX_CONNECTIONS_DEFAULT;
        unsigned timeout = cfg->timeout_s ? cfg->timeout_s : GV_HTTP_TIMEOUT_DEFAULT_S;

        l->srv = s;
        unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION |
                         MHD_USE_POLL | MHD_ALLOW_UPGRADE;
        struct MHD_OptionItem tls_opts[] = {
                { MHD_OPTION_HTTPS_MEM_KEY, 0, s->tls_key },
                { MHD_OPTION_HTTPS_MEM_CERT, 0, s->tls_cert },
                { MHD_OPTION_HTTPS_PRIORITIES, 0, (void *)GV_TLS_PRIORITIES },
                { MHD_OPTION_END, 0, NULL },
        };
        struct MHD_OptionItem no_opts[] = { { MHD_OPTION_END, 0, NULL } };
        if (l->tls) {
                if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
                        (void)close(fd);
                        return gv_error_set(err, EOPNOTSUPP, "this libmicrohttpd was built "
                                            "without TLS; install one with GnuTLS support, or "
                                            "leave the TLS certificate out.");
                }
                flags |= MHD_USE_TLS;
        }
        /* MHD takes the listening socket and closes it in MHD_stop_daemon(). */
        l->daemon = MHD_start_daemon(flags, 0, NULL, NULL, on_access, l,
                                     MHD_OPTION_LISTEN_SOCKET, fd,
                                     MHD_OPTION_CONNECTION_LIMIT, limit,
                                     MHD_OPTION_CONNECTION_TIMEOUT, timeout,
                                     MHD_OPTION_NOTIFY_COMPLETED, on_completed, l,
                                     MHD_OPTION_UNESCAPE_CALLBACK, unescape_none, NULL,
                                     MHD_OPTION_ARRAY, l->tls ? tls_opts : no_opts,
                                     MHD_OPTION_END);
        if (!l->daemon) {
                (void)close(fd);
                return gv_error_set(err, EIO, "cannot start the HTTP%s server on the %s "
                                    "listener.", l->tls ? "S" : "",
                                    l->is_unix ? "UNIX" : "TCP");
        }
        return 0;
}

int gv_http_server_new(const struct gv_http_config *cfg, const struct gv_http_route *routes,
                       size_t n_routes, void *userdata, struct gv_http_server **ret,
                       struct gv_error **err)
{
        if (!cfg || (!cfg->unix_path && !cfg->tcp_address))
                return gv_error_set(err, EINVAL, "the HTTP server needs a UNIX socket path, a "
                                    "TCP address, or both.");
        int r = gv_http_routes_check(routes, n_routes, err);
        if (r < 0)
                return r;

        _cleanup_(gv_http_server_freep) struct gv_http_server *s = xnew0(struct gv_http_server, 1);
        s->routes = routes;
        s->n_routes = n_routes;
        s->userdata = userdata;
        s->max_body = cfg->max_body ? cfg->max_body : GV_HTTP_MAX_BODY_DEFAULT;
        s->upload_dir = cfg->upload_dir ? xstrdup(cfg->upload_dir) : NULL;
        s->max_upload = cfg->max_upload ? cfg->max_upload : (1ull << 40);
        s->on_complete = cfg->on_complete;
        s->tcp_authorize = cfg->tcp_authorize;
        s->lock_fd = -1;
        pthread_mutex_init(&s->up_mu, NULL);
        pthread_cond_init(&s->up_cond, NULL);
        s->unix_l.is_unix = true;
        atomic_init(&s->next_id, 1);
        s->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (s->stop_fd < 0)
                return gv_error_set(err, errno, "cannot create an eventfd: %s.", strerror(errno));

        if (cfg->unix_path) {
                int fd = -1;
                r = listen_unix(s, cfg->unix_path, cfg->unix_mode ? cfg->unix_mode : 0600, &fd,
                                err);
                if (r < 0)
                        return r;
                r = start_daemon(s, &s->unix_l, fd, cfg, err);
                if (r < 0)
                        return r;
        }
        if (cfg->tls_cert_file || cfg->tls_key_file) {
                if (!cfg->tcp_address)
                        return gv_error_set(err, EINVAL, "a TLS certificate is for the TCP "
                                            "listener, and none is configured; give a TCP "
                                            "address too, or leave the certificate out.");
                r = gv_tls_load_server_files(cfg->tls_cert_file, cfg->tls_key_file,
                                             &s->tls_cert, &s->tls_key, err);
                if (r < 0)
                        return r;
                s->tcp_l.tls = true;
        }
        if (cfg->tcp_address) {
                int fd = -1;
                r = listen_tcp(s, cfg->tcp_address, &fd, err);
                if (r < 0)
                        return r;
                r = start_daemon(s, &s->tcp_l, fd, cfg, err);
                if (r < 0)
                        return r;
        }
        *ret = TAKE_PTR(s);
        return 0;
}

uint16_t gv_http_server_tcp_port(const struct gv_http_server *s)
{
        return s && s->tcp_l.daemon ? s->tcp_port : 0;
}

bool gv_http_server_tcp_tls(const struct gv_http_server *s)
{
        return s && s->tcp_l.daemon && s->tcp_l.tls;
}

struct gv_http_server *gv_http_server_free(struct gv_http_server *s)
{
        if (!s)
                return NULL;
        if (s->stop_fd >= 0) {
                uint64_t one = 1;
                (void)!write(s->stop_fd, &one, sizeof(one));
        }
        pthread_mutex_lock(&s->up_mu);
        while (s->up_running > 0)
                pthread_cond_wait(&s->up_cond, &s->up_mu);
        pthread_mutex_unlock(&s->up_mu);
        if (s->unix_l.daemon)
                MHD_stop_daemon(s->unix_l.daemon);
        if (s->tcp_l.daemon)
                MHD_stop_daemon(s->tcp_l.daemon);
        if (s->unix_path) {
                /* Remove the socket file only if it is still ours (not a successor's). */
                struct stat st;
                if (lstat(s->unix_path, &st) == 0 && st.st_dev == s->sock_dev &&
                    st.st_ino == s->sock_ino)
                        (void)unlink(s->unix_path);
        }
        safe_close(s->lock_fd);
        safe_close(s->stop_fd);
        free(s->unix_path);
        free(s->lock_path);
        if (s->tls_key)
                explicit_bzero(s->tls_key, strlen(s->tls_key));
        free(s->tls_key);
        free(s->tls_cert);
        pthread_mutex_destroy(&s->up_mu);
        pthread_cond_destroy(&s->up_cond);
        free(s->upload_dir);
        free(s);
        return NULL;
}
