/* SPDX-License-Identifier: MIT */
/*
 * register.c — register with the controller and heartbeat (register.h).
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "agent/register.h"
#include "http/client.h"
#include "util/alloc.h"

#define CALL_TIMEOUT_MS 10000

struct gv_registrar {
        struct gv_registrar_config cfg;
        char *controller, *token, *name, *endpoint;
        pthread_t thread;
        pthread_mutex_t mu;
        pthread_cond_t cond;
        bool stopping;
};

static int call(struct gv_registrar *g, const char *path, const char *body, int *ret_status)
{
        _cleanup_free_ char *auth = g->token ? xasprintf("Authorization: Bearer %s", g->token)
                                             : NULL;
        const char *headers[] = { auth, NULL };
        struct gv_http_client_req rq = {
                .endpoint = g->controller, .method = "POST", .path = path,
                .body = body, .body_len = body ? strlen(body) : 0,
                .headers = auth ? headers : NULL, .timeout_ms = CALL_TIMEOUT_MS,
        };
        struct gv_http_client_reply rp = { 0 };
        int r = gv_http_client_send(&rq, &rp, NULL);

        if (r >= 0)
                *ret_status = rp.status;
        gv_http_client_reply_done(&rp);
        return r;
}

static void *run(void *arg)
{
        struct gv_registrar *g = arg;
        _cleanup_free_ char *hb = xasprintf("/api/v1/hosts/%s/heartbeat", g->name);
        json_t *j = json_pack("{s:s, s:s}", "name", g->name, "endpoint", g->endpoint);
        _cleanup_free_ char *reg = json_dumps(j, JSON_COMPACT);
        bool registered = false;

        json_decref(j);
        for (;;) {
                int status = 0;
                if (!registered)
                        registered = call(g, "/api/v1/hosts", reg, &status) >= 0 &&
                                     status / 100 == 2;
                else if (call(g, hb, NULL, &status) >= 0 && status == 404)
                        registered = false; /* the controller forgot us: register again */
                pthread_mutex_lock(&g->mu);
                struct timespec ts;
                clock_gettime(CLOCK_REALTIME, &ts);
                int ms = registered ? g->cfg.interval_ms : 1000;
                ts.tv_sec += ms / 1000;
                ts.tv_nsec += (long)(ms % 1000) * 1000000L;
                if (ts.tv_nsec >= 1000000000L) {
                        ts.tv_sec++;
                        ts.tv_nsec -= 1000000000L;
                }
                if (!g->stopping)
                        (void)pthread_cond_timedwait(&g->cond, &g->mu, &ts);
                bool stop = g->stopping;
                pthread_mutex_unlock(&g->mu);
                if (stop)
                        return NULL;
        }
}

int gv_registrar_start(const struct gv_registrar_config *cfg, struct gv_registrar **ret,
                       struct gv_error **err)
{
        struct gv_registrar *g;

        if (!cfg->controller || !cfg->name || !cfg->endpoint)
                return gv_error_set(err, EINVAL, "Registering needs the controller's URL, this "
                                    "host's name and the endpoint it is reached at.");
        g = xnew0(struct gv_registrar, 1);
        g->cfg = *cfg;
        if (g->cfg.interval_ms <= 0)
                g->cfg.interval_ms = 5000;
        g->controller = xstrdup(cfg->controller);
        g->token = cfg->token ? xstrdup(cfg->token) : NULL;
        g->name = xstrdup(cfg->name);
        g->endpoint = xstrdup(cfg->endpoint);
        pthread_mutex_init(&g->mu, NULL);
        pthread_cond_init(&g->cond, NULL);
        if (pthread_create(&g->thread, NULL, run, g) != 0)
                abort();
        *ret = g;
        return 0;
}

struct gv_registrar *gv_registrar_stop(struct gv_registrar *g)
{
        if (!g)
                return NULL;
        pthread_mutex_lock(&g->mu);
        g->stopping = true;
        pthread_cond_broadcast(&g->cond);
        pthread_mutex_unlock(&g->mu);
        pthread_join(g->thread, NULL);
        pthread_mutex_destroy(&g->mu);
        pthread_cond_destroy(&g->cond);
        free(g->controller);
        free(g->token);
        free(g->name);
        free(g->endpoint);
        free(g);
        return NULL;
}
