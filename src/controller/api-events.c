/* SPDX-License-Identifier: MIT */
/*
 * api-events.c — GET /api/v1/events as Server-Sent Events (the WHATWG HTML "server-sent
 * events" format): one event per record,
 *
 *   id: 42
 *   event: vm.state
 *   data: {"seq": 42, "time": ..., "type": "vm.state", "subject": "vm/infer-2", "data": {...}}
 *
 * with the JSON on one line, and a ": keep-alive" comment when nothing was sent for
 * keepalive_ms, so proxies and clients see a live connection. The stream starts after
 * ?after=SEQ, or after the Last-Event-ID header a reconnecting EventSource sends, or — with
 * neither — after the newest event (only what happens from now on). It ends when the server
 * stops (the stop fd turns readable) or the client goes away (a write fails).
 *
 * The controller's wait for events is a condition variable, which cannot also watch the stop
 * fd; so the stream waits in slices of at most STOP_CHECK_MS and looks at the stop fd between
 * them: a stopping server ends every stream within that time.
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <string.h>
#include <time.h>

#include "controller/api.h"
#include "util/alloc.h"
#include "util/json.h"
#include "util/parse.h"

#define KEEPALIVE_DEFAULT_MS 15000
#define STOP_CHECK_MS 250
#define EVENTS_BATCH 100

struct sse {
        struct gv_controller *c;
        int64_t after;
        char *buf;
        size_t len, off;
        int keepalive_ms;
        int64_t last_sent_ms;
        char *tenant;     /* a member's: only its tenant's events */
        json_t *owners;   /* subject → tenant ("" for none), remembered while streaming */
};

static int64_t now_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sse_free(void *cls)
{
        struct sse *s = cls;
        free(s->buf);
        free(s->tenant);
        json_decref(s->owners);
        free(s);
}

static void sse_set(struct sse *s, char *text /* stolen */)
{
        free(s->buf);
        s->buf = text;
        s->len = strlen(text);
        s->off = 0;
}

/* The tenant an event's subject belongs to: a VM's, or an operation's (operations.c records
 * the tenant of the VM it works on). Remembered for the stream, so a VM's deletion is still
 * told to the member that watched it live. */
static const char *owner(struct sse *s, const char *subject)
{
        json_t *known = json_object_get(s->owners, subject);
        if (known)
                return json_string_value(known);
        const char *t = NULL;
        json_t *o = NULL;
        if (gv_startswith(subject, "vm/")) {
                if (gv_controller_vm(s->c, subject + 3, &o, NULL) >= 0)
                        t = json_string_value(json_object_get(json_object_get(o, "spec"),
                                                              "tenant"));
        } else if (gv_startswith(subject, "operation/")) {
                if (gv_controller_operation(s->c, subject + 10, 0, &o, NULL) >= 0)
                        t = json_string_value(json_object_get(o, "tenant"));
        }
        if (json_object_size(s->owners) > 10000)
                json_object_clear(s->owners); /* a bound on a long stream's memory */
        json_object_set_new(s->owners, subject, json_string(t ? t : ""));
        json_decref(o);
        return json_string_value(json_object_get(s->owners, subject));
}

static bool visible(struct sse *s, const json_t *ev)
{
        const char *subject = json_string_value(json_object_get(ev, "subject"));
        if (!s->tenant)
                return true;
        return subject && strcmp(owner(s, subject), s->tenant) == 0;
}

static char *format_events(struct sse *s, const json_t *events, int64_t *after)
{
        char *out = xstrdup("");
        size_t i;
        json_t *ev;
        json_array_foreach(events, i, ev) {
                int64_t at = json_integer_value(json_object_get(ev, "seq"));
                if (!visible(s, ev)) {
                        if (at > *after)
                                *after = at;
                        continue;
                }
                char *data = json_dumps(ev, JSON_COMPACT | JSON_SORT_KEYS);
                if (!data)
                        abort();
                int64_t seq = json_integer_value(json_object_get(ev, "seq"));
                const char *type = json_string_value(json_object_get(ev, "type"));
                char *n = xasprintf("%sid: %" PRId64 "\nevent: %s\ndata: %s\n\n", out, seq,
                                    type ? type : "message", data);
                free(data);
                free(out);
                out = n;
                if (seq > *after)
                        *after = seq;
        }
        return out;
}

