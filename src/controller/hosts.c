/* SPDX-License-Identifier: MIT */
/*
 * hosts.c — the agents: registration and heartbeats, the poller that reads each agent's
 * inventory and VMs (a host that stays silent for host_down_after_ms is down; its VMs show
 * `unknown` and are not re-placed), calls to an agent's API, the host and GPU views of the API,
 * and the GPU mode and MIG layout operations.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "controller/controller-internal.h"
#include "http/client.h"
#include "http/problem.h"
#include "util/alloc.h"
#include "util/failpoint.h"
#include "util/json.h"
#include "util/parse.h"
#include "util/strv.h"

#define POLL_TIMEOUT_MS 5000

static int host_get(struct gv_controller *c, const char *name, struct gv_store_obj *ret,
                    struct gv_error **err)
{
        int r = gv_store_get(c->store, GV_STORE_HOST, name, ret, err);
        if (r == -ENOENT) {
                gv_error_free(err ? *err : NULL);
                if (err)
                        *err = NULL;
                return gv_error_set(err, ENOENT, "No host '%s' (gpuvirt host list shows them).",
                                    name);
        }
        return r;
}

/* ---- calling an agent ---- */

/* Every call to an agent carries its secret (docs/agent.md "Authentication"): the agent's TCP
 * listener refuses requests without it. The secret lives in the host's document only; errors
 * and events name the endpoint, never it. */
char *gv_ctl_agent_auth_header(const json_t *host_doc)
{
        const char *s = json_string_value(json_object_get(host_doc, "agent_secret"));
        return s ? xasprintf("Authorization: Bearer %s", s) : NULL;
}

static void free_secret_line(char **p)
{
        if (*p)
                explicit_bzero(*p, strlen(*p));
        free(*p);
}
#define _cleanup_secret_ __attribute__((cleanup(free_secret_line)))

int gv_ctl_agent_target(struct gv_controller *c, const char *host, char **ret_endpoint,
                        char **ret_auth, struct gv_error **err)
{
        struct gv_store_obj h = { 0 };
        int r = host_get(c, host, &h, err);
        if (r < 0)
                return r;
        const char *ep = json_string_value(json_object_get(h.doc, "endpoint"));
        if (!ep) {
                gv_store_obj_done(&h);
                return gv_error_set(err, EHOSTDOWN, "host '%s' has no agent endpoint.", host);
        }
        *ret_endpoint = xstrdup(ep);
        *ret_auth = gv_ctl_agent_auth_header(h.doc);
        gv_store_obj_done(&h);
        return 0;
}

static int errno_of_problem(const json_t *p, int status)
{
        const char *name = json_string_value(json_object_get(p, "errno"));
        static const struct { const char *n; int e; } map[] = {
                { "ENOENT", ENOENT }, { "EEXIST", EEXIST }, { "EBUSY", EBUSY },
                { "EINVAL", EINVAL }, { "ENOSPC", ENOSPC }, { "ENODEV", ENODEV },
                { "EOPNOTSUPP", EOPNOTSUPP }, { "ETIMEDOUT", ETIMEDOUT }, { "EIO", EIO },
        };
        for (size_t i = 0; name && i < ELEMENTSOF(map); i++)
                if (strcmp(map[i].n, name) == 0)
                        return map[i].e;
        return status == 404 ? ENOENT : status == 409 ? EBUSY : status < 500 ? EINVAL : EIO;
}

static int agent_request_once(const char *endpoint, const char *auth, const char *method,
                              const char *path, const json_t *body, const char *opid,
                              int timeout_ms, json_t **ret, struct gv_error **err)
{
        _cleanup_free_ char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
        _cleanup_free_ char *hdr = opid ? xasprintf("Operation-Id: %s", opid) : NULL;
        const char *headers[3] = { NULL };
        size_t n_headers = 0;
        if (hdr)
                headers[n_headers++] = hdr;
        if (auth)
                headers[n_headers++] = auth;
        struct gv_http_client_req rq = {
                .endpoint = endpoint, .method = method, .path = path,
                .body = text, .body_len = text ? strlen(text) : 0,
                .headers = n_headers ? headers : NULL, .timeout_ms = timeout_ms,
        };
        struct gv_http_client_reply rp = { 0 };
        _cleanup_json_ json_t *j = NULL;
        _cleanup_(gv_error_freep) struct gv_error *send_err = NULL;
        int r = gv_http_client_send(&rq, &rp, &send_err);

        /* Whatever kept the request from an answer is -EHOSTDOWN, so that no transport errno
         * (ENOENT for a UNIX socket that is gone) reads as the agent's own answer. */
        if (r < 0)
                return gv_error_set(err, EHOSTDOWN, "agent at %s: %s", endpoint,
                                    gv_error_msg(send_err, r));
        if (rp.body_len)
                (void)gv_json_loads(rp.body, &j, NULL);
        if (rp.status >= 400) {
                const char *d = json_string_value(json_object_get(j, "detail"));
                const char *type = json_string_value(json_object_get(j, "type"));
                int e = errno_of_problem(j, rp.status);
                if (rp.status == 409 && type && strstr(type, "operation-in-progress"))
                        e = EINPROGRESS;
                r = gv_error_set(err, e, "%s", d ? d : rp.body ? rp.body : "no detail");
                gv_http_client_reply_done(&rp);
                return r;
        }
        gv_http_client_reply_done(&rp);
        if (ret)
                *ret = j ? json_incref(j) : json_object();
        return 0;
}

