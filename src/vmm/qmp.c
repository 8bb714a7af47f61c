/* SPDX-License-Identifier: MIT */
/*
 * qmp.c — the QMP client (protocol summary and bounds in qmp.h).
 *
 * The plan: the socket is non-blocking and every wait is a poll() against a deadline on
 * CLOCK_MONOTONIC. Bytes land in one read buffer; complete lines are cut out of it ("\n", with
 * QEMU's "\r" before it stripped) and parsed one at a time. Each parsed object is an event (it
 * has "event": queued), a reply (it has "return" or "error": handed to the command waiting for
 * that id, skipped otherwise) or a protocol error. After every call the complete lines still
 * buffered are parsed into the queue too (drain_buffered()), so that an empty queue and an fd
 * that poll() does not report readable together mean there is nothing to do.
 */
#include "qmp.h"

#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <stdbool.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>

#include "util/alloc.h"
#include "util/enum-table.h"
#include "util/json.h"

#define READ_CHUNK (64u * 1024u)
/* How much of a bad line an error message quotes. */
#define QUOTE_MAX 80
/* gv_qmp_process() parses at most this many messages per call, so that a monitor that never
 * stops talking cannot keep a poll loop from its other fds. */
#define PROCESS_BATCH (4u * GV_QMP_EVENT_QUEUE_MAX)
#define DEADLINE_NEVER UINT64_MAX
/* Connection retry backoff: 1 ms doubling up to 50 ms. */
/* A connect() to a UNIX socket costs microseconds: retry often, so that a QEMU that is ready is
 * seen within a few milliseconds (a longer backoff showed as ~30 ms on every VM start). */
#define CONNECT_BACKOFF_MAX_USEC (4u * 1000u)

struct gv_qmp {
        int fd;
        char *version; /* "7.2.22" */
        char *package; /* "" when the greeting had none */
        uint64_t next_id;

        /* Read buffer: bytes [start, len) are not parsed yet; the newline search resumes at
         * scan (start <= scan <= len), so a long line arriving in pieces is scanned once. */
        char *buf;
        size_t start, scan, len, alloc;
        size_t line_max;
        bool discarding; /* inside an over-long line: drop bytes up to its newline */
        bool eof;

        struct gv_qmp_event *events; /* queue, oldest first */
        size_t n_events, alloc_events;
        uint64_t dropped;
};

static const char *const event_kind_table[_GV_QMP_EVENT_MAX] = {
        [GV_QMP_EVENT_OTHER] = "OTHER",
        [GV_QMP_EVENT_STOP] = "STOP",
        [GV_QMP_EVENT_RESUME] = "RESUME",
        [GV_QMP_EVENT_SHUTDOWN] = "SHUTDOWN",
        [GV_QMP_EVENT_POWERDOWN] = "POWERDOWN",
        [GV_QMP_EVENT_RESET] = "RESET",
        [GV_QMP_EVENT_MIGRATION] = "MIGRATION",
        [GV_QMP_EVENT_MIGRATION_PASS] = "MIGRATION_PASS",
        [GV_QMP_EVENT_DEVICE_DELETED] = "DEVICE_DELETED",
};
DEFINE_STRING_TABLE_LOOKUP(gv_qmp_event_kind, enum gv_qmp_event_kind, event_kind_table);

void gv_qmp_event_done(struct gv_qmp_event *e)
{
        if (!e)
                return;
        free(e->name);
        json_decref(e->data);
        *e = (struct gv_qmp_event){0};
}

/* ---- time ---------------------------------------------------------------------------------- */

