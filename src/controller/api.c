/* SPDX-License-Identifier: MIT */
/*
 * api.c — the controller's REST API (docs/api.md): the route table from api.h's list, and one
 * path every request takes (serve()):
 *
 *   1. the role: none for openapi.json and health; admin on the local UNIX socket; otherwise
 *      the Authorization header's token (401 with WWW-Authenticate when missing or bad, 403
 *      when its role is below the route's);
 *   2. the query: only the parameters the route takes (?wait, ?limit, ?after), strictly parsed;
 *   3. Idempotency-Key on POST, PUT and DELETE: the first answer is replayed (api-idem.c);
 *   4. the route's function, which parses a strict body (unknown members are 400, named) and
 *      calls the controller (controller.h);
 *   5. an operation answer waits when asked (?wait=SECONDS) and is 200 when it has ended,
 *      202 with Location while it runs.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "controller/api.h"
#include "http/problem.h"
#include "util/alloc.h"
#include "util/json.h"
#include "util/parse.h"
#include "util/sha256.h"
#include "util/strv.h"

#define WAIT_MAX_S 600u
#define LIMIT_DEFAULT 100u
#define LIMIT_MAX 10000u
#define STOP_TIMEOUT_MAX_S 3600u

enum { NONE = -1, VIEWER = GV_ROLE_VIEWER, OPERATOR = GV_ROLE_OPERATOR, ADMIN = GV_ROLE_ADMIN };
/* Q_UPLOAD: no query parameters, and the body is streamed to a file (route.h body_to_file).
 * Q_METRICS: ?series and ?range (do_metrics reads them). Q_INSIGHTS: ?window and ?threshold
 * (do_insights). */
enum query_kind { Q_NONE, Q_WAIT, Q_LIMIT, Q_AFTER, Q_UPLOAD, Q_METRICS, Q_INSIGHTS };

struct call {
        struct gv_http_request *req;
        struct gv_controller_api *api;
        struct gv_controller *c;
        int wait_ms;      /* ?wait, in ms */
        unsigned limit;   /* ?limit */
        /* the answer */
        unsigned status;  /* 0: the function replied itself (a stream) */
        json_t *body;
        bool is_op;       /* body is an operation: 200 when it ended, 202 while it runs */
};

typedef int (*api_fn)(struct call *k, struct gv_error **err);

/* ---- request pieces ---- */

/* The body as a JSON object whose members are all in allowed (NULL-terminated). An empty body
 * is {} when optional, else 400. */
static int body_object(struct call *k, const char *what, const char *const *allowed,
                       bool optional, json_t **ret, struct gv_error **err)
{
        size_t len = 0;
        (void)gv_http_body(k->req, &len);
        if (!len && optional) {
                *ret = json_object();
                return 0;
        }
        _cleanup_json_ json_t *in = NULL;
        int r = gv_http_body_json(k->req, &in, err);
        if (r < 0)
                return r;
        _cleanup_strv_free_ char **unknown = NULL;
        const char *key;
        json_t *v;
        json_object_foreach(in, key, v)
                if (!strv_contains((char *const *)allowed, key))
                        strv_extend(&unknown, key);
        if (unknown) {
                strv_sort(unknown);
                _cleanup_free_ char *u = strv_join(unknown, "', '");
                _cleanup_free_ char *a = strv_join((char *const *)allowed, ", ");
                return gv_error_set(err, EINVAL, "%s: unknown member%s '%s'; valid: %s.", what,
                                    strv_length(unknown) > 1 ? "s" : "", u,
                                    *a ? a : "none");
        }
        *ret = TAKE_PTR(in);
        return 0;
}

static int no_body(struct call *k, const char *what, struct gv_error **err)
{
        size_t len = 0;
        (void)gv_http_body(k->req, &len);
        if (len)
                return gv_error_set(err, EINVAL, "%s takes no request body; send none.", what);
        return 0;
}

