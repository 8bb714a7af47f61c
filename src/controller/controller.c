/* SPDX-License-Identifier: MIT */
/*
 * controller.c — the controller's life: open the store and the catalog, build the placement
 * model, resume what a previous run left in the middle, poll the agents (controller.h).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "controller/controller-internal.h"
#include "controller/metrics.h"
#include "util/alloc.h"
#include "util/strv.h"

int64_t gv_ctl_now_ms(void)
{
        struct timespec ts;
        (void)clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

char *gv_ctl_new_id(const char *prefix)
{
        uint64_t x = 0;

        if (getrandom(&x, sizeof(x), 0) != sizeof(x))
                x = (uint64_t)gv_ctl_now_ms() ^ ((uint64_t)clock() << 32);
        return xasprintf("%s-%016" PRIx64, prefix, x);
}

void gv_ctl_spawn(struct gv_controller *c, void *(*fn)(void *), void *arg)
{
        pthread_t t;

        if (pthread_create(&t, NULL, fn, arg) != 0)
                abort(); /* out of threads: as out of memory */
        pthread_mutex_lock(&c->mu);
        c->threads = xreallocarray(c->threads, c->n_threads + 1, sizeof(*c->threads));
        c->threads[c->n_threads++] = t;
        pthread_mutex_unlock(&c->mu);
}

int gv_controller_new(const struct gv_controller_config *cfg, struct gv_controller **ret,
                      struct gv_error **err)
{
        struct gv_controller *c = xnew0(struct gv_controller, 1);
        int r;

        c->cfg = *cfg;
        c->image_dir = cfg->image_dir ? xstrdup(cfg->image_dir) : NULL;
        c->cfg.image_dir = c->image_dir;
        if (c->cfg.host_down_after_ms <= 0)
                c->cfg.host_down_after_ms = 15000;
        if (c->cfg.poll_interval_ms <= 0)
                c->cfg.poll_interval_ms = 2000;
        if (c->cfg.agent_timeout_ms <= 0)
                c->cfg.agent_timeout_ms = 120000;
        if (c->cfg.migration_stall_ms <= 0)
                c->cfg.migration_stall_ms = 60000;
        if (c->cfg.metrics_interval_ms <= 0)
                c->cfg.metrics_interval_ms = GV_METRICS_INTERVAL_DEFAULT_MS;
        if (c->cfg.metrics_interval_ms < GV_METRICS_INTERVAL_MIN_MS)
                c->cfg.metrics_interval_ms = GV_METRICS_INTERVAL_MIN_MS;
        if (c->cfg.metrics_interval_ms > GV_METRICS_INTERVAL_MAX_MS)
                c->cfg.metrics_interval_ms = GV_METRICS_INTERVAL_MAX_MS;
        c->metrics = gv_metrics_new(c->cfg.metrics_interval_ms, 0);
        c->license_history = gv_ctl_license_history_new();
        c->ratelimit = gv_ctl_ratelimit_new(cfg->api_rate, cfg->api_burst, cfg->api_max_inflight);
        pthread_mutex_init(&c->mu, NULL);
        pthread_mutex_init(&c->notify_mu, NULL);
        pthread_mutex_init(&c->vms_cache_mu, NULL);
        pthread_cond_init(&c->cond, NULL);
        pthread_mutex_init(&c->model_gen_mu, NULL);
        gv_ctl_lease_init(c);
        c->model_dirty = true;
        r = gv_store_open(cfg->store_url, &c->store, err);
        if (r >= 0)
                r = gv_catalog_load_default(&c->catalog, err);
        if (r >= 0) {
                pthread_mutex_lock(&c->mu);
                r = gv_ctl_model_ensure(c, err);
                pthread_mutex_unlock(&c->mu);
        }
        if (r < 0) {
                gv_controller_free(c);
                return r;
        }
        /* Several controllers may share the store (lease.c): the first round takes the leader
         * lease when it is free and claims the operations whose controller is gone, so that a
         * lone controller resumes at once as before. */
        gv_ctl_lease_round(c);
        gv_ctl_lease_start(c);
        if (pthread_create(&c->poller, NULL, gv_ctl_poller, c) == 0)
                c->poller_running = true;
        if (pthread_create(&c->metrics_thread, NULL, gv_ctl_metrics_collector, c) == 0)
                c->metrics_running = true;
        *ret = c;
        return 0;
}

struct gv_controller *gv_controller_free(struct gv_controller *c)
{
        if (!c)
                return NULL;
        pthread_mutex_lock(&c->notify_mu);
        c->stopping = true;
        pthread_cond_broadcast(&c->cond);
        pthread_mutex_unlock(&c->notify_mu);
        if (c->poller_running)
                pthread_join(c->poller, NULL);
        if (c->metrics_running)
                pthread_join(c->metrics_thread, NULL);
        /* Operations run to their end: each step is short or bounded by agent_timeout_ms, and
         * what is left half done is resumed at the next start anyway. */
        for (;;) {
                pthread_t t;
                pthread_mutex_lock(&c->mu);
                if (!c->n_threads) {
                        pthread_mutex_unlock(&c->mu);
                        break;
                }
                t = c->threads[--c->n_threads];
                pthread_mutex_unlock(&c->mu);
                pthread_join(t, NULL);
        }
        gv_ctl_lease_stop(c); /* the operations ended: their leases need no keeper */
        free(c->threads);
        gv_sched_cluster_free(c->cluster);
        strv_free(c->model_problems);
        strv_free(c->gpu_pci);
        free(c->gpu_index);
        gv_catalog_free(c->catalog);
        gv_store_free(c->store);
        gv_metrics_free(c->metrics);
        gv_ctl_license_history_free(c->license_history);
        gv_ctl_ratelimit_free(c->ratelimit);
        free(c->image_dir);
        pthread_cond_destroy(&c->cond);
        pthread_mutex_destroy(&c->notify_mu);
        pthread_mutex_destroy(&c->vms_cache_mu);
        free(c->vms_cache);
        json_decref(c->model_alloc_gen);
        pthread_mutex_destroy(&c->model_gen_mu);
        gv_ctl_lease_done(c);
        pthread_mutex_destroy(&c->mu);
        free(c);
        return NULL;
}