static uint64_t now_usec(void)
{
        struct timespec ts;
        (void)clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static uint64_t deadline_after(int timeout_ms)
{
        if (timeout_ms < 0)
                return DEADLINE_NEVER;
        return now_usec() + (uint64_t)timeout_ms * 1000u;
}

/* Milliseconds left for poll(): -1 for never, 0 once the deadline passed (rounded up, so a
 * poll() that times out has really reached the deadline). */
static int poll_timeout(uint64_t deadline)
{
        if (deadline == DEADLINE_NEVER)
                return -1;
        uint64_t n = now_usec();
        if (n >= deadline)
                return 0;
        uint64_t ms = (deadline - n + 999u) / 1000u;
        return ms > INT_MAX ? INT_MAX : (int)ms;
}

/* ---- reading ------------------------------------------------------------------------------- */

/* Read once, waiting until the deadline for data. Returns 1 when bytes arrived, 0 at end of
 * stream (q->eof set), -EAGAIN when the deadline passed, other -errno on a socket error. */
static int fill_until(struct gv_qmp *q, uint64_t deadline)
{
        if (q->start > 0) {
                memmove(q->buf, q->buf + q->start, q->len - q->start);
                q->len -= q->start;
                q->scan -= q->start;
                q->start = 0;
        }
        if (q->alloc - q->len < READ_CHUNK) {
                size_t n = MAX(q->alloc * 2, q->len + READ_CHUNK);
                q->buf = xreallocarray(q->buf, n, 1);
                q->alloc = n;
        }

        for (;;) {
                ssize_t n = read(q->fd, q->buf + q->len, q->alloc - q->len);
                if (n > 0) {
                        q->len += (size_t)n;
                        return 1;
                }
                if (n == 0 || errno == ECONNRESET) {
                        q->eof = true;
                        return 0;
                }
                if (errno == EINTR)
                        continue;
                if (errno != EAGAIN && errno != EWOULDBLOCK)
                        return -errno;

                int t = poll_timeout(deadline);
                if (t == 0)
                        return -EAGAIN;
                struct pollfd p = {.fd = q->fd, .events = POLLIN};
                if (poll(&p, 1, t) < 0 && errno != EINTR)
                        return -errno;
        }
}

/* The next complete line in the buffer, without its "\r\n", blank lines skipped. Returns 1 with
 * *ret_line and *ret_len pointing into the buffer (valid until the next fill), 0 when no complete
 * line is buffered, -EMSGSIZE when a line exceeds q->line_max (it is dropped; reading resumes
 * after its end). consume_line() moves past the line returned. */
static int peek_line(struct gv_qmp *q, const char **ret_line, size_t *ret_len)
{
        for (;;) {
                char *nl = memchr(q->buf + q->scan, '\n', q->len - q->scan);
                if (!nl) {
                        q->scan = q->len;
                        if (q->discarding) {
                                q->start = q->len;
                                return 0;
                        }
                        if (q->len - q->start > q->line_max) {
                                q->discarding = true;
                                q->start = q->scan = q->len;
                                return -EMSGSIZE;
                        }
                        return 0;
                }

                size_t end = (size_t)(nl - q->buf);
                if (q->discarding) {
                        q->discarding = false;
                        q->start = q->scan = end + 1;
                        continue;
                }
                q->scan = end;

                size_t n = end - q->start;
                if (n > 0 && q->buf[q->start + n - 1] == '\r')
                        n--;
                if (n > q->line_max) {
                        q->start = q->scan = end + 1;
                        return -EMSGSIZE;
                }
                bool blank = true;
                for (size_t i = 0; i < n && blank; i++)
                        blank = strchr(" \t\r", q->buf[q->start + i]) != NULL;
                if (blank) {
                        q->start = q->scan = end + 1;
                        continue;
                }
                *ret_line = q->buf + q->start;
                *ret_len = n;
                return 1;
        }
}

static void consume_line(struct gv_qmp *q)
{
        /* peek_line() left scan on the line's newline. */
        q->start = q->scan = q->scan + 1;
}

static int parse_line(const char *line, size_t n, json_t **ret, struct gv_error **err)
{
        json_error_t je;
        json_t *v = json_loadb(line, n, JSON_REJECT_DUPLICATES, &je);
        int quoted = (int)MIN(n, (size_t)QUOTE_MAX);

        if (!v)
                return gv_error_set(err, EPROTO,
                                    "QEMU sent malformed JSON on its monitor (%s at column %d): "
                                    "'%.*s'.",
                                    je.text, je.column, quoted, line);
        if (!json_is_object(v)) {
                json_decref(v);
                return gv_error_set(err, EPROTO,
                                    "QEMU sent a QMP message that is not a JSON object: '%.*s'.",
                                    quoted, line);
        }
        *ret = v;
        return 0;
}

static int line_too_long(const struct gv_qmp *q, struct gv_error **err)
{
        return gv_error_set(err, EMSGSIZE,
                            "QEMU sent a QMP message longer than %zu bytes; it was discarded.",
                            q->line_max);
}

/* The next message, reading until the deadline. -EAGAIN (deadline passed) and -ECONNRESET
 * (end of stream) come without an error object: the caller knows what it was waiting for. */
static int read_message(struct gv_qmp *q, uint64_t deadline, json_t **ret, struct gv_error **err)
{
        for (;;) {
                const char *line;
                size_t n;
                int r = peek_line(q, &line, &n);
                if (r == -EMSGSIZE)
                        return line_too_long(q, err);
                if (r > 0) {
                        r = parse_line(line, n, ret, err);
                        consume_line(q);
                        return r;
                }
                if (q->eof)
                        return -ECONNRESET;
                r = fill_until(q, deadline);
                if (r == -EAGAIN)
                        return r;
                if (r < 0)
                        return gv_error_set(err, -r, "Cannot read from the QMP monitor: %s.",
                                            strerror(-r));
        }
}

/* ---- events -------------------------------------------------------------------------------- */

static bool is_event(const json_t *msg)
{
        return json_object_get(msg, "event") != NULL;
}

static bool is_reply(const json_t *msg)
{
        return json_object_get(msg, "return") || json_object_get(msg, "error");
}

static int parse_event(const json_t *msg, struct gv_qmp_event *ret, struct gv_error **err)
{
        const json_t *name = json_object_get(msg, "event");
        const json_t *data = json_object_get(msg, "data");
        const json_t *ts = json_object_get(msg, "timestamp");
        int64_t sec = 0, usec = 0;

        if (!json_is_string(name))
                return gv_error_set(err, EPROTO,
                                    "QEMU sent a QMP event whose 'event' is not a string.");
        if (ts) {
                const json_t *s = json_object_get(ts, "seconds");
                const json_t *u = json_object_get(ts, "microseconds");
                if (!json_is_integer(s) || !json_is_integer(u))
                        return gv_error_set(err, EPROTO,
                                            "QEMU sent QMP event '%s' with a malformed timestamp "
                                            "(expected integer 'seconds' and 'microseconds').",
                                            json_string_value(name));
                sec = json_integer_value(s);
                usec = json_integer_value(u);
        }

        enum gv_qmp_event_kind k = gv_qmp_event_kind_from_string(json_string_value(name));
        *ret = (struct gv_qmp_event){
                .kind = k < 0 ? GV_QMP_EVENT_OTHER : k,
                .name = xstrdup(json_string_value(name)),
                .data = data ? json_incref((json_t *)data) : NULL,
                .ts_sec = sec,
                .ts_usec = usec,
        };
        return 0;
}

/* Append to the queue; when it is full the oldest event is dropped and counted. */
static void queue_push(struct gv_qmp *q, struct gv_qmp_event *e)
{
        if (q->n_events >= GV_QMP_EVENT_QUEUE_MAX) {
                gv_qmp_event_done(&q->events[0]);
                memmove(q->events, q->events + 1, (q->n_events - 1) * sizeof(*q->events));
                q->n_events--;
                q->dropped++;
        }
        if (q->n_events == q->alloc_events) {
                size_t n = q->alloc_events ? q->alloc_events * 2 : 16;
                q->events = xreallocarray(q->events, n, sizeof(*q->events));
                q->alloc_events = n;
        }
        q->events[q->n_events++] = *e;
        *e = (struct gv_qmp_event){0};
}

static void queue_take(struct gv_qmp *q, size_t i, struct gv_qmp_event *ret)
{
        *ret = q->events[i];
        memmove(q->events + i, q->events + i + 1, (q->n_events - i - 1) * sizeof(*q->events));
        q->n_events--;
}

static int queue_message(struct gv_qmp *q, const json_t *msg, struct gv_error **err)
{
        struct gv_qmp_event e;
        int r = parse_event(msg, &e, err);
        if (r < 0)
                return r;
        queue_push(q, &e);
        return 0;
}

/* Parse the complete lines already buffered: events are queued, stray replies skipped. Stops
 * at the first line it cannot handle and leaves it buffered: the next read reports it. */
static void drain_buffered(struct gv_qmp *q)
{
        for (;;) {
                const char *line;
                size_t n;
                if (peek_line(q, &line, &n) <= 0)
                        return;
                _cleanup_json_ json_t *msg = NULL;
                if (parse_line(line, n, &msg, NULL) < 0)
                        return;
                if (is_event(msg)) {
                        if (queue_message(q, msg, NULL) < 0)
                                return;
                } else if (!is_reply(msg))
                        return;
                consume_line(q);
        }
}

/* ---- writing ------------------------------------------------------------------------------- */

/* Write all of buf, waiting for room until the deadline. MSG_NOSIGNAL: a monitor that closed
 * gives EPIPE here, never SIGPIPE. -EAGAIN when the deadline passed, -ECONNRESET when closed. */
static int send_all(struct gv_qmp *q, const char *buf, size_t n, uint64_t deadline)
{
        while (n > 0) {
                ssize_t s = send(q->fd, buf, n, MSG_NOSIGNAL);
                if (s >= 0) {
                        buf += s;
                        n -= (size_t)s;
                        continue;
                }
                if (errno == EINTR)
                        continue;
                if (errno == EPIPE || errno == ECONNRESET)
                        return -ECONNRESET;
                if (errno != EAGAIN && errno != EWOULDBLOCK)
                        return -errno;
                int t = poll_timeout(deadline);
                if (t == 0)
                        return -EAGAIN;
                struct pollfd p = {.fd = q->fd, .events = POLLOUT};
                if (poll(&p, 1, t) < 0 && errno != EINTR)
                        return -errno;
        }
        return 0;
}

/* ---- commands ------------------------------------------------------------------------------ */

struct qmp_error_class {
        const char *name;
        int code;
};

/* QMP error classes (QEMU's qapi/error.json); every other class is -EREMOTEIO. */
static const struct qmp_error_class error_classes[] = {
        {"CommandNotFound", EOPNOTSUPP},
        {"DeviceNotActive", ENODEV},
        {"DeviceNotFound", ENODEV},
        {"KVMMissingCap", EOPNOTSUPP},
        {"GenericError", EREMOTEIO},
};

static int error_class_code(const char *cls)
{
        for (size_t i = 0; i < ELEMENTSOF(error_classes); i++)
                if (strcmp(error_classes[i].name, cls) == 0)
                        return error_classes[i].code;
        return EREMOTEIO;
}

static int reply_result(const char *command, json_t *reply, json_t **ret_return,
                        struct gv_error **err)
{
        json_t *ret = json_object_get(reply, "return");
        if (ret) {
                if (ret_return)
                        *ret_return = json_incref(ret);
                return 0;
        }

        const json_t *e = json_object_get(reply, "error");
        const json_t *cls = json_object_get(e, "class");
        const json_t *desc = json_object_get(e, "desc");
        if (!json_is_string(cls) || !json_is_string(desc))
                return gv_error_set(err, EPROTO,
                                    "QEMU answered '%s' with a malformed error (expected string "
                                    "'class' and 'desc').",
                                    command);
        return gv_error_set(err, error_class_code(json_string_value(cls)),
                            "QEMU refused '%s': %s (%s).", command, json_string_value(desc),
                            json_string_value(cls));
}

static int execute_until(struct gv_qmp *q, const char *command, json_t *args, uint64_t deadline,
                         int timeout_ms, json_t **ret_return, struct gv_error **err)
{
        if (!command || !*command)
                return gv_error_set(err, EINVAL, "A QMP command needs a name.");
        if (args && !json_is_object(args))
                return gv_error_set(err, EINVAL,
                                    "The arguments of QMP command '%s' must be a JSON object.",
                                    command);
        if (q->eof)
                return gv_error_set(err, ECONNRESET,
                                    "QEMU closed its monitor while running '%s'.", command);

        _cleanup_json_ json_t *id = json_integer((json_int_t)++q->next_id);
        _cleanup_json_ json_t *req = json_object();
        json_object_set_new(req, "execute", json_string(command));
        if (args)
                json_object_set(req, "arguments", args);
        json_object_set(req, "id", id);
        _cleanup_free_ char *text = json_dumps(req, JSON_COMPACT);
        if (!text)
                return gv_error_set(err, EINVAL,
                                    "Cannot serialise QMP command '%s' (are its argument strings "
                                    "valid UTF-8?).",
                                    command);
        _cleanup_free_ char *wire = xasprintf("%s\r\n", text);

        int r = send_all(q, wire, strlen(wire), deadline);
        if (r == -EAGAIN)
                return gv_error_set(err, ETIMEDOUT,
                                    "QEMU did not take command '%s' within %d ms (its monitor is "
                                    "not reading).",
                                    command, timeout_ms);
        if (r == -ECONNRESET)
                return gv_error_set(err, ECONNRESET,
                                    "QEMU closed its monitor while running '%s'.", command);
        if (r < 0)
                return gv_error_set(err, r, "Cannot send '%s' to the QMP monitor: %s.", command,
                                    strerror(-r));

        _cleanup_json_ json_t *reply = NULL;
        for (;;) {
                _cleanup_json_ json_t *msg = NULL;
                r = read_message(q, deadline, &msg, err);
                if (r == -EAGAIN)
                        return gv_error_set(err, ETIMEDOUT,
                                            "QEMU did not answer '%s' within %d ms.", command,
                                            timeout_ms);
                if (r == -ECONNRESET)
                        return gv_error_set(err, ECONNRESET,
                                            "QEMU closed its monitor while running '%s'.",
                                            command);
                if (r < 0)
                        return gv_error_wrap(err, r, "While running '%s'", command);

                if (is_event(msg)) {
                        r = queue_message(q, msg, err);
                        if (r < 0)
                                return gv_error_wrap(err, r, "While running '%s'", command);
                        continue;
                }
                if (!is_reply(msg)) {
                        _cleanup_free_ char *s = json_dumps(msg, JSON_COMPACT);
                        return gv_error_set(err, EPROTO,
                                            "QEMU answered '%s' with a message that is neither a "
                                            "return nor an error: '%.*s'.",
                                            command, QUOTE_MAX, s ? s : "");
                }
                /* A reply without an id answers a request QEMU could not read, which can only
                 * be ours; one with another id is late (its command timed out): skip it. */
                const json_t *rid = json_object_get(msg, "id");
                if (rid && !json_equal((json_t *)rid, id))
                        continue;
                reply = TAKE_PTR(msg);
                break;
        }

        drain_buffered(q);
        return reply_result(command, reply, ret_return, err);
}

int gv_qmp_execute(struct gv_qmp *q, const char *command, json_t *args, int timeout_ms,
                   json_t **ret_return, struct gv_error **err)
{
        return execute_until(q, command, args, deadline_after(timeout_ms), timeout_ms,
                             ret_return, err);
}

int gv_qmp_query_status(struct gv_qmp *q, int timeout_ms, char **ret_status,
                        struct gv_error **err)
{
        _cleanup_json_ json_t *ret = NULL;
        int r = gv_qmp_execute(q, "query-status", NULL, timeout_ms, &ret, err);
        if (r < 0)
                return r;
        const json_t *s = json_object_get(ret, "status");
        if (!json_is_string(s))
                return gv_error_set(err, EPROTO,
                                    "QEMU answered 'query-status' without a string 'status'.");
        *ret_status = xstrdup(json_string_value(s));
        return 0;
}

/* ---- events API ---------------------------------------------------------------------------- */

/* Read until an event arrives (parsed into *ret, not queued); replies nobody waits for are
 * skipped. Errors: -EAGAIN / -ECONNRESET without an error object, others with one. */
static int read_event(struct gv_qmp *q, uint64_t deadline, struct gv_qmp_event *ret,
                      struct gv_error **err)
{
        for (;;) {
                _cleanup_json_ json_t *msg = NULL;
                int r = read_message(q, deadline, &msg, err);
                if (r < 0)
                        return r;
                if (is_event(msg))
                        return parse_event(msg, ret, err);
                if (!is_reply(msg)) {
                        _cleanup_free_ char *s = json_dumps(msg, JSON_COMPACT);
                        return gv_error_set(err, EPROTO,
                                            "QEMU sent a QMP message that is neither an event nor "
                                            "a reply: '%.*s'.",
                                            QUOTE_MAX, s ? s : "");
                }
        }
}

static int no_event(int r, int timeout_ms, const char *what, struct gv_error **err)
{
        if (r == -EAGAIN && timeout_ms == 0)
                return gv_error_set(err, EAGAIN, "No QMP %sevent is queued.", what);
        if (r == -EAGAIN)
                return gv_error_set(err, ETIMEDOUT, "No QMP %sevent arrived within %d ms.", what,
                                    timeout_ms);
        if (r == -ECONNRESET)
                return gv_error_set(err, ECONNRESET,
                                    "QEMU closed its monitor and no QMP %sevent is queued.",
                                    what);
        return r;
}

int gv_qmp_next_event(struct gv_qmp *q, int timeout_ms, struct gv_qmp_event *ret,
                      struct gv_error **err)
{
        if (q->n_events > 0) {
                queue_take(q, 0, ret);
                return 0;
        }
        int r = read_event(q, deadline_after(timeout_ms), ret, err);
        if (r < 0)
                return no_event(r, timeout_ms, "", err);
        drain_buffered(q);
        return 0;
}

int gv_qmp_wait_event(struct gv_qmp *q, enum gv_qmp_event_kind kind, int timeout_ms,
                      struct gv_qmp_event *ret, struct gv_error **err)
{
        const char *what = gv_qmp_event_kind_to_string(kind);
        if (!what)
                return gv_error_set(err, EINVAL, "Unknown QMP event kind %d.", (int)kind);

        for (size_t i = 0; i < q->n_events; i++)
                if (q->events[i].kind == kind) {
                        queue_take(q, i, ret);
                        return 0;
                }

        _cleanup_free_ char *quoted = xasprintf("'%s' ", what);
        uint64_t deadline = deadline_after(timeout_ms);
        for (;;) {
                struct gv_qmp_event e;
                int r = read_event(q, deadline, &e, err);
                if (r < 0)
                        return no_event(r, timeout_ms, quoted, err);
                if (e.kind == kind) {
                        drain_buffered(q);
                        *ret = e;
                        return 0;
                }
                queue_push(q, &e);
        }
}

int gv_qmp_process(struct gv_qmp *q, struct gv_error **err)
{
        for (size_t i = 0; i < PROCESS_BATCH; i++) {
                _cleanup_json_ json_t *msg = NULL;
                int r = read_message(q, /* deadline= now */ 0, &msg, err);
                if (r == -EAGAIN)
                        break;
                if (r == -ECONNRESET)
                        return gv_error_set(err, ECONNRESET, "QEMU closed its monitor.");
                if (r < 0)
                        return r;
                if (is_event(msg)) {
                        r = queue_message(q, msg, err);
                        if (r < 0)
                                return r;
                } else if (!is_reply(msg)) {
                        _cleanup_free_ char *s = json_dumps(msg, JSON_COMPACT);
                        return gv_error_set(err, EPROTO,
                                            "QEMU sent a QMP message that is neither an event nor "
                                            "a reply: '%.*s'.",
                                            QUOTE_MAX, s ? s : "");
                }
        }
        return (int)q->n_events;
}

/* ---- connection ---------------------------------------------------------------------------- */

static int parse_greeting(struct gv_qmp *q, const json_t *g)
{
        const json_t *qmp = json_object_get(g, "QMP");
        const json_t *version = json_object_get(qmp, "version");
        const json_t *qemu = json_object_get(version, "qemu");
        const json_t *major = json_object_get(qemu, "major");
        const json_t *minor = json_object_get(qemu, "minor");
        const json_t *micro = json_object_get(qemu, "micro");
        const json_t *package = json_object_get(version, "package");

        if (!json_is_integer(major) || !json_is_integer(minor) || !json_is_integer(micro))
                return -EPROTO;
        q->version = xasprintf("%" JSON_INTEGER_FORMAT ".%" JSON_INTEGER_FORMAT
                               ".%" JSON_INTEGER_FORMAT,
                               json_integer_value(major), json_integer_value(minor),
                               json_integer_value(micro));
        q->package = xstrdup(json_is_string(package) ? json_string_value(package) : "");
        return 0;
}

/* Greeting and capability negotiation; path (NULL for a bare fd) only names the monitor in
 * messages. */
static int handshake(struct gv_qmp *q, uint64_t deadline, int timeout_ms, const char *path,
                     struct gv_error **err)
{
        _cleanup_free_ char *where = path ? xasprintf("at '%s'", path)
                                          : xasprintf("on fd %d", q->fd);
        _cleanup_json_ json_t *greeting = NULL;
        int r;
        /* An event left in the monitor's output by the client before this one can arrive
         * ahead of the greeting: it is not ours, skip it. */
        for (;;) {
                r = read_message(q, deadline, &greeting, err);
                if (r < 0 || !json_object_get(greeting, "event"))
                        break;
                json_decref(TAKE_PTR(greeting));
        }
        if (r == -EAGAIN)
                return gv_error_set(err, ETIMEDOUT,
                                    "No QMP monitor %s after %d ms: the socket is connected but "
                                    "no QMP greeting arrived.",
                                    where, timeout_ms);
        if (r == -ECONNRESET)
                return gv_error_set(err, ECONNRESET,
                                    "The QMP monitor %s closed the connection during the "
                                    "handshake, before its greeting.",
                                    where);
        if (r < 0)
                return gv_error_wrap(err, r, "The monitor %s is not a QMP monitor", where);

        if (parse_greeting(q, greeting) < 0) {
                _cleanup_free_ char *s = json_dumps(greeting, JSON_COMPACT);
                return gv_error_set(err, EPROTO,
                                    "The monitor %s sent something that is not a QMP greeting "
                                    "(expected {\"QMP\": {\"version\": {\"qemu\": {...}}}}): "
                                    "'%.*s'. Is it a QMP socket (-qmp), not an HMP one "
                                    "(-monitor)?",
                                    where, QUOTE_MAX, s ? s : "");
        }

        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        r = execute_until(q, "qmp_capabilities", NULL, deadline, timeout_ms, NULL, &e);
        if (r == -ETIMEDOUT)
                return gv_error_set(err, ETIMEDOUT,
                                    "No QMP monitor %s after %d ms: QEMU %s sent its greeting "
                                    "but did not answer 'qmp_capabilities'.",
                                    where, timeout_ms, q->version);
        if (r == -ECONNRESET)
                return gv_error_set(err, ECONNRESET,
                                    "The QMP monitor %s closed the connection during the "
                                    "handshake, in 'qmp_capabilities'.",
                                    where);
        if (r < 0) {
                gv_error_propagate(err, TAKE_PTR(e));
                return gv_error_wrap(err, r, "QMP handshake with the monitor %s", where);
        }
        return 0;
}

static struct gv_qmp *qmp_new(int fd)
{
        struct gv_qmp *q = xnew0(struct gv_qmp, 1);
        q->fd = fd;
        q->line_max = GV_QMP_LINE_MAX;
        q->alloc = READ_CHUNK;
        q->buf = xmalloc(q->alloc); /* never NULL: memchr() on it even when empty */
        return q;
}

static int open_fd_until(int fd, uint64_t deadline, int timeout_ms, const char *path,
                         struct gv_qmp **ret, struct gv_error **err)
{
        _cleanup_(gv_qmp_freep) struct gv_qmp *q = qmp_new(fd);
        int r = handshake(q, deadline, timeout_ms, path, err);
        if (r < 0)
                return r;
        drain_buffered(q);
        *ret = TAKE_PTR(q);
        return 0;
}

int gv_qmp_open_fd(int fd, int timeout_ms, struct gv_qmp **ret, struct gv_error **err)
{
        _cleanup_close_ int owned = fd;
        if (fd < 0)
                return gv_error_set(err, EBADF, "Invalid QMP monitor fd %d.", fd);

        int fl = fcntl(fd, F_GETFL);
        if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0 ||
            fcntl(fd, F_SETFD, FD_CLOEXEC) < 0)
                return gv_error_set(err, errno, "Cannot make QMP monitor fd %d non-blocking: %s.",
                                    fd, strerror(errno));
        return open_fd_until(TAKE_FD(owned), deadline_after(timeout_ms), timeout_ms, NULL, ret,
                             err);
}