static int parse_query(struct call *k, enum query_kind q, struct gv_error **err)
{
        static const char *const none[] = { NULL };
        static const char *const wait[] = { "wait", NULL };
        static const char *const limit[] = { "limit", NULL };
        static const char *const after[] = { "after", NULL };
        static const char *const metrics[] = { "series", "range", NULL };
        static const char *const insights[] = { "window", "threshold", NULL };
        const char *const *allowed = q == Q_WAIT ? wait : q == Q_LIMIT ? limit
                                   : q == Q_AFTER ? after : q == Q_METRICS ? metrics
                                   : q == Q_INSIGHTS ? insights : none;
        const char *s = NULL;
        uint32_t v;
        int r = gv_http_query_check(k->req, allowed, err);
        if (r < 0)
                return r;
        k->limit = LIMIT_DEFAULT;
        if (q == Q_WAIT) {
                r = gv_http_query(k->req, "wait", &s, err);
                if (r < 0)
                        return r;
                if (r > 0) {
                        if (gv_parse_u32(s, 10, &v) < 0 || v > WAIT_MAX_S)
                                return gv_error_set(err, EINVAL, "wait: '%s' is not a number "
                                                    "of seconds from 0 to %u.", s, WAIT_MAX_S);
                        k->wait_ms = (int)v * 1000;
                }
        } else if (q == Q_LIMIT) {
                r = gv_http_query(k->req, "limit", &s, err);
                if (r < 0)
                        return r;
                if (r > 0) {
                        if (gv_parse_u32(s, 10, &v) < 0 || v < 1 || v > LIMIT_MAX)
                                return gv_error_set(err, EINVAL, "limit: '%s' is not a count "
                                                    "from 1 to %u.", s, LIMIT_MAX);
                        k->limit = v;
                }
        }
        /* ?after is the event stream's (api-events.c). */
        return 0;
}

static const char *param(struct call *k, const char *name)
{
        return gv_http_param(k->req, name);
}

static int answer(struct call *k, unsigned status, json_t *body)
{
        k->status = status;
        k->body = body;
        return 0;
}

static int answer_op(struct call *k, json_t *op)
{
        k->is_op = true;
        return answer(k, 202, op);
}

/* ---- meta ---- */

static int do_openapi(struct call *k, struct gv_error **err)
{
        _cleanup_json_ json_t *doc = NULL;
        int r = gv_json_loads(gv_controller_openapi_json, &doc, err);
        if (r < 0)
                return r;
        return answer(k, 200, TAKE_PTR(doc));
}

static int do_health(struct call *k, struct gv_error **err)
{
        (void)err;
        return answer(k, 200, json_pack("{s:s, s:s, s:s}", "status", "ok", "version",
                                        GPUVIRT_VERSION, "store",
                                        gv_controller_store_scheme(k->c)));
}

/* ---- hosts and GPUs ---- */

static int do_hosts(struct call *k, struct gv_error **err)
{
        (void)err;
        return answer(k, 200, gv_controller_hosts(k->c));
}

static int do_host_register(struct call *k, struct gv_error **err)
{
        static const char *const keys[] = { "name", "endpoint", NULL };
        _cleanup_json_ json_t *in = NULL;
        const char *name = NULL, *endpoint = NULL;
        json_t *host = NULL;
        int r = body_object(k, "host", keys, false, &in, err);
        if (r >= 0)
                r = gv_json_get_string(in, "name", &name, err);
        if (r >= 0)
                r = gv_json_get_string(in, "endpoint", &endpoint, err);
        if (r >= 0)
                r = gv_controller_host_register(k->c, name, endpoint, &host, err);
        return r < 0 ? r : answer(k, 201, host);
}

static int do_host(struct call *k, struct gv_error **err)
{
        json_t *j = NULL;
        int r = gv_controller_host(k->c, param(k, "host"), &j, err);
        return r < 0 ? r : answer(k, 200, j);
}

