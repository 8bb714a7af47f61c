/* SPDX-License-Identifier: MIT */
/*
 * metrics-collect.c — the controller's metrics collector: a thread that, every metrics
 * interval, asks each host that is up for its agent's latest sample (GET /v1/metrics) and feeds
 * the history (metrics.h); and the controller's metrics calls of controller.h.
 *
 * One request at a time, each bounded: an agent answers from memory (a copy of its sampler's
 * latest sample, docs/agent.md "Metrics": well under a millisecond on loopback, a few on a LAN),
 * so a round over 100 hosts takes a small part of the 1 s interval, and one thread is all it
 * costs. A host that does not answer costs at most one timeout (the interval's half, 100 ms to
 * 1 s) and is then backed off (skipped for 1, 2, 4 ... up to 32 rounds after consecutive
 * failures), so a dead or frozen host cannot hold up the others' rounds more than once in a
 * while. A round that overruns the interval starts the next at once (missed rounds are not
 * made up: their slots stay gaps).
 *
 * Never under mu: the store reads and the HTTP requests happen without any controller lock, and
 * the history's own lock is taken inside gv_metrics_*() only (a leaf).
 */
#include <errno.h>
#include <string.h>
#include <time.h>

#include "controller/controller-internal.h"
#include "controller/metrics.h"
#include "http/client.h"
#include "util/alloc.h"
#include "util/json.h"

#define BACKOFF_MAX_ROUNDS 32u

struct backoff {
        char *host;
        unsigned failures;
        uint64_t skip_until; /* the first round it is asked again */
};

struct collector {
        struct gv_controller *c;
        uint64_t round;
        struct backoff *b;
        size_t n_b;
        json_t *profiles;        /* {"VM": [{"gpu", "profile"}]} from the placements */
        uint64_t profiles_version;
        bool have_profiles;
};

static struct backoff *backoff_of(struct collector *k, const char *host)
{
        for (size_t i = 0; i < k->n_b; i++)
                if (strcmp(k->b[i].host, host) == 0)
                        return &k->b[i];
        k->b = xreallocarray(k->b, k->n_b + 1, sizeof(*k->b));
        k->b[k->n_b] = (struct backoff){ .host = xstrdup(host) };
        return &k->b[k->n_b++];
}

/* What each VM's placement says its GPUs are, re-read when a VM was written since. */
static void refresh_profiles(struct collector *k)
{
        struct gv_controller *c = k->c;
        uint64_t v = __atomic_load_n(&c->vms_version, __ATOMIC_SEQ_CST);
        struct gv_store_obj *vms = NULL;
        size_t n = 0;

        if (k->have_profiles && v == k->profiles_version)
                return;
        if (gv_store_list(c->store, GV_STORE_VM, &vms, &n, NULL) < 0)
                return;
        json_t *p = json_object();
        for (size_t i = 0; i < n; i++) {
                const json_t *pl = json_object_get(vms[i].doc, "placement"), *s;
                json_t *l = json_array();
                size_t j;
                json_array_foreach(json_object_get(pl, "gpus"), j, s)
                        json_array_append_new(l, json_pack("{s:O, s:O}", "gpu",
                                                           json_object_get(s, "pci") ?: json_null(),
                                                           "profile",
                                                           json_object_get(s, "name") ?: json_null()));
                json_object_set_new(p, vms[i].key, l);
        }
        gv_store_objs_free(vms, n);
        json_decref(k->profiles);
        k->profiles = p;
        k->profiles_version = v;
        k->have_profiles = true;
}

static int request_timeout_ms(const struct gv_controller *c)
{
        int t = c->cfg.metrics_interval_ms / 2;
        return t < 100 ? 100 : t > 1000 ? 1000 : t;
}

/* GET /v1/metrics with the agent's secret (every call to an agent carries it). */
static int agent_get_metrics(const json_t *host_doc, const char *ep, int timeout_ms,
                             int *ret_status, json_t **ret, struct gv_error **err)
{
        char *auth = gv_ctl_agent_auth_header(host_doc);
        const char *headers[] = { auth, NULL };
        struct gv_http_client_req rq = { .endpoint = ep, .method = "GET", .path = "/v1/metrics",
                                         .headers = auth ? headers : NULL,
                                         .timeout_ms = timeout_ms };
        struct gv_http_client_reply rp = { 0 };
        int r = gv_http_client_send(&rq, &rp, err);
        if (auth)
                explicit_bzero(auth, strlen(auth));
        free(auth);
        if (r < 0)
                return r;
        json_t *j = NULL;
        if (rp.body_len > 0 && rp.status == 200) {
                json_error_t je;
                j = json_loadb(rp.body, rp.body_len, JSON_REJECT_DUPLICATES, &je);
                if (!j) {
                        r = gv_error_set(err, EBADMSG, "the metrics from '%s' are not JSON: "
                                         "line %d, column %d: %s.", ep, je.line, je.column,
                                         je.text);
                        gv_http_client_reply_done(&rp);
                        return r;
                }
        }
        *ret_status = rp.status;
        *ret = j;
        gv_http_client_reply_done(&rp);
        return 0;
}