/* As agent_request_once(), but an operation the agent is still carrying out under the same
 * Operation-Id (a resumed operation asking again) is waited for: asked again every 250 ms until
 * it answers or timeout_ms pass. */
static int agent_request(const char *endpoint, const char *auth, const char *method,
                         const char *path, const json_t *body, const char *opid, int timeout_ms,
                         json_t **ret, struct gv_error **err)
{
        int64_t deadline = gv_ctl_now_ms() + timeout_ms;

        for (;;) {
                _cleanup_(gv_error_freep) struct gv_error *e = NULL;
                int r = agent_request_once(endpoint, auth, method, path, body, opid, timeout_ms,
                                           ret, &e);
                if (r != -EINPROGRESS || gv_ctl_now_ms() >= deadline) {
                        gv_error_propagate(err, TAKE_PTR(e));
                        return r;
                }
                struct timespec ts = { .tv_nsec = 250 * 1000000L };
                nanosleep(&ts, NULL);
        }
}

static int agent_call_within(struct gv_controller *c, const char *host, const char *method,
                             const char *path, const json_t *body, const char *operation_id,
                             int timeout_ms, json_t **ret, struct gv_error **err)
{
        struct gv_store_obj h = { 0 };
        int r = host_get(c, host, &h, err);

        if (r >= 0) {
                const char *ep = json_string_value(json_object_get(h.doc, "endpoint"));
                _cleanup_secret_ char *auth = gv_ctl_agent_auth_header(h.doc);
                r = agent_request(ep ? ep : "", auth, method, path, body, operation_id,
                                  timeout_ms, ret, err);
                if (r < 0)
                        r = gv_error_wrap(err, r, "host %s", host);
        }
        gv_store_obj_done(&h);
        return r;
}

int gv_ctl_agent_call(struct gv_controller *c, const char *host, const char *method,
                      const char *path, const json_t *body, const char *operation_id,
                      json_t **ret, struct gv_error **err)
{
        return agent_call_within(c, host, method, path, body, operation_id,
                                 c->cfg.agent_timeout_ms, ret, err);
}

/* ---- the host documents ---- */

/* Read-modify-write a host document with CAS, retrying on a race; `fn` edits it. */
int gv_ctl_host_update(struct gv_controller *c, const char *name,
                       void (*fn)(json_t *doc, void *arg), void *arg, const char **ret_was,
                       struct gv_error **err)
{
        for (int tries = 0; tries < 10; tries++) {
                struct gv_store_obj h = { 0 };
                int r = host_get(c, name, &h, err);
                if (r < 0)
                        return r;
                json_t *doc = json_deep_copy(h.doc);
                static __thread char was[16];
                snprintf(was, sizeof(was), "%s",
                         json_string_value(json_object_get(h.doc, "state")) ?: "");
                fn(doc, arg);
                struct gv_store_write w = { .op = GV_STORE_UPDATE, .kind = GV_STORE_HOST,
                                            .key = name, .doc = doc,
                                            .generation = h.generation };
                _cleanup_(gv_error_freep) struct gv_error *e = NULL;
                r = gv_store_write(c->store, &w, 1, &e);
                json_decref(doc);
                gv_store_obj_done(&h);
                if (r == -ESTALE)
                        continue;
                if (r < 0) {
                        gv_error_propagate(err, TAKE_PTR(e));
                        return r;
                }
                if (ret_was)
                        *ret_was = was;
                return 0;
        }
        return gv_error_set(err, ESTALE, "host %s changed under every retry.", name);
}