static int do_host_heartbeat(struct call *k, struct gv_error **err)
{
        json_t *j = NULL;
        int r = no_body(k, "a heartbeat", err);
        if (r >= 0)
                r = gv_controller_host_heartbeat(k->c, param(k, "host"), &j, err);
        return r < 0 ? r : answer(k, 200, j);
}

static int do_gpus(struct call *k, struct gv_error **err)
{
        (void)err;
        return answer(k, 200, gv_controller_gpus(k->c));
}

static int do_gpu(struct call *k, struct gv_error **err)
{
        json_t *j = NULL;
        int r = gv_controller_gpu(k->c, param(k, "host"), param(k, "gpu"), &j, err);
        return r < 0 ? r : answer(k, 200, j);
}

static int do_vgpu_types(struct call *k, struct gv_error **err)
{
        json_t *j = NULL;
        int r = gv_controller_gpu_vgpu_types(k->c, param(k, "host"), param(k, "gpu"), &j, err);
        return r < 0 ? r : answer(k, 200, j);
}

static int do_gpu_mode(struct call *k, struct gv_error **err)
{
        static const char *const keys[] = { "mode", NULL };
        _cleanup_json_ json_t *in = NULL;
        const char *mode = NULL;
        json_t *op = NULL;
        int r = body_object(k, "GPU mode", keys, false, &in, err);
        if (r >= 0)
                r = gv_json_get_string(in, "mode", &mode, err);
        if (r >= 0)
                r = gv_controller_gpu_set_mode(k->c, param(k, "host"), param(k, "gpu"), mode,
                                               &op, err);
        return r < 0 ? r : answer_op(k, op);
}

static int do_gpu_mig(struct call *k, struct gv_error **err)
{
        static const char *const keys[] = { "profiles", NULL };
        _cleanup_json_ json_t *in = NULL;
        json_t *profiles = NULL, *op = NULL, *v;
        size_t i;
        int r = body_object(k, "MIG layout", keys, false, &in, err);
        if (r >= 0)
                r = gv_json_get_array(in, "profiles", &profiles, err);
        if (r < 0)
                return r;
        json_array_foreach(profiles, i, v)
                if (!json_is_string(v))
                        return gv_error_set(err, EINVAL, "profiles[%zu]: a profile name such as "
                                            "\"3g.40gb\".", i);
        r = gv_controller_gpu_mig_apply(k->c, param(k, "host"), param(k, "gpu"), profiles, &op,
                                        err);
        return r < 0 ? r : answer_op(k, op);
}

/* ---- VMs ---- */

static int do_vms(struct call *k, struct gv_error **err)
{
        (void)err;
        k->status = 0; /* replies itself: the controller's cached text */
        return gv_http_reply_text(k->req, 200, "application/json", gv_controller_vms_text(k->c));
}

static const char *const vm_create_keys[] = { "name", "image", "disk_size", "vcpus",
                                               "memory_mib", "gpus", "nics", "cloud_init",
                                               "policy", "host", "maintenance", "tenant",
                                               NULL };

/* Where a VM would go now, nothing reserved (the dashboard's create dialog, scripts). */
static int do_placement(struct call *k, struct gv_error **err)
{
        _cleanup_json_ json_t *in = NULL, *out = NULL;
        int r = body_object(k, "placement", vm_create_keys, false, &in, err);
        if (r >= 0)
                r = gv_controller_vm_place(k->c, in, &out, err);
        return r < 0 ? r : answer(k, 200, TAKE_PTR(out));
}

/* The mode advisor: a workload's traits → ranked options (docs/advisor.md). The traits are
 * checked by the advisor itself, whose messages name the member and its valid values. */
static int do_advise(struct call *k, struct gv_error **err)
{
        _cleanup_json_ json_t *in = NULL, *out = NULL;
        int r = gv_http_body_json(k->req, &in, err);
        if (r >= 0)
                r = gv_controller_advise(k->c, in, &out, err);
        return r < 0 ? r : answer(k, 200, TAKE_PTR(out));
}

