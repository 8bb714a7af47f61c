/* SPDX-License-Identifier: MIT */
/*
 * ratelimit.c — requests per token (docs/security.md, "Limits"; R17/R20 in
 * ../shared/reference/reliability.md, OWASP API4 "Unrestricted Resource Consumption").
 *
 * A token bucket per token id: `burst` requests at once, refilled at `rate` a second. A token
 * that has spent its bucket is answered 429 with Retry-After, so one misbehaving client slows
 * itself and not the controller. Buckets live in a small open-addressing table under their own
 * leaf mutex (never held while calling anything else); a full table drops the idlest bucket
 * (a full bucket again is what an idle token would have anyway).
 *
 * In flight: past the rate, a cap on the requests served at once, whoever sends them (R17; the
 * Kubernetes API server caps in-flight requests, total and mutating, and queues or rejects the
 * rest [S43]). Changes may hold at most half of the slots, so reads (health, lists, metrics)
 * are still answered while clients pile up writes; past a cap: 503 with Retry-After at once,
 * never a queue that grows without bound or a connection dropped without an answer.
 */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "controller/controller-internal.h"
#include "util/alloc.h"

#define RATE_DEFAULT 50.0
#define BURST_DEFAULT 100u
#define BUCKETS 1024u
#define INFLIGHT_DEFAULT 64u

struct bucket {
        char key[16];
        double tokens;
        int64_t last_ms;
};

struct gv_ratelimit {
        pthread_mutex_t mu;
        double rate;
        unsigned burst;
        unsigned max_inflight, inflight, inflight_changes;
        struct bucket b[BUCKETS];
};

static int64_t mono_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct gv_ratelimit *gv_ctl_ratelimit_new(double rate, unsigned burst, unsigned max_inflight)
{
        struct gv_ratelimit *l = xnew0(struct gv_ratelimit, 1);
        pthread_mutex_init(&l->mu, NULL);
        l->rate = rate > 0 ? rate : RATE_DEFAULT;
        l->burst = burst ? burst : BURST_DEFAULT;
        l->max_inflight = max_inflight >= 2 ? max_inflight : INFLIGHT_DEFAULT;
        return l;
}

struct gv_ratelimit *gv_ctl_ratelimit_free(struct gv_ratelimit *l)
{
        if (!l)
                return NULL;
        pthread_mutex_destroy(&l->mu);
        free(l);
        return NULL;
}

static uint32_t hash_key(const char *s)
{
        uint32_t h = 2166136261u; /* FNV-1a */
        for (; *s; s++)
                h = (h ^ (unsigned char)*s) * 16777619u;
        return h;
}

bool gv_controller_rate_take(struct gv_controller *c, const char *key, double *ret_retry_s)
{
        struct gv_ratelimit *l = c->ratelimit;
        int64_t now = mono_ms();
        struct bucket *b = NULL, *idlest = NULL;
        bool ok;

        pthread_mutex_lock(&l->mu);
        for (uint32_t i = 0, h = hash_key(key); i < 16 && !b; i++) {
                struct bucket *x = &l->b[(h + i) % BUCKETS];
                if (strcmp(x->key, key) == 0)
                        b = x;
                else if (!idlest || x->last_ms < idlest->last_ms)
                        idlest = x;
        }
        if (!b) {
                b = idlest;
                snprintf(b->key, sizeof(b->key), "%s", key);
                b->tokens = l->burst;
                b->last_ms = now;
        }
        b->tokens = fmin(l->burst, b->tokens + (double)(now - b->last_ms) * l->rate / 1000.0);
        b->last_ms = now;
        ok = b->tokens >= 1.0;
        if (ok)
                b->tokens -= 1.0;
        else
                *ret_retry_s = (1.0 - b->tokens) / l->rate;
        pthread_mutex_unlock(&l->mu);
        return ok;
}

double gv_controller_rate_limit(struct gv_controller *c)
{
        return c->ratelimit->rate;
}

unsigned gv_controller_rate_burst(struct gv_controller *c)
{
        return c->ratelimit->burst;
}

bool gv_controller_inflight_enter(struct gv_controller *c, bool change, unsigned *ret_max)
{
        struct gv_ratelimit *l = c->ratelimit;
        unsigned cap = 0;

        pthread_mutex_lock(&l->mu);
        if (l->inflight >= l->max_inflight)
                cap = l->max_inflight;
        else if (change && l->inflight_changes >= l->max_inflight / 2)
                cap = l->max_inflight / 2;
        if (!cap) {
                l->inflight++;
                if (change)
                        l->inflight_changes++;
        }
        pthread_mutex_unlock(&l->mu);
        if (cap)
                *ret_max = cap;
        return !cap;
}

void gv_controller_inflight_leave(struct gv_controller *c, bool change)
{
        struct gv_ratelimit *l = c->ratelimit;

        pthread_mutex_lock(&l->mu);
        l->inflight--;
        if (change)
                l->inflight_changes--;
        pthread_mutex_unlock(&l->mu);
}

unsigned gv_controller_inflight_max(struct gv_controller *c)
{
        return c->ratelimit->max_inflight;
}