static bool connect_retryable(int e)
{
        /* ENOENT: QEMU has not created the socket yet; ECONNREFUSED: not listening yet (or a
         * stale socket); EAGAIN: the listen backlog is full. */
        return e == ENOENT || e == ECONNREFUSED || e == EAGAIN || e == EINTR;
}

int gv_qmp_connect(const char *socket_path, int timeout_ms, struct gv_qmp **ret,
                   struct gv_error **err)
{
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        if (!socket_path || !*socket_path)
                return gv_error_set(err, EINVAL, "No QMP socket path given.");
        if (strlen(socket_path) >= sizeof(sa.sun_path))
                return gv_error_set(err, ENAMETOOLONG,
                                    "QMP socket path '%s' is longer than the %zu bytes a UNIX "
                                    "socket address holds; use a shorter runtime directory.",
                                    socket_path, sizeof(sa.sun_path) - 1);
        memcpy(sa.sun_path, socket_path, strlen(socket_path) + 1);

        uint64_t deadline = deadline_after(timeout_ms);
        uint64_t backoff = 1000;
        for (;;) {
                _cleanup_close_ int fd =
                        socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
                if (fd < 0)
                        return gv_error_set(err, errno, "Cannot create a UNIX socket: %s.",
                                            strerror(errno));
                if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
                        return open_fd_until(TAKE_FD(fd), deadline, timeout_ms, socket_path, ret,
                                             err);

                int e = errno;
                if (!connect_retryable(e))
                        return gv_error_set(err, e,
                                            "Cannot connect to the QMP monitor at '%s': %s.",
                                            socket_path, strerror(e));
                uint64_t n = now_usec();
                if (deadline != DEADLINE_NEVER && n >= deadline)
                        return gv_error_set(err, ETIMEDOUT,
                                            "No QMP monitor at '%s' after %d ms: %s. Is QEMU "
                                            "running with '-qmp unix:%s,server=on,wait=off'?",
                                            socket_path, timeout_ms, strerror(e), socket_path);
                uint64_t sleep_usec = backoff;
                if (deadline != DEADLINE_NEVER)
                        sleep_usec = MIN(sleep_usec, deadline - n);
                struct timespec ts = {.tv_sec = (time_t)(sleep_usec / 1000000u),
                                      .tv_nsec = (long)(sleep_usec % 1000000u) * 1000};
                (void)nanosleep(&ts, NULL);
                backoff = MIN(backoff * 2, (uint64_t)CONNECT_BACKOFF_MAX_USEC);
        }
}

struct gv_qmp *gv_qmp_free(struct gv_qmp *q)
{
        if (!q)
                return NULL;
        for (size_t i = 0; i < q->n_events; i++)
                gv_qmp_event_done(&q->events[i]);
        free(q->events);
        free(q->buf);
        free(q->version);
        free(q->package);
        safe_close(q->fd);
        free(q);
        return NULL;
}

const char *gv_qmp_qemu_version(const struct gv_qmp *q)
{
        return q->version;
}

const char *gv_qmp_qemu_package(const struct gv_qmp *q)
{
        return q->package;
}

int gv_qmp_fd(const struct gv_qmp *q)
{
        return q->fd;
}

size_t gv_qmp_events_queued(const struct gv_qmp *q)
{
        return q->n_events;
}

uint64_t gv_qmp_events_dropped(const struct gv_qmp *q)
{
        return q->dropped;
}