static void collect_host(struct collector *k, const struct gv_store_obj *h)
{
        struct gv_controller *c = k->c;
        const char *state = json_string_value(json_object_get(h->doc, "state"));
        const char *ep = json_string_value(json_object_get(h->doc, "endpoint"));
        struct backoff *b = backoff_of(k, h->key);
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        _cleanup_json_ json_t *sample = NULL;
        int status = 0;

        if (!state || strcmp(state, "up") != 0 || !ep) {
                _cleanup_free_ char *why = xasprintf("host is %s", state ? state : "unknown");
                gv_metrics_host_failed(c->metrics, h->key, why);
                return;
        }
        if (k->round < b->skip_until) {
                _cleanup_free_ char *why = xasprintf("not asked: its last %u metrics requests "
                                                     "failed", b->failures);
                gv_metrics_host_failed(c->metrics, h->key, why);
                return;
        }
        int r = agent_get_metrics(h->doc, ep, request_timeout_ms(c), &status, &sample, &e);
        if (r >= 0 && status == 200)
                r = gv_metrics_host_sample(c->metrics, h->key, sample, k->profiles, &e);
        else if (r >= 0)
                r = gv_error_set(&e, EIO, "agent answered GET /v1/metrics with %d", status);
        if (r >= 0) {
                b->failures = 0;
                b->skip_until = 0;
                return;
        }
        gv_metrics_host_failed(c->metrics, h->key, gv_error_msg(e, r));
        /* Asked again the next round after a first failure, then after 2, 4 ... 32 rounds. */
        unsigned skip = b->failures < 5 ? 1u << b->failures : BACKOFF_MAX_ROUNDS;
        b->failures++;
        b->skip_until = k->round + skip;
}

static void collect_round(struct collector *k, int64_t now_ms)
{
        struct gv_store_obj *hosts = NULL;
        size_t n = 0;

        k->round++;
        gv_metrics_round_begin(k->c->metrics, now_ms);
        refresh_profiles(k);
        if (gv_store_list(k->c->store, GV_STORE_HOST, &hosts, &n, NULL) >= 0)
                for (size_t i = 0; i < n; i++)
                        collect_host(k, &hosts[i]);
        gv_store_objs_free(hosts, n);
        gv_metrics_round_end(k->c->metrics);
        gv_ctl_license_sample(k->c, now_ms);
}

void *gv_ctl_metrics_collector(void *arg)
{
        struct collector k = { .c = arg };
        struct gv_controller *c = k.c;
        int64_t next = gv_ctl_now_ms();

        for (;;) {
                struct timespec ts = { .tv_sec = next / 1000,
                                       .tv_nsec = (long)(next % 1000) * 1000000L };
                pthread_mutex_lock(&c->notify_mu);
                int w = 0;
                /* The controller's cond is broadcast on every change: wait for the tick. */
                while (!c->stopping && w != ETIMEDOUT && gv_ctl_now_ms() < next)
                        w = pthread_cond_timedwait(&c->cond, &c->notify_mu, &ts);
                bool stop = c->stopping;
                pthread_mutex_unlock(&c->notify_mu);
                if (stop)
                        break;
                int64_t start = gv_ctl_now_ms();
                collect_round(&k, start);
                next += c->cfg.metrics_interval_ms;
                if (next <= gv_ctl_now_ms())
                        next = gv_ctl_now_ms() + c->cfg.metrics_interval_ms;
        }
        for (size_t i = 0; i < k.n_b; i++)
                free(k.b[i].host);
        free(k.b);
        json_decref(k.profiles);
        return NULL;
}

/* ---- controller.h ---- */

json_t *gv_controller_metrics(struct gv_controller *c)
{
        return gv_metrics_latest(c->metrics);
}

int gv_controller_metrics_history(struct gv_controller *c, const char *series, const char *range,
                                  json_t **ret, struct gv_error **err)
{
        return gv_metrics_history(c->metrics, series, range, ret, err);
}

char *gv_controller_metrics_text(struct gv_controller *c, size_t *ret_len)
{
        /* The GPUs, VMs and hosts, then the licence pools. */
        size_t len = 0;
        _cleanup_free_ char *text = gv_metrics_exposition(c->metrics, &len);
        struct gv_prom p = { .buf = TAKE_PTR(text), .len = len, .cap = len + 1 };
        gv_ctl_license_prometheus(c, &p);
        gv_ctl_audit_prometheus(c, &p);
        return gv_prom_steal(&p, ret_len);
}

struct gv_metrics *gv_ctl_metrics(struct gv_controller *c)
{
        return c->metrics;
}
