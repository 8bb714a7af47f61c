/* SPDX-License-Identifier: MIT */
/*
 * api.c — the controller's REST API (docs/api.md): the route table from api.h's list, and one
 * path every request takes (serve()):
 *
 *   1. who: none for openapi.json and health; admin on the local UNIX socket; otherwise
 *      the Authorization header's token (401 with WWW-Authenticate when missing or bad, 403
 *      when its role is below the route's, or a member's on a route members may not use), then
 *      the token's rate (429 with Retry-After), and the path's names (a strict grammar: 400);
 *      a member's objects are checked by the route's function (own_vm() and friends: another
 *      tenant's object is 404, as if it did not exist) and its lists filtered;
 *   2. the query: only the parameters the route takes (?wait, ?limit, ?after), strictly parsed;
 *   3. Idempotency-Key on POST, PUT and DELETE: the first answer is replayed (api-idem.c);
 *   4. the route's function, which parses a strict body (unknown members are 400, named) and
 *      calls the controller (controller.h);
 *   5. an operation answer waits when asked (?wait=SECONDS) and is 200 when it has ended,
 *      202 with Location while it runs;
 *   6. every POST, PUT and DELETE — answered, refused or failed — leaves an audit record
 *      (audit.c): who, from where, what, on which object, the status and the refusal's words.
 */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

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
/* What a tenant's member token may do on a route (api.h). */
enum { M_NO, M_OWN, M_ALL };
/* Q_UPLOAD: no query parameters, and the body is streamed to a file (route.h body_to_file).
 * Q_METRICS: ?series and ?range (do_metrics reads them). Q_INSIGHTS: ?window and ?threshold
 * (do_insights). */
enum query_kind { Q_NONE, Q_WAIT, Q_LIMIT, Q_AFTER, Q_UPLOAD, Q_METRICS, Q_INSIGHTS, Q_AUDIT };