struct seen_arg {
        json_t *inventory; /* borrowed; NULL: heartbeat only */
        int64_t now_s;
        json_t *health;    /* owned: [{pci, health, reason}] of the GPUs whose health changed */
};

static const char *gpu_health(const json_t *inv, const char *pci)
{
        size_t i;
        const json_t *g;
        json_array_foreach(json_object_get(inv, "gpus"), i, g)
                if (strcmp(json_string_value(json_object_get(g, "pci_address")) ?: "", pci) == 0)
                        return json_string_value(json_object_get(g, "health")) ?: "ok";
        return "ok";
}

/* The GPUs whose health differs between the stored inventory and the new one (events). */
static void health_changes(struct seen_arg *a, const json_t *old_inv)
{
        size_t i;
        const json_t *g;
        json_decref(a->health);
        a->health = json_array();
        json_array_foreach(json_object_get(a->inventory, "gpus"), i, g) {
                const char *pci = json_string_value(json_object_get(g, "pci_address"));
                const char *now = json_string_value(json_object_get(g, "health")) ?: "ok";
                if (pci && strcmp(now, gpu_health(old_inv, pci)) != 0)
                        json_array_append_new(a->health, json_pack(
                                "{s:s, s:s, s:O}", "pci", pci, "health", now, "reason",
                                json_object_get(g, "health_reason") ?: json_null()));
        }
}

static void set_seen(json_t *doc, void *arg)
{
        struct seen_arg *a = arg;
        const char *st = json_string_value(json_object_get(doc, "state"));
        if (a->inventory)
                health_changes(a, json_object_get(doc, "inventory"));
        if (a->inventory)
                json_object_set(doc, "inventory", a->inventory);
        json_object_set_new(doc, "last_seen", json_integer(a->now_s));
        if (!st || strcmp(st, "down") == 0)
                json_object_set_new(doc, "state", json_string("up"));
}

static void set_down(json_t *doc, void *arg)
{
        (void)arg;
        json_object_set_new(doc, "state", json_string("down"));
}

int gv_ctl_host_refresh(struct gv_controller *c, const char *host, struct gv_error **err)
{
        _cleanup_json_ json_t *inv = NULL, *vms = NULL;
        struct seen_arg a = { .now_s = gv_ctl_now_ms() / 1000 };
        struct gv_store_obj *before = NULL;
        size_t n_before = 0;
        const char *was = NULL;
        int r = gv_store_list(c->store, GV_STORE_VM, &before, &n_before, err);

        /* The poll's reads are quick on an agent that answers: one that does not (frozen, a
         * cut network) must not hold the poller past host_down_after_ms (reliability.md F5). */
        int poll_ms = (int)MIN((int64_t)c->cfg.agent_timeout_ms,
                               MAX((int64_t)c->cfg.host_down_after_ms, (int64_t)2000));
        if (r >= 0)
                r = agent_call_within(c, host, "GET", "/v1/host", NULL, NULL, poll_ms, &inv, err);
        if (r >= 0)
                r = agent_call_within(c, host, "GET", "/v1/vms", NULL, NULL, poll_ms, &vms, err);
        if (r < 0) {
                gv_store_objs_free(before, n_before);
                return r;
        }
        /* A fenced host that answers: its stale copies go before anything else (fence.c). */
        (void)gv_ctl_fence_settle(c, host, vms);
        a.inventory = inv;
        r = gv_ctl_host_update(c, host, set_seen, &a, &was, err);
        if (r < 0) {
                json_decref(a.health);
                gv_store_objs_free(before, n_before);
                return r;
        }
        if (strcmp(was, "up") != 0 && strcmp(was, "fenced") != 0) {
                _cleanup_free_ char *subj = xasprintf("host/%s", host);
                gv_ctl_event(c, "host.up", subj, json_pack("{s:s}", "was", was));
        }
        size_t k;
        json_t *hc;
        json_array_foreach(a.health, k, hc) {
                const char *pci = json_string_value(json_object_get(hc, "pci"));
                bool ok = strcmp(json_string_value(json_object_get(hc, "health")), "ok") == 0;
                _cleanup_free_ char *subj = xasprintf("gpu/%s/%s", host, pci);
                gv_ctl_event(c, ok ? "gpu.healthy" : "gpu.unhealthy", subj,
                             json_pack("{s:O}", "reason", json_object_get(hc, "reason")));
        }
        json_decref(a.health);
        gv_ctl_model_dirty(c); /* the inventory may have changed (modes, new GPUs) */
        gv_ctl_vms_observe(c, host, vms, false, before, n_before);
        gv_ctl_migrations_reconcile(c, host, vms, before, n_before);
        gv_store_objs_free(before, n_before);
        return 0;
}

