/* SPDX-License-Identifier: MIT */
/*
 * lease.c — several controllers on one store (docs/reliability.md, "Several controllers").
 *
 * Every controller serves the whole API from the store; what must happen once cluster-wide is
 * held by a lease, a document in the store's "lease" kind (or inside an operation's document)
 * with a holder and an expiry, taken and renewed by compare-and-swap on its generation:
 *
 *   lease "leader"   the poller's writes (host up/down from the last heartbeat in the host
 *                    document, VM states observed on the agents, moves settled and leftover
 *                    copies removed), orphaned reservations resumed (gv_ctl_vms_resume) and the
 *                    event log's trim. One holder; renewed every lease_ms / 4; a holder that
 *                    could not renew stops the duties when its own deadline (the time it started
 *                    the renewal + lease_ms) passes, before anyone else may take it.
 *   operation owner  each running operation's document names its controller ("owner") and a
 *                    "lease_until"; the owner renews it with every write and every keeper round.
 *                    When it expires (its controller died or lost the store), any controller
 *                    claims it with one CAS and runs it again from its start: every step is
 *                    idempotent (operations.c).
 *
 * A holder on this machine whose process is gone (its boot id is ours and kill(pid, 0) says
 * ESRCH) has expired already: a controller restarted after a crash resumes at once.
 * Clocks: expiries are CLOCK_REALTIME milliseconds compared across controllers; their clocks
 * must agree to well within lease_ms (NTP).
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "controller/controller-internal.h"
#include "util/alloc.h"
#include "util/fileio.h"
#include "util/json.h"
#include "util/log.h"
#include "util/parse.h"
#include "util/strv.h"

#define LEADER_KEY "leader"
#define EVENTS_KEEP 100000
#define EVENTS_TRIM_EVERY_MS (60 * 1000)

static char boot_id[64];
static pthread_once_t boot_once = PTHREAD_ONCE_INIT;

static void boot_id_read(void)
{
        _cleanup_free_ char *s = NULL;
        if (gv_read_file("/proc/sys/kernel/random/boot_id", 4096, &s, NULL) >= 0) {
                s[strcspn(s, "\n")] = 0;
                snprintf(boot_id, sizeof(boot_id), "%s", s);
        }
}

int gv_ctl_lease_ms(void)
{
        const char *e = getenv("GPUVIRT_LEASE_MS");
        int v;
        if (e && gv_parse_int(e, &v) >= 0 && v >= 300 && v <= 600000)
                return v;
        return GV_CTL_LEASE_DEFAULT_MS;
}

void gv_ctl_lease_init(struct gv_controller *c)
{
        char host[256] = "";

        pthread_once(&boot_once, boot_id_read);
        (void)gethostname(host, sizeof(host) - 1);
        c->ctl_id = gv_ctl_new_id("ctl");
        c->ctl_who = json_pack("{s:s, s:s, s:i, s:s}", "id", c->ctl_id, "host", host, "pid",
                               (int)getpid(), "boot_id", boot_id);
        if (c->lease_ms <= 0)
                c->lease_ms = gv_ctl_lease_ms();
        pthread_mutex_init(&c->lease_mu, NULL);
}

/* Whether the holder described by `who` ({"id", "pid", "boot_id"}) is a process of this boot
 * of this machine that exists no more. GPUVIRT_LEASE_PID_CHECK=0 turns this off (the tests of
 * the expiry path). */
static bool holder_dead(const struct gv_controller *c, const json_t *who)
{
        const char *b = json_string_value(json_object_get(who, "boot_id"));
        json_int_t pid = json_integer_value(json_object_get(who, "pid"));
        const char *chk = getenv("GPUVIRT_LEASE_PID_CHECK");

        if (chk && strcmp(chk, "0") == 0)
                return false;
        if (!b || !*b || !*boot_id || strcmp(b, boot_id) != 0 || pid <= 1 || pid == getpid())
                return false;
        (void)c;
        return kill((pid_t)pid, 0) < 0 && errno == ESRCH;
}

static bool who_is_me(const struct gv_controller *c, const json_t *who)
{
        const char *id = json_string_value(json_object_get(who, "id"));
        return id && strcmp(id, c->ctl_id) == 0;
}