static bool stopping(int stop_fd)
{
        struct pollfd p = { .fd = stop_fd, .events = POLLIN };
        return poll(&p, 1, 0) > 0;
}

static ssize_t sse_read(void *cls, char *buf, size_t max, int stop_fd)
{
        struct sse *s = cls;
        for (;;) {
                if (s->off < s->len) {
                        size_t n = MIN(max, s->len - s->off);
                        memcpy(buf, s->buf + s->off, n);
                        s->off += n;
                        s->last_sent_ms = now_ms();
                        return (ssize_t)n;
                }
                if (stopping(stop_fd))
                        return 0;
                int64_t idle = now_ms() - s->last_sent_ms;
                if (idle >= s->keepalive_ms) {
                        sse_set(s, xstrdup(": keep-alive\n\n"));
                        continue;
                }
                int wait = (int)MIN((int64_t)STOP_CHECK_MS, s->keepalive_ms - idle);
                json_t *events = NULL;
                if (gv_controller_events(s->c, s->after, EVENTS_BATCH, wait, &events, NULL) < 0)
                        return -EIO; /* the client sees an incomplete stream and reconnects */
                if (json_array_size(events) > 0)
                        sse_set(s, format_events(s, events, &s->after));
                json_decref(events);
        }
}

/* The newest event's sequence number (0 when there is none). */
static int newest_seq(struct gv_controller *c, int64_t *ret, struct gv_error **err)
{
        int64_t after = 0;
        for (;;) {
                json_t *events = NULL;
                int r = gv_controller_events(c, after, 1000, 0, &events, err);
                if (r < 0)
                        return r;
                size_t n = json_array_size(events);
                if (n)
                        after = json_integer_value(
                                json_object_get(json_array_get(events, n - 1), "seq"));
                json_decref(events);
                if (n < 1000)
                        break;
        }
        *ret = after;
        return 0;
}

int gv_controller_api_events(struct gv_http_request *req, struct gv_controller_api *api,
                             const char *tenant)
{
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        const char *q = NULL, *from = NULL, *what = NULL;
        int64_t after = -1;
        int r = gv_http_query(req, "after", &q, &e);
        if (r < 0)
                return gv_http_reply_error(req, r, e);
        if (q) {
                from = q;
                what = "after";
        } else if ((from = gv_http_header(req, "Last-Event-ID"))) {
                what = "Last-Event-ID";
        }
        if (from && (gv_parse_i64(from, &after) < 0 || after < 0))
                return gv_http_reply_problem(req, 400, "invalid-request", NULL,
                                             "%s: '%.40s' is not an event sequence number (0 or "
                                             "more).", what, from);
        if (!from) {
                r = newest_seq(api->controller, &after, &e);
                if (r < 0)
                        return gv_http_reply_error(req, r, e);
        }

        struct sse *s = xnew0(struct sse, 1);
        s->c = api->controller;
        s->after = after;
        s->keepalive_ms = api->keepalive_ms > 0 ? api->keepalive_ms : KEEPALIVE_DEFAULT_MS;
        s->last_sent_ms = now_ms();
        s->tenant = tenant ? xstrdup(tenant) : NULL;
        s->owners = json_object();
        /* A first comment at once: the client knows the stream is open and from where. */
        sse_set(s, xasprintf(": events after %" PRId64 "\n\n", after));
        r = gv_http_reply_stream(req, 200, "text/event-stream", sse_read, s, sse_free);
        if (r < 0)
                return r;
        (void)gv_http_reply_header(req, "Cache-Control", "no-cache");
        return 0;
}