static json_t *host_view(struct gv_controller *c, const struct gv_store_obj *h, bool full);

int gv_controller_host_register(struct gv_controller *c, const char *name, const char *endpoint,
                                json_t **ret, struct gv_error **err)
{
        return gv_controller_host_register_agent(c, name, endpoint, NULL, ret, err);
}

static bool secret_is_valid(const char *s)
{
        size_t n = 0;
        for (; s[n]; n++)
                if (!isxdigit((unsigned char)s[n]))
                        return false;
        return n == 64;
}

int gv_controller_host_register_agent(struct gv_controller *c, const char *name,
                                      const char *endpoint, const char *agent_secret,
                                      json_t **ret, struct gv_error **err)
{
        _cleanup_json_ json_t *inv = NULL;
        struct gv_store_obj h = { 0 };
        int r;

        if (!gv_name_is_valid(name))
                return gv_error_set(err, EINVAL, "'%s' is not a valid host name (lower-case "
                                    "letters, digits and '-', 1-63).", name);
        if (strncmp(endpoint, "unix:", 5) != 0 && strncmp(endpoint, "http://", 7) != 0 &&
            strncmp(endpoint, "https://", 8) != 0)
                return gv_error_set(err, EINVAL, "endpoint '%s': use unix:PATH, "
                                    "http://HOST:PORT or https://HOST:PORT.", endpoint);
        if (agent_secret && !secret_is_valid(agent_secret))
                return gv_error_set(err, EINVAL, "agent_secret must be 64 hex digits (the "
                                    "agent's 32-byte secret); the agent makes it itself.");
        _cleanup_secret_ char *auth = agent_secret
                                              ? xasprintf("Authorization: Bearer %s",
                                                          agent_secret)
                                              : NULL;
        r = agent_request(endpoint, auth, "GET", "/v1/host", NULL, NULL, POLL_TIMEOUT_MS, &inv,
                          err);
        if (r < 0)
                return gv_error_wrap(err, r, "Cannot register host '%s'", name);
        for (int tries = 0; tries < 10; tries++) {
                _cleanup_json_ json_t *doc = NULL;
                struct gv_store_write w = { .kind = GV_STORE_HOST, .key = name };
                _cleanup_(gv_error_freep) struct gv_error *e = NULL;
                int64_t now = gv_ctl_now_ms() / 1000;
                r = gv_store_get(c->store, GV_STORE_HOST, name, &h, NULL);
                if (r >= 0) {
                        doc = json_deep_copy(h.doc);
                        w.op = GV_STORE_UPDATE;
                        w.generation = h.generation;
                } else {
                        doc = json_pack("{s:s, s:I}", "name", name, "registered_at",
                                        (json_int_t)now);
                        w.op = GV_STORE_CREATE;
                }
                gv_store_obj_done(&h);
                json_object_set_new(doc, "endpoint", json_string(endpoint));
                /* A new registration replaces the secret: an agent without one (a local one
                 * on its UNIX socket) leaves none behind. */
                if (agent_secret)
                        json_object_set_new(doc, "agent_secret", json_string(agent_secret));
                else
                        json_object_del(doc, "agent_secret");
                /* A fenced host stays fenced until unfence (fence.c), whoever registers. */
                if (strcmp(json_string_value(json_object_get(doc, "state")) ?: "", "fenced"))
                        json_object_set_new(doc, "state", json_string("up"));
                json_object_set_new(doc, "last_seen", json_integer(now));
                json_object_set(doc, "inventory", inv);
                w.doc = doc;
                _cleanup_free_ char *subj = xasprintf("host/%s", name);
                r = gv_ctl_write_event(c, &w, 1, "host.registered", subj,
                                       json_pack("{s:s}", "endpoint", endpoint), &e);
                if (r == -ESTALE || r == -EEXIST)
                        continue;
                if (r < 0) {
                        gv_error_propagate(err, TAKE_PTR(e));
                        return r;
                }
                break;
        }
        gv_ctl_model_dirty(c);
        return gv_controller_host(c, name, ret, err);
}

int gv_controller_host_heartbeat(struct gv_controller *c, const char *name, json_t **ret,
                                 struct gv_error **err)
{
        struct seen_arg a = { .now_s = gv_ctl_now_ms() / 1000 };
        const char *was = NULL;
        int r = gv_ctl_host_update(c, name, set_seen, &a, &was, err);