struct call {
        struct gv_http_request *req;
        struct gv_controller_api *api;
        struct gv_controller *c;
        int wait_ms;      /* ?wait, in ms */
        unsigned limit;   /* ?limit */
        struct gv_principal who;
        bool known;       /* who is set (authenticated, or the UNIX socket) */
        char *detail;     /* a refusal's or failure's words, for the audit record */
        json_t *last_body; /* what was answered (the audit record's operation id) */
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
        static const char *const audit[] = { "since", "until", "principal", "tenant", "object",
                                             "outcome", "method", "limit", "after", NULL };
        const char *const *allowed = q == Q_WAIT ? wait : q == Q_LIMIT ? limit
                                   : q == Q_AFTER ? after : q == Q_METRICS ? metrics
                                   : q == Q_INSIGHTS ? insights : q == Q_AUDIT ? audit : none;
        const char *s = NULL;
        uint32_t v;
        int r = gv_http_query_check(k->req, allowed, err);
        if (r < 0)
                return r;
        k->limit = LIMIT_DEFAULT;
        if (q == Q_AUDIT)
                return 0; /* the audit log parses its own (audit.c) */
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

/* ---- tenants: whose objects a member reaches ---- */

static bool is_member(const struct call *k)
{
        return k->known && k->who.role == GV_ROLE_MEMBER;
}

static bool of_tenant(const json_t *vm, const char *tenant)
{
        const char *t = json_string_value(json_object_get(json_object_get(vm, "spec"),
                                                          "tenant"));
        return t && strcmp(t, tenant) == 0;
}

/* A member reaches VM `name` only when it is its tenant's: otherwise the same 404 a VM that
 * does not exist gets, so a name tells nothing about other tenants. */
static int own_vm(struct call *k, const char *name, struct gv_error **err)
{
        json_t *vm = NULL;
        if (!is_member(k))
                return 0;
        int r = gv_controller_vm(k->c, name, &vm, err);
        if (r < 0)
                return r;
        bool mine = of_tenant(vm, k->who.tenant);
        json_decref(vm);
        if (!mine)
                return gv_error_set(err, ENOENT, "No VM '%s' (gpuvirt vm list shows them).",
                                    name);
        return 0;
}

/* reliability.md F5: a VM whose host does not answer is `unknown`. A start, stop or delete
 * asked now would be carried out whenever the host came back, on a VM whose state nobody
 * knows: refused with the reason (the lookup's own errors are left to the call that follows).
 * A move off such a host is fence.c's to refuse (not fenced) or allow (fenced). */
static int vm_host_answers(struct call *k, const char *name, struct gv_error **err)
{
        _cleanup_json_ json_t *vm = NULL, *h = NULL;
        if (gv_controller_vm(k->c, name, &vm, NULL) < 0)
                return 0;
        const char *host = json_string_value(json_object_get(vm, "host"));
        if (!host || gv_controller_host(k->c, host, &h, NULL) < 0)
                return 0;
        if (strcmp(json_string_value(json_object_get(h, "state")) ?: "", "down") != 0)
                return 0;
        long long ago = (long long)time(NULL) - json_integer_value(json_object_get(h,
                                                                                "last_seen"));
        return gv_error_set(err, EBUSY, "VM '%s' is on host '%s', which is down (no answer for "
                            "%lld s): its state is unknown and it cannot be changed until the "
                            "host answers again. If the host is gone for good, fence it (POST "
                            "/api/v1/hosts/%s/fence) and evacuate it.", name, host, ago, host);
}

/* A member's VM spec: its own tenant, set when left out; another is refused. */
static int member_spec(struct call *k, json_t *spec, struct gv_error **err)
{
        const char *t = json_string_value(json_object_get(spec, "tenant"));
        if (!is_member(k))
                return 0;
        if (json_object_get(spec, "tenant") && (!t || strcmp(t, k->who.tenant) != 0))
                return gv_error_set(err, EPERM, "This token is a member of tenant '%s' and "
                                    "makes VMs only there; leave 'tenant' out or set it to "
                                    "'%s'.", k->who.tenant, k->who.tenant);
        if (json_object_get(spec, "host"))
                return gv_error_set(err, EPERM, "A member cannot pin a VM to a host: placement "
                                    "picks one in the tenant's GPU pools. Leave 'host' out.");
        json_object_set_new(spec, "tenant", json_string(k->who.tenant));
        return 0;
}

/* Only the elements of array a whose member `key` (a JSON object path of one level, or the
 * VM spec's tenant) names the caller's tenant. */
static json_t *filter_tenant(json_t *a /* stolen */, const char *tenant, bool vm_spec)
{
        json_t *out = json_array(), *v;
        size_t i;
        json_array_foreach(a, i, v) {
                const char *t = vm_spec ? NULL
                                        : json_string_value(json_object_get(v, "tenant"));
                if (vm_spec ? of_tenant(v, tenant) : (t && strcmp(t, tenant) == 0))
                        json_array_append(out, v);
        }
        json_decref(a);
        return out;
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
        return answer(k, 200, json_pack("{s:s, s:s, s:s, s:I, s:o}", "status", "ok", "version",
                                        GPUVIRT_VERSION, "store",
                                        gv_controller_store_scheme(k->c),
                                        "audit_write_failures",
                                        (json_int_t)gv_controller_audit_failures(k->c),
                                        "controller", gv_controller_lease(k->c)));
}

/* ---- hosts and GPUs ---- */

static int do_hosts(struct call *k, struct gv_error **err)
{
        (void)err;
        return answer(k, 200, gv_controller_hosts(k->c));
}

static int do_host_register(struct call *k, struct gv_error **err)
{
        static const char *const keys[] = { "name", "endpoint", "agent_secret", NULL };
        _cleanup_json_ json_t *in = NULL;
        const char *name = NULL, *endpoint = NULL, *secret = NULL;
        json_t *host = NULL;
        int r = body_object(k, "host", keys, false, &in, err);
        if (r >= 0)
                r = gv_json_get_string(in, "name", &name, err);
        if (r >= 0)
                r = gv_json_get_string(in, "endpoint", &endpoint, err);
        if (r >= 0 && json_object_get(in, "agent_secret"))
                r = gv_json_get_string(in, "agent_secret", &secret, err);
        if (r >= 0)
                r = gv_controller_host_register_agent(k->c, name, endpoint, secret, &host, err);
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

static int do_host_pool(struct call *k, struct gv_error **err)
{
        static const char *const keys[] = { "pool", NULL };
        _cleanup_json_ json_t *in = NULL;
        const char *pool = NULL;
        json_t *j = NULL;
        int r = body_object(k, "host pool", keys, false, &in, err);
        if (r >= 0)
                r = gv_json_get_string(in, "pool", &pool, err);
        if (r >= 0)
                r = gv_controller_host_set_pool(k->c, param(k, "host"), pool, &j, err);
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
        if (is_member(k))
                return answer(k, 200, filter_tenant(gv_controller_vms(k->c), k->who.tenant,
                                                    true));
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
                r = member_spec(k, in, err);
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
                r = member_spec(k, in, err);
        if (r >= 0)
                r = gv_controller_vm_create(k->c, in, &op, err);
        return r < 0 ? r : answer_op(k, op);
}

static int do_vm(struct call *k, struct gv_error **err)
{
        json_t *j = NULL;
        int r = own_vm(k, param(k, "vm"), err);
        if (r >= 0)
                r = gv_controller_vm(k->c, param(k, "vm"), &j, err);
        return r < 0 ? r : answer(k, 200, j);
}

static int do_vm_console_ws(struct call *k, struct gv_error **err)
{
        int r = own_vm(k, param(k, "vm"), err);
        if (r < 0)
                return r;
        k->status = 0; /* answers itself: an upgrade or the agent's refusal */
        return gv_controller_vm_ws(k->req, k->c, param(k, "vm"), "console", err);
}

static int do_vm_vnc_ws(struct call *k, struct gv_error **err)
{
        int r = own_vm(k, param(k, "vm"), err);
        if (r < 0)
                return r;
        k->status = 0;
        return gv_controller_vm_ws(k->req, k->c, param(k, "vm"), "vnc", err);
}

static int do_vm_start(struct call *k, struct gv_error **err)
{
        json_t *op = NULL;
        int r = no_body(k, "a start", err);
        if (r >= 0)
                r = own_vm(k, param(k, "vm"), err);
        if (r >= 0)
                r = vm_host_answers(k, param(k, "vm"), err);
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
                r = own_vm(k, param(k, "vm"), err);
        if (r >= 0)
                r = gv_json_opt_u32(in, "timeout_s", &timeout_s, err);
        if (r >= 0 && timeout_s > STOP_TIMEOUT_MAX_S)
                r = gv_error_set(err, EINVAL, "timeout_s: %u is more than %u seconds.",
                                 timeout_s, STOP_TIMEOUT_MAX_S);
        if (r >= 0)
                r = vm_host_answers(k, param(k, "vm"), err);
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

/* Fencing (fence.c): the operator asserts the host is off; `by` the token's name (the UNIX
 * socket: "local"). */
static int do_host_fence(struct call *k, struct gv_error **err)
{
        static const char *const keys[] = { "reason", NULL };
        _cleanup_json_ json_t *in = NULL;
        json_t *h = NULL;
        int r = body_object(k, "fence", keys, true, &in, err);
        if (r >= 0)
                r = gv_controller_host_fence(k->c, param(k, "host"), in ? in : json_object(),
                                             k->who.name[0] ? k->who.name : "local", &h, err);
        return r < 0 ? r : answer(k, 200, h);
}

static int do_host_unfence(struct call *k, struct gv_error **err)
{
        json_t *h = NULL;
        int r = no_body(k, "an unfence", err);
        if (r >= 0)
                r = gv_controller_host_unfence(k->c, param(k, "host"), &h, err);
        return r < 0 ? r : answer(k, 200, h);
}

static int do_host_evacuate(struct call *k, struct gv_error **err)
{
        json_t *op = NULL;
        int r = no_body(k, "an evacuation", err);
        if (r >= 0)
                r = gv_controller_host_evacuate(k->c, param(k, "host"), &op, err);
        return r < 0 ? r : answer_op(k, op);
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
                r = own_vm(k, param(k, "vm"), err);
        if (r >= 0)
                r = vm_host_answers(k, param(k, "vm"), err);
        if (r >= 0)
                r = gv_controller_vm_delete(k->c, param(k, "vm"), &op, err);
        return r < 0 ? r : answer_op(k, op);
}

/* ---- operations and events ---- */

static int do_operations(struct call *k, struct gv_error **err)
{
        (void)err;
        json_t *ops = gv_controller_operations(k->c, is_member(k) ? LIMIT_MAX : k->limit);
        if (is_member(k)) {
                ops = filter_tenant(ops, k->who.tenant, false);
                while (json_array_size(ops) > k->limit)
                        json_array_remove(ops, json_array_size(ops) - 1);
        }
        return answer(k, 200, ops);
}

static int do_operation(struct call *k, struct gv_error **err)
{
        json_t *op = NULL;
        int r = gv_controller_operation(k->c, param(k, "id"), 0, &op, err);
        if (r >= 0 && is_member(k)) {
                const char *t = json_string_value(json_object_get(op, "tenant"));
                if (!t || strcmp(t, k->who.tenant) != 0) {
                        json_decref(op);
                        return gv_error_set(err, ENOENT, "No operation '%s'.", param(k, "id"));
                }
        }
        return r < 0 ? r : answer_op(k, op);
}

static int do_events(struct call *k, struct gv_error **err)
{
        (void)err;
        k->status = 0; /* the stream replies itself */
        return gv_controller_api_events(k->req, k->api, is_member(k) ? k->who.tenant : NULL);
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
        static const char *const keys[] = { "name", "role", "tenant", NULL };
        _cleanup_json_ json_t *in = NULL;
        const char *name = NULL, *role_s = NULL, *tenant = NULL;
        json_t *t = NULL;
        int r = body_object(k, "token", keys, false, &in, err);
        if (r >= 0)
                r = gv_json_get_string(in, "name", &name, err);
        if (r >= 0)
                r = gv_json_get_string(in, "role", &role_s, err);
        if (r >= 0)
                r = gv_json_opt_string(in, "tenant", &tenant, err);
        if (r < 0)
                return r;
        enum gv_role role = gv_role_from_string(role_s);
        if (role < 0)
                return gv_error_set(err, EINVAL, "role '%s' is not known; valid: member (with "
                                    "a tenant), viewer, operator, admin.", role_s);
        r = gv_controller_token_create(k->c, name, role, tenant, &t, err);
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

/* ---- tenants (tenants.c) ---- */

static int do_tenants(struct call *k, struct gv_error **err)
{
        (void)err;
        return answer(k, 200, gv_controller_tenants(k->c, is_member(k) ? k->who.tenant : NULL));
}

static int do_tenant(struct call *k, struct gv_error **err)
{
        json_t *t = NULL;
        if (is_member(k) && strcmp(param(k, "tenant"), k->who.tenant) != 0)
                return gv_error_set(err, ENOENT, "No tenant '%s'.", param(k, "tenant"));
        int r = gv_controller_tenant(k->c, param(k, "tenant"), &t, err);
        return r < 0 ? r : answer(k, 200, t);
}

/* Create or replace: the body is checked member by member by the controller. */
static int do_tenant_put(struct call *k, struct gv_error **err)
{
        _cleanup_json_ json_t *in = NULL;
        json_t *t = NULL;
        int r = gv_http_body_json(k->req, &in, err);
        if (r >= 0)
                r = gv_controller_tenant_put(k->c, param(k, "tenant"), in, &t, err);
        return r < 0 ? r : answer(k, 200, t);
}

static int do_tenant_delete(struct call *k, struct gv_error **err)
{
        int r = no_body(k, "a delete", err);
        if (r >= 0)
                r = gv_controller_tenant_delete(k->c, param(k, "tenant"), err);
        return r < 0 ? r : answer(k, 200, json_pack("{s:s, s:b}", "name", param(k, "tenant"),
                                                     "deleted", 1));
}

/* ---- the audit log (audit.c) ---- */

static int do_audit(struct call *k, struct gv_error **err)
{
        static const char *const names[] = { "since", "until", "principal", "tenant", "object",
                                             "outcome", "method", "limit", "after", NULL };
        _cleanup_json_ json_t *q = json_object();
        json_t *out = NULL;
        for (const char *const *n = names; *n; n++) {
                const char *v = NULL;
                int r = gv_http_query(k->req, *n, &v, err);
                if (r < 0)
                        return r;
                if (r > 0)
                        json_object_set_new(q, *n, json_string(v));
        }
        int r = gv_controller_audit_query(k->c, q, &out, err);
        return r < 0 ? r : answer(k, 200, out);
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
        if (is_member(k)) {
                /* A member sees its tenant's VMs, nothing of hosts or GPUs. */
                if (!series) {
                        json_t *m = gv_controller_metrics(k->c);
                        _cleanup_json_ json_t *own = filter_tenant(gv_controller_vms(k->c),
                                                                   k->who.tenant, true);
                        _cleanup_json_ json_t *names = json_object();
                        json_t *vms = json_array(), *v;
                        size_t i;
                        json_array_foreach(own, i, v)
                                json_object_set(names, json_string_value(json_object_get(
                                                               v, "name")) ?: "", json_true());
                        json_array_foreach(json_object_get(m, "vms"), i, v) {
                                const char *name = json_string_value(json_object_get(v, "vm"));
                                if (name && json_object_get(names, name))
                                        json_array_append(vms, v);
                        }
                        json_object_set_new(m, "vms", vms);
                        json_object_set_new(m, "hosts", json_array());
                        return answer(k, 200, m);
                }
                r = gv_startswith(series, "vm/") ? own_vm(k, series + 3, err)
                                                 : gv_error_set(err, EPERM, "A member sees the "
                                                                "metrics of its tenant's VMs "
                                                                "only: series=vm/VM.");
                if (r < 0)
                        return r;
        }
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

/* Refuse with a problem, keeping its words for the audit record. */
static void refuse(struct call *k, unsigned status, const char *slug, const char *fmt, ...)
        _printf_(4, 5);
static void refuse(struct call *k, unsigned status, const char *slug, const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        _cleanup_free_ char *d = xvasprintf(fmt, ap);
        va_end(ap);
        free(k->detail);
        k->detail = xstrdup(d);
        (void)gv_http_reply_problem(k->req, status, slug, NULL, "%s", d);
}

/* Who is calling, and may they call this route? false with the 401 or 403 already answered. */
static bool authorize(struct call *k, int needed, int members)
{
        if (gv_http_peer_cred(k->req, NULL, NULL, NULL) >= 0) {
                k->who = (struct gv_principal){ .role = GV_ROLE_ADMIN };
                k->known = true; /* the local UNIX socket */
                return true;
        }

        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        _cleanup_free_ char *ws_bearer = NULL;
        const char *h = gv_http_header(k->req, "Authorization");
        if (!h) /* a browser's WebSocket: the token as a subprotocol (console.c) */
                h = ws_bearer = gv_controller_ws_bearer(k->req);
        int r = gv_controller_authenticate(k->c, h, &k->who, &e);
        if (r == -EACCES) {
                refuse(k, 401, "unauthorized", "%s", gv_error_msg(e, r));
                /* RFC 6750 3: error="invalid_token" when a token was sent but is not valid. */
                (void)gv_http_reply_header(k->req, "WWW-Authenticate",
                                           h ? "Bearer realm=\"gpuvirt\", error=\"invalid_token\""
                                             : "Bearer realm=\"gpuvirt\"");
                return false;
        }
        if (r < 0) {
                k->detail = xstrdup(gv_error_msg(e, r));
                (void)gv_http_reply_error(k->req, r, e);
                return false;
        }
        k->known = true;
        if (k->who.role == GV_ROLE_MEMBER && members == M_NO) {
                refuse(k, 403, "forbidden", "'%s %s' is not open to tenant members; this token "
                       "is a member of tenant '%s'. Ask an admin.", gv_http_method(k->req),
                       gv_http_path(k->req), k->who.tenant);
                return false;
        }
        if (k->who.role != GV_ROLE_MEMBER && (int)k->who.role < needed) {
                refuse(k, 403, "forbidden", "'%s %s' needs the role '%s' or higher; this token "
                       "has '%s'. Ask an admin for a token with that role.",
                       gv_http_method(k->req), gv_http_path(k->req),
                       gv_role_to_string(needed), gv_role_to_string(k->who.role));
                return false;
        }
        return true;
}

/* The path's names follow the API's grammar (R20): a VM, host, image, pool or tenant name is
 * gv_name_is_valid(); an id is 1-64 of A-Z a-z 0-9 . _ -. A GPU ({gpu:text}) is looked up as
 * given. 400 naming the parameter. */
static bool path_names_valid(struct call *k)
{
        static const char *const names[] = { "vm", "host", "image", "pool", "tenant", NULL };
        for (const char *const *n = names; *n; n++) {
                const char *v = gv_http_param(k->req, *n);
                if (v && !gv_name_is_valid(v)) {
                        refuse(k, 400, "invalid-request", "%s '%.80s' is not a valid name: use "
                               "1-63 of a-z 0-9 . _ - starting with a letter or digit.", *n, v);
                        return false;
                }
        }
        const char *id = gv_http_param(k->req, "id");
        if (id && !gv_idem_key_is_valid(id)) {
                refuse(k, 400, "invalid-request", "id '%.80s' is not a valid id: use 1-64 of "
                       "A-Z a-z 0-9 . _ -.", id);
                return false;
        }
        return true;
}

/* Per-token request rate (a token bucket; ratelimit in controller.c): 429 with Retry-After
 * when spent. The UNIX socket is not limited. */
static bool within_rate(struct call *k)
{
        double retry_s = 0;
        if (!k->who.token_id[0] || gv_controller_rate_take(k->c, k->who.token_id, &retry_s))
                return true;
        unsigned secs = retry_s < 1 ? 1u : (unsigned)(retry_s + 0.999);
        refuse(k, 429, "too-many-requests", "Token '%s' sent more than its %g requests a second "
               "(burst %u); wait %u s and try again, or spread the requests.", k->who.name,
               gv_controller_rate_limit(k->c), gv_controller_rate_burst(k->c), secs);
        char v[16];
        snprintf(v, sizeof(v), "%u", secs);
        (void)gv_http_reply_header(k->req, "Retry-After", v);
        return false;
}

/* The controller's in-flight cap (ratelimit.c): 503 with Retry-After when it is reached. */
static bool within_inflight(struct call *k, bool change)
{
        unsigned max = 0;
        if (gv_controller_inflight_enter(k->c, change, &max))
                return true;
        refuse(k, 503, "overloaded", "The controller is serving its maximum of %u %s at once; "
               "retry in 1 s (api-max-inflight in the configuration sets the cap).", max,
               change ? "changes" : "requests");
        return false; /* a 503 carries Retry-After: 1 (server.c) */
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
        json_decref(k->last_body);
        k->last_body = json_incref(body);
        if (k->status >= 400 && !k->detail)
                k->detail = xstrdup(json_string_value(json_object_get(body, "detail")) ?: "");
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

/* reliability.md R12: once a write found the store unavailable, the mutations of the next
 * STORE_BREAKER_MS are refused at once with the same 503, rather than each waiting out the
 * store's busy timeout behind the controller's own writers (a circuit breaker; per process). */
#define STORE_BREAKER_MS 5000
static int64_t store_refused_at_ms = INT64_MIN / 2;

static int64_t mono_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t store_refused_ago_ms(void)
{
        return mono_ms() - __atomic_load_n(&store_refused_at_ms, __ATOMIC_RELAXED);
}

/* reliability.md F7, F10: the store cannot take the write (locked past its busy timeout, its
 * server away) or its disk is full. Nothing was changed, and the answer says so: 503 with
 * Retry-After (server.c) for a store that is away, 507 naming the directory to free for a full
 * one. NULL for any other failure (both backends name "the store '...'" in their errors). */
static json_t *store_problem(struct call *k, int r, const struct gv_error *e,
                             unsigned *ret_status)
{
        const char *at = e ? strstr(e->msg, "the store '") : NULL;
        _cleanup_free_ char *dir = NULL, *detail = NULL, *url = NULL;
        unsigned status;

        if (!at)
                return NULL;
        at += strlen("the store '");
        url = xstrndup(at, strcspn(at, "'"));
        if (r == -EBUSY || r == -ENOTCONN || r == -EAGAIN) {
                status = 503;
                __atomic_store_n(&store_refused_at_ms, mono_ms(), __ATOMIC_RELAXED);
                detail = xasprintf("The store cannot take writes now, so nothing was changed: %s "
                                   "Retry in a few seconds; reads still work.", e->msg);
        } else if (r == -ENOSPC) {
                status = 507;
                if (strncmp(url, "postgres", 8) == 0) {
                        dir = xstrdup("the PostgreSQL server's data directory");
                } else {
                        const char *path = strncmp(url, "sqlite:", 7) == 0 ? url + 7 : url;
                        const char *slash = strrchr(path, '/');
                        dir = slash ? xasprintf("'%.*s'", (int)(slash - path), path)
                                    : xstrdup("the current directory");
                }
                detail = xasprintf("The store's directory %s is full, so nothing was changed: "
                                   "free space there, then retry (%s)", dir, e->msg);
        } else {
                return NULL;
        }
        *ret_status = status;
        return gv_http_problem_new(status, status == 503 ? "store-unavailable"
                                                         : "insufficient-storage",
                                   NULL, detail, gv_http_path(k->req));
}

static int fail(struct call *k, int r, const struct gv_error *e)
{
        unsigned status = 0;
        json_t *p = store_problem(k, r, e, &status);

        free(k->detail);
        k->detail = xstrdup(gv_error_msg(e, r));
        if (p)
                return gv_http_reply_problem_json(k->req, status, p);
        return gv_http_reply_error(k->req, r, e);
}

/* After the caller is known and allowed: the query, Idempotency-Key, the route's function,
 * the answer. */
static int serve_steps(struct call *k, enum query_kind q, api_fn fn)
{
        _cleanup_(gv_error_freep) struct gv_error *e = NULL;
        _cleanup_json_ json_t *record = NULL;
        struct gv_http_request *req = k->req;
        const char *method = gv_http_method(req);
        const char *key = NULL;
        char hash[GV_SHA256_HEX_SIZE];
        int r;

        r = parse_query(k, q, &e);
        if (r < 0)
                return fail(k, r, e);
        /* before the Idempotency-Key's record, itself a write */
        int64_t ago = store_refused_ago_ms();
        if (ago < STORE_BREAKER_MS && strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
                refuse(k, 503, "store-unavailable", "The store could not take a write %lld ms "
                       "ago (another process held its write lock, or its server was away), so "
                       "nothing was changed; retry in a few seconds. Reads still work.",
                       (long long)ago);
                return 0;
        }

        if (strcmp(method, "POST") == 0 || strcmp(method, "DELETE") == 0 ||
            strcmp(method, "PUT") == 0)
                key = gv_http_header(req, "Idempotency-Key");
        if (key) {
                enum gv_idem_begin kind;
                if (!gv_idem_key_is_valid(key)) {
                        refuse(k, 400, "idempotency-key-invalid", "Idempotency-Key '%.80s' is "
                               "not valid: use 1-64 of A-Z a-z 0-9 . _ -.", key);
                        return 0;
                }
                request_hash(req, hash);
                r = gv_idem_begin(k->c, key, hash, &kind, &record, &e);
                if (r < 0)
                        return fail(k, r, e);
                switch (kind) {
                case GV_IDEM_REPLAY:
                        return replay(k, record);
                case GV_IDEM_RUNNING:
                        refuse(k, 409, "idempotency-key-in-use", "The request with "
                               "Idempotency-Key '%s' is being carried out now; ask again when "
                               "it is done.", key);
                        return 0;
                case GV_IDEM_MISMATCH:
                        refuse(k, 422, "idempotency-key-reused", "Idempotency-Key '%s' was used "
                               "for a different request; use a new key for a new change.", key);
                        return 0;
                default:
                        break;
                }
        }

        r = fn(k, &e);
        if (r < 0) {
                json_decref(k->body);
                unsigned st = 0;
                k->body = store_problem(k, r, e, &st);
                if (!k->body)
                        k->body = gv_http_problem_from_error(r, e, gv_http_path(req));
                k->status = st ? st : gv_http_status_from_errno(r);
                k->is_op = false;
                free(k->detail);
                k->detail = xstrdup(gv_error_msg(e, r));
        } else if (k->status == 0) {
                return 0; /* replied itself */
        }
        if (k->is_op)
                settle_op(k);
        if (key) {
                const char *op_id = k->is_op ? json_string_value(json_object_get(k->body, "id"))
                                             : NULL;
                /* A server error is not remembered: a retry carries the request out again. */
                if (k->status >= 500) {
                        (void)gv_idem_forget(k->c, key, NULL);
                } else {
                        /* A new token's secret is shown once and never stored: a replay
                         * answers the token without it. */
                        _cleanup_json_ json_t *kept = json_deep_copy(k->body);
                        if (json_is_object(kept))
                                json_object_del(kept, "token");
                        (void)gv_idem_finish(k->c, key, hash, k->status, kept, op_id, NULL);
                }
        }
        return send_answer(k);
}

/* The object a request is about, from its path: "vm/web-1", "host/node-a", "tenant/acme". */
static char *audit_object(const struct call *k)
{
        static const char *const kinds[] = { "vm", "image", "tenant", "pool", "id", "host",
                                             NULL };
        for (const char *const *n = kinds; *n; n++) {
                const char *v = gv_http_param(k->req, *n);
                if (!v)
                        continue;
                if (strcmp(*n, "host") == 0 && gv_http_param(k->req, "gpu"))
                        return xasprintf("gpu/%s/%s", v, gv_http_param(k->req, "gpu"));
                if (strcmp(*n, "id") == 0)
                        return xasprintf("%s/%s", gv_startswith(gv_http_path(k->req),
                                                                "/api/v1/tokens/") ? "token"
                                                                                  : "operation",
                                         v);
                if (strcmp(*n, "pool") == 0)
                        return xasprintf("license/%s", v);
                return xasprintf("%s/%s", *n, v);
        }
        /* A create names its object in the body: POST /api/v1/vms {"name": ...}. */
        static const struct { const char *path, *kind; } creates[] = {
                { "/api/v1/vms", "vm" }, { "/api/v1/tokens", "token" },
                { "/api/v1/images", "image" }, { "/api/v1/hosts", "host" },
        };
        for (size_t i = 0; i < ELEMENTSOF(creates); i++) {
                if (strcmp(gv_http_path(k->req), creates[i].path) != 0)
                        continue;
                size_t len = 0;
                const char *body = gv_http_body(k->req, &len);
                _cleanup_json_ json_t *j = len ? json_loadb(body, len, 0, NULL) : NULL;
                const char *name = json_string_value(json_object_get(j, "name"));
                return name ? xasprintf("%s/%s", creates[i].kind, name) : NULL;
        }
        return NULL;
}

/* Every change asked for, allowed or not, leaves an audit record (audit.c reports its own
 * failures; the answer has gone already). */
static void audit(struct call *k, const json_t *answered)
{
        char source[128] = "";
        uid_t uid = 0;
        pid_t pid;
        if (gv_http_peer_cred(k->req, &uid, NULL, &pid) >= 0)
                snprintf(source, sizeof(source), "unix:uid=%u,pid=%d", (unsigned)uid, (int)pid);
        else
                (void)gv_http_peer_address(k->req, source, sizeof(source));
        _cleanup_free_ char *principal =
                !k->known            ? xstrdup("anonymous")
                : k->who.token_id[0] ? xasprintf("token:%s", k->who.name)
                                     : xasprintf("local:uid=%u", (unsigned)uid);
        _cleanup_free_ char *object = audit_object(k);
        const char *op_id = json_string_value(json_object_get(answered, "id"));
        struct gv_audit_entry a = {
                .principal = principal,
                .token_id = k->who.token_id[0] ? k->who.token_id : NULL,
                .role = k->known ? gv_role_to_string(k->who.role) : NULL,
                .tenant = k->who.tenant[0] ? k->who.tenant : NULL,
                .source = source[0] ? source : NULL,
                .method = gv_http_method(k->req),
                .path = gv_http_path(k->req),
                .object = object,
                .request_id = gv_http_request_id(k->req),
                .operation_id = op_id && gv_startswith(op_id, "op") ? op_id : NULL,
                .status = gv_http_status(k->req),
                .detail = k->detail,
        };
        (void)gv_controller_audit(k->c, &a, NULL);
}

static int serve(struct gv_http_request *req, void *userdata, int needed, int members,
                 enum query_kind q, api_fn fn)
{
        struct gv_controller_api *api = userdata;
        struct call k = { .req = req, .api = api, .c = api->controller };
        const char *method = gv_http_method(req);
        bool change = strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0;
        int r = 0;

        /* Health and the OpenAPI document (no role) are never capped: a monitor must see a
         * loaded controller as alive. */
        if (needed == NONE) {
                r = serve_steps(&k, q, fn);
        } else if (within_inflight(&k, change)) {
                if (authorize(&k, needed, members) && within_rate(&k) && path_names_valid(&k))
                        r = serve_steps(&k, q, fn);
                gv_controller_inflight_leave(k.c, change);
        }
        /* A store found unavailable moments ago would make the audit record wait out its busy
         * timeout too (the request changed nothing; the breaker's refusal says why). */
        if (change && store_refused_ago_ms() >= STORE_BREAKER_MS)
                audit(&k, k.last_body);
        json_decref(k.last_body);
        free(k.detail);
        return r;
}

#define HANDLER(method, pattern, name, role, query, members)                            \
        static int h_##name(struct gv_http_request *req, void *userdata)                \
        {                                                                               \
                return serve(req, userdata, role, members, query, do_##name);           \
        }
GV_CONTROLLER_API_ROUTES(HANDLER)
#undef HANDLER

#define ROUTE(method, pattern, name, role, query, members) \
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