static int do_vm_create(struct call *k, struct gv_error **err)
{
        const char *const *keys = vm_create_keys;
        _cleanup_json_ json_t *in = NULL;
        json_t *op = NULL;
        int r = body_object(k, "vm-create", keys, false, &in, err);
        if (r >= 0)
                r = gv_controller_vm_create(k->c, in, &op, err);
        return r < 0 ? r : answer_op(k, op);
}

static int do_vm(struct call *k, struct gv_error **err)
{
        json_t *j = NULL;
        int r = gv_controller_vm(k->c, param(k, "vm"), &j, err);
        return r < 0 ? r : answer(k, 200, j);
}

static int do_vm_console_ws(struct call *k, struct gv_error **err)
{
        k->status = 0; /* answers itself: an upgrade or the agent's refusal */
        return gv_controller_vm_ws(k->req, k->c, param(k, "vm"), "console", err);
}

static int do_vm_vnc_ws(struct call *k, struct gv_error **err)
{
        k->status = 0;
        return gv_controller_vm_ws(k->req, k->c, param(k, "vm"), "vnc", err);
}

static int do_vm_start(struct call *k, struct gv_error **err)
{
        json_t *op = NULL;
        int r = no_body(k, "a start", err);
        if (r >= 0)
                r = gv_controller_vm_start(k->c, param(k, "vm"), &op, err);
        return r < 0 ? r : answer_op(k, op);
}

static int do_vm_stop(struct call *k, struct gv_error **err)
{
        static const char *const keys[] = { "timeout_s", NULL };
        _cleanup_json_ json_t *in = NULL;
        uint32_t timeout_s = 0;
        json_t *op = NULL;
        int r = body_object(k, "stop", keys, true, &in, err);
        if (r >= 0)
                r = gv_json_opt_u32(in, "timeout_s", &timeout_s, err);
        if (r >= 0 && timeout_s > STOP_TIMEOUT_MAX_S)
                r = gv_error_set(err, EINVAL, "timeout_s: %u is more than %u seconds.",
                                 timeout_s, STOP_TIMEOUT_MAX_S);
        if (r >= 0)
                r = gv_controller_vm_stop(k->c, param(k, "vm"), (int)timeout_s, &op, err);
        return r < 0 ? r : answer_op(k, op);
}

static int do_host_drain(struct call *k, struct gv_error **err)
{
        static const char *const keys[] = { "dry_run", "passthrough", NULL };
        _cleanup_json_ json_t *in = NULL;
        json_t *out = NULL;
        bool is_op = false;
        int r = body_object(k, "drain", keys, true, &in, err);
        if (r >= 0)
                r = gv_controller_host_drain(k->c, param(k, "host"), in ? in : json_object(),
                                             &out, &is_op, err);
        if (r < 0)
                return r;
        return is_op ? answer_op(k, out) : answer(k, 200, out);
}

static int do_host_undrain(struct call *k, struct gv_error **err)
{
        json_t *h = NULL;
        int r = no_body(k, "an undrain", err);
        if (r >= 0)
                r = gv_controller_host_undrain(k->c, param(k, "host"), &h, err);
        return r < 0 ? r : answer(k, 200, h);
}

static int do_vm_migrate(struct call *k, struct gv_error **err)
{
        static const char *const keys[] = { "to", "mode", "downtime_ms", "max_bandwidth_mib",
                                             NULL };
        _cleanup_json_ json_t *in = NULL;
        json_t *op = NULL;
        int r = body_object(k, "migration", keys, true, &in, err);
        if (r >= 0)
                r = gv_controller_vm_migrate(k->c, param(k, "vm"), in ? in : json_object(), &op,
                                             err);
        return r < 0 ? r : answer_op(k, op);
}

static int do_vm_delete(struct call *k, struct gv_error **err)
{
        json_t *op = NULL;
        int r = no_body(k, "a delete", err);
        if (r >= 0)
                r = gv_controller_vm_delete(k->c, param(k, "vm"), &op, err);
        return r < 0 ? r : answer_op(k, op);
}