        if (r < 0)
                return r;
        if (strcmp(was, "up") != 0 && strcmp(was, "fenced") != 0) {
                _cleanup_free_ char *subj = xasprintf("host/%s", name);
                gv_ctl_event(c, "host.up", subj, json_pack("{s:s}", "was", was));
                gv_ctl_model_dirty(c);
        }
        *ret = json_pack("{s:s}", "state", "up");
        return 0;
}

/* ---- the poller ---- */

void gv_ctl_poll_soon(struct gv_controller *c)
{
        pthread_mutex_lock(&c->notify_mu);
        c->poll_now = true;
        pthread_cond_broadcast(&c->cond);
        pthread_mutex_unlock(&c->notify_mu);
}

void *gv_ctl_poller(void *arg)
{
        struct gv_controller *c = arg;

        for (;;) {
                struct gv_store_obj *h = NULL;
                size_t n = 0;
                struct timespec ts;

                pthread_mutex_lock(&c->notify_mu);
                if (c->stopping) {
                        pthread_mutex_unlock(&c->notify_mu);
                        break;
                }
                clock_gettime(CLOCK_REALTIME, &ts);
                ts.tv_sec += c->cfg.poll_interval_ms / 1000;
                ts.tv_nsec += (long)(c->cfg.poll_interval_ms % 1000) * 1000000L;
                if (ts.tv_nsec >= 1000000000L) {
                        ts.tv_sec++;
                        ts.tv_nsec -= 1000000000L;
                }
                /* Woken by every change too: a wait for the next tick, not for a change. */
                int w = 0;
                while (!c->stopping && !c->poll_now && w != ETIMEDOUT)
                        w = pthread_cond_timedwait(&c->cond, &c->notify_mu, &ts);
                c->poll_now = false;
                bool stop = c->stopping;
                pthread_mutex_unlock(&c->notify_mu);
                if (stop)
                        break;
                /* One poller writes for the cluster: the leader's (lease.c). Host liveness is
                 * the last heartbeat or poll in the host's document, whoever received it. */
                if (!gv_ctl_is_leader(c))
                        continue;
                if (gv_store_list(c->store, GV_STORE_HOST, &h, &n, NULL) < 0)
                        continue;
                for (size_t i = 0; i < n; i++) {
                        if (!gv_ctl_is_leader(c))
                                break; /* lost the lease mid-pass: the new leader goes on */
                        if (gv_ctl_host_refresh(c, h[i].key, NULL) >= 0)
                                continue;
                        json_int_t seen = json_integer_value(json_object_get(h[i].doc,
                                                                             "last_seen"));
                        const char *st = json_string_value(json_object_get(h[i].doc, "state"));
                        int64_t silent_ms = gv_ctl_now_ms() - (int64_t)seen * 1000;
                        if (silent_ms < c->cfg.host_down_after_ms ||
                            (st && (!strcmp(st, "down") || !strcmp(st, "fenced"))))
                                continue;
                        if (gv_ctl_host_update(c, h[i].key, set_down, NULL, NULL, NULL) >= 0) {
                                _cleanup_free_ char *subj = xasprintf("host/%s", h[i].key);
                                gv_ctl_event(c, "host.down", subj,
                                             json_pack("{s:I}", "silent_s",
                                                       (json_int_t)(silent_ms / 1000)));
                                gv_ctl_model_dirty(c);
                                struct gv_store_obj *v = NULL;
                                size_t nv = 0;
                                if (gv_store_list(c->store, GV_STORE_VM, &v, &nv, NULL) >= 0)
                                        gv_ctl_vms_observe(c, h[i].key, NULL, true, v, nv);
                                gv_store_objs_free(v, nv);
                        }
                }
                gv_store_objs_free(h, n);
        }
        return NULL;
}

/* ---- views ---- */

/* Which VM holds what on each GPU of a host: {pci: [{"vm", "alloc", "name", "start"}]}. */
static json_t *holders(struct gv_controller *c, const char *host)
{
        struct gv_store_obj *v = NULL;
        size_t n = 0;
        json_t *m = json_object();

        if (gv_store_list(c->store, GV_STORE_VM, &v, &n, NULL) < 0)
                return m;
        for (size_t i = 0; i < n; i++) {
                const json_t *pl = json_object_get(v[i].doc, "placement"), *s;
                size_t k;
                if (!json_is_object(pl) ||
                    strcmp(json_string_value(json_object_get(pl, "host")) ?: "", host) != 0)
                        continue;
                json_array_foreach(json_object_get(pl, "gpus"), k, s) {
                        const char *pci = json_string_value(json_object_get(s, "pci"));
                        if (!pci)
                                continue;
                        json_t *l = json_object_get(m, pci);
                        if (!l)
                                json_object_set_new(m, pci, l = json_array());
                        json_array_append_new(l, json_pack("{s:s, s:O, s:O, s:O}", "vm",
                                                           v[i].key, "alloc",
                                                           json_object_get(s, "alloc"), "name",
                                                           json_object_get(s, "name"), "start",
                                                           json_object_get(s, "start")));
                }
        }
        gv_store_objs_free(v, n);
        return m;
}