bool gv_ctl_lease_expired(const struct gv_controller *c, const json_t *who, int64_t until_ms,
                          int64_t now_ms)
{
        return !json_is_object(who) || until_ms < now_ms || holder_dead(c, who);
}

bool gv_ctl_is_leader(struct gv_controller *c)
{
        int64_t until = __atomic_load_n(&c->leader_until_ms, __ATOMIC_SEQ_CST);
        return until > gv_ctl_now_ms();
}

static void leader_lost(struct gv_controller *c, const char *why)
{
        if (__atomic_exchange_n(&c->leader_until_ms, 0, __ATOMIC_SEQ_CST) != 0)
                log_warning("controller %s: no longer the leader: %s", c->ctl_id, why);
}

/* This controller's identity for a document: a copy of ctl_who each time (never written after
 * start). Sharing the object itself bumped its reference count, which jansson does not make
 * atomic, from every operation thread at once (TSan saw it). */
static json_t *my_identity(struct gv_controller *c)
{
        return json_deep_copy(c->ctl_who);
}

/* One round for the leader lease: take it (free or expired), renew it (ours), or leave it. */
static void leader_round(struct gv_controller *c)
{
        struct gv_store_obj o = { 0 };
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        int64_t t0 = gv_ctl_now_ms();
        int r = gv_store_get(c->store, GV_STORE_LEASE, LEADER_KEY, &o, &e);
        struct gv_store_write w = { .kind = GV_STORE_LEASE, .key = LEADER_KEY };
        bool mine = false, renew = false;

        if (r == -ENOENT) {
                w.op = GV_STORE_CREATE;
        } else if (r < 0) {
                /* Cannot even read it: the deadline we hold stops the duties in time. */
                gv_store_obj_done(&o);
                return;
        } else {
                const json_t *who = json_object_get(o.doc, "holder");
                json_int_t until = json_integer_value(json_object_get(o.doc, "expires_ms"));
                mine = who_is_me(c, who);
                if (!mine && !gv_ctl_lease_expired(c, who, until, t0)) {
                        leader_lost(c, "another controller holds the leader lease");
                        gv_store_obj_done(&o);
                        return;
                }
                renew = mine;
                w.op = GV_STORE_UPDATE;
                w.generation = o.generation;
        }
        int64_t since = renew ? json_integer_value(json_object_get(o.doc, "since_ms")) : t0;
        _cleanup_json_ json_t *doc = json_pack("{s:o, s:I, s:I, s:I}", "holder", my_identity(c),
                                               "expires_ms", (json_int_t)(t0 + c->lease_ms),
                                               "since_ms", (json_int_t)since, "renewed_ms",
                                               (json_int_t)t0);
        w.doc = doc;
        gv_error_free(e);
        e = NULL;
        if (renew)
                r = gv_store_write(c->store, &w, 1, &e);
        else
                r = gv_ctl_write_event(c, &w, 1, "controller.leader", "lease/leader",
                                       json_pack("{s:s, s:O}", "holder", c->ctl_id, "was",
                                                 json_object_get(o.doc, "holder") ?: json_null()),
                                       &e);
        gv_store_obj_done(&o);
        if (r < 0) {
                if (r == -ESTALE || r == -EEXIST)
                        leader_lost(c, "another controller took the leader lease");
                return; /* a store error: our deadline runs out on its own */
        }
        /* Ours until t0 + lease_ms by our own clock: the others wait for expires_ms. */
        if (__atomic_exchange_n(&c->leader_until_ms, t0 + c->lease_ms, __ATOMIC_SEQ_CST) == 0)
                log_info("controller %s: leader (the poller, settling and resuming run here)",
                         c->ctl_id);
}