/* ---- operations and events ---- */

static int do_operations(struct call *k, struct gv_error **err)
{
        (void)err;
        return answer(k, 200, gv_controller_operations(k->c, k->limit));
}

static int do_operation(struct call *k, struct gv_error **err)
{
        json_t *op = NULL;
        int r = gv_controller_operation(k->c, param(k, "id"), 0, &op, err);
        return r < 0 ? r : answer_op(k, op);
}

static int do_events(struct call *k, struct gv_error **err)
{
        (void)err;
        k->status = 0; /* the stream replies itself */
        return gv_controller_api_events(k->req, k->api);
}

/* ---- images ---- */

static int do_images(struct call *k, struct gv_error **err)
{
        (void)err;
        return answer(k, 200, gv_controller_images(k->c));
}

static int do_image_register(struct call *k, struct gv_error **err)
{
        _cleanup_json_ json_t *in = NULL;
        json_t *img = NULL;
        int r = gv_http_body_json(k->req, &in, err);
        if (r >= 0)
                r = gv_controller_image_register(k->c, in, &img, err); /* checks the members */
        return r < 0 ? r : answer(k, 201, img);
}

static int do_image_upload(struct call *k, struct gv_error **err)
{
        const char *tmp = gv_http_body_path(k->req);
        json_t *img = NULL;
        int r;

        if (!tmp)
                return gv_error_set(err, ENOSYS, "This controller keeps no uploaded images; "
                                    "copy the file to the hosts and register it with POST "
                                    "/api/v1/images {\"name\", \"path\"}.");
        r = gv_controller_image_upload(k->c, param(k, "image"), tmp, &img, err);
        return r < 0 ? r : answer(k, 201, img);
}

static int do_image_delete(struct call *k, struct gv_error **err)
{
        int r = no_body(k, "a delete", err);
        if (r >= 0)
                r = gv_controller_image_delete(k->c, param(k, "image"), err);
        return r < 0 ? r : answer(k, 200, json_pack("{s:s, s:b}", "name", param(k, "image"),
                                                     "deleted", 1));
}

/* ---- tokens ---- */

static int do_tokens(struct call *k, struct gv_error **err)
{
        (void)err;
        return answer(k, 200, gv_controller_tokens(k->c));
}

static int do_token_create(struct call *k, struct gv_error **err)
{
        static const char *const keys[] = { "name", "role", NULL };
        _cleanup_json_ json_t *in = NULL;
        const char *name = NULL, *role_s = NULL;
        json_t *t = NULL;
        int r = body_object(k, "token", keys, false, &in, err);
        if (r >= 0)
                r = gv_json_get_string(in, "name", &name, err);
        if (r >= 0)
                r = gv_json_get_string(in, "role", &role_s, err);
        if (r < 0)
                return r;
        enum gv_role role = gv_role_from_string(role_s);
        if (role < 0)
                return gv_error_set(err, EINVAL, "role '%s' is not known; valid: viewer, "
                                    "operator, admin.", role_s);
        r = gv_controller_token_create(k->c, name, role, &t, err);
        return r < 0 ? r : answer(k, 201, t);
}

static int do_token_delete(struct call *k, struct gv_error **err)
{
        int r = no_body(k, "a delete", err);
        if (r >= 0)
                r = gv_controller_token_delete(k->c, param(k, "id"), err);
        return r < 0 ? r : answer(k, 200, json_pack("{s:s, s:b}", "id", param(k, "id"),
                                                     "deleted", 1));
}

/* ---- licence pools (license.c) ---- */

static int do_licenses(struct call *k, struct gv_error **err)
{
        (void)err;
        return answer(k, 200, gv_controller_licenses(k->c));
}

static int do_license(struct call *k, struct gv_error **err)
{
        json_t *p = NULL;
        int r = gv_controller_license_pool(k->c, param(k, "pool"), &p, err);
        return r < 0 ? r : answer(k, 200, p);
}