static json_t *gpu_view(const char *host, const json_t *g, const json_t *held)
{
        const char *pci = json_string_value(json_object_get(g, "pci_address"));
        json_int_t idx = json_integer_value(json_object_get(g, "index"));
        _cleanup_free_ char *name = xasprintf("%s/%lld", host, (long long)idx);
        json_t *v = json_pack("{s:s, s:I, s:s, s:s?, s:O, s:O, s:O, s:O, s:O, s:O, s:O}",
                              "host", host, "index", (json_int_t)idx, "name", name, "pci", pci,
                              "model", json_object_get(g, "model") ?: json_null(), "memory_mib",
                              json_object_get(g, "memory_total_mib") ?: json_null(),
                              "memory_used_mib",
                              json_object_get(g, "memory_used_mib") ?: json_null(), "mode",
                              json_object_get(g, "mode") ?: json_null(), "util_pct",
                              json_object_get(g, "utilization_gpu_pct") ?: json_null(), "mig",
                              json_object_get(g, "mig") ?: json_null(), "vgpu",
                              json_object_get(g, "vgpu") ?: json_null());
        json_object_set_new(v, "health", json_incref(json_object_get(g, "health") ?:
                                                     json_string("ok")));
        json_object_set(v, "health_reason", json_object_get(g, "health_reason") ?: json_null());
        json_object_set_new(v, "use", pci && json_object_get(held, pci)
                                              ? json_incref(json_object_get(held, pci))
                                              : json_array());
        return v;
}

static json_t *host_view(struct gv_controller *c, const struct gv_store_obj *h, bool full)
{
        const json_t *inv = json_object_get(h->doc, "inventory"), *g;
        json_t *v = json_pack("{s:s, s:O, s:O, s:O}", "name", h->key, "state",
                              json_object_get(h->doc, "state") ?: json_null(), "endpoint",
                              json_object_get(h->doc, "endpoint") ?: json_null(), "last_seen",
                              json_object_get(h->doc, "last_seen") ?: json_null());
        json_object_set_new(v, "pool", json_string(gv_ctl_host_pool(h->doc)));
        if (json_is_object(json_object_get(h->doc, "fence"))) /* fence.c */
                json_object_set(v, "fence", json_object_get(h->doc, "fence"));
        const json_t *q = json_object_get(inv, "qemu");
        size_t i, n = json_array_size(json_object_get(inv, "gpus"));
        json_t *models = json_object();

        json_object_set(v, "accel", json_object_get(q, "accel") ?: json_null());
        json_object_set(v, "accel_reason", json_object_get(q, "reason") ?: json_null());
        json_object_set(v, "simulated", json_object_get(inv, "simulated") ?: json_false());
        json_object_set(v, "cpus", json_object_get(inv, "cpus") ?: json_null());
        json_object_set(v, "memory_mib", json_object_get(inv, "memory_mib") ?: json_null());
        json_array_foreach(json_object_get(inv, "gpus"), i, g) {
                const char *m = json_string_value(json_object_get(g, "model")) ?: "unknown";
                json_object_set_new(models, m, json_integer(json_integer_value(
                                                       json_object_get(models, m)) + 1));
        }
        json_object_set_new(v, "models", models);
        if (full) {
                _cleanup_json_ json_t *held = holders(c, h->key);
                json_t *gpus = json_array();
                json_array_foreach(json_object_get(inv, "gpus"), i, g)
                        json_array_append_new(gpus, gpu_view(h->key, g, held));
                json_object_set_new(v, "gpus", gpus);
        } else {
                json_object_set_new(v, "gpus", json_integer((json_int_t)n));
        }
        return v;
}

json_t *gv_controller_hosts(struct gv_controller *c)
{
        struct gv_store_obj *h = NULL;
        size_t n = 0;
        json_t *a = json_array();

        if (gv_store_list(c->store, GV_STORE_HOST, &h, &n, NULL) < 0)
                return a;
        for (size_t i = 0; i < n; i++)
                json_array_append_new(a, host_view(c, &h[i], false));
        gv_store_objs_free(h, n);
        return a;
}