/* Give the leader lease back at a clean stop, so that another controller takes over at once. */
static void leader_release(struct gv_controller *c)
{
        struct gv_store_obj o = { 0 };
        if (gv_store_get(c->store, GV_STORE_LEASE, LEADER_KEY, &o, NULL) >= 0 &&
            who_is_me(c, json_object_get(o.doc, "holder"))) {
                _cleanup_json_ json_t *doc = json_deep_copy(o.doc);
                json_object_set_new(doc, "expires_ms", json_integer(0));
                struct gv_store_write w = { .op = GV_STORE_UPDATE, .kind = GV_STORE_LEASE,
                                            .key = LEADER_KEY, .doc = doc,
                                            .generation = o.generation };
                (void)gv_store_write(c->store, &w, 1, NULL);
        }
        gv_store_obj_done(&o);
        __atomic_store_n(&c->leader_until_ms, 0, __ATOMIC_SEQ_CST);
}

/* ---- operations' owners ---- */

void gv_ctl_lease_own(struct gv_controller *c, const char *op_id)
{
        pthread_mutex_lock(&c->lease_mu);
        if (!strv_contains(c->owned_ops, op_id))
                strv_extend(&c->owned_ops, op_id);
        pthread_mutex_unlock(&c->lease_mu);
}

void gv_ctl_lease_disown(struct gv_controller *c, const char *op_id)
{
        pthread_mutex_lock(&c->lease_mu);
        size_t n = strv_length(c->owned_ops), k = 0;
        for (size_t i = 0; i < n; i++) {
                if (strcmp(c->owned_ops[i], op_id) == 0)
                        free(c->owned_ops[i]);
                else
                        c->owned_ops[k++] = c->owned_ops[i];
        }
        if (c->owned_ops)
                c->owned_ops[k] = NULL;
        pthread_mutex_unlock(&c->lease_mu);
}

void gv_ctl_lease_stamp(struct gv_controller *c, json_t *op_doc)
{
        json_object_set_new(op_doc, "owner", my_identity(c));
        json_object_set_new(op_doc, "lease_until", json_integer(gv_ctl_now_ms() + c->lease_ms));
}

bool gv_ctl_lease_owns(struct gv_controller *c, const json_t *op_doc)
{
        return who_is_me(c, json_object_get(op_doc, "owner"));
}

/* Renew every operation this controller runs (the write of a progress renews it too). */
static void ops_renew(struct gv_controller *c)
{
        char **ids = NULL;

        pthread_mutex_lock(&c->lease_mu);
        STRV_FOREACH(id, c->owned_ops)
                strv_extend(&ids, *id);
        pthread_mutex_unlock(&c->lease_mu);
        STRV_FOREACH(id, ids) {
                for (int tries = 0; tries < 3; tries++) {
                        struct gv_store_obj o = { 0 };
                        if (gv_store_get(c->store, GV_STORE_OPERATION, *id, &o, NULL) < 0)
                                break;
                        if (!gv_ctl_lease_owns(c, o.doc)) {
                                log_warning("controller %s: operation %s was taken over by "
                                            "another controller; this one stops writing it",
                                            c->ctl_id, *id);
                                gv_ctl_lease_disown(c, *id);
                                gv_store_obj_done(&o);
                                break;
                        }
                        if (gv_controller_operation_done(o.doc)) {
                                gv_store_obj_done(&o);
                                break;
                        }
                        _cleanup_json_ json_t *doc = json_deep_copy(o.doc);
                        gv_ctl_lease_stamp(c, doc);
                        struct gv_store_write w = { .op = GV_STORE_UPDATE,
                                                    .kind = GV_STORE_OPERATION, .key = *id,
                                                    .doc = doc, .generation = o.generation };
                        int r = gv_store_write(c->store, &w, 1, NULL);
                        gv_store_obj_done(&o);
                        if (r != -ESTALE)
                                break;
                }
        }
        strv_free(ids);
}