/* Create or replace: the body is checked member by member by the controller. */
static int do_license_put(struct call *k, struct gv_error **err)
{
        _cleanup_json_ json_t *in = NULL;
        json_t *p = NULL;
        int r = gv_http_body_json(k->req, &in, err);
        if (r >= 0)
                r = gv_controller_license_pool_put(k->c, param(k, "pool"), in, &p, err);
        return r < 0 ? r : answer(k, 200, p);
}

static int do_license_delete(struct call *k, struct gv_error **err)
{
        int r = no_body(k, "a delete", err);
        if (r >= 0)
                r = gv_controller_license_pool_delete(k->c, param(k, "pool"), err);
        return r < 0 ? r : answer(k, 200, json_pack("{s:s, s:b}", "name", param(k, "pool"),
                                                     "deleted", 1));
}

/* ---- metrics ---- */

/* The latest values of the cluster, or with ?series the history of one entity. */
static int do_metrics(struct call *k, struct gv_error **err)
{
        const char *series = NULL, *range = NULL;
        json_t *j = NULL;
        int r = gv_http_query(k->req, "series", &series, err);
        if (r >= 0)
                r = gv_http_query(k->req, "range", &range, err);
        if (r < 0)
                return r;
        if (!series && range)
                return gv_error_set(err, EINVAL, "range '%s' needs a series: add "
                                    "series=host/HOST, gpu/HOST/PCI or vm/VM.", range);
        if (!series)
                return answer(k, 200, gv_controller_metrics(k->c));
        r = gv_controller_metrics_history(k->c, series, range, &j, err);
        return r < 0 ? r : answer(k, 200, j);
}

/* ---- insights ---- */

/* "5", "12.5", "100": a percentage 0..100, at most two decimals; NaN otherwise. */
static double parse_percent(const char *s)
{
        uint32_t whole = 0, frac = 0;
        const char *dot = strchr(s, '.');
        _cleanup_free_ char *w = dot ? xstrndup(s, (size_t)(dot - s)) : xstrdup(s);
        if (gv_parse_u32(w, 10, &whole) < 0 || whole > 100)
                return NAN;
        if (dot) {
                size_t n = strlen(dot + 1);
                if (n < 1 || n > 2 || strspn(dot + 1, "0123456789") != n ||
                    gv_parse_u32(dot + 1, 10, &frac) < 0)
                        return NAN;
                if (n == 1)
                        frac *= 10;
        }
        double v = whole + frac / 100.0;
        return v <= 100 ? v : NAN;
}

/* Idle pass-through GPUs, MIG fragmentation with re-layout plans, idle seats (insights.c). */
static int do_insights(struct call *k, struct gv_error **err)
{
        const char *window = NULL, *threshold = NULL;
        double t = 5;
        json_t *j = NULL;
        int r = gv_http_query(k->req, "window", &window, err);
        if (r >= 0)
                r = gv_http_query(k->req, "threshold", &threshold, err);
        if (r < 0)
                return r;
        if (threshold) {
                t = parse_percent(threshold);
                if (isnan(t))
                        return gv_error_set(err, EINVAL, "threshold: '%s' is not a percentage "
                                            "from 0 to 100 (e.g. 5 or 12.5).", threshold);
        }
        r = gv_controller_insights(k->c, window, t, &j, err);
        return r < 0 ? r : answer(k, 200, j);
}

/* The Prometheus exposition (text format 0.0.4). */
static int do_prometheus(struct call *k, struct gv_error **err)
{
        (void)err;
        k->status = 0; /* replies itself: text, not JSON */
        return gv_http_reply_text(k->req, 200, "text/plain; version=0.0.4; charset=utf-8",
                                  gv_controller_metrics_text(k->c, NULL));
}

/* ---- the common path ---- */