int gv_controller_host(struct gv_controller *c, const char *name, json_t **ret,
                       struct gv_error **err)
{
        struct gv_store_obj h = { 0 };
        int r = host_get(c, name, &h, err);

        if (r < 0)
                return r;
        *ret = host_view(c, &h, true);
        gv_store_obj_done(&h);
        return 0;
}

json_t *gv_controller_gpus(struct gv_controller *c)
{
        struct gv_store_obj *h = NULL;
        size_t n = 0;
        json_t *a = json_array();

        if (gv_store_list(c->store, GV_STORE_HOST, &h, &n, NULL) < 0)
                return a;
        for (size_t i = 0; i < n; i++) {
                _cleanup_json_ json_t *v = host_view(c, &h[i], true);
                json_array_extend(a, json_object_get(v, "gpus"));
        }
        gv_store_objs_free(h, n);
        return a;
}

/* The inventory entry of GPU `sel` (index, PCI address or UUID) on host h. */
static int find_gpu(const struct gv_store_obj *h, const char *sel, const json_t **ret,
                    struct gv_error **err)
{
        const json_t *g;
        size_t i;
        uint32_t idx;
        bool by_index = gv_parse_u32(sel, 10, &idx) >= 0;

        json_array_foreach(json_object_get(json_object_get(h->doc, "inventory"), "gpus"), i, g) {
                const char *pci = json_string_value(json_object_get(g, "pci_address"));
                const char *uuid = json_string_value(json_object_get(g, "uuid"));
                if ((by_index && json_integer_value(json_object_get(g, "index")) == idx) ||
                    (pci && strcasecmp(pci, sel) == 0) || (uuid && strcasecmp(uuid, sel) == 0)) {
                        *ret = g;
                        return 0;
                }
        }
        return gv_error_set(err, ENOENT, "Host %s has no GPU '%s' (an index, a PCI address or "
                            "a UUID; gpuvirt gpu list %s shows them).", h->key, sel, h->key);
}

int gv_controller_gpu(struct gv_controller *c, const char *host, const char *gpu, json_t **ret,
                      struct gv_error **err)
{
        struct gv_store_obj h = { 0 };
        const json_t *g;
        int r = host_get(c, host, &h, err);

        if (r >= 0)
                r = find_gpu(&h, gpu, &g, err);
        if (r >= 0) {
                _cleanup_json_ json_t *held = holders(c, host);
                *ret = gpu_view(host, g, held);
        }
        gv_store_obj_done(&h);
        return r;
}

int gv_controller_gpu_vgpu_types(struct gv_controller *c, const char *host, const char *gpu,
                                 json_t **ret, struct gv_error **err)
{
        struct gv_store_obj h = { 0 };
        const json_t *g;
        int r = host_get(c, host, &h, err);

        if (r >= 0)
                r = find_gpu(&h, gpu, &g, err);
        if (r >= 0) {
                const char *model = json_string_value(json_object_get(g, "model"));
                const struct gv_gpu_model *gm = NULL;
                for (size_t i = 0; model && i < c->catalog->n_models; i++)
                        if (strcasecmp(c->catalog->models[i].name, model) == 0)
                                gm = &c->catalog->models[i];
                json_t *a = json_array();
                for (size_t i = 0; gm && i < gm->n_vgpu_types; i++) {
                        const struct gv_vgpu_type *t = &gm->vgpu_types[i];
                        json_array_append_new(a, json_pack("{s:s, s:I, s:i, s:s?, s:s}", "name",
                                                           t->name, "framebuffer_mib",
                                                           (json_int_t)t->framebuffer_mib,
                                                           "max_instances", t->max_instances,
                                                           "gi_profile", t->gi_profile, "series",
                                                           gv_vgpu_series_to_string(t->series)));
                }
                *ret = a;
        }
        gv_store_obj_done(&h);
        return r;
}

/* ---- GPU mode and MIG layout ---- */

/* The VM that holds anything on the GPU, or NULL. */
char *gv_ctl_gpu_user(struct gv_controller *c, const char *host, const char *pci)
{
        _cleanup_json_ json_t *held = holders(c, host);
        const json_t *l = json_object_get(held, pci);
        const char *vm = json_string_value(json_object_get(json_array_get(l, 0), "vm"));
        return vm ? xstrdup(vm) : NULL;
}