void gv_ctl_lease_takeover(struct gv_controller *c)
{
        struct gv_store_obj *o = NULL;
        size_t n = 0;
        int64_t now = gv_ctl_now_ms();

        if (gv_store_list(c->store, GV_STORE_OPERATION, &o, &n, NULL) < 0)
                return;
        for (size_t i = 0; i < n; i++) {
                const json_t *who = json_object_get(o[i].doc, "owner");
                json_int_t until = json_integer_value(json_object_get(o[i].doc, "lease_until"));
                if (gv_controller_operation_done(o[i].doc) || who_is_me(c, who) ||
                    !gv_ctl_lease_expired(c, who, until, now))
                        continue;
                _cleanup_json_ json_t *doc = json_deep_copy(o[i].doc);
                gv_ctl_lease_stamp(c, doc);
                json_object_set_new(doc, "takeovers",
                                    json_integer(json_integer_value(json_object_get(
                                                         o[i].doc, "takeovers")) + 1));
                struct gv_store_write w = { .op = GV_STORE_UPDATE, .kind = GV_STORE_OPERATION,
                                            .key = o[i].key, .doc = doc,
                                            .generation = o[i].generation };
                _cleanup_free_ char *subj = xasprintf("operation/%s", o[i].key);
                const char *from = json_string_value(json_object_get(who, "id"));
                if (gv_ctl_write_event(c, &w, 1, "operation.takeover", subj,
                                       json_pack("{s:s, s:s?, s:O?}", "owner", c->ctl_id, "from",
                                                 from, "kind",
                                                 json_object_get(o[i].doc, "kind")),
                                       NULL) < 0)
                        continue; /* another controller claimed it first */
                log_info("controller %s: resuming operation %s (%s) of %s", c->ctl_id,
                         o[i].key, json_string_value(json_object_get(o[i].doc, "kind")) ?: "?",
                         from ? from : "a controller that recorded no owner");
                gv_ctl_op_run(c, o[i].key);
        }
        gv_store_objs_free(o, n);
}

/* ---- the keeper thread ---- */

void gv_ctl_lease_round(struct gv_controller *c)
{
        leader_round(c);
        ops_renew(c);
        gv_ctl_lease_takeover(c);
        if (!gv_ctl_is_leader(c))
                return;
        gv_ctl_vms_resume(c, c->lease_ms);
        int64_t now = gv_ctl_now_ms();
        if (now - c->events_trimmed_ms >= EVENTS_TRIM_EVERY_MS) {
                c->events_trimmed_ms = now;
                (void)gv_store_events_trim(c->store, EVENTS_KEEP, NULL);
        }
}

static void *keeper(void *arg)
{
        struct gv_controller *c = arg;
        int tick = c->lease_ms / 4;

        for (;;) {
                struct timespec ts;
                clock_gettime(CLOCK_REALTIME, &ts);
                ts.tv_sec += tick / 1000;
                ts.tv_nsec += (long)(tick % 1000) * 1000000L;
                if (ts.tv_nsec >= 1000000000L) {
                        ts.tv_sec++;
                        ts.tv_nsec -= 1000000000L;
                }
                int w = 0;
                pthread_mutex_lock(&c->notify_mu);
                while (!c->lease_stop && w != ETIMEDOUT)
                        w = pthread_cond_timedwait(&c->cond, &c->notify_mu, &ts);
                bool stop = c->lease_stop;
                pthread_mutex_unlock(&c->notify_mu);
                if (stop)
                        break;
                gv_ctl_lease_round(c);
        }
        return NULL;
}

void gv_ctl_lease_start(struct gv_controller *c)
{
        if (pthread_create(&c->lease_thread, NULL, keeper, c) == 0)
                c->lease_running = true;
}

void gv_ctl_lease_stop(struct gv_controller *c)
{
        if (c->lease_running) {
                pthread_mutex_lock(&c->notify_mu);
                c->lease_stop = true;
                pthread_cond_broadcast(&c->cond);
                pthread_mutex_unlock(&c->notify_mu);
                pthread_join(c->lease_thread, NULL);
                c->lease_running = false;
        }
        if (c->store && c->ctl_id)
                leader_release(c);
}

void gv_ctl_lease_done(struct gv_controller *c)
{
        if (!c->ctl_id)
                return;
        strv_free(c->owned_ops);
        json_decref(c->ctl_who);
        free(c->ctl_id);
        pthread_mutex_destroy(&c->lease_mu);
}

json_t *gv_controller_lease(struct gv_controller *c)
{
        return json_pack("{s:s, s:b, s:i}", "id", c->ctl_id, "leader", gv_ctl_is_leader(c),
                         "lease_ms", c->lease_ms);
}