/* The caller's role; -1 with the 401 or 403 already answered. */
static int authorize(struct call *k, int needed)
{
        if (needed == NONE)
                return ADMIN; /* not used: the route needs nothing */
        if (gv_http_peer_cred(k->req, NULL, NULL, NULL) >= 0)
                return ADMIN; /* the local UNIX socket */

        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        _cleanup_free_ char *ws_bearer = NULL;
        const char *h = gv_http_header(k->req, "Authorization");
        enum gv_role role;
        if (!h) /* a browser's WebSocket: the token as a subprotocol (console.c) */
                h = ws_bearer = gv_controller_ws_bearer(k->req);
        int r = gv_controller_authenticate(k->c, h, &role, &e);
        if (r == -EACCES) {
                (void)gv_http_reply_problem(k->req, 401, "unauthorized", NULL, "%s",
                                            gv_error_msg(e, r));
                /* RFC 6750 3: error="invalid_token" when a token was sent but is not valid. */
                (void)gv_http_reply_header(k->req, "WWW-Authenticate",
                                           h ? "Bearer realm=\"gpuvirt\", error=\"invalid_token\""
                                             : "Bearer realm=\"gpuvirt\"");
                return -1;
        }
        if (r < 0) {
                (void)gv_http_reply_error(k->req, r, e);
                return -1;
        }
        if ((int)role < needed) {
                (void)gv_http_reply_problem(k->req, 403, "forbidden", NULL,
                                            "'%s %s' needs the role '%s' or higher; this token "
                                            "has '%s'. Ask an admin for a token with that role.",
                                            gv_http_method(k->req), gv_http_path(k->req),
                                            gv_role_to_string(needed), gv_role_to_string(role));
                return -1;
        }
        return (int)role;
}

/* An operation answer: wait if asked, then 200 when it ended, 202 with Location while not. */
static void settle_op(struct call *k)
{
        const char *id = json_string_value(json_object_get(k->body, "id"));
        if (k->wait_ms > 0 && id && !gv_controller_operation_done(k->body)) {
                json_t *op = NULL;
                if (gv_controller_operation(k->c, id, k->wait_ms, &op, NULL) >= 0) {
                        json_decref(k->body);
                        k->body = op;
                }
        }
        k->status = gv_controller_operation_done(k->body) ? 200 : 202;
}

static int send_answer(struct call *k)
{
        json_t *body = TAKE_PTR(k->body);
        int r;
        if (k->status >= 400)
                return gv_http_reply_problem_json(k->req, k->status, body);
        const char *id = k->is_op ? json_string_value(json_object_get(body, "id")) : NULL;
        _cleanup_free_ char *location = id ? xasprintf("/api/v1/operations/%s", id) : NULL;
        r = gv_http_reply_json(k->req, k->status, body);
        if (r >= 0 && location && k->status == 202)
                (void)gv_http_reply_header(k->req, "Location", location);
        return r;
}

static void request_hash(struct gv_http_request *req, char ret[static GV_SHA256_HEX_SIZE])
{
        struct gv_sha256 s;
        size_t len = 0;
        const char *body = gv_http_body(req, &len);
        gv_sha256_init(&s);
        gv_sha256_update(&s, gv_http_method(req), strlen(gv_http_method(req)) + 1);
        gv_sha256_update(&s, gv_http_path(req), strlen(gv_http_path(req)) + 1);
        gv_sha256_update(&s, body, len);
        gv_sha256_final_hex(&s, ret);
}

/* Answer from an Idempotency-Key record: an operation as it is now, else the stored answer. */
static int replay(struct call *k, json_t *record)
{
        const char *op_id = json_string_value(json_object_get(record, "operation"));
        json_t *op = NULL;
        if (op_id && gv_controller_operation(k->c, op_id, 0, &op, NULL) >= 0) {
                k->is_op = true;
                k->body = op;
                settle_op(k);
                return send_answer(k);
        }
        k->status = (unsigned)json_integer_value(json_object_get(record, "status"));
        k->body = json_incref(json_object_get(record, "body"));
        k->is_op = false;
        return send_answer(k);
}