static int gpu_op(struct gv_controller *c, const char *kind, const char *host, const char *gpu,
                  json_t *arg, json_t **ret_op, struct gv_error **err)
{
        struct gv_store_obj h = { 0 };
        const json_t *g;
        int r = host_get(c, host, &h, err);

        if (r >= 0)
                r = find_gpu(&h, gpu, &g, err);
        if (r >= 0) {
                const char *pci = json_string_value(json_object_get(g, "pci_address"));
                _cleanup_free_ char *who = gv_ctl_gpu_user(c, host, pci);
                _cleanup_free_ char *target = xasprintf("gpu/%s/%s", host, pci);
                if (who)
                        r = gv_error_set(err, EBUSY, "GPU %s/%s (%s) is in use by VM '%s'; "
                                         "delete or move it first.", host, gpu, pci, who);
                else {
                        json_object_set_new(arg, "host", json_string(host));
                        json_object_set_new(arg, "pci", json_string(pci));
                        r = gv_ctl_op_start(c, kind, target, json_incref(arg), ret_op, err);
                }
        }
        json_decref(arg);
        gv_store_obj_done(&h);
        return r;
}

int gv_controller_gpu_set_mode(struct gv_controller *c, const char *host, const char *gpu,
                               const char *mode, json_t **ret_op, struct gv_error **err)
{
        static const char *const modes[] = { "none", "passthrough", "vgpu", "mig", NULL };
        if (!strv_contains((char **)modes, mode))
                return gv_error_set(err, EINVAL, "mode: '%s' is not one of none, passthrough, "
                                    "vgpu, mig.", mode);
        return gpu_op(c, "gpu.mode", host, gpu, json_pack("{s:s}", "mode", mode), ret_op, err);
}

int gv_controller_gpu_mig_apply(struct gv_controller *c, const char *host, const char *gpu,
                                const json_t *profiles, json_t **ret_op, struct gv_error **err)
{
        size_t i;
        const json_t *p;

        if (!json_is_array(profiles))
                return gv_error_set(err, EINVAL, "profiles: a list of MIG profile names, e.g. "
                                    "[\"3g.40gb\", \"2g.20gb\"].");
        json_array_foreach(profiles, i, p)
                if (!json_is_string(p))
                        return gv_error_set(err, EINVAL, "profiles[%zu]: not a string.", i);
        return gpu_op(c, "gpu.mig", host, gpu, json_pack("{s:O}", "profiles", profiles), ret_op,
                      err);
}

static int gpu_op_run(struct gv_controller *c, const char *op_id, json_t *arg, const char *what,
                      json_t *body, json_t **ret_result, struct gv_error **err)
{
        const char *host = json_string_value(json_object_get(arg, "host"));
        const char *pci = json_string_value(json_object_get(arg, "pci"));
        _cleanup_free_ char *path = xasprintf("/v1/gpus/%s/%s", pci ? pci : "?", what);
        _cleanup_free_ char *subj = xasprintf("gpu/%s/%s", host ? host : "?", pci ? pci : "?");
        int r;

        if (!host || !pci) {
                json_decref(body);
                return gv_error_set(err, EINVAL, "The operation lost its GPU.");
        }
        gv_ctl_op_progress(c, op_id, 20, "asking host %s", host);
        r = gv_ctl_agent_call(c, host, "POST", path, body, op_id, ret_result, err);
        json_decref(body);
        if (r < 0)
                return r;
        GV_FAILPOINT(strcmp(what, "mode") == 0 ? "gpu.mode.answered" : "gpu.mig.answered");
        gv_ctl_op_progress(c, op_id, 80, "reading host %s again", host);
        (void)gv_ctl_host_refresh(c, host, NULL);
        gv_ctl_event(c, strcmp(what, "mode") == 0 ? "gpu.mode" : "gpu.mig", subj,
                     json_deep_copy(*ret_result));
        return 0;
}

int gv_ctl_op_gpu_mode(struct gv_controller *c, const char *op_id, json_t *arg,
                       json_t **ret_result, struct gv_error **err)
{
        return gpu_op_run(c, op_id, arg, "mode",
                          json_pack("{s:O}", "mode", json_object_get(arg, "mode")), ret_result,
                          err);
}

int gv_ctl_op_gpu_mig(struct gv_controller *c, const char *op_id, json_t *arg,
                      json_t **ret_result, struct gv_error **err)
{
        return gpu_op_run(c, op_id, arg, "mig",
                          json_pack("{s:O}", "profiles", json_object_get(arg, "profiles")),
                          ret_result, err);
}
