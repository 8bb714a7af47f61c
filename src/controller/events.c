/* SPDX-License-Identifier: MIT */
/*
 * events.c — the controller's event log (docs/api.md, "events"): appended with the change it
 * tells of, read by the SSE stream from a sequence number.
 */
#include <errno.h>
#include <time.h>

#include "controller/controller-internal.h"
#include "util/alloc.h"
#include "util/json.h"

#define EVENTS_POLL_MS 200

int gv_ctl_write_event(struct gv_controller *c, struct gv_store_write *w, size_t n,
                       const char *type, const char *subject, json_t *data,
                       struct gv_error **err)
{
        struct gv_store_event ev = { .type = (char *)type, .subject = (char *)subject,
                                     .data = data ? data : json_object(),
                                     .time = gv_ctl_now_ms() };
        int r = gv_store_write_events(c->store, w, n, &ev, 1, err);

        json_decref(ev.data);
        if (r >= 0) {
                pthread_mutex_lock(&c->notify_mu);
                c->changes++;
                pthread_cond_broadcast(&c->cond);
                pthread_mutex_unlock(&c->notify_mu);
        }
        return r;
}

void gv_ctl_event(struct gv_controller *c, const char *type, const char *subject, json_t *data)
{
        (void)gv_ctl_write_event(c, NULL, 0, type, subject, data, NULL);
}

static json_t *events_json(const struct gv_store_event *e, size_t n)
{
        json_t *a = json_array();

        for (size_t i = 0; i < n; i++)
                json_array_append_new(a, json_pack("{s:I, s:I, s:s, s:s, s:O}", "seq",
                                                   (json_int_t)e[i].seq, "time",
                                                   (json_int_t)e[i].time, "type", e[i].type,
                                                   "subject", e[i].subject, "data",
                                                   e[i].data ? e[i].data : json_null()));
        return a;
}

int gv_controller_events(struct gv_controller *c, int64_t after, size_t max, int wait_ms,
                         json_t **ret, struct gv_error **err)
{
        struct timespec deadline;
        int r;

        clock_gettime(CLOCK_REALTIME, &deadline);
        deadline.tv_sec += wait_ms / 1000;
        deadline.tv_nsec += (long)(wait_ms % 1000) * 1000000L;
        if (deadline.tv_nsec >= 1000000000L) {
                deadline.tv_sec++;
                deadline.tv_nsec -= 1000000000L;
        }
        for (;;) {
                struct gv_store_event *e = NULL;
                size_t n = 0;
                uint64_t seen;
                pthread_mutex_lock(&c->notify_mu);
                seen = c->changes;
                pthread_mutex_unlock(&c->notify_mu);
                r = gv_store_events(c->store, after, max ? max : 1000, &e, &n, err);
                if (r < 0)
                        return r;
                if (n || wait_ms <= 0) {
                        *ret = events_json(e, n);
                        gv_store_events_free(e, n);
                        return 0;
                }
                gv_store_events_free(e, n);
                /* Woken at once by this controller's events; other controllers sharing the
                 * store append too, so the log is read again every EVENTS_POLL_MS. */
                struct timespec slice;
                clock_gettime(CLOCK_REALTIME, &slice);
                slice.tv_nsec += EVENTS_POLL_MS * 1000000L;
                if (slice.tv_nsec >= 1000000000L) {
                        slice.tv_sec++;
                        slice.tv_nsec -= 1000000000L;
                }
                bool last = slice.tv_sec > deadline.tv_sec ||
                            (slice.tv_sec == deadline.tv_sec && slice.tv_nsec >= deadline.tv_nsec);
                if (last)
                        slice = deadline;
                int w = 0;
                pthread_mutex_lock(&c->notify_mu);
                while (!c->stopping && c->changes == seen && w != ETIMEDOUT)
                        w = pthread_cond_timedwait(&c->cond, &c->notify_mu, &slice);
                if (c->stopping)
                        w = ETIMEDOUT, last = true;
                pthread_mutex_unlock(&c->notify_mu);
                if (w == ETIMEDOUT && last) {
                        *ret = json_array();
                        return 0;
                }
        }
}