static int serve(struct gv_http_request *req, void *userdata, int needed, enum query_kind q,
                 api_fn fn)
{
        struct gv_controller_api *api = userdata;
        struct call k = { .req = req, .api = api, .c = api->controller };
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        _cleanup_json_ json_t *record = NULL;
        const char *method = gv_http_method(req);
        const char *key = NULL;
        char hash[GV_SHA256_HEX_SIZE];
        int r;

        if (needed != NONE && authorize(&k, needed) < 0)
                return 0;
        r = parse_query(&k, q, &e);
        if (r < 0)
                return gv_http_reply_error(req, r, e);

        if (strcmp(method, "POST") == 0 || strcmp(method, "DELETE") == 0 ||
            strcmp(method, "PUT") == 0)
                key = gv_http_header(req, "Idempotency-Key");
        if (key) {
                enum gv_idem_begin kind;
                if (!gv_idem_key_is_valid(key))
                        return gv_http_reply_problem(req, 400, "idempotency-key-invalid", NULL,
                                                     "Idempotency-Key '%.80s' is not valid: use "
                                                     "1-64 of A-Z a-z 0-9 . _ -.", key);
                request_hash(req, hash);
                r = gv_idem_begin(k.c, key, hash, &kind, &record, &e);
                if (r < 0)
                        return gv_http_reply_error(req, r, e);
                switch (kind) {
                case GV_IDEM_REPLAY:
                        return replay(&k, record);
                case GV_IDEM_RUNNING:
                        return gv_http_reply_problem(req, 409, "idempotency-key-in-use", NULL,
                                                     "The request with Idempotency-Key '%s' is "
                                                     "being carried out now; ask again when it "
                                                     "is done.", key);
                case GV_IDEM_MISMATCH:
                        return gv_http_reply_problem(req, 422, "idempotency-key-reused", NULL,
                                                     "Idempotency-Key '%s' was used for a "
                                                     "different request; use a new key for a "
                                                     "new change.", key);
                default:
                        break;
                }
        }

        r = fn(&k, &e);
        if (r < 0) {
                json_decref(k.body);
                k.body = gv_http_problem_from_error(r, e, gv_http_path(req));
                k.status = gv_http_status_from_errno(r);
                k.is_op = false;
        } else if (k.status == 0) {
                return 0; /* replied itself */
        }
        if (k.is_op)
                settle_op(&k);
        if (key) {
                const char *op_id = k.is_op ? json_string_value(json_object_get(k.body, "id"))
                                            : NULL;
                /* A server error is not remembered: a retry carries the request out again. */
                if (k.status >= 500) {
                        (void)gv_idem_forget(k.c, key, NULL);
                } else {
                        /* A new token's secret is shown once and never stored: a replay
                         * answers the token without it. */
                        _cleanup_json_ json_t *kept = json_deep_copy(k.body);
                        if (json_is_object(kept))
                                json_object_del(kept, "token");
                        (void)gv_idem_finish(k.c, key, hash, k.status, kept, op_id, NULL);
                }
        }
        return send_answer(&k);
}

#define HANDLER(method, pattern, name, role, query)                                     \
        static int h_##name(struct gv_http_request *req, void *userdata)                \
        {                                                                               \
                return serve(req, userdata, role, query, do_##name);                    \
        }
GV_CONTROLLER_API_ROUTES(HANDLER)
#undef HANDLER

#define ROUTE(method, pattern, name, role, query) \
        { method, pattern, h_##name, (query) == Q_UPLOAD },
static const struct gv_http_route routes[] = {
        GV_CONTROLLER_API_ROUTES(ROUTE)
        /* the dashboard (web.c) */
        { "GET", "/", gv_controller_web_root, false },
        { "GET", "/ui", gv_controller_web_root, false },
        { "GET", "/ui/{file:path}", gv_controller_web_file, false },
};
#undef ROUTE

const struct gv_http_route *gv_controller_api_routes(size_t *ret_n)
{
        *ret_n = ELEMENTSOF(routes);
        return routes;
}
